"""Moderation that holds, and small security items (issue 23, items 4 and 8), over real HTTP.

Before: an uploader approved their own photo with 3 fresh rater ids in 1.3 s;
a pending or rejected upload was downloadable at
``/gradio_api/file=<data>/pool/images/<id>.png`` and a rejected file stayed on
disk; ``/model_info`` showed anyone the model folder's path; ``.browser-secret``
was world-readable; 40 wrong admin tokens went through in 4.3 s.
"""
from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from datetime import timedelta

import pytest

from tests.helpers.app import admin_trainer, launched, model_options, proven_rater

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="module")
def server(untrained_bundle, scorer, tmp_path_factory):
    from gradio_client import Client

    from space.app import create_app

    data = tmp_path_factory.mktemp("moderation")
    trainer = admin_trainer(data, scorer)
    app = create_app(data_dir=data, score_pool=False, trainer=trainer, review_quorum=2,
                     **model_options(untrained_bundle))
    with launched(app) as url:
        yield app, url, Client(url, verbose=False)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def downloads(app, url: str, image_id: str) -> dict[str, int]:
    """HTTP status of every way a browser might fetch the upload's file."""
    root = app.services.pool.root
    return {"gradio shown": status_of(f"{url}gradio_api/file={root / 'images' / (image_id + '.png')}"),
            "gradio held": status_of(f"{url}gradio_api/file={root / 'held' / (image_id + '.png')}"),
            "rating page": status_of(f"{url}api/rate/image/{image_id}")}


def test_fresh_ids_cannot_review_and_held_photos_are_never_served(server, good_inputs):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    app, url, client = server
    pool, moderation = app.services.pool, app.services.moderation
    photo = client.predict(handle_file(str(good_inputs["non_square"])), True, api_name="/contribute")
    image_id = photo["image_id"]
    assert photo["status"] == "pending"
    assert pool.path(image_id).parent.name == "held" and not (pool.root / "images" / f"{image_id}.png").exists()
    assert set(downloads(app, url, image_id).values()) <= {403, 404}

    for _ in range(3):  # the uploader's own fresh ids: no photo to review, and no review counts
        fresh = client.predict(api_name="/rater")
        with pytest.raises(AppError, match="track record"):
            client.predict(fresh, api_name="/review_next")
        with pytest.raises(AppError, match="track record"):
            client.predict(fresh, image_id, "ok", api_name="/review")
    young = proven_rater(app, "anon-young-reviewer", age=timedelta(minutes=5))
    careless = proven_rater(app, "anon-careless-reviewer", gold_right=1)
    for rater, reason in ((young, "less than 60 minutes old"), (careless, "25% of check pairs")):
        with pytest.raises(AppError, match=reason):
            client.predict(rater, image_id, "ok", api_name="/review")
    assert moderation.status(image_id) == "pending"

    first, second = proven_rater(app, "anon-first-reviewer"), proven_rater(app, "anon-second-reviewer")
    shown = client.predict(first, api_name="/review_next")
    assert shown["image_id"] == image_id
    assert base64.b64decode(shown["image"].split(",", 1)[1]) == pool.path(image_id).read_bytes()
    assert client.predict(first, image_id, "ok", api_name="/review")["status"] == "pending"
    assert client.predict(second, image_id, "ok", api_name="/review")["status"] == "approved"
    assert pool.path(image_id) == pool.root / "images" / f"{image_id}.png" and pool.path(image_id).is_file()
    assert not (pool.root / "held" / f"{image_id}.png").exists()
    fetched = downloads(app, url, image_id)
    assert fetched["rating page"] == 200 and fetched["gradio shown"] == 200


def test_a_rejected_photo_is_deleted_and_stays_rejected(server, good_inputs):
    from gradio_client import handle_file

    from space.services.moderation import Moderation

    app, url, client = server
    pool = app.services.pool
    photo = client.predict(handle_file(str(good_inputs["grayscale"])), True, api_name="/contribute")
    image_id = photo["image_id"]
    assert pool.path(image_id).is_file()
    assert client.predict("s3cret", image_id, "reject", api_name="/moderate")["status"] == "rejected"
    assert not list(pool.root.rglob(f"{image_id}.png")) and image_id not in pool
    assert image_id not in {entry["image_id"] for entry in json.loads((pool.root / "pool.json").read_text())["images"]}
    assert set(downloads(app, url, image_id).values()) <= {403, 404}
    again = client.predict(handle_file(str(good_inputs["grayscale"])), True, api_name="/contribute")
    assert again["status"] == "rejected" and not list(pool.root.rglob(f"{image_id}.png"))
    reopened = Moderation(pool, quorum=2)  # a restart keeps the decision and the file stays gone
    assert reopened.status(image_id) == "rejected" and not list(pool.root.rglob(f"{image_id}.png"))


def test_model_info_names_no_server_folder(server):
    app, _, client = server
    info = json.dumps(client.predict(api_name="/model_info"))
    assert info and str(app.services.model.model_dir) not in info and str(app.services.data_dir) not in info
    assert "model_dir" not in info


def test_the_browser_secret_is_readable_by_the_app_only(tmp_path):
    from space.ui.rate_tab import browser_secret

    made = browser_secret(tmp_path / "fresh")
    assert oct((tmp_path / "fresh" / ".browser-secret").stat().st_mode & 0o777) == "0o600"
    assert browser_secret(tmp_path / "fresh") == made and len(made) >= 32
    old = tmp_path / "old" / ".browser-secret"  # written world-readable by an earlier version
    old.parent.mkdir()
    old.write_text("kept-from-an-earlier-version-0123456789")
    old.chmod(0o644)
    assert browser_secret(old.parent) == "kept-from-an-earlier-version-0123456789"
    assert oct(old.stat().st_mode & 0o777) == "0o600"


def test_one_admin_check_everywhere_with_wrong_tokens_limited(server):
    """Last in this module: it locks this app's admin actions out for 127.0.0.1."""
    import gradio as gr
    from gradio_client.exceptions import AppError

    from space.ui import campaign_admin
    from space.services.admin_auth import MAX_FAILURES, AdminGuard, NotAuthorised

    app, _, client = server
    assert client.predict("s3cret", "", "", api_name="/moderate") == {"pending": [], "flagged": []}
    for _ in range(MAX_FAILURES):
        with pytest.raises(AppError, match="Wrong or missing admin token"):
            client.predict("guess", "", "", api_name="/moderate")
    with pytest.raises(AppError, match="Too many wrong admin tokens"):
        client.predict("s3cret", "", "", api_name="/moderate")  # the right token too, while locked out
    with pytest.raises(AppError, match="Too many wrong admin tokens"):
        client.predict("s3cret", api_name="/redistill")  # the trainer shares the one check and its counter
    with pytest.raises(gr.Error, match="admin token"):  # not a TypeError: tokens are compared as bytes
        campaign_admin.authorise(app.services, "pässwört")

    now = [0.0]
    guard = AdminGuard("s3cret", max_failures=2, window_s=600, clock=lambda: now[0])
    for _ in range(2):
        with pytest.raises(NotAuthorised, match="Wrong"):
            guard.check("guess")
    with pytest.raises(NotAuthorised, match="try again in 10 min"):
        guard.check("s3cret")
    now[0] = 601.0
    guard.check("s3cret")  # the window has passed
