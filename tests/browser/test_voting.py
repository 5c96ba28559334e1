"""A double tap never answers a pair its rater did not see, and a rater can undo the last answer: the
rating page (``/rate/NAME``) and the app's Rate tab in headless Chromium, with the app's default rules.

The network is slowed (Chromium's own emulation), so the next pair's images take a while to arrive, as on
a venue's Wi-Fi. Before: the rating page's buttons answered again while the next pair was still loading,
and a second click on the Rate tab, once its vote was back, answered the next pair unseen; nothing could be
undone.
"""
from __future__ import annotations

import os
import re

import pytest

from tests.helpers.app import launched, model_options
from tests.helpers.browser import new_page
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

pytestmark = pytest.mark.browser
SLOW_NETWORK = {"offline": False, "latency": 700, "downloadThroughput": 2_000_000, "uploadThroughput": 2_000_000}
"""Every request waits 0.7 s: long enough to tap again while the next pair loads."""


@pytest.fixture(scope="module")
def app_url(untrained_bundle, tmp_path_factory):
    from annotations.campaigns import Settings
    from space.app import create_app

    photos = tmp_path_factory.mktemp("voting-photos")
    jpeg_versions(photos, photos=("cat", "coffee", "astronaut"))
    app = create_app(data_dir=tmp_path_factory.mktemp("browser-voting"), score_pool=False,
                     **model_options(untrained_bundle))
    app.services.campaigns.create("talk", photos, app.services.store, Settings(audience=100))
    with launched(app) as url:
        yield app, url


def slow(page) -> None:
    page.context.new_cdp_session(page).send("Network.emulateNetworkConditions", SLOW_NETWORK)


def look(page, app) -> None:
    """Take as long as a person needs to compare the pair (the server refuses faster answers)."""
    page.wait_for_timeout(app.services.config.min_answer_ms + 100)


def standing(app, rater: str) -> int:
    return int((app.services.store.judgements()["rater_id"] == rater).sum())


def test_the_rating_page_locks_its_buttons_until_the_next_pair_is_shown(app_url, browser):
    app, url = app_url
    page = new_page(browser, viewport={"width": 390, "height": 844})
    page.goto(f"{url}rate/talk")
    page.wait_for_function("() => document.body.dataset.ready")
    slow(page)
    look(page, app)
    first = page.evaluate("() => document.body.dataset.ready")
    sources = "() => [...document.querySelectorAll('main img')].map(img => img.src).join(' ')"
    old = page.evaluate(sources)
    page.click("#vote-left")
    page.wait_for_function(f"old => ({sources})() !== old", arg=old)
    # the next pair is on its way but not shown: every button is locked, and taps answer nothing
    assert page.evaluate("() => [...document.querySelectorAll('nav button')].every(b => b.disabled)")
    page.locator("#right").dblclick()
    page.locator("#vote-right").click(force=True)
    page.wait_for_function("old => document.body.dataset.ready && document.body.dataset.ready !== old", arg=first)
    assert page.evaluate("() => [...document.querySelectorAll('nav button')].every(b => !b.disabled)")
    rater = app.services.raters.verify(page.evaluate("() => localStorage.getItem('cvrkd-rater')"))
    assert page.evaluate("() => document.body.dataset.votes") == "1" and standing(app, rater) == 1


def test_the_rating_page_undoes_the_last_answer_and_shows_its_pair_again(app_url, browser):
    app, url = app_url
    page = new_page(browser, viewport={"width": 390, "height": 844})
    page.goto(f"{url}rate/talk")
    page.wait_for_function("() => document.body.dataset.ready")
    assert page.locator("#undo").is_hidden()
    shown = page.evaluate("() => [...document.querySelectorAll('main img')].map(img => img.src)")
    look(page, app)
    page.click("#vote-left")
    page.wait_for_function("() => document.body.dataset.votes === '1'")
    rater = app.services.raters.verify(page.evaluate("() => localStorage.getItem('cvrkd-rater')"))
    assert standing(app, rater) == 1
    page.locator("#undo").click()
    page.wait_for_function("() => document.body.dataset.undone === '1'")
    assert page.evaluate("() => [...document.querySelectorAll('main img')].map(img => img.src)") == shown
    assert "taken back" in page.inner_text("#problem") and "judged 0 pairs" in page.inner_text("#count")
    assert standing(app, rater) == 0 and page.locator("#undo").is_hidden()
    look(page, app)
    page.click("#vote-right")  # the pair shown again is answered anew
    page.wait_for_function("() => document.body.dataset.votes === '2'")
    assert standing(app, rater) == 1


def test_the_rate_tab_locks_its_buttons_until_the_next_pair_is_shown_and_undoes(app_url, browser):
    app, url = app_url
    page = new_page(browser)
    page.goto(f"{url}?campaign=talk")
    page.wait_for_selector("#rate-left-image img")
    page.wait_for_function("() => !document.querySelector('#rate-left').disabled")
    rater = re.search(r"anon-[0-9a-f]+", page.inner_text("#rate-count")).group(0)
    slow(page)
    look(page, app)
    old = page.evaluate("() => document.querySelector('#rate-left-image img').src")
    page.click("#rate-left")
    page.wait_for_function("() => document.querySelector('#rate-status').innerText.includes('Saved')")
    locked = "() => ['#rate-left', '#rate-right', '#rate-undo'].every(s => document.querySelector(s).disabled)"
    assert page.evaluate(locked)  # until the next pair's images are shown
    page.locator("#rate-right-image img").click(force=True)  # a second tap while the next pair loads
    page.locator("#rate-right").click(force=True)
    page.wait_for_function("old => document.querySelector('#rate-left-image img').src !== old", arg=old)
    page.wait_for_function("() => !document.querySelector('#rate-left').disabled")
    page.wait_for_timeout(1500)  # any request the second tap could have sent has arrived by now
    assert standing(app, rater) == 1 and "judged 1 pair" in page.inner_text("#rate-count")

    page.click("#rate-undo")
    page.wait_for_function("() => document.querySelector('#rate-status').innerText.includes('taken back')")
    assert standing(app, rater) == 0 and "judged 0 pairs" in page.inner_text("#rate-count")
