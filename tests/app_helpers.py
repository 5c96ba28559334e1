"""Shared by the app tests: which model to serve and a free local port."""
from __future__ import annotations

import socket

from conftest import ROOT

SHIPPED = ROOT / "cvrkd" / "weights"


def model_options(untrained_bundle) -> dict:
    """The shipped model when it is installed, else the random-init test bundle."""
    if (SHIPPED / "student" / "config.json").is_file():
        return {"model_dir": SHIPPED, "allow_untrained": False}
    return {"model_dir": untrained_bundle, "allow_untrained": True}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def signed(app, public: str) -> str:
    """A rater id signed by the app under test, as ``/rater`` hands out (no client limits in between)."""
    return app.services.raters.issue(public)
