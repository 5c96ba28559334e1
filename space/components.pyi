"""Gradio components the app needs beyond the stock ones."""
from __future__ import annotations

from typing import Any

import gradio as gr

from gradio.events import Dependency

class RawImage(gr.Image):
    """An image upload that reaches the app as the uploaded file, untouched.

    ``gr.Image`` opens uploads with PIL before the event function runs, so a
    file that is not an image fails inside Gradio with an opaque error. Every
    upload must instead go through ``cvrkd.imageio.load_image``, which explains
    what is wrong (and converts 16-bit, CMYK or transparent images with a note).
    The browser side is the stock image component (``is_template``). Create it
    with ``type="filepath"``: Gradio reads the props from ``gr.Image``'s signature.
    """

    is_template = True

    def preprocess(self, payload: Any) -> str | None:
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return super().preprocess(payload)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component