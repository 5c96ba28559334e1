"""Bulk scoring of a folder or a Hugging Face dataset into resumable Parquet shards.

The items (image files, or dataset rows) are put in a fixed order and cut into shards of
``shard_size``; each shard is written whole and atomically as ``shard-NNNNN.parquet``, so a
run that is killed leaves only finished shards behind, and a rerun scores just the missing
ones: no image is lost or scored twice. ``engine="local"`` scores in this process;
``engine="ray"`` runs the same ``BatchScorer`` on a Ray Data actor pool (``cvrkd.bulk_ray``).

Output columns: the key (``path`` relative to the folder, or the dataset's id column, else
``index``), ``score``, ``spread``, ``model_version``, ``backend`` and ``error`` (empty when
scored). Read them with ``pandas.read_parquet(DIR)`` or
``datasets.load_dataset("parquet", data_dir=DIR)``.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

import pandas as pd

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
ID_COLUMNS = ("id", "image_id", "path", "file_name", "filename", "name")
PLAN_FILE = ".cvrkd-plan.json"  # hidden: datasets' Parquet loader ignores it
SHARD_PATTERN = "shard-{:05d}.parquet"


class BulkError(RuntimeError):
    """The source cannot be read, or the output folder belongs to another job."""


# ------------------------------------------------------------------ sources
@dataclass(frozen=True)
class Source:
    """Where the images come from; small and picklable, so every worker can reopen it."""

    kind: str  # "folder" or "dataset"
    location: str
    split: str = "train"
    image_column: str = ""
    key_column: str = "path"
    keys: tuple[str, ...] = field(default=(), repr=False)

    def fingerprint(self) -> str:
        digest = hashlib.sha256(f"{self.kind}|{self.location}|{self.split}|{self.image_column}".encode())
        for key in self.keys:
            digest.update(key.encode() + b"\0")
        return digest.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.keys)


def open_source(location: str | Path, split: str = "train", image_column: str | None = None,
                id_column: str | None = None) -> Source:
    """A folder of images (recursive), a saved/local Hugging Face dataset, or a Hub repo id."""
    path = Path(location)
    if path.is_dir() and not _looks_like_dataset(path):
        keys = tuple(sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        if not keys:
            raise BulkError(f"{path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return Source("folder", str(path.resolve()), keys=keys)
    if not path.exists() and (str(location).startswith((".", "/")) or str(location).count("/") > 1):
        raise BulkError(f"{location} does not exist (and is not a Hugging Face repo id)")
    dataset = _load_dataset(str(path.resolve()) if path.exists() else str(location), split)
    column = image_column or _image_column(dataset)
    if column not in dataset.column_names:
        raise BulkError(f"the dataset has no column {column!r}; columns: {dataset.column_names}")
    key_column = id_column or next((c for c in ID_COLUMNS if c in dataset.column_names and c != column),
                                   "index")
    if key_column == "index":
        keys = tuple(str(i) for i in range(len(dataset)))
    else:
        keys = tuple(str(v) for v in dataset[key_column])
    if len(set(keys)) != len(keys):
        raise BulkError(f"the id column {key_column!r} has repeated values; pass --id-column")
    where = str(path.resolve()) if path.exists() else str(location)
    return Source("dataset", where, split, column, key_column, keys)


def _looks_like_dataset(path: Path) -> bool:
    markers = ("dataset_info.json", "state.json", "dataset_dict.json")
    if any((path / m).is_file() for m in markers):
        return True
    has_data = False
    for file in path.rglob("*"):
        if file.suffix.lower() in IMAGE_SUFFIXES:
            return False  # a folder of images, even if a CSV sits beside them
        has_data = has_data or file.suffix in {".parquet", ".arrow", ".jsonl", ".csv"}
    return has_data


def _load_dataset(where: str, split: str):
    import datasets

    try:
        if Path(where).is_dir() and any((Path(where) / m).is_file()
                                        for m in ("dataset_info.json", "state.json", "dataset_dict.json")):
            loaded = datasets.load_from_disk(where)
            return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        return datasets.load_dataset(where, split=split)
    except (FileNotFoundError, ValueError, KeyError, ConnectionError) as exc:
        raise BulkError(f"cannot open {where} as a Hugging Face dataset: {exc}") from exc


def _image_column(dataset) -> str:
    import datasets

    for name, feature in dataset.features.items():
        if isinstance(feature, datasets.Image):
            return name
    raise BulkError(f"no image column in {dataset.column_names}; pass --image-column")


class SourceReader:
    """Opens the source once (per worker) and yields image bytes or paths by item number."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._dataset = None
        if source.kind == "dataset":
            import datasets

            loaded = _load_dataset(source.location, source.split)
            self._dataset = loaded.cast_column(source.image_column, datasets.Image(decode=False))

    def image(self, index: int) -> str | bytes:
        if self._dataset is None:
            return str(Path(self.source.location) / self.source.keys[index])
        value = self._dataset[int(index)][self.source.image_column]
        if value.get("bytes"):
            return value["bytes"]
        if value.get("path"):
            return value["path"]
        raise ValueError("the image cell is empty")


