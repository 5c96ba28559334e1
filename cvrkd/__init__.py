"""CVRKD-IQA: content-variant reference image quality assessment by knowledge distillation.

Scores are on a 0–100 scale, higher = better. Typical use::

    from cvrkd import Scorer
    result = Scorer().score("photo.jpg")          # against the built-in gallery
    result.score, result.spread, result.per_reference

Heavy modules (torch, timm) load on first use, so ``import cvrkd`` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Scorer": "cvrkd.scorer",
    "ScoreResult": "cvrkd.scorer",
    "NoTrainedModelError": "cvrkd.scorer",
    "Gallery": "cvrkd.gallery",
    "load_image": "cvrkd.imageio",
    "InvalidImageError": "cvrkd.imageio",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cvrkd' has no attribute {name!r}")
