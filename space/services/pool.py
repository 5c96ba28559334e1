"""The rating pool: the images people compare on the Rate tab.

Built once, on first start, from the reference gallery's photos plus seeded
distorted versions of each (``cvrkd.distortions``), so pairs have a known
expected order (gold pairs: pristine against the strongest level). Uploads
join only with their uploader's consent. Every image is stored as PNG and
registered in the annotation store under its content hash, with its source and
licence. Images that may be shown lie under ``<data>/pool/images/`` (the only
pool folder the app serves); a contributed photo waits under
``<data>/pool/held/`` until moderation releases it there or removes it.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from annotations.schema import image_id_for
from annotations.shards import fsync_dir
from annotations.store import AnnotationStore
from cvrkd import Gallery, LoadedImage, distort
from space.services.files import png_bytes, write_atomic

MANIFEST = "pool.json"
SHOWN, HELD = "images", "held"
"""Folders under the pool's root: images that may be served, and contributions waiting for moderation."""
UPLOAD_LICENCE = "CC BY 4.0, granted by the uploader"
UPLOAD_MAX_SIDE = 1024
"""Uploads are shown to raters next to ~500 px pool photos; larger ones are shrunk to this."""


@dataclass(frozen=True)
class PoolSpec:
    """Which distorted versions of each photo the pool starts with."""

    distortions: tuple[str, ...] = ("gaussian_blur", "jpeg", "white_noise", "contrast_change")
    levels: tuple[int, ...] = (1, 3, 5)
    seed: int = 0


@dataclass(frozen=True)
class PoolImage:
    """One image in the pool; ``content`` groups the versions of one photo."""

    image_id: str
    file: str
    title: str
    origin: str  # "gallery", "distortion:jpeg:5" or "upload"
    licence: str
    content: str
    distortion: str | None = None
    level: int | None = None
    reference_id: str | None = None


