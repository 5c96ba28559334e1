"""Is the "pristine original" the same photo as the image it should explain?

Full-reference scoring compares an image with its undistorted original. A
different photo of the same size is accepted by the shape check and gives a
meaningless teacher score, so the scorer's callers warn when the two plainly
show different scenes.

The test is cheap and ignores what distortions do: both images are shrunk to
``THUMB`` x ``THUMB`` grey thumbnails (averaging away noise, blur and
compression artefacts), the smooth part (a Gaussian blur of ``SMOOTH`` px) is
subtracted, and what is left, the scene's edges and objects at that scale, is
compared by correlation (so brightness, contrast and colour changes do not
matter). The smooth layout is left out because many photos share it (sky above,
ground below). ``MIN_SIMILARITY`` was set by ``bench/reference_check.py`` on
distorted versions of Kodak photos (every distortion type and level) against
different photos of the same size; docs/model.md holds the measured figures.
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

THUMB = 32
"""Side of the thumbnails compared (pixels)."""

SMOOTH = 2.0
"""Sigma (thumbnail pixels) of the smooth layout removed before comparing."""

MIN_SIMILARITY = 0.5
"""Below this correlation the "original" is taken to be another photo (see ``bench/reference_check.py``)."""


def similarity(image: np.ndarray, original: np.ndarray) -> float:
    """Correlation (-1..1) of the two images' thumbnail details; 1 for the same photo, NaN when either
    image is flat at that scale (nothing to compare)."""
    a, b = details(image), details(original)
    if not (a.std() > 1e-6 and b.std() > 1e-6):
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def mismatch_warning(image: np.ndarray, original: np.ndarray) -> str | None:
    """A warning for the user when ``original`` plainly is not the same photo as ``image``, else None."""
    value = similarity(image, original)
    if not value < MIN_SIMILARITY:  # NaN: a flat image, nothing to judge by
        return None
    return (f"The pristine original does not look like the same photo as the image (similarity {value:.2f}; "
            f"below {MIN_SIMILARITY:.2f} it shows another scene), so the full-reference score means nothing: "
            "it compares an image with its own undistorted original.")


def details(pixels: np.ndarray) -> np.ndarray:
    """The grey ``THUMB`` x ``THUMB`` box-filtered thumbnail less its smooth part, flattened: what
    ``similarity`` compares (the bench computes it once per photo)."""
    grey = Image.fromarray(np.asarray(pixels, dtype=np.uint8)).convert("L")
    thumb = np.asarray(grey.resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.float64)
    return (thumb - gaussian_filter(thumb, SMOOTH)).ravel()
