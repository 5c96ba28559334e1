"""Measure pseudo-labelling speed and label spread on Kodak photos x 25 types x 5 levels.

    python bench/pseudolabel_speed.py [--data DIR] [--images 8] [--threads 1] [--knots]
    python bench/pseudolabel_speed.py --calibration [--data DIR]

Reads ``kodak24/`` under ``--data`` (default: $CVRKD_DATA or ../shared/data beside the
repository). Prints seconds per pair for pseudo-labelling (wall and CPU), seconds per
``distort`` call, and label statistics per level and per type. ``--knots`` also prints
the raw-metric quantiles that define ``cvrkd.train.pseudolabels.KNOTS``. ``--calibration``
instead prints our metric values next to the official implementations' on the TID2013
calibration pairs.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np
import piq
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cvrkd.distortions import DISTORTIONS, LEVELS, distort  # noqa: E402
from cvrkd.train.pseudolabels import (  # noqa: E402
    KNOTS, METRICS, fr_metrics, label_from_metrics, pseudo_label,
)

KNOT_QUANTILES = (0.2, 0.4, 0.6, 0.8, 0.99)  # best to worst -> scores 80, 60, 40, 20, 0


def load_images(data: Path, count: int) -> list[tuple[str, np.ndarray]]:
    paths = sorted((data / "kodak24").glob("*.png"))
    if not paths:
        sys.exit(f"no kodak24/*.png under {data}; pass --data or set CVRKD_DATA")
    picks = np.linspace(0, len(paths) - 1, min(count, len(paths))).round().astype(int)
    return [(paths[i].name, np.asarray(Image.open(paths[i]).convert("RGB"))) for i in picks]


def calibration(data: Path) -> None:
    folder = data / "tid2013_calibration"
    with open(folder / "results_official.csv", newline="") as f:
        official = {row.pop("Method"): row for row in csv.DictReader(f)}
    names = sorted(official["gmsd"])
    pairs = [tuple(np.array(Image.open(folder / sub / name).convert("RGB"))
                   for sub in ("ref_dir", "dist_dir")) for name in names]
    ours = [fr_metrics(r, d) for r, d in pairs]
    for (r, d), values in zip(pairs, ours):  # candidates left out of the ensemble, for comparison
        x, y = (torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255 for im in (d, r))
        values.update(fsim=piq.fsim(x, y).item(), vif=piq.vif_p(x, y).item())
    print("| metric | " + " | ".join(names) + " | max gap |")
    print("|---" * (len(names) + 2) + "|")
    for metric in (*METRICS, "fsim", "vif"):
        compared = [(o[metric], float(official[metric][n])) for o, n in zip(ours, names)]
        cells = [f"{v:.4g} / {o:.4g}" for v, o in compared]
        gap = max(abs(v - o) for v, o in compared)
        print(f"| {metric} | " + " | ".join(cells) + f" | {gap:.2g} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("CVRKD_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--knots", action="store_true")
    parser.add_argument("--calibration", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.calibration:
        return calibration(args.data)

    rows = []  # (type, level, raw metrics, label)
    distort_s = label_cpu_s = 0.0
    label_s = []  # wall seconds per pair
    for index, (name, ref) in enumerate(load_images(args.data, args.images)):
        for kind in DISTORTIONS:
            for level in LEVELS:
                t0 = time.perf_counter()
                dist = distort(ref, kind, level, seed=index)
                t1, c1 = time.perf_counter(), time.process_time()
                raw = fr_metrics(ref, dist)
                label = label_from_metrics(raw)
                label_s.append(time.perf_counter() - t1)
                label_cpu_s += time.process_time() - c1
                distort_s += t1 - t0
                rows.append((kind, level, raw, label))
        print(f"{name} {ref.shape[1]}x{ref.shape[0]} pristine={pseudo_label(ref, ref):.1f}", flush=True)

    n = len(rows)
    print(f"\n{n} pairs, {args.threads} torch thread(s), load average {os.getloadavg()[0]:.1f} at the end")
    p10, median = np.percentile(label_s, [10, 50])
    print(f"pseudo-label: {np.mean(label_s):.3f} s/pair wall (median {median:.3f}, fastest 10 % "
          f"{p10:.3f}), {label_cpu_s / n:.3f} s/pair CPU")
    print(f"distort: {distort_s / n:.3f} s/call wall")

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
