"""Who sent a request, as the per-address limits and the admin lockout see it: read once, at the door.

Each front door turns its request into a ``Client`` with ``TrustedProxies.client``
and passes that value down; nothing below a door reads a request or a header.
The address is the TCP peer's, unless the peer is a proxy the operator named in
``CVRKD_TRUSTED_PROXIES`` (addresses or networks, comma-separated; none by
default). Then the ``X-Forwarded-For`` hops are read from the right, each hop
added by a named proxy is passed over, and the first other address is the
client's. Hops further left are whatever the client wrote and are never
read, so a forged header changes nothing unless it comes from a named proxy.

The web server must hand the peer over unchanged: uvicorn rewrites it from
``X-Forwarded-For`` when the peer is 127.0.0.1 unless told otherwise, which
would let anyone behind a same-host tunnel choose their address
(``space.app.SpaceApp.launch`` tells it to trust no one: the app decides here).
"""
from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

TRUSTED_PROXIES_ENV = "CVRKD_TRUSTED_PROXIES"
"""Comma-separated addresses or networks of the proxies in front of the app (e.g. ``10.0.0.0/8`` on a Hugging
Face Space, ``127.0.0.1`` behind a tunnel on the same host); empty: trust no forwarded header."""
RETIRED_ENV = "CVRKD_TRUST_PROXY"
"""An earlier setting that trusted the last forwarded hop from any peer; it is no longer read."""


@dataclass(frozen=True)
class Client:
    """The client of one request: its address ("" when unknown, e.g. a call from Python, not over HTTP)."""

    address: str = ""


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` hops the app believes."""

    def __init__(self, spec: str = "") -> None:
        """``spec``: comma-separated addresses or networks; an entry that is neither is refused (``ValueError``)."""
        networks = []
        for entry in (part.strip() for part in spec.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{TRUSTED_PROXIES_ENV}: {entry!r} is not an IP address or network "
                                 "(e.g. 10.0.0.0/8 or 127.0.0.1)") from None
        self.networks = tuple(networks)

    @classmethod
    def for_app(cls, spec: str) -> TrustedProxies:
        """The app's proxies (``AppConfig.trusted_proxies``), with a warning where the setting is probably
        missing or retired."""
        if os.environ.get(RETIRED_ENV):
            logger.warning("%s is no longer read; name the proxies in front of the app in %s (docs/app.md)",
                           RETIRED_ENV, TRUSTED_PROXIES_ENV)
        proxies = cls(spec)
        if os.environ.get("SPACE_ID") and not proxies.networks:
            logger.warning("on a Space every visitor arrives through Hugging Face's proxy: without %s they share "
                           "one address for the per-address limits and the admin lockout (docs/app.md)",
                           TRUSTED_PROXIES_ENV)
        return proxies

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def address(self, peer: str, forwarded_for: Iterable[str] = ()) -> str:
        """The client's address from the TCP peer and the ``X-Forwarded-For`` header values, oldest first."""
        if not self.trusts(peer):
            return peer
        hops = [_host(hop) for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer  # a named proxy asking for itself

    def client(self, request: object) -> Client:
        """The door's one reading of a request (Gradio's or Starlette's: ``client.host`` and ``headers``);
        None, a call from Python rather than over HTTP, is an unknown client."""
        if request is None:
            return Client()
        peer = str(getattr(getattr(request, "client", None), "host", "") or "")
        headers = getattr(request, "headers", None)
        if hasattr(headers, "getlist"):  # Starlette's headers: every X-Forwarded-For line
            forwarded = headers.getlist("x-forwarded-for")
        else:  # a Gradio request rebuilt from a plain dict (lower-case keys, one line)
            forwarded = [str(headers.get("x-forwarded-for") or "")] if hasattr(headers, "get") else []
        return Client(self.address(peer, forwarded))


def _host(hop: str) -> str:
    """An address from one hop: ``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:5678`` or a bare IPv6 address."""
    hop = hop.strip()
    if hop.startswith("["):
        return hop[1:].partition("]")[0]
    host, colon, port = hop.rpartition(":")
    return host if colon and host.count(":") == 0 and port.isdigit() else hop
