"""Load user images into one well-defined form: 8-bit RGB, upright, still.

Every entry point (API, CLI, app) goes through :func:`load_image`, so the
behaviour for odd inputs is defined once:

* not an image / truncated / animated / tiny / huge  -> :class:`InvalidImageError`
* EXIF orientation        -> rotated upright (noted)
* 16-bit or float         -> scaled to 8 bits (noted)
* alpha / transparency    -> composited on mid-grey (noted)
* palette, grayscale, CMYK, YCbCr, LAB -> converted to RGB (noted)
* long side > ``MAX_SIDE`` -> downscaled with antialiasing (noted)

Memory stays bounded for the worst allowed file (``MAX_PIXELS``, any mode):
a JPEG is decoded at a reduced scale by the decoder itself (``Image.draft``);
other formats are reduced by an integer factor right after decoding, before
any conversion to RGB or to floating point (16-bit and palette images band by
band), and every decode first reserves its pixels in a process-wide
:class:`~cvrkd.decode_budget.PixelBudget`, so concurrent uploads wait instead
of piling up (``bench/decode_memory.py``, docs/performance.md).
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from cvrkd.decode_budget import BudgetTimeout, budget_from_env

MIN_SIDE = 32
"""Images with a side shorter than this carry too little content to judge."""
MAX_PIXELS = 50_000_000
"""Refuse decompression bombs before decoding them."""
MAX_SIDE = 2048
"""Larger images are downscaled so scoring time and memory stay bounded."""
MAX_FILE_BYTES = 64 * 1024 * 1024
TOO_MANY_PIXELS = (f"the image is too large to open safely (more than {MAX_PIXELS / 1e6:.0f} megapixels); "
                   "upload a smaller version")
"""What a decompression bomb (a small file declaring a huge image) is told, instead of Pillow's text."""
DECODE_BUDGET = budget_from_env(default_megapixels=2 * MAX_PIXELS / 1e6)
"""Decoded pixels in flight across all threads of this process (``$CVRKD_DECODE_BUDGET_MP``)."""
DECODE_WAIT_S = 120.0
"""How long a decode waits for room in the budget before the upload is refused as "busy"."""

ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


class InvalidImageError(ValueError):
    """The input cannot be scored; the message says why in plain words."""


@dataclass
class LoadedImage:
    """An upright 8-bit RGB image plus notes on what was done to get there."""

    pixels: np.ndarray  # H x W x 3 uint8
    notes: list[str] = field(default_factory=list)
    name: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


def load_image(source: ImageSource, name: str = "") -> LoadedImage:
    """Decode and normalise ``source``; raise :class:`InvalidImageError` if unusable."""
    if isinstance(source, np.ndarray):
        return _from_array(source, name or "array")
    if isinstance(source, Image.Image):
        return _from_pil(source, name or "image")
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise InvalidImageError(f"{name or 'upload'}: the file is empty")
        return _decode(io.BytesIO(bytes(source)), name or "upload")
    path = Path(source)
    label = name or path.name
    _check_file(path, label)
    return _decode(path, label)


def check_image_file(source: str | os.PathLike, name: str = "") -> str:
    """Refuse a file the way :func:`load_image` would, without decoding it; return its format (e.g. "PNG").

    Cheap enough to run on every upload, so the app can drop a file that is
    not an image before the browser tries to preview it: the header is
    checked, and the file's structure (chunk checksums for PNG) where Pillow
    can verify it without decoding.
    """
    path = Path(source)
    label = name or path.name
    _check_file(path, label)
    with _explained(label), Image.open(path) as image:
        _check_dimensions(image.size, label)
        _check_still(image, label)
        image.verify()
        return str(image.format)


