"""Phase 2c: the ridge readout on the student's own whole-view statistics is a fixed part of the
network, mixes with the head's score as fitted, and scores the same through every runtime."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from cvrkd.checkpoint import CheckpointInfo, save_checkpoint
from cvrkd.gallery import create_gallery
from cvrkd.imageio import load_image
from cvrkd.model import CVRKDNet, GlobalStatisticsHead, ModelConfig
from cvrkd.patches import PatchConfig
from cvrkd.scorer import Scorer
from cvrkd.train.finetune import Photos, predict, views_and_scores
from cvrkd.train.pairwise import judgement_pairs
from cvrkd.train.readout import readout_share, readout_statistics, refit_readout, ridge, with_readout
from tests.helpers.images import photo

WHOLE = PatchConfig(num_patches=0, whole_view=True)


def _network(seed: int) -> CVRKDNet:
    torch.manual_seed(seed)
    return CVRKDNet(ModelConfig(num_patches=1, dim=32, lq_depth=1, diff_depth=2, distill_layers=2,
                                global_head=16, head_reads_branches=True)).eval()


def _standardised(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / values.std()


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    images = [(f"ref{i}", load_image(photo(160 + 16 * i, 128))) for i in range(2)]
    return create_gallery(tmp_path_factory.mktemp("gallery"), "small", images)


@pytest.fixture(scope="module")
def photos() -> Photos:
    rng = np.random.default_rng(0)
    pixels = []
    for i in range(10):  # noise grows with the index, MOS falls
        noisy = photo(112 + 8 * (i % 3), 96) + rng.normal(0, 5 * i, (96, 112 + 8 * (i % 3), 3))
        pixels.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return Photos(pixels, np.linspace(90, 20, 10) + rng.normal(0, 3, 10))


def test_the_readout_mixes_the_standardised_head_score_and_ridge_prediction_as_fitted(gallery, photos):
    network = _network(1)
    views, head = views_and_scores(network, photos.pixels, gallery)
    statistics = GlobalStatisticsHead.statistics(views).double().numpy()
    fitted = ridge().fit(statistics, photos.mos).predict(statistics)
    for share in (0.5, 0.7):
        mixed = with_readout(network, photos, gallery, share)
        expected = (1 - share) * _standardised(head) + share * _standardised(fitted)
        assert np.allclose(predict(mixed, photos.pixels, gallery), expected, atol=1e-3)
    assert network.readout is None  # the input is not changed


def test_the_readout_alone_is_an_nr_score_the_same_against_every_reference(gallery, photos):
    alone = with_readout(_network(1), photos, gallery, 1.0)
    views, _ = views_and_scores(alone, photos.pixels[:1], gallery)
    references = torch.rand(3, 1, *views.shape[1:]) * 3
    scores = alone.score_references(views, references)
    assert torch.allclose(scores, scores[0].expand(3))
    with pytest.raises(ValueError, match="already has a readout"):
        with_readout(alone, photos, gallery, 0.5)
    with pytest.raises(ValueError, match="share"):
        with_readout(_network(1), photos, gallery, 0.0)


def test_a_student_with_a_readout_scores_alike_from_its_checkpoint_in_torch_and_onnx(gallery, photos, tmp_path):
    pytest.importorskip("onnxruntime")
    fitted = with_readout(_network(1), photos, gallery, 0.5)
    mixed = CVRKDNet(replace(fitted.config, calibration=(100.0, 0.0, 0.0, 1.0))).eval()
    mixed.load_state_dict(fitted.state_dict())
    for role, network in (("student", mixed), ("teacher", _network(2))):
        save_checkpoint(network, CheckpointInfo(role, "lite0", network.config, WHOLE, trained=True),
                        tmp_path / "bundle" / role)
    image = photos.pixels[3]
    expected = predict(mixed, [image], gallery)[0]  # the mean over the references of calibrated scores
    assert 0 < expected < 100
    for backend in ("torch", "onnxruntime"):
        scorer = Scorer(tmp_path / "bundle", backend=backend, cache_dir=tmp_path / backend, gallery=gallery)
        assert scorer.score(image).score == pytest.approx(expected, abs=0.01), backend


def test_synthetic_anchors_hold_the_readout_to_its_own_scores_of_them(gallery, photos):
    known, new = photos.subset(np.arange(7)), photos.subset(np.arange(7, 10))
    fitted = with_readout(_network(1), known, gallery, 0.5)
    statistics = readout_statistics(fitted, new.pixels, gallery)
    rng = np.random.default_rng(1)
    distorted = [np.clip(photo(120, 96) + rng.normal(0, 12 * k, (96, 120, 3)), 0, 255).astype(np.uint8)
                 for k in range(6)]
    anchors = readout_statistics(fitted, distorted, gallery)
    pairs = judgement_pairs(np.array([2, 2, 1] * 40), np.array([1, 0, 0] * 40), ["left"] * 120)
    before = _readout_part(fitted, anchors)
    free = refit_readout(fitted, statistics, pairs)
    held = refit_readout(fitted, statistics, pairs, anchors=anchors, anchor_weight=5.0)
    drift = {name: np.abs(_readout_part(network, anchors) - before).mean() for name, network in
             (("free", free), ("held", held))}
    assert drift["held"] < 0.5 * drift["free"]
    after = _readout_part(held, statistics)
    assert after[2] > after[0]  # the people still move the new photos their way
    unweighted = refit_readout(fitted, statistics, pairs, anchors=anchors, anchor_weight=0.0)
    assert np.allclose(_readout_part(unweighted, anchors), _readout_part(free, anchors))


def _readout_part(network: CVRKDNet, statistics: np.ndarray) -> np.ndarray:
    readout = network.readout
    return statistics @ readout.weight.double().numpy() + float(readout.bias)


def test_the_readout_keeps_the_statistics_and_mos_it_was_fitted_on_not_the_photos(gallery, photos):
    fitted = with_readout(_network(1), photos, gallery, 0.4)
    views, _ = views_and_scores(_network(1), photos.pixels, gallery)
    statistics = GlobalStatisticsHead.statistics(views)
    assert torch.allclose(fitted.readout.memory_statistics, statistics.float())
    assert np.allclose(fitted.readout.memory_mos.numpy(), photos.mos)
    assert readout_share(fitted) == pytest.approx(0.4)


def test_a_refit_without_judgements_is_the_readout_it_started_from(gallery, photos):
    fitted = with_readout(_network(1), photos, gallery, 0.5)
    none = judgement_pairs(np.zeros(0, int), np.zeros(0, int), [])
    refitted = refit_readout(fitted, np.zeros((0, fitted.readout.weight.numel())), none)
    assert np.allclose(predict(refitted, photos.pixels, gallery), predict(fitted, photos.pixels, gallery), atol=1e-3)
    assert fitted.readout is not refitted.readout


def test_judgements_of_new_photos_move_the_readout_their_way_and_keep_its_share(gallery, photos):
    known, new = photos.subset(np.arange(7)), photos.subset(np.arange(7, 10))
    fitted = with_readout(_network(1), known, gallery, 0.5)
    statistics = readout_statistics(fitted, new.pixels, gallery)
    # people say the reverse of the MOS among the new photos: the noisiest looks best
    first, second = np.array([2, 2, 1] * 40), np.array([1, 0, 0] * 40)
    pairs = judgement_pairs(first, second, ["left"] * 120)
    before, after = _readout_part(fitted, statistics), _readout_part(refit_readout(fitted, statistics, pairs),
                                                                     statistics)
    assert not (before[2] > before[1] > before[0])
    assert after[2] > after[1] > after[0]
    assert readout_share(refit_readout(fitted, statistics, pairs)) == pytest.approx(0.5)
