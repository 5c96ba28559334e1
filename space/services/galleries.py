"""Reference galleries the app offers: the built-in one, operator-installed ones, session ones.

Operators add a gallery by putting a folder with a ``manifest.json`` (see
``cvrkd.gallery``) under ``<data>/galleries/``. A user's own gallery lives
for their session only, under ``<data>/sessions/``, and is deleted with it.
"""
from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Sequence

from cvrkd import Gallery, InvalidImageError, create_gallery, load_image

logger = logging.getLogger(__name__)

MAX_SESSION_IMAGES = 12


class UnknownGallery(KeyError):
    """No installed gallery, and none of this session's, has the name asked for; nothing was scored."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class GalleryRegistry:
    """Looks galleries up by name; ``default`` is always first."""

    def __init__(self, root: Path, default: Gallery, sessions_root: Path) -> None:
        self.root = Path(root)
        self.default = default
        self.sessions_root = Path(sessions_root)

    def names(self) -> list[str]:
        names = [self.default.name]
        for folder in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if folder.resolve() != self.default.root.resolve() and Gallery.has_manifest(folder):
                try:
                    names.append(Gallery.load(folder).name)
                except (ValueError, KeyError, TypeError, OSError) as exc:
                    logger.warning("skipping gallery %s: %s", folder, exc)
        return list(dict.fromkeys(names))

    def get(self, name: str | None) -> Gallery:
        """The installed gallery called ``name`` (the default for an empty name)."""
        if not name or name == self.default.name:
            return self.default
        for folder in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if Gallery.has_manifest(folder):
                gallery = Gallery.load(folder)
                if gallery.name == name:
                    return gallery
        raise UnknownGallery(f"unknown gallery {name!r}; choose one of {', '.join(self.names())}")

    def resolve(self, name: str | None, session: dict[str, str] | None = None) -> Gallery:
        """One of this session's own galleries (``session``: name -> folder) by name, else an installed one."""
        if session and name in session:
            try:
                return Gallery.load(session[name])
            except FileNotFoundError:
                raise UnknownGallery(f"the gallery {name!r} of this session is gone; build it again") from None
        return self.get(name)

    def create_session_gallery(self, files: Sequence[str | Path], name: str = "") -> Gallery:
        """Validate every upload first, then save them as one gallery (nothing saved on error)."""
        if not files:
            raise InvalidImageError("add at least one reference photo")
        if len(files) > MAX_SESSION_IMAGES:
            raise InvalidImageError(f"at most {MAX_SESSION_IMAGES} reference photos per gallery")
        loaded = [(Path(f).stem, load_image(f, name=Path(f).name)) for f in files]
        label = name.strip()[:60] or f"my gallery ({len(loaded)} photos)"
        folder = self.sessions_root / uuid.uuid4().hex
        return create_gallery(folder, label, loaded, source="user upload (this session only)")

    def delete_session_gallery(self, root: str | Path) -> None:
        """Remove a session gallery's folder (only ever one under the sessions root)."""
        folder = Path(root).resolve()
        if folder.parent == self.sessions_root.resolve():
            shutil.rmtree(folder, ignore_errors=True)
