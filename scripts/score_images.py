"""Score the images listed in a CSV with the shipped student; write ``image,score``.

The output is the ``--prior-scores`` input of ``bench/annotation_efficiency.py``:
a model prior for simulated labelling. For clive_dev it is out-of-sample as
long as the model never trained on those images (the shipped synthetic-only
student did not).

    python scripts/score_images.py --csv ../shared/data/clive_dev/clive_dev.csv \\
        --out docs/figures/clive_dev_student_scores.csv
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cvrkd import InvalidImageError, Scorer  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, required=True, help="CSV with an `image` column (paths relative to it)")
    parser.add_argument("--out", type=Path, required=True, help="where to write image,score")
    parser.add_argument("--model", type=Path, default=None, help="model bundle (default: the shipped one)")
    args = parser.parse_args(argv)

    with open(args.csv, newline="") as handle:
        names = [row["image"] for row in csv.DictReader(handle)]
    scorer = Scorer(args.model)
    started = time.time()

    def report(index: int, result) -> None:
        if isinstance(result, InvalidImageError):
            raise result  # an unreadable image stops the run: a prior with holes is no prior
        if (index + 1) % 50 == 0:
            print(f"{index + 1}/{len(names)} scored, {time.time() - started:.0f}s", file=sys.stderr)

    results = scorer.score_many([args.csv.parent / name for name in names], on_result=report)
    rows = [(name, result.score) for name, result in zip(names, results)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "score"])
        writer.writerows((name, f"{score:.4f}") for name, score in rows)
    temporary.replace(args.out)
    print(f"wrote {len(rows)} scores by model {scorer.model_version} to {args.out} in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
