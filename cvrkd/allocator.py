"""Keep freed memory inside the process while training on CPU (glibc's allocator).

Why: PyTorch allocates every CPU activation with ``malloc``. glibc serves large blocks with
``mmap`` and unmaps them on ``free``, so each training step faults its activations into memory
again: a quarter of a training run's CPU time went to the kernel. Serving every block from the
heap and never trimming it makes a phase-2b step of the shipped recipe about 1.3x faster
(``python bench/allocator.py``), at the price of holding the run's peak memory until it ends.
Training only: a long-lived server should give memory back.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import TypeVar

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1
"""The largest value mallopt takes (an int): the heap is trimmed only past 2 GiB of free top."""

Handler = TypeVar("Handler", bound=Callable)


def keep_freed_memory() -> bool:
    """Serve every allocation from the heap and keep what is freed; False where the C library
    has no ``mallopt`` (not glibc) or refuses, and nothing changed."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))


def training_command(handler: Handler) -> Handler:
    """A command-line handler that trains: the allocator keeps freed memory for its run."""
    @functools.wraps(handler)
    def run(*args, **kwargs):
        keep_freed_memory()
        return handler(*args, **kwargs)
    return run  # type: ignore[return-value]
