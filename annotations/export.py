"""A campaign as a Hugging Face dataset folder: judgements, images and scores.

``export_campaign`` writes three configs, declared in the folder's card so
``datasets.load_dataset(folder)`` loads the judgements (the default config),
``datasets.load_dataset(folder, "images")`` the images themselves with their
source and licence, and ``datasets.load_dataset(folder, "scores")`` the scaled
quality of each image (Bradley–Terry and Thurstone, 95% bootstrap intervals)
next to the model's score. All three are Parquet files, so the image bytes
travel inside the dataset. ``push_export`` uploads such a folder to the Hub.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from annotations.campaign_import import CampaignError
from annotations.campaigns import Campaign
from annotations.assisted import estimate
from annotations.quality import rater_stats
from annotations.rounds import round_of
from annotations.scaling import scale
from annotations.schema import JUDGEMENT_DTYPES, features
from annotations.shards import atomic_write_text
from annotations.store import AnnotationStore

if TYPE_CHECKING:
    from huggingface_hub import HfApi

MARKER = ".campaign-export.json"
SCORE_COLUMNS = ["image_id", "file_name", "bt_score", "bt_ci_low", "bt_ci_high", "thurstone_score",
                 "thurstone_ci_low", "thurstone_ci_high", "n_judgements", "model_score", "model_version"]
#: From ``annotations.assisted``: the human-only and model-assisted estimates, the model's prior, the flag.
ASSISTED_COLUMNS = ["human_score", "human_ci_low", "human_ci_high", "assisted_score", "assisted_ci_low",
                    "assisted_ci_high", "prior_mean", "prior_sd", "disagreement", "flagged", "prior_model_version"]
CONFIGS = ("judgements", "images", "scores")
#: The judgements config: the store's columns and the campaign round each was stored in (1 before any reset).
EXPORT_JUDGEMENT_DTYPES = {**JUDGEMENT_DTYPES, "round": "int32"}


@dataclass(frozen=True)
class ExportSummary:
    folder: Path
    judgements: int
    images: int
    raters: int

    def summary(self) -> str:
        return (f"exported {self.judgements} judgements by {self.raters} raters on {self.images} images "
                f"to {self.folder}")


def export_campaign(campaign: Campaign, store: AnnotationStore, out: Path | str, n_boot: int = 200,
                    seed: int = 0, rounds: Collection[int] | None = None) -> ExportSummary:
    """Write the campaign's dataset folder to ``out`` (replacing an earlier export there, nothing else).

    Every judgement carries its ``round``; ``rounds`` keeps only those (all of them by default), and the
    scores are fitted on the judgements exported.
    """
    import datasets

    out = Path(out)
    if out.exists() and not (out / MARKER).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise CampaignError(f"{out} exists and is not an earlier campaign export; choose an empty folder")
    judgements = store.judgements(campaign.name)
    judgements["round"] = round_of(campaign, judgements["timestamp"])
    if rounds is not None:
        judgements = judgements[judgements["round"].isin(list(rounds))].reset_index(drop=True)
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        for name in CONFIGS:
            (staging / name).mkdir(parents=True)
        tables = {
            "judgements": datasets.Dataset.from_pandas(judgements, features=features(EXPORT_JUDGEMENT_DTYPES),
                                                       preserve_index=False),
            "images": _images(campaign),
            "scores": datasets.Dataset.from_pandas(scores(campaign, judgements, n_boot, seed), preserve_index=False),
        }
        files = {name: _parquet(table, staging / name) for name, table in tables.items()}
        atomic_write_text(staging / "README.md", card(campaign, judgements, files))
        atomic_write_text(staging / MARKER, json.dumps({"campaign": campaign.name}))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportSummary(out, len(judgements), len(campaign.images), int(judgements["rater_id"].nunique()))


def _parquet(table, folder: Path) -> str:
    """Write ``table`` as ``train-<content hash>.parquet`` and return its path in the export.

    ``datasets`` caches a local folder's configs by folder name and file
    patterns, not by content, so a re-export under the same name would load
    stale rows unless each version of a file has its own name.
    """
    path = folder / "train.parquet"
    table.to_parquet(path)
    named = folder / f"train-{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}.parquet"
    path.rename(named)
    return f"{folder.name}/{named.name}"


def _images(campaign: Campaign):
    """The campaign's images as the app serves them: each file's bytes, named by the file's content id.

    The bytes travel inside the Parquet file (``datasets.Image`` reads them from
    there), so the export loads anywhere and names no folder of this server.
    """
    import datasets

    rows = {
        "image_id": campaign.ids,
        "file_name": [i.name for i in campaign.images],
        "source": [i.source for i in campaign.images],
        "licence": [i.licence for i in campaign.images],
        "content": [i.content for i in campaign.images],
        "gold": [i.gold for i in campaign.images],
        "width": [i.width for i in campaign.images],
        "height": [i.height for i in campaign.images],
        "image": [{"bytes": campaign.path(i).read_bytes(), "path": campaign.image(i).file} for i in campaign.ids],
    }
    types = datasets.Features({
        **{name: datasets.Value("string") for name in ("image_id", "file_name", "source", "licence", "content", "gold")},
        "width": datasets.Value("int32"), "height": datasets.Value("int32"), "image": datasets.Image(),
    })
    return datasets.Dataset.from_dict(rows, features=types)


def scores(campaign: Campaign, judgements: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """One row per campaign image: both scalings with 95% CIs (raters weighted by reliability), the
    number of judgements, and the model's score as last recorded with a vote (NaN where unknown)."""
    out = pd.DataFrame({"image_id": campaign.ids, "file_name": [i.name for i in campaign.images]})
    weights = None
    if len(judgements):
        stats = rater_stats(judgements, campaign.gold_pairs())
        weights = stats["weight"] if len(stats) else None
    for method, prefix in (("bradley_terry", "bt"), ("thurstone", "thurstone")):
        if len(judgements):
            fitted = scale(judgements, method=method, weights=weights, n_boot=n_boot, seed=seed)
        else:
            fitted = pd.DataFrame(columns=["image_id", "score", "ci_low", "ci_high", "n_judgements"])
        fitted = fitted.rename(columns={"score": f"{prefix}_score", "ci_low": f"{prefix}_ci_low",
                                        "ci_high": f"{prefix}_ci_high"})
        out = out.merge(fitted.drop(columns="n_judgements"), on="image_id", how="left")
    counts = pd.concat([judgements["left_image_id"], judgements["right_image_id"]]).value_counts()
    out["n_judgements"] = out["image_id"].map(counts).fillna(0).astype("int64")
    model = model_scores(judgements)
    out["model_score"] = out["image_id"].map(lambda i: model.get(i, (np.nan, None))[0]).astype(float)
    out["model_version"] = out["image_id"].map(lambda i: model.get(i, (np.nan, None))[1])
    for column in SCORE_COLUMNS[2:8]:
        out[column] = out[column].astype(float)
    out = out.merge(_assisted(campaign, judgements, weights), on="image_id", how="left")
    return out.sort_values("bt_score", ascending=False, na_position="last", kind="stable")[
        SCORE_COLUMNS + ASSISTED_COLUMNS].reset_index(drop=True)


