"""Scoring an upload: the one path for the Score tab and the ``/score`` API.

The image (and an original) is decoded once, the gallery resolved once, and
what was decoded travels with the result, so the explanation that follows
(the quality map and what the references add) reads the same pixels against
the same gallery instead of decoding the file again.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cvrkd import Gallery, InvalidImageError, LoadedImage, QualityMap, ReferenceEffect, check_alignable, load_image
from space.services import contributions
from space.services.container import Services
from space.services.contributions import Contribution
from space.services.model_service import ModelUnavailable, ScoreReport


@dataclass(frozen=True)
class Scored:
    """One scored upload: the decoded image and the gallery it was scored against, the report, and the
    contribution when the owner offered it. ``report`` is None when there is no model (``problem`` says
    why); a contribution is kept even then."""

    image: LoadedImage
    gallery: Gallery
    report: ScoreReport | None
    contribution: Contribution | None = None
    problem: str = ""

    def required(self) -> ScoreReport:
        """The report, or ``ModelUnavailable`` saying why there is none."""
        if self.report is None:
            raise ModelUnavailable(self.problem)
        return self.report


@dataclass(frozen=True)
class Explanation:
    """Why the score is what it is: where the image loses points, and what comparing with references adds."""

    quality_map: QualityMap
    reference_effect: ReferenceEffect


def decode(path: str | None, what: str) -> LoadedImage:
    """An upload decoded, or ``InvalidImageError`` saying what is wrong with it (or that none came)."""
    if not path:
        raise InvalidImageError(f"No {what} was sent: upload one first.")
    return load_image(path, name=Path(path).name if what == "image" else what)


def score(services: Services, image_path: str | None, gallery_name: str | None, original_path: str | None = None,
          *, session: dict[str, str] | None = None, contribute: bool = False) -> Scored:
    """Check everything first (the image, the original's shape, the gallery), then add the image to the pool if
    its owner ticked the consent box, then score it.

    Refuses with ``InvalidImageError`` or ``UnknownGallery`` before anything is stored; a missing model is no
    refusal here, so that a contribution still counts (``Scored.problem``).
    """
    image = decode(image_path, "image")
    original = decode(original_path, "original") if original_path else None
    if original is not None:
        check_alignable(original.pixels.shape, image.pixels.shape)
    gallery = services.galleries.resolve(gallery_name or None, session)
    added = contributions.contribute(services, image, consent=True) if contribute else None
    try:
        report = services.model.score(image, gallery, original)
    except ModelUnavailable as exc:
        return Scored(image, gallery, None, added, str(exc))
    return Scored(image, gallery, report, added)


def explain(services: Services, scored: Scored) -> Explanation:
    """The quality map and the references' effect for an image already scored (``ModelUnavailable`` without a
    model)."""
    return Explanation(services.model.quality_map(scored.image, scored.gallery),
                       services.model.reference_effect(scored.image, scored.gallery))
