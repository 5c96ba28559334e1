"""Real image folders and datasets for campaign tests: versions of a few photos, plus junk."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

PHOTOS = {"cat": data.chelsea, "coffee": data.coffee, "astronaut": data.astronaut}
QUALITIES = {"q90": 90, "q30": 30, "q8": 8}


def _photo(name: str, size: tuple[int, int] = (192, 144)) -> Image.Image:
    return Image.fromarray(PHOTOS[name]()).resize(size, Image.Resampling.BILINEAR)


def jpeg_versions(folder: Path, photos: tuple[str, ...] = ("cat", "coffee"), seed_offset: int = 0) -> list[Path]:
    """``<quality>/<photo>.jpg``: the same photo at several JPEG qualities (content = file name)."""
    paths = []
    for quality_name, quality in QUALITIES.items():
        (folder / quality_name).mkdir(parents=True, exist_ok=True)
        for name in photos:
            image = _photo(name)
            if seed_offset:  # a different picture per folder set, so two campaigns share no image
                pixels = np.asarray(image).astype(int)
                image = Image.fromarray(np.clip(pixels + seed_offset, 0, 255).astype(np.uint8))
            path = folder / quality_name / f"{name}.jpg"
            image.save(path, quality=quality)
            paths.append(path)
    return paths


def junk(folder: Path) -> dict[str, Path]:
    """Files a careless folder holds: text, a truncated PNG, an empty file, an animation, a tiny image."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    _photo("cat").save(buffer, format="PNG")
    (folder / "notes.txt").write_text("not an image")
    (folder / "truncated.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    frames = [_photo("cat", (64, 64)), _photo("coffee", (64, 64))]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    _photo("cat", (16, 16)).save(folder / "tiny.png")
    return {p.name: p for p in folder.iterdir()}


def image_dataset(folder: Path, with_image_column: bool = True) -> Path:
    """A local Hugging Face dataset folder (``save_to_disk``) of four photos with a licence column."""
    import datasets

    images = [_photo(name) for name in ("cat", "coffee", "astronaut")] + [_photo("cat", (160, 120))]
    rows = {"licence": ["CC0-1.0"] * 4, "caption": ["a", "b", "c", "d"]}
    if with_image_column:
        rows["image"] = images
        types = datasets.Features({"licence": datasets.Value("string"), "caption": datasets.Value("string"),
                                   "image": datasets.Image()})
    else:
        types = None
    datasets.Dataset.from_dict(rows, features=types).save_to_disk(str(folder))
    return folder


def four_images(folder: Path, gold: bool = False) -> Path:
    """Two photos at two JPEG qualities (six pairs with ``pairs=any``); with ``gold``, a ``metadata.csv`` marks
    the good versions ``high`` and the bad ones ``low``."""
    paths = jpeg_versions(folder)
    for path in paths:
        if path.parent.name == "q8":
            path.unlink()
    (folder / "q8").rmdir()
    if gold:
        rows = [f"{quality}/{name}.jpg,{'high' if quality == 'q90' else 'low'}"
                for quality in ("q90", "q30") for name in ("cat", "coffee")]
        (folder / "metadata.csv").write_text("file_name,gold\n" + "\n".join(rows) + "\n")
    return folder
