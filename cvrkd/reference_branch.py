"""What the references do to a score: the student with each reference, and with none to compare.

The student reads an image twice: alone (the LQ branch, and the whole view's
statistics) and as its difference from a high-quality reference (the
reference-difference branch). Scoring the image against *itself* feeds that
branch a zero difference, i.e. nothing to compare; the gap between that score
and the score against each gallery photo is what comparing with that photo
adds. When the gaps are all alike, the reference chosen hardly matters; when
they are all near zero, the score comes from the image alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from cvrkd.gallery import Gallery
from cvrkd.imageio import ImageSource, LoadedImage, load_image
from cvrkd.model import SCORE_RANGE


@dataclass(frozen=True)
class ReferenceEffect:
    """Scores on the 0–100 scale: ``alone`` with the image as its own reference, ``with_reference`` against
    each of the gallery's photos (named in ``names``, in the gallery's order)."""

    names: list[str]
    with_reference: list[float]
    alone: float

    @property
    def added(self) -> list[float]:
        """Points each reference adds to (or, negative, takes from) the score the image gets alone."""
        return [score - self.alone for score in self.with_reference]


def reference_effect(scorer, image: ImageSource | LoadedImage, gallery: Gallery | None = None) -> ReferenceEffect:
    """The student's score of ``image`` against each of ``gallery``'s references and against itself."""
    loaded = image if isinstance(image, LoadedImage) else load_image(image)
    gallery = gallery or scorer.default_gallery()
    student = scorer.student  # one model for the whole call, even if a swap lands meanwhile
    features = scorer.image_features(loaded, student)[None]
    references = torch.cat([scorer.gallery_features(gallery, student=student), features])
    network = student.network
    with torch.inference_mode():
        scores = network.calibrate(network(features, references).score).clamp(*SCORE_RANGE).tolist()
    return ReferenceEffect([entry.name for entry in gallery.images], scores[:-1], scores[-1])
