"""A re-distillation round started through the running app, as on a Space: the Model tab's API, a real
trainer process, the shipped model, a plain checkout (the package is not installed)."""
from __future__ import annotations

import os

import pytest

from tests.helpers.app import SHIPPED, free_port

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytestmark = pytest.mark.slow  # the trainer process loads the shipped teacher and student


def test_a_round_started_from_the_model_tab_finishes(tmp_path, monkeypatch):
    from gradio_client import Client

    from space.services import model_card
    from space.app import create_app
    from space.ui.model_tab import trainer_markdown

    assert (SHIPPED / "student" / "config.json").is_file(), "the trained model must be shipped in cvrkd/weights"
    monkeypatch.setenv("CVRKD_ADMIN_TOKEN", "s3cret")
    monkeypatch.chdir(tmp_path)  # wherever the app was started from, the trainer finds the package
    app = create_app(data_dir=tmp_path / "data", score_pool=False)
    try:
        _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                               quiet=True)
        client = Client(url, verbose=False)
        assert client.predict("s3cret", api_name="/redistill") == "Re-distillation started."
        app.services.trainer.wait(timeout=1800)
        shown = trainer_markdown(app.services.trainer)
        assert "Trainer: **last round finished**" in shown, shown
        runs = model_card.runs(tmp_path / "data" / "registry")
        assert len(runs) == 1
    finally:
        app.close()
