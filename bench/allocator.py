"""What keeping freed memory in the heap (:mod:`cvrkd.allocator`) does to a fine-tuning step,
side by side in one run.

Each setting runs in its own process (the allocator's state is per process), alternating, so a
noisy machine loads both alike. A step is the forward and backward pass of a batch of
native-resolution crops through the whole Lite0 backbone, as phase 2b trains. Reports the median
seconds a step, the ratio, and each process's peak RSS.

    python bench/allocator.py [--batch 12] [--crop 320] [--steps 5] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measure(keep: bool, batch: int, crop: int, steps: int) -> dict:
    """Median step seconds in this process, with or without the training allocator setting."""
    import torch

    from cvrkd.allocator import keep_freed_memory
    from cvrkd.backbone import FrozenBackbone
    from cvrkd.train.finetune import pooled_views

    applied = keep_freed_memory() if keep else False
    backbone = FrozenBackbone()
    backbone.with_tail(backbone.tail(7))
    images = torch.rand(batch, 3, crop, crop)
    times = []
    for _ in range(steps + 1):  # the first step warms up
        started = time.perf_counter()
        pooled_views(backbone, images).square().mean().backward()
        times.append(time.perf_counter() - started)
    rest = sorted(times[1:])
    return {"keep": keep, "applied": applied, "seconds": rest[len(rest) // 2],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=["default", "keep"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child == "keep", args.batch, args.crop, args.steps)))
        return
    results: dict[str, list[dict]] = {"default": [], "keep": []}
    for _ in range(args.rounds):
        for setting, rows in results.items():
            command = [sys.executable, __file__, "--child", setting, "--batch", str(args.batch),
                       "--crop", str(args.crop), "--steps", str(args.steps)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
    print(f"batch {args.batch} x {args.crop}², whole backbone, {args.rounds} rounds of {args.steps} steps, "
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
