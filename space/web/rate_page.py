"""The lightweight rating page (``/rate/NAME``) and the plain JSON routes it calls, outside Gradio.

A talk puts a QR code on a slide and 50–300 phones open it at once. Through
Gradio's event machinery one judgement (a pair, its images, the vote) costs
the server about twice the time it costs here (request checks, session state;
measured in docs/performance_load.md): on a 2-core machine that served about
33 votes a second, while a 200-person audience at human pace sends about 70
and this page's routes kept up with 50 at p95 under a second. These routes call
the same services as the Rate tab and the ``gradio_client`` API (signed rater
ids, per-client limits, tickets that know their campaign), as one small JSON
request each, and the page is about 7 KB instead of the app's scripts.

Routes (mounted on the app by ``routes``; ``NAME`` = ``default`` or empty for
the built-in pool):

* ``GET /rate/NAME``: the page; ``GET /api/rate/campaign/NAME``: title, instructions, open or closed;
* ``POST /api/rate/rater`` ``{campaign}``: a new signed rater id (within the campaign's per-address limits);
* ``POST /api/rate/next_pair`` ``{rater_id, campaign}``: a ticket and the two image URLs, or
  ``{done: true, message}`` when the rater has judged all the campaign asks of them;
* ``POST /api/rate/vote`` ``{rater_id, ticket, choice, response_ms, campaign}``: the receipt;
* ``POST /api/rate/undo`` ``{rater_id, campaign}``: the last answer taken back, its pair served again;
* ``GET /api/rate/live/NAME``: the live numbers the presenter's view shows;
* ``GET /api/rate/image/ID``: an image of the pool or a campaign (display size, cacheable).

A refused request answers ``{"error": message}`` with status 400 (401 for a
rater id this server did not sign, 404 for an unknown campaign or image, 429
when a limit is hit), logs one line and stores nothing.
"""
from __future__ import annotations

import html
import logging
from functools import cache
from pathlib import Path
from string import Template

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from annotations.campaigns import UnknownCampaign
from annotations.schema import DEFAULT_CAMPAIGN
from space.services import voting
from space.services.raters import UnknownRater
from space.services.rating import UNDO_WINDOW_S, CampaignNotFound, Finished, RateLimited, RatingError, Ticket
from space.services.container import Services
from space.services.texts import CONSENT, campaign_texts, plain

logger = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("static") / "rate.html"
IMAGE_CACHE = "public, max-age=86400, immutable"
"""Image ids are content hashes: a file never changes under its id, so phones may keep it."""


class RaterRequest(BaseModel):
    campaign: str = Field("", max_length=200)


class PairRequest(BaseModel):
    rater_id: str = Field(max_length=200)
    campaign: str = Field("", max_length=200)


class VoteRequest(BaseModel):
    rater_id: str = Field(max_length=200)
    ticket: str = Field(max_length=200)
    choice: str = Field(max_length=20)
    response_ms: float | None = None
    campaign: str | None = Field(None, max_length=200)


