"""Quality pseudo-labels for synthetic distortions from an ensemble of classic FR metrics.

Human scores for our synthetic images cannot be fetched, so we label each
(reference, distorted) pair with three full-reference metrics that need no downloaded
weights and that we can check against their official implementations (see
``docs/distortions.md``): VSI, GMSD and MS-SSIM, as implemented by ``piq``. Each raw
value is mapped onto the project's 0-100 scale (higher = better, 100 = pristine) by a
fixed, monotone piecewise-linear curve, and the label is the mean of the three mapped
scores. The curves are constants, never refit per batch, so a label means the same
thing in every run.

Every metric follows its official definition at the input resolution: VSI
average-pools by ``round(min(H, W) / 256)`` and GMSD by 2 internally, as their MATLAB
code does, and MS-SSIM works at full resolution; GMSD and MS-SSIM read MATLAB's
``rgb2gray`` (rounded to 8 bits), which is what makes GMSD match the official values.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import piq
import torch

METRICS: tuple[str, ...] = ("vsi", "gmsd", "ms_ssim")

# Mapping of raw metric values onto 0-100: (raw value, score) knots, linear in between,
# clamped outside. Pristine values map to 100. The inner knots are the 20/40/60/80 %
# quantiles (best to worst) and the 0 knot the 99 % quantile of each metric over
# 8 Kodak photos x 25 distortion types x 5 levels; `bench/pseudolabel_speed.py --knots`
# recomputes them. Each metric on its own therefore spreads KADID-like data evenly.
KNOTS: dict[str, tuple[tuple[float, float], ...]] = {
    "vsi": ((1.0, 100.0), (0.9942, 80.0), (0.9859, 60.0), (0.9715, 40.0), (0.9489, 20.0),
            (0.8671, 0.0)),
    "gmsd": ((0.0, 100.0), (0.0186, 80.0), (0.0512, 60.0), (0.0903, 40.0), (0.1493, 20.0),
             (0.2750, 0.0)),
    "ms_ssim": ((1.0, 100.0), (0.9896, 80.0), (0.9711, 60.0), (0.9372, 40.0), (0.8676, 20.0),
                (0.6116, 0.0)),
}

_MIN_SIDE = 161  # MS-SSIM's five scales with an 11-px window need more than 160 px
_MATLAB_GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


def _check_pair(reference: np.ndarray, distorted: np.ndarray) -> None:
    for name, im in (("reference", reference), ("distorted", distorted)):
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"{name} must be an HxWx3 uint8 RGB image, got {im.dtype} {im.shape}")
    if reference.shape != distorted.shape:
        raise ValueError(f"images differ in shape: {reference.shape} vs {distorted.shape}")
    if min(reference.shape[:2]) < _MIN_SIDE:
        raise ValueError(f"images must be at least {_MIN_SIDE} px on each side, got {reference.shape}")


def _rgb_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def _gray_tensor(image: np.ndarray) -> torch.Tensor:
    """MATLAB ``rgb2gray`` on uint8: weighted sum rounded half away from zero."""
    gray = np.floor(image @ _MATLAB_GRAY + 0.5).astype(np.float32) / 255.0
    return torch.from_numpy(gray)[None, None]


def metric_score(name: str, value: float) -> float:
    """Map one raw metric value onto 0-100 with the fixed curve in ``KNOTS``."""
    raw, score = np.array(KNOTS[name]).T
    order = np.argsort(raw)
    return float(np.interp(value, raw[order], score[order]))


def label_from_metrics(raw: dict[str, float]) -> float:
    """The pseudo-label for raw values from ``fr_metrics``: the mean of the mapped scores
    of the ensemble metrics present in ``raw``."""
    return float(np.mean([metric_score(name, raw[name]) for name in METRICS if name in raw]))


FAST_METRICS: tuple[str, ...] = METRICS
"""Kept for callers that ask for the fast set explicitly: FSIMc was dropped from the
ensemble for speed, so the ensemble is now the fast set (see docs/distortions.md)."""


def fr_metrics(reference: np.ndarray, distorted: np.ndarray,
               metrics: tuple[str, ...] = METRICS) -> dict[str, float]:
    """Raw VSI, GMSD (lower = better) and MS-SSIM of ``distorted`` against ``reference``,
    or the subset named in ``metrics``."""
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")
    reference, distorted = np.asarray(reference), np.asarray(distorted)
    _check_pair(reference, distorted)
    r, d = _rgb_tensor(reference), _rgb_tensor(distorted)
    rg, dg = _gray_tensor(reference), _gray_tensor(distorted)
    compute = {
        "vsi": lambda: piq.vsi(d, r),
        "gmsd": lambda: piq.gmsd(dg, rg),
        "ms_ssim": lambda: piq.multi_scale_ssim(dg, rg),
    }
    with torch.inference_mode():
        return {name: float(compute[name]()) for name in metrics}


def pseudo_label(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Quality of ``distorted`` on the project scale: 0-100, higher = better, 100 = pristine."""
    return label_from_metrics(fr_metrics(reference, distorted))


def pseudo_labels(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """``pseudo_label`` for many (reference, distorted) pairs.

    One pair at a time: stacking pairs into one piq call was slower per pair on CPU
    (more memory traffic, no shared work worth having).
    """
    return [pseudo_label(reference, distorted) for reference, distorted in pairs]
