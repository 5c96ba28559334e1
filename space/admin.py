"""Admin actions on the trainer (start a round, roll back) and the runs' curves."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from cvrkd.train.registry import ModelRegistry


def _service(trainer):
    if not hasattr(trainer, "request_round"):
        raise gr.Error("No re-distillation trainer: it needs a trained student and its FR teacher.")
    return trainer


def request_round(trainer, token: str) -> str:
    from space.trainer_service import NotAuthorised

    try:
        started = _service(trainer).request_round(token)
    except NotAuthorised as exc:
        raise gr.Error("Wrong or missing admin token (set CVRKD_ADMIN_TOKEN on the server).") from exc
    return "Re-distillation started." if started else "A re-distillation round is already running."


def rollback(trainer, token: str, version: str) -> str:
    from space.trainer_service import NotAuthorised

    try:
        served = _service(trainer).rollback(token, version.strip() or None)
    except NotAuthorised as exc:
        raise gr.Error("Wrong or missing admin token (set CVRKD_ADMIN_TOKEN on the server).") from exc
    except ValueError as exc:
        raise gr.Error(str(exc)) from exc
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
