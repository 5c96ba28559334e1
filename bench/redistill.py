"""Does re-distillation on human judgements help? And does the app stay responsive?

A simulated crowd (Thurstone observers from clive_dev's MOS and mos_std, 10%
careless raters) judges random pairs of 200 of the 300 clive_dev images. The
judgements go through the real path: an annotation store with the images in a
pool folder, then ``redistill_from_store`` (what ``python -m cvrkd redistill``
and the app's trainer run). Rounds on the first 500, 1,000 and 2,000
judgements each start from the shipped student. Reported for the shipped and
each re-distilled student: SRCC/PLCC (bootstrap 95% CIs) on the other 100
images (never rated), SRCC on the synthetic validation split (if the training
run's features are present; the trainer's mix choice and gate check it too),
SRCC on distortions of the Kodak photos the training set never used ("unseen
synthetic": nothing in the loop sees it), and the gate's decision. ``--replay synthetic``
(default) replays the original synthetic training set, as a machine with the
training data does; ``--replay gallery`` replays the built-in photos, as a Space
does. ``--mix`` fixes the WiSE-FT share (1 = plain fine-tuning) instead of letting
the trainer choose it; ``--sweep`` also evaluates other shares of the largest
round's fine-tuning step.

Latency: p95 of ``Scorer.score`` while idle vs while a re-distillation round
runs in a background process (the app's trainer mechanism), side by side.

    python bench/redistill.py --data ../shared/data --synthetic runs/v1/synthetic
"""
from __future__ import annotations

import argparse
import atexit
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotations.schema import image_id_for  # noqa: E402
from annotations.simulate import Crowd  # noqa: E402
from annotations.store import AnnotationStore  # noqa: E402
from cvrkd import paths  # noqa: E402
from cvrkd.checkpoint import load_checkpoint  # noqa: E402
from cvrkd.evaluation import correlations, read_scores_csv  # noqa: E402
from cvrkd.feature_cache import FeatureCache  # noqa: E402
from cvrkd.gallery import build_default_gallery  # noqa: E402
from cvrkd.train.redistill import (RedistillConfig, _gallery_grid, grid_features_for, image_scores,  # noqa: E402
                             mix_weights, replay_from_synthetic, synthetic_srcc)
from cvrkd.train.redistill_job import redistill_from_store, start_background_round  # noqa: E402
from cvrkd.train.registry import ModelRegistry  # noqa: E402
from cvrkd.scorer import Scorer  # noqa: E402


def make_store(work: Path, rated: list[tuple[Path, float, float]], count: int, seed: int) -> tuple[Path, dict]:
    """A store + pool folder holding ``count`` simulated judgements of the rated images."""
    store_dir, pool = work / "annotations", work / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    store = AnnotationStore(store_dir)
    ids = {}
    for path, _, _ in rated:
        image_id = image_id_for(path.read_bytes())
        ids[path] = image_id
        shutil.copyfile(path, pool / f"{image_id}{path.suffix.lower()}")
        store.register_image(image_id, "dataset", "LIVE In the Wild: research use", dataset="clive_dev")
    crowd = Crowd({ids[p]: m for p, m, _ in rated}, {ids[p]: s for p, _, s in rated},
                  n_raters=40, careless_share=0.1, seed=seed)
    rng = np.random.default_rng(seed)
    keys = list(ids.values())
    for _ in range(count):
        left, right = rng.choice(keys, 2, replace=False)
        rater = crowd.pick_rater()
        answer = crowd.judge(rater, left, right)
        store.append({"rater_id": rater, "left_image_id": left, "right_image_id": right,
                      "choice": answer.choice, "response_ms": answer.response_ms,
                      "app_version": "bench", "model_version": "bench"})
    store.close()
    return store_dir, ids


