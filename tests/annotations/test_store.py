"""The durable judgement store: round trips, dataset loading, rejection of bad rows, torn tails."""

from __future__ import annotations

import math
from pathlib import Path

import datasets
import pytest

from annotations import load_judgements, load_table
from annotations.schema import InvalidImage, InvalidJudgement, Judgement, image_id_for
from annotations.store import AnnotationStore, WriterBusy
from tests.helpers import ROOT

IMAGES = ["img-a", "img-b", "img-c"]


def judgement(left: str = "img-a", right: str = "img-b", choice: str = "left", **extra) -> dict:
    return {"rater_id": "rater-1", "left_image_id": left, "right_image_id": right, "choice": choice, **extra}


@pytest.fixture
def store(tmp_path) -> AnnotationStore:
    s = AnnotationStore(tmp_path / "annotations")
    for image_id in IMAGES:
        s.register_image(image_id, "gallery", "CC-BY-4.0")
    yield s
    s.close()


def shard_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jsonl"))}


def test_round_trip_through_the_store_and_datasets(store, tmp_path):
    ids = [
        store.append(judgement(response_ms=1234, model_score_left=0.7, model_score_right=0.2, model_version="m1")),
        store.append(Judgement(rater_id="rater-2", left_image_id="img-c", right_image_id="img-a", choice="tie")),
        store.append(judgement("img-b", "img-c", "right", pair_kind="gold", app_version="0.1")),
    ]
    df = store.judgements()
    assert list(df["judgement_id"]) == ids
    assert store.count() == 3
    first = df.iloc[0]
    assert (first["choice"], first["response_ms"], first["model_score_left"]) == ("left", 1234, 0.7)
    assert str(df["timestamp"].dt.tz) == "UTC"
    assert math.isnan(df.iloc[1]["model_score_left"])

    loaded = datasets.load_dataset(str(store.root), split="train", cache_dir=str(tmp_path / "cache"))
    assert sorted(loaded["judgement_id"]) == sorted(ids)
    assert loaded.features == store.load_dataset().features
    assert loaded.features["timestamp"].dtype == "timestamp[us, tz=UTC]"
    images = load_table(store.root, "images")
    assert sorted(images["image_id"]) == IMAGES


def test_dataset_card_declares_features_but_no_file_patterns_or_split_sizes(store):
    store.append(judgement())
    card = (store.root / "README.md").read_text()
    assert "- name: model_score_left\n    dtype: float64" in card
    for stale_maker in ("data_files", "configs:", "num_examples", "splits:"):
        assert stale_maker not in card


FRESH_READS = """
import sys
import datasets
from annotations import load_judgements
from annotations.store import AnnotationStore

root = sys.argv[1]
store = AnnotationStore(root)
for image_id in ("img-a", "img-b"):
    store.register_image(image_id, "gallery", "CC0")
counts = []
for batch in (3, 5, 1):
    for _ in range(batch):
        store.append({"rater_id": "r", "left_image_id": "img-a", "right_image_id": "img-b", "choice": "left"})
    counts.append(len(datasets.load_dataset(root, split="train")))
    counts.append(len(load_judgements(root)))
other = AnnotationStore(root)  # a second writer: a new shard file
other.append({"rater_id": "r", "left_image_id": "img-b", "right_image_id": "img-a", "choice": "tie"})
counts.append(len(datasets.load_dataset(root, split="train")))
counts.append(len(load_judgements(root)))
print(counts)
"""


