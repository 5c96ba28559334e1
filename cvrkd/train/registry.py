"""Model registry: every re-distilled student, every run, and which one is served.

Layout (all writes atomic; the run log is append-only)::

    registry/
      versions/<version>/      a student checkpoint (safetensors + config.json)
      runs.jsonl               one record per re-distillation run, whatever the decision
      current.json             {"version": ..., "history": [...]}: the served version

With no ``current.json`` the shipped bundle's student is served. Promotion and
rollback rewrite ``current.json`` with one ``os.replace``, so a crash leaves
either the old or the new pointer, never a broken one.
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from cvrkd.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from cvrkd.model import CVRKDNet


class RegistryError(RuntimeError):
    """Unknown version, or nothing to roll back to."""


class ModelRegistry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.runs_file = self.root / "runs.jsonl"
        self.pointer = self.root / "current.json"

    # ------------------------------------------------------------------ versions
    def add(self, network: CVRKDNet, info: CheckpointInfo) -> str:
        """Store a candidate (not served until promoted); returns its version."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        staging = self.versions_dir / f".incoming-{os.getpid()}"
        version = save_checkpoint(network, info, staging)
        final = self.versions_dir / version
        if final.exists():
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
        else:
            os.replace(staging, final)
        return version

    def versions(self) -> list[str]:
        if not self.versions_dir.exists():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if not p.name.startswith("."))

    def path(self, version: str) -> Path:
        folder = self.versions_dir / version
        if not (folder / "config.json").is_file():
            raise RegistryError(f"no version {version!r} in {self.root}")
        return folder

    # ------------------------------------------------------------------ serving
    def _state(self) -> dict:
        if not self.pointer.is_file():
            return {"version": None, "history": []}
        return json.loads(self.pointer.read_text())

    def current(self) -> str | None:
        """The served version, or None while the shipped model is served."""
        return self._state()["version"]

    def current_path(self) -> Path | None:
        version = self.current()
        return self.path(version) if version else None

    def history(self) -> list[dict]:
        return self._state()["history"]

    def promote(self, version: str, reason: str = "promoted") -> None:
        load_checkpoint(self.path(version), expected_role="student")  # verify before serving
        state = self._state()
        state["history"].append({"version": version, "at": _now(), "reason": reason,
                                 "previous": state["version"]})
        state["version"] = version
        _atomic_write(self.pointer, json.dumps(state, indent=2))

    def rollback(self, version: str | None = None) -> str | None:
        """Serve ``version`` (any stored one), or the one served before the current one.

        Rolling back past the first promotion serves the shipped model again (None).
        """
        state = self._state()
        if version is None:
            if not state["history"]:
                raise RegistryError("nothing to roll back: the shipped model is served")
            version = state["history"][-1]["previous"]
        elif version not in self.versions():
            raise RegistryError(f"no version {version!r} in {self.root}")
        state["history"].append({"version": version, "at": _now(), "reason": "rollback",
                                 "previous": state["version"]})
        state["version"] = version
        _atomic_write(self.pointer, json.dumps(state, indent=2))
        return version

    # --------------------------------------------------------------------- runs
    def record_run(self, record: dict) -> None:
        """Append one run record; flushed and fsynced so an acknowledged run is never lost."""
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"recorded_at": _now(), **record}) + "\n"
        descriptor = os.open(self.runs_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(descriptor, line.encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def runs(self) -> list[dict]:
        if not self.runs_file.exists():
            return []
        records = []
        for line in self.runs_file.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line from a crash mid-append
        return records


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)
