"""Scoring API: one call from an image (and a gallery or its original) to a score.

Scale: 0–100, higher = better (like a MOS); ``Scorer.lower_better`` is False and
``Scorer.score_range`` is (0, 100), as in pyiqa. Scores are deterministic: the
patches come from a fixed grid and the references from a fixed gallery order.

The backbone runs on a backend: ``torch``, or a fast CPU runtime (``onnxruntime``,
``openvino``; see ``cvrkd.runtime``). ``auto``, the default, takes a verified fast runtime
when one is installed, else torch; every result records the backend that produced it.
"""
from __future__ import annotations

import statistics
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from cvrkd import paths
from cvrkd.checkpoint import CheckpointError, CheckpointInfo, load_checkpoint
from cvrkd.feature_cache import FeatureCache
from cvrkd.features import grid_features
from cvrkd.gallery import Gallery, build_default_gallery
from cvrkd.imageio import ImageSource, InvalidImageError, LoadedImage, load_image
from cvrkd.model import SCORE_RANGE, CVRKDNet
from cvrkd.patches import align_reference
from cvrkd.runtime import ScoreReferences, default_backend, load_backbone, load_head

Progress = Callable[[int, int, str], None]


class NoTrainedModelError(RuntimeError):
    """No trained model is installed: scores would be meaningless, so we refuse."""


@dataclass
class ReferenceScore:
    name: str
    score: float


@dataclass
class ScoreResult:
    """One image's score plus everything needed to judge how far to trust it."""

    image: str
    score: float
    spread: float
    mode: str  # "nar" (gallery, student) or "fr" (aligned original, teacher)
    model_version: str
    elapsed_s: float
    per_reference: list[ReferenceScore] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gallery: str = ""
    trained_model: bool = True
    backend: str = "torch"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoadedModel:
    network: CVRKDNet
    info: CheckpointInfo
    score_references: ScoreReferences | None = None
    """The student's scores against K references, on the scorer's backend (``load_head``)."""
    backbone: object | None = None
    """The backbone this model reads, with its tuned tail in place (``load_backbone``)."""


