"""The lightweight rating page and its JSON routes (space/web/rate_page.py) against a running app: the
same rules as the Rate tab and the Gradio API (signed rater ids, tickets bound to their campaign,
client limits), a clear refusal for bad input, and nothing stored when refused."""
from __future__ import annotations

import os

import httpx
import pytest

from tests.helpers.app import free_port, model_options, signed
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="module")
def served(untrained_bundle, tmp_path_factory):
    from annotations.campaigns import Settings
    from space.app import create_app

    photos = tmp_path_factory.mktemp("rate-page-photos")
    app = create_app(data_dir=tmp_path_factory.mktemp("rate-page"), score_pool=False,
                     **model_options(untrained_bundle),
                     min_answer_ms=0)  # answers as fast as a script: the human floor is tested in test_vote_rules.py
    for name, offset, title in (("talk", 0, 'JPEG <b>"test"</b> & more'), ("other", 9, ""), ("shut", 5, "")):
        jpeg_versions(photos / name, seed_offset=offset)
        app.services.campaigns.create(name, photos / name, app.services.store,
                                      Settings(title=title, instructions="Look at <edges>."))
    app.services.campaigns.set_status("shut", "closed")
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    with httpx.Client(base_url=url, timeout=60) as client:
        yield app, client
    app.close()


def stored(app, campaign: str | None = None) -> int:
    return len(app.services.store.judgements(campaign))


def pair(client, rater: str, campaign: str) -> dict:
    answer = client.post("api/rate/next_pair", json={"rater_id": rater, "campaign": campaign})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_page_rates_its_campaign_and_every_acknowledged_vote_is_stored(served):
    app, client = served
    rater = client.post("api/rate/rater", headers={"x-rating-session": "s-flow"}).json()["rater_id"]
    talk_ids = set(app.services.campaigns.get("talk").ids)
    before_other = stored(app, "other")
    acknowledged = []
    for k in range(6):  # the campaign's six pairs, each served once to this rater
        shown = pair(client, rater, "talk")
        ticket = shown["ticket"]
        assert ticket["campaign"] == "talk" and {ticket["left_image_id"], ticket["right_image_id"]} <= talk_ids
        assert shown["count"] == len(acknowledged)
        image = client.get(shown["left"])
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
        assert image.content == app.services.images.path(ticket["left_image_id"]).read_bytes()
        assert "immutable" in image.headers["cache-control"]
        receipt = client.post("api/rate/vote", json={"rater_id": rater, "ticket": ticket["ticket"], "campaign": "talk",
                                                     "choice": ("left", "right", "same")[k % 3], "response_ms": 900})
        assert receipt.status_code == 200, receipt.text
        acknowledged.append(receipt.json()["id"])
        assert receipt.json() == {"stored": "judgement", "id": acknowledged[-1], "count": k + 1}
    rows = app.services.store.judgements("talk").set_index("judgement_id")
    public = app.services.raters.verify(rater)
    assert set(acknowledged) <= set(rows.index) and (rows.loc[acknowledged, "rater_id"] == public).all()
    assert rows.loc[acknowledged, "client_response_ms"].eq(900).all()  # the page's claim, kept as a hint
    assert rows.loc[acknowledged, "response_ms"].lt(900).all()  # measured by the server
    assert stored(app, "other") == before_other  # another campaign's votes are untouched

    live = client.get("api/rate/live/talk").json()
    assert live["campaign"] == "talk" and live["images"] == len(talk_ids)
    info = client.get("api/rate/campaign/talk").json()
    assert info == {"campaign": "talk", "title": 'JPEG <b>"test"</b> & more', "instructions": "Look at <edges>.",
                    "open": True, "images": len(talk_ids)}


def test_the_page_shows_the_campaign_text_escaped_and_lets_phones_zoom(served):
    _, client = served
    page = client.get("rate/talk")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "JPEG &lt;b&gt;&quot;test&quot;&lt;/b&gt; &amp; more" in page.text and "<b>" not in page.text
    assert "Look at &lt;edges&gt;." in page.text and 'data-campaign="talk"' in page.text
    assert "user-scalable=no" not in page.text and "maximum-scale" not in page.text  # pinch-zoom stays on
    assert len(page.content) < 20_000  # a phone on conference Wi-Fi loads it at once
    default = client.get("rate")
    assert default.status_code == 200 and 'data-campaign="default"' in default.text


