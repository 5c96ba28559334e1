"""Latency of one score: the paper's configuration vs our default, side by side.

(a) paper: ResNet-50 backbone (random weights: timing only), P=10 random 224²
    patches of the image AND of one reference, no caching, the paper's head
    (C=64, dim 256, Mixer depths 9 + 18).
(b) ours: Lite0 backbone, fixed grid of P patches, the default head, averaged
    over every reference of the built-in gallery (>= 5), reference features cached.

Both score the same 1024x768 image, interleaved, median of --runs runs, as wall
time and as process CPU time (the CPU figure is steadier when other work shares
the cores). Peak RSS
is the high-water mark (VmHWM) of a fresh process that loads the scorer and
scores the image (ru_maxrss would inherit the parent's peak across exec).

    python bench/latency.py --runs 7
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cvrkd.backbone import FrozenBackbone  # noqa: E402
from cvrkd.checkpoint import save_checkpoint, untrained  # noqa: E402
from cvrkd.features import pooled_features  # noqa: E402
from cvrkd.gallery import build_default_gallery  # noqa: E402
from cvrkd.model import CVRKDNet, ModelConfig  # noqa: E402
from cvrkd.patches import PatchConfig, crop, random_positions  # noqa: E402
from cvrkd.scorer import Scorer  # noqa: E402


def test_image() -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((1024, 768), Image.Resampling.BICUBIC))


class PaperPipeline:
    """The published recipe: every call crops and embeds both images from scratch."""

    def __init__(self, reference: np.ndarray) -> None:
        self.backbone = FrozenBackbone("resnet50", pretrained=False)
        config = ModelConfig(stage_channels=self.backbone.channels, num_patches=10,
                             projected_channels=64, dim=256, lq_depth=9, diff_depth=18,
                             distill_layers=18)
        self.head = CVRKDNet(config).eval()
        self.reference = reference
        self.patches = PatchConfig(10, 224)
        self.rng = np.random.default_rng(0)

    def score(self, image: np.ndarray) -> float:
        lq = crop(image, random_positions(*image.shape[:2], self.patches, self.rng), 224)
        ref = crop(self.reference, random_positions(*self.reference.shape[:2], self.patches, self.rng), 224)
        with torch.inference_mode():
            features = pooled_features(self.backbone, torch.cat([lq, ref]), batch_size=20)
            return float(self.head(features[None, :10], features[None, 10:]).score[0])


def default_scorer(workdir: Path) -> Scorer:
    """The shipped model when installed, else an untrained one of the same size (same timing)."""
    try:
        return Scorer(cache_dir=workdir / "cache", gallery=build_default_gallery(workdir / "gallery"))
    except Exception:  # noqa: BLE001 - fall back to an identical-shaped network
        for role in ("teacher", "student"):
            network, info = untrained(role)
            save_checkpoint(network, info, workdir / "model" / role)
        return Scorer(workdir / "model", allow_untrained=True, cache_dir=workdir / "cache",
                      gallery=build_default_gallery(workdir / "gallery"))


def peak_rss_mb(workdir: Path, image_path: Path) -> float:
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from pathlib import Path\n"
        "sys.argv = ['x']\n"
        "from bench.latency import default_scorer\n"
        "scorer = default_scorer(Path(%r))\n"
        "scorer.score(%r)\n"
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
    ) % (str(ROOT), str(workdir), str(image_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.manual_seed(0)
    image = test_image()
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        ours = default_scorer(workdir)
        references = ours.gallery_features()  # build the cache once, outside the timing
        from skimage import data

        paper = PaperPipeline(np.asarray(Image.fromarray(data.coffee())))
        paper.score(image)
        ours.score(image)  # warm-up both
        paper_times, our_times, paper_cpu, our_cpu = [], [], [], []
        for _ in range(args.runs):
            for pipeline, wall, cpu in ((paper, paper_times, paper_cpu), (ours, our_times, our_cpu)):
                start, start_cpu = time.perf_counter(), time.process_time()
                pipeline.score(image)
                wall.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
        image_path = workdir / "bench.png"
        Image.fromarray(image).save(image_path)
        rss = peak_rss_mb(workdir, image_path)
    a, b = statistics.median(paper_times), statistics.median(our_times)
    a_cpu, b_cpu = statistics.median(paper_cpu), statistics.median(our_cpu)
    figures = {
        "paper_median_s": a, "ours_median_s": b, "speedup": a / b,
        "paper_median_cpu_s": a_cpu, "ours_median_cpu_s": b_cpu, "speedup_cpu": a_cpu / b_cpu,
        "our_references": int(references.shape[0]), "our_patches": ours.patches.num_patches,
        "peak_rss_mb": rss, "runs": args.runs, "threads": torch.get_num_threads(),
        "trained_model": ours.student.info.trained,
    }
    print("| configuration | median wall (s) | median CPU (s) | references | wall ratio | CPU ratio |")
    print("|---|---|---|---|---|---|")
    print(f"| (a) paper: ResNet-50, P=10, 1 reference, no cache | {a:.3f} | {a_cpu:.3f} | 1 | 1.0x | 1.0x |")
    print(f"| (b) ours: Lite0, P={ours.patches.num_patches}, cached gallery | {b:.3f} | {b_cpu:.3f} | "
          f"{references.shape[0]} | {a / b:.1f}x faster | {a_cpu / b_cpu:.1f}x less |")
    print(f"\npeak RSS of a scoring process: {rss:.0f} MB; torch threads: {torch.get_num_threads()}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
