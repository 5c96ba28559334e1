"""The built-in rating pool as a campaign (``default``), served and exported like any other.

The app builds the pool on its first start (``space.services.pool``) and keeps its
manifest in ``<data>/pool/pool.json``: the gallery photos, seeded distorted
versions of each, and contributed photos. Gold checks are each pristine photo
(``high``) against its own strongest distortions (``low``), as the app's pool
has always paired them. A contributed photo is included while its file is in
the served folder and the caller's ``include`` says so: the app includes those
moderation cleared, the export those raters have judged (they were shown only
after moderation cleared them); a pending or rejected one never is.

``PoolCampaigns`` keeps the campaign between calls and rebuilds it only when
the manifest or the set of included photos changed, because the app asks for
it on every pair it serves.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from annotations.campaign_import import CampaignError
from annotations.campaigns import Campaign, CampaignImage, CampaignRegistry
from annotations.schema import DEFAULT_CAMPAIGN

POOL_MANIFEST = "pool.json"
POOL_TITLE = "Built-in rating pool"
SHOWN = "images"
"""The pool's served folder (contributions wait elsewhere until moderation clears them)."""

Include = Callable[[str], bool]


@dataclass(frozen=True)
class PoolCampaign(Campaign):
    """The pool's campaign: its gold pairs come from the manifest (each distortion names its photo)."""

    gold: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """(better, worse): each pristine photo against its own strongest distortions, in manifest order."""

    def gold_pairs(self) -> list[tuple[str, str]]:
        return list(self.gold)

    def to_record(self) -> dict[str, Any]:
        record = super().to_record()
        record.pop("gold")
        return record


def builtin_pool(data_dir: Path | str, include: Include | Collection[str]) -> Campaign:
    """The pool under ``data_dir`` as campaign ``default``; ``include``: which contributed photos to include
    (a predicate on the image id, or the ids themselves, e.g. those people have judged)."""
    return PoolCampaigns(Path(data_dir) / "pool", include).campaign()


class PoolCampaigns:
    """The pool in ``folder`` as campaign ``default``, cached; thread-safe."""

    def __init__(self, folder: Path | str, include: Include | Collection[str]) -> None:
        self.folder = Path(folder)
        self.include: Include = include if callable(include) else frozenset(include).__contains__
        self._lock = threading.Lock()
        self._entries: tuple[tuple[int, int, int], list[dict]] | None = None  # (manifest stamp, entries)
        self._sizes: dict[str, tuple[int, int]] = {}  # file -> (width, height): files are named by content
        self._built: tuple[tuple, Campaign] | None = None  # (key, campaign)

    def campaign(self) -> Campaign:
        """The campaign as the pool is now: re-read only when ``pool.json`` or the included photos changed."""
        manifest = self.folder / POOL_MANIFEST
        try:
            info = manifest.stat()
        except FileNotFoundError:
            raise CampaignError(f"the built-in pool is not built in {self.folder.parent} yet (it is made on the "
                                "app's first start)") from None
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self._lock:
            if self._entries is None or self._entries[0] != stamp:
                self._entries = (stamp, json.loads(manifest.read_text(encoding="utf-8"))["images"])
            entries = self._entries[1]
            uploads = tuple(entry["image_id"] for entry in entries if entry["origin"] == "upload"
                            and self.include(entry["image_id"])
                            and (self.folder / SHOWN / entry["file"]).is_file())
            key = (stamp, uploads)
            if self._built is None or self._built[0] != key:
                self._built = (key, self._build(entries, set(uploads), info.st_mtime))
            return self._built[1]

    def _build(self, entries: list[dict], uploads: set[str], modified: float) -> Campaign:
        strongest = max((entry["level"] for entry in entries if entry.get("level") is not None), default=None)
        present = {entry["image_id"] for entry in entries}
        images, gold = [], []
        for entry in entries:
            if entry["origin"] == "upload" and entry["image_id"] not in uploads:
                continue
            low = strongest is not None and entry.get("level") == strongest
            if low and entry.get("reference_id") in present:
                gold.append((entry["reference_id"], entry["image_id"]))
            width, height = self._size(entry["file"])
            images.append(CampaignImage(image_id=entry["image_id"], file=entry["file"], name=entry["title"],
                                        source=entry["origin"], licence=entry["licence"], content=entry["content"],
                                        gold="high" if entry["origin"] == "gallery" else "low" if low else None,
                                        width=width, height=height))
        built = datetime.fromtimestamp(modified, timezone.utc).isoformat(timespec="seconds")
        return PoolCampaign(name=DEFAULT_CAMPAIGN, title=POOL_TITLE, instructions="", pairs="any", gold_share=0.1,
                            status="open", source="the app's built-in pool", created_at=built,
                            images=tuple(images), folder=self.folder, gold=tuple(gold))

    def _size(self, file: str) -> tuple[int, int]:
        if file not in self._sizes:
            with Image.open(self.folder / SHOWN / file) as image:
                self._sizes[file] = image.size
        return self._sizes[file]


def campaigns_with_pool(data_dir: Path | str, uploads: Callable[[str], bool]) -> CampaignRegistry:
    """The campaigns under ``data_dir`` with the built-in pool as campaign ``default``; ``uploads`` says which
    contributed photos the pool includes."""
    return CampaignRegistry(Path(data_dir) / "campaigns", PoolCampaigns(Path(data_dir) / "pool", uploads).campaign)
