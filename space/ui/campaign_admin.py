"""Admin panel for rating campaigns (the admin token): create from uploads or a dataset, close, reopen,
reset (a new round under the same link, earlier judgements kept or also archived) and clone.

What ``python -m annotations campaign`` does from a shell, from a browser.
Images arrive as a ``.zip`` of a folder (its sub-folders are kept, so
versions of one photo named alike in different folders are one content) or
as image files; a dataset is named by a local folder or a Hub id. Import
progress is shown while files are checked.
"""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import gradio as gr
import pandas as pd

from annotations.campaigns import AUTO_PAIRS, DEFAULT_LICENCE, PAIR_SETTINGS, CampaignError, Settings
from annotations.rounds import in_current_round, reset as reset_campaign
from space.services.admin_auth import NotAuthorised
from space.services.container import Services

MAX_UNZIPPED_BYTES = 2 * 1024**3
MAX_UPLOADED_FILES = 5000


def authorise(services: Services, token: str | None, request: object = None) -> None:
    """Refuse unless ``token`` is the admin token (the app's one check, ``space.services.admin_auth``)."""
    try:
        services.admin.check(token, request)
    except NotAuthorised as exc:
        raise gr.Error(str(exc), print_exception=False) from None


def campaign_table(services: Services) -> pd.DataFrame:
    """One row per campaign: status, round, images, judgements and raters of the current round, title."""
    judgements = services.store.judgements()
    rows = []
    for campaign in services.campaigns.list():
        mine = in_current_round(judgements[judgements["campaign"] == campaign.name], campaign)
        rows.append([campaign.name, campaign.status, campaign.round, len(campaign.images), len(mine),
                     int(mine["rater_id"].nunique()), campaign.title])
    return pd.DataFrame(rows, columns=["name", "status", "round", "images", "judgements", "raters", "title"])


def create(services: Services, token: str | None, name: str, files: list[str] | None, dataset: str,
           title: str, instructions: str, pairs: str, gold_share: float, licence: str,
           progress=None, request: object = None, audience: float | None = None) -> str:
    """Create a campaign; returns a Markdown report (imported count, skipped files with reasons).

    ``audience`` (empty: none) sizes the per-address limits for that many people rating from one address.
    """
    authorise(services, token, request)
    name = (name or "").strip()
    dataset = (dataset or "").strip()
    if bool(files) == bool(dataset):
        raise gr.Error("Give either image files (or a .zip of a folder) or a dataset, not both or neither.",
                       print_exception=False)
    with tempfile.TemporaryDirectory(prefix="cvrkd-campaign-") as scratch:
        source = dataset or _unpack(files or [], Path(scratch))
        settings = Settings(title=title or "", instructions=instructions or "", pairs=pairs,
                            gold_share=float(gold_share), licence=(licence or "").strip() or DEFAULT_LICENCE,
                            audience=_audience(audience))
        try:
            report = services.campaigns.create(name, source, services.store, settings, progress)
        except CampaignError as exc:
            raise gr.Error(f"Campaign not created: {exc}", print_exception=False) from None
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


def set_status(services: Services, token: str | None, name: str, status: str, request: object = None) -> str:
    authorise(services, token, request)
    try:
        campaign = services.campaigns.set_status((name or "").strip(), status)
    except CampaignError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    return f"Campaign **{campaign.name}** is now {campaign.status}."


def set_results_hidden(services: Services, token: str | None, name: str, hidden: bool,
                       request: object = None) -> str:
    """Hide the campaign's live ranking until revealed (votes and raters stay on screen), or reveal it."""
    authorise(services, token, request)
    try:
        campaign = services.campaigns.set_results_hidden((name or "").strip(), hidden)
    except CampaignError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    shown = "hidden until you reveal them" if campaign.results_hidden else "shown"
    return f"Live results of **{campaign.name}** are now {shown} (presenter view: `/present/{campaign.name}`)."


def reset(services: Services, token: str | None, name: str, archive: bool, request: object = None) -> str:
    """Begin a new round of the campaign (same link and QR code); earlier judgements stay in the store, and
    with ``archive`` are also exported under the data folder's ``archives/``."""
    authorise(services, token, request)
    try:
        report = reset_campaign(services.campaigns, services.store, (name or "").strip(), archive)
    except CampaignError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    return report.summary()


def clone(services: Services, token: str | None, name: str, new: str, request: object = None) -> str:
    """Copy a campaign's settings and images to a new campaign (its own link) with no judgements."""
    authorise(services, token, request)
    try:
        campaign = services.campaigns.clone((name or "").strip(), (new or "").strip())
    except CampaignError as exc:
        raise gr.Error(f"Campaign not cloned: {exc}", print_exception=False) from None
    return (f"Created **{campaign.name}**, a copy of **{(name or '').strip()}** with {len(campaign.images)} images "
            f"and no judgements (rating page: `/rate/{campaign.name}`).")