class RatingPool:
    """The pool's images on disk, their manifest and their store registrations."""

    def __init__(self, root: Path, store: AnnotationStore, images: list[PoolImage]) -> None:
        self.root = Path(root)
        self.store = store
        self._images = {image.image_id: image for image in images}
        self._lock = threading.Lock()
        self._held = {path.stem for path in (self.root / HELD).glob("*.png")}
        self.version = 0
        """Grows whenever an image joins, so samplers know to rebuild."""

    @classmethod
    def open(cls, root: Path, store: AnnotationStore, gallery: Gallery, spec: PoolSpec) -> "RatingPool":
        """Load the pool, building it from ``gallery`` the first time."""
        root = Path(root)
        manifest = root / MANIFEST
        if manifest.is_file():
            images = [PoolImage(**entry) for entry in json.loads(manifest.read_text())["images"]]
        else:
            images = _build(root, gallery, spec)
            _write_manifest(root, images)
        pool = cls(root, store, images)
        for image in images:
            pool._register(image)
        return pool

    # ----------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, image_id: str) -> bool:
        return image_id in self._images

    @property
    def ids(self) -> list[str]:
        return list(self._images)

    def get(self, image_id: str) -> PoolImage:
        return self._images[image_id]

    def path(self, image_id: str) -> Path:
        """Where the image lies: the served folder, or the held one while it waits for moderation."""
        return self.root / (HELD if image_id in self._held else SHOWN) / self._images[image_id].file

    def content_of(self) -> dict[str, str]:
        return {image.image_id: image.content for image in self._images.values()}

    def gold_pairs(self) -> list[tuple[str, str]]:
        """(better, worse): each pristine photo against its strongest distortions."""
        strongest = max((i.level for i in self._images.values() if i.level is not None), default=None)
        return [(image.reference_id, image.image_id) for image in self._images.values()
                if image.level is not None and image.level == strongest and image.reference_id in self._images]

    # ----------------------------------------------------------------- writing
    def add_upload(self, image: LoadedImage) -> PoolImage:
        """Add a consented upload (already validated) to the held folder; the same pixels again are a no-op."""
        pixels = _shrink(image.pixels, UPLOAD_MAX_SIDE)
        data = png_bytes(pixels)  # re-encoded: no EXIF or other metadata of the upload survives
        image_id = image_id_for(data)
        with self._lock:
            if image_id in self._images:
                return self._images[image_id]
            entry = PoolImage(image_id, f"{image_id}.png", "uploaded photo", "upload",
                              UPLOAD_LICENCE, content=image_id)
            write_atomic(self.root / HELD / entry.file, data)
            self._held.add(image_id)
            self._register(entry)
            self._images = {**self._images, image_id: entry}  # readers iterate the old dict undisturbed
            _write_manifest(self.root, list(self._images.values()))
            self.version += 1
        return entry

    def hold(self, image_id: str) -> None:
        """Move an upload out of the served folder (an upload stored before moderation held files)."""
        with self._lock:
            self._move(image_id, SHOWN, HELD)
            self._held.add(image_id)

    def release(self, image_id: str) -> None:
        """Move an approved upload into the served folder (one rename: it is served whole or not at all)."""
        with self._lock:
            self._move(image_id, HELD, SHOWN)
            self._held.discard(image_id)

    def remove(self, image_id: str) -> None:
        """Delete a rejected upload: its file first, then its manifest entry (a crash between leaves an
        entry without a file, never served; the moderation queue removes it again at the next start)."""
        with self._lock:
            entry = self._images.get(image_id)
            if entry is None or entry.origin != "upload":
                return
            for path in (self.root / HELD / entry.file, self.root / SHOWN / entry.file):
                if path.is_file():
                    path.unlink()
                    fsync_dir(path.parent)
            self._held.discard(image_id)
            self._images = {key: value for key, value in self._images.items() if key != image_id}
            _write_manifest(self.root, list(self._images.values()))
            self.version += 1

    def _move(self, image_id: str, source: str, target: str) -> None:
        file = self._images[image_id].file
        if not (self.root / source / file).is_file():
            return  # already there (a restart after a move)
        (self.root / target).mkdir(parents=True, exist_ok=True)
        os.replace(self.root / source / file, self.root / target / file)
        fsync_dir(self.root / target)

    def _register(self, image: PoolImage) -> None:
        if image.origin == "upload":
            self.store.register_image(image.image_id, "upload", image.licence, consent=True)
        elif image.distortion is not None:
            self.store.register_image(image.image_id, "distortion", image.licence,
                                      distortion=image.distortion, level=image.level,
                                      reference_id=image.reference_id)
        else:
            self.store.register_image(image.image_id, "gallery", image.licence)


def _build(root: Path, gallery: Gallery, spec: PoolSpec) -> list[PoolImage]:
    images: list[PoolImage] = []
    for index, (entry, loaded) in enumerate(zip(gallery.images, gallery.load_images())):
        data = png_bytes(loaded.pixels)
        pristine = PoolImage(image_id_for(data), "", entry.name, "gallery", entry.licence, entry.name)
        pristine = _saved(root, pristine, data)
        images.append(pristine)
        for name in spec.distortions:
            for level in spec.levels:
                data = png_bytes(distort(loaded.pixels, name, level, seed=spec.seed + index))
                version = PoolImage(image_id_for(data), "", f"{entry.name} · {name} level {level}",
                                    f"distortion:{name}:{level}", entry.licence, entry.name,
                                    distortion=name, level=level, reference_id=pristine.image_id)
                images.append(_saved(root, version, data))
    return images


def _saved(root: Path, image: PoolImage, data: bytes) -> PoolImage:
    file = f"{image.image_id}.png"
    write_atomic(root / "images" / file, data)
    return PoolImage(**{**asdict(image), "file": file})


def _shrink(pixels: np.ndarray, max_side: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    if max(height, width) <= max_side:
        return pixels
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))


def _write_manifest(root: Path, images: list[PoolImage]) -> None:
    text = json.dumps({"images": [asdict(image) for image in images]}, indent=1)
    write_atomic(root / MANIFEST, text.encode())