class Scorer:
    """Loads a model bundle (``student/`` and optional ``teacher/``) and scores images.

    ``backend``: ``auto`` (default; ``$CVRKD_BACKEND`` overrides it), ``torch``, ``onnxruntime``
    or ``openvino``. An explicitly named runtime that cannot run raises ``RuntimeUnavailable``.
    """

    lower_better = False
    score_range = SCORE_RANGE

    def __init__(self, model_dir: str | Path | None = None, *, allow_untrained: bool = False,
                 cache_dir: str | Path | None = None, gallery: Gallery | None = None,
                 backend: str | None = None) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else paths.default_model_dir()
        self.student = self._load_role("student", required=True)
        self.teacher = self._load_role("teacher", required=False)
        if not self.student.info.trained and not allow_untrained:
            raise NoTrainedModelError(
                f"the model in {self.model_dir} is untrained (random weights); its scores would be "
                "meaningless. Train one with `python -m cvrkd train` or pass a trained --model."
            )
        self._requested_backend = backend or default_backend()
        self.student.backbone, self.backend = self._backbone(self.student)
        self.student.score_references = self._head(self.student)
        self.patches = self.student.info.patches
        self.cache = FeatureCache(Path(cache_dir) if cache_dir else paths.cache_dir() / "features")
        self._default_gallery = gallery
        self._swap_lock = threading.Lock()

    # ----------------------------------------------------------------- models
    def _load_role(self, role: str, required: bool) -> LoadedModel | None:
        """A bundle has ``student/`` and ``teacher/``; a bare student checkpoint (e.g. a
        registry version) is accepted too, with the shipped teacher beside it."""
        folder = self.model_dir / role
        if (self.model_dir / "config.json").is_file():
            folder = self.model_dir if role == "student" else paths.default_model_dir() / "teacher"
        if not folder.exists():
            if required:
                raise NoTrainedModelError(
                    f"no trained model is installed at {self.model_dir} (missing {role}/). "
                    "Train one with `python -m cvrkd train` or pass --model DIR."
                )
            return None
        network, info = load_checkpoint(folder, expected_role=role)
        if role == "teacher" and info.backbone != self.student.info.backbone:
            raise CheckpointError("teacher and student were trained on different backbones")
        return LoadedModel(network, info)

    @property
    def model_version(self) -> str:
        return self.student.info.version

    @property
    def backbone(self) -> object:
        """The served student's backbone (its tuned tail in place, when it has one)."""
        return self.student.backbone

    def _backbone(self, model: LoadedModel) -> tuple[object, str]:
        """The backbone ``model`` reads, on this scorer's backend, keyed by its checkpoint."""
        return load_backbone(self._requested_backend, model.info.backbone, self.model_dir,
                             model.info.version, tail=model.network.backbone_tail)

    def _teacher_backbone(self) -> object:
        """The FR teacher learnt on ImageNet's backbone: the student's serves it unless the
        student tuned a tail, then the teacher gets its own (built on first use)."""
        if self.student.network.backbone_tail is None:
            return self.student.backbone
        if self.teacher.backbone is None:
            self.teacher.backbone, _ = self._backbone(self.teacher)
        return self.teacher.backbone

    @property
    def has_teacher(self) -> bool:
        return self.teacher is not None

    def swap_student(self, folder: str | Path) -> str:
        """Hot-swap the served student; in-flight calls finish on the model they started with."""
        network, info = load_checkpoint(folder, expected_backbone=self.student.info.backbone,
                                        expected_role="student")
        if info.patches != self.patches:
            raise CheckpointError("the new student uses another patch layout")
        student = LoadedModel(network, info)
        # backbone and head are exported before the swap, not during it
        student.backbone, _ = self._backbone(student)
        student.score_references = self._head(student)
        with self._swap_lock:
            self.student = student
        return info.version

    def _head(self, student: LoadedModel) -> ScoreReferences:
        return load_head(self.backend, student.network, self.model_dir, student.info.version)

    # --------------------------------------------------------------- features
    def image_features(self, image: LoadedImage, student: LoadedModel | None = None,
                       notes: list[str] | None = None) -> torch.Tensor:
        """[views, C, 7, 7] pooled features of the image's fixed grid (and whole-image view).
        What was resized to get there is appended to ``notes`` (never to ``image.notes``)."""
        student = student or self.student
        return grid_features(student.backbone, image.pixels, self.patches, notes)

    def default_gallery(self) -> Gallery:
        if self._default_gallery is None:
            self._default_gallery = build_default_gallery(paths.default_gallery_dir())
        return self._default_gallery

    def gallery_features(self, gallery: Gallery | None = None, progress: Progress | None = None,
                         student: LoadedModel | None = None) -> torch.Tensor:
        """[K, P, C, 7, 7] for the gallery's references, computed once and cached. The key holds
        the student's backbone fingerprint, which covers a tuned tail: a student that tuned its
        backbone never reads another's reference features."""
        gallery = gallery or self.default_gallery()
        student = student or self.student
        key = "-".join([gallery.fingerprint(), student.backbone.fingerprint(), self.patches.key()])

        def compute() -> torch.Tensor:
            features = []
            for index, reference in enumerate(gallery.load_images()):
                if progress:
                    progress(index, len(gallery), f"reference features: {reference.name}")
                features.append(self.image_features(reference, student))
            return torch.stack(features)

        return self.cache.get_or_compute(key, compute)

    # ---------------------------------------------------------------- scoring
    def score(self, image: ImageSource | LoadedImage, gallery: Gallery | None = None,
              reference: ImageSource | LoadedImage | None = None, name: str = "") -> ScoreResult:
        """Score against the gallery (NAR student) or, given ``reference``, its original (FR teacher).

        The inputs are never changed: what was done to the image on the way (decoding, resizing)
        is reported in ``ScoreResult.notes``.
        """
        started = time.perf_counter()
        loaded = image if isinstance(image, LoadedImage) else load_image(image, name=name)
        if reference is not None:
            return self._score_fr(loaded, reference, started)
        gallery = gallery or self.default_gallery()
        student = self.student  # one model for the whole call, even if a swap lands meanwhile
        references = self.gallery_features(gallery, student=student)
        notes = list(loaded.notes)
        lq = self.image_features(loaded, student, notes)
        scores = student.score_references(lq, references)
        per_reference = [ReferenceScore(entry.name, _clamp(value))
                         for entry, value in zip(gallery.images, scores.tolist())]
        values = [r.score for r in per_reference]
        return ScoreResult(
            image=loaded.name, score=_clamp(float(np.mean(values))),
            spread=float(statistics.pstdev(values)) if len(values) > 1 else 0.0,
            mode="nar", model_version=student.info.version,
            elapsed_s=time.perf_counter() - started, per_reference=per_reference,
            notes=notes, gallery=gallery.name, trained_model=student.info.trained,
            backend=self.backend,
        )

    def _score_fr(self, loaded: LoadedImage, reference: ImageSource | LoadedImage,
                  started: float) -> ScoreResult:
        if self.teacher is None:
            raise NoTrainedModelError(f"the model bundle at {self.model_dir} has no FR teacher")
        original = reference if isinstance(reference, LoadedImage) else load_image(reference, "original")
        aligned, note = align_reference(original.pixels, loaded.pixels)
        notes = list(loaded.notes) + list(original.notes) + ([note] if note else [])
        layout = self.teacher.info.patches
        backbone = self._teacher_backbone()
        lq = grid_features(backbone, loaded.pixels, layout, notes)
        hq = grid_features(backbone, aligned, layout)
        with torch.inference_mode():
            value = _clamp(float(self.teacher.network.calibrate(self.teacher.network(lq[None], hq[None]).score)[0]))
        return ScoreResult(
            image=loaded.name, score=value, spread=0.0, mode="fr",
            model_version=self.teacher.info.version, elapsed_s=time.perf_counter() - started,
            per_reference=[ReferenceScore(original.name, value)], notes=notes, gallery="",
            trained_model=self.teacher.info.trained, backend=self.backend,
        )

    def score_many(self, images: Iterable[ImageSource | LoadedImage], gallery: Gallery | None = None,
                   progress: Progress | None = None, *,
                   reference: ImageSource | LoadedImage | None = None,
                   names: Sequence[str] | None = None,
                   on_result: Callable[[int, ScoreResult | InvalidImageError], None] | None = None,
                   ) -> list[ScoreResult | InvalidImageError]:
        """Score a batch, in order; an unreadable image yields its ``InvalidImageError`` (``str()`` of
        it is the message to show) and the rest still get scored.

        Each image is scored as ``score`` would score it alone (same numbers): against ``gallery``
        (default: the built-in one) or, given ``reference``, the one original they all share (FR
        teacher; read once). ``names`` names the images in the results (default: as ``score``
        names them). ``progress(index, total, name)`` is called before each image and
        ``on_result(index, result)`` after it, so a caller can show results as they come.
        """
        items = list(images)
        if names is not None and len(names) != len(items):
            raise ValueError(f"{len(names)} names for {len(items)} images")
        if reference is None:
            gallery = gallery or self.default_gallery()
        elif not isinstance(reference, LoadedImage):
            try:
                reference = load_image(reference, "original")
            except InvalidImageError:
                pass  # each image then reports the original's error, as a call of its own would
        results: list[ScoreResult | InvalidImageError] = []
        for index, item in enumerate(items):
            name = names[index] if names is not None else ""
            if name and isinstance(item, LoadedImage) and item.name != name:
                item = replace(item, name=name)  # a renamed view, not an edit (scoring never changes it)
            if progress:
                progress(index, len(items), name or _label(item, index))
            try:
                result: ScoreResult | InvalidImageError = self.score(
                    item, gallery=gallery, reference=reference, name=name)
            except InvalidImageError as exc:
                result = exc
            results.append(result)
            if on_result:
                on_result(index, result)
        return results


def _label(item: ImageSource | LoadedImage, index: int) -> str:
    """How progress names an image: its name or path; pixels in memory by their position."""
    if isinstance(item, LoadedImage):
        return item.name or f"image {index + 1}"
    if isinstance(item, (str, Path)):
        return str(item)
    return f"image {index + 1}"


def _clamp(value: float) -> float:
    low, high = SCORE_RANGE
    return float(min(high, max(low, value)))
