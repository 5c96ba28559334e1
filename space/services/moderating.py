"""Who may moderate contributed photos, and how: proven raters review, the admin decides.

The one path for the ``/review_next``, ``/review`` and ``/moderate`` API calls
and the admin's moderation screen. Rater actions verify the signed id and
count against the client's limits as votes do; admin actions pass the app's
one admin check (``space.services.admin_auth``) first.
"""
from __future__ import annotations

from space.services.clients import Client
from space.services.container import Services

THUMB_SIDE = 240


def review_next(services: Services, signed_rater: object) -> dict:
    """A photo waiting for this rater's review (as a ``data:`` URL), or a message that none is."""
    image_id = services.moderation.next_for(services.raters.verify(signed_rater))
    if image_id is None:
        return {"image_id": None, "message": "No photo is waiting for review."}
    return {"image_id": image_id, "image": services.moderation.photo(image_id)}


def review(services: Services, client: Client, signed_rater: object, image_id: str, verdict: str) -> dict:
    """Record a proven rater's ``ok`` or ``flag`` for a photo; counted like a vote against the client's limits."""
    public = services.raters.verify(signed_rater)
    services.limits.vote(client)
    return {"image_id": image_id, "status": services.moderation.review(public, image_id, verdict)}


def moderate(services: Services, token: object, client: Client | None, image_id: object, decision: object) -> dict:
    """Admin: approve or reject a photo; with no image id, the ids waiting (pending and flagged)."""
    services.admin.check(token, client)
    image_id = _text(image_id)
    if not image_id:
        return {"pending": services.moderation.pending(), "flagged": services.moderation.flagged()}
    return {"image_id": image_id, "status": services.moderation.decide(image_id, _text(decision))}


def waiting(services: Services, token: object, client: Client | None) -> list[dict]:
    """Admin: photos waiting for a decision (flagged first, then pending), with thumbnails as ``data:`` URLs."""
    services.admin.check(token, client)
    moderation = services.moderation
    return [{"image_id": image_id, "status": moderation.status(image_id),
             "thumbnail": moderation.photo(image_id, THUMB_SIDE)}
            for image_id in moderation.flagged() + moderation.pending()]


def _text(value: object) -> str:
    """A text argument as sent by the UI or any API client (None, numbers, ...), stripped."""
    return "" if value is None else str(value).strip()
