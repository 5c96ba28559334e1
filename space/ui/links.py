"""Links that open the app where they point, read from the page's query on load (``gr.Request``).

* ``?campaign=NAME``: the Rate tab on that campaign, with its title and instructions;
* ``?tab=score|rate|leaderboard|model``: that tab;
* ``?example=NAME``: the Score tab with that example scored;
* ``?campaign=NAME&view=live``: the campaign's live results for a presenter.

An unknown campaign, tab, view or example shows a message above the default
page. The same load event identifies the rater (the id kept in the browser), so
the first pair is fetched for the id that later votes use.
"""
from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import gradio as gr

from annotations.campaigns import UnknownCampaign
from annotations.schema import DEFAULT_CAMPAIGN
from space.ui import rate_tab, score_tab
from space.services.examples import example_files
from space.ui.leaderboard_tab import LeaderboardTab
from space.ui.live_tab import LiveTab
from space.services.rating import RatingError
from space.services.container import Services

TABS = ("score", "rate", "leaderboard", "model")


@dataclass(frozen=True)
class Link:
    """Where a page load should land."""

    tab: str | None = None
    campaign: str = ""
    example: str | None = None
    live: bool = False
    message: str = ""


def parse(params: Mapping[str, str], services: Services) -> Link:
    """Read the query parameters; anything unknown becomes part of ``message`` and is ignored."""
    messages = []
    campaign = (params.get("campaign") or "").strip()
    tab = (params.get("tab") or "").strip().lower() or None
    view = (params.get("view") or "").strip().lower()
    example = (params.get("example") or "").strip() or None
    if campaign:
        try:
            found = services.images.campaign(campaign)
            campaign = "" if found.name == DEFAULT_CAMPAIGN else found.name  # the page's state for the pool: ""
        except UnknownCampaign:
            messages.append(f"There is no campaign called “{campaign}”; showing the default page.")
            campaign, view = "", ""
    if tab and tab not in TABS:
        messages.append(f"There is no tab “{tab}” (choose one of {', '.join(TABS)}); showing the default page.")
        tab = None
    if view and view != "live":
        messages.append(f"There is no view “{view}” (the only one is live).")
        view = ""
    if example:
        names = list(example_files(services.data_dir / "examples"))
        if example in names:
            tab = "score"
        else:
            messages.append(f"There is no example “{example}” (choose one of {', '.join(names)}).")
            example = None
    if view == "live":
        tab = "live"
    elif campaign and tab is None:
        tab = "rate"
    return Link(tab, campaign, example, view == "live", " ".join(messages))


def register(blocks: gr.Blocks, services: Services, rater: gr.BrowserState, campaign: gr.State,
             tabs: gr.Tabs, message: gr.HTML, rate: rate_tab.RateTab, score: score_tab.ScoreTab,
             board: LeaderboardTab, live: LiveTab) -> None:
    """Wire the page-load chain: read the link, then fill what it opens."""
    link_state = gr.State(None)

    def on_load(browser_id, request: gr.Request, profile: gr.OAuthProfile | None):
        link = parse(dict(getattr(request, "query_params", {}) or {}), services)
        header, instructions = rate_tab.campaign_text(services, link.campaign)
        banner = f'<div class="link-message" role="alert">⚠ {html.escape(link.message)}</div>' if link.message else ""
        try:
            kept = rate_tab.identify(services, browser_id, profile, request, link.campaign)[1]
        except RatingError:
            kept = gr.skip()  # over the client's limit of new raters: the Rate tab says so when opened
        return (kept, link.campaign, asdict(link),
                gr.Tabs(selected=link.tab) if link.tab else gr.skip(), banner,
                gr.Tab(visible=True) if link.live else gr.skip(), gr.Timer(active=True) if link.live else gr.skip(),
                header, instructions, gr.Dropdown(value=link.campaign or DEFAULT_CAMPAIGN))

    def open_rate(browser_id, link: dict, request: gr.Request, profile: gr.OAuthProfile | None):
        if not link or link["tab"] != "rate":
            return (gr.skip(),) * (len(rate.outputs) + len(rate.share.outputs))
        opened = rate.open(browser_id, None, link["campaign"], profile, request)
        return (*opened, *rate_tab.share_values(services, request, link["campaign"]))

    def open_board(name, link: dict, request: gr.Request):
        if not link or link["tab"] != "leaderboard":
            return (gr.skip(),) * len(board.outputs)
        return board.open(name, request)

    def open_live(link: dict):
        if not link or not link["live"]:
            return (gr.skip(),) * len(live.outputs)
        return live.refresh(link["campaign"])

    def open_example(link: dict):
        if not link or not link["example"]:
            return (gr.skip(),) * len(score.example_outputs)
        return score_tab.example_view(services, link["example"]).shown()

    def example_explained(link: dict, scored):
        if not link or not link["example"]:
            return (gr.skip(),) * len(score.explain_outputs)
        return score_tab.explain_view(services, scored)

    private = dict(api_visibility="private")
    rating_jobs = dict(concurrency_id="rating", concurrency_limit=services.config.rating_concurrency, **private)
    model_jobs = dict(concurrency_id="model", concurrency_limit=services.config.score_concurrency, **private)
    loaded = blocks.load(on_load, rater,
                         [rater, campaign, link_state, tabs, message, live.tab, live.timer, rate.header,
                          rate.instructions, board.campaign], **private)
    loaded.then(open_rate, [rater, link_state], [*rate.outputs, *rate.share.outputs], **rating_jobs)
    loaded.then(open_board, [board.campaign, link_state], board.outputs, concurrency_id="insights",
                concurrency_limit=1, **private)
    loaded.then(open_live, link_state, live.outputs, concurrency_id="live", concurrency_limit=4, **private)
    loaded.then(open_example, link_state, score.example_outputs, **model_jobs) \
        .then(example_explained, [link_state, score.explain_input], score.explain_outputs, **model_jobs)
