"""Campaigns in headless Chromium: a phone rating by tapping (the Rate tab and the rating page), links to tabs and examples, the live
view updating without a reload, the QR code decoding back to its link, the admin panel.

Screenshots go to the test's output folder; with ``CVRKD_SCREENSHOT_DIR`` set they are also copied
there (``docs/screenshots`` refreshes the README's).
"""
from __future__ import annotations

import os
import re
import zipfile

import pytest

from tests.helpers.app import launched, model_options
from tests.helpers.browser import new_page
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PHONE = {"width": 390, "height": 844}
TOKEN = "browser-test-admin-token"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(untrained_bundle, tmp_path_factory):
    from annotations.campaigns import Settings
    from space.app import create_app

    photos = tmp_path_factory.mktemp("talk-photos")
    jpeg_versions(photos, photos=("cat", "coffee", "astronaut"))
    app = create_app(data_dir=tmp_path_factory.mktemp("browser-campaigns"), score_pool=False,
                     **model_options(untrained_bundle),
                     min_answer_ms=0)  # answers as fast as a script: the human floor is tested in test_vote_rules.py
    app.services.campaigns.create("talk", photos, app.services.store,
                                  Settings(title="Which JPEG looks better?", instructions="Look at edges and skies."))
    with launched(app) as url:
        yield app, url


def judged(page) -> int:
    return int(re.search(r"judged (\d+) pair", page.inner_text("#rate-count")).group(1))


def test_a_phone_rates_eight_pairs_of_a_campaign_by_tapping(app_url, browser, shots):
    app, url = app_url
    page = new_page(browser, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.goto(f"{url}?campaign=talk")
    page.wait_for_selector("#rate-left-image img")
    page.wait_for_selector("#rate-right-image img")
    assert "Which JPEG looks better?" in page.inner_text("#rate-campaign")
    assert "Look at edges and skies." in page.inner_text("#rate-instructions")
    for selector in ("#rate-left-image", "#rate-right-image", "#rate-left", "#rate-right", "#rate-same", "#rate-skip"):
        box = page.locator(selector).bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], f"{selector} needs scrolling: {box}"
    assert page.evaluate("() => window.scrollY") == 0
    page.screenshot(path=shots / "phone-rate.png")
    rater = re.search(r"anon-[0-9a-f]+", page.inner_text("#rate-count")).group(0)
    talk = set(app.services.campaigns.get("talk").ids)
    for k in range(8):  # the count arrives with the next pair, in one update (the campaign has nine pairs)
        # a tap counts once the buttons unlock (the pair's images are shown): a tap before is ignored
        page.wait_for_function("() => !document.querySelector('#rate-left').disabled")
        page.locator("#rate-left-image img" if k % 2 == 0 else "#rate-right-image img").tap()
        page.wait_for_function("n => /judged (\\d+) pair/.exec(document.querySelector('#rate-count').innerText)[1] == n",
                               arg=str(k + 1))
    stored = app.services.store.judgements("talk")
    mine = stored[stored["rater_id"] == rater]
    assert len(mine) == 8 and app.services.rating.count(rater, "talk") == 8
    assert list(mine["choice"]) == ["left", "right"] * 4
    assert set(mine["left_image_id"]) | set(mine["right_image_id"]) <= talk
    assert (app.services.store.judgements("default")["rater_id"] == rater).sum() == 0


