"""Scaling judgements to scores: agreement with choix, ties, intervals, weights."""

from __future__ import annotations

import choix
import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr
from scipy.stats import spearmanr

from annotations.pairs import comparisons
from annotations.scaling import fit, scale


def simulate(true: np.ndarray, n: int, seed: int, model: str = "bt", nu: float = 0.0, rater: str = "r") -> pd.DataFrame:
    """Judgements drawn from a Davidson (BT with ties) or Thurstone model with known scores."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        i, j = rng.choice(len(true), 2, replace=False)
        d = true[i] - true[j]
        if model == "bt":
            w_i, w_j, tie = np.exp(d / 2), np.exp(-d / 2), nu
            p = np.array([w_i, w_j, tie]) / (w_i + w_j + tie)
        else:
            p_i = ndtr(d / np.sqrt(2))
            p = np.array([p_i, 1 - p_i, 0.0])
        choice = ["left", "right", "tie"][rng.choice(3, p=p)]
        rows.append({"rater_id": rater, "left_image_id": f"im{i:02d}", "right_image_id": f"im{j:02d}", "choice": choice})
    return pd.DataFrame(rows)


TRUE = np.random.default_rng(42).normal(0, 1, 20)
ORDERED_IDS = [f"im{k:02d}" for k in range(len(TRUE))]


def by_id(result: pd.DataFrame) -> np.ndarray:
    return result.set_index("image_id").loc[ORDERED_IDS, "score"].to_numpy()


def test_bradley_terry_without_ties_matches_choix():
    df = simulate(TRUE, 1500, seed=1)
    c = comparisons(df, ids=ORDERED_IDS)
    ours = fit(c, "bradley_terry", prior_var=10.0)
    theirs = choix.opt_pairwise(len(ORDERED_IDS), list(zip(c.winner, c.loser)), alpha=1 / (2 * 10.0))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(by_id(scale(df, n_boot=0)), theirs, atol=1e-5)


def test_thurstone_matches_choix_expectation_propagation():
    df = simulate(TRUE, 3000, seed=2, model="thurstone")
    c = comparisons(df, ids=ORDERED_IDS)
    ours = by_id(scale(df, "thurstone", n_boot=0, prior_var=1e6))
    # choix's probit model is P(i beats j) = Phi(theta_i - theta_j): our scores are sqrt(2) times larger.
    mean, _ = choix.ep_pairwise(len(ORDERED_IDS), list(zip(c.winner, c.loser)), alpha=1e-4, model="probit")
    np.testing.assert_allclose(ours / np.sqrt(2), mean - mean.mean(), atol=0.03)
    assert spearmanr(ours, TRUE)[0] > 0.95


def test_davidson_ties_are_fitted_not_ignored():
    df = simulate(TRUE, 4000, seed=3, nu=0.8)
    assert 0.1 < (df["choice"] == "tie").mean() < 0.4
    x = fit(comparisons(df, ids=ORDERED_IDS), "bradley_terry", prior_var=100.0)
    assert np.exp(x[-1]) == pytest.approx(0.8, rel=0.15)
    assert np.corrcoef(x[:-1], TRUE)[0, 1] > 0.97
    thurstone = scale(df, "thurstone", n_boot=0)
    assert spearmanr(by_id(thurstone), TRUE)[0] > 0.95


def test_bootstrap_intervals_cover_and_shrink():
    small = scale(simulate(TRUE, 400, seed=4), n_boot=60, seed=0)
    large = scale(simulate(TRUE, 3000, seed=4), n_boot=60, seed=0)
    assert list(small.columns) == ["image_id", "score", "ci_low", "ci_high", "n_judgements"]
    assert (small["ci_low"] <= small["score"]).all() and (small["score"] <= small["ci_high"]).all()
    assert (large["ci_high"] - large["ci_low"]).mean() < 0.6 * (small["ci_high"] - small["ci_low"]).mean()
    truth = pd.Series(TRUE - TRUE.mean(), index=ORDERED_IDS)
    covered = ((large["ci_low"] <= large["image_id"].map(truth)) & (large["image_id"].map(truth) <= large["ci_high"])).mean()
    assert covered >= 0.8
    assert large["n_judgements"].sum() == 2 * 3000
    assert large["score"].is_monotonic_decreasing  # best first


def test_same_seed_same_intervals():
    df = simulate(TRUE, 300, seed=5)
    pd.testing.assert_frame_equal(scale(df, n_boot=20, seed=3), scale(df, n_boot=20, seed=3))


def test_rater_weights_silence_a_contrarian():
    honest = simulate(TRUE, 1500, seed=6, rater="honest")
    liar = simulate(TRUE, 1500, seed=7, rater="liar")
    liar["choice"] = liar["choice"].map({"left": "right", "right": "left", "tie": "tie"})
    both = pd.concat([honest, liar], ignore_index=True)
    unweighted = by_id(scale(both, n_boot=0))
    weighted = by_id(scale(both, n_boot=0, weights={"liar": 0.0}))
    np.testing.assert_allclose(weighted, by_id(scale(honest, n_boot=0)), atol=1e-6)
    assert spearmanr(weighted, TRUE)[0] > spearmanr(unweighted, TRUE)[0] + 0.3
    per_row = by_id(scale(both, n_boot=0, weights=np.r_[np.ones(1500), np.zeros(1500)]))
    np.testing.assert_allclose(per_row, weighted, atol=1e-8)


def test_bad_inputs():
    df = simulate(TRUE, 50, seed=8)
    with pytest.raises(ValueError, match="method"):
        scale(df, method="elo")
    with pytest.raises(ValueError, match="non-negative"):
        scale(df, weights={"r": -1.0})
    with pytest.raises(ValueError, match="choice"):
        scale(df.assign(choice="up"))
    assert scale(df.iloc[:0]).empty
