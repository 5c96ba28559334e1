"""The one training pipeline: the phases of a :class:`~cvrkd.train.recipe.Recipe`, run on a
:class:`Workspace` (everything the phases read, cached in the work folder).

1. **Synthetic** (fold-independent): the FR teacher, then the CVRKD student's token mixers on
   FR pseudo-labels of distorted Kodak photos, distilled from the teacher (:mod:`training`).
2. **Human**: (a) a global head on frozen features learns MOS pairs (:mod:`global_head`); (b)
   optionally the whole student fine-tunes through the backbone on crops of the photos, with
   synthetic replay and the teacher's distillation (:mod:`finetune`); (c) optionally a ridge
   readout on the trained student's own whole-view statistics joins its score (:mod:`readout`).
3. **Crowd rounds** fine-tune a served student on people's judgements through the same
   phase-2b loop (:mod:`redistill`).

:mod:`cvrkd.train.protocol` runs phases 1–2 per fold of the recorded split (``cvrkd evaluate
--cv``); :func:`train_final` runs them on every photo and ships (``cvrkd train``). Every phase
resumes from the work folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from cvrkd import paths
from cvrkd.backbone import FrozenBackbone
from cvrkd.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from cvrkd.evaluation import correlations, range_logistic_params
from cvrkd.feature_cache import FeatureCache
from cvrkd.gallery import Gallery, build_default_gallery
from cvrkd.model import CVRKDNet
from cvrkd.patches import PatchConfig
from cvrkd.train import finetune as phase2b
from cvrkd.train.global_head import HeadData, train_global_head
from cvrkd.train.human import HumanSet, MosRow, mos_set, names_digest, read_mos_csv
from cvrkd.train.pairwise import mos_pairs
from cvrkd.train.readout import with_readout
from cvrkd.train.recipe import Recipe, SyntheticPhase
from cvrkd.train.synthetic import (SyntheticConfig, SyntheticSet, load, reference_features,
                                   reference_whole_features)
from cvrkd.train.training import TrainConfig, Trainer, new_network, with_whole

Log = Callable[[str], None]
LABELLED_SETS = ("clive_dev", "clive_extra")
"""The MOS-labelled sets under the data folder that train the shipped student (562 photos)."""
LAYOUT = PatchConfig(num_patches=0, size=224, whole_view=True)
"""What the networks read of an image: its whole view."""
SYNTHETIC_FLOOR = 0.75
"""Synthetic validation SRCC a shipped student must keep (no forgetting of synthetic distortions)."""


def labelled_rows(data_root: Path, sets: tuple[str, ...] = LABELLED_SETS) -> list[MosRow]:
    """The rows of every labelled set, in set order; image names are unique across them."""
    rows = [row for name in sets for row in read_mos_csv(Path(data_root) / name / f"{name}.csv")]
    names = [row.path.name for row in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"an image name appears twice across {sets}")
    return rows


# ----------------------------------------------------------------------- data
@dataclass
class Workspace:
    """What the phases read: the synthetic set, the gallery's features and the labelled photos
    (cached features and pixels), and where every phase keeps its state (``out``)."""

    out: Path
    synthetic_dir: Path
    backbone: FrozenBackbone
    data: SyntheticSet
    references: torch.Tensor
    reference_whole: torch.Tensor
    gallery: Gallery
    rows: list[MosRow] = field(default_factory=list)
    human: HumanSet | None = None
    log: Log = print
    _networks: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [row.path.name for row in self.rows]

    @property
    def mos(self) -> np.ndarray:
        return np.array([row.mos for row in self.rows])

    @cached_property
    def photos(self) -> phase2b.Photos:
        """Whole views of the labelled photos in memory (phase 2b crops them)."""
        spread = None if any(r.mos_std is None for r in self.rows) else np.array([r.mos_std for r in self.rows])
        return phase2b.load_photos([r.path for r in self.rows], self.mos, spread)

    @cached_property
    def replay(self) -> phase2b.SyntheticPixels:
        return phase2b.SyntheticPixels(self.synthetic_dir, "train")

    @cached_property
    def validation(self) -> phase2b.SyntheticPixels:
        return phase2b.SyntheticPixels(self.synthetic_dir, "val")

    @cached_property
    def eval_references(self) -> torch.Tensor:
        """[K, 1, C, 7, 7]: the gallery's whole views, as the networks read them."""
        return inference_views(self.references, self.reference_whole)

    @cached_property
    def images(self) -> torch.Tensor:
        """[N, 1, C, 7, 7]: the labelled photos' plain whole views."""
        return self.human.whole[:, :1].float()


