"""Does the crowd loop teach the model about photos it never saw? And does the app stay responsive?

The case the product exists for: people rate photos the model was not trained on. The 562
labelled photos are split three ways by image (per split, seeded): a *seed* set, a *crowd*
set and an *evaluation* set (262 / 150 / 150 by default).

* The seed model is the shipped recipe trained on the seed set only (every phase of
  ``cvrkd.train.pipeline``; phase 1 never sees a human-rated photo, so it is shared).
* A simulated crowd (Thurstone observers from MOS and ``mos_std``, 40 raters, 10% careless)
  judges random pairs of crowd photos, through the real path: an annotation store with the
  images in a pool folder (plus the strongest distortion of some crowd photos, registered as
  the pool registers them: the gate's known-order check), then ``redistill_from_store``
  (what ``python -m cvrkd redistill`` and the app's trainer run), starting from the seed.
  Each round design (``--designs``) learns from the same judgements.
* SRCC is measured on the evaluation set, which nobody rated, for the seed and each
  candidate, each scored through its own backbone.
* Upper bound: the shipped recipe trained on the seed and crowd sets with their true MOS.
* The flipped crowd (every answer reversed) must be rejected.

Per split: every row's SRCC, its gain, the gate's decision and the round's time. Then each
row's mean gain over the splits with a paired bootstrap 95% interval (the evaluation photos
of every split resampled, the same photos for both models), its share of the upper bound's
gain, and the p95 score latency while idle vs while a round runs in a background process
(the app's trainer mechanism), side by side. Every row is written as it finishes and
training resumes, so a killed run continues.

    python bench/redistill.py --synthetic runs/synthetic --human-run runs/cv562 \\
        --out runs/redistill-bench --json runs/redistill-bench/results.json
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotations.schema import image_id_for  # noqa: E402
from annotations.simulate import Crowd  # noqa: E402
from annotations.store import AnnotationStore  # noqa: E402
from cvrkd import paths  # noqa: E402
from cvrkd.checkpoint import load_checkpoint  # noqa: E402
from cvrkd.evaluation import correlations  # noqa: E402
from cvrkd.gallery import atomic_write_text  # noqa: E402
from cvrkd.train.finetune import predict  # noqa: E402
from cvrkd.train.protocol import paired_difference  # noqa: E402
from cvrkd.train.recipe import SHIPPED  # noqa: E402
from cvrkd.train.redistill import ROUND_DESIGNS, RedistillConfig  # noqa: E402
from cvrkd.train.redistill_job import redistill_from_store, start_background_round  # noqa: E402
from cvrkd.train.registry import ModelRegistry  # noqa: E402

GOLD_TYPES = ("gaussian_blur", "jpeg", "white_noise", "pixelate")


@dataclass
class Seeding:
    """What every seed model shares: the pipeline's workspace (phase 1, the labelled photos) and
    the recipe the seed trains with."""

    workspace: object
    recipe: object

    @property
    def photos(self):
        return self.workspace.photos

    @property
    def names(self) -> list[str]:
        return self.workspace.names

    @property
    def mos(self) -> np.ndarray:
        return self.workspace.mos

    @property
    def spread(self) -> np.ndarray:
        return np.array([row.mos_std for row in self.workspace.rows], float)

    @property
    def paths(self) -> list[Path]:
        return [row.path for row in self.workspace.rows]

    @property
    def gallery(self):
        return self.workspace.gallery


def seeding(args: argparse.Namespace, log) -> Seeding:
    from cvrkd.train.pipeline import open_workspace
    from cvrkd.train.recipe import recipe

    return Seeding(open_workspace(args.data, args.synthetic, args.human_run, log=log), recipe(args.recipe))


def train_seed(seed: Seeding, rows: np.ndarray, folder: Path, log) -> Path:
    """Every phase of the seed's recipe on ``rows`` only, saved with the teacher as a bundle (resumes)."""
    from cvrkd.train.pipeline import save_bundle, train_student

    bundle = folder / "bundle"
    if (bundle / "student" / "config.json").is_file():
        return bundle
    tuned = train_student(seed.workspace, seed.recipe, rows)
    return save_bundle(seed.workspace, seed.recipe, tuned, {"bench": "seed", "photos": len(rows)}, bundle)


