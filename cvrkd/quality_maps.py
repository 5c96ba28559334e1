"""Where in the image quality is lost, in score points, on one scale for every image.

Integrated gradients from the gallery's photos: for each reference, the student's
calibrated score is followed along a straight path in feature space from the
reference's own features (a high-quality photo) to the image's, and the
gradients along the path are summed per 7x7 cell and channel. By construction
the cells' attributions add up to (score of the image − score of the
reference against itself), averaged over the references: the points this image
falls short of the gallery's photos, spread over where the features differ.

The cells are then refined to the resolution of each backbone stage (stride 4
to 32 of a view): a cell's attribution is shared among the feature-map pixels
it pools, by their activations, so the finer map still adds up to the same
total. Views (patches, the whole-image view) are painted where they lie.

``QualityMap.loss`` is the loss density in score points per 1% of the image
area, averaged over square tiles (``TILES`` along the long side), so equal
numbers mean equal loss whatever the image's size; ``LOSS_SCALE`` fixes the
colour scale: the same colour means the same loss on
every image (nothing is normalised to an image's own peak).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from cvrkd.features import GRID, whole_view
from cvrkd.gallery import Gallery
from cvrkd.imageio import ImageSource, LoadedImage, load_image
from cvrkd.patches import crop, fit_to_patch, grid_positions

STEPS = 4
"""Points on each reference-to-image path (midpoint rule). On a heavily blurred photo the total
was −63.7 at 4 and −64.2 at 8, for half the time (bench/quality_map_cost.py); the test holds the
total to the score difference within 1.5 points (tests/cvrkd/test_quality_maps.py)."""
TILES = 32
"""Tiles along the image's long side (the 7x7 cells would be 7): fine enough to point at an
object, coarse enough that a tile averages a few feature-map pixels instead of showing their noise."""
LOSS_SCALE = 1.0
"""The loss (points per 1% of the image) at which the colour scale saturates, the same for every image.
A heavily blurred photo (scored 11 against 66 for the photo) loses more than this on a tenth of its
area, the photo itself nowhere more than a quarter of it (tests/cvrkd/test_quality_maps.py)."""
UNIT = "score points lost per 1% of the image"


@dataclass
class QualityMap:
    """``loss``: one value per tile (rows x columns), score points lost per 1% of the image area
    (0 where the tile loses nothing); ``tile``: the tiles' side in pixels of ``pixels``, the image
    the map lies on (upscaled when smaller than a patch)."""

    loss: np.ndarray
    tile: int
    pixels: np.ndarray
    total: float
    """Net points of all regions together (negative: the image scores below the gallery's photos)."""
    scale: ClassVar[float] = LOSS_SCALE
    unit: ClassVar[str] = UNIT


def quality_map(scorer, image: ImageSource | LoadedImage, gallery: Gallery | None = None) -> QualityMap:
    """The map of ``image`` for the scorer's student against ``gallery`` (default: the scorer's)."""
    loaded = image if isinstance(image, LoadedImage) else load_image(image)
    student = scorer.student  # one model for the whole call, even if a swap lands meanwhile
    pixels, _ = fit_to_patch(loaded.pixels, scorer.patches.size)
    views = _views(scorer, loaded.pixels, pixels)
    maps = [student.backbone(view) for view, _ in views]  # per view: the stage maps, [1, c, h, w] each
    features = torch.cat([_pool(stages) for stages in maps])  # [V, C, 7, 7], as the scorer sees them
    references = scorer.gallery_features(gallery, student=student).float()  # [K, V, C, 7, 7]
    gradient, baseline = _path_gradients(student.network, features, references)
    density = np.zeros(pixels.shape[:2], np.float64)
    for (_, (top, left, height, width)), stages, view_gradient, view_baseline in zip(
            views, maps, gradient, baseline):
        density[top:top + height, left:left + width] += _refined(stages, view_gradient, view_baseline,
                                                                 (height, width))
    tile = -(-max(pixels.shape[:2]) // TILES)
    tiles = F.avg_pool2d(torch.from_numpy(density)[None, None], tile, ceil_mode=True)[0, 0].numpy()
    per_unit = tiles * (0.01 * density.size)  # points per pixel -> points per 1% of the image
    return QualityMap(loss=np.clip(-per_unit, 0, None).astype(np.float32), tile=tile, pixels=pixels,
                      total=float(density.sum()))

def _views(scorer, original: np.ndarray, fitted: np.ndarray) -> list[tuple[torch.Tensor, tuple[int, int, int, int]]]:
    """Each view the network reads, as a [1, 3, h, w] tensor, and the (top, left, height, width)
    it covers in ``fitted``, in the order of the scorer's features (patches, then the whole view)."""
    layout = scorer.patches
    views = []
    if layout.num_patches:
        positions = grid_positions(fitted.shape[0], fitted.shape[1], layout)
        patches = crop(fitted, positions, layout.size)
        views += [(patch[None], (top, left, layout.size, layout.size))
                  for patch, (top, left) in zip(patches, positions)]
    if layout.whole_view:
        view, _ = whole_view(original)
        tensor = torch.from_numpy(np.array(view, copy=True)).permute(2, 0, 1)[None].float().div_(255.0)
        views.append((tensor, (0, 0, fitted.shape[0], fitted.shape[1])))
    return views


def _pool(stages: list[torch.Tensor]) -> torch.Tensor:
    """[1, C, 7, 7]: the stage maps pooled as ``cvrkd.features`` pools them."""
    return torch.cat([_pooled(stage) for stage in stages])[None]


def _path_gradients(network, features: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients of the calibrated score from each reference to the image.

    Returns the path-averaged gradient (mean over references) [V, C, 7, 7] and the baseline
    term, mean over references of reference x gradient, [V, C, 7, 7]: the cells' attribution
    is ``features * gradient - baseline``."""
    count = references.shape[0]
    alphas = (torch.arange(STEPS, dtype=torch.float32) + 0.5) / STEPS
    start = references.repeat_interleave(STEPS, dim=0)  # [K*S, V, C, 7, 7]
    path = (start + alphas.repeat(count).view(-1, 1, 1, 1, 1) * (features[None] - start)).requires_grad_(True)
    with torch.enable_grad():
        score = network.calibrate(network(path, start).score).sum()
        # autograd.grad, not backward(): the shared network's parameters get no stored gradients
        (gradient,) = torch.autograd.grad(score, path)
    per_reference = gradient.view(count, STEPS, *features.shape).mean(dim=1)  # [K, V, C, 7, 7]
    return per_reference.mean(dim=0), (per_reference * references).mean(dim=0)


def _refined(stages: list[torch.Tensor], gradient: torch.Tensor, baseline: torch.Tensor,
             size: tuple[int, int]) -> np.ndarray:
    """One view's attribution at each stage's resolution, as points per pixel over ``size``.

    Each stage's share of a cell (its channels' ``feature x gradient − baseline``) keeps its
    sign and is shared among the map pixels the cell pools, in proportion to how strongly each
    pixel's activations meet the gradient (|activation x gradient| summed over channels), so
    the pixels of a cell add up to the cell's attribution. Sharing by the signed products
    instead would split every cell into large positive and negative pixels that cancel: a
    pristine photo would look as damaged as its blurred copy. Each stage's map is then spread
    over the view's area, keeping its sum."""
    density = torch.zeros(size, dtype=torch.float64)
    offset = 0
    for stage in stages:
        part = slice(offset, offset + stage.shape[1])
        offset += stage.shape[1]
        cells = (_pooled(stage) * gradient[part] - baseline[part]).sum(dim=0).flatten()  # [49]
        height, width = stage.shape[2:]
        rows, cols = torch.arange(height) * GRID // height, torch.arange(width) * GRID // width
        cell = rows[:, None] * GRID + cols[None, :]  # [h, w]: the one cell each map pixel is shared in
        strength = (stage[0].float().abs() * gradient[part].abs()[:, rows][:, :, cols]).sum(dim=0)  # [h, w]
        strength = strength + 1e-6 * float(strength.mean()) + 1e-12  # a cell with no strength shares evenly
        totals = torch.zeros(GRID * GRID).index_add_(0, cell.flatten(), strength.flatten())
        attribution = strength * (cells / totals)[cell]  # [h, w]; a cell's pixels add up to the cell
        area = size[0] * size[1] / attribution.numel()
        density += F.interpolate(attribution[None, None].double(), size=size, mode="nearest")[0, 0] / area
    return density.numpy()


def _pooled(stage: torch.Tensor) -> torch.Tensor:
    """[c, 7, 7]: one stage map pooled as the scorer pools it."""
    return F.adaptive_avg_pool2d(stage.float(), GRID)[0]
