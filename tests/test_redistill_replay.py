"""What re-distillation replays and how it keeps the base model's skill.

The replay set read from a real (tiny) synthetic training set, and the
weight-space mix (WiSE-FT) that makes the candidate.
"""
import copy

import pytest
import torch

from cvrkd.backbone import FrozenBackbone
from cvrkd.gallery import build_default_gallery
from cvrkd.model import CVRKDNet, ModelConfig
from cvrkd.train.redistill import RedistillConfig, ReplaySet, choose_mix, mix_weights, replay_from_synthetic
from cvrkd.train.synthetic import SyntheticConfig, build


@pytest.fixture(scope="module")
def tiny_synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-synthetic")
    gallery = build_default_gallery(root / "gallery")
    files = [str(root / "gallery" / e.file) for e in gallery.images[:3]]
    config = SyntheticConfig(sources=files, val_sources=files[2:], distortions=["gaussian_blur"],
                             levels=(1, 3, 5), levels_per_source=2, extra_positions=2, max_side=256)
    build(config, root / "synthetic", FrozenBackbone())
    return root / "synthetic", config


def test_replay_reads_train_and_val_splits_with_the_inference_grid_only(tiny_synthetic):
    folder, config = tiny_synthetic
    replay = replay_from_synthetic(folder, config.patches.num_patches)
    assert replay.origin == "synthetic"
    assert replay.features.shape[:2] == (3 * 3, config.patches.num_patches)  # pristine + 2 levels, 3 sources
    assert replay.validation.tolist() == [False] * 6 + [True] * 3
    assert replay.train_rows.tolist() == list(range(6)) and replay.val_rows.tolist() == [6, 7, 8]
    pristine_rows = [0, 3, 6]
    assert replay.labels[pristine_rows].tolist() == [100.0] * 3
    for row in range(9):  # every row's original is its own source's pristine features
        assert torch.equal(replay.pristine(torch.tensor([row]))[0], replay.features[pristine_rows[row // 3]])


def test_replay_refuses_a_folder_without_shards(tmp_path):
    with pytest.raises(FileNotFoundError, match="train data"):
        replay_from_synthetic(tmp_path, 10)


def test_mix_keeps_the_chosen_share_of_the_fine_tuning_step():
    torch.manual_seed(0)
    config = ModelConfig(num_patches=2, dim=16, lq_depth=1, diff_depth=1, distill_layers=1)
    base, tuned = CVRKDNet(config), CVRKDNet(config)
    start, end = base.state_dict(), tuned.state_dict()
    for share in (0.0, 0.5, 1.0):
        mixed = mix_weights(base, tuned, share).state_dict()
        for name in start:
            assert torch.allclose(mixed[name], start[name] + share * (end[name] - start[name])), (share, name)
    assert all(torch.equal(base.state_dict()[k], start[k]) for k in start)  # base untouched


def _toy_replay(base: CVRKDNet, references: torch.Tensor) -> ReplaySet:
    """Check rows labelled with the base model's own scores: the base ranks them perfectly."""
    torch.manual_seed(1)
    features = torch.randn(24, 2, 496, 7, 7)
    rows = torch.arange(24)
    with torch.no_grad():
        labels = torch.stack([base(features, r.expand(24, -1, -1, -1, -1)).score for r in references]).mean(0)
    return ReplaySet(features=features, originals=features[:1], original_of=torch.zeros(24, dtype=torch.long),
                     labels=labels, source=["toy"] * 24, validation=rows >= 8, origin="synthetic")


def test_mix_share_is_the_largest_that_keeps_the_synthetic_skill():
    torch.manual_seed(0)
    config = ModelConfig(num_patches=2, dim=16, lq_depth=1, diff_depth=1, distill_layers=1)
    base = CVRKDNet(config).eval()
    references = torch.randn(2, 2, 496, 7, 7)
    replay = _toy_replay(base, references)
    choices = RedistillConfig(mix_choices=(1.0, 0.5, 0.25))
    share, tried = choose_mix(base, copy.deepcopy(base), replay, references, choices)
    assert share == 1.0 and tried["base"] == pytest.approx(1.0)  # nothing forgotten: keep the whole step
    scrambled = CVRKDNet(config).eval()  # a step that forgets everything
    share, tried = choose_mix(base, scrambled, replay, references, choices)
    assert share == 0.25 and tried["1"] < 0.9 and tried["0.5"] < 0.98  # the larger shares forget
    assert list(tried) == ["base", "1", "0.5", "0.25"][:len(tried)]  # tried largest first
