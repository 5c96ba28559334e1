"""Votes people really made, and a room behind one address, over real HTTP with the app's default settings.

Before: the per-address limits were the same for every campaign (80 people
behind one router: 20 got no rater id, most votes refused), a vote's
``response_ms`` was whatever the client claimed, one id could store a burst
of votes in under a second, the per-session limits were keyed by an id the
client chooses, and nothing could be undone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest

from tests.helpers.app import free_port, jpeg_campaign_app
from tests.helpers.campaigns import jpeg_versions
from tests.helpers import ROOT

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="module")
def served(untrained_bundle, tmp_path_factory):
    from annotations.campaigns import Settings

    app = jpeg_campaign_app(untrained_bundle, tmp_path_factory, "vote-rules",
                            {"room": Settings(audience=200), "plain": Settings()})
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    with httpx.Client(base_url=url, timeout=60) as client:
        yield app, client
    app.close()


def new_rater(client, campaign: str, session: str = "s") -> httpx.Response:
    return client.post("api/rate/rater", json={"campaign": campaign}, headers={"x-rating-session": session})


def next_pair(client, rater: str, campaign: str) -> dict:
    answer = client.post("api/rate/next_pair", json={"rater_id": rater, "campaign": campaign})
    assert answer.status_code == 200, answer.text
    return answer.json()["ticket"]


def vote(client, rater: str, ticket: dict, choice: str = "left", response_ms=None, session: str = "s"):
    return client.post("api/rate/vote", headers={"x-rating-session": session},
                       json={"rater_id": rater, "ticket": ticket["ticket"], "choice": choice,
                             "campaign": ticket["campaign"], "response_ms": response_ms})


def human_pause(app) -> None:
    """Wait as long as a person takes at least (the floor in force), so the next answer is accepted."""
    time.sleep(app.services.rating.min_answer_ms / 1000 + 0.05)


@pytest.fixture
def wide_floor(served, monkeypatch):
    """The same rule with a 2 s floor, so a request slowed by a busy machine never passes it by accident."""
    monkeypatch.setattr(served[0].services.rating, "min_answer_ms", 2000)


def test_the_cli_stores_the_audience_and_old_campaigns_load_unchanged(tmp_path):
    from annotations.campaigns import CampaignRegistry

    photos = tmp_path / "photos"
    jpeg_versions(photos)
    data = tmp_path / "data"

    def create(name: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "annotations", "campaign", "create", name, "--images",
                               str(photos), "--data-dir", str(data), *extra], cwd=ROOT, capture_output=True,
                              text=True)

    made = create("talk", "--audience", "200")
    assert made.returncode == 0, made.stderr
    assert "audience of 200" in made.stdout
    registry = CampaignRegistry.for_data_dir(data)
    assert registry.get("talk").audience == 200
    for bad in ("0", "-3", "100000"):
        refused = create(f"bad{bad.strip('-')}", "--audience", bad)
        assert refused.returncode == 2 and "audience must be a whole number" in refused.stderr
    assert registry.names() == ["talk"]

    manifest = data / "campaigns" / "talk" / "campaign.json"
    record = json.loads(manifest.read_text())
    del record["audience"]  # as written before campaigns had an audience
    manifest.write_text(json.dumps(record))
    old = CampaignRegistry.for_data_dir(data).get("talk")
    assert old.audience is None and len(old.images) == len(registry.get("talk").images)


def test_a_room_joins_from_one_address_while_a_script_inventing_ids_stays_bounded(served):
    app, client = served
    limits = app.services.limits
    room, plain = limits.limits(app.services.campaigns.get("room")), limits.limits(None)
    assert plain == limits.limits(app.services.campaigns.get("plain"))  # no audience: today's limits
    assert (plain.votes_per_minute, plain.new_ids_per_hour) == (240, 60)
    assert room.new_ids_per_minute >= 200 and room.votes_per_minute >= 200 * app.services.config.votes_per_minute

    # a script from one address inventing ids, each request with a new session id of its choosing
    answers = [new_rater(client, "room", session=f"script-{k}") for k in range(room.new_ids_per_minute + 5)]
    codes = [a.status_code for a in answers]
    assert codes[:room.new_ids_per_minute] == [200] * room.new_ids_per_minute
    assert set(codes[room.new_ids_per_minute:]) == {429}
    assert "Too many new rater ids" in answers[-1].json()["error"]
    # the room's budget is its own: the default pool keeps today's limit for this address
    plain_codes = [new_rater(client, "", session=f"other-{k}").status_code for k in range(plain.new_ids_per_hour + 1)]
    assert plain_codes == [200] * plain.new_ids_per_hour + [429]


def test_the_server_measures_the_response_time_and_refuses_answers_faster_than_a_person(served, wide_floor):
    app, client = served
    rater = app.services.raters.issue()
    before = len(app.services.store.judgements())
    ticket = next_pair(client, rater, "plain")
    fast = vote(client, rater, ticket, response_ms=60000)  # ms after the pair, claiming a minute
    assert fast.status_code == 429 and "sooner than anyone can compare two images" in fast.json()["error"]
    assert len(app.services.store.judgements()) == before

    human_pause(app)
    receipt = vote(client, rater, ticket, response_ms=60000)  # the same ticket stays valid
    assert receipt.status_code == 200, receipt.text
    row = app.services.store.judgements().set_index("judgement_id").loc[receipt.json()["id"]]
    floor = app.services.rating.min_answer_ms
    measured = row["response_ms"]
    assert floor <= measured < 60000 and row["client_response_ms"] == 60000


def test_tickets_fetched_ahead_give_no_burst_of_votes(served, wide_floor):
    app, client = served
    rater = app.services.raters.issue()
    tickets = [next_pair(client, rater, "plain") for _ in range(5)]  # five of the campaign's six pairs
    human_pause(app)
    codes = [vote(client, rater, ticket).status_code for ticket in tickets]
    assert codes[0] == 200 and set(codes[1:]) == {429}  # each answer needs its own look, after the previous one


def test_votes_are_limited_per_signed_rater_whatever_session_the_client_names(served, monkeypatch):
    from annotations.quality import RateLimiter

    app, client = served
    monkeypatch.setattr(app.services.rating, "limiter", RateLimiter(3))  # a small per-rater budget, same rule
    rater = app.services.raters.issue()
    codes = []
    for k in range(4):
        ticket = next_pair(client, rater, "plain")
        human_pause(app)
        answer = vote(client, rater, ticket, session=f"fresh-session-{k}")
        codes.append(answer.status_code)
    assert codes == [200, 200, 200, 429] and "Too many votes in a minute" in answer.json()["error"]


def test_a_rater_undoes_the_last_answer_and_every_reader_leaves_it_out(served, tmp_path):
    import annotations
    from annotations.export import export_campaign

    app, client = served
    rater = app.services.raters.issue()
    public = app.services.raters.verify(rater)
    ticket = next_pair(client, rater, "plain")
    human_pause(app)
    receipt = vote(client, rater, ticket).json()
    assert receipt["count"] == 1
    undone = client.post("api/rate/undo", json={"rater_id": rater, "campaign": "plain"})
    assert undone.status_code == 200, undone.text
    again = undone.json()
    assert (again["ticket"]["left_image_id"], again["ticket"]["right_image_id"]) == \
        (ticket["left_image_id"], ticket["right_image_id"])
    assert again["count"] == 0 and again["ticket"]["ticket"] != ticket["ticket"]
    twice = client.post("api/rate/undo", json={"rater_id": rater, "campaign": "plain"})
    assert twice.status_code == 400 and "no answer of yours" in twice.json()["error"]

    store = app.services.store
    assert receipt["id"] not in set(store.judgements()["judgement_id"])
    assert receipt["id"] in {json.loads(line)["judgement_id"] for path in (store.root / "data").glob("*.jsonl")
                             for line in path.read_text().splitlines()}  # appended, never deleted
    assert receipt["id"] not in set(annotations.load_judgements(store.root)["judgement_id"])
    campaign = app.services.campaigns.get("plain")
    summary = export_campaign(campaign, store, tmp_path / "export", n_boot=5)
    exported = pd.concat([pd.read_parquet(p) for p in (tmp_path / "export" / "judgements").glob("*.parquet")])
    assert receipt["id"] not in set(exported["judgement_id"]) and summary.judgements == len(exported)
    assert public not in set(store.judgements("plain")["rater_id"])

    human_pause(app)
    answered = vote(client, rater, again["ticket"], choice="right")  # the pair shown again can be answered
    assert answered.status_code == 200 and answered.json()["count"] == 1


def test_the_gradio_api_passes_the_same_rules(served, wide_floor, monkeypatch):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from space.services.raters import ClientLimits

    app, client = served
    limits = app.services.limits  # fresh counters: an earlier test used up this address's budget
    monkeypatch.setattr(app.services, "limits", ClientLimits(app.services.raters, limits.default,
                                                             app.services.config.votes_per_minute))
    api = Client(str(client.base_url), verbose=False)
    assert app.services.raters.public_or_none(api.predict(api_name="/rater"))  # the campaign is optional
    rater = api.predict("room", api_name="/rater")
    ticket, _, _ = api.predict(rater, "room", api_name="/next_pair")
    with pytest.raises(AppError, match="sooner than anyone can compare"):
        api.predict(rater, ticket["ticket"], "left", 60000, api_name="/vote")
    human_pause(app)
    receipt = api.predict(rater, ticket["ticket"], "left", 60000, api_name="/vote")
    row = app.services.store.judgements().set_index("judgement_id").loc[receipt["id"]]
    assert row["client_response_ms"] == 60000 and row["response_ms"] < 60000
    again, _, _ = api.predict(rater, api_name="/undo")
    assert again["left_image_id"] == ticket["left_image_id"]
    assert receipt["id"] not in set(app.services.store.judgements()["judgement_id"])


def test_the_admin_panel_sizes_a_campaign_for_its_audience(served, tmp_path, monkeypatch):
    import gradio as gr

    from space.ui import campaign_admin
    from space.services.admin_auth import ADMIN_TOKEN_ENV

    app, _ = served
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "panel-token")
    photos = tmp_path / "photos"
    files = [str(path) for path in jpeg_versions(photos)]

    def create(name: str, audience):
        return campaign_admin.create(app.services, "panel-token", name, files, "", "", "", "any", 0.1, "",
                                     audience=audience)

    assert "audience of 120" in create("panel-room", 120.0)
    assert app.services.campaigns.get("panel-room").audience == 120
    with pytest.raises(gr.Error, match="audience must be a whole number"):
        create("panel-half", 2.5)
    assert "panel-half" not in app.services.campaigns.names()
    create("panel-plain", None)
    assert app.services.campaigns.get("panel-plain").audience is None
    create("panel-untouched", 0)  # what an untouched number field sends
    assert app.services.campaigns.get("panel-untouched").audience is None
