"""The admin panel's reset and clone in headless Chromium: a new round under the same link (judgements kept,
or also archived), a copy under a new name, and nothing without the admin token."""
from __future__ import annotations

import os

import datasets
import httpx
import pytest

from tests.helpers.app import free_port, model_options
from tests.helpers.browser import new_page
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytestmark = pytest.mark.browser
TOKEN = "rounds-admin-token"


@pytest.fixture(scope="module")
def talk(untrained_bundle, tmp_path_factory):
    """(app, url): a campaign ``talk`` with three votes."""
    from annotations.campaigns import Settings
    from space.app import create_app

    photos = tmp_path_factory.mktemp("rounds-photos")
    jpeg_versions(photos)
    app = create_app(data_dir=tmp_path_factory.mktemp("browser-rounds"), score_pool=False, min_answer_ms=0,
                     **model_options(untrained_bundle))  # answers as fast as a script: the floor has its own tests
    app.services.campaigns.create("talk", photos, app.services.store, Settings(title="Which JPEG looks better?"))
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    with httpx.Client(base_url=url, timeout=120) as client:
        rater = client.post("api/rate/rater", json={"campaign": "talk"}).json()["rater_id"]
        for _ in range(3):
            pair = client.post("api/rate/next_pair", json={"rater_id": rater, "campaign": "talk"}).json()
            answer = client.post("api/rate/vote", json={"rater_id": rater, "ticket": pair["ticket"]["ticket"],
                                                        "choice": "left"})
            assert answer.status_code == 200, answer.text
    yield app, url
    app.close()


def result_says(page, text: str) -> None:
    page.wait_for_function("t => document.querySelector('#campaign-admin-result').innerText.includes(t)", arg=text)


def test_the_admin_panel_resets_archives_and_clones_a_campaign_only_with_the_token(talk, browser, shots,
                                                                                   monkeypatch):
    app, url = talk
    services = app.services
    monkeypatch.setenv("CVRKD_ADMIN_TOKEN", TOKEN)  # read on each request by the app in this process
    page = new_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(f"{url}?tab=model")
    page.locator("#campaign-admin").get_by_text("Admin: rating campaigns").click()
    page.fill("#campaign-admin-name input, #campaign-admin-name textarea", "talk")
    page.click("#campaign-admin-reset")
    toast = page.wait_for_selector(".toast-body.error")
    assert "Wrong or missing admin token" in toast.inner_text()
    assert services.campaigns.get("talk").round == 1  # no token: nothing changed
    page.click(".toast-close")

    page.fill("#campaign-admin-token input", TOKEN)
    page.click("#campaign-admin-reset")
    result_says(page, "is in round 2")
    assert "3 judgements of round 1 are kept in the store" in page.inner_text("#campaign-admin-result")
    assert services.campaigns.get("talk").round == 2 and len(services.store.judgements("talk")) == 3
    assert services.live_numbers("talk")["n_judgements"] in (0, 3)  # the shared snapshot rebuilds in the background
    services.live.wait()
    assert services.insights.current("talk").n_judgements == 0

    page.click("#campaign-admin-reset-archive")
    result_says(page, "is in round 3")
    [archive] = (services.data_dir / "archives" / "talk").iterdir()
    assert str(archive) in page.inner_text("#campaign-admin-result")
    assert len(datasets.load_dataset(str(archive), split="train")) == 3

    page.fill("#campaign-admin-clone-name input, #campaign-admin-clone-name textarea", "talk-copy")
    page.click("#campaign-admin-clone")
    result_says(page, "a copy of talk")
    copy = services.campaigns.get("talk-copy")
    assert copy.ids == services.campaigns.get("talk").ids and copy.title == "Which JPEG looks better?"
    table = page.locator("#campaign-admin table, #campaign-admin [role=grid]").first
    page.wait_for_function("() => document.querySelector('#campaign-admin').innerText.includes('talk-copy')")
    assert "round" in table.inner_text()
    page.screenshot(path=str(shots / "campaign-admin-rounds.png"), full_page=True)

    page.fill("#campaign-admin-clone-name input, #campaign-admin-clone-name textarea", "talk-copy")
    page.click("#campaign-admin-clone")  # the name is taken: a message, nothing changes
    toast = page.wait_for_selector(".toast-body.error")
    assert "already exists" in toast.inner_text()
    assert services.campaigns.names() == ["talk", "talk-copy"]
