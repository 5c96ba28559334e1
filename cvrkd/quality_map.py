"""Where in the image quality is lost: a gradient x input map over the patch grid.

The student's score is differentiated with respect to the pooled LQ features;
each (patch, 7x7 cell) gets the sum over channels of gradient x feature. Cells
with negative attribution pull the score down. Cells are painted back onto the
image region they summarise (32x32 px of a 224 px patch) and averaged where
patches overlap; areas no patch covers stay at zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cvrkd.features import GRID, pooled_features
from cvrkd.gallery import Gallery
from cvrkd.imageio import ImageSource, LoadedImage, load_image
from cvrkd.patches import crop, fit_to_patch, grid_positions


@dataclass
class QualityMap:
    """``loss`` is H x W in 0–1: 1 where the image lowers the score the most."""

    loss: np.ndarray
    pixels: np.ndarray

    def overlay(self, strength: float = 0.6) -> np.ndarray:
        """The image with quality loss painted in red, as H x W x 3 uint8."""
        tint = np.zeros_like(self.pixels, dtype=np.float32)
        tint[..., 0] = 255.0
        alpha = (strength * self.loss)[..., None]
        blended = self.pixels.astype(np.float32) * (1 - alpha) + tint * alpha
        return blended.clip(0, 255).astype(np.uint8)


def quality_map(scorer, image: ImageSource | LoadedImage, gallery: Gallery | None = None) -> QualityMap:
    """Compute the map for ``image`` with the scorer's student and gallery."""
    loaded = image if isinstance(image, LoadedImage) else load_image(image)
    size = scorer.patches.size
    pixels, _ = fit_to_patch(loaded.pixels, size)
    positions = grid_positions(pixels.shape[0], pixels.shape[1], scorer.patches)
    features = pooled_features(scorer.backbone, crop(pixels, positions, size)).clone().requires_grad_(True)
    references = scorer.gallery_features(gallery)
    network = scorer.student.network
    with torch.enable_grad():
        batch = features.unsqueeze(0).expand(references.shape[0], *features.shape)
        score = network(batch, references.float()).score.mean()
        # autograd.grad, not backward(): the shared network's parameters get no stored gradients
        (gradient,) = torch.autograd.grad(score, features)
    attribution = (gradient * features.detach()).sum(dim=1).numpy()  # [P, 7, 7]
    total = np.zeros(pixels.shape[:2], np.float64)
    count = np.zeros(pixels.shape[:2], np.float64)
    cell = size // GRID
    for (top, left), cells in zip(positions, attribution):
        for row in range(GRID):
            for col in range(GRID):
                y, x = top + row * cell, left + col * cell
                total[y:y + cell, x:x + cell] += cells[row, col]
                count[y:y + cell, x:x + cell] += 1
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    loss = np.clip(-mean, 0, None)
    peak = loss.max()
    return QualityMap(loss=(loss / peak if peak > 0 else loss).astype(np.float32), pixels=pixels)
