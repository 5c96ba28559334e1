"""Measure pseudo-labelling speed and label spread on Kodak photos x 25 types x 5 levels.

    python bench/pseudolabel_speed.py [--data DIR] [--images 8] [--threads 2] [--knots]

Reads ``kodak24/`` under ``--data`` (default: $CVRKD_DATA or ../shared/data beside the
repository). Prints seconds per pair (batched ``pseudo_labels`` and single
``pseudo_label``), seconds per ``distort`` call, and label statistics per level and
per type. ``--knots`` also prints the raw-metric quantiles that define
``cvrkd.pseudolabels.KNOTS``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cvrkd.distortions import DISTORTIONS, LEVELS, distort  # noqa: E402
from cvrkd.pseudolabels import (  # noqa: E402
    KNOTS, METRICS, fr_metrics_many, label_from_metrics, pseudo_label,
)

KNOT_QUANTILES = (0.2, 0.4, 0.6, 0.8, 0.99)  # best to worst -> scores 80, 60, 40, 20, 0


def load_images(data: Path, count: int) -> list[tuple[str, np.ndarray]]:
    paths = sorted((data / "kodak24").glob("*.png"))
    if not paths:
        sys.exit(f"no kodak24/*.png under {data}; pass --data or set CVRKD_DATA")
    picks = np.linspace(0, len(paths) - 1, min(count, len(paths))).round().astype(int)
    return [(paths[i].name, np.asarray(Image.open(paths[i]).convert("RGB"))) for i in picks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("CVRKD_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--knots", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []  # (type, level, raw metrics, label)
    t_distort = t_batched = 0.0
    n_pairs = 0
    single_times = []
    for index, (name, ref) in enumerate(load_images(args.data, args.images)):
        keys, pairs = [], []
        t0 = time.perf_counter()
        for kind in DISTORTIONS:
            for level in LEVELS:
                keys.append((kind, level))
                pairs.append((ref, distort(ref, kind, level, seed=index)))
        t_distort += time.perf_counter() - t0
        t0 = time.perf_counter()
        raws = fr_metrics_many(pairs)
        labels = [label_from_metrics(raw) for raw in raws]
        t_batched += time.perf_counter() - t0
        n_pairs += len(pairs)
        for _, dist in pairs[::25]:
            t0 = time.perf_counter()
            pseudo_label(ref, dist)
            single_times.append(time.perf_counter() - t0)
        rows += [(k, lv, raw, lab) for (k, lv), raw, lab in zip(keys, raws, labels)]
        print(f"{name} {ref.shape[1]}x{ref.shape[0]} pristine={pseudo_label(ref, ref):.1f}", flush=True)

    print(f"\n{n_pairs} pairs, {args.threads} torch threads")
    print(f"pseudo_labels (batched): {t_batched / n_pairs:.3f} s/pair")
    print(f"pseudo_label (single, median of {len(single_times)}): {statistics.median(single_times):.3f} s/pair")
    print(f"distort: {t_distort / n_pairs:.3f} s/call")

    print("\nlabel by level: mean [min, max]")
    for level in LEVELS:
        labels = [lab for _, lv, _, lab in rows if lv == level]
        print(f"  level {level}: {np.mean(labels):5.1f} [{min(labels):5.1f}, {max(labels):5.1f}]")
    print("\nmean label by type, levels 1..5")
    for kind in DISTORTIONS:
        means = [np.mean([lab for k, lv, _, lab in rows if k == kind and lv == level]) for level in LEVELS]
        print(f"  {kind:24s}" + " ".join(f"{m:5.1f}" for m in means))

    if args.knots:
        print("\nraw quantiles (best to worst) at", KNOT_QUANTILES)
        for metric in METRICS:
            values = np.array([raw[metric] for _, _, raw, _ in rows])
            worst_high = KNOTS[metric][0][0] < KNOTS[metric][-1][0]  # lower-better metric
            q = np.quantile(values, KNOT_QUANTILES if worst_high else [1 - p for p in KNOT_QUANTILES])
            print(f"  {metric:8s} " + " ".join(f"{v:.4f}" for v in q))


if __name__ == "__main__":
    main()
