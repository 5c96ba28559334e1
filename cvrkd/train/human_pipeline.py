"""Training on human labels too, and judging it honestly: k-fold cross-validation on a
MOS-labelled set (split by image, seeded folds recorded in the repo), then the shipped model
trained on every image, calibrated to the human scale on the cross-validated predictions.

Every student here is the CVRKD NAR network (LQ branch, reference-difference branch, gallery
references, distillation from the FR teacher), trained in two stages: stage 1 on synthetic
pseudo-labels with distillation (fold-independent: it never sees a human-rated photo), stage 2
a global-statistics head plus the mixers' weight on human pairs (:mod:`cvrkd.train.global_head`).
In the same folds we run the ablations the protocol asks for: no distillation and NR-only (in
stage 1), stage 1 alone, the global head alone, and a ridge probe on frozen pooled features.

``python -m cvrkd evaluate --cv 5`` runs the protocol; ``python -m cvrkd train human --ship
cvrkd/weights`` trains and ships the final model. Every stage resumes from ``--out``.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cvrkd.backbone import FrozenBackbone
from cvrkd.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from cvrkd.evaluation import correlations, logistic_fit_params
from cvrkd.feature_cache import FeatureCache
from cvrkd.gallery import build_default_gallery
from cvrkd.model import CVRKDNet
from cvrkd.patches import PatchConfig
from cvrkd import paths
from cvrkd.train.finetune import FinetuneConfig
from cvrkd.train.global_head import HeadConfig, HeadData, train_global_head
from cvrkd.train.human import HumanSet, mos_set
from cvrkd.train.pairwise import mos_pairs
from cvrkd.train.synthetic import (SyntheticConfig, SyntheticSet, load, reference_features,
                                   reference_whole_features)
from cvrkd.train.training import TrainConfig, Trainer, new_network, with_whole

Log = Callable[[str], None]
DATA_LAYOUT = PatchConfig(num_patches=10, size=224, whole_view=True)
"""What is cached per image: 10 grid patches (training draws subsets) and whole-view variants."""
FOLDS_DIR = Path(__file__).resolve().parent / "folds"
STUDENT = "student"
ABLATIONS = {  # name -> (use_reference, distill)
    STUDENT: (True, True),
    "no distillation": (True, False),
    "NR-only (no reference branch)": (False, True),
}
PROBE = "ridge probe (frozen pooled features)"
STAGE1_ONLY = "stage 1 only (synthetic labels, no human labels)"
HEAD_ONLY = "global head only (no token mixers, no reference)"
SYNTHETIC_FLOOR = 0.80
"""Synthetic validation SRCC the shipped student must keep (no forgetting of synthetic distortions)."""


@dataclass
class HumanOptions:
    data_root: Path
    synthetic: Path
    out: Path
    folds: int = 5
    seed: int = 0
    teacher_epochs: int = 8
    stage1_epochs: int = 6
    """Synthetic-only epochs of the CVRKD student (stage 1; the best synthetic-val epoch is kept)."""
    distill_weight: float = 0.1
    head: HeadConfig = field(default_factory=HeadConfig)
    synthetic_weights: tuple[float, ...] = (0.0, 0.03, 0.1)
    """Synthetic-pair weights of stage 2 tried in CV; the shipped one is chosen by
    :func:`choose_synthetic_weight`."""
    bootstrap: int = 1000
    exclude: set[str] = field(default_factory=set)
    """Image names never trained on (e.g. the crowd bench's evaluation images)."""
    ablations: tuple[str, ...] = tuple(ABLATIONS)
    patches: int = 0
    """Grid patches the networks read next to the whole-image view (0, the shipped layout: the
    whole view only, one backbone pass per image)."""
    finetune: FinetuneConfig | None = None
    """Stage 3 (fine-tuning through the backbone's last stages, :mod:`cvrkd.train.finetune`)."""
    train_photos: int = 0
    """Train each fold on a seeded subset of this many photos (0 = all): the learning curve."""

    @property
    def layout(self) -> PatchConfig:
        return replace(DATA_LAYOUT, num_patches=self.patches)


# ----------------------------------------------------------------------- folds
def fold_file(name: str, folds: int, seed: int) -> Path:
    return FOLDS_DIR / f"{name}_{folds}fold_seed{seed}.csv"


def assign_folds(names: list[str], folds: int, seed: int) -> dict[str, int]:
    """Seeded k-fold split by image."""
    fold_of = {}
    splitter = KFold(folds, shuffle=True, random_state=seed)
    for fold, (_, test) in enumerate(splitter.split(names)):
        fold_of.update({names[i]: fold for i in test})
    return fold_of


def recorded_folds(names: list[str], folds: int, seed: int, set_name: str) -> dict[str, int]:
    """The folds recorded in the repo (written on first use); refuses a file that no longer
    covers exactly these images."""
    path = fold_file(set_name, folds, seed)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fold_of = assign_folds(names, folds, seed)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", "fold"])
            writer.writerows(sorted(fold_of.items()))
    with open(path, newline="") as handle:
        fold_of = {row["image"]: int(row["fold"]) for row in csv.DictReader(handle)}
    if set(fold_of) != set(names):
        raise ValueError(f"{path} does not list exactly the images of the set")
    return fold_of


# ------------------------------------------------------------------------ data
@dataclass
class Prepared:
    backbone: FrozenBackbone
    data: SyntheticSet
    references: torch.Tensor
    reference_whole: torch.Tensor
    human: HumanSet | None
    """The MOS-labelled photos; None for the synthetic stages alone (``prepare(human=False)``)."""
    layout: PatchConfig
    """The views the networks read (a subset of what is cached: :data:`DATA_LAYOUT`)."""


def prepare(options: HumanOptions, log: Log = print, human: bool = True) -> Prepared:
    """Everything the stages read, from the caches when they exist: the synthetic set, the
    gallery references' features and (``human``) the features of the MOS-labelled photos."""
    if not 0 <= options.patches <= DATA_LAYOUT.num_patches:
        raise ValueError(f"patches must be 0–{DATA_LAYOUT.num_patches}, got {options.patches}")
    backbone = FrozenBackbone()
    raw = json.loads((options.synthetic / "config.json").read_text())
    config = SyntheticConfig(**{**raw, "patches": PatchConfig(**raw["patches"])})
    data = load(options.synthetic)
    if data.whole is None:
        raise ValueError(f"{options.synthetic} has no whole-image views; rebuild it with `train data`")
    gallery = build_default_gallery(paths.default_gallery_dir())
    references = reference_features(gallery, backbone, config, options.synthetic / "references.safetensors")
    reference_whole = reference_whole_features(gallery, backbone, config,
                                               options.synthetic / "references_whole.safetensors")
    labelled = mos_set(options.data_root / "clive_dev" / "clive_dev.csv", backbone, DATA_LAYOUT,
                       FeatureCache(options.out / "cache"), log=log) if human else None
    return Prepared(backbone, data, references, reference_whole, labelled, options.layout)


# -------------------------------------------------------------------- training
def _train(role: str, folder: Path, prepared: Prepared, config: TrainConfig, seed: int,
           use_reference: bool = True, teacher: CVRKDNet | None = None, log: Log = print) -> CVRKDNet:
    if (folder / "done").exists():
        return load_checkpoint(folder / "best")[0]
    network = new_network(prepared.backbone.channels, prepared.layout, seed, use_reference)
    Trainer(role, network, prepared.data, folder, config, prepared.layout, prepared.backbone.name,
            references=prepared.references if role == "student" else None, teacher=teacher, log=log,
            reference_whole=prepared.reference_whole).run()
    (folder / "done").write_text("ok")
    return load_checkpoint(folder / "best")[0]


def train_teacher(options: HumanOptions, prepared: Prepared, log: Log = print) -> CVRKDNet:
    config = TrainConfig(epochs=options.teacher_epochs, seed=options.seed)
    return _train("teacher", options.out / "teacher", prepared, config, options.seed, log=log)


def train_synthetic_student(options: HumanOptions, prepared: Prepared, teacher: CVRKDNet,
                            name: str = STUDENT, log: Log = print) -> CVRKDNet:
    """Stage 1: the CVRKD student on the synthetic set only (pseudo-labels + distillation). It
    never sees a human-rated photo, so it is the same network for every fold."""
    use_reference, distill = ABLATIONS[name]
    config = TrainConfig(epochs=options.stage1_epochs, seed=options.seed + 1, keep="best",
                         distill_weight=options.distill_weight if distill else 0.0)
    return _train("student", stage1_folder(options, name), prepared, config, options.seed + 1,
                  use_reference, teacher if distill else None, log)


def stage1_folder(options: HumanOptions, name: str = STUDENT) -> Path:
    return options.out / "stage1" / _slug(name)


@dataclass
class Frozen:
    """What the frozen stage-1 network gives every image once, for stage 2."""

    mixer: torch.Tensor  # [N] score on the inference views, mean over the references
    branches: torch.Tensor | None  # [N, references, D] branch vectors, one per reference

    def rows(self, rows: np.ndarray) -> "Frozen":
        index = torch.from_numpy(np.asarray(rows))
        return Frozen(self.mixer[index], None if self.branches is None else self.branches[index])

    def without_mixers(self) -> "Frozen":
        """The head-only ablation: no mixer score and no branch vectors."""
        return Frozen(torch.zeros_like(self.mixer), None)


def frozen_outputs(network: CVRKDNet, images: torch.Tensor, references: torch.Tensor) -> Frozen:
    scores, vectors = _per_reference(network, images, references)
    return Frozen(scores.mean(1), vectors)


def human_head_data(human: HumanSet, frozen: Frozen, rows: np.ndarray) -> HeadData:
    subset, chosen = human.subset(rows), frozen.rows(rows)
    return HeadData(subset.whole, chosen.mixer, subset.pairs, chosen.branches)


def synthetic_head_data(prepared: Prepared, network: CVRKDNet, references: torch.Tensor) -> HeadData:
    """The synthetic training split as pairs of pseudo-labels (Thurstone, observer noise)."""
    rows = prepared.data.indices("train")
    images = inference_views(prepared.data.features[rows], prepared.data.whole[rows], prepared.layout)
    frozen = frozen_outputs(network, images, references)
    return HeadData(prepared.data.whole[rows], frozen.mixer, mos_pairs(prepared.data.labels[rows].numpy()),
                    frozen.branches)


# ------------------------------------------------------------------ prediction
def inference_views(features: torch.Tensor, whole: torch.Tensor, layout: PatchConfig = DATA_LAYOUT
                    ) -> torch.Tensor:
    """[N, views, C, 7, 7]: the layout's inference grid plus the plain whole-image view."""
    rows = torch.arange(features.shape[0])
    return with_whole(features[:, : layout.num_patches].float(), whole, rows, torch.zeros_like(rows))


@torch.no_grad()
def _per_reference(network: CVRKDNet, images: torch.Tensor, references: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw scores [N, K] and branch vectors [N, K, D] of every image against every reference
    (K = 1 for NR models), from one forward pass per batch."""
    network.eval()
    refs = list(references) if network.config.use_reference else [None]
    scores, vectors = [], []
    for reference in refs:
        outputs = []
        for start in range(0, images.shape[0], 64):
            lq = images[start:start + 64]
            ref = None if reference is None else reference.unsqueeze(0).expand(lq.shape[0], -1, -1, -1, -1)
            outputs.append(network(lq, ref))
        scores.append(torch.cat([output.score for output in outputs]))
        vectors.append(torch.cat([output.vectors for output in outputs]))
    return torch.stack(scores, dim=1), torch.stack(vectors, dim=1)


def score_matrix(network: CVRKDNet, images: torch.Tensor, references: torch.Tensor) -> np.ndarray:
    """[N, K] raw scores of every image against every reference ([N, 1] for NR models)."""
    return _per_reference(network, images, references)[0].numpy()


def synthetic_val_srcc(network: CVRKDNet, prepared: Prepared) -> float:
    val = prepared.data.indices("val")
    images = inference_views(prepared.data.features[val], prepared.data.whole[val], prepared.layout)
    predicted = score_matrix(network, images, eval_references(prepared)).mean(1)
    return float(correlations(predicted, prepared.data.labels[val].numpy(), n_boot=0).values["srcc"])


def teacher_val_srcc(teacher: CVRKDNet, prepared: Prepared) -> float:
    data = prepared.data
    val = data.indices("val")
    lq = inference_views(data.features[val], data.whole[val], prepared.layout)
    original = inference_views(data.features[data.pristine_row[val]], data.whole[data.pristine_row[val]],
                               prepared.layout)
    teacher.eval()
    with torch.no_grad():
        predicted = torch.cat([teacher(lq[s:s + 64], original[s:s + 64]).score
                               for s in range(0, len(val), 64)]).numpy()
    return float(correlations(predicted, data.labels[val].numpy(), n_boot=0).values["srcc"])


def eval_references(prepared: Prepared) -> torch.Tensor:
    return inference_views(prepared.references, prepared.reference_whole, prepared.layout)


def probe_vector(human: HumanSet) -> np.ndarray:
    """Mean and standard deviation over the 7x7 grid of the frozen whole-image view."""
    whole = human.whole[:, 0].float()
    return torch.cat([whole.mean(dim=(2, 3)), whole.std(dim=(2, 3))], dim=1).numpy()


def probe_predictions(human: HumanSet, splits: list) -> np.ndarray:
    """Out-of-fold scores of the ridge probe on :func:`probe_vector` (a frozen-feature baseline)."""
    vectors = probe_vector(human)
    predicted = np.zeros(len(human))
    for train_rows, test_rows in splits:
        probe = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 5, 29)))
        probe.fit(vectors[train_rows], human.mos[train_rows])
        predicted[test_rows] = probe.predict(vectors[test_rows])
    return predicted


# ------------------------------------------------------------------- protocol
def head_config(options: HumanOptions, synthetic_weight: float) -> HeadConfig:
    return replace(options.head, synthetic_weight=synthetic_weight, seed=options.seed)


def _fold_predictions(human: HumanSet, splits: list, images: torch.Tensor,
                      refs: torch.Tensor, stage1: CVRKDNet, frozen: Frozen,
                      synthetic: HeadData | None, config: HeadConfig, prepared: Prepared,
                      head_only: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Out-of-fold scores (and the per-reference matrix) of stage 2 on top of ``stage1``;
    ``head_only`` drops the token mixers (their scores are zero), an ablation."""
    predicted = np.zeros(len(human))
    per_ref = np.zeros((len(human), refs.shape[0]))
    synthetic_srcc = []
    for train_rows, test_rows in splits:
        network = train_global_head(stage1, human_head_data(human, frozen, train_rows), config,
                                    synthetic)
        if head_only:
            with torch.no_grad():
                predicted[test_rows] = network.global_head(images[test_rows, -1]).numpy()
            continue
        matrix = score_matrix(network, images[test_rows], refs)
        predicted[test_rows] = matrix.mean(1)
        per_ref[test_rows] = matrix  # an NR model's single column fills every reference
        synthetic_srcc.append(synthetic_val_srcc(network, prepared))
    return predicted, per_ref, float(np.mean(synthetic_srcc)) if synthetic_srcc else float("nan")


def choose_synthetic_weight(results: dict, floor: float = SYNTHETIC_FLOOR) -> float:
    """The synthetic-pair weight of the student: best CV SRCC among the weights that keep the
    synthetic validation SRCC at ``floor`` or above (else the one that keeps it best)."""
    rows = {w: results["models"][student_name(w)] for w in results["synthetic_weights"]}
    keeping = [w for w, r in rows.items() if r["synthetic_val_srcc"] >= floor]
    if keeping:
        return max(keeping, key=lambda w: rows[w]["mean"]["srcc"])
    return max(rows, key=lambda w: rows[w]["synthetic_val_srcc"])


def student_name(weight: float) -> str:
    return f"{STUDENT} (synthetic pairs x{weight:g})"


def cross_validate(options: HumanOptions, log: Log = print) -> dict:
    """Out-of-fold predictions of every configuration; metrics per fold and pooled."""
    started = time.perf_counter()
    prepared = prepare(options, log)
    human = prepared.human
    fold_of = recorded_folds(human.names, options.folds, options.seed, "clive_dev")
    keep = np.array([name not in options.exclude for name in human.names])
    names = [n for n, k in zip(human.names, keep) if k]
    human = human.subset(np.flatnonzero(keep))
    folds = np.array([fold_of[n] for n in names])
    teacher = train_teacher(options, prepared, log)
    refs = eval_references(prepared)
    images = inference_views(human.features, human.whole, prepared.layout)
    splits = [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in range(options.folds)]
    oof = {PROBE: probe_predictions(human, splits)}
    synthetic: dict[str, float] = {}
    per_ref = np.zeros((len(names), refs.shape[0]))
    results: dict = {"synthetic_weights": list(options.synthetic_weights)}
    chosen = options.synthetic_weights[0]
    teacher_srcc = teacher_val_srcc(teacher, prepared)

    def report() -> dict:
        return _report(options, names, human.mos, folds, oof, synthetic, per_ref, chosen,
                       teacher_srcc, time.perf_counter() - started)

    for name in options.ablations:
        stage1 = train_synthetic_student(options, prepared, teacher, name, log)
        frozen = frozen_outputs(stage1, images, refs)
        synthetic_data = synthetic_head_data(prepared, stage1, refs)
        if name == STUDENT:
            oof[STAGE1_ONLY] = frozen.mixer.numpy()
            synthetic[STAGE1_ONLY] = synthetic_val_srcc(stage1, prepared)
            matrices = {}
            for weight in options.synthetic_weights:
                log(f"cross-validating {student_name(weight)}")
                predicted, matrices[weight], synth = _fold_predictions(
                    human, splits, images, refs, stage1, frozen, synthetic_data, head_config(options, weight),
                    prepared)
                oof[student_name(weight)], synthetic[student_name(weight)] = predicted, synth
                results = report()
            chosen = choose_synthetic_weight(results)
            per_ref = matrices[chosen]
            log(f"chosen synthetic-pair weight {chosen:g}")
            oof[HEAD_ONLY] = _fold_predictions(human, splits, images, refs, stage1, frozen.without_mixers(),
                                               None, head_config(options, chosen), prepared,
                                               head_only=True)[0]
        else:
            log(f"cross-validating {name}")
            oof[name], _, synthetic[name] = _fold_predictions(human, splits, images, refs, stage1, frozen,
                                                              synthetic_data, head_config(options, chosen),
                                                              prepared)
        results = report()
    return results


def _report(options: HumanOptions, names: list[str], mos: np.ndarray, folds: np.ndarray,
            oof: dict[str, np.ndarray], synthetic: dict[str, float], per_ref: np.ndarray,
            chosen: float, teacher_srcc: float, seconds: float) -> dict:
    """Metrics per fold and pooled for every finished configuration; written to ``--out``."""
    results = {"folds": options.folds, "seed": options.seed, "n": len(names),
               "excluded": len(options.exclude), "teacher_synthetic_val_srcc": teacher_srcc,
               "synthetic_weights": list(options.synthetic_weights), "chosen_synthetic_weight": chosen,
               "head": options.head.to_dict(), "stage1_epochs": options.stage1_epochs,
               "patches": options.patches, "models": {}}
    for name, predicted in oof.items():
        per_fold = [correlations(predicted[folds == f], mos[folds == f], n_boot=0).values
                    for f in range(options.folds)]
        pooled = correlations(predicted, mos, n_boot=options.bootstrap, seed=options.seed)
        srcc = synthetic.get(name)
        results["models"][name] = {
            "mean": {m: float(np.mean([v[m] for v in per_fold])) for m in ("srcc", "plcc", "krcc")},
            "per_fold": per_fold, "pooled": pooled.to_dict(),
            "synthetic_val_srcc": None if srcc is None or np.isnan(srcc) else srcc,
        }
    if per_ref.any():
        per_ref_srcc = [correlations(per_ref[:, k], mos, n_boot=0).values["srcc"]
                        for k in range(per_ref.shape[1])]
        results["spread"] = {"references": int(per_ref.shape[1]),
                             "mean_score_std_across_references": float(per_ref.std(1).mean()),
                             "srcc_min": float(np.min(per_ref_srcc)), "srcc_max": float(np.max(per_ref_srcc)),
                             "srcc_std_across_references": float(np.std(per_ref_srcc))}
    shipped = student_name(chosen)
    if shipped in oof:
        results["shipped"] = shipped
        results["calibration"] = list(logistic_fit_params(oof[shipped], mos) or ())
    results["minutes"] = seconds / 60
    options.out.mkdir(parents=True, exist_ok=True)
    _write_oof(options.out / "cv_scores.csv", names, mos, folds, oof)
    (options.out / "cv_results.json").write_text(json.dumps(results, indent=2))
    (options.out / "cv_results.md").write_text(cv_markdown(results))
    return results


def _write_oof(path: Path, names: list[str], mos: np.ndarray, folds: np.ndarray,
               oof: dict[str, np.ndarray]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "fold", "mos", *[_slug(n) for n in oof]])
        for i, name in enumerate(names):
            writer.writerow([name, int(folds[i]), mos[i], *[f"{oof[n][i]:.4f}" for n in oof]])


def cv_markdown(results: dict) -> str:
    k = results["folds"]
    lines = [f"### {k}-fold cross-validation on clive_dev (n = {results['n']}, split by image, "
             f"seed {results['seed']})", "",
             "| model | SRCC (mean of folds) | PLCC | KRCC | SRCC per fold | synthetic val SRCC |",
             "|---|---|---|---|---|---|"]
    for name, r in results["models"].items():
        folds = ", ".join(f"{v['srcc']:.3f}" for v in r["per_fold"])
        synth = "—" if r["synthetic_val_srcc"] is None else f"{r['synthetic_val_srcc']:.3f}"
        lines.append(f"| {name} | {r['mean']['srcc']:.3f} | {r['mean']['plcc']:.3f} | "
                     f"{r['mean']['krcc']:.3f} | {folds} | {synth} |")
    lines += ["", f"Shipped configuration: {results.get('shipped', '—')} (synthetic-pair weight chosen "
              f"among {results['synthetic_weights']}: best CV SRCC with synthetic validation SRCC "
              f">= {SYNTHETIC_FLOOR:.2f}).",
              f"FR teacher, synthetic validation SRCC: {results['teacher_synthetic_val_srcc']:.3f}."]
    if "spread" in results:
        s = results["spread"]
        lines.append(f"Spread across the {s['references']} gallery references (shipped configuration, "
                     f"out-of-fold): mean per-image score std {s['mean_score_std_across_references']:.2f}; "
                     f"SRCC per reference {s['srcc_min']:.3f}–{s['srcc_max']:.3f} "
                     f"(std {s['srcc_std_across_references']:.3f}).")
    lines.append(f"Run time {results['minutes']:.1f} min.")
    return "\n".join(lines) + "\n"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


# ------------------------------------------------------------------------ ship
def train_final(options: HumanOptions, ship_to: Path | None, log: Log = print) -> Path:
    """Stage 1 + stage 2 on every (non-excluded) image, calibrated, saved with the teacher.

    The synthetic-pair weight, the calibration and the accuracy recorded with the model come
    from the cross-validation run in the same ``--out`` (``evaluate --cv``), which must exist."""
    results_path = options.out / "cv_results.json"
    if not results_path.exists():
        raise FileNotFoundError(f"no cross-validation results in {options.out}: run "
                                f"`python -m cvrkd evaluate --cv {options.folds} --out {options.out}` first")
    results = json.loads(results_path.read_text())
    prepared = prepare(options, log)
    keep = np.flatnonzero([n not in options.exclude for n in prepared.human.names])
    teacher = train_teacher(options, prepared, log)
    refs = eval_references(prepared)
    stage1 = train_synthetic_student(options, prepared, teacher, STUDENT, log)
    images = inference_views(prepared.human.features, prepared.human.whole, prepared.layout)
    frozen = frozen_outputs(stage1, images, refs)
    config = head_config(options, results["chosen_synthetic_weight"])
    student = train_global_head(stage1, human_head_data(prepared.human, frozen, keep), config,
                                synthetic_head_data(prepared, stage1, refs))
    calibrated = CVRKDNet(replace(student.config, calibration=tuple(results.get("calibration") or ())))
    calibrated.load_state_dict(student.state_dict())
    student = calibrated.eval()
    bundle = ship_to or options.out / "bundle"
    extra = {"training": {"command": "python -m cvrkd train human", "stage1_epochs": options.stage1_epochs,
                          "distill_weight": options.distill_weight, "head": config.to_dict(),
                          "human_images": len(keep), "seed": options.seed,
                          "patches": options.patches},
             "results": {"synthetic_val_srcc": synthetic_val_srcc(student, prepared)}}
    shipped = results.get("shipped")
    if shipped in results["models"]:
        cv = results["models"][shipped]["mean"]
        extra["results"].update(cv_srcc=cv["srcc"], cv_plcc=cv["plcc"], cv_krcc=cv["krcc"])
    return save_bundle(options, prepared, student, teacher, extra, bundle)


def save_bundle(options: HumanOptions, prepared: Prepared, student: CVRKDNet, teacher: CVRKDNet,
                extra: dict, bundle: Path) -> Path:
    """Write the student (with ``extra``: its training and results) and the teacher as one bundle."""
    save_checkpoint(student, CheckpointInfo("student", prepared.backbone.name, student.config, prepared.layout,
                                            trained=True, extra=extra), bundle / "student")
    teacher_extra = {"training": {"epochs": options.teacher_epochs, "seed": options.seed},
                     "results": {"synthetic_val_srcc": teacher_val_srcc(teacher, prepared)}}
    save_checkpoint(teacher, CheckpointInfo("teacher", prepared.backbone.name, teacher.config, prepared.layout,
                                            trained=True, extra=teacher_extra), bundle / "teacher")
    return bundle
