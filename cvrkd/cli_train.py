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


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=paths.shared_data_dir(),
                        help="folder holding kodak24/ (default: $CVRKD_DATA or ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic"),
                        help="where the feature shards and labels.csv go")
    parser.add_argument("--val-sources", type=int, default=6,
                        help="Kodak photos held out for validation (split by source image)")
    parser.add_argument("--seed", type=int, default=0)


def run_data(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cvrkd.backbone import FrozenBackbone
    from cvrkd.synthetic import SyntheticConfig, build, kodak_sources

    sources, val = kodak_sources(args.data, args.val_sources)
    config = SyntheticConfig(sources=sources, val_sources=val, seed=args.seed)
    with tqdm(total=len(sources), desc="synthetic data", unit="source", file=sys.stderr) as bar:
        def progress(message: str) -> None:
            bar.set_postfix_str(message)
            bar.update(1)

        build(config, args.out, FrozenBackbone(), progress)
    print(f"synthetic data in {args.out}")
    return 0
