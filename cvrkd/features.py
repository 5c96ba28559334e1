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

from cvrkd.backbone import FrozenBackbone
from cvrkd.patches import PatchConfig, crop, fit_to_patch, grid_positions

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


def grid_features(backbone: FrozenBackbone, pixels: np.ndarray, config: PatchConfig) -> torch.Tensor:
    """[P, C, 7, 7] features of an image's inference grid (small images upscaled first)."""
    fitted, _ = fit_to_patch(pixels, config.size)
    positions = grid_positions(fitted.shape[0], fitted.shape[1], config)
    return pooled_features(backbone, crop(fitted, positions, config.size))
