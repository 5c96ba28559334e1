"""The learning curve: cross-validated SRCC against training photos per fold, frozen and fine-tuned.

Reads the cross-validation runs of ``evaluate --cv 5 --finetune`` at several ``--train-photos``
(same folds, same held-out photos; every row of a run learns from the same subset) and writes
the table and a plot (HTML, and PNG when kaleido can run Chromium).

    for n in 60 120; do .venv/bin/python -m cvrkd evaluate --cv 5 --finetune --train-photos $n \\
        --synthetic runs/synthetic --out runs/human-ft --synthetic-weights 0.03; done
    .venv/bin/python scripts/learning_curve.py --runs runs/human-ft/finetune/<settings> \
        --figure docs/figures/learning_curve
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROWS = {
    "fine-tuned student (backbone tail, stage 3)": ("fine-tuned student", "#d62728"),
    "frozen student (stages 1-2, previous shipped layout)": ("frozen student", "#1f77b4"),
    "ridge probe (frozen pooled features)": ("frozen ridge probe", "#7f7f7f"),
}


def read_runs(folder: Path) -> list[dict]:
    """One record per finished run: training photos per fold and each row's mean SRCC."""
    runs = []
    for path in sorted(folder.glob("train*/cv_results.json")):
        results = json.loads(path.read_text())
        photos = results["train_photos"] or round(results["n"] * (results["folds"] - 1) / results["folds"])
        runs.append({"photos": photos, **{name: results["models"][name]["mean"]["srcc"]
                                          for name in ROWS if name in results["models"]}})
    return sorted(runs, key=lambda run: run["photos"])


def table(runs: list[dict]) -> str:
    lines = ["| training photos per fold | " + " | ".join(label for label, _ in ROWS.values()) + " |",
             "|---|" + "---|" * len(ROWS)]
    for run in runs:
        cells = [f"{run[name]:.3f}" if name in run else "—" for name in ROWS]
        lines.append(f"| {run['photos']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(runs: list[dict], figure: Path) -> list[Path]:
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, (label, colour) in ROWS.items():
        points = [(run["photos"], run[name]) for run in runs if name in run]
        fig.add_trace(go.Scatter(x=[p for p, _ in points], y=[s for _, s in points], name=label,
                                 mode="lines+markers", line={"color": colour}))
    fig.update_layout(width=700, height=450, template="plotly_white",
                      xaxis_title="training photos per fold (clive_dev)",
                      yaxis_title="5-fold CV SRCC (mean of folds)")
    figure.parent.mkdir(parents=True, exist_ok=True)
    written = [figure.with_suffix(".html")]
    fig.write_html(written[0], include_plotlyjs="cdn")
    try:
        fig.write_image(figure.with_suffix(".png"), scale=1)
        written.append(figure.with_suffix(".png"))
    except Exception as error:  # kaleido missing or no Chromium: the HTML still stands
        print(f"PNG not written ({type(error).__name__}: {error})", file=sys.stderr)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True,
                        help="the settings' folder of the CV runs (runs/<out>/finetune/<settings>)")
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/learning_curve"))
    args = parser.parse_args()
    runs = read_runs(args.runs)
    if not runs:
        sys.exit(f"no finished fine-tuning CV runs under {args.runs}")
    print(table(runs))
    for path in plot(runs, args.figure):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
