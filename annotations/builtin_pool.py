"""The built-in rating pool as a campaign (``default``), so it exports like any other.

The app builds the pool on its first start (``space.services.pool``) and keeps its
manifest in ``<data>/pool/pool.json``: the gallery photos, seeded distorted
versions of each, and contributed photos. Gold checks are the pristine photos
(``high``) against the strongest distortions (``low``). A contributed photo is
included once raters have judged it (it was shown only after moderation cleared
it) and while its file is still there; a pending or rejected one never is.
"""
from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from annotations.campaign_import import CampaignError
from annotations.campaigns import Campaign, CampaignImage
from annotations.schema import DEFAULT_CAMPAIGN

POOL_MANIFEST = "pool.json"
POOL_TITLE = "Built-in rating pool"


def builtin_pool(data_dir: Path | str, judged: Collection[str]) -> Campaign:
    """The pool under ``data_dir`` as campaign ``default``; ``judged``: image ids people have judged."""
    folder = Path(data_dir) / "pool"
    manifest = folder / POOL_MANIFEST
    if not manifest.is_file():
        raise CampaignError(f"the built-in pool is not built in {data_dir} yet (it is made on the app's first start)")
    entries = json.loads(manifest.read_text(encoding="utf-8"))["images"]
    strongest = max((entry["level"] for entry in entries if entry.get("level") is not None), default=None)
    images = []
    for entry in entries:
        path = folder / "images" / entry["file"]
        if entry["origin"] == "upload" and (entry["image_id"] not in judged or not path.is_file()):
            continue
        gold = "high" if entry["origin"] == "gallery" else (
            "low" if strongest is not None and entry.get("level") == strongest else None)
        with Image.open(path) as image:
            width, height = image.size
        images.append(CampaignImage(image_id=entry["image_id"], file=entry["file"], name=entry["title"],
                                    source=entry["origin"], licence=entry["licence"], content=entry["content"],
                                    gold=gold, width=width, height=height))
    built = datetime.fromtimestamp(manifest.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
    return Campaign(name=DEFAULT_CAMPAIGN, title=POOL_TITLE, instructions="", pairs="any", gold_share=0.1,
                    status="open", source="the app's built-in pool", created_at=built, images=tuple(images),
                    folder=folder)
