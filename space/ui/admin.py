"""Admin actions: the trainer (start a round, roll back), moderation, and the runs' curves."""
from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from cvrkd.train.registry import ModelRegistry
from space.services.admin_auth import AdminGuard, NotAuthorised
from space.ui.errors import refusal


def _service(trainer):
    if not hasattr(trainer, "request_round"):
        raise refusal("No re-distillation trainer: it needs a trained student and its FR teacher.", "admin")
    return trainer


def _text(value: object) -> str:
    """A text argument as sent by the UI or any API client (None, numbers, ...), stripped."""
    return "" if value is None else str(value).strip()


def request_round(trainer, token: str | None, request: object = None) -> str:
    try:
        started = _service(trainer).request_round(_text(token), request)
    except NotAuthorised as exc:
        raise refusal(str(exc), "admin redistill") from None
    return "Re-distillation started." if started else "A re-distillation round is already running."


def rollback(trainer, token: str | None, version: str | None, request: object = None) -> str:
    try:
        served = _service(trainer).rollback(_text(token), _text(version) or None, request)
    except NotAuthorised as exc:
        raise refusal(str(exc), "admin rollback") from None
    except ValueError as exc:
        raise refusal(str(exc), "admin rollback") from None
    return f"Now serving: {served}"


def check_token(guard: AdminGuard, token: object, request: object, where: str) -> None:
    """Refuse (``gr.Error``, one log line) unless ``token`` is the admin token; see ``space.services.admin_auth``."""
    try:
        guard.check(token, request)
    except NotAuthorised as exc:
        raise refusal(str(exc), where) from None


def moderate(moderation, guard: AdminGuard, token: str | None, image_id: str | None, decision: str | None,
             request: object = None) -> dict:
    """Approve or reject a contributed photo; with no image id, list what waits for a decision."""
    from space.services.moderation import ModerationError

    check_token(guard, token, request, "admin moderate")
    if not _text(image_id):
        return {"pending": moderation.pending(), "flagged": moderation.flagged()}
    try:
        return {"image_id": _text(image_id), "status": moderation.decide(_text(image_id), _text(decision))}
    except ModerationError as exc:
        raise refusal(str(exc), "admin moderate") from None


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
