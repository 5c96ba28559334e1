"""Where things live by default; every location can be overridden by an env var."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir() -> Path:
    """Writable state (annotations, caches, galleries): ``$CVRKD_DATA_DIR``, default ``./data``."""
    return Path(os.environ.get("CVRKD_DATA_DIR", "data"))


def default_model_dir() -> Path:
    """The served model bundle: ``$CVRKD_MODEL_DIR``, default the weights shipped in the package."""
    return Path(os.environ.get("CVRKD_MODEL_DIR", PACKAGE_DIR / "weights"))


def cache_dir() -> Path:
    return data_dir() / "cache"


def default_gallery_dir() -> Path:
    return data_dir() / "galleries" / "wheel-photos"


def shared_data_dir() -> Path:
    """Development data sets (never shipped): ``$CVRKD_DATA``, default ``../shared/data``."""
    return Path(os.environ.get("CVRKD_DATA", "../shared/data"))


def synthetic_dir() -> Path | None:
    """The synthetic training set that re-distillation replays: ``$CVRKD_SYNTHETIC_DIR``, else none."""
    value = os.environ.get("CVRKD_SYNTHETIC_DIR")
    return Path(value) if value else None
