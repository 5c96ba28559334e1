"""What the quality map costs and how many path steps it needs (docs/app.md, "Score").

Scores a photo and its heavily blurred copy with the shipped model, then draws each quality map with
several step counts: the map's total (which integrated gradients make equal to the score minus what
the gallery's photos score against themselves), its mean loss, and the median wall time.

    python bench/quality_map_cost.py --runs 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8])
    args = parser.parse_args()

    import numpy as np
    from PIL import Image
    from skimage import data

    from cvrkd import Scorer, distort, paths
    from cvrkd import quality_maps

    scorer = Scorer(paths.default_model_dir())
    pristine = np.asarray(Image.fromarray(data.astronaut()).resize((768, 512), Image.Resampling.BILINEAR))
    for label, pixels in (("photo", pristine), ("blurred", distort(pristine, "gaussian_blur", 5, seed=1))):
        score = scorer.score(pixels).score
        quality_maps.quality_map(scorer, pixels)  # warm the caches
        for steps in args.steps:
            quality_maps.STEPS = steps
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                qmap = quality_maps.quality_map(scorer, pixels)
                times.append(time.perf_counter() - started)
            print(f"{label:8s} score {score:5.1f}  steps {steps}: total {qmap.total:6.1f} points, "
                  f"mean loss {qmap.loss.mean():.3f} per 1%, {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()