def test_a_ticket_votes_only_into_its_own_campaign_and_only_once(served):
    app, client = served
    rater = signed(app, "anon-page-cross")
    ticket = pair(client, rater, "other")["ticket"]["ticket"]
    before = stored(app)
    for wrong in ("talk", "", "default"):
        refused = client.post("api/rate/vote", json={"rater_id": rater, "ticket": ticket, "choice": "left",
                                                     "campaign": wrong})
        assert refused.status_code == 400 and "belongs to the campaign 'other'" in refused.json()["error"], (wrong, refused.text)
    assert stored(app) == before
    assert client.post("api/rate/vote", json={"rater_id": rater, "ticket": ticket, "choice": "left"}).status_code == 200
    again = client.post("api/rate/vote", json={"rater_id": rater, "ticket": ticket, "choice": "left"})
    assert again.status_code == 400 and "already judged" in again.json()["error"]
    assert stored(app) == before + 1


@pytest.mark.parametrize("body, status, message", [
    ({"rater_id": "anon-x.forged", "campaign": "talk"}, 401, "not issued by this server"),  # the page gets a new id
    ({"rater_id": None, "campaign": "talk"}, 422, ""),
    ({"campaign": "talk"}, 422, ""),
])
def test_bad_pair_requests_are_refused(served, body, status, message):
    _, client = served
    answer = client.post("api/rate/next_pair", json=body)
    assert answer.status_code == status
    assert message in answer.text


def test_unknown_and_closed_campaigns_and_unknown_images_are_explained(served):
    app, client = served
    rater = signed(app, "anon-page-bad")
    unknown = client.post("api/rate/next_pair", json={"rater_id": rater, "campaign": "nope"})
    assert unknown.status_code == 404 and "unknown campaign 'nope'" in unknown.json()["error"]
    closed = client.post("api/rate/next_pair", json={"rater_id": rater, "campaign": "shut"})
    assert closed.status_code == 400 and "closed" in closed.json()["error"]
    page = client.get("rate/nope")
    assert page.status_code == 404 and "There is no campaign called “nope”" in page.text
    assert "closed and takes no more votes" in client.get("rate/shut").text
    assert client.get("api/rate/live/nope").status_code == 404
    assert client.get("api/rate/campaign/nope").status_code == 404
    for image in ("sha256-0000", "..%2F..%2Fstore", "%2E%2E"):
        assert client.get(f"api/rate/image/{image}").status_code == 404


def test_bad_votes_store_nothing(served):
    app, client = served
    rater = signed(app, "anon-page-votes")
    ticket = pair(client, rater, "talk")["ticket"]["ticket"]
    before = stored(app)
    cases = [
        ({"rater_id": rater, "ticket": ticket, "choice": "up"}, 400, "choice must be one of"),
        ({"rater_id": rater, "ticket": "made-up", "choice": "left"}, 400, "unknown, expired or already judged"),
        ({"rater_id": signed(app, "anon-someone-else"), "ticket": ticket, "choice": "left"}, 400, "unknown, expired"),
        ({"rater_id": rater, "ticket": ticket, "choice": "left", "response_ms": -5}, 400, "response_ms"),
        ({"rater_id": rater, "ticket": ticket}, 422, ""),
    ]
    for body, status, message in cases:
        answer = client.post("api/rate/vote", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert message in answer.text
    assert stored(app) == before
    assert client.post("api/rate/vote", json={"rater_id": rater, "ticket": ticket, "choice": "skip"}).json()["stored"] \
        == "skip"
    assert stored(app) == before


def test_new_rater_ids_are_limited_per_address_whatever_session_the_page_names(served, monkeypatch):
    from space.services.raters import AddressLimits, ClientLimits

    app, client = served
    limit = 5
    monkeypatch.setattr(app.services, "limits", ClientLimits(app.services.raters, AddressLimits(240, limit, limit),
                                                             app.services.config.votes_per_minute))
    answers = [client.post("api/rate/rater", headers={"x-rating-session": f"s-greedy-{k}"}) for k in range(limit + 1)]
    assert [a.status_code for a in answers] == [200] * limit + [429]
    assert "Too many new rater ids" in answers[-1].json()["error"]