def test_a_phone_rates_eight_pairs_on_the_rating_page_by_tapping(app_url, browser, shots):
    app, url = app_url
    page = new_page(browser, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.goto(f"{url}rate/talk")
    page.wait_for_function("() => document.body.dataset.ready")
    assert page.inner_text("#title") == "Which JPEG looks better?"
    assert page.inner_text("#instructions") == "Look at edges and skies."
    for selector in ("#left img", "#right img", "#vote-left", "#vote-right", "#vote-same", "#vote-skip"):
        box = page.locator(selector).bounding_box()
        assert box["height"] > 40 and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], \
            f"{selector} needs scrolling: {box}"
    left, right = page.locator("#left").bounding_box(), page.locator("#right").bounding_box()
    assert right["y"] >= left["y"] + left["height"] - 1  # stacked on a narrow screen
    assert page.evaluate("() => document.scrollingElement.scrollHeight <= window.innerHeight")
    page.screenshot(path=shots / "phone-rate-page.png")
    talk = set(app.services.campaigns.get("talk").ids)
    for k in range(8):  # of the campaign's nine pairs: each is served to a rater once
        ready = page.evaluate("() => document.body.dataset.ready")
        page.locator("#left img" if k % 2 == 0 else "#right img").tap()
        page.wait_for_function("([n, t]) => document.body.dataset.votes == n && document.body.dataset.ready "
                               "&& document.body.dataset.ready != t", arg=[str(k + 1), ready])
    assert "You have judged 8 pairs." in page.inner_text("#count")
    assert page.inner_text("#problem").strip() == ""
    rater = app.services.raters.verify(page.evaluate("() => localStorage.getItem('cvrkd-rater')"))
    stored = app.services.store.judgements("talk")
    mine = stored[stored["rater_id"] == rater]
    assert len(mine) == 8 and list(mine["choice"]) == ["left", "right"] * 4
    assert set(mine["left_image_id"]) | set(mine["right_image_id"]) <= talk
    assert (mine["response_ms"] > 0).all()
    wide = new_page(browser, viewport={"width": 1280, "height": 800})
    wide.goto(f"{url}rate/talk")
    wide.wait_for_function("() => document.body.dataset.ready")
    left, right = wide.locator("#left").bounding_box(), wide.locator("#right").bounding_box()
    assert right["x"] >= left["x"] + left["width"] - 1 and abs(right["y"] - left["y"]) < 1  # side by side
    assert wide.locator("#vote-left").inner_text() == "◀ Left is better"


def test_links_open_the_tab_or_example_they_name_and_unknown_ones_say_so(app_url, browser):
    _, url = app_url
    page = new_page(browser, viewport={"width": 1280, "height": 900})

    def selected() -> str:
        return page.locator("#main-tabs [role=tab][aria-selected=true]").inner_text().strip()

    page.goto(f"{url}?tab=leaderboard")
    page.wait_for_function("() => document.querySelector('#leaderboard-summary')?.innerText.length > 0")
    assert selected() == "Leaderboard"
    page.goto(f"{url}?tab=model")
    page.wait_for_selector("#model-summary")
    page.wait_for_function("() => [...document.querySelectorAll('#main-tabs [role=tab][aria-selected=true]')]"
                           ".some(t => t.innerText.trim() == 'Model')")
    page.goto(f"{url}?tab=rate")
    page.wait_for_selector("#rate-left-image img")
    assert selected() == "Rate" and page.inner_text("#rate-campaign").strip() == ""
    page.goto(f"{url}?example=motorcycle-jpeg")
    score = page.wait_for_selector("#score-result .score-value").inner_text()
    assert selected() == "Score" and 0 <= float(score.split()[0]) <= 100
    assert "Example: motorcycle-jpeg" in page.inner_text("#score-result")
    for query, message in (("tab=nope", "no tab “nope”"), ("campaign=nope", "no campaign called “nope”"),
                           ("example=nope", "no example “nope”")):
        page.goto(f"{url}?{query}")
        page.wait_for_selector(".link-message")
        assert message in page.inner_text("#link-message") and selected() == "Score"


def test_the_live_view_updates_after_new_votes_without_a_reload(app_url, browser, shots):
    app, url = app_url
    page = new_page(browser, viewport={"width": 1600, "height": 900})
    page.goto(f"{url}?campaign=talk&view=live")
    page.wait_for_selector("#live-header .live-number")
    page.evaluate("() => { window.__sameDocument = true; }")
    start = int(page.locator("#live-header .live-number").first.inner_text())
    rating = app.services.rating
    for k in range(6):
        ticket = rating.next_pair(f"anon-live-{k}", "talk")
        rating.vote(f"anon-live-{k}", ticket.ticket_id, "left" if k % 3 else "right")
    page.wait_for_function("n => Number(document.querySelector('#live-header .live-number').innerText) >= n",
                           arg=start + 6, timeout=60_000)
    assert page.evaluate("() => window.__sameDocument === true")  # updated in place, not reloaded
    page.wait_for_selector("#live-plot .js-plotly-plot")
    page.screenshot(path=shots / "live.png")


