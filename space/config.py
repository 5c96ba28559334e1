"""Settings of one app instance, so tests, benchmarks and ``app.py`` build the same app."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cvrkd import paths
from space.pool import PoolSpec


@dataclass(frozen=True)
class AppConfig:
    """Where the app keeps its state and how hard it may be pushed.

    ``model_dir`` None means the bundled model (``$CVRKD_MODEL_DIR`` or
    ``cvrkd/weights``); ``data_dir`` None means ``$CVRKD_DATA_DIR`` or ``./data``.
    ``allow_untrained`` serves a random-init model with a loud warning (tests only).
    """

    data_dir: Path = field(default_factory=paths.data_dir)
    model_dir: Path = field(default_factory=paths.default_model_dir)
    allow_untrained: bool = False
    pool: PoolSpec = field(default_factory=PoolSpec)
    score_pool: bool = True
    """Score every rating-pool image in the background, so votes carry model scores."""
    score_concurrency: int = 2
    """Scoring jobs run at once; the rest wait in their own queue and never block voting."""
    rating_concurrency: int = 8
    votes_per_minute: int = 60
    leaderboard_bootstrap: int = 200
    model_prior: bool = field(default_factory=lambda: os.environ.get("CVRKD_MODEL_PRIOR", "1") != "0")
    """Use the model's scores as a prior for pair choice and the model-assisted estimate
    (``CVRKD_MODEL_PRIOR=0`` turns it off; the human-only estimate is always computed)."""
    queue_size: int = 256
