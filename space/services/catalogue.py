"""Every image the app may show a rater: the built-in pool (campaign ``default``) and each campaign's.

The rating service, the API, the background scoring and the leaderboard ask
this one place for an image's file, title and content group, whichever
campaign it belongs to. Campaigns created by the CLI while the app runs are
picked up on the next call.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from annotations.builtin_pool import PoolCampaigns
from annotations.campaigns import Campaign, CampaignRegistry, UnknownCampaign
from annotations.schema import DEFAULT_CAMPAIGN
from space.services.pool import RatingPool


class ImageCatalogue:
    """Read-only view over the pool and the campaign registry; thread-safe."""

    def __init__(self, pool: RatingPool, campaigns: CampaignRegistry | None = None,
                 visible: Callable[[str], bool] = lambda image_id: True) -> None:
        """``visible``: which contributed photos the pool's campaign includes, unless ``campaigns`` already
        knows the pool (``annotations.builtin_pool.campaigns_with_pool``, as the app builds it)."""
        self.pool = pool
        self.campaigns = campaigns
        self.visible = visible
        """Which of the pool's contributed photos raters may see (moderation cleared them)."""
        self._default = (campaigns.default if campaigns is not None and campaigns.default is not None
                         else PoolCampaigns(pool.root, visible).campaign)
        self._lock = threading.Lock()
        self._index: tuple[tuple[str, ...], dict[str, tuple[Campaign, str]]] = ((), {})

    def campaign(self, name: str | None) -> Campaign:
        """The campaign called ``name``; the built-in pool's (``default``) for ``""``, None or ``default``.

        Raises ``UnknownCampaign`` for any other name that does not exist.
        """
        if not name or name == DEFAULT_CAMPAIGN:
            return self._default()
        if self.campaigns is None:
            raise UnknownCampaign(f"unknown campaign {name!r}")
        return self.campaigns.get(name)

    def names(self) -> list[str]:
        """Campaign names, the default first."""
        return [DEFAULT_CAMPAIGN] + (self.campaigns.names() if self.campaigns is not None else [])

    def _campaign_images(self) -> dict[str, tuple[Campaign, str]]:
        """image id -> (its first campaign, title), rebuilt when campaigns come or go."""
        names = tuple(self.campaigns.names()) if self.campaigns is not None else ()
        with self._lock:
            if self._index[0] != names:
                index: dict[str, tuple[Campaign, str]] = {}
                for name in names:
                    try:
                        campaign = self.campaigns.get(name)
                    except UnknownCampaign:  # removed meanwhile
                        continue
                    for image in campaign.images:
                        index.setdefault(image.image_id, (campaign, image.name))
                self._index = (names, index)
            return self._index[1]

    @property
    def ids(self) -> list[str]:
        """Pool images first (they have been waiting longest), then campaign images."""
        seen = dict.fromkeys(self.pool.ids)
        seen.update(dict.fromkeys(self._campaign_images()))
        return list(seen)

    def __contains__(self, image_id: str) -> bool:
        return image_id in self.pool or image_id in self._campaign_images()

    def path(self, image_id: str) -> Path:
        if image_id in self.pool:
            return self.pool.path(image_id)
        return self._campaign_images()[image_id][0].path(image_id)

    def title(self, image_id: str) -> str:
        if image_id in self.pool:
            return self.pool.get(image_id).title
        found = self._campaign_images().get(image_id)
        return found[1] if found else image_id

    def content(self, image_id: str) -> str:
        if image_id in self.pool:
            return self.pool.get(image_id).content
        campaign = self._campaign_images()[image_id][0]
        return campaign.image(image_id).content

    def ids_of(self, campaign: str | None) -> list[str]:
        """The images of one campaign (the pool's that may be paired for the default one)."""
        return self.campaign(campaign).ids
