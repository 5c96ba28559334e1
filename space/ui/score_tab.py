"""Score tab: an image (or an example) against a reference gallery, or its original.

``score_view`` and friends do the work and return what to show, so they can
be tested without a browser; ``build`` lays the tab out and wires the events.
"""
from __future__ import annotations

import csv
import html
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from cvrkd import InvalidImageError, check_image_file
from space.ui import plots
from space.ui.components import raw_image
from space.ui.errors import note_refusal
from space.services import scoring
from space.services.contributions import Contribution
from space.services.examples import example_files, examples
from space.services.galleries import MAX_SESSION_IMAGES, UnknownGallery
from space.services.model_service import ModelUnavailable, ScoreReport
from space.services.container import Services
from space.services.refusals import REFUSALS
from space.services.scoring import Scored
from space.services.texts import CONTRIBUTE_CONSENT

logger = logging.getLogger(__name__)

MAX_BATCH = 50
SESSION_TTL_S = 6 * 3600
SCORED_TTL_S = 600
"""How long a session keeps its last decoded image (up to 2048 px a side, about 12 MB) for the explanation
that follows the score within seconds; not for as long as the session lasts."""


@dataclass
class ScoreView:
    """Everything the Score tab shows after one click."""

    html: str
    references: list[tuple[str, str]] = field(default_factory=list)
    scored: Scored | None = None  # what the explanation reads, None when nothing was scored

    def shown(self) -> tuple:
        """The values of ``ScoreTab.example_outputs``: chart and map are cleared, the explanation fills them."""
        return self.html, self.references, self.scored, None, None


def score_view(services: Services, image_path: str | None, gallery_name: str | None,
               original_path: str | None, contribute: bool, session: dict[str, str] | None) -> ScoreView:
    """Score (and, with consent, add to the pool) through the one use case; every refusal becomes a plain message."""
    started = time.perf_counter()
    try:
        scored = scoring.score(services, image_path, gallery_name, original_path, session=session,
                               contribute=contribute)
    except REFUSALS as exc:
        note_refusal(str(exc), "score tab")
        return ScoreView(_refused(str(exc)))
    pooled = _para(_contribution(scored.contribution))
    if scored.report is None:
        return ScoreView(_refused(scored.problem) + pooled)
    gallery = scored.gallery
    references = [(str(gallery.root / e.file), e.name) for e in gallery.images]
    return ScoreView(_result_html(services, scored.report, time.perf_counter() - started) + pooled, references,
                     scored)


def explain_view(services: Services, scored: Scored | None) -> tuple[go.Figure | None, go.Figure | None]:
    """The chart of what the references add and the quality map, for the last scored image (Nones without one)."""
    if scored is None or scored.report is None:
        return None, None
    try:
        explanation = scoring.explain(services, scored)
    except ModelUnavailable as exc:  # the model went away since the score
        logger.info("no explanation: %s", exc)
        return None, None
    return plots.reference_effect(explanation.reference_effect), plots.quality_map(explanation.quality_map)


PLACEHOLDER = "<p>The score will appear here.</p>"
DROPPED = "data-dropped"
"""Marks the message of an upload the image box must drop (the browser clears the box on seeing it)."""


def upload_view(path: str | None, what: str) -> str:
    """Check a new upload at once, without decoding it; the message to show in the result area.

    A file that is not a usable image gets a refusal marked ``DROPPED``, so
    the page clears the image box and shows no broken preview.
    """
    if not path:
        return PLACEHOLDER
    try:
        check_image_file(path, name=Path(path).name)
    except InvalidImageError as exc:
        note_refusal(str(exc), f"score tab {what}")
        return f'<p class="refused" {DROPPED}>⚠ {html.escape(f"{what.capitalize()} not used: {exc}")}</p>'
    return PLACEHOLDER


SCORING = '<p class="pending">Scoring… (the previous result was cleared)</p>'
"""Shown the moment Score is clicked, so an old result never sits under the new job's progress."""


def build_gallery(services: Services, files: list[str] | None, name: str, session: dict[str, str] | None,
                  progress: Callable[[int, int, str], None] | None = None) -> tuple[str, dict[str, str], str | None]:
    """Save the session's own gallery and compute its features: (message, session, new name)."""
    session = dict(session or {})
    taken = set(services.galleries.names()) | set(session)
    try:
        gallery = services.galleries.create_session_gallery(files or [], _unique(name, taken))
    except InvalidImageError as exc:
        return _refused(f"Gallery not created: {exc}"), session, None
    session[gallery.name] = str(gallery.root)
    try:
        services.model.prepare_gallery(gallery, progress)
    except ModelUnavailable as exc:
        return _refused(str(exc)), session, gallery.name
    return (f"<p>Gallery <b>{html.escape(gallery.name)}</b> is ready ({len(gallery)} references, "
            "for this session only).</p>"), session, gallery.name


