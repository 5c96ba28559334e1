"""Measure what tests/cvrkd/test_shipped_model.py checks against its floors (on images the shipped
model never trained on). The test imports the image set (``TYPES``, ``UNSEEN_KODAK``) from here.

    python scripts/shipped_model_checks.py [--data ../shared/data] [--model DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.stats import spearmanr
from skimage import data

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a file: the checkout's packages
    sys.path.insert(0, str(ROOT))

from cvrkd import paths  # noqa: E402
from cvrkd.evaluation import read_scores_csv  # noqa: E402
from cvrkd.imageio import load_image  # noqa: E402
from cvrkd.scorer import Scorer  # noqa: E402
from cvrkd.distortions import distort  # noqa: E402
from cvrkd.train.pseudolabels import pseudo_label  # noqa: E402

TYPES = ("gaussian_blur", "jpeg", "white_noise", "contrast_change")
UNSEEN_KODAK = ("kodim13.png", "kodim17.png")  # never trained on (train 01-12, validation 21-24)


def photo(width: int, height: int) -> np.ndarray:
    """A natural RGB photo (scikit-image's astronaut) at the requested size, as the tests make it."""
    return np.asarray(Image.fromarray(data.astronaut()).resize((width, height), Image.Resampling.BILINEAR))


def lowest_mos_scores(scorer: Scorer, data_root: Path, count: int = 40) -> list[float]:
    """Scores of the ``count`` lowest-MOS photos of clive_dev + clive_extra: where a clamped or
    saturated scale would read "0.0" for several distinct photos (in-sample for the shipped
    student, so only the scale is judged here, never the ranking)."""
    rows = [row for name in ("clive_dev", "clive_extra")
            for row in read_scores_csv(data_root / name / f"{name}.csv")]
    lowest = sorted(rows, key=lambda row: row[1])[:count]
    return [scorer.score(path).score for path, _ in lowest]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=paths.shared_data_dir())
    parser.add_argument("--model", type=Path, help="model bundle (default: the shipped one)")
    args = parser.parse_args()
    scorer = Scorer(args.model)
    pristine = photo(448, 384)
    images = [distort(pristine, name, level, seed=1) for name in TYPES for level in (1, 3, 5)]
    labels = [pseudo_label(pristine, image) for image in images]
    student = [scorer.score(image).score for image in images]
    teacher = [scorer.score(image, reference=pristine).score for image in images]
    print(f"student, synthetic SRCC: {spearmanr(student, labels).statistic:.3f}")
    print(f"teacher, synthetic SRCC: {spearmanr(teacher, labels).statistic:.3f}")
    original = scorer.score(pristine).score
    for damage in ("gaussian_blur", "jpeg"):
        damaged = scorer.score(distort(pristine, damage, 5, seed=1)).score
        print(f"photo {original:.1f} vs {damage} level 5 {damaged:.1f}: margin {original - damaged:.1f}")
    student, labels, pristine_scores, blurred_scores = [], [], [], []
    for name in UNSEEN_KODAK:
        kodak = load_image(args.data / "kodak24" / name).pixels
        pristine_scores.append(scorer.score(kodak).score)
        for damage in TYPES:
            for level in (1, 3, 5):
                image = distort(kodak, damage, level, seed=2)
                labels.append(pseudo_label(kodak, image))
                student.append(scorer.score(image).score)
                if (damage, level) == ("gaussian_blur", 5):
                    blurred_scores.append(student[-1])
    print(f"student, unseen Kodak distortions SRCC: {spearmanr(student, labels).statistic:.3f}")
    print(f"calibrated scale, unseen Kodak photos: pristine {', '.join(f'{s:.1f}' for s in pristine_scores)}; "
          f"heavily blurred {', '.join(f'{s:.1f}' for s in blurred_scores)}")
    low = lowest_mos_scores(scorer, args.data)
    print(f"40 lowest-MOS photos: {len(set(low))} distinct scores, min {min(low):.2f}, max {max(low):.2f}, "
          f"{sum(s in (0.0, 100.0) for s in low)} exactly 0 or 100")
    if not scorer.student.info.extra.get("training", {}).get("human_images"):
        rows = read_scores_csv(args.data / "clive_dev" / "clive_dev.csv")[:40]
        predicted = [scorer.score(path).score for path, _ in rows]
        print(f"student, first 40 clive_dev SRCC (never trained on them): "
              f"{spearmanr(predicted, [m for _, m in rows]).statistic:.3f}")
    else:
        print("clive_dev: the student trained on it, so no clive_dev figure here (in-sample); "
              "see the cross-validated figures in docs/results.md")

if __name__ == "__main__":
    main()
