"""The one training pipeline with tiny settings: every phase runs, the protocol's folds and table
say what they claim, a killed CV resumes from its finished folds, and `cvrkd train` ships a
calibrated bundle the scorer reads."""
import csv
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from cvrkd.backbone import FrozenBackbone
from cvrkd.checkpoint import load_checkpoint
from cvrkd.distortions import distort
from cvrkd.gallery import build_default_gallery
from cvrkd.train import pipeline, protocol
from cvrkd.train.finetune import FinetuneConfig
from cvrkd.train.global_head import HeadConfig
from cvrkd.train.recipe import CANDIDATE, FROZEN, RECIPES, REFERENCE, SHIPPED, Recipe, SyntheticPhase
from cvrkd.train.synthetic import SyntheticConfig, build

TINY = Recipe(synthetic=SyntheticPhase(teacher_epochs=1, student_epochs=1),
              head=HeadConfig(hidden=16, epochs=2, steps_per_epoch=5, pairs_per_step=32, synthetic_weight=0.03))
TINY_RECIPES = {"frozen": TINY,
                "tuned": replace(TINY, finetune=FinetuneConfig(tuned_stages=2, epochs=1, batch=4, crop=64,
                                                               replay_batch=2, steps_per_epoch=2)),
                "tuned NR-only": replace(TINY, synthetic=replace(TINY.synthetic, use_reference=False),
                                         finetune=FinetuneConfig(tuned_stages=1, epochs=1, batch=4, crop=64,
                                                                 replay_batch=2, steps_per_epoch=1))}
TINY_RECIPES["tuned + readout"] = replace(TINY_RECIPES["tuned"], readout_share=0.5, readout_synthetic_weight=0.25)
LEVELS = (1, 3, 5)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A synthetic set from two gallery photos, and two labelled sets (clive-like CSVs) of blurred
    copies of the gallery photos, MOS falling with the blur."""
    root = tmp_path_factory.mktemp("pipeline")
    gallery = build_default_gallery(root / "gallery")
    files = [str(root / "gallery" / e.file) for e in gallery.images]
    config = SyntheticConfig(sources=files[:2], val_sources=files[1:2], distortions=["gaussian_blur"],
                             levels=LEVELS, extra_positions=1, max_side=160)
    build(config, root / "synthetic", FrozenBackbone())
    for set_index, name in enumerate(("set_a", "set_b")):
        folder = root / "data" / name / "images"
        folder.mkdir(parents=True)
        rows = []
        for k, entry in enumerate(gallery.images):
            source = np.asarray(Image.open(root / "gallery" / entry.file).convert("RGB").resize((120, 96)))
            level = LEVELS[(k + set_index) % len(LEVELS)]
            Image.fromarray(distort(source, "gaussian_blur", level, seed=k)).save(folder / f"{name}-{k}.png")
            rows.append((f"images/{name}-{k}.png", 90 - 15 * level + k, 10.0))
        with open(root / "data" / name / f"{name}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", "mos", "mos_std"])
            writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One work folder for the module: phase 1 trains once and every later test resumes it."""
    return tmp_path_factory.mktemp("run")


def _workspace(root, out):
    return pipeline.open_workspace(root / "data", root / "synthetic", out, sets=("set_a", "set_b"),
                                   log=lambda _: None)


def test_the_candidate_recipe_is_a_replace_overlay_of_the_reference_row():
    candidate, reference = RECIPES[CANDIDATE], RECIPES[REFERENCE]
    assert reference is FROZEN and reference.finetune is None and SHIPPED in RECIPES
    assert replace(candidate, finetune=None, readout_share=0.0) == reference  # it differs in phases 2b-c only
    assert RECIPES[f"{SHIPPED}, NR-only"].synthetic.name == "nr-only"
    ablation = RECIPES[f"{SHIPPED}, without distillation"]
    assert ablation.synthetic.distill_weight == 0 and ablation.finetune.distill_weight == 0
    assert len({recipe.key() for recipe in RECIPES.values()}) == len(RECIPES)


def test_recorded_folds_cover_all_562_photos_and_never_share_one():
    for seed in (0, 1):
        with open(protocol.fold_file(protocol.SET_NAME, 5, seed), newline="") as handle:
            rows = list(csv.DictReader(handle))
        names = [row["image"] for row in rows]
        assert len(names) == len(set(names)) == 562
        by_fold = [{r["image"] for r in rows if int(r["fold"]) == f} for f in range(5)]
        assert sum(len(f) for f in by_fold) == 562 and all(110 <= len(f) <= 115 for f in by_fold)
        assert protocol.assign_folds(sorted(names), 5, seed) == {r["image"]: int(r["fold"]) for r in rows}
    zero = protocol.recorded_folds(names, 5, 0)
    one = protocol.recorded_folds(names, 5, 1)
    assert zero != one  # the second seed is another split, for close calls


