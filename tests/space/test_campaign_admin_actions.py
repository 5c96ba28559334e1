"""The admin's campaign actions added for issue 29, as use cases: edit what raters read, and export a campaign
as a dataset to download; both refused without the admin token, changing nothing."""
from __future__ import annotations

import zipfile

import datasets
import pytest

from tests.helpers.app import model_options
from tests.helpers.campaigns import jpeg_versions

TOKEN = "actions-admin-token"


@pytest.fixture(scope="module")
def services(untrained_bundle, tmp_path_factory):
    from annotations.campaigns import Settings
    from annotations.schema import Judgement
    from space.services.config import AppConfig
    from space.services.container import build_services

    built = build_services(AppConfig(data_dir=tmp_path_factory.mktemp("actions-data"), score_pool=False,
                                     **model_options(untrained_bundle)))
    photos = tmp_path_factory.mktemp("actions-photos")
    jpeg_versions(photos)
    talk = built.campaigns.create("talk", photos, built.store, Settings(title="Old title", instructions="Old.")).campaign
    for k in range(3):
        built.store.append(Judgement(f"anon-{k}", talk.ids[0], talk.ids[1], "left", campaign="talk"))
    yield built
    built.close()


@pytest.fixture
def admin(monkeypatch):
    monkeypatch.setenv("CVRKD_ADMIN_TOKEN", TOKEN)


def test_title_and_instructions_are_edited_only_with_the_token(services, admin):
    from annotations.campaigns import CampaignError, MAX_TITLE_LEN
    from space.services import campaign_admin
    from space.services.admin_auth import NotAuthorised

    for token in ("", "wrong"):
        with pytest.raises(NotAuthorised):
            campaign_admin.edit_texts(services, token, "talk", "Hacked", "")
    assert services.campaigns.get("talk").title == "Old title"
    with pytest.raises(CampaignError, match="the limit is"):
        campaign_admin.edit_texts(services, TOKEN, "talk", "x" * (MAX_TITLE_LEN + 1), "")
    with pytest.raises(CampaignError, match="built-in rating pool"):
        campaign_admin.edit_texts(services, TOKEN, "default", "Pool", "")
    assert campaign_admin.texts(services, TOKEN, "talk") == ("Old title", "Old.")
    said = campaign_admin.edit_texts(services, TOKEN, " talk ", "  Which JPEG looks better?  ", "Look at the sky.")
    assert "Which JPEG looks better?" in said
    talk = services.campaigns.get("talk")
    assert (talk.title, talk.instructions, talk.round, len(talk.images)) == (
        "Which JPEG looks better?", "Look at the sky.", 1, 6)
    assert len(services.store.judgements("talk")) == 3  # the judgements stay


def test_a_campaign_exports_as_a_zip_of_its_dataset_only_with_the_token(services, admin, tmp_path):
    from space.services import campaign_admin
    from space.services.admin_auth import NotAuthorised

    with pytest.raises(NotAuthorised):
        campaign_admin.export(services, "wrong", "talk")
    archive = campaign_admin.export(services, TOKEN, "talk")
    assert archive.suffix == ".zip" and archive.name.startswith("talk-")
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(tmp_path)
    [folder] = tmp_path.iterdir()
    assert (folder / "README.md").is_file()
    judgements = datasets.load_dataset(str(folder), "judgements", split="train")
    assert len(judgements) == 3 and set(judgements["campaign"]) == {"talk"}
    assert len(datasets.load_dataset(str(folder), "images", split="train")) == 6
