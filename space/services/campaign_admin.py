"""Admin actions on rating campaigns (the admin token): create from uploads or a dataset, close, reopen,
hide or reveal live results, edit the title and instructions, reset (a new round under the same link,
earlier judgements kept or also archived), clone, and export as a downloadable dataset.

What ``python -m annotations campaign`` does from a shell, for the admin panel
(``space.ui.campaign_admin``). Every action passes the app's one admin check
first and refuses with ``NotAuthorised`` or ``CampaignError`` (nothing changed).
Images arrive as a ``.zip`` of a folder (its sub-folders are kept, so
versions of one photo named alike in different folders are one content) or
as image files; a dataset is named by a local folder or a Hub id. Import
progress is shown while files are checked.
"""
from __future__ import annotations

import shutil
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from annotations.campaigns import DEFAULT_LICENCE, CampaignError, Settings
from annotations.export import export_campaign
from annotations.round_reset import reset as reset_campaign
from annotations.rounds import in_current_round
from space.services.clients import Client
from space.services.container import Services

MAX_UNZIPPED_BYTES = 2 * 1024**3
MAX_UPLOADED_FILES = 5000
EXPORTS_KEPT_S = 24 * 3600
"""Downloads older than this are removed when the next export is made, so they cannot pile up."""


def authorise(services: Services, token: object, client: Client | None = None) -> None:
    """Refuse (``NotAuthorised``) unless ``token`` is the admin token: the app's one check."""
    services.admin.check(token, client)


def campaign_table(services: Services) -> pd.DataFrame:
    """One row per campaign: status, round, images, judgements and raters of the current round, title."""
    judgements = services.store.judgements()
    rows = []
    for campaign in services.campaigns.list():
        mine = in_current_round(judgements[judgements["campaign"] == campaign.name], campaign)
        rows.append([campaign.name, campaign.status, campaign.round, len(campaign.images), len(mine),
                     int(mine["rater_id"].nunique()), campaign.title])
    return pd.DataFrame(rows, columns=["name", "status", "round", "images", "judgements", "raters", "title"])


def create(services: Services, token: object, name: str, files: list[str] | None, dataset: str,
           title: str, instructions: str, pairs: str, gold_share: float, licence: str,
           progress=None, client: Client | None = None, audience: float | None = None) -> str:
    """Create a campaign; returns a Markdown report (imported count, skipped files with reasons).

    ``audience`` (empty: none) sizes the per-address limits for that many people rating from one address.
    """
    authorise(services, token, client)
    name = (name or "").strip()
    dataset = (dataset or "").strip()
    if bool(files) == bool(dataset):
        raise CampaignError("Give either image files (or a .zip of a folder) or a dataset, not both or neither.")
    with tempfile.TemporaryDirectory(prefix="cvrkd-campaign-") as scratch:
        source = dataset or _unpack(files or [], Path(scratch))
        settings = Settings(title=title or "", instructions=instructions or "", pairs=pairs,
                            gold_share=float(gold_share), licence=(licence or "").strip() or DEFAULT_LICENCE,
                            audience=_audience(audience))
        try:
            report = services.campaigns.create(name, source, services.store, settings, progress)
        except CampaignError as exc:
            raise CampaignError(f"Campaign not created: {exc}") from None
    services.scores.refresh()  # the background scoring picks the new images up
    lines = [f"Created **{report.campaign.name}** with {len(report.campaign.images)} images; "
             f"{len(report.skipped)} files skipped. Pairs: {report.campaign.pairs} ({report.pairs_reason})."]
    if report.campaign.audience is not None:
        lines.append(f"Sized for an audience of {report.campaign.audience} people rating from one address.")
    lines += [f"* `{item.name}`: {item.reason}" for item in report.skipped[:50]]
    return "\n".join(lines)


def _audience(value: float | None) -> int | None:
    """The admin field's number as the campaign's audience: empty or 0 for none (an untouched number field
    sends 0); a fraction or a negative number is refused by ``Settings``."""
    if value is None or value == "" or value == 0:
        return None
    return int(value) if float(value).is_integer() else value  # type: ignore[return-value]


def set_status(services: Services, token: str | None, name: str, status: str, client: Client | None = None) -> str:
    authorise(services, token, client)
    campaign = services.campaigns.set_status((name or "").strip(), status)
    return f"Campaign **{campaign.name}** is now {campaign.status}."


