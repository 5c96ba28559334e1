"""Writes the awkward inputs users send, as real files, for API, CLI and app tests."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def photo(width: int = 320, height: int = 256) -> np.ndarray:
    """A natural RGB photo (scikit-image's astronaut) at the requested size."""
    return np.asarray(Image.fromarray(data.astronaut()).resize((width, height), Image.Resampling.BILINEAR))


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def good_inputs(folder: Path) -> dict[str, Path]:
    """Inputs with a defined, successful behaviour."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(photo())
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    gray16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    return {
        "small_than_patch": _save(Image.fromarray(photo(120, 90)), folder / "small.png"),
        "non_square": _save(Image.fromarray(photo(600, 240)), folder / "wide.png"),
        "very_large": _save(Image.fromarray(photo(4000, 3000)), folder / "large.jpg", quality=80),
        "grayscale": _save(rgb.convert("L"), folder / "gray.png"),
        "16bit": _save(Image.fromarray(gray16), folder / "gray16.png"),
        "alpha": _save(rgba, folder / "alpha.png"),
        "palette": _save(rgb.convert("P", palette=Image.Palette.ADAPTIVE), folder / "palette.png"),
        "cmyk": _save(rgb.convert("CMYK"), folder / "cmyk.jpg"),
        "exif_rotated": _save(rgb, folder / "exif.jpg", exif=exif.tobytes()),
    }


def bad_inputs(folder: Path) -> dict[str, Path]:
    """Inputs that must be refused with a clear message."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(photo()).save(buffer, format="PNG")
    frames = [Image.fromarray(photo(64, 64)), Image.fromarray(255 - photo(64, 64))]
    (folder / "notes.txt").write_text("this is not an image")
    (folder / "truncated.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "empty.png").write_bytes(b"")
    huge = folder / "huge.png"
    Image.new("L", (9000, 6000)).save(huge)
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    Image.fromarray(photo(20, 20)).save(folder / "tiny.png")
    return {
        "not_an_image": folder / "notes.txt",
        "truncated": folder / "truncated.png",
        "empty": folder / "empty.png",
        "huge_pixel_count": huge,
        "animated": folder / "animated.gif",
        "tiny": folder / "tiny.png",
        "missing": folder / "does-not-exist.png",
    }
