"""Fast CPU inference: ONNX exports of the frozen backbone and of the student's head, run by
ONNX Runtime or OpenVINO.

A score is one backbone pass over the image, then the student's head against every gallery
reference. Both go through the runtime: the head's many small layers cost torch more in
per-operator overhead than in arithmetic (bench/latency.py). The backbone export is generic:
whatever backbone the checkpoint's config names is built by ``FrozenBackbone`` and exported
with dynamic batch, height and width. The head is exported per student checkpoint (a
re-distilled student gets its own), with a dynamic number of references.

Exports are cached beside the model (``<model>/runtime/``, or the cache folder when the
model's folder is read-only), keyed by the checkpoint's weights SHA-256, so a new checkpoint
gets a fresh export. Before a runtime is used, its output is compared with torch's on fixed
probes ("verified"); ``auto`` falls back to torch when no runtime is installed or verified.
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
from collections import OrderedDict
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
"""Largest allowed backbone |runtime - torch| over the probes, relative to the largest |feature|."""
MAX_HEAD_ERROR = 1e-2
"""Largest allowed head |runtime - torch| over the probes, in score points (0–100)."""
OPSET = 17
SHAPES_KEPT = 4
"""Input shapes whose fixed-size ONNX Runtime sessions stay loaded (see ``_onnxruntime_runner``).
Each holds its own weights and activation arena: after 100 images of different sizes a scoring
process held 1.18 GB with 4 kept, 1.48 GB with 8 (bench/session_memory.py, docs/performance.md)."""
HEADS_KEPT = 8
"""Head exports kept in a runtime folder (see ``_drop_old_heads``)."""


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
                    force: bool = False, tail: torch.nn.ModuleList | None = None) -> Export:
    """Export (once; concurrent callers wait on a file lock) and verify every installed runtime.

    ``tail``: the checkpoint's fine-tuned last stages (``CVRKDNet.backbone_tail``), exported in
    place of ImageNet's; the export is keyed by the checkpoint, so it follows the tail."""
    target = export_path(model_dir, backbone, checkpoint_sha256)
    torch_backbone: list[torch.nn.Module] = []  # built only when something must be checked

    def reference() -> torch.nn.Module:
        if not torch_backbone:
            torch_backbone.append(torch_backbone_for(backbone, tail))
        return torch_backbone[0]

    def write(path: Path) -> dict:
        module = reference()
        stages = [f"stage{i}" for i in range(len(module.channels))]
        axes = {"images": {0: "batch", 2: "height", 3: "width"}}
        axes.update({name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in stages})
        _write_onnx(_ExportWrapper(module), (torch.rand(2, 3, 224, 224),), ["images"], stages, axes, path)
        return {"backbone": backbone, "channels": list(module.channels)}

    def error_of(run: Runner) -> float:
        probes = probe_images()
        expected = [reference()(probe) for probe in probes]
        candidates = [[torch.from_numpy(s) for s in run(np.ascontiguousarray(probe.numpy()))]
                      for probe in probes]
        return max(relative_error(e, c) for e, c in zip(expected, candidates))

    return _export_verified(target, checkpoint_sha256, write, error_of, MAX_RELATIVE_ERROR,
                            "relative", force)


class _HeadWrapper(torch.nn.Module):
    """The student against K references, as one traceable module."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, lq: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        return self.network.score_references(lq, references)


def head_probes(network: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed feature-shaped probes: one image's views and three references'. Values span the
    backbone's non-negative range (pooled ReLU6 maps)."""
    config = network.config
    generator = torch.Generator().manual_seed(0)
    shape = (config.num_patches, sum(config.stage_channels), 7, 7)
    lq = torch.rand(shape, generator=generator) * 3
    references = torch.rand((3, *shape), generator=generator) * 3
    return lq, references


def export_head(model_dir: Path, network: torch.nn.Module, checkpoint_sha256: str,
                force: bool = False) -> Export:
    """Export the student's head for this checkpoint and verify every installed runtime.

    Keyed by the weights and the network's config: the calibration lives in ``config.json`` and
    is baked into the export, so a recalibrated checkpoint with the same weights gets its own."""
    config = json.dumps(network.config.to_dict(), sort_keys=True)
    target = runtime_dir(model_dir) / f"head-{export_key('head', checkpoint_sha256 + '|' + config)}.onnx"
    network = network.eval()

    def write(path: Path) -> dict:
        axes = {"references": {0: "references"}, "scores": {0: "references"}}
        _write_onnx(_HeadWrapper(network), head_probes(network), ["lq", "references"], ["scores"],
                    axes, path)
        _drop_old_heads(target.parent, keep=target)  # only when a new one is written, not on every load
        return {"head": True}

    def error_of(run: Runner) -> float:
        lq, references = head_probes(network)
        with torch.inference_mode():
            expected = network.score_references(lq, references).numpy()
        return float(np.abs(run(lq.numpy(), references.numpy())[0] - expected).max())

    return _export_verified(target, checkpoint_sha256, write, error_of, MAX_HEAD_ERROR,
                            "points", force)


