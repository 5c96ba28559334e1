"""Leaderboard tab: scaled quality with 95% CIs, model agreement, activity, raters, and the
human-only and model-assisted estimates with the calibration of the model's prior."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np
import pandas as pd

from annotations.schema import DEFAULT_CAMPAIGN
from space.services import share
from space.ui import cards, plots, share_panel
from space.services.insights import HIDDEN_NOTE, Insights
from space.services.container import Services
from space.ui.errors import refused_as_error


NO_VOTES = (
    "**No judgements yet.** Once people have compared pairs on the **Rate** tab, this tab ranks every "
    "image by quality with 95% intervals (Bradley–Terry scaling of the votes), shows how often the model "
    "agrees with the people, the voting activity and anonymous rater statistics, and compares the "
    "human-only with the model-assisted estimates. Rate a few pairs and press **Refresh**.")


@dataclass
class LeaderboardTab:
    """The parts that page-load links drive (see ``space.ui.links``)."""

    tab: gr.Tab
    campaign: gr.Dropdown
    outputs: list
    open: object


def summary_markdown(services: Services, insights: Insights) -> str:
    """The headline numbers in words."""
    if insights.n_judgements == 0:
        return NO_VOTES
    if insights.results_hidden:
        return (f"**{_plural(insights.n_judgements, 'judgement')}** from **{_plural(insights.n_raters, 'rater')}** "
                f"(computed {insights.computed_at}). **{HIDDEN_NOTE}**")
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


NOT_ENOUGH = "not enough judgements"
"""Shown instead of an interval that the judgements cannot support yet (see ``annotations.scaling``)."""


def interval_text(low: float, high: float) -> str:
    """A 95% interval as shown everywhere on this tab; in words when the judgements cannot support one."""
    return NOT_ENOUGH if pd.isna(low) or pd.isna(high) else f"[{low:.2f}, {high:.2f}]"


def ranking_table(insights: Insights) -> pd.DataFrame:
    """The ranking as shown: the 95% interval in words when there is none yet."""
    ranking = insights.ranking
    table = ranking.drop(columns=["image_id", "ci_low", "ci_high"]).copy()
    for column in ("score", "model_score"):
        table[column] = table[column].astype(float).round(2)
    intervals = [interval_text(low, high)
                 for low, high in zip(ranking["ci_low"].astype(float), ranking["ci_high"].astype(float))]
    table.insert(table.columns.get_loc("score") + 1, "interval_95", intervals)
    return table


def with_intervals(frame: pd.DataFrame, intervals: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Each named value and its 95% interval in one column ("0.52 [0.10, 0.93]"), so the table stays narrow
    enough to read on a phone."""
    shown = frame.copy()
    for column, (low, high) in intervals.items():
        shown[column] = [_with_interval(*values) for values in zip(frame[column], frame[low], frame[high])]
    return shown.drop(columns=[bound for pair in intervals.values() for bound in pair])


def _with_interval(value: float, low: float, high: float) -> str:
    if pd.isna(value):
        return "–"
    return f"{value:.2f}" if pd.isna(low) or pd.isna(high) else f"{value:.2f} {interval_text(low, high)}"


def rater_table(insights: Insights) -> pd.DataFrame:
    return insights.raters.round(3)


def assisted_markdown(insights: Insights, prior_enabled: bool = True) -> str:
    """What the model's prior is worth so far, in words."""
    e = insights.estimates
    if not prior_enabled:
        return "**Model prior off** (`CVRKD_MODEL_PRIOR=0`): only the human-only estimate is shown."
    if not e.use_prior:
        return ("No model scores for these images yet, so no prior: only the human-only estimate is shown "
                "(the model scores the pool in the background).")
    cal = e.calibration
    flagged = int(e.table["flagged"].sum())
    return "\n".join([
        f"Prior from model `{cal.model_version}`, calibrated on {_plural(cal.n_judgements, 'judgement')}: "
        f"slope **{cal.slope:.2f}** per sd of model score, residual sd **{cal.residual_sd:.2f}**, so the model's "
        f"scores explain **{cal.explained:.0%}** of the spread of quality (0% = no help, the prior is then "
        "the same for every image).",
        "* **Human-only**: the judgements alone (what an exported data set carries); **model-assisted**: "
        "the judgements combined with the model's calibrated prior. Both in Thurstone units with 95% intervals.",
        f"* **{_plural(flagged, 'image')}** where model and people disagree beyond their uncertainty "
        "(|z| > 2.58): listed below, the most useful examples for re-distillation.",
    ])


def assisted_section(services: Services, insights: Insights) -> tuple:
    """The estimates section's contents: summary, calibration plot, disagreements, both estimates."""
    table = insights.estimates.table
    figure = plots.calibration(insights.estimates, dict(zip(table["image_id"], _titles(services, table)))) \
        if insights.estimates.use_prior else None
    return (assisted_markdown(insights, services.config.model_prior), figure, disagreement_table(services, insights),
            estimates_table(services, insights))


