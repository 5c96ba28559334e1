"""Example images for the Score tab: a photo that is *not* in the reference gallery.

The stereo "motorcycle" photo ships inside the scikit-image wheel (Middlebury
2014 stereo data set, Scharstein et al.), so the examples work offline. They
are written once under ``<data>/examples/``.
"""
from __future__ import annotations

from pathlib import Path

from cvrkd import distort
from space.services.files import png_bytes, write_atomic

VERSIONS = (("motorcycle-jpeg", "jpeg", 4), ("motorcycle-blur", "gaussian_blur", 4),
            ("motorcycle-noise", "white_noise", 3))


def example_files(folder: Path) -> dict[str, Path]:
    """name -> PNG path, for the pristine photo and a few distorted versions of it."""
    folder = Path(folder)
    names = ["motorcycle"] + [name for name, _, _ in VERSIONS]
    paths = {name: folder / f"{name}.png" for name in names}
    if all(path.is_file() for path in paths.values()):
        return paths
    from skimage.data import stereo_motorcycle

    pristine = stereo_motorcycle()[0]
    write_atomic(paths["motorcycle"], png_bytes(pristine))
    for name, distortion, level in VERSIONS:
        write_atomic(paths[name], png_bytes(distort(pristine, distortion, level, seed=1)))
    return paths


def examples(folder: Path) -> tuple[list[list[str | None]], list[str]]:
    """Rows of (image, original) for ``gr.Examples`` and their labels; the last row uses the FR teacher."""
    paths = {name: str(path) for name, path in example_files(folder).items()}
    rows = [[paths["motorcycle-jpeg"], None], [paths["motorcycle-blur"], None],
            [paths["motorcycle"], None], [paths["motorcycle-noise"], paths["motorcycle"]]]
    labels = ["JPEG-compressed", "blurred", "pristine", "noisy, with its original (FR teacher)"]
    return rows, labels
