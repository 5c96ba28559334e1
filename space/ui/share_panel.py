"""The "share" panel of the Rate and Leaderboard tabs: the link, its QR code, PNG and SVG downloads."""
from __future__ import annotations

from dataclasses import dataclass

import html

import gradio as gr

from space.services.share import local_warning, qr_files
from space.services.container import Services


@dataclass
class SharePanel:
    accordion: gr.Accordion
    warning: gr.HTML
    link: gr.Textbox
    qr: gr.Image
    png: gr.DownloadButton
    svg: gr.DownloadButton
    app_link: gr.Textbox

    @property
    def outputs(self) -> list:
        return [self.warning, self.link, self.qr, self.png, self.svg, self.app_link]


def build(prefix: str, label: str, open: bool = False, link_label: str = "Link") -> SharePanel:
    """Lay the panel out (inside the current tab); ``show`` fills it."""
    with gr.Accordion(label, open=open, elem_id=f"{prefix}-share") as accordion:
        warning = gr.HTML(elem_id=f"{prefix}-share-warning")
        with gr.Row():
            qr = gr.Image(label="QR code (scan with a phone camera)", type="filepath", interactive=False,
                          height=300, buttons=["fullscreen"], elem_id=f"{prefix}-qr", scale=1)
            with gr.Column(scale=2):
                link = gr.Textbox(label=link_label, interactive=False, buttons=["copy"], elem_id=f"{prefix}-link")
                png = gr.DownloadButton("Download the QR code as PNG (for slides)", elem_id=f"{prefix}-qr-png")
                svg = gr.DownloadButton("Download the QR code as SVG (scalable)", elem_id=f"{prefix}-qr-svg")
                app_link = gr.Textbox(label="The same in the full app", interactive=False, buttons=["copy"],
                                      visible=False, elem_id=f"{prefix}-app-link")
    return SharePanel(accordion, warning, link, qr, png, svg, app_link)


def show(services: Services, url: str, app_url: str | None = None) -> tuple:
    """Values for ``SharePanel.outputs``: a warning when the link only works on this machine, the link,
    its QR image, both downloads and (when given) the full app's link to the same place."""
    files = qr_files(url, services.data_dir / "share")
    warning = local_warning(url)
    shown = f'<div class="share-warning" role="alert">⚠ {html.escape(warning)}</div>' if warning else ""
    return (shown, url, str(files.png), gr.DownloadButton(value=str(files.png)), gr.DownloadButton(value=str(files.svg)),
            gr.Textbox(value=app_url, visible=True) if app_url else gr.Textbox(visible=False))
