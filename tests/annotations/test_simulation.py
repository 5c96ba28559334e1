"""Simulated crowds, the collection loop and the benchmark script (on the shared data when present)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from annotations.quality import rater_stats
from annotations.sampler import ActiveSampler
from annotations.scaling import scale
from annotations.simulate import COLUMNS, Crowd, simulate_session
from tests.helpers import ROOT

IDS = [f"im{k:02d}" for k in range(30)]
MOS = dict(zip(IDS, np.linspace(10, 90, len(IDS))))
STD = dict.fromkeys(IDS, 10.0)
GOLD = [(IDS[-1 - k], IDS[k]) for k in range(3)]


def test_attentive_raters_follow_the_mos_and_careless_ones_do_not():
    crowd = Crowd(MOS, STD, n_raters=10, careless_share=0.3, seed=0)
    assert len(crowd.careless) == 3
    attentive = next(r for r in crowd.rater_ids if r not in crowd.careless)
    careless = next(iter(crowd.careless))
    wins = [crowd.judge(attentive, "im25", "im05").choice == "left" for _ in range(200)]
    coin = [crowd.judge(careless, "im25", "im05").choice == "left" for _ in range(200)]
    assert np.mean(wins) > 0.95 and 0.35 < np.mean(coin) < 0.65
    assert crowd.judge(careless, "im25", "im05").response_ms < 1000


def test_session_yields_growing_tables_and_learns_the_order():
    crowd = Crowd(MOS, STD, n_raters=12, careless_share=0.25, seed=1)
    sampler = ActiveSampler(IDS, gold_pairs=GOLD, seed=1)
    marks = [(n, df) for n, df in simulate_session(crowd, sampler, 500, [100, 500], GOLD)]
    assert [n for n, _ in marks] == [100, 500]
    final = marks[-1][1]
    assert list(final.columns) == COLUMNS and len(final) == 500
    assert set(final["pair_kind"]) == {"active", "gold", "repeat"}
    stats = rater_stats(final, GOLD)
    careless = stats.loc[sorted(crowd.careless), "weight"]
    attentive = stats.drop(index=sorted(crowd.careless))["weight"]
    assert careless.max() < attentive.min()
    # the check budget goes to the careless raters, whose turns carry no information anyway
    is_check = final["pair_kind"] != "active"
    by_careless = is_check.groupby(final["rater_id"].isin(crowd.careless)).mean()
    assert by_careless[True] > 2 * by_careless[False]
    assert is_check.mean() < 0.25
    scores = scale(final, "thurstone", weights=stats["weight"], n_boot=0).set_index("image_id")["score"]
    assert spearmanr(scores.reindex(IDS), [MOS[i] for i in IDS])[0] > 0.9


def test_benchmark_script_runs_on_clive(shared_data, tmp_path):
    out = tmp_path / "eff"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "annotation_efficiency.py"), "--data", str(shared_data),
         "--seeds", "1", "--budget", "300", "--step", "150", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| random |" in result.stdout and "| active |" in result.stdout
    runs = pd.read_csv(out.with_suffix(".csv"))
    assert set(runs["arm"]) == {"random", "active", "active, MST batches", "active, 20% careless",
                                "oracle design (plain)", "oracle design (rank-weighted)"}
    assert "| oracle design (plain) |" in result.stdout and "| active, MST batches |" in result.stdout
    assert "builds an MST batch" in result.stdout
    assert "observer noise: mean mos_std 19.4 against a MOS spread (sd) of 19.6" in result.stdout
    assert sorted(runs["judgements"].unique()) == [150, 300]
    assert out.with_suffix(".html").stat().st_size > 1000
    if importlib.util.find_spec("kaleido") is not None:
        assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_package_stays_light():
    code = (
        "import sys, annotations.store, annotations.scaling, annotations.sampler, annotations.quality, "
        "annotations.hub, annotations.simulate, annotations.assisted, annotations.calibration\n"
        "heavy = [m for m in sys.modules if m == 'torch' or m.split('.')[0] in ('torch', 'cvrkd', 'space')]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


@pytest.mark.slow
def test_benchmark_with_a_model_prior_on_any_mos_file(tmp_path):
    """--mos needs only numbers (no images); --prior-scores matches by file name; the last line is the headline."""
    rng = np.random.default_rng(0)
    names = [f"img{k:03d}.png" for k in range(40)]
    mos = np.linspace(5, 95, len(names))
    pd.DataFrame({"image": [f"set/{n}" for n in names], "mos": mos, "mos_std": 12.0}).to_csv(tmp_path / "mos.csv",
                                                                                             index=False)
    scores = pd.DataFrame({"image": [f"elsewhere/{n}" for n in names], "score": mos + rng.normal(0, 5, len(names))})
    scores.iloc[:-1].to_csv(tmp_path / "prior.csv", index=False)  # one image without a score
    out = tmp_path / "eff"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "annotation_efficiency.py"), "--mos", str(tmp_path / "mos.csv"),
         "--prior-scores", str(tmp_path / "prior.csv"), "--seeds", "2", "--budget", "400", "--step", "200",
         "--check-at", "300", "--oracle", "--arms", "random", "active", "active + prior", "active + shuffled prior",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"judgements to SRCC 0\.90: random (\d+|inf), active (\d+|inf), assisted (\d+|inf), "
                        r"human-only (\d+|inf)", last), last
    runs = pd.read_csv(out.with_suffix(".csv"))
    assert set(runs["arm"]) == {"random", "active", "active + prior: model-assisted", "active + prior: human-only",
                                "active + shuffled prior: model-assisted", "active + shuffled prior: human-only"}
    assert sorted(runs["judgements"].unique()) == [200, 300, 400]
    assert "39 of 40 images matched" in result.stdout
    assert "Human-only Thurstone posterior (annotations.assisted" in result.stdout
    assert ("Shuffled prior (a useless model): model-assisted SRCC minus the active arm without a prior, "
            "the same posterior without a prior, median curves: 300: ") in result.stdout
    assisted = runs[runs.arm == "active + prior: model-assisted"].groupby("judgements")["srcc_weighted"].median()
    human = runs[runs.arm == "active + prior: human-only"].groupby("judgements")["srcc_weighted"].median()
    assert assisted.loc[200] > human.loc[200]  # a good prior helps most early


def test_benchmark_headline_counts_seeds_that_never_get_there_as_inf():
    from bench.annotation_efficiency import headline

    rows = []
    for seed, (random_curve, active_curve) in enumerate([((0.5, 0.95), (0.95, 0.97)), ((0.5, 0.8), (0.95, 0.97)),
                                                          ((0.5, 0.8), (0.85, 0.95))]):
        for n, r, a in zip((100, 200), random_curve, active_curve):
            rows += [{"arm": "random", "seed": seed, "judgements": n, "srcc_weighted": r},
                     {"arm": "active", "seed": seed, "judgements": n, "srcc_weighted": a}]
    # random: crossings 156, inf, inf -> median inf; active: 100, 100, 150 -> 100
    assert headline(pd.DataFrame(rows)) == ("judgements to SRCC 0.90: random inf, active 100, assisted n/a, "
                                            "human-only n/a")