def set_results_hidden(services: Services, token: str | None, name: str, hidden: bool,
                       client: Client | None = None) -> str:
    """Hide the campaign's live ranking until revealed (votes and raters stay on screen), or reveal it."""
    authorise(services, token, client)
    campaign = services.campaigns.set_results_hidden((name or "").strip(), hidden)
    shown = "hidden until you reveal them" if campaign.results_hidden else "shown"
    return f"Live results of **{campaign.name}** are now {shown} (presenter view: `/present/{campaign.name}`)."


def texts(services: Services, token: str | None, name: str, client: Client | None = None) -> tuple[str, str]:
    """The campaign's title and instructions as raters read them, to edit."""
    authorise(services, token, client)
    campaign = services.campaigns.get((name or "").strip())
    return campaign.title, campaign.instructions


def edit_texts(services: Services, token: str | None, name: str, title: str, instructions: str,
               client: Client | None = None) -> str:
    """Change what raters read; the images, pairs, rounds and judgements stay as they are."""
    authorise(services, token, client)
    campaign = services.campaigns.set_texts((name or "").strip(), title or "", instructions or "")
    return (f"Campaign **{campaign.name}** now reads: *{campaign.title}*"
            f"{' with new instructions' if campaign.instructions else ', with no instructions'}.")


def export(services: Services, token: str | None, name: str, client: Client | None = None) -> Path:
    """The campaign as a Hugging Face dataset folder (``annotations.export``, every round), zipped for download."""
    authorise(services, token, client)
    campaign = services.campaigns.get((name or "").strip())
    folder = Path(tempfile.gettempdir()) / "cvrkd-exports"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        if time.time() - old.stat().st_mtime > EXPORTS_KEPT_S:
            shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(prefix="cvrkd-export-") as scratch:
        dataset = Path(scratch) / f"{campaign.name}-{stamp}"
        export_campaign(campaign, services.store, dataset)
        archive = Path(shutil.make_archive(str(folder / f".{dataset.name}"), "zip", scratch, dataset.name))
        return archive.replace(folder / f"{dataset.name}.zip")  # whole or absent: never a half-written zip


def reset(services: Services, token: str | None, name: str, archive: bool, client: Client | None = None) -> str:
    """Begin a new round of the campaign (same link and QR code); earlier judgements stay in the store, and
    with ``archive`` are also exported under the data folder's ``archives/``."""
    authorise(services, token, client)
    report = reset_campaign(services.campaigns, services.store, (name or "").strip(), archive)
    return report.summary()


def clone(services: Services, token: str | None, name: str, new: str, client: Client | None = None) -> str:
    """Copy a campaign's settings and images to a new campaign (its own link) with no judgements."""
    authorise(services, token, client)
    try:
        campaign = services.campaigns.clone((name or "").strip(), (new or "").strip())
    except CampaignError as exc:
        raise CampaignError(f"Campaign not cloned: {exc}") from None
    return (f"Created **{campaign.name}**, a copy of **{(name or '').strip()}** with {len(campaign.images)} images "
            f"and no judgements (rating page: `/rate/{campaign.name}`).")


def _unpack(files: list[str], folder: Path) -> Path:
    """Uploaded files as one folder: a single .zip is extracted (safely), other files copied."""
    root = folder / "images"
    root.mkdir()
    if len(files) > MAX_UPLOADED_FILES:
        raise CampaignError(f"At most {MAX_UPLOADED_FILES} files per campaign upload.")
    for index, path in enumerate(map(Path, files)):
        if path.suffix.lower() == ".zip":
            _extract(path, root / path.stem)
        else:
            target = root / path.name
            if target.exists():
                target = root / f"{index}-{path.name}"
            shutil.copyfile(path, target)
    return root


def _extract(archive: Path, target: Path) -> None:
    """Extract a zip without leaving ``target`` (no absolute or ``..`` paths) and within a size limit."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
                raise CampaignError("The zip unpacks to more than 2 GB.")
            for member in members:
                relative = Path(member.filename)
                if relative.is_absolute() or ".." in relative.parts or relative.parts[:1] == ("__MACOSX",):
                    continue
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as source, open(destination, "wb") as sink:
                    shutil.copyfileobj(source, sink)
    except zipfile.BadZipFile:
        raise CampaignError(f"{archive.name} is not a readable zip archive.") from None
