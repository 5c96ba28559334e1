"""Reset a campaign: begin a new round under the same link, optionally archiving the earlier rounds.

Apart from ``annotations.rounds`` because the archive is an export
(``annotations.export``), and exports read rounds: this keeps imports one-way.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from annotations.campaign_import import CampaignError
from annotations.campaigns import Campaign, CampaignRegistry
from annotations.export import export_campaign
from annotations.rounds import current_judgements
from annotations.store import AnnotationStore

ARCHIVES = "archives"
"""The data folder's sub-folder where resets archive earlier rounds."""


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
    try:
        export_campaign(updated, store, out, n_boot=n_boot, rounds=range(1, updated.round))
    except (OSError, CampaignError) as exc:
        raise CampaignError(f"campaign {name!r} is in round {updated.round}, but archiving the earlier rounds "
                            f"to {out} failed ({exc}); they are still in the store and in a full export "
                            "(campaign export)") from None
    return ResetReport(updated, earlier, out)
