"""``python -m cvrkd train ...`` and ``python -m cvrkd evaluate ...``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cvrkd import paths
from cvrkd.allocator import training_command


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="build synthetic data and train teacher/student")
    stages = train.add_subparsers(dest="stage", required=True)

    data = stages.add_parser("data", help="distort Kodak24, pseudo-label, cache backbone features")
    _data_options(data)
    data.set_defaults(handler=run_data)
    register_model(stages)
    register_synthetic(stages)
    register_redistill(commands)
    register_evaluate(commands)


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=paths.shared_data_dir(),
                        help="folder holding kodak24/ (default: $CVRKD_DATA or ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic"),
                        help="where the feature shards and labels.csv go")
    parser.add_argument("--val-sources", type=int, default=4,
                        help="Kodak photos held out for validation (split by source image)")
    parser.add_argument("--train-sources", type=int, default=12, help="Kodak photos to train on")
    parser.add_argument("--seed", type=int, default=0)


@training_command
def run_data(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cvrkd.backbone import FrozenBackbone
    from cvrkd.train.synthetic import SyntheticConfig, build, kodak_sources

    sources, val = kodak_sources(args.data, args.val_sources, args.train_sources)
    config = SyntheticConfig(sources=sources, val_sources=val, seed=args.seed)
    with tqdm(total=len(sources), desc="synthetic data", unit="source", file=sys.stderr) as bar:
        def progress(message: str) -> None:
            bar.set_postfix_str(message)
            bar.update(1)

        build(config, args.out, FrozenBackbone(), progress)
    print(f"synthetic data in {args.out}")
    return 0

def _pipeline_options(parser) -> None:
    parser.add_argument("--data", type=Path, default=paths.shared_data_dir(),
                        help="folder holding clive_dev/ and clive_extra/ (default: $CVRKD_DATA or ../shared/data)")
    parser.add_argument("--synthetic", type=Path, default=Path("runs/synthetic"),
                        help="output of `train data`")
    parser.add_argument("--out", type=Path, default=Path("runs/human"),
                        help="work folder: every phase and fold resumes from here")
    parser.add_argument("--exclude", type=Path, help="text file of image names never to train on")


def workspace(args: argparse.Namespace, labelled: bool = True):
    from cvrkd.train.pipeline import open_workspace

    exclude = set(args.exclude.read_text().split()) if getattr(args, "exclude", None) else set()
    return open_workspace(args.data, args.synthetic, args.out, exclude=exclude, log=_log,
                          **({} if labelled else {"sets": ()}))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def register_model(stages: argparse._SubParsersAction) -> None:
    from cvrkd.train.recipe import RECIPES, SHIPPED

    parser = stages.add_parser("model", help="train a recipe's teacher and student on every labelled photo "
                               "and calibrate it (run `evaluate --cv` with the same --out first)")
    _pipeline_options(parser)
    parser.add_argument("--recipe", default=SHIPPED, choices=sorted(n for n, r in RECIPES.items() if r.servable),
                        help=f"default: {SHIPPED!r}")
    parser.add_argument("--folds", type=int, default=5, help="the CV whose out-of-fold scores calibrate it")
    parser.add_argument("--ship", type=Path, help="install teacher + student here (e.g. cvrkd/weights)")
    parser.set_defaults(handler=run_model)


@training_command
def run_model(args: argparse.Namespace) -> int:
    import json

    from cvrkd.train import protocol
    from cvrkd.train.pipeline import BelowFloorError, train_final
    from cvrkd.train.recipe import REFERENCE, recipe

    results = args.out / "cv_results_seed0.json"
    if not results.exists() or args.recipe not in json.loads(results.read_text())["rows"]:
        print(f"error: no cross-validation in {args.out}: run `python -m cvrkd evaluate --cv {args.folds} "
              f"--rows '{args.recipe}' --out {args.out}` first", file=sys.stderr)
        return 2
    space = workspace(args)
    cv = protocol.cross_validate(space, [args.recipe], args.folds, 0)
    row = protocol.table(cv, REFERENCE, n_boot=0)["rows"][args.recipe]
    record = {"cv_pooled_srcc": row["pooled_srcc"], "cv_srcc": row["mean"]["srcc"], "cv_plcc": row["mean"]["plcc"],
              "cv_krcc": row["mean"]["krcc"], "cv_photos": len(space.rows)}
    try:
        bundle = train_final(space, recipe(args.recipe), args.recipe, cv.oof[args.recipe], record, args.ship)
    except BelowFloorError as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    print(f"model bundle in {bundle}")
    return 0


def register_synthetic(stages: argparse._SubParsersAction) -> None:
    parser = stages.add_parser("synthetic", help="phase 1 alone: the FR teacher and the student's token "
                               "mixers on the synthetic set (`model` and `evaluate --cv` resume from it)")
    _pipeline_options(parser)
    parser.set_defaults(handler=run_synthetic)


@training_command
def run_synthetic(args: argparse.Namespace) -> int:
    from cvrkd.train import pipeline
    from cvrkd.train.recipe import FROZEN

    space = workspace(args, labelled=False)
    teacher = pipeline.teacher(space, FROZEN.synthetic)
    student = pipeline.synthetic_student(space, FROZEN.synthetic)
    print(f"teacher: synthetic validation SRCC {pipeline.teacher_val_srcc(space, teacher):.4f}")
    print(f"student (phase 1): synthetic validation SRCC {pipeline.synthetic_val_srcc(space, student):.4f}")
    return 0


def register_redistill(commands: argparse._SubParsersAction) -> None:
    from cvrkd.train.redistill import ROUND_DESIGNS, RedistillConfig

    parser = commands.add_parser("redistill", help="one re-distillation round on human judgements")
    parser.add_argument("--store", type=Path, required=True, help="annotation store folder")
    parser.add_argument("--out", type=Path, required=True, help="model registry folder")
    parser.add_argument("--base", type=Path, help="student checkpoint to start from "
                        "(default: the registry's served version, else the shipped student)")
    parser.add_argument("--images", type=Path, help="folder of <image_id>.<ext> files "
                        "(default: <store>/../pool)")
    parser.add_argument("--model", type=Path, help="model bundle with the FR teacher")
    parser.add_argument("--gallery", type=Path, help="reference gallery (default: built-in)")
    parser.add_argument("--cache", type=Path, help="feature cache folder (default: $CVRKD_DATA_DIR/cache)")
    parser.add_argument("--synthetic", type=Path, help="synthetic training set to replay and check on "
                        "(from `train data`; default: $CVRKD_SYNTHETIC_DIR, else built-in photos)")
    parser.add_argument("--bundle-out", type=Path, help="also write the candidate, promoted or not (the gate's "
                        "decision is in its config), with the teacher as a complete model bundle here, "
                        "for `cvrkd score --model`")
    parser.add_argument("--design", choices=ROUND_DESIGNS, default=RedistillConfig.design,
                        help="readout: fit the readout again on the photos it keeps and the judgements "
                        "(minutes); finetune: fine-tune the backbone on the judgements with synthetic replay "
                        f"(default: {RedistillConfig.design})")
    parser.add_argument("--synthetic-anchor", type=float, default=RedistillConfig.synthetic_anchor,
                        help="design readout: hold the readout to its own scores of the replayed synthetic "
                        "images, this many times the kept photos' weight in all (0 = no anchors; "
                        f"default: {RedistillConfig.synthetic_anchor:g})")
    parser.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs (design finetune)")
    parser.add_argument("--steps", type=int, default=25,
                        help="steps per epoch (design finetune; bounds the round's time)")
    parser.add_argument("--mix", type=float, help="design finetune: keep this share of the fine-tuning step in "
                        "the candidate "
                        "(WiSE-FT; 1 = plain fine-tuning; default: the largest of 0.5, 0.35, 0.25 that "
                        "the synthetic check accepts)")
    parser.add_argument("--min-judgements", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=run_redistill)


@training_command
def run_redistill(args: argparse.Namespace) -> int:
    import json

    from cvrkd.train.redistill import RedistillConfig
    from cvrkd.train.redistill_job import BundleError, check_bundle_target, redistill_from_store, summary, write_bundle

    if args.bundle_out is not None:
        try:
            check_bundle_target(args.bundle_out)
        except BundleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    options = {"mix_choices": (args.mix,)} if args.mix is not None else {}
    config = RedistillConfig().with_steps(args.epochs, args.steps, min_judgements=args.min_judgements,
                                          seed=args.seed, design=args.design,
                                          synthetic_anchor=args.synthetic_anchor, **options)
    result = redistill_from_store(args.store, args.out, images_dir=args.images, base_dir=args.base,
                                  model_dir=args.model, gallery_dir=args.gallery,
                                  cache_dir=args.cache, synthetic_dir=args.synthetic, config=config,
                                  log=lambda message: print(message, file=sys.stderr, flush=True))
    report = summary(result)
    if args.bundle_out is not None:
        try:
            report["bundle"] = str(write_bundle(result, args.out, args.model, args.bundle_out))
        except BundleError as exc:
            print(json.dumps(report, indent=2))
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(report, indent=2))
    return 0


def register_evaluate(commands: argparse._SubParsersAction) -> None:
    from cvrkd.train.recipe import CANDIDATE, RECIPES, REFERENCE, SHIPPED

    parser = commands.add_parser("evaluate", help="SRCC/PLCC/KRCC with bootstrap CIs on a CSV of human "
                                 "scores, or (--cv K) the cross-validation table of training recipes")
    parser.add_argument("--csv", type=Path, help="CSV with image paths and human scores")
    parser.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation over every labelled "
                        "photo in the recorded folds; prints the table (the options below --cv apply)")
    group = parser.add_argument_group("cross-validation (--cv)")
    _pipeline_options(group)
    group.add_argument("--rows", nargs="+", default=list(dict.fromkeys([REFERENCE, SHIPPED, CANDIDATE])),
                       choices=sorted(RECIPES),
                       metavar="RECIPE", help=f"recipes to cross-validate (the ridge probes always run); "
                       f"choose from {sorted(RECIPES)}")
    group.add_argument("--reference", default=REFERENCE, help="the row every difference is measured against")
    group.add_argument("--ensemble", nargs="+", action="append", default=[], metavar="ROW",
                       help="also score these rows' z-scored average (repeatable)")
    group.add_argument("--seed", type=int, default=0, help="which recorded split (0; 1 for close calls)")
    group.add_argument("--bootstrap", type=int, default=2000, help="paired bootstrap draws")
    parser.add_argument("--image-root", type=Path, help="folder the image paths are relative to "
                        "(default: the CSV's folder)")
    parser.add_argument("--image-column", default="image")
    parser.add_argument("--score-column", default="mos")
    parser.add_argument("--model", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--gallery", type=Path, help="reference gallery (default: built-in)")
    parser.add_argument("--limit", type=int, help="only the first N rows (quick checks)")
    parser.add_argument("--output", type=Path, help="write per-image scores here (CSV)")
    parser.set_defaults(handler=run_evaluate)


@training_command
def run_evaluate(args: argparse.Namespace) -> int:
    import csv

    if args.cv:
        from cvrkd.train import protocol

        known = {*args.rows, *protocol.PROBES}
        unknown = ({args.reference} | {m for members in args.ensemble for m in members}) - known
        if unknown:
            print(f"error: {sorted(unknown)} are not rows of this run; the rows are {sorted(known)}",
                  file=sys.stderr)
            return 2
        cv = protocol.cross_validate(workspace(args), args.rows, args.cv, args.seed,
                                     tuple(tuple(members) for members in args.ensemble))
        result = protocol.table(cv, args.reference, args.bootstrap)
        protocol.write(cv, result, args.out)
        print(protocol.markdown(result))
        return 0
    if args.csv is None:
        print("error: give --csv (score a labelled set) or --cv K (cross-validation)", file=sys.stderr)
        return 2

    import numpy as np
    from tqdm import tqdm

    from cvrkd.evaluation import TABLE_HEADER, correlations, read_scores_csv
    from cvrkd.gallery import Gallery
    from cvrkd.imageio import InvalidImageError
    from cvrkd.scorer import Scorer

    rows = read_scores_csv(args.csv, args.image_root, args.image_column, args.score_column)[: args.limit]
    scorer = Scorer(args.model)
    gallery = Gallery.load(args.gallery) if args.gallery else None
    predicted, human, failed = [], [], 0
    records = []
    for path, score in tqdm(rows, desc="evaluating", unit="img", file=sys.stderr):
        try:
            result = scorer.score(path, gallery=gallery)
        except InvalidImageError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            continue
        predicted.append(result.score)
        human.append(score)
        records.append({"image": str(path), "human": score, "predicted": result.score, "spread": result.spread})
    if len(predicted) < 3:
        print("error: fewer than 3 images could be scored", file=sys.stderr)
        return 2
    result = correlations(np.array(predicted), np.array(human), n_boot=args.bootstrap)
    print(TABLE_HEADER)
    print(result.row(f"student {scorer.model_version}"))
    if args.output:
        with open(args.output, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    return 1 if failed else 0
