"""A photo offered to the rating pool: the one path for the Score tab and the ``/contribute`` API.

A contribution needs its owner's consent, waits in the held folder until
moderation clears it (``space.services.moderation``), and is scored in the
background like every pool image.
"""
from __future__ import annotations

from dataclasses import dataclass

from cvrkd import LoadedImage
from space.services.container import Services

NO_CONSENT = "An image joins the rating pool only with consent=True from its owner."


class ContributionRefused(ValueError):
    """The photo was not added (no consent); nothing was stored."""


@dataclass(frozen=True)
class Contribution:
    """What happened to an offered photo: its id, its moderation status and the pool's new size."""

    image_id: str
    status: str
    pool_size: int

    def to_dict(self) -> dict:
        return {"image_id": self.image_id, "pool_size": self.pool_size, "status": self.status}


def require_consent(consent: object) -> None:
    """Refuse unless the owner consented (``True`` exactly: a client's "yes" or 1 is not consent)."""
    if consent is not True:
        raise ContributionRefused(NO_CONSENT)


def contribute(services: Services, image: LoadedImage, consent: object) -> Contribution:
    """Add a decoded, consented photo to the pool's held folder and submit it for moderation."""
    require_consent(consent)
    entry = services.pool.add_upload(image)
    status = services.moderation.submit(entry.image_id)
    services.scores.refresh()
    return Contribution(entry.image_id, status, len(services.pool))