def _check_file(path: Path, label: str) -> None:
    if not path.is_file():
        raise InvalidImageError(f"{label}: file not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InvalidImageError(f"{label}: file is larger than {MAX_FILE_BYTES // 2**20} MB")
    if size == 0:
        raise InvalidImageError(f"{label}: the file is empty")


@contextmanager
def _explained(label: str) -> Iterator[None]:
    """Pillow's and the decoders' errors as :class:`InvalidImageError` with a plain message."""
    try:
        yield
    except InvalidImageError:
        raise
    except Image.DecompressionBombError:
        raise InvalidImageError(f"{label}: {TOO_MANY_PIXELS}") from None
    except UnidentifiedImageError as exc:
        raise InvalidImageError(f"{label}: not an image file (format not recognised)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(f"{label}: image data is truncated or corrupt ({exc})") from exc


def _decode(file: Path | io.BytesIO, label: str) -> LoadedImage:
    """Open, check the declared size, decode within the pixel budget and reduce at once."""
    with _explained(label), Image.open(file) as image:
        _check_dimensions(image.size, label)
        _check_still(image, label)
        declared = image.size
        factor = _reduction_factor(declared)
        if image.format == "JPEG" and factor > 1:
            image.draft(None, (-(-declared[0] // factor), -(-declared[1] // factor)))
        try:
            with DECODE_BUDGET.reserve(image.size[0] * image.size[1], DECODE_WAIT_S):
                image.load()
                orientation, source_mode = _orientation(image), image.mode  # PNG keeps EXIF after the pixels
                small = _reduce(image, _reduction_factor(image.size))
                if small is not image:
                    image.close()  # free the full-size pixels before anything else is allocated
                notes: list[str] = []
                small = _upright(_fit(small), orientation, notes)
                rgb = _to_rgb(small, notes, source_mode=source_mode)
                shown = declared[::-1] if orientation in (5, 6, 7, 8) else declared
                return _finish(rgb, notes, label, shown)
        except BudgetTimeout:
            raise InvalidImageError(
                f"{label}: the server is busy decoding other large images; try again in a minute") from None


def _check_dimensions(size: tuple[int, int], label: str) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise InvalidImageError(
            f"{label}: {width}x{height} is {width * height / 1e6:.0f} megapixels; "
            f"the limit is {MAX_PIXELS / 1e6:.0f}"
        )
    if min(width, height) < MIN_SIDE:
        raise InvalidImageError(
            f"{label}: {width}x{height} is too small; both sides must be at least {MIN_SIDE} px"
        )


def _check_still(image: Image.Image, label: str) -> None:
    frames = getattr(image, "n_frames", 1)
    if getattr(image, "is_animated", False) and frames > 1:
        raise InvalidImageError(
            f"{label}: animated image with {frames} frames; upload a single still frame"
        )


def _orientation(image: Image.Image) -> int:
    return image.getexif().get(0x0112, 1) if hasattr(image, "getexif") else 1


def _reduction_factor(size: tuple[int, int]) -> int:
    """The largest integer shrink that keeps the long side at least ``MAX_SIDE``."""
    return max(1, max(size) // MAX_SIDE)


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """``image`` shrunk ``factor`` times by box averaging, without a full-size intermediate copy.

    Band by band: modes Pillow cannot reduce (16-bit, palette, bilevel,
    colour-keyed transparency) are converted per band, and Pillow's own reduce
    of an alpha image premultiplies a full-size copy, which a band avoids too.
    """
    target = _working_mode(image)
    if factor == 1:
        return image.convert(target) if target != image.mode else image
    width, height = image.size
    out = Image.new(target, (-(-width // factor), -(-height // factor)))
    rows = factor * max(1, (1 << 20) // (width * factor))  # bands of about a megapixel
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows))).convert(target)
        out.paste(band.reduce(factor), (0, top // factor))
    return out


def _fit(image: Image.Image) -> Image.Image:
    """Antialiased (Lanczos) down to ``MAX_SIDE`` in the working mode, before any 8-bit RGB copy exists."""
    width, height = image.size
    if max(width, height) <= MAX_SIDE:
        return image
    scale = MAX_SIDE / max(width, height)
    return image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS)


def _working_mode(image: Image.Image) -> str:
    """The mode an image is reduced in: its own where Pillow can reduce it and nothing is lost."""
    mode = image.mode
    if mode.startswith("I;16"):
        return "I"
    if mode == "PA":
        return "RGBA"
    if mode == "P":
        return "RGBA" if "transparency" in image.info else "RGB"
    if mode in ("RGB", "L") and "transparency" in image.info:
        return "RGBA"
    if mode == "1":
        return "L"
    return mode


_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
"""EXIF orientation -> the transpose that shows the image upright."""


def _upright(image: Image.Image, orientation: int, notes: list[str]) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    if method is None:
        return image
    notes.append(f"rotated upright from EXIF orientation {orientation}")
    return image.transpose(method)


def _from_pil(image: Image.Image, label: str) -> LoadedImage:
    """An image already in memory (no budget: its pixels exist already)."""
    _check_dimensions(image.size, label)
    _check_still(image, label)
    notes: list[str] = []
    orientation = _orientation(image)
    small = _upright(_fit(_reduce(image, _reduction_factor(image.size))), orientation, notes)
    shown = image.size[::-1] if orientation in (5, 6, 7, 8) else image.size
    return _finish(_to_rgb(small, notes, source_mode=image.mode), notes, label, shown)


def _to_rgb(image: Image.Image, notes: list[str], source_mode: str) -> np.ndarray:
    """8-bit RGB pixels of an image in its working mode, noting what ``source_mode`` needed."""
    mode = image.mode
    if mode == "I":
        array = np.asarray(image, dtype=np.float32)
        peak = 65535.0 if source_mode.startswith("I;16") or array.max() > 255 else 255.0
        notes.append("converted from 16-bit to 8-bit")
        return _gray_to_rgb(array, peak)
    if mode == "F":
        array = np.asarray(image, dtype=np.float32)
        peak = 1.0 if array.max() <= 1.0 else 255.0
        notes.append("converted from floating point to 8-bit")
        return _gray_to_rgb(array, peak)
    if source_mode in ("P", "PA"):
        notes.append("converted from a palette image")
    if mode in ("RGBA", "LA"):
        alpha = np.asarray(image.getchannel("A"))
        if alpha.min() < 255:
            notes.append("transparent areas composited on mid-grey")
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode == "CMYK":
        notes.append("converted from CMYK")
    elif mode == "L":
        notes.append("grayscale image replicated to three channels")
    elif mode != "RGB":
        notes.append(f"converted from {mode}")
    return np.asarray(image.convert("RGB"))


def _gray_to_rgb(array: np.ndarray, peak: float) -> np.ndarray:
    """Scale one channel to 8 bits in place (float32) and replicate it to three."""
    array *= 255.0 / peak
    array += 0.5
    np.clip(array, 0, 255, out=array)
    return np.repeat(array.astype(np.uint8)[..., None], 3, axis=2)


def _from_array(array: np.ndarray, label: str) -> LoadedImage:
    notes: list[str] = []
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
        notes.append("grayscale image replicated to three channels")
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InvalidImageError(f"{label}: expected an H x W x 3 array, got shape {array.shape}")
    _check_dimensions((array.shape[1], array.shape[0]), label)
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
        notes.append("converted from 16-bit to 8-bit")
    elif np.issubdtype(array.dtype, np.floating):
        scale = 255.0 if float(np.nanmax(array)) <= 1.0 else 1.0
        array = np.clip(np.nan_to_num(array) * scale + 0.5, 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.shape[2] == 4:
        return _from_pil(Image.fromarray(array, "RGBA"), label)
    return _finish(np.ascontiguousarray(array), notes, label, (array.shape[1], array.shape[0]))


def _finish(rgb: np.ndarray, notes: list[str], label: str, original_size: tuple[int, int]) -> LoadedImage:
    """Resize to at most ``MAX_SIDE`` (noting the size the user sent) and wrap up."""
    height, width = rgb.shape[:2]
    if max(height, width) > MAX_SIDE:
        scale = MAX_SIDE / max(height, width)
        new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(new_size, Image.Resampling.LANCZOS))
    if max(original_size) > MAX_SIDE:
        notes.append(f"downscaled from {original_size[0]}x{original_size[1]} to {rgb.shape[1]}x{rgb.shape[0]}")
    return LoadedImage(pixels=np.ascontiguousarray(rgb), notes=notes, name=label)
