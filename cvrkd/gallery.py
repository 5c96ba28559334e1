"""Reference galleries: folders of high-quality photos with a manifest.

``manifest.json`` lists each image's file, name, source and licence. The
embedded default gallery is exported from photos shipped inside installed
wheels (scikit-image, scikit-learn), so it works on a fresh machine.
"""
from __future__ import annotations

import hashlib
import json
from functools import cached_property
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cvrkd.imageio import LoadedImage, load_image

MANIFEST = "manifest.json"
DEFAULT_GALLERY_NAME = "wheel-photos"


@dataclass(frozen=True)
class GalleryImage:
    file: str
    name: str
    source: str
    licence: str


@dataclass
class Gallery:
    """A named set of HQ reference images of other content than the scored image."""

    root: Path
    name: str
    images: list[GalleryImage]
    description: str = ""

    @classmethod
    def load(cls, root: str | Path) -> "Gallery":
        root = Path(root)
        manifest_path = root / MANIFEST
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text())
            images = [GalleryImage(**entry) for entry in manifest["images"]]
            return cls(root, manifest.get("name", root.name), images, manifest.get("description", ""))
        files = sorted(p for p in root.iterdir()
                       if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
        if not files:
            raise FileNotFoundError(f"{root} has no {MANIFEST} and no images")
        images = [GalleryImage(p.name, p.stem, "user folder", "unknown") for p in files]
        return cls(root, root.name, images)

    @staticmethod
    def has_manifest(root: str | Path) -> bool:
        """Whether ``root`` holds a saved gallery (its manifest), not just a folder of images."""
        return (Path(root) / MANIFEST).is_file()

    def __len__(self) -> int:
        return len(self.images)

    def load_images(self) -> list[LoadedImage]:
        return [load_image(self.root / entry.file, name=entry.name) for entry in self.images]

    def fingerprint(self) -> str:
        """Hash of the image bytes and order: changes whenever the references change."""
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str:
        """Computed once: a gallery folder is never edited in place (new galleries get new folders)."""
        digest = hashlib.sha256()
        for entry in self.images:
            digest.update(entry.name.encode())
            digest.update((self.root / entry.file).read_bytes())
        return digest.hexdigest()[:16]

    def write_manifest(self) -> None:
        manifest = {"name": self.name, "description": self.description,
                    "images": [asdict(entry) for entry in self.images]}
        atomic_write_text(self.root / MANIFEST, json.dumps(manifest, indent=2))


def _wheel_photos() -> list[tuple[str, np.ndarray, str, str]]:
    import skimage.data
    from sklearn.datasets import load_sample_image

    return [
        ("astronaut", skimage.data.astronaut(), "scikit-image skimage.data.astronaut (NASA)",
         "public domain"),
        ("coffee", skimage.data.coffee(), "scikit-image skimage.data.coffee (Rachel Michetti)",
         "CC0"),
        ("chelsea", skimage.data.chelsea(), "scikit-image skimage.data.chelsea (Stefan van der Walt)",
         "CC0"),
        ("rocket", skimage.data.rocket(), "scikit-image skimage.data.rocket (SpaceX)",
         "public domain"),
        ("china", load_sample_image("china.jpg"), "scikit-learn sample image china.jpg (danielbuechele)",
         "CC BY 2.0"),
        ("flower", load_sample_image("flower.jpg"), "scikit-learn sample image flower.jpg (vultilion)",
         "CC BY 2.0"),
    ]


def build_default_gallery(root: str | Path) -> Gallery:
    """Export the wheel-shipped photos to ``root`` (once) and return the gallery."""
    root = Path(root)
    if (root / MANIFEST).is_file():
        return Gallery.load(root)
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, pixels, source, licence in _wheel_photos():
        path = root / f"{name}.png"
        with tempfile.NamedTemporaryFile(dir=root, suffix=".png", delete=False) as handle:
            Image.fromarray(pixels).save(handle, format="PNG")
        os.replace(handle.name, path)
        entries.append(GalleryImage(path.name, name, source, licence))
    gallery = Gallery(root, DEFAULT_GALLERY_NAME, entries,
                      "Photos shipped inside the scikit-image and scikit-learn wheels")
    gallery.write_manifest()
    return gallery


def create_gallery(root: str | Path, name: str, images: list[tuple[str, LoadedImage]],
                   source: str = "user upload", licence: str = "unknown") -> Gallery:
    """Save user-supplied references (already validated) as a new gallery folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, (label, loaded) in enumerate(images):
        file = f"{index:03d}.png"
        with tempfile.NamedTemporaryFile(dir=root, suffix=".png", delete=False) as handle:
            Image.fromarray(loaded.pixels).save(handle, format="PNG")
        os.replace(handle.name, root / file)
        entries.append(GalleryImage(file, label or f"reference {index + 1}", source, licence))
    gallery = Gallery(root, name, entries)
    gallery.write_manifest()
    return gallery


def atomic_write_text(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)
