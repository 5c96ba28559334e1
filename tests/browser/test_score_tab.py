"""The Score tab explains a score in the browser: the spread as a sentence, what each reference adds, and a
quality map with a colour bar in score points (one scale for every image). Saves ``score.png``."""
from __future__ import annotations

import os

import pytest
from PIL import Image

from cvrkd import QualityMap, distort
from tests.helpers.images import photo

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

pytestmark = pytest.mark.browser


def test_the_score_comes_with_a_reference_chart_and_a_map_with_a_legend(plain_app, page, shots, tmp_path):
    _, url = plain_app
    upload = tmp_path / "astronaut-jpeg.png"
    Image.fromarray(distort(photo(768, 512), "jpeg", 4, seed=1)).save(upload)
    page.goto(url)
    page.set_input_files("#score-image input[type=file]", str(upload))
    page.wait_for_selector("#score-image img")
    page.click("#score-button")
    page.wait_for_selector("#score-result .score-value")
    assert "give scores within" in page.inner_text("#score-result .score-agreement")

    page.wait_for_selector("#score-map .js-plotly-plot .colorbar")
    legend = page.text_content("#score-map .js-plotly-plot .colorbar")  # SVG: text, not inner text
    assert "points lost" in legend and f"{QualityMap.scale:g}" in legend  # the fixed top, the same for every image
    assert "Where it loses points" in page.text_content("#score-map .gtitle")

    page.wait_for_selector("#score-chart .js-plotly-plot .bars")
    bars = page.locator("#score-chart .js-plotly-plot .bars .point")
    assert bars.count() == 6  # one per reference of the built-in gallery
    assert "what each reference adds" in page.text_content("#score-chart .gtitle")
    assert all(text.strip()[:1] in "+-" for text in page.locator("#score-chart .bars text").all_text_contents())
    page.locator("#score-result").scroll_into_view_if_needed()
    page.screenshot(path=shots / "score.png", full_page=True)
