"""Fixtures shared by the browser tests: headless Chromium, a desktop page in it, a screenshot folder."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, new_page


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A desktop-sized page (1280 x 900) in its own Chromium."""
    return new_page(browser, viewport={"width": 1280, "height": 900})


@pytest.fixture
def shots(tmp_path):
    """The test's screenshot folder; with ``CVRKD_SCREENSHOT_DIR`` set, its files are also copied there."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    target = os.environ.get("CVRKD_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in folder.iterdir():
            shutil.copy(shot, Path(target) / shot.name)
