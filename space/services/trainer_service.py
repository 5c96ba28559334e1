"""Background re-distillation for the running app.

Starts one round (a separate, nice-19, single-threaded process running
``python -m cvrkd redistill``) when enough new judgements have arrived or when an
admin asks, and hot-swaps the served student when the round promoted a new
version. Only a caller presenting ``$CVRKD_ADMIN_TOKEN`` can trigger a round or
roll back; with no token configured, nobody can.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cvrkd import ModelRegistry, RegistryError, start_background_round
from space.services.admin_auth import AdminGuard
from space.services.clients import Client

MIN_NEW_ENV = "CVRKD_REDISTILL_EVERY"
FAILURE_LINES = 8
"""Lines of a failed round's output shown on the Model tab: a Python traceback's last frames and error."""


class RollbackRefused(ValueError):
    """No such version to serve, or nothing to roll back to; the served model is unchanged."""


@dataclass
class TrainerState:
    running: bool
    started_at: float | None
    last_exit_code: int | None
    judgements_at_last_round: int
    served_version: str
    message: str
    failure: str = ""
    """The last lines the failed round wrote (its error), empty unless the last round failed."""


class TrainerService:
    """Owns the trainer process and the hot-swap; safe to call from request threads."""

    def __init__(self, *, store_dir: Path, registry_dir: Path, images_dir: Path, model_dir: Path,
                 cache_dir: Path, count_judgements: Callable[[], int],
                 swap_student: Callable[[Path], str], served_version: Callable[[], str],
                 min_new_judgements: int | None = None, admin_token: str | None = None,
                 log_file: Path | None = None, gallery_dir: Path | None = None) -> None:
        self.store_dir, self.images_dir, self.model_dir = store_dir, images_dir, model_dir
        self.gallery_dir = gallery_dir
        self.cache_dir, self.log_file = cache_dir, log_file
        self.registry = ModelRegistry(registry_dir)
        self.count_judgements = count_judgements
        self.swap_student, self.served_version = swap_student, served_version
        self.min_new = min_new_judgements or int(os.environ.get(MIN_NEW_ENV, "500"))
        self.guard = AdminGuard(admin_token)
        """The app's admin check (``space.services.container`` hands the same guard to every admin action)."""
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._started_at: float | None = None
        self._last_exit: int | None = None
        self._failure = ""
        self._log_offset = 0
        self._trained_at_count = 0
        self._message = "no trainer running"
        self.sync_served_model()

    # ---------------------------------------------------------------- triggers
    def on_new_judgement(self) -> bool:
        """Called after each vote: start a round when ``min_new`` judgements are new."""
        if self.count_judgements() - self._trained_at_count < self.min_new:
            return False
        return self._start("automatic: enough new judgements")

    def request_round(self, token: object, client: Client | None = None) -> bool:
        """Admin: start a round now; False when one is already running."""
        self.guard.check(token, client)
        return self._start("requested by an admin")

    def rollback(self, token: object, version: object = None, client: Client | None = None) -> str:
        """Admin: serve an earlier version (or the shipped model: empty version)."""
        self.guard.check(token, client)
        try:
            target = self.registry.rollback(str(version or "").strip() or None)
        except RegistryError as exc:
            raise RollbackRefused(str(exc)) from exc
        self.sync_served_model()
        return target or "shipped model"

    def _start(self, reason: str) -> bool:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return False
            self._trained_at_count = self.count_judgements()
            self._log_offset = _size(self.log_file)
            self._failure = ""
            self._process = start_background_round(
                self.store_dir, self.registry.root, images_dir=self.images_dir, model_dir=self.model_dir,
                cache_dir=self.cache_dir, gallery_dir=self.gallery_dir, log_file=self.log_file)
            self._started_at = time.time()
            self._message = f"re-distilling on {self._trained_at_count} judgements ({reason})"
        threading.Thread(target=self._watch, args=(self._process,), daemon=True).start()
        return True

    def _watch(self, process: subprocess.Popen) -> None:
        code = process.wait()
        failure = "" if code == 0 else _tail(self.log_file, self._log_offset)
        with self._lock:
            self._last_exit = code
            self._failure = failure
            reason = failure.splitlines()[-1] if failure else "no log kept"
            self._message = "last round finished" if code == 0 else f"last round failed (exit {code}): {reason}"
        self.sync_served_model()

    # ----------------------------------------------------------------- serving
    def sync_served_model(self) -> None:
        """Serve the registry's current version (hot-swap; in-flight requests are unaffected)."""
        path = self.registry.current_path()
        target = path if path is not None else self.model_dir / "student"
        if _version_of(target) != self.served_version() and (target / "config.json").is_file():
            try:
                self.swap_student(target)
            except Exception as exc:  # noqa: BLE001 - a bad candidate must never take the app down
                self._message = f"kept the served model: {exc}"

    def status(self) -> str:
        """One line for the Model tab."""
        state = self.state()
        return ("running: " if state.running else "") + state.message

    def state(self) -> TrainerState:
        with self._lock:
            running = self._process is not None and self._process.poll() is None
            return TrainerState(running, self._started_at, self._last_exit, self._trained_at_count,
                                self.served_version(), self._message, self._failure)

    def failure(self) -> str:
        """What the last round wrote before it failed (its last lines), for the Model tab; empty otherwise."""
        return self.state().failure

    def wait(self, timeout: float | None = None) -> None:
        """Block until a running round ends (tests, shutdown)."""
        process = self._process
        if process is not None:
            process.wait(timeout)
            time.sleep(0.1)
        self.sync_served_model()


def _size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path is not None else 0
    except OSError:
        return 0


def _tail(log_file: Path | None, offset: int, lines: int = FAILURE_LINES) -> str:
    """The last ``lines`` non-empty lines a round wrote to ``log_file`` after ``offset`` (its error)."""
    if log_file is None:
        return ""
    try:
        with open(log_file, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def _version_of(checkpoint: Path) -> str | None:
    try:
        return json.loads((checkpoint / "config.json").read_text())["weights_sha256"][:12]
    except (OSError, KeyError, ValueError):
        return None
