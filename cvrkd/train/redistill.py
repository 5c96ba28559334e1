"""Re-distillation: fine-tune the student on human pairwise judgements, then gate it.

Loss = reliability-weighted fidelity loss of the human choices on the student's score
difference (:mod:`cvrkd.train.pairwise`, the same loss the seed model learnt clive_dev's
MOS pairs with)
     + replay: L1 to FR pseudo-labels of synthetic distortions (so it does not forget)
     + distillation: MSE to the frozen FR teacher's inner difference features on the
       same synthetic pairs (as in the original training).

The candidate is then the weight-space mix base + share x (fine-tuned − base)
(WiSE-FT, Wortsman et al. 2022), which keeps most of the gain on people's
judgements and most of the synthetic skill (docs/results.md): the largest of
``mix_choices`` (at most one half, WiSE-FT's usual share) that the gate's
synthetic check accepts.

Gate: judgements are split by *image*; a judgement touching a held-out image is
never trained on and is used for validation. The candidate is promoted only if
its pairwise agreement with people beats the served model's by more than the
bootstrap noise (the 95% CI of the paired difference lies above zero), its
SRCC on the synthetic validation split has not dropped by more than
``srcc_tolerance``, and it keeps pool photos above their own strongest
distortions as often as the base (within ``known_order_tolerance``): the one
check that needs no people, so a crowd answering the reverse of the question
cannot pass it.

Replay comes from the original synthetic training set (``cvrkd train data``)
when it is configured: its train split is replayed and its val split is the
gate's synthetic check. Without it (a Space has only the repository) the replay
set is built from the built-in gallery photos with :mod:`cvrkd.train.distortions`;
that check is weaker, because the gallery photos are also the references.
"""
from __future__ import annotations

import copy
import hashlib
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from cvrkd.backbone import FrozenBackbone
from cvrkd.checkpoint import CheckpointInfo
from cvrkd.feature_cache import FeatureCache
from cvrkd.features import grid_features
from cvrkd.gallery import Gallery
from cvrkd.imageio import load_image
from cvrkd.model import SCORE_RANGE, CVRKDNet
from cvrkd.patches import PatchConfig, fit_to_patch
from cvrkd.train.pairwise import fidelity_loss, judgement_pairs
from cvrkd.train.registry import ModelRegistry

Log = Callable[[str], None]
REPLAY_VALIDATION_PHOTOS = ("china", "flower")


@dataclass
class RedistillConfig:
    epochs: int = 6
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    """Score difference (0–100 scale) that makes a preference e:1 likely."""
    replay_weight: float = 1.0
    mix_choices: tuple[float, ...] = (0.5, 0.35, 0.25)
    """Shares of the fine-tuning step the candidate may keep (1 = plain fine-tuning)."""
    distill_weight: float = 0.1
    holdout_fraction: float = 0.25
    srcc_tolerance: float = 0.02
    bootstrap: int = 1000
    min_judgements: int = 50
    replay_types: int = 25
    """Distortion types per built-in photo in the replay set (all 25 by default)."""
    known_order_tolerance: float = 0.05
    """How much the share of known-order pairs (a pool photo above its own strongest distortion) the
    candidate keeps may fall below the base's: about one pair in twenty."""
    disagreement_weight: float = 2.0
    """Training judgements that touch an image where the base model and the crowd disagree
    beyond their uncertainty (``annotations.assisted.disagreements``) count this many times
    in the pair loss: they are where the model has the most to learn. 1 turns it off."""
    seed: int = 0
    threads: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ReplaySet:
    """Synthetic distortions with FR pseudo-labels, and their aligned originals."""

    features: torch.Tensor  # [N, P, C, 7, 7]
    originals: torch.Tensor  # [M, P, C, 7, 7] one per source photo (for the teacher)
    original_of: torch.Tensor  # [N] row of ``originals``
    labels: torch.Tensor  # [N]
    source: list[str]
    validation: torch.Tensor  # [N] bool: the gate's synthetic check
    origin: str = "gallery"
    """``gallery`` (built-in photos) or ``synthetic`` (the original training set)."""

    def pristine(self, rows: torch.Tensor) -> torch.Tensor:
        return self.originals[self.original_of[rows]]

    @property
    def train_rows(self) -> torch.Tensor:
        return torch.nonzero(~self.validation).squeeze(1)

    @property
    def val_rows(self) -> torch.Tensor:
        return torch.nonzero(self.validation).squeeze(1)