def test_the_plain_documented_call_reads_every_current_row_each_time(tmp_path):
    """Load, append, load again in one process: datasets must not serve its cached first read."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "hf-cache"), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", FRESH_READS, str(tmp_path / "annotations")],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "[3, 3, 8, 8, 9, 9, 10, 10]"


def test_load_judgements_reads_complete_rows_only(store):
    store.append(judgement())
    with open(store.root / "data" / f"train-{store.writer_id}.jsonl", "ab") as f:
        f.write(b'{"judgement_id":"half-writ')  # a row still being written
    assert len(load_judgements(store.root)) == 1
    with pytest.raises(FileNotFoundError, match="neither a store folder"):
        load_judgements(store.root / "missing" / "deeper")


def test_writer_ids_that_datasets_would_read_as_a_split_are_refused(tmp_path):
    for bad in ("my-test", "dev", "eval_1", "x9train"):
        with pytest.raises(ValueError, match="split name"):
            AnnotationStore(tmp_path, writer_id=bad)
    AnnotationStore(tmp_path, writer_id="contest-devices")  # words only inside other words are fine


def test_register_image_is_idempotent_and_validates(store):
    before = shard_bytes(store.root)
    store.register_image("img-a", "gallery", "CC-BY-4.0")
    assert shard_bytes(store.root) == before
    data_id = image_id_for(b"pixels")
    assert data_id.startswith("sha256-") and len(data_id) == 71
    store.register_image(data_id, "distortion", "CC0", distortion="jpeg", level=4, reference_id="img-a")
    assert len(store.images()) == 4
    with pytest.raises(InvalidImage, match="consent"):
        store.register_image("img-up", "upload", "user")
    with pytest.raises(InvalidImage, match="distortion= and level="):
        store.register_image("img-d", "distortion", "CC0")
    with pytest.raises(InvalidImage, match="unknown field"):
        store.register_image("img-e", "gallery", "CC0", colour="red")
    with pytest.raises(InvalidImage, match="source"):
        store.register_image("img-f", "camera", "CC0")
    store.register_image("img-up", "upload", "user", consent=True)
    assert len(store.images()) == 5


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (judgement(right="img-zzz"), "unknown image id"),
        (judgement(choice="up"), "choice must be one of left, right, tie"),
        ({"rater_id": "r", "left_image_id": "img-a", "choice": "left"}, "missing required field.*right_image_id"),
        (judgement(rater_id="x" * 200), "rater_id is 200 characters long"),
        (judgement(model_version="v" * 1000), "model_version is 1000 characters long"),
        (judgement(left="img-a", right="img-a"), "must differ"),
        (judgement(pair_kind="bonus"), "pair_kind"),
        (judgement(response_ms=-5), "response_ms"),
        (judgement(model_score_left=float("nan")), "finite"),
        (judgement(timestamp="2025-01-01T10:00:00"), "timezone"),
        (judgement(rater_id="bad id with spaces"), "may only contain"),
        (judgement(colour="red"), "unknown field"),
        ("not a mapping", "expected a mapping"),
    ],
)
def test_bad_rows_are_rejected_and_nothing_is_written(store, row, message):
    store.append(judgement())
    before = shard_bytes(store.root)
    with pytest.raises(InvalidJudgement, match=message):
        store.append(row)
    assert shard_bytes(store.root) == before
    assert store.count() == 1


def test_skips_are_logged_apart_from_judgements(store, tmp_path):
    skip_id = store.log_skip(rater_id="rater-1", left_image_id="img-a", right_image_id="img-b", reason="too similar")
    assert store.count() == 0
    skips = store.skips()
    assert list(skips["skip_id"]) == [skip_id] and skips.iloc[0]["reason"] == "too similar"
    with pytest.raises(InvalidJudgement, match="unknown image"):
        store.log_skip(rater_id="rater-1", left_image_id="img-a", right_image_id="nope")
    assert load_table(store.root, "skips")["skip_id"] == [skip_id]


def test_each_writer_has_its_own_shard_and_readers_see_all(tmp_path, store):
    other = AnnotationStore(store.root)
    store.append(judgement())
    other.append(judgement("img-b", "img-c"))
    assert len(list((store.root / "data").glob("train-*.jsonl"))) == 2
    assert store.count() == other.count() == 2
    other.close()


def test_a_writer_id_cannot_be_used_by_two_live_stores(store):
    store.append(judgement())
    twin = AnnotationStore(store.root, writer_id=store.writer_id)
    with pytest.raises(WriterBusy):
        twin.append(judgement())
    with pytest.raises(ValueError, match="writer_id"):
        AnnotationStore(store.root, writer_id="../escape")


def test_torn_last_line_is_invisible_and_repaired_once_its_writer_is_gone(store, tmp_path):
    store.append(judgement())
    dead = AnnotationStore(store.root, writer_id="deadwriter")
    kept = dead.append(judgement("img-b", "img-c"))
    dead.close()  # the writer is gone (as after a crash): its lock is free
    shard = store.root / "data" / "train-deadwriter.jsonl"
    with open(shard, "ab") as f:
        f.write(b'{"judgement_id":"torn","rater_id":"rat')  # a write cut short by a power loss
    reader = AnnotationStore(store.root)
    assert reader.count() == 2 and kept in set(reader.judgements()["judgement_id"])
    reader.append(judgement("img-c", "img-a"))  # the next writer repairs dead writers' tails
    assert shard.read_bytes().endswith(b"\n")
    loaded = datasets.load_dataset(str(store.root), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(loaded) == 3
    reader.close()


def test_reader_of_a_missing_store_is_empty(tmp_path):
    empty = AnnotationStore(tmp_path / "nothing-here")
    assert empty.count() == 0
    assert list(empty.judgements().columns)[:3] == ["judgement_id", "timestamp", "rater_id"]
    assert len(empty.load_dataset()) == 0
    assert not (tmp_path / "nothing-here").exists()


def test_default_root_follows_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CVRKD_DATA_DIR", str(tmp_path / "appdata"))
    assert AnnotationStore().root == tmp_path / "appdata" / "annotations"
