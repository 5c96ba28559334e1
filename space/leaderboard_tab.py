"""Leaderboard tab: scaled quality with 95% CIs, model agreement, activity, raters."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from annotations.campaigns import UnknownCampaign
from annotations.schema import DEFAULT_CAMPAIGN
from space import plots, share, share_panel
from space.insights import Insights
from space.state import Services


@dataclass
class LeaderboardTab:
    """The parts that page-load links drive (see ``space.links``)."""

    tab: gr.Tab
    campaign: gr.Dropdown
    outputs: list
    open: object


def summary_markdown(services: Services, insights: Insights) -> str:
    """The headline numbers in words."""
    if insights.n_judgements == 0:
        return "No judgements yet. Rate a few pairs on the **Rate** tab and come back."
    a = insights.agreement
    scored, total = services.scores.coverage(insights.campaign)
    share = f"**{a.share:.0%}** of {a.pairs} pairs" if a.share is not None else "not measurable yet"
    srcc = f"**{a.srcc:.3f}** over {a.images} images" if a.srcc is not None else "not measurable yet"
    lines = [
        f"**{_plural(insights.n_judgements, 'judgement')}** from **{_plural(insights.n_raters, 'rater')}** "
        f"on {_plural(len(insights.ranking), 'image')} (computed {insights.computed_at}).",
        f"* Model agrees with the people's majority: {share} (ties and split votes left out).",
        f"* Rank correlation (SRCC) of model scores with the scaled scores: {srcc}.",
    ]
    if services.model.available:
        lines.append(f"* Model `{services.model.version}` has scored {scored} of {total} images so far.")
    else:
        lines.append("* No model in service, so no agreement can be measured.")
    return "\n".join(lines)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def ranking_table(insights: Insights) -> pd.DataFrame:
    table = insights.ranking.drop(columns=["image_id"]).copy()
    for column in ("score", "ci_low", "ci_high", "model_score"):
        table[column] = table[column].astype(float).round(2)
    return table


def rater_table(insights: Insights) -> pd.DataFrame:
    return insights.raters.round(3)


def build(services: Services) -> LeaderboardTab:
    """Lay out the Leaderboard tab; it refreshes when opened, on demand and when another campaign is chosen."""
    with gr.Tab("Leaderboard", id="leaderboard") as tab:
        with gr.Row():
            campaign = gr.Dropdown(services.images.names(), value=DEFAULT_CAMPAIGN, label="Campaign",
                                   allow_custom_value=True, elem_id="leaderboard-campaign", scale=1)
            summary = gr.Markdown(elem_id="leaderboard-summary")
            refresh = gr.Button("Refresh", scale=0, min_width=120)
        ranking_plot = gr.Plot(label="Ranking", elem_id="leaderboard-ranking")
        ranking = gr.Dataframe(label="All images, best first (quality in logits; model score 0–100)",
                               interactive=False, max_height=360)
        with gr.Row():
            activity_plot = gr.Plot(label="Activity")
            raters_plot = gr.Plot(label="Raters")
        raters = gr.Dataframe(label="Rater statistics (anonymous; weights used for scaling)",
                              interactive=False, max_height=300)
        panel = share_panel.build("leaderboard", "Live view for a presenter: link and QR code")

    def on_open(name: str | None, request: gr.Request):
        try:
            insights = services.insights.current(name or None)
        except UnknownCampaign as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        empty = insights.n_judgements == 0
        chooser = gr.Dropdown(choices=services.images.names(), value=insights.campaign)
        return (chooser, summary_markdown(services, insights),
                None if empty else plots.ranking(insights.ranking),
                ranking_table(insights),
                None if empty else plots.activity(insights.activity),
                None if empty else plots.raters(insights.raters),
                rater_table(insights),
                *share_panel.show(services, share.link(request, insights.campaign, view="live")))

    outputs = [campaign, summary, ranking_plot, ranking, activity_plot, raters_plot, raters, *panel.outputs]
    jobs = dict(concurrency_id="insights", concurrency_limit=1, api_visibility="private")
    tab.select(on_open, campaign, outputs, **jobs)
    refresh.click(on_open, campaign, outputs, **jobs)
    campaign.input(on_open, campaign, outputs, **jobs)
    return LeaderboardTab(tab, campaign, outputs, on_open)
