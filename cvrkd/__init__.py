"""CVRKD-IQA: content-variant reference image quality assessment by knowledge distillation.

Scores are on a 0–100 scale, higher = better. Typical use::

    from cvrkd import Scorer
    result = Scorer().score("photo.jpg")          # against the built-in gallery
    result.score, result.spread, result.per_reference

Heavy modules (torch, timm) load on first use, so ``import cvrkd`` stays cheap.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

# torch's OpenMP threads busy-wait after every parallel op; on a small or shared CPU that steals
# the cores from the fast runtime's threads and from other processes (a score took several times
# longer under load in bench/latency.py). Must be set before torch loads; a user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_EXPORTS = {
    "Scorer": "cvrkd.scorer",
    "ScoreResult": "cvrkd.scorer",
    "NoTrainedModelError": "cvrkd.scorer",
    "Gallery": "cvrkd.gallery",
    "load_image": "cvrkd.imageio",
    "InvalidImageError": "cvrkd.imageio",
    "RuntimeUnavailable": "cvrkd.runtime",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cvrkd' has no attribute {name!r}")