def score_many(services: Services, files: list[str] | None, gallery_name: str | None,
               session: dict[str, str] | None,
               progress: Callable[[int, int, str], None] | None = None) -> tuple[pd.DataFrame, str | None, str]:
    """Score a batch; unreadable files get an error row. Returns (table, CSV path, message)."""
    files = list(files or [])[:MAX_BATCH]
    columns = ["file", "score", "spread", "model_version", "error"]
    if not files:
        return pd.DataFrame(columns=columns), None, _refused("Add some images first.")
    try:
        gallery = services.galleries.resolve(gallery_name, session)
        services.model.require()
        results = services.model.score_many(files, gallery, progress)
    except (UnknownGallery, ModelUnavailable) as exc:
        return pd.DataFrame(columns=columns), None, _refused(str(exc))
    rows = [[Path(path).name, None, None, services.model.version, str(result)]
            if isinstance(result, InvalidImageError) else
            [Path(path).name, round(result.score, 2), round(result.spread, 2), result.model_version, ""]
            for path, result in zip(files, results)]
    table = pd.DataFrame(rows, columns=columns)
    out = _batch_file()
    with open(out, "w", newline="") as handle:
        csv.writer(handle).writerows([columns, *rows])
    failed = int(table["error"].astype(bool).sum())
    return table, str(out), f"<p>Scored {len(rows) - failed} of {len(rows)} images.</p>"


# --------------------------------------------------------------------- layout
@dataclass
class ScoreTab:
    """The parts a ``?example=NAME`` link drives (see ``space.ui.links``)."""

    tab: gr.Tab
    example_outputs: list
    """What ``ScoreView.shown`` fills: the result, the references, the scored state, the chart and the map."""
    explain_input: gr.State
    explain_outputs: list
    """What ``explain_view`` fills: the chart and the map."""


def example_view(services: Services, name: str) -> ScoreView:
    """The named example scored against the default gallery; KeyError for an unknown name.

    The upload box stays empty: making it an output of the link's event would
    undo ``raw_image``'s handling of uploads, so the result names the example.
    """
    path = str(example_files(services.data_dir / "examples")[name])
    view = score_view(services, path, None, None, False, None)
    view.html = f'<p class="example-name">Example: <b>{html.escape(name)}</b></p>' + view.html
    return view


def build(services: Services) -> ScoreTab:
    """Lay out the Score tab and wire its events."""
    names = services.galleries.names()
    with gr.Tab("Score", id="score") as tab:
        gr.Markdown(
            "Upload a photo and get its quality on a **0–100 scale, higher = better**, judged against "
            "high-quality reference photos of *other* content (CVRKD-IQA). If you have the pristine "
            "original of your image, add it to get the full-reference teacher's score as well.")
        session = gr.State({}, time_to_live=SESSION_TTL_S,
                           delete_callback=lambda s: [services.galleries.delete_session_gallery(p)
                                                      for p in (s or {}).values()])
        scored = gr.State(None, time_to_live=SCORED_TTL_S)
        with gr.Row():
            with gr.Column(scale=5):
                image = raw_image(label="Image to score", sources=["upload", "clipboard"], height=320,
                                 elem_id="score-image")
                gallery = gr.Dropdown(names, value=names[0], label="Reference gallery", elem_id="score-gallery")
                with gr.Accordion("I have the pristine original", open=False):
                    original = raw_image(label="Pristine original (same photo, undistorted)",
                                        sources=["upload", "clipboard"], height=220, elem_id="score-original")
                contribute = gr.Checkbox(False, label=CONTRIBUTE_CONSENT, elem_id="score-consent")
                button = gr.Button("Score", variant="primary", elem_id="score-button")
            with gr.Column(scale=6):
                result = gr.HTML(PLACEHOLDER, elem_id="score-result")
                qmap = gr.Plot(label="Quality map: where the image loses points, on one scale for every image",
                               elem_id="score-map")
                chart = gr.Plot(label="What comparing with the references adds", elem_id="score-chart")
                references = gr.Gallery(label="References used", columns=6, rows=1, height=150,
                                        allow_preview=True, object_fit="cover", elem_id="score-references")
        rows, labels = examples(services.data_dir / "examples")
        gr.Examples(rows, inputs=[image, original], example_labels=labels,
                    label="Examples: a photo that is not in the gallery (click one, then Score)")
        with gr.Accordion("Use your own reference gallery (this session only)", open=False):
            gr.Markdown(f"Upload 1–{MAX_SESSION_IMAGES} high-quality photos of any content. "
                        "They are kept only while this page is open.")
            gallery_files = gr.File(file_count="multiple", file_types=["image"], label="Reference photos")
            gallery_name = gr.Textbox(label="Gallery name", placeholder="my gallery")
            gallery_button = gr.Button("Build gallery")
            gallery_status = gr.HTML()
        with gr.Accordion("Score many images", open=False):
            batch_files = gr.File(file_count="multiple", label=f"Images (up to {MAX_BATCH})")
            batch_button = gr.Button("Score all")
            batch_status = gr.HTML()
            batch_table = gr.Dataframe(interactive=False, wrap=True)
            batch_csv = gr.File(label="Scores as CSV", interactive=False)

    def on_score(image_path, gallery_name_, original_path, contribute_, session_):
        return score_view(services, image_path, gallery_name_, original_path, contribute_, session_).shown()

    def on_explain(scored_):
        return explain_view(services, scored_)

    def on_build(files, name, session_, progress=gr.Progress()):
        message, session_, new = build_gallery(services, files, name, session_,
                                               lambda i, n, d: progress((i, n), desc=d))
        choices = services.galleries.names() + list(session_)
        return message, session_, gr.Dropdown(choices=choices, value=new or choices[0])

    def on_batch(files, gallery_name_, session_, progress=gr.Progress()):
        table, path, message = score_many(services, files, gallery_name_, session_,
                                          lambda i, n, d: progress((i, n), desc=f"scoring {d}"))
        return table, path, message

    model_jobs = dict(concurrency_id="model", concurrency_limit=services.config.score_concurrency,
                      api_visibility="private")
    for box, what in ((image, "image"), (original, "original")):
        # The box is cleared in the page, not by the server: an event that outputs to a component
        # gives the session a stock copy of it, without raw_image's undecoded uploads.
        checked = box.upload(lambda path, what=what: upload_view(path, what), box, result, queue=False,
                             api_visibility="private")
        checked.then(None, [result, box], box, js=f"(message, value) => message.includes('{DROPPED}') ? null : value",
                     api_visibility="private")
    clearing = button.click(lambda: (SCORING, None, [], None), None, [result, chart, references, qmap],
                            queue=False, api_visibility="private")
    outputs = [result, references, scored, chart, qmap]
    clearing.then(on_score, [image, gallery, original, contribute, session], outputs, **model_jobs) \
        .then(on_explain, scored, [chart, qmap], **model_jobs)
    gallery_button.click(on_build, [gallery_files, gallery_name, session], [gallery_status, session, gallery],
                         **model_jobs)
    batch_button.click(on_batch, [batch_files, gallery, session], [batch_table, batch_csv, batch_status],
                       **model_jobs)
    return ScoreTab(tab, outputs, scored, [chart, qmap])


