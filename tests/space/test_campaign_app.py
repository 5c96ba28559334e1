"""Campaigns end to end: created from a folder while the app runs, rated through ``gradio_client``
with the campaign argument, exported with the CLI and loaded with ``datasets.load_dataset``."""
from __future__ import annotations

import os

import datasets
import pytest

from annotations.__main__ import main as cli
from tests.helpers.app import launched, model_options, signed
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="module")
def server(untrained_bundle, tmp_path_factory):
    from gradio_client import Client

    from space.app import create_app

    data = tmp_path_factory.mktemp("campaign-app")
    app = create_app(data_dir=data, score_pool=False, **model_options(untrained_bundle),
                     min_answer_ms=0)  # answers as fast as a script: the human floor is tested in test_vote_rules.py
    with launched(app) as url:
        yield app, Client(url, verbose=False)


def test_rate_a_campaign_through_the_api_then_export_and_load_three_configs(server, tmp_path):
    from gradio_client.exceptions import AppError

    app, client = server
    data = str(app.services.data_dir)
    jpeg_versions(tmp_path / "talk")
    jpeg_versions(tmp_path / "other", seed_offset=9)
    for name, folder in (("talk", "talk"), ("other", "other")):  # the CLI, while the app runs
        assert cli(["campaign", "create", name, "--images", str(tmp_path / folder), "--data-dir", data,
                    "--title", f"{name} title"]) == 0
    talk, other = app.services.campaigns.get("talk"), app.services.campaigns.get("other")
    assert app.services.scores.fill(ids=talk.ids) == len(talk.ids)  # background scoring covers campaigns

    acknowledged, shown = [], set()
    for k in range(12):
        rater = signed(app, f"anon-talk-{k % 3}")
        ticket, left, right = client.predict(rater, "talk", api_name="/next_pair")
        assert ticket["campaign"] == "talk" and os.path.isfile(left) and os.path.isfile(right)
        shown |= {ticket["left_image_id"], ticket["right_image_id"]}
        receipt = client.predict(rater, ticket["ticket"], ["left", "right", "same"][k % 3], None, api_name="/vote")
        assert receipt["stored"] == "judgement"
        acknowledged.append(receipt["id"])
    assert shown <= set(talk.ids)
    elsewhere = []
    for rater, campaign in ((signed(app, "anon-other"), "other"), (signed(app, "anon-default"), "")):
        ticket, _, _ = client.predict(rater, campaign, api_name="/next_pair")
        elsewhere.append(client.predict(rater, ticket["ticket"], "left", None, api_name="/vote")["id"])
    assert client.predict("", api_name="/leaderboard")["campaign"] == "default"
    board = client.predict("talk", api_name="/leaderboard")
    assert board["campaign"] == "talk" and board["n_judgements"] == 12
    assert {row["image_id"] for row in board["ranking"]} <= set(talk.ids)
    live = client.predict("talk", api_name="/live")
    assert live["campaign"] == "talk" and live["title"] == "talk title" and live["n_judgements"] == 12
    assert 1 <= len(live["ranking"]) <= 12 and {row["image_id"] for row in live["ranking"]} <= set(talk.ids)

    out = tmp_path / "export"
    assert cli(["campaign", "export", "talk", "--out", str(out), "--data-dir", data, "--bootstrap", "20"]) == 0
    judgements = datasets.load_dataset(str(out), split="train")
    assert sorted(judgements["judgement_id"]) == sorted(acknowledged)
    assert not set(elsewhere) & set(judgements["judgement_id"])
    assert set(judgements["left_image_id"]) | set(judgements["right_image_id"]) <= set(talk.ids)
    assert all(score is not None for score in judgements["model_score_left"])
    images = datasets.load_dataset(str(out), "images", split="train")
    assert sorted(images["image_id"]) == sorted(talk.ids) and not set(images["image_id"]) & set(other.ids)
    scores = datasets.load_dataset(str(out), "scores", split="train")
    assert sorted(scores["image_id"]) == sorted(talk.ids)
    assert sum(scores["n_judgements"]) == 2 * len(acknowledged)

    before = len(app.services.store.judgements())
    with pytest.raises(AppError, match="unknown campaign 'nope'"):
        client.predict(signed(app, "anon-bad"), "nope", api_name="/next_pair")
    with pytest.raises(AppError, match="not valid"):
        client.predict(signed(app, "anon-bad"), "Not A Name", api_name="/next_pair")
    with pytest.raises(AppError, match="unknown campaign"):
        client.predict("nope", api_name="/leaderboard")
    with pytest.raises(AppError, match="unknown campaign"):
        client.predict("nope", api_name="/live")
    closing = signed(app, "anon-closing")
    ticket, _, _ = client.predict(closing, "talk", api_name="/next_pair")
    assert cli(["campaign", "close", "talk", "--data-dir", data]) == 0
    for call in (lambda: client.predict(closing, "talk", api_name="/next_pair"),
                 lambda: client.predict(closing, ticket["ticket"], "left", None, api_name="/vote")):
        with pytest.raises(AppError, match="closed"):
            call()
    assert len(app.services.store.judgements()) == before
    assert cli(["campaign", "reopen", "talk", "--data-dir", data]) == 0
    assert client.predict(closing, ticket["ticket"], "left", None, api_name="/vote")["stored"] == "judgement"


