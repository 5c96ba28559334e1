"""Helpers shared by the tests: the app to serve, image and campaign files, a writer process, a local Hub."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root folder."""
