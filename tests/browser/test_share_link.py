"""The link and QR code on a slide must open the app from the audience's phones.

Before, a page opened on this machine put ``http://127.0.0.1:…`` in the QR code
without a word; the panel now says so, and ``CVRKD_PUBLIC_URL`` (or the Space's
host) gives the address the audience can reach.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

LOCAL = "only works on this computer"

pytestmark = pytest.mark.browser


def shared_link(page, url: str) -> tuple[str, str]:
    """(link, warning) shown in the Rate tab's share panel."""
    page.goto(f"{url}?tab=rate")
    page.wait_for_selector("#rate-left-image img")
    page.locator("#rate-share").get_by_text("Share this campaign").click()
    page.wait_for_function("() => document.querySelector('#rate-link textarea, #rate-link input')?.value")
    page.wait_for_selector("#rate-qr img")
    link = page.locator("#rate-link textarea, #rate-link input").first.input_value()
    # the warning is filled by the same event: read it once Gradio's queue and progress text has left it
    page.wait_for_function(
        "() => !/processing|queue:/.test(document.querySelector('#rate-share-warning').innerText)")
    return link, page.inner_text("#rate-share-warning")


def qr_text(page, tmp_path: Path) -> str:
    zxingcpp = pytest.importorskip("zxingcpp", reason="pip install -r requirements-dev.txt")
    from PIL import Image

    with page.expect_download() as download:
        page.click("#rate-qr-png")
    png = tmp_path / "qr.png"
    download.value.save_as(png)
    return [code.text for code in zxingcpp.read_barcodes(Image.open(png))][0]


def presenter_warning(page, url: str) -> str:
    """The warning under the presenter view's QR code ("" when there is none)."""
    page.goto(f"{url}present/default")
    page.wait_for_selector("#qr")
    return page.inner_text("#local-warning") if page.locator("#local-warning").count() else ""


def test_a_link_to_this_machine_is_flagged_and_the_public_address_is_used_when_set(plain_app, page, tmp_path,
                                                                                   monkeypatch):
    _, url = plain_app
    monkeypatch.delenv("CVRKD_PUBLIC_URL", raising=False)
    monkeypatch.delenv("SPACE_HOST", raising=False)
    link, warning = shared_link(page, url)
    assert link.startswith("http://127.0.0.1:") and LOCAL in warning and "CVRKD_PUBLIC_URL" in warning
    assert page.locator("#rate-share-warning [role=alert]").is_visible()
    assert LOCAL in presenter_warning(page, url)  # the presenter view's QR code says it too

    monkeypatch.setenv("CVRKD_PUBLIC_URL", "https://talk.example.org/iqa/")
    link, warning = shared_link(page, url)
    assert link == "https://talk.example.org/iqa/rate" and warning.strip() == ""
    assert qr_text(page, tmp_path) == link
    assert presenter_warning(page, url) == ""

    monkeypatch.delenv("CVRKD_PUBLIC_URL")
    monkeypatch.setenv("SPACE_HOST", "someone-cvrkd.hf.space")
    link, warning = shared_link(page, url)
    assert link == "https://someone-cvrkd.hf.space/rate" and warning.strip() == ""


def test_only_addresses_of_this_machine_count_as_local():
    from space.services.share import local_only

    for url in ("http://127.0.0.1:7860/rate", "http://localhost:7860/", "http://[::1]:7860/", "http://0.0.0.0:7860/",
                "http://127.1.2.3/", "http://app.localhost/"):
        assert local_only(url), url
    for url in ("http://192.168.1.20:7860/rate", "https://someone-cvrkd.hf.space/", "https://localhost.example.org/"):
        assert not local_only(url), url
