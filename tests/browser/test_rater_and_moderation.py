"""In headless Chromium: the rating page and the full app in one browser, and the admin's moderation screen.

Before: both kept the rater id under the browser key ``cvrkd-rater`` and the
full app wrote an encrypted value there, so once a phone had opened
``/?campaign=NAME`` the rating page said "This rater id was not issued by this
server", with broken images, even after a reload. Contributed photos could be
moderated only through ``/moderate`` with ids, without seeing them.
"""
from __future__ import annotations

import os
import re
import urllib.error
import urllib.request

import pytest

from tests.helpers.app import free_port, model_options
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PHONE = {"width": 390, "height": 844}
TOKEN = "moderation-browser-token"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(untrained_bundle, tmp_path_factory):
    from annotations.campaigns import Settings
    from space.app import create_app

    photos = tmp_path_factory.mktemp("talk-photos")
    jpeg_versions(photos, photos=("cat", "coffee"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CVRKD_ADMIN_TOKEN", TOKEN)
        app = create_app(data_dir=tmp_path_factory.mktemp("browser-moderation"), score_pool=False,
                         **model_options(untrained_bundle), min_answer_ms=0)  # the floor has its own tests
        app.services.campaigns.create("talk", photos, app.services.store, Settings(title="Which looks better?"))
        _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                               quiet=True)
        yield app, url
        app.close()


def judged(page) -> int:
    return int(re.search(r"judged \**(\d+)\** pair", page.inner_text("#rate-count")).group(1))


def use_app(page, url: str, reload: bool = False) -> str:
    """The full app's Rate tab on the campaign: a pair on screen, one vote stored; returns its rater id."""
    page.reload() if reload else page.goto(f"{url}?campaign=talk")
    page.wait_for_selector("#rate-left-image img")
    page.wait_for_function("() => /judged/.test(document.querySelector('#rate-count').innerText)")
    assert "refused" not in page.inner_html("#rate-status")
    before = judged(page)
    page.locator("#rate-left").tap()
    page.wait_for_function("n => /judged \\**(\\d+)/.exec(document.querySelector('#rate-count').innerText)[1] == n",
                           arg=str(before + 1))
    return re.search(r"anon-[0-9a-f]+", page.inner_text("#rate-count")).group(0)


def use_rating_page(page, url: str, reload: bool = False) -> str:
    """The phone page: both images drawn, no problem shown, one vote stored; returns the id it keeps."""
    page.reload() if reload else page.goto(f"{url}rate/talk")
    page.wait_for_function("() => document.body.dataset.ready")
    assert page.inner_text("#problem").strip() == ""
    assert page.evaluate("() => [...document.querySelectorAll('main img')].every(i => i.naturalWidth > 0)")
    page.locator("#vote-left").tap()
    page.wait_for_function("() => document.body.dataset.votes == '1' && document.body.dataset.ready")
    assert page.inner_text("#problem").strip() == ""
    return page.evaluate("() => localStorage.getItem('cvrkd-rater')")


@pytest.mark.parametrize("first", ["app", "page"])
def test_the_rating_page_and_the_full_app_share_one_browser(app_url, browser, first):
    app, url = app_url
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(120_000)
    visits = {"app": use_app, "page": use_rating_page}
    kept = []
    for name in [first, "page" if first == "app" else "app"] * 2:  # one, the other, and each again
        for reload in (False, True):
            answer = visits[name](page, url, reload=reload)
            if name == "page":
                kept.append(answer)
    assert len(set(kept)) == 1  # the full app never replaced the page's id
    public = app.services.raters.verify(kept[0])
    stored = app.services.store.judgements("talk")
    assert (stored["rater_id"] == public).sum() == len(kept)
    context.close()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_admin_approves_and_rejects_photos_by_their_thumbnails(app_url, browser, good_inputs, tmp_path):
    from cvrkd.imageio import load_image

    app, url = app_url
    services = app.services
    kept, dropped = (services.pool.add_upload(load_image(good_inputs[name])).image_id
                     for name in ("non_square", "grayscale"))
    for image_id in (kept, dropped):
        assert services.moderation.submit(image_id) == "pending"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(120_000)
    page.goto(f"{url}?tab=model")
    page.get_by_text("Admin: contributed photos waiting for moderation").click()
    page.fill("#moderation-admin-token input", "wrong")
    page.click("#moderation-admin-show")
    page.get_by_text("Wrong or missing admin token").first.wait_for()
    assert page.locator(".moderation-card").count() == 0

    page.fill("#moderation-admin-token input", TOKEN)
    page.click("#moderation-admin-show")
    page.wait_for_function("() => document.querySelectorAll('.moderation-card').length == 2")
    thumbs = page.locator("img.moderation-thumb")
    assert page.evaluate("() => [...document.querySelectorAll('img.moderation-thumb')]"
                         ".every(i => i.naturalWidth > 0 && i.src.startsWith('data:image/jpeg'))")
    assert thumbs.count() == 2
    page.screenshot(path=tmp_path / "moderation-screen.png")

    page.locator(".moderation-card", has_text=kept[:12]).get_by_role("button", name="Approve").click()
    page.wait_for_function("() => document.querySelectorAll('.moderation-card').length == 1")
    assert "approved" in page.inner_text("#moderation-admin-result")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator(".moderation-card", has_text=dropped[:12]).get_by_role("button", name="Reject").click()
    page.wait_for_function("() => /Nothing changed|rejected/.test("
                           "document.querySelector('#moderation-admin-result').innerText)")
    assert "Nothing changed" in page.inner_text("#moderation-admin-result"), "Reject acted without asking"
    assert asked and "Reject this photo?" in asked[0]
    assert services.moderation.status(dropped) == "pending" and page.locator(".moderation-card").count() == 1
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".moderation-card", has_text=dropped[:12]).get_by_role("button", name="Reject").click()
    page.get_by_text("No contributed photo is waiting for a decision.").wait_for()
    assert "rejected" in page.inner_text("#moderation-admin-result")

    assert services.moderation.status(kept) == "approved" and services.moderation.status(dropped) == "rejected"
    assert status_of(f"{url}api/rate/image/{kept}") == 200
    assert status_of(f"{url}api/rate/image/{dropped}") == 404
    assert not list(services.pool.root.rglob(f"{dropped}.png"))
