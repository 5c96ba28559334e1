"""How many pairwise judgements does it take to rank CLIVE images as people do?

Simulated raters judge pairs of the 300 ``clive_dev`` images as Thurstone
observers built from each image's MOS and ``mos_std`` (``annotations.simulate``).
Three experiments, each over several seeds:

1. efficiency: random pairing vs the active sampler (information gain: one
   pair at a time, or in batches that form a minimum spanning tree), all
   with the same 10% gold and 10% repeat checks, all raters attentive;
2. careless raters: the active sampler with 20% of raters answering at
   random, scaled with and without reliability weights, against experiment 1;
3. oracle designs: pairs drawn at random from the A-optimal design computed
   with the true MOS (which no sampler knows), same checks, to see what the
   asymptotic design bound is worth at these budgets;
4. model-assisted labelling (with ``--prior-scores``): the active sampler
   with the model's scores as a prior ("active + prior"), and the same with
   the scores shuffled across images ("active + shuffled prior", a useless
   model), each scored twice: model-assisted and human-only
   (``annotations.assisted``).

After every ``--step`` judgements the judgements are scaled (Thurstone, with
the raters' reliability weights) and compared with the true MOS by Spearman
correlation. Writes an interactive plot (HTML), a PNG (if kaleido can run a
local Chromium), the curves as CSV, and prints the summary table quoted in
docs/performance_annotations.md. The last line is

    judgements to SRCC 0.90: random N, active N, assisted N, human-only N

(medians over seeds of where each seed first reaches 0.90, ``inf`` for a
seed that never does; ``assisted`` and ``human-only`` are the two estimates
of the "active + prior" arm, ``n/a`` without ``--prior-scores``).

    python bench/annotation_efficiency.py --data ../shared/data --seeds 9
    python bench/annotation_efficiency.py --mos ../shared/data/clive_dev/clive_dev.csv \
        --prior-scores docs/figures/clive_dev_student_scores.csv --oracle --seeds 5 \
        --arms random active "active + prior" "active + shuffled prior" --out docs/figures/model_assisted
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.linalg import cho_factor, cho_solve
from scipy.special import ndtr
from scipy.stats import gaussian_kde, spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotations.assisted import Estimates, estimate  # noqa: E402
from annotations.blas import single_threaded  # noqa: E402
from annotations.quality import rater_stats  # noqa: E402
from annotations.sampler import ActiveSampler  # noqa: E402
from annotations.scaling import scale  # noqa: E402
from annotations.simulate import Crowd, simulate_session  # noqa: E402

TARGET = 0.90
PRIOR_ARMS = ("active + prior", "active + shuffled prior")
ASSISTED, HUMAN = "model-assisted", "human-only"


def load_mos(csv: Path) -> pd.DataFrame:
    """Human scores to simulate raters from: image id, MOS, mos_std (the images need not exist)."""
    if not csv.is_file():
        raise SystemExit(f"{csv} not found: pass --mos, or --data / CVRKD_DATA with the shared data folder")
    table = pd.read_csv(csv)
    missing = {"image", "mos", "mos_std"} - set(table.columns)
    if missing:
        raise SystemExit(f"{csv} lacks the column(s) {', '.join(sorted(missing))} (needs image,mos,mos_std)")
    return table.rename(columns={"image": "image_id"})[["image_id", "mos", "mos_std"]]


def load_prior(csv: Path, scores: pd.DataFrame, column: str = "score") -> dict[str, float]:
    """Model scores (columns image and ``column``) by image id of ``scores``, matched by file name."""
    table = pd.read_csv(csv)
    if not {"image", column} <= set(table.columns):
        raise SystemExit(f"{csv} needs the columns image,{column}")
    by_name = dict(zip(table["image"].map(lambda x: Path(str(x)).name), table[column].astype(float)))
    prior = {i: by_name[Path(i).name] for i in scores["image_id"] if Path(i).name in by_name}
    if not prior:
        raise SystemExit(f"no image of {csv} matches an image of the MOS file by file name")
    return prior


def shuffled(prior: dict[str, float], seed: int) -> dict[str, float]:
    """The same scores given to other images at random: a model that knows nothing."""
    values = np.random.default_rng(10_000 + seed).permutation(list(prior.values()))
    return dict(zip(prior, values.tolist()))


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


def run_arm(
    scores: pd.DataFrame, strategy: str, careless: float, seed: int, args: argparse.Namespace,
    design: np.ndarray | None = None, prior: dict[str, float] | None = None,
) -> list[dict]:
    """One simulated collection; SRCC with and without reliability weights at every checkpoint.

    With a ``prior`` (model scores) the sampler uses it and the model-assisted
    estimate is scored too (``srcc_assisted``).
    """
    truth = scores.set_index("image_id")["mos"]
    gold = gold_pairs(scores)
    crowd = Crowd(truth, scores.set_index("image_id")["mos_std"], args.raters, careless, seed=seed)
    sampler = ActiveSampler(list(truth.index), gold_pairs=gold, seed=seed, strategy=strategy, design=design,
                            model_scores=prior)
    rows = []
    last: Estimates | None = None
    for count, df in simulate_session(crowd, sampler, args.budget, checkpoints(args), gold):
        weights = reliability_weights(df, gold)
        weighted = srcc(thurstone_scores(df, weights), truth)
        # annotations.assisted: the model-assisted estimate, and its human-only one (the same
        # Thurstone posterior without the prior) for every arm, to compare like with like
        last = estimate(df, prior, weights, image_ids=list(truth.index), warm=last or sampler.calibration)
        table = last.table.set_index("image_id")
        assisted = srcc(table["assisted_score"], truth) if prior is not None else np.nan
        row = {"judgements": count, "srcc_weighted": weighted, "srcc_assisted": assisted,
               "srcc_human": srcc(table["human_score"], truth),
               "srcc_unweighted": np.nan, "srcc_oracle": np.nan, **check_shares(df, crowd.careless)}
        if careless > 0:  # for comparison: no weights, and weights that know who is careless
            row["srcc_unweighted"] = srcc(thurstone_scores(df, None), truth)
            row["srcc_oracle"] = srcc(thurstone_scores(df, pd.Series(0.0, index=sorted(crowd.careless))), truth)
        rows.append(row)
    return rows


def checkpoints(args: argparse.Namespace) -> list[int]:
    """Every ``--step`` judgements, plus the ``--check-at`` counts within the budget."""
    marks = set(range(args.step, args.budget + 1, args.step)) | {n for n in args.check_at if 0 < n <= args.budget}
    return sorted(marks)


def split_estimates(runs: pd.DataFrame) -> pd.DataFrame:
    """Arms with a prior become two: "ARM: model-assisted" and "ARM: human-only" (SRCC in ``srcc_weighted``)."""
    has = runs["srcc_assisted"].notna()
    human = runs[has].assign(arm=runs["arm"][has] + f": {HUMAN}")
    assisted = runs[has].assign(arm=runs["arm"][has] + f": {ASSISTED}", srcc_weighted=runs["srcc_assisted"][has])
    return pd.concat([runs[~has], assisted, human], ignore_index=True)


def per_seed_crossings(runs: pd.DataFrame, arm: str) -> np.ndarray:
    """Judgements at which each seed first reaches the target (inf: never within the budget)."""
    return np.nan_to_num([crossing(g.set_index("judgements")["srcc_weighted"])
                          for _, g in runs[runs.arm == arm].groupby("seed")], nan=np.inf)


def headline(runs: pd.DataFrame) -> str:
    """The last line: median judgements to the target per arm (n/a: arm not run)."""
    arms = {"random": "random", "active": "active", "assisted": f"active + prior: {ASSISTED}",
            "human-only": f"active + prior: {HUMAN}"}
    parts = []
    for label, arm in arms.items():
        if arm not in set(runs["arm"]):
            parts.append(f"{label} n/a")
            continue
        median = float(np.median(per_seed_crossings(runs, arm)))
        parts.append(f"{label} {median:.0f}" if np.isfinite(median) else f"{label} inf")
    return f"judgements to SRCC {TARGET:.2f}: " + ", ".join(parts)


def shuffled_check(curves: pd.DataFrame, marks: list[int]) -> str:
    """Model-assisted SRCC with a shuffled prior minus the no-prior active arm (median curves).

    Against both estimates of the active arm: the tables' one (``scale``) and
    the same Thurstone posterior as the model-assisted one without the prior,
    which isolates what the prior does.
    """
    med = {arm: c.set_index("judgements") for arm, c in curves.groupby("arm")}
    arm = f"active + shuffled prior: {ASSISTED}"
    if arm not in med or "active" not in med:
        return ""
    lines = []
    for label, column in (("the tables' estimate (scale, Thurstone)", "median"),
                          ("the same posterior without a prior", "median_human")):
        gaps = [f"{n}: {med[arm].loc[n, 'median'] - med['active'].loc[n, column]:+.3f}"
                for n in marks if n in med[arm].index]
        lines.append(f"Shuffled prior (a useless model): model-assisted SRCC minus the active arm without a prior, "
                     f"{label}, median curves: " + ", ".join(gaps) + ".")
    return "\n".join(lines)


def posterior_line(raw: pd.DataFrame) -> str:
    """Judgements to the target for every arm with the human-only posterior of annotations.assisted.

    It is the model-assisted estimator without its prior, so the gap between
    an arm's model-assisted crossing and this one is what the prior adds.
    """
    runs = raw.assign(srcc_weighted=raw["srcc_human"])
    parts = []
    for arm in dict.fromkeys(runs["arm"]):
        median = float(np.median(per_seed_crossings(runs, arm)))
        parts.append(f"{arm} {_count(median) if np.isfinite(median) else 'inf'}")
    return ("Human-only Thurstone posterior (annotations.assisted, the model-assisted estimator without its prior), "
            "judgements to SRCC 0.90, medians of per-seed crossings: " + ", ".join(parts) + ".")


def pair_information(scores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs i < j and the Fisher information one judgement of each gives about MOS_i - MOS_j.

    Uses the true MOS (which no sampler knows): for a Thurstone observer it is
    phi(z)^2 / (Phi(z) Phi(-z)) / v, with v = std_i^2 + std_j^2 and
    z = (MOS_i - MOS_j) / sqrt(v).
    """
    mos, std = scores["mos"].to_numpy(), scores["mos_std"].to_numpy()
    i, j = np.triu_indices(len(mos), 1)
    v = std[i] ** 2 + std[j] ** 2
    z = (mos[i] - mos[j]) / np.sqrt(v)
    return i, j, np.exp(-z * z) / (2 * np.pi) / (ndtr(z) * ndtr(-z)) / v


