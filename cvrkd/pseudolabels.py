"""Quality pseudo-labels for synthetic distortions from an ensemble of classic FR metrics.

Human scores for our synthetic images cannot be fetched, so we label each
(reference, distorted) pair with four full-reference metrics that need no downloaded
weights and that we can check against their official implementations (see
``docs/distortions.md``): FSIMc, VSI, GMSD and MS-SSIM, as implemented by ``piq``.
Each raw value is mapped onto the project's 0-100 scale (higher = better, 100 =
pristine) by a fixed, monotone piecewise-linear curve, and the label is the mean of
the four mapped scores. The curves are constants, never refit per batch, so a label
means the same thing in every run.

Every metric follows its official definition at the input resolution: FSIM and VSI
average-pool by ``round(min(H, W) / 256)`` and GMSD by 2 internally, as their MATLAB
code does; GMSD and MS-SSIM read MATLAB's ``rgb2gray`` (rounded to 8 bits), which is
what makes GMSD match the official values exactly.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import piq
import torch

METRICS: tuple[str, ...] = ("fsim", "vsi", "gmsd", "ms_ssim")

# Mapping of raw metric values onto 0-100: (raw value, score) knots, linear in between,
# clamped outside. Pristine values map to 100. The inner knots are the 20/40/60/80 %
# quantiles (best to worst) and the 0 knot the 99 % quantile of each metric over
# 8 Kodak photos x 25 distortion types x 5 levels; `bench/pseudolabel_speed.py --knots`
# recomputes them. Each metric on its own therefore spreads KADID-like data evenly.
KNOTS: dict[str, tuple[tuple[float, float], ...]] = {
    "fsim": ((1.0, 100.0), (0.98, 80.0), (0.95, 60.0), (0.92, 40.0), (0.88, 20.0), (0.75, 0.0)),
    "vsi": ((1.0, 100.0), (0.995, 80.0), (0.99, 60.0), (0.98, 40.0), (0.97, 20.0), (0.93, 0.0)),
    "gmsd": ((0.0, 100.0), (0.03, 80.0), (0.06, 60.0), (0.1, 40.0), (0.15, 20.0), (0.3, 0.0)),
    "ms_ssim": ((1.0, 100.0), (0.98, 80.0), (0.95, 60.0), (0.9, 40.0), (0.8, 20.0), (0.5, 0.0)),
}

_MIN_SIDE = 161  # MS-SSIM's five scales with an 11-px window need more than 160 px
_MATLAB_GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
_CHUNK = 8  # pairs per piq call: batching amortises per-call overhead, chunks bound memory


def _check_pair(reference: np.ndarray, distorted: np.ndarray) -> None:
    for name, im in (("reference", reference), ("distorted", distorted)):
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"{name} must be an HxWx3 uint8 RGB image, got {im.dtype} {im.shape}")
    if reference.shape != distorted.shape:
        raise ValueError(f"images differ in shape: {reference.shape} vs {distorted.shape}")
    if min(reference.shape[:2]) < _MIN_SIDE:
        raise ValueError(f"images must be at least {_MIN_SIDE} px on each side, got {reference.shape}")


def _rgb_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


def _gray_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """MATLAB ``rgb2gray`` on uint8: weighted sum rounded half away from zero."""
    gray = np.floor(np.stack(images) @ _MATLAB_GRAY + 0.5).astype(np.float32)
    return torch.from_numpy(gray).unsqueeze(1).div_(255.0)


def _raw_batch(refs: Sequence[np.ndarray], dists: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
    r, d = _rgb_tensor(refs), _rgb_tensor(dists)
    rg, dg = _gray_tensor(refs), _gray_tensor(dists)
    with torch.inference_mode():
        return {
            "fsim": piq.fsim(d, r, reduction="none", chromatic=True),
            "vsi": piq.vsi(d, r, reduction="none"),
            "gmsd": piq.gmsd(dg, rg, reduction="none"),
            "ms_ssim": piq.multi_scale_ssim(dg, rg, reduction="none"),
        }


def fr_metrics_many(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, float]]:
    """``fr_metrics`` for many (reference, distorted) pairs, batched by image size."""
    pairs = [(np.asarray(r), np.asarray(d)) for r, d in pairs]
    for r, d in pairs:
        _check_pair(r, d)
    results: list[dict[str, float]] = [{} for _ in pairs]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, (r, _) in enumerate(pairs):
        by_shape.setdefault(r.shape, []).append(i)
    for indices in by_shape.values():
        for start in range(0, len(indices), _CHUNK):
            chunk = indices[start:start + _CHUNK]
            raw = _raw_batch([pairs[i][0] for i in chunk], [pairs[i][1] for i in chunk])
            for j, i in enumerate(chunk):
                results[i] = {name: float(raw[name][j]) for name in METRICS}
    return results


def metric_score(name: str, value: float) -> float:
    """Map one raw metric value onto 0-100 with the fixed curve in ``KNOTS``."""
    raw, score = np.array(KNOTS[name]).T
    order = np.argsort(raw)
    return float(np.interp(value, raw[order], score[order]))


def label_from_metrics(raw: dict[str, float]) -> float:
    """The pseudo-label for raw values from ``fr_metrics``: the mean of the mapped scores."""
    return float(np.mean([metric_score(name, raw[name]) for name in METRICS]))


def fr_metrics(reference: np.ndarray, distorted: np.ndarray) -> dict[str, float]:
    """Raw FSIMc, VSI, GMSD (lower = better) and MS-SSIM of ``distorted`` against ``reference``."""
    return fr_metrics_many([(reference, distorted)])[0]


def pseudo_label(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Quality of ``distorted`` on the project scale: 0-100, higher = better, 100 = pristine."""
    return label_from_metrics(fr_metrics(reference, distorted))


def pseudo_labels(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """``pseudo_label`` for many (reference, distorted) pairs, batched by image size."""
    return [label_from_metrics(raw) for raw in fr_metrics_many(pairs)]
