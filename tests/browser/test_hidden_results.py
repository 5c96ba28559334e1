"""Hidden means hidden: while a campaign's results are hidden, no path shows its ranking, model agreement or
estimates until the presenter reveals them; the votes and raters stay on screen.

Before, only the live views hid it: the Leaderboard tab and the ``/leaderboard`` API still showed the full
ranking with scores and intervals.
"""
from __future__ import annotations

import os

import httpx
import pytest

from annotations.__main__ import main as cli
from space.services.live import HIDDEN_NOTE
from tests.helpers.app import launched, model_options
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
VOTES = 12


@pytest.fixture(scope="module")
def hidden(untrained_bundle, tmp_path_factory):
    """(app, URL, titles): a campaign with votes whose results are hidden; the images' titles are what a
    ranking would show."""
    from space.app import create_app

    photos = tmp_path_factory.mktemp("hidden-photos")
    jpeg_versions(photos)
    app = create_app(data_dir=tmp_path_factory.mktemp("hidden"), score_pool=False, min_answer_ms=0,
                     **model_options(untrained_bundle))
    data = str(app.services.data_dir)
    assert cli(["campaign", "create", "talk", "--images", str(photos), "--data-dir", data]) == 0
    rating = app.services.rating
    for k in range(VOTES):
        ticket = rating.next_pair(f"anon-hidden-{k % 3}", "talk")
        rating.vote(f"anon-hidden-{k % 3}", ticket.ticket_id, "left")
    app.services.live.snapshot("talk")  # a revealed snapshot in the shared cache: hiding must not serve it
    assert cli(["campaign", "hide", "talk", "--data-dir", data]) == 0
    titles = [app.services.images.title(i) for i in app.services.campaigns.get("talk").ids]
    with launched(app) as url:
        yield app, url, titles


def reveal(app, hide: bool = False) -> None:
    assert cli(["campaign", "hide" if hide else "reveal", "talk", "--data-dir", str(app.services.data_dir)]) == 0


def test_no_json_route_shows_a_hidden_ranking_until_the_reveal(hidden):
    from gradio_client import Client

    app, url, titles = hidden
    client = Client(url, verbose=False)
    board = client.predict("talk", api_name="/leaderboard")
    assert board["ranking"] == [] and board["estimates"] == [] and board["disagreements"] == []
    assert board["results_hidden"] and board["n_judgements"] == VOTES and board["n_raters"] == 3
    assert board["agreement"]["share"] is None and board["calibration"] is None
    for live in (client.predict("talk", api_name="/live"), httpx.get(url + "api/rate/live/talk", timeout=60).json()):
        assert live["ranking"] == [] and live["model_agrees"] is None
        assert live["results_hidden"] and live["n_judgements"] == VOTES

    reveal(app)
    try:
        board = client.predict("talk", api_name="/leaderboard")
        assert not board["results_hidden"] and {row["title"] for row in board["ranking"]} <= set(titles)
        assert len(board["ranking"]) >= 2 and board["estimates"]
        live = httpx.get(url + "api/rate/live/talk", timeout=60).json()
        assert not live["results_hidden"] and len(live["ranking"]) >= 2
    finally:
        reveal(app, hide=True)
    assert httpx.get(url + "api/rate/live/talk", timeout=60).json()["ranking"] == []  # hidden again at once


@pytest.mark.browser
def test_no_screen_shows_a_hidden_ranking_until_the_reveal(hidden, page):
    app, url, titles = hidden

    def leaderboard_text() -> str:
        page.goto(f"{url}?tab=leaderboard&campaign=talk")
        page.wait_for_function(f"() => document.querySelector('#leaderboard-summary')?.innerText"
                               f".includes('{VOTES} judgements')")
        return page.evaluate("() => [...document.querySelectorAll('[id^=leaderboard-]')]"
                             ".map(part => part.textContent).join(' ')")

    shown = leaderboard_text()
    assert HIDDEN_NOTE in shown and "Model agrees" not in shown
    assert not any(title in shown for title in titles)
    assert page.locator("#leaderboard-ranking .js-plotly-plot").count() == 0

    page.goto(f"{url}?campaign=talk&view=live")
    page.wait_for_function("() => document.querySelector('#live-view')?.innerText.includes('hidden until')")
    assert page.locator("#live-plot .js-plotly-plot").count() == 0
    assert not any(title in page.locator("#live-view").inner_text() for title in titles)

    page.goto(f"{url}present/talk")
    page.wait_for_function(f"() => document.getElementById('votes').textContent === '{VOTES}'")
    assert page.locator("#hidden").is_visible() and page.locator("#ranking li").count() == 0

    reveal(app)
    try:
        page.wait_for_selector("#ranking li")  # the presenter's next poll, without a reload
        shown = leaderboard_text()
        assert HIDDEN_NOTE not in shown and "Model agrees" in shown
        assert any(title in shown for title in titles)
    finally:
        reveal(app, hide=True)
