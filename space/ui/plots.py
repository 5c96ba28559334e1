"""Plotly figures for the Score and Leaderboard tabs (pure functions of plain data)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from annotations.assisted import Estimates

from cvrkd import ScoreResult

_LAYOUT = dict(template="plotly_white", margin=dict(l=10, r=10, t=40, b=10), height=320)


def per_reference(result: ScoreResult) -> go.Figure:
    """One bar per reference photo, with the mean (the reported score) as a line."""
    names = [r.name for r in result.per_reference]
    fig = go.Figure(go.Bar(x=names, y=[r.score for r in result.per_reference],
                           marker_color="#4f46e5", hovertemplate="%{x}: %{y:.1f}<extra></extra>"))
    fig.add_hline(y=result.score, line_dash="dash", line_color="#111827",
                  annotation_text=f"mean {result.score:.1f}", annotation_position="top left")
    fig.update_layout(title="Score against each reference", yaxis=dict(range=[0, 100], title="score"),
                      **_LAYOUT)
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
