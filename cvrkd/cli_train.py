"""Training and evaluation sub-commands (registered on the main parser)."""
from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Adds ``train`` and ``evaluate``; filled in by the training pipeline."""
