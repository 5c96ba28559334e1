"""Phase 2b: the student fine-tunes its backbone's last stages, and everything that reads the
backbone follows the checkpoint (gallery features, caches, runtime exports, the FR teacher)."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from cvrkd.backbone import FrozenBackbone
from cvrkd.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from cvrkd.evaluation import range_logistic_params, logistic4
from cvrkd.gallery import create_gallery
from cvrkd.imageio import load_image
from cvrkd.model import CVRKDNet, ModelConfig
from cvrkd.patches import PatchConfig
from cvrkd.scorer import Scorer
from cvrkd.train.finetune import (FinetuneConfig, Photos, SyntheticPixels, finetune, predict,
                                  tuned_backbone, with_tail)
from tests.helpers.images import photo

WHOLE = PatchConfig(num_patches=0, whole_view=True)


def _network(seed: int) -> CVRKDNet:
    torch.manual_seed(seed)
    return CVRKDNet(ModelConfig(num_patches=1, dim=32, lq_depth=1, diff_depth=2, distill_layers=2,
                                global_head=16, head_reads_branches=True)).eval()


def _bundle(folder, student: CVRKDNet, teacher: CVRKDNet):
    for role, network in (("teacher", teacher), ("student", student)):
        save_checkpoint(network, CheckpointInfo(role, "lite0", network.config, WHOLE, trained=True),
                        folder / role)
    return folder


def _perturbed_tail_student(seed: int = 0) -> CVRKDNet:
    network = with_tail(_network(1), FrozenBackbone(), 2)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in network.backbone_tail.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return network


@pytest.fixture(scope="module")
def small_gallery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gallery")
    images = [(f"ref{i}", load_image(photo(160 + 16 * i, 128))) for i in range(2)]
    return create_gallery(folder, "small", images)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    teacher = _network(2)
    plain = _bundle(root / "plain", _network(1), teacher)
    tuned = _bundle(root / "tuned", _perturbed_tail_student(), teacher)
    return plain, tuned


def test_a_tuned_student_scores_with_its_own_backbone_and_gallery_features(bundles, small_gallery, tmp_path):
    plain_dir, tuned_dir = bundles
    cache = tmp_path / "cache"  # shared: a reused entry would be found here
    plain = Scorer(plain_dir, backend="torch", cache_dir=cache, gallery=small_gallery)
    tuned = Scorer(tuned_dir, backend="torch", cache_dir=cache, gallery=small_gallery)
    plain_refs, tuned_refs = plain.gallery_features(), tuned.gallery_features()
    assert plain.backbone.fingerprint() != tuned.backbone.fingerprint()
    assert not torch.allclose(plain_refs, tuned_refs)
    network = load_checkpoint(tuned_dir / "student")[0]
    expected = FrozenBackbone().with_tail(network.backbone_tail)
    from cvrkd.features import grid_features

    direct = torch.stack([grid_features(expected, image.pixels, WHOLE) for image in small_gallery.load_images()])
    assert torch.allclose(tuned_refs, direct, atol=1e-5)
    # the FR teacher keeps the ImageNet backbone it learnt on
    image, original = photo(200, 160), photo(200, 160)
    assert tuned.score(image, reference=original).score == pytest.approx(
        plain.score(image, reference=original).score, abs=1e-4)


def test_swapping_in_a_tuned_student_recomputes_the_gallery_features(bundles, small_gallery, tmp_path):
    plain_dir, tuned_dir = bundles
    scorer = Scorer(plain_dir, backend="torch", cache_dir=tmp_path / "cache", gallery=small_gallery)
    image = photo(224, 192)
    before = scorer.gallery_features()
    scorer.swap_student(tuned_dir / "student")
    after = scorer.gallery_features()
    assert not torch.allclose(before, after)
    fresh = Scorer(tuned_dir, backend="torch", cache_dir=tmp_path / "fresh", gallery=small_gallery)
    assert scorer.score(image).score == pytest.approx(fresh.score(image).score, abs=1e-4)


def test_a_tuned_student_gets_its_own_runtime_export(bundles, small_gallery, tmp_path):
    pytest.importorskip("onnxruntime")
    plain_dir, tuned_dir = bundles
    plain = Scorer(plain_dir, backend="onnxruntime", cache_dir=tmp_path / "cache", gallery=small_gallery)
    tuned = Scorer(tuned_dir, backend="onnxruntime", cache_dir=tmp_path / "cache", gallery=small_gallery)
    assert tuned.backend == "onnxruntime"
    assert plain.backbone.fingerprint() != tuned.backbone.fingerprint()
    probe = torch.rand(1, 3, 96, 128)
    network = load_checkpoint(tuned_dir / "student")[0]
    expected = FrozenBackbone().with_tail(network.backbone_tail)(probe)
    exported = tuned.backbone(probe)
    untuned = plain.backbone(probe)
    assert all(torch.allclose(e, x, atol=1e-3, rtol=1e-3) for e, x in zip(expected, exported))
    assert not torch.allclose(expected[-1], untuned[-1], atol=1e-3)
    torch_scorer = Scorer(tuned_dir, backend="torch", cache_dir=tmp_path / "torch", gallery=small_gallery)
    image = photo(256, 192)
    assert tuned.score(image).score == pytest.approx(torch_scorer.score(image).score, abs=0.01)


def _photos(count: int = 6) -> Photos:
    rng = np.random.default_rng(0)
    pixels = [photo(112 + 8 * (i % 3), 96) for i in range(count)]
    for i in range(count):  # vary the quality: noise grows with the index
        noise = rng.normal(0, 6 * i, pixels[i].shape)
        pixels[i] = np.clip(pixels[i] + noise, 0, 255).astype(np.uint8)
    return Photos(pixels, np.linspace(90, 20, count), np.full(count, 10.0))


SMALL = FinetuneConfig(tuned_stages=2, epochs=2, batch=3, crop=64, replay_batch=2)


def test_finetuning_moves_the_tail_and_resumes_after_a_kill_to_the_same_weights(small_gallery, tmp_path):
    start = _network(1)
    whole = finetune(start, _photos(), small_gallery, SMALL, tmp_path / "whole", log=lambda m: None)

    class Killed(Exception):
        pass

    def kill_after_first_epoch(message: str) -> None:
        if "epoch 1/" in message:
            raise Killed

    with pytest.raises(Killed):
        finetune(start, _photos(), small_gallery, SMALL, tmp_path / "killed", log=kill_after_first_epoch)
    assert json.loads((tmp_path / "killed" / "latest.json").read_text())["epochs_done"] == 1
    resumed = finetune(start, _photos(), small_gallery, SMALL, tmp_path / "killed", log=lambda m: None)
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    imagenet = FrozenBackbone().tail(2).state_dict()
    moved = [k for k, v in whole.backbone_tail.state_dict().items() if not torch.allclose(v, imagenet[k])]
    assert moved  # the backbone learnt
    assert whole.config.tuned_stages == 2 and start.backbone_tail is None  # the input is not changed


def test_a_wise_ft_share_mixes_the_finished_run_with_its_start_without_training_again(small_gallery, tmp_path):
    start = _network(1)
    tuned = finetune(start, _photos(), small_gallery, SMALL, tmp_path / "run", log=lambda m: None)
    messages = []
    half = finetune(start, _photos(), small_gallery, replace(SMALL, tuned_share=0.5), tmp_path / "run",
                    log=messages.append)
    assert messages == []  # the finished run is read back, not trained again
    assert SMALL.trained() == replace(SMALL, tuned_share=0.5).trained()
    origin = with_tail(start, FrozenBackbone(), 2).state_dict()
    mixed, end = half.state_dict(), tuned.state_dict()
    for key in ("backbone_tail.0.0.conv_pw.weight", "global_head.mlp.1.weight"):
        assert torch.allclose(mixed[key], (origin[key] + end[key]) / 2, atol=1e-6), key
        assert not torch.allclose(mixed[key], end[key])


def test_finetuned_student_round_trips_through_a_checkpoint_and_scores_like_training(small_gallery, tmp_path):
    tuned = finetune(_network(1), _photos(), small_gallery, SMALL, tmp_path / "run", log=lambda m: None)
    save_checkpoint(tuned, CheckpointInfo("student", "lite0", tuned.config, WHOLE, trained=True),
                    tmp_path / "bundle" / "student")
    save_checkpoint(_network(2), CheckpointInfo("teacher", "lite0", _network(2).config, WHOLE, trained=True),
                    tmp_path / "bundle" / "teacher")
    scorer = Scorer(tmp_path / "bundle", backend="torch", cache_dir=tmp_path / "cache", gallery=small_gallery)
    image = photo(144, 112)
    expected = predict(tuned, [image], small_gallery)[0]
    assert scorer.score(image).score == pytest.approx(min(100.0, max(0.0, expected)), abs=1e-3)


def _synthetic_dir(folder):
    source = folder / "source.png"
    Image.fromarray(photo(160, 128)).save(source)
    (folder / "config.json").write_text(json.dumps({"sources": [str(source)], "max_side": 160, "seed": 0,
                                                    "patches": {"num_patches": 0, "size": 64}}))
    rows = [("pristine", 0, 95.0), ("gaussian_blur", 3, 40.0), ("jpeg", 5, 20.0), ("white_noise", 2, 60.0)]
    lines = ["source,source_index,variant,distortion,level,label,split"]
    lines += [f"source.png,0,{i},{name},{level},{label},train" for i, (name, level, label) in enumerate(rows)]
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_replay_and_distillation_train_with_the_teacher_on_aligned_crops(small_gallery, tmp_path):
    replay = SyntheticPixels(_synthetic_dir(tmp_path), "train")
    assert len(replay) == 4 and replay.images[0].shape == replay.originals[1].shape
    assert not np.array_equal(replay.images[1], replay.originals[1])  # regenerated distortion
    teacher = _network(2)
    losses = []
    tuned = finetune(_network(1), _photos(), small_gallery, replace(SMALL, epochs=1), tmp_path / "run",
                     replay=replay, teacher=teacher, log=losses.append)
    assert losses and "loss" in losses[-1]
    assert np.isfinite(predict(tuned, replay.images, small_gallery)).all()
    assert tuned_backbone(tuned).fingerprint() != FrozenBackbone().fingerprint()


def test_range_calibration_uses_the_whole_scale_without_clamping():
    raw = np.linspace(-40, 60, 200)
    human = 50 + 40 * np.tanh(raw / 30) + np.random.default_rng(0).normal(0, 5, raw.shape)
    b1, b2, b3, b4 = range_logistic_params(raw, human)
    assert (b1, b2) == (100.0, 0.0)
    mapped = logistic4(raw, b1, b2, b3, b4)
    assert np.all(np.diff(mapped) > 0) and mapped.min() > 0 and mapped.max() < 100
    assert mapped.min() < 15 and mapped.max() > 85  # reaches towards both ends of the scale


def test_a_recalibrated_checkpoint_gets_its_own_head_export(bundles, small_gallery, tmp_path):
    """Same weights, another calibration in config.json: the runtime's head has the calibration
    baked in, so reusing the first export would serve the old scale."""
    pytest.importorskip("onnxruntime")
    import shutil

    plain_dir, _ = bundles
    image = photo(192, 160)
    Scorer(plain_dir, backend="onnxruntime", cache_dir=tmp_path / "plain", gallery=small_gallery).score(image)
    recalibrated = tmp_path / "recalibrated"
    shutil.copytree(plain_dir, recalibrated)  # its runtime folder too: the first head export is there
    config_path = recalibrated / "student" / "config.json"
    config = json.loads(config_path.read_text())
    config["model"]["calibration"] = [100.0, 0.0, 0.0, 5.0]
    config_path.write_text(json.dumps(config))
    runtime = Scorer(recalibrated, backend="onnxruntime", cache_dir=tmp_path / "cache", gallery=small_gallery)
    in_torch = Scorer(recalibrated, backend="torch", cache_dir=tmp_path / "torch", gallery=small_gallery)
    assert runtime.score(image).score == pytest.approx(in_torch.score(image).score, abs=0.01)
