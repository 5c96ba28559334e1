"""Exports carry the pictures (issue 29, item 1): ``campaign export``, ``reset --archive`` and the folder a push
uploads hold each image's bytes, not a path on the server, so the data set loads anywhere with the pictures
the app served.

The app serves the images over real HTTP; the export is copied to another folder and the server's data folder is
moved away before ``datasets`` loads it, so nothing can be read from where the app kept its files.
"""
from __future__ import annotations

import io
import os
import shutil

import datasets
import httpx
import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from annotations.__main__ import main as cli
from annotations.export import push_export
from tests.helpers.app import launched, model_options
from tests.helpers.campaigns import jpeg_versions
from tests.helpers.hub_double import LocalHubApi

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def test_an_export_copied_elsewhere_loads_the_pictures_the_app_served(untrained_bundle, tmp_path):
    from space.app import create_app

    data = tmp_path / "server-data"
    jpeg_versions(tmp_path / "photos")
    assert cli(["campaign", "create", "talk", "--images", str(tmp_path / "photos"), "--data-dir", str(data)]) == 0
    app = create_app(data_dir=data, score_pool=False, min_answer_ms=0, **model_options(untrained_bundle))
    ids = app.services.campaigns.get("talk").ids
    with launched(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        rater = client.post("api/rate/rater", json={"campaign": "talk"}).json()["rater_id"]
        for _ in range(3):
            shown = client.post("api/rate/next_pair", json={"rater_id": rater, "campaign": "talk"}).json()
            assert client.post("api/rate/vote", json={"rater_id": rater, "ticket": shown["ticket"]["ticket"],
                                                      "choice": "left", "campaign": "talk"}).status_code == 200
        served = {image_id: client.get(f"api/rate/image/{image_id}").content for image_id in ids}

    exports = tmp_path / "exports"
    assert cli(["campaign", "export", "talk", "--out", str(exports / "full"), "--data-dir", str(data),
                "--bootstrap", "5"]) == 0
    assert cli(["campaign", "reset", "talk", "--archive", str(exports / "archive"), "--data-dir", str(data)]) == 0
    hub = LocalHubApi(tmp_path / "hub-remote")
    push_export(exports / "full", "someone/talk", token="hf_local_test_token", hf_api=hub)
    elsewhere = tmp_path / "another-machine"
    shutil.copytree(exports, elsewhere / "exports")
    shutil.copytree(tmp_path / "hub-remote", elsewhere / "pushed")
    shutil.rmtree(exports)
    data.rename(tmp_path / "moved-away")  # nothing the export names may still be found where the server kept it

    for folder in (elsewhere / "exports" / "full", elsewhere / "exports" / "archive", elsewhere / "pushed"):
        for file in (folder / "images").glob("*.parquet"):  # what a reader of the raw Parquet file sees
            for row in pq.read_table(file).column("image").to_pylist():
                assert row["bytes"] and "/" not in (row["path"] or "") and str(data) not in (row["path"] or "")
        images = datasets.load_dataset(str(folder), "images", split="train")
        assert sorted(images["image_id"]) == sorted(ids)
        for row in images:
            assert np.array_equal(np.asarray(row["image"].convert("RGB")), pixels(served[row["image_id"]]))
        undecoded = images.cast_column("image", datasets.Image(decode=False))
        assert {row["image_id"]: row["image"]["bytes"] for row in undecoded} == served  # the very bytes served
