"""Rater ids are issued and signed by the server; clients are limited however many ids they hold;
contributed photos wait for moderation.

Before: any client could invent rater ids (10 fresh ids got 10 more votes at
once), vote as an id seen on screen, and a contributed photo was paired at once.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from tests.helpers.app import admin_trainer, launched, model_options, proven_rater

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="module")
def server(untrained_bundle, scorer, tmp_path_factory):
    from gradio_client import Client

    from space.app import create_app

    data = tmp_path_factory.mktemp("raters")
    trainer = admin_trainer(data, scorer)
    app = create_app(data_dir=data, score_pool=False, trainer=trainer, votes_per_minute=4,
                     new_raters_per_ip_hour=3, votes_per_ip_minute=6, min_answer_ms=0,
                     review_quorum=2, **model_options(untrained_bundle))
    with launched(app) as url:
        yield app, url, lambda: Client(url, verbose=False)


def fresh_limits(app, new: int, votes: int):
    """Counters from zero, so each test starts with its own budget (new ids and votes per address)."""
    from space.services.raters import AddressLimits, ClientLimits

    return ClientLimits(app.services.raters, AddressLimits(votes, new, new), app.services.config.votes_per_minute)


def test_only_server_signed_ids_rate_and_only_public_parts_are_stored(server):
    from gradio_client.exceptions import AppError

    app, _, connect = server
    client = connect()
    rater = client.predict(api_name="/rater")
    public, _, signature = rater.rpartition(".")
    assert public.startswith("anon-") and len(signature) == 32
    ticket, _, _ = client.predict(rater, api_name="/next_pair")
    for forged in (public, "anon-invented", public + ".0" * 16, public + "." + signature[::-1],
                   "anon-other." + signature):
        with pytest.raises(AppError, match="not issued by this server"):
            client.predict(forged, api_name="/next_pair")
        with pytest.raises(AppError, match="not issued by this server"):
            client.predict(forged, ticket["ticket"], "left", None, api_name="/vote")
    receipt = client.predict(rater, ticket["ticket"], "left", None, api_name="/vote")
    row = app.services.store.judgements().set_index("judgement_id").loc[receipt["id"]]
    assert row["rater_id"] == public
    shards = "".join(p.read_text() for p in app.services.store.root.rglob("*.jsonl"))
    assert public in shards and signature not in shards


def test_new_ids_and_votes_are_limited_per_rater_and_per_address_whatever_session_is_named(server):
    from gradio_client.exceptions import AppError

    app, _, connect = server
    app.services.limits = fresh_limits(app, new=3, votes=6)
    first, second = connect(), connect()  # two sessions (ids the client chose) from one address
    ids = [first.predict(api_name="/rater"), first.predict(api_name="/rater"), second.predict(api_name="/rater")]
    for client in (first, second):
        with pytest.raises(AppError, match="Too many new rater ids"):
            client.predict(api_name="/rater")  # the address's limit, whichever session asks
    stored = len(app.services.store.judgements())

    def vote(client, rater):
        ticket, _, _ = client.predict(rater, api_name="/next_pair")
        return client.predict(rater, ticket["ticket"], "left", None, api_name="/vote")

    for _ in range(4):
        vote(first, ids[0])
    with pytest.raises(AppError, match="Too many votes in a minute"):
        vote(second, ids[0])  # the signed id's own limit (4 a minute): another session gives it no more
    for _ in range(2):
        vote(second, ids[1])
    with pytest.raises(AppError, match="Too many votes from your connection"):
        vote(second, ids[2])  # the address's limit (6 a minute) across all its ids
    assert len(app.services.store.judgements()) == stored + 6


def test_contributed_photos_wait_for_an_admin_or_enough_reviewers(server, good_inputs):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    app, _, connect = server
    app.services.limits = fresh_limits(app, new=50, votes=50)
    client = connect()
    first = client.predict(handle_file(str(good_inputs["non_square"])), True, api_name="/contribute")
    second = client.predict(handle_file(str(good_inputs["grayscale"])), True, api_name="/contribute")
    assert first["status"] == second["status"] == "pending"
    moderation = app.services.moderation
    assert not moderation.visible(first["image_id"]) and not moderation.visible(second["image_id"])
    reviewers = [proven_rater(app, f"anon-reviewer-{k}") for k in range(3)]  # fresh ids review nothing
    seen = set()
    for _ in range(25):  # pending photos are never paired
        ticket, _, _ = client.predict(reviewers[0], api_name="/next_pair")
        seen |= {ticket["left_image_id"], ticket["right_image_id"]}
    assert not seen & {first["image_id"], second["image_id"]}

    info = client.predict(reviewers[0], api_name="/review_next")
    assert info["image_id"] == first["image_id"] and info["image"].startswith("data:image/png;base64,")
    assert client.predict(reviewers[0], first["image_id"], "ok", api_name="/review")["status"] == "pending"
    with pytest.raises(AppError, match="already reviewed"):
        client.predict(reviewers[0], first["image_id"], "ok", api_name="/review")
    version = app.services.pool.version
    assert client.predict(reviewers[1], first["image_id"], "ok", api_name="/review")["status"] == "approved"
    assert moderation.visible(first["image_id"]) and app.services.pool.version > version  # samplers rebuild

    assert client.predict(reviewers[2], second["image_id"], "flag", api_name="/review")["status"] == "flagged"
    with pytest.raises(AppError, match="not waiting for review"):
        client.predict(reviewers[0], second["image_id"], "ok", api_name="/review")
    assert client.predict("s3cret", "", "", api_name="/moderate")["flagged"] == [second["image_id"]]
    with pytest.raises(AppError, match="admin token"):
        client.predict("wrong", second["image_id"], "approve", api_name="/moderate")
    assert client.predict("s3cret", second["image_id"], "approve", api_name="/moderate")["status"] == "approved"
    assert moderation.visible(second["image_id"])

    from space.services.moderation import Moderation

    reopened = Moderation(app.services.pool, quorum=2)  # the queue survives a restart
    assert reopened.status(first["image_id"]) == reopened.status(second["image_id"]) == "approved"


def test_the_secret_comes_from_the_environment_or_is_made_once(tmp_path, monkeypatch):
    from space.services.raters import SECRET_ENV, RaterIds, load_secret

    monkeypatch.delenv(SECRET_ENV, raising=False)
    made = load_secret(tmp_path)
    assert load_secret(tmp_path) == made and len(made) == 64
    assert oct((tmp_path / ".rater-secret").stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob("*.tmp"))
    monkeypatch.setenv(SECRET_ENV, "from-the-environment")
    assert load_secret(tmp_path) == b"from-the-environment"
    ours, theirs = RaterIds(made), RaterIds(b"another server")
    assert theirs.public_or_none(ours.issue()) is None
    assert ours.verify(ours.issue("hf-abc")) == "hf-abc"


def test_addresses_come_from_a_forwarded_header_only_through_named_proxies_and_are_never_kept(monkeypatch):
    from space.services.clients import Client, TrustedProxies
    from space.services.raters import AddressLimits, ClientLimits, RaterIds

    request = SimpleNamespace(session_hash="s1", client=SimpleNamespace(host="10.0.0.1"),
                              headers={"x-forwarded-for": "1.2.3.4, 5.6.7.8:4431"})
    monkeypatch.setenv("SPACE_ID", "someone/space")  # a Space trusts no proxy it was not told about either
    assert TrustedProxies("").client(request) == Client("10.0.0.1")  # a forged header changes nothing
    assert TrustedProxies("10.0.0.0/8").client(request) == Client("5.6.7.8")  # the hop the named proxy added
    assert TrustedProxies("10.0.0.0/8, 5.6.7.8").client(request) == Client("1.2.3.4")  # a chain of named proxies
    assert TrustedProxies("192.168.0.0/16").client(request) == Client("10.0.0.1")  # not a named proxy
    assert TrustedProxies("10.0.0.0/8").client(None) == Client()  # a call from Python: no address
    with pytest.raises(ValueError, match="'example.org' is not an IP address or network"):
        TrustedProxies("10.0.0.0/8, example.org")
    raters = RaterIds(b"k" * 32)
    limits = ClientLimits(raters, AddressLimits(9, 9, 9), votes_per_rater_minute=9)
    limits.vote(Client("5.6.7.8"))
    kept = repr(vars(limits._of(None)["votes"]))
    assert "5.6.7.8" not in kept and raters.pseudonym("5.6.7.8") in kept
