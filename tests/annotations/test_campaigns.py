"""Rating campaigns in ``annotations``: import, registry, CLI, export, and the store's campaign field."""
from __future__ import annotations

import json

import datasets
import pytest

from annotations.__main__ import main as cli
from annotations.builtin_pool import campaigns_with_pool
from annotations.campaigns import CampaignError, CampaignRegistry, Settings, UnknownCampaign
from annotations.export import export_campaign
from annotations.schema import InvalidJudgement
from annotations.store import AnnotationStore
from tests.helpers.campaigns import image_dataset, jpeg_versions, junk


@pytest.fixture
def data(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def store(data):
    s = AnnotationStore(data / "annotations")
    yield s
    s.close()


def registry(data) -> CampaignRegistry:
    return CampaignRegistry.for_data_dir(data)


def test_a_folder_becomes_a_campaign_and_junk_is_listed_with_reasons(tmp_path, data, store):
    jpeg_versions(tmp_path / "photos")
    junk(tmp_path / "photos" / "junk")
    report = registry(data).create("codecs", tmp_path / "photos", store,
                                   Settings(title="JPEG quality", licence="CC0-1.0"))
    campaign = report.campaign
    assert len(campaign.images) == 6 and campaign.title == "JPEG quality" and campaign.is_open
    reasons = {item.name: item.reason for item in report.skipped}
    assert set(reasons) == {f"junk/{n}" for n in ("notes.txt", "truncated.png", "empty.jpg", "animated.gif",
                                                  "tiny.png")}
    assert "not an image" in reasons["junk/notes.txt"] and "truncated" in reasons["junk/truncated.png"]
    assert "animated" in reasons["junk/animated.gif"] and "too small" in reasons["junk/tiny.png"]
    assert {i.content for i in campaign.images} == {"cat", "coffee"}  # versions share their file name
    cat = [i for i in campaign.images if i.name == "q30/cat.jpg"][0]
    assert cat.source == "folder:q30/cat.jpg" and cat.licence == "CC0-1.0"
    assert campaign.path(cat.image_id).read_bytes() == (tmp_path / "photos" / "q30" / "cat.jpg").read_bytes()
    registered = AnnotationStore(store.root).images().set_index("image_id")
    assert registered.loc[cat.image_id, "licence"] == "CC0-1.0"
    assert "q30/cat.jpg" in registered.loc[cat.image_id, "dataset"]
    assert registry(data).names() == ["codecs"]


def test_a_local_dataset_folder_becomes_a_campaign_with_its_licences(tmp_path, data, store):
    report = registry(data).create("from-ds", image_dataset(tmp_path / "ds"), store, Settings(pairs="any"))
    assert len(report.campaign.images) == 4 and not report.skipped
    assert {i.licence for i in report.campaign.images} == {"CC0-1.0"}
    assert report.campaign.images[0].source.endswith("train[0]")


@pytest.mark.parametrize("name", ["Bad_Name", "a", "default", "x" * 49, "../up", "-lead", "", "has space"])
def test_invalid_names_are_refused_and_nothing_is_created(tmp_path, data, store, name):
    jpeg_versions(tmp_path / "photos")
    with pytest.raises(CampaignError, match="not valid|built-in"):
        registry(data).create(name, tmp_path / "photos", store)
    assert registry(data).names() == [] and store.images().empty


def test_unusable_sources_are_refused_with_a_message_and_nothing_is_created(tmp_path, data, store):
    reg = registry(data)
    (tmp_path / "empty").mkdir()
    cases = {
        "empty": (tmp_path / "empty", "has no files"),
        "non-images": (junk(tmp_path / "junk") and tmp_path / "junk", "at least two usable images; found 0"),
        "no-image-column": (image_dataset(tmp_path / "plain", with_image_column=False), "no image column"),
        "missing": (tmp_path / "nowhere", "no folder or dataset"),
    }
    for name, (source, message) in cases.items():
        with pytest.raises(CampaignError, match=message):
            reg.create(name, source, store, Settings(pairs="any"))
    flat = tmp_path / "flat"
    jpeg_versions(flat, photos=("cat",))
    with pytest.raises(CampaignError, match="same-content"):
        reg.create("flat", flat, store, Settings(content_from="none", pairs="same-content"))
    with pytest.raises(CampaignError, match="gold share"):
        reg.create("flat", flat, store, Settings(gold_share=2))
    assert reg.names() == [] and store.images().empty
    assert not list(reg.root.iterdir())  # no staging folder left behind
    reg.create("flat", flat, store)
    with pytest.raises(CampaignError, match="already exists"):
        reg.create("flat", flat, store)
    for action in (reg.get, lambda n: reg.set_status(n, "closed")):
        with pytest.raises(UnknownCampaign, match="unknown campaign"):
            action("nope")


def test_cli_creates_lists_closes_reopens_and_refuses_bad_input(tmp_path, data, capsys):
    jpeg_versions(tmp_path / "photos")
    base = ["--data-dir", str(data)]
    assert cli(["campaign", "create", "codecs", "--images", str(tmp_path / "photos"), "--title", "Codecs",
                "--instructions", "Judge the compression.", "--gold-share", "0", *base]) == 0
    assert "6 images imported, 0 skipped" in capsys.readouterr().out
    assert cli(["campaign", "close", "codecs", *base]) == 0
    assert registry(data).get("codecs").status == "closed"
    assert cli(["campaign", "list", *base]) == 0
    assert "codecs\tclosed\tround 1\t6 images\t0 judgements" in capsys.readouterr().out
    assert cli(["campaign", "reopen", "codecs", *base]) == 0 and registry(data).get("codecs").is_open
    assert cli(["campaign", "close", "nope", *base]) == 2
    assert cli(["campaign", "create", "Nope", "--images", str(tmp_path / "photos"), *base]) == 2
    assert cli(["campaign", "export", "codecs", "--out", str(tmp_path / "out"), "--push", "no-owner", *base]) == 2
    err = capsys.readouterr().err
    assert "unknown campaign 'nope'" in err and "not valid" in err and "owner/name" in err
    assert not (tmp_path / "out").exists()


def test_rows_without_a_campaign_belong_to_the_default_one(tmp_path, store):
    store.register_image("img-a", "gallery", "CC0")
    store.register_image("img-b", "gallery", "CC0")
    store.append({"rater_id": "r1", "left_image_id": "img-a", "right_image_id": "img-b", "choice": "left"})
    old = dict(json.loads((store.root / "data" / f"train-{store.writer_id}.jsonl").read_text().splitlines()[0]))
    old.pop("campaign")
    old.update(judgement_id="old-row", schema_version=1)  # as written before campaigns existed
    (store.root / "data" / "train-oldwriter.jsonl").write_text(json.dumps(old) + "\n")
    store.append({"rater_id": "r1", "left_image_id": "img-a", "right_image_id": "img-b", "choice": "right",
                  "campaign": "other"})
    fresh = AnnotationStore(store.root)
    assert fresh.judgements().set_index("judgement_id").loc["old-row", "campaign"] == "default"
    assert len(fresh.judgements("default")) == 2 and len(fresh.judgements("other")) == 1
    loaded = datasets.load_dataset(str(store.root), split="train")
    assert sorted(loaded["campaign"], key=str) == sorted(["default", None, "other"], key=str)
    with pytest.raises(InvalidJudgement, match="campaign name"):
        store.append({"rater_id": "r1", "left_image_id": "img-a", "right_image_id": "img-b", "choice": "left",
                      "campaign": "Not OK"})
    assert len(AnnotationStore(store.root).judgements()) == 3


def _vote(store, campaign, left, right, choice="left", rater="r1", score=(60.0, 40.0)):
    return store.append({"rater_id": rater, "left_image_id": left, "right_image_id": right, "choice": choice,
                         "campaign": campaign, "model_score_left": score[0], "model_score_right": score[1],
                         "model_version": "m1"})


def test_export_loads_as_three_configs_without_other_campaigns_votes(tmp_path, data, store):
    reg = registry(data)
    jpeg_versions(tmp_path / "a")
    jpeg_versions(tmp_path / "b", seed_offset=7)
    one = reg.create("one", tmp_path / "a", store, Settings(licence="CC-BY-4.0")).campaign
    two = reg.create("two", tmp_path / "b", store).campaign
    best = {i.content: i.image_id for i in one.images if i.name.startswith("q90")}
    worst = {i.content: i.image_id for i in one.images if i.name.startswith("q8")}
    mine = [_vote(store, "one", best[c], worst[c], rater=f"r{k}") for k in range(6) for c in best]
    other = [_vote(store, "two", two.ids[0], two.ids[1])]
    out = tmp_path / "export"
    summary = export_campaign(one, store, out, n_boot=30)
    assert summary.judgements == len(mine) and summary.raters == 6

    judgements = datasets.load_dataset(str(out), split="train")
    assert sorted(judgements["judgement_id"]) == sorted(mine) and other[0] not in judgements["judgement_id"]
    assert set(judgements["campaign"]) == {"one"}
    images = datasets.load_dataset(str(out), "images", split="train")
    assert sorted(images["image_id"]) == sorted(one.ids) and set(images["licence"]) == {"CC-BY-4.0"}
    first = images[0]
    assert first["image"].size == (192, 144) and first["source"].startswith("folder:")
    scores = datasets.load_dataset(str(out), "scores", split="train").to_pandas().set_index("image_id")
    assert sorted(scores.index) == sorted(one.ids)
    for content in best:
        b, w = scores.loc[best[content]], scores.loc[worst[content]]
        assert b["bt_score"] > w["bt_score"] and b["thurstone_score"] > w["thurstone_score"]
        assert b["bt_ci_low"] <= b["bt_score"] <= b["bt_ci_high"] and b["n_judgements"] == 6
        assert b["model_score"] == 60.0 and w["model_score"] == 40.0
        assert b["human_score"] > w["human_score"] and b["assisted_score"] > w["assisted_score"]
        assert b["assisted_ci_low"] <= b["assisted_score"] <= b["assisted_ci_high"]
        assert b["human_ci_low"] <= b["human_score"] <= b["human_ci_high"]
        assert b["prior_model_version"] == "m1" and not b["flagged"]
    unjudged = scores[scores["n_judgements"] == 0]
    assert len(unjudged) == 2 and unjudged["bt_score"].isna().all()

    export_campaign(one, store, out, n_boot=0)  # an earlier export is replaced ...
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    with pytest.raises(CampaignError, match="not an earlier campaign export"):  # ... anything else is not
        export_campaign(one, store, tmp_path / "mine")
    assert (tmp_path / "mine" / "keep.txt").read_text() == "mine"


def test_push_needs_a_token_and_says_so_offline(tmp_path, data, store, monkeypatch):
    """Only the refusals are testable offline; the upload itself is exercised against the Hub only."""
    from annotations.export import push_export

    jpeg_versions(tmp_path / "a")
    campaign = registry(data).create("one", tmp_path / "a", store).campaign
    export_campaign(campaign, store, tmp_path / "out", n_boot=0)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no saved login either
    with pytest.raises(CampaignError, match="no Hugging Face token"):
        push_export(tmp_path / "out", "someone/campaign")
    with pytest.raises(CampaignError, match="pushing to someone/campaign failed: OfflineModeIsEnabled"):
        push_export(tmp_path / "out", "someone/campaign", token="hf_not_a_real_token")


def test_reading_as_rows_arrive_gives_the_same_table_as_one_fresh_read(store):
    """The store converts only new rows on each read (votes arrive many times a second in a talk)."""
    import pandas as pd

    for image_id in ("img-a", "img-b", "img-c"):
        store.register_image(image_id, "gallery", "CC0")
    pairs = [("img-a", "img-b"), ("img-b", "img-c"), ("img-c", "img-a")]
    for k in range(12):
        left, right = pairs[k % 3]
        store.append({"rater_id": f"r{k % 4}", "left_image_id": left, "right_image_id": right,
                      "choice": "left", "campaign": "one" if k % 2 else "default",
                      "timestamp": f"2026-01-01T00:00:{59 - k:02d}Z"})  # arriving out of time order
        seen = store.judgements()
    dup = dict(store.judgements().iloc[0].to_dict())  # a row written twice (e.g. by a retried writer)
    dup["timestamp"] = dup["timestamp"].isoformat()
    (store.root / "data" / "train-replayed.jsonl").write_text(json.dumps(
        {**{k: (None if pd.isna(v) else v) for k, v in dup.items()}, "schema_version": 2}) + "\n")
    seen = store.judgements()
    fresh = AnnotationStore(store.root).judgements()
    pd.testing.assert_frame_equal(seen, fresh)
    assert len(fresh) == 12 and fresh["timestamp"].is_monotonic_increasing
    assert len(store.judgements("one")) == 6


def old_pool(data, uploads=("up-cleared", "up-held")):
    """A pool folder as the app has written it since before the pool was a campaign: ``pool.json`` with two
    gallery photos, a mild and a strong distortion of each, and contributed photos (the last one held)."""
    from PIL import Image

    folder = data / "pool"
    entries = []
    for photo in ("cat", "dog"):
        entries.append({"image_id": f"{photo}", "file": f"{photo}.png", "title": photo, "origin": "gallery",
                        "licence": "CC0-1.0", "content": photo, "distortion": None, "level": None,
                        "reference_id": None})
        for level in (1, 5):
            entries.append({"image_id": f"{photo}-{level}", "file": f"{photo}-{level}.png",
                            "title": f"{photo} · jpeg level {level}", "origin": f"distortion:jpeg:{level}",
                            "licence": "CC0-1.0", "content": photo, "distortion": "jpeg", "level": level,
                            "reference_id": photo})
    entries += [{"image_id": name, "file": f"{name}.png", "title": "uploaded photo", "origin": "upload",
                 "licence": "CC BY 4.0, granted by the uploader", "content": name, "distortion": None,
                 "level": None, "reference_id": None} for name in uploads]
    for k, entry in enumerate(entries):
        where = "held" if entry["image_id"] == uploads[-1] else "images"
        (folder / where).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40 + k, 30), (10 * k, 80, 120)).save(folder / where / entry["file"])
    (folder / "pool.json").write_text(json.dumps({"images": entries}, indent=1))
    return folder


