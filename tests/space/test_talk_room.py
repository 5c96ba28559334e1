"""A room behind one router: 80 people from one address join a talk's campaign (created for an audience
of 200) within 10 s and vote every 1–3 s for 45 s through the rating page's JSON routes, with the app's
default settings and no limit raised anywhere.

Before (today's main, default limits): 60 of 80 got a rater id; 240 votes were stored and 1,134 refused.
"""
from __future__ import annotations

import argparse
import asyncio
import os

import pytest

from tests.helpers.app import free_port, model_options
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.mark.slow
def test_eighty_people_from_one_address_all_rate_and_no_vote_is_refused(untrained_bundle, tmp_path):
    from annotations.campaigns import Settings
    from bench import talk
    from space.app import create_app

    photos = tmp_path / "photos"
    jpeg_versions(photos, photos=("cat", "coffee", "astronaut"))
    app = create_app(data_dir=tmp_path / "data", score_pool=False, **model_options(untrained_bundle))
    app.services.campaigns.create(talk.CAMPAIGN, photos, app.services.store, Settings(audience=200))
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        args = argparse.Namespace(audience=80, join=10.0, duration=45.0, pollers=1, seed=0, via="page",
                                  think=(1.0, 3.0))
        tally = talk.Tally()
        asyncio.run(talk.run(url, args, tally, frozenset()))
        stored = app.services.store.judgements(talk.CAMPAIGN)
    finally:
        app.close()
    refused = {endpoint: messages[:3] for endpoint, messages in tally.errors.items() if messages}
    assert not refused
    assert len(tally.raters) == 80
    assert set(stored["judgement_id"]) == tally.acknowledged and len(tally.acknowledged) > 80 * 10