def assisted_cards(services: Services, insights: Insights) -> tuple:
    """``assisted_section`` as shown: the two tables as cards, each estimate beside its interval."""
    text, figure, flagged, both = assisted_section(services, insights)
    return (text, figure,
            cards.table(with_intervals(flagged, {"prior": ("prior_low", "prior_high"),
                                                 "human_only": ("human_low", "human_high")}),
                        "Where model and people disagree (prior and human-only, 95% intervals)", heading="image",
                        empty="None: model and people agree within their uncertainty."),
            cards.table(with_intervals(both, {label: (f"{label}_low", f"{label}_high")
                                              for label in ("human_only", "model_assisted")}),
                        "Both estimates per image (Thurstone units, 95% intervals)", heading="image"))


def _titles(services: Services, table: pd.DataFrame) -> list[str]:
    return [services.images.title(i) if i in services.images else i for i in table["image_id"]]


def estimates_table(services: Services, insights: Insights) -> pd.DataFrame:
    """Both estimates per image, best first by the model-assisted one (human-only when the prior is off)."""
    t = insights.estimates.table
    out = pd.DataFrame({"image": _titles(services, t), "judgements": t["n_judgements"],
                        "model_score": t["model_score"]})
    for name, label in (("human", "human_only"), ("assisted", "model_assisted")):
        out[label] = t[f"{name}_score"]
        out[f"{label}_low"] = t[f"{name}_ci_low"]
        out[f"{label}_high"] = t[f"{name}_ci_high"]
    out["prior"] = t["prior_mean"]
    out["disagreement_z"] = t["disagreement"]
    out["flagged"] = t["flagged"]
    return out.round(2)


def disagreement_table(services: Services, insights: Insights) -> pd.DataFrame:
    """The flagged images with both values: what the model's prior said and what people said."""
    t = insights.estimates.flagged()
    return pd.DataFrame({
        "image": _titles(services, t), "model_score": t["model_score"], "prior": t["prior_mean"],
        "prior_low": t["prior_mean"] - 1.96 * t["prior_sd"], "prior_high": t["prior_mean"] + 1.96 * t["prior_sd"],
        "human_only": t["human_score"], "human_low": t["human_ci_low"], "human_high": t["human_ci_high"],
        "model_assisted": t["assisted_score"], "disagreement_z": t["disagreement"],
        "people_say": np.where(t["disagreement"] > 0, "better than the model", "worse than the model"),
    }).round(2)


def build(services: Services) -> LeaderboardTab:
    """Lay out the Leaderboard tab; it refreshes when opened, on demand and when another campaign is chosen."""
    with gr.Tab("Leaderboard", id="leaderboard", elem_id="leaderboard") as tab:
        with gr.Row():
            campaign = gr.Dropdown(services.images.names(), value=DEFAULT_CAMPAIGN, label="Campaign",
                                   allow_custom_value=True, elem_id="leaderboard-campaign", scale=1)
            refresh = gr.Button("Refresh", scale=0, min_width=120)
        # Full width under the chooser: squeezed into its row it was laid out 14 px wide on a phone.
        summary = gr.Markdown(elem_id="leaderboard-summary")
        with gr.Column(visible=False) as details:  # no empty charts before the first votes
            # Tables are HTML cards on a phone (space.ui.cards); plots carry short titles and no toolbar there.
            ranking_plot = gr.Plot(show_label=False, elem_id="leaderboard-ranking")
            ranking = gr.HTML(elem_id="leaderboard-table")
            with gr.Row():
                activity_plot = gr.Plot(show_label=False, elem_id="leaderboard-activity")
                raters_plot = gr.Plot(show_label=False, elem_id="leaderboard-raters-plot")
            raters = gr.HTML(elem_id="leaderboard-raters")
            gr.Markdown("### Human-only and model-assisted estimates")
            assisted = gr.Markdown(elem_id="leaderboard-assisted")
            calibration_plot = gr.Plot(show_label=False, elem_id="leaderboard-calibration")
            disagreements = gr.HTML(elem_id="leaderboard-disagreements")
            estimates = gr.HTML(elem_id="leaderboard-estimates")
        panel = share_panel.build("leaderboard", "Live view for a presenter: link and QR code")

    def on_open(name: str | None, request: gr.Request):
        with refused_as_error("leaderboard"):
            insights = services.insights.current(name or None)
        empty = insights.n_judgements == 0 or insights.results_hidden
        chooser = gr.Dropdown(choices=services.images.names(), value=insights.campaign)
        return (chooser, summary_markdown(services, insights), gr.Column(visible=not empty),
                None if empty else plots.ranking(insights.ranking),
                cards.table(ranking_table(insights), "All images, best first (quality in logits; model score 0–100)",
                            heading="title"),
                None if empty else plots.activity(insights.activity),
                None if empty else plots.raters(insights.raters),
                cards.table(rater_table(insights), "Rater statistics (anonymous; weights used for scaling)",
                            heading="rater"),
                *assisted_cards(services, insights),
                *share_panel.show(services, share.link(request, insights.campaign, view="live")))

    outputs = [campaign, summary, details, ranking_plot, ranking, activity_plot, raters_plot, raters, assisted,
               calibration_plot, disagreements, estimates, *panel.outputs]
    jobs = dict(concurrency_id="insights", concurrency_limit=1, api_visibility="private")
    tab.select(on_open, campaign, outputs, **jobs)
    refresh.click(on_open, campaign, outputs, **jobs)
    campaign.input(on_open, campaign, outputs, **jobs)
    return LeaderboardTab(tab, campaign, outputs, on_open)
