"""What a researcher hits at once with a campaign (issue 23, item 6): the default pair mode, exporting
the built-in pool, no photo metadata served to raters, and model scores on the first votes."""
from __future__ import annotations

import io
import os

import datasets
import httpx
import pytest
from PIL import Image

from annotations.__main__ import main as cli
from tests.helpers.app import free_port, model_options
from tests.helpers.campaigns import PHOTOS, _photo, jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def different_photos(folder):
    """One file per photo: nothing to compare same-content."""
    folder.mkdir(parents=True)
    for name in PHOTOS:
        _photo(name).save(folder / f"{name}.jpg", quality=85)
    return folder


def photo_with_gps_and_artist(path):
    image = _photo("cat")
    exif = image.getexif()
    exif[0x013B] = "Jane Doe"  # Artist
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}  # GPS
    image.save(path, quality=85, exif=exif)
    return path


def test_create_chooses_the_pair_mode_from_the_folder_and_says_which(tmp_path, capsys):
    data = str(tmp_path / "data")
    assert cli(["campaign", "create", "mixed", "--images", str(different_photos(tmp_path / "mixed")),
                "--data-dir", data]) == 0
    assert "pairs: any (auto: 3 of the 3 images have no other version of their photo)" in capsys.readouterr().out
    jpeg_versions(tmp_path / "versions")
    assert cli(["campaign", "create", "codecs", "--images", str(tmp_path / "versions"), "--data-dir", data]) == 0
    assert ("pairs: same-content (auto: each of the 6 images is one of several versions of the same photo, "
            "2 photos in all)") in capsys.readouterr().out
    assert cli(["campaign", "create", "forced", "--images", str(tmp_path / "versions"), "--pairs", "any",
                "--data-dir", data]) == 0
    assert "pairs: any (as asked)" in capsys.readouterr().out


@pytest.fixture(scope="module")
def served(untrained_bundle, tmp_path_factory):
    """(app, client): an app on a free port without the background pool scorer."""
    from space.app import create_app

    app = create_app(data_dir=tmp_path_factory.mktemp("details"), score_pool=False, min_answer_ms=0,
                     **model_options(untrained_bundle))
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    with httpx.Client(base_url=url, timeout=120) as client:
        yield app, client
    app.close()


def rater(client, session: str) -> str:
    return client.post("api/rate/rater", headers={"x-rating-session": session}).json()["rater_id"]


def test_campaign_images_reach_raters_without_gps_or_artist(served, tmp_path):
    app, client = served
    folder = tmp_path / "trip"
    jpeg_versions(folder)
    photo_with_gps_and_artist(folder / "q90" / "cat.jpg")
    assert cli(["campaign", "create", "trip", "--images", str(folder), "--data-dir", str(app.services.data_dir)]) == 0
    for image_id in app.services.campaigns.get("trip").ids:
        served_bytes = client.get(f"api/rate/image/{image_id}").content
        image = Image.open(io.BytesIO(served_bytes))
        assert not image.getexif() and "exif" not in image.info and b"Jane Doe" not in served_bytes
    cat = [i for i in app.services.campaigns.get("trip").images if i.name == "q90/cat.jpg"][0]
    assert cat.file.endswith(".png")  # re-encoded losslessly: the pixels are the decoded JPEG's
    original = Image.open(folder / "q90" / "cat.jpg").convert("RGB")
    assert Image.open(app.services.campaigns.get("trip").path(cat.image_id)).tobytes() == original.tobytes()


def test_the_first_votes_after_a_cli_created_campaign_carry_both_model_scores(served, tmp_path):
    app, client = served
    jpeg_versions(tmp_path / "fresh", seed_offset=21)
    assert cli(["campaign", "create", "fresh", "--images", str(tmp_path / "fresh"),
                "--data-dir", str(app.services.data_dir)]) == 0
    rater_id = rater(client, "s-fresh")
    for _ in range(3):
        pair = client.post("api/rate/next_pair", json={"rater_id": rater_id, "campaign": "fresh"}).json()
        ticket = pair["ticket"]
        answer = client.post("api/rate/vote", json={"rater_id": rater_id, "ticket": ticket["ticket"],
                                                    "choice": "left"})
        assert answer.status_code == 200, answer.text
    votes = app.services.store.judgements("fresh")
    assert len(votes) == 3
    assert votes["model_score_left"].notna().all() and votes["model_score_right"].notna().all()
    assert (votes["model_version"] == app.services.model.version).all()


def test_the_built_in_pool_exports_as_the_campaign_default(served, tmp_path, capsys):
    app, client = served
    rater_id = rater(client, "s-pool")
    for _ in range(2):
        pair = client.post("api/rate/next_pair", json={"rater_id": rater_id, "campaign": "default"}).json()
        client.post("api/rate/vote", json={"rater_id": rater_id, "ticket": pair["ticket"]["ticket"],
                                           "choice": "right"})
    out = tmp_path / "pool-export"
    assert cli(["campaign", "export", "default", "--out", str(out), "--bootstrap", "20",
                "--data-dir", str(app.services.data_dir)]) == 0
    assert "exported 2 judgements by 1 raters" in capsys.readouterr().out
    judgements = datasets.load_dataset(str(out), split="train")
    images = datasets.load_dataset(str(out), "images", split="train")
    assert set(judgements["campaign"]) == {"default"} and len(judgements) == 2
    assert set(images["image_id"]) == set(app.services.pool.ids)
    assert {"high", "low"} <= set(images["gold"])