def open_workspace(data_root: Path, synthetic: Path, out: Path, sets: tuple[str, ...] = LABELLED_SETS,
                   exclude: set[str] = frozenset(), log: Log = print) -> Workspace:
    """Load (or compute into ``out/cache``) what the phases read. ``sets=()`` skips the labelled
    photos (the synthetic phase alone); ``exclude`` names photos never trained on."""
    backbone = FrozenBackbone()
    raw = json.loads((synthetic / "config.json").read_text())
    config = SyntheticConfig(**{**raw, "patches": PatchConfig(**raw["patches"])})
    data = load(synthetic)
    if data.whole is None:
        raise ValueError(f"{synthetic} has no whole-image views; rebuild it with `train data`")
    gallery = build_default_gallery(paths.default_gallery_dir())
    references = reference_features(gallery, backbone, config, synthetic / "references.safetensors")
    reference_whole = reference_whole_features(gallery, backbone, config, synthetic / "references_whole.safetensors")
    workspace = Workspace(out, synthetic, backbone, data, references, reference_whole, gallery, log=log)
    if sets:
        rows = [row for row in labelled_rows(data_root, sets) if row.path.name not in exclude]
        workspace.rows = rows
        workspace.human = mos_set(rows, backbone, FeatureCache(out / "cache"), log=log)
    return workspace


def inference_views(features: torch.Tensor, whole: torch.Tensor) -> torch.Tensor:
    """[N, 1, C, 7, 7]: the plain whole-image view (variant 0) of every row."""
    rows = torch.arange(features.shape[0])
    return with_whole(features[:, :0].float(), whole, rows, torch.zeros_like(rows))


# -------------------------------------------------------------- phase 1 (synthetic)
def _train_synthetic(role: str, folder: Path, workspace: Workspace, config: TrainConfig,
                     use_reference: bool = True, teacher: CVRKDNet | None = None) -> CVRKDNet:
    if not (folder / "done").exists():
        network = new_network(workspace.backbone.channels, LAYOUT, config.seed, use_reference)
        Trainer(role, network, workspace.data, folder, config, LAYOUT, workspace.backbone.name,
                references=workspace.references if role == "student" else None, teacher=teacher,
                log=workspace.log, reference_whole=workspace.reference_whole).run()
        (folder / "done").write_text("ok")
    return load_checkpoint(folder / "best")[0]


def teacher(workspace: Workspace, phase: SyntheticPhase, seed: int = 0) -> CVRKDNet:
    """The FR teacher (trained once per work folder and seed)."""
    key = ("teacher", phase.teacher_epochs, seed)
    if key not in workspace._networks:
        config = TrainConfig(epochs=phase.teacher_epochs, seed=seed)
        workspace._networks[key] = _train_synthetic("teacher", teacher_folder(workspace.out, seed), workspace,
                                                    config)
    return workspace._networks[key]


def teacher_folder(out: Path, seed: int = 0) -> Path:
    return out / "teacher" if seed == 0 else out / f"teacher-seed{seed}"


def stage1_folder(out: Path, phase: SyntheticPhase, seed: int = 0) -> Path:
    return out / "stage1" / (phase.name if seed == 0 else f"{phase.name}-seed{seed}")


def synthetic_student(workspace: Workspace, phase: SyntheticPhase, seed: int = 0) -> CVRKDNet:
    """Phase 1's student: token mixers on pseudo-labels, distilled from the teacher. It never sees
    a human-rated photo, so it is the same network for every fold."""
    key = ("student", phase, seed)
    if key not in workspace._networks:
        guide = teacher(workspace, phase, seed) if phase.distill_weight else None
        config = TrainConfig(epochs=phase.student_epochs, seed=seed + 1, keep="best",
                             distill_weight=phase.distill_weight)
        workspace._networks[key] = _train_synthetic("student", stage1_folder(workspace.out, phase, seed), workspace,
                                                    config, phase.use_reference, guide)
    return workspace._networks[key]