@dataclass
class Decision:
    promote: bool
    reason: str
    base_agreement: float
    candidate_agreement: float
    agreement_gain_ci: tuple[float, float]
    base_synthetic_srcc: float
    candidate_synthetic_srcc: float
    n_validation: int
    base_known_order: float = float("nan")
    candidate_known_order: float = float("nan")
    n_known_order: int = 0


@dataclass
class RoundResult:
    decision: Decision
    candidate_version: str | None
    record: dict = field(default_factory=dict)


# ------------------------------------------------------------------------ data
def grid_features_for(backbone: FrozenBackbone, patches: PatchConfig, images: dict[str, Path],
                      cache: FeatureCache) -> dict[str, torch.Tensor]:
    """Inference-grid features per image id, cached by id (ids are content hashes)."""
    out = {}
    for image_id, path in images.items():
        key = f"img-{_safe(image_id)}-{backbone.fingerprint()}-{patches.key()}"

        def compute(path: Path = path) -> torch.Tensor:
            return grid_features(backbone, load_image(path).pixels, patches).half()

        out[image_id] = cache.get_or_compute(key, compute)
    return out


def build_replay_set(gallery: Gallery, backbone: FrozenBackbone, patches: PatchConfig,
                     cache: FeatureCache, log: Log = print, types: int = 25) -> ReplaySet:
    """Every distortion type once per photo (levels rotate), plus the pristine photo."""
    from cvrkd.train.distortions import DISTORTIONS, LEVELS, distort
    from cvrkd.train.pseudolabels import FAST_METRICS, fr_metrics, label_from_metrics

    key = f"replay-{gallery.fingerprint()}-{backbone.fingerprint()}-{patches.key()}-t{types}"

    def compute() -> torch.Tensor:
        rows = []
        for photo_index, photo in enumerate(gallery.load_images()):
            log(f"replay set: {photo.name}")
            pixels, _ = fit_to_patch(photo.pixels, patches.size)
            clean = grid_features(backbone, pixels, patches)
            rows.append(_replay_row(clean, clean, 100.0, photo_index))
            for type_index, name in enumerate(list(DISTORTIONS)[:types]):
                level = LEVELS[(photo_index + type_index) % len(LEVELS)]
                damaged = distort(pixels, name, level, seed=photo_index)
                features = grid_features(backbone, damaged, patches)
                label = label_from_metrics(fr_metrics(pixels, damaged, FAST_METRICS))
                rows.append(_replay_row(features, clean, label, photo_index))
        return torch.stack(rows)

    packed = cache.get_or_compute(key, compute)  # [N, 2V + 1, C, 7, 7], see _replay_row
    count = patches.views
    names = [entry.name for entry in gallery.images]
    photo = packed[:, 2 * count, 0, 0, 1].round().long()
    first_row = {int(p): row for row, p in reversed(list(enumerate(photo.tolist())))}
    source = [names[int(i)] for i in photo]
    return ReplaySet(
        features=packed[:, :count],
        originals=torch.stack([packed[first_row[p], count:2 * count] for p in sorted(first_row)]),
        original_of=torch.tensor([sorted(first_row).index(int(p)) for p in photo]),
        labels=packed[:, 2 * count, 0, 0, 0].float(),
        source=source,
        validation=torch.tensor([s in REPLAY_VALIDATION_PHOTOS for s in source]),
    )


