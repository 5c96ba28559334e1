"""Settings of one app instance, so tests, benchmarks and ``app.py`` build the same app."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cvrkd import paths
from space.services.clients import TRUSTED_PROXIES_ENV
from space.services.pool import PoolSpec


VOTES_PER_IP_ENV = "CVRKD_VOTES_PER_IP_MINUTE"
NEW_RATERS_PER_IP_ENV = "CVRKD_NEW_RATERS_PER_IP_HOUR"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


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
    """Queue slots per event without its own limit (the page-load events; pairs and votes sent through the
    queue by ``gradio_client``). The app's own pair and vote events skip the queue."""
    votes_per_minute: int = 60
    """Per signed rater id (the client's session: an id only the server issues). The per-address limits
    below hold however many ids a client has."""
    min_answer_ms: int = 300
    """The human floor: a vote is refused unless this long passed, measured by the server, since its pair was
    served and since the rater's previous vote (nobody looks at two images faster; a script does)."""
    votes_per_ip_minute: int = field(default_factory=lambda: _env_int(VOTES_PER_IP_ENV, 240))
    """One address may be a classroom or an office behind one router (``$CVRKD_VOTES_PER_IP_MINUTE``). A
    campaign created for an audience raises its own limits with it (``space.services.raters.AddressLimits``)."""
    new_raters_per_ip_minute: int = 60
    new_raters_per_ip_hour: int = field(default_factory=lambda: _env_int(NEW_RATERS_PER_IP_ENV, 60))
    """``$CVRKD_NEW_RATERS_PER_IP_HOUR``."""
    review_quorum: int = 3
    """Raters who must find a contributed photo fine (and none flag it) before it is shown in pairs."""
    leaderboard_bootstrap: int = 200
    model_prior: bool = field(default_factory=lambda: os.environ.get("CVRKD_MODEL_PRIOR", "1") != "0")
    """Use the model's scores as a prior for pair choice and the model-assisted estimate
    (``CVRKD_MODEL_PRIOR=0`` turns it off; the human-only estimate is always computed)."""
    queue_status_every_s: float = 5.0
    """How often waiting clients hear their queue position. Gradio's default ("auto") tells every waiting
    client after every finished job, which costs the server in proportion to the square of the clients
    waiting (see the talk scenario in docs/performance_load.md)."""
    queue_size: int = 256
    trusted_proxies: str = field(default_factory=lambda: os.environ.get(TRUSTED_PROXIES_ENV, ""))
    """The proxies whose ``X-Forwarded-For`` the app believes (``$CVRKD_TRUSTED_PROXIES``: addresses or networks,
    comma-separated; empty: none, every limit counts the TCP peer). See ``space.services.clients``."""
