"""Start ``python app.py`` in a child process for a load bench, and wait until it answers.

Shared by ``bench/load.py`` and ``bench/talk.py``. Every simulated client
shares 127.0.0.1, as a room behind one router does, so the app's own limits
apply: none is raised from the environment.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from space.services.config import NEW_RATERS_PER_IP_ENV, VOTES_PER_IP_ENV

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "cvrkd" / "weights"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def model_arguments(model: Path | None, scratch: Path) -> tuple[list[str], str]:
    """app.py flags for the model to serve, and a description for the report."""
    if model is not None:
        return ["--model", str(model)], f"`{model}`"
    if (SHIPPED / "student" / "config.json").is_file():
        return ["--model", str(SHIPPED)], "the installed model (`cvrkd/weights`)"
    from cvrkd.checkpoint import save_checkpoint, untrained

    for role in ("teacher", "student"):
        save_checkpoint(*untrained(role, seed=0), scratch / "model" / role)
    return (["--model", str(scratch / "model"), "--allow-untrained"],
            "a random-init bundle of the shipped architecture (no trained model installed yet)")


def start_app(flags: list[str], data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    # every simulated client shares 127.0.0.1, as a room behind one router does: the app's own limits apply
    # (a talk's campaign is created for its audience); none is raised from the environment
    env = {key: value for key, value in os.environ.items() if key not in (VOTES_PER_IP_ENV, NEW_RATERS_PER_IP_ENV)}
    env.update({"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"})
    command = [sys.executable, "app.py", "--data-dir", str(data_dir), *flags]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the app exited during start-up")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError("the app did not start")
