"""An end for raters (issue 29, item 4): no pair twice except as a repeat check, and a clear "all done".

Before, one rater on a four-image campaign (six possible pairs) was served 24 pairs, each three to five
times, and never told they were done. Over real HTTP (the rating page's JSON routes) and through
``gradio_client``, a rater of a four-image campaign is served each of its six pairs once, a pair a second
time only as a repeat check, and then thanked, as often as they ask; a campaign's limit per rater ends
their round sooner. The Rate tab's thanks are in tests/browser/test_rater_end.py.
"""
from __future__ import annotations

import os
from collections import Counter

import httpx
import pandas as pd
import pytest

from annotations.__main__ import main as cli
from tests.helpers.app import launched, model_options
from tests.helpers.campaigns import four_images

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="module")
def served(untrained_bundle, tmp_path_factory):
    """(app, URL): the four-image campaign ``tiny`` (six pairs)."""
    from space.app import create_app

    data = tmp_path_factory.mktemp("end")
    assert cli(["campaign", "create", "tiny", "--images", str(four_images(tmp_path_factory.mktemp("photos"))),
                "--pairs", "any", "--data-dir", str(data)]) == 0
    app = create_app(data_dir=data, score_pool=False, min_answer_ms=0, **model_options(untrained_bundle))
    with launched(app) as url:
        yield app, url


def capped(app, tmp_path) -> str:
    """The campaign ``capped``: four images, at most three pairs per rater (created by the CLI beside the app)."""
    if "capped" not in app.services.campaigns:
        assert cli(["campaign", "create", "capped", "--images", str(four_images(tmp_path / "capped")), "--pairs",
                    "any", "--pairs-per-rater", "3", "--data-dir", str(app.services.data_dir)]) == 0
    return "capped"


def rate_until_done(client: httpx.Client, campaign: str, limit: int = 30) -> tuple[list[dict], dict, str]:
    """A new rater answers every pair served until thanked: (pairs served, the final answer, rater id)."""
    rater = client.post("api/rate/rater", json={"campaign": campaign}).json()["rater_id"]
    pairs = []
    for _ in range(limit):
        answer = client.post("api/rate/next_pair", json={"rater_id": rater, "campaign": campaign})
        assert answer.status_code == 200, answer.text
        if "ticket" not in answer.json():
            return pairs, answer.json(), rater
        ticket = answer.json()["ticket"]
        pairs.append(ticket)
        assert client.post("api/rate/vote", json={"rater_id": rater, "ticket": ticket["ticket"],
                                                  "choice": "left", "campaign": campaign}).status_code == 200
    raise AssertionError(f"still serving pairs after {limit}: {Counter(frozenset((p['left_image_id'], p['right_image_id'])) for p in pairs)}")


def test_a_rater_sees_each_of_six_pairs_once_repeats_only_as_checks_then_all_done(served):
    app, url = served
    with httpx.Client(base_url=url, timeout=60) as client:
        pairs, done, rater = rate_until_done(client, "tiny")
        assert done["done"] is True and "All done, thank you" in done["message"] and done["count"] == len(pairs)
        for _ in range(2):  # asking again changes nothing
            again = client.post("api/rate/next_pair", json={"rater_id": rater, "campaign": "tiny"}).json()
            assert again["done"] is True and "ticket" not in again
    times = Counter(frozenset((p["left_image_id"], p["right_image_id"])) for p in pairs)
    assert len(times) == 6 and set(times.values()) <= {1, 2}
    stored = app.services.store.judgements("tiny")
    stored = stored[stored["rater_id"] == rater.rpartition(".")[0]].sort_values("timestamp")
    again = pd.Series([frozenset(p) for p in zip(stored["left_image_id"], stored["right_image_id"])]).duplicated()
    assert set(stored["pair_kind"][again.to_numpy()]) <= {"repeat"} and again.sum() == len(pairs) - 6


def test_a_campaigns_limit_per_rater_ends_the_round_for_them_sooner(served, tmp_path):
    app, url = served
    with httpx.Client(base_url=url, timeout=60) as client:
        pairs, done, _ = rate_until_done(client, capped(app, tmp_path))
    assert len(pairs) == 3 and "the 3 pairs this campaign asks of each person" in done["message"]


def test_the_api_says_all_done_with_no_images(served, tmp_path):
    from gradio_client import Client

    app, url = served
    client = Client(url, verbose=False)
    campaign = capped(app, tmp_path)
    rater = client.predict(campaign, api_name="/rater")
    for _ in range(3):
        ticket, left, right = client.predict(rater, campaign, api_name="/next_pair")
        assert left and right
        client.predict(rater, ticket["ticket"], "same", None, api_name="/vote")
    done, left, right = client.predict(rater, campaign, api_name="/next_pair")
    assert done["done"] is True and "All done, thank you" in done["message"] and left is None and right is None
