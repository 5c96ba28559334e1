"""Rater reliability: gold accuracy, self-consistency, side bias, speed, weight.

Nobody's votes are deleted: unreliable raters get a small weight that the
scaler and the sampler use, and a flag (with reasons) for a person to review.

The weight is the share of a rater's answers that carry signal. A rater who
attends with probability q and otherwise answers at random gets a gold pair
right with probability (1 + q) / 2, so q = 2 * accuracy - 1, with accuracy
smoothed towards ``prior_accuracy`` so a new rater is neither trusted fully
nor written off. Strong side bias, too-fast answers and inconsistency on
repeats each halve the weight.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

STAT_COLUMNS = [
    "rater_id",
    "n_judgements",
    "n_gold",
    "gold_accuracy",
    "n_repeats",
    "repeat_consistency",
    "left_share",
    "median_response_ms",
    "reliability",
    "weight",
    "flagged",
    "reasons",
]


def _chosen(df: pd.DataFrame) -> pd.Series:
    """The image id the rater preferred, or "tie"."""
    chosen = df["left_image_id"].where(df["choice"] == "left", df["right_image_id"])
    return chosen.where(df["choice"] != "tie", "tie")


def _pair_keys(df: pd.DataFrame) -> pd.Series:
    a, b = df["left_image_id"].astype(str), df["right_image_id"].astype(str)
    return a.where(a < b, b) + "\x00" + b.where(a < b, a)


def rater_stats(
    judgements_df: pd.DataFrame,
    gold_answers: Iterable[tuple[str, str]],
    threshold: float = 0.5,
    prior_accuracy: float = 0.9,
    prior_strength: float = 2.0,
    min_response_ms: float = 700.0,
    max_side_share: float = 0.8,
    min_consistency: float = 0.55,
    min_evidence: int = 10,
) -> pd.DataFrame:
    """One row per rater (columns ``STAT_COLUMNS``), indexed by rater id.

    ``gold_answers`` are (better, worse) image-id pairs; any judgement of such
    a pair counts as a gold check. A judgement of a pair the rater has seen
    before counts as a repeat and is compared with their first answer.
    ``flagged`` raters have weight below ``threshold`` or a behavioural
    problem (listed in ``reasons``); side bias and consistency are judged
    only after ``min_evidence`` answers.
    """
    if len(judgements_df) == 0:
        return pd.DataFrame(columns=STAT_COLUMNS).set_index("rater_id", drop=False)
    df = judgements_df.assign(_chosen=_chosen(judgements_df), _pair=_pair_keys(judgements_df))
    better = {}
    for good, bad in gold_answers:
        better[min(good, bad) + "\x00" + max(good, bad)] = good
    df["_gold_correct"] = df["_pair"].map(better)
    is_gold = df["_gold_correct"].notna()
    df["_gold_correct"] = (df["_chosen"] == df["_gold_correct"]) & is_gold
    df["_is_gold"] = is_gold
    first = df.groupby(["rater_id", "_pair"], sort=False)["_chosen"].transform("first")
    df["_is_repeat"] = df.groupby(["rater_id", "_pair"], sort=False).cumcount() > 0
    df["_consistent"] = df["_is_repeat"] & (df["_chosen"] == first)
    df["_left"] = df["choice"] == "left"
    df["_sided"] = df["choice"] != "tie"
    df["_ms"] = pd.to_numeric(df.get("response_ms", pd.Series(np.nan, index=df.index)), errors="coerce").astype(float)

    g = df.groupby("rater_id", sort=True)
    out = pd.DataFrame({"n_judgements": g.size()})
    out["n_gold"] = g["_is_gold"].sum()
    correct = g["_gold_correct"].sum()
    out["gold_accuracy"] = correct / out["n_gold"].where(out["n_gold"] > 0)
    out["n_repeats"] = g["_is_repeat"].sum()
    out["repeat_consistency"] = g["_consistent"].sum() / out["n_repeats"].where(out["n_repeats"] > 0)
    sided = g["_sided"].sum()
    out["left_share"] = g["_left"].sum() / sided.where(sided > 0)
    out["median_response_ms"] = g["_ms"].median()

    smoothed = (correct + prior_strength * prior_accuracy) / (out["n_gold"] + prior_strength)
    out["reliability"] = np.clip(2 * smoothed - 1, 0.0, 1.0)
    biased = (sided >= min_evidence) & ((out["left_share"] - 0.5).abs() > max_side_share - 0.5)
    fast = out["median_response_ms"] < min_response_ms
    inconsistent = (out["n_repeats"] >= min_evidence) & (out["repeat_consistency"] < min_consistency)
    penalty = np.power(0.5, biased.astype(int) + fast.astype(int) + inconsistent.astype(int))
    out["weight"] = out["reliability"] * penalty
    low = out["weight"] < threshold
    reasons = [
        ", ".join(name for name, hit in zip(("low weight", "side bias", "too fast", "inconsistent"), flags) if hit)
        for flags in zip(low, biased, fast, inconsistent)
    ]
    out["reasons"] = reasons
    out["flagged"] = low | biased | fast | inconsistent
    out["rater_id"] = out.index
    return out[STAT_COLUMNS]


class RateLimiter:
    """At most ``max_per_minute`` accepted events per key in any sliding minute.

    Protects the store from vote flooding by one rater (or one client).
    Thread-safe; ``clock`` is injectable so behaviour can be checked without
    sleeping.
    """

    def __init__(self, max_per_minute: int = 30, clock: Callable[[], float] = time.monotonic) -> None:
        if max_per_minute < 1:
            raise ValueError("max_per_minute must be at least 1")
        self.max_per_minute = max_per_minute
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        if len(self._events) > 10_000:  # forget idle keys so memory stays bounded
            self._events = {k: v for k, v in self._events.items() if v and now - v[-1] < 60.0}
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= 60.0:
            events.popleft()
        return events

    def allow(self, key: str) -> bool:
        """Record one event for ``key`` and say whether it is within the limit."""
        with self._lock:
            now = self._clock()
            events = self._recent(key, now)
            if len(events) >= self.max_per_minute:
                return False
            events.append(now)
            return True

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may act again (0 when it may now)."""
        with self._lock:
            now = self._clock()
            events = self._recent(key, now)
            if len(events) < self.max_per_minute:
                return 0.0
            return 60.0 - (now - events[0])
