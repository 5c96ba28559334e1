"""What the Model tab shows: the checkpoint's own record, the model card, the run history.

Everything is read from what the training side writes (``config.json`` of each
checkpoint, ``docs/model.md``, the run log of the model registry under
``<data>/registry``); nothing here is computed or guessed, and a missing file
gives an empty state.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cvrkd import ModelRegistry
from space.services.model_service import ModelService

RUN_COLUMNS = ["recorded_at", "run_id", "decision", "reason", "base_version", "candidate_version",
               "n_judgements", "n_train", "n_validation", "seconds"]
"""Preferred column order for the runs table; other keys a run records follow these."""
HIDDEN_RUN_KEYS = {"config", "validation_scores"}
"""Too wide for a table (the settings, every validation image's two scores); the full record stays in
``runs.jsonl``."""


def summary(model: ModelService) -> dict:
    """Version, backbone, trained flag, patch layout and the training record of each role.

    Anyone may read it (``/model_info``, the Model tab), so it names no place on the server's disk.
    """
    if not model.available:
        return {"available": False, "reason": model.banner()}
    out: dict = {"available": True}
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
            patches = _views(r["patches"])
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
    """Re-distillation runs recorded in the model registry (``cvrkd.train.registry``), newest first."""
    rows = [{k: _fmt(v) if isinstance(v, (dict, list)) else v for k, v in record.items()
             if k not in HIDDEN_RUN_KEYS} for record in ModelRegistry(registry).runs() if isinstance(record, dict)]
    if not rows:
        return pd.DataFrame(columns=RUN_COLUMNS)
    frame = pd.DataFrame(rows[::-1])
    if "started_at" in frame and pd.api.types.is_numeric_dtype(frame["started_at"]):
        frame["started_at"] = pd.to_datetime(frame["started_at"], unit="s", utc=True).dt.strftime("%Y-%m-%d %H:%M")
    ordered = [c for c in RUN_COLUMNS if c in frame.columns] + [c for c in frame.columns if c not in RUN_COLUMNS]
    return frame[ordered]


def _views(patches: dict) -> str:
    """What the network reads, in words: grid patches and/or the whole image."""
    grid = f"{patches.get('num_patches')} × {patches.get('size')} px"
    if not patches.get("whole_view"):
        return grid
    return "the whole image only" if not patches.get("num_patches") else grid + " + the whole image"


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
