"""Rounds of a campaign: a reset starts a new one, so a speaker can rerun a talk under the same link.

The judgement store is append-only, so a reset deletes nothing: the
campaign's manifest records when each new round began (``Campaign.resets``),
and a judgement belongs to the round during which the server stored it (its
timestamp). Whatever counts "now" (the sampler, a rater's count, the
leaderboard, the live and presenter views, the admin table, ``campaign
list``) keeps only ``in_current_round``; a full export keeps every round and
marks each judgement with its ``round``. ``reset`` can first archive the
earlier rounds as an export of their own (``annotations.export``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from annotations.campaign_import import CampaignError
from annotations.campaigns import Campaign, CampaignRegistry
from annotations.store import AnnotationStore

ARCHIVES = "archives"
"""Folder of the data dir that holds archived rounds (outside the folders the app serves files from)."""


def round_of(campaign: Campaign, timestamps: pd.Series) -> np.ndarray:
    """The round (1, 2, ...) of each judgement time: one more than the resets at or before it."""
    if not campaign.resets:
        return np.ones(len(timestamps), dtype="int32")
    starts = pd.DatetimeIndex(pd.to_datetime(list(campaign.resets), utc=True, format="ISO8601"))
    times = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    return (starts.searchsorted(times, side="right") + 1).astype("int32")


def in_current_round(judgements: pd.DataFrame, campaign: Campaign | None) -> pd.DataFrame:
    """The rows stored since the campaign's last reset (all of them when it was never reset, or for ``None``:
    a campaign no longer there)."""
    if campaign is None or not campaign.resets:
        return judgements
    return judgements[round_of(campaign, judgements["timestamp"]) == campaign.round].reset_index(drop=True)


def current_judgements(store: AnnotationStore, campaign: Campaign | None, name: str) -> pd.DataFrame:
    """The standing judgements of campaign ``name`` (``campaign``: its record) in its current round."""
    return in_current_round(store.judgements(name), campaign)


@dataclass(frozen=True)
class ResetReport:
    """The campaign in its new round, what earlier rounds hold, and where they were archived (if asked)."""

    campaign: Campaign
    earlier: int
    archive: Path | None = None

    def summary(self) -> str:
        kept = (f"archived to {self.archive} and kept in the store" if self.archive is not None
                else "kept in the store and in full exports")
        last = self.campaign.round - 1
        rounds = "round 1" if last == 1 else f"rounds 1-{last}"
        return (f"campaign {self.campaign.name!r} is in round {self.campaign.round}: the live view, ranking and "
                f"sampler start from no judgements; the {self.earlier} judgements of {rounds} are {kept}. "
                "The link and QR code are unchanged.")


def archive_folder(data_dir: Path | str, campaign: Campaign) -> Path:
    """Where the rounds before ``campaign``'s current one are archived by default: a new folder per reset,
    named by the reset's time."""
    began = datetime.fromisoformat(campaign.resets[-1]).strftime("%Y%m%dT%H%M%S%fZ")
    return Path(data_dir) / ARCHIVES / campaign.name / f"{began}-rounds-1-{campaign.round - 1}"


def reset(registry: CampaignRegistry, store: AnnotationStore, name: str, archive: Path | str | bool = False,
          n_boot: int = 200) -> ResetReport:
    """Begin a new round of ``name``; with ``archive`` (True: ``archive_folder``; or a new or empty
    folder, checked first) export the earlier rounds' judgements there. A bad name or folder changes nothing."""
    out = Path(archive) if isinstance(archive, (str, Path)) else None
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CampaignError(f"{out} already exists and is not empty; an archive goes to a new folder")
    updated = registry.start_round(name)
    earlier = len(store.judgements(name)) - len(current_judgements(store, updated, name))
    if out is None and archive is not True:
        return ResetReport(updated, earlier)
    out = out or archive_folder(registry.root.parent, updated)
    from annotations.export import export_campaign  # export reads rounds: imported here, not at the top

    try:
        export_campaign(updated, store, out, n_boot=n_boot, rounds=range(1, updated.round))
    except (OSError, CampaignError) as exc:
        raise CampaignError(f"campaign {name!r} is in round {updated.round}, but archiving the earlier rounds "
                            f"to {out} failed ({exc}); they are still in the store and in a full export "
                            "(campaign export)") from None
    return ResetReport(updated, earlier, out)
