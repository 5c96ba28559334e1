"""The presenter's live view of a campaign: ranking with CIs and thumbnails, votes, raters, agreement.

Every open live view polls (``gr.Timer``); all of them share one snapshot per
campaign that is rebuilt at most once per ``interval_s`` (the insights and the
figure), so a room full of projectors and laptops costs the server one
computation per refresh, not one per viewer.
"""
from __future__ import annotations

import base64
import html
import io
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import plotly.graph_objects as go
from PIL import Image

from annotations.campaigns import Campaign
from space.services.insights import Insights, InsightsService
from space.services.catalogue import ImageCatalogue

LIVE_INTERVAL_S = 4.0
TOP = 12
"""Images shown in the live ranking: readable from the back of a room."""
HIDDEN_NOTE = "Results are hidden until the presenter reveals them."


@dataclass(frozen=True)
class Snapshot:
    """What every live view shows until the next refresh."""

    header: str
    figure: go.Figure | None
    insights: Insights
    title: str = ""
    results_hidden: bool = False

    def hidden(self) -> Snapshot:
        """The same numbers of votes and raters, without the ranking or the model's agreement."""
        return replace(self, header=header(self.title, self.insights, hidden=True), figure=None,
                       results_hidden=True)

    def to_dict(self, top: int = TOP) -> dict:
        """Plain JSON for ``/live``: the numbers and the top of the ranking (none while results are hidden)."""
        ranking = [] if self.results_hidden else self.insights.to_dict()["ranking"][:top]
        keep = ("rank", "image_id", "title", "score", "ci_low", "ci_high", "n_judgements", "model_score")
        return {"campaign": self.insights.campaign, "title": self.title,
                "n_judgements": self.insights.n_judgements, "n_raters": self.insights.n_raters,
                "model_agrees": None if self.results_hidden else self.insights.agreement.share,
                "computed_at": self.insights.computed_at, "results_hidden": self.results_hidden,
                "ranking": [{key: row.get(key) for key in keep} for row in ranking]}


class LiveBoard:
    """Shared, periodically rebuilt live snapshots, one per campaign.

    Once a campaign has a snapshot, pollers never wait for a rebuild: the first
    poll after ``interval_s`` starts one in the background and gets the current
    snapshot; polls that follow get the new one when it is ready. A rebuild at
    thousands of judgements takes a noticeable fraction of a second (Bradley–Terry
    fits and bootstrap intervals), and a room of viewers waiting on it showed up
    as multi-second poll latencies under the talk load test.
    """

    def __init__(self, insights: InsightsService, images: ImageCatalogue, interval_s: float = LIVE_INTERVAL_S,
                 clock=time.monotonic) -> None:
        self.insights, self.images = insights, images
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._snapshots: dict[str, tuple[float, Snapshot]] = {}
        self._rebuilding: dict[str, threading.Thread] = {}
        self.builds = 0
        """How many snapshots were built (a test checks that viewers share them)."""

    def snapshot(self, campaign: str | None) -> Snapshot:
        """The campaign's current snapshot, without the ranking while the presenter hides it (every live
        view, ``/live`` and the presenter page ask here); raises ``UnknownCampaign`` for a bad name."""
        found = self.images.campaign(campaign)
        shared = self._shared(found)
        return shared.hidden() if found.results_hidden else shared

    def _shared(self, found: Campaign) -> Snapshot:
        key = found.name
        with self._lock:
            cached = self._snapshots.get(key)
            if cached is not None:
                if self._clock() - cached[0] >= self.interval_s and key not in self._rebuilding:
                    worker = threading.Thread(target=self._rebuild, args=(key, found), daemon=True,
                                              name=f"live-{key}")
                    self._rebuilding[key] = worker
                    worker.start()
                return cached[1]
        return self._rebuild(key, found)

    def wait(self) -> None:
        """Until the background rebuilds started so far have finished (for tests and shutdown)."""
        with self._lock:
            workers = list(self._rebuilding.values())
        for worker in workers:
            worker.join()

    def _rebuild(self, key: str, found: Campaign) -> Snapshot:
        try:
            with self._build_lock:  # one computation at a time; the insights cache it for the rest
                insights = self.insights.current(found.name)
                with self._lock:
                    cached = self._snapshots.get(key)
                if cached is not None and cached[1].insights is insights:
                    snapshot = cached[1]
                else:
                    snapshot = Snapshot(header(found.title, insights), ranking_figure(insights, self.images),
                                        insights, found.title)
                    self.builds += 1
                with self._lock:
                    self._snapshots[key] = (self._clock(), snapshot)
                return snapshot
        finally:
            with self._lock:
                if self._rebuilding.get(key) is threading.current_thread():
                    del self._rebuilding[key]


def header(title: str, insights: Insights, hidden: bool = False) -> str:
    """Big numbers for the projector (only votes and raters while the results are hidden)."""
    share = insights.agreement.share
    agreement = f"{share:.0%}" if share is not None else "–"
    cells = [(f"{insights.n_judgements}", "votes"), (f"{insights.n_raters}", "raters")]
    cells += [] if hidden else [(agreement, "model agrees with people")]
    numbers = "".join(f'<div class="live-cell"><div class="live-number">{html.escape(value)}</div>'
                      f'<div class="live-label">{html.escape(label)}</div></div>' for value, label in cells)
    note = f'<p class="live-hidden">{HIDDEN_NOTE}</p>' if hidden else ""
    return (f'<div id="live-header"><h1 class="live-title">{html.escape(title)}</h1>'
            f'<div class="live-numbers">{numbers}</div>{note}</div>')


def ranking_figure(insights: Insights, images: ImageCatalogue, top: int = TOP) -> go.Figure | None:
    """Best images at the top, each with its 95% interval and a thumbnail, in large type."""
    if insights.n_judgements == 0:
        return None
    table = insights.ranking.head(top).reset_index(drop=True)
    rows = list(range(len(table)))[::-1]  # best at the top
    labels = [f"{k + 1}. {title}"[:40] for k, title in enumerate(table["title"])]
    score = table["score"].astype(float)
    fig = go.Figure(go.Scatter(
        x=score, y=rows, mode="markers", marker=dict(color="#4f46e5", size=18),
        error_x=dict(type="data", symmetric=False, array=(table["ci_high"].astype(float) - score).fillna(0),
                     arrayminus=(score - table["ci_low"].astype(float)).fillna(0), color="#a5b4fc", thickness=4),
        hovertemplate="%{text}: %{x:.2f}<extra></extra>", text=labels,
    ))
    for row, image_id in zip(rows, table["image_id"]):
        thumb = _thumbnail(str(images.path(image_id))) if image_id in images else None
        if thumb:
            fig.add_layout_image(source=thumb, xref="paper", yref="y", x=-0.005, y=row, sizex=0.1, sizey=0.9,
                                 xanchor="right", yanchor="middle", layer="above")
    fig.update_layout(
        template="plotly_white", height=max(420, 70 * len(table) + 80), font=dict(size=22),
        margin=dict(l=470, r=20, t=20, b=60), showlegend=False,
        xaxis=dict(title="quality (Bradley–Terry, 95% interval)", zeroline=False),
        yaxis=dict(tickvals=rows, ticktext=labels, range=[-0.6, len(table) - 0.4], ticklabelstandoff=100),
    )
    return fig


@lru_cache(maxsize=512)
def _thumbnail(path: str, side: int = 96) -> str | None:
    """A small JPEG of an image as a data URI (cached per file: image files never change)."""
    try:
        with Image.open(Path(path)) as image:
            image = image.convert("RGB")
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
