"""One re-distillation round from an annotation store: what the CLI and the app's
background trainer both run (same code path)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from cvrkd import paths
from cvrkd.checkpoint import load_checkpoint
from cvrkd.feature_cache import FeatureCache
from cvrkd.gallery import Gallery, build_default_gallery
from cvrkd.redistill import Log, RedistillConfig, RoundResult, run_round
from cvrkd.registry import ModelRegistry

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
                         config: RedistillConfig = RedistillConfig(), log: Log = print) -> RoundResult:
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
                     weights=rater_weights(judgements, images), log=log)


def summary(result: RoundResult) -> dict:
    return {"decision": "promoted" if result.decision.promote else "rejected",
            "candidate_version": result.candidate_version, **asdict(result.decision)}
