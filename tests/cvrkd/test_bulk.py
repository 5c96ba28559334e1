"""Bulk scoring: folders and Hugging Face datasets into resumable Parquet shards."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from cvrkd.bulk import BulkError, ScorerOptions, open_source, score_dataset
from tests.helpers.images import photo

from tests.helpers import ROOT


def make_folder(root: Path, count: int, broken: int = 1) -> Path:
    """``count`` photos (some in a subfolder) plus ``broken`` unreadable files."""
    for index in range(count):
        folder = root / ("nested" if index % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo(240 + 7 * index, 230 + 3 * index)).save(folder / f"img{index:03d}.png")
    for index in range(broken):
        (root / f"broken{index}.jpg").write_bytes(b"this is not a JPEG")
    (root / "notes.txt").write_text("not an image suffix: skipped")
    return root


def options(bundle: Path, **extra) -> ScorerOptions:
    return ScorerOptions(model_dir=str(bundle), allow_untrained=True, **extra)


def run_cli(*args, data_dir) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cvrkd", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, "CVRKD_DATA_DIR": str(data_dir)})


def test_folder_local_engine_matches_single_scores(tmp_path, untrained_bundle, data_dir, scorer):
    source = open_source(make_folder(tmp_path / "photos", 5))
    assert len(source) == 6 and "notes.txt" not in source.keys and "nested/img000.png" in source.keys
    summary = score_dataset(source, tmp_path / "out", options(untrained_bundle), shard_size=4,
                            batch_size=3, progress=False)
    assert (summary.scored_now, summary.failed_now, summary.shards_written) == (6, 1, 2)
    table = pd.read_parquet(tmp_path / "out")
    assert list(table.columns) == ["path", "score", "spread", "model_version", "backend", "error"]
    assert sorted(table["path"]) == sorted(source.keys)
    broken = table.set_index("path").loc["broken0.jpg"]
    assert pd.isna(broken["score"]) and "not an image" in broken["error"]
    for row in table[table["error"] == ""].itertuples():
        single = scorer.score(tmp_path / "photos" / row.path)
        assert abs(single.score - row.score) <= 1e-4 and abs(single.spread - row.spread) <= 1e-4
        assert row.model_version == scorer.model_version and row.backend == scorer.backend

    import datasets

    loaded = datasets.load_dataset("parquet", data_dir=str(tmp_path / "out"), split="train")
    assert loaded.num_rows == 6 and set(loaded["path"]) == set(source.keys)


def test_rerun_skips_finished_shards_and_refuses_another_job(tmp_path, untrained_bundle, data_dir):
    photos = make_folder(tmp_path / "photos", 4, broken=0)
    out = tmp_path / "out"
    first = score_dataset(open_source(photos), out, options(untrained_bundle), shard_size=2,
                          progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    again = score_dataset(open_source(photos), out, options(untrained_bundle), shard_size=2,
                          progress=False)
    assert first.shards_written == 2 and (again.shards_skipped, again.scored_now) == (2, 0)
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    Image.fromarray(photo()).save(photos / "added.png")
    with pytest.raises(BulkError, match="another job"):
        score_dataset(open_source(photos), out, options(untrained_bundle), shard_size=2,
                      progress=False)


@pytest.mark.slow  # two full CLI runs; the in-process rerun test covers resuming by default
def test_sigkill_halfway_then_rerun_scores_every_image_exactly_once(tmp_path, untrained_bundle,
                                                                    data_dir):
    photos = make_folder(tmp_path / "photos", 23, broken=1)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "cvrkd", "score-dataset", str(photos), "--out", str(out),
               "--shard-size", "3", "--batch-size", "1", "--model", str(untrained_bundle),
               "--allow-untrained"]
    env = {**os.environ, "CVRKD_DATA_DIR": str(data_dir)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(list(out.glob("shard-*.parquet"))) < 2 and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.parquet")}
    assert 2 <= len(finished) < 8, finished  # killed halfway: some shards done, others not

    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr  # 1 = finished, with the unreadable file reported
    assert f"{len(finished)} finished shards skipped" in done.stderr
    table = pd.read_parquet(out)
    assert len(table) == 24 and table["path"].is_unique
    assert set(table["path"]) == set(open_source(photos).keys)
    assert (table["error"] != "").sum() == 1
    assert all(finished[name] == (out / name).stat().st_mtime_ns for name in finished)
    assert not list(out.glob(".shard-*"))  # no half-written file left behind


def test_hugging_face_dataset_source_with_id_column(tmp_path, untrained_bundle, data_dir, scorer):
    import datasets

    paths = [tmp_path / f"p{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        Image.fromarray(photo(260 + 10 * i, 250)).save(path)
    table = datasets.Dataset.from_dict(
        {"id": ["a", "b", "c", "d"], "picture": [str(p) for p in paths] + [str(paths[0])]},
        features=datasets.Features({"id": datasets.Value("string"), "picture": datasets.Image()}))
    table = table.map(lambda row, i: {"picture": {"bytes": b"broken", "path": None}} if i == 3 else row,
                      with_indices=True, features=table.features)
    table.save_to_disk(tmp_path / "saved")

    done = run_cli("score-dataset", tmp_path / "saved", "--out", tmp_path / "out", "--model",
                   untrained_bundle, "--allow-untrained", data_dir=data_dir)
    assert done.returncode == 1, done.stderr
    scores = pd.read_parquet(tmp_path / "out").set_index("id")
    assert list(scores.index) == ["a", "b", "c", "d"] and scores.loc["d", "error"]
    for key, path in zip("abc", paths):
        assert abs(scores.loc[key, "score"] - scorer.score(path).score) <= 1e-4


def test_bad_source_is_a_clear_error(tmp_path, data_dir):
    (tmp_path / "empty").mkdir()
    done = run_cli("score-dataset", tmp_path / "empty", "--out", tmp_path / "out", data_dir=data_dir)
    assert done.returncode == 2 and "holds no image files" in done.stderr
    done = run_cli("score-dataset", tmp_path / "missing" / "x", "--out", tmp_path / "out",
                   data_dir=data_dir)
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_ray_engine_two_workers_matches_local(tmp_path, untrained_bundle, data_dir, monkeypatch):
    pytest.importorskip("ray")
    # local mode starts its own instance even when the environment names a cluster (Ray would join it)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    photos = make_folder(tmp_path / "photos", 6)
    local = score_dataset(open_source(photos), tmp_path / "local", options(untrained_bundle),
                          shard_size=4, progress=False)
    ray_run = score_dataset(open_source(photos), tmp_path / "ray", options(untrained_bundle),
                            engine="ray", workers=2, batch_size=2, shard_size=4, progress=False)
    assert (ray_run.scored_now, ray_run.failed_now) == (local.scored_now, local.failed_now) == (7, 1)
    a = pd.read_parquet(tmp_path / "local").set_index("path").sort_index()
    b = pd.read_parquet(tmp_path / "ray").set_index("path").sort_index()
    assert list(a.index) == list(b.index) and list(a["error"] != "") == list(b["error"] != "")
    assert (a["score"] - b["score"]).abs().max() <= 1e-4


@pytest.mark.slow  # starts and stops a Ray head node (`ray start`), as on a cluster's head machine
def test_ray_engine_joins_a_running_cluster_with_address(tmp_path, untrained_bundle, data_dir):
    pytest.importorskip("ray")
    from tests.helpers.app import free_port

    photos = make_folder(tmp_path / "photos", 5)
    ray_cli = Path(sys.executable).with_name("ray")
    port = free_port()
    # the nodes need this package importable, as after `pip install ".[scale]"` on each of them
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    started = subprocess.run([str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=2",
                              "--include-dashboard=false"], env=env, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        local = score_dataset(open_source(photos), tmp_path / "local", options(untrained_bundle),
                              shard_size=4, progress=False)
        joined = score_dataset(open_source(photos), tmp_path / "cluster", options(untrained_bundle),
                               engine="ray", workers=1, address=f"127.0.0.1:{port}", batch_size=2, shard_size=4,
                               progress=False)
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], capture_output=True, timeout=300)
    assert (joined.scored_now, joined.failed_now) == (local.scored_now, local.failed_now) == (6, 1)
    a = pd.read_parquet(tmp_path / "local").set_index("path").sort_index()
    b = pd.read_parquet(tmp_path / "cluster").set_index("path").sort_index()
    assert list(a.index) == list(b.index) and (a["score"] - b["score"]).abs().max() <= 1e-4