def replay_from_synthetic(synthetic_dir: Path, layout: PatchConfig) -> ReplaySet:
    """The original synthetic training set: replay its train split, check on its val split.

    Only the inference views are read: the first ``num_patches`` stored positions (the grid)
    and, when the layout has one, the plain whole-image view.
    """
    num_patches = layout.num_patches
    import json

    from safetensors import safe_open

    features, rows = [], []
    for shard in sorted(Path(synthetic_dir).glob("source-*.safetensors")):
        with safe_open(str(shard), "pt") as handle:
            rows.extend(json.loads(handle.metadata()["rows"]))
            grid = handle.get_slice("features")[:, :num_patches]
            if layout.whole_view:
                if "whole" not in handle.keys():
                    raise ValueError(f"{shard} has no whole-image views; rebuild with `cvrkd train data`")
                grid = torch.cat([grid, handle.get_slice("whole")[:, :1]], dim=1)
            features.append(grid)
    if not features:
        raise FileNotFoundError(f"no synthetic training shards in {synthetic_dir} (see `cvrkd train data`)")
    stacked = torch.cat(features)
    if stacked.shape[1] < layout.views:
        raise ValueError(f"{synthetic_dir} stores {stacked.shape[1]} views; the model needs {layout.views}")
    sources = sorted({r["source_index"] for r in rows})
    pristine_row = {r["source_index"]: i for i, r in enumerate(rows) if r["distortion"] == "pristine"}
    return ReplaySet(
        features=stacked,
        originals=stacked[[pristine_row[s] for s in sources]],
        original_of=torch.tensor([sources.index(r["source_index"]) for r in rows]),
        labels=torch.tensor([float(r["label"]) for r in rows]),
        source=[r["source"] for r in rows],
        validation=torch.tensor([r["split"] == "val" for r in rows]),
        origin="synthetic",
    )


def _replay_row(features: torch.Tensor, clean: torch.Tensor, label: float, photo: int) -> torch.Tensor:
    """Pack features, originals and (label, photo) into one tensor for the cache."""
    meta = torch.zeros(1, *features.shape[1:])
    meta[0, 0, 0, 0], meta[0, 0, 0, 1] = label, photo
    return torch.cat([features, clean, meta]).float()


def split_images(image_ids: list[str], fraction: float, seed: int) -> set[str]:
    """Held-out image ids: a stable hash decides, so a split never changes between runs."""
    held = set()
    for image_id in image_ids:
        digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
        if int.from_bytes(digest[:4], "big") / 2**32 < fraction:
            held.add(image_id)
    return held


# --------------------------------------------------------------------- scoring
@torch.no_grad()
def image_scores(network: CVRKDNet, features: dict[str, torch.Tensor],
                 references: torch.Tensor) -> dict[str, float]:
    """Served-style scores: mean over the gallery references."""
    network.eval()
    ids = list(features)
    out: dict[str, float] = {}
    for start in range(0, len(ids), 64):
        chunk = ids[start:start + 64]
        lq = torch.stack([features[i] for i in chunk]).float()
        per_ref = [network(lq, ref.float().unsqueeze(0).expand(len(chunk), -1, -1, -1, -1)).score
                   for ref in references]
        for image_id, value in zip(chunk, torch.stack(per_ref).mean(0).tolist()):
            out[image_id] = value
    return out


def agreement_vector(scores: dict[str, float], judgements: pd.DataFrame) -> np.ndarray:
    """1 where the model orders a decisive human judgement the same way, else 0 (ties skipped)."""
    decisive = judgements[judgements["choice"] != "tie"]
    left = decisive["left_image_id"].map(scores).to_numpy(float)
    right = decisive["right_image_id"].map(scores).to_numpy(float)
    model_left = left > right
    return (model_left == (decisive["choice"] == "left").to_numpy()).astype(float)


def known_order_kept(scores: dict[str, float], pairs: list[tuple[str, str]]) -> float:
    """Share of (better, worse) pairs the scores put in that order; nan without pairs."""
    if not pairs:
        return float("nan")
    return float(np.mean([scores[better] > scores[worse] for better, worse in pairs]))


@torch.no_grad()
def synthetic_srcc(network: CVRKDNet, replay: ReplaySet, references: torch.Tensor,
                   rows: torch.Tensor | None = None) -> float:
    """SRCC against the pseudo-labels on ``rows`` (default: the gate's validation rows)."""
    rows = replay.val_rows if rows is None else rows
    feats = {str(i): replay.features[i] for i in rows.tolist()}
    scores = image_scores(network, feats, references)
    return float(spearmanr([scores[str(i)] for i in rows.tolist()], replay.labels[rows].numpy()).statistic)


