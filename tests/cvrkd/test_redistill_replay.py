"""What re-distillation replays and how it keeps the base model's skill.

The replay sets regenerated from pixels (a real, tiny synthetic training set, and the built-in
photos' set a Space uses), and the weight-space mix (WiSE-FT) over the whole state dict, the
backbone tail included, that makes the candidate.
"""
import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image

from cvrkd.backbone import FrozenBackbone
from cvrkd.feature_cache import FeatureCache
from cvrkd.gallery import create_gallery
from cvrkd.imageio import load_image
from cvrkd.model import CVRKDNet, ModelConfig
from cvrkd.train.finetune import mix_weights, with_tail
from cvrkd.train.redistill import (RedistillConfig, ReplayPixels, choose_mix, gallery_replay, own_scores,
                                   replay_sets)
from tests.helpers.images import photo

SMALL = ModelConfig(num_patches=1, dim=16, lq_depth=1, diff_depth=1, distill_layers=1)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gallery")
    return create_gallery(folder, "small", [("china", load_image(photo(128, 96))),
                                            ("street", load_image(photo(112, 96)))])


@pytest.fixture(scope="module")
def tiny_synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-synthetic")
    source = folder / "source.png"
    Image.fromarray(photo(160, 128)).save(source)
    (folder / "config.json").write_text(json.dumps({"sources": [str(source)], "max_side": 160, "seed": 0,
                                                    "patches": {"num_patches": 0, "size": 64}}))
    rows = [("pristine", 0, 95.0, "train")] + [("gaussian_blur", k, 90.0 - 10 * k, "train") for k in range(1, 6)]
    rows += [("pristine", 0, 95.0, "val"), ("jpeg", 3, 45.0, "val"), ("jpeg", 5, 20.0, "val")]
    lines = ["source,source_index,variant,distortion,level,label,split"]
    lines += [f"source.png,0,{i},{name},{level},{label},{split}" for i, (name, level, label, split) in enumerate(rows)]
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_replay_regenerates_a_seeded_subset_of_the_train_split_and_checks_on_the_val_split(tiny_synthetic, gallery):
    config = RedistillConfig(replay_rows=4, seed=1)
    replay, check, origin = replay_sets(tiny_synthetic, gallery, FeatureCache(None), config)
    assert origin == "synthetic" and len(replay) == 4 and len(check) == 3
    assert set(replay.labels) <= {95.0, 80.0, 70.0, 60.0, 50.0, 40.0}
    assert check.labels.tolist() == [95.0, 45.0, 20.0]
    again, _, _ = replay_sets(tiny_synthetic, gallery, FeatureCache(None), config)
    assert again.labels.tolist() == replay.labels.tolist()  # seeded: a resumed round replays the same rows
    for image, original in zip(check.images, check.originals):  # aligned originals for the teacher
        assert image.shape == original.shape


def test_replay_refuses_a_folder_without_a_synthetic_set(tmp_path, gallery):
    with pytest.raises(FileNotFoundError, match="train data"):
        replay_sets(tmp_path, gallery, FeatureCache(None), RedistillConfig())


def test_without_the_synthetic_set_the_built_in_photos_are_distorted_and_pseudo_labelled(gallery, tmp_path):
    replay, check, origin = replay_sets(None, gallery, FeatureCache(tmp_path / "cache"), RedistillConfig(replay_types=2))
    assert origin == "gallery"
    assert len(check) == 3 and len(replay) == 3  # "china" is a check photo: pristine + 2 distortions each
    for part in (replay, check):
        assert part.labels[0] == 100.0 and (part.labels[1:] < 100.0).all()
        assert part.images[0] is part.originals[0] and not np.array_equal(part.images[1], part.originals[1])
    cached = gallery_replay(gallery, FeatureCache(tmp_path / "cache"), 2, log=lambda m: pytest.fail(m))
    assert cached[1].labels.tolist() == check.labels.tolist()  # labels come from the cache the second time


def test_a_round_that_replays_nothing_labels_the_check_photos_only(gallery, tmp_path):
    """The readout design replays nothing: only the check's photos are distorted and pseudo-labelled."""
    replay, check, origin = replay_sets(None, gallery, FeatureCache(tmp_path / "cache"), RedistillConfig(replay_types=2),
                                        replayed=False)
    full = replay_sets(None, gallery, FeatureCache(tmp_path / "full"), RedistillConfig(replay_types=2))[1]
    assert replay is None and origin == "gallery"
    assert check.labels.tolist() == full.labels.tolist()
    assert all(np.array_equal(a, b) for a, b in zip(check.images, full.images))


def test_mix_keeps_the_chosen_share_of_the_fine_tuning_step_tail_included():
    torch.manual_seed(0)
    base = with_tail(CVRKDNet(SMALL), FrozenBackbone(), 1)
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        for parameter in tuned.parameters():
            parameter.add_(torch.randn_like(parameter))
    start, end = base.state_dict(), tuned.state_dict()
    assert any(k.startswith("backbone_tail.") and not torch.equal(start[k], end[k]) for k in start)
    for share in (0.0, 0.5, 1.0):
        mixed = mix_weights(base, tuned, share).state_dict()
        for name in start:
            assert torch.allclose(mixed[name], start[name] + share * (end[name] - start[name])), (share, name)
    assert all(torch.equal(base.state_dict()[k], start[k]) for k in start)  # base untouched


def _toy_check(base: CVRKDNet, gallery) -> ReplayPixels:
    """Check images labelled with the base model's own scores: the base ranks them perfectly."""
    rng = np.random.default_rng(1)
    images = [np.clip(photo(96, 80) + rng.normal(0, 4 * k, (80, 96, 3)), 0, 255).astype(np.uint8)
              for k in range(16)]
    labels = own_scores(base, {str(k): image for k, image in enumerate(images)}, gallery)
    return ReplayPixels(images, images, np.array([labels[str(k)] for k in range(16)]))


def test_mix_share_is_the_largest_that_keeps_the_synthetic_skill(gallery):
    torch.manual_seed(0)
    base = with_tail(CVRKDNet(SMALL), FrozenBackbone(), 1)
    check = _toy_check(base, gallery)
    choices = RedistillConfig(mix_choices=(1.0, 0.5, 0.25))
    share, tried = choose_mix(base, copy.deepcopy(base), check, gallery, choices)
    assert share == 1.0 and tried["base"] == pytest.approx(1.0)  # nothing forgotten: keep the whole step
    scrambled = copy.deepcopy(base)  # a step that forgets everything
    with torch.no_grad():
        for parameter in scrambled.parameters():
            parameter.mul_(-1.0).add_(torch.randn_like(parameter))
    share, tried = choose_mix(base, scrambled, check, gallery, choices)
    assert share == 0.25 and tried["1"] < 0.9 and tried["0.5"] < 0.98  # the larger shares forget
    assert list(tried) == ["base", "1", "0.5", "0.25"][:len(tried)]  # tried largest first
