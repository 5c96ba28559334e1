"""Admin screen for contributed photos: thumbnails of those waiting, each with Approve and Reject.

What ``/moderate`` does by image id, with the photos in sight; Reject asks for confirmation first (the admin
token is checked by the app's one check, ``space.services.admin_auth``). Thumbnails
travel inside the page as ``data:`` URLs, never as file links: a photo
waiting for moderation must not be downloadable by anyone else.
"""
from __future__ import annotations

import html

import gradio as gr

from space.services import moderating
from space.services.container import Services
from space.ui.errors import refused_as_error


def waiting(services: Services, token: str | None, request: object = None) -> list[dict]:
    """Photos waiting for an admin (flagged first, then pending), with thumbnails; checks the token."""
    with refused_as_error("admin moderation screen"):
        return moderating.waiting(services, token, services.proxies.client(request))


def decide(services: Services, token: str | None, image_id: str, decision: str,
           request: object = None) -> tuple[list[dict], str]:
    """Apply one decision; returns the photos still waiting and a line saying what happened."""
    with refused_as_error("admin moderate"):
        outcome = moderating.moderate(services, token, services.proxies.client(request), image_id, decision)
    done = "approved: it joins the rating pairs" if outcome["status"] == "approved" else "rejected: its file is deleted"
    return waiting(services, token, request), f"Photo `{image_id[:12]}` {done}."


CONFIRM_REJECT = ("(token, _) => [token, confirm('Reject this photo? Its file is deleted and raters never see it. "
                  "This cannot be undone.')]")
"""A rejection asks the browser's own "are you sure?" first; approving needs no confirmation."""


def build(services: Services) -> None:
    """The admin accordion (inside the current tab)."""
    with gr.Accordion("Admin: contributed photos waiting for moderation (needs the admin token)", open=False,
                      elem_id="moderation-admin"):
        token = gr.Textbox(label="Admin token", type="password", elem_id="moderation-admin-token")
        show = gr.Button("Show photos waiting", elem_id="moderation-admin-show")
        result = gr.Markdown(elem_id="moderation-admin-result")
        photos = gr.State(None)  # None until the token was checked; then the photos waiting
        confirmed = gr.Checkbox(False, visible=False)  # the browser's answer to "reject this photo?"

        @gr.render(inputs=photos)
        def cards(items: list[dict] | None) -> None:
            if items is None:
                return
            if not items:
                gr.Markdown("No contributed photo is waiting for a decision.", elem_id="moderation-admin-empty")
                return
            with gr.Row(elem_id="moderation-admin-photos"):
                for item in items:
                    with gr.Column(min_width=220, elem_classes="moderation-card"):
                        image_id = item["image_id"]
                        gr.HTML(f'<img class="moderation-thumb" src="{item["thumbnail"]}" '
                                f'alt="contributed photo {html.escape(image_id[:12])}" style="max-width:100%">'
                                f'<p><code>{html.escape(image_id[:12])}</code> · {html.escape(item["status"])}</p>')
                        with gr.Row():
                            approve = gr.Button("Approve", variant="primary", elem_classes="moderation-approve",
                                                key=f"approve-{image_id}")
                            reject = gr.Button("Reject", variant="stop", elem_classes="moderation-reject",
                                               key=f"reject-{image_id}")
                        approve.click(_decision(services, image_id, "approve"), token, [photos, result],
                                      concurrency_id="admin", api_visibility="private")
                        reject.click(_if_confirmed(image_id, _decision(services, image_id, "reject")),
                                     [token, confirmed], [photos, result], concurrency_id="admin",
                                     api_visibility="private", js=CONFIRM_REJECT)

    def on_show(token_: str, request: gr.Request) -> tuple[list[dict], str]:
        items = waiting(services, token_, request)
        return items, f"{len(items)} photo{'s' if len(items) != 1 else ''} waiting."

    show.click(on_show, token, [photos, result], concurrency_id="admin", api_visibility="private")
    token.submit(on_show, token, [photos, result], concurrency_id="admin", api_visibility="private")


def _decision(services: Services, image_id: str, decision: str):
    def handler(token_: str, request: gr.Request) -> tuple[list[dict], str]:
        return decide(services, token_, image_id, decision, request)
    return handler


def _if_confirmed(image_id: str, act):
    """``act`` once the admin said yes in the browser's dialog; a no changes nothing."""
    def handler(token_: str, confirmed_: bool, request: gr.Request):
        if confirmed_ is not True:
            return gr.skip(), f"Nothing changed: photo `{image_id[:12]}` is still waiting."
        return act(token_, request)
    return handler
