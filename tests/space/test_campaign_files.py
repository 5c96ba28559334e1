"""Over real HTTP: a campaign's ``campaign.json`` (image ids -> original file names, the answer key of a blind
comparison) is never served by Gradio's file route, while the campaign images the app shows still are."""
from __future__ import annotations

import os

import httpx
import pytest

from tests.helpers.app import jpeg_campaign_app, launched, signed

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="module")
def served(untrained_bundle, tmp_path_factory):
    from annotations.campaigns import Settings

    app = jpeg_campaign_app(untrained_bundle, tmp_path_factory, "files-app",
                            {"talk": Settings(title="Which JPEG looks better?")})
    with launched(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield app, url, client


def test_the_campaign_manifest_is_refused_however_it_is_named(served):
    app, _, client = served
    folder = app.services.campaigns.get("talk").folder
    manifest = folder / "campaign.json"
    assert manifest.is_file() and '"images"' in manifest.read_text()
    for path in (manifest, folder / "images" / ".." / "campaign.json", folder, folder.parent / "talk" / "campaign.json"):
        answer = client.get(f"gradio_api/file={path}")
        assert answer.status_code == 403, (path, answer.status_code)
        assert b'"images"' not in answer.content


def test_the_campaign_images_the_app_shows_are_still_served(served):
    from gradio_client import Client

    app, url, client = served
    talk = app.services.campaigns.get("talk")
    first = talk.ids[0]
    answer = client.get(f"gradio_api/file={talk.path(first)}")
    assert answer.status_code == 200 and answer.content == talk.path(first).read_bytes()
    ticket, left, right = Client(url, verbose=False).predict(signed(app, "anon-files"), "talk", api_name="/next_pair")
    assert os.path.getsize(left) > 0 and os.path.getsize(right) > 0  # fetched by the client through the file route
    assert {ticket["left_image_id"], ticket["right_image_id"]} <= set(talk.ids)
