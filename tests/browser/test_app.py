"""The app in headless Chromium: upload and score, rate with the keyboard, one screenshot per tab.

Screenshots go to the test's output folder; with ``CVRKD_SCREENSHOT_DIR`` set
they are also copied there (``docs/screenshots`` refreshes the README's).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers.app import model_options, free_port

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TABS = ("Score", "Rate", "Leaderboard", "Model")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(untrained_bundle, tmp_path_factory):
    from space.app import create_app

    app = create_app(data_dir=tmp_path_factory.getbasetemp() / "app-data", score_pool=False,
                     **model_options(untrained_bundle),
                     min_answer_ms=0)  # answers as fast as a script: the human floor is tested in test_vote_rules.py
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                           quiet=True)
    yield app, url
    app.close()


def test_score_rate_with_keys_and_screenshot_every_tab(app_url, page, good_inputs, tmp_path):
    app, url = app_url
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page.goto(url)

    page.set_input_files("#score-image input[type=file]", str(good_inputs["16bit"]))
    page.wait_for_selector("#score-image img")
    page.click("#score-button")
    score = page.wait_for_selector("#score-result .score-value").inner_text()
    assert 0 <= float(score.split()[0]) <= 100
    assert "converted from 16-bit" in page.inner_text("#score-result")
    page.wait_for_selector("#score-map .js-plotly-plot .colorbar")
    page.screenshot(path=shots / "score.png", full_page=True)

    page.get_by_role("tab", name="Rate").click()
    page.wait_for_selector("#rate-left-image img")
    page.wait_for_selector("#rate-right-image img")
    counter = page.locator("#rate-count")
    rater = re.search(r"anon-[0-9a-f]+", counter.inner_text()).group(0)
    before = app.services.rating.count(rater)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        "n => document.querySelector('#rate-count').innerText.includes(`judged ${n} pair`)", arg=before + 1)
    stored = app.services.store.judgements()
    assert (stored["rater_id"] == rater).sum() == before + 1
    page.wait_for_selector("#rate-left-image img")
    page.screenshot(path=shots / "rate.png", full_page=True)

    page.get_by_role("tab", name="Leaderboard").click()
    page.wait_for_function("() => document.querySelector('#leaderboard-summary').innerText.includes('judgement')")
    page.wait_for_selector("#leaderboard-ranking .js-plotly-plot")
    page.wait_for_function("() => document.querySelector('#leaderboard-assisted').innerText.includes('uman-only')")
    assert app.services.insights.current().estimates.table["human_score"].notna().any()
    page.screenshot(path=shots / "leaderboard.png", full_page=True)

    _record_a_round(app)
    page.get_by_role("tab", name="Model").click()
    page.wait_for_function("() => document.querySelector('#model-trainer').innerText.includes('Trainer')")
    runs = page.wait_for_selector("#model-runs")
    page.wait_for_function("() => document.querySelector('#model-runs').innerText.includes('+1.7 points')")
    assert "promoted" in runs.inner_text() and "0.759 → 0.761" in runs.inner_text()
    page.screenshot(path=shots / "model.png", full_page=True)

    page.reload()  # the anonymous rater id lives in the browser, so it survives a reload
    page.get_by_role("tab", name="Rate").click()
    page.wait_for_function("n => document.querySelector('#rate-count').innerText.includes(`judged ${n} pair`)",
                           arg=before + 1)
    assert rater in counter.inner_text()

    assert sorted(p.name for p in shots.iterdir()) == sorted(f"{t.lower()}.png" for t in TABS)
    target = os.environ.get("CVRKD_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, Path(target) / shot.name)


def _record_a_round(app) -> None:
    """A round's record as the trainer writes it (the figures of a bench round: docs/results.md), so the
    Model tab has a candidate and its gate figures to show."""
    from cvrkd.train.registry import ModelRegistry

    ModelRegistry(app.services.data_dir / "registry").record_run({
        "run_id": "example", "started_at": 1.8e9, "design": "readout", "decision": "promoted",
        "candidate_version": "0123456789ab", "reason": "held-out likelihood +0.0085 per judgement (95% CI +0.0055..+0.0113); agreement +0.017",
        "base_agreement": 0.653, "candidate_agreement": 0.670, "agreement_gain_ci": [0.007, 0.028],
        "likelihood_gain": 0.0085, "likelihood_gain_ci": [0.0055, 0.0113],
        "base_synthetic_srcc": 0.759, "candidate_synthetic_srcc": 0.761, "base_known_order": 1.0,
        "candidate_known_order": 1.0, "n_known_order": 24, "fitted_on": "every judgement", "n_judgements": 4000,
        "n_train": 2240, "n_validation": 1760, "seconds": 120.0})
