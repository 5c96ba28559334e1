import numpy as np
import pytest
from scipy.stats import kendalltau, pearsonr, spearmanr

from cvrkd.evaluation import correlations, logistic_fit, read_scores_csv


def test_correlations_match_scipy_and_cis_bracket_the_estimate():
    rng = np.random.default_rng(0)
    human = rng.uniform(0, 100, 200)
    predicted = human + rng.normal(0, 15, 200)
    result = correlations(predicted, human, n_boot=300)
    assert result.values["srcc"] == pytest.approx(spearmanr(predicted, human).statistic)
    assert result.values["krcc"] == pytest.approx(kendalltau(predicted, human).statistic)
    for name in ("srcc", "plcc", "krcc"):
        low, high = result.ci[name]
        assert low < result.values[name] < high and high - low < 0.2


def test_logistic_fit_linearises_a_monotone_nonlinear_relation():
    x = np.linspace(-4, 4, 100)
    human = 100 / (1 + np.exp(-2 * x))
    assert pearsonr(logistic_fit(x, human), human).statistic > 0.999 > pearsonr(x, human).statistic


def test_read_scores_csv(tmp_path):
    (tmp_path / "s.csv").write_text("image,mos,mos_std\nimages/a.png,40.5,3\nimages/b.jpg,70,2\n")
    rows = read_scores_csv(tmp_path / "s.csv")
    assert rows == [(tmp_path / "images/a.png", 40.5), (tmp_path / "images/b.jpg", 70.0)]
