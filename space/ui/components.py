"""Gradio components the app needs beyond the stock ones."""
from __future__ import annotations

from types import MethodType
from typing import Any

import gradio as gr
from gradio.data_classes import FileData, GradioRootModel

from space.ui.errors import refusal


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


class _AnyPayload(GradioRootModel):
    """Accepts whatever a client sent, so a wrong type reaches ``preprocess`` and gets a clear refusal."""

    root: Any = None


def file_argument(label: str) -> gr.File:
    """A hidden API file input that refuses anything but an uploaded file with a plain message.

    Stock ``gr.File`` validates the payload before any app code runs, so a
    plain path string or a number ends as Gradio's generic "upstream app has
    raised an exception". The API docs still describe a file.
    """
    component = gr.File(label=label, type="filepath")
    component.api_info()  # cache the file schema for the API page before relaxing the payload model
    component.data_model = _AnyPayload
    stock = component.preprocess

    def preprocess(self: gr.File, payload: Any) -> str | None:
        value = payload.root if isinstance(payload, _AnyPayload) else payload
        if value is None:
            return None
        try:
            file = FileData.model_validate(value, context={"validate_meta": True})
        except ValueError:
            raise refusal(f"{label} must be a file sent with gradio_client.handle_file(path), "
                          f"not {type(value).__name__} {str(value)[:60]!r}", f"API {label}") from None
        return stock(file)

    component.preprocess = MethodType(preprocess, component)
    return component


def checked_argument(component: gr.components.Component, label: str) -> gr.components.Component:
    """``component`` whose payload conversion errors (e.g. "fast" for a number) become a plain refusal."""
    stock = component.preprocess

    def preprocess(self: gr.components.Component, payload: Any) -> Any:
        try:
            return stock(payload)
        except (TypeError, ValueError) as exc:
            raise refusal(f"{label}: {str(payload)[:60]!r} is not a valid value ({exc})", f"API {label}") from None

    component.preprocess = MethodType(preprocess, component)
    return component
