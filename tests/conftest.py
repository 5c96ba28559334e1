"""Shared fixtures: an untrained model bundle (tests only), a scorer, awkward inputs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def untrained_bundle(tmp_path_factory) -> Path:
    """A randomly initialised teacher + student: enough to test plumbing, never shipped."""
    from cvrkd.checkpoint import save_checkpoint, untrained

    folder = tmp_path_factory.mktemp("untrained-model")
    for role in ("teacher", "student"):
        network, info = untrained(role, seed=7)
        save_checkpoint(network, info, folder / role)
    return folder


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    os.environ["CVRKD_DATA_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def scorer(untrained_bundle, data_dir):
    from cvrkd.scorer import Scorer

    return Scorer(untrained_bundle, allow_untrained=True, cache_dir=data_dir / "cache")


@pytest.fixture(scope="session")
def good_inputs(tmp_path_factory):
    from tests.helpers.images import good_inputs as make

    return make(tmp_path_factory.mktemp("good-inputs"))


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory):
    from tests.helpers.images import bad_inputs as make

    return make(tmp_path_factory.mktemp("bad-inputs"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The development data sets beside the checkout; tests that need them skip without."""
    folder = Path(os.environ.get("CVRKD_DATA", ROOT.parent / "shared" / "data"))
    if not folder.is_dir():
        pytest.skip(f"development data not found at {folder} (set CVRKD_DATA)")
    return folder


@pytest.fixture(scope="module")
def plain_app(untrained_bundle, tmp_path_factory):
    """(app, URL): the app with the untrained test model and no background scoring, served for one module."""
    from space.app import create_app
    from tests.helpers.app import launched, model_options

    app = create_app(data_dir=tmp_path_factory.mktemp("app"), score_pool=False, **model_options(untrained_bundle))
    with launched(app) as url:
        yield app, url
