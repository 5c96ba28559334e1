"""Rater reliability: gold accuracy, self-consistency, side bias, speed, weight.

Nobody's votes are deleted: unreliable raters get a small weight that the
scaler and the sampler use, and a flag (with reasons) for a person to review.

The weight is the share q of a rater's answers that carry signal: a rater
who attends with probability q and otherwise answers at random gets a gold
pair right with probability (1 + q) / 2, so q = 2 * accuracy - 1, with the
accuracy smoothed towards ``prior_accuracy`` so a new rater is neither
trusted fully nor written off. When current scores are given, q is instead
fitted to all of the rater's answers (each one is explained either by a
Thurstone observer of those scores or by a coin flip, as in Dawid-Skene
style spammer models), which uses every judgement rather than the few gold
ones. Strong side bias, too-fast answers and inconsistency on repeats each
halve the weight.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
from scipy.special import ndtr

STAT_COLUMNS = [
    "rater_id",
    "n_judgements",
    "n_gold",
    "gold_accuracy",
    "n_repeats",
    "repeat_consistency",
    "left_share",
    "median_response_ms",
    "agreement",
    "reliability",
    "weight",
    "flagged",
    "reasons",
]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


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
    scores: Mapping[str, float] | pd.Series | None = None,
) -> pd.DataFrame:
    """One row per rater (columns ``STAT_COLUMNS``), indexed by rater id.

    ``gold_answers`` are (better, worse) image-id pairs; any judgement of such
    a pair counts as a gold check. A judgement of a pair the rater has seen
    before counts as a repeat and is compared with their first answer.
    ``flagged`` raters have weight below ``threshold`` or a behavioural
    problem (listed in ``reasons``); side bias and consistency are judged
    only after ``min_evidence`` answers. ``scores`` are current Thurstone
    scores (``scale(..., method="thurstone")``) by image id; with them,
    ``agreement`` is the share of decided answers that agree with the scores
    and the reliability is fitted to all answers.
    """
    if len(judgements_df) == 0:
        return pd.DataFrame(columns=STAT_COLUMNS).set_index("rater_id", drop=False)
    rater, raters = pd.factorize(judgements_df["rater_id"], sort=True)
    n_raters = len(raters)
    image, images = pd.factorize(pd.concat([judgements_df["left_image_id"], judgements_df["right_image_id"]]))
    left, right = np.split(image.astype(np.int64), 2)
    choice = judgements_df["choice"].to_numpy()
    is_left, is_tie = choice == "left", choice == "tie"
    chosen = np.where(is_tie, -1, np.where(is_left, left, right))  # image code, -1 for a tie
    pair = np.minimum(left, right) * len(images) + np.maximum(left, right)

    code = {image_id: k for k, image_id in enumerate(images)}
    gold_pair, gold_better = [], []
    for good, bad in gold_answers:
        if good in code and bad in code:
            gold_pair.append(min(code[good], code[bad]) * len(images) + max(code[good], code[bad]))
            gold_better.append(code[good])
    where = pd.Index(gold_pair).get_indexer(pair) if gold_pair else np.full(len(pair), -1)
    is_gold = where >= 0
    correct = is_gold & (chosen == np.asarray(gold_better + [-2])[where])

    _, first, inverse = np.unique(rater * (len(images) ** 2) + pair, return_index=True, return_inverse=True)
    is_repeat = np.arange(len(pair)) != first[inverse]
    consistent = is_repeat & (chosen == chosen[first[inverse]])

    def per_rater(values: np.ndarray) -> np.ndarray:
        return np.bincount(rater, values.astype(float), n_raters)

    n_gold, n_correct, sided = per_rater(is_gold), per_rater(correct), per_rater(~is_tie)
    ms = pd.to_numeric(judgements_df.get("response_ms", pd.Series(np.nan, index=judgements_df.index)), errors="coerce")
    out = pd.DataFrame(index=pd.Index(raters, name="rater_id"))
    out["n_judgements"] = np.bincount(rater, minlength=n_raters)
    out["n_gold"] = n_gold.astype(int)
    out["gold_accuracy"] = _ratio(n_correct, n_gold)
    out["n_repeats"] = per_rater(is_repeat).astype(int)
    out["repeat_consistency"] = _ratio(per_rater(consistent), out["n_repeats"].to_numpy())
    out["left_share"] = _ratio(per_rater(is_left), sided)
    out["median_response_ms"] = ms.astype(float).groupby(rater).median().reindex(range(n_raters)).to_numpy()

    smoothed = (n_correct + prior_strength * prior_accuracy) / (n_gold + prior_strength)
    out["reliability"] = np.clip(2 * smoothed - 1, 0.0, 1.0)
    out["agreement"] = np.nan
    if scores is not None:
        lookup = pd.Series(scores, dtype=float).reindex(images).fillna(0.0).to_numpy()
        decided = ~is_tie
        other = np.where(is_left, right, left)
        gap = lookup[chosen[decided]] - lookup[other[decided]]
        agreement, attention = _fit_attention(rater[decided], gap, n_raters, 2 * prior_accuracy - 1, prior_strength)
        out["agreement"] = agreement
        out["reliability"] = np.where(np.isnan(attention), out["reliability"], attention)
    biased = (sided >= min_evidence) & (np.abs(out["left_share"] - 0.5) > max_side_share - 0.5)
    fast = out["median_response_ms"] < min_response_ms
    inconsistent = (out["n_repeats"] >= min_evidence) & (out["repeat_consistency"] < min_consistency)
    penalty = np.power(0.5, biased.astype(int) + fast.astype(int) + inconsistent.astype(int))
    out["weight"] = out["reliability"] * penalty
    low = out["weight"] < threshold
    out["reasons"] = [
        ", ".join(name for name, hit in zip(("low weight", "side bias", "too fast", "inconsistent"), flags) if hit)
        for flags in zip(low, biased, fast, inconsistent)
    ]
    out["flagged"] = low | biased | fast | inconsistent
    out["rater_id"] = out.index
    return out[STAT_COLUMNS]


def _fit_attention(
    rater: np.ndarray, gap: np.ndarray, n_raters: int, prior_q: float, strength: float, iterations: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Per rater: share of answers agreeing with the scores, and the attention share q (EM).

    ``gap`` is s_chosen - s_other per decided answer. An attentive answer is
    likely Phi(gap / sqrt 2) on the Thurstone scale, a random one 1/2; q is
    the mixing weight, with ``strength`` pseudo-answers at ``prior_q``. Raters
    without decided answers get NaN.
    """
    p = ndtr(gap / np.sqrt(2))
    counts = np.bincount(rater, minlength=n_raters).astype(float)
    agreement = _ratio(np.bincount(rater, (gap > 0).astype(float), n_raters), counts)
    q = np.full(n_raters, prior_q)
    for _ in range(iterations):
        qk = q[rater]
        responsibility = qk * p / (qk * p + (1 - qk) * 0.5)
        q = (np.bincount(rater, responsibility, n_raters) + strength * prior_q) / (counts + strength)
    return agreement, np.where(counts > 0, np.clip(q, 0.0, 1.0), np.nan)


class RateLimiter:
    """At most ``max_per_minute`` accepted events per key in any sliding window (a minute by default).

    Protects the store from vote flooding by one rater (or one client).
    Thread-safe; ``clock`` is injectable so behaviour can be checked without
    sleeping. ``window_s`` widens the window, e.g. to an hour for new rater ids.
    """

    def __init__(self, max_per_minute: int = 30, clock: Callable[[], float] = time.monotonic,
                 window_s: float = 60.0) -> None:
        if max_per_minute < 1:
            raise ValueError("max_per_minute must be at least 1")
        self.max_per_minute = max_per_minute
        self.window_s = window_s
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        if len(self._events) > 10_000:  # forget idle keys so memory stays bounded
            self._events = {k: v for k, v in self._events.items() if v and now - v[-1] < self.window_s}
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window_s:
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
            return self.window_s - (now - events[0])