def decide(base_correct: np.ndarray, candidate_correct: np.ndarray, base_srcc: float,
           candidate_srcc: float, config: RedistillConfig,
           known_order: tuple[float, float, int] = (float("nan"), float("nan"), 0)) -> Decision:
    """Promote only a candidate that agrees with people better than the base beyond noise, keeps the
    synthetic skill and keeps photos above their own heavy distortions.

    ``known_order``: (base share, candidate share, pairs) of known-order pairs kept. People can be
    wrong together (a crowd answering the reverse of the question agrees with its own held-out
    judgements too, and the synthetic check does not see the pool's photos); this check needs no
    people."""
    rng = np.random.default_rng(config.seed)
    diff = candidate_correct - base_correct
    if len(diff) == 0:
        gains = np.array([0.0])
    else:
        picks = rng.integers(0, len(diff), (config.bootstrap, len(diff)))
        gains = diff[picks].mean(axis=1)
    low, high = float(np.percentile(gains, 2.5)), float(np.percentile(gains, 97.5))
    base_agree = float(base_correct.mean()) if len(base_correct) else float("nan")
    cand_agree = float(candidate_correct.mean()) if len(candidate_correct) else float("nan")
    srcc_ok = candidate_srcc >= base_srcc - config.srcc_tolerance
    if len(diff) < 10:
        promote, reason = False, f"too few held-out judgements ({len(diff)})"
    elif low <= 0:
        promote, reason = False, f"agreement gain not above noise (95% CI {low:+.3f}..{high:+.3f})"
    elif not srcc_ok:
        promote, reason = False, (f"synthetic SRCC fell {base_srcc - candidate_srcc:.3f} "
                                  f"(> tolerance {config.srcc_tolerance})")
    elif known_order[2] and known_order[1] < known_order[0] - config.known_order_tolerance:
        promote, reason = False, (f"photos fell below their own strongest distortions: the candidate keeps "
                                  f"{known_order[1]:.0%} of {known_order[2]} known-order pairs, the base "
                                  f"{known_order[0]:.0%}")
    else:
        promote, reason = True, f"agreement +{cand_agree - base_agree:.3f} (95% CI {low:+.3f}..{high:+.3f})"
    return Decision(promote, reason, base_agree, cand_agree, (low, high), base_srcc, candidate_srcc, len(diff),
                    *known_order)


# -------------------------------------------------------------------- training
def finetune(base: CVRKDNet, teacher: CVRKDNet, features: dict[str, torch.Tensor],
             judgements: pd.DataFrame, weights: dict[str, float] | None, replay: ReplaySet,
             references: torch.Tensor, config: RedistillConfig, log: Log = print,
             emphasis: np.ndarray | None = None) -> CVRKDNet:
    """Fine-tune a copy of ``base`` on the judgements (each weighted by its rater's reliability
    times ``emphasis``, one factor per judgement row) with replay and distillation."""
    student = copy.deepcopy(base).train()
    teacher = teacher.eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    ids = sorted(set(judgements["left_image_id"]) | set(judgements["right_image_id"]))
    images = torch.stack([features[i] for i in ids])  # stored once; batches are gathered
    position = {image_id: k for k, image_id in enumerate(ids)}
    labels = judgement_pairs(judgements["left_image_id"].map(position).to_numpy(),
                             judgements["right_image_id"].map(position).to_numpy(),
                             judgements["choice"].tolist(),
                             judgements["rater_id"].map(weights or {}).fillna(1.0).to_numpy()
                             * (1.0 if emphasis is None else emphasis))
    replay_rows = replay.train_rows
    for epoch in range(config.epochs):
        order = torch.from_numpy(rng.permutation(len(labels)))
        losses = []
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            ref = references[torch.from_numpy(rng.integers(0, len(references), len(batch)))].float()
            pairs = labels.subset(batch)
            pair_loss = fidelity_loss(student(images[pairs.first].float(), ref).score,
                                      student(images[pairs.second].float(), ref).score,
                                      pairs.prob, pairs.weight)
            rows = replay_rows[torch.from_numpy(rng.integers(0, len(replay_rows), len(batch)))]
            replay_ref = references[torch.from_numpy(rng.integers(0, len(references), len(batch)))].float()
            lq = replay.features[rows].float()
            output = student(lq, replay_ref)
            replay_loss = F.l1_loss(output.score / SCORE_RANGE[1], replay.labels[rows] / SCORE_RANGE[1])
            with torch.no_grad():
                guide = teacher(lq, replay.pristine(rows).float()).diff_features
            distill = sum(F.mse_loss(s, t) for s, t in zip(output.diff_features, guide)) / max(len(guide), 1)
            loss = pair_loss + config.replay_weight * replay_loss + config.distill_weight * distill
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        log(f"re-distill epoch {epoch + 1}/{config.epochs}: loss {np.mean(losses):.4f}")
    return student.eval()


