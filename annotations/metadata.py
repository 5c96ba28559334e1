"""What raters are served carries nothing of the file it came from but its pixels.

Photos carry EXIF (GPS position, camera serial, the owner's name as artist),
XMP, IPTC, comments and PNG text chunks. Contributed photos and campaign
images are both shown to anonymous raters, so both go through this module:
``has_metadata`` says whether a file may be served as it came, and
``png_without_metadata`` is the one encoder of everything else (lossless, so
the pixels people judge are the ones under study).
"""
from __future__ import annotations

import io

from PIL import Image

METADATA_KEYS = ("exif", "xmp", "XML:com.adobe.xmp", "photoshop", "iptc", "comment", "comments")
"""``Image.info`` keys of metadata a JPEG, WebP or PNG file may carry."""


def has_metadata(image: Image.Image) -> bool:
    """Whether the opened file carries EXIF, XMP, IPTC, a comment or (PNG) text chunks."""
    if any(image.info.get(key) for key in METADATA_KEYS) or len(image.getexif()):
        return True
    return bool(getattr(image, "text", None))


def png_without_metadata(image: Image.Image, compress_level: int = 6) -> bytes:
    """Lossless PNG of the pixels alone: no EXIF, XMP, text chunks or colour profile of the source."""
    pixels = image.copy()
    pixels.info = {}  # Pillow's PNG writer would carry the source's ICC profile over from here
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
