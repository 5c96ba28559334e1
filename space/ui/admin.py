"""The Model tab's trainer actions (start a round, roll back) and the runs' curves, over ``TrainerService``."""
from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from cvrkd import ModelRegistry
from space.services.clients import Client
from space.services.container import Trainer
from space.ui.errors import refused_as_error


def request_round(trainer: Trainer, token: str | None, client: Client | None = None) -> str:
    with refused_as_error("admin redistill"):
        started = trainer.request_round(token, client)
    return "Re-distillation started." if started else "A re-distillation round is already running."


def rollback(trainer: Trainer, token: str | None, version: str | None, client: Client | None = None) -> str:
    with refused_as_error("admin rollback"):
        served = trainer.rollback(token, version, client)
    return f"Now serving: {served}"


def run_curves(registry_dir: Path) -> go.Figure:
    """Served vs candidate agreement with people, and synthetic SRCC, for each recorded run."""
    runs = [r for r in ModelRegistry(registry_dir).runs() if "candidate_agreement" in r]
    x = list(range(1, len(runs) + 1))
    figure = go.Figure()
    for key, name in (("base_agreement", "served model: agreement"),
                      ("candidate_agreement", "candidate: agreement"),
                      ("candidate_synthetic_srcc", "candidate: synthetic SRCC")):
        figure.add_trace(go.Scatter(x=x, y=[r.get(key) for r in runs], mode="lines+markers", name=name))
    figure.update_layout(xaxis_title="run", yaxis_title="value", height=320, margin=dict(t=30, b=40))
    return figure
