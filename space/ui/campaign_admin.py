"""Admin panel for rating campaigns: the layout, over the actions of ``space.services.campaign_admin``.

A reset asks the browser's own "are you sure?" first; an export comes back as a .zip to download.

Images arrive as a ``.zip`` of a folder or as image files; a dataset is named
by a local folder or a Hub id. Import progress is shown while files are checked.
Each action's refusal reaches the admin as the message it gives.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps

import gradio as gr

from annotations.campaigns import AUTO_PAIRS, DEFAULT_LICENCE, PAIR_SETTINGS
from space.services import campaign_admin as actions
from space.services.container import Services
from space.ui.errors import refused_as_error


def _refusing(action: Callable) -> Callable:
    """The action with its refusals shown to the admin as Gradio errors."""
    @wraps(action)
    def run(*args, **kwargs):
        with refused_as_error(f"admin campaign {action.__name__}"):
            return action(*args, **kwargs)
    return run


authorise = _refusing(actions.authorise)
create = _refusing(actions.create)
set_status = _refusing(actions.set_status)
set_results_hidden = _refusing(actions.set_results_hidden)
reset = _refusing(actions.reset)
clone = _refusing(actions.clone)
texts = _refusing(actions.texts)
edit_texts = _refusing(actions.edit_texts)
export = _refusing(actions.export)
campaign_table = actions.campaign_table

CANCELLED = "Nothing changed: the reset was cancelled."


TOKEN_FIELD = "campaign-admin-token"
NAME_FIELD = "campaign-admin-name"
"""The element ids of the token and campaign-name fields, which the confirmation reads as shown."""


def confirming(question: str) -> str:
    """Front-end code for an event's ``js``: ask ``question`` (``{name}``: the campaign) in the browser's own
    dialog and pass the answer on as the last input, so the handler acts only on a yes. The token and
    the name are read from the fields as shown: a value typed just before the click may not have
    reached the front end's state yet (the dialog then named no campaign)."""
    shown = "(id, kept) => document.querySelector(`#${id} input, #${id} textarea`)?.value ?? kept"
    return (f"(token, name, _) => {{ const shown = {shown}; token = shown('{TOKEN_FIELD}', token); "
            f"name = shown('{NAME_FIELD}', name); "
            f"return [token, name, confirm({json.dumps(question)}.replace('{{name}}', name))]; }}")