def image_weights(scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """How much each image's score variance counts: equally ("plain"), or as rank errors do.

    "rank-weighted": by the squared density of MOS around the image, since a
    score error moves an image past more neighbours where images are dense.
    """
    mos = scores["mos"].to_numpy()
    density = gaussian_kde(mos)(mos)
    return {"plain": np.ones(len(mos)), "rank-weighted": density**2 / np.mean(density**2)}


def optimal_design(scores: pd.DataFrame, image_weight: np.ndarray, iterations: int = 100) -> tuple[np.ndarray, float]:
    """A-optimal share of judgements per pair i < j, and the variance it saves over uniform pairs.

    The design minimises the weighted total variance of the centred scores
    (multiplicative algorithm); the saving is asymptotic, i.e. for large budgets.
    """
    i, j, info = pair_information(scores)
    n = len(scores)
    centre = np.eye(n) - 1.0 / n
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
    return design, 1 - values[-1] / values[0]


def design_matrix(scores: pd.DataFrame, name: str) -> np.ndarray:
    """The optimal design as an n x n matrix of pair weights (upper triangle), for the oracle arm."""
    with single_threaded():
        design, _ = optimal_design(scores, image_weights(scores)[name])
    i, j, _ = pair_information(scores)
    matrix = np.zeros((len(scores), len(scores)))
    matrix[i, j] = design
    return matrix


def check_shares(judgements: pd.DataFrame, careless: set[str]) -> dict[str, float]:
    """Share of gold and repeat checks among all judgements, and among attentive and careless raters' ones."""
    is_check = judgements["pair_kind"].isin(["gold", "repeat"])
    is_careless = judgements["rater_id"].isin(careless)
    return {
        "check_share": is_check.mean(),
        "check_share_attentive": is_check[~is_careless].mean(),
        "check_share_careless": is_check[is_careless].mean() if is_careless.any() else np.nan,
    }


def design_bound(scores: pd.DataFrame) -> dict[str, float]:
    """Share of judgements that the best possible pairing could save over uniform random pairs (asymptotic)."""
    with single_threaded():
        return {name: optimal_design(scores, w)[1] for name, w in image_weights(scores).items()}


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
    batched = ActiveSampler(ids, seed=0, strategy="mst", gold_share=0, repeat_share=0)
    batched.update(judgements)
    started = time.perf_counter()
    batched.next_pair("r")
    timings["next_pair that builds an MST batch (strategy='mst')"] = time.perf_counter() - started
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
            median_human=("srcc_human", "median"),
        )
        .reset_index()
    )
    med = {arm: curves[curves.arm == arm].set_index("judgements")["median"] for arm in dict.fromkeys(runs["arm"])}
    # a seed that never reaches the target within the budget counts as infinitely many judgements
    per_seed = {arm: per_seed_crossings(runs, arm) for arm in med}
    lines = ["| arm | judgements to SRCC 0.90 (median curve) | median of per-seed crossings | per-seed crossings | "
             "SRCC at " + ", ".join(str(n) for n in _marks(curves)) + " |", "|---|---|---|---|---|"]
    for arm in med:
        at = ", ".join(f"{med[arm].loc[n]:.3f}" for n in _marks(curves))
        seeds = ", ".join(_count(c) for c in per_seed[arm])
        lines.append(f"| {arm} | {_count(crossing(med[arm]))} | {_count(np.median(per_seed[arm]))} | {seeds} | {at} |")
    text = "\n".join(lines)
    if "random" in med:
        text += f"\n\nJudgements saved against random pairing, to reach SRCC {TARGET:.2f}:\n"
        text += "\n| arm | on the median curves | on the medians of per-seed crossings |\n|---|---|---|"
        for arm in (a for a in med if a not in ("random", "active, 20% careless")):
            on_curves = 1 - crossing(med[arm]) / crossing(med["random"])
            on_seeds = 1 - np.median(per_seed[arm]) / np.median(per_seed["random"])
            text += f"\n| {arm} | {_percent(on_curves)} | {_percent(on_seeds)} |"
    final = runs[runs.judgements == runs.judgements.max()].groupby("arm", sort=False)
    text += "\n\nShare of gold and repeat checks at the end (median over seeds):\n"
    text += "\n| arm | all judgements | attentive raters | careless raters |\n|---|---|---|---|"
    for arm, g in final:
        shares = g[["check_share", "check_share_attentive", "check_share_careless"]].median()
        text += "\n| " + arm + " | " + " | ".join("—" if np.isnan(v) else f"{v:.1%}" for v in shares) + " |"
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


