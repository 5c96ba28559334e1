"""A process-wide budget of decoded pixels, so concurrent uploads cannot exhaust memory.

Each decode reserves its decoded pixel count before Pillow allocates it and
gives it back once the image is reduced to its working size. Requests that
do not fit wait (up to a time limit) for others to finish, so a burst of
large uploads is decoded a few at a time instead of all at once.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BUDGET_ENV = "CVRKD_DECODE_BUDGET_MP"
"""Environment variable: megapixels that may be decoded at once in this process."""


class BudgetTimeout(RuntimeError):
    """The pixels could not be reserved in time: the server is busy decoding other images."""


class PixelBudget:
    """A counting semaphore measured in pixels."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("the pixel budget must be positive")
        self.capacity = capacity
        self._in_use = 0
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        """Pixels reserved right now."""
        with self._changed:
            return self._in_use

    @contextmanager
    def reserve(self, pixels: int, timeout_s: float = 120.0) -> Iterator[None]:
        """Hold ``pixels`` (at most the whole budget) for the ``with`` block."""
        pixels = min(max(int(pixels), 0), self.capacity)
        with self._changed:
            if not self._changed.wait_for(lambda: self._in_use + pixels <= self.capacity, timeout_s):
                raise BudgetTimeout(f"{pixels / 1e6:.0f} megapixels could not be reserved within {timeout_s:.0f} s")
            self._in_use += pixels
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= pixels
                self._changed.notify_all()


def budget_from_env(default_megapixels: float) -> PixelBudget:
    """The process's budget: ``$CVRKD_DECODE_BUDGET_MP`` megapixels, else ``default_megapixels``."""
    value = os.environ.get(BUDGET_ENV, "").strip()
    megapixels = float(value) if value else default_megapixels
    return PixelBudget(int(megapixels * 1_000_000))
