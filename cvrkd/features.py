"""Backbone features of a set of patches, pooled to a fixed 7x7 grid.

The model's per-stage 1x1 projection is linear, so it commutes with average
pooling: pooling *before* projecting gives exactly the same result. That lets
us cache these model-independent tensors (one per image or gallery reference)
and reuse them across teacher, student and every re-distilled version that
shares the backbone.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cvrkd.backbone import FrozenBackbone
from cvrkd.patches import MAX_VIEW_SIDE, PatchConfig, crop, fit_to_patch, grid_positions

GRID = 7


@torch.inference_mode()
def pooled_features(backbone: FrozenBackbone, patches: torch.Tensor,
                    batch_size: int = 16) -> torch.Tensor:
    """patches [P, 3, S, S] in 0–1 -> [P, sum(channels), 7, 7] float32."""
    chunks = []
    for start in range(0, patches.shape[0], batch_size):
        maps = backbone(patches[start:start + batch_size])
        chunks.append(torch.cat([F.adaptive_avg_pool2d(m, GRID) for m in maps], dim=1))
    return torch.cat(chunks, dim=0).float()


def resize_long_side(pixels: np.ndarray, long_side: int) -> np.ndarray:
    """Downscale (Lanczos) so the long side is at most ``long_side``; smaller images as they are."""
    height, width = pixels.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))


def whole_view(pixels: np.ndarray) -> tuple[np.ndarray, str | None]:
    """The image for the whole-image view: as is, or downscaled to ``MAX_VIEW_SIDE``."""
    view = resize_long_side(pixels, MAX_VIEW_SIDE)
    if view is pixels:
        return pixels, None
    (height, width), (new_h, new_w) = pixels.shape[:2], view.shape[:2]
    return view, f"whole-image view downscaled from {width}x{height} to {new_w}x{new_h}"


@torch.inference_mode()
def whole_features(backbone: FrozenBackbone, pixels: np.ndarray) -> torch.Tensor:
    """[1, C, 7, 7]: one backbone pass over the whole (view-sized) image, pooled per stage."""
    tensor = torch.from_numpy(np.array(pixels, copy=True)).permute(2, 0, 1)[None].float().div_(255.0)
    return pooled_features(backbone, tensor)


@torch.inference_mode()
def native_statistics(backbone: FrozenBackbone, pixels: np.ndarray) -> torch.Tensor:
    """[2C]: per-channel mean and standard deviation of each stage map over every pixel of the
    whole view (a frozen-feature baseline; the 7x7 pooling keeps the mean but not this spread)."""
    tensor = torch.from_numpy(np.array(pixels, copy=True)).permute(2, 0, 1)[None].float().div_(255.0)
    maps = backbone(tensor)
    return torch.cat([m.mean(dim=(2, 3)) for m in maps] + [m.std(dim=(2, 3)) for m in maps], dim=1)[0].float()


def grid_features(backbone: FrozenBackbone, pixels: np.ndarray, config: PatchConfig,
                  notes: list[str] | None = None) -> torch.Tensor:
    """[views, C, 7, 7]: the fixed grid of patches (small images upscaled first), then the
    whole-image view when the layout has one. ``notes`` collects what was resized."""
    parts = []
    if config.num_patches:
        fitted, note = fit_to_patch(pixels, config.size)
        positions = grid_positions(fitted.shape[0], fitted.shape[1], config)
        parts.append(pooled_features(backbone, crop(fitted, positions, config.size)))
        if note and notes is not None:
            notes.append(note)
    if config.whole_view:
        view, note = whole_view(pixels)
        parts.append(whole_features(backbone, view))
        if note and notes is not None:
            notes.append(note)
    return torch.cat(parts)