def test_the_qr_code_decodes_to_the_link_and_downloads_as_png_and_svg(app_url, browser, shots, tmp_path):
    zxingcpp = pytest.importorskip("zxingcpp", reason="pip install -r requirements-dev.txt")
    from PIL import Image

    _, url = app_url
    page = new_page(browser, viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page.goto(f"{url}?campaign=talk")
    page.wait_for_selector("#rate-left-image img")
    page.locator("#rate-share").get_by_text("Share this campaign").click()
    page.wait_for_selector("#rate-qr img")
    link = page.locator("#rate-link textarea, #rate-link input").first.input_value()
    assert link == f"{url}rate/talk"  # the QR code opens the rating page for phones ...
    app_link = page.locator("#rate-app-link textarea, #rate-app-link input").first.input_value()
    assert app_link == f"{url}?campaign=talk"  # ... and the full app's link is shown under it
    page.locator("#rate-share").scroll_into_view_if_needed()
    page.locator("#rate-share").screenshot(path=shots / "qr-panel.png")
    with page.expect_download() as png_download:
        page.click("#rate-qr-png")
    png = tmp_path / "qr.png"
    png_download.value.save_as(png)
    with page.expect_download() as svg_download:
        page.click("#rate-qr-svg")
    svg = tmp_path / "qr.svg"
    svg_download.value.save_as(svg)
    image = Image.open(png)
    assert min(image.size) >= 900  # sharp on a slide
    assert [code.text for code in zxingcpp.read_barcodes(image)] == [link]
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
    assert "Error" not in page.inner_text("#rate-share")  # re-opening the panel refreshed it without fault


def test_the_admin_panel_creates_and_closes_a_campaign_only_with_the_token(app_url, browser, tmp_path,
                                                                          monkeypatch):
    app, url = app_url
    monkeypatch.setenv("CVRKD_ADMIN_TOKEN", TOKEN)  # read on each request by the app in this process
    folder = tmp_path / "upload"
    jpeg_versions(folder)
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in folder.rglob("*.jpg"):
            zipped.write(path, path.relative_to(folder).as_posix())
    page = new_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(f"{url}?tab=model")
    page.locator("#campaign-admin").get_by_text("Admin: rating campaigns").click()
    page.fill("#campaign-admin-name input, #campaign-admin-name textarea", "from-browser")
    page.fill("#campaign-admin-title input, #campaign-admin-title textarea", "Uploaded in a browser")
    page.set_input_files("#campaign-admin-files input[type=file]", str(archive))
    page.wait_for_function("() => document.querySelector('#campaign-admin-files').innerText.includes('photos')")
    page.click("#campaign-admin-create")
    toast = page.wait_for_selector(".toast-body.error")
    assert "Wrong or missing admin token" in toast.inner_text()
    assert "from-browser" not in app.services.campaigns  # no token: nothing created
    page.click(".toast-close")
    page.fill("#campaign-admin-token input", TOKEN)
    page.click("#campaign-admin-create")
    page.wait_for_function("() => document.querySelector('#campaign-admin-result').innerText.includes('Created')")
    created = app.services.campaigns.get("from-browser")
    assert len(created.images) == 6 and {i.content for i in created.images} == {"cat", "coffee"}
    page.fill("#campaign-admin-name input, #campaign-admin-name textarea", "from-browser")
    page.click("#campaign-admin-close")
    page.wait_for_function("() => document.querySelector('#campaign-admin-result').innerText.includes('closed')")
    assert app.services.campaigns.get("from-browser").status == "closed"
