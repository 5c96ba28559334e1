"""The talk load scenario end to end with a tiny audience (the full run is documented in
docs/performance_load.md): it starts ``python app.py``, rates the campaign and reports."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
@pytest.mark.parametrize("via", ["page", "gradio"])
def test_talk_scenario_runs_and_every_acknowledged_vote_is_stored(tmp_path, via):
    report = tmp_path / "talk.md"
    run = subprocess.run([sys.executable, "bench/load.py", "--scenario", "talk", "--via", via, "--audience", "6",
                          "--join", "3",
                          "--duration", "10", "--pollers", "1", "--report", str(report)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    text = report.read_text()
    assert "| `/next_pair` |" in text and "| `/vote` |" in text and "| `/live` |" in text
    assert "acknowledged but missing: **0**" in text and "stored but never acknowledged: **0**" in text
