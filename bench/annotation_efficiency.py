"""How many pairwise judgements does it take to rank CLIVE images as people do?

Simulated raters judge pairs of the 300 ``clive_dev`` images as Thurstone
observers built from each image's MOS and ``mos_std`` (``annotations.simulate``).
Two experiments, each over several seeds:

1. efficiency: random pairing vs the active sampler (information gain), both
   with the same 10% gold and 10% repeat checks, all raters attentive;
2. careless raters: the active sampler with 20% of raters answering at
   random, scaled with and without reliability weights, against experiment 1.

After every ``--step`` judgements the judgements are scaled (Thurstone, with
the raters' reliability weights) and compared with the true MOS by Spearman
correlation. Writes an interactive plot (HTML), a PNG (if kaleido can run a
local Chromium), the curves as CSV, and prints the summary table quoted in
docs/annotations.md.

    python bench/annotation_efficiency.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotations.blas import single_threaded  # noqa: E402
from annotations.quality import rater_stats  # noqa: E402
from annotations.sampler import ActiveSampler  # noqa: E402
from annotations.scaling import scale  # noqa: E402
from annotations.simulate import Crowd, simulate_session  # noqa: E402

TARGET = 0.90


def load_clive(data: Path) -> pd.DataFrame:
    """The clive_dev scores: image id, MOS, mos_std."""
    csv = data / "clive_dev" / "clive_dev.csv"
    if not csv.is_file():
        raise SystemExit(f"{csv} not found: pass --data or set CVRKD_DATA to the shared data folder")
    return pd.read_csv(csv).rename(columns={"image": "image_id"})


def gold_pairs(scores: pd.DataFrame, k: int = 10) -> list[tuple[str, str]]:
    """Known answers: each of the k best images against each of the k worst."""
    ranked = scores.sort_values("mos")
    return [(good, bad) for good in ranked["image_id"].iloc[-k:] for bad in ranked["image_id"].iloc[:k]]


def thurstone_scores(judgements: pd.DataFrame, weights: pd.Series | None) -> pd.Series:
    return scale(judgements, "thurstone", weights=weights, n_boot=0).set_index("image_id")["score"]


def srcc(scores: pd.Series, truth: pd.Series) -> float:
    return float(spearmanr(scores.reindex(truth.index).fillna(0.0), truth)[0])


def reliability_weights(judgements: pd.DataFrame, gold: list[tuple[str, str]]) -> pd.Series:
    """Gold-based weights first, then refined against the scores they give (all answers count)."""
    first = thurstone_scores(judgements, rater_stats(judgements, gold)["weight"])
    return rater_stats(judgements, gold, scores=first)["weight"]


def run_arm(scores: pd.DataFrame, strategy: str, careless: float, seed: int, args: argparse.Namespace) -> list[dict]:
    """One simulated collection; SRCC with and without reliability weights at every checkpoint."""
    truth = scores.set_index("image_id")["mos"]
    gold = gold_pairs(scores)
    crowd = Crowd(truth, scores.set_index("image_id")["mos_std"], args.raters, careless, seed=seed)
    sampler = ActiveSampler(list(truth.index), gold_pairs=gold, seed=seed, strategy=strategy)
    checkpoints = range(args.step, args.budget + 1, args.step)
    rows = []
    for count, df in simulate_session(crowd, sampler, args.budget, checkpoints, gold):
        weighted = srcc(thurstone_scores(df, reliability_weights(df, gold)), truth)
        row = {"judgements": count, "srcc_weighted": weighted, "srcc_unweighted": np.nan, "srcc_oracle": np.nan}
        if careless > 0:  # for comparison: no weights, and weights that know who is careless
            row["srcc_unweighted"] = srcc(thurstone_scores(df, None), truth)
            row["srcc_oracle"] = srcc(thurstone_scores(df, pd.Series(0.0, index=sorted(crowd.careless))), truth)
        rows.append(row)
    return rows


def design_bound(scores: pd.DataFrame, iterations: int = 100) -> dict[str, float]:
    """Share of judgements that the best possible pairing could save over uniform random pairs.

    Computed with the true MOS (which no sampler knows): one judgement of
    (i, j) by a Thurstone observer gives Fisher information
    phi(z)^2 / (Phi(z) Phi(-z)) / v about MOS_i - MOS_j, with
    v = std_i^2 + std_j^2 and z = (MOS_i - MOS_j) / sqrt(v). The A-optimal
    design (least total score variance; "rank-weighted": each image's variance
    weighted by the squared density of MOS around it, as rank errors are) is
    found with the multiplicative algorithm. Asymptotic, i.e. for large budgets.
    """
    from scipy.linalg import cho_factor, cho_solve
    from scipy.special import ndtr
    from scipy.stats import gaussian_kde

    mos, std = scores["mos"].to_numpy(), scores["mos_std"].to_numpy()
    n = len(mos)
    i, j = np.triu_indices(n, 1)
    v = std[i] ** 2 + std[j] ** 2
    z = (mos[i] - mos[j]) / np.sqrt(v)
    info = np.exp(-z * z) / (2 * np.pi) / (ndtr(z) * ndtr(-z)) / v
    centre = np.eye(n) - 1.0 / n
    density = gaussian_kde(mos)(mos)
    savings = {}
    for name, image_weight in (("plain", np.ones(n)), ("rank-weighted", density**2 / np.mean(density**2))):
        weight = centre @ np.diag(image_weight) @ centre
        design = np.full(len(i), 1.0 / len(i))
        values = []
        for _ in range(iterations + 1):
            c = design * info
            fisher = -(np.bincount(i * n + j, c, n * n) + np.bincount(j * n + i, c, n * n)).reshape(n, n)
            fisher[np.diag_indices(n)] += np.bincount(i, c, n) + np.bincount(j, c, n)
            cov = cho_solve(cho_factor(fisher + 1.0 / n), np.eye(n)) - 1.0 / n  # inverse on centred scores
            values.append(np.trace(weight @ cov))
            m = cov @ weight @ cov
            gradient = info * (m[i, i] + m[j, j] - 2 * m[i, j])
            design *= np.sqrt(gradient / np.dot(design, gradient))
            design /= design.sum()
        savings[name] = 1 - values[-1] / values[0]
    return savings


def measure_cost(scores: pd.DataFrame, n: int = 3000) -> str:
    """Wall time of the calls the app makes, on one simulated collection of ``n`` random pairs."""
    ids = list(scores["image_id"])
    crowd = Crowd(scores.set_index("image_id")["mos"], scores.set_index("image_id")["mos_std"], seed=0)
    collect = ActiveSampler(ids, strategy="random", gold_share=0, repeat_share=0, seed=0)
    (_, judgements), = simulate_session(crowd, collect, n, [n], [])
    timings = {}
    for method in ("bradley_terry", "thurstone"):
        started = time.perf_counter()
        scale(judgements, method, n_boot=200)
        timings[f"scale({method}, n_boot=200)"] = time.perf_counter() - started
    sampler = ActiveSampler(ids, seed=0)
    started = time.perf_counter()
    sampler.update(judgements)
    timings["sampler refit"] = time.perf_counter() - started
    started = time.perf_counter()
    for k in range(100):
        sampler.next_pair(f"r{k}")
    timings["next_pair"] = (time.perf_counter() - started) / 100
    return f"Cost with {len(ids)} images and {n} judgements: " + ", ".join(
        f"{name} {seconds * 1000:.1f} ms" if seconds < 0.1 else f"{name} {seconds:.1f} s"
        for name, seconds in timings.items()
    ) + "."


def crossing(curve: pd.Series, target: float = TARGET) -> float:
    """Judgements at which a curve (indexed by judgements) first reaches ``target``, interpolated."""
    above = np.flatnonzero(curve.to_numpy() >= target)
    if len(above) == 0:
        return float("nan")
    k = above[0]
    if k == 0:
        return float(curve.index[0])
    x0, x1, y0, y1 = curve.index[k - 1], curve.index[k], curve.iloc[k - 1], curve.iloc[k]
    return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0))


def summarise(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Median and range per arm and checkpoint, and the markdown summary."""
    curves = (
        runs.groupby(["arm", "judgements"])
        .agg(
            median=("srcc_weighted", "median"),
            low=("srcc_weighted", "min"),
            high=("srcc_weighted", "max"),
            median_unweighted=("srcc_unweighted", "median"),
            median_oracle=("srcc_oracle", "median"),
        )
        .reset_index()
    )
    med = {arm: c.set_index("judgements")["median"] for arm, c in curves.groupby("arm")}
    per_seed = {
        arm: [crossing(g.set_index("judgements")["srcc_weighted"]) for _, g in runs[runs.arm == arm].groupby("seed")]
        for arm in med
    }
    lines = ["| arm | judgements to SRCC 0.90 (median curve) | per-seed crossings | SRCC at " + ", ".join(
        str(n) for n in _marks(curves)) + " |", "|---|---|---|---|"]
    for arm in ("random", "active", "active, 20% careless"):
        if arm not in med:
            continue
        at = ", ".join(f"{med[arm].loc[n]:.3f}" for n in _marks(curves))
        seeds = ", ".join("—" if np.isnan(c) else f"{c:.0f}" for c in per_seed[arm])
        lines.append(f"| {arm} | {crossing(med[arm]):.0f} | {seeds} | {at} |")
    text = "\n".join(lines)
    if {"random", "active"} <= med.keys():
        saving = 1 - crossing(med["active"]) / crossing(med["random"])
        if np.isnan(saving):
            text += f"\n\nThe median curves do not both reach SRCC {TARGET:.2f} within the budget."
        else:
            text += f"\n\nActive sampling reaches SRCC {TARGET:.2f} with {saving:.0%} fewer judgements than random pairing."
    if {"active", "active, 20% careless"} <= med.keys():
        spam = curves[curves.arm == "active, 20% careless"].set_index("judgements")
        late = spam.index >= spam.index.max() / 2
        text += "\n\nWith 20% careless raters, SRCC minus the all-attentive active curve (median over seeds):\n"
        text += "\n| scaled with | at " + f"{spam.index[-1]} judgements | worst over the second half | worst overall |"
        text += "\n|---|---|---|---|"
        for label, column in (("reliability weights", "median"), ("no weights", "median_unweighted"),
                              ("oracle weights (careless = 0)", "median_oracle")):
            gap = spam[column] - med["active"]
            text += f"\n| {label} | {gap.iloc[-1]:+.3f} | {gap[late].min():+.3f} | {gap.min():+.3f} |"
    return curves, text