def test_recorded_folds_are_those_of_the_labelled_sets(shared_data):
    names = [row.path.name for row in pipeline.labelled_rows(shared_data)]
    assert len(names) == 562
    protocol.recorded_folds(names, 5, 0)  # raises if the recorded file lists other photos
    with pytest.raises(ValueError, match="exactly the images"):
        protocol.recorded_folds(names[:-1], 5, 0)


def test_paired_bootstrap_sees_a_real_difference_and_not_noise():
    rng = np.random.default_rng(0)
    mos = rng.normal(50, 15, 400)
    good = mos + rng.normal(0, 8, 400)
    worse = mos + rng.normal(0, 20, 400)
    difference, low, high = protocol.paired_difference(good, worse, mos, n_boot=300)
    assert difference > 0 and low > 0
    _, low, high = protocol.paired_difference(good, good + rng.normal(0, 0.5, 400), mos, n_boot=300)
    assert low < 0 < high


def test_a_grouped_paired_bootstrap_averages_each_groups_own_difference():
    """A bench's splits: photos of one split are never ranked against another split's."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    mos = rng.normal(50, 15, 300)
    candidate, reference = mos + rng.normal(0, 5, 300), mos + rng.normal(0, 15, 300)
    groups = np.repeat([0, 1, 2], 100)
    shifted = candidate + 100 * groups  # pooled over groups this would rank by group, not by photo
    difference, low, high = protocol.paired_difference(shifted, reference, mos, n_boot=200, groups=groups)
    each = [spearmanr(candidate[groups == g], mos[groups == g])[0] - spearmanr(reference[groups == g],
                                                                                mos[groups == g])[0]
            for g in range(3)]
    assert difference == pytest.approx(np.mean(each)) and 0 < low < difference < high


def test_every_phase_runs_in_the_folds_and_a_killed_cv_resumes(tiny_data, run_dir, tmp_path):
    root = tiny_data
    folds = tmp_path / "folds"
    workspace = _workspace(root, run_dir)
    assert len(workspace.names) == 12
    rows = ["frozen", "tuned", "tuned NR-only", "tuned + readout"]
    cv = protocol.cross_validate(workspace, rows, folds=3, recipes=TINY_RECIPES, folds_dir=folds,
                                 ensembles=(("tuned", protocol.NATIVE_PROBE),))
    assert set(cv.oof) == {*rows, *protocol.PROBES, protocol.ensemble_name(("tuned", protocol.NATIVE_PROBE))}
    assert all(np.isfinite(scores).all() and np.unique(scores).size > 1 for scores in cv.oof.values())
    assert all(-1 <= cv.synthetic[row] <= 1 for row in rows)
    fold_files = sorted((run_dir / "cv").rglob("fold*.json"))
    assert len(fold_files) == 3 * len(rows)
    # the tuned rows trained a backbone tail of their own depth; each fold's test photos are its own
    for path in fold_files:
        result = json.loads(path.read_text())
        assert len(result["names"]) == 4
    result = protocol.table(cv, "frozen", n_boot=50)
    assert result["rows"]["frozen"]["difference"] is None
    assert len(result["rows"]["tuned"]["difference"]) == 3
    markdown = protocol.markdown(result)
    assert "| frozen |" in markdown and "reference" in markdown

    # a kill after the first fold: the rerun reads that fold back instead of retraining it
    first = run_dir / "cv" / f"tuned-{TINY_RECIPES['tuned'].key()}" / "seed0" / "fold0.json"
    kept = first.read_text()
    for path in fold_files:
        if path != first:
            path.unlink()
    again = protocol.cross_validate(_workspace(root, run_dir), ["tuned"], folds=3, recipes=TINY_RECIPES,
                                    folds_dir=folds)
    assert first.read_text() == kept
    assert np.allclose(again.oof["tuned"], cv.oof["tuned"], atol=1e-4)


def test_train_final_ships_a_calibrated_bundle_the_scorer_reads(tiny_data, run_dir, tmp_path):
    from cvrkd.scorer import Scorer

    workspace = _workspace(tiny_data, run_dir)
    recipe = TINY_RECIPES["tuned + readout"]
    every = np.arange(len(workspace.names))
    raw = pipeline.predict_rows(workspace, pipeline.train_student(workspace, recipe, every), every)
    out_of_fold = raw + np.random.default_rng(0).normal(0, raw.std() / 4, raw.shape)  # as a CV's would be
    with pytest.raises(pipeline.BelowFloorError, match="nothing shipped"):
        pipeline.train_final(workspace, recipe, "tuned", out_of_fold, {}, tmp_path / "refused", floor=1.01)
    assert not (tmp_path / "refused").exists()  # under the synthetic floor: kept in the work folder only
    bundle = pipeline.train_final(workspace, recipe, "tuned", out_of_fold, {"cv_pooled_srcc": 0.5},
                                  tmp_path / "bundle", floor=-1.0)
    student, info = load_checkpoint(bundle / "student", expected_role="student")
    b1, b2, _, _ = student.config.calibration
    assert (b1, b2) == (100.0, 0.0)  # the whole scale: nothing clamped
    assert student.config.tuned_stages == 2 and student.backbone_tail is not None and student.readout is not None
    assert info.extra["training"]["recipe"] == "tuned" and info.extra["results"]["cv_pooled_srcc"] == 0.5
    scorer = Scorer(bundle, cache_dir=tmp_path / "cache", backend="torch")
    scores = [scorer.score(row.path).score for row in workspace.rows[:4]]
    assert all(0 < s < 100 for s in scores) and len(set(scores)) == 4


def test_cli_trains_phase_one_evaluates_and_refuses_to_ship_without_a_cv(tiny_data, tmp_path, capsys):
    from cvrkd.cli import main

    common = ["--data", str(tiny_data / "data"), "--synthetic", str(tiny_data / "synthetic"),
              "--out", str(tmp_path / "run")]
    assert main(["train", "synthetic", *common]) == 0
    assert "teacher: synthetic validation SRCC" in capsys.readouterr().out
    assert (tmp_path / "run" / "teacher" / "done").exists()
    assert (tmp_path / "run" / "stage1" / "student" / "done").exists()
    assert main(["train", "model", *common]) == 2
    assert "no cross-validation" in capsys.readouterr().err
    assert main(["evaluate", "--cv", "3", *common, "--rows", REFERENCE, "--reference", "nope"]) == 2
    with pytest.raises(SystemExit):
        main(["train", "human", *common])  # retired: `train model` trains every recipe


def test_rows_that_differ_only_in_the_wise_ft_share_or_readout_share_one_phase_2b_run(tiny_data, run_dir):
    workspace = _workspace(tiny_data, run_dir)
    tuned = TINY_RECIPES["tuned"]
    half = replace(tuned, finetune=replace(tuned.finetune, tuned_share=0.5))
    first, other = np.arange(4), np.arange(1, 5)
    for variant in (half, TINY_RECIPES["tuned + readout"], replace(tuned, test_flips=True)):
        assert pipeline.finetune_folder(workspace, variant, first) == pipeline.finetune_folder(workspace, tuned, first)
        assert variant.key() != tuned.key()  # its CV row keeps its own predictions
    assert pipeline.finetune_folder(workspace, tuned, first) != pipeline.finetune_folder(workspace, tuned, other)


def test_test_time_flips_average_each_photo_with_its_mirror_and_never_ship(tiny_data, run_dir, tmp_path):
    workspace = _workspace(tiny_data, run_dir)
    flipped = replace(TINY_RECIPES["tuned"], test_flips=True)
    rows = np.arange(4)
    network = pipeline.train_student(workspace, flipped, rows)
    plain = pipeline.predict_rows(workspace, network, rows)
    both = pipeline.predict_rows(workspace, network, rows, flips=True)
    for row in rows:  # the mirror of the mirror is the photo: flipping the photos changes nothing
        workspace.photos.pixels[row] = np.ascontiguousarray(workspace.photos.pixels[row][:, ::-1])
    mirrored = pipeline.predict_rows(workspace, network, rows)
    assert np.allclose(both, (plain + mirrored) / 2) and not np.allclose(both, plain)
    assert np.allclose(pipeline.predict_rows(workspace, network, rows, flips=True), both)
    with pytest.raises(ValueError, match="CV row"):
        pipeline.train_final(workspace, flipped, "flips", plain, {}, tmp_path / "bundle", floor=-1.0)


def test_recipes_without_a_readout_keep_the_run_folders_they_had_before_phase_2c():
    assert RECIPES["frozen student"].key() == "72babe55be"
    assert RECIPES["fine-tuned student"].key() == "494d0d55e4"
