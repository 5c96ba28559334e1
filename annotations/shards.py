"""Append-only JSON Lines shards: durable appends, torn-line-proof reads.

A row is one line, written with a single ``os.write`` on an ``O_APPEND``
descriptor and then fsynced, so an acknowledged row survives a crash and a
killed writer leaves at most one unterminated line at the end of its own file.
Readers only ever take newline-terminated lines, so they never see a torn row;
``repair_tail`` cuts such a line off once its writer is known to be dead,
so that plain ``datasets.load_dataset`` can read the folder again.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def encode_line(record: dict[str, Any]) -> bytes:
    """One JSON line; NaN/inf are refused because JSON readers choke on them."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a new or renamed file) durable."""
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def repair_tail(path: Path) -> int:
    """Cut an unterminated last line off ``path``; return the bytes removed.

    Only call this while holding the lock of the file's writer.
    """
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        block = 1 << 16
        end = size
        keep = 0
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            chunk = f.read(end - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            end = start
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    logger.warning("removed a torn last line (%d bytes) from %s", size - keep, path)
    return size - keep


def has_torn_tail(path: Path) -> bool:
    """True when the file's last byte is not a newline (a write was cut short)."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return False
        f.seek(size - 1)
        return f.read(1) != b"\n"


class ShardWriter:
    """Appends rows to one shard file that this process owns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def open(self) -> int:
        """Open (creating if needed, durably) the shard for appending."""
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            existed = self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if not existed:
                fsync_dir(self.path.parent)
        return self._fd

    def append(self, record: dict[str, Any]) -> None:
        """Write and fsync one row; on failure the file is left as it was."""
        line = encode_line(record)
        fd = self.open()
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes)")
            os.fsync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, size)
            except OSError:
                logger.exception("could not roll back a failed write to %s", self.path)
            raise

    def close(self) -> None:
        """Release the file descriptor."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class ShardReader:
    """Reads the complete rows of every shard matching a glob, incrementally.

    Each call returns only the rows appended since the previous call; a line
    still being written is left for a later call.
    """

    def __init__(self, folder: Path, pattern: str) -> None:
        self.folder = folder
        self.pattern = pattern
        self._offsets: dict[Path, int] = {}

    def read_new(self) -> list[dict[str, Any]]:
        """Rows appended since the last call, file by file."""
        rows: list[dict[str, Any]] = []
        if not self.folder.is_dir():
            return rows
        for path in sorted(self.folder.glob(self.pattern)):
            offset = self._offsets.get(path, 0)
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            if end == 0:
                continue
            for number, line in enumerate(data[:end].splitlines()):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    logger.error("skipping an unreadable line in %s at byte %d (+%d lines)", path, offset, number)
            self._offsets[path] = offset + end
        return rows