# ------------------------------------------------------------------ phase 2 (human)
@dataclass
class Frozen:
    """What the frozen phase-1 network gives every image once, for phase 2a."""

    mixer: torch.Tensor  # [N] score on the inference views, mean over the references
    branches: torch.Tensor | None  # [N, references, D] branch vectors, one per reference

    def rows(self, rows: np.ndarray) -> "Frozen":
        index = torch.from_numpy(np.asarray(rows))
        return Frozen(self.mixer[index], None if self.branches is None else self.branches[index])


def frozen_outputs(network: CVRKDNet, images: torch.Tensor, references: torch.Tensor) -> Frozen:
    scores, vectors = _per_reference(network, images, references)
    return Frozen(scores.mean(1), vectors)


def human_head_data(human: HumanSet, frozen: Frozen, rows: np.ndarray) -> HeadData:
    subset, chosen = human.subset(rows), frozen.rows(rows)
    return HeadData(subset.whole, chosen.mixer, subset.pairs, chosen.branches)


def synthetic_head_data(workspace: Workspace, network: CVRKDNet) -> HeadData:
    """The synthetic training split as pairs of pseudo-labels (Thurstone, observer noise)."""
    rows = workspace.data.indices("train")
    images = inference_views(workspace.data.features[rows], workspace.data.whole[rows])
    frozen = frozen_outputs(network, images, workspace.eval_references)
    return HeadData(workspace.data.whole[rows], frozen.mixer, mos_pairs(workspace.data.labels[rows].numpy()),
                    frozen.branches)


def train_student(workspace: Workspace, recipe: Recipe, rows: np.ndarray) -> CVRKDNet:
    """Every phase of ``recipe`` with the labelled photos ``rows``; phase 2b resumes from its
    state folder (:func:`finetune_folder`)."""
    stage1 = synthetic_student(workspace, recipe.synthetic, recipe.seed)
    key = ("frozen", recipe.synthetic, recipe.seed)
    if key not in workspace._networks:
        workspace._networks[key] = (frozen_outputs(stage1, workspace.images, workspace.eval_references),
                                    synthetic_head_data(workspace, stage1))
    frozen, synthetic_pairs = workspace._networks[key]
    head = train_global_head(stage1, human_head_data(workspace.human, frozen, rows),
                             replace(recipe.head, seed=recipe.seed), synthetic_pairs)
    student = head
    if recipe.finetune is not None:
        guide = teacher(workspace, recipe.synthetic, recipe.seed) if recipe.finetune.distill_weight else None
        student = phase2b.finetune(head, workspace.photos.subset(rows), workspace.gallery, recipe.finetune,
                                   finetune_folder(workspace, recipe, rows), workspace.replay, guide,
                                   workspace.log)
    if recipe.readout_share:
        replay = workspace.replay if recipe.readout_synthetic_weight else None
        student = with_readout(student, workspace.photos.subset(rows), workspace.gallery, recipe.readout_share,
                               replay, recipe.readout_synthetic_weight)
    return student


def finetune_folder(workspace: Workspace, recipe: Recipe, rows: np.ndarray) -> Path:
    """Where phase 2b of ``recipe`` on these photos keeps its state: named by the training
    settings and the photos' names, so rows that only use the result differently (WiSE-FT
    shares, readouts) and a rerun after a kill find the same run."""
    return workspace.out / "phase2b" / f"{recipe.trained().key()}-{names_digest(workspace.names[i] for i in rows)}"


