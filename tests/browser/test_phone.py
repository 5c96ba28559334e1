"""The full app on a phone (390 x 844, headless Chromium): the Leaderboard and the Rate tab.

Before, the Leaderboard's summary was squeezed beside the campaign chooser and
laid out 14 px wide and about 4,900 px tall, the ranking showed images judged
once or twice as 0.0 [0.0, 0.0], and the Rate tab called its stacked images
"Left" and "Right".
"""
from __future__ import annotations

import os

import pytest

from tests.helpers.app import launched, model_options

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(untrained_bundle, tmp_path_factory):
    from space.app import create_app

    app = create_app(data_dir=tmp_path_factory.mktemp("phone"), score_pool=False, **model_options(untrained_bundle),
                     min_answer_ms=0)  # votes below are cast by the test, as fast as a script
    rating = app.services.rating
    for rater in range(3):
        for _ in range(8):
            ticket = rating.next_pair(f"anon-phone-{rater}", None)
            rating.vote(f"anon-phone-{rater}", ticket.ticket_id, "left", 1500)
    with launched(app) as url:
        yield app, url


def phone(browser):
    page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.set_default_timeout(120_000)
    return page


def test_the_leaderboard_summary_reads_across_a_phone(app_url, browser):
    _, url = app_url
    page = phone(browser)
    page.goto(f"{url}?tab=leaderboard")
    page.wait_for_function("() => /\\d+ judgements/.test(document.querySelector('#leaderboard-summary')?.innerText)")
    box = page.locator("#leaderboard-summary").bounding_box()
    assert box["width"] >= 0.75 * PHONE["width"], box  # was 14 px
    assert box["height"] <= PHONE["height"] / 2, box  # was 4,854 px
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling


SIDE_LABELS = ("#rate-left-image [data-testid=block-label]", "#rate-right-image [data-testid=block-label]",
               "#rate-left", "#rate-right")


def side_labels(page) -> list[str]:
    return page.evaluate("selectors => selectors.map(s => document.querySelector(s).innerText.trim())",
                         list(SIDE_LABELS))


def test_the_rate_tab_says_top_and_bottom_when_it_stacks_the_images(app_url, browser):
    _, url = app_url
    page = phone(browser)
    page.goto(f"{url}?tab=rate")
    page.wait_for_selector("#rate-left-image img")
    top, bottom = page.locator("#rate-left-image").bounding_box(), page.locator("#rate-right-image").bounding_box()
    assert bottom["y"] >= top["y"] + top["height"] - 1  # stacked
    page.wait_for_function("() => document.querySelector('#rate-left').innerText.includes('Top')")
    assert side_labels(page) == ["Top", "Bottom", "▲ Top is better", "▼ Bottom is better"]
    assert page.get_by_role("button", name="▲ Top is better").count() == 1  # what a screen reader says
    assert "Left" not in page.inner_text("#rate-images") + page.inner_text("#rate-answers")
    page.locator("#rate-left-image img").tap()  # a new pair keeps the words
    page.wait_for_function("() => /judged 1 pair/.test(document.querySelector('#rate-count').innerText)")
    assert side_labels(page) == ["Top", "Bottom", "▲ Top is better", "▼ Bottom is better"]
    page.set_viewport_size({"width": 1280, "height": 900})  # side by side again: left and right
    page.wait_for_function("() => document.querySelector('#rate-left').innerText.includes('Left')")
    assert side_labels(page) == ["Left", "Right", "◀ Left is better", "Right is better ▶"]


def test_the_ranking_says_not_enough_judgements_instead_of_a_zero_width_interval(app_url, browser):
    app, url = app_url
    ranking = app.services.insights.current().ranking
    thin = ranking[ranking["ci_low"].isna()]
    assert len(thin) and (ranking.loc[ranking["ci_low"].notna(), "n_judgements"] >= 3).all()
    page = phone(browser)
    page.goto(f"{url}?tab=leaderboard")
    page.wait_for_function("() => /\\d+ judgements/.test(document.querySelector('#leaderboard-summary')?.innerText)")
    page.locator("#leaderboard-table").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('#leaderboard-table td')")
    shown = page.evaluate("""async () => {  // the table draws the rows in view: scroll through it, reading each
        const table = document.querySelector('#leaderboard-table');
        const scroller = [...table.querySelectorAll('*')].find(e => e.scrollHeight > e.clientHeight + 4) || table;
        let text = '';
        for (let top = 0; top <= scroller.scrollHeight; top += scroller.clientHeight / 2) {
            scroller.scrollTop = top;
            await new Promise(done => setTimeout(done, 200));
            text += table.innerText;
        }
        return text;
    }""")
    assert "not enough judgements" in shown and "[0.00, 0.00]" not in shown


OVERFLOWS = """() => {  // what sticks out sideways in the Leaderboard tab: off screen, scrolled, or clipped in a plot
    const width = document.documentElement.clientWidth, found = [];
    const tab = document.querySelector('#leaderboard-summary').closest('[role=tabpanel]');
    for (const element of tab.querySelectorAll('*')) {
        const box = element.getBoundingClientRect();
        if (!box.width || !box.height || getComputedStyle(element).visibility === 'hidden') continue;
        const name = element.tagName + ' ' + (element.id || element.getAttribute('class') || '') + ' "'
            + (element.textContent || '').trim().slice(0, 40) + '" ' + Math.round(box.width) + ' px';
        if (box.left < -0.5 || box.right > width + 0.5) found.push('off screen: ' + name);
        const style = getComputedStyle(element);
        if (element instanceof HTMLElement && !['visible', 'clip'].includes(style.overflowX)
            && element.scrollWidth > element.clientWidth + 1) found.push('scrolls sideways: ' + name);
        const plot = element instanceof SVGTextElement && element.closest('.js-plotly-plot');
        if (plot) {
            const frame = plot.getBoundingClientRect();
            if (box.left < frame.left - 0.5 || box.right > frame.right + 0.5) found.push('clipped: ' + name);
        }
    }
    return found;
}"""
TAB = "[role=tabpanel]:has(#leaderboard-summary)"


def test_the_whole_leaderboard_reads_on_a_phone_without_sideways_scrolling(app_url, browser, shots):
    """Before, its tables were 883–1,655 px wide in a 326 px box (only rank and title showed), plot titles
    were cut off at the plot's edge, and plotly's toolbar covered a label."""
    _, url = app_url
    page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    page.set_default_timeout(120_000)
    page.goto(f"{url}?tab=leaderboard")
    page.wait_for_function("() => /\\d+ judgements/.test(document.querySelector('#leaderboard-summary')?.innerText)")
    page.wait_for_selector("#leaderboard-calibration .js-plotly-plot .gtitle")  # the last plot
    page.screenshot(path=str(shots / "phone-leaderboard.png"), full_page=True)
    plots = page.locator(f"{TAB} .js-plotly-plot").all()
    assert len(plots) == 4
    for plot in plots:
        plot.scroll_into_view_if_needed()
        plot.tap()  # a tap is a phone's hover: it used to bring up the toolbar
    page.wait_for_selector("#leaderboard-table td", state="attached")
    assert page.evaluate(OVERFLOWS) == []
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]
    assert not any(bar.is_visible() for bar in page.locator(f"{TAB} .modebar").all())
    card = page.locator("#leaderboard-table tr").nth(1)  # a row is a card: its title on top, every value labelled
    title, rank = (card.locator(cell).bounding_box() for cell in ("td.heading", "td[data-label=rank]"))
    assert title["y"] < rank["y"] and title["width"] == rank["width"]
