"""The "share" panel of the Rate and Leaderboard tabs: the link, its QR code, PNG and SVG downloads."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from space.share import qr_files
from space.state import Services


@dataclass
class SharePanel:
    accordion: gr.Accordion
    link: gr.Textbox
    qr: gr.Image
    png: gr.DownloadButton
    svg: gr.DownloadButton

    @property
    def outputs(self) -> list:
        return [self.link, self.qr, self.png, self.svg]


def build(prefix: str, label: str, open: bool = False) -> SharePanel:
    """Lay the panel out (inside the current tab); ``show`` fills it."""
    with gr.Accordion(label, open=open, elem_id=f"{prefix}-share") as accordion:
        with gr.Row():
            qr = gr.Image(label="QR code (scan with a phone camera)", type="filepath", interactive=False,
                          height=300, buttons=["fullscreen"], elem_id=f"{prefix}-qr", scale=1)
            with gr.Column(scale=2):
                link = gr.Textbox(label="Link", interactive=False, buttons=["copy"], elem_id=f"{prefix}-link")
                png = gr.DownloadButton("Download the QR code as PNG (for slides)", elem_id=f"{prefix}-qr-png")
                svg = gr.DownloadButton("Download the QR code as SVG (scalable)", elem_id=f"{prefix}-qr-svg")
    return SharePanel(accordion, link, qr, png, svg)


def show(services: Services, url: str) -> tuple:
    """Values for ``SharePanel.outputs``: the link, the QR image and both downloads."""
    files = qr_files(url, services.data_dir / "share")
    return url, str(files.png), gr.DownloadButton(value=str(files.png)), gr.DownloadButton(value=str(files.svg))
