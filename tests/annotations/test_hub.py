"""Hub sync, offline: configuration, arguments, upload set and locking of the real CommitScheduler.

The upload itself is replaced by a local stand-in for the Hub API
(``tests.helpers.hub_double``); the push to huggingface.co is only
exercised on a Space.
"""

from __future__ import annotations

import os
import threading

import datasets
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from annotations.hub import HubSync, upload_patterns  # noqa: E402
from annotations.store import AnnotationStore  # noqa: E402
from tests.helpers.hub_double import LocalHubApi  # noqa: E402


@pytest.fixture
def store(tmp_path):
    s = AnnotationStore(tmp_path / "annotations")
    for image_id in ("img-a", "img-b"):
        s.register_image(image_id, "gallery", "CC0")
    yield s
    s.close()


@pytest.fixture
def hub_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no saved login
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("CVRKD_HUB_DATASET", raising=False)
    return monkeypatch


def row(choice: str = "left") -> dict:
    return {"rater_id": "r1", "left_image_id": "img-a", "right_image_id": "img-b", "choice": choice}


def test_not_configured_means_no_sync(store, hub_env):
    assert HubSync.from_env(store) is None
    hub_env.setenv("CVRKD_HUB_DATASET", "someone/judgements")
    assert HubSync.from_env(store) is None  # a repo but no token: stay local
    hub_env.delenv("CVRKD_HUB_DATASET")
    hub_env.setenv("HF_TOKEN", "hf_x")
    assert HubSync.from_env(store) is None  # a token but no repo


def test_scheduler_gets_the_right_arguments_and_uploads_own_shards(store, hub_env, tmp_path):
    hub_env.setenv("CVRKD_HUB_DATASET", "someone/judgements")
    hub_env.setenv("HF_TOKEN", "hf_x")
    hub_env.setenv("CVRKD_HUB_EVERY_MINUTES", "2.5")
    api = LocalHubApi(tmp_path / "remote")
    other_writer = AnnotationStore(store.root)
    other_writer.append(row("right"))  # another replica's shard in the same folder
    sync = HubSync.from_env(store, hf_api=api)
    try:
        scheduler = sync.scheduler
        assert api.created == [{"repo_id": "someone/judgements", "private": True, "repo_type": "dataset", "exist_ok": True}]
        assert (scheduler.repo_id, scheduler.repo_type, scheduler.every) == ("someone/judgements", "dataset", 2.5)
        assert scheduler.folder_path == store.root.resolve()
        assert scheduler.allow_patterns == upload_patterns(store)
        assert store.write_lock is scheduler.lock

        store.append(row())
        sync.push_now().result(timeout=30)
        uploaded = set().union(*api.commits)  # the scheduler's own first push may have taken some files
        assert "README.md" in uploaded and f"data/train-{store.writer_id}.jsonl" in uploaded
        assert not any(other_writer.writer_id in path or path.startswith(".locks") for path in uploaded)
        remote = datasets.load_dataset(str(tmp_path / "remote"), split="train", cache_dir=str(tmp_path / "cache"))
        assert remote["judgement_id"] == list(store.judgements().query("choice == 'left'")["judgement_id"])
    finally:
        sync.stop()
        other_writer.close()


def test_private_flag_and_the_lock_is_held_around_writes(store, hub_env, tmp_path):
    hub_env.setenv("CVRKD_HUB_DATASET", "someone/judgements")
    hub_env.setenv("HF_TOKEN", "hf_x")
    hub_env.setenv("CVRKD_HUB_PRIVATE", "0")
    api = LocalHubApi(tmp_path / "remote")
    sync = HubSync.from_env(store, hf_api=api)
    try:
        assert api.created[0]["private"] is False
        done = threading.Event()
        with sync.scheduler.lock:  # what the scheduler holds while it lists files to upload
            writer = threading.Thread(target=lambda: (store.append(row()), done.set()))
            writer.start()
            assert not done.wait(0.3)  # the append waits for the lock
            assert store.count() == 0
        writer.join(timeout=10)
        assert done.is_set() and store.count() == 1
    finally:
        sync.stop()