def test_a_ticket_never_adds_to_another_campaign(server, tmp_path):
    from space.services.rating import RatingError

    app, _ = server
    rating = app.services.rating
    if "other" not in app.services.campaigns:
        jpeg_versions(tmp_path / "other", seed_offset=9)
        cli(["campaign", "create", "other", "--images", str(tmp_path / "other"), "--data-dir",
             str(app.services.data_dir)])
    ticket = rating.next_pair("anon-cross", "other")
    before = len(app.services.store.judgements())
    for wrong in ("talk", "", "default"):
        with pytest.raises(RatingError, match="belongs to the campaign 'other'"):
            rating.vote("anon-cross", ticket.ticket_id, "left", campaign=wrong)
    assert len(app.services.store.judgements()) == before
    receipt = rating.vote("anon-cross", ticket.ticket_id, "left", campaign="other")
    row = app.services.store.judgements().set_index("judgement_id").loc[receipt.record_id]
    assert row["campaign"] == "other" and rating.count("anon-cross", "other") == 1
    assert rating.count("anon-cross") == 0


def test_live_viewers_share_one_computation_per_interval(server, tmp_path):
    from space.services.live import LiveBoard

    app, _ = server
    if "other" not in app.services.campaigns:
        jpeg_versions(tmp_path / "other", seed_offset=9)
        cli(["campaign", "create", "other", "--images", str(tmp_path / "other"), "--data-dir",
             str(app.services.data_dir)])
    now = [0.0]
    board = LiveBoard(app.services.insights, app.services.images, interval_s=4.0, clock=lambda: now[0])
    first = board.snapshot("other")
    rating = app.services.rating
    ticket = rating.next_pair("anon-live-unit", "other")
    rating.vote("anon-live-unit", ticket.ticket_id, "right")
    for _ in range(20):  # many viewers within one interval: the same snapshot
        assert board.snapshot("other") is first
    now[0] += 5.0
    assert board.snapshot("other") is first  # the poll that finds it stale gets it at once ...
    board.wait()  # ... and starts one rebuild in the background
    fresh = board.snapshot("other")
    assert board.builds == 2 and fresh.insights.n_judgements == first.insights.n_judgements + 1
    assert board.snapshot("other") is fresh
    assert f">{fresh.insights.n_judgements}<" in fresh.header


def test_links_are_parsed_and_unknown_parts_explained(server):
    from space.ui.links import Link, parse

    app, _ = server
    services = app.services
    name = services.campaigns.names()[0]
    assert parse({"campaign": name}, services) == Link(tab="rate", campaign=name)
    assert parse({"campaign": name, "view": "live"}, services) == Link(tab="live", campaign=name, live=True)
    assert parse({"tab": "Leaderboard"}, services) == Link(tab="leaderboard")
    assert parse({"example": "motorcycle-jpeg"}, services) == Link(tab="score", example="motorcycle-jpeg")
    assert parse({}, services) == Link()
    for params, message in (({"campaign": "nope"}, "no campaign called “nope”"),
                            ({"campaign": "Bad Name!", "view": "live"}, "no campaign called"),
                            ({"tab": "admin"}, "no tab “admin”"), ({"view": "wall"}, "no view “wall”"),
                            ({"example": "x"}, "no example “x”")):
        link = parse(params, services)
        assert message in link.message and link.tab is None and link.campaign == "" and not link.live


def test_admin_actions_need_the_token_and_a_zip_cannot_write_outside(server, tmp_path, monkeypatch):
    import zipfile

    import gradio as gr

    from space.ui import campaign_admin

    app, _ = server
    services = app.services
    folder = tmp_path / "photos"
    jpeg_versions(folder)
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in folder.rglob("*.jpg"):
            zipped.write(path, path.relative_to(folder).as_posix())
        zipped.writestr("../escaped.txt", "outside")
    args = ("zipped", [str(archive)], "", "Zipped", "", "same-content", 0.1, "CC0-1.0")
    monkeypatch.delenv("CVRKD_ADMIN_TOKEN", raising=False)
    with pytest.raises(gr.Error, match="admin token"):  # no token configured: nobody is admin
        campaign_admin.create(services, "", *args)
    monkeypatch.setenv("CVRKD_ADMIN_TOKEN", "s3cret")
    for token in ("", "wrong"):
        with pytest.raises(gr.Error, match="admin token"):
            campaign_admin.create(services, token, *args)
        with pytest.raises(gr.Error, match="admin token"):
            campaign_admin.set_status(services, token, "zipped", "closed")
    assert "zipped" not in services.campaigns
    with pytest.raises(gr.Error, match="either image files"):
        campaign_admin.create(services, "s3cret", "zipped", None, "", "t", "", "any", 0.1, "")
    report = campaign_admin.create(services, "s3cret", *args)
    assert "Created **zipped** with 6 images" in report
    created = services.campaigns.get("zipped")
    assert {i.content for i in created.images} == {"cat", "coffee"} and {i.licence for i in created.images} == {"CC0-1.0"}
    assert not list(tmp_path.parent.glob("escaped.txt")) and not (tmp_path / "escaped.txt").exists()
    assert "is now closed" in campaign_admin.set_status(services, "s3cret", "zipped", "closed")
    table = campaign_admin.campaign_table(services)
    assert table.set_index("name").loc["zipped", "status"] == "closed"
