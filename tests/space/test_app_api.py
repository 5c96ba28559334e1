"""The real app on a free port, driven through ``gradio_client`` like any API user."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers.app import free_port, model_options, signed
from tests.helpers import ROOT

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")



@pytest.fixture(scope="module")
def server(untrained_bundle, tmp_path_factory):
    """(app, client): one scoring slot, so a queue of scoring jobs builds up easily."""
    from gradio_client import Client

    from space.app import create_app

    app = create_app(data_dir=tmp_path_factory.getbasetemp() / "app-data", score_pool=False,
                     score_concurrency=1, **model_options(untrained_bundle),
                     min_answer_ms=0)  # answers as fast as a script: the human floor is tested in test_vote_rules.py
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                           quiet=True)
    yield app, Client(url, verbose=False)
    app.close()


def fresh_store(app):
    """A second reader of the store folder: what is on disk, not what one process remembers."""
    from annotations.store import AnnotationStore

    return AnnotationStore(app.services.store.root)


def test_scores_an_image_fetches_pairs_and_votes_three_times(server, good_inputs):
    from gradio_client import handle_file

    app, client = server
    result = client.predict(handle_file(str(good_inputs["alpha"])), "", None, api_name="/score")
    low, high = result["scale"]["min"], result["scale"]["max"]
    assert low <= result["score"] <= high and result["scale"]["lower_better"] is False
    assert len(result["per_reference"]) == len(app.services.galleries.default) and result["spread"] >= 0
    assert any("transparent" in note for note in result["notes"]) and result["fr"] is None
    assert result["model_version"] == app.services.model.version

    receipts = []
    rater = client.predict(api_name="/rater")  # a signed id: "<public part>.<signature>"
    public = rater.rpartition(".")[0]
    for choice in ("left", "right", "same"):
        ticket, left, right = client.predict(rater, api_name="/next_pair")
        assert os.path.isfile(left) and os.path.isfile(right) and left != right
        receipts.append(client.predict(rater, ticket["ticket"], choice, None, api_name="/vote"))
    assert [r["stored"] for r in receipts] == ["judgement"] * 3 and receipts[-1]["count"] == 3

    stored = fresh_store(app).judgements().set_index("judgement_id")
    for receipt, choice in zip(receipts, ("left", "right", "tie")):
        assert stored.loc[receipt["id"], "choice"] == choice
        assert stored.loc[receipt["id"], "rater_id"] == public  # the signature is never stored
    board = client.predict(api_name="/leaderboard")
    assert board["n_judgements"] >= 3 and board["ranking"]
    assert board["estimates"] and {"human_score", "assisted_score", "flagged"} <= set(board["estimates"][0])
    assert "disagreements" in board and "calibration" in board
    info = client.predict(api_name="/model_info")
    assert info["student"]["version"] == app.services.model.version and info["trainer"] == "no trainer running"
    assert client.predict(api_name="/galleries")[0] == app.services.galleries.default.name


def test_bad_inputs_are_refused_with_a_message_and_nothing_is_stored(server, bad_inputs, good_inputs):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    app, client = server
    before = len(fresh_store(app).images()), len(app.services.pool)
    expected = {"not_an_image": "not an image", "truncated": "truncated", "empty": "empty",
                "huge_pixel_count": "megapixels", "animated": "animated", "tiny": "too small"}
    for case, message in expected.items():
        with pytest.raises(AppError, match=message):
            client.predict(handle_file(str(bad_inputs[case])), "", None, api_name="/score")
        with pytest.raises(AppError, match=message):
            client.predict(handle_file(str(bad_inputs[case])), True, api_name="/contribute")
    with pytest.raises(AppError, match="consent"):
        client.predict(handle_file(str(good_inputs["non_square"])), False, api_name="/contribute")
    with pytest.raises(AppError, match="unknown gallery"):
        client.predict(handle_file(str(good_inputs["non_square"])), "nope", None, api_name="/score")
    with pytest.raises(AppError, match="unknown, expired or already judged"):
        client.predict(signed(app, "anon-api-test"), "no-such-ticket", "left", None, api_name="/vote")
    assert (len(fresh_store(app).images()), len(app.services.pool)) == before
    bad = signed(app, "anon-api-bad")
    ticket, _, _ = client.predict(bad, api_name="/next_pair")  # still serving
    assert client.predict(bad, ticket["ticket"], "skip", None, api_name="/vote")["stored"] == "skip"


def test_a_queue_of_scoring_jobs_does_not_hold_up_voting(server, good_inputs):
    from gradio_client import handle_file

    app, client = server
    jobs = [client.submit(handle_file(str(good_inputs["very_large"])), "", None, api_name="/score")
            for _ in range(4)]
    time.sleep(0.2)
    busy = signed(app, "anon-api-busy")
    ticket, _, _ = client.predict(busy, api_name="/next_pair")
    receipt = client.predict(busy, ticket["ticket"], "left", None, api_name="/vote")
    waiting = sum(not job.done() for job in jobs)
    assert receipt["stored"] == "judgement" and waiting >= 1
    assert all(0 <= job.result(timeout=600)["score"] <= 100 for job in jobs)


def test_app_py_starts_without_a_model_and_refuses_to_score(server, tmp_path, good_inputs):
    """The entry point on a machine without weights: it serves, shows why, and rating works."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    app, _ = server
    port = free_port()
    env = {**os.environ, "CVRKD_MODEL_DIR": str(tmp_path / "no-model"), "GRADIO_SERVER_PORT": str(port),
           "GRADIO_SERVER_NAME": "127.0.0.1", "CVRKD_DATA_DIR": str(app.services.data_dir)}
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 180
        while True:
            try:
                page = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "app.py did not start"
                time.sleep(1)
        assert "No trained model is installed" in page
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="No trained model is installed"):
            client.predict(handle_file(str(good_inputs["non_square"])), "", None, api_name="/score")
        rater = client.predict(api_name="/rater")
        ticket, _, _ = client.predict(rater, api_name="/next_pair")
        time.sleep(0.4)  # look at the pair as a person would: app.py refuses faster answers
        assert client.predict(rater, ticket["ticket"], "left", None, api_name="/vote")["count"] >= 1
    finally:
        process.terminate()
        process.wait(timeout=30)
