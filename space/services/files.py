"""Writing files the app keeps: atomically, and images as lossless PNG."""
from __future__ import annotations

import os
import secrets
import stat
import tempfile
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from annotations.metadata import png_without_metadata
from annotations.shards import fsync_dir


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a fsynced temporary file and a rename: a crash leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def secret_file(path: Path) -> str:
    """The secret kept in ``path``, made once (random, mode 600, created atomically) if missing.

    Only the app's user may read it: an existing file readable by others is
    narrowed to mode 600. Two processes starting at once end up with one
    secret: the second one's ``link`` fails and it reads the first one's.
    """
    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
            fsync_dir(path.parent)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)
    return path.read_text().strip()


def png_bytes(pixels: np.ndarray) -> bytes:
    """Lossless PNG of an RGB array, without metadata (nothing else of an uploaded file survives).

    Light compression: the pool is encoded on first start and noisy images
    compress slowly at higher levels for a few percent of size.
    """
    return png_without_metadata(Image.fromarray(pixels), compress_level=1)
