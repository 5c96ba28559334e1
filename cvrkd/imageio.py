"""Load user images into one well-defined form: 8-bit RGB, upright, still.

Every entry point (API, CLI, app) goes through :func:`load_image`, so the
behaviour for odd inputs is defined once:

* not an image / truncated / animated / tiny / huge  -> :class:`InvalidImageError`
* EXIF orientation        -> rotated upright (noted)
* 16-bit or float         -> scaled to 8 bits (noted)
* alpha / transparency    -> composited on mid-grey (noted)
* palette, grayscale, CMYK, YCbCr, LAB -> converted to RGB (noted)
* long side > ``MAX_SIDE`` -> downscaled with antialiasing (noted)
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 32
"""Images with a side shorter than this carry too little content to judge."""
MAX_PIXELS = 50_000_000
"""Refuse decompression bombs before decoding them."""
MAX_SIDE = 2048
"""Larger images are downscaled so scoring time and memory stay bounded."""
MAX_FILE_BYTES = 64 * 1024 * 1024

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
        return _from_bytes(bytes(source), name or "upload")
    path = Path(source)
    label = name or path.name
    if not path.is_file():
        raise InvalidImageError(f"{label}: file not found")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidImageError(f"{label}: file is larger than {MAX_FILE_BYTES // 2**20} MB")
    return _from_bytes(path.read_bytes(), label)


def _from_bytes(data: bytes, label: str) -> LoadedImage:
    if not data:
        raise InvalidImageError(f"{label}: the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            _check_dimensions(probe.size, label)
            image = probe
            image.load()
            return _from_pil(image, label)
    except InvalidImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"{label}: image is too large ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImageError(f"{label}: not an image file (format not recognised)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(f"{label}: image data is truncated or corrupt ({exc})") from exc


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


def _from_pil(image: Image.Image, label: str) -> LoadedImage:
    _check_dimensions(image.size, label)
    frames = getattr(image, "n_frames", 1)
    if getattr(image, "is_animated", False) and frames > 1:
        raise InvalidImageError(
            f"{label}: animated image with {frames} frames; upload a single still frame"
        )
    notes: list[str] = []
    exif_orientation = image.getexif().get(0x0112, 1) if hasattr(image, "getexif") else 1
    if exif_orientation not in (0, 1):
        image = ImageOps.exif_transpose(image)
        notes.append(f"rotated upright from EXIF orientation {exif_orientation}")
    rgb = _to_rgb(image, notes)
    return _finish(rgb, notes, label)


def _to_rgb(image: Image.Image, notes: list[str]) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 or mode.startswith("I;16") else 255.0
        notes.append("converted from 16-bit to 8-bit")
        gray = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        peak = 1.0 if array.max() <= 1.0 else 255.0
        notes.append("converted from floating point to 8-bit")
        gray = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        notes.append("converted from a palette image")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA") or (mode in ("RGB", "L") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        if alpha.min() < 255:
            notes.append("transparent areas composited on mid-grey")
        background = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode == "CMYK":
        notes.append("converted from CMYK")
    elif mode in ("L", "1"):
        notes.append("grayscale image replicated to three channels")
    elif mode != "RGB":
        notes.append(f"converted from {mode}")
    return np.asarray(image.convert("RGB"))


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
    return _finish(np.ascontiguousarray(array), notes, label)


def _finish(rgb: np.ndarray, notes: list[str], label: str) -> LoadedImage:
    height, width = rgb.shape[:2]
    if max(height, width) > MAX_SIDE:
        scale = MAX_SIDE / max(height, width)
        new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(new_size, Image.Resampling.LANCZOS))
        notes.append(f"downscaled from {width}x{height} to {new_size[0]}x{new_size[1]}")
    return LoadedImage(pixels=np.ascontiguousarray(rgb), notes=notes, name=label)
