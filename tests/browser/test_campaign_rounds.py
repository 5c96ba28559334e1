"""The admin panel's reset, clone, export and texts in headless Chromium: a new round under the same link
(judgements kept, or also archived) only after the admin confirms, a copy under a new name, a campaign
downloaded as a dataset, a new title and instructions, and nothing without the admin token."""
from __future__ import annotations

import os
import zipfile

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
    asked, answer = [], {"yes": True}
    page.on("dialog", lambda dialog: (asked.append(dialog.message),
                                      dialog.accept() if answer["yes"] else dialog.dismiss()))
    page.goto(f"{url}?tab=model")
    page.locator("#campaign-admin").get_by_text("Admin: rating campaigns").click()
    page.fill("#campaign-admin-name input, #campaign-admin-name textarea", "talk")
    page.click("#campaign-admin-reset")
    toast = page.wait_for_selector(".toast-body.error")
    assert "Wrong or missing admin token" in toast.inner_text()
    assert services.campaigns.get("talk").round == 1  # no token: nothing changed
    page.click(".toast-close")

    page.fill("#campaign-admin-token input", TOKEN)
    answer["yes"] = False  # one click is not enough: the admin is asked, and says no
    asked.clear()
    page.click("#campaign-admin-reset")
    page.wait_for_function("() => /cancelled|is in round/.test(document.querySelector('#campaign-admin-result')"
                           ".innerText)")
    assert "the reset was cancelled" in page.inner_text("#campaign-admin-result"), "Reset acted on one click"
    assert asked == ["Reset campaign talk? A new round begins: rankings start again from no judgements "
                     "(earlier ones are kept)."]
    assert services.campaigns.get("talk").round == 1
    answer["yes"] = True
    page.click("#campaign-admin-reset")
    result_says(page, "is in round 2")
    assert "3 judgements of round 1 are kept in the store" in page.inner_text("#campaign-admin-result")
    assert services.campaigns.get("talk").round == 2 and len(services.store.judgements("talk")) == 3
    assert services.live_numbers("talk")["n_judgements"] in (0, 3)  # the shared snapshot rebuilds in the background
    services.live.wait()
    assert services.insights.current("talk").n_judgements == 0

    page.click("#campaign-admin-reset-archive")
    result_says(page, "is in round 3")
    assert "archive its judgements" in asked[-1]
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


def test_the_admin_panel_edits_the_texts_and_downloads_the_campaign_only_with_the_token(talk, browser, tmp_path,
                                                                                         monkeypatch):
    app, url = talk
    services = app.services
    monkeypatch.setenv("CVRKD_ADMIN_TOKEN", TOKEN)
    page = new_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(f"{url}?tab=model")
    page.locator("#campaign-admin").get_by_text("Admin: rating campaigns").click()
    page.fill("#campaign-admin-name input, #campaign-admin-name textarea", "talk")
    page.fill("#campaign-admin-title input, #campaign-admin-title textarea", "Hacked")
    page.click("#campaign-admin-save-texts")
    assert "Wrong or missing admin token" in page.wait_for_selector(".toast-body.error").inner_text()
    page.click(".toast-close")
    page.click("#campaign-admin-export")
    assert "Wrong or missing admin token" in page.wait_for_selector(".toast-body.error").inner_text()
    page.click(".toast-close")
    assert services.campaigns.get("talk").title == "Which JPEG looks better?"

    page.fill("#campaign-admin-token input", TOKEN)
    page.click("#campaign-admin-load-texts")
    page.wait_for_function("() => document.querySelector('#campaign-admin-title input, #campaign-admin-title "
                           "textarea').value === 'Which JPEG looks better?'")
    page.fill("#campaign-admin-title input, #campaign-admin-title textarea", "Which one is sharper?")
    page.locator("#campaign-admin").get_by_label("Instructions (Markdown)").fill("Look at the **edges**.")
    page.click("#campaign-admin-save-texts")
    result_says(page, "now reads")
    talk_now = services.campaigns.get("talk")
    assert (talk_now.title, talk_now.instructions) == ("Which one is sharper?", "Look at the **edges**.")
    with httpx.Client(base_url=url, timeout=120) as client:  # what raters read changed at once
        assert "Which one is sharper?" in client.get("rate/talk").text

    page.click("#campaign-admin-export")
    result_says(page, "Exported")
    with page.expect_download() as downloading:
        page.locator("#campaign-admin-download a").first.click()
    archive = tmp_path / "talk.zip"
    downloading.value.save_as(archive)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(tmp_path / "export")
    [folder] = (tmp_path / "export").iterdir()
    judgements = datasets.load_dataset(str(folder), "judgements", split="train")
    assert len(judgements) == len(services.store.judgements("talk")) == 3
