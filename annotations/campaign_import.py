"""Bringing a campaign's images in: from a folder (recursive) or a Hugging Face dataset.

Every candidate file is checked with Pillow; those that are not usable images
(not an image, truncated, animated, too small, too many pixels, a duplicate)
are skipped with the reason, the rest are written to the campaign's
``images/`` folder. What people are shown is kept as it came when it is a
JPEG, PNG or WebP of display size without metadata, so compression artefacts
under study stay intact; larger or other images are shrunk to
``DISPLAY_MAX_SIDE``, and files carrying EXIF (GPS, artist...), XMP, IPTC,
comments or text chunks are re-encoded without it, as lossless PNG
(``annotations.metadata``, as for contributed photos). The image id is the
hash of the stored file, i.e. of exactly what raters judged.

A folder may carry ``metadata.csv`` or ``metadata.jsonl`` (the Hub's
imagefolder convention: a ``file_name`` column relative to the folder) with
optional ``licence``/``license``, ``source``, ``content`` and ``gold``
(``high``/``low``) columns; a dataset may have the same columns.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from annotations.metadata import has_metadata, png_without_metadata
from annotations.schema import image_id_for

DISPLAY_MAX_SIDE = 1024
MIN_SIDE = 32
MAX_PIXELS = 50_000_000
MAX_FILE_BYTES = 50 * 1024 * 1024
KEPT_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
CONTENT_FROM = ("stem", "folder", "none")
METADATA_FILES = ("metadata.csv", "metadata.jsonl")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")

Progress = Callable[[int, int, str], None]


class CampaignError(ValueError):
    """A campaign request that cannot be carried out; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Skipped:
    """A file that was not imported, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class ImportedImage:
    image_id: str
    file: str
    name: str
    source: str
    licence: str
    content: str
    gold: str | None
    width: int
    height: int


@dataclass(frozen=True)
class Imported:
    source: str
    images: tuple[ImportedImage, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True)
class _Candidate:
    name: str
    read: Callable[[], bytes]
    source: str
    meta: dict[str, Any]
    file_name: str = ""
    folder: str = ""


class _Unusable(Exception):
    """This file is skipped; the message is the reason."""


def import_images(spec: str | Path, out_dir: Path, licence: str, content_from: str = "stem",
                  progress: Progress | None = None) -> Imported:
    """Check and copy every usable image of a folder or dataset into ``out_dir``."""
    if content_from not in CONTENT_FROM:
        raise CampaignError(f"content must come from one of {', '.join(CONTENT_FROM)}; got {content_from!r}")
    source, candidates, skipped = _candidates(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    images: list[ImportedImage] = []
    seen: dict[str, str] = {}
    for index, candidate in enumerate(candidates):
        if progress:
            progress(index, len(candidates), candidate.name)
        try:
            data, ext, (width, height) = _display_file(candidate.read())
            image_id = image_id_for(data)
            if image_id in seen:
                raise _Unusable(f"the same picture as {seen[image_id]}")
            gold = _gold(candidate.meta.get("gold"))
        except _Unusable as exc:
            skipped.append(Skipped(candidate.name, str(exc)))
            continue
        seen[image_id] = candidate.name
        (out_dir / f"{image_id}{ext}").write_bytes(data)
        images.append(ImportedImage(
            image_id=image_id, file=f"{image_id}{ext}", name=candidate.name,
            source=str(candidate.meta.get("source") or candidate.source),
            licence=str(_licence(candidate.meta) or licence), content=_content(candidate, content_from, image_id),
            gold=gold, width=width, height=height))
    if progress:
        progress(len(candidates), len(candidates), "done")
    return Imported(source, tuple(images), tuple(skipped))


# ------------------------------------------------------------------ candidates
def _candidates(spec: str | Path) -> tuple[str, list[_Candidate], list[Skipped]]:
    path = Path(spec)
    if path.is_dir():
        if is_dataset_folder(path):
            return _dataset_candidates(str(path), local=path)
        return _folder_candidates(path)
    if path.exists():
        raise CampaignError(f"{spec} is a file; give a folder of images or a dataset")
    if _HUB_ID.fullmatch(str(spec)):
        return _dataset_candidates(str(spec), local=None)
    raise CampaignError(f"no folder or dataset found at {spec}")


def is_dataset_folder(path: Path) -> bool:
    """A saved dataset (``save_to_disk``), data files of a dataset, or a card declaring configs."""
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        return True
    if any(path.rglob("*.parquet")) or any(path.rglob("*.arrow")):
        return True
    card = path / "README.md"
    if card.is_file():
        head = card.read_text(encoding="utf-8", errors="replace")[:20_000]
        return head.startswith("---") and ("configs:" in head or "dataset_info:" in head)
    return False


def _folder_candidates(root: Path) -> tuple[str, list[_Candidate], list[Skipped]]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise CampaignError(f"the folder {root} has no files")
    metadata = _metadata(root)
    candidates = []
    for path in files:
        name = path.relative_to(root).as_posix()
        if name in METADATA_FILES:
            continue
        candidates.append(_Candidate(name, path.read_bytes if path.stat().st_size <= MAX_FILE_BYTES
                                     else _too_big, f"folder:{name}", metadata.get(name, {}),
                                     path.name, path.parent.relative_to(root).as_posix()))
    return f"folder {root.name}", candidates, []


def _too_big() -> bytes:
    raise _Unusable(f"larger than {MAX_FILE_BYTES // 2**20} MB")


def _metadata(root: Path) -> dict[str, dict[str, Any]]:
    """``file_name`` -> the row's other columns, from the folder's metadata file if it has one."""
    import pandas as pd

    for name in METADATA_FILES:
        path = root / name
        if not path.is_file():
            continue
        try:
            table = pd.read_csv(path, dtype=str) if name.endswith(".csv") else pd.read_json(path, lines=True, dtype=str)
        except ValueError as exc:
            raise CampaignError(f"{name} could not be read: {exc}") from None
        if "file_name" not in table:
            raise CampaignError(f"{name} needs a file_name column (found: {', '.join(map(str, table.columns))})")
        table = table.astype(object).where(table.notna(), None)
        return {str(row.pop("file_name")): row for row in table.to_dict(orient="records")}
    return {}


def _dataset_candidates(spec: str, local: Path | None) -> tuple[str, list[_Candidate], list[Skipped]]:
    import datasets

    try:
        if local is not None and ((local / "state.json").is_file() or (local / "dataset_dict.json").is_file()):
            loaded = datasets.load_from_disk(str(local))
        else:
            loaded = datasets.load_dataset(spec)
    except Exception as exc:  # the datasets library raises many kinds; all mean "cannot use this"
        where = "folder" if local is not None else "Hub repo (needs a network connection)"
        raise CampaignError(f"could not load the dataset {spec} ({where}): {type(exc).__name__}: {exc}") from None
    split = "train"
    if isinstance(loaded, datasets.DatasetDict):
        split = "train" if "train" in loaded else next(iter(loaded))
        loaded = loaded[split]
    columns = [name for name, feature in loaded.features.items() if isinstance(feature, datasets.Image)]
    if not columns:
        raise CampaignError(f"the dataset {spec} has no image column (columns: {', '.join(loaded.column_names)}); "
                            "a campaign needs one of type datasets.Image")
    column = columns[0]
    table = loaded.cast_column(column, datasets.Image(decode=False))
    default_licence = (loaded.info.license or "").strip() if loaded.info else ""
    label = f"dataset {local.name if local is not None else spec}"
    candidates = []
    for index, row in enumerate(_rows(table)):
        cell = row.pop(column) or {}
        name = Path(cell.get("path") or "").name or f"{split}[{index}]"
        meta = {key: (None if value is None else str(value)) for key, value in row.items()}
        if default_licence and not _licence(meta):
            meta["licence"] = default_licence
        candidates.append(_Candidate(f"{split}[{index}] {name}" if cell.get("path") else name,
                                     _cell_reader(cell), f"{label} {split}[{index}]", meta,
                                     Path(cell.get("path") or "").name))
    return label, candidates, []


def _rows(table: Any) -> Iterator[dict[str, Any]]:
    for row in table:
        yield dict(row)


def _cell_reader(cell: dict[str, Any]) -> Callable[[], bytes]:
    def read() -> bytes:
        if cell.get("bytes"):
            return bytes(cell["bytes"])
        if cell.get("path") and Path(cell["path"]).is_file():
            return Path(cell["path"]).read_bytes()
        raise _Unusable("the image cell holds neither bytes nor a readable file")
    return read


# ------------------------------------------------------------------ checking
def _display_file(data: bytes) -> tuple[bytes, str, tuple[int, int]]:
    """(bytes to store, extension, size): the file itself when a browser shows it at display size."""
    if not data:
        raise _Unusable("empty file")
    if len(data) > MAX_FILE_BYTES:
        raise _Unusable(f"larger than {MAX_FILE_BYTES // 2**20} MB")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise _Unusable("not an image (unrecognised format)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise _Unusable(f"unreadable image: {exc}") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _Unusable(f"{width}x{height} is more than {MAX_PIXELS // 1_000_000} megapixels")
    if min(width, height) < MIN_SIDE:
        raise _Unusable(f"{width}x{height} is too small (at least {MIN_SIDE} px a side)")
    if getattr(image, "is_animated", False):
        raise _Unusable("animated image (a single frame is needed)")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise _Unusable(f"unreadable image (truncated or corrupt): {exc}") from None
    if (image.format in KEPT_FORMATS and max(width, height) <= DISPLAY_MAX_SIDE and image.mode in ("RGB", "L")
            and not has_metadata(image)):
        return data, KEPT_FORMATS[image.format], (width, height)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    image = image.convert("RGB")
    image.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE), Image.Resampling.LANCZOS)
    return png_without_metadata(image), ".png", image.size


def _licence(meta: dict[str, Any]) -> str | None:
    value = meta.get("licence") or meta.get("license")
    return str(value).strip() if value and str(value).strip() else None


def _gold(value: Any) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip().lower()
    if text not in ("high", "low"):
        raise _Unusable(f"gold must be 'high' or 'low', got {value!r}")
    return text


def _content(candidate: _Candidate, content_from: str, image_id: str) -> str:
    """Which images are versions of one photo (same-content pairs are drawn among them)."""
    given = candidate.meta.get("content")
    if given:
        return str(given)
    if content_from == "stem" and Path(candidate.file_name).stem:
        return Path(candidate.file_name).stem
    if content_from == "folder" and candidate.folder:
        return candidate.folder
    return image_id
