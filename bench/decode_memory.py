"""Peak memory of decoding the worst allowed uploads, alone and four at a time.

Each case is a file at the largest allowed pixel count (7000x7000, just under
``MAX_PIXELS``) in one of the modes that cost the most per pixel: 16-bit
grayscale PNG (the reported 95 KB file raised the app by 1.2 GB), RGBA and RGB
PNG, a palette PNG and a JPEG. Every measurement runs in a fresh Python
process: it imports the loader, decodes a small image once (so lazy imports
and allocator pools are settled), resets the peak RSS to the current RSS
(``/proc/self/clear_refs``; without it the peak since start is used, which
can only overstate), decodes, and reports ``VmHWM - VmRSS before``.

Side by side in one run: ``load_image`` against Pillow's bare full-size decode
of the same file (``Image.open(...).load()``, the floor any full decode needs),
and four threads decoding the worst file at once under the default pixel
budget against an effectively unlimited one.

    python bench/decode_memory.py
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SIDE = 7000  # 49 megapixels: the largest square under MAX_PIXELS
LIMIT_MB = 300

CHILD = r"""
import json, sys, threading
sys.path.insert(0, sys.argv[1])
from PIL import Image
from cvrkd.imageio import load_image

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)

mode, path, threads, warm = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
load_image(warm)
with Image.open(warm) as im:
    im.load()
before = status("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False

def work():
    if mode == "load_image":
        load_image(path)
    else:
        with Image.open(path) as im:
            im.load()

workers = [threading.Thread(target=work) for _ in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
print(json.dumps({"increase_mb": (status("VmHWM") - before) / 2**20, "peak_reset": reset}))
"""


def write_cases(folder: Path, side: int = SIDE) -> dict[str, Path]:
    """The worst allowed files (cheap to compress: smooth gradients with a little texture)."""
    ramp = np.linspace(0, 1, side, dtype=np.float32)
    texture = (np.arange(side) % 7).astype(np.float32) / 7
    gray = np.add.outer(ramp, ramp * 0.5 + texture * 0.02) / 1.52
    cases: dict[str, Path] = {}
    gray16 = Image.fromarray((gray * 65535).astype(np.uint16))
    cases["16-bit gray PNG"] = _save(gray16, folder / "gray16.png", compress_level=1)
    del gray16
    eight = (gray * 255).astype(np.uint8)
    rgb = Image.merge("RGB", [Image.fromarray(eight), Image.fromarray(eight[::-1]), Image.fromarray(eight.T.copy())])
    cases["RGB JPEG"] = _save(rgb, folder / "rgb.jpg", quality=85)
    cases["RGB PNG"] = _save(rgb, folder / "rgb.png", compress_level=1)
    rgba = rgb.convert("RGBA")
    del rgb
    rgba.putalpha(Image.fromarray(eight.T.copy()))
    cases["RGBA PNG"] = _save(rgba, folder / "rgba.png", compress_level=1)
    del rgba
    cases["palette PNG"] = _save(Image.fromarray(eight).convert("P"), folder / "palette.png", compress_level=1)
    return cases


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def measure(path: Path, mode: str = "load_image", threads: int = 1, budget_mp: float | None = None,
            warm: Path | None = None) -> dict:
    """Peak RSS increase (MB) of decoding ``path`` in a fresh process."""
    if warm is None:
        warm = path.parent / "warm.png"
        if not warm.exists():
            Image.new("RGB", (64, 48), (90, 120, 150)).save(warm)
    env = dict(os.environ)
    env.pop("CVRKD_DECODE_BUDGET_MP", None)
    if budget_mp is not None:
        env["CVRKD_DECODE_BUDGET_MP"] = str(budget_mp)
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), mode, str(path), str(threads), str(warm)],
                         env=env, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=SIDE, help="side of the square test images (px)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cases = write_cases(Path(tmp), args.side)
        print(f"{args.side}x{args.side} = {args.side ** 2 / 1e6:.0f} MP; peak RSS increase in MB "
              f"(limit for load_image: +{LIMIT_MB} MB)\n")
        print("| file | size | load_image | Pillow full decode alone | ratio |")
        print("|---|---|---|---|---|")
        worst = 0.0
        for name, path in cases.items():
            ours = measure(path)
            bare = measure(path, mode="pillow")
            worst = max(worst, ours["increase_mb"])
            print(f"| {name} | {path.stat().st_size / 1024:.0f} KB | {ours['increase_mb']:.0f} | "
                  f"{bare['increase_mb']:.0f} | {ours['increase_mb'] / max(bare['increase_mb'], 1):.2f} |")
        heavy = cases["RGBA PNG"]
        budgeted = measure(heavy, threads=4)
        unbounded = measure(heavy, threads=4, budget_mp=1e6)
        print(f"\nfour threads decoding the RGBA PNG at once: default budget {budgeted['increase_mb']:.0f} MB, "
              f"unlimited budget {unbounded['increase_mb']:.0f} MB "
              f"({unbounded['increase_mb'] / max(budgeted['increase_mb'], 1):.1f}x)")
        print(f"peak reset with clear_refs: {ours['peak_reset']}")
        print(f"worst single load_image: +{worst:.0f} MB -> {'PASS' if worst < LIMIT_MB else 'FAIL'} (< {LIMIT_MB})")


if __name__ == "__main__":
    main()
