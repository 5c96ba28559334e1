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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from annotations.campaigns import Campaign
from space.services.insights import HIDDEN_NOTE, Insights, InsightsService, json_rows
from space.services.catalogue import ImageCatalogue

LIVE_INTERVAL_S = 4.0
TOP = 12
"""Images shown in the live ranking: readable from the back of a room."""
SCALE_NOTE = "score 0–100 (50 = average image), 95% interval"
"""What the live views' numbers mean, under the ranking (see ``on_100``)."""


@dataclass(frozen=True)
class Snapshot:
    """What every live view shows until the next refresh (a hidden campaign's insights come withheld)."""

    header: str
    figure: go.Figure | None
    insights: Insights
    title: str = ""

    @property
    def results_hidden(self) -> bool:
        return self.insights.results_hidden

    def to_dict(self, top: int = TOP) -> dict:
        """Plain JSON for ``/live``: the numbers and the top of the ranking (none while results are hidden)."""
        return {"campaign": self.insights.campaign, "title": self.title,
                "n_judgements": self.insights.n_judgements, "n_raters": self.insights.n_raters,
                "model_agrees": self.insights.agreement.share,
                "computed_at": self.insights.computed_at, "results_hidden": self.results_hidden,
                "ranking": live_ranking(self.insights, top)}


def on_100(logits: np.ndarray, centre: float) -> np.ndarray:
    """Bradley–Terry logits on 0–100: how often people would prefer the image to one of average quality
    (``centre``, the mean of the campaign's scores), ties aside. 50 is average; the order is the logits'."""
    return 100.0 / (1.0 + np.exp(-(np.asarray(logits, dtype=float) - centre)))


def live_ranking(insights: Insights, top: int = TOP) -> list[dict]:
    """The top of the ranking as every live view shows it (the Live tab's figure, ``/live`` and the
    presenter view): the scaled score and its 95% interval in logits and on 0–100 (``on_100``), with the
    image's id and title for its thumbnail and label. An interval is None where the judgements cannot
    support one yet."""
    ranking = insights.ranking
    if ranking.empty:
        return []
    centre = float(ranking["score"].astype(float).mean())
    return [row | {f"{key}_100": None if row[key] is None else round(float(on_100(row[key], centre)), 1)
                   for key in ("score", "ci_low", "ci_high")}
            for row in json_rows(ranking.head(top))]


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
        """The campaign's current snapshot (every live view, ``/live`` and the presenter page ask here);
        raises ``UnknownCampaign`` for a bad name. Hiding or revealing the results rebuilds it at once, so no
        poll after a hide sees the ranking."""
        found = self.images.campaign(campaign)
        key = found.name
        with self._lock:
            cached = self._snapshots.get(key)
            if cached is not None and cached[1].results_hidden == found.results_hidden:
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


def header(title: str, insights: Insights) -> str:
    """Big numbers for the projector (only votes and raters while the results are hidden)."""
    hidden = insights.results_hidden
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
    """Best images at the top, each with its thumbnail and its score and 95% interval on 0–100
    (``live_ranking``), in large type; None before the first vote and while the results are hidden."""
    shown = live_ranking(insights, top)
    if not shown:
        return None
    rows = list(range(len(shown)))[::-1]  # best at the top
    labels = [f"{row['rank']}. {row['title']}"[:40] for row in shown]
    score = np.array([row["score_100"] for row in shown], dtype=float)
    high, low = (np.array([row[key] for row in shown], dtype=float) for key in ("ci_high_100", "ci_low_100"))
    fig = go.Figure(go.Scatter(
        x=score, y=rows, mode="markers", marker=dict(color="#4f46e5", size=18),
        error_x=dict(type="data", symmetric=False, array=np.nan_to_num(high - score),
                     arrayminus=np.nan_to_num(score - low), color="#a5b4fc", thickness=4),
        hovertemplate="%{text}: %{x:.0f}<extra></extra>", text=labels,
    ))
    for row, image in zip(rows, shown):
        thumb = _thumbnail(str(images.path(image["image_id"]))) if image["image_id"] in images else None
        if thumb:
            fig.add_layout_image(source=thumb, xref="paper", yref="y", x=-0.005, y=row, sizex=0.1, sizey=0.9,
                                 xanchor="right", yanchor="middle", layer="above")
    fig.update_layout(
        template="plotly_white", height=max(420, 70 * len(shown) + 80), font=dict(size=22),
        margin=dict(l=470, r=20, t=20, b=60), showlegend=False,
        xaxis=dict(title=SCALE_NOTE, zeroline=False, range=[0, 100]),
        yaxis=dict(tickvals=rows, ticktext=labels, range=[-0.6, len(shown) - 0.4], ticklabelstandoff=100),
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
