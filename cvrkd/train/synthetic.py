"""Synthetic training data: distorted pristine photos, FR pseudo-labels, cached features.

For every pristine source we fix ``positions`` patch corners (the inference grid
first, then seeded random ones) and store the frozen backbone's pooled features
at those corners for the source and for each of its distorted versions. The
trainer then draws random subsets of the corners (augmentation) without ever
running the backbone again. Sources are split into train/validation by image,
so no content leaks; one shard file per source makes the build resumable.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from cvrkd.backbone import FrozenBackbone
from cvrkd.features import pooled_features, resize_long_side
from cvrkd.gallery import Gallery
from cvrkd.imageio import load_image
from cvrkd.patches import PatchConfig, crop, fit_to_patch, grid_positions, random_positions
from cvrkd.train.views import whole_view_variants

Progress = Callable[[str], None]


@dataclass
class SyntheticConfig:
    """What to build. Defaults: all 25 KADID types on every source, each at
    ``levels_per_source`` of the 5 levels (seeded per source, so every level of every
    type is covered across sources while labelling time stays within the CPU budget)."""

    sources: list[str]
    val_sources: list[str]
    distortions: list[str] = field(default_factory=list)  # empty = all
    levels: tuple[int, ...] = (1, 2, 3, 4, 5)
    levels_per_source: int = 3
    extra_positions: int = 4
    whole_variants: int = 2
    """Whole-image-view variants stored per image (plain, flipped, crops; see train.views)."""
    max_side: int = 512
    """Sources are resized to this long side: KADID-10k's size, and it halves label time."""
    patches: PatchConfig = field(default_factory=PatchConfig)
    seed: int = 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["patches"] = self.patches.to_dict()
        return data


def kodak_sources(data_root: Path, val_count: int = 4, train_count: int = 12) -> tuple[list[str], list[str]]:
    """Kodak24 split by source image: the first ``train_count`` photos train, the last
    ``val_count`` validate. 12 + 4 (not all 24) keeps the whole pipeline inside the
    90-minute budget of a 2-core CPU; returns (all sources, validation sources)."""
    files = sorted(str(p) for p in (Path(data_root) / "kodak24").glob("*.png"))
    if len(files) < val_count + 1:
        raise FileNotFoundError(f"need Kodak photos under {data_root}/kodak24")
    train = files[: min(train_count, len(files) - val_count)]
    val = files[-val_count:]
    return train + val, val


def source_positions(pixels: np.ndarray, config: SyntheticConfig, key: str) -> list[tuple[int, int]]:
    """Inference grid first (used for validation), then seeded random corners."""
    height, width = pixels.shape[:2]
    rng = np.random.default_rng([config.seed, zlib.crc32(key.encode())])
    return (grid_positions(height, width, config.patches)
            + random_positions(height, width, PatchConfig(config.extra_positions, config.patches.size), rng))


def build(config: SyntheticConfig, out_dir: Path, backbone: FrozenBackbone,
          progress: Progress | None = None) -> Path:
    """Write one shard per source plus ``labels.csv``; existing shards are kept (resume)."""
    from cvrkd.distortions import DISTORTIONS, distort
    from cvrkd.train.pseudolabels import FAST_METRICS, fr_metrics, label_from_metrics

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    names = config.distortions or list(DISTORTIONS)
    for index, source in enumerate(config.sources):
        shard = out_dir / f"source-{index:03d}.safetensors"
        if shard.exists():
            continue
        if progress:
            progress(f"source {index + 1}/{len(config.sources)}: {Path(source).name}")
        pristine = resize_long_side(load_image(source).pixels, config.max_side)
        pristine, _ = fit_to_patch(pristine, config.patches.size)
        positions = source_positions(pristine, config, Path(source).name)
        variants = [("pristine", 0, pristine)] + [
            (name, level, distort(pristine, name, level, seed=config.seed + index))
            for name, level in _variant_plan(names, config, index)
        ]
        metrics = [fr_metrics(pristine, pixels, FAST_METRICS) for _, _, pixels in variants]
        features = torch.stack([
            pooled_features(backbone, crop(pixels, positions, config.patches.size)).half()
            for _, _, pixels in variants
        ])
        whole = torch.stack([whole_view_variants(backbone, pixels, config.whole_variants,
                                                 Path(source).name, config.seed)
                             for _, _, pixels in variants])
        rows = [{"source": Path(source).name, "source_index": index, "variant": i,
                 "distortion": name, "level": level, "label": label_from_metrics(m),
                 "split": "val" if source in config.val_sources else "train",
                 **{f"metric_{k}": v for k, v in m.items()}}
                for i, ((name, level, _), m) in enumerate(zip(variants, metrics))]
        _atomic_save({"features": features, "whole": whole,
                      "positions": torch.tensor(positions, dtype=torch.int32)}, shard,
                     {"rows": json.dumps(rows)})
    _write_labels(out_dir, len(config.sources))
    return out_dir


