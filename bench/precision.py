"""Can the backbone run in lower precision? int8 (ONNX Runtime static quantisation) and bf16
(OpenVINO) against the fp32 torch scores, on real photos, with the CPU time of one score.

int8: the exported backbone is quantised (QDQ, per-channel int8 weights, uint8 activations,
min-max calibration on what the model's layout feeds the backbone (grid patches and/or the
whole view) of the Kodak photos, which are not scored here).
bf16: OpenVINO's inference precision hint (only faster on CPUs with bf16 units).
The bar for shipping a variant (issue 14): max abs difference <= 0.5 points and SRCC >= 0.999
against torch.

    python bench/precision.py --photos 100
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cvrkd  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from cvrkd import paths, runtime  # noqa: E402
from cvrkd.features import whole_view  # noqa: E402
from cvrkd.gallery import build_default_gallery  # noqa: E402
from cvrkd.imageio import load_image  # noqa: E402
from cvrkd.patches import crop, grid_positions  # noqa: E402
from cvrkd.scorer import Scorer  # noqa: E402


def quantise(source: Path, target: Path, calibration: list[np.ndarray]) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration)

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {"images": batch}

    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)


def with_runner(scorer: Scorer, run, label: str) -> Scorer:
    """The scorer's runtime backbone, running another model or precision."""
    scorer.backbone._run = run
    scorer.backbone.fingerprint = lambda: label  # its own gallery-feature cache entry
    return scorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--data", type=Path, default=paths.shared_data_dir())
    args = parser.parse_args()
    table = pd.read_csv(args.data / "clive_dev" / "clive_dev.csv").head(args.photos)
    photos = [load_image(args.data / "clive_dev" / name) for name in table["image"]]
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        gallery = build_default_gallery(workdir / "gallery")
        make = lambda backend: Scorer(cache_dir=workdir / "cache", gallery=gallery, backend=backend)  # noqa: E731
        variants = {"torch fp32": make("torch"), "onnxruntime fp32": make("onnxruntime")}
        export = variants["onnxruntime fp32"].backbone._export

        import onnxruntime as ort

        calibration = []  # what the model's layout feeds the backbone: grid patches, whole view
        layout = variants["torch fp32"].patches
        for path in sorted((args.data / "kodak24").glob("*.png")):
            pixels = load_image(path).pixels
            if layout.num_patches:
                positions = grid_positions(*pixels.shape[:2], layout)
                calibration.append(crop(pixels, positions, layout.size).numpy())
            if layout.whole_view:
                view, _ = whole_view(pixels)
                calibration.append(np.ascontiguousarray(view.transpose(2, 0, 1)[None], dtype=np.float32) / 255)
        quantise(export.onnx_path, workdir / "int8.onnx", calibration)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.log_severity_level = 2, 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(workdir / "int8.onnx"), options,
                                       providers=["CPUExecutionProvider"])
        variants["onnxruntime int8"] = with_runner(
            make("onnxruntime"), lambda x: session.run(None, {"images": x}), "int8")
        if runtime.installed("openvino"):
            import openvino as ov

            compiled = ov.Core().compile_model(str(export.onnx_path), "CPU", {
                "INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": "bf16"})
            request = compiled.create_infer_request()
            variants["openvino bf16"] = with_runner(
                make("openvino"),
                lambda x: [np.array(request.infer({0: x})[o]) for o in compiled.outputs], "bf16")
        scores = {name: np.array([s.score(p).score for p in photos]) for name, s in variants.items()}
        cpu = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, scorer in variants.items():
                start = time.process_time()
                scorer.score(photos[0])
                cpu[name].append(time.process_time() - start)
    base = scores["torch fp32"]
    print(f"{len(photos)} clive_dev photos; bar: max abs diff <= 0.5, SRCC >= 0.999\n")
    print("| backbone | max abs diff (points) | mean abs diff | SRCC vs torch | median CPU per score (s) | passes |")
    print("|---|---|---|---|---|---|")
    for name, values in scores.items():
        diff = np.abs(values - base)
        srcc = spearmanr(values, base).statistic
        ok = diff.max() <= 0.5 and srcc >= 0.999
        print(f"| {name} | {diff.max():.3f} | {diff.mean():.3f} | {srcc:.5f} | "
              f"{statistics.median(cpu[name]):.3f} | {'yes' if ok else 'no'} |")


if __name__ == "__main__":
    main()
