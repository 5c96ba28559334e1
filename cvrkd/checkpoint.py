"""Checkpoints: ``model.safetensors`` + ``config.json`` in one folder.

Nothing is ever unpickled. The config records the backbone the head was
trained on, so a checkpoint refuses to load onto another backbone, and the
weights' SHA-256, which is the model version shown with every score.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from cvrkd.model import CVRKDNet, ModelConfig
from cvrkd.patches import PatchConfig

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
ROLES = ("teacher", "student")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or incompatible."""


@dataclass
class CheckpointInfo:
    """Everything about a checkpoint except its weights."""

    role: str
    backbone: str
    model: ModelConfig
    patches: PatchConfig
    trained: bool
    version: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self, weights_sha256: str) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "role": self.role,
            "backbone": self.backbone,
            "model": self.model.to_dict(),
            "patches": self.patches.to_dict(),
            "trained": self.trained,
            "weights_sha256": weights_sha256,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **({"extra": self.extra} if self.extra else {}),
        }


def save_checkpoint(model: CVRKDNet, info: CheckpointInfo, folder: str | Path) -> str:
    """Write atomically: readers see the old checkpoint or the new one, never a mix.

    Returns the new version (first 12 hex digits of the weights' SHA-256).
    """
    if info.role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        weights = staging / WEIGHTS_FILE
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        # no safetensors metadata: its key order is not stable, and the version is the file's hash
        save_file(tensors, str(weights))
        digest = _sha256(weights)
        (staging / CONFIG_FILE).write_text(json.dumps(info.to_json(digest), indent=2))
        for path in (weights, staging / CONFIG_FILE):
            _fsync(path)
        _swap_in(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    info.version = digest[:12]
    return info.version


def load_checkpoint(folder: str | Path, expected_backbone: str | None = None,
                    expected_role: str | None = None) -> tuple[CVRKDNet, CheckpointInfo]:
    """Load and verify a checkpoint; the model comes back in eval mode."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise CheckpointError(f"{folder} is not a checkpoint (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{config_path} is not valid JSON: {exc}") from exc
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{folder}: unsupported checkpoint format {config.get('format_version')}")
    digest = _sha256(weights_path)
    if digest != config.get("weights_sha256"):
        raise CheckpointError(f"{folder}: weights do not match the SHA-256 in {CONFIG_FILE}")
    info = CheckpointInfo(
        role=config["role"], backbone=config["backbone"],
        model=ModelConfig.from_dict(config["model"]), patches=PatchConfig(**config["patches"]),
        trained=bool(config.get("trained")), version=digest[:12], extra=config.get("extra", {}),
    )
    if expected_backbone is not None and info.backbone != expected_backbone:
        raise CheckpointError(
            f"{folder} was trained on backbone {info.backbone!r}, not {expected_backbone!r}"
        )
    if expected_role is not None and info.role != expected_role:
        raise CheckpointError(f"{folder} is a {info.role} checkpoint, expected a {expected_role}")
    model = CVRKDNet(info.model)
    model.load_state_dict(load_file(str(weights_path)), strict=True)
    return model.eval(), info


def _swap_in(staging: Path, folder: Path) -> None:
    if not folder.exists():
        os.replace(staging, folder)
        return
    retired = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    os.replace(folder, retired)
    os.replace(staging, folder)
    shutil.rmtree(retired, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def untrained(role: str, backbone: str = "lite0", seed: int = 0,
              model_config: ModelConfig | None = None,
              patches: PatchConfig | None = None) -> tuple[CVRKDNet, CheckpointInfo]:
    """A randomly initialised network, for tests and timing only (``trained`` is False)."""
    torch.manual_seed(seed)
    patches = patches or PatchConfig()
    config = model_config or ModelConfig(num_patches=patches.views)
    return CVRKDNet(config).eval(), CheckpointInfo(role, backbone, config, patches, trained=False)
