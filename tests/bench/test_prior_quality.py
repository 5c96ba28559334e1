"""bench/prior_quality.py: synthetic priors reach the SRCC they are asked for, and a near-perfect prior
lets the model-assisted estimate rank clive_dev with far fewer judgements than random pairing."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from bench.prior_quality import main, noisy_prior


@pytest.mark.parametrize("target", [0.5, 0.7, 0.9])
def test_noisy_prior_reaches_the_requested_srcc(target):
    mos = np.random.default_rng(1).uniform(5, 95, 300)
    scores, reached = noisy_prior(mos, target)
    assert abs(reached - target) < 0.01 and reached == pytest.approx(spearmanr(scores, mos)[0])


@pytest.mark.slow
def test_a_near_perfect_prior_needs_far_fewer_judgements(tmp_path, shared_data):
    report = tmp_path / "prior.md"
    assert main(["--mos", str(shared_data / "clive_dev" / "clive_dev.csv"), "--srcc", "0.95", "--seeds", "1",
                 "--report", str(report)]) == 0
    row = next(line for line in report.read_text().splitlines() if line.startswith("| 0.9"))
    random_n, assisted_n = (float(cell) for cell in row.split("|")[2:4])
    assert assisted_n < random_n / 2
