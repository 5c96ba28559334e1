"""Campaign reset and clone (issue 23, item 6): a speaker reruns a talk under the same link and QR code.

Real data folders, the real store and ``datasets``; the app over real HTTP (the rating page's JSON routes)
while the CLI resets the campaign beside it.
"""
from __future__ import annotations

import hashlib
import json
import os

import datasets
import httpx
import pytest

from annotations.__main__ import main as cli
from annotations.campaigns import CampaignRegistry
from annotations.rounds import current_judgements
from annotations.store import AnnotationStore
from tests.helpers.app import free_port, model_options
from tests.helpers.campaigns import jpeg_versions

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def fingerprint(folder) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def vote(store: AnnotationStore, campaign, rater: str, n: int) -> list[str]:
    ids = campaign.ids
    return [store.append({"rater_id": rater, "left_image_id": ids[k % 2], "right_image_id": ids[2 + k % 2],
                          "choice": "left", "campaign": campaign.name}) for k in range(n)]


@pytest.fixture
def talk(tmp_path):
    """(data dir, registry): a campaign ``talk`` made by the CLI."""
    data = tmp_path / "data"
    jpeg_versions(tmp_path / "photos")
    assert cli(["campaign", "create", "talk", "--images", str(tmp_path / "photos"), "--data-dir", str(data),
                "--title", "Which looks better?", "--audience", "120", "--gold-share", "0.2"]) == 0
    return data, CampaignRegistry.for_data_dir(data)


def test_reset_keeps_every_judgement_and_only_the_current_round_counts(talk, tmp_path, capsys):
    data, registry = talk
    store = AnnotationStore(data / "annotations")
    first = vote(store, registry.get("talk"), "rater-a", 3)
    stored_before = fingerprint(data / "annotations" / "data")
    capsys.readouterr()
    assert cli(["campaign", "reset", "talk", "--data-dir", str(data)]) == 0
    assert "round 2" in capsys.readouterr().out
    assert fingerprint(data / "annotations" / "data") == stored_before  # no judgement line rewritten or deleted
    campaign = registry.get("talk")
    assert campaign.round == 2 and len(campaign.resets) == 1
    assert current_judgements(store, campaign, "talk").empty and len(store.judgements("talk")) == 3
    second = vote(store, campaign, "rater-b", 2)
    assert list(current_judgements(store, campaign, "talk")["judgement_id"]) == second
    assert cli(["campaign", "list", "--data-dir", str(data)]) == 0
    assert "talk\topen\tround 2\t6 images\t2 judgements\t1 raters" in capsys.readouterr().out

    out = tmp_path / "full"  # keep: every round stays in a full export, each judgement marked with its round
    assert cli(["campaign", "export", "talk", "--out", str(out), "--data-dir", str(data), "--bootstrap", "10"]) == 0
    exported = datasets.load_dataset(str(out), split="train")
    assert dict(zip(exported["judgement_id"], exported["round"])) == {**dict.fromkeys(first, 1),
                                                                      **dict.fromkeys(second, 2)}
    assert "rounds 1, 2" in (out / "README.md").read_text()
    store.close()


def test_reset_with_archive_exports_the_earlier_rounds_before_the_new_one(talk, tmp_path, capsys):
    data, registry = talk
    store = AnnotationStore(data / "annotations")
    first = vote(store, registry.get("talk"), "rater-a", 3)
    assert cli(["campaign", "reset", "talk", "--data-dir", str(data)]) == 0
    second = vote(store, registry.get("talk"), "rater-b", 2)
    capsys.readouterr()
    archive = tmp_path / "archive"
    assert cli(["campaign", "reset", "talk", "--archive", str(archive), "--data-dir", str(data)]) == 0
    assert f"the 5 judgements of rounds 1-2 are archived to {archive}" in capsys.readouterr().out
    archived = datasets.load_dataset(str(archive), split="train")
    assert dict(zip(archived["judgement_id"], archived["round"])) == {**dict.fromkeys(first, 1),
                                                                      **dict.fromkeys(second, 2)}
    scores = datasets.load_dataset(str(archive), "scores", split="train")
    assert sum(scores["n_judgements"]) == 2 * 5
    assert registry.get("talk").round == 3 and len(store.judgements("talk")) == 5

    third = vote(store, registry.get("talk"), "rater-c", 1)  # the default folder: one per reset, under the data dir
    assert cli(["campaign", "reset", "talk", "--archive", "--data-dir", str(data)]) == 0
    [folder] = (data / "archives" / "talk").iterdir()
    assert folder.name.endswith("-rounds-1-3")
    assert sorted(datasets.load_dataset(str(folder), split="train")["judgement_id"]) == sorted(first + second + third)
    store.close()


