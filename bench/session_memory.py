"""Memory of the per-shape ONNX Runtime sessions: resident memory of a scoring process after
--images images of different sizes, for each number of kept sessions (``SHAPES_KEPT``).

Each setting runs in a fresh process (resident memory never shrinks back), scores one
1024x768 image repeatedly (its median time, a check that fewer sessions cost no speed on a
repeated size), then --images random-size images (seeded), and reports VmRSS at the end.

    python bench/session_memory.py --kept 2 4 8
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {root!r})
import cvrkd
import numpy as np
from cvrkd import runtime
runtime.SHAPES_KEPT = {kept}
from bench.latency import test_image
from cvrkd.scorer import Scorer

scorer = Scorer(backend="onnxruntime")
image = test_image()
scorer.score(image)
times = []
for _ in range(15):
    start = time.perf_counter()
    scorer.score(image)
    times.append(time.perf_counter() - start)
rng = np.random.default_rng(0)
start = time.perf_counter()
for _ in range({images}):
    height, width = rng.integers(200, 640, 2)
    scorer.score((rng.random((height, width, 3)) * 255).astype(np.uint8))
odd = time.perf_counter() - start
rss = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmRSS")))
print(json.dumps({{"repeated_ms": 1000 * statistics.median(times), "odd_s": odd, "rss_mb": rss / 1024}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kept", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--images", type=int, default=100)
    args = parser.parse_args()
    print(f"| sessions kept | median ms, one 1024x768 image repeated | s for {args.images} "
          "images of random sizes | resident MB at the end |")
    print("|---|---|---|---|")
    for kept in args.kept:
        code = CHILD.format(root=str(ROOT), kept=kept, images=args.images)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {kept} | {figures['repeated_ms']:.1f} | {figures['odd_s']:.1f} | {figures['rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