def _drop_old_heads(folder: Path, keep: Path) -> None:
    """Keep the ``HEADS_KEPT`` most recently written head exports: every promoted
    re-distillation round exports one (several MB), and a long-running app would pile them up.
    A process already running a dropped export keeps it in memory; one that needs it again
    exports it again."""
    def written(path: Path) -> int:
        try:
            return path.stat().st_mtime_ns
        except FileNotFoundError:  # dropped by another process meanwhile
            return 0

    heads = sorted(folder.glob("head-*.onnx"), key=written, reverse=True)
    for old in [head for head in heads if head != keep][HEADS_KEPT - 1:]:
        old.unlink(missing_ok=True)  # first: without its .onnx a manifest is never trusted
        old.with_suffix(".json").unlink(missing_ok=True)


def _export_verified(target: Path, checkpoint_sha256: str, write: Callable[[Path], dict],
                     error_of: Callable[[Runner], float], limit: float, unit: str,
                     force: bool) -> Export:
    """The cached export at ``target`` when it is intact and every installed runtime has been
    checked, else (re)write and check it. Concurrent callers wait on a file lock."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_suffix(".lock"))):
        export = None if force else _read_export(target)
        if export is None:
            with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".onnx.tmp", delete=False) as handle:
                temp = Path(handle.name)
            try:
                details = write(temp)
                os.chmod(temp, 0o644)  # readable by every user of a shared install
                os.replace(temp, target)
            finally:
                temp.unlink(missing_ok=True)
            export = Export(target, {"format": EXPORT_FORMAT, **details,
                                     "checkpoint_sha256": checkpoint_sha256,
                                     "onnx_sha256": _sha256(target), "torch": torch.__version__,
                                     "error_unit": unit, "verified": {}})
        missing = [r for r in FAST_RUNTIMES if installed(r) and r not in export.manifest["verified"]]
        if not missing:
            return export
        for runtime in missing:
            try:
                error = error_of(_RUNNERS[runtime](export.onnx_path, torch.get_num_threads()))
                check = {"ok": error <= limit, "max_error": error, "version": _version(runtime)}
            except Exception as exc:  # noqa: BLE001 - a runtime that cannot run the export is unverified
                check = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "version": _version(runtime)}
            export.manifest["verified"][runtime] = check
            logger.info("verified %s on %s: %s", runtime, export.onnx_path.name, check)
        _write_json(export.manifest_path, export.manifest)
        return export


def _write_onnx(module: torch.nn.Module, example: tuple[torch.Tensor, ...], inputs: list[str],
                outputs: list[str], axes: dict, path: Path) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # the TorchScript exporter handles the TF-style "same" padding with dynamic H/W
        torch.onnx.export(module.eval(), example, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


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
def _checked_runner(export: Export, runtime: str, threads: int) -> Runner:
    if runtime not in FAST_RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {FAST_RUNTIMES}")
    if not installed(runtime):
        raise RuntimeUnavailable(f"{runtime} is not installed (pip install {runtime})")
    if not export.verified(runtime):
        raise RuntimeUnavailable(
            f"{runtime} did not reproduce torch's outputs on {export.onnx_path.name}: "
            f"{export.manifest.get('verified', {}).get(runtime)}")
    return _RUNNERS[runtime](export.onnx_path, max(1, threads))


class RuntimeBackbone:
    """Drop-in for ``FrozenBackbone`` at inference: [N, 3, H, W] in 0–1 -> the stage maps."""

    def __init__(self, export: Export, runtime: str, threads: int) -> None:
        self._run = _checked_runner(export, runtime, threads)
        self.name = export.manifest["backbone"]
        self.backend = runtime
        self.channels = tuple(export.manifest["channels"])
        self._export = export

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]:
        array = np.ascontiguousarray(images.detach().float().numpy())
        return [torch.from_numpy(stage) for stage in self._run(array)]

    def fingerprint(self) -> str:
        """Identifies the exported weights and the runtime, for feature-cache keys."""
        text = f"{self._export.manifest['onnx_sha256']}|{self.backend}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class RuntimeHead:
    """Drop-in for ``CVRKDNet.score_references``: one image's features against K references."""

    def __init__(self, export: Export, runtime: str, threads: int) -> None:
        self._run = _checked_runner(export, runtime, threads)
        self.backend = runtime

    def __call__(self, lq: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        arrays = (np.ascontiguousarray(t.detach().float().numpy()) for t in (lq, references))
        return torch.from_numpy(self._run(*arrays)[0])


Runner = Callable[..., list[np.ndarray]]
"""Runs an export on arrays given in its inputs' order; returns its outputs in order."""


def _onnxruntime_runner(path: Path, threads: int) -> Runner:
    """ONNX Runtime, with one session per input shape, its sizes fixed when it is created.

    Why: with fixed sizes ONNX Runtime plans memory once and folds the shape arithmetic of the
    TF-style "same" padding; part of the fast path's gain in bench/latency.py
    (docs/performance.md). A dynamic-size session gives slightly different float rounding, so
    every shape, even on its first use, gets its own: the same image then scores the same to
    the last bit in every call and every process. Creating a session costs tens of
    milliseconds; the whole view is capped at 640 px, so photos mostly share a few shapes. The
    ``SHAPES_KEPT`` most recently used keep their sessions."""
    import onnxruntime as ort

    def create(sizes: dict[str, int]) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.log_severity_level = 3
        # no busy-waiting between ops: measured faster on shared cores, and idle threads stay idle
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        for name, size in sizes.items():
            options.add_free_dimension_override_by_name(name, size)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    inputs = create({}).get_inputs()
    names = [node.name for node in inputs]
    sessions: OrderedDict[tuple, ort.InferenceSession] = OrderedDict()
    lock = threading.Lock()

    def session_for(arrays: tuple[np.ndarray, ...]) -> ort.InferenceSession:
        key = tuple(array.shape for array in arrays)
        with lock:
            if key in sessions:
                sessions.move_to_end(key)
                return sessions[key]
        sizes = {dim: size for node, array in zip(inputs, arrays)
                 for dim, size in zip(node.shape, array.shape) if isinstance(dim, str)}
        session = create(sizes)
        with lock:
            sessions[key] = session
            while len(sessions) > SHAPES_KEPT:
                sessions.popitem(last=False)
        return session

    return lambda *arrays: session_for(arrays).run(None, dict(zip(names, arrays)))


def _openvino_runner(path: Path, threads: int) -> Runner:
    import openvino as ov

    # f32 on purpose: on CPUs with bf16 units OpenVINO would otherwise compute in bf16
    compiled = ov.Core().compile_model(str(path), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32"})
    request, lock = compiled.create_infer_request(), threading.Lock()

    def run(*arrays: np.ndarray) -> list[np.ndarray]:
        with lock:  # one infer request: calls from several threads take turns
            results = request.infer(dict(enumerate(arrays)))
            return [np.array(results[output]) for output in compiled.outputs]

    return run


_RUNNERS = {"onnxruntime": _onnxruntime_runner, "openvino": _openvino_runner}


# ------------------------------------------------------------------ choose
def torch_backbone_for(backbone: str, tail: torch.nn.ModuleList | None = None) -> torch.nn.Module:
    """The ImageNet backbone ``backbone`` with a checkpoint's tuned tail (if any) in place."""
    from cvrkd.backbone import FrozenBackbone

    return FrozenBackbone(backbone).with_tail(tail)


def load_backbone(backend: str, backbone: str, model_dir: Path, checkpoint_sha256: str,
                  threads: int | None = None, tail: torch.nn.ModuleList | None = None
                  ) -> tuple[object, str]:
    """The backbone to score with and the backend actually used.

    ``torch`` builds ``FrozenBackbone``; a runtime name must work or raises
    ``RuntimeUnavailable``; ``auto`` takes the first installed, verified runtime and
    falls back to torch (logging why) when none is. ``tail``: the checkpoint's tuned stages.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    threads = threads or torch.get_num_threads()
    if backend == "torch":
        return torch_backbone_for(backbone, tail), "torch"
    candidates = FAST_RUNTIMES if backend == "auto" else (backend,)
    problems = []
    for runtime in candidates:
        if not installed(runtime):
            problems.append(f"{runtime} is not installed")
            continue
        try:
            export = export_backbone(model_dir, backbone, checkpoint_sha256, tail=tail)
            return RuntimeBackbone(export, runtime, threads), runtime
        except Exception as exc:  # noqa: BLE001 - auto falls back; an explicit choice re-raises
            if backend != "auto":
                raise RuntimeUnavailable(str(exc)) from exc
            problems.append(f"{runtime}: {exc}")
    if backend != "auto":
        raise RuntimeUnavailable("; ".join(problems))
    logger.warning("scoring with torch (no fast runtime: %s)", "; ".join(problems))
    return torch_backbone_for(backbone, tail), "torch"


ScoreReferences = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def load_head(backend: str, network: torch.nn.Module, model_dir: Path, checkpoint_sha256: str,
              threads: int | None = None) -> ScoreReferences:
    """``network.score_references`` on the backbone's backend: torch, or the runtime's export of
    this checkpoint's head. A head that cannot be exported or verified runs in torch (logged):
    the score is the same, only slower."""
    network = network.eval()

    @torch.inference_mode()
    def in_torch(lq: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        return network.score_references(lq, references)

    if backend not in FAST_RUNTIMES:
        return in_torch
    try:
        export = export_head(model_dir, network, checkpoint_sha256)
        return RuntimeHead(export, backend, threads or torch.get_num_threads())
    except Exception as exc:  # noqa: BLE001 - fall back to the exact torch path
        logger.warning("the student's head runs in torch (%s: %s)", backend, exc)
        return in_torch


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