def _unpack(files: list[str], folder: Path) -> Path:
    """Uploaded files as one folder: a single .zip is extracted (safely), other files copied."""
    root = folder / "images"
    root.mkdir()
    if len(files) > MAX_UPLOADED_FILES:
        raise gr.Error(f"At most {MAX_UPLOADED_FILES} files per campaign upload.", print_exception=False)
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
                raise gr.Error("The zip unpacks to more than 2 GB.", print_exception=False)
            for member in members:
                relative = Path(member.filename)
                if relative.is_absolute() or ".." in relative.parts or relative.parts[:1] == ("__MACOSX",):
                    continue
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as source, open(destination, "wb") as sink:
                    shutil.copyfileobj(source, sink)
    except zipfile.BadZipFile:
        raise gr.Error(f"{archive.name} is not a readable zip archive.", print_exception=False) from None


def build(services: Services) -> None:
    """The admin accordion (inside the current tab)."""
    with gr.Accordion("Admin: rating campaigns (needs the admin token)", open=False, elem_id="campaign-admin"):
        token = gr.Textbox(label="Admin token", type="password", elem_id="campaign-admin-token")
        table = gr.Dataframe(label="Campaigns", interactive=False, max_height=260)
        with gr.Row():
            name = gr.Textbox(label="Name (lowercase letters, digits, '-'; used in the link)",
                              elem_id="campaign-admin-name")
            title = gr.Textbox(label="Title shown to raters", elem_id="campaign-admin-title")
        instructions = gr.Textbox(label="Instructions (Markdown)", lines=2)
        files = gr.File(label="Images: a .zip of a folder, or image files", file_count="multiple",
                        type="filepath", elem_id="campaign-admin-files")
        dataset = gr.Textbox(label="... or a dataset: local dataset folder on the server, or Hub id owner/name")
        with gr.Row():
            pairs = gr.Radio(list(PAIR_SETTINGS), value=AUTO_PAIRS, label="Pairs (auto: same-content when "
                             "every image has another version of its photo)")
            gold = gr.Slider(0, 0.5, value=0.1, step=0.05, label="Gold share")
            licence = gr.Textbox(DEFAULT_LICENCE, label="Licence of images whose metadata names none")
        audience = gr.Number(None, label="Audience: people rating at once from one address, e.g. a talk's room "
                             "on the venue's Wi-Fi (sizes the per-address limits; 0 or empty: the usual limits)",
                             precision=None, elem_id="campaign-admin-audience")
        create_button = gr.Button("Create campaign", variant="primary", elem_id="campaign-admin-create")
        with gr.Row():
            close_button = gr.Button("Close campaign", elem_id="campaign-admin-close")
            reopen_button = gr.Button("Reopen campaign", elem_id="campaign-admin-reopen")
            hide_button = gr.Button("Hide live results", elem_id="campaign-admin-hide")
            reveal_button = gr.Button("Reveal live results", elem_id="campaign-admin-reveal")
        with gr.Row():
            reset_button = gr.Button("Reset: new round, keep judgements", elem_id="campaign-admin-reset")
            archive_button = gr.Button("Reset and archive judgements", elem_id="campaign-admin-reset-archive")
            new_name = gr.Textbox(label="Name of the copy", elem_id="campaign-admin-clone-name")
            clone_button = gr.Button("Clone campaign", elem_id="campaign-admin-clone")
        result = gr.Markdown(elem_id="campaign-admin-result")

    def on_create(token_, name_, files_, dataset_, title_, instructions_, pairs_, gold_, licence_, audience_,
                  request: gr.Request, progress=gr.Progress()):
        report = create(services, token_, name_, files_, dataset_, title_, instructions_, pairs_, gold_, licence_,
                        lambda i, n, d: progress((i, n), desc=f"checking {d}"), request, audience=audience_)
        return report, campaign_table(services)

    def on_status(status: str):
        def handler(token_, name_, request: gr.Request):
            return set_status(services, token_, name_, status, request), campaign_table(services)
        return handler

    def on_hidden(hidden: bool):
        def handler(token_, name_, request: gr.Request):
            return set_results_hidden(services, token_, name_, hidden, request), campaign_table(services)
        return handler

    def on_reset(archive: bool):
        def handler(token_, name_, request: gr.Request):
            return reset(services, token_, name_, archive, request), campaign_table(services)
        return handler

    def on_clone(token_, name_, new_, request: gr.Request):
        return clone(services, token_, name_, new_, request), campaign_table(services)

    def on_list(token_, request: gr.Request):
        authorise(services, token_, request)
        return campaign_table(services)

    jobs = dict(concurrency_id="campaign-admin", concurrency_limit=1, api_visibility="private")
    create_button.click(on_create, [token, name, files, dataset, title, instructions, pairs, gold, licence, audience],
                        [result, table], **jobs)
    close_button.click(on_status("closed"), [token, name], [result, table], **jobs)
    reopen_button.click(on_status("open"), [token, name], [result, table], **jobs)
    hide_button.click(on_hidden(True), [token, name], [result, table], **jobs)
    reveal_button.click(on_hidden(False), [token, name], [result, table], **jobs)
    reset_button.click(on_reset(False), [token, name], [result, table], **jobs)
    archive_button.click(on_reset(True), [token, name], [result, table], **jobs)
    clone_button.click(on_clone, [token, name, new_name], [result, table], **jobs)
    token.submit(on_list, token, table, **jobs)