def choose_mix(base: CVRKDNet, tuned: CVRKDNet, replay: ReplaySet, references: torch.Tensor,
               config: RedistillConfig, log: Log = print) -> tuple[float, dict[str, float]]:
    """The largest share whose synthetic-check SRCC drop is within the gate's tolerance.

    Returns the share (the smallest one if none passes; the gate then rejects
    it) and the check's SRCC for each share tried (``base`` = share 0).
    """
    tried = {"base": synthetic_srcc(base, replay, references)}
    for share in sorted(config.mix_choices, reverse=True):
        tried[f"{share:g}"] = synthetic_srcc(mix_weights(base, tuned, share), replay, references)
        log(f"mix {share:g}: synthetic check SRCC {tried[f'{share:g}']:.3f} (base {tried['base']:.3f})")
        if tried[f"{share:g}"] >= tried["base"] - config.srcc_tolerance:
            return share, tried
    return min(config.mix_choices), tried


def mix_weights(base: CVRKDNet, tuned: CVRKDNet, share: float) -> CVRKDNet:
    """base + share x (tuned − base), parameter by parameter (WiSE-FT)."""
    mixed = copy.deepcopy(base)
    start, end = base.state_dict(), tuned.state_dict()
    mixed.load_state_dict({k: start[k] + share * (end[k] - start[k]) if start[k].is_floating_point() else end[k]
                           for k in start})
    return mixed


# ----------------------------------------------------------------------- round
def run_round(*, judgements: pd.DataFrame, image_paths: dict[str, Path], base: CVRKDNet,
              base_info: CheckpointInfo, teacher: CVRKDNet, gallery: Gallery, registry: ModelRegistry,
              cache: FeatureCache, config: RedistillConfig = RedistillConfig(),
              weights: dict[str, float] | None = None, log: Log = print,
              backbone: FrozenBackbone | None = None, synthetic_dir: Path | None = None,
              known_order: list[tuple[str, str]] = ()) -> RoundResult:
    """One complete round: features, split, fine-tune, gate, record (and promote if better).

    ``synthetic_dir``: the original synthetic training set, replayed and checked
    on when given; otherwise the built-in photos' replay set. ``known_order``:
    (better, worse) image pairs whose order needs no people (a pool photo and its
    strongest distortion); the gate refuses a candidate that keeps fewer of them.
    """
    started = time.time()
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run_round(judgements, image_paths, base, base_info, teacher, gallery, registry, cache,
                          config, weights, log, backbone, synthetic_dir, known_order, started)
    finally:
        torch.set_num_threads(threads)  # callers in the same process keep their thread pool


def _run_round(judgements, image_paths, base, base_info, teacher, gallery, registry, cache, config,
               weights, log, backbone, synthetic_dir, known_order, started) -> RoundResult:
    run_id = uuid.uuid4().hex[:12]
    backbone = backbone or FrozenBackbone(base_info.backbone).with_tail(base.backbone_tail)
    patches = base_info.patches
    usable = judgements[judgements["left_image_id"].isin(image_paths)
                        & judgements["right_image_id"].isin(image_paths)]
    record = {"run_id": run_id, "started_at": started, "base_version": base_info.version,
              "n_judgements": int(len(usable)), "config": config.to_dict()}
    if len(usable) < config.min_judgements:
        decision = Decision(False, f"only {len(usable)} usable judgements (< {config.min_judgements})",
                            float("nan"), float("nan"), (float("nan"), float("nan")), float("nan"),
                            float("nan"), 0)
        return _finish(registry, record, decision, None, started)
    image_ids = sorted(set(usable["left_image_id"]) | set(usable["right_image_id"]))
    features = grid_features_for(backbone, patches, {i: image_paths[i] for i in image_ids}, cache)
    held = split_images(image_ids, config.holdout_fraction, config.seed)
    touches_held = usable["left_image_id"].isin(held) | usable["right_image_id"].isin(held)
    train_judgements, val_judgements = usable[~touches_held], usable[touches_held]
    record.update(n_train=int(len(train_judgements)), n_validation=int(len(val_judgements)),
                  n_images=len(image_ids), n_held_out_images=len(held))
    references = _gallery_grid(gallery, backbone, patches, cache)
    replay = (replay_from_synthetic(synthetic_dir, patches) if synthetic_dir
              else build_replay_set(gallery, backbone, patches, cache, log, config.replay_types))
    record["replay"] = replay.origin
    with torch.no_grad():  # the base never changes: its scores serve the disagreements and the gate
        base_scores = image_scores(base, {i: features[i] for i in image_ids}, references)
    flagged = disagreement_images(base_scores, base_info.version, train_judgements, weights)
    record.update(n_disagreements=len(flagged), disagreement_images=flagged[:20])
    emphasis = pair_emphasis(train_judgements, set(flagged), config.disagreement_weight)
    tuned = finetune(base, teacher, features, train_judgements, weights, replay, references, config, log,
                     emphasis)
    share, tried = choose_mix(base, tuned, replay, references, config, log)
    candidate = mix_weights(base, tuned, share).eval()
    record.update(mix=share, mix_check_srcc=tried)
    cand_scores = image_scores(candidate, {i: features[i] for i in image_ids}, references)
    decision = decide(agreement_vector(base_scores, val_judgements),
                      agreement_vector(cand_scores, val_judgements),
                      synthetic_srcc(base, replay, references), synthetic_srcc(candidate, replay, references),
                      config, _known_order(base, candidate, known_order, image_paths, backbone, patches, cache,
                                           references))
    info = CheckpointInfo("student", base_info.backbone, candidate.config, patches, trained=True,
                          extra={"redistilled_from": base_info.version, "run_id": run_id, "mix": share,
                                 "n_train_judgements": int(len(train_judgements))})
    version = registry.add(candidate, info)
    if decision.promote:
        registry.promote(version, reason=decision.reason)
    return _finish(registry, record, decision, version, started)


