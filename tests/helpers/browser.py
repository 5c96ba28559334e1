"""Headless Chromium for the browser tests: where it is, how it starts, a page with a long timeout."""
from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def new_page(browser, **options):
    page = browser.new_page(**options)
    page.set_default_timeout(120_000)
    return page
