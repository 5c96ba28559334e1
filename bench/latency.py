"""Latency of one score: the paper's configuration vs ours on each backend, side by side.

(a) paper: ResNet-50 backbone (random weights: timing only), P=10 random 224²
    patches of the image AND of one reference, no caching, the paper's head
    (C=64, dim 256, Mixer depths 9 + 18), torch.
(b) ours, torch backend: Lite0 backbone, fixed grid of P patches (+ the whole-image view when
    the model's layout has one), the default head,
    averaged over every reference of the built-in gallery (>= 5), reference features cached.
(c) ours, each installed fast runtime (onnxruntime, openvino), and (d) the default `auto`.

All score the same 1024x768 image, interleaved, median of --runs runs, as wall time and as
process CPU time. Accuracy of the default path against torch: max abs score difference and
SRCC on --photos real photos (clive_dev, from $CVRKD_DATA or --data). Peak RSS is the
high-water mark (VmHWM) of a fresh process that loads the scorer on a backend and scores the
image (ru_maxrss would inherit the parent's peak across exec).

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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cvrkd  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from cvrkd import paths, runtime  # noqa: E402
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


def default_scorer(workdir: Path, backend: str = "auto") -> Scorer:
    """The shipped model when installed, else an untrained one of the same size (same timing)."""
    gallery = build_default_gallery(workdir / "gallery")
    try:
        return Scorer(cache_dir=workdir / "cache", gallery=gallery, backend=backend)
    except runtime.RuntimeUnavailable:
        raise
    except Exception:  # noqa: BLE001 - fall back to an identical-shaped network
        if not (workdir / "model").is_dir():
            for role in ("teacher", "student"):
                network, info = untrained(role)
                save_checkpoint(network, info, workdir / "model" / role)
        return Scorer(workdir / "model", allow_untrained=True, cache_dir=workdir / "cache",
                      gallery=gallery, backend=backend)


def peak_rss_mb(workdir: Path, image_path: Path, backend: str) -> float:
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from pathlib import Path\n"
        "sys.argv = ['x']\n"
        "from bench.latency import default_scorer\n"
        "scorer = default_scorer(Path(%r), %r)\n"
        "scorer.score(%r)\n"
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
    ) % (str(ROOT), str(workdir), backend, str(image_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0


def real_photos(data: Path, count: int) -> list[Path]:
    import pandas as pd

    table = pd.read_csv(data / "clive_dev" / "clive_dev.csv")
    return [data / "clive_dev" / name for name in table["image"].head(count)]


def accuracy(reference: Scorer, candidate: Scorer, photos: list[Path]) -> dict:
    from scipy.stats import spearmanr

    ours = np.array([candidate.score(p).score for p in photos])
    theirs = np.array([reference.score(p).score for p in photos])
    return {"photos": len(photos), "max_abs_diff": float(np.abs(ours - theirs).max()),
            "mean_abs_diff": float(np.abs(ours - theirs).mean()),
            "srcc_vs_torch": float(spearmanr(ours, theirs).statistic)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--photos", type=int, default=100, help="real photos for the accuracy check")
    parser.add_argument("--data", type=Path, default=paths.shared_data_dir(),
                        help="folder holding clive_dev/ (default: $CVRKD_DATA or ../shared/data)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.manual_seed(0)
    image = test_image()
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        scorers = {"torch": default_scorer(workdir, "torch")}
        for name in runtime.FAST_RUNTIMES:
            if runtime.installed(name):
                scorers[name] = default_scorer(workdir, name)
        auto = default_scorer(workdir, "auto")
        for scorer in (*scorers.values(), auto):
            scorer.gallery_features()  # build the caches once, outside the timing
        from skimage import data

        paper = PaperPipeline(np.asarray(Image.fromarray(data.coffee())))
        pipelines = {"paper": paper, **scorers}
        for pipeline in pipelines.values():
            pipeline.score(image)  # warm-up
        wall = {name: [] for name in pipelines}
        cpu = {name: [] for name in pipelines}
        for _ in range(args.runs):
            for name, pipeline in pipelines.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                pipeline.score(image)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        photos_dir = args.data / "clive_dev"
        check = (accuracy(scorers["torch"], auto, real_photos(args.data, args.photos))
                 if photos_dir.is_dir() else None)
        image_path = workdir / "bench.png"
        Image.fromarray(image).save(image_path)
        rss = {name: peak_rss_mb(workdir, image_path, name) for name in scorers}
    median = {name: statistics.median(values) for name, values in wall.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    ours = scorers["torch"]
    references = int(ours.gallery_features().shape[0])
    figures = {
        "median_wall_s": median, "median_cpu_s": median_cpu,
        "speedup_vs_paper": {n: median["paper"] / median[n] for n in scorers},
        "cpu_ratio_vs_paper": {n: median_cpu["paper"] / median_cpu[n] for n in scorers},
        "auto_backend": auto.backend, "accuracy_auto_vs_torch": check, "peak_rss_mb": rss,
        "our_references": references, "our_patches": ours.patches.num_patches, "runs": args.runs,
        "threads": torch.get_num_threads(), "trained_model": ours.student.info.trained,
    }
    print("| configuration | median wall (s) | median CPU (s) | wall ratio | CPU ratio | peak RSS (MB) |")
    print("|---|---|---|---|---|---|")
    print(f"| (a) paper: ResNet-50, P=10, 1 reference, no cache, torch | {median['paper']:.3f} | "
          f"{median_cpu['paper']:.3f} | 1.0x | 1.0x | |")
    for name in scorers:
        views = f"P={ours.patches.num_patches}" + (" + whole image" if ours.patches.whole_view else "")
        if ours.patches.whole_view and not ours.patches.num_patches:
            views = "whole image only"
        label = f"ours: Lite0, {views}, {references} cached references, {name}"
        if name == auto.backend:
            label += " (= auto, the default)"
        print(f"| {label} | {median[name]:.3f} | {median_cpu[name]:.3f} | "
              f"{median['paper'] / median[name]:.1f}x faster | {median_cpu['paper'] / median_cpu[name]:.1f}x less "
              f"| {rss[name]:.0f} |")
    if check:
        print(f"\nauto ({auto.backend}) vs torch on {check['photos']} clive_dev photos: max abs diff "
              f"{check['max_abs_diff']:.2e} points, mean {check['mean_abs_diff']:.2e}, "
              f"SRCC {check['srcc_vs_torch']:.6f}")
    else:
        print(f"\n(no accuracy check: {photos_dir} not found; pass --data)")
    print(f"torch threads: {torch.get_num_threads()}; trained model: {ours.student.info.trained}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
