"""The fine-tuned student (stage 3) judged in the recorded folds, and shipped.

Per fold: stage 1 (synthetic, fold-independent), stage 2 (the global head on frozen features,
today's student, scored as its own row) and stage 3 (:mod:`cvrkd.train.finetune`) on the fold's
training photos only; the held-out photos are scored as the app scores them (whole view, tuned
backbone, mean over the gallery). Rows: the fine-tuned student and its ablations, the frozen
student and the ridge probe, all in the same folds. ``train_photos`` draws a seeded subset of
each fold's training photos for the learning curve (every row then learns from that subset).

Every fold's predictions are written when it finishes, and its training resumes per epoch, so
a killed run continues where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from cvrkd import paths
from cvrkd.evaluation import range_logistic_params
from cvrkd.gallery import build_default_gallery
from cvrkd.model import CVRKDNet
from cvrkd.train.finetune import SyntheticPixels, finetune, load_photos, predict, synthetic_srcc
from cvrkd.train.global_head import train_global_head
from cvrkd.train.human import read_mos_csv
from cvrkd.train.human_pipeline import (PROBE, STUDENT, HumanOptions, _report, _slug, eval_references,
                                        frozen_outputs, head_config, human_head_data, inference_views,
                                        prepare, probe_predictions, recorded_folds, save_bundle, score_matrix,
                                        synthetic_head_data, teacher_val_srcc, train_synthetic_student,
                                        train_teacher)

Log = Callable[[str], None]
FINETUNED = "fine-tuned student (backbone tail, stage 3)"
FROZEN = "frozen student (stages 1-2, previous shipped layout)"
VARIANTS = {  # row -> (stage-1 ablation it starts from, distillation in stage 3)
    FINETUNED: (STUDENT, True),
    "fine-tuned NR-only (no reference branch)": ("NR-only (no reference branch)", True),
    "fine-tuned without distillation": ("no distillation", False),
}


def _photos(options: HumanOptions, names: list[str]):
    rows = {row.path.name: row for row in read_mos_csv(options.data_root / "clive_dev" / "clive_dev.csv")}
    chosen = [rows[name] for name in names]
    spread = None if any(r.mos_std is None for r in chosen) else np.array([r.mos_std for r in chosen])
    return load_photos([r.path for r in chosen], np.array([r.mos for r in chosen]), spread)


def training_rows(rows: np.ndarray, count: int, seed: int) -> np.ndarray:
    """All of ``rows``, or a seeded subset of ``count`` of them (the learning curve)."""
    if not count or count >= len(rows):
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=count, replace=False))


def run_folder(options: HumanOptions) -> Path:
    """Where the runs of these settings live: named by the stage-2 head's synthetic weight and the
    stage-3 settings, so results of other settings are never picked up as this run's."""
    settings = json.dumps({"head_synthetic_weight": options.synthetic_weights[0],
                           **options.finetune.to_dict()}, sort_keys=True)
    return options.out / "finetune" / hashlib.sha256(settings.encode()).hexdigest()[:10]


