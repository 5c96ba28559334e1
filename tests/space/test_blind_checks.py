"""Blind checks (issue 29, item 3): a ticket does not tell a gold or repeat check from any other pair.

Before, every ticket said ``pair_kind: gold`` or ``repeat``, so a script could answer the checks right and the
rest at random and pass rater quality control. Over real HTTP (the rating page's JSON routes) and through
``gradio_client`` (the ``/next_pair`` API), every pair served on a campaign with gold pairs and repeats has
the same fields of the same shapes; only the store, written by the server, knows which were checks.
"""
from __future__ import annotations

import json
import os
import re
from collections import defaultdict

import httpx
import pytest

from tests.helpers.app import launched, model_options
from tests.helpers.campaigns import four_images

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="module")
def served(untrained_bundle, tmp_path_factory):
    """(app, URL): a four-image campaign ``checks`` (any pairs, gold marked, half the pairs gold checks)."""
    from annotations.campaigns import Settings
    from space.app import create_app

    app = create_app(data_dir=tmp_path_factory.mktemp("blind"), score_pool=False, min_answer_ms=0,
                     **model_options(untrained_bundle))
    folder = four_images(tmp_path_factory.mktemp("blind-photos"), gold=True)
    app.services.campaigns.create("checks", folder, app.services.store, Settings(pairs="any", gold_share=0.5))
    with launched(app) as url:
        yield app, url


def shape(value):
    """What a script could tell apart without knowing the images: the JSON structure, each string with its
    hex digits and other digits blanked (ids and URLs of the same kind look alike), numbers by type."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(item) for item in value]
    if isinstance(value, str):
        return re.sub(r"[0-9a-f]", "h", value)
    return type(value).__name__


def kinds_of(app, receipts: dict[str, str]) -> dict[str, str]:
    """record id -> the pair kind the server stored with the vote."""
    rows = app.services.store.judgements("checks").set_index("judgement_id")
    return {ticket: rows.loc[record, "pair_kind"] for ticket, record in receipts.items()}


def test_tickets_of_every_kind_look_alike_on_the_rating_page_routes(served):
    app, url = served
    answers, receipts = {}, {}
    with httpx.Client(base_url=url, timeout=60) as client:
        for k in range(16):
            rater = client.post("api/rate/rater", json={"campaign": "checks"}).json()["rater_id"]
            for _ in range(12):  # until this rater is done (six pairs and their repeats)
                answer = client.post("api/rate/next_pair", json={"rater_id": rater, "campaign": "checks"})
                if "ticket" not in answer.json():
                    break
                ticket = answer.json()["ticket"]["ticket"]
                answers[ticket] = answer
                vote = client.post("api/rate/vote", json={"rater_id": rater, "ticket": ticket,
                                                          "choice": "left", "campaign": "checks"})
                receipts[ticket] = vote.json()["id"]
    kinds = kinds_of(app, receipts)
    assert set(kinds.values()) == {"active", "gold", "repeat"}  # the server knows, and stored it with each vote
    shapes = defaultdict(set)
    for ticket, answer in answers.items():
        body = answer.json()
        shapes[kinds[ticket]].add(json.dumps(shape(body), sort_keys=True))
        assert "kind" not in answer.text and "gold" not in answer.text and "repeat" not in answer.text
        assert set(answer.headers) == set(answers[next(iter(answers))].headers)
    assert len(set.union(*shapes.values())) == 1, shapes  # one shape for every kind
    gold_sides = {answers[t].json()["ticket"]["left_image_id"] for t, kind in kinds.items() if kind == "gold"}
    high = {i.image_id for i in app.services.campaigns.get("checks").images if i.gold == "high"}
    assert gold_sides & high and gold_sides - high  # the better image of a gold pair is on either side


def test_tickets_of_every_kind_look_alike_through_the_gradio_api(served):
    from gradio_client import Client

    app, url = served
    client = Client(url, verbose=False)
    tickets, receipts = {}, {}
    for k in range(10):
        rater = client.predict("checks", api_name="/rater")
        for _ in range(12):
            ticket = client.predict(rater, "checks", api_name="/next_pair")[0]
            if "ticket" not in ticket:
                break
            tickets[ticket["ticket"]] = ticket
            receipts[ticket["ticket"]] = client.predict(rater, ticket["ticket"], "right", None,
                                                        api_name="/vote")["id"]
    kinds = kinds_of(app, receipts)
    assert {"gold", "repeat"} <= set(kinds.values())
    shapes = {kind: {json.dumps(shape(tickets[t]), sort_keys=True) for t, k in kinds.items() if k == kind}
              for kind in set(kinds.values())}
    assert len(set.union(*shapes.values())) == 1, shapes
    assert set(next(iter(tickets.values()))) == {"ticket", "left_image_id", "right_image_id", "campaign"}