def disagreement_images(base_scores: dict[str, float], version: str, judgements: pd.DataFrame,
                        weights: dict[str, float] | None) -> list[str]:
    """Images of the training judgements where the base model's prior (``base_scores``) and the
    people disagree beyond their uncertainty, largest disagreement first (the validation
    judgements stay unseen)."""
    from annotations.assisted import disagreements

    ids = sorted(set(judgements["left_image_id"]) | set(judgements["right_image_id"]))
    if not ids:
        return []
    flagged = disagreements(judgements, {i: base_scores[i] for i in ids}, weights, model_version=version)
    return [str(i) for i in flagged["image_id"]]


def pair_emphasis(judgements: pd.DataFrame, flagged: set[str], factor: float) -> np.ndarray:
    """One loss weight per judgement: ``factor`` where either image is flagged, else 1."""
    touches = judgements["left_image_id"].isin(flagged) | judgements["right_image_id"].isin(flagged)
    return np.where(touches.to_numpy(), factor, 1.0)


def _finish(registry: ModelRegistry, record: dict, decision: Decision, version: str | None,
            started: float) -> RoundResult:
    record.update(candidate_version=version, decision="promoted" if decision.promote else "rejected",
                  **{k: v for k, v in asdict(decision).items() if k != "promote"},
                  seconds=time.time() - started)
    registry.record_run(record)
    return RoundResult(decision, version, record)


def _known_order(base: CVRKDNet, candidate: CVRKDNet, pairs: list[tuple[str, str]], image_paths: dict[str, Path],
                 backbone: FrozenBackbone, patches: PatchConfig, cache: FeatureCache,
                 references: torch.Tensor) -> tuple[float, float, int]:
    """(base share, candidate share, pairs) of the known-order pairs whose images are on disk."""
    pairs = [(better, worse) for better, worse in pairs if better in image_paths and worse in image_paths]
    if not pairs:
        return float("nan"), float("nan"), 0
    ids = sorted({image_id for pair in pairs for image_id in pair})
    features = grid_features_for(backbone, patches, {i: image_paths[i] for i in ids}, cache)
    return (known_order_kept(image_scores(base, features, references), pairs),
            known_order_kept(image_scores(candidate, features, references), pairs), len(pairs))


def _gallery_grid(gallery: Gallery, backbone: FrozenBackbone, patches: PatchConfig,
                  cache: FeatureCache) -> torch.Tensor:
    paths = {f"gallery-{gallery.fingerprint()}-{i}": gallery.root / e.file for i, e in enumerate(gallery.images)}
    feats = grid_features_for(backbone, patches, paths, cache)
    return torch.stack([feats[k] for k in paths]).float()


def _safe(image_id: str) -> str:
    return hashlib.sha256(image_id.encode()).hexdigest()[:24]
