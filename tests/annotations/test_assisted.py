"""Model-assisted labelling: the calibration, the two estimates, disagreement flags, the sampler's prior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

from annotations.assisted import COLUMNS, Z95, disagreements, estimate
from annotations.calibration import Calibration, uninformative
from annotations.sampler import ActiveSampler

EMPTY = pd.DataFrame(columns=["rater_id", "left_image_id", "right_image_id", "choice"])


def world(n: int, slope: float, residual: float, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Image ids, model scores on a 0-100 scale, and true scores s = slope * z + noise (centred)."""
    rng = np.random.default_rng(seed)
    model = rng.normal(55, 12, n)
    z = (model - model.mean()) / model.std()
    truth = slope * z + rng.normal(0, residual, n)
    return [f"im{k:03d}" for k in range(n)], model, truth - truth.mean()


def judge(ids: list[str], truth: np.ndarray, count: int, seed: int) -> pd.DataFrame:
    """Random pairs judged by Thurstone observers (unit perceptual noise)."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(ids), count)
    j = (i + rng.integers(1, len(ids), count)) % len(ids)
    left_wins = rng.random(count) < ndtr((truth[i] - truth[j]) / np.sqrt(2))
    return pd.DataFrame({"rater_id": [f"r{k % 7}" for k in range(count)],
                         "left_image_id": [ids[a] for a in i], "right_image_id": [ids[b] for b in j],
                         "choice": np.where(left_wins, "left", "right"), "pair_kind": "active"})


def by_image(table: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    return table.set_index("image_id").loc[ids]


def test_calibration_recovers_a_known_linear_map():
    ids, model, truth = world(150, slope=0.9, residual=0.4, seed=1)
    result = estimate(judge(ids, truth, 8000, seed=2), dict(zip(ids, model)), model_version="student-v9")
    calibration = result.calibration
    assert calibration.slope == pytest.approx(0.9, abs=0.1)
    assert calibration.residual_sd == pytest.approx(0.4, abs=0.1)
    assert calibration.explained == pytest.approx(0.9**2 / (0.9**2 + 0.4**2), abs=0.07)
    assert calibration.model_version == "student-v9" and calibration.n_judgements == 8000
    assert calibration.score_mean == pytest.approx(model.mean()) and calibration.score_sd == pytest.approx(model.std())
    # the fitted line maps model scores onto the scale
    assert np.corrcoef(calibration.line(model), truth)[0, 1] > 0.85
    assert list(result.table.columns) == COLUMNS
    assert result.export_frame()["prior_model_version"].eq("student-v9").all()


def test_with_no_judgements_the_posterior_equals_the_prior():
    ids, model, _ = world(40, slope=1.0, residual=0.5, seed=3)
    scores = dict(zip(ids, model))
    known = Calibration(slope=0.7, residual_sd=0.3, score_mean=float(model.mean()), score_sd=float(model.std()))
    result = estimate(EMPTY, scores, warm=known)
    table = by_image(result.table, ids)
    z = (model - model.mean()) / model.std()
    np.testing.assert_allclose(table["prior_mean"], 0.7 * z)
    np.testing.assert_allclose(table["assisted_score"], table["prior_mean"], atol=1e-9)
    np.testing.assert_allclose(table["assisted_ci_high"] - table["assisted_score"], Z95 * 0.3, rtol=1e-6)
    assert (table["n_judgements"] == 0).all() and not table["flagged"].any()
    assert (table["disagreement"] == 0).all()
    # without a fitted calibration the prior is uninformative: every image alike, as the human-only one
    fresh = by_image(estimate(EMPTY, scores).table, ids)
    np.testing.assert_allclose(fresh["assisted_score"], 0.0, atol=1e-12)
    np.testing.assert_allclose(fresh["assisted_ci_high"], fresh["human_ci_high"])


def test_with_many_judgements_both_estimates_converge():
    ids, model, truth = world(50, slope=0.8, residual=0.5, seed=4)
    scores = dict(zip(ids, model))
    few = by_image(estimate(judge(ids, truth, 100, seed=5), scores).table, ids)
    many = by_image(estimate(judge(ids, truth, 40000, seed=5), scores).table, ids)
    gap_few = np.abs(few["assisted_score"] - few["human_score"]).max()
    gap_many = np.abs(many["assisted_score"] - many["human_score"]).max()
    assert gap_many < 0.05 < gap_few
    for column in ("human_score", "assisted_score"):
        assert np.corrcoef(many[column], truth)[0, 1] > 0.98
    # with few judgements the model's prior is worth having
    assert np.corrcoef(few["assisted_score"], truth)[0, 1] > np.corrcoef(few["human_score"], truth)[0, 1] + 0.1


def test_intervals_cover_the_true_scale_at_about_the_nominal_rate():
    covered = {"human": [], "assisted": []}
    for seed in range(4):
        ids, model, truth = world(100, slope=0.8, residual=0.6, seed=10 + seed)
        table = by_image(estimate(judge(ids, truth, 1200, seed=20 + seed), dict(zip(ids, model))).table, ids)
        for name in covered:
            covered[name].extend((table[f"{name}_ci_low"] <= truth) & (truth <= table[f"{name}_ci_high"]))
    for name, hits in covered.items():
        assert 0.90 <= np.mean(hits) <= 0.99, (name, np.mean(hits))


def test_prior_off_gives_the_human_only_estimate_alone():
    ids, model, truth = world(30, slope=0.8, residual=0.5, seed=6)
    judgements = judge(ids, truth, 300, seed=7)
    on = estimate(judgements, dict(zip(ids, model)))
    off = estimate(judgements, dict(zip(ids, model)), use_prior=False)
    assert off.calibration is None and not off.use_prior and off.model_version is None
    assert off.table["assisted_score"].isna().all() and not off.table["flagged"].any()
    pd.testing.assert_series_equal(by_image(off.table, ids)["human_score"], by_image(on.table, ids)["human_score"])
    # no model scores at all: the same
    assert estimate(judgements).calibration is None


def test_images_without_a_model_score_get_the_spread_of_all_images():
    ids, model, truth = world(60, slope=0.9, residual=0.4, seed=8)
    scores = dict(zip(ids[:-1], model[:-1]))  # the last image was never scored
    result = estimate(judge(ids, truth, 2000, seed=9), scores)
    table = by_image(result.table, ids)
    assert np.isnan(table["model_score"].iloc[-1]) and table["prior_mean"].iloc[-1] == 0.0
    assert table["prior_sd"].iloc[-1] == pytest.approx(result.calibration.spread_sd)
    assert table["prior_sd"].iloc[0] == pytest.approx(result.calibration.residual_sd)


def test_disagreement_flags_the_images_the_model_gets_wrong():
    ids, model, truth = world(80, slope=0.9, residual=0.3, seed=11)
    wrong = [ids[int(np.argmax(truth))], ids[int(np.argmin(truth))]]
    lying = model.copy()
    lying[[ids.index(w) for w in wrong]] = lying[[ids.index(w) for w in wrong[::-1]]]  # swap best and worst
    judgements = judge(ids, truth, 4000, seed=12)
    flagged = disagreements(judgements, dict(zip(ids, lying)), model_version="m1")
    assert set(wrong) <= set(flagged["image_id"]) and len(flagged) <= 5
    assert set(flagged["image_id"].iloc[:2]) == set(wrong)  # the largest disagreements first
    best = flagged.set_index("image_id").loc[wrong[0]]
    assert best["disagreement"] > 0 and best["human_score"] > best["prior_mean"]  # people rate it higher
    # a useless prior is calibrated away: slope near 0
    shuffled = np.random.default_rng(0).permutation(model)
    assert abs(estimate(judgements, dict(zip(ids, shuffled))).calibration.slope) < 0.2


def test_warm_start_reaches_the_same_fit():
    ids, model, truth = world(60, slope=0.8, residual=0.5, seed=13)
    scores = dict(zip(ids, model))
    first = estimate(judge(ids, truth, 1500, seed=14), scores)
    more = judge(ids, truth, 1800, seed=14)
    cold, warm = estimate(more, scores), estimate(more, scores, warm=first)
    assert warm.calibration.iterations < cold.calibration.iterations
    assert warm.calibration.slope == pytest.approx(cold.calibration.slope, abs=2e-3)
    np.testing.assert_allclose(by_image(warm.table, ids)["assisted_score"], by_image(cold.table, ids)["assisted_score"],
                               atol=5e-3)


def test_sampler_uses_and_refits_the_model_prior():
    ids, model, truth = world(40, slope=1.0, residual=0.3, seed=15)
    scores = dict(zip(ids, model))
    sampler = ActiveSampler(ids, model_scores=scores, model_version="m2", gold_share=0, repeat_share=0, seed=0)
    assert sampler.calibration.slope == 0.0 and sampler.calibration.model_version == "m2"
    plain = ActiveSampler(ids, gold_share=0, repeat_share=0, seed=0)
    assert plain.calibration is None
    judgements = judge(ids, truth, 400, seed=16)
    for _ in range(30):  # one EM step per refit
        sampler.update(judgements)
    plain.update(judgements)
    assert sampler.calibration.slope > 0.6 and sampler.calibration.n_judgements == 400
    # the belief that picks pairs is the model-assisted one: closer to the truth than the plain one
    rho = lambda s: np.corrcoef(s.posterior.mean, truth)[0, 1]  # noqa: E731
    assert rho(sampler) > rho(plain)
    assert sampler.next_pair("r").kind == "active"


def test_uninformative_start_standardises_the_scores():
    calibration = uninformative({"a": 10.0, "b": 30.0, "c": float("nan")}, "v")
    assert calibration.slope == 0.0 and calibration.score_mean == 20.0 and calibration.score_sd == 10.0
    mean, sd = calibration.prior([10.0, np.nan])
    assert list(mean) == [0.0, 0.0] and list(sd) == [1.0, 1.0]
    assert uninformative([5.0]).score_sd == 1.0  # a single score cannot be standardised


def test_export_prior_comes_from_the_latest_model_version_only():
    from annotations.export import prior_scores

    times = pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"], utc=True)
    judgements = pd.DataFrame({
        "timestamp": times, "left_image_id": ["a", "a", "c"], "right_image_id": ["b", "b", "a"],
        "model_score_left": [10.0, 70.0, 55.0], "model_score_right": [20.0, 30.0, 71.0],
        "model_version": ["old", "new", "new"],
    })
    assert prior_scores(judgements) == ({"a": 71.0, "b": 30.0, "c": 55.0}, "new")
    assert prior_scores(judgements.assign(model_version=None)) == ({}, None)


def test_the_slope_is_shrunk_by_its_uncertainty_while_judgements_are_few():
    ids, model, truth = world(150, slope=0.8, residual=0.6, seed=17)
    useless = dict(zip(ids, np.random.default_rng(1).permutation(model)))
    few = estimate(judge(ids, truth, 300, seed=18), useless).calibration
    factor = max(0.0, 1 - few.slope_se**2 / few.fitted_slope**2)
    assert few.slope == pytest.approx(few.fitted_slope * factor) and factor < 0.5  # noise mostly shrunk away
    many = estimate(judge(ids, truth, 6000, seed=18), dict(zip(ids, model))).calibration
    assert many.slope == pytest.approx(many.fitted_slope, rel=0.02) and many.slope_se < 0.1
    assert many.to_dict()["fitted_slope"] == many.fitted_slope
