"""The durable local judgement store: a folder that is also a Hugging Face dataset.

Layout (see ``annotations.card``)::

    README.md                      dataset card: configs + features
    data/train-<writer>.jsonl      judgements, one file per writer
    images/images-<writer>.jsonl   image registrations
    skips/skips-<writer>.jsonl     skipped pairs
    retractions/retractions-<writer>.jsonl   answers their rater undid
    .locks/<writer>.lock           held by a live writer for its lifetime

Each store instance is one writer with its own shard files, so processes
(threads share an instance) never write to the same file; each row is
fsynced before ``append`` returns. Readers only take complete lines.
Nothing is ever deleted: an undone answer gets a retraction row, and
``judgements()``/``skips()`` leave retracted rows out (``standing``, the one
place for that rule), so the sampler, the scaling, the leaderboard and the
export never see them.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from filelock import FileLock, Timeout

from annotations.card import SPLIT_WORDS, TABLES, render_card
from annotations.config import default_store_dir
from annotations.schema import (
    DEFAULT_CAMPAIGN,
    IMAGE_DTYPES,
    JUDGEMENT_DTYPES,
    RETRACTION_DTYPES,
    SKIP_DTYPES,
    ImageRecord,
    InvalidJudgement,
    Judgement,
    Retraction,
    Skip,
    features,
)
from annotations.shards import ShardReader, ShardWriter, atomic_write_text, has_torn_tail, repair_tail

if TYPE_CHECKING:
    import datasets

_WRITER_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A split word between separators in a shard name would make ``datasets`` read that shard as a split.
_SPLIT_WORD_RE = re.compile(rf"(?:^|[-_.0-9])(?:{'|'.join(SPLIT_WORDS)})(?:[-_.0-9]|$)", re.IGNORECASE)
_SHARD_RE = re.compile(r"(?:train|images|skips|retractions)-(?P<writer>[A-Za-z0-9_-]{1,64})\.jsonl")


class WriterBusy(RuntimeError):
    """Another live store instance already writes under this writer id."""


def new_writer_id() -> str:
    """A fresh writer id: one per store instance, hence one shard file per process."""
    return uuid.uuid4().hex[:16]


def _frame(rows: list[dict[str, Any]], dtypes: Mapping[str, str], key: str) -> pd.DataFrame:
    """Rows as a typed DataFrame (times as UTC datetimes), first row per ``key``, oldest first."""
    df = pd.DataFrame(rows, columns=list(dtypes))
    for column, dtype in dtypes.items():
        if dtype.startswith("timestamp"):
            df[column] = pd.to_datetime(df[column], utc=True, format="ISO8601")
        elif dtype.startswith("int"):
            df[column] = df[column].astype("Int64")
        elif dtype.startswith("float"):
            df[column] = df[column].astype("float64")
        elif dtype == "bool":
            df[column] = df[column].astype("boolean")
        else:
            df[column] = df[column].astype("object")
    if "campaign" in df:  # rows written before campaigns existed belong to the default one
        df["campaign"] = df["campaign"].fillna(DEFAULT_CAMPAIGN)
    df = df.drop_duplicates(subset=key, keep="first")
    time_column = next(c for c, d in dtypes.items() if d.startswith("timestamp"))
    return df.sort_values(time_column, kind="stable").reset_index(drop=True)


class AnnotationStore:
    """Append-only store of judgements, skips and image registrations.

    ``root`` defaults to ``$CVRKD_DATA_DIR/annotations``. Thread-safe; use
    one instance per process (each instance writes its own shard files).
    """

    def __init__(self, root: Path | str | None = None, writer_id: str | None = None) -> None:
        self.root = Path(root) if root is not None else default_store_dir()
        self.writer_id = writer_id or new_writer_id()
        if not _WRITER_RE.fullmatch(self.writer_id):
            raise ValueError(f"writer_id {self.writer_id!r} must be 1-64 letters, digits, '_' or '-'")
        if _SPLIT_WORD_RE.search(self.writer_id):
            raise ValueError(f"writer_id {self.writer_id!r} must not contain a split name ({', '.join(SPLIT_WORDS)})")
        self._lock: AbstractContextManager[Any] = threading.Lock()
        self._read_lock = threading.Lock()
        self._owner: FileLock | None = None
        self._writers = {
            name: ShardWriter(self.root / folder / f"{prefix}-{self.writer_id}.jsonl")
            for name, folder, prefix, _ in TABLES
        }
        self._readers = {name: ShardReader(self.root / folder, f"{prefix}-*.jsonl") for name, folder, prefix, _ in TABLES}
        self._rows: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in TABLES}
        self._frames: dict[str, tuple[int, pd.DataFrame]] = {}  # table -> (rows seen, frame)
        self._image_ids: set[str] = set()
        self._judgement_ids: set[str] = set()  # distinct ids read so far (a row may be written twice)

    # --- writing -----------------------------------------------------------

    @property
    def write_lock(self) -> AbstractContextManager[Any]:
        """The lock held around every write (shared with the Hub scheduler)."""
        return self._lock

    def use_lock(self, lock: AbstractContextManager[Any]) -> None:
        """Hold ``lock`` around writes from now on, e.g. a ``CommitScheduler``'s.

        The Hub push then never uploads a file in the middle of a write.
        """
        with self._lock:
            self._lock = lock

    def register_image(self, image_id: str, source: str, licence: str, **extra: Any) -> None:
        """Record where an image comes from; registering it again does nothing.

        ``extra`` may hold ``distortion``, ``level``, ``reference_id``,
        ``dataset`` and ``consent`` (see ``ImageRecord``).
        """
        record = ImageRecord.from_dict({"image_id": image_id, "source": source, "licence": licence, **extra})
        with self._lock:
            if self._is_known(image_id):
                return
            self._write("images", record.to_record())
            self._image_ids.add(image_id)

    def append(self, judgement: Mapping[str, Any] | Judgement) -> str:
        """Validate and durably store one judgement; return its id.

        Raises ``InvalidJudgement`` (and writes nothing) for a bad row,
        including image ids that were never registered.
        """
        row = judgement if isinstance(judgement, Judgement) else Judgement.from_dict(judgement)
        with self._lock:
            self._check_images(row.left_image_id, row.right_image_id)
            self._write("default", row.to_record())
        return row.judgement_id

    def log_skip(self, skip: Mapping[str, Any] | Skip | None = None, **fields: Any) -> str:
        """Store a pair the rater declined to judge (as a ``Skip`` or its fields); return its id."""
        row = skip if isinstance(skip, Skip) else Skip.from_dict({**(skip or {}), **fields})
        with self._lock:
            self._check_images(row.left_image_id, row.right_image_id)
            self._write("skips", row.to_record())
        return row.skip_id

    def retract(self, retraction: Retraction) -> str:
        """Store that a rater undid one of their answers; return the retraction's id."""
        with self._lock:
            self._write("retractions", retraction.to_record())
        return retraction.retraction_id

    def close(self) -> None:
        """Close the shard files and release the writer lock."""
        with self._lock:
            for writer in self._writers.values():
                writer.close()
            if self._owner is not None:
                self._owner.release()
                self._owner = None

    def _write(self, table: str, record: dict[str, Any]) -> None:
        if self._owner is None:
            self._start_writing()
        self._writers[table].append(record)

    def _start_writing(self) -> None:
        """Take this writer's lock, repair dead writers' torn tails, write the card."""
        self.root.mkdir(parents=True, exist_ok=True)
        locks = self.root / ".locks"
        locks.mkdir(exist_ok=True)
        owner = FileLock(locks / f"{self.writer_id}.lock", thread_local=False)
        try:
            owner.acquire(timeout=0)
        except Timeout:
            raise WriterBusy(f"writer id {self.writer_id!r} is in use by another live store") from None
        self._owner = owner
        self._repair_dead_writers(locks)
        for writer in self._writers.values():
            writer.open()  # every table gets a (maybe empty) shard, so each config loads
        card = self.root / "README.md"
        text = render_card()
        if not card.exists() or card.read_text(encoding="utf-8") != text:
            atomic_write_text(card, text)

    def _repair_dead_writers(self, locks: Path) -> None:
        for _, folder, _, _ in TABLES:
            for path in sorted((self.root / folder).glob("*.jsonl")):
                match = _SHARD_RE.fullmatch(path.name)
                if match is None or not has_torn_tail(path):
                    continue
                writer = match["writer"]
                if writer == self.writer_id:
                    repair_tail(path)
                    continue
                other = FileLock(locks / f"{writer}.lock", thread_local=False)
                try:
                    other.acquire(timeout=0)
                except Timeout:
                    continue  # alive and mid-write: its line will complete
                try:
                    repair_tail(path)
                finally:
                    other.release()

    def _is_known(self, image_id: str) -> bool:
        if image_id not in self._image_ids:
            self._refresh("images")
        return image_id in self._image_ids

    def _check_images(self, *image_ids: str) -> None:
        unknown = [i for i in image_ids if not self._is_known(i)]
        if unknown:
            raise InvalidJudgement(f"unknown image id(s): {', '.join(unknown)}; register them with register_image first")

    # --- reading -----------------------------------------------------------

    def _refresh(self, table: str) -> list[dict[str, Any]]:
        with self._read_lock:
            new = self._readers[table].read_new()
            self._rows[table].extend(new)
            if table == "images":
                self._image_ids.update(row["image_id"] for row in new)
            elif table == "default":
                self._judgement_ids.update(row["judgement_id"] for row in new)
            return self._rows[table]

    def _table(self, table: str, dtypes: Mapping[str, str], key: str) -> pd.DataFrame:
        """The table as a DataFrame; only rows added since the last call are converted.

        The app asks on every request, and during a talk rows arrive many times
        a second, so converting all rows each time would grow with the store.
        """
        rows = self._refresh(table)
        with self._read_lock:
            seen, frame = self._frames.get(table, (0, None))
            if frame is None or seen != len(rows):
                added = _frame(rows[seen:] if frame is not None else list(rows), dtypes, key)
                if frame is not None and len(frame) and len(added):
                    added = _merged(frame, added, dtypes, key)
                elif frame is not None and len(frame):
                    added = frame
                frame = added
                self._frames[table] = (len(rows), frame)
            return frame.copy()

    def judgements(self, campaign: str | None = None) -> pd.DataFrame:
        """All standing judgements of all writers (of one campaign when named), oldest first, one row per id."""
        frame = self._table("default", JUDGEMENT_DTYPES, "judgement_id")
        return _of_campaign(standing(frame, "judgement_id", self.retracted()), campaign)

    def retracted(self) -> set[str]:
        """Ids of the judgements and skips their raters undid."""
        return set(self._table("retractions", RETRACTION_DTYPES, "retraction_id")["record_id"])

    def images(self) -> pd.DataFrame:
        """All registered images, first registration per id."""
        return self._table("images", IMAGE_DTYPES, "image_id")

    def skips(self, campaign: str | None = None) -> pd.DataFrame:
        """All skipped pairs (of one campaign when named), oldest first."""
        return _of_campaign(standing(self._table("skips", SKIP_DTYPES, "skip_id"), "skip_id", self.retracted()),
                            campaign)

    def count(self) -> int:
        """Number of distinct judgements written, retracted ones included (asked after every vote to pace the
        trainer: kept as a set, not recounted)."""
        self._refresh("default")
        with self._read_lock:
            return len(self._judgement_ids)

    def load_dataset(self, name: str = "default") -> datasets.Dataset:
        """A consistent snapshot of one table as a ``datasets.Dataset`` with the card's features.

        Built from complete rows only, so it is safe while writers are active;
        ``datasets.load_dataset(root, split="train")`` reads the same rows from
        the files (``annotations.load_table`` does this without a writer).
        """
        import datasets

        frames = {
            "default": (self.judgements, JUDGEMENT_DTYPES),
            "images": (self.images, IMAGE_DTYPES),
            "skips": (self.skips, SKIP_DTYPES),
            "retractions": (lambda: self._table("retractions", RETRACTION_DTYPES, "retraction_id"),
                            RETRACTION_DTYPES),
        }
        if name not in frames:
            raise ValueError(f"unknown table {name!r}; expected one of {', '.join(frames)}")
        read, dtypes = frames[name]
        df = read()
        return datasets.Dataset.from_pandas(df, features=features(dtypes), preserve_index=False)


def _merged(old: pd.DataFrame, new: pd.DataFrame, dtypes: Mapping[str, str], key: str) -> pd.DataFrame:
    """``_frame`` of the old rows and then the new ones, from the two typed frames."""
    both = pd.concat([old, new], ignore_index=True).drop_duplicates(subset=key, keep="first")
    time_column = next(c for c, d in dtypes.items() if d.startswith("timestamp"))
    return both.sort_values(time_column, kind="stable").reset_index(drop=True)


def standing(frame: pd.DataFrame, key: str, retracted: set[str]) -> pd.DataFrame:
    """The rows no retraction names: what every reader of answers (sampler, scaling, export) may use."""
    if not retracted:
        return frame
    return frame[~frame[key].isin(retracted)].reset_index(drop=True)


def _of_campaign(frame: pd.DataFrame, campaign: str | None) -> pd.DataFrame:
    if campaign is None:
        return frame
    return frame[frame["campaign"] == campaign].reset_index(drop=True)
