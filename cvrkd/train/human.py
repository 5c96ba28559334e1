"""Human-rated real photos as training data: cached backbone features of every image's
whole-image-view variants (what the networks read) and their pairwise labels.

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
from cvrkd.imageio import load_image
from cvrkd.train.pairwise import PairLabels, mos_pairs
from cvrkd.train.views import whole_view_variants

Log = Callable[[str], None]


@dataclass
class HumanSet:
    """Images with human labels, as the trainer needs them."""

    names: list[str]
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
        return HumanSet([self.names[i] for i in rows], self.whole[rows],
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


def names_digest(names: Iterable[str]) -> str:
    """A short name for a list of photos (in order), for cache keys and run folders: results
    computed for other photos are never read back."""
    return hashlib.sha256("|".join(names).encode()).hexdigest()[:12]


def mos_set(rows: list[MosRow], backbone: FrozenBackbone, cache: FeatureCache, whole_variants: int = 4,
            seed: int = 0, log: Log = print) -> HumanSet:
    """MOS-labelled photos (:func:`read_mos_csv` rows) with all their Thurstone pairs; the
    whole-view variants' features cached as one tensor."""
    names = [row.path.name for row in rows]
    key = f"human-whole-{names_digest(names)}-{backbone.fingerprint()}-v{whole_variants}-s{seed}"

    def compute() -> torch.Tensor:
        views = []
        for index, row in enumerate(rows):
            if index % 25 == 0:
                log(f"human-set features {index}/{len(rows)}")
            views.append(whole_view_variants(backbone, load_image(row.path).pixels, whole_variants, row.path.name,
                                             seed))
        return torch.stack(views)

    mos = np.array([row.mos for row in rows])
    spread = None if any(row.mos_std is None for row in rows) else np.array([row.mos_std for row in rows])
    return HumanSet(names, cache.get_or_compute(key, compute), mos_pairs(mos, spread), mos)
