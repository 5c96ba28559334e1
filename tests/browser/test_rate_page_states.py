"""What people see when there is nothing to rate, in dark mode, and with a screen reader (headless Chromium).

Before, a closed or rate-limited rating page showed two broken-image icons and
idle buttons under its message, the page ignored a dark colour scheme, and the
full app's status announcer told screen readers the untranslated key
"common.complete" whenever an event finished.
"""
from __future__ import annotations

import os

import pytest

from tests.helpers.app import launched, model_options
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser

BROKEN_OR_EMPTY = """() => [...document.querySelectorAll('img, button')].filter(e => e.offsetParent !== null
    && (e.tagName === 'BUTTON' ? !e.hidden : !(e.complete && e.naturalWidth > 0))).length"""
"""Images on screen that show no picture (a broken-image icon) plus buttons on screen."""


@pytest.fixture(scope="module")
def app_url(untrained_bundle, tmp_path_factory):
    from annotations.campaigns import Settings
    from space.app import create_app

    photos = tmp_path_factory.mktemp("states-photos")
    app = create_app(data_dir=tmp_path_factory.mktemp("states"), score_pool=False, **model_options(untrained_bundle),
                     new_raters_per_ip_minute=1, new_raters_per_ip_hour=1)  # the second browser is refused
    for name, offset in (("talk", 0), ("shut", 5)):
        jpeg_versions(photos / name, seed_offset=offset)
        app.services.campaigns.create(name, photos / name, app.services.store, Settings(title=f"Campaign {name}"))
    app.services.campaigns.set_status("shut", "closed")
    with launched(app) as url:
        yield app, url


def new_page(browser, **options):
    page = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, **options).new_page()
    page.set_default_timeout(120_000)
    return page


def test_a_closed_or_refused_rating_page_shows_its_message_and_no_broken_images(app_url, browser):
    _, url = app_url
    closed = new_page(browser)
    closed.goto(f"{url}rate/shut")
    assert "closed" in closed.inner_text("#problem")
    assert closed.locator("#problem").is_visible()
    assert closed.evaluate(BROKEN_OR_EMPTY) == 0

    first = new_page(browser)  # takes the one new rater id this address may have
    first.goto(f"{url}rate/talk")
    first.wait_for_function("() => document.body.dataset.ready")
    assert first.evaluate(BROKEN_OR_EMPTY) == 4  # a pair on screen: the four answer buttons, both images drawn

    refused = new_page(browser)  # another browser on the same address, over the limit
    refused.goto(f"{url}rate/talk")
    refused.wait_for_function("() => document.querySelector('#problem').innerText.trim()")
    assert "Too many" in refused.inner_text("#problem") and refused.locator("#problem").is_visible()
    assert refused.evaluate(BROKEN_OR_EMPTY) == 0


def luminance(page, selector: str, prop: str) -> float:
    """Relative brightness (0 black .. 1 white) of a computed colour."""
    rgb = page.evaluate("([s, p]) => getComputedStyle(document.querySelector(s))[p].match(/[\\d.]+/g).slice(0, 3)",
                        [selector, prop])
    red, green, blue = (float(v) / 255 for v in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_the_rating_page_follows_the_dark_colour_scheme(app_url, browser):
    _, url = app_url
    pages = {scheme: new_page(browser, color_scheme=scheme) for scheme in ("light", "dark")}
    for page in pages.values():
        page.goto(f"{url}rate/shut")  # no rater id needed
    light, dark = pages["light"], pages["dark"]
    assert luminance(light, "body", "backgroundColor") > 0.9 and luminance(light, "body", "color") < 0.3
    assert luminance(dark, "body", "backgroundColor") < 0.1 and luminance(dark, "body", "color") > 0.7
    for selector, ground in (("#problem", "backgroundColor"), ("#vote-same", "backgroundColor")):
        assert luminance(dark, selector, ground) < 0.2, selector
        assert luminance(dark, selector, "color") > 0.6, selector


def test_screen_readers_hear_complete_not_the_untranslated_key(app_url, browser):
    _, url = app_url
    page = new_page(browser)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{url}?tab=leaderboard")
    page.wait_for_function("() => document.querySelector('#leaderboard-summary')?.innerText.length > 0")
    page.evaluate("""() => {
        window.said = [];
        const listen = () => document.querySelectorAll('[role=status][aria-live]').forEach(e => {
            const text = e.textContent.trim();
            if (text && window.said.at(-1) !== text) window.said.push(text);
        });
        new MutationObserver(listen).observe(document.body, {subtree: true, childList: true, characterData: true});
    }""")
    page.get_by_role("button", name="Refresh").click()
    page.wait_for_function("() => window.said.includes('Complete') || window.said.includes('common.complete')",
                           timeout=60_000)
    said = page.evaluate("() => window.said")
    assert "Complete" in said and not any("common." in text for text in said), said
