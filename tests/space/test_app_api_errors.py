"""Every named endpoint answers None, wrong types and empty values with a plain gr.Error.

Before, a plain path string for ``/score`` or ``None`` for ``/rollback``'s
version reached the client only as Gradio's generic "The upstream Gradio app
has raised an exception", and each refusal printed a stack trace.
"""
from __future__ import annotations

import logging
import os

import pytest

from tests.helpers.app import admin_trainer, launched, model_options

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

GENERIC = "upstream Gradio app has raised an exception"


@pytest.fixture(scope="module")
def server(untrained_bundle, scorer, tmp_path_factory):
    """The app with a real trainer service that has an admin token, so /rollback gets past the token."""
    from gradio_client import Client

    from annotations.store import AnnotationStore
    from space.app import create_app

    data = tmp_path_factory.mktemp("api-errors")
    counter = AnnotationStore(data / "annotations")
    trainer = admin_trainer(data, scorer, counter.count)
    app = create_app(data_dir=data, score_pool=False, trainer=trainer, **model_options(untrained_bundle),
                     min_answer_ms=0)  # answers as fast as a script: the human floor is tested in test_vote_rules.py
    with launched(app) as url:
        yield app, Client(url, verbose=False)


def bad_calls(rater: str, ticket: str) -> list[tuple[str, tuple, str]]:
    """(endpoint, arguments, expected message) for every named endpoint that takes arguments."""
    return [
        ("/score", (None, "", None), "No image was sent"),
        ("/score", ("/etc/passwd", "", None), "must be a file sent with gradio_client.handle_file"),
        ("/score", ("", None, None), "must be a file sent"),
        ("/score", (123, 5, 7), "must be a file sent"),
        ("/score", ({"path": "x.png"}, "", None), "must be a file sent"),
        ("/contribute", (None, True), "No image was sent"),
        ("/contribute", ("README.md", True), "must be a file sent"),
        ("/contribute", (None, None), "consent=True"),
        ("/contribute", (["a"], "yes"), "must be a file sent"),
        ("/next_pair", (None,), "not issued by this server"),
        ("/next_pair", ("",), "not issued by this server"),
        ("/next_pair", ("a b",), "not issued by this server"),
        ("/next_pair", (123,), "not issued by this server"),
        ("/next_pair", (rater.rpartition(".")[0],), "not issued by this server"),
        ("/vote", (None, None, None, None), "not issued by this server"),
        ("/vote", ("anon-invented.0123456789abcdef0123456789abcdef", ticket, "left", None), "not issued"),
        ("/vote", (rater, "", "", ""), "choice must be one of"),
        ("/vote", (rater, None, None, None), "choice must be one of"),
        ("/vote", (rater, ticket, "left", "fast"), "response_ms"),
        ("/vote", (rater, ticket, "left", -5), "response_ms"),
        ("/vote", (rater, ticket, 7, None), "choice must be one of"),
        ("/vote", (rater, ["t"], "left", None), "unknown, expired or already judged"),
        ("/rollback", (None, None), "admin token"),
        ("/rollback", ("s3cret", None), "roll back"),
        ("/rollback", ("s3cret", 5), "5"),
        ("/rollback", (5, ""), "admin token"),
        ("/rollback", ("é", ""), "admin token"),
        ("/redistill", (None,), "admin token"),
        ("/redistill", ("",), "admin token"),
        ("/redistill", (["x"],), "admin token"),
        ("/leaderboard", (5,), "campaign"),
        ("/leaderboard", (["x"],), "campaign"),
        ("/leaderboard", ("Not A Name",), "campaign"),
        ("/next_pair", (rater, 7), "campaign"),
        ("/score", ("", ["x"], None), "must be a file sent"),
        ("/review_next", (None,), "not issued by this server"),
        ("/review", (rater, None, None), "verdict must be one of"),
        ("/review", (rater, "nope", "ok"), "track record"),  # a fresh id reviews nothing
        ("/review", ("x", "nope", "ok"), "not issued by this server"),
        ("/moderate", (None, None, None), "admin token"),
        ("/moderate", ("s3cret", "nope", "approve"), "no contributed photo"),
        ("/moderate", ("s3cret", "nope", None), "decision must be one of"),
    ]


def test_every_endpoint_refuses_bad_arguments_plainly_and_stores_nothing(server, caplog):
    from gradio_client.exceptions import AppError

    from annotations.store import AnnotationStore

    app, client = server
    rater = client.predict(api_name="/rater")
    ticket = client.predict(rater, api_name="/next_pair")[0]["ticket"]
    before = len(AnnotationStore(app.services.store.root).judgements()), len(app.services.pool)
    failures = []
    with caplog.at_level(logging.INFO, logger="space.refused"):
        for endpoint, args, expected in bad_calls(rater, ticket):
            try:
                client.predict(*args, api_name=endpoint)
                failures.append(f"{endpoint}{args!r} was accepted")
            except AppError as exc:
                if GENERIC in str(exc) or expected.lower() not in str(exc).lower():
                    failures.append(f"{endpoint}{args!r}: {exc}")
    assert not failures, "\n".join(failures)
    refusals = [r for r in caplog.records if r.name == "space.refused"]
    assert len(refusals) >= len(bad_calls(rater, ticket)) - 1
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in refusals)
    after = len(AnnotationStore(app.services.store.root).judgements()), len(app.services.pool)
    assert after == before
    # the ticket survived every refused vote and still counts once
    assert client.predict(rater, ticket, "left", None, api_name="/vote")["stored"] == "judgement"


def test_endpoints_without_arguments_answer(server):
    _, client = server
    assert client.predict(api_name="/galleries")
    assert client.predict(api_name="/leaderboard")["n_judgements"] >= 0
    assert "student" in client.predict(api_name="/model_info")
    assert client.predict(api_name="/rater").startswith("anon-")
    assert client.predict("s3cret", "", "", api_name="/moderate") == {"pending": [], "flagged": []}


def test_refusals_print_no_stack_trace(server, capfd):
    from gradio_client.exceptions import AppError

    _, client = server
    for args in ((None, "", None), ("/etc/passwd", "", None)):
        with pytest.raises(AppError):
            client.predict(*args, api_name="/score")
    with pytest.raises(AppError):
        client.predict(None, None, api_name="/rollback")
    assert "Traceback" not in capfd.readouterr().err