def test_an_existing_pool_is_the_campaign_default_and_loads_unchanged(data, store):
    from annotations.rounds import current_judgements

    folder = old_pool(data)
    before = (folder / "pool.json").read_bytes()
    store.register_image("cat", "gallery", "CC0-1.0")
    store.register_image("dog", "gallery", "CC0-1.0")
    store.append({"rater_id": "r1", "left_image_id": "cat", "right_image_id": "dog", "choice": "left"})
    old = dict(json.loads((store.root / "data" / f"train-{store.writer_id}.jsonl").read_text().splitlines()[0]))
    old.pop("campaign")
    old.update(judgement_id="old-row", schema_version=1)  # written before campaigns existed
    (store.root / "data" / "train-oldwriter.jsonl").write_text(json.dumps(old) + "\n")

    registry = campaigns_with_pool(data, lambda image_id: image_id == "up-cleared")
    pool = registry.get("default")
    assert (pool.name, pool.title, pool.is_open, pool.round, pool.pairs, pool.gold_share) == (
        "default", "Built-in rating pool", True, 1, "any", 0.1)
    assert pool.ids == ["cat", "cat-1", "cat-5", "dog", "dog-1", "dog-5", "up-cleared"]  # the held one is left out
    assert pool.gold_pairs() == [("cat", "cat-5"), ("dog", "dog-5")]  # each photo against its own strongest
    assert pool.content_of()["dog-1"] == "dog" and pool.image("cat-5").gold == "low"
    assert pool.path("cat").is_file() and pool.image("dog").width == 43
    assert len(current_judgements(AnnotationStore(store.root), pool, pool.name)) == 2  # the old row included
    assert registry.names() == [] and "default" not in registry  # no folder of its own: nothing to list
    assert (folder / "pool.json").read_bytes() == before and not (data / "campaigns").exists()
    with pytest.raises(UnknownCampaign, match="unknown campaign 'default'"):
        CampaignRegistry.for_data_dir(data).get("default")  # a registry that was not told about the pool
    for change, message in ((lambda: registry.set_status("default", "closed"), "always open"),
                            (lambda: registry.set_results_hidden("default", True), "always shown"),
                            (lambda: registry.start_round("default"), "cannot be reset"),
                            (lambda: registry.clone("default", "copy"), "cannot be reset or cloned")):
        with pytest.raises(CampaignError, match=f"built-in rating pool: .*{message}"):
            change()
    assert not (data / "campaigns").exists()


def test_the_default_campaign_is_rebuilt_only_when_the_pool_changes(data, monkeypatch):
    from PIL import Image

    folder = old_pool(data)
    cleared = {"up-cleared"}
    registry = campaigns_with_pool(data, cleared.__contains__)
    first = registry.get("default")
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    assert registry.get("default") is first and opened == []  # a pair served does not re-read the pool
    (folder / "held" / "up-held.png").rename(folder / "images" / "up-held.png")  # moderation clears it
    cleared.add("up-held")
    second = registry.get("default")
    assert second.ids == [*first.ids, "up-held"] and [p.name for p in opened] == ["up-held.png"]
    entries = json.loads((folder / "pool.json").read_text())["images"]
    (folder / "images" / "up-cleared.png").unlink()  # an upload removed: its file, then its entry
    (folder / "pool.json").write_text(json.dumps({"images": [e for e in entries if e["image_id"] != "up-cleared"]}))
    assert "up-cleared" not in registry.get("default").ids and len(opened) == 1
