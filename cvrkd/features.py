"""Backbone features of a set of patches, pooled to a fixed 7x7 grid.

The model's per-stage 1x1 projection is linear, so it commutes with average
pooling: pooling *before* projecting gives exactly the same result. That lets
us cache these model-independent tensors (one per image or gallery reference)
and reuse them across teacher, student and every re-distilled version that
shares the backbone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cvrkd.backbone import FrozenBackbone

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
