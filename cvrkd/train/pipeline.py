"""The whole reproducible training run: data, teacher, student, ablations, evaluation, ship.

``python -m cvrkd train all --out runs/v1 --ship cvrkd/weights`` runs every step
(each one resumes from what is already on disk) and writes ``results.json``
and ``results.md`` in ``--out``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cvrkd.backbone import FrozenBackbone
from cvrkd.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from cvrkd.evaluation import TABLE_HEADER, Correlations, correlations, read_scores_csv
from cvrkd.feature_cache import FeatureCache
from cvrkd.features import grid_features as image_grid_features
from cvrkd.gallery import Gallery, build_default_gallery
from cvrkd.imageio import load_image
from cvrkd.model import CVRKDNet
from cvrkd.train.synthetic import SyntheticConfig, SyntheticSet, build, kodak_sources, load, reference_features
from cvrkd.train.training import TrainConfig, Trainer, new_network

Log = Callable[[str], None]
PATCH_SIZE = 224


@dataclass
class PipelineOptions:
    data_root: Path
    out: Path
    ship: Path | None = None
    epochs: int = 15
    student_epochs: int = 10
    distill_weight: float = 0.1
    seed: int = 0
    bootstrap: int = 1000
    val_sources: int = 4
    train_sources: int = 12


def grid_features(backbone: FrozenBackbone, paths: list[Path], size: int, count: int,
                  cache: FeatureCache, key: str, log: Log) -> torch.Tensor:
    """[N, P, C, 7, 7] inference-grid features for images on disk (cached)."""
    from cvrkd.patches import PatchConfig

    config = PatchConfig(count, size)

    def compute() -> torch.Tensor:
        stacked = []
        for index, path in enumerate(paths):
            if index % 50 == 0:
                log(f"features {index}/{len(paths)}")
            stacked.append(image_grid_features(backbone, load_image(path).pixels, config).half())
        return torch.stack(stacked)

    return cache.get_or_compute(key, compute)


@torch.no_grad()
def score_matrix(network: CVRKDNet, images: torch.Tensor, references: torch.Tensor | None) -> np.ndarray:
    """[N, K] scores of every image against every reference ([N, 1] for NR models)."""
    network.eval()
    columns = []
    refs = [None] if references is None or not network.config.use_reference else list(references)
    for reference in refs:
        scores = []
        for start in range(0, images.shape[0], 64):
            lq = images[start:start + 64].float()
            ref = None if reference is None else reference.float().unsqueeze(0).expand(lq.shape[0], -1, -1, -1, -1)
            scores.append(network(lq, ref).score)
        columns.append(torch.cat(scores))
    return torch.stack(columns, dim=1).numpy()


def pooled_vector(features: torch.Tensor) -> np.ndarray:
    """Mean over patches and the 7x7 grid: the NR linear probe's input."""
    return features.float().mean(dim=(1, 3, 4)).numpy()


def run(options: PipelineOptions, log: Log = print) -> dict:
    started = time.perf_counter()
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    backbone = FrozenBackbone()
    sources, val_sources = kodak_sources(options.data_root, options.val_sources, options.train_sources)
    config = SyntheticConfig(sources=sources, val_sources=val_sources, seed=options.seed)
    build(config, out / "synthetic", backbone, log)
    data = load(out / "synthetic")
    gallery = build_default_gallery(out / "gallery")
    references = reference_features(gallery, backbone, config, out / "references.safetensors")
    patches = config.patches
    train_config = TrainConfig(epochs=options.epochs, distill_weight=options.distill_weight,
                               seed=options.seed)

    def train(role: str, name: str, seed: int, use_reference: bool = True,
              teacher: CVRKDNet | None = None, distill: float | None = None) -> CVRKDNet:
        folder = out / name
        cfg = TrainConfig(**{**train_config.to_dict(),
                             "epochs": options.epochs if role == "teacher" else options.student_epochs,
                             **({"distill_weight": distill} if distill is not None else {})})
        if (folder / "done").exists():
            return load_checkpoint(folder / "best")[0]
        network = new_network(backbone.channels, patches, seed, use_reference)
        Trainer(role, network, data, folder, cfg, patches, backbone.name,
                references=references if role == "student" else None, teacher=teacher, log=log).run()
        (folder / "done").write_text("ok")
        return load_checkpoint(folder / "best")[0]

    teacher = train("teacher", "teacher", options.seed)
    student = train("student", "student", options.seed + 1, teacher=teacher)
    if options.ship:  # serve the model as soon as it exists; metrics are added below
        ship(out, options.ship, {"synthetic_val": {}, "clive_dev": {}})
    no_distill = train("student", "student_no_distill", options.seed + 1, distill=0.0)
    nr_only = train("student", "nr_only", options.seed + 1, use_reference=False, distill=0.0)
    training_minutes = (time.perf_counter() - started) / 60

    results = evaluate_all(options, data, backbone, references, gallery, teacher,
                           {"student (distilled)": student, "student without distillation": no_distill,
                            "NR-only (no reference branch)": nr_only}, log)
    results["pipeline_minutes"] = (time.perf_counter() - started) / 60
    results["training_minutes"] = training_minutes
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(results_markdown(results))
    if options.ship:
        ship(out, options.ship, results)
    log(f"done in {results['pipeline_minutes']:.1f} min")
    return results


