"""Memory + disk cache of pooled backbone features (one tensor per key).

Keys name the gallery content, the backbone weights and the patch layout, so a
stale entry can never be served: change any of them and the key changes.
"""
from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


class FeatureCache:
    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self._memory: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()

    def get_or_compute(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        tensor = self._read(key)
        if tensor is None:
            tensor = compute()
            self._write(key, tensor)
        with self._lock:
            self._memory[key] = tensor
        return tensor

    def __contains__(self, key: str) -> bool:
        return key in self._memory or (self.folder is not None and self._path(key).is_file())

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{key}.safetensors"

    def _read(self, key: str) -> torch.Tensor | None:
        if self.folder is None or not self._path(key).is_file():
            return None
        try:
            return load_file(str(self._path(key)))["features"]
        except (SafetensorError, KeyError, OSError):
            return None  # a damaged entry is recomputed and overwritten

    def _write(self, key: str, tensor: torch.Tensor) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tmp", delete=False) as handle:
            temp = handle.name
        save_file({"features": tensor.contiguous()}, temp)
        os.replace(temp, self._path(key))
