"""An end for raters (issue 29, item 4) in headless Chromium: once a rater has judged all a campaign asks of
them, the rating page and the app's Rate tab thank them and show no pair.

Before, both served pairs for ever. The campaign here has four images, six pairs: a rater is done once each
was served (with a repeat check or two); the JSON routes, the API and a campaign's limit per rater are tested
in tests/space/test_rater_end.py.
"""
from __future__ import annotations

import os

import pytest

from tests.helpers.app import launched, model_options
from tests.helpers.browser import new_page
from tests.helpers.campaigns import four_images

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(untrained_bundle, tmp_path_factory):
    from annotations.campaigns import Settings
    from space.app import create_app

    app = create_app(data_dir=tmp_path_factory.mktemp("browser-end"), score_pool=False, min_answer_ms=0,
                     **model_options(untrained_bundle))
    app.services.campaigns.create("brief", four_images(tmp_path_factory.mktemp("brief-photos")), app.services.store,
                                  Settings(pairs="any"))
    with launched(app) as url:
        yield app, url


def test_the_rating_page_thanks_a_rater_who_is_done_and_shows_no_pair(app_url, browser, shots):
    _, url = app_url
    page = new_page(browser, viewport={"width": 390, "height": 844})
    page.goto(f"{url}rate/brief")
    done = "() => document.querySelector('#problem').innerText.includes('All done')"
    votes = 0
    while not page.evaluate(done):
        assert votes < 14, "still serving pairs"  # six pairs and a few repeat checks at most
        page.wait_for_function(f"() => ({done})() || (document.body.dataset.ready"
                               " && !document.querySelector('#vote-left').disabled)")
        if page.evaluate(done):
            break
        page.click("#vote-left")
        votes += 1
        page.wait_for_function(f"() => document.body.dataset.votes === '{votes}'")
        page.wait_for_function(f"() => ({done})() || !document.querySelector('#vote-left').disabled")
    page.screenshot(path=str(shots / "rate-page-all-done.png"))
    assert votes >= 6 and "thank you" in page.inner_text("#problem")
    assert f"judged {votes} pairs" in page.inner_text("#count")
    assert page.locator("#problem").is_visible()
    assert not page.locator("main").is_visible() and not page.locator("nav").is_visible()
    page.reload()  # coming back later: still done
    page.wait_for_function("() => document.querySelector('#problem').innerText.includes('All done')")
    assert not page.locator("nav").is_visible()


def test_the_rate_tab_thanks_a_rater_who_is_done_and_shows_no_pair(app_url, browser):
    _, url = app_url
    page = new_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(f"{url}?campaign=brief")
    done = "() => document.querySelector('#rate-status').innerText.includes('All done')"
    page.wait_for_selector("#rate-left-image img")
    votes = 0
    while not page.evaluate(done):
        assert votes < 14, "still serving pairs"
        page.wait_for_function("() => !document.querySelector('#rate-left').disabled")
        page.click("#rate-left")
        votes += 1
        page.wait_for_function(f"() => ({done})() || document.querySelector('#rate-count').innerText"
                               f".includes('judged {votes} pair')")
        page.wait_for_function(f"() => ({done})() || !document.querySelector('#rate-left').disabled")
    assert votes >= 6 and "thank you" in page.inner_text("#rate-status")
    assert f"judged {votes} pairs" in page.inner_text("#rate-count")
    assert page.locator("#rate-left-image img").count() == 0 and page.locator("#rate-right-image img").count() == 0