def latency(scorer: Scorer, images: list[Path], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        for path in images:
            started = time.perf_counter()
            scorer.score(path)
            times.append(time.perf_counter() - started)
    return times


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=paths.shared_data_dir())
    parser.add_argument("--synthetic", type=Path, default=Path("runs/v1/synthetic"))
    parser.add_argument("--synthetic-test", type=Path, default=Path("runs/synthetic-test"),
                        help="distortions of the Kodak photos the training set does not use (built here "
                        "if missing): a forgetting check that neither training, the mix choice nor the gate saw")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--replay-weight", type=float, default=RedistillConfig.replay_weight)
    parser.add_argument("--lr", type=float, default=RedistillConfig.lr)
    parser.add_argument("--epochs", type=int, default=RedistillConfig.epochs)
    parser.add_argument("--mix", type=float, help="fixed WiSE-FT share (default: as the trainer chooses)")
    parser.add_argument("--sweep", type=float, nargs="*", default=[0.25, 0.5, 0.75, 1.0],
                        help="also evaluate these WiSE-FT shares of the largest round's fine-tuning step")
    parser.add_argument("--replay", choices=["synthetic", "gallery"], default="synthetic",
                        help="replay (and gate on) the synthetic training set, as a machine with the "
                        "training data does, or the built-in photos, as a Space does")
    parser.add_argument("--cache", type=Path, help="keep feature caches here between runs")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--model", type=Path, help="seed model bundle (default: the shipped one); train one "
                        "that never saw the 100 evaluation images with `--write-held-out FILE` then "
                        "`python -m cvrkd train human --exclude FILE --out DIR`")
    parser.add_argument("--write-held-out", type=Path, help="write the 100 never-rated image names "
                        "(one per line) to this file and exit")
    args = parser.parse_args()

    pairs = read_scores_csv(args.data / "clive_dev" / "clive_dev.csv")
    import csv

    stds = {row["image"]: float(row["mos_std"]) for row in csv.DictReader(open(args.data / "clive_dev" / "clive_dev.csv"))}
    items = [(path, mos, stds[str(path.relative_to(args.data / "clive_dev"))]) for path, mos in pairs]
    order = np.random.default_rng(args.seed).permutation(len(items))
    rated = [items[i] for i in order[:200]]
    held_out = [items[i] for i in order[200:]]
    if args.write_held_out:
        args.write_held_out.write_text("".join(f"{path.name}\n" for path, _, _ in held_out))
        print(f"{len(held_out)} evaluation image names in {args.write_held_out}")
        return
    model_dir = args.model or paths.default_model_dir()
    shipped, shipped_info = load_checkpoint(model_dir / "student", expected_role="student")
    work = Path(tempfile.mkdtemp(prefix="redistill-bench-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # the crowd stores and registries are GBs over runs
    cache_dir = args.cache or work / "cache"
    cache = FeatureCache(cache_dir)
    gallery = build_default_gallery(work / "gallery")
    scorer = Scorer(model_dir, cache_dir=cache_dir, gallery=gallery)
    references = _gallery_grid(gallery, scorer.backbone, shipped_info.patches, cache)
    test_feats = grid_features_for(scorer.backbone, shipped_info.patches,
                                   {str(p): p for p, _, _ in held_out}, cache)
    test_mos = np.array([m for _, m, _ in held_out])
    synthetic = (replay_from_synthetic(args.synthetic, shipped_info.patches)
                 if args.synthetic.exists() else None)
    replay_dir = args.synthetic if args.replay == "synthetic" and synthetic is not None else None
    if args.replay == "synthetic" and replay_dir is None:
        raise SystemExit(f"{args.synthetic} not found: build it with `python -m cvrkd train data` "
                         "or pass --replay gallery")

    unseen = (unused_kodak_set(args.synthetic, args.synthetic_test, args.data, scorer.backbone, shipped_info.patches)
              if synthetic is not None else None)

    def evaluate(network) -> dict:
        scores = image_scores(network, test_feats, references)
        corr = correlations(np.array([scores[str(p)] for p, _, _ in held_out]), test_mos,
                            n_boot=args.bootstrap, seed=args.seed)
        syn = synthetic_srcc(network, synthetic, references) if synthetic is not None else None
        test = synthetic_srcc(network, unseen, references) if unseen is not None else None
        return {**corr.to_dict(), "synthetic_val_srcc": syn, "synthetic_test_srcc": test}

    rows = [{"model": f"shipped student {shipped_info.version}", "judgements": 0, **evaluate(shipped)}]
    print(rows[-1], flush=True)
    largest = max(args.sizes)
    mix_options = {"mix_choices": (args.mix,)} if args.mix is not None else {}
    sweep: list[dict] = []
    store_dir, _ = make_store(work / "crowd", rated, largest, args.seed)
    all_judgements = AnnotationStore(store_dir).judgements()
    for size in args.sizes:
        round_dir = work / f"round-{size}"
        round_store = round_dir / "annotations"
        _copy_prefix(store_dir, round_store, all_judgements.head(size))
        result = redistill_from_store(round_store, round_dir / "registry", images_dir=work / "crowd" / "pool",
                                      base_dir=model_dir / "student", model_dir=model_dir,
                                      gallery_dir=gallery.root, cache_dir=cache_dir, synthetic_dir=replay_dir,
                                      config=RedistillConfig(seed=args.seed, replay_weight=args.replay_weight,
                                                             lr=args.lr, epochs=args.epochs, **mix_options),
                                      log=lambda m: None)
        candidate, _ = load_checkpoint(ModelRegistry(round_dir / "registry").path(result.candidate_version))
        rows.append({"model": f"re-distilled on {size}", "judgements": size, **evaluate(candidate),
                     "mix": result.record["mix"], "replay": result.record["replay"],
                     "gate_check_srcc": [result.decision.base_synthetic_srcc, result.decision.candidate_synthetic_srcc],
                     "gate": "promoted" if result.decision.promote else "rejected",
                     "gate_reason": result.decision.reason})
        print(rows[-1], flush=True)
        if size == largest and args.sweep:
            sweep = mix_sweep(shipped, candidate, result.record["mix"], args.sweep, evaluate)

    settings = {"replay": args.replay, "mix": args.mix, "replay_weight": args.replay_weight,
                "lr": args.lr, "epochs": args.epochs, "seed": args.seed}
    if args.skip_latency:
        text = json.dumps({"settings": settings, "rounds": rows, "mix_sweep": sweep}, indent=2, default=str)
        print(text)
        if args.json:
            args.json.write_text(text)
        return
    # latency: idle vs during a background round (same mechanism as the app's trainer)
    probe = [p for p, _, _ in held_out[:10]]
    latency(scorer, probe[:2], 1)
    idle = latency(scorer, probe, 3)
    process = start_background_round(round_store, work / "latency-registry",
                                     images_dir=work / "crowd" / "pool", model_dir=model_dir,
                                     cache_dir=cache_dir, gallery_dir=gallery.root,
                                     extra_args=["--synthetic", str(replay_dir)] if replay_dir else None)
    busy: list[float] = []
    while process.poll() is None and len(busy) < 300:
        busy.extend(latency(scorer, probe, 1))
    process.wait()
    figures = {"settings": settings, "rounds": rows, "mix_sweep": sweep, "latency": {"idle_p95_s": p95(idle), "training_p95_s": p95(busy),
                                           "ratio": p95(busy) / p95(idle), "idle_n": len(idle),
                                           "training_n": len(busy),
                                           "idle_median_s": statistics.median(idle),
                                           "training_median_s": statistics.median(busy)}}
    print(markdown(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


def unused_kodak_set(synthetic_dir: Path, out: Path, data: Path, backbone, patches):
    """Synthetic distortions of the Kodak photos that ``synthetic_dir`` does not use, as one check split."""
    import torch

    from cvrkd.train.synthetic import SyntheticConfig, build

    if not out.exists():
        used = {Path(s).name for s in json.loads((synthetic_dir / "config.json").read_text())["sources"]}
        unused = [str(p) for p in sorted((data / "kodak24").glob("*.png")) if p.name not in used]
        print(f"building the unseen synthetic split from {len(unused)} Kodak photos", flush=True)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # labelling is much faster single-threaded on a busy machine
        try:
            build(SyntheticConfig(sources=unused, val_sources=unused, extra_positions=0, patches=patches),
                  out, backbone)
        finally:
            torch.set_num_threads(threads)
    return replay_from_synthetic(out, patches)


def mix_sweep(base, candidate, used: float, shares: list[float], evaluate) -> list[dict]:
    """What other WiSE-FT shares would give on the same fine-tuning run.

    The candidate is base + used x step, so base + share x step is
    ``mix_weights(base, candidate, share / used)``.
    """
    out = []
    for share in shares:
        figures = evaluate(mix_weights(base, candidate, share / used).eval())
        out.append({"mix": share, "srcc": figures["srcc"], "srcc_ci": figures["srcc_ci"],
                    "synthetic_val_srcc": figures["synthetic_val_srcc"],
                    "synthetic_test_srcc": figures["synthetic_test_srcc"]})
        print(out[-1], flush=True)
    return out


def _copy_prefix(source: Path, target: Path, judgements: pd.DataFrame) -> None:
    """A store holding only the first N judgements (images registered as in the source)."""
    target_store = AnnotationStore(target)
    for row in AnnotationStore(source).images().itertuples():
        target_store.register_image(row.image_id, row.source, row.licence, dataset=row.dataset)
    for record in judgements.to_dict("records"):
        target_store.append({k: v for k, v in record.items()
                             if k in ("rater_id", "left_image_id", "right_image_id", "choice",
                                      "response_ms", "app_version", "model_version")})
    target_store.close()


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def markdown(figures: dict) -> str:
    lines = [f"settings: {figures['settings']}", "",
             "| model | judgements | SRCC [95% CI] (100 unrated images) | PLCC [95% CI] | "
             "synthetic val SRCC | unseen synthetic SRCC | mix | gate |", "|---|---|---|---|---|---|---|---|"]
    for r in figures["rounds"]:
        syn = _fmt(r["synthetic_val_srcc"])
        lines.append(f"| {r['model']} | {r['judgements']} | {r['srcc']:.3f} [{r['srcc_ci'][0]:.3f}, "
                     f"{r['srcc_ci'][1]:.3f}] | {r['plcc']:.3f} [{r['plcc_ci'][0]:.3f}, {r['plcc_ci'][1]:.3f}] | "
                     f"{syn} | {_fmt(r['synthetic_test_srcc'])} | {r.get('mix', '—')} | {r.get('gate', '—')} |")
    if figures["mix_sweep"]:
        lines += ["", f"WiSE-FT share of the {max(r['judgements'] for r in figures['rounds'])}-judgement "
                  "round's fine-tuning step:", "",
                  "| mix | SRCC [95% CI] (100 unrated) | synthetic val SRCC | unseen synthetic SRCC |",
                  "|---|---|---|---|"]
        for r in figures["mix_sweep"]:
            syn = _fmt(r["synthetic_val_srcc"])
            lines.append(f"| {r['mix']:g} | {r['srcc']:.3f} [{r['srcc_ci'][0]:.3f}, {r['srcc_ci'][1]:.3f}] | "
                         f"{syn} | {_fmt(r['synthetic_test_srcc'])} |")
    lat = figures["latency"]
    lines += ["", "| score latency | p95 (s) | median (s) | calls |", "|---|---|---|---|",
              f"| idle | {lat['idle_p95_s']:.3f} | {lat['idle_median_s']:.3f} | {lat['idle_n']} |",
              f"| during re-distillation | {lat['training_p95_s']:.3f} | {lat['training_median_s']:.3f} | "
              f"{lat['training_n']} |", "", f"ratio of p95s: {lat['ratio']:.2f}x"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
