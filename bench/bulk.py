"""Bulk scoring throughput: `cvrkd score-dataset` on the local engine vs Ray with 1 and 2 workers.

Writes --images crops of the Kodak and clive_dev photos (seeded sizes and positions) to a
temporary folder, then scores the folder with each engine, one after the other, each as a
fresh `cvrkd score-dataset` process (so start-up, model loading and Ray's start are in the
end-to-end time). Reports images/s while scoring (model loading excluded), end-to-end wall
time, Ray's scaling efficiency from 1 to 2 workers, Ray's overhead against the local engine,
and the largest score difference from `cvrkd score` on the same images (every
--check-every-th image; the CSV of `cvrkd score` rounds to 4 decimals).

    python bench/bulk.py --images 2000
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from cvrkd import paths  # noqa: E402

RUNS = (("local", 1), ("ray", 1), ("ray", 2))


def write_crops(data: Path, folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEG crops, 256–448 px a side, of the Kodak and clive_dev photos."""
    sources = sorted((data / "kodak24").glob("*.png")) + sorted((data / "clive_dev" / "images").glob("*"))
    if not sources:
        raise SystemExit(f"no photos under {data} (kodak24/, clive_dev/): pass --data")
    rng = np.random.default_rng(seed)
    written = []
    for index in range(count):
        photo = Image.open(sources[index % len(sources)]).convert("RGB")
        width, height = (int(rng.integers(256, min(448, s) + 1)) for s in photo.size)
        left = int(rng.integers(0, photo.width - width + 1))
        top = int(rng.integers(0, photo.height - height + 1))
        path = folder / f"{index // 500:02d}" / f"crop{index:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        photo.crop((left, top, left + width, top + height)).save(path, quality=92)
        written.append(path)
    return written


def run_engine(folder: Path, out: Path, engine: str, workers: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "cvrkd", "score-dataset", str(folder), "--out", str(out),
               "--engine", engine, "--workers", str(workers), "--batch-size", str(args.batch_size),
               "--shard-size", str(args.shard_size)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{engine} x{workers} failed:\n{done.stderr[-3000:]}")
    rate = float(re.search(r"\(([\d.]+) images/s\)", done.stderr).group(1))
    table = pd.read_parquet(out)
    return {"engine": engine, "workers": workers, "images_per_s": rate, "wall_s": wall,
            "rows": len(table), "unique": int(table["path"].nunique()),
            "backend": ",".join(sorted(table["backend"].unique())), "scores": table}


def cli_scores(folder: Path, images: list[Path], workdir: Path) -> pd.Series:
    """What `cvrkd score` gives for the same images."""
    output = workdir / "single.csv"
    subprocess.run([sys.executable, "-m", "cvrkd", "score", *map(str, images), "--output", str(output)],
                   cwd=ROOT, capture_output=True, text=True, check=True)
    rows = list(csv.DictReader(output.open()))
    return pd.Series({Path(r["path"]).relative_to(folder).as_posix(): float(r["score"]) for r in rows})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=250)
    parser.add_argument("--check-every", type=int, default=1,
                        help="compare every N-th image with `cvrkd score` (1 = all)")
    parser.add_argument("--data", type=Path, default=paths.shared_data_dir(),
                        help="folder holding kodak24/ and clive_dev/ (default: $CVRKD_DATA or ../shared/data)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        os.environ["CVRKD_DATA_DIR"] = str(workdir / "state")  # one gallery cache for all runs
        folder = workdir / "crops"
        images = write_crops(args.data, folder, args.images)
        results = [run_engine(folder, workdir / f"out-{engine}-{workers}", engine, workers, args)
                   for engine, workers in RUNS]
        single = cli_scores(folder, images[::args.check_every], workdir)
    for result in results:
        scores = result.pop("scores").set_index("path")["score"]
        result["max_abs_diff_vs_cvrkd_score"] = float((scores[single.index] - single).abs().max())
    local, ray1, ray2 = results
    figures = {
        "images": args.images, "runs": results, "compared_with_cvrkd_score": int(len(single)),
        "ray_scaling_efficiency_1_to_2": ray2["images_per_s"] / (2 * ray1["images_per_s"]),
        "ray1_throughput_vs_local": ray1["images_per_s"] / local["images_per_s"],
        "ray1_extra_wall_s_vs_local": ray1["wall_s"] - local["wall_s"],
    }
    print(f"{args.images} images, batch {args.batch_size}, shards of {args.shard_size}, "
          f"{os.cpu_count()} CPUs\n")
    print("| engine | workers | images/s (scoring) | end-to-end wall (s) | rows (unique) | backend "
          "| max abs diff vs `cvrkd score` |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['engine']} | {r['workers']} | {r['images_per_s']:.2f} | {r['wall_s']:.1f} | "
              f"{r['rows']} ({r['unique']}) | {r['backend']} | {r['max_abs_diff_vs_cvrkd_score']:.1e} |")
    print(f"\nRay scaling efficiency 1 -> 2 workers: {figures['ray_scaling_efficiency_1_to_2']:.0%}; "
          f"Ray (1 worker) throughput vs local: {figures['ray1_throughput_vs_local']:.0%}, "
          f"end-to-end {figures['ray1_extra_wall_s_vs_local']:+.1f} s; scores compared with "
          f"`cvrkd score` on {len(single)} images")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
