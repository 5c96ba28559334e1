"""Refusals: a plain message for the user, one line in the server log, no stack trace.

Gradio prints the full traceback of every ``gr.Error`` unless told not to; a
refused upload or a wrong token is routine, not a fault, so it gets one log
line with its reason instead.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

from space.services.refusals import REFUSALS

logger = logging.getLogger("space.refused")


def note_refusal(message: str, where: str) -> None:
    """Log a refused input as one line: ``refused <where>: <message>``."""
    logger.info("refused %s: %s", where, message)


def refusal(message: str, where: str) -> gr.Error:
    """The ``gr.Error`` to raise for a refused request, logged once (see ``note_refusal``)."""
    note_refusal(message, where)
    return gr.Error(message, print_exception=False)


@contextmanager
def refused_as_error(where: str) -> Iterator[None]:
    """Turn a use case's refusal (``space.services.refusals``) into the ``gr.Error`` the user reads."""
    try:
        yield
    except REFUSALS as exc:
        raise refusal(str(exc), where) from None
