"""The fast backbone runtimes: exported once, verified against torch, cached by checkpoint,
and chosen by ``auto`` only when they work."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

from cvrkd import runtime
from cvrkd.backbone import FrozenBackbone
from cvrkd.runtime import RuntimeBackbone, RuntimeUnavailable, export_backbone
from cvrkd.scorer import Scorer
from image_factory import photo

from conftest import ROOT


@pytest.fixture(scope="module")
def torch_scorer(untrained_bundle, data_dir):
    return Scorer(untrained_bundle, allow_untrained=True, cache_dir=data_dir / "cache",
                  backend="torch")


@pytest.fixture(scope="module")
def export(untrained_bundle, torch_scorer):
    return export_backbone(untrained_bundle, torch_scorer.student.info.backbone,
                           torch_scorer.model_version)


@pytest.mark.parametrize("name", runtime.FAST_RUNTIMES)
def test_runtime_scores_match_torch(name, untrained_bundle, data_dir, torch_scorer):
    if not runtime.installed(name):
        pytest.skip(f"{name} is not installed")
    fast = Scorer(untrained_bundle, allow_untrained=True, cache_dir=data_dir / "cache", backend=name)
    assert fast.backend == name and isinstance(fast.backbone, RuntimeBackbone)
    for width, height in ((320, 256), (600, 240), (120, 90)):
        expected, got = torch_scorer.score(photo(width, height)), fast.score(photo(width, height))
        assert got.backend == name and expected.backend == "torch"
        assert got.score == pytest.approx(expected.score, abs=1e-3)
        assert got.spread == pytest.approx(expected.spread, abs=1e-3)


def test_export_handles_any_input_size_like_torch(export):
    """Dynamic height and width: a future whole-image view at native resolution must work."""
    backbone = FrozenBackbone(export.manifest["backbone"])
    fast = RuntimeBackbone(export, "onnxruntime", threads=1)
    for height, width in ((224, 224), (257, 391), (512, 333)):
        images = torch.from_numpy(photo(width, height).copy()).permute(2, 0, 1)[None].float() / 255
        expected, got = backbone(images), fast(images)
        assert [g.shape for g in got] == [e.shape for e in expected]
        assert runtime.relative_error(expected, got) < runtime.MAX_RELATIVE_ERROR
    assert export.verified("onnxruntime")
    assert export.manifest["verified"]["onnxruntime"]["max_relative_error"] < 1e-4


def test_export_is_cached_and_rebuilt_when_the_checkpoint_or_file_changes(export, untrained_bundle):
    stamp = export.onnx_path.stat().st_mtime_ns
    again = export_backbone(untrained_bundle, export.manifest["backbone"],
                            export.manifest["checkpoint_sha256"])
    assert again.onnx_path == export.onnx_path and again.onnx_path.stat().st_mtime_ns == stamp
    other = runtime.export_path(untrained_bundle, "lite0", "another-checkpoint-sha")
    assert other != export.onnx_path and other.parent == export.onnx_path.parent

    with open(export.onnx_path, "ab") as handle:  # a damaged cache file is never used
        handle.write(b"junk")
    repaired = export_backbone(untrained_bundle, export.manifest["backbone"],
                               export.manifest["checkpoint_sha256"])
    assert repaired.manifest["onnx_sha256"] == runtime._sha256(repaired.onnx_path)
    assert repaired.verified("onnxruntime")


def test_auto_prefers_a_runtime_and_falls_back_to_torch(untrained_bundle, data_dir, monkeypatch):
    auto = Scorer(untrained_bundle, allow_untrained=True, cache_dir=data_dir / "cache")
    assert auto.backend == runtime.FAST_RUNTIMES[0]
    monkeypatch.setattr(runtime, "installed", lambda name: False)
    fallback = Scorer(untrained_bundle, allow_untrained=True, cache_dir=data_dir / "cache")
    assert fallback.backend == "torch" and fallback.score(photo()).backend == "torch"
    with pytest.raises(RuntimeUnavailable, match="not installed"):
        Scorer(untrained_bundle, allow_untrained=True, backend="onnxruntime")


def test_unverified_runtime_is_refused(export):
    broken = runtime.Export(export.onnx_path, {**export.manifest, "verified": {
        "onnxruntime": {"ok": False, "max_relative_error": 0.5, "version": "x"}}})
    with pytest.raises(RuntimeUnavailable, match="did not reproduce"):
        RuntimeBackbone(broken, "onnxruntime", threads=1)


@pytest.mark.slow  # three CLI processes; the in-process tests cover the same paths
def test_cli_export_and_backend_choice(untrained_bundle, data_dir, tmp_path):
    env = {**os.environ, "CVRKD_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-m", "cvrkd", "export-runtime", "--model",
                           str(untrained_bundle)], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)
    assert "onnxruntime" in done.stdout and "verified" in done.stdout
    path = tmp_path / "x.png"
    Image.fromarray(photo()).save(path)
    backends = {}
    for backend in ("torch", "onnxruntime"):
        done = subprocess.run([sys.executable, "-m", "cvrkd", "score", str(path), "--json",
                               "--allow-untrained", "--model", str(untrained_bundle),
                               "--backend", backend], cwd=ROOT, env=env, capture_output=True,
                              text=True, check=True)
        backends[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    assert {b: r["backend"] for b, r in backends.items()} == {"torch": "torch",
                                                              "onnxruntime": "onnxruntime"}
    assert backends["torch"]["score"] == pytest.approx(backends["onnxruntime"]["score"], abs=1e-3)

