"""Human-rated real photos as training data: cached backbone features of every image
(patch corners + whole-image-view variants) and their pairwise labels.

A MOS-labelled CSV (``image,mos,mos_std`` like clive_dev) and crowd judgements both end up
as a :class:`HumanSet`: images plus :class:`~cvrkd.train.pairwise.PairLabels`.
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from cvrkd.backbone import FrozenBackbone
from cvrkd.feature_cache import FeatureCache
from cvrkd.features import pooled_features
from cvrkd.imageio import load_image
from cvrkd.patches import PatchConfig, crop, fit_to_patch, grid_positions, random_positions
from cvrkd.train.pairwise import PairLabels, mos_pairs
from cvrkd.train.views import whole_view_variants

Log = Callable[[str], None]


@dataclass
class HumanSet:
    """Images with human labels, as the trainer needs them."""

    names: list[str]
    features: torch.Tensor  # [N, positions, C, 7, 7] float16; the inference grid first
    whole: torch.Tensor  # [N, variants, C, 7, 7] float16; variant 0 = plain whole-image view
    pairs: PairLabels
    mos: np.ndarray | None = None  # [N] when the set is MOS-labelled

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, rows: np.ndarray) -> "HumanSet":
        """The images ``rows`` and only the pairs among them (re-indexed)."""
        rows = np.asarray(rows)
        index = torch.full((len(self.names),), -1, dtype=torch.long)
        index[torch.from_numpy(rows)] = torch.arange(len(rows))
        pairs = self.pairs.among(torch.from_numpy(rows))
        return HumanSet([self.names[i] for i in rows], self.features[rows], self.whole[rows],
                        PairLabels(index[pairs.first], index[pairs.second], pairs.prob, pairs.weight),
                        None if self.mos is None else self.mos[rows])


@dataclass(frozen=True)
class MosRow:
    path: Path
    mos: float
    mos_std: float | None


def read_mos_csv(csv_path: Path, image_root: Path | None = None) -> list[MosRow]:
    """Rows of a CSV with ``image`` (relative path), ``mos`` and optional ``mos_std``."""
    root = Path(image_root) if image_root else Path(csv_path).parent
    with open(csv_path, newline="") as handle:
        return [MosRow(root / row["image"], float(row["mos"]),
                       float(row["mos_std"]) if row.get("mos_std") else None)
                for row in csv.DictReader(handle)]


def image_training_features(backbone: FrozenBackbone, pixels: np.ndarray, patches: PatchConfig,
                            extra_positions: int, whole_variants: int, key: str,
                            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(patches at grid + seeded random corners, whole-image-view variants), float16."""
    fitted, _ = fit_to_patch(pixels, patches.size)
    rng = np.random.default_rng([seed, int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)])
    positions = (grid_positions(fitted.shape[0], fitted.shape[1], patches)
                 + random_positions(fitted.shape[0], fitted.shape[1],
                                    PatchConfig(extra_positions, patches.size), rng))
    grid = pooled_features(backbone, crop(fitted, positions, patches.size)).half()
    return grid, whole_view_variants(backbone, pixels, whole_variants, key, seed)


def names_digest(names: Iterable[str]) -> str:
    """A short name for a list of photos (in order), for cache keys and run folders: results
    computed for other photos are never read back."""
    return hashlib.sha256("|".join(names).encode()).hexdigest()[:12]


def mos_set(rows: list[MosRow], backbone: FrozenBackbone, patches: PatchConfig, cache: FeatureCache,
            extra_positions: int = 4, whole_variants: int = 4, seed: int = 0,
            log: Log = print) -> HumanSet:
    """MOS-labelled photos (:func:`read_mos_csv` rows) with all their Thurstone pairs; features
    cached as one tensor."""
    names = [row.path.name for row in rows]
    key = (f"human-{names_digest(names)}-{backbone.fingerprint()}-{patches.key()}-e{extra_positions}"
           f"-v{whole_variants}-s{seed}")

    def compute() -> torch.Tensor:
        packed = []
        for index, row in enumerate(rows):
            if index % 25 == 0:
                log(f"human-set features {index}/{len(rows)}")
            grid, whole = image_training_features(backbone, load_image(row.path).pixels, patches,
                                                  extra_positions, whole_variants, row.path.name, seed)
            packed.append(torch.cat([grid, whole]))
        return torch.stack(packed)

    packed = cache.get_or_compute(key, compute)
    split = patches.num_patches + extra_positions
    mos = np.array([row.mos for row in rows])
    spread = None if any(row.mos_std is None for row in rows) else np.array([row.mos_std for row in rows])
    return HumanSet(names, packed[:, :split], packed[:, split:], mos_pairs(mos, spread), mos)
