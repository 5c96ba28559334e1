"""Where annotations live and which limits apply, read from the environment.

Kept in one place so the app, the trainer and the tests agree on paths and
limits without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the app's data folder (judgements go in a subfolder).
DATA_DIR_ENV = "CVRKD_DATA_DIR"
#: Environment variable naming the Hub dataset repo (``owner/name``) to push to.
HUB_DATASET_ENV = "CVRKD_HUB_DATASET"
#: Minutes between two scheduled pushes to the Hub.
HUB_EVERY_ENV = "CVRKD_HUB_EVERY_MINUTES"
#: "0" makes a newly created Hub repo public; anything else keeps it private.
HUB_PRIVATE_ENV = "CVRKD_HUB_PRIVATE"

#: Longest accepted identifier (image, rater, judgement, writer).
MAX_ID_LEN = 128
#: Longest accepted free-text field (licence, versions, skip reason, ...).
MAX_TEXT_LEN = 500
#: Longest accepted response time; anything slower is a broken client clock.
MAX_RESPONSE_MS = 3_600_000


def default_data_dir() -> Path:
    """The app's data folder: ``$CVRKD_DATA_DIR`` or ``./data``."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


def default_store_dir() -> Path:
    """The judgement store: ``<data dir>/annotations``."""
    return default_data_dir() / "annotations"
