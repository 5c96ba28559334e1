"""Scoring with a "pristine original" that cannot be one: another shape, or another photo of the same size.

Before, an original of another shape reached API clients as Gradio's generic
"The upstream Gradio app has raised an exception" and put red "Error" badges
on the Score tab; a different photo of the same size was scored silently.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers.images import photo

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SHAPE = "does not have the image's shape"
GENERIC = "upstream Gradio app has raised an exception"


def _jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _other_photo(width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(data.coffee()).resize((width, height), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("originals")
    images = {"image": _jpeg(photo(), 15), "original": photo(), "other_photo": _other_photo(320, 256),
              "other_shape": photo(300, 300)}
    paths = {name: folder / f"{name}.png" for name in images}
    for name, pixels in images.items():
        Image.fromarray(pixels).save(paths[name])
    return paths


def test_versions_of_a_photo_pass_and_other_photos_are_flagged():
    from cvrkd.reference_check import MIN_SIMILARITY, mismatch_warning, similarity

    original = photo(512, 384)
    noisy = np.clip(original + np.random.default_rng(0).normal(0, 25, original.shape), 0, 255).astype(np.uint8)
    darker = (original * 0.5).astype(np.uint8)
    for version in (_jpeg(original, 10), noisy, darker, original):
        assert similarity(version, original) >= MIN_SIMILARITY and mismatch_warning(version, original) is None
    other = _other_photo(512, 384)
    assert similarity(other, original) < MIN_SIMILARITY
    assert "does not look like the same photo" in mismatch_warning(other, original)
    flat = np.full_like(original, 128)
    assert mismatch_warning(flat, flat) is None  # nothing to judge by: no warning


def test_kodak_versions_pass_and_other_kodak_photos_are_flagged(shared_data):
    from cvrkd.reference_check import mismatch_warning
    from cvrkd.distortions import distort

    kodak = sorted((shared_data / "kodak24").glob("*.png"))
    first, second = (np.asarray(Image.open(path).convert("RGB")) for path in kodak[:2])
    assert first.shape == second.shape
    for name in ("gaussian_blur", "jpeg", "white_noise", "contrast_change", "color_saturation_1"):
        assert mismatch_warning(distort(first, name, 5), first) is None, name
    assert mismatch_warning(second, first) is not None


def test_the_api_explains_an_original_of_another_shape_and_warns_about_another_photo(plain_app, files):
    from gradio_client import Client, handle_file

    _, url = plain_app
    client = Client(url, verbose=False)
    with pytest.raises(Exception) as refused:
        client.predict(handle_file(str(files["image"])), "", handle_file(str(files["other_shape"])),
                       api_name="/score")
    assert SHAPE in str(refused.value) and GENERIC not in str(refused.value)
    other = client.predict(handle_file(str(files["image"])), "", handle_file(str(files["other_photo"])),
                           api_name="/score")
    assert other["fr"] is not None and "does not look like the same photo" in other["warnings"][0]
    same = client.predict(handle_file(str(files["image"])), "", handle_file(str(files["original"])),
                          api_name="/score")
    assert same["fr"] is not None and same["warnings"] == []


@pytest.mark.browser
def test_the_score_tab_says_why_an_original_is_refused_or_doubtful(plain_app, files):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium")
    app, url = plain_app
    pooled = len(app.services.pool)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(120_000)

        def score_with(original: str) -> None:
            page.goto(url)
            page.set_input_files("#score-image input[type=file]", str(files["image"]))
            page.wait_for_selector("#score-image img")
            page.get_by_text("I have the pristine original").click()
            page.set_input_files("#score-original input[type=file]", str(files[original]))
            page.wait_for_selector("#score-original img")
            if original == "other_shape":
                page.click("#score-consent input")  # a refused request adds nothing to the pool
            page.click("#score-button")

        score_with("other_shape")
        page.wait_for_function(f"() => document.querySelector('#score-result')?.innerText.includes(\"{SHAPE}\")")
        assert page.locator(".error, [data-testid='error']").count() == 0  # no red "Error" badges
        assert "Error" not in page.inner_text("body").replace("Error correction", "")
        assert len(app.services.pool) == pooled
        score_with("other_photo")
        warning = page.wait_for_selector("#score-result .score-warning")
        assert "does not look like the same photo" in warning.inner_text()
        assert page.locator("#score-result .score-value").count() == 2  # scored, with the warning above
        browser.close()