def _batch_file() -> Path:
    """A fresh CSV path; batch files older than a day are removed so they cannot pile up."""
    folder = Path(tempfile.gettempdir()) / "cvrkd-batches"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.csv"):
        if time.time() - old.stat().st_mtime > 86400:
            old.unlink(missing_ok=True)
    return folder / f"scores-{uuid.uuid4().hex[:12]}.csv"


# ----------------------------------------------------------------------- html
def _result_html(services: Services, report: ScoreReport, elapsed: float) -> str:
    nar = report.nar
    warning = services.model.banner()
    parts = [f'<p class="refused">⚠ {html.escape(warning)}</p>'] if warning else []
    if report.fr is None:
        parts.append(f'<div class="score-value">{nar.score:.1f} <small>/ 100</small></div>'
                     f'<p class="score-agreement">{_agreement(nar)}</p>')
    else:
        parts.append(
            '<table><tr><th></th><th>against the gallery (NAR student)</th>'
            '<th>against your original (FR teacher)</th></tr>'
            f'<tr><td>score</td><td class="score-value">{nar.score:.1f}</td>'
            f'<td class="score-value">{report.fr.score:.1f}</td></tr>'
            f"<tr><td>spread</td><td>± {nar.spread:.1f} over {len(nar.per_reference)} references</td>"
            "<td>one aligned reference</td></tr></table><p>0–100, higher is better.</p>")
    parts += [f'<p class="refused score-warning">⚠ {html.escape(text)}</p>' for text in report.warnings]
    parts.append(f"<p>Scored in {elapsed:.2f} s · model <code>{html.escape(nar.model_version)}</code></p>")
    if report.notes:
        parts.append("<p>Input notes: " + "; ".join(html.escape(n) for n in report.notes) + "</p>")
    return "".join(parts)


def _contribution(added: Contribution | None) -> str:
    if added is None:
        return ""
    return (f"Added to the rating pool as <code>{added.image_id[:19]}…</code>"
            + (" (shown to raters once it has been checked)" if added.status == "pending" else "")
            + ". Thank you!")


def _agreement(nar) -> str:
    """The spread as a sentence: how much the choice of reference matters."""
    scores = [r.score for r in nar.per_reference]
    if len(scores) < 2:
        return f"One reference, <b>{html.escape(nar.gallery)}</b> (NAR student)."
    gap = max(scores) - min(scores)
    verdict = ("the reference chosen hardly matters" if gap < 1 else
               "the reference chosen matters a little" if gap < 5 else "the reference chosen matters")
    return (f"The {len(scores)} references of <b>{html.escape(nar.gallery)}</b> give scores within "
            f"{gap:.1f} points of each other (± {nar.spread:.1f}): {verdict}. NAR student, higher is better.")


def _refused(message: str) -> str:
    return f'<p class="refused">⚠ {html.escape(message)}</p>'


def _para(text: str) -> str:
    return f"<p>{text}</p>" if text else ""


def _unique(name: str, taken: set[str]) -> str:
    base = name.strip()[:60]
    if not base or base not in taken:
        return base
    number = 2
    while f"{base} ({number})" in taken:
        number += 1
    return f"{base} ({number})"
