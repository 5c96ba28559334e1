"""Plotly figures for the Score and Leaderboard tabs (pure functions of plain data)."""
from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

from annotations.assisted import Estimates
from cvrkd import QualityMap, ReferenceEffect

_LAYOUT = dict(template="plotly_white", margin=dict(l=10, r=10, t=40, b=10), height=320)


def reference_effect(effect: ReferenceEffect) -> go.Figure:
    """What comparing with each reference adds to the score the image gets alone, one bar per reference.

    The axis spans at least ±5 points, so a difference of a tenth of a point looks as small as it is."""
    added = effect.added
    reach = max(5.0, *(abs(value) * 1.15 for value in added))
    colours = ["#059669" if value >= 0 else "#dc2626" for value in added]
    fig = go.Figure(go.Bar(x=added, y=effect.names, orientation="h", marker_color=colours,
                           text=[f"{value:+.1f}" for value in added], textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:+.2f} points<extra></extra>"))
    fig.add_vline(x=0, line_color="#111827")
    small = ""
    if max(map(abs, added), default=0) < 0.5:
        small = ("<br><sub>at the bottom of the scale with or without a reference</sub>" if effect.alone <= 0 else
                 "<br><sub>less than half a point each: the score comes from the image alone</sub>")
    fig.update_layout(title=dict(text=f"Scored alone, with nothing to compare: {effect.alone:.1f}; "
                                      f"what each reference adds{small}", font=dict(size=14)),
                      xaxis=dict(range=[-reach, reach], title="points added (negative: taken away)",
                                 zeroline=False),
                      yaxis=dict(autorange="reversed"), **{**_LAYOUT, "height": max(220, 34 * len(added) + 110)})
    return fig


def quality_map(qmap: QualityMap, long_side: int = 640) -> go.Figure:
    """The image with its lost points painted over it, on the one scale every image shares, with a colour bar."""
    picture = Image.fromarray(qmap.pixels)
    shrink = min(1.0, long_side / max(picture.size))
    if shrink < 1:
        picture = picture.resize((round(picture.width * shrink), round(picture.height * shrink)),
                                 Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    tile = qmap.tile * shrink
    fig = go.Figure(go.Image(source="data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode(),
                             hoverinfo="skip"))
    fig.add_heatmap(z=qmap.loss, x0=tile / 2, dx=tile, y0=tile / 2, dy=tile, zmin=0, zmax=qmap.scale,
                    colorscale=[[0, "rgba(220,38,38,0)"], [1, "rgba(220,38,38,0.85)"]],
                    colorbar=dict(title=dict(text="points lost<br>per 1% of<br>the image", side="top"),
                                  thickness=14, ticksuffix=" ", len=0.9),
                    hovertemplate="%{z:.2f} points lost per 1% of the image<extra></extra>")
    verdict = (f"{-qmap.total:.1f} points below the gallery's own photos, in all" if qmap.total < 0 else
               f"{qmap.total:.1f} points above the gallery's own photos, in all")
    fig.update_layout(title=dict(text=f"Where it loses points ({verdict})", font=dict(size=14)),
                      xaxis=dict(visible=False, range=[0, picture.width]),
                      yaxis=dict(visible=False, range=[picture.height, 0], scaleanchor="x"),
                      **{**_LAYOUT, "height": 380})
    return fig


LABEL_CHARS = 22
"""Longest image label on a ranking's axis, so the plot keeps most of a phone's width (hover shows the rest)."""


def ranking(table: pd.DataFrame, limit: int = 40) -> go.Figure:
    """Scaled quality with 95% intervals, best at the top.

    Titles are short enough for a phone (about 320 px); the explanation is on the axis."""
    top = table.head(limit).iloc[::-1]
    labels = [f"{rank}. {_short(title)}" for rank, title in zip(top["rank"], top["title"])]
    fig = go.Figure(go.Scatter(
        x=top["score"], y=labels, mode="markers", marker=dict(color="#4f46e5", size=8), text=top["title"],
        error_x=dict(type="data", symmetric=False, array=(top["ci_high"] - top["score"]).fillna(0),
                     arrayminus=(top["score"] - top["ci_low"]).fillna(0), color="#a5b4fc"),
        hovertemplate="%{text}: %{x:.2f}<extra></extra>",
    ))
    layout = {**_LAYOUT, "height": max(320, 22 * len(top) + 80)}
    fig.update_layout(title="Ranking, best first", xaxis_title="quality (logits), 95% interval",
                      yaxis=dict(automargin=True), **layout)
    return fig


def _short(title: str) -> str:
    return title if len(title) <= LABEL_CHARS else title[:LABEL_CHARS - 1] + "…"


def activity(table: pd.DataFrame) -> go.Figure:
    """Judgements per period (bars) and the running total (line)."""
    fig = go.Figure()
    fig.add_bar(x=table["period"], y=table["judgements"], name="per period", marker_color="#a5b4fc")
    fig.add_scatter(x=table["period"], y=table["total"], name="total", mode="lines+markers",
                    line=dict(color="#4f46e5"), yaxis="y2")
    fig.update_layout(title="Judgements over time", xaxis=dict(type="category"), yaxis=dict(title="per period"),
                      yaxis2=dict(title="total", overlaying="y", side="right"),
                      legend=dict(orientation="h", y=-0.2), **_LAYOUT)
    return fig


def raters(table: pd.DataFrame) -> go.Figure:
    """How many judgements each (anonymous) rater gave, flagged raters in red."""
    colours = ["#dc2626" if flagged else "#4f46e5" for flagged in table["flagged"]]
    fig = go.Figure(go.Bar(x=table["rater"], y=table["judgements"], marker_color=colours,
                           hovertemplate="%{x}: %{y} judgements<extra></extra>"))
    fig.update_layout(title="Judgements per rater", yaxis_title="judgements (red: flagged)", **_LAYOUT)
    return fig


def calibration(estimates: Estimates, titles: dict[str, str] | None = None) -> go.Figure:
    """Human-only estimates (with 95% intervals) against the model's score, and the fitted prior.

    The line is the calibrated prior mean, the band its 95% width; images
    where model and people disagree are marked in red.
    """
    cal, table = estimates.calibration, estimates.table.dropna(subset=["model_score"])
    names = [(titles or {}).get(i, i) for i in table["image_id"]]
    colours = np.where(table["flagged"], "#dc2626", "#4f46e5")
    fig = go.Figure(go.Scatter(
        x=table["model_score"], y=table["human_score"], mode="markers", name="human-only estimate",
        marker=dict(color=colours, size=8), text=names,
        error_y=dict(type="data", symmetric=False, array=table["human_ci_high"] - table["human_score"],
                     arrayminus=table["human_score"] - table["human_ci_low"], color="#c7d2fe"),
        hovertemplate="%{text}<br>model %{x:.1f}, people %{y:.2f}<extra></extra>",
    ))
    if cal is not None and len(table):
        x = np.linspace(table["model_score"].min(), table["model_score"].max(), 50)
        line = cal.line(x)
        band = 1.96 * cal.residual_sd
        fig.add_scatter(x=np.r_[x, x[::-1]], y=np.r_[line + band, (line - band)[::-1]], fill="toself",
                        fillcolor="rgba(16,185,129,0.15)", line=dict(width=0), hoverinfo="skip",
                        name="prior, 95%")
        fig.add_scatter(x=x, y=line, mode="lines", line=dict(color="#059669"), name="calibration (prior mean)")
    fig.update_layout(title="Model score vs people",
                      xaxis_title="model score (0–100)", yaxis_title="people (Thurstone units; red: disagree)",
                      legend=dict(orientation="h", y=-0.25), **{**_LAYOUT, "height": 380})
    return fig
