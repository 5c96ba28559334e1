"""Training loops on cached features: FR teacher, distilled NAR student, ablations.

Teacher: (LQ patches, aligned pristine patches) -> label, L1 loss.
Student: (LQ patches, patches of an other-content gallery reference) -> label,
L1 loss + MSE between its last diff-encoder block outputs and the frozen
teacher's on the aligned pair (the CVRKD-IQA distillation; docs/model.md, Architecture).
Human labels are learnt afterwards, on top of the trained student
(:mod:`cvrkd.train.global_head`).
With a whole-image view in the layout, its cached variants (plain, flipped, cropped) are
drawn at random, the same variant for an image and its pristine source.
Every epoch draws fresh random subsets of each image's cached patch corners.
Seeded, resumable (state saved atomically each epoch), CSV log per epoch; the
checkpoint with the best validation SRCC is kept.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from scipy.stats import spearmanr

from cvrkd.checkpoint import CheckpointInfo, save_checkpoint
from cvrkd.model import SCORE_RANGE, CVRKDNet, ModelConfig
from cvrkd.patches import PatchConfig
from cvrkd.train.synthetic import SyntheticSet

Log = Callable[[str], None]


@dataclass
class TrainConfig:
    epochs: int = 15
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.05
    distill_weight: float = 1.0
    keep: str = "best"
    """"best": keep the epoch with the best synthetic validation SRCC; "last": the final one
    (no validation pass on the way)."""
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def device() -> torch.device:
    """The same command uses a GPU when one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def subset_positions(rng: np.random.Generator, batch: int, available: int, count: int) -> torch.Tensor:
    """[batch, count] sorted random subsets of the cached corners (row-major like the grid)."""
    picks = np.stack([np.sort(rng.choice(available, count, replace=False)) for _ in range(batch)])
    return torch.from_numpy(picks)