def _assisted(campaign: Campaign, judgements: pd.DataFrame, weights) -> pd.DataFrame:
    """Human-only and model-assisted estimates; the prior is the latest model version's recorded scores."""
    prior, version = prior_scores(judgements)
    result = estimate(judgements, prior, weights, model_version=version, image_ids=campaign.ids)
    table = result.export_frame().drop(columns=["n_judgements", "model_score"])
    table["prior_model_version"] = table["prior_model_version"].astype(object)
    table["flagged"] = table["flagged"].astype(bool)
    return table


def prior_scores(judgements: pd.DataFrame) -> tuple[dict[str, float], str | None]:
    """The scores recorded with votes by the most recent model version (image id -> score), and that version.

    A prior comes from one model: scores of older versions are left out.
    """
    if judgements.empty or judgements["model_version"].isna().all():
        return {}, None
    latest = judgements.dropna(subset=["model_version"]).sort_values("timestamp")["model_version"].iloc[-1]
    mine = judgements[judgements["model_version"] == latest].sort_values("timestamp")
    scores: dict[str, float] = {}
    for side in ("left", "right"):
        rows = mine[[f"{side}_image_id", f"model_score_{side}", "timestamp"]].dropna()
        for image_id, score in zip(rows[f"{side}_image_id"], rows[f"model_score_{side}"]):
            scores[str(image_id)] = float(score)  # later rows win: the last recorded score
    return scores, str(latest)


