"""Fast CPU inference for the frozen backbone: an ONNX export run by ONNX Runtime or OpenVINO.

Nearly all of a score's time is the backbone's forward pass over the image's patches; the
head costs milliseconds. So only the backbone goes through an optimised runtime, and the
head stays in torch. The export is generic: whatever backbone the checkpoint's config names
is built by ``FrozenBackbone`` and exported with dynamic batch, height and width, so a model
that also feeds a whole image at native resolution works unchanged.

The export is cached beside the model (``<model>/runtime/``, or the cache folder when the
model's folder is read-only), keyed by the checkpoint's weights SHA-256 and the backbone name,
so a new checkpoint gets a fresh export. Before a runtime is used, its output is compared with
torch's on fixed probe images ("verified"); ``auto`` falls back to torch when no runtime is
installed or verified.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from filelock import FileLock

from cvrkd import paths

logger = logging.getLogger(__name__)

FAST_RUNTIMES = ("onnxruntime", "openvino")
"""The order ``auto`` tries them in: ONNX Runtime measured fastest here (bench/latency.py)."""
BACKENDS = ("auto", "torch", *FAST_RUNTIMES)
EXPORT_FORMAT = 1
MAX_RELATIVE_ERROR = 1e-3
"""Largest allowed |runtime - torch| over the probes, relative to the largest |feature|."""
OPSET = 17


class RuntimeUnavailable(RuntimeError):
    """The asked-for runtime is not installed, could not export, or failed verification."""


def default_backend() -> str:
    """``$CVRKD_BACKEND`` when set, else ``auto``."""
    return os.environ.get("CVRKD_BACKEND", "auto")


def installed(runtime: str) -> bool:
    return importlib.util.find_spec(runtime) is not None


@dataclass
class Export:
    """One exported backbone: the ONNX file and its manifest."""

    onnx_path: Path
    manifest: dict

    @property
    def manifest_path(self) -> Path:
        return self.onnx_path.with_suffix(".json")

    def verified(self, runtime: str) -> bool:
        check = self.manifest.get("verified", {}).get(runtime)
        return bool(check and check["ok"])


# ------------------------------------------------------------------ export
def export_key(backbone: str, checkpoint_sha256: str) -> str:
    text = f"format{EXPORT_FORMAT}|{backbone}|{checkpoint_sha256}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def runtime_dir(model_dir: Path) -> Path:
    """``<model>/runtime`` when the model folder is writable, else the user cache folder."""
    preferred = Path(model_dir) / "runtime"
    if os.access(preferred if preferred.exists() else model_dir, os.W_OK):
        return preferred
    return paths.cache_dir() / "runtime"


def export_path(model_dir: Path, backbone: str, checkpoint_sha256: str) -> Path:
    return runtime_dir(model_dir) / f"{backbone}-{export_key(backbone, checkpoint_sha256)}.onnx"


class _ExportWrapper(torch.nn.Module):
    """Normalisation + feature stages, as one traceable module returning a tuple."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.features, self.mean, self.std = backbone.features, backbone.mean, backbone.std

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.features((images - self.mean) / self.std))


def export_backbone(model_dir: Path, backbone: str, checkpoint_sha256: str,
                    force: bool = False) -> Export:
    """Export (once; concurrent callers wait on a file lock) and verify every installed runtime."""
    from cvrkd.backbone import FrozenBackbone

    target = export_path(model_dir, backbone, checkpoint_sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_suffix(".lock"))):
        existing = _read_export(target)
        if existing is not None and not force:
            missing = [r for r in FAST_RUNTIMES if installed(r) and r not in existing.manifest["verified"]]
            if not missing:
                return existing
            return _verify(existing, FrozenBackbone(backbone), missing)
        torch_backbone = FrozenBackbone(backbone)
        _write_onnx(torch_backbone, target)
        manifest = {
            "format": EXPORT_FORMAT, "backbone": backbone, "checkpoint_sha256": checkpoint_sha256,
            "onnx_sha256": _sha256(target), "channels": list(torch_backbone.channels),
            "torch": torch.__version__, "verified": {},
        }
        export = Export(target, manifest)
        return _verify(export, torch_backbone, [r for r in FAST_RUNTIMES if installed(r)])


def _write_onnx(backbone: torch.nn.Module, target: Path) -> None:
    wrapper = _ExportWrapper(backbone).eval()
    example = torch.rand(2, 3, 224, 224)
    stages = [f"stage{i}" for i in range(len(backbone.channels))]
    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    axes.update({name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in stages})
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".onnx.tmp", delete=False) as handle:
        temp = Path(handle.name)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # the TorchScript exporter handles the TF-style "same" padding with dynamic H/W
            torch.onnx.export(wrapper, (example,), str(temp), input_names=["images"],
                              output_names=stages, dynamic_axes=axes, opset_version=OPSET,
                              dynamo=False)
        os.chmod(temp, 0o644)  # readable by every user of a shared install
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def probe_images() -> list[torch.Tensor]:
    """Fixed natural-image inputs: a batch of 224² crops and one odd-sized whole image."""
    from PIL import Image
    from skimage import data

    photo = data.astronaut()
    crops = np.stack([photo[:224, :224], photo[200:424, 250:474]])
    whole = np.asarray(Image.fromarray(data.coffee()).resize((391, 257), Image.Resampling.BICUBIC))
    return [torch.from_numpy(np.array(a)).permute(0, 3, 1, 2).float() / 255 for a in (crops, whole[None])]


