"""Quality-preserving augmentations of the whole-image view: flips and crops at native
resolution (never resizing or filtering, which would change the quality being learnt).

Each image gets a fixed, seeded plan of variants; variant 0 is always the plain inference
view. A distorted image and its pristine source share a plan, so the FR teacher still sees
aligned pairs.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from cvrkd.backbone import FrozenBackbone
from cvrkd.features import whole_features, whole_view

CROP_SIDE = 0.8
"""Crops keep this share of each side (64% of the area), at native resolution."""


@dataclass(frozen=True)
class ViewVariant:
    flip: bool
    box: tuple[int, int, int, int] | None  # top, left, height, width of a crop; None = whole

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        if self.box is not None:
            top, left, height, width = self.box
            pixels = pixels[top:top + height, left:left + width]
        return pixels[:, ::-1] if self.flip else pixels


def variant_plan(height: int, width: int, count: int, key: str, seed: int = 0) -> list[ViewVariant]:
    """``count`` variants: plain, flipped, then seeded crops (alternately flipped)."""
    plan = [ViewVariant(False, None), ViewVariant(True, None)][:count]
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    crop_h, crop_w = max(1, round(height * CROP_SIDE)), max(1, round(width * CROP_SIDE))
    while len(plan) < count:
        top = int(rng.integers(0, height - crop_h + 1))
        left = int(rng.integers(0, width - crop_w + 1))
        plan.append(ViewVariant(len(plan) % 2 == 1, (top, left, crop_h, crop_w)))
    return plan


def whole_view_variants(backbone: FrozenBackbone, pixels: np.ndarray, count: int, key: str,
                        seed: int = 0) -> torch.Tensor:
    """[count, C, 7, 7] whole-image-view features of the image's variants (float16, for caching).

    The plan depends only on the view's size, ``key`` and ``seed``: a distorted image and its
    pristine source (same size, same key) get the same crops."""
    view, _ = whole_view(pixels)
    plan = variant_plan(*view.shape[:2], count, key, seed)
    return torch.cat([whole_features(backbone, np.ascontiguousarray(v.apply(view))) for v in plan]).half()
