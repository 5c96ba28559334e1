"""Record one row's out-of-fold scores from a CV run in the project's out-of-fold table, and say
how that run compares with the one the table came from.

Why: the table (``docs/figures/clive562_cv_scores_seed0.csv``) is what the labelling benches
read as a model prior, and its columns come from CV runs that may have trained on other CPUs.
Before a new column joins it, the columns both runs share show how far the two runs drifted
(the ridge probes are closed-form fits, the students iterated training), and the new column's
rank correlation with the table's other rows shows how alike the models rank the photos. The
table's other columns are written back as they were read (text, untouched).

    python scripts/record_cv_column.py runs/cv562/cv_scores_seed0.csv \\
        "fine-tuned student + readout 0.4, last 5 stages"
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "figures" / "clive562_cv_scores_seed0.csv"
KEYS = ["image", "fold", "mos"]


def record(run_csv: Path, column: str, table_csv: Path = TABLE) -> str:
    """Add (or replace) ``column`` of ``run_csv`` in ``table_csv``; returns the comparison report."""
    run = pd.read_csv(run_csv)
    table = pd.read_csv(table_csv, dtype=str)
    numeric = pd.read_csv(table_csv)
    if column not in run:
        raise SystemExit(f"{run_csv} has no column {column!r}; it has {list(run.columns)}")
    run = run.set_index("image").loc[table["image"]]
    if len(run) != len(table) or (run["fold"].to_numpy() != numeric["fold"].to_numpy()).any():
        raise SystemExit("the run's photos or folds differ from the table's: not the recorded folds")
    lines = [f"{column}: pooled SRCC with the MOS {spearmanr(run[column], numeric['mos']).statistic:.3f}"]
    shared = [c for c in run.columns if c in numeric and c not in KEYS and c != column]
    for name in shared:
        gap = (run[name].to_numpy() - numeric[name].to_numpy())
        lines.append(f"shared column {name}: max |table - run| {abs(gap).max():.2g} points")
    others = [c for c in numeric.columns if c not in KEYS and c != column]
    for name in others:
        rho = spearmanr(run[column], numeric[name]).statistic
        lines.append(f"rank correlation with the table's {name}: {rho:.3f}")
    table[column] = [f"{value:.5f}" for value in run[column]]
    table.to_csv(table_csv, index=False)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_csv", type=Path, help="cv_scores_seed0.csv of an `evaluate --cv` work folder")
    parser.add_argument("column", help="the row to record")
    parser.add_argument("--table", type=Path, default=TABLE)
    args = parser.parse_args()
    print(record(args.run_csv, args.column, args.table))


if __name__ == "__main__":
    main()
