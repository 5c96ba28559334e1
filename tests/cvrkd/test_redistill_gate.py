"""The gate's arithmetic: split by image, agreement, likelihood, bootstrap margin, SRCC tolerance."""
import numpy as np
import pandas as pd
import pytest

from cvrkd.train.redistill import (HeldOut, RedistillConfig, agreement_vector, answer_log_likelihood, decide,
                                   held_out_answers, split_images)


def _held(base: np.ndarray, candidate: np.ndarray) -> HeldOut:
    """Held-out answers where each model gives the answer it agrees with probability 0.7."""
    return HeldOut((base, candidate), tuple(np.log(np.where(v > 0, 0.7, 0.3)) for v in (base, candidate)))


def test_split_is_stable_and_close_to_the_fraction():
    ids = [f"img{i}" for i in range(2000)]
    held = split_images(ids, 0.25, seed=0)
    assert held == split_images(ids, 0.25, seed=0)
    assert 0.22 < len(held) / len(ids) < 0.28


def test_agreement_counts_decisive_judgements_only():
    scores = {"a": 80.0, "b": 20.0, "c": 50.0}
    judgements = pd.DataFrame({
        "left_image_id": ["a", "b", "c", "a"], "right_image_id": ["b", "c", "a", "c"],
        "choice": ["left", "left", "right", "tie"]})
    assert agreement_vector(scores, judgements).tolist() == [1.0, 0.0, 1.0]


def test_agreement_refuses_a_judged_image_without_a_score():
    """A missing score once read as a vote for the right-hand image: a candidate scored on the
    held-out photos only lost about half of every pair with a trained partner."""
    judgements = pd.DataFrame({"left_image_id": ["a"], "right_image_id": ["b"], "choice": ["left"]})
    with pytest.raises(ValueError, match="no score"):
        agreement_vector({"a": 80.0}, judgements)


def test_gate_needs_a_gain_above_noise_and_no_synthetic_drop():
    config = RedistillConfig(bootstrap=500)
    rng = np.random.default_rng(0)
    base = (rng.random(400) < 0.70).astype(float)
    better = np.maximum(base, (rng.random(400) < 0.3).astype(float))
    assert decide(_held(base, better), 0.9, 0.9, config).promote
    same = decide(_held(base, base.copy()), 0.9, 0.9, config)
    assert not same.promote and "noise" in same.reason
    forgot = decide(_held(base, better), 0.9, 0.85, config)
    assert not forgot.promote and "synthetic SRCC" in forgot.reason
    assert not decide(_held(base[:5], better[:5]), 0.9, 0.9, config).promote