def _variant_plan(names: list[str], config: SyntheticConfig, index: int) -> list[tuple[str, int]]:
    """Which (type, level) pairs source ``index`` gets: levels rotate across sources."""
    count = min(config.levels_per_source, len(config.levels))
    plan = []
    for offset, name in enumerate(names):
        start = (index + offset) % len(config.levels)
        chosen = sorted(config.levels[(start + k * 2) % len(config.levels)] for k in range(count))
        plan.extend((name, level) for level in dict.fromkeys(chosen))
    return plan


def reference_features(gallery: Gallery, backbone: FrozenBackbone, config: SyntheticConfig,
                       out_file: Path) -> torch.Tensor:
    """[K, positions, C, 7, 7] for the student's training references (cached on disk)."""
    if out_file.exists():
        return load_file(str(out_file))["features"]
    stacked = []
    for reference in gallery.load_images():
        pixels, _ = fit_to_patch(reference.pixels, config.patches.size)
        positions = source_positions(pixels, config, reference.name)
        stacked.append(pooled_features(backbone, crop(pixels, positions, config.patches.size)).half())
    features = torch.stack(stacked)
    _atomic_save({"features": features}, out_file, {})
    return features


def reference_whole_features(gallery: Gallery, backbone: FrozenBackbone, config: SyntheticConfig,
                             out_file: Path) -> torch.Tensor:
    """[K, variants, C, 7, 7] whole-image views of the student's training references (cached)."""
    if out_file.exists():
        return load_file(str(out_file))["whole"]
    stacked = []
    for reference in gallery.load_images():
        stacked.append(whole_view_variants(backbone, reference.pixels, config.whole_variants,
                                           reference.name, config.seed))
    whole = torch.stack(stacked)
    _atomic_save({"whole": whole}, out_file, {})
    return whole


@dataclass
class SyntheticSet:
    """Everything the trainer needs, in memory."""

    features: torch.Tensor  # [N, positions, C, 7, 7] float16 (variant 0 of each source is pristine)
    labels: torch.Tensor  # [N] on the 0–100 scale
    source_of: torch.Tensor  # [N] source index
    pristine_row: torch.Tensor  # [N] row of the sample's pristine source
    split: list[str]
    rows: list[dict]
    whole: torch.Tensor | None = None  # [N, variants, C, 7, 7] float16 whole-image views

    def indices(self, split: str, include_pristine: bool = True) -> torch.Tensor:
        keep = [i for i, (s, row) in enumerate(zip(self.split, self.rows))
                if s == split and (include_pristine or row["distortion"] != "pristine")]
        return torch.tensor(keep, dtype=torch.long)


def load(out_dir: Path) -> SyntheticSet:
    features, rows, whole = [], [], []
    for shard in sorted(out_dir.glob("source-*.safetensors")):
        from safetensors import safe_open

        with safe_open(str(shard), "pt") as handle:
            rows.extend(json.loads(handle.metadata()["rows"]))
            features.append(handle.get_tensor("features"))
            if "whole" in handle.keys():
                whole.append(handle.get_tensor("whole"))
    if not features:
        raise FileNotFoundError(f"no synthetic shards in {out_dir}; run the build first")
    stacked = torch.cat(features)
    pristine_of = {}
    for i, row in enumerate(rows):
        if row["distortion"] == "pristine":
            pristine_of[row["source_index"]] = i
    return SyntheticSet(
        features=stacked,
        labels=torch.tensor([float(r["label"]) for r in rows]),
        source_of=torch.tensor([r["source_index"] for r in rows]),
        pristine_row=torch.tensor([pristine_of[r["source_index"]] for r in rows]),
        split=[r["split"] for r in rows], rows=rows,
        whole=torch.cat(whole) if whole and len(whole) == len(features) else None,
    )


def _write_labels(out_dir: Path, count: int) -> None:
    rows = load(out_dir).rows
    with open(out_dir / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        temp = handle.name
    save_file({k: v.contiguous() for k, v in tensors.items()}, temp, metadata=metadata)
    os.replace(temp, path)
