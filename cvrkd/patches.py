"""Patch positions and crops.

Scoring uses a fixed grid, so one image always gives the same patches (and the
same score). Training uses a seeded random sampler. The FR teacher crops the
image and its pristine original at the same coordinates.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

from cvrkd.imageio import InvalidImageError

MAX_VIEW_SIDE = 640
"""The whole-image view runs at native resolution up to this long side; larger photos are
downscaled to it. 640 is the largest side of any image the model learns from (human-rated
photos 500 px, synthetic Kodak set 512 px, built-in gallery references up to 640 px), so
nothing seen in training is resized, and the human scale refers to photos of about that size.
Cost grows with area: a 1024x768 photo at native size would cost more than all ten patches."""


@dataclass(frozen=True)
class PatchConfig:
    """The views of an image the network sees: ``num_patches`` square crops of side ``size``
    on a fixed grid, plus (``whole_view``) one pass over the whole image at native resolution."""

    num_patches: int = 10
    size: int = 224
    whole_view: bool = False

    @property
    def views(self) -> int:
        """How many feature maps per image the network stacks along channels."""
        return self.num_patches + int(self.whole_view)

    def key(self) -> str:
        """Short tag for feature-cache keys: features of two layouts never mix."""
        return f"p{self.num_patches}s{self.size}" + (f"w{MAX_VIEW_SIDE}" if self.whole_view else "")

    def to_dict(self) -> dict:
        return asdict(self)


def fit_to_patch(pixels: np.ndarray, size: int) -> tuple[np.ndarray, str | None]:
    """Upscale images whose short side is below the patch size; returns a note if it did."""
    height, width = pixels.shape[:2]
    short = min(height, width)
    if short >= size:
        return pixels, None
    scale = size / short
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    resized = np.asarray(Image.fromarray(pixels).resize(new_size, Image.Resampling.BICUBIC))
    return resized, f"upscaled from {width}x{height} to {new_size[0]}x{new_size[1]} to fit {size}px patches"


def grid_positions(height: int, width: int, config: PatchConfig) -> list[tuple[int, int]]:
    """Top-left corners of ``num_patches`` patches spread evenly over the image."""
    size, count = config.size, config.num_patches
    rows = max(1, round(math.sqrt(count * height / width)))
    cols = max(1, math.ceil(count / rows))
    ys = np.linspace(0, height - size, rows).round().astype(int)
    xs = np.linspace(0, width - size, cols).round().astype(int)
    grid = [(int(y), int(x)) for y in ys for x in xs]
    chosen = np.linspace(0, len(grid) - 1, count).round().astype(int)
    return [grid[i] for i in chosen]


def random_positions(height: int, width: int, config: PatchConfig,
                     rng: np.random.Generator) -> list[tuple[int, int]]:
    """Uniformly random corners, for training augmentation."""
    ys = rng.integers(0, height - config.size + 1, config.num_patches)
    xs = rng.integers(0, width - config.size + 1, config.num_patches)
    return [(int(y), int(x)) for y, x in zip(ys, xs)]


def crop(pixels: np.ndarray, positions: list[tuple[int, int]], size: int) -> torch.Tensor:
    """Cut the patches: returns [P, 3, size, size] floats in 0–1."""
    height, width = pixels.shape[:2]
    if min(height, width) < size:
        raise InvalidImageError(f"image {width}x{height} is smaller than the {size}px patch")
    patches = np.stack([pixels[y:y + size, x:x + size] for y, x in positions])
    return torch.from_numpy(patches).permute(0, 3, 1, 2).float().div_(255.0)


def check_alignable(reference_shape: tuple[int, ...], image_shape: tuple[int, ...]) -> None:
    """Raise ``InvalidImageError`` unless an original of ``reference_shape`` can be aligned with an image
    of ``image_shape``: the same aspect ratio within 1% (callers check before storing anything)."""
    ref_h, ref_w = reference_shape[:2]
    img_h, img_w = image_shape[:2]
    if abs(ref_w / ref_h - img_w / img_h) > 0.01 * (img_w / img_h):
        raise InvalidImageError(
            f"the pristine original ({ref_w}x{ref_h}) does not have the image's shape "
            f"({img_w}x{img_h}); full-reference scoring needs the aligned original"
        )


def align_reference(reference: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Make the pristine original pixel-aligned with the image for the FR teacher.

    Same size: used as is. Same aspect ratio (within 1%): resized. Otherwise the
    two cannot be aligned and the caller gets a clear error.
    """
    if reference.shape[:2] == image.shape[:2]:
        return reference, None
    check_alignable(reference.shape, image.shape)
    ref_h, ref_w = reference.shape[:2]
    img_h, img_w = image.shape[:2]
    resized = np.asarray(Image.fromarray(reference).resize((img_w, img_h), Image.Resampling.LANCZOS))
    return resized, f"pristine original resized from {ref_w}x{ref_h} to {img_w}x{img_h}"
