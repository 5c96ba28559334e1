"""95% intervals only where the judgements support one.

Before, an image judged once or twice by raters of weight zero (e.g. who failed
their gold checks) was shown as 0.0 [0.0, 0.0]: every bootstrap resample gave
the prior's value, a zero-width interval that claims certainty.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from annotations.scaling import MIN_INTERVAL_JUDGEMENTS, scale


def judgement(left: str, right: str, choice: str, rater: str) -> dict:
    return {"left_image_id": left, "right_image_id": right, "choice": choice, "rater_id": rater}


def test_images_with_too_few_weighted_judgements_get_no_interval_and_the_rest_a_real_one():
    rng = np.random.default_rng(0)
    rows = [judgement(f"img{a}", f"img{b}", "left" if a < b else "right", f"good{k % 4}")
            for k, (a, b) in enumerate(rng.integers(0, 6, size=(120, 2))) if a != b]
    rows += [judgement("once", "img0", "left", "good0"),
             judgement("twice", "img1", "right", "good1"), judgement("twice", "img2", "left", "good2"),
             judgement("unweighted", "img3", "left", "bad"), judgement("unweighted", "img4", "left", "bad"),
             judgement("unweighted", "img5", "right", "bad"), judgement("unweighted", "img0", "left", "bad")]
    weights = {"good0": 1.0, "good1": 1.0, "good2": 0.8, "good3": 0.6, "bad": 0.0}
    table = scale(pd.DataFrame(rows), weights=weights, n_boot=100).set_index("image_id")
    thin = ["once", "twice", "unweighted"]
    assert table.loc["unweighted", "n_judgements"] == 4 >= MIN_INTERVAL_JUDGEMENTS  # counted, but weightless
    assert table.loc[thin, ["ci_low", "ci_high"]].isna().all().all()
    assert table.loc["unweighted", "score"] == 0.0  # the prior alone, not a measurement
    judged = table.drop(index=thin)
    assert (judged["ci_high"] - judged["ci_low"] > 0.1).all()
    assert ((judged["ci_low"] <= judged["score"]) & (judged["score"] <= judged["ci_high"])).all()
