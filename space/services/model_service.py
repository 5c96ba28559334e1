"""The served model, or the honest reason there is none.

Wraps ``cvrkd.Scorer`` so the app starts even when no trained model is
installed (it then refuses to score instead of printing meaningless numbers),
and gives interactive requests priority over background bulk work.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from cvrkd import (CheckpointError, CheckpointInfo, Gallery, InvalidImageError, LoadedImage, NoTrainedModelError,
                   QualityMap, ReferenceEffect, ScoreResult, Scorer, mismatch_warning, quality_map, reference_effect)

logger = logging.getLogger(__name__)

NO_MODEL = ("No trained model is installed, so this app cannot score images yet: scores from an "
            "untrained network would be meaningless. Rating and the leaderboard still work.")
UNTRAINED = ("UNTRAINED MODEL (TEST MODE): the network has random weights, so every score shown "
             "is meaningless.")
NO_TEACHER = "This model bundle has no full-reference teacher, so it cannot use an original."

Progress = Callable[[int, int, str], None]


class ModelUnavailable(RuntimeError):
    """Scoring was asked for but there is no usable model; the message says why."""


@dataclass
class ScoreReport:
    """The gallery (NAR student) score and, given an original, the FR teacher's score."""

    nar: ScoreResult
    fr: ScoreResult | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What the user must know before trusting the result (e.g. an "original" that is another photo)."""

    @property
    def elapsed_s(self) -> float:
        return self.nar.elapsed_s + (self.fr.elapsed_s if self.fr else 0.0)

    def to_dict(self) -> dict:
        """Plain JSON for API clients."""
        nar = self.nar
        return {
            "score": nar.score, "spread": nar.spread, "mode": nar.mode, "gallery": nar.gallery,
            "per_reference": [{"name": r.name, "score": r.score} for r in nar.per_reference],
            "model_version": nar.model_version, "trained_model": nar.trained_model,
            "backend": nar.backend,
            "fr": None if self.fr is None else {
                "score": self.fr.score, "model_version": self.fr.model_version,
                "trained_model": self.fr.trained_model},
            "notes": self.notes, "warnings": self.warnings, "elapsed_s": self.elapsed_s,
            "scale": {"min": Scorer.score_range[0], "max": Scorer.score_range[1],
                      "lower_better": Scorer.lower_better},
        }


class ModelService:
    """Loads the bundle once; every scoring call in the app goes through here."""

    def __init__(self, model_dir: Path, allow_untrained: bool, cache_dir: Path,
                 default_gallery: Gallery) -> None:
        self.model_dir = Path(model_dir)
        self.problem: str | None = None
        self.scorer: Scorer | None = None
        try:
            self.scorer = Scorer(self.model_dir, allow_untrained=allow_untrained,
                                 cache_dir=cache_dir, gallery=default_gallery)
        except NoTrainedModelError as exc:
            logger.warning("no usable model: %s", exc)
            self.problem = NO_MODEL
        except CheckpointError as exc:
            logger.error("the installed model could not be loaded: %s", exc)
            self.problem = f"The installed model could not be loaded ({exc}). {NO_MODEL}"
        self._foreground = 0
        self._idle = threading.Condition()

    # ------------------------------------------------------------------ status
    @property
    def available(self) -> bool:
        return self.scorer is not None

    @property
    def trained(self) -> bool:
        return self.scorer is not None and self.scorer.student.info.trained

    @property
    def version(self) -> str:
        return self.scorer.model_version if self.scorer else ""

    def banner(self) -> str:
        """The line every page shows about the model, or "" when all is well."""
        if self.scorer is None:
            return self.problem or NO_MODEL
        return "" if self.trained else UNTRAINED

    def infos(self) -> dict[str, CheckpointInfo]:
        if self.scorer is None:
            return {}
        infos = {"student": self.scorer.student.info}
        if self.scorer.teacher is not None:
            infos["teacher"] = self.scorer.teacher.info
        return infos

    def require(self) -> Scorer:
        if self.scorer is None:
            raise ModelUnavailable(self.problem or NO_MODEL)
        return self.scorer

    # ----------------------------------------------------------------- scoring
    def score(self, image: LoadedImage, gallery: Gallery, original: LoadedImage | None = None) -> ScoreReport:
        """Student against ``gallery``; also the teacher against ``original`` when given.

        Raises ``InvalidImageError`` when the original cannot be aligned with the image (another shape);
        an original that plainly shows another photo is scored with a warning.
        """
        scorer = self.require()
        if original is not None and not scorer.has_teacher:
            raise ModelUnavailable(NO_TEACHER)
        with self.foreground():
            nar = scorer.score(image, gallery=gallery)
            fr = scorer.score(image, reference=original) if original is not None else None
        notes = list(dict.fromkeys(nar.notes + (fr.notes if fr else [])))
        mismatch = mismatch_warning(image.pixels, original.pixels) if original is not None else None
        return ScoreReport(nar, fr, notes, [mismatch] if mismatch else [])

    def score_many(self, paths: Sequence[str | Path], gallery: Gallery,
                   progress: Progress | None = None) -> list[ScoreResult | InvalidImageError]:
        """The student's score of each file against ``gallery``, in order; an unreadable file gives its error."""
        scorer = self.require()
        with self.foreground():
            return scorer.score_many(paths, gallery=gallery, progress=progress,
                                     names=[Path(path).name for path in paths])

    def quality_map(self, image: LoadedImage, gallery: Gallery) -> QualityMap:
        """Where the image loses points against ``gallery``, on the one scale every image shares."""
        scorer = self.require()
        with self.foreground():
            return quality_map(scorer, image, gallery)

    def reference_effect(self, image: LoadedImage, gallery: Gallery) -> ReferenceEffect:
        """The student's score against each reference and against none to compare (``cvrkd.reference_effect``)."""
        scorer = self.require()
        with self.foreground():
            return reference_effect(scorer, image, gallery)

    def prepare_gallery(self, gallery: Gallery, progress: Progress | None = None) -> None:
        """Compute (or load) the gallery's reference features ahead of the first score."""
        scorer = self.require()
        with self.foreground():
            scorer.gallery_features(gallery, progress=progress)

    # ---------------------------------------------------------------- priority
    @contextmanager
    def foreground(self) -> Iterator[None]:
        """Mark an interactive request; background work pauses until none is running."""
        with self._idle:
            self._foreground += 1
        try:
            yield
        finally:
            with self._idle:
                self._foreground -= 1
                self._idle.notify_all()

    def wait_until_idle(self, stop: threading.Event) -> None:
        """Block a background worker while interactive requests are being served."""
        with self._idle:
            while self._foreground and not stop.is_set():
                self._idle.wait(timeout=0.5)

