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
from cvrkd.checkpoint import load_checkpoint, save_checkpoint, untrained
from cvrkd.imageio import load_image
from cvrkd.model import ModelConfig
from cvrkd.patches import PatchConfig
from cvrkd.runtime import RuntimeBackbone, RuntimeHead, RuntimeUnavailable, export_backbone, export_head
from cvrkd.scorer import Scorer
from tests.helpers.images import photo

from tests.helpers import ROOT


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


WHOLE_VIEW = PatchConfig(num_patches=0, whole_view=True)
HEAD_READING_BRANCHES = ModelConfig(num_patches=1, global_head=16, head_reads_branches=True,
                                    calibration=(80.0, -3.0, -10.0, 12.0))


def whole_view_student(seed: int, folder):
    network, info = untrained("student", seed=seed, model_config=HEAD_READING_BRANCHES, patches=WHOLE_VIEW)
    with torch.no_grad():
        network.mix.fill_(0.7)  # both the mixers and the global head reach the score
    save_checkpoint(network, info, folder / "student")
    return folder / "student"


@pytest.fixture(scope="module")
def whole_view_bundle(tmp_path_factory):
    """Untrained, in the shipped layout: the whole view only, a global head reading the branches."""
    folder = tmp_path_factory.mktemp("whole-view-model")
    whole_view_student(3, folder)
    network, info = untrained("teacher", seed=4, model_config=HEAD_READING_BRANCHES, patches=WHOLE_VIEW)
    save_checkpoint(network, info, folder / "teacher")
    return folder


@pytest.mark.parametrize("name", runtime.FAST_RUNTIMES)
def test_the_students_head_runs_on_the_runtime_like_torch(name, whole_view_bundle, data_dir):
    if not runtime.installed(name):
        pytest.skip(f"{name} is not installed")
    cache = data_dir / "cache"
    expected = Scorer(whole_view_bundle, allow_untrained=True, cache_dir=cache, backend="torch")
    fast = Scorer(whole_view_bundle, allow_untrained=True, cache_dir=cache, backend=name)
    assert isinstance(fast.student.score_references, RuntimeHead)
    assert not isinstance(expected.student.score_references, RuntimeHead)
    for width, height in ((320, 256), (900, 700), (120, 90)):
        want, got = expected.score(photo(width, height)), fast.score(photo(width, height))
        assert [r.score for r in got.per_reference] == pytest.approx(
            [r.score for r in want.per_reference], abs=1e-3)
    export = export_head(whole_view_bundle, fast.student.network, fast.model_version)
    assert export.verified(name) and export.manifest["error_unit"] == "points"
    assert export.manifest["verified"][name]["max_error"] <= runtime.MAX_HEAD_ERROR


def test_a_swapped_student_gets_its_own_head_export(whole_view_bundle, data_dir, tmp_path):
    fast = Scorer(whole_view_bundle, allow_untrained=True, cache_dir=data_dir / "cache",
                  backend="onnxruntime")
    image = photo(400, 300)
    before = fast.score(image)
    folder = whole_view_student(11, tmp_path)
    new_network, new_info = load_checkpoint(folder, expected_role="student")
    fast.swap_student(folder)
    after = fast.score(image)
    assert after.model_version == new_info.version != before.model_version
    assert isinstance(fast.student.score_references, RuntimeHead)
    with torch.inference_mode():  # the served head is the new checkpoint's, not the old one's
        want = new_network.score_references(fast.image_features(load_image(image)),
                                            fast.gallery_features())
    assert [r.score for r in after.per_reference] == pytest.approx(
        [min(100.0, max(0.0, v)) for v in want.tolist()], abs=1e-3)
    heads = sorted(p.name for p in runtime.runtime_dir(whole_view_bundle).glob("head-*.onnx"))
    assert len(heads) == 2


def test_only_the_most_recent_head_exports_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "HEADS_KEPT", 2)
    exports = []
    for seed in (1, 2, 3):
        network, info = untrained("student", seed=seed)
        exports.append(export_head(tmp_path, network, f"checkpoint-{seed}"))
    kept = sorted(runtime.runtime_dir(tmp_path).glob("head-*"))
    assert sorted(p.name for p in kept if p.suffix in (".onnx", ".json")) == sorted(
        p.name for e in exports[1:] for p in (e.onnx_path, e.manifest_path))
    assert exports[-1].verified("onnxruntime")


def test_an_unverified_head_runs_in_torch_with_the_same_scores(whole_view_bundle, data_dir, monkeypatch):
    reference = Scorer(whole_view_bundle, allow_untrained=True, cache_dir=data_dir / "cache",
                       backend="torch")
    monkeypatch.setattr(runtime, "MAX_HEAD_ERROR", -1.0)  # no runtime can pass
    export = export_head(whole_view_bundle, reference.student.network, reference.model_version,
                         force=True)
    assert not export.verified("onnxruntime")
    try:
        fast = Scorer(whole_view_bundle, allow_untrained=True, cache_dir=data_dir / "cache",
                      backend="onnxruntime")
        assert fast.backend == "onnxruntime"  # the backbone still runs there
        assert not isinstance(fast.student.score_references, RuntimeHead)
        assert fast.score(photo()).score == pytest.approx(reference.score(photo()).score, abs=1e-3)
    finally:
        monkeypatch.undo()
        export_head(whole_view_bundle, reference.student.network, reference.model_version, force=True)


def test_export_handles_any_input_size_like_torch(export, monkeypatch):
    """Any height and width (the whole view runs at native resolution), each shape on its own
    fixed-size session, also once that session was dropped for newer shapes and made again."""
    monkeypatch.setattr(runtime, "SHAPES_KEPT", 2)
    backbone = FrozenBackbone(export.manifest["backbone"])
    fast = RuntimeBackbone(export, "onnxruntime", threads=1)
    for height, width in [(224, 224), (257, 391), (512, 333)] * 2 + [(224, 224)] * 2:
        images = torch.from_numpy(photo(width, height).copy()).permute(2, 0, 1)[None].float() / 255
        expected, got = backbone(images), fast(images)
        assert [g.shape for g in got] == [e.shape for e in expected]
        assert runtime.relative_error(expected, got) < runtime.MAX_RELATIVE_ERROR
    assert export.verified("onnxruntime")
    assert export.manifest["verified"]["onnxruntime"]["max_error"] < 1e-4
    assert export.manifest["error_unit"] == "relative"


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
        "onnxruntime": {"ok": False, "max_error": 0.5, "version": "x"}}})
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