def routes(services: Services) -> list:
    """The routes, for ``FastAPI(routes=...)`` (``launch(app_kwargs=...)``) so they match before Gradio's."""
    router = APIRouter()

    @router.get("/rate", response_class=HTMLResponse, include_in_schema=False)
    @router.get("/rate/{campaign}", response_class=HTMLResponse, include_in_schema=False)
    def page(campaign: str = "") -> HTMLResponse:
        try:
            found = services.images.campaign(campaign)
        except UnknownCampaign:
            return HTMLResponse(render_page(services, DEFAULT_CAMPAIGN, problem=(
                f"⚠ There is no campaign called “{campaign}”; check the link.")), status_code=404)
        if found.is_open:
            return HTMLResponse(render_page(services, found.name))
        return HTMLResponse(render_page(services, found.name, notice=(
            f"The campaign “{found.name}” is closed and takes no more votes. Thank you!")))

    @router.get("/api/rate/campaign/{campaign}")
    def campaign_info(campaign: str) -> JSONResponse:
        try:
            found = services.images.campaign(campaign)
        except UnknownCampaign as exc:
            return _refused(404, str(exc), "campaign")
        title, instructions = _texts(services, found.name)
        return JSONResponse({"campaign": found.name, "title": title, "instructions": instructions,
                             "open": found.is_open, "images": len(found.ids)})

    @router.post("/api/rate/rater")
    def new_rater(request: Request, body: RaterRequest | None = None) -> JSONResponse:
        try:
            rater = voting.new_rater(services, services.proxies.client(request), body.campaign if body else None)
        except RatingError as exc:
            return _refused(_status(exc), str(exc), "rater")
        return JSONResponse({"rater_id": rater})

    @router.post("/api/rate/next_pair")
    def next_pair(body: PairRequest) -> JSONResponse:
        try:
            ticket = voting.next_pair(services, body.rater_id, body.campaign)
        except RatingError as exc:
            return _refused(_status(exc), str(exc), "next_pair")
        return JSONResponse(_pair(services, ticket))

    @router.post("/api/rate/vote")
    def vote(body: VoteRequest, request: Request) -> JSONResponse:
        try:
            receipt = voting.vote(services, services.proxies.client(request), body.rater_id, body.ticket, body.choice,
                                  body.response_ms, campaign=body.campaign)
        except RatingError as exc:
            return _refused(_status(exc), str(exc), "vote")
        return JSONResponse(receipt.to_dict())

    @router.post("/api/rate/undo")
    def undo(body: PairRequest) -> JSONResponse:
        try:
            ticket = voting.undo(services, body.rater_id, body.campaign or None)
        except RatingError as exc:
            return _refused(_status(exc), str(exc), "undo")
        return JSONResponse(_pair(services, ticket))

    @router.get("/api/rate/live/{campaign}")
    def live(campaign: str) -> JSONResponse:
        try:
            return JSONResponse(services.live_numbers(campaign))
        except UnknownCampaign as exc:
            return _refused(404, str(exc), "live")

    @router.get("/api/rate/image/{image_id}")
    def image(image_id: str):
        pending_upload = image_id in services.pool and not services.images.visible(image_id)
        if image_id not in services.images or pending_upload:
            return _refused(404, f"There is no image {image_id!r} to rate.", "image")
        return FileResponse(services.images.path(image_id), headers={"Cache-Control": IMAGE_CACHE})

    return list(router.routes)


def _pair(services: Services, ticket: Ticket | Finished) -> dict:
    """A pair as the page shows it: the ticket, both image URLs and the rater's count (or, when the rater is
    done, the thanks and the count)."""
    if isinstance(ticket, Finished):
        return ticket.to_dict()
    return {"ticket": ticket.to_dict(), "left": image_url(ticket.left), "right": image_url(ticket.right),
            "count": services.rating.count(ticket.rater_id, ticket.campaign)}


def image_url(image_id: str) -> str:
    """Relative to the app's root, so the page works under a proxy's path prefix too."""
    return f"api/rate/image/{image_id}"


def render_page(services: Services, campaign: str, problem: str = "", notice: str = "") -> str:
    """The page with the campaign's title and instructions (as text: a campaign's owner wrote them), and
    instead of a pair either a ``problem`` (red, read out at once) or a neutral ``notice``."""
    title, instructions = _texts(services, campaign)
    values = {"campaign": campaign, "title": title, "instructions": instructions, "problem": problem or notice,
              "problem_kind": "notice" if notice else "", "problem_role": "status" if notice else "alert",
              "consent": plain(CONSENT), "undo_s": f"{UNDO_WINDOW_S:.0f}"}
    return _page_template().substitute({key: html.escape(value, quote=True) for key, value in values.items()})


@cache
def _page_template() -> Template:
    """Read once: every phone in the room asks for the page at the same moment."""
    return Template(PAGE.read_text(encoding="utf-8"))


def _texts(services: Services, campaign: str) -> tuple[str, str]:
    title, instructions = campaign_texts(services.images, campaign or None)
    return title or "Which image looks better?", plain(instructions)


def _status(exc: RatingError) -> int:
    if isinstance(exc, UnknownRater):
        return 401  # the page drops its kept id and asks for a new one
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, CampaignNotFound):
        return 404
    return 400


def _refused(status: int, message: str, where: str) -> JSONResponse:
    logger.info("refused %s (%d): %s", where, status, message)
    return JSONResponse({"error": message}, status_code=status)