# ---------------------------------------------------------------------- predict
@torch.no_grad()
def _per_reference(network: CVRKDNet, images: torch.Tensor, references: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw scores [N, K] and branch vectors [N, K, D] of every image against every reference
    (K = 1 for NR models)."""
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


def predict_rows(workspace: Workspace, network: CVRKDNet, rows: np.ndarray, flips: bool = False) -> np.ndarray:
    """Raw scores of the labelled photos ``rows`` as the app computes them (whole view, the
    student's own backbone, mean over the gallery); with ``flips``, averaged with their mirror
    images' (:attr:`Recipe.test_flips`)."""
    if network.backbone_tail is None:
        if flips:
            raise ValueError("test-time flips need a fine-tuned student (the frozen one reads cached views)")
        return score_matrix(network, workspace.images[rows], workspace.eval_references).mean(1)
    photos = [workspace.photos.pixels[i] for i in rows]
    scores = phase2b.predict(network, photos, workspace.gallery)
    if flips:
        mirrored = phase2b.predict(network, [np.ascontiguousarray(p[:, ::-1]) for p in photos], workspace.gallery)
        scores = (scores + mirrored) / 2
    return scores


def synthetic_val_srcc(workspace: Workspace, network: CVRKDNet) -> float:
    """SRCC on the synthetic validation set (unseen Kodak content): what the student keeps of
    the synthetic ranking."""
    if network.backbone_tail is not None:
        return phase2b.synthetic_srcc(network, workspace.validation, workspace.gallery)
    val = workspace.data.indices("val")
    images = inference_views(workspace.data.features[val], workspace.data.whole[val])
    predicted = score_matrix(network, images, workspace.eval_references).mean(1)
    return float(correlations(predicted, workspace.data.labels[val].numpy(), n_boot=0).values["srcc"])


def teacher_val_srcc(workspace: Workspace, network: CVRKDNet) -> float:
    data = workspace.data
    val = data.indices("val")
    lq = inference_views(data.features[val], data.whole[val])
    original = inference_views(data.features[data.pristine_row[val]], data.whole[data.pristine_row[val]])
    network.eval()
    with torch.no_grad():
        predicted = torch.cat([network(lq[s:s + 64], original[s:s + 64]).score
                               for s in range(0, len(val), 64)]).numpy()
    return float(correlations(predicted, data.labels[val].numpy(), n_boot=0).values["srcc"])


# ------------------------------------------------------------------------- ship
class BelowFloorError(ValueError):
    """A trained student ranks the synthetic validation set under the floor: it is not shipped."""


def train_final(workspace: Workspace, recipe: Recipe, name: str, out_of_fold: np.ndarray, cv: dict,
                ship_to: Path | None = None, floor: float = SYNTHETIC_FLOOR) -> Path:
    """Every phase on every labelled photo, calibrated onto the whole 0–100 scale from the
    recipe's out-of-fold scores (asymptotes at 0 and 100: nothing is clamped, so distinct raw
    scores stay distinct), saved with the teacher as one bundle: in ``ship_to`` only when its
    synthetic validation SRCC reaches ``floor`` (else in the work folder, and
    :class:`BelowFloorError` says so)."""
    if not recipe.servable:
        raise ValueError(f"{name!r} averages test-time flips, which the app does not: it is a CV row, not a model")
    rows = np.arange(len(workspace.rows))
    student = train_student(workspace, recipe, rows)
    calibrated = CVRKDNet(replace(student.config, calibration=tuple(range_logistic_params(out_of_fold,
                                                                                           workspace.mos))))
    calibrated.load_state_dict(student.state_dict())
    calibrated.eval()
    synthetic = synthetic_val_srcc(workspace, calibrated)
    extra = {"training": {"command": f"python -m cvrkd train model --recipe '{name}'", "recipe": name,
                          **recipe.to_dict(), "human_images": len(rows)},
             "results": {"synthetic_val_srcc": synthetic, **cv}}
    bundle = ship_to if ship_to is not None and synthetic >= floor else workspace.out / "bundle"
    save_bundle(workspace, recipe, calibrated, extra, bundle)
    if ship_to is not None and bundle != ship_to:
        raise BelowFloorError(f"synthetic validation SRCC {synthetic:.3f} is under the floor {floor}: "
                              f"nothing shipped to {ship_to}; the bundle is in {bundle}")
    return bundle


def save_bundle(workspace: Workspace, recipe: Recipe, student: CVRKDNet, extra: dict, bundle: Path) -> Path:
    """Write the student (with ``extra``: its training and results) and its FR teacher as one bundle."""
    guide = teacher(workspace, recipe.synthetic, recipe.seed)
    save_checkpoint(student, CheckpointInfo("student", workspace.backbone.name, student.config, LAYOUT,
                                            trained=True, extra=extra), bundle / "student")
    teacher_extra = {"training": {"epochs": recipe.synthetic.teacher_epochs, "seed": recipe.seed},
                     "results": {"synthetic_val_srcc": teacher_val_srcc(workspace, guide)}}
    save_checkpoint(guide, CheckpointInfo("teacher", workspace.backbone.name, guide.config, LAYOUT,
                                          trained=True, extra=teacher_extra), bundle / "teacher")
    return bundle
