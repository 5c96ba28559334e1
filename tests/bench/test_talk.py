"""The talk load scenario end to end with a tiny audience, and the two benches that explain its result
(request cost, page weight). Each starts ``python app.py`` and reports; the full runs are in
docs/performance_load.md."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT


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


@pytest.mark.slow
def test_request_cost_bench_reports_both_paths(tmp_path):
    report = tmp_path / "cost.md"
    run = subprocess.run([sys.executable, "bench/request_cost.py", "--calls", "5", "--report", str(report)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rows = [line for line in report.read_text().splitlines() if line.startswith(("| Gradio", "| rating page"))]
    assert len(rows) == 2 and all(float(row.split("|")[-2]) > 0 for row in rows)


@pytest.mark.slow
@pytest.mark.browser
def test_page_weight_bench_counts_what_each_page_downloads(tmp_path):
    report = tmp_path / "weight.md"
    run = subprocess.run([sys.executable, "bench/page_weight.py", "--report", str(report)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line for line in report.read_text().splitlines() if line.startswith("| ")}
    page, app = rows["rating page `/rate/talk`"], rows["full app `/?campaign=talk`"]
    assert "0 (0)" in page.split("|")[3]  # the rating page loads no scripts ...
    assert float(page.split("|")[-2].split("**")[1]) < float(app.split("|")[-2].split("**")[1])  # ... and less
