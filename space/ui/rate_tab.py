"""Rate tab: "which of these two looks better?", with buttons and keyboard shortcuts.

The rater is identified by a server-signed random id kept in their browser
(``gr.BrowserState``, see ``space.services.raters``), or, when they sign in with Hugging
Face on a Space, by a hash of their user name (never the name itself).
``pair_view``/``vote_view`` do the work; ``build`` wires it.
"""
from __future__ import annotations

import hashlib
import html
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gradio as gr

from space.services import share, voting
from space.ui import share_panel
from space.ui.assets import SHORTCUT_HELP
from space.services.files import secret_file
from space.services.rating import UNDO_WINDOW_S, Finished, RateLimited, RatingError
from space.services.container import Services
from space.services.texts import CONSENT, INSTRUCTIONS, campaign_texts

@dataclass
class PairView:
    """What the Rate tab shows: the pair (if any), the rater's count and a status line."""

    ticket: str | None
    left: str | None
    right: str | None
    count: str
    status: str
    same_pair: bool = False
    """The pair on screen stays (a vote refused for now, e.g. too fast): its images are not sent again."""


def rater_for(services: Services, kept: str | None, profile: gr.OAuthProfile | None,
              request: gr.Request | None, campaign: str | None = None) -> tuple[str, str]:
    """(signed id, public id) of this browser's rater; a fresh signed id counts against the client's limits.

    Signed-in raters keep one public id across devices (a hash of the user
    name); others keep the server-signed id in the browser. A kept id the
    server did not sign (e.g. from before ids were signed) is replaced.
    """
    if profile is not None and getattr(profile, "username", None):
        public = "hf-" + hashlib.sha256(profile.username.encode()).hexdigest()[:16]
        return services.raters.issue(public), public
    public = services.raters.public_or_none(kept)
    if public is not None:
        return str(kept), public
    signed = voting.new_rater(services, services.proxies.client(request), campaign)
    return signed, services.raters.verify(signed)


def pair_view(services: Services, signed_rater: str, status: str = "", campaign: str | None = None) -> PairView:
    """Fetch the next pair for the rater in ``campaign`` (None: the default one), through ``space.services.voting``."""
    count = _count(services, services.raters.verify(signed_rater), campaign)
    try:
        ticket = voting.next_pair(services, signed_rater, campaign)
    except RatingError as exc:
        return PairView(None, None, None, count, _error(str(exc)))
    if isinstance(ticket, Finished):
        return PairView(None, None, None, count, f'<p class="done">{html.escape(ticket.message)}</p>')
    return PairView(ticket.ticket_id, str(services.images.path(ticket.left)),
                    str(services.images.path(ticket.right)), count, status)


def vote_view(services: Services, signed_rater: str, ticket: str | None, choice: str,
              campaign: str | None = None, request: gr.Request | None = None) -> PairView:
    """Store the answer to the current pair (through ``space.services.voting``, the one path for every client's
    votes) and move on to the next one; a vote refused for now (too fast, over a limit) keeps the pair on screen."""
    if not ticket:
        return pair_view(services, signed_rater, campaign=campaign)
    try:
        receipt = voting.vote(services, services.proxies.client(request), signed_rater, ticket, choice,
                              campaign=campaign or "")
    except RateLimited as exc:
        rater_id = services.raters.verify(signed_rater)
        return PairView(ticket, None, None, _count(services, rater_id, campaign), _error(str(exc)), same_pair=True)
    except RatingError as exc:
        view = pair_view(services, signed_rater, campaign=campaign)
        view.status = _error(str(exc))
        return view
    done = "Skipped." if receipt.stored == "skip" else "Saved, thank you."
    return pair_view(services, signed_rater, f"<p>{done}</p>", campaign=campaign)


def undo_view(services: Services, signed_rater: str, campaign: str | None = None) -> PairView:
    """Take back the rater's last answer and show its pair again (or say why not, keeping the pair on screen)."""
    rater_id = services.raters.verify(signed_rater)
    try:
        ticket = voting.undo(services, signed_rater, campaign or "")
    except RatingError as exc:
        return PairView(None, None, None, _count(services, rater_id, campaign), _error(str(exc)), same_pair=True)
    return PairView(ticket.ticket_id, str(services.images.path(ticket.left)), str(services.images.path(ticket.right)),
                    _count(services, rater_id, campaign), "<p>Your last answer was taken back; answer this pair "
                    "again.</p>")