def _thurstone_crowd(quality: dict[str, float], count: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = list(quality)
    left, right = (rng.choice(ids, count), rng.choice(ids, count))
    keep = left != right
    left, right = left[keep], right[keep]
    seen = np.array([quality[a] - quality[b] for a, b in zip(left, right)]) + rng.normal(0, 20, keep.sum())
    return pd.DataFrame({"left_image_id": left, "right_image_id": right,
                         "choice": np.where(seen > 0, "left", "right")})


def test_a_models_own_score_scale_neither_helps_nor_hurts_its_likelihood():
    quality = {f"p{i}": float(q) for i, q in enumerate(np.linspace(10, 90, 40))}
    judgements = _thurstone_crowd(quality, 800, 0)
    stretched = {k: 7.0 * v - 300.0 for k, v in quality.items()}
    assert answer_log_likelihood(stretched, judgements) == pytest.approx(answer_log_likelihood(quality, judgements),
                                                                         abs=1e-6)
    with pytest.raises(ValueError, match="no score"):
        answer_log_likelihood({"p0": 1.0}, judgements)


def test_the_likelihood_sees_a_better_model_the_agreement_cannot():
    """Two models that order every pair the same way; the candidate's score gaps follow the people's
    certainty (the true quality), the served model's are the same order bent (a cube)."""
    config = RedistillConfig(bootstrap=1000)
    rng = np.random.default_rng(1)
    quality = {f"p{i}": float(q) for i, q in enumerate(rng.uniform(0, 100, 150))}
    judgements = _thurstone_crowd(quality, 2000, 1)
    candidate = {k: v + rng.normal(0, 8) for k, v in quality.items()}
    served = {k: ((v - 50.0) / 50.0) ** 3 for k, v in candidate.items()}
    held = held_out_answers(served, candidate, judgements)
    decision = decide(held, 0.9, 0.9, config)
    assert decision.agreement_gain_ci == (0.0, 0.0)  # the 0/1 agreement cannot tell them apart
    assert decision.promote and decision.likelihood_gain_ci[0] > 0, decision.reason
    assert not decide(held_out_answers(candidate, served, judgements), 0.9, 0.9, config).promote


def test_gate_distrusts_people_who_agree_with_the_served_model_less_often_than_chance():
    """A reversed crowd taught a refitted readout its answers while the synthetic and known-order
    checks both held (bench/redistill.py, split 0): the served model, validated against MOS,
    agreed with that crowd on 32% of held-out pairs."""
    config = RedistillConfig(bootstrap=500)
    rng = np.random.default_rng(0)
    base = (rng.random(2000) < 0.32).astype(float)
    better = np.maximum(base, (rng.random(2000) < 0.08).astype(float))
    reversed_crowd = decide(_held(base, better), 0.76, 0.80, config, known_order=(1.0, 1.0, 24))
    assert not reversed_crowd.promote and "less often than chance" in reversed_crowd.reason
    honest = (rng.random(2000) < 0.68).astype(float)
    helped = np.maximum(honest, (rng.random(2000) < 0.08).astype(float))
    assert decide(_held(honest, helped), 0.76, 0.80, config).promote
    # unless the served model is the reversed one: it puts photos below their own heavy distortions
    fixed = decide(_held(base, better), 0.76, 0.80, config, known_order=(0.29, 1.0, 24))
    assert fixed.promote, fixed.reason
    near_chance = (rng.random(60) < 0.45).astype(float)  # too few pairs to call it reversed
    assert "less often than chance" not in decide(_held(near_chance, near_chance), 0.76, 0.76, config).reason


def test_gate_refuses_a_candidate_that_puts_photos_below_their_own_distortions():
    """A crowd answering the reverse of the question agrees with its own held-out judgements, so the
    agreement check alone promotes a candidate trained on it; known-order pairs need no people."""
    config = RedistillConfig(bootstrap=500)
    rng = np.random.default_rng(0)
    base = (rng.random(400) < 0.70).astype(float)
    better = np.maximum(base, (rng.random(400) < 0.3).astype(float))
    kept = decide(_held(base, better), 0.9, 0.9, config, known_order=(1.0, 23 / 24, 24))  # one pair of 24: tolerated
    assert kept.promote and (kept.base_known_order, kept.candidate_known_order, kept.n_known_order) == (1.0, 23 / 24, 24)
    reversed_ = decide(_held(base, better), 0.9, 0.9, config, known_order=(1.0, 0.75, 24))
    assert not reversed_.promote and "below their own strongest distortions" in reversed_.reason
    assert "75% of 24" in reversed_.reason
    assert decide(_held(base, better), 0.9, 0.9, config, known_order=(0.5, 0.75, 24)).promote  # a gain is welcome
    assert decide(_held(base, better), 0.9, 0.9, config).promote  # no known-order pairs (a campaign): no check


def test_known_order_share_counts_pairs_in_the_right_order():
    from cvrkd.train.redistill import known_order_kept

    scores = {"photo": 70.0, "blur": 20.0, "jpeg": 75.0}
    assert known_order_kept(scores, [("photo", "blur"), ("photo", "jpeg")]) == 0.5
    assert np.isnan(known_order_kept(scores, []))


def test_rounds_find_where_model_and_crowd_disagree_and_weight_those_judgements_up(tmp_path):
    """Re-distillation consumes ``annotations.assisted.disagreements``: images the crowd ranks
    far from the base model's prior are found in the training judgements, and the judgements
    that touch them weigh ``disagreement_weight`` times in the pair loss."""
    import torch

    from cvrkd.gallery import create_gallery
    from cvrkd.imageio import load_image
    from cvrkd.model import CVRKDNet, ModelConfig
    from cvrkd.train.redistill import (RedistillConfig, disagreement_images, own_scores,
                                       pair_emphasis)
    from tests.helpers.images import photo

    torch.manual_seed(3)
    network = CVRKDNet(ModelConfig(num_patches=1, dim=32, lq_depth=1, diff_depth=1, distill_layers=1)).eval()
    gallery = create_gallery(tmp_path / "gallery", "small", [("ref", load_image(photo(96, 80)))])
    generator = np.random.default_rng(0)
    ids = [f"img{k:02d}" for k in range(40)]
    views = {i: generator.integers(0, 256, (64, 72, 3), dtype=np.uint8) for i in ids}
    model = own_scores(network, views, gallery)
    order = sorted(ids, key=model.get)
    truth = {i: rank / 4.0 for rank, i in enumerate(order)}  # people agree with the model ...
    worst, best = order[0], order[-1]
    truth[worst], truth[best] = truth[best], truth[worst]  # ... except on its best and worst image
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(3000):
        left, right = rng.choice(ids, 2, replace=False)
        wins = truth[left] + rng.normal() > truth[right] + rng.normal()
        rows.append({"left_image_id": left, "right_image_id": right, "choice": "left" if wins else "right",
                     "rater_id": f"r{rng.integers(20)}"})
    judgements = pd.DataFrame(rows)
    flagged = disagreement_images(model, "v1", judgements, None)
    assert set(flagged[:2]) == {worst, best} and len(flagged) <= 4
    emphasis = pair_emphasis(judgements, set(flagged), RedistillConfig().disagreement_weight)
    touches = judgements["left_image_id"].isin(flagged) | judgements["right_image_id"].isin(flagged)
    assert (emphasis[touches.to_numpy()] == 2.0).all() and (emphasis[~touches.to_numpy()] == 1.0).all()
    assert (pair_emphasis(judgements, set(flagged), 1.0) == 1.0).all()


def test_every_failing_check_is_named_in_the_reason():
    """A flipped crowd fails the synthetic check and the known-order check together; the record
    names both, so the check that needs no people is visible even when another one fails first."""
    config = RedistillConfig(bootstrap=500)
    rng = np.random.default_rng(0)
    base = (rng.random(400) < 0.70).astype(float)
    better = np.maximum(base, (rng.random(400) < 0.3).astype(float))
    both = decide(_held(base, better), 0.8, 0.44, config, known_order=(1.0, 0.54, 24))
    assert not both.promote
    assert "synthetic SRCC" in both.reason and "below their own strongest distortions" in both.reason
