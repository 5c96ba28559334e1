"""Rater identity issued by the server, and per-client limits that no invented id escapes.

A rater id is a public part (``anon-<16 hex>``, or ``hf-<hash>`` for a
Hugging Face sign-in) plus an HMAC signature with the server's secret:
``anon-1f…c2.<32 hex>``. Only the server can make one, so ``/next_pair`` and
``/vote`` refuse ids a client made up. The whole signed id is a credential
(the browser keeps it in its encrypted local storage); only the public part
is stored with a judgement or shown on screen, so an id seen in the data set
or over someone's shoulder cannot be used to vote.

Clients are counted by Gradio session and by address, in memory only; an
address is never stored or logged, and even the counters are keyed by an
HMAC of it.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Callable

from annotations.quality import RateLimiter
from annotations.shards import fsync_dir
from space.rating import RateLimited, RatingError

SECRET_ENV = "CVRKD_RATER_SECRET"
"""Environment variable holding the signing secret (replicas of one Space must share it)."""
SECRET_FILE = ".rater-secret"
TRUST_PROXY_ENV = "CVRKD_TRUST_PROXY"
"""``1``: take the client address from the last ``X-Forwarded-For`` hop (set automatically on a Space)."""
_SIGNATURE_HEX = 32


def load_secret(data_dir: Path) -> bytes:
    """``$CVRKD_RATER_SECRET``, else the data folder's secret, created once (atomically) on first start."""
    from_env = os.environ.get(SECRET_ENV, "").strip()
    if from_env:
        return from_env.encode()
    path = Path(data_dir) / SECRET_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process won the race: then its secret is used
            fsync_dir(path.parent)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds no usable secret; delete it to make a new one")
    return secret.encode()


class RaterIds:
    """Issues and checks signed rater ids."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, public: str) -> str:
        return hmac.new(self._secret, public.encode(), hashlib.sha256).hexdigest()[:_SIGNATURE_HEX]

    def issue(self, public: str | None = None) -> str:
        """A signed id: a fresh anonymous one, or for a public id the server derived itself."""
        public = public or f"anon-{uuid.uuid4().hex[:16]}"
        return f"{public}.{self._sign(public)}"

    def verify(self, signed: object) -> str:
        """The public part of a signed id; ``RatingError`` for anything the server did not issue."""
        text = signed if isinstance(signed, str) else ""
        public, dot, signature = text.strip().rpartition(".")
        if not dot or not public or not hmac.compare_digest(signature.encode(), self._sign(public).encode()):
            raise RatingError("This rater id was not issued by this server; get one from /rater "
                              "(the Rate tab does this by itself).")
        return public

    def public_or_none(self, signed: object) -> str | None:
        """The public part of a valid signed id, else None (e.g. an id kept from before signing)."""
        try:
            return self.verify(signed)
        except RatingError:
            return None

    def pseudonym(self, address: str) -> str:
        """What the counters are keyed by instead of an address."""
        return hmac.new(self._secret, b"ip:" + address.encode(), hashlib.sha256).hexdigest()[:24]


def client_of(request: object) -> tuple[str, str]:
    """(session, address) of a Gradio request; either is "" when unknown."""
    if request is None:
        return "", ""
    session = str(getattr(request, "session_hash", "") or "")
    headers = getattr(request, "headers", None) or {}
    forwarded = headers.get("x-forwarded-for", "") if hasattr(headers, "get") else ""
    trust = os.environ.get(TRUST_PROXY_ENV, "1" if os.environ.get("SPACE_ID") else "0").strip() == "1"
    if trust and forwarded:
        address = forwarded.split(",")[-1].strip()  # the hop our own proxy added; earlier ones can be forged
    else:
        client = getattr(request, "client", None)
        address = str(getattr(client, "host", "") or "")
    return session, address


class ClientLimits:
    """New rater ids per hour and votes per minute, for each session and each address."""

    def __init__(self, raters: RaterIds, *, new_per_session_hour: int, new_per_ip_hour: int,
                 votes_per_session_minute: int, votes_per_ip_minute: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._raters = raters
        self._new = {"session": RateLimiter(new_per_session_hour, clock, window_s=3600.0),
                     "address": RateLimiter(new_per_ip_hour, clock, window_s=3600.0)}
        self._votes = {"session": RateLimiter(votes_per_session_minute, clock),
                       "address": RateLimiter(votes_per_ip_minute, clock)}

    def new_rater(self, request: object) -> None:
        """Count one new rater id for this client, or refuse it."""
        self._check(self._new, request, "Too many new rater ids from your connection; "
                                        "please wait {wait} before starting again.")

    def vote(self, request: object) -> None:
        """Count one vote for this client, or refuse it."""
        self._check(self._votes, request, "Too many votes from your connection; please wait {wait}.")

    def _check(self, limiters: dict[str, RateLimiter], request: object, message: str) -> None:
        session, address = client_of(request)
        keys = {"session": session, "address": self._raters.pseudonym(address) if address else ""}
        for kind, limiter in limiters.items():
            if keys[kind] and not limiter.allow(keys[kind]):
                wait = limiter.retry_after(keys[kind])
                raise RateLimited(message.format(wait=f"{wait / 60:.0f} min" if wait >= 90 else f"{wait:.0f} s"))
