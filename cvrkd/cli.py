"""Command line: ``cvrkd score|score-dataset|train|evaluate ...`` (also ``python -m cvrkd``)."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from cvrkd.checkpoint import CheckpointError
from cvrkd.imageio import InvalidImageError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
CSV_COLUMNS = ["path", "score", "spread", "mode", "model_version", "backend", "error"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cvrkd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser("score", help="score images (0–100, higher = better)")
    score.add_argument("images", nargs="+", type=Path)
    score.add_argument("--gallery", type=Path, help="reference gallery folder (default: built-in)")
    score.add_argument("--reference", type=Path,
                       help="the pristine original of the image(s): use the FR teacher")
    score.add_argument("--model", type=Path, help="model bundle folder (student/ and teacher/)")
    score.add_argument("--output", type=Path, help="write one CSV row per image here")
    score.add_argument("--json", action="store_true", help="print full results as JSON lines")
    score.add_argument("--allow-untrained", action="store_true",
                       help="accept a randomly initialised model (for tests and timing only)")
    add_backend_option(score)
    score.set_defaults(handler=run_score)

    bulk = commands.add_parser(
        "score-dataset", help="score a folder or Hugging Face dataset into resumable Parquet shards")
    bulk.add_argument("source", help="a folder of images (recursive), a saved/local Hugging Face "
                                     "dataset folder, or a Hub dataset repo id")
    bulk.add_argument("--out", type=Path, required=True,
                      help="output folder of Parquet shards; rerun with the same folder to resume")
    bulk.add_argument("--engine", choices=("local", "ray"), default="local",
                      help="local: this process; ray: a Ray Data actor pool")
    bulk.add_argument("--workers", type=int, default=1, help="Ray actors (each loads the model once)")
    bulk.add_argument("--address", help="join this Ray cluster (default: a private local instance)")
    bulk.add_argument("--gallery", type=Path, help="reference gallery folder (default: built-in)")
    bulk.add_argument("--batch-size", type=int, default=16, help="images per batch sent to a worker")
    bulk.add_argument("--shard-size", type=int, default=500, help="images per Parquet shard")
    bulk.add_argument("--split", default="train", help="dataset split (Hugging Face sources)")
    bulk.add_argument("--image-column", help="dataset column holding the images (default: detected)")
    bulk.add_argument("--id-column", help="dataset column naming each row (default: id/path/... or "
                                          "the row index)")
    bulk.add_argument("--model", type=Path, help="model bundle folder (student/ and teacher/)")
    bulk.add_argument("--allow-untrained", action="store_true",
                      help="accept a randomly initialised model (for tests and timing only)")
    add_backend_option(bulk)
    bulk.set_defaults(handler=run_score_dataset)

    export = commands.add_parser(
        "export-runtime", help="export the backbone and the student's head for the fast CPU runtimes and verify them")
    export.add_argument("--model", type=Path, help="model bundle folder (default: the bundled model)")
    export.add_argument("--force", action="store_true", help="export again even if cached")
    export.set_defaults(handler=run_export)

    from cvrkd.train import cli as train_cli  # training sub-commands register themselves
    train_cli.register(commands)
    return parser


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    from cvrkd.runtime import BACKENDS

    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="backbone runtime (default: auto = a verified fast runtime when "
                             "installed, else torch; $CVRKD_BACKEND overrides)")


def run_score(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cvrkd.gallery import Gallery
    from cvrkd.runtime import RuntimeUnavailable
    from cvrkd.scorer import NoTrainedModelError, Scorer

    try:
        scorer = Scorer(args.model, allow_untrained=args.allow_untrained, backend=args.backend)
        gallery = Gallery.load(args.gallery) if args.gallery else None
    except (NoTrainedModelError, CheckpointError, FileNotFoundError, RuntimeUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not scorer.student.info.trained:
        print("WARNING: untrained model (random weights): these scores mean nothing", file=sys.stderr)
    rows = []

    def report(index: int, result) -> None:
        path = args.images[index]
        if isinstance(result, InvalidImageError):
            print(f"error: {result}", file=sys.stderr)
            rows.append({"path": str(path), "score": "", "spread": "", "mode": "",
                         "model_version": scorer.model_version, "backend": scorer.backend,
                         "error": str(result)})
            if args.json:
                print(json.dumps({"image": str(path), "error": str(result)}))
        else:
            rows.append({"path": str(path), "score": f"{result.score:.4f}",
                         "spread": f"{result.spread:.4f}", "mode": result.mode,
                         "model_version": result.model_version, "backend": result.backend,
                         "error": ""})
            if args.json:
                print(json.dumps(result.to_dict()))
            else:
                print(f"{path}\t{result.score:.2f}\t±{result.spread:.2f}\t{result.mode}")
        bar.update()

    with tqdm(total=len(args.images), desc="scoring", unit="img", disable=len(args.images) < 2,
              file=sys.stderr) as bar:
        results = scorer.score_many(args.images, gallery=gallery, reference=args.reference,
                                    names=[str(path) for path in args.images], on_result=report)
    failed = sum(isinstance(result, InvalidImageError) for result in results)
    if args.output:
        with open(args.output, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def run_score_dataset(args: argparse.Namespace) -> int:
    from cvrkd.bulk import BulkError, ScorerOptions, open_source, score_dataset
    from cvrkd.runtime import RuntimeUnavailable
    from cvrkd.scorer import NoTrainedModelError

    if args.workers < 1 or args.batch_size < 1 or args.shard_size < 1:
        print("error: --workers, --batch-size and --shard-size must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    options = ScorerOptions(model_dir=str(args.model) if args.model else None,
                            gallery_dir=str(args.gallery) if args.gallery else None,
                            backend=args.backend, allow_untrained=args.allow_untrained)
    try:
        source = open_source(args.source, args.split, args.image_column, args.id_column)
        summary = score_dataset(source, args.out, options, engine=args.engine, workers=args.workers,
                                address=args.address, batch_size=args.batch_size,
                                shard_size=args.shard_size)
    except (BulkError, NoTrainedModelError, CheckpointError, FileNotFoundError,
            RuntimeUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{summary.items} items in {summary.out}: scored {summary.scored_now} now "
          f"({summary.images_per_s:.1f} images/s), {summary.shards_skipped} finished shards "
          f"skipped, {summary.shards_written} written; {summary.failed_total} unreadable in all",
          file=sys.stderr)
    return EXIT_SOME_FAILED if summary.failed_total else EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    from cvrkd import paths
    from cvrkd.checkpoint import load_checkpoint
    from cvrkd.runtime import export_backbone, export_head

    model_dir = args.model or paths.default_model_dir()
    student = model_dir if (model_dir / "config.json").is_file() else model_dir / "student"
    try:
        network, info = load_checkpoint(student, expected_role="student")
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    exports = [export_backbone(model_dir, info.backbone, info.version, force=args.force,
                               tail=network.backbone_tail),
               export_head(model_dir, network, info.version, force=args.force)]
    for export in exports:
        print(export.onnx_path)
        unit = export.manifest.get("error_unit", "relative")
        for runtime, check in export.manifest["verified"].items():
            verdict = "verified" if check["ok"] else "NOT verified"
            detail = (f"max {unit} error {check['max_error']:.2e}" if "max_error" in check
                      else check.get("error", ""))
            print(f"  {runtime} {check['version']}: {verdict} ({detail})")
    # an unverified head only runs in torch (same scores); an unverified backbone leaves no fast path
    backbone_checks = exports[0].manifest["verified"].values()
    return EXIT_OK if any(check["ok"] for check in backbone_checks) else EXIT_SOME_FAILED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