def split_three(count: int, seed_photos: int, crowd_photos: int, eval_photos: int, split: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seed, crowd, evaluation) rows: disjoint, by image, seeded per split."""
    if seed_photos + crowd_photos + eval_photos > count:
        raise SystemExit(f"the three sets need {seed_photos + crowd_photos + eval_photos} photos; there are {count}")
    order = np.random.default_rng(1000 + split).permutation(count)
    cut = np.cumsum([seed_photos, crowd_photos, eval_photos])
    return np.sort(order[:cut[0]]), np.sort(order[cut[0]:cut[1]]), np.sort(order[cut[1]:cut[2]])


def make_store(folder: Path, seed: Seeding, crowd_rows: np.ndarray, seed_rows: np.ndarray, count: int,
               within_share: float, gold: int, split: int, flip: bool = False) -> Path:
    """A store + pool: ``count`` simulated judgements (a crowd photo against a crowd photo with
    probability ``within_share``, else against a seed photo), reversed when ``flip``; the strongest
    distortion of ``gold`` crowd photos is registered as the pool registers its gold images."""
    from PIL import Image

    from cvrkd.distortions import distort

    store_dir, pool = folder / "annotations", folder / "pool"
    if (folder / "done").exists():
        return store_dir
    shutil.rmtree(folder, ignore_errors=True)
    pool.mkdir(parents=True)
    store = AnnotationStore(store_dir)
    ids = {}
    for row in np.concatenate([crowd_rows, seed_rows]):
        path = seed.paths[row]
        ids[row] = image_id_for(path.read_bytes())
        shutil.copyfile(path, pool / f"{ids[row]}{path.suffix.lower()}")
        store.register_image(ids[row], "dataset", "LIVE In the Wild: research use", dataset="clive_dev")
    for k, row in enumerate(crowd_rows[:gold]):
        damaged = distort(seed.photos.pixels[row], GOLD_TYPES[k % len(GOLD_TYPES)], 5, seed=k)
        staged = pool / "incoming.png"
        Image.fromarray(damaged).save(staged)
        image_id = image_id_for(staged.read_bytes())
        staged.rename(pool / f"{image_id}.png")
        store.register_image(image_id, "distortion", "LIVE In the Wild: research use",
                             distortion=GOLD_TYPES[k % len(GOLD_TYPES)], level=5, reference_id=ids[row])
    crowd = Crowd({ids[r]: seed.mos[r] for r in ids}, {ids[r]: seed.spread[r] for r in ids},
                  n_raters=40, careless_share=0.1, seed=split)
    rng = np.random.default_rng(split)
    swap = {"left": "right", "right": "left", "tie": "tie"}
    for _ in range(count):
        first = int(rng.choice(crowd_rows))
        pool_rows = crowd_rows if rng.random() < within_share else seed_rows
        second = int(rng.choice(pool_rows[pool_rows != first]))
        left, right = (ids[first], ids[second]) if rng.random() < 0.5 else (ids[second], ids[first])
        rater = crowd.pick_rater()
        answer = crowd.judge(rater, left, right)
        store.append({"rater_id": rater, "left_image_id": left, "right_image_id": right,
                      "choice": swap[answer.choice] if flip else answer.choice,
                      "response_ms": answer.response_ms, "app_version": "bench", "model_version": "bench"})
    store.close()
    (folder / "done").write_text("ok")
    return store_dir


def evaluation_srcc(network, seed: Seeding, rows: np.ndarray, bootstrap: int, split: int) -> dict:
    """SRCC (bootstrap 95% CI) on the never-rated photos, scored through the network's own backbone,
    with the scores (the paired intervals of the summary resample them)."""
    predicted = predict(network, [seed.photos.pixels[r] for r in rows], seed.gallery)
    result = correlations(predicted, seed.mos[rows], n_boot=bootstrap, seed=split)
    return {"srcc": result.values["srcc"], "srcc_ci": list(result.ci["srcc"]), "predicted": predicted.tolist()}


def claim_for_recipe(folder: Path, recipe) -> None:
    """A split folder resumes only the seed recipe it began with: rows of another recipe are never
    read back as this one's."""
    claim = folder / "seed_recipe.json"
    if claim.exists() and json.loads(claim.read_text())["key"] != recipe.key():
        raise SystemExit(f"{folder} holds a bench of another seed recipe ({claim}); choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(claim, json.dumps({"key": recipe.key(), "recipe": recipe.to_dict()}, indent=2))


def run_split(args, seed: Seeding, split: int, log) -> dict:
    folder = args.out / f"split{split}"
    claim_for_recipe(folder, seed.recipe)
    done = folder / "result.json"
    result = json.loads(done.read_text()) if done.exists() else {}
    seed_rows, crowd_rows, eval_rows = split_three(len(seed.names), args.seed_photos, args.crowd_photos,
                                                   args.eval_photos, split)
    log(f"split {split}: seed {len(seed_rows)}, crowd {len(crowd_rows)}, evaluation {len(eval_rows)} photos")
    seed_bundle = train_seed(seed, seed_rows, folder / "seed", log)
    base, _ = load_checkpoint(seed_bundle / "student")
    result.update({"split": split, "seed_photos": len(seed_rows), "crowd_photos": len(crowd_rows),
                   "eval_photos": len(eval_rows), "judgements": args.judgements,
                   "mos": seed.mos[eval_rows].tolist()})
    if "seed" not in result:
        result["seed"] = evaluation_srcc(base, seed, eval_rows, args.bootstrap, split)
    log(f"split {split}: seed SRCC {result['seed']['srcc']:.3f}")
    rounds = {round_name(design, args.round): (design, False) for design in args.designs}
    if split < args.flipped_splits:
        rounds[flipped_name(args.designs[0], args.round)] = (args.designs[0], True)
    for name, (design, flip) in rounds.items():
        if name in result:
            continue
        store = make_store(folder / ("flipped" if flip else "crowd"), seed, crowd_rows, seed_rows, args.judgements,
                           args.within_share, args.gold, split, flip)
        registry = folder / f"{name.replace(' ', '-')}-registry"
        shutil.rmtree(registry, ignore_errors=True)  # a rerun of this row starts from the seed again
        outcome = redistill_from_store(store, registry, images_dir=store.parent / "pool",
                                       model_dir=seed_bundle, gallery_dir=seed.gallery.root,
                                       cache_dir=args.out / "cache", synthetic_dir=args.synthetic,
                                       config=replace(args.round, seed=split, design=design), log=log)
        candidate, _ = load_checkpoint(ModelRegistry(registry).path(outcome.candidate_version))
        record = outcome.record
        result[name] = {**evaluation_srcc(candidate, seed, eval_rows, args.bootstrap, split),
                        "design": design, "gate": record["decision"], "reason": record["reason"],
                        "mix": record["mix"], "seconds": record["seconds"], "n_train": record["n_train"],
                        "n_validation": record["n_validation"],
                        "agreement": [record["base_agreement"], record["candidate_agreement"]],
                        "agreement_gain_ci": record["agreement_gain_ci"],
                        "likelihood_gain": [record["likelihood_gain"], *record["likelihood_gain_ci"]],
                        "synthetic_check_srcc": [record["base_synthetic_srcc"], record["candidate_synthetic_srcc"]],
                        "known_order": [record["base_known_order"], record["candidate_known_order"],
                                        record["n_known_order"]]}
        log(f"split {split} {name}: SRCC {result[name]['srcc']:.3f}, {result[name]['gate']} ({result[name]['reason']})")
        atomic_write_text(done, json.dumps(result, indent=2))
    if not args.skip_upper and "upper_bound" not in result:
        upper_bundle = train_seed(seed, np.sort(np.concatenate([seed_rows, crowd_rows])), folder / "upper", log)
        result["upper_bound"] = evaluation_srcc(load_checkpoint(upper_bundle / "student")[0], seed, eval_rows,
                                                args.bootstrap, split)
        log(f"split {split}: upper bound SRCC {result['upper_bound']['srcc']:.3f}")
        atomic_write_text(done, json.dumps(result, indent=2))
    return result


def readout_settings(design: str, config: RedistillConfig) -> list[str]:
    """The readout settings a row's name carries: a resumed result keeps its meaning when a default
    changes (a served fit on the training judgements only, synthetic anchors)."""
    if design != "readout":
        return []
    return ((["training judgements only"] if not config.final_fit_on_all else [])
            + ([f"synthetic anchor {config.synthetic_anchor:g}"] if config.synthetic_anchor > 0 else []))


def round_name(design: str, config: RedistillConfig) -> str:
    """A row per design and readout setting."""
    return f"round ({', '.join([design, *readout_settings(design, config)])})"


def flipped_name(design: str, config: RedistillConfig) -> str:
    """The flipped crowd's row: it meets the first design with the same settings."""
    settings = readout_settings(design, config)
    return f"flipped crowd ({', '.join(settings)})" if settings else "flipped crowd"


def rows_of(splits: list[dict], prefix: str) -> list[str]:
    """Every row starting with ``prefix`` that some split holds, in the order first written."""
    return list(dict.fromkeys(name for s in splits for name in s if name.startswith(prefix)))


def latency(args, seed: Seeding, log) -> dict:
    """p95 of ``Scorer.score`` while idle vs while a round runs in the background (split 0's crowd)."""
    from cvrkd.scorer import Scorer

    folder = args.out / "split0"
    scorer = Scorer(folder / "seed" / "bundle", cache_dir=args.out / "cache", gallery=seed.gallery)
    probe = [seed.paths[r] for r in split_three(len(seed.names), args.seed_photos, args.crowd_photos,
                                                args.eval_photos, 0)[2][:10]]

    def timed(images: list[Path]) -> list[float]:
        times = []
        for path in images:
            started = time.perf_counter()
            scorer.score(path)
            times.append(time.perf_counter() - started)
        return times

    timed(probe[:2])
    idle = timed(probe) + timed(probe) + timed(probe)
    registry = args.out / "latency-registry"
    shutil.rmtree(registry, ignore_errors=True)
    process = start_background_round(folder / "crowd" / "annotations", registry,
                                     images_dir=folder / "crowd" / "pool", model_dir=folder / "seed" / "bundle",
                                     cache_dir=args.out / "cache", gallery_dir=seed.gallery.root,
                                     extra_args=["--synthetic", str(args.synthetic.resolve()),
                                                 "--design", args.designs[0],
                                                 "--synthetic-anchor", str(args.round.synthetic_anchor),
                                                 "--epochs", str(args.round.finetune.epochs),
                                                 "--steps", str(args.round.finetune.steps_per_epoch)])
    busy: list[float] = []
    while process.poll() is None:
        busy.extend(timed(probe))
    log(f"background round exited with {process.returncode}")
    rounds = ModelRegistry(registry).runs()
    return {"idle_p95_s": p95(idle), "training_p95_s": p95(busy), "ratio": p95(busy) / p95(idle),
            "idle_n": len(idle), "training_n": len(busy), "idle_median_s": statistics.median(idle),
            "training_median_s": statistics.median(busy), "backend": scorer.backend,
            "round_seconds": rounds[-1]["seconds"] if rounds else None}


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def mean_gain(splits: list[dict], row: str, draws: int = 2000) -> dict:
    """The mean over splits of ``row``'s SRCC minus the seed's on the evaluation photos, with a
    paired bootstrap 95% interval: each draw resamples every split's photos, the same photos for
    both models."""
    chosen = [s for s in splits if row in s]
    if not chosen:
        return {}
    gain, low, high = paired_difference(
        np.concatenate([s[row]["predicted"] for s in chosen]), np.concatenate([s["seed"]["predicted"] for s in chosen]),
        np.concatenate([s["mos"] for s in chosen]), draws, groups=np.repeat(np.arange(len(chosen)),
                                                                           [len(s["mos"]) for s in chosen]))
    return {"mean": gain, "ci": [low, high], "splits": len(chosen)}


def summarise(splits: list[dict], names: list[str]) -> dict:
    out = {"upper_bound": mean_gain(splits, "upper_bound"), "rounds": {}}
    for name in names:
        gains = mean_gain(splits, name)
        if gains and out["upper_bound"]:
            gains["share_of_upper_bound"] = gains["mean"] / out["upper_bound"]["mean"]
        out["rounds"][name] = {**gains, "promoted": sum(s[name]["gate"] == "promoted" for s in splits if name in s),
                               "round_seconds": [s[name]["seconds"] for s in splits if name in s]}
    out["flipped"] = {name: [s[name]["gate"] for s in splits if name in s] for name in rows_of(splits, "flipped crowd")}
    return out


def markdown(figures: dict) -> str:
    rows = rows_of(figures["splits"], "round (") + rows_of(figures["splits"], "flipped crowd")
    lines = [f"settings: {figures['settings']}", "",
             "| split | row | SRCC on never-rated photos [95% CI] | gain over the seed | gate | synthetic check "
             "(served → candidate) | round (min) |",
             "|---|---|---|---|---|---|---|"]
    for s in figures["splits"]:
        seed = s["seed"]
        lines.append(f"| {s['split']} | seed | {seed['srcc']:.3f} [{seed['srcc_ci'][0]:.3f}, {seed['srcc_ci'][1]:.3f}] "
                     "| — | — | — | — |")
        for name in [*rows, "upper_bound"]:
            if name not in s:
                continue
            r = s[name]
            gate = f"{r['gate']} ({r['reason']})" if "gate" in r else "—"
            minutes = f"{r['seconds'] / 60:.1f}" if "seconds" in r else "—"
            check = "{:.3f} → {:.3f}".format(*r["synthetic_check_srcc"]) if "synthetic_check_srcc" in r else "—"
            lines.append(f"| {s['split']} | {name.replace('_', ' ')} | {r['srcc']:.3f} [{r['srcc_ci'][0]:.3f}, "
                         f"{r['srcc_ci'][1]:.3f}] | {r['srcc'] - seed['srcc']:+.3f} | {gate} | {check} | {minutes} |")
    summary = figures["summary"]
    lines += ["", "| row | mean gain [paired 95% interval] | share of the upper bound's gain | promoted |",
              "|---|---|---|---|"]
    for name, r in summary["rounds"].items():
        if r.get("splits"):
            share = f"{r['share_of_upper_bound']:.0%}" if "share_of_upper_bound" in r else "—"
            lines.append(f"| {name} | {r['mean']:+.3f} [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}] | {share} | "
                         f"{r['promoted']}/{r['splits']} |")
    upper = summary["upper_bound"]
    if upper:
        lines.append(f"| upper bound (the recipe with the crowd photos' MOS) | {upper['mean']:+.3f} "
                     f"[{upper['ci'][0]:+.3f}, {upper['ci'][1]:+.3f}] | 100% | — |")
    lines += [""] + [f"{name}: {', '.join(gates)}" for name, gates in summary["flipped"].items()] \
        + (["flipped crowd: not run"] if not summary["flipped"] else [])
    if figures.get("latency"):
        lat = figures["latency"]
        lines += ["", "| score latency | p95 (s) | median (s) | calls |", "|---|---|---|---|",
                  f"| idle | {lat['idle_p95_s']:.3f} | {lat['idle_median_s']:.3f} | {lat['idle_n']} |",
                  f"| during re-distillation | {lat['training_p95_s']:.3f} | {lat['training_median_s']:.3f} | "
                  f"{lat['training_n']} |", "", f"ratio of p95s: {lat['ratio']:.2f}x ({lat['backend']})"]
        if lat.get("round_seconds") is not None:
            lines.append(f"the background round, with the scorer busy all the while: {lat['round_seconds'] / 60:.1f} min")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=paths.shared_data_dir())
    parser.add_argument("--synthetic", type=Path, default=Path("runs/synthetic"),
                        help="the synthetic training set (replayed, and the gate's synthetic check)")
    parser.add_argument("--human-run", type=Path, default=Path("runs/cv562"),
                        help="the work folder of `evaluate --cv` whose phase 1 (teacher and stage-1 student, no "
                        "human photo seen) the seeds start from; trained there if missing")
    parser.add_argument("--out", type=Path, default=Path("runs/redistill-bench"))
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--seed-photos", type=int, default=262)
    parser.add_argument("--crowd-photos", type=int, default=150)
    parser.add_argument("--eval-photos", type=int, default=150)
    parser.add_argument("--judgements", type=int, default=4000)
    parser.add_argument("--within-share", type=float, default=1.0,
                        help="share of judgements between two crowd photos (the rest: crowd vs seed photo)")
    parser.add_argument("--gold", type=int, default=24, help="crowd photos whose strongest distortion is in the pool")
    parser.add_argument("--flipped-splits", type=int, default=1, help="splits that also run the flipped crowd")
    parser.add_argument("--skip-upper", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--recipe", default=SHIPPED, help="the training recipe of the seed model "
                        "(cvrkd.train.recipe.RECIPES)")
    parser.add_argument("--designs", nargs="+", choices=ROUND_DESIGNS, default=list(ROUND_DESIGNS),
                        help="round designs to compare on the same judgements (the first also meets the "
                        "flipped crowd and the latency check)")
    parser.add_argument("--synthetic-anchor", type=float, default=RedistillConfig().synthetic_anchor,
                        help="readout rounds: the weight of the replayed synthetic anchors (0 = none)")
    parser.add_argument("--training-judgements-only", action="store_true",
                        help="readout rounds serve the gate's fit (training judgements only), not the refit on all")
    parser.add_argument("--round-epochs", type=int, default=RedistillConfig().finetune.epochs)
    parser.add_argument("--round-steps", type=int, default=RedistillConfig().finetune.steps_per_epoch)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.round = RedistillConfig().with_steps(args.round_epochs, args.round_steps, bootstrap=args.bootstrap,
                                              final_fit_on_all=not args.training_judgements_only,
                                              synthetic_anchor=args.synthetic_anchor)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    seed = seeding(args, log)
    splits = [run_split(args, seed, split, log) for split in range(args.splits)]
    figures = {"settings": {k: v for k, v in vars(args).items() if k != "round"} |
               {"round": args.round.to_dict(), "seed_recipe": seed.recipe.to_dict()},
               "splits": splits, "summary": summarise(splits, rows_of(splits, "round (")),
               "latency": None if args.skip_latency else latency(args, seed, log)}
    print(markdown(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
