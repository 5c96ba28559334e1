"""Live tab: a campaign's results for the projector, refreshed by a timer without reloading the page.

Hidden until a link with ``view=live`` opens it (``space.ui.links``); every
viewer's timer asks the shared ``LiveBoard`` snapshot, rebuilt at most once per
interval.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from annotations.campaigns import UnknownCampaign
from space.services.live import LIVE_INTERVAL_S, LiveBoard
from space.services.container import Services


@dataclass
class LiveTab:
    tab: gr.Tab
    timer: gr.Timer
    outputs: list
    refresh: object
    board: LiveBoard


def build(services: Services, campaign: gr.State) -> LiveTab:
    """Lay out the (hidden) Live tab and its timer."""
    board = services.live
    with gr.Tab("Live", id="live", visible=False) as tab:
        header = gr.HTML(elem_id="live-view")
        plot = gr.Plot(show_label=False, elem_id="live-plot")
        gr.Markdown(f"Refreshes itself every {LIVE_INTERVAL_S:g} s. Scores are Bradley–Terry on 0–100: how "
                    "often people would prefer the image to one of average quality (50), with 95% bootstrap "
                    "intervals; agreement counts pairs where most people and the model chose alike.",
                    elem_id="live-note")
    timer = gr.Timer(LIVE_INTERVAL_S, active=False)

    def refresh(name: str | None):
        try:
            snapshot = board.snapshot(name or None)
        except UnknownCampaign as exc:
            return f'<p class="refused">⚠ {exc}</p>', None
        return snapshot.header, snapshot.figure

    timer.tick(refresh, campaign, [header, plot], concurrency_id="live", concurrency_limit=4,
               show_progress="hidden", api_visibility="private")
    return LiveTab(tab, timer, [header, plot], refresh, board)