def test_bad_resets_and_clones_say_why_and_change_nothing(talk, tmp_path, capsys):
    data, registry = talk
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    before = fingerprint(data)
    cases = [
        (["reset", "nope"], "unknown campaign 'nope'"),
        (["reset", "default"], "built-in rating pool"),
        (["reset", "talk", "--archive", str(tmp_path / "busy")], "is not empty"),
        (["clone", "talk", "talk"], "already exists"),
        (["clone", "talk", "Bad_Name"], "not valid"),
        (["clone", "talk", "default"], "built-in"),
        (["clone", "default", "copy"], "built-in rating pool"),
        (["clone", "nope", "copy"], "unknown campaign 'nope'"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert cli(["campaign", *args, "--data-dir", str(data)]) == 2, args
        assert message in capsys.readouterr().err, args
    assert fingerprint(data) == before and (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    assert registry.names() == ["talk"] and registry.get("talk").round == 1


def test_clone_copies_settings_and_images_without_judgements(talk, capsys):
    data, registry = talk
    store = AnnotationStore(data / "annotations")
    vote(store, registry.get("talk"), "rater-a", 3)
    registry.set_status("talk", "closed")
    registry.set_results_hidden("talk", True)
    registry.start_round("talk")
    assert cli(["campaign", "clone", "talk", "talk-again", "--data-dir", str(data)]) == 0
    assert "'talk-again': a copy of 'talk' (6 images" in capsys.readouterr().out
    source, copy = registry.get("talk"), registry.get("talk-again")
    for setting in ("title", "instructions", "pairs", "gold_share", "audience", "results_hidden", "images",
                    "source", "skipped"):
        assert getattr(copy, setting) == getattr(source, setting), setting
    assert copy.is_open and copy.round == 1 and copy.resets == ()
    assert fingerprint(copy.folder / "images") == fingerprint(source.folder / "images")
    assert all(copy.path(i).is_file() for i in copy.ids)
    assert store.judgements("talk-again").empty and len(store.judgements("talk")) == 3
    assert sorted(p.name for p in registry.root.iterdir()) == ["talk", "talk-again"]  # no staging left over
    store.close()


def test_a_manifest_and_store_from_before_rounds_load_and_export_unchanged(talk, tmp_path):
    data, registry = talk
    store = AnnotationStore(data / "annotations")
    ids = vote(store, registry.get("talk"), "rater-a", 2)
    store.close()
    manifest = data / "campaigns" / "talk" / "campaign.json"
    record = json.loads(manifest.read_text())
    del record["resets"]  # as written before rounds existed
    manifest.write_text(json.dumps(record))
    old = CampaignRegistry.for_data_dir(data).get("talk")
    assert old.round == 1 and old.resets == ()
    assert cli(["campaign", "export", "talk", "--out", str(tmp_path / "out"), "--data-dir", str(data),
                "--bootstrap", "10"]) == 0
    exported = datasets.load_dataset(str(tmp_path / "out"), split="train")
    assert sorted(exported["judgement_id"]) == sorted(ids) and set(exported["round"]) == {1}
    assert sorted(datasets.load_dataset(str(data / "annotations"), split="train")["judgement_id"]) == sorted(ids)


@pytest.fixture(scope="module")
def served(untrained_bundle, tmp_path_factory):
    """(app, client): an app on a free port, live snapshots rebuilt on every poll after the first."""
    from space.app import create_app

    app = create_app(data_dir=tmp_path_factory.mktemp("rounds"), score_pool=False, min_answer_ms=0,
                     **model_options(untrained_bundle))  # answers as fast as a script: the floor has its own tests
    app.services.live.interval_s = 0.0
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    with httpx.Client(base_url=url, timeout=120) as client:
        yield app, client
    app.close()


def live(app, client, campaign: str) -> dict:
    """The live numbers after any rebuild the last poll started (what the presenter view polls)."""
    client.get(f"api/rate/live/{campaign}")
    app.services.live.wait()
    return client.get(f"api/rate/live/{campaign}").json()


def test_a_reset_while_the_app_serves_restarts_the_live_view_counts_and_old_pairs(served, tmp_path):
    app, client = served
    data = str(app.services.data_dir)
    jpeg_versions(tmp_path / "photos")
    assert cli(["campaign", "create", "rerun", "--images", str(tmp_path / "photos"), "--data-dir", data]) == 0
    rater = client.post("api/rate/rater", json={"campaign": "rerun"}).json()["rater_id"]

    def pair() -> dict:
        answer = client.post("api/rate/next_pair", json={"rater_id": rater, "campaign": "rerun"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def answer(ticket: dict) -> httpx.Response:
        return client.post("api/rate/vote", json={"rater_id": rater, "ticket": ticket["ticket"]["ticket"],
                                                  "choice": "left", "campaign": "rerun"})

    for k in range(4):
        assert answer(pair()).json()["count"] == k + 1
    assert live(app, client, "rerun")["n_judgements"] == 4
    presenter = client.get("present/rerun").text
    held = pair()  # shown before the reset, answered after it

    assert cli(["campaign", "reset", "rerun", "--data-dir", data]) == 0
    refused = answer(held)
    assert refused.status_code == 400 and "restarted" in refused.json()["error"]
    assert len(app.services.store.judgements("rerun")) == 4
    numbers = live(app, client, "rerun")
    assert numbers["n_judgements"] == 0 and numbers["n_raters"] == 0 and numbers["ranking"] == []
    assert app.services.insights.current("rerun").n_judgements == 0  # the Leaderboard and /leaderboard
    fresh = pair()
    assert fresh["count"] == 0
    assert answer(fresh).json()["count"] == 1
    assert live(app, client, "rerun")["n_judgements"] == 1
    assert client.get("present/rerun").text == presenter  # the same page, link and QR code
    assert client.get("rate/rerun").status_code == 200
