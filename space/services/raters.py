"""Rater identity issued by the server, and per-client limits that no invented id escapes.

A rater id is a public part (``anon-<16 hex>``, or ``hf-<hash>`` for a
Hugging Face sign-in) plus an HMAC signature with the server's secret:
``anon-1f…c2.<32 hex>``. Only the server can make one, so ``/next_pair`` and
``/vote`` refuse ids a client made up. The whole signed id is a credential
(the browser keeps it in its encrypted local storage); only the public part
is stored with a judgement or shown on screen, so an id seen in the data set
or over someone's shoulder cannot be used to vote.

Votes are counted per signed rater id (``space.services.rating``), and new ids and
votes per address (the ``Client`` each door builds, ``space.services.clients``), in
memory only; an address is never stored or logged, and even the counters are
keyed by an HMAC of it. A session id is not used as a key: the client chooses
it (Gradio's ``session_hash``, the rating page's header), so a script could
take a fresh one for every request. A campaign
made for a talk names its audience, and its per-address limits grow with it
(``AddressLimits.for_audience``): a venue's Wi-Fi is one address.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from annotations.quality import RateLimiter
from annotations.schema import DEFAULT_CAMPAIGN
from space.services.clients import Client
from space.services.files import secret_file
from space.services.rating import RateLimited, RatingError

SECRET_ENV = "CVRKD_RATER_SECRET"
"""Environment variable holding the signing secret (replicas of one Space must share it)."""
SECRET_FILE = ".rater-secret"
_SIGNATURE_HEX = 32


def load_secret(data_dir: Path) -> bytes:
    """``$CVRKD_RATER_SECRET``, else the data folder's secret, created once (atomically) on first start."""
    from_env = os.environ.get(SECRET_ENV, "").strip()
    if from_env:
        return from_env.encode()
    path = Path(data_dir) / SECRET_FILE
    secret = secret_file(path)
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds no usable secret; delete it to make a new one")
    return secret.encode()


class UnknownRater(RatingError):
    """Refused because the rater id is not one this server signed: the client should get a new one."""


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
            raise UnknownRater("This rater id was not issued by this server; get one from /rater "
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


@dataclass(frozen=True)
class AddressLimits:
    """What one address may do: votes a minute, new rater ids a minute and an hour."""

    votes_per_minute: int
    new_ids_per_minute: int
    new_ids_per_hour: int

    def for_audience(self, audience: int | None, votes_per_rater_minute: int) -> AddressLimits:
        """These limits (the default campaign's) grown for ``audience`` people behind one address.

        Each person votes at most ``votes_per_rater_minute`` (the per-rater
        limit), so the room together never reaches the address's vote limit;
        the whole room may join within a minute, half of it with a second
        device or browser; an hour admits three ids a person. A script
        inventing ids stays bounded by these numbers, by each id's own limit
        and by the server-measured minimum time per answer.
        """
        if audience is None:
            return self
        return AddressLimits(votes_per_minute=max(self.votes_per_minute, audience * votes_per_rater_minute),
                             new_ids_per_minute=max(self.new_ids_per_minute, math.ceil(1.5 * audience)),
                             new_ids_per_hour=max(self.new_ids_per_hour, 3 * audience))


class ClientLimits:
    """New rater ids and votes per address, each campaign with the limits sized for its audience.

    A campaign's counters are its own (keyed by address, campaign and
    audience), so a talk's room does not use up the default pool's budget
    and a script cannot borrow a talk's larger budget for another campaign.
    """

    def __init__(self, raters: RaterIds, default: AddressLimits, votes_per_rater_minute: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._raters, self.default, self._clock = raters, default, clock
        self._votes_per_rater_minute = votes_per_rater_minute
        self._lock = threading.Lock()
        self._limiters: dict[tuple[str, int | None], dict[str, RateLimiter]] = {}

    def limits(self, campaign: object | None) -> AddressLimits:
        """The limits of ``campaign`` (None: the default pool), from its ``audience``."""
        return self.default.for_audience(getattr(campaign, "audience", None), self._votes_per_rater_minute)

    def new_rater(self, client: Client, campaign: object | None = None) -> None:
        """Count one new rater id for this client's address, or refuse it."""
        limiters = self._of(campaign)
        self._check(client, [limiters["new_minute"], limiters["new_hour"]],
                    "Too many new rater ids from your connection; please wait {wait} before starting again.")

    def vote(self, client: Client, campaign: object | None = None) -> None:
        """Count one vote (or review) for this client's address, or refuse it."""
        self._check(client, [self._of(campaign)["votes"]], "Too many votes from your connection; please wait {wait}.")

    def _of(self, campaign: object | None) -> dict[str, RateLimiter]:
        # None (a review) counts with the default campaign's votes, as before the pool was a campaign
        key = (str(getattr(campaign, "name", None) or DEFAULT_CAMPAIGN), getattr(campaign, "audience", None))
        with self._lock:
            limiters = self._limiters.get(key)
            if limiters is None:
                limits = self.limits(campaign)
                limiters = {"votes": RateLimiter(limits.votes_per_minute, self._clock),
                            "new_minute": RateLimiter(limits.new_ids_per_minute, self._clock),
                            "new_hour": RateLimiter(limits.new_ids_per_hour, self._clock, window_s=3600.0)}
                self._limiters[key] = limiters
            return limiters

    def _check(self, client: Client, limiters: list[RateLimiter], message: str) -> None:
        address = client.address
        if not address:
            return
        key = self._raters.pseudonym(address)
        for limiter in limiters:
            if not limiter.allow(key):
                wait = limiter.retry_after(key)
                raise RateLimited(message.format(wait=f"{wait / 60:.0f} min" if wait >= 90 else f"{wait:.0f} s"))
