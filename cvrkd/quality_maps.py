"""Where in the image quality is lost: a gradient x input map over the patch grid.

The student's score is differentiated with respect to the pooled LQ features;
each (patch, 7x7 cell) gets the sum over channels of gradient x feature. Cells
with negative attribution pull the score down. Cells are painted back onto the
image region they summarise (32x32 px of a 224 px patch) and averaged where
patches overlap; areas no patch covers stay at zero. With a whole-image view, its
7x7 cells are painted over the whole image (each a 1/7 x 1/7 tile) and averaged in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cvrkd.features import GRID, grid_features
from cvrkd.gallery import Gallery
from cvrkd.imageio import ImageSource, LoadedImage, load_image
from cvrkd.patches import fit_to_patch, grid_positions


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
    features = grid_features(scorer.backbone, loaded.pixels, scorer.patches).clone().requires_grad_(True)
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
    if scorer.patches.whole_view:
        ys = np.linspace(0, pixels.shape[0], GRID + 1).round().astype(int)
        xs = np.linspace(0, pixels.shape[1], GRID + 1).round().astype(int)
        for row in range(GRID):
            for col in range(GRID):
                total[ys[row]:ys[row + 1], xs[col]:xs[col + 1]] += attribution[-1, row, col]
                count[ys[row]:ys[row + 1], xs[col]:xs[col + 1]] += 1
    for (top, left), cells in zip(positions, attribution[: scorer.patches.num_patches]):
        for row in range(GRID):
            for col in range(GRID):
                y, x = top + row * cell, left + col * cell
                total[y:y + cell, x:x + cell] += cells[row, col]
                count[y:y + cell, x:x + cell] += 1
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    loss = np.clip(-mean, 0, None)
    peak = loss.max()
    return QualityMap(loss=(loss / peak if peak > 0 else loss).astype(np.float32), pixels=pixels)
