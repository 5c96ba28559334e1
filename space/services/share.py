"""Links that open the app where they point, and QR codes of them for a slide.

The public address comes from ``CVRKD_PUBLIC_URL``, else the Space's host
(``SPACE_HOST``), else the request (honouring a proxy's ``X-Forwarded-*``
headers), so the link on a slide is the one the audience can open. QR codes
are made locally with ``segno`` and written once per link as PNG (large
enough for a projector) and SVG under ``<data>/share/``.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import segno

from annotations.schema import DEFAULT_CAMPAIGN

PUBLIC_URL_ENV = "CVRKD_PUBLIC_URL"
QR_PIXELS = 1000
"""Side of the PNG in pixels (about): sharp on a full-HD slide."""


def base_url(request: object | None) -> str:
    """The app's public root URL, ending in ``/``."""
    configured = os.environ.get(PUBLIC_URL_ENV, "").strip()
    if configured:
        return configured.rstrip("/") + "/"
    space_host = os.environ.get("SPACE_HOST", "").strip()
    if space_host:
        return f"https://{space_host}/"
    headers = getattr(request, "headers", None) or {}
    host = headers.get("x-forwarded-host") or headers.get("host") or "127.0.0.1:7860"
    scheme = headers.get("x-forwarded-proto") or "http"
    return f"{scheme.split(',')[0].strip()}://{host.split(',')[0].strip()}/"


def local_only(url: str) -> bool:
    """Whether ``url`` names this machine (localhost, 127.x, ::1, 0.0.0.0): a phone scanning it opens itself."""
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1", "0.0.0.0") or host.endswith(".localhost") or host.startswith("127.")


def local_warning(url: str) -> str:
    """What to tell the person sharing ``url`` when it only works on this machine ("" when it is public)."""
    if not local_only(url):
        return ""
    return (f"This link only works on this computer ({urlsplit(url).netloc}): a phone that scans the QR code "
            f"opens itself, not this app. Set {PUBLIC_URL_ENV} to the address your audience can reach "
            "(for example http://192.168.1.20:7860 on the room's Wi-Fi, or the Space's URL) and restart, "
            "or open this page by that address.")


def link(request: object | None, campaign: str | None = None, view: str | None = None, tab: str | None = None) -> str:
    """The link that opens the app on ``campaign`` (and its live ``view``, or a ``tab``)."""
    query = {key: value for key, value in (("campaign", campaign), ("view", view), ("tab", tab)) if value}
    return base_url(request) + (f"?{urlencode(query)}" if query else "")


def page_link(request: object | None, campaign: str | None = None) -> str:
    """The link of the lightweight rating page for ``campaign`` (``/rate/NAME``; ``/rate`` for the built-in
    pool): what a QR code on a slide should open, since it serves a large audience far faster than the
    full app (docs/performance_load.md)."""
    return base_url(request) + ("rate" if not campaign or campaign == DEFAULT_CAMPAIGN else f"rate/{quote(campaign)}")


@dataclass(frozen=True)
class QrFiles:
    link: str
    png: Path
    svg: Path


def qr_files(url: str, folder: Path) -> QrFiles:
    """PNG and SVG QR codes of ``url`` (error correction M, quiet zone 4), written once per link."""
    folder = Path(folder)
    stem = "qr-" + hashlib.sha256(url.encode()).hexdigest()[:16]
    png, svg = folder / f"{stem}.png", folder / f"{stem}.svg"
    if not (png.is_file() and svg.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        code = segno.make(url, error="m", micro=False)
        side = code.symbol_size(scale=1, border=4)[0]
        for path, kind, options in ((png, "png", {"scale": max(4, QR_PIXELS // side)}), (svg, "svg", {"scale": 10})):
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            code.save(str(tmp), kind=kind, border=4, **options)
            os.replace(tmp, path)
    return QrFiles(url, png, svg)