def cross_validate(options: HumanOptions, variants: tuple[str, ...] = (FINETUNED,),
                   log: Log = print) -> dict:
    """Out-of-fold predictions of the fine-tuned rows next to the frozen student and the probe."""
    if options.finetune is None:
        raise ValueError("these options have no fine-tuning settings")
    started = time.perf_counter()
    prepared = prepare(options, log)
    keep = np.flatnonzero([name not in options.exclude for name in prepared.human.names])
    human = prepared.human.subset(keep)
    fold_of = recorded_folds(prepared.human.names, options.folds, options.seed, "clive_dev")
    folds = np.array([fold_of[name] for name in human.names])
    splits = [(training_rows(np.flatnonzero(folds != f), options.train_photos, options.seed + f),
               np.flatnonzero(folds == f)) for f in range(options.folds)]
    photos = _photos(options, human.names)
    gallery = build_default_gallery(paths.default_gallery_dir())
    replay = SyntheticPixels(options.synthetic, "train")
    validation = SyntheticPixels(options.synthetic, "val")
    teacher = train_teacher(options, prepared, log)
    refs = eval_references(prepared)
    images = inference_views(human.features, human.whole, prepared.layout)
    weight = options.synthetic_weights[0]
    work = run_folder(options) / f"train{options.train_photos or 'all'}"
    oof = {PROBE: probe_predictions(human, splits)}
    synthetic: dict[str, float] = {}
    for variant in variants:
        ablation, distill = VARIANTS[variant]
        stage1 = train_synthetic_student(options, prepared, teacher, ablation, log)
        frozen = frozen_outputs(stage1, images, refs)
        synthetic_data = synthetic_head_data(prepared, stage1, refs)
        oof[variant] = np.zeros(len(human))
        per_fold_synthetic = []
        for fold, (train_rows, test_rows) in enumerate(splits):
            head = train_global_head(stage1, human_head_data(human, frozen, train_rows),
                                     head_config(options, weight), synthetic_data)
            if variant == FINETUNED:
                oof.setdefault(FROZEN, np.zeros(len(human)))[test_rows] = score_matrix(
                    head, images[test_rows], refs).mean(1)
            folder = work / _slug(variant) / f"fold{fold}"
            done = folder / "predictions.json"
            if not done.exists():
                log(f"{variant}: fold {fold + 1}/{options.folds}, {len(train_rows)} training photos")
                tuned = finetune(head, photos.subset(train_rows), gallery, options.finetune, folder / "state",
                                 replay, teacher if distill else None, log)
                result = {"test_rows": test_rows.tolist(),
                          "predicted": predict(tuned, [photos.pixels[i] for i in test_rows], gallery).tolist(),
                          "synthetic_val_srcc": synthetic_srcc(tuned, validation, gallery)}
                done.write_text(json.dumps(result))
            result = json.loads(done.read_text())
            oof[variant][np.array(result["test_rows"])] = result["predicted"]
            per_fold_synthetic.append(result["synthetic_val_srcc"])
        synthetic[variant] = float(np.mean(per_fold_synthetic))
    report_options = replace(options, out=work)
    results = _report(report_options, human.names, human.mos, folds, oof, synthetic,
                      np.zeros((len(human), 1)), weight, teacher_val_srcc(teacher, prepared),
                      time.perf_counter() - started)
    results.update(finetune=options.finetune.to_dict(), train_photos=options.train_photos,
                   shipped=FINETUNED if FINETUNED in oof else None,
                   calibration=list(range_logistic_params(oof[FINETUNED], human.mos))
                   if FINETUNED in oof else None)
    (work / "cv_results.json").write_text(json.dumps(results, indent=2))
    return results


def train_final(options: HumanOptions, ship_to: Path | None, log: Log = print) -> Path:
    """Stages 1–3 on every (non-excluded) photo, calibrated on the CV run's out-of-fold scores,
    saved with the teacher as a complete bundle."""
    results_path = run_folder(options) / "trainall" / "cv_results.json"
    if not results_path.exists():
        raise FileNotFoundError(f"no fine-tuning cross-validation in {results_path.parent}: run "
                                f"`python -m cvrkd evaluate --cv {options.folds} --finetune --out {options.out}`")
    results = json.loads(results_path.read_text())
    prepared = prepare(options, log)
    keep = np.flatnonzero([name not in options.exclude for name in prepared.human.names])
    human = prepared.human.subset(keep)
    teacher = train_teacher(options, prepared, log)
    refs = eval_references(prepared)
    stage1 = train_synthetic_student(options, prepared, teacher, STUDENT, log)
    images = inference_views(human.features, human.whole, prepared.layout)
    frozen = frozen_outputs(stage1, images, refs)
    weight = options.synthetic_weights[0]
    head = train_global_head(stage1, human_head_data(human, frozen, np.arange(len(human))),
                             head_config(options, weight), synthetic_head_data(prepared, stage1, refs))
    gallery = build_default_gallery(paths.default_gallery_dir())
    tuned = finetune(head, _photos(options, human.names), gallery, options.finetune,
                     run_folder(options) / "final", SyntheticPixels(options.synthetic, "train"),
                     teacher, log)
    student = CVRKDNet(replace(tuned.config, calibration=tuple(results["calibration"])))
    student.load_state_dict(tuned.state_dict())
    student.eval()
    cv = results["models"][FINETUNED]["mean"]
    extra = {"training": {"command": "python -m cvrkd train human --finetune", "human_images": len(human),
                          "seed": options.seed, "stage1_epochs": options.stage1_epochs,
                          "distill_weight": options.distill_weight, "head": head_config(options, weight).to_dict(),
                          "finetune": options.finetune.to_dict(), "patches": options.patches},
             "results": {"synthetic_val_srcc": synthetic_srcc(student, SyntheticPixels(options.synthetic, "val"),
                                                              gallery),
                         "cv_srcc": cv["srcc"], "cv_plcc": cv["plcc"], "cv_krcc": cv["krcc"]}}
    return save_bundle(options, prepared, student, teacher, extra, ship_to or options.out / "bundle")
