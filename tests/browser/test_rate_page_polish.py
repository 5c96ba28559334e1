"""The rating page's small print on a phone (headless Chromium), and the admin token compared exactly.

Before: "Your last answer was taken back" showed in the red error box; the
closed page still said "Tap the better image"; the Undo button pushed the
images 18 px up when it came and back when it went; a lost connection showed
the browser's "Failed to fetch" and no way on; an admin token with a trailing
space was accepted.
"""
from __future__ import annotations

import os

import pytest

from tests.helpers.app import launched, model_options
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PHONE = {"width": 390, "height": 844}
ERROR_RED = "rgb(254, 242, 242)"
"""The problem box's background in a light colour scheme."""
BOXES = "() => ['#left', '#right', 'nav'].map(s => JSON.stringify(document.querySelector(s).getBoundingClientRect()))"


@pytest.fixture(scope="module")
def app_url(untrained_bundle, tmp_path_factory):
    from annotations.campaigns import Settings
    from space.app import create_app

    photos = tmp_path_factory.mktemp("polish-photos")
    app = create_app(data_dir=tmp_path_factory.mktemp("polish"), score_pool=False, min_answer_ms=0,
                     **model_options(untrained_bundle))
    for name, offset in (("talk", 0), ("shut", 5)):
        jpeg_versions(photos / name, seed_offset=offset)
        app.services.campaigns.create(name, photos / name, app.services.store, Settings(audience=50))
    app.services.campaigns.set_status("shut", "closed")
    with launched(app) as url:
        yield app, url


@pytest.fixture
def phone(browser):
    page = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    page.set_default_timeout(120_000)
    return page


def votes_stored(app) -> int:
    return len(app.services.store.judgements("talk"))


@pytest.mark.browser
def test_undo_keeps_the_layout_still_and_confirms_in_a_neutral_notice(app_url, phone):
    _, url = app_url
    phone.goto(f"{url}rate/talk")
    phone.wait_for_function("() => document.body.dataset.ready")
    before = phone.evaluate(BOXES)
    phone.click("#vote-left")
    phone.wait_for_function("() => document.body.dataset.votes === '1'")
    assert phone.locator("#undo").is_visible()
    assert phone.evaluate(BOXES) == before  # was 18 px higher and shorter while Undo was offered
    phone.click("#undo")
    phone.wait_for_function("() => document.body.dataset.undone === '1'")
    notice = phone.locator("#problem")
    assert "taken back" in notice.inner_text() and "⚠" not in notice.inner_text()
    assert notice.get_attribute("role") == "status"
    assert notice.evaluate("e => getComputedStyle(e).backgroundColor") != ERROR_RED


@pytest.mark.browser
def test_a_closed_campaign_says_so_without_asking_for_a_tap(app_url, phone):
    _, url = app_url
    phone.goto(f"{url}rate/shut")
    message = phone.locator("#problem")
    assert "closed" in message.inner_text() and message.get_attribute("role") == "status"
    assert message.evaluate("e => getComputedStyle(e).backgroundColor") != ERROR_RED  # a notice, not an error
    assert "Tap the better image" not in phone.inner_text("body")
    assert phone.locator("#undo-bar").is_hidden() and phone.locator("#retry").is_hidden()


@pytest.mark.browser
def test_a_lost_connection_is_said_in_words_and_the_answer_can_be_sent_again(app_url, phone):
    app, url = app_url
    phone.route("**/api/rate/next_pair", lambda route: route.abort("internetdisconnected"))
    phone.goto(f"{url}rate/talk")
    phone.wait_for_selector("#retry:not([hidden])")
    message = phone.inner_text("#problem")
    assert "Could not reach the server" in message and "Failed to fetch" not in message
    assert phone.locator("main").is_hidden()  # no pair to tap
    phone.unroute("**/api/rate/next_pair")
    phone.click("#retry")
    phone.wait_for_function("() => document.body.dataset.ready")
    assert phone.locator("#problem").inner_text() == "" and phone.locator("#retry").is_hidden()

    shown = phone.evaluate("() => document.body.dataset.ready")
    stored = votes_stored(app)
    phone.route("**/api/rate/vote", lambda route: route.abort("internetdisconnected"))
    phone.click("#vote-right")
    phone.wait_for_selector("#retry:not([hidden])")
    assert "Could not reach the server" in phone.inner_text("#problem")
    assert phone.evaluate("() => document.body.dataset.ready") == shown  # the same pair, still to answer
    assert votes_stored(app) == stored
    phone.unroute("**/api/rate/vote")
    phone.click("#retry")
    phone.wait_for_function("() => document.body.dataset.votes === '1'")
    assert votes_stored(app) == stored + 1 and phone.locator("#retry").is_hidden()
    assert phone.inner_text("#problem") == ""


def test_an_admin_token_counts_only_as_typed(app_url, monkeypatch):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from space.services.admin_auth import AdminGuard, NotAuthorised

    _, url = app_url
    monkeypatch.setenv("CVRKD_ADMIN_TOKEN", "s3cret\n")  # a secrets file's newline is not part of the token
    client = Client(url, verbose=False)
    for padded in ("s3cret ", " s3cret", "s3cret\n"):
        with pytest.raises(AppError, match="starts or ends with a space"):
            client.predict(padded, "", "", api_name="/moderate")
    assert client.predict("s3cret", "", "", api_name="/moderate") == {"pending": [], "flagged": []}
    with pytest.raises(NotAuthorised, match="Wrong or missing admin token"):
        AdminGuard("s3cret").check("s3cret\t")
