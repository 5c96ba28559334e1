"""Judging recipes honestly: k-fold cross-validation over every labelled photo, split by image
in folds recorded in the repo, and a table that says when two rows differ.

Each row's out-of-fold scores are pooled over all photos; its difference to the reference row
gets a paired bootstrap 95% interval (photos resampled together for both rows). An interval
that holds 0 means "no difference": one 60-photo fold's SRCC has a standard error of about
0.06, so fold means alone cannot tell recipes 0.01 apart.

Every fold's predictions are written when it finishes (and phase 2b resumes per epoch), so a
killed run continues where it stopped.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.model_selection import KFold

from cvrkd.evaluation import correlations
from cvrkd.feature_cache import FeatureCache
from cvrkd.features import native_statistics
from cvrkd.model import GlobalStatisticsHead
from cvrkd.train.human import names_digest
from cvrkd.train.pipeline import Workspace, predict_rows, synthetic_val_srcc, train_student
from cvrkd.train.readout import ridge
from cvrkd.train.recipe import RECIPES, Recipe

FOLDS_DIR = Path(__file__).resolve().parent / "folds"
SET_NAME = "clive562"
"""The recorded split of clive_dev + clive_extra."""
PROBE = "ridge probe (frozen features, 7x7 cells)"
NATIVE_PROBE = "ridge probe (frozen features, native resolution)"
PROBES = (PROBE, NATIVE_PROBE)


# ------------------------------------------------------------------------ folds
def fold_file(name: str, folds: int, seed: int) -> Path:
    return FOLDS_DIR / f"{name}_{folds}fold_seed{seed}.csv"


def assign_folds(names: list[str], folds: int, seed: int) -> dict[str, int]:
    """Seeded k-fold split by image."""
    fold_of = {}
    for fold, (_, test) in enumerate(KFold(folds, shuffle=True, random_state=seed).split(names)):
        fold_of.update({names[i]: fold for i in test})
    return fold_of


def recorded_folds(names: list[str], folds: int, seed: int, set_name: str = SET_NAME,
                   folder: Path = FOLDS_DIR) -> dict[str, int]:
    """The folds recorded in the repo (written on first use); refuses a file that no longer
    covers exactly these images."""
    path = folder / fold_file(set_name, folds, seed).name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", "fold"])
            writer.writerows(sorted(assign_folds(sorted(names), folds, seed).items()))
    with open(path, newline="") as handle:
        fold_of = {row["image"]: int(row["fold"]) for row in csv.DictReader(handle)}
    if set(fold_of) != set(names):
        raise ValueError(f"{path} does not list exactly the images of the set")
    return fold_of


# ------------------------------------------------------------------------- rows
def native_vectors(workspace: Workspace) -> np.ndarray:
    """[N, 2C]: per-channel mean and std of each frozen stage map over every pixel of the whole
    view (not over 7x7 cells)."""
    key = f"native-{names_digest(workspace.names)}-{workspace.backbone.fingerprint()}"

    def compute() -> torch.Tensor:
        return torch.stack([native_statistics(workspace.backbone, pixels) for pixels in workspace.photos.pixels])

    return FeatureCache(workspace.out / "cache").get_or_compute(key, compute).numpy()


def cell_vectors(workspace: Workspace) -> np.ndarray:
    """[N, 2C]: mean and std over the 7x7 cells of the frozen whole view."""
    return GlobalStatisticsHead.statistics(workspace.human.whole[:, 0].float()).numpy()


def ridge_predictions(vectors: np.ndarray, mos: np.ndarray, splits: list) -> np.ndarray:
    predicted = np.zeros(len(mos))
    for train_rows, test_rows in splits:
        probe = ridge()
        probe.fit(vectors[train_rows], mos[train_rows])
        predicted[test_rows] = probe.predict(vectors[test_rows])
    return predicted


def standardised(scores: np.ndarray) -> np.ndarray:
    return (scores - scores.mean()) / scores.std()


def ensemble_name(members: tuple[str, ...]) -> str:
    return "ensemble: " + " + ".join(members)


# ---------------------------------------------------------------- cross-validate
@dataclass
class CrossValidation:
    names: list[str]
    mos: np.ndarray
    folds: np.ndarray
    seed: int
    oof: dict[str, np.ndarray]
    synthetic: dict[str, float]
    minutes: float


def splits_of(folds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in range(int(folds.max()) + 1)]


def cross_validate(workspace: Workspace, rows: list[str], folds: int = 5, seed: int = 0,
                   ensembles: tuple[tuple[str, ...], ...] = (), recipes: dict[str, Recipe] = RECIPES,
                   folds_dir: Path = FOLDS_DIR) -> CrossValidation:
    """Out-of-fold scores of the probes, of each recipe in ``rows`` (names in ``recipes``) and of
    each ensemble (z-scored members averaged) in the recorded folds of ``seed``."""
    started = time.perf_counter()
    fold_of = recorded_folds(workspace.names, folds, seed, folder=folds_dir)
    fold_index = np.array([fold_of[name] for name in workspace.names])
    splits = splits_of(fold_index)
    mos = workspace.mos
    oof = {PROBE: ridge_predictions(cell_vectors(workspace), mos, splits),
           NATIVE_PROBE: ridge_predictions(native_vectors(workspace), mos, splits)}
    synthetic: dict[str, float] = {}
    for name in rows:
        recipe = recipes[name]
        folder = workspace.out / "cv" / f"{_slug(name)}-{recipe.key()}" / f"seed{seed}"
        oof[name] = np.zeros(len(mos))
        per_fold = []
        for fold, (train_rows, test_rows) in enumerate(splits):
            done = folder / f"fold{fold}.json"
            if not done.exists():
                workspace.log(f"{name}: fold {fold + 1}/{folds} (seed {seed}), {len(train_rows)} training photos")
                fold_started = time.perf_counter()
                network = train_student(workspace, recipe, train_rows)
                result = {"names": [workspace.names[i] for i in test_rows],
                          "predicted": predict_rows(workspace, network, test_rows, recipe.test_flips).tolist(),
                          "synthetic_val_srcc": synthetic_val_srcc(workspace, network),
                          "minutes": (time.perf_counter() - fold_started) / 60}
                workspace.log(f"{name}: fold {fold + 1}/{folds} took {result['minutes']:.1f} min")
                done.parent.mkdir(parents=True, exist_ok=True)
                temporary = done.with_suffix(".tmp")
                temporary.write_text(json.dumps(result))
                temporary.replace(done)
            result = json.loads(done.read_text())
            if result["names"] != [workspace.names[i] for i in test_rows]:
                raise ValueError(f"{done} was written for other photos")
            oof[name][test_rows] = result["predicted"]
            per_fold.append(result["synthetic_val_srcc"])
        synthetic[name] = float(np.mean(per_fold))
    for members in ensembles:
        oof[ensemble_name(members)] = np.mean([standardised(oof[m]) for m in members], axis=0)
    return CrossValidation(workspace.names, mos, fold_index, seed, oof, synthetic,
                           (time.perf_counter() - started) / 60)


# ------------------------------------------------------------------------ table
def paired_difference(candidate: np.ndarray, reference: np.ndarray, mos: np.ndarray, n_boot: int = 2000,
                      seed: int = 0, groups: np.ndarray | None = None) -> tuple[float, float, float]:
    """Pooled SRCC of ``candidate`` minus ``reference``, with the 95% interval of a paired
    bootstrap over photos (the same resampled photos for both). With ``groups`` (a bench's
    splits), the mean over groups of each group's difference, photos resampled within each."""
    parts = [np.arange(len(mos))] if groups is None else [np.flatnonzero(groups == g) for g in np.unique(groups)]

    def difference(picks: list[np.ndarray]) -> float:
        return float(np.mean([spearmanr(candidate[p], mos[p])[0] - spearmanr(reference[p], mos[p])[0]
                              for p in picks]))

    rng = np.random.default_rng(seed)
    draws = [difference([part[rng.integers(0, len(part), len(part))] for part in parts]) for _ in range(n_boot)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return difference(parts), float(low), float(high)


def table(cv: CrossValidation, reference: str, n_boot: int = 2000) -> dict:
    """Per row: fold means of SRCC/PLCC/KRCC, pooled out-of-fold SRCC and PLCC, and the paired
    bootstrap interval of the pooled SRCC difference to ``reference``."""
    rows = {}
    for name, predicted in cv.oof.items():
        per_fold = [correlations(predicted[cv.folds == f], cv.mos[cv.folds == f], n_boot=0).values
                    for f in range(int(cv.folds.max()) + 1)]
        pooled = correlations(predicted, cv.mos, n_boot=0).values
        difference = None
        if n_boot and name != reference and reference in cv.oof:
            difference = paired_difference(predicted, cv.oof[reference], cv.mos, n_boot, cv.seed)
        rows[name] = {"mean": {m: float(np.mean([v[m] for v in per_fold])) for m in ("srcc", "plcc", "krcc")},
                      "per_fold_srcc": [float(v["srcc"]) for v in per_fold],
                      "pooled_srcc": float(pooled["srcc"]), "pooled_plcc": float(pooled["plcc"]),
                      "difference": difference, "synthetic_val_srcc": cv.synthetic.get(name)}
    return {"n": len(cv.names), "folds": int(cv.folds.max()) + 1, "seed": cv.seed, "reference": reference,
            "bootstrap": n_boot, "minutes": cv.minutes, "rows": rows}


def markdown(result: dict) -> str:
    lines = [f"### {result['folds']}-fold CV on clive_dev + clive_extra (n = {result['n']}, split by image, "
             f"recorded folds, seed {result['seed']})", "",
             f"Difference: pooled out-of-fold SRCC minus the reference row's ({result['reference']}), "
             f"paired bootstrap 95% interval over photos ({result['bootstrap']} draws).", "",
             "| row | pooled SRCC | difference [95% interval] | mean SRCC | mean PLCC | SRCC per fold "
             "| synthetic val SRCC |",
             "|---|---|---|---|---|---|---|"]
    for name, r in sorted(result["rows"].items(), key=lambda item: -item[1]["pooled_srcc"]):
        if r["difference"] is None:
            difference = "reference" if name == result["reference"] else "—"
        else:
            d, low, high = r["difference"]
            verdict = "" if low > 0 or high < 0 else " (no difference)"
            difference = f"{d:+.3f} [{low:+.3f}, {high:+.3f}]{verdict}"
        synthetic = "—" if r["synthetic_val_srcc"] is None else f"{r['synthetic_val_srcc']:.3f}"
        folds = ", ".join(f"{v:.3f}" for v in r["per_fold_srcc"])
        lines.append(f"| {name} | {r['pooled_srcc']:.3f} | {difference} | {r['mean']['srcc']:.3f} | "
                     f"{r['mean']['plcc']:.3f} | {folds} | {synthetic} |")
    lines.append("")
    lines.append(f"Run time {result['minutes']:.1f} min (folds already on disk are read back, not retrained).")
    return "\n".join(lines) + "\n"


def write(cv: CrossValidation, result: dict, out: Path) -> None:
    """``cv_scores_seed{S}.csv`` (every row's out-of-fold scores), ``cv_results_seed{S}.json`` and ``.md``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"cv_scores_seed{cv.seed}.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "fold", "mos", *cv.oof])
        for i, name in enumerate(cv.names):
            writer.writerow([name, int(cv.folds[i]), cv.mos[i], *[f"{cv.oof[r][i]:.5f}" for r in cv.oof]])
    (out / f"cv_results_seed{cv.seed}.json").write_text(json.dumps(result, indent=2))
    (out / f"cv_results_seed{cv.seed}.md").write_text(markdown(result))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
