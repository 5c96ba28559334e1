"""CVRKD-IQA: content-variant reference image quality assessment by knowledge distillation.

Scores are on a 0–100 scale, higher = better. Typical use::

    from cvrkd import Scorer
    result = Scorer().score("photo.jpg")          # against the built-in gallery
    result.score, result.spread, result.per_reference

Every name a caller needs is importable from ``cvrkd`` itself (``__all__`` lists them);
heavy modules (torch, timm) load on first use, so ``import cvrkd`` stays cheap.
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

# The public surface: name -> the module that defines it. Everything a caller outside the library
# (the Space, scripts, a user's notebook) needs is importable as ``from cvrkd import NAME``; the
# module is imported on first use, so this table costs nothing at ``import cvrkd``.
_EXPORTS = {
    # scoring
    "Scorer": "cvrkd.scorer",
    "ScoreResult": "cvrkd.scorer",
    "NoTrainedModelError": "cvrkd.scorer",
    "RuntimeUnavailable": "cvrkd.runtime",
    "quality_map": "cvrkd.quality_maps",
    "QualityMap": "cvrkd.quality_maps",
    "reference_effect": "cvrkd.reference_branch",
    "ReferenceEffect": "cvrkd.reference_branch",
    "mismatch_warning": "cvrkd.reference_check",
    # model bundles
    "CheckpointError": "cvrkd.checkpoint",
    "CheckpointInfo": "cvrkd.checkpoint",
    "ModelRegistry": "cvrkd.train.registry",
    "RegistryError": "cvrkd.train.registry",
    "start_background_round": "cvrkd.train.redistill_job",
    # images
    "LoadedImage": "cvrkd.imageio",
    "load_image": "cvrkd.imageio",
    "check_image_file": "cvrkd.imageio",
    "InvalidImageError": "cvrkd.imageio",
    "MAX_FILE_BYTES": "cvrkd.imageio",
    "check_alignable": "cvrkd.patches",
    # reference galleries
    "Gallery": "cvrkd.gallery",
    "create_gallery": "cvrkd.gallery",
    "build_default_gallery": "cvrkd.gallery",
    # synthetic distortions
    "distort": "cvrkd.distortions",
    "DISTORTIONS": "cvrkd.distortions",
    "LEVELS": "cvrkd.distortions",
}

# Submodules that are public as a whole: ``cvrkd.paths`` (default folders, each overridable by an
# environment variable).
_MODULES = ("paths",)

__all__ = ["__version__", *_EXPORTS, *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _MODULES:
        return importlib.import_module(f"cvrkd.{name}")
    raise AttributeError(f"module 'cvrkd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