def _count(judgements: float) -> str:
    """A crossing for the tables; "—" where the target is not reached within the budget."""
    return f"{judgements:.0f}" if np.isfinite(judgements) else "—"


def _percent(saving: float) -> str:
    return f"{saving:.1%}" if np.isfinite(saving) else "—"


def _marks(curves: pd.DataFrame) -> list[int]:
    """A quarter, half and all of the budget, on the regular grid of checkpoints."""
    counts = sorted(curves["judgements"].unique())
    counts = [n for n in counts if n % counts[0] == 0]
    return [counts[len(counts) // 4 - 1], counts[len(counts) // 2 - 1], counts[-1]]


COLOURS = {"random": "#7f7f7f", "active": "#1f77b4", "active, MST batches": "#17becf",
           "active, 20% careless": "#d62728",
           "oracle design (plain)": "#9467bd", "oracle design (rank-weighted)": "#ff7f0e",
           f"active + prior: {ASSISTED}": "#2ca02c", f"active + prior: {HUMAN}": "#98df8a",
           f"active + shuffled prior: {ASSISTED}": "#8c564b", f"active + shuffled prior: {HUMAN}": "#c49c94"}
CARELESS = "active, 20% careless"


def _panels(arms: list[str]) -> list[tuple[str, list[str]]]:
    """Subplots: pairing rules; careless raters; the model prior (each only when its arms ran; the
    pairing panel is left out when the prior panel already shows all its arms)."""
    prior = [a for a in arms if a.split(":")[0] in PRIOR_ARMS]
    pairing = [a for a in arms if a != CARELESS and a not in prior]
    panels = [("Random vs active pairing", pairing)] if not prior or set(pairing) - {"random", "active"} else []
    if CARELESS in arms:
        panels.append(("20% careless raters", [CARELESS]))
    if prior:
        panels.append(("Model prior", [a for a in ("random", "active") if a in arms] + prior))
    return panels


def plot(curves: pd.DataFrame, out: Path) -> list[Path]:
    """Median SRCC with the min-max band over seeds; HTML always, PNG when kaleido works."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = _panels(list(dict.fromkeys(curves["arm"])))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[title for title, _ in panels], shared_yaxes=True)
    by_arm = {arm: c for arm, c in curves.groupby("arm", sort=False)}
    for col, (title, arms) in enumerate(panels, start=1):
        shown = set()
        for arm in arms:
            c, colour = by_arm[arm], COLOURS.get(arm, "#bcbd22")
            x = c["judgements"].tolist()
            fig.add_trace(go.Scatter(x=x + x[::-1], y=c["high"].tolist() + c["low"].tolist()[::-1], fill="toself",
                                     fillcolor=colour, opacity=0.2, line={"width": 0}, hoverinfo="skip",
                                     showlegend=False), row=1, col=col)
            name = f"{arm} (weighted)" if arm == CARELESS else arm
            legend = arm not in shown and not (col > 1 and arm in ("random", "active"))
            shown.add(arm)
            fig.add_trace(go.Scatter(x=x, y=c["median"], name=name, line={"color": colour}, showlegend=legend),
                          row=1, col=col)
            if title == "Model prior" and arm in ("random", "active"):  # the same posterior, no prior
                fig.add_trace(go.Scatter(x=x, y=c["median_human"], name=f"{arm}, human-only posterior",
                                         line={"color": colour, "dash": "dash"}), row=1, col=col)
            if arm == CARELESS:
                active = by_arm.get("active")
                if active is not None:  # the all-attentive reference
                    fig.add_trace(go.Scatter(x=active["judgements"], y=active["median"], name="active, all attentive",
                                             line={"color": COLOURS["active"], "dash": "dot"}), row=1, col=col)
                fig.add_trace(go.Scatter(x=x, y=c["median_unweighted"], name=f"{arm} (unweighted)",
                                         line={"color": colour, "dash": "dash"}), row=1, col=col)
                fig.add_trace(go.Scatter(x=x, y=c["median_oracle"], name=f"{arm} (oracle weights)",
                                         line={"color": "#2ca02c", "dash": "dot"}), row=1, col=col)
        fig.add_hline(y=TARGET, line={"color": "black", "width": 1, "dash": "dot"}, row=1, col=col)
        fig.update_xaxes(title_text="judgements", row=1, col=col)
    fig.update_yaxes(title_text="SRCC with MOS (median, min-max over seeds)", row=1, col=1)
    fig.update_layout(width=max(900, 550 * len(panels)), height=500, template="plotly_white",
                      legend={"orientation": "h", "y": -0.25})
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
    parser.add_argument("--mos", type=Path, default=None,
                        help="CSV with image,mos,mos_std to simulate raters from (default: clive_dev in --data)")
    parser.add_argument("--prior-scores", type=Path, default=None,
                        help="CSV with image,score: a model's scores, matched to --mos by file name; adds the arms "
                             + " and ".join(f'"{a}"' for a in PRIOR_ARMS))
    parser.add_argument("--prior-column", default="score",
                        help="the --prior-scores column to read (e.g. a row of `evaluate --cv`'s cv_scores_seed0.csv)")
    parser.add_argument("--check-at", type=int, nargs="*", default=[1000, 3000],
                        help="extra checkpoints (the shuffled-prior check is read there)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=4800, help="judgements per simulated collection")
    parser.add_argument("--step", type=int, default=300, help="judgements between two evaluations")
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--oracle", nargs="*", default=["plain", "rank-weighted"], choices=["plain", "rank-weighted"],
                        help="oracle arms: pairs drawn from the optimal design computed with the true MOS")
    parser.add_argument("--arms", nargs="*", default=None, help="run only these arms (by name; default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "annotation_efficiency",
                        help="output path without suffix (.html, .png, .csv are written)")
    args = parser.parse_args(argv)

    scores = load_mos(args.mos or args.data / "clive_dev" / "clive_dev.csv")
    prior = load_prior(args.prior_scores, scores, args.prior_column) if args.prior_scores else None
    arms = [("random", "random", 0.0, None), ("active", "information", 0.0, None),
            ("active, MST batches", "mst", 0.0, None), ("active, 20% careless", "information", 0.2, None)]
    arms += [(f"oracle design ({name})", "random", 0.0, design_matrix(scores, name)) for name in args.oracle]
    if prior is not None:
        arms += [(name, "information", 0.0, None) for name in PRIOR_ARMS]
    arms = [arm for arm in arms if args.arms is None or arm[0] in args.arms]
    rows = []
    started = time.time()
    for arm, strategy, careless, design in arms:
        for seed in range(args.seeds):
            model = None if arm not in PRIOR_ARMS else prior if arm == PRIOR_ARMS[0] else shuffled(prior, seed)
            for row in run_arm(scores, strategy, careless, seed, args, design, model):
                rows.append({"arm": arm, "seed": seed, **row})
            print(f"{arm}, seed {seed}: {time.time() - started:.0f}s", file=sys.stderr)
    runs = split_estimates(pd.DataFrame(rows))
    curves, text = summarise(runs)
    text += "\n\n" + posterior_line(pd.DataFrame(rows))
    if prior is not None:
        matched = scores[scores["image_id"].isin(prior)]
        rho = spearmanr([prior[i] for i in matched["image_id"]], matched["mos"])[0]
        text += (f"\n\nPrior: {args.prior_scores.name}, {len(prior)} of {len(scores)} images matched; "
                 f"SRCC of the model's scores with the MOS {rho:.3f}.")
        check = shuffled_check(curves, [n for n in args.check_at if n <= args.budget])
        text += f"\n\n{check}" if check else ""
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
    print(f"\nobserver noise: mean mos_std {scores['mos_std'].mean():.1f} against a MOS spread (sd) "
          f"of {scores['mos'].std():.1f}")
    print(f"\n{len(scores)} images, {args.seeds} seeds, {args.raters} raters; wrote "
          + ", ".join(p.name for p in [args.out.with_suffix(".csv"), *written])
          + f" in {time.time() - started:.0f}s")
    last = headline(runs)
    print(last)
    return text + "\n" + last


if __name__ == "__main__":
    main()
