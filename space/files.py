"""Writing files the app keeps: atomically, and images as lossless PNG."""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a fsynced temporary file and a rename: a crash leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def png_bytes(pixels: np.ndarray) -> bytes:
    """Lossless PNG of an RGB array, without metadata (nothing else of an uploaded file survives).

    Light compression: the pool is encoded on first start and noisy images
    compress slowly at higher levels for a few percent of size.
    """
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
