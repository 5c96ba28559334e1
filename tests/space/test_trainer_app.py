"""A re-distillation round started through the running app, as on a Space: the Model tab's API, a real
trainer process, a plain checkout (the package is not installed), no synthetic training set (the
round checks on the built-in photos), and the promoted student swapped in while the app runs."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from tests.helpers.app import SHIPPED, free_port

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytestmark = pytest.mark.slow  # the trainer process loads the shipped teacher and student


def _student_with_a_scrambled_readout(folder):
    """The shipped bundle with noise 10x the spread of its readout's weights added to them (the photos
    it keeps stay): it orders the pool's distortions worse, though still better than chance, and a
    readout round can repair it, so the round has something to promote."""
    from cvrkd.checkpoint import load_checkpoint, save_checkpoint

    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("runtime"))
    network, info = load_checkpoint(folder / "student")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        weight = network.readout.weight
        weight.add_(torch.randn(weight.shape, generator=generator, dtype=weight.dtype) * weight.std() * 10)
    save_checkpoint(network, info, folder / "student")
    return folder


def _judge_the_pool_by_distortion_level(app, count: int = 600) -> None:
    """12 raters compare a built-in photo's versions (stronger distortion = worse), 10% careless."""
    from annotations.schema import Judgement

    pool = app.services.pool
    groups: dict[str, list[str]] = {}
    for image_id in pool.ids:
        image = pool.get(image_id)
        groups.setdefault(image.reference_id or image_id, []).append(image_id)
    level = {i: pool.get(i).level or 0 for i in pool.ids}
    rng = np.random.default_rng(0)
    members = [ids for ids in groups.values() if len(ids) > 1]
    for n in range(count):
        ids = members[n % len(members)]
        left, right = rng.choice(ids, 2, replace=False)
        if level[left] == level[right]:
            continue
        better_left = level[left] < level[right]
        if rng.random() < 0.1:
            better_left = not better_left
        app.services.store.append(Judgement(f"r{n % 12}", str(left), str(right), "left" if better_left else "right",
                                            response_ms=1500))


def test_a_round_started_from_the_model_tab_is_promoted_and_served(tmp_path, monkeypatch):
    from gradio_client import Client

    from cvrkd.train.registry import ModelRegistry
    from space.services import model_card
    from space.app import create_app
    from space.ui.model_tab import trainer_markdown

    assert (SHIPPED / "student" / "config.json").is_file(), "the trained model must be shipped in cvrkd/weights"
    monkeypatch.setenv("CVRKD_ADMIN_TOKEN", "s3cret")
    monkeypatch.delenv("CVRKD_SYNTHETIC_DIR", raising=False)  # a Space has no synthetic training set
    model = _student_with_a_scrambled_readout(tmp_path / "model")
    monkeypatch.chdir(tmp_path)  # wherever the app was started from, the trainer finds the package
    app = create_app(model, data_dir=tmp_path / "data", score_pool=False)
    try:
        _judge_the_pool_by_distortion_level(app)
        shipped_version = app.services.model.version
        _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                               quiet=True)
        client = Client(url, verbose=False)
        assert client.predict("s3cret", api_name="/redistill") == "Re-distillation started."
        app.services.trainer.wait(timeout=1800)
        shown = trainer_markdown(app.services.trainer)
        assert "Trainer: **last round finished**" in shown, shown

        record = ModelRegistry(tmp_path / "data" / "registry").runs()[-1]
        assert record["design"] == "readout" and record["replay"] == "gallery"
        assert record["decision"] == "promoted", record["reason"]
        assert 0.5 < record["base_agreement"] < record["candidate_agreement"]  # a worse base, not a reversed one
        # hot swap: the app now serves the round's candidate, without a restart
        assert app.services.model.version == record["candidate_version"] != shipped_version
        shown_round = model_card.gate_table(tmp_path / "data" / "registry").to_dict(orient="records")
        assert len(shown_round) == 1 and shown_round[0]["decision"] == "promoted"
        assert shown_round[0]["candidate"] == record["candidate_version"]
        assert shown_round[0]["likelihood gain per judgement [95% interval]"] != "—"
        assert shown_round[0]["known-order pairs kept: served → candidate"] != "—"  # the pool's gold pairs
    finally:
        app.close()
