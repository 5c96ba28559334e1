"""Gradio components the app needs beyond the stock ones."""
from __future__ import annotations

from types import MethodType
from typing import Any

import gradio as gr


def raw_image(**kwargs: Any) -> gr.Image:
    """An image upload that reaches the app as the uploaded file, untouched.

    ``gr.Image`` opens uploads with PIL before the event function runs, so a
    file that is not an image fails inside Gradio with an opaque error. Every
    upload must instead go through ``cvrkd.imageio.load_image``, which explains
    what is wrong (and converts 16-bit, CMYK or transparent images with a note).
    Only this instance's ``preprocess`` is replaced: a subclass would make
    Gradio write a ``.pyi`` stub next to this module at import time.
    """
    component = gr.Image(type="filepath", **kwargs)
    stock = component.preprocess

    def preprocess(self: gr.Image, payload: Any) -> str | None:
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return stock(payload)

    component.preprocess = MethodType(preprocess, component)
    return component