def evaluate_all(options: PipelineOptions, data: SyntheticSet, backbone: FrozenBackbone,
                 train_references: torch.Tensor, gallery: Gallery, teacher: CVRKDNet,
                 students: dict[str, CVRKDNet], log: Log) -> dict:
    grid = data.features[:, : students["student (distilled)"].config.num_patches]
    val = data.indices("val")
    train_rows = data.indices("train")
    labels = data.labels.numpy()
    grid_refs = train_references[:, : grid.shape[1]]
    results: dict = {"synthetic_val": {}, "clive_dev": {}, "spread": {}}

    def report(section: str, name: str, predicted: np.ndarray, human: np.ndarray) -> Correlations:
        corr = correlations(predicted, human, n_boot=options.bootstrap, seed=options.seed)
        results[section][name] = corr.to_dict()
        log(f"{section} {name}: SRCC {corr.values['srcc']:.3f}")
        return corr

    teacher_val = score_matrix_fr(teacher, grid[val], grid[data.pristine_row[val]])
    report("synthetic_val", "FR teacher (aligned original)", teacher_val, labels[val])
    for name, network in students.items():
        report("synthetic_val", name, score_matrix(network, grid[val], grid_refs).mean(1), labels[val])
    probe = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
    probe.fit(pooled_vector(grid[train_rows]), labels[train_rows])
    report("synthetic_val", "NR linear probe (frozen backbone)", probe.predict(pooled_vector(grid[val])),
           labels[val])

    csv_path = options.data_root / "clive_dev" / "clive_dev.csv"
    if csv_path.exists():
        pairs = read_scores_csv(csv_path)
        cache = FeatureCache(options.out / "cache")
        clive = grid_features(backbone, [p for p, _ in pairs], PATCH_SIZE, grid.shape[1],
                              cache, f"clive-{backbone.fingerprint()}-p{grid.shape[1]}", log)
        mos = np.array([m for _, m in pairs])
        eval_refs = gallery_grid(gallery, backbone, grid.shape[1], cache, "gallery")
        val_pristine = [i for i in val.tolist() if data.rows[i]["distortion"] == "pristine"]
        ten_refs = torch.cat([eval_refs, grid[val_pristine[: 10 - len(eval_refs)]]])
        for name, network in students.items():
            matrix = score_matrix(network, clive, eval_refs)
            report("clive_dev", name, matrix.mean(1), mos)
            if network.config.use_reference:
                spread_matrix = score_matrix(network, clive, ten_refs)
                per_ref_srcc = [float(correlations(spread_matrix[:, k], mos, n_boot=0).values["srcc"])
                                for k in range(spread_matrix.shape[1])]
                results["spread"][name] = {
                    "references": int(spread_matrix.shape[1]),
                    "mean_score_std_across_references": float(spread_matrix.std(1).mean()),
                    "srcc_std_across_references": float(np.std(per_ref_srcc)),
                    "srcc_min": float(np.min(per_ref_srcc)), "srcc_max": float(np.max(per_ref_srcc)),
                }
        report("clive_dev", "NR linear probe (frozen backbone)", probe.predict(pooled_vector(clive)), mos)
    return results


@torch.no_grad()
def score_matrix_fr(teacher: CVRKDNet, images: torch.Tensor, originals: torch.Tensor) -> np.ndarray:
    teacher.eval()
    scores = [teacher(images[s:s + 64].float(), originals[s:s + 64].float()).score
              for s in range(0, images.shape[0], 64)]
    return torch.cat(scores).numpy()


def gallery_grid(gallery: Gallery, backbone: FrozenBackbone, count: int, cache: FeatureCache,
                 name: str) -> torch.Tensor:
    paths = [gallery.root / entry.file for entry in gallery.images]
    return grid_features(backbone, paths, PATCH_SIZE, count, cache,
                         f"{name}-{gallery.fingerprint()}-{backbone.fingerprint()}-p{count}", lambda _: None)


def results_markdown(results: dict) -> str:
    lines = ["## Held-out synthetic validation (Kodak sources never trained on; pseudo-labels)", "",
             TABLE_HEADER]
    lines += [_row(name, r) for name, r in results["synthetic_val"].items()]
    if results["clive_dev"]:
        lines += ["", "## clive_dev (300 authentic photos, human MOS; cross-domain)", "", TABLE_HEADER]
        lines += [_row(name, r) for name, r in results["clive_dev"].items()]
        lines += ["", "## Score spread across 10 references on clive_dev", "",
                  "| model | mean per-image std of score | std of SRCC across references | SRCC range |",
                  "|---|---|---|---|"]
        for name, s in results["spread"].items():
            lines.append(f"| {name} | {s['mean_score_std_across_references']:.2f} | "
                         f"{s['srcc_std_across_references']:.3f} | {s['srcc_min']:.3f} – {s['srcc_max']:.3f} |")
    lines += ["", f"Pipeline time: {results['pipeline_minutes']:.1f} min "
              f"(training part {results['training_minutes']:.1f} min)."]
    return "\n".join(lines) + "\n"


def _row(name: str, r: dict) -> str:
    cells = [f"{r[m]:.3f} [{r[m + '_ci'][0]:.3f}, {r[m + '_ci'][1]:.3f}]" for m in ("srcc", "plcc", "krcc")]
    return f"| {name} | " + " | ".join(cells) + f" | {r['n']} |"


def ship(out: Path, target: Path, results: dict) -> None:
    """Copy the best teacher and distilled student into the served bundle, atomically each."""
    for role, name in (("teacher", "teacher"), ("student", "student")):
        network, info = load_checkpoint(out / name / "best", expected_role=role)
        info.extra = {**info.extra, "results": {
            "synthetic_val_srcc": results.get("synthetic_val", {}).get(
                "FR teacher (aligned original)" if role == "teacher" else "student (distilled)", {}).get("srcc"),
            "clive_dev_srcc": results.get("clive_dev", {}).get("student (distilled)", {}).get("srcc")
            if role == "student" else None}}
        save_checkpoint(network, CheckpointInfo(info.role, info.backbone, info.model, info.patches,
                                                trained=True, extra=info.extra), target / role)
