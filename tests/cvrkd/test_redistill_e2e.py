"""The gate works both ways on the shipped model, end to end through a real store.

Pool: the built-in photos and seeded distortions of them; a simulated crowd
judges same-photo pairs by distortion level (stronger = worse), 10% noise.
"""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from annotations.schema import image_id_for
from annotations.store import AnnotationStore
from cvrkd import paths
from cvrkd.checkpoint import load_checkpoint, save_checkpoint
from cvrkd.distortions import distort
from cvrkd.gallery import build_default_gallery
from cvrkd.train.redistill import ROUND_FINETUNE, RedistillConfig
from cvrkd.train.redistill_job import redistill_from_store
from cvrkd.train.registry import ModelRegistry
from cvrkd.scorer import Scorer

TYPES = ("gaussian_blur", "jpeg", "white_noise", "pixelate")
pytestmark = pytest.mark.slow  # ~2-4 min; the gate's arithmetic is covered in the default run

CONFIG = RedistillConfig().with_steps(4, ROUND_FINETUNE.steps_per_epoch, replay_types=4, min_judgements=50,
                                      bootstrap=500, design="finetune")
"""The fine-tuning design, whose mix, resume and promotion these tests follow (the readout design's
round on the shipped model: ``tests/space/test_trainer_app.py``)."""
FLIPPED_REASONS = {"finetune": "below their own strongest distortions",  # the check that needs no people
                   "readout": "less often than chance"}


@pytest.fixture(scope="module")
def shipped():
    student = paths.default_model_dir() / "student"
    assert (student / "config.json").is_file(), "the trained model must be shipped in cvrkd/weights"
    return paths.default_model_dir()


@pytest.fixture(scope="module")
def crowd_store(tmp_path_factory):
    """Store + pool with 600 same-photo judgements whose truth is the distortion level."""
    from PIL import Image

    root = tmp_path_factory.mktemp("crowd")
    gallery = build_default_gallery(root / "gallery")
    pool = root / "pool"
    pool.mkdir()
    store = AnnotationStore(root / "annotations")
    levels = {}
    for photo in gallery.load_images():
        variants = [(None, 0, photo.pixels)] + [(t, lvl, distort(photo.pixels, t, lvl)) for t in TYPES
                                               for lvl in (1, 3, 5)]
        ids = []
        for name, level, pixels in variants:
            path = pool / "incoming.png"
            Image.fromarray(pixels).save(path)
            image_id = image_id_for(path.read_bytes())
            path.rename(pool / f"{image_id}.png")
            if name is None:
                store.register_image(image_id, "gallery", "see gallery manifest")
            else:
                store.register_image(image_id, "distortion", "see gallery manifest", distortion=name,
                                     level=level, reference_id=ids[0])
            ids.append(image_id)
            levels[image_id] = level
    rng = np.random.default_rng(0)
    all_ids = list(levels)
    groups = [all_ids[i:i + 13] for i in range(0, len(all_ids), 13)]
    for n in range(600):
        group = groups[n % len(groups)]
        left, right = rng.choice(group, 2, replace=False)
        if levels[left] == levels[right]:
            continue
        truth = "left" if levels[left] < levels[right] else "right"
        if rng.random() < 0.1:
            truth = "right" if truth == "left" else "left"
        store.append({"rater_id": f"r{n % 12}", "left_image_id": left, "right_image_id": right,
                      "choice": truth, "response_ms": 1500})
    store.close()
    return root, gallery


def _flipped_store(root, target):
    source = AnnotationStore(root / "annotations")
    flipped = AnnotationStore(target)
    for row in source.images().itertuples():
        extra = {k: getattr(row, k) for k in ("distortion", "level", "reference_id")
                 if pd.notna(getattr(row, k))}
        if "level" in extra:
            extra["level"] = int(extra["level"])
        flipped.register_image(row.image_id, row.source, row.licence, **extra)
    for row in source.judgements().itertuples():
        flipped.append({"rater_id": row.rater_id, "left_image_id": row.left_image_id,
                        "right_image_id": row.right_image_id,
                        "choice": {"left": "right", "right": "left"}.get(row.choice, row.choice)})
    flipped.close()


