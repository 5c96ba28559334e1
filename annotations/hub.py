"""Optional push of the judgement store to a Hugging Face dataset repo.

Configured by ``CVRKD_HUB_DATASET`` (repo id) plus a Hub token (``HF_TOKEN``
or a saved login); without both, ``HubSync.from_env`` returns None and the
store stays purely local. When configured, a ``huggingface_hub.CommitScheduler``
uploads the store folder every few minutes. Each process uploads only its own
shard files (plus the identical dataset card), so Space replicas never
overwrite each other's rows, and the scheduler's lock is held around every
write, so an upload never catches a row half-written.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from annotations.card import TABLES
from annotations.config import HUB_DATASET_ENV, HUB_EVERY_ENV, HUB_PRIVATE_ENV
from annotations.store import AnnotationStore

if TYPE_CHECKING:
    from huggingface_hub import HfApi

logger = logging.getLogger(__name__)


def upload_patterns(store: AnnotationStore) -> list[str]:
    """The files this process may upload: the card and its own shards."""
    return ["README.md"] + [f"{folder}/{prefix}-{store.writer_id}.jsonl" for _, folder, prefix, _ in TABLES]


class HubSync:
    """Background upload of one store's shards to a Hub dataset repo."""

    def __init__(
        self,
        store: AnnotationStore,
        repo_id: str,
        token: str,
        every_minutes: float = 5.0,
        private: bool = True,
        hf_api: HfApi | None = None,
    ) -> None:
        from huggingface_hub import CommitScheduler

        self.store = store
        self.repo_id = repo_id
        self.scheduler = CommitScheduler(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=store.root,
            every=every_minutes,
            private=private,
            token=token,
            allow_patterns=upload_patterns(store),
            hf_api=hf_api,
        )
        store.use_lock(self.scheduler.lock)

    @classmethod
    def from_env(cls, store: AnnotationStore, hf_api: HfApi | None = None) -> HubSync | None:
        """A running sync when ``CVRKD_HUB_DATASET`` and a token are set, else None.

        ``CVRKD_HUB_EVERY_MINUTES`` (default 5) sets the upload interval and
        ``CVRKD_HUB_PRIVATE=0`` creates a missing repo as public.
        """
        repo_id = os.environ.get(HUB_DATASET_ENV, "").strip()
        if not repo_id:
            return None
        from huggingface_hub import get_token

        token = get_token()
        if not token:
            logger.warning("%s is set but no Hub token was found; judgements stay local", HUB_DATASET_ENV)
            return None
        every = float(os.environ.get(HUB_EVERY_ENV) or 5.0)
        private = os.environ.get(HUB_PRIVATE_ENV, "1").strip() != "0"
        return cls(store, repo_id, token, every_minutes=every, private=private, hf_api=hf_api)

    def push_now(self) -> Future[Any]:
        """Upload what changed without waiting for the next scheduled push."""
        return self.scheduler.trigger()

    def stop(self) -> None:
        """Stop scheduled pushes (an upload in progress finishes)."""
        self.scheduler.stop()
