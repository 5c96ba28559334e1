"""Read a judgement store, local folder or Hub dataset repo, as it is now.

``datasets.load_dataset(folder, split="train")`` reads the judgements fresh
too (the card names no data files, so ``datasets`` fingerprints the files
themselves); these helpers add the other tables and read only complete rows,
so they are also safe while a writer is appending.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets


def _local_folder(source: str | Path, revision: str | None) -> Path:
    """``source`` itself when it is a folder, else a fresh download of that Hub dataset repo."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    text = str(source)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise FileNotFoundError(f"{text!r} is neither a store folder nor a Hub dataset repo id (owner/name)")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=text, repo_type="dataset", revision=revision))


def load_table(source: str | Path, name: str = "default", revision: str | None = None) -> datasets.Dataset:
    """One table (``default`` = judgements, ``images``, ``skips``) of a store as it is now."""
    from annotations.store import AnnotationStore

    return AnnotationStore(_local_folder(source, revision)).load_dataset(name)


def load_judgements(source: str | Path, revision: str | None = None) -> datasets.Dataset:
    """Every judgement currently in a store folder or Hub dataset repo, oldest first."""
    return load_table(source, "default", revision)