@pytest.mark.parametrize("design", ["readout", "finetune"])
def test_label_flipped_judgements_are_rejected(shipped, crowd_store, tmp_path, design):
    root, gallery = crowd_store
    _flipped_store(root, tmp_path / "flipped")
    result = redistill_from_store(tmp_path / "flipped", tmp_path / "registry", images_dir=root / "pool",
                                  model_dir=shipped, gallery_dir=gallery.root, cache_dir=root / "cache",
                                  config=replace(CONFIG, design=design), log=lambda _: None)
    registry = ModelRegistry(tmp_path / "registry")
    print(result.decision)  # quoted in docs/results.md (run with -s)
    assert not result.decision.promote, result.decision
    assert FLIPPED_REASONS[design] in result.decision.reason
    assert result.decision.n_known_order == 24
    assert registry.current() is None  # still serving the shipped model
    assert registry.runs()[-1]["decision"] == "rejected"


def test_a_genuinely_better_candidate_is_promoted_and_served(shipped, crowd_store, tmp_path):
    """Base: the shipped student with its regressor scrambled (a bad model); the crowd fixes it."""
    root, gallery = crowd_store
    network, info = load_checkpoint(shipped / "student")
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in network.regressor.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.5)
    save_checkpoint(network, info, tmp_path / "bad-student")
    result = redistill_from_store(root / "annotations", tmp_path / "registry", images_dir=root / "pool",
                                  base_dir=tmp_path / "bad-student", model_dir=shipped,
                                  gallery_dir=gallery.root, cache_dir=root / "cache", config=CONFIG,
                                  log=lambda _: None)
    registry = ModelRegistry(tmp_path / "registry")
    assert result.decision.promote, result.decision
    assert registry.current() == result.candidate_version
    scorer = Scorer(shipped, cache_dir=root / "cache", gallery=gallery)
    scorer.swap_student(registry.current_path())
    assert scorer.score(gallery.root / gallery.images[0].file).model_version == result.candidate_version


def test_a_killed_trainer_leaves_model_and_registry_intact(shipped, crowd_store, tmp_path):
    import os
    import signal
    import time

    from cvrkd.train.redistill_job import start_background_round

    root, gallery = crowd_store
    registry = ModelRegistry(tmp_path / "registry")
    served_before = Scorer(shipped, cache_dir=root / "cache", gallery=gallery).model_version
    process = start_background_round(root / "annotations", registry.root, images_dir=root / "pool",
                                     model_dir=shipped, cache_dir=root / "cache", gallery_dir=gallery.root,
                                     extra_args=["--epochs", "50"])
    time.sleep(25)  # well into loading features / fine-tuning
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert registry.current() is None and registry.versions() == [] and registry.runs() == []
    assert Scorer(shipped, cache_dir=root / "cache", gallery=gallery).model_version == served_before
    result = redistill_from_store(root / "annotations", registry.root, images_dir=root / "pool",
                                  model_dir=shipped, gallery_dir=gallery.root, cache_dir=root / "cache",
                                  config=CONFIG, log=lambda _: None)
    assert registry.runs()[-1]["run_id"] == result.record["run_id"]
    assert result.candidate_version in registry.versions()


def test_a_round_replays_the_synthetic_training_set_and_chooses_the_mix(shipped, crowd_store, tmp_path):
    """With the original synthetic set: replay its train split, check and choose the share on its val split."""
    from cvrkd.backbone import FrozenBackbone
    from cvrkd.train.synthetic import SyntheticConfig, build

    root, gallery = crowd_store
    files = [str(gallery.root / entry.file) for entry in gallery.images[:4]]
    build(SyntheticConfig(sources=files, val_sources=files[3:], distortions=["gaussian_blur", "jpeg"],
                          levels=(1, 3, 5), levels_per_source=2, extra_positions=2, max_side=320),
          tmp_path / "synthetic", FrozenBackbone())
    result = redistill_from_store(root / "annotations", tmp_path / "registry", images_dir=root / "pool",
                                  model_dir=shipped, gallery_dir=gallery.root, cache_dir=root / "cache",
                                  synthetic_dir=tmp_path / "synthetic", config=CONFIG, log=lambda _: None)
    record = ModelRegistry(tmp_path / "registry").runs()[-1]
    assert record["run_id"] == result.record["run_id"] and record["replay"] == "synthetic"
    assert record["mix"] in CONFIG.mix_choices
    assert {"base", "0.5"} <= set(record["mix_check_srcc"])  # the largest share was tried first
    assert record["base_synthetic_srcc"] == record["mix_check_srcc"]["base"]
    # the disagreement images found in the training judgements are recorded with the run
    assert len(record["disagreement_images"]) == min(record["n_disagreements"], 20)
