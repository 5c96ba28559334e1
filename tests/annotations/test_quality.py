"""Rater statistics, reliability weights, flags and the rate limiter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annotations.quality import STAT_COLUMNS, RateLimiter, rater_stats

GOLD = [(f"good-{k}", f"bad-{k}") for k in range(5)]


def answers(
    rater: str, n_gold: int, correct_share: float, seed: int, left_share: float = 0.5, ms: float = 2500.0, n_plain: int = 20
):
    """Gold judgements with a given accuracy, plus ordinary and repeated pairs."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_gold):
        good, bad = GOLD[k % len(GOLD)]
        left, right = (good, bad) if rng.random() < 0.5 else (bad, good)
        pick_good = rng.random() < correct_share
        choice = "left" if (left == good) == pick_good else "right"
        rows.append((rater, left, right, choice, ms))
    for k in range(n_plain):
        a, b = f"x{k}", f"y{k}"
        rows.append((rater, a, b, "left" if rng.random() < left_share else "right", ms))
    return rows


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["rater_id", "left_image_id", "right_image_id", "choice", "response_ms"])


def test_careful_rater_trusted_random_rater_flagged():
    df = frame(answers("careful", 20, 1.0, seed=1) + answers("random", 20, 0.5, seed=2))
    stats = rater_stats(df, GOLD)
    assert list(stats.columns) == STAT_COLUMNS
    careful, spammer = stats.loc["careful"], stats.loc["random"]
    assert careful["gold_accuracy"] == 1.0 and careful["n_gold"] == 20 and careful["n_judgements"] == 40
    assert careful["weight"] > 0.85 and not careful["flagged"]
    assert spammer["weight"] < 0.3 and spammer["flagged"] and "low weight" in spammer["reasons"]


def test_new_rater_is_neither_trusted_fully_nor_written_off():
    stats = rater_stats(frame(answers("new", 0, 1.0, seed=3)), GOLD)
    assert np.isnan(stats.loc["new", "gold_accuracy"])
    assert 0.5 <= stats.loc["new", "weight"] < 1.0


def test_side_bias_and_speed_halve_the_weight():
    biased = answers("lefty", 20, 1.0, seed=4, left_share=1.0, n_plain=60)
    fast = answers("hasty", 20, 1.0, seed=5, ms=300)
    stats = rater_stats(frame(biased + fast), GOLD)
    assert stats.loc["lefty", "left_share"] > 0.8 and "side bias" in stats.loc["lefty", "reasons"]
    assert stats.loc["hasty", "median_response_ms"] == 300 and "too fast" in stats.loc["hasty", "reasons"]
    for rater in ("lefty", "hasty"):
        assert stats.loc[rater, "weight"] == pytest.approx(stats.loc[rater, "reliability"] / 2)
        assert stats.loc[rater, "flagged"]


def test_repeat_consistency_compares_the_preferred_image_not_the_side():
    rows = []
    for k in range(12):
        a, b = f"p{k}", f"q{k}"
        rows.append(("steady", a, b, "left", 2000))
        rows.append(("steady", b, a, "right", 2000))  # same image preferred, sides swapped
        rows.append(("clicker", a, b, "left", 2000))
        rows.append(("clicker", b, a, "left", 2000))  # always the left one: inconsistent
    stats = rater_stats(frame(rows), GOLD)
    assert stats.loc["steady", "n_repeats"] == 12 and stats.loc["steady", "repeat_consistency"] == 1.0
    assert stats.loc["clicker", "repeat_consistency"] == 0.0
    assert "inconsistent" in stats.loc["clicker", "reasons"]


def test_ties_on_gold_count_as_misses_and_empty_input():
    rows = [("r", "good-0", "bad-0", "tie", 2000)] * 4
    assert rater_stats(frame(rows), GOLD).loc["r", "gold_accuracy"] == 0.0
    assert rater_stats(frame([]), GOLD).empty


def test_rate_limiter_sliding_minute():
    now = [1000.0]
    limiter = RateLimiter(max_per_minute=3, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # limits are per rater
    assert limiter.retry_after("a") == pytest.approx(60.0)
    now[0] += 30
    assert not limiter.allow("a") and limiter.retry_after("a") == pytest.approx(30.0)
    now[0] += 30.01
    assert limiter.allow("a") and limiter.retry_after("b") == 0.0
    with pytest.raises(ValueError):
        RateLimiter(max_per_minute=0)


def test_scores_let_every_answer_count_towards_reliability():
    # no gold at all: only agreement with the current scores can tell the raters apart
    rng = np.random.default_rng(9)
    scores = {f"i{k}": k / 10 for k in range(40)}
    rows = []
    for _ in range(150):
        a, b = rng.choice(40, 2, replace=False)
        better = f"i{max(a, b)}"
        left, right = f"i{a}", f"i{b}"
        rows.append(("attentive", left, right, "left" if left == better else "right", 2000))
        rows.append(("coin", left, right, "left" if rng.random() < 0.5 else "right", 2000))
    stats = rater_stats(frame(rows), [], scores=scores)
    assert stats.loc["attentive", "agreement"] == 1.0 and stats.loc["attentive", "reliability"] > 0.9
    assert stats.loc["coin", "agreement"] == pytest.approx(0.5, abs=0.1) and stats.loc["coin", "reliability"] < 0.3
    without = rater_stats(frame(rows), [])
    # no gold, no scores: reliability stays at the prior for both (only repeats can still expose the coin)
    assert without.loc["coin", "reliability"] == without.loc["attentive", "reliability"] == pytest.approx(0.8)