def _marks(curves: pd.DataFrame) -> list[int]:
    counts = sorted(curves["judgements"].unique())
    return [counts[len(counts) // 4 - 1], counts[len(counts) // 2 - 1], counts[-1]]


def plot(curves: pd.DataFrame, out: Path) -> list[Path]:
    """Median SRCC with the min-max band over seeds; HTML always, PNG when kaleido works."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Random vs active pairing", "20% careless raters"), shared_yaxes=True
    )
    colours = {"random": "#7f7f7f", "active": "#1f77b4", "active, 20% careless": "#d62728"}
    panels = {"random": 1, "active": 1, "active, 20% careless": 2}
    for arm, c in curves.groupby("arm", sort=False):
        colour, col = colours[arm], panels[arm]
        x = c["judgements"].tolist()
        fig.add_trace(go.Scatter(x=x + x[::-1], y=c["high"].tolist() + c["low"].tolist()[::-1], fill="toself",
                                 fillcolor=colour, opacity=0.2, line={"width": 0}, hoverinfo="skip",
                                 showlegend=False), row=1, col=col)
        fig.add_trace(go.Scatter(x=x, y=c["median"], name=f"{arm} (weighted)" if col == 2 else arm,
                                 line={"color": colour}), row=1, col=col)
        if arm == "active":  # the all-attentive reference in the second panel
            fig.add_trace(go.Scatter(x=x, y=c["median"], name="active, all attentive",
                                     line={"color": colour, "dash": "dot"}), row=1, col=2)
        if col == 2:
            fig.add_trace(go.Scatter(x=x, y=c["median_unweighted"], name=f"{arm} (unweighted)",
                                     line={"color": colour, "dash": "dash"}), row=1, col=2)
            fig.add_trace(go.Scatter(x=x, y=c["median_oracle"], name=f"{arm} (oracle weights)",
                                     line={"color": "#2ca02c", "dash": "dot"}), row=1, col=2)
    for col in (1, 2):
        fig.add_hline(y=TARGET, line={"color": "black", "width": 1, "dash": "dot"}, row=1, col=col)
        fig.update_xaxes(title_text="judgements", row=1, col=col)
    fig.update_yaxes(title_text="SRCC with MOS (median, min-max over seeds)", row=1, col=1)
    fig.update_layout(width=1100, height=450, template="plotly_white", legend={"orientation": "h", "y": -0.25})
    written = [out.with_suffix(".html")]
    fig.write_html(written[0], include_plotlyjs="cdn")
    try:
        fig.write_image(out.with_suffix(".png"), scale=1)
        written.append(out.with_suffix(".png"))
    except Exception as error:  # kaleido missing or no Chromium: the HTML still stands
        print(f"PNG not written ({type(error).__name__}: {error})", file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = Path(os.environ.get("CVRKD_DATA", ROOT.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data, help="shared data folder (with clive_dev/)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=4800, help="judgements per simulated collection")
    parser.add_argument("--step", type=int, default=300, help="judgements between two evaluations")
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "annotation_efficiency",
                        help="output path without suffix (.html, .png, .csv are written)")
    args = parser.parse_args(argv)

    scores = load_clive(args.data)
    arms = [("random", "random", 0.0), ("active", "information", 0.0), ("active, 20% careless", "information", 0.2)]
    rows = []
    started = time.time()
    for arm, strategy, careless in arms:
        for seed in range(args.seeds):
            for row in run_arm(scores, strategy, careless, seed, args):
                rows.append({"arm": arm, "seed": seed, **row})
            print(f"{arm}, seed {seed}: {time.time() - started:.0f}s", file=sys.stderr)
    runs = pd.DataFrame(rows)
    curves, text = summarise(runs)
    with single_threaded():
        bound = design_bound(scores)
    text += (
        "\n\nDesign bound (knowing the true MOS, large budgets): the best possible pairing needs "
        + ", ".join(f"{saving:.0%} fewer judgements ({name})" for name, saving in bound.items())
        + " than uniform random pairs for the same score variance."
    )
    text += "\n\n" + measure_cost(scores)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.4f")
    written = plot(curves, args.out)
    print(text)
    print(f"\n{len(scores)} images, {args.seeds} seeds, {args.raters} raters; wrote "
          + ", ".join(p.name for p in [args.out.with_suffix(".csv"), *written])
          + f" in {time.time() - started:.0f}s")
    return text


if __name__ == "__main__":
    main()
