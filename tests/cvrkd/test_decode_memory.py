"""Decoding the worst allowed upload stays within +300 MB, and concurrent decodes share a pixel budget.

The reported case: a 95 KB 16-bit 7000x7000 PNG raised the app by 1.2 GB.
Memory is measured in a fresh process (``bench/decode_memory.py``), as the
peak RSS increase, never as a time.
"""
from __future__ import annotations

import struct
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

from bench.decode_memory import LIMIT_MB, measure, write_cases
from cvrkd import imageio
from cvrkd.decode_budget import BudgetTimeout, PixelBudget
from cvrkd.imageio import MAX_SIDE, TOO_MANY_PIXELS, InvalidImageError, load_image


def test_worst_allowed_16bit_png_stays_under_the_memory_limit(tmp_path):
    ramp = np.linspace(0, 65535, 7000, dtype=np.float32)
    path = tmp_path / "gray16.png"
    Image.fromarray(np.add.outer(ramp, ramp * 0).astype(np.uint16)).save(path, compress_level=1)
    assert path.stat().st_size < 2 * 2**20  # a small file that declares 49 megapixels
    result = measure(path)
    assert result["increase_mb"] < LIMIT_MB, result


@pytest.mark.slow
def test_every_worst_allowed_mode_stays_under_the_memory_limit(tmp_path):
    for name, path in write_cases(tmp_path).items():
        result = measure(path)
        assert result["increase_mb"] < LIMIT_MB, (name, result)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` and holds no pixels: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IEND", b""))


def test_a_decompression_bomb_gets_the_plain_message_not_pillows():
    with pytest.raises(InvalidImageError) as caught:
        load_image(_png_header(20000, 20000), name="bomb.png")
    assert str(caught.value) == f"bomb.png: {TOO_MANY_PIXELS}"
    assert "DOS" not in str(caught.value) and "178956970" not in str(caught.value)
    with pytest.raises(InvalidImageError, match="megapixels; the limit is 50"):
        load_image(_png_header(8000, 7000), name="big.png")


def test_the_pixel_budget_makes_a_decode_wait_and_refuses_when_it_stays_full(monkeypatch, tmp_path):
    budget = PixelBudget(1_000_000)
    held, release = threading.Event(), threading.Event()

    def hold():
        with budget.reserve(800_000):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(30)
    assert budget.in_use == 800_000
    with pytest.raises(BudgetTimeout):
        with budget.reserve(300_000, timeout_s=0.05):
            pass
    with budget.reserve(200_000, timeout_s=0.05):  # what fits goes ahead
        assert budget.in_use == 1_000_000
    release.set()
    holder.join(30)
    with budget.reserve(5_000_000, timeout_s=0.05):  # more than the whole budget: waits for all of it
        assert budget.in_use == 1_000_000
    assert budget.in_use == 0

    path = tmp_path / "photo.png"
    Image.new("RGB", (600, 400), (10, 200, 30)).save(path)
    monkeypatch.setattr(imageio, "DECODE_BUDGET", PixelBudget(100_000))
    monkeypatch.setattr(imageio, "DECODE_WAIT_S", 0.05)
    with imageio.DECODE_BUDGET.reserve(100_000):
        with pytest.raises(InvalidImageError, match="busy decoding other large images"):
            load_image(path)
    assert load_image(path).size == (600, 400)


def _reference(rgb: np.ndarray) -> np.ndarray:
    """The plain way: full size 8-bit RGB, Lanczos to MAX_SIDE."""
    height, width = rgb.shape[:2]
    scale = MAX_SIDE / max(height, width)
    size = (round(width * scale), round(height * scale))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS)).astype(np.float32)


@pytest.fixture(scope="module")
def large_photo() -> np.ndarray:
    from tests.helpers.images import photo

    return photo(4400, 1200)


def test_early_reduction_matches_a_full_size_decode(large_photo, tmp_path):
    """16-bit, palette, alpha, JPEG (decoder draft) and EXIF-rotated inputs, all reduced before conversion."""
    gray = np.asarray(Image.fromarray(large_photo).convert("L"))
    cases = {
        "gray16.png": (Image.fromarray(gray.astype(np.uint16) * 257), np.repeat(gray[..., None], 3, axis=2), 2.0),
        "palette.png": (Image.fromarray(large_photo).convert("P", palette=Image.Palette.ADAPTIVE), None, 3.0),
        "photo.jpg": (Image.fromarray(large_photo), large_photo, 4.0),
    }
    for name, (image, truth, tolerance) in cases.items():
        path = tmp_path / name
        image.save(path, quality=95) if name.endswith(".jpg") else image.save(path)
        loaded = load_image(path)
        if truth is None:
            truth = np.asarray(Image.open(path).convert("RGB"))
        assert loaded.size == (MAX_SIDE, round(1200 * MAX_SIDE / 4400)), name
        assert any(note.startswith("downscaled from 4400x1200") for note in loaded.notes), (name, loaded.notes)
        error = np.abs(loaded.pixels.astype(np.float32) - _reference(truth)).mean()
        assert error < tolerance, (name, error)

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(large_photo).save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    rotated = load_image(tmp_path / "rotated.jpg")
    assert rotated.size == (round(1200 * MAX_SIDE / 4400), MAX_SIDE)
    assert any("EXIF orientation 6" in note for note in rotated.notes)
    assert any(note.startswith("downscaled from 1200x4400") for note in rotated.notes)

    rgba = Image.fromarray(large_photo).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(tmp_path / "alpha.png")
    assert any("transparent" in note for note in load_image(tmp_path / "alpha.png").notes)
