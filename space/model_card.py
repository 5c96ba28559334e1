"""What the Model tab shows: the checkpoint's own record, the model card, the run history.

Everything is read from files the training side writes (``config.json`` of each
checkpoint, ``docs/model.md``, ``<data>/registry/runs.jsonl``); nothing here
is computed or guessed, and a missing file gives an empty state.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from space.model_service import ModelService

logger = logging.getLogger(__name__)

RUN_COLUMNS = ["started_at", "finished_at", "status", "judgements", "base_version", "candidate_version",
               "validation", "promoted"]
"""Preferred column order for the runs table; other keys a run records follow these."""


def summary(model: ModelService) -> dict:
    """Version, backbone, trained flag, patch layout and the training record of each role."""
    if not model.available:
        return {"available": False, "reason": model.banner()}
    out: dict = {"available": True, "model_dir": str(model.model_dir)}
    for role, info in model.infos().items():
        out[role] = {
            "version": info.version, "backbone": info.backbone, "trained": info.trained,
            "patches": info.patches.to_dict(), "extra": info.extra,
        }
    return out


def summary_markdown(model: ModelService) -> str:
    """The same record as a short readable table."""
    data = summary(model)
    if not data["available"]:
        return f"**No model in service.** {data['reason']}"
    lines = ["| | version | backbone | trained | patches |", "|---|---|---|---|---|"]
    for role in ("student", "teacher"):
        if role in data:
            r = data[role]
            patches = f"{r['patches'].get('num_patches')} × {r['patches'].get('size')} px"
            trained = "yes" if r["trained"] else "**NO (random weights)**"
            lines.append(f"| {role} | `{r['version']}` | {r['backbone']} | {trained} | {patches} |")
    metrics = _flatten(data["student"]["extra"])
    if metrics:
        lines += ["", "**Training record of the student** (from its `config.json`):", "",
                  "| key | value |", "|---|---|"]
        lines += [f"| {key} | {_fmt(value)} |" for key, value in metrics.items()]
    return "\n".join(lines)


def model_doc(repo_root: Path) -> str:
    """``docs/model.md`` (the model card) if the checkout has one."""
    path = Path(repo_root) / "docs" / "model.md"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def runs(registry: Path) -> pd.DataFrame:
    """Re-distillation runs from ``runs.jsonl`` (one JSON object per line; bad lines skipped)."""
    path = Path(registry) / "runs.jsonl"
    rows = []
    if path.is_file():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s:%d is not JSON; skipped", path, number)
                continue
            if isinstance(row, dict):
                rows.append({k: _fmt(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    frame = pd.DataFrame(rows)
    ordered = [c for c in RUN_COLUMNS if c in frame.columns] + [c for c in frame.columns if c not in RUN_COLUMNS]
    return frame[ordered] if rows else pd.DataFrame(columns=RUN_COLUMNS)


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)
