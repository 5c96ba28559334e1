"""What one fine-tuning step costs at each trainable depth, side by side in one run.

A step is the forward and backward pass of a batch of native-resolution crops through Lite0
with the last N stages trainable (the rest runs without gradients), as stage 3 trains
(``cvrkd.train.finetune``). Reported as seconds per step and as a ratio to the whole backbone,
so the figure survives a noisy machine; rerun it when the load average is high.

    python bench/finetune_cost.py [--batch 12] [--crop 320] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cvrkd.backbone import FrozenBackbone  # noqa: E402
from cvrkd.train.finetune import pooled_views  # noqa: E402


def step_seconds(stages: int, batch: int, crop: int, repeats: int) -> float:
    """Median seconds of one forward + backward step with ``stages`` trailing stages trainable."""
    backbone = FrozenBackbone()
    backbone.with_tail(backbone.tail(stages))
    images = torch.rand(batch, 3, crop, crop)
    times = []
    for _ in range(repeats + 1):  # the first step warms up the allocator
        started = time.perf_counter()
        pooled_views(backbone, images).square().mean().backward()
        times.append(time.perf_counter() - started)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--depths", type=int, nargs="+", default=[7, 4, 2])
    args = parser.parse_args()
    rows = [(depth, step_seconds(depth, args.batch, args.crop, args.repeats)) for depth in args.depths]
    whole = dict(rows).get(7, rows[0][1])
    print(f"batch {args.batch} x {args.crop}², {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| trainable stages | s per step | vs whole backbone |")
    print("|---|---|---|")
    for depth, seconds in rows:
        print(f"| last {depth} of 7 | {seconds:.2f} | {seconds / whole:.2f}× |")


if __name__ == "__main__":
    main()
