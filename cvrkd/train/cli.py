"""``python -m cvrkd train ...`` and ``python -m cvrkd evaluate ...``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cvrkd import paths


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="build synthetic data and train teacher/student")
    stages = train.add_subparsers(dest="stage", required=True)

    data = stages.add_parser("data", help="distort Kodak24, pseudo-label, cache backbone features")
    _data_options(data)
    data.set_defaults(handler=run_data)
    register_human(stages)
    register_single_stages(stages)
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

def _human_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=paths.shared_data_dir(),
                        help="folder holding clive_dev/ (default: $CVRKD_DATA or ../shared/data)")
    parser.add_argument("--synthetic", type=Path, default=Path("runs/synthetic"),
                        help="output of `train data` (with whole-image views)")
    parser.add_argument("--out", type=Path, default=Path("runs/human"), help="work folder (resumable)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--stage1-epochs", type=int, default=6,
                        help="synthetic-only epochs of the student's token mixers (stage 1)")
    parser.add_argument("--teacher-epochs", type=int, default=8)
    parser.add_argument("--distill-weight", type=float, default=0.1)
    parser.add_argument("--head-epochs", type=int, default=30,
                        help="epochs of the global-statistics head on human pairs (stage 2)")
    parser.add_argument("--synthetic-weights", type=float, nargs="+", default=[0.0, 0.03, 0.1],
                        help="synthetic-pair weights of stage 2 tried in CV (the shipped one is chosen)")
    parser.add_argument("--ablations", nargs="*", help="configurations to cross-validate (default: the "
                        "student, no distillation, NR-only); the ridge probe always runs")
    parser.add_argument("--exclude", type=Path, help="text file of image names never to train on")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patches", type=int, default=0,
                        help="grid patches the networks read next to the whole-image view "
                        "(0 = whole view only: one backbone pass per scored image)")
    # argparse shows no title for a group inside a group: `evaluate` passes one, `train human` a parser
    tune = (parser.add_argument_group("stage 3: fine-tuning through the backbone (--finetune)")
            if isinstance(parser, argparse.ArgumentParser) else parser)
    tune.add_argument("--finetune", action="store_true",
                      help="fine-tune the student end to end through the backbone's last stages")
    tune.add_argument("--tuned-stages", type=int, default=4, help="trailing backbone stages trained")
    tune.add_argument("--finetune-epochs", type=int, default=8)
    tune.add_argument("--crop", type=int, default=320, help="side of the native-resolution training crops")
    tune.add_argument("--lr-backbone", type=float, default=1e-4)
    tune.add_argument("--lr-head", type=float, default=1e-3)
    tune.add_argument("--lr-mixers", type=float, default=1e-4, help="projection, token mixers, regressor")
    tune.add_argument("--finetune-synthetic-weight", type=float, default=0.1,
                      help="weight of the replayed synthetic pseudo-label pairs")
    tune.add_argument("--finetune-distill-weight", type=float, default=0.1,
                      help="weight of the teacher's inner features on the replayed crops")
    tune.add_argument("--train-photos", type=int, default=0,
                      help="train each fold on a seeded subset of N photos (learning curve; 0 = all)")
    tune.add_argument("--finetune-variants", nargs="+", metavar="ROW",
                      help="fine-tuned rows to cross-validate (default: the fine-tuned student only); "
                      "see cvrkd.train.finetune_protocol.VARIANTS")


def human_options(args: argparse.Namespace):
    from cvrkd.train.human_pipeline import HumanOptions

    exclude = set(args.exclude.read_text().split()) if getattr(args, "exclude", None) else set()
    from cvrkd.train.global_head import HeadConfig

    finetune = None
    if getattr(args, "finetune", False):
        from cvrkd.train.finetune import FinetuneConfig

        finetune = FinetuneConfig(tuned_stages=args.tuned_stages, epochs=args.finetune_epochs, crop=args.crop,
                                  lr_backbone=args.lr_backbone, lr_head=args.lr_head, lr_mixers=args.lr_mixers,
                                  synthetic_weight=args.finetune_synthetic_weight,
                                  distill_weight=args.finetune_distill_weight, seed=args.seed)
    return HumanOptions(finetune=finetune, train_photos=getattr(args, "train_photos", 0),
                        data_root=args.data, synthetic=args.synthetic, out=args.out, folds=args.folds,
                        seed=args.seed, teacher_epochs=args.teacher_epochs, stage1_epochs=args.stage1_epochs,
                        distill_weight=args.distill_weight, head=HeadConfig(epochs=args.head_epochs),
                        synthetic_weights=tuple(args.synthetic_weights),
                        **({"ablations": tuple(args.ablations)} if getattr(args, "ablations", None) else {}),
                        bootstrap=args.bootstrap, exclude=exclude, patches=args.patches)


def register_human(stages: argparse._SubParsersAction) -> None:
    human = stages.add_parser("human", help="train the student on synthetic data AND human labels "
                              "(clive_dev MOS) on all images and ship; run `evaluate --cv` first")
    _human_options(human)
    human.add_argument("--ship", type=Path, help="install teacher + student here (e.g. cvrkd/weights)")
    human.set_defaults(handler=run_human)


def run_human(args: argparse.Namespace) -> int:
    if args.finetune:
        from cvrkd.train.finetune_protocol import train_final
    else:
        from cvrkd.train.human_pipeline import train_final

    bundle = train_final(human_options(args), args.ship, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"model bundle in {bundle}")
    return 0


def register_redistill(commands: argparse._SubParsersAction) -> None:
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
    parser.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs")
    parser.add_argument("--steps", type=int, default=25, help="steps per epoch (bounds the round's time)")
    parser.add_argument("--mix", type=float, help="keep this share of the fine-tuning step in the candidate "
                        "(WiSE-FT; 1 = plain fine-tuning; default: the largest of 0.5, 0.35, 0.25 that "
                        "the synthetic check accepts)")
    parser.add_argument("--min-judgements", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=run_redistill)


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
    config = RedistillConfig(epochs=args.epochs, steps_per_epoch=args.steps, min_judgements=args.min_judgements,
                             seed=args.seed, **options)
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


def register_single_stages(stages: argparse._SubParsersAction) -> None:
    """``train teacher`` and ``train student``: the synthetic stages of ``train human`` on their
    own. They write where ``evaluate --cv`` and ``train human`` look (the same ``--out``), so
    those resume from them instead of training again."""
    helps = {"teacher": "the FR teacher on the synthetic set (the teacher `train human` ships)",
             "student": "stage 1 of the student: its token mixers on the synthetic set, distilled from "
                        "the teacher (trained first when --out has none)"}
    for role, text in helps.items():
        parser = stages.add_parser(role, help=text)
        parser.add_argument("--synthetic", type=Path, default=Path("runs/synthetic"),
                            help="output of `train data` (with whole-image views)")
        parser.add_argument("--out", type=Path, default=Path("runs/human"),
                            help="work folder of `evaluate --cv` and `train human` (resumable)")
        parser.add_argument("--patches", type=int, default=0,
                            help="grid patches read next to the whole-image view (as in `train human`)")
        parser.add_argument("--teacher-epochs", type=int, default=8)
        parser.add_argument("--seed", type=int, default=0)
        if role == "student":
            parser.add_argument("--stage1-epochs", type=int, default=6)
            parser.add_argument("--distill-weight", type=float, default=0.1)
            parser.add_argument("--ablation", default="student",
                                help="which stage-1 network: student (default, the shipped one's), "
                                "'no distillation' or 'NR-only (no reference branch)'")
        parser.set_defaults(handler=run_single_stage, role=role)


def run_single_stage(args: argparse.Namespace) -> int:
    from cvrkd.train import human_pipeline
    from cvrkd.train.human_pipeline import (ABLATIONS, HumanOptions, prepare, train_synthetic_student,
                                            train_teacher)

    if args.role == "student" and args.ablation not in ABLATIONS:
        print(f"error: unknown --ablation {args.ablation!r}; choose from {list(ABLATIONS)}", file=sys.stderr)
        return 2
    options = HumanOptions(data_root=paths.shared_data_dir(), synthetic=args.synthetic, out=args.out,
                           seed=args.seed, teacher_epochs=args.teacher_epochs, patches=args.patches,
                           **({"stage1_epochs": args.stage1_epochs, "distill_weight": args.distill_weight}
                              if args.role == "student" else {}))
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    prepared = prepare(options, log, human=False)
    teacher = train_teacher(options, prepared, log)
    if args.role == "teacher":
        srcc, folder = human_pipeline.teacher_val_srcc(teacher, prepared), options.out / "teacher"
    else:
        student = train_synthetic_student(options, prepared, teacher, args.ablation, log)
        srcc = human_pipeline.synthetic_val_srcc(student, prepared)
        folder = human_pipeline.stage1_folder(options, args.ablation)
    print(f"synthetic validation SRCC {srcc:.4f}; checkpoint in {folder / 'best'}")
    return 0


def register_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="SRCC/PLCC/KRCC with bootstrap CIs on a CSV of human "
                                 "scores, or (--cv K) the k-fold cross-validation protocol on clive_dev")
    parser.add_argument("--csv", type=Path, help="CSV with image paths and human scores")
    parser.add_argument("--cv", type=int, metavar="K", help="run K-fold cross-validation (train + test "
                        "per fold; the options below --cv apply) and print the table")
    _human_options(parser.add_argument_group("cross-validation (--cv)"))
    parser.add_argument("--image-root", type=Path, help="folder the image paths are relative to "
                        "(default: the CSV's folder)")
    parser.add_argument("--image-column", default="image")
    parser.add_argument("--score-column", default="mos")
    parser.add_argument("--model", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--gallery", type=Path, help="reference gallery (default: built-in)")
    parser.add_argument("--limit", type=int, help="only the first N rows (quick checks)")
    parser.add_argument("--output", type=Path, help="write per-image scores here (CSV)")
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    import csv

    if args.cv:
        from cvrkd.train.human_pipeline import cross_validate, cv_markdown

        args.folds = args.cv
        log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
        if args.finetune:
            from cvrkd.train import finetune_protocol

            variants = tuple(args.finetune_variants or (finetune_protocol.FINETUNED,))
            unknown = set(variants) - set(finetune_protocol.VARIANTS)
            if unknown:
                print(f"error: unknown rows {sorted(unknown)}; choose from {list(finetune_protocol.VARIANTS)}",
                      file=sys.stderr)
                return 2
            results = finetune_protocol.cross_validate(human_options(args), variants, log=log)
        else:
            results = cross_validate(human_options(args), log=log)
        print(cv_markdown(results))
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
