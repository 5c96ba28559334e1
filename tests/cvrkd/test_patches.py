import numpy as np
import pytest

from cvrkd.imageio import InvalidImageError
from cvrkd.patches import PatchConfig, align_reference, crop, fit_to_patch, grid_positions, random_positions

CONFIG = PatchConfig(num_patches=10, size=224)


@pytest.mark.parametrize("height,width", [(224, 224), (384, 512), (768, 1024), (224, 2000), (1500, 300)])
def test_grid_is_deterministic_inside_the_image_and_spread(height, width):
    first = grid_positions(height, width, CONFIG)
    assert first == grid_positions(height, width, CONFIG)
    assert len(first) == CONFIG.num_patches
    for y, x in first:
        assert 0 <= y <= height - CONFIG.size and 0 <= x <= width - CONFIG.size
    if height > 300 and width > 300:
        ys, xs = zip(*first)
        assert min(ys) == 0 and max(ys) == height - CONFIG.size
        assert min(xs) == 0 and max(xs) == width - CONFIG.size


def test_random_positions_are_seeded():
    a = random_positions(500, 600, CONFIG, np.random.default_rng(3))
    b = random_positions(500, 600, CONFIG, np.random.default_rng(3))
    assert a == b and a != random_positions(500, 600, CONFIG, np.random.default_rng(4))


def test_small_images_are_upscaled_to_the_patch_size():
    pixels = np.zeros((100, 150, 3), np.uint8)
    fitted, note = fit_to_patch(pixels, 224)
    assert min(fitted.shape[:2]) == 224 and note and "upscaled" in note
    same, none = fit_to_patch(np.zeros((300, 300, 3), np.uint8), 224)
    assert same.shape == (300, 300, 3) and none is None


def test_crop_shapes_and_range():
    pixels = np.full((300, 400, 3), 255, np.uint8)
    patches = crop(pixels, grid_positions(300, 400, CONFIG), 224)
    assert patches.shape == (10, 3, 224, 224) and float(patches.max()) == 1.0
    with pytest.raises(InvalidImageError):
        crop(np.zeros((100, 100, 3), np.uint8), [(0, 0)], 224)


def test_teacher_reference_alignment():
    image = np.zeros((300, 400, 3), np.uint8)
    same, note = align_reference(image.copy(), image)
    assert same.shape == image.shape and note is None
    resized, note = align_reference(np.zeros((600, 800, 3), np.uint8), image)
    assert resized.shape == image.shape and "resized" in note
    with pytest.raises(InvalidImageError, match="aligned original"):
        align_reference(np.zeros((400, 400, 3), np.uint8), image)


def test_whole_view_keeps_training_sized_images_and_downscales_larger_ones():
    """Every image the model learns from (clive 500 px, Kodak 512 px, gallery up to 640 px) reaches
    the whole-image view untouched; larger photos are capped, with a note, and the cap is part of
    the feature-cache key so features of two caps never mix."""
    from cvrkd.features import whole_view
    from cvrkd.patches import MAX_VIEW_SIDE

    for shape in [(500, 500, 3), (512, 341, 3), (427, 640, 3)]:
        pixels = np.zeros(shape, np.uint8)
        view, note = whole_view(pixels)
        assert view is pixels and note is None
    view, note = whole_view(np.zeros((768, 1024, 3), np.uint8))
    assert view.shape == (480, 640, 3) and "1024x768 to 640x480" in note
    assert PatchConfig(10, 224, whole_view=True).key().endswith(f"w{MAX_VIEW_SIDE}")
    assert PatchConfig(10, 224).key() == "p10s224"
