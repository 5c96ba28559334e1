"""One re-distillation round from an annotation store: what the CLI and the app's
background trainer both run (same code path)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from cvrkd import paths
from cvrkd.checkpoint import CONFIG_FILE, load_checkpoint
from cvrkd.feature_cache import FeatureCache
from cvrkd.gallery import Gallery, build_default_gallery
from cvrkd.train.redistill import Log, RedistillConfig, RoundResult, run_round
from cvrkd.train.registry import ModelRegistry

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def served_student_dir(registry: ModelRegistry, model_dir: Path) -> Path:
    """The registry's promoted version, else the shipped bundle's student."""
    return registry.current_path() or model_dir / "student"


def image_files(images_dir: Path) -> dict[str, Path]:
    """Pool images are stored as ``<image_id>.<ext>``."""
    if not images_dir.is_dir():
        return {}
    return {p.stem: p for p in sorted(images_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def gold_answers(images: pd.DataFrame) -> list[tuple[str, str]]:
    """(better, worse) pairs: each pristine photo beats its strongest distortion."""
    if images.empty or "level" not in images:
        return []
    strong = images[(images["source"] == "distortion") & (images["level"] == 5) & images["reference_id"].notna()]
    return [(row.reference_id, row.image_id) for row in strong.itertuples()]


def rater_weights(judgements: pd.DataFrame, images: pd.DataFrame) -> dict[str, float]:
    from annotations.quality import rater_stats

    stats = rater_stats(judgements, gold_answers(images))
    return {str(k): float(v) for k, v in stats["weight"].items()} if len(stats) else {}


def redistill_from_store(store_dir: Path, registry_dir: Path, *, images_dir: Path | None = None,
                         base_dir: Path | None = None, model_dir: Path | None = None,
                         gallery_dir: Path | None = None, cache_dir: Path | None = None,
                         synthetic_dir: Path | None = None, config: RedistillConfig = RedistillConfig(),
                         log: Log = print) -> RoundResult:
    from annotations.store import AnnotationStore

    model_dir = Path(model_dir or paths.default_model_dir())
    registry = ModelRegistry(registry_dir)
    base_dir = Path(base_dir or served_student_dir(registry, model_dir))
    base, base_info = load_checkpoint(base_dir, expected_role="student")
    teacher, _ = load_checkpoint(model_dir / "teacher", expected_backbone=base_info.backbone,
                                 expected_role="teacher")
    store = AnnotationStore(store_dir)
    judgements, images = store.judgements(), store.images()
    gallery = (Gallery.load(gallery_dir) if gallery_dir
               else build_default_gallery(paths.default_gallery_dir()))
    images_dir = Path(images_dir or Path(store_dir).parent / "pool")
    log(f"re-distilling {base_info.version} on {len(judgements)} judgements")
    return run_round(judgements=judgements, image_paths=image_files(images_dir), base=base,
                     base_info=base_info, teacher=teacher, gallery=gallery, registry=registry,
                     cache=FeatureCache(cache_dir or paths.cache_dir() / "features"), config=config,
                     weights=rater_weights(judgements, images), log=log,
                     synthetic_dir=synthetic_dir or paths.synthetic_dir(), known_order=gold_answers(images))


class BundleError(ValueError):
    """The bundle folder cannot be written (it holds something else, or there is no candidate)."""


def check_bundle_target(folder: Path) -> None:
    """Refuse, before any training, a folder that exists and is not a model bundle: a round never
    overwrites files it did not write."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir())
                                                   and not (folder / "student" / CONFIG_FILE).is_file())):
        raise BundleError(f"{folder} exists and is not a model bundle (student/, teacher/); "
                          "give a new folder or an earlier bundle")


def write_bundle(result: RoundResult, registry_dir: Path, model_dir: Path | None, folder: Path) -> Path:
    """The round's candidate, promoted or not (the gate's decision is in its config's ``extra``),
    with the FR teacher it was distilled from: a complete bundle for ``cvrkd score --model``.
    Written beside ``folder`` and swapped in, so readers see the old bundle or the new one."""
    if result.candidate_version is None:
        raise BundleError(f"no candidate to write: {result.decision.reason}")
    folder = Path(folder)
    check_bundle_target(folder)
    model_dir = Path(model_dir or paths.default_model_dir())
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        shutil.copytree(ModelRegistry(registry_dir).path(result.candidate_version), staging / "student")
        shutil.copytree(model_dir / "teacher", staging / "teacher",
                        ignore=shutil.ignore_patterns(".*"))
        load_checkpoint(staging / "student", expected_role="student")  # verified before it is visible
        load_checkpoint(staging / "teacher", expected_role="teacher")
        retired = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        if folder.exists():
            os.replace(folder, retired)
        os.replace(staging, folder)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def summary(result: RoundResult) -> dict:
    return {"decision": "promoted" if result.decision.promote else "rejected",
            "candidate_version": result.candidate_version, **asdict(result.decision)}


def start_background_round(store_dir: Path, registry_dir: Path, *, images_dir: Path | None = None,
                           model_dir: Path | None = None, cache_dir: Path | None = None,
                           gallery_dir: Path | None = None, log_file: Path | None = None,
                           extra_args: list[str] | None = None) -> subprocess.Popen:
    """Run one round as a separate, lowest-priority, single-threaded process.

    A separate process keeps the app's interpreter (and its GIL) free for requests;
    ``nice 19`` and one thread keep scoring latency close to idle on a 2-core machine;
    a crash (even SIGKILL) of the trainer cannot touch the served model, which only
    changes through the registry's atomic pointer.
    """
    command = [sys.executable, "-m", "cvrkd", "redistill", "--store", str(Path(store_dir).resolve()),
               "--out", str(Path(registry_dir).resolve())]
    for flag, value in (("--images", images_dir), ("--model", model_dir), ("--cache", cache_dir),
                        ("--gallery", gallery_dir)):
        if value is not None:
            command += [flag, str(Path(value).resolve())]
    command += extra_args or []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": _import_path()}
    output = open(log_file, "ab") if log_file else subprocess.DEVNULL
    return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: os.nice(19))


def _import_path() -> str:
    """``PYTHONPATH`` for the trainer: the folder holding this very ``cvrkd`` package first.

    A plain clone (``pip install -r requirements.txt``, then ``python app.py``) imports ``cvrkd``
    only because the app runs from the repository root; the child must find the same package from
    whatever folder it starts in, and an installed package is found the same way.
    """
    project_root = str(paths.PACKAGE_DIR.parent)
    inherited = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([project_root, inherited]) if inherited else project_root
