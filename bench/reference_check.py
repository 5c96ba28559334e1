"""Measures ``cvrkd.reference_check``: how similar an image is to its own original, whatever the
distortion, against how similar different photos of the same size are; this sets ``MIN_SIMILARITY``.

* Same photo: every Kodak photo under every distortion type at every level
  (``cvrkd.distortions``), plus the TID2013 calibration pairs.
* Different photos: every pair of Kodak photos of the same size, and every pair
  of the CLIVE development photos (all 500x500).

::

    python bench/reference_check.py --data ../shared/data
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from cvrkd.reference_check import MIN_SIMILARITY, details  # noqa: E402
from cvrkd.distortions import DISTORTIONS, LEVELS, distort  # noqa: E402


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def same_photo(data: Path) -> list[tuple[str, float]]:
    """(what, similarity) of each distorted version against its original."""
    out = []
    for k, path in enumerate(sorted((data / "kodak24").glob("*.png"))):
        original = _rgb(path)
        reference = details(original)
        for name in DISTORTIONS:
            for level in LEVELS:
                out.append((f"{name} {level}", _correlation(details(distort(original, name, level, seed=k)), reference)))
        print(f"  {path.name}: {len(DISTORTIONS) * len(LEVELS)} versions", file=sys.stderr, flush=True)
    for path in sorted((data / "tid2013_calibration" / "ref_dir").glob("*")):
        distorted = data / "tid2013_calibration" / "dist_dir" / path.name
        out.append((f"TID2013 {path.stem}", _correlation(details(_rgb(distorted)), details(_rgb(path)))))
    return out


def different_photos(data: Path) -> list[float]:
    """Similarity of every pair of different photos of the same size."""
    out = []
    for folder, pattern in (("kodak24", "*.png"), ("clive_dev/images", "*")):
        photos = [_rgb(path) for path in sorted((data / folder).glob(pattern))]
        features = [(photo.shape, details(photo)) for photo in photos]
        out += [_correlation(a, b) for (shape_a, a), (shape_b, b) in itertools.combinations(features, 2)
                if shape_a == shape_b]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    same = same_photo(args.data)
    values = np.array([value for _, value in same])
    different = np.array(different_photos(args.data))
    worst = sorted(same, key=lambda item: item[1])[:3]
    print(f"same photo, distorted ({len(values)} pairs): min {values.min():.3f}, 1st percentile "
          f"{np.percentile(values, 1):.3f}, median {np.median(values):.3f}; lowest: "
          + ", ".join(f"{what} {value:.3f}" for what, value in worst))
    print(f"different photos of the same size ({len(different)} pairs): max {different.max():.3f}, "
          f"99.9th percentile {np.percentile(different, 99.9):.3f}, median {np.median(different):.3f}")
    print(f"threshold {MIN_SIMILARITY}: {(values < MIN_SIMILARITY).sum()} distorted versions warned about, "
          f"{(different >= MIN_SIMILARITY).sum()} different photos missed")


if __name__ == "__main__":
    main()
