"""A tiny real training run: data builder -> teacher -> distilled student, loss falls, resume works."""
import csv

import pytest
import torch

from cvrkd.backbone import FrozenBackbone
from cvrkd.checkpoint import load_checkpoint
from cvrkd.gallery import build_default_gallery
from cvrkd.train.synthetic import SyntheticConfig, build, load, reference_features
from cvrkd.train.training import TrainConfig, Trainer, new_network


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-train")
    gallery = build_default_gallery(root / "gallery")
    files = [str(root / "gallery" / e.file) for e in gallery.images]
    config = SyntheticConfig(sources=files[:3], val_sources=files[2:3],
                             distortions=["gaussian_blur", "white_noise"], levels=(1, 3, 5),
                             extra_positions=2, max_side=320)
    backbone = FrozenBackbone()
    build(config, root / "synthetic", backbone)
    references = reference_features(gallery, backbone, config, root / "refs.safetensors")
    return root, config, backbone, load(root / "synthetic"), references


def test_data_builder_splits_by_source_and_labels_pristine_highest(tiny):
    _, config, _, data, references = tiny
    assert data.features.shape[0] == 3 * (1 + 2 * 3)
    assert data.features.shape[1] == config.patches.num_patches + config.extra_positions
    val_sources = {row["source"] for row in data.rows if row["split"] == "val"}
    train_sources = {row["source"] for row in data.rows if row["split"] == "train"}
    assert val_sources and not (val_sources & train_sources)
    for row in data.rows:
        if row["distortion"] == "pristine":
            assert row["label"] > 95
    by_level = {}
    for row in data.rows:
        if row["distortion"] == "gaussian_blur":
            by_level.setdefault(row["source"], {})[row["level"]] = row["label"]
    for levels in by_level.values():
        assert levels[1] > levels[3] > levels[5]
    assert references.shape[0] == 6


def test_teacher_and_distilled_student_loss_falls_and_resume(tiny, tmp_path):
    _, config, backbone, data, references = tiny
    train_config = TrainConfig(epochs=6, batch_size=4, lr=1e-3)
    teacher, _ = Trainer("teacher", new_network(backbone.channels, config.patches, 0), data,
                         tmp_path / "teacher", train_config, config.patches, "lite0", log=lambda _: None).run()
    losses = [float(r["train_loss"]) for r in csv.DictReader(open(tmp_path / "teacher" / "log.csv"))]
    assert losses[-1] < losses[0] * 0.8, losses
    short = TrainConfig(epochs=2, batch_size=4, lr=1e-3, distill_weight=0.1)
    student = Trainer("student", new_network(backbone.channels, config.patches, 1), data, tmp_path / "student",
                      short, config.patches, "lite0", references=references, teacher=teacher, log=lambda _: None)
    student.run()
    longer = TrainConfig(epochs=4, batch_size=4, lr=1e-3, distill_weight=0.1)
    resumed = Trainer("student", new_network(backbone.channels, config.patches, 1), data, tmp_path / "student",
                      longer, config.patches, "lite0", references=references, teacher=teacher,
                      log=lambda _: None)
    resumed.run()
    rows = list(csv.DictReader(open(tmp_path / "student" / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]  # resumed after epoch 2, no repeat
    network, info = load_checkpoint(tmp_path / "student" / "best", expected_role="student")
    assert info.trained and info.extra["epoch"] >= 1
    assert torch.isfinite(network.regressor[-1].weight).all()
