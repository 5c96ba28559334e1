"""Shared by the app tests: which model to serve and a free local port."""
from __future__ import annotations

import socket
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from tests.helpers import ROOT

SHIPPED = ROOT / "cvrkd" / "weights"


def model_options(untrained_bundle) -> dict:
    """The shipped model when it is installed, else the random-init test bundle."""
    if (SHIPPED / "student" / "config.json").is_file():
        return {"model_dir": SHIPPED, "allow_untrained": False}
    return {"model_dir": untrained_bundle, "allow_untrained": True}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def proven_rater(app, public: str, gold_right: int = 4, age: timedelta = timedelta(hours=2)) -> str:
    """A signed id with a track record in the app's store (``space.services.reviewers``): 20 judgements from ``age``
    ago, 4 of them gold pairs of which ``gold_right`` were answered as expected."""
    from annotations.schema import Judgement

    pool = app.services.pool
    gold = pool.gold_pairs()[:4]
    others = [i for i in pool.ids if pool.get(i).origin != "upload"]
    when = datetime.now(timezone.utc) - age
    for k in range(20):
        if k < len(gold):
            better, worse = gold[k]
            row = Judgement(public, better, worse, "left" if k < gold_right else "right", pair_kind="gold",
                            timestamp=when)
        else:
            row = Judgement(public, others[k], others[k + 1], "left", timestamp=when + timedelta(seconds=k))
        app.services.store.append(row)
    return signed(app, public)


def signed(app, public: str) -> str:
    """A rater id signed by the app under test, as ``/rater`` hands out (no client limits in between)."""
    return app.services.raters.issue(public)


def admin_trainer(data, scorer, count_judgements=None):
    """The app's trainer for a test app under ``data``, with the admin token ``s3cret`` (and no round started)."""
    from annotations.store import AnnotationStore
    from space.services.trainer_service import TrainerService

    return TrainerService(store_dir=data / "annotations", registry_dir=data / "registry",
                          images_dir=data / "pool" / "images", model_dir=scorer.model_dir, cache_dir=data / "cache",
                          count_judgements=count_judgements or AnnotationStore(data / "annotations").count,
                          swap_student=scorer.swap_student, served_version=lambda: scorer.model_version,
                          admin_token="s3cret")


@contextmanager
def launched(app) -> Iterator[str]:
    """Serve a built app on a free local port for the test's duration; yields its URL."""
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        app.close()


def jpeg_campaign_app(bundle: Path, tmp_path_factory, label: str, campaigns: dict):
    """An app on the test model (no pool scoring) whose campaigns (name -> ``Settings``) each hold
    JPEG versions of the same photos."""
    from space.app import create_app
    from tests.helpers.campaigns import jpeg_versions

    photos = tmp_path_factory.mktemp(f"{label}-photos")
    jpeg_versions(photos)
    app = create_app(data_dir=tmp_path_factory.mktemp(label), score_pool=False, **model_options(bundle))
    for name, settings in campaigns.items():
        app.services.campaigns.create(name, photos, app.services.store, settings)
    return app
