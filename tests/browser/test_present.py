"""The presenter view (``/present/NAME``) in headless Chromium: full screen without the app's tabs, the QR
code to join, live numbers, and a ranking hidden until the presenter reveals it."""
from __future__ import annotations

import math
import os
import time

import httpx
import pytest

from annotations.__main__ import main as cli
from tests.helpers.app import launched, model_options
from tests.helpers.browser import new_page
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytestmark = pytest.mark.browser
PROJECTOR = {"width": 1920, "height": 1080}


@pytest.fixture(scope="module")
def talk(untrained_bundle, tmp_path_factory):
    from space.app import create_app

    photos = tmp_path_factory.mktemp("present-photos")
    jpeg_versions(photos)
    app = create_app(data_dir=tmp_path_factory.mktemp("present"), score_pool=False, min_answer_ms=0,
                     **model_options(untrained_bundle))
    assert cli(["campaign", "create", "talk", "--images", str(photos), "--title", "Which JPEG looks better?",
                "--data-dir", str(app.services.data_dir)]) == 0
    with launched(app) as url:
        yield app, url


def vote(url: str, times: int) -> None:
    """``times`` answers from as many raters as it takes: a rater is never shown a pair twice, so one
    runs out of the talk's six pairs."""
    answered = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        for session in range(times):
            rater = client.post("api/rate/rater", headers={"x-rating-session": f"s-present-{session}"}).json()
            while answered < times:
                pair = client.post("api/rate/next_pair", json={"rater_id": rater["rater_id"],
                                                               "campaign": "talk"}).json()
                if pair.get("done"):
                    break
                answer = client.post("api/rate/vote", json={"rater_id": rater["rater_id"], "choice": "left",
                                                            "ticket": pair["ticket"]["ticket"]})
                assert answer.status_code == 200, answer.text
                answered += 1
            if answered == times:
                return
    raise AssertionError(f"only {answered} of {times} answers were taken")


def test_the_presenter_view_shows_the_qr_code_and_hides_results_until_revealed(talk, browser, shots):
    app, url = talk
    vote(url, 3)
    data = str(app.services.data_dir)
    assert cli(["campaign", "hide", "talk", "--data-dir", data]) == 0
    page = new_page(browser, viewport=PROJECTOR)
    page.goto(url + "present/talk")
    assert page.locator("#title").inner_text() == "Which JPEG looks better?"
    assert page.locator("#main-tabs, gradio-app, [role=tablist]").count() == 0  # none of the app's tabs
    page.wait_for_function("document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0")
    box = page.locator("#qr").bounding_box()
    assert box["width"] >= 400 and box["y"] + box["height"] <= PROJECTOR["height"]  # big, and on screen
    assert page.locator("#link").inner_text() == url + "rate/talk"
    qr = httpx.get(url + "present/talk/qr.png", timeout=60)
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/png"
    page.wait_for_function("document.getElementById('votes').textContent === '3'")
    assert page.locator("#hidden").is_visible()
    assert "hidden until the presenter reveals them" in page.locator("#hidden").inner_text()
    assert page.locator("#ranking li").count() == 0
    page.screenshot(path=str(shots / "present-hidden.png"))

    assert cli(["campaign", "reveal", "talk", "--data-dir", data]) == 0
    page.wait_for_selector("#ranking li")  # the next poll shows the ranking, without a reload
    assert not page.locator("#hidden").is_visible()
    assert page.locator("#fullscreen").is_visible()
    page.screenshot(path=str(shots / "present.png"))


def test_an_unknown_campaign_has_no_presenter_view(talk):
    app, url = talk
    answer = httpx.get(url + "present/nope", timeout=60)
    assert answer.status_code == 404 and "unknown campaign" in answer.text
    assert httpx.get(url + "present/nope/qr.png", timeout=60).status_code == 404


def test_the_presenters_ranking_shows_thumbnails_and_scores_on_0_to_100_with_intervals(talk, browser, shots):
    """Before, each row was a file name and a raw logit ("kodim01.png · 0.15")."""
    app, url = talk
    vote(url, 9)
    ranked = settled_live(app, url)["ranking"]
    assert ranked and all(0 <= row["score_100"] <= 100 for row in ranked)
    assert [row["score_100"] for row in ranked] == sorted((row["score_100"] for row in ranked), reverse=True)
    with_interval = [row for row in ranked if row["ci_low"] is not None]
    assert all(row["ci_low_100"] <= row["score_100"] <= row["ci_high_100"] for row in with_interval)
    page = new_page(browser, viewport=PROJECTOR)
    page.goto(url + "present/talk")
    page.wait_for_selector("#ranking li")
    page.wait_for_function("() => [...document.querySelectorAll('#ranking .thumb')]"
                           ".every(image => image.complete && image.naturalWidth > 0)")
    rows = page.locator("#ranking li")
    assert rows.count() == len(ranked)
    for k, row in enumerate(ranked):
        shown = rows.nth(k)
        assert shown.locator(".name").inner_text() == f"{row['rank']}. {row['title']}"
        assert shown.locator(".score b").inner_text() == str(js_round(row["score_100"]))
        interval = shown.locator(".interval").inner_text()
        if row["ci_low_100"] is None:
            assert interval == "few votes"
        else:
            assert interval == f"{js_round(row['ci_low_100'])}–{js_round(row['ci_high_100'])}"
            assert shown.locator(".range").count() == 1
    box = page.locator("#scale").bounding_box()
    assert box["y"] + box["height"] <= PROJECTOR["height"]  # the whole ranking on the projector
    assert "0–100" in page.locator("#scale").inner_text()
    page.screenshot(path=str(shots / "present-ranking.png"))


def settled_live(app, url: str) -> dict:
    """``/live`` once its snapshot holds every judgement written: it rebuilds in the background at most
    every few seconds, so a poll right after voting may still show the previous ranking, and the page
    loaded next a newer one."""
    written = len(app.services.store.judgements("talk"))
    deadline = time.monotonic() + 120
    while True:
        live = httpx.get(url + "api/rate/live/talk", timeout=60).json()
        if live["n_judgements"] == written:
            return live
        assert time.monotonic() < deadline, f"the live snapshot shows {live['n_judgements']} of {written} judgements"
        app.services.live.wait()
        time.sleep(0.5)


def js_round(value: float) -> int:
    """``Math.round`` as the page rounds (half up), not Python's half to even."""
    return math.floor(value + 0.5)


def test_the_live_scale_puts_the_average_image_at_50_and_keeps_the_order():
    import numpy as np

    from space.services.live import on_100

    logits = np.array([2.0, 0.5, -0.5, -2.0])
    shown = on_100(logits, float(logits.mean()))
    assert shown[1] + shown[2] == 100.0 and list(shown) == sorted(shown, reverse=True)
    assert 0 < shown[-1] < shown[0] < 100


def test_the_top_12_and_the_scale_fit_a_projector(talk, browser):
    app, url = talk
    rating = app.services.rating
    for k in range(20):  # the built-in pool: more images than the presenter shows
        ticket = rating.next_pair(f"anon-fit-{k % 4}", None)
        rating.vote(f"anon-fit-{k % 4}", ticket.ticket_id, "left")
    for screen in (PROJECTOR, {"width": 1280, "height": 720}, {"width": 1024, "height": 768}):
        page = new_page(browser, viewport=screen)
        page.goto(url + "present/default")
        page.wait_for_function("() => document.querySelectorAll('#ranking li').length === 12")
        box = page.locator("#scale").bounding_box()
        assert box["y"] + box["height"] <= screen["height"], screen
        assert page.evaluate("() => document.scrollingElement.scrollHeight") <= screen["height"], screen
