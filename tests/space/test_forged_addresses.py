"""Addresses you can trust (issue 29, item 9): a forged ``X-Forwarded-For`` header does not escape the
per-address limits or the admin lockout, unless it comes from a proxy the operator named.

Before, uvicorn took the client's address from ``X-Forwarded-For`` whenever the peer was 127.0.0.1, so
behind a same-host tunnel a new address in each request's header gave every request a fresh budget and
unlimited admin-token guesses, and ``CVRKD_TRUST_PROXY=0`` could not turn that off. Here the app runs on
127.0.0.1 (the tunnel's view) and is called over real HTTP with a different forged address each time.
"""
from __future__ import annotations

import os

import httpx
import pytest

from tests.helpers.app import launched, model_options

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def forged(k: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.{k}"}


@pytest.fixture
def app_with(untrained_bundle, tmp_path, monkeypatch):
    """Serve an app allowing two new rater ids per address and minute (and ``trusted_proxies`` if given)."""
    from space.app import create_app

    monkeypatch.setenv("CVRKD_ADMIN_TOKEN", "s3cret")
    monkeypatch.setenv("CVRKD_TRUST_PROXY", "0")  # what an operator tried before: it is no longer read
    monkeypatch.delenv("CVRKD_TRUSTED_PROXIES", raising=False)

    def serve(**proxies: str):
        app = create_app(data_dir=tmp_path / "data", score_pool=False, new_raters_per_ip_minute=2,
                         **proxies, **model_options(untrained_bundle))
        return launched(app)
    return serve


def new_raters(url: str, attempts: int) -> list[int]:
    with httpx.Client(base_url=url, timeout=60) as client:
        return [client.post("api/rate/rater", json={}, headers=forged(k)).status_code for k in range(attempts)]


def admin_answers(url: str, tokens: list[str]) -> list[str]:
    """What ``/moderate`` answers each token, each sent with its own forged address."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    answers = []
    for k, token in enumerate(tokens):
        try:
            Client(url, verbose=False, headers=forged(k)).predict(token, "", "", api_name="/moderate")
            answers.append("accepted")
        except AppError as exc:
            answers.append(str(exc))
    return answers


def test_a_forged_header_from_an_unnamed_peer_changes_no_address(app_with):
    with app_with() as url:  # no proxy named (the default)
        assert new_raters(url, 4) == [200, 200, 429, 429]  # one address, however many the header claims
        answers = admin_answers(url, ["wrong"] * 10 + ["s3cret"])
    assert all("Wrong or missing admin token" in answer for answer in answers[:10])
    assert "Too many wrong admin tokens" in answers[10]  # locked out, the right token included


def test_a_named_proxy_is_believed(app_with):
    with app_with(trusted_proxies="127.0.0.1") as url:  # the operator says: a tunnel on this host forwards the clients
        assert new_raters(url, 4) == [200] * 4  # four clients behind the proxy, each within its own limit
        assert admin_answers(url, ["wrong"] * 10 + ["s3cret"])[10] == "accepted"
