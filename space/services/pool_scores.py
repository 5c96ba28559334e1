"""The served model's score of every image people rate (pool and campaigns), cached per model version.

Votes record both images' model scores and the leaderboard measures how often
the model agrees with people, so each pool image is scored once per model
version, in a background thread that yields to interactive requests; campaign
images are covered too, so their votes carry model scores as well. A vote on an
image the thread has not reached yet (a campaign created a moment ago) scores
it on the spot (``of``). A pool
image made from a reference photo is scored against the gallery *without*
that photo: a reference of the same content would turn the comparison into a
full-reference one and flatter the model.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Callable

from cvrkd import Gallery, InvalidImageError, load_image
from space.services.files import write_atomic
from space.services.catalogue import ImageCatalogue
from space.services.model_service import ModelService, ModelUnavailable

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


class PoolScores:
    """Scores of pool images by the current model version (``{}`` without a model)."""

    def __init__(self, folder: Path, images: ImageCatalogue, model: ModelService, gallery: Gallery) -> None:
        self.folder = Path(folder)
        self.images = images
        self.model = model
        self.gallery = gallery
        self._lock = threading.Lock()
        self._on_demand = threading.Lock()
        self._scores: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- reading
    def version(self) -> str:
        return self.model.version

    def current(self) -> dict[str, float]:
        """image id -> score for the model in service now."""
        version = self.version()
        if not version:
            return {}
        with self._lock:
            return dict(self._book(version))

    def coverage(self, campaign: str | None = None) -> tuple[int, int]:
        """(scored, total) images of a campaign (the pool by default) for the current model."""
        scores = self.current()
        ids = self.images.ids_of(campaign)
        return sum(1 for i in ids if i in scores), len(ids)

    def of(self, image_ids: list[str]) -> dict[str, float]:
        """These images' scores by the model in service, scoring any still missing now.

        A vote records both images' scores and cannot wait for the background
        thread, which wakes every minute: it scores what it needs itself, one
        vote at a time (a room voting on a new campaign scores each image once),
        and wakes the thread for the campaign's other images.
        """
        if any(image_id not in self.current() for image_id in image_ids):
            with self._on_demand:
                scored = self.current()
                self.fill(ids=[i for i in image_ids if i not in scored], yield_to_requests=False)
            self.refresh()
        scores = self.current()
        return {image_id: scores[image_id] for image_id in image_ids if image_id in scores}

    # ----------------------------------------------------------------- scoring
    def fill(self, progress: Progress | None = None, ids: list[str] | None = None,
             yield_to_requests: bool = True) -> int:
        """Score every image (or each of ``ids``) the current model has not scored yet; return how many.

        The background thread waits for interactive requests before each image; a vote does not.
        """
        version = self.version()
        if not version:
            return 0
        missing = [i for i in (self.images.ids if ids is None else ids) if i not in self.current()]
        done = 0
        for index, image_id in enumerate(missing):
            if self._stop.is_set():
                break
            if yield_to_requests:
                self.model.wait_until_idle(self._stop)
            if progress:
                progress(index, len(missing), self.images.title(image_id))
            try:
                value = self._score(image_id)
            except (InvalidImageError, ModelUnavailable, FileNotFoundError, KeyError) as exc:
                logger.warning("pool image %s not scored: %s", image_id, exc)
                continue
            with self._lock:
                book = self._book(version)
                book[image_id] = value
                write_atomic(self._path(version), json.dumps(book, indent=0).encode())
            done += 1
        return done

    def _score(self, image_id: str) -> float:
        scorer = self.model.require()
        content = self.images.content(image_id)
        references = [e for e in self.gallery.images if e.name != content] or self.gallery.images
        gallery = self.gallery
        if len(references) != len(self.gallery.images):
            gallery = Gallery(self.gallery.root, f"{self.gallery.name} without {content}", references)
        return scorer.score(load_image(self.images.path(image_id)), gallery=gallery).score

    # -------------------------------------------------------------- background
    def start(self) -> None:
        """Keep the scores complete in a daemon thread (woken by ``refresh``, else every minute)."""
        if self._thread is not None or not self.model.available:
            return
        self._thread = threading.Thread(target=self._run, name="pool-scores", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        """New pool images (or a new model): score what is missing."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        try:  # the first interactive score should not have to build the gallery's features
            self.model.require().gallery_features(self.gallery)
        except Exception:
            logger.exception("preparing the reference gallery failed")
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.fill()
            except Exception:  # a background worker must never die silently
                logger.exception("scoring the rating pool failed")
            self._wake.wait(timeout=60)  # also picks up a hot-swapped model

    # ---------------------------------------------------------------- storage
    def _path(self, version: str) -> Path:
        return self.folder / f"{version}.json"

    def _book(self, version: str) -> dict[str, float]:
        if version not in self._scores:
            path = self._path(version)
            try:
                self._scores[version] = json.loads(path.read_text()) if path.is_file() else {}
            except (OSError, json.JSONDecodeError):
                logger.warning("unreadable score cache %s: rescoring", path)
                self._scores[version] = {}
        return self._scores[version]
