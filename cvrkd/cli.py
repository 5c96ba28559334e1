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

    export = commands.add_parser(
        "export-runtime", help="export the backbone for the fast CPU runtimes and verify it")
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
    rows, failed = [], 0
    for path in tqdm(args.images, desc="scoring", unit="img", disable=len(args.images) < 2,
                     file=sys.stderr):
        try:
            result = scorer.score(path, gallery=gallery, reference=args.reference, name=str(path))
        except InvalidImageError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            rows.append({"path": str(path), "score": "", "spread": "", "mode": "",
                         "model_version": scorer.model_version, "backend": scorer.backend,
                         "error": str(exc)})
            if args.json:
                print(json.dumps({"image": str(path), "error": str(exc)}))
            continue
        rows.append({"path": str(path), "score": f"{result.score:.4f}",
                     "spread": f"{result.spread:.4f}", "mode": result.mode,
                     "model_version": result.model_version, "backend": result.backend,
                     "error": ""})
        if args.json:
            print(json.dumps(result.to_dict()))
        else:
            print(f"{path}\t{result.score:.2f}\t±{result.spread:.2f}\t{result.mode}")
    if args.output:
        with open(args.output, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    from cvrkd import paths
    from cvrkd.checkpoint import load_checkpoint
    from cvrkd.runtime import export_backbone

    model_dir = args.model or paths.default_model_dir()
    student = model_dir if (model_dir / "config.json").is_file() else model_dir / "student"
    try:
        _, info = load_checkpoint(student, expected_role="student")
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    export = export_backbone(model_dir, info.backbone, info.version, force=args.force)
    print(export.onnx_path)
    for runtime, check in export.manifest["verified"].items():
        verdict = "verified" if check["ok"] else "NOT verified"
        detail = (f"max relative error {check['max_relative_error']:.2e}"
                  if "max_relative_error" in check else check.get("error", ""))
        print(f"{runtime} {check['version']}: {verdict} ({detail})")
    return EXIT_OK if any(c["ok"] for c in export.manifest["verified"].values()) else EXIT_SOME_FAILED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