# ------------------------------------------------------------------ scoring
@dataclass(frozen=True)
class ScorerOptions:
    model_dir: str | None = None
    gallery_dir: str | None = None
    cache_dir: str | None = None
    backend: str | None = None
    allow_untrained: bool = False


class BatchScorer:
    """Loads the model and the gallery features once, then scores batches of item numbers.

    A Ray Data callable class (one per actor) and the local engine's worker alike.
    """

    def __init__(self, source: Source, options: ScorerOptions) -> None:
        from cvrkd.gallery import Gallery
        from cvrkd.scorer import Scorer

        self.source, self.reader = source, SourceReader(source)
        self.gallery = Gallery.load(options.gallery_dir)
        self.scorer = Scorer(options.model_dir, allow_untrained=options.allow_untrained,
                             cache_dir=options.cache_dir, gallery=self.gallery,
                             backend=options.backend)
        self.scorer.gallery_features(self.gallery)  # computed (or read from cache) once

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        rows = [self.score_item(int(index)) for index in batch["index"]]
        frame = pd.DataFrame(rows)
        frame["index"], frame["shard"] = batch["index"].to_numpy(), batch["shard"].to_numpy()
        return frame

    def score_item(self, index: int) -> dict:
        row = {"key": self.source.keys[index], "score": None, "spread": None,
               "model_version": self.scorer.model_version, "backend": self.scorer.backend,
               "error": ""}
        try:
            result = self.scorer.score(self.reader.image(index), gallery=self.gallery,
                                       name=self.source.keys[index])
            row.update(score=result.score, spread=result.spread)
        except Exception as exc:  # noqa: BLE001 - one bad item becomes an error row, not a crash
            row["error"] = f"{type(exc).__name__}: {exc}"
        return row


def resolve_options(options: ScorerOptions) -> ScorerOptions:
    """Absolute folders, decided here: workers may run in another directory or machine."""
    from cvrkd import paths
    from cvrkd.gallery import build_default_gallery

    gallery_dir = options.gallery_dir
    if gallery_dir is None:
        gallery_dir = str(build_default_gallery(paths.default_gallery_dir().resolve()).root)
    cache_dir = options.cache_dir or str(paths.cache_dir().resolve() / "features")
    model_dir = options.model_dir or str(paths.default_model_dir().resolve())
    return replace(options, gallery_dir=str(Path(gallery_dir).resolve()),
                   cache_dir=str(Path(cache_dir).resolve()), model_dir=str(Path(model_dir).resolve()))


