"""The gate's arithmetic: split by image, agreement, bootstrap margin, SRCC tolerance."""
import numpy as np
import pandas as pd

from cvrkd.train.redistill import RedistillConfig, agreement_vector, decide, split_images


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


def test_gate_needs_a_gain_above_noise_and_no_synthetic_drop():
    config = RedistillConfig(bootstrap=500)
    rng = np.random.default_rng(0)
    base = (rng.random(400) < 0.70).astype(float)
    better = np.maximum(base, (rng.random(400) < 0.3).astype(float))
    assert decide(base, better, 0.9, 0.9, config).promote
    same = decide(base, base.copy(), 0.9, 0.9, config)
    assert not same.promote and "noise" in same.reason
    forgot = decide(base, better, 0.9, 0.85, config)
    assert not forgot.promote and "synthetic SRCC" in forgot.reason
    assert not decide(base[:5], better[:5], 0.9, 0.9, config).promote
