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


GATE_COLUMNS = ["started", "run", "design", "candidate", "decision", "agreement with people: served → candidate",
                "agreement gain [95% interval]", "likelihood gain per judgement [95% interval]",
                "synthetic check SRCC: served → candidate",
                "known-order pairs kept: served → candidate", "judgements fitted / held out", "minutes", "reason"]
"""The Model tab's view of each round: its candidate and every figure the gate decided on."""


def gate_table(registry: Path) -> pd.DataFrame:
    """Each recorded round, newest first, as people read it: the candidate, whether it was promoted,
    and the gate's figures (agreement with held-out judgements, and the gain in their likelihood
    that decides, each with its interval; the synthetic check; the known-order check); a figure a
    refused round never measured reads "—"."""
    records = [r for r in ModelRegistry(registry).runs() if isinstance(r, dict)]
    return pd.DataFrame([_gate_row(r) for r in records[::-1]], columns=GATE_COLUMNS)


def _gate_row(record: dict) -> list[str]:
    base, candidate = record.get("base_agreement"), record.get("candidate_agreement")
    low, high = (record.get("agreement_gain_ci") or [None, None])[:2]
    gain = "—" if not _measured(base, candidate, low, high) else \
        f"{100 * (candidate - base):+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}]"
    likelihood = record.get("likelihood_gain")
    likely_low, likely_high = (record.get("likelihood_gain_ci") or [None, None])[:2]
    likelihood_gain = "—" if not _measured(likelihood, likely_low, likely_high) else \
        f"{likelihood:+.4f} [{likely_low:+.4f}, {likely_high:+.4f}]"
    known = record.get("n_known_order") or 0
    fitted = record.get("n_judgements") if record.get("fitted_on") == "every judgement" else record.get("n_train")
    started = record.get("started_at")
    return [pd.Timestamp(started, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M") if _measured(started) else "—",
            str(record.get("run_id", "—")), str(record.get("design", "—")), str(record.get("candidate_version") or "—"),
            str(record.get("decision", "—")),
            _pair(base, candidate, "{:.1%}"), gain, likelihood_gain,
            _pair(record.get("base_synthetic_srcc"), record.get("candidate_synthetic_srcc"), "{:.3f}"),
            (_pair(record.get("base_known_order"), record.get("candidate_known_order"), "{:.0%}") + f" of {known}")
            if known else "—",
            f"{fitted} / {record.get('n_validation')}" if _measured(fitted, record.get("n_validation")) else "—",
            f"{record['seconds'] / 60:.1f}" if _measured(record.get("seconds")) else "—",
            str(record.get("reason", ""))]


def _measured(*values) -> bool:
    return all(isinstance(v, (int, float)) and v == v for v in values)  # v == v: not NaN


def _pair(served, candidate, pattern: str) -> str:
    if not _measured(served, candidate):
        return "—"
    return f"{pattern.format(served)} → {pattern.format(candidate)}"


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