# ------------------------------------------------------------------ shards
@dataclass
class Plan:
    """What an output folder holds; a rerun must match it to resume."""

    source: str
    source_fingerprint: str
    items: int
    shard_size: int
    model_version: str
    gallery: str

    @property
    def shards(self) -> int:
        return -(-self.items // self.shard_size)

    def shard_items(self, shard: int) -> range:
        return range(shard * self.shard_size, min(self.items, (shard + 1) * self.shard_size))


def prepare_output(out: Path, plan: Plan) -> list[int]:
    """Create or check ``out``; returns the shards still to score (finished ones are skipped)."""
    out.mkdir(parents=True, exist_ok=True)
    plan_path = out / PLAN_FILE
    if plan_path.is_file():
        existing = json.loads(plan_path.read_text())
        if existing != asdict(plan):
            differing = [k for k, v in asdict(plan).items() if existing.get(k) != v]
            raise BulkError(f"{out} holds another job's scores (different {', '.join(differing)}); "
                            "use another --out folder")
    else:
        _atomic_write(plan_path, json.dumps(asdict(plan), indent=2).encode())
    for stale in out.glob(".shard-*.tmp"):
        stale.unlink()  # a half-written shard from a killed run
    return [s for s in range(plan.shards) if not (out / SHARD_PATTERN.format(s)).is_file()]


def write_shard(out: Path, shard: int, rows: pd.DataFrame, key_column: str) -> Path:
    """Atomically write one finished shard, rows in item order."""
    frame = rows.sort_values("index").rename(columns={"key": key_column})
    columns = [key_column, "score", "spread", "model_version", "backend", "error"]
    frame = frame[columns].reset_index(drop=True)
    frame["score"] = frame["score"].astype("float64")
    frame["spread"] = frame["spread"].astype("float64")
    target = out / SHARD_PATTERN.format(shard)
    with tempfile.NamedTemporaryFile(dir=out, prefix=f".shard-{shard:05d}-", suffix=".tmp",
                                     delete=False) as handle:
        temp = Path(handle.name)
    frame.to_parquet(temp, index=False)
    _fsync(temp)
    os.chmod(temp, 0o644)
    os.replace(temp, target)
    return target


def pending_batches(plan: Plan, shards: list[int], batch_size: int) -> Iterator[pd.DataFrame]:
    for shard in shards:
        items = list(plan.shard_items(shard))
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            yield pd.DataFrame({"index": chunk, "shard": [shard] * len(chunk)})


class ShardCollector:
    """Gathers scored rows (in any order) and writes each shard once it is complete."""

    def __init__(self, out: Path, plan: Plan, key_column: str) -> None:
        self.out, self.plan, self.key_column = out, plan, key_column
        self._parts: dict[int, list[pd.DataFrame]] = {}
        self.written = 0
        self.failed = 0

    def add(self, rows: pd.DataFrame) -> None:
        self.failed += int((rows["error"] != "").sum())
        for shard, part in rows.groupby("shard"):
            parts = self._parts.setdefault(int(shard), [])
            parts.append(part)
            if sum(len(p) for p in parts) == len(self.plan.shard_items(int(shard))):
                write_shard(self.out, int(shard), pd.concat(self._parts.pop(int(shard))),
                            self.key_column)
                self.written += 1


# ------------------------------------------------------------------ run
@dataclass
class BulkSummary:
    out: Path
    items: int
    scored_now: int
    failed_now: int
    failed_total: int
    """Error rows in the whole output, this run's and earlier runs' shards alike."""
    shards_skipped: int
    shards_written: int
    elapsed_s: float
    """From the first batch to the last shard written; model loading before it is excluded."""

    @property
    def images_per_s(self) -> float:
        return self.scored_now / self.elapsed_s if self.elapsed_s > 0 else 0.0


def score_dataset(source: Source, out: Path, options: ScorerOptions, engine: str = "local",
                  workers: int = 1, address: str | None = None, batch_size: int = 16,
                  shard_size: int = 500, progress: bool = True) -> BulkSummary:
    """Score every item of ``source`` into Parquet shards under ``out``; resumes a killed run."""
    import time

    from tqdm import tqdm

    options = resolve_options(options)
    local = BatchScorer(source, options)  # also warms the runtime export and gallery cache
    plan = Plan(source.location, source.fingerprint(), len(source), shard_size,
                local.scorer.model_version, local.gallery.fingerprint())
    todo = prepare_output(Path(out), plan)
    count = sum(len(plan.shard_items(s)) for s in todo)
    collector = ShardCollector(Path(out), plan, source.key_column)
    started = time.perf_counter()  # images/s counts scoring, not loading (Ray's start included)
    bar = tqdm(total=count, unit="img", desc=f"scoring ({engine})", disable=not progress or not count,
               file=sys.stderr, smoothing=0.1)
    if engine == "local":
        for batch in pending_batches(plan, todo, batch_size):
            rows = local(batch)
            collector.add(rows)
            bar.update(len(rows))
    elif engine == "ray":
        from cvrkd.bulk_ray import run_on_ray

        del local  # the actors load their own copies
        for rows in run_on_ray(source, options, plan, todo, batch_size, workers, address):
            collector.add(rows)
            bar.update(len(rows))
    else:
        raise ValueError(f"unknown engine {engine!r}; choose local or ray")
    bar.close()
    elapsed = time.perf_counter() - started
    errors = pd.read_parquet(out, columns=["error"])["error"]
    return BulkSummary(Path(out), len(source), count, collector.failed, int((errors != "").sum()),
                       plan.shards - len(todo), collector.written, elapsed)


def _atomic_write(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".", suffix=".tmp",
                                     delete=False) as handle:
        handle.write(data)
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
