"""How good must the model be for model-assisted labelling to halve the judgements a ranking needs?

``bench/annotation_efficiency.py`` measures the saving with real out-of-sample model scores as the
prior. This bench asks the converse: it replaces the model by *synthetic* priors, the true MOS of
clive_dev plus Gaussian noise scaled so that their SRCC with the MOS is each ``--srcc`` level, and
runs the "random" and "active + prior" arms of that bench on each (same simulated raters, seeds and
budget). The priors are oracles with noise, not models: read the table as the accuracy the model
would need, never as a measurement of the model::

    python bench/prior_quality.py --srcc 0.65 0.75 0.85 0.95 --seeds 5 --report docs/performance_annotations.md
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import annotation_efficiency  # noqa: E402
from bench.talk import publish  # noqa: E402

LAST_LINE = re.compile(r"judgements to SRCC 0\.90: random (\S+), active (\S+), assisted (\S+), human-only (\S+)")


def noisy_prior(mos: np.ndarray, target: float, seed: int = 0) -> tuple[np.ndarray, float]:
    """MOS + Gaussian noise whose SRCC with the MOS is ``target`` (to about 0.005); returns the scores and
    the SRCC they reach. The noise draw is fixed, its scale found by bisection."""
    noise = np.random.default_rng(seed).standard_normal(len(mos))
    low, high = 0.0, 100.0 * mos.std()
    for _ in range(60):
        scale = (low + high) / 2
        rho = spearmanr(mos + scale * noise, mos)[0]
        low, high = (scale, high) if rho > target else (low, scale)
    scores = mos + (low + high) / 2 * noise
    return scores, float(spearmanr(scores, mos)[0])


def run_level(mos_csv: Path, scores: pd.DataFrame, prior: np.ndarray, args: argparse.Namespace,
              folder: Path) -> dict[str, str]:
    csv = folder / "prior.csv"
    pd.DataFrame({"image": scores["image"], "score": prior}).to_csv(csv, index=False)
    text = annotation_efficiency.main([
        "--mos", str(mos_csv), "--prior-scores", str(csv), "--seeds", str(args.seeds), "--oracle",
        "--arms", "random", "active + prior", "--out", str(folder / "curves")])
    found = LAST_LINE.search(text.strip().splitlines()[-1])
    if found is None:
        raise RuntimeError(f"unexpected last line: {text.strip().splitlines()[-1]!r}")
    return dict(zip(("random", "active", "assisted", "human-only"), found.groups()))


def report(rows: list[dict], args: argparse.Namespace) -> str:
    levels = " ".join(f"{level:g}" for level in args.srcc)
    lines = ["## How good the prior must be for model-assisted labelling (synthetic priors)", "",
             "```bash", f"python bench/prior_quality.py --srcc {levels} --seeds {args.seeds} "
             f"--report {args.report or 'FILE'}", "```", "",
             "Priors made from the true MOS plus Gaussian noise, scaled to each SRCC: oracles with noise, not "
             "models. Judgements to SRCC 0.90 against the true MOS, medians of per-seed crossings over "
             f"{args.seeds} seeds; `inf` where a seed never gets there within the budget.", "",
             "| prior SRCC with the MOS | random | active + prior: model-assisted | ratio to random | "
             "active + prior: human-only |", "|---|---|---|---|---|"]
    for row in rows:
        ratio = (f"{float(row['assisted']) / float(row['random']):.2f}"
                 if row["assisted"] != "inf" and row["random"] != "inf" else "–")
        lines.append(f"| {row['srcc']:.3f} | {row['random']} | {row['assisted']} | {ratio} | {row['human-only']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("CVRKD_DATA", ROOT.parent / "shared" / "data"))
    parser.add_argument("--mos", type=Path, default=default_data / "clive_dev" / "clive_dev.csv",
                        help="CSV with image,mos,mos_std (default: clive_dev)")
    parser.add_argument("--srcc", type=float, nargs="+", default=[0.65, 0.75, 0.85, 0.95])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--report", type=Path, help="also put the table into this markdown file")
    args = parser.parse_args(argv)
    scores = pd.read_csv(args.mos)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for level in args.srcc:
            prior, reached = noisy_prior(scores["mos"].to_numpy(float), level)
            rows.append({"srcc": reached, **run_level(args.mos, scores, prior, args, Path(folder))})
    publish(report(rows, args), args.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