def gather(features: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """features [N, A, C, 7, 7] -> [B, P, C, 7, 7] float32 for the given rows and corners."""
    return features[rows[:, None], positions].float()


def with_whole(patches: torch.Tensor, whole: torch.Tensor | None, rows: torch.Tensor,
               variants: torch.Tensor) -> torch.Tensor:
    """Append each row's chosen whole-image-view variant as the last view (if the layout has one)."""
    if whole is None:
        return patches
    return torch.cat([patches, whole[rows, variants][:, None].float()], dim=1)


class Trainer:
    """One training run of one network, with validation, logging and resume."""

    def __init__(self, role: str, network: CVRKDNet, data: SyntheticSet, out_dir: Path,
                 config: TrainConfig, patches: PatchConfig, backbone: str,
                 references: torch.Tensor | None = None, teacher: CVRKDNet | None = None,
                 log: Log = print, reference_whole: torch.Tensor | None = None) -> None:
        self.role, self.network, self.data, self.out_dir = role, network, data, Path(out_dir)
        self.reference_whole = reference_whole
        if patches.whole_view and (data.whole is None or (role == "student" and reference_whole is None)):
            raise ValueError("this layout has a whole-image view: the data and references need one")
        self.config, self.patches, self.backbone_name = config, patches, backbone
        self.references, self.teacher, self.log = references, teacher, log
        self.device = device()
        self.network.to(self.device)
        if self.teacher is not None:
            self.teacher.to(self.device).eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.train_rows = data.indices("train")
        self.val_rows = data.indices("val")
        self.state_dir = self.out_dir / "state"

    # ------------------------------------------------------------------ batches
    def _whole(self, tensor: torch.Tensor | None) -> torch.Tensor | None:
        return tensor if self.patches.whole_view else None

    def _variants(self, whole: torch.Tensor | None, count: int, rng: np.random.Generator,
                  validation: bool) -> torch.Tensor:
        if whole is None or validation:
            return torch.zeros(count, dtype=torch.long)
        return torch.from_numpy(rng.integers(0, whole.shape[1], count))

    def _inputs(self, rows: torch.Tensor, rng: np.random.Generator, validation: bool = False):
        count = self.patches.num_patches
        available = self.data.features.shape[1]
        if validation:
            lq_pos = torch.arange(count).expand(len(rows), count)
        else:
            lq_pos = subset_positions(rng, len(rows), available, count)
        whole = self._whole(self.data.whole)
        variants = self._variants(whole, len(rows), rng, validation)
        lq = with_whole(gather(self.data.features, rows, lq_pos), whole, rows, variants)
        pristine_rows = self.data.pristine_row[rows]
        pristine = with_whole(gather(self.data.features, pristine_rows, lq_pos), whole, pristine_rows,
                              variants)
        if self.role == "teacher":
            return lq, pristine, pristine
        if not self.network.config.use_reference:
            return lq, None, pristine
        return lq, self._references(len(rows), rng, validation), pristine

    def _references(self, count: int, rng: np.random.Generator, validation: bool = False,
                    index: int | None = None) -> torch.Tensor:
        """``count`` references: random gallery photos, corners and variants for training,
        else photo ``index`` (default the first) on the inference grid."""
        assert self.references is not None
        patches = self.patches.num_patches
        if validation:
            ref_rows = torch.full((count,), index or 0, dtype=torch.long)
            ref_pos = torch.arange(patches).expand(count, patches)
        else:
            ref_rows = torch.from_numpy(rng.integers(0, self.references.shape[0], count))
            ref_pos = subset_positions(rng, count, self.references.shape[1], patches)
        whole = self._whole(self.reference_whole)
        return with_whole(gather(self.references, ref_rows, ref_pos), whole, ref_rows,
                          self._variants(whole, count, rng, validation))

    def _loss(self, rows: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        lq, reference, pristine = self._inputs(rows, rng)
        lq = lq.to(self.device)
        output = self.network(lq, None if reference is None else reference.to(self.device))
        target = self.data.labels[rows].to(self.device)
        loss = F.l1_loss(output.score / SCORE_RANGE[1], target / SCORE_RANGE[1])
        if self.teacher is not None and self.config.distill_weight > 0 and output.diff_features:
            with torch.no_grad():
                guide = self.teacher(lq, pristine.to(self.device)).diff_features
            distill = sum(F.mse_loss(s, t) for s, t in zip(output.diff_features, guide))
            loss = loss + self.config.distill_weight * distill / len(guide)
        return loss

    # --------------------------------------------------------------- validation
    @torch.no_grad()
    def predict_validation(self) -> np.ndarray:
        """Scores of the validation images on the inference grid (students: mean over references)."""
        self.network.eval()
        scores = []
        for start in range(0, len(self.val_rows), 128):
            rows = self.val_rows[start:start + 128]
            lq, reference, _ = self._inputs(rows, np.random.default_rng(0), validation=True)
            lq = lq.to(self.device)
            if self.role == "student" and reference is not None:
                per_ref = []
                for k in range(self.references.shape[0]):
                    ref = self._references(len(rows), np.random.default_rng(0), True, k).to(self.device)
                    per_ref.append(self.network(lq, ref).score)
                scores.append(torch.stack(per_ref).mean(0).cpu())
            else:
                scores.append(self.network(lq, None if reference is None else reference.to(self.device))
                              .score.cpu())
        self.network.train()
        return torch.cat(scores).numpy()

    def validation_srcc(self) -> float:
        predicted = self.predict_validation()
        return float(spearmanr(predicted, self.data.labels[self.val_rows].numpy()).statistic)

    # --------------------------------------------------------------------- loop
    def run(self) -> tuple[CVRKDNet, dict]:
        start_epoch, best = self._resume()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.out_dir / "log.csv"
        self.network.train()
        for epoch in range(start_epoch, self.config.epochs):
            began = time.perf_counter()
            rng = np.random.default_rng([self.config.seed, epoch])
            order = self.train_rows[torch.from_numpy(rng.permutation(len(self.train_rows)))]
            losses = []
            for step in range(0, len(order), self.config.batch_size):
                loss = self._loss(order[step:step + self.config.batch_size], rng)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                losses.append(float(loss.detach()))
            self._cosine_lr(epoch + 1)
            final = epoch + 1 == self.config.epochs
            # keeping the last epoch needs no validation on the way (it costs a pass per reference)
            srcc = self.validation_srcc() if self.config.keep == "best" or final else float("nan")
            improved = srcc > best["val_srcc"] or (self.config.keep == "last" and final)
            if improved:
                best = {"val_srcc": srcc, "epoch": epoch + 1}
                self._save_checkpoint(best)
            row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_srcc": srcc,
                   "seconds": time.perf_counter() - began, "best": improved}
            _append_csv(log_path, row)
            self.log(f"[{self.role}:{self.out_dir.name}] epoch {epoch + 1}/{self.config.epochs} "
                     f"loss {row['train_loss']:.4f} val SRCC {srcc:.4f}")
            self._save_state(epoch + 1, best)
        return self.network, best

    def _cosine_lr(self, epoch: int) -> None:
        factor = 0.5 * (1 + np.cos(np.pi * min(epoch, self.config.epochs) / self.config.epochs))
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * max(factor, 0.02)

    def _save_checkpoint(self, best: dict) -> None:
        info = CheckpointInfo(self.role, self.backbone_name, self.network.config, self.patches,
                              trained=True, extra={"training": self.config.to_dict(), **best})
        save_checkpoint(self.network, info, self.out_dir / "best")

    # ------------------------------------------------------------------- resume
    def _save_state(self, epoch: int, best: dict) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v.detach().cpu().contiguous()
                   for k, v in self.network.state_dict().items()}
        optimizer = self.optimizer.state_dict()
        for pid, state in optimizer["state"].items():
            for name, value in state.items():
                tensors[f"optim.{pid}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
        meta = {"epoch": epoch, "best": best, "param_groups": optimizer["param_groups"]}
        _atomic(lambda path: save_file(tensors, path), self.state_dir / "state.safetensors")
        _atomic(lambda path: Path(path).write_text(json.dumps(meta)), self.state_dir / "state.json")

    def _resume(self) -> tuple[int, dict]:
        meta_path, tensor_path = self.state_dir / "state.json", self.state_dir / "state.safetensors"
        if not meta_path.exists() or not tensor_path.exists():
            return 0, {"val_srcc": -1.0, "epoch": 0}
        meta = json.loads(meta_path.read_text())
        tensors = load_file(str(tensor_path))
        self.network.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value.to(self.device)
        self.optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        self.log(f"[{self.role}:{self.out_dir.name}] resuming after epoch {meta['epoch']}")
        return int(meta["epoch"]), meta["best"]


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _atomic(write: Callable[[str], object], path: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        temp = handle.name
    write(temp)
    os.replace(temp, path)


def new_network(stage_channels: tuple[int, ...], patches: PatchConfig, seed: int,
                use_reference: bool = True) -> CVRKDNet:
    torch.manual_seed(seed)
    return CVRKDNet(ModelConfig(stage_channels=stage_channels, num_patches=patches.views,
                                use_reference=use_reference))