def login_available() -> bool:
    """Hugging Face sign-in works only on a Space with OAuth enabled (and its extra packages)."""
    if not (os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID")):
        return False
    return all(importlib.util.find_spec(name) for name in ("authlib", "itsdangerous"))  # gradio[oauth]


def browser_secret(data_dir: Path) -> str:
    """A stable secret for the browser-kept rater id, so ids survive app restarts (mode 600, like the
    rater secret)."""
    return secret_file(Path(data_dir) / ".browser-secret")


# --------------------------------------------------------------------- layout
APP_RATER_KEY = "cvrkd-app-rater"
"""The browser key of the app's (encrypted) rater id; the rating page keeps its plain id under its own key,
``cvrkd-rater``, so one browser may use both without either breaking the other's."""


def rater_state(services: Services) -> gr.BrowserState:
    """The browser-kept rater id. Create it outside the tabs: a tab's components mount
    only when the tab is first opened, too late to read the stored id for its events."""
    return gr.BrowserState(None, storage_key=APP_RATER_KEY, secret=browser_secret(services.data_dir))


@dataclass
class RateTab:
    """The Rate tab's parts that page-load links drive (see ``space.ui.links``)."""

    tab: gr.Tab
    header: gr.Markdown
    instructions: gr.Markdown
    outputs: list
    open: Callable
    share: share_panel.SharePanel


def identify(services: Services, kept: str | None, profile: gr.OAuthProfile | None,
             request: gr.Request | None, campaign: str | None = None) -> tuple[str, object, str]:
    """(public rater id, what to keep in the browser, signed id): only a newly issued signed id is stored there.

    Raises ``RatingError`` when the client is over its limit of new raters (those of ``campaign``).
    """
    signed, public = rater_for(services, kept, profile, request, campaign)
    return public, signed if signed != kept and profile is None else gr.skip(), signed


def campaign_text(services: Services, campaign: str | None) -> tuple[str, str]:
    """(header, instructions) as the tab shows them; the built-in pool has no header."""
    title, instructions = campaign_texts(services.images, campaign)
    return (f"## {title}" if title else ""), instructions


def build(services: Services, rater: gr.BrowserState, campaign: gr.State) -> RateTab:
    """Lay out the Rate tab and wire its events; ``campaign`` holds the campaign this page rates."""
    with gr.Tab("Rate", id="rate") as tab:
        header = gr.Markdown(elem_id="rate-campaign")
        if login_available():
            gr.LoginButton()
        ticket = gr.State(None)
        with gr.Row(equal_height=True, elem_id="rate-images"):
            left = gr.Image(label="Left", type="filepath", interactive=False, height=420,
                            buttons=["fullscreen"], elem_id="rate-left-image", elem_classes="rate-image")
            right = gr.Image(label="Right", type="filepath", interactive=False, height=420,
                             buttons=["fullscreen"], elem_id="rate-right-image", elem_classes="rate-image")
        with gr.Row(elem_id="rate-answers"):
            buttons = {
                "left": gr.Button("◀ Left is better", variant="primary", elem_id="rate-left",
                                  elem_classes="rate-button", min_width=80),
                "same": gr.Button("Same", elem_id="rate-same", elem_classes="rate-button", min_width=80),
                "skip": gr.Button("Skip", variant="secondary", elem_id="rate-skip", elem_classes="rate-button",
                                  min_width=80),
                "right": gr.Button("Right is better ▶", variant="primary", elem_id="rate-right",
                                   elem_classes="rate-button", min_width=80),
            }
        undo = gr.Button(f"↶ Undo my last answer (for {UNDO_WINDOW_S:.0f} s)", size="sm", elem_id="rate-undo",
                         elem_classes="rate-button")
        status = gr.HTML(elem_id="rate-status")
        instructions = gr.Markdown(INSTRUCTIONS, elem_id="rate-instructions")
        gr.Markdown(SHORTCUT_HELP, elem_id="rate-keys")
        count = gr.Markdown(elem_id="rate-count")
        panel = share_panel.build("rate", "Share this campaign: link and QR code",
                                  link_label="Link for phones (the rating page; put this one on a slide)")
        gr.Markdown(CONSENT, elem_id="rate-consent")

    outputs = [rater, ticket, left, right, count, status]

    def on_open(kept, current, campaign_name, profile: gr.OAuthProfile | None, request: gr.Request):
        try:
            rater_id, keep, signed = identify(services, kept, profile, request, campaign_name)
        except RatingError as exc:
            return gr.skip(), None, None, None, "", _error(str(exc))
        if current:  # coming back to the tab: keep the pair on screen
            return keep, current, gr.skip(), gr.skip(), _count(services, rater_id, campaign_name), gr.skip()
        view = pair_view(services, signed, campaign=campaign_name)
        return keep, view.ticket, view.left, view.right, view.count, view.status

    def shown(keep, view: PairView, current) -> tuple:
        if view.same_pair:
            return keep, current, gr.skip(), gr.skip(), view.count, view.status
        return keep, view.ticket, view.left, view.right, view.count, view.status

    def on_vote(choice: str):
        def handler(kept, current, campaign_name, profile: gr.OAuthProfile | None, request: gr.Request):
            try:
                _, keep, signed = identify(services, kept, profile, request, campaign_name)
            except RatingError as exc:
                return gr.skip(), current, gr.skip(), gr.skip(), gr.skip(), _error(str(exc))
            return shown(keep, vote_view(services, signed, current, choice, campaign_name, request), current)
        return handler

    def on_undo(kept, current, campaign_name, profile: gr.OAuthProfile | None, request: gr.Request):
        try:
            _, keep, signed = identify(services, kept, profile, request, campaign_name)
        except RatingError as exc:
            return gr.skip(), current, gr.skip(), gr.skip(), gr.skip(), _error(str(exc))
        return shown(keep, undo_view(services, signed, campaign_name), current)

    def on_share(campaign_name, request: gr.Request):
        return share_values(services, request, campaign_name)

    rating_jobs = dict(queue=False, api_visibility="private")
    tab.select(on_open, [rater, ticket, campaign], outputs, **rating_jobs)
    for choice, button in [*buttons.items(), ("undo", undo)]:
        # locked in the browser at the click, unlocked once the next pair's images are shown: a double click
        # or tap never answers a pair its rater did not see
        button.click(on_undo if choice == "undo" else on_vote(choice), [rater, ticket, campaign], outputs,
                     js=LOCK_JS, trigger_mode="once", **rating_jobs).then(None, js=UNLOCK_JS)
    panel.accordion.expand(on_share, campaign, panel.outputs, api_visibility="private")
    return RateTab(tab, header, instructions, outputs, on_open, panel)


LOCK_JS = """(...inputs) => {
  document.querySelectorAll("#rate-answers button, #rate-undo").forEach((b) => { b.disabled = true; });
  return inputs;
}"""
"""Runs in the browser before a vote is sent: no button of the Rate tab answers until ``UNLOCK_JS``."""
UNLOCK_JS = """async () => {
  const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
  await frame(); await frame();  // the new pair's image sources are in the page
  const until = Date.now() + 15000;  // an image that never loads must not lock the tab for good
  const images = () => ["#rate-left-image img", "#rate-right-image img"].map((s) => document.querySelector(s));
  while (Date.now() < until && !images().every((img) => !img || (img.complete && img.naturalWidth > 0))) {
    await new Promise((done) => setTimeout(done, 50));
  }
  document.querySelectorAll("#rate-answers button, #rate-undo").forEach((b) => { b.disabled = false; });
}"""
"""Runs once the answer's event is done: the buttons answer again when the pair on screen has loaded."""


def share_values(services: Services, request: object, campaign: str | None) -> tuple:
    """The share panel for a campaign: the QR code opens the lightweight rating page (what a slide
    should carry: it serves a large audience), and the full app's link is shown under it."""
    return share_panel.show(services, share.page_link(request, campaign or None),
                            share.link(request, campaign or None, tab=None if campaign else "rate"))


def _count(services: Services, rater_id: str, campaign: str | None = None) -> str:
    n = services.rating.count(rater_id, campaign or None)
    return f"You have judged **{n}** pair{'s' if n != 1 else ''} so far. Rater id: `{rater_id}`"


def _error(message: str) -> str:
    return f'<p class="refused">⚠ {html.escape(message)}</p>'