def model_scores(judgements: pd.DataFrame) -> dict[str, tuple[float, str]]:
    """image id -> (model score, model version) from the most recent vote that recorded one."""
    found: dict[str, tuple[float, str]] = {}
    for side in ("left", "right"):
        rows = judgements[["timestamp", f"{side}_image_id", f"model_score_{side}", "model_version"]].dropna()
        rows.columns = ["timestamp", "image_id", "score", "version"]
        for row in rows.itertuples(index=False):
            previous = found.get(row.image_id)
            if previous is None or row.timestamp >= previous[2]:
                found[row.image_id] = (float(row.score), str(row.version), row.timestamp)
    return {image_id: (score, version) for image_id, (score, version, _) in found.items()}


def card(campaign: Campaign, judgements: pd.DataFrame, files: dict[str, str]) -> str:
    """README.md: the three configs (judgements first, the default) and what the columns mean."""
    lines = ["---", "configs:"]
    for index, name in enumerate(CONFIGS):
        lines += [f"- config_name: {name}"] + (["  default: true"] if index == 0 else []) + [
            "  data_files:", "  - split: train", f"    path: {files[name]}"]
    lines += ["license: other", "task_categories:", "- image-classification", "tags:",
              "- image-quality-assessment", "- pairwise-comparison", "---", ""]
    licences = pd.Series([i.licence for i in campaign.images]).value_counts()
    lines += [
        f"# {campaign.title}", "",
        f"Pairwise image-quality judgements of the rating campaign `{campaign.name}` "
        f"({len(campaign.images)} images from {campaign.source}; pairs: {campaign.pairs}; "
        f"status: {campaign.status}; created {campaign.created_at}).", "",
        f"* `judgements` (default): {len(judgements)} rows, one per answer to \"which image looks better?\" "
        "(`choice`: left, right or tie), with rater id, response time, pair kind, the model's scores, and "
        f"`round` (a reset of the campaign begins a new round; this export holds {_rounds(judgements)}).",
        "* `images`: each image with its id (SHA-256 of the file shown), original file name, source, "
        "licence and the image itself.",
        "* `scores`: Bradley–Terry (logits) and Thurstone Case V scores with 95% bootstrap intervals, raters "
        "weighted by reliability; the number of judgements; the model's last recorded score (0–100). "
        "Also two Thurstone-scale estimates with 95% intervals: `human_*` from the judgements alone and "
        "`assisted_*` with the model's scores as a calibrated prior (`prior_mean`, `prior_sd`, from the "
        "model named in `prior_model_version`), and `flagged` where the two disagree beyond their "
        "uncertainty (`disagreement`, a z value).", "",
        "```python", "import datasets",
        'judgements = datasets.load_dataset("<this repo or folder>", split="train")',
        'images = datasets.load_dataset("<this repo or folder>", "images", split="train")',
        'scores = datasets.load_dataset("<this repo or folder>", "scores", split="train")', "```", "",
        "Licences of the images, as recorded at import:", "",
    ]
    lines += [f"* {licence}: {count} image{'s' if count != 1 else ''}" for licence, count in licences.items()]
    if campaign.instructions:
        lines += ["", "Instructions shown to raters:", "", *[f"> {line}" for line in campaign.instructions.splitlines()]]
    return "\n".join(lines) + "\n"


def _rounds(judgements: pd.DataFrame) -> str:
    found = sorted(int(r) for r in judgements["round"].unique())
    if not found:
        return "no judgements yet"
    return f"round {found[0]}" if len(found) == 1 else "rounds " + ", ".join(map(str, found))


def push_export(folder: Path | str, repo_id: str, token: str | None = None, private: bool = True,
                hf_api: HfApi | None = None) -> str:
    """Upload an export folder to a Hub dataset repo (created if missing); return the commit URL."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.utils import HFValidationError

    check_repo_id(repo_id)
    token = token or get_token()
    if not token:
        raise CampaignError("no Hugging Face token found (set HF_TOKEN or run `hf auth login`); nothing was pushed")
    api = hf_api or HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(folder),
                                   ignore_patterns=[MARKER], commit_message="Export of a rating campaign")
    except (OSError, ValueError, HFValidationError) as exc:  # offline, refused, or no permission
        raise CampaignError(f"pushing to {repo_id} failed: {type(exc).__name__}: {exc}") from None
    return str(commit)


def check_repo_id(repo_id: str) -> str:
    """``owner/name``, as the Hub accepts it; raises ``CampaignError`` otherwise."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise CampaignError(f"not a valid Hub repo id: {exc}") from None
    if "/" not in repo_id:
        raise CampaignError(f"give the repo id as owner/name, got {repo_id!r}")
    return repo_id
