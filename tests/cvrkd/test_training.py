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


def test_global_head_learns_human_pairs_and_keeps_the_mixers(tiny, tmp_path):
    """Stage 2: on a student with a whole-image view, the global-statistics head learns the
    order of human pairs (here the reverse of the synthetic labels, so only the human loss
    teaches it) reading the frozen branches' vectors too, the stage-1 token mixers are
    untouched, and the head's normalisation travels with the checkpoint."""
    import numpy as np
    from scipy.stats import spearmanr

    from cvrkd.checkpoint import CheckpointInfo, save_checkpoint
    from cvrkd.gallery import build_default_gallery
    from cvrkd.model import CVRKDNet, ModelConfig
    from cvrkd.patches import PatchConfig
    from cvrkd.train.global_head import HeadConfig, HeadData, train_global_head
    from cvrkd.train.pipeline import frozen_outputs, inference_views, score_matrix
    from cvrkd.train.pairwise import mos_pairs
    from cvrkd.train.synthetic import reference_whole_features

    root, config, backbone, data, references = tiny
    assert data.whole is not None and data.whole.shape[1] == config.whole_variants
    layout = PatchConfig(0, config.patches.size, whole_view=True)  # the whole view, as the pipeline reads it
    gallery = build_default_gallery(root / "gallery")
    refs = inference_views(references, reference_whole_features(gallery, backbone, config,
                                                                root / "refs-whole.safetensors"))
    images = inference_views(data.features, data.whole)
    torch.manual_seed(3)
    stage1 = CVRKDNet(ModelConfig(stage_channels=backbone.channels, num_patches=layout.views, dim=32,
                                  lq_depth=1, diff_depth=1, distill_layers=1)).eval()
    frozen = frozen_outputs(stage1, images, refs)
    assert frozen.branches.shape == (len(images), len(refs), 2 * 32)
    assert np.allclose(frozen.mixer.numpy(), score_matrix(stage1, images, refs).mean(1), atol=1e-5)
    mos = 100 - data.labels.numpy()
    human = HeadData(data.whole, frozen.mixer, mos_pairs(mos), frozen.branches)
    student = train_global_head(stage1, human, HeadConfig(hidden=32, epochs=10, pairs_per_step=64, lr=3e-3))

    assert all(torch.equal(value, student.state_dict()[key]) for key, value in stage1.state_dict().items())
    predicted = score_matrix(student, images, refs).mean(1)
    assert np.isfinite(predicted).all()
    assert spearmanr(predicted, mos).statistic > 0.5
    assert spearmanr(score_matrix(stage1, images, refs).mean(1), mos).statistic < 0.5

    save_checkpoint(student, CheckpointInfo("student", "lite0", student.config, layout, trained=True),
                    tmp_path / "student")
    loaded, info = load_checkpoint(tmp_path / "student", expected_role="student")
    assert info.patches.whole_view and loaded.config.global_head == 32 and loaded.config.head_reads_branches
    assert torch.equal(loaded.global_head.center, student.global_head.center)
    assert np.allclose(score_matrix(loaded, images, refs).mean(1), predicted, atol=1e-4)


def test_whole_view_only_layout_trains_and_scores_with_one_backbone_pass(tiny, tmp_path):
    """``--patches 0``: teacher and distilled student read only the whole-image view, so the
    shipped scorer runs the backbone once per image (the gallery's features are cached)."""
    from cvrkd.checkpoint import CheckpointInfo, save_checkpoint
    from cvrkd.patches import PatchConfig
    from cvrkd.scorer import Scorer
    from cvrkd.train.synthetic import reference_whole_features

    root, config, backbone, data, references = tiny
    layout = PatchConfig(0, config.patches.size, whole_view=True)
    gallery = build_default_gallery(root / "gallery")
    reference_whole = reference_whole_features(gallery, backbone, config, root / "refs-whole.safetensors")
    quiet = TrainConfig(epochs=3, batch_size=4, lr=1e-3)
    teacher, _ = Trainer("teacher", new_network(backbone.channels, layout, 0), data, tmp_path / "teacher",
                         quiet, layout, "lite0", log=lambda _: None).run()
    losses = [float(r["train_loss"]) for r in csv.DictReader(open(tmp_path / "teacher" / "log.csv"))]
    assert losses[-1] < losses[0], losses
    student, _ = Trainer("student", new_network(backbone.channels, layout, 1), data, tmp_path / "student",
                         TrainConfig(epochs=1, batch_size=4, lr=1e-3, distill_weight=0.1), layout, "lite0",
                         references=references, teacher=teacher, log=lambda _: None,
                         reference_whole=reference_whole).run()
    assert student.config.num_patches == 1  # one view: the whole image
    for role, network in (("teacher", teacher), ("student", student)):
        save_checkpoint(network, CheckpointInfo(role, "lite0", network.config, layout, trained=True),
                        tmp_path / "bundle" / role)
    scorer = Scorer(tmp_path / "bundle", cache_dir=tmp_path / "cache", backend="torch")
    photo = root / "gallery" / gallery.images[0].file
    scorer.score(photo)  # fills the gallery's feature cache
    passes = []
    hook = scorer.backbone.features.register_forward_hook(lambda *_: passes.append(1))
    try:
        result = scorer.score(photo)
    finally:
        hook.remove()
    assert passes == [1]
    assert 0 <= result.score <= 100 and len(result.per_reference) == len(gallery.images)
