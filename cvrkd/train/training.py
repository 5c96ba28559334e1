"""Training loops on cached features: FR teacher, distilled NAR student, ablations.

Teacher: (LQ patches, aligned pristine patches) -> label, L1 loss.
Student: (LQ patches, patches of an other-content gallery reference) -> label,
L1 loss + MSE between its last diff-encoder block outputs and the frozen
teacher's on the aligned pair (the distillation of DESIGN §1).
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


class Trainer:
    """One training run of one network, with validation, logging and resume."""

    def __init__(self, role: str, network: CVRKDNet, data: SyntheticSet, out_dir: Path,
                 config: TrainConfig, patches: PatchConfig, backbone: str,
                 references: torch.Tensor | None = None, teacher: CVRKDNet | None = None,
                 log: Log = print) -> None:
        self.role, self.network, self.data, self.out_dir = role, network, data, Path(out_dir)
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
    def _inputs(self, rows: torch.Tensor, rng: np.random.Generator, validation: bool = False):
        count = self.patches.num_patches
        available = self.data.features.shape[1]
        if validation:
            lq_pos = torch.arange(count).expand(len(rows), count)
        else:
            lq_pos = subset_positions(rng, len(rows), available, count)
        lq = gather(self.data.features, rows, lq_pos)
        pristine = gather(self.data.features, self.data.pristine_row[rows], lq_pos)
        if self.role == "teacher":
            return lq, pristine, pristine
        if not self.network.config.use_reference:
            return lq, None, pristine
        assert self.references is not None
        if validation:
            ref_rows = torch.zeros(len(rows), dtype=torch.long)
            ref_pos = torch.arange(count).expand(len(rows), count)
        else:
            ref_rows = torch.from_numpy(rng.integers(0, self.references.shape[0], len(rows)))
            ref_pos = subset_positions(rng, len(rows), self.references.shape[1], count)
        return lq, gather(self.references, ref_rows, ref_pos), pristine

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
                    pos = torch.arange(self.patches.num_patches).expand(len(rows), -1)
                    ref = gather(self.references, torch.full((len(rows),), k), pos).to(self.device)
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
            srcc = self.validation_srcc()
            improved = srcc > best["val_srcc"]
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
    return CVRKDNet(ModelConfig(stage_channels=stage_channels, num_patches=patches.num_patches,
                                use_reference=use_reference))
