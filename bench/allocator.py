"""What keeping freed memory in the heap (:mod:`cvrkd.allocator`) does to fine-tuning, side by
side in one run.

Each setting runs in its own process (the allocator's state is per process), alternating, so a
noisy machine loads both alike. Two workloads:

* ``backbone``: the forward and backward pass of a batch of native-resolution crops through the
  whole Lite0 backbone (median seconds a step, as ``bench/finetune_cost.py`` times it);
* ``phase2b``: the real phase-2b loop (:func:`cvrkd.train.finetune.finetune`) of the shipped
  student for ``--steps`` steps on labelled photos, with synthetic replay and the teacher's
  distillation (seconds a step, the epoch's set-up included).

Reports seconds, the ratio and each process's peak RSS.

    python bench/allocator.py [--workload phase2b] [--steps 5] [--rounds 2] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass
class Replay:
    """Stands in for the synthetic set in phase 2b's replay: images, aligned originals, labels."""

    images: list
    originals: list
    labels: object

    def __len__(self) -> int:
        return len(self.images)


def phase2b_step(batch: int, crop: int, steps: int, data: Path) -> float:
    """Seconds a step of the shipped student's phase-2b loop (one epoch of ``steps`` steps)."""
    import tempfile

    import numpy as np

    from cvrkd import paths
    from cvrkd.checkpoint import load_checkpoint
    from cvrkd.gallery import build_default_gallery
    from cvrkd.train.finetune import FinetuneConfig, finetune, load_photos
    from cvrkd.train.human import read_mos_csv

    model = paths.default_model_dir()
    student, teacher = load_checkpoint(model / "student")[0], load_checkpoint(model / "teacher")[0]
    rows = read_mos_csv(data / "clive_dev" / "clive_dev.csv")[:batch * steps]  # an epoch of ``steps`` steps
    photos = load_photos([row.path for row in rows], np.array([row.mos for row in rows]))
    # replay: the photos' own crops and made-up labels (the cost, not the meaning, is measured)
    replay = Replay(photos.pixels, photos.pixels, np.linspace(0, 100, len(photos)))
    config = FinetuneConfig(tuned_stages=student.config.tuned_stages, epochs=1, steps_per_epoch=steps,
                            batch=batch, crop=crop)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        finetune(student, photos, build_default_gallery(paths.default_gallery_dir()), config, Path(folder),
                 replay, teacher, log=lambda line: None)
        return (time.perf_counter() - started) / steps


def measure(keep: bool, workload: str, batch: int, crop: int, steps: int, data: Path) -> dict:
    """Seconds a step in this process, with or without the training allocator setting."""
    from bench.finetune_cost import step_seconds
    from cvrkd.allocator import keep_freed_memory

    applied = keep_freed_memory() if keep else False
    seconds = (step_seconds(7, batch, crop, steps) if workload == "backbone"
               else phase2b_step(batch, crop, steps, data))
    return {"keep": keep, "applied": applied, "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["backbone", "phase2b"], default="phase2b")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=["default", "keep"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child == "keep", args.workload, args.batch, args.crop, args.steps, args.data)))
        return
    results: dict[str, list[dict]] = {"default": [], "keep": []}
    for _ in range(args.rounds):
        for setting, rows in results.items():
            command = [sys.executable, __file__, "--child", setting, "--workload", args.workload,
                       "--data", str(args.data), "--batch", str(args.batch), "--crop", str(args.crop),
                       "--steps", str(args.steps)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
    print(f"{args.workload}: batch {args.batch} x {args.crop}², {args.rounds} rounds of {args.steps} steps, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| allocator | s per step (per round) | peak RSS MB |")
    print("|---|---|---|")
    for setting, rows in results.items():
        seconds = ", ".join(f"{row['seconds']:.2f}" for row in rows)
        print(f"| {setting} | {seconds} | {max(row['peak_rss_mb'] for row in rows):.0f} |")
    best = {setting: min(row["seconds"] for row in rows) for setting, rows in results.items()}
    print(f"keeping freed memory: {best['default'] / best['keep']:.2f}x faster a step (best round each)")


if __name__ == "__main__":
    main()
