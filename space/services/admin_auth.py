"""The one admin-token check, used by every admin action (trainer, moderation, campaigns).

The token is compared exactly, in constant time, as bytes
(``hmac.compare_digest`` refuses non-ASCII ``str``): a token sent with a space
or newline around it is a wrong token, because a check that forgives one
character forgives others. Only the configured token loses surrounding
whitespace (a secrets file ends in a newline). Wrong tokens are counted per client address: after
``max_failures`` in ``window_s`` every admin request from that address is
refused, the right token included, until the window has passed, so the token
cannot be guessed at network speed. Counters live in memory only, keyed by an
HMAC of the address with a key made for this process.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from typing import Callable

from annotations.quality import RateLimiter
from space.services.clients import Client

ADMIN_TOKEN_ENV = "CVRKD_ADMIN_TOKEN"
WRONG_TOKEN = "Wrong or missing admin token (set CVRKD_ADMIN_TOKEN on the server)."
PADDED = " The token you sent starts or ends with a space or line break; send it without."
TOO_MANY = "Too many wrong admin tokens from your connection; try again in {wait}."
MAX_FAILURES = 10
FAILURE_WINDOW_S = 600.0


class NotAuthorised(PermissionError):
    """Wrong or missing admin token, or too many wrong ones; the message says which."""


class AdminGuard:
    """Checks admin tokens against one expected token (``token``, else the environment's); with none, nobody
    is admin."""

    def __init__(self, token: str | None = None, *, max_failures: int = MAX_FAILURES,
                 window_s: float = FAILURE_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._token = token
        self._failures = RateLimiter(max_failures, clock, window_s=window_s)
        self._key = secrets.token_bytes(32)

    def _expected(self) -> bytes:
        """The token given at construction, else ``$CVRKD_ADMIN_TOKEN`` as it is now."""
        token = os.environ.get(ADMIN_TOKEN_ENV, "") if self._token is None else self._token
        return token.strip().encode("utf-8")

    def check(self, token: object, client: Client | None = None) -> None:
        """Return if ``token`` is the admin token; else raise ``NotAuthorised`` (counting a wrong one against
        the client's address)."""
        address = (client or Client()).address
        key = hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()[:24]
        wait = self._failures.retry_after(key)
        if wait > 0:
            raise NotAuthorised(TOO_MANY.format(wait=f"{wait / 60:.0f} min" if wait >= 90 else f"{wait:.0f} s"))
        sent = "" if token is None else str(token)
        expected = self._expected()
        if not expected or not hmac.compare_digest(sent.encode("utf-8"), expected):
            self._failures.allow(key)
            raise NotAuthorised(WRONG_TOKEN + (PADDED if sent != sent.strip() else ""))