def build(services: Services) -> None:
    """The admin accordion (inside the current tab)."""
    with gr.Accordion("Admin: rating campaigns (needs the admin token)", open=False, elem_id="campaign-admin"):
        token = gr.Textbox(label="Admin token", type="password", elem_id=TOKEN_FIELD)
        table = gr.Dataframe(label="Campaigns", interactive=False, max_height=260)
        with gr.Row():
            name = gr.Textbox(label="Name (lowercase letters, digits, '-'; used in the link)",
                              elem_id=NAME_FIELD)
            title = gr.Textbox(label="Title shown to raters", elem_id="campaign-admin-title")
        instructions = gr.Textbox(label="Instructions (Markdown)", lines=2)
        files = gr.File(label="Images: a .zip of a folder, or image files", file_count="multiple",
                        type="filepath", elem_id="campaign-admin-files")
        dataset = gr.Textbox(label="... or a dataset: local dataset folder on the server, or Hub id owner/name")
        with gr.Row():
            pairs = gr.Radio(list(PAIR_SETTINGS), value=AUTO_PAIRS, label="Pairs (auto: same-content when "
                             "every image has another version of its photo)")
            gold = gr.Slider(0, 0.5, value=0.1, step=0.05, label="Gold share")
            licence = gr.Textbox(DEFAULT_LICENCE, label="Licence of images whose metadata names none")
        audience = gr.Number(None, label="Audience: people rating at once from one address, e.g. a talk's room "
                             "on the venue's Wi-Fi (sizes the per-address limits; 0 or empty: the usual limits)",
                             precision=None, elem_id="campaign-admin-audience")
        create_button = gr.Button("Create campaign", variant="primary", elem_id="campaign-admin-create")
        with gr.Row():
            close_button = gr.Button("Close campaign", elem_id="campaign-admin-close")
            reopen_button = gr.Button("Reopen campaign", elem_id="campaign-admin-reopen")
            hide_button = gr.Button("Hide live results", elem_id="campaign-admin-hide")
            reveal_button = gr.Button("Reveal live results", elem_id="campaign-admin-reveal")
        with gr.Row():
            load_texts_button = gr.Button("Load its title and instructions", elem_id="campaign-admin-load-texts")
            save_texts_button = gr.Button("Save title and instructions", elem_id="campaign-admin-save-texts")
            export_button = gr.Button("Export as a dataset (.zip)", elem_id="campaign-admin-export")
        download = gr.File(label="Download", interactive=False, visible=False, elem_id="campaign-admin-download")
        confirmed = gr.Checkbox(False, visible=False)  # the browser's answer to "are you sure?"
        with gr.Row():
            reset_button = gr.Button("Reset: new round, keep judgements", elem_id="campaign-admin-reset")
            archive_button = gr.Button("Reset and archive judgements", elem_id="campaign-admin-reset-archive")
            new_name = gr.Textbox(label="Name of the copy", elem_id="campaign-admin-clone-name")
            clone_button = gr.Button("Clone campaign", elem_id="campaign-admin-clone")
        result = gr.Markdown(elem_id="campaign-admin-result")

    def on_create(token_, name_, files_, dataset_, title_, instructions_, pairs_, gold_, licence_, audience_,
                  request: gr.Request, progress=gr.Progress()):
        report = create(services, token_, name_, files_, dataset_, title_, instructions_, pairs_, gold_, licence_,
                        lambda i, n, d: progress((i, n), desc=f"checking {d}"), services.proxies.client(request),
                        audience=audience_)
        return report, campaign_table(services)

    def on_status(status: str):
        def handler(token_, name_, request: gr.Request):
            return set_status(services, token_, name_, status, services.proxies.client(request)), campaign_table(services)
        return handler

    def on_hidden(hidden: bool):
        def handler(token_, name_, request: gr.Request):
            return set_results_hidden(services, token_, name_, hidden, services.proxies.client(request)), campaign_table(services)
        return handler

    def on_reset(archive: bool):
        def handler(token_, name_, confirmed_, request: gr.Request):
            if confirmed_ is not True:
                return CANCELLED, gr.skip()
            return reset(services, token_, name_, archive, services.proxies.client(request)), campaign_table(services)
        return handler

    def on_load_texts(token_, name_, request: gr.Request):
        return texts(services, token_, name_, services.proxies.client(request))

    def on_save_texts(token_, name_, title_, instructions_, request: gr.Request):
        return (edit_texts(services, token_, name_, title_, instructions_, services.proxies.client(request)),
                campaign_table(services))

    def on_export(token_, name_, request: gr.Request):
        path = export(services, token_, name_, services.proxies.client(request))
        return f"Exported **{(name_ or '').strip()}**: download `{path.name}` below.", gr.File(str(path), visible=True)

    def on_clone(token_, name_, new_, request: gr.Request):
        return clone(services, token_, name_, new_, services.proxies.client(request)), campaign_table(services)

    def on_list(token_, request: gr.Request):
        authorise(services, token_, services.proxies.client(request))
        return campaign_table(services)

    jobs = dict(concurrency_id="campaign-admin", concurrency_limit=1, api_visibility="private")
    create_button.click(on_create, [token, name, files, dataset, title, instructions, pairs, gold, licence, audience],
                        [result, table], **jobs)
    close_button.click(on_status("closed"), [token, name], [result, table], **jobs)
    reopen_button.click(on_status("open"), [token, name], [result, table], **jobs)
    hide_button.click(on_hidden(True), [token, name], [result, table], **jobs)
    reveal_button.click(on_hidden(False), [token, name], [result, table], **jobs)
    reset_button.click(on_reset(False), [token, name, confirmed], [result, table], **jobs, js=confirming(
        "Reset campaign {name}? A new round begins: rankings start again from no judgements (earlier ones are kept)."))
    archive_button.click(on_reset(True), [token, name, confirmed], [result, table], **jobs, js=confirming(
        "Reset campaign {name} and archive its judgements? A new round begins: rankings start again from no "
        "judgements."))
    load_texts_button.click(on_load_texts, [token, name], [title, instructions], **jobs)
    save_texts_button.click(on_save_texts, [token, name, title, instructions], [result, table], **jobs)
    export_button.click(on_export, [token, name], [result, download], **jobs)
    clone_button.click(on_clone, [token, name, new_name], [result, table], **jobs)
    token.submit(on_list, token, table, **jobs)
