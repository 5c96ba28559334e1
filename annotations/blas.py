"""Run small linear algebra on one BLAS thread.

The matrices here are small (one row and column per image) and the app runs
on a couple of shared cores: there, OpenBLAS's worker threads make a fit 10
to 50 times slower than a single thread (measured on a busy 2-core machine).
The limit is process-wide while it is held, so it wraps only our own calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from threadpoolctl import ThreadpoolController


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def single_threaded() -> Iterator[None]:
    """Limit BLAS libraries to one thread inside the block."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
