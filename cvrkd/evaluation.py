"""IQA correlation metrics with bootstrap confidence intervals.

SRCC and KRCC are rank correlations of predictions with human scores. PLCC is
computed after the standard 4-parameter logistic mapping of predictions onto
the human scale (VQEG), so it measures fit, not just monotonicity.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import expit
from scipy.stats import kendalltau, pearsonr, spearmanr


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    return (b1 - b2) * expit((x - b3) / np.abs(b4)) + b2


def logistic_fit_params(predicted: np.ndarray, human: np.ndarray) -> tuple[float, ...] | None:
    """(b1, b2, b3, b4) of the 4-parameter logistic from predictions to human scores, or None."""
    predicted, human = np.asarray(predicted, float), np.asarray(human, float)
    start = [human.max(), human.min(), float(np.median(predicted)), float(np.std(predicted)) or 1.0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            params, _ = curve_fit(logistic4, predicted, human, p0=start, maxfev=20000)
        return tuple(float(p) for p in params)
    except (RuntimeError, ValueError):
        return None


def range_logistic_params(predicted: np.ndarray, human: np.ndarray) -> tuple[float, ...]:
    """(100, 0, b3, b4): a logistic onto the whole 0–100 scale fitted to human scores.

    Why not the free 4-parameter fit: its asymptotes land at the average MOS of the extremes
    (about −3 and 77 on clive_dev), so the best photos topped out there and every bad one was
    clamped to 0. With the asymptotes at 0 and 100 the map is strictly increasing inside the
    scale: distinct raw scores stay distinct, and nothing is clamped."""
    predicted, human = np.asarray(predicted, float), np.asarray(human, float)

    def curve(x: np.ndarray, b3: float, b4: float) -> np.ndarray:
        return logistic4(x, 100.0, 0.0, b3, b4)

    start = [float(np.median(predicted)), float(np.std(predicted)) or 1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        (b3, b4), _ = curve_fit(curve, predicted, human, p0=start, maxfev=20000)
    return (100.0, 0.0, float(b3), float(abs(b4)))


def logistic_fit(predicted: np.ndarray, human: np.ndarray) -> np.ndarray:
    """Predictions mapped by the fitted 4-parameter logistic (identity-scaled if the fit fails)."""
    params = logistic_fit_params(predicted, human)
    return predicted if params is None else logistic4(np.asarray(predicted, float), *params)


def srcc(predicted: np.ndarray, human: np.ndarray) -> float:
    return float(spearmanr(predicted, human).statistic)


def krcc(predicted: np.ndarray, human: np.ndarray) -> float:
    return float(kendalltau(predicted, human).statistic)


def plcc(predicted: np.ndarray, human: np.ndarray) -> float:
    return float(pearsonr(logistic_fit(predicted, human), human).statistic)


METRICS = {"srcc": srcc, "plcc": plcc, "krcc": krcc}


@dataclass
class Correlations:
    """Point estimates and bootstrap 95% intervals, keyed by metric name."""

    n: int
    values: dict[str, float]
    ci: dict[str, tuple[float, float]]

    def row(self, name: str) -> str:
        cells = [f"{self.values[m]:.3f} [{self.ci[m][0]:.3f}, {self.ci[m][1]:.3f}]" for m in METRICS]
        return f"| {name} | " + " | ".join(cells) + f" | {self.n} |"

    def to_dict(self) -> dict:
        return {"n": self.n, **self.values, **{f"{m}_ci": list(v) for m, v in self.ci.items()}}


TABLE_HEADER = "| model | SRCC [95% CI] | PLCC [95% CI] | KRCC [95% CI] | n |\n|---|---|---|---|---|"


def correlations(predicted: np.ndarray, human: np.ndarray, n_boot: int = 1000,
                 seed: int = 0) -> Correlations:
    """SRCC/PLCC/KRCC with percentile bootstrap CIs over images."""
    predicted, human = np.asarray(predicted, float), np.asarray(human, float)
    values = {name: fn(predicted, human) for name, fn in METRICS.items()}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in METRICS}
    for _ in range(n_boot):
        pick = rng.integers(0, len(human), len(human))
        if np.ptp(predicted[pick]) == 0 or np.ptp(human[pick]) == 0:
            continue
        for name, fn in METRICS.items():
            samples[name].append(fn(predicted[pick], human[pick]))
    ci = {name: (float(np.percentile(s, 2.5)), float(np.percentile(s, 97.5))) if s else (np.nan, np.nan)
          for name, s in samples.items()}
    return Correlations(len(human), values, ci)


def read_scores_csv(csv_path: Path, image_root: Path | None = None,
                    image_column: str = "image", score_column: str = "mos") -> list[tuple[Path, float]]:
    """(image path, human score) pairs from a CSV such as clive_dev.csv."""
    root = Path(image_root) if image_root else Path(csv_path).parent
    with open(csv_path, newline="") as handle:
        return [(root / row[image_column], float(row[score_column])) for row in csv.DictReader(handle)]
