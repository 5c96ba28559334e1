"""The quality map and the references' effect, on the shipped model: one absolute scale for every image,
tiles finer than the model's 7x7 cells, and totals that add up to score differences."""
import numpy as np
import pytest

from cvrkd import QualityMap, Scorer, distort, paths, quality_map, reference_effect
from cvrkd.quality_maps import TILES
from tests.helpers.images import photo


@pytest.fixture(scope="module")
def shipped(data_dir) -> Scorer:
    return Scorer(paths.default_model_dir(), cache_dir=data_dir / "cache")


@pytest.fixture(scope="module")
def pristine() -> np.ndarray:
    return photo(512, 384)


@pytest.fixture(scope="module")
def blurred(pristine) -> np.ndarray:
    return distort(pristine, "gaussian_blur", 5, seed=1)


def test_a_pristine_photo_is_painted_far_less_lossy_than_its_blurred_copy(shipped, pristine, blurred):
    """Before, each map was divided by its own peak, so a photo at 66 was as red as its blurred copy at 12."""
    sharp, soft = quality_map(shipped, pristine), quality_map(shipped, blurred)
    assert shipped.score(pristine).score > shipped.score(blurred).score + 30
    assert soft.loss.mean() > 3 * sharp.loss.mean()  # each map divided by its own peak gave about 2x
    assert np.percentile(soft.loss, 90) > QualityMap.scale / 2 > np.percentile(sharp.loss, 90)
    assert sharp.scale == soft.scale == QualityMap.scale  # one scale, not one per image


def test_tiles_are_finer_than_the_models_cells_and_cover_the_image(shipped, pristine):
    qmap = quality_map(shipped, pristine)
    assert max(qmap.loss.shape) == TILES > 7
    rows, cols = qmap.loss.shape
    assert (rows - 1) * qmap.tile < qmap.pixels.shape[0] <= rows * qmap.tile
    assert (cols - 1) * qmap.tile < qmap.pixels.shape[1] <= cols * qmap.tile
    assert float(qmap.loss.min()) >= 0


def test_the_map_adds_up_to_the_points_below_the_gallerys_own_photos(shipped, blurred):
    """Integrated gradients from each reference: all regions together are the image's score minus what the
    references score against themselves, so a reading of the map is in score points."""
    gallery = shipped.default_gallery()
    references_alone = np.mean([reference_effect(shipped, image, gallery).alone for image in gallery.load_images()])
    qmap = quality_map(shipped, blurred, gallery)
    assert qmap.total == pytest.approx(shipped.score(blurred, gallery).score - references_alone, abs=1.5)


def test_the_reference_effect_is_the_score_with_each_reference_against_the_score_alone(shipped, blurred):
    gallery = shipped.default_gallery()
    result, effect = shipped.score(blurred, gallery), reference_effect(shipped, blurred, gallery)
    assert effect.names == [r.name for r in result.per_reference]
    assert effect.with_reference == pytest.approx([r.score for r in result.per_reference], abs=0.05)
    assert 0 <= effect.alone <= 100
    assert effect.added == pytest.approx([score - effect.alone for score in effect.with_reference])


def test_a_patch_layout_gets_a_map_of_the_same_kind(untrained_bundle, data_dir):
    """The map follows the scorer's layout (here: ten 224 px patches of an untrained test model)."""
    scorer = Scorer(untrained_bundle, allow_untrained=True, cache_dir=data_dir / "cache", backend="torch")
    assert scorer.patches.num_patches == 10
    pixels = photo(448, 300)
    qmap = quality_map(scorer, pixels)
    assert max(qmap.loss.shape) == TILES and qmap.pixels.shape == pixels.shape and np.isfinite(qmap.total)