def relative_error(reference: list[torch.Tensor], candidate: list[torch.Tensor]) -> float:
    """max |candidate - reference| / max |reference| over all stages."""
    scale = max(float(r.abs().max()) for r in reference)
    return max(float((c - r).abs().max()) for r, c in zip(reference, candidate)) / scale


def _verify(export: Export, torch_backbone: torch.nn.Module, runtimes: list[str]) -> Export:
    probes = probe_images()
    expected = [torch_backbone(probe) for probe in probes]
    for runtime in runtimes:
        try:
            candidate = RuntimeBackbone(export, runtime, threads=torch.get_num_threads(),
                                        require_verified=False)
            error = max(relative_error(e, candidate(p)) for e, p in zip(expected, probes))
            check = {"ok": error <= MAX_RELATIVE_ERROR, "max_relative_error": error,
                     "version": _version(runtime)}
        except Exception as exc:  # noqa: BLE001 - a runtime that cannot run the export is unverified
            check = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "version": _version(runtime)}
        export.manifest["verified"][runtime] = check
        logger.info("verified %s on %s: %s", runtime, export.onnx_path.name, check)
    _write_json(export.manifest_path, export.manifest)
    return export


def _read_export(target: Path) -> Export | None:
    manifest_path = target.with_suffix(".json")
    if not target.is_file() or not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return None
    if manifest.get("format") != EXPORT_FORMAT or manifest.get("onnx_sha256") != _sha256(target):
        return None  # damaged or from another exporter: export again
    return Export(target, manifest)


# ------------------------------------------------------------------ run
class RuntimeBackbone:
    """Drop-in for ``FrozenBackbone`` at inference: [N, 3, H, W] in 0–1 -> the stage maps."""

    def __init__(self, export: Export, runtime: str, threads: int,
                 require_verified: bool = True) -> None:
        if runtime not in FAST_RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; choose one of {FAST_RUNTIMES}")
        if not installed(runtime):
            raise RuntimeUnavailable(f"{runtime} is not installed (pip install {runtime})")
        if require_verified and not export.verified(runtime):
            raise RuntimeUnavailable(
                f"{runtime} did not reproduce torch's features on {export.onnx_path.name}: "
                f"{export.manifest.get('verified', {}).get(runtime)}")
        self.name = export.manifest["backbone"]
        self.backend = runtime
        self.channels = tuple(export.manifest["channels"])
        self._export = export
        self._run = (_onnxruntime_runner if runtime == "onnxruntime" else _openvino_runner)(
            export.onnx_path, max(1, threads))

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]:
        array = np.ascontiguousarray(images.detach().float().numpy())
        return [torch.from_numpy(stage) for stage in self._run(array)]

    def fingerprint(self) -> str:
        """Identifies the exported weights and the runtime, for feature-cache keys."""
        text = f"{self._export.manifest['onnx_sha256']}|{self.backend}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


Runner = Callable[[np.ndarray], list[np.ndarray]]


def _onnxruntime_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    # no busy-waiting between ops: measured faster on shared cores, and idle threads stay idle
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda images: session.run(None, {"images": images})


def _openvino_runner(path: Path, threads: int) -> Runner:
    import openvino as ov

    # f32 on purpose: on CPUs with bf16 units OpenVINO would otherwise compute in bf16
    compiled = ov.Core().compile_model(str(path), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32"})
    request, lock = compiled.create_infer_request(), threading.Lock()

    def run(images: np.ndarray) -> list[np.ndarray]:
        with lock:  # one infer request: calls from several threads take turns
            results = request.infer({0: images})
            return [np.array(results[output]) for output in compiled.outputs]

    return run


# ------------------------------------------------------------------ choose
def load_backbone(backend: str, backbone: str, model_dir: Path, checkpoint_sha256: str,
                  threads: int | None = None) -> tuple[object, str]:
    """The backbone to score with and the backend actually used.

    ``torch`` builds ``FrozenBackbone``; a runtime name must work or raises
    ``RuntimeUnavailable``; ``auto`` takes the first installed, verified runtime and
    falls back to torch (logging why) when none is.
    """
    from cvrkd.backbone import FrozenBackbone

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    threads = threads or torch.get_num_threads()
    if backend == "torch":
        return FrozenBackbone(backbone), "torch"
    candidates = FAST_RUNTIMES if backend == "auto" else (backend,)
    problems = []
    for runtime in candidates:
        if not installed(runtime):
            problems.append(f"{runtime} is not installed")
            continue
        try:
            export = export_backbone(model_dir, backbone, checkpoint_sha256)
            return RuntimeBackbone(export, runtime, threads), runtime
        except Exception as exc:  # noqa: BLE001 - auto falls back; an explicit choice re-raises
            if backend != "auto":
                raise RuntimeUnavailable(str(exc)) from exc
            problems.append(f"{runtime}: {exc}")
    if backend != "auto":
        raise RuntimeUnavailable("; ".join(problems))
    logger.warning("scoring with torch (no fast runtime: %s)", "; ".join(problems))
    return FrozenBackbone(backbone), "torch"


# ------------------------------------------------------------------ helpers
def _version(runtime: str) -> str:
    try:
        return importlib.import_module(runtime).__version__
    except Exception:  # noqa: BLE001
        return "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, payload: dict) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(payload, handle, indent=2)
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)
