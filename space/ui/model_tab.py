"""Model tab: the model in service, its model card, re-distillation runs, trainer status."""
from __future__ import annotations

import gradio as gr

from space.services import model_card
from space.ui import admin, campaign_admin, moderation_admin
from space.services.container import REPO_ROOT, Services, Trainer

NO_RUNS = "No re-distillation runs yet."


def trainer_markdown(trainer: Trainer) -> str:
    """The trainer's status line and, after a failed round, the last lines it wrote: the reason it failed."""
    text = f"Trainer: **{trainer.status()}**"
    failure = trainer.failure()
    if failure:
        text += f"\n\nLast lines of the failed round (`registry/trainer.log`):\n\n```text\n{failure}\n```"
    return text


def build(services: Services) -> gr.Tab:
    """Lay out the Model tab; everything is re-read when the tab is opened."""
    with gr.Tab("Model", id="model") as tab:
        gr.Markdown("### Model in service")
        summary = gr.Markdown(elem_id="model-summary")
        with gr.Accordion("Full checkpoint record (config.json)", open=False):
            record = gr.JSON()
        gr.Markdown("### Re-distillation runs\n\nEach round's candidate and what the gate measured: agreement "
                    "with people on judgements it never trained on (promoted only if the gain's 95% interval "
                    "is above 0), the synthetic check and the known-order check.")
        trainer = gr.Markdown(elem_id="model-trainer")
        runs_empty = gr.Markdown(NO_RUNS)
        runs = gr.Dataframe(interactive=False, visible=False, max_height=300, wrap=True, elem_id="model-runs")
        curves = gr.Plot(visible=False, label="Agreement with people on held-out judgements, per run")
        with gr.Accordion("Admin: re-distil now or roll back (needs the admin token)", open=False):
            token = gr.Textbox(label="Admin token", type="password")
            version = gr.Textbox(label="Version to roll back to (empty: the previous one)")
            with gr.Row():
                start = gr.Button("Re-distil now")
                rollback = gr.Button("Roll back")
            admin_result = gr.Markdown()
        campaign_admin.build(services)
        moderation_admin.build(services)
        gr.Markdown("### Model card")
        card = gr.Markdown(elem_id="model-card")

    def on_start(admin_token: str, request: gr.Request) -> str:
        return admin.request_round(services.trainer, admin_token, services.proxies.client(request))

    def on_rollback(admin_token: str, target: str, request: gr.Request) -> str:
        return admin.rollback(services.trainer, admin_token, target, services.proxies.client(request))

    start.click(on_start, token, admin_result, api_name="redistill", concurrency_id="admin")
    rollback.click(on_rollback, [token, version], admin_result, api_name="rollback", concurrency_id="admin")

    def on_open():
        table = model_card.gate_table(services.data_dir / "registry")
        doc = model_card.model_doc(REPO_ROOT) or "*No model card (`docs/model.md`) in this checkout.*"
        return (model_card.summary_markdown(services.model), model_card.summary(services.model),
                trainer_markdown(services.trainer), gr.Markdown(visible=table.empty),
                gr.Dataframe(table, visible=not table.empty),
                gr.Plot(admin.run_curves(services.data_dir / "registry"), visible=not table.empty), doc)

    tab.select(on_open, None, [summary, record, trainer, runs_empty, runs, curves, card],
               api_visibility="private")
    return tab
