"""Rough edges a new user met in a real browser (headless Chromium), on an app with no votes yet.

* A file that is not an image left a broken preview in the upload box.
* The previous score stayed on screen under "processing" while a new job ran.
* Each refused input wrote a stack trace to the server log.
* The Leaderboard showed empty chart placeholders before any votes.
"""
from __future__ import annotations

import logging
import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

pytestmark = pytest.mark.browser


def test_leaderboard_explains_itself_before_any_votes(plain_app, page):
    _, url = plain_app
    page.goto(url)
    page.get_by_role("tab", name="Leaderboard").click()
    page.wait_for_function("() => document.querySelector('#leaderboard-summary')"
                           "?.innerText.includes('No judgements yet')")
    assert "Rate" in page.inner_text("#leaderboard-summary")
    for chart in ("#leaderboard-ranking", "#leaderboard-calibration", "#leaderboard-estimates"):
        assert not page.locator(chart).is_visible(), chart


def test_uploads_that_cannot_be_previewed_leave_no_broken_preview(plain_app, page, bad_inputs, good_inputs,
                                                                   tmp_path, caplog, capfd):
    from PIL import Image

    _, url = plain_app
    disguised = tmp_path / "holiday.png"  # text with an image's name: the browser accepts it
    disguised.write_bytes(bad_inputs["not_an_image"].read_bytes())
    for bad, message in ((disguised, "not an image file"), (bad_inputs["truncated"], "truncated or corrupt")):
        page.goto(url)
        with caplog.at_level(logging.INFO, logger="space.refused"):
            page.set_input_files("#score-image input[type=file]", str(bad))
            page.wait_for_function("() => document.querySelector('#score-result')?.innerText.includes('not used')")
        assert message in page.inner_text("#score-result")
        page.wait_for_function("() => !document.querySelector('#score-image img')")  # the file was dropped
    lines = [r for r in caplog.records if r.name == "space.refused"]
    assert len(lines) == 2 and "holiday.png" in lines[0].getMessage()
    page.set_input_files("#score-image input[type=file]", str(good_inputs["non_square"]))  # the box works again
    page.wait_for_selector("#score-image img")
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)
    assert "Traceback" not in capfd.readouterr().err

    tiff = tmp_path / "scan.tif"  # a real image that browsers cannot display
    Image.open(good_inputs["non_square"]).save(tiff)
    page.goto(url)
    page.set_input_files("#score-image input[type=file]", str(tiff))
    page.wait_for_selector("#score-image .no-preview")  # said plainly instead of a broken image
    assert not page.locator("#score-image img").is_visible()
    page.click("#score-button")
    assert float(page.wait_for_selector("#score-result .score-value").inner_text().split()[0]) >= 0


def test_a_new_score_clears_the_previous_result_while_it_runs(plain_app, page, good_inputs):
    _, url = plain_app
    page.goto(url)
    page.set_input_files("#score-image input[type=file]", str(good_inputs["non_square"]))
    page.wait_for_selector("#score-image img")
    page.click("#score-button")
    page.wait_for_selector("#score-result .score-value")
    old = page.inner_text("#score-result")  # its score and "Scored in ... s" line mark the old result
    page.evaluate("""() => {
        window.seen = [];
        const box = document.querySelector('#score-result');
        new MutationObserver(() => window.seen.push(box.innerText)).observe(box, {subtree: true, childList: true,
                                                                                 characterData: true});
    }""")
    page.set_input_files("#score-image input[type=file]", str(good_inputs["grayscale"]))
    page.wait_for_selector("#score-image img")
    page.click("#score-button")
    page.wait_for_function("() => window.seen.some(t => t.includes('Scoring'))"
                           " && document.querySelector('#score-result .score-value')")
    seen = page.evaluate("() => window.seen")
    busy = [text for text in seen if "processing" in text or "queue:" in text]
    assert busy and all(old not in text for text in busy), seen  # never the old result under "processing"
    assert any("Scoring" in text for text in busy)
