"""Re-distillation: a crowd round learns from people's judgements of new photos, then is gated.

A round has one of two designs (``RedistillConfig.design``):

* ``readout`` (the default): the readout (phase 2c, :mod:`cvrkd.train.readout`) is fitted
  again, in one likelihood, on the labelled photos it keeps (their whole-view statistics and
  MOS, stored in the network, not the photos) and on the judgements of the new photos; the
  backbone and the head stay. Nothing the model knew is replayed: it is still in the fit.
  The kept MOS say nothing of distortions, so replayed synthetic images join the fit as
  anchors held to the base readout's own scores of them (``synthetic_anchor``).
  Once the gate has judged the fit on the training judgements, the candidate is the same fit
  on every judgement (the held-out ones too), checked again on everything that needs no
  held-out people (``final_fit_on_all``).
* ``finetune``: phase 2b's loop (:mod:`cvrkd.train.finetune`) trains the student's backbone
  tail (its last ``tuned_stages`` stages; a student without one, from an older bundle, starts
  from ImageNet's), its mixers and global head, end to end on native-resolution crops and
  flips of the judged photos, with the losses:

  * people: the reliability-weighted fidelity loss of each judgement on the score difference
    (:func:`cvrkd.train.pairwise.judgement_pairs`; the seed model learnt MOS pairs with the
    same loss);
  * replay: pseudo-label pairs among synthetic distortions, and distillation of the FR
    teacher's inner features on them with their aligned originals (so it does not forget).

  Its steps are bounded (``epochs`` x ``steps_per_epoch``), so its time does not grow with the
  judgements. The candidate is then the weight-space mix base + share x (fine-tuned - base)
  over the whole state dict, the tail included (WiSE-FT, Wortsman et al. 2022): the largest of
  ``mix_choices`` that the gate's synthetic check accepts.

Gate: judgements are split by *image*; a judgement touching a held-out image is never
trained on and is used for validation. Both models score every image those judgements show
(the held-out photo and its partner). The candidate is promoted only if it predicts people's
held-out answers better than the served model by more than the bootstrap noise (the 95% CI of
the paired difference in log-likelihood per judgement lies above zero: each model's score
differences read as a Thurstone observer's, at the observer scale that fits its own scores),
its SRCC on the synthetic validation split has not
dropped by more than ``srcc_tolerance``, and it keeps pool photos above their own strongest
distortions as often as the base (within ``known_order_tolerance``): the one check that
needs no people, so a crowd answering the reverse of the question cannot pass it. Every score
the gate compares comes from the network's own backbone (the base with its tail, the
candidate with its mixed tail): features never carry over from one checkpoint to another.

Replay comes from the original synthetic training set (``cvrkd train data``) when it is
configured: a seeded subset of its train split is regenerated and replayed, and its val split
is the gate's synthetic check. Without it (a Space has only the repository) the replay set
is built from the built-in gallery photos with :mod:`cvrkd.distortions`; that check is
weaker, because the gallery photos are also the references.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize_scalar
from scipy.stats import norm

from cvrkd.backbone import FrozenBackbone
from cvrkd.checkpoint import CheckpointInfo
from cvrkd.evaluation import correlations
from cvrkd.feature_cache import FeatureCache
from cvrkd.features import resize_long_side, whole_view
from cvrkd.gallery import Gallery
from cvrkd.imageio import load_image
from cvrkd.model import CVRKDNet
from cvrkd.patches import fit_to_patch
from cvrkd.train.finetune import (FinetuneConfig, Photos, SyntheticPixels, finetune, mix_weights, predict,
                                  with_tail)
from cvrkd.train.pairwise import CARELESS, judgement_pairs
from cvrkd.train.readout import readout_statistics, refit_readout
from cvrkd.train.registry import ModelRegistry

Log = Callable[[str], None]
REPLAY_VALIDATION_PHOTOS = ("china", "flower")
REPLAY_SIDE = 384
"""Long side of the built-in photos the Space's replay set distorts."""


ROUND_FINETUNE = FinetuneConfig(epochs=4, steps_per_epoch=25, batch=10)
"""A round's phase-2b settings: the human phase's loop, bounded in steps so a round's time does not
grow with the number of judgements (each step: ``batch // 2`` judgements drawn, with every other
training judgement among their photos, plus ``replay_batch`` replayed crops)."""


ROUND_DESIGNS = ("readout", "finetune")


@dataclass
class RedistillConfig:
    design: str = "readout"
    """``readout``: fit the readout again on the photos it keeps (statistics and MOS) and on the
    judgements together; the backbone and the head stay (:func:`cvrkd.train.readout.refit_readout`).
    ``finetune``: phase 2b on the judgements with synthetic replay, then a WiSE-FT mix; the
    readout stays as it was fitted."""
    finetune: FinetuneConfig = ROUND_FINETUNE
    """What the round trains with; its ``tuned_stages`` is what a base without a tail (an older
    bundle) starts tuning, while a base with a tail keeps its own depth."""
    replay_rows: int = 400
    """Rows of the synthetic train split regenerated for replay (a seeded subset; 0 = all)."""
    mix_choices: tuple[float, ...] = (0.5, 0.35, 0.25)
    """Shares of the fine-tuning step the candidate may keep (1 = plain fine-tuning)."""
    holdout_fraction: float = 0.25
    srcc_tolerance: float = 0.02
    bootstrap: int = 1000
    min_judgements: int = 50
    replay_types: int = 25
    """Distortion types per built-in photo in the Space's replay set (all 25 by default)."""
    known_order_tolerance: float = 0.05
    """How much the share of known-order pairs (a pool photo above its own strongest distortion) the
    candidate keeps may fall below the base's: about one pair in twenty."""
    disagreement_weight: float = 2.0
    """Training judgements that touch an image where the base model and the crowd disagree
    beyond their uncertainty (``annotations.assisted.disagreements``) count this many times
    in the pair loss: they are where the model has the most to learn. 1 turns it off."""
    synthetic_anchor: float = 1.0
    """``readout`` design: the replayed synthetic images join the refit as anchors, each held to what
    the base's readout says of it, this many times the kept photos' weight in all
    (:func:`cvrkd.train.readout.refit_readout`): the kept photos' MOS say nothing about
    distortions, so without anchors a round may trade the synthetic ranking for the new photos.
    0 turns it off."""
    final_fit_on_all: bool = True
    """``readout`` design: the candidate is refitted on every judgement once the gate has judged the
    fit on the training judgements (the synthetic and known-order checks run again on it)."""
    seed: int = 0
    threads: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    def finetune_config(self, tuned_stages: int) -> FinetuneConfig:
        """The phase-2b settings a round trains with, at the base's depth and the round's seed."""
        return replace(self.finetune, tuned_stages=tuned_stages, seed=self.seed)

    def with_steps(self, epochs: int, steps_per_epoch: int, **changes) -> "RedistillConfig":
        """These settings with a round of ``epochs`` x ``steps_per_epoch`` (and any other field)."""
        return replace(self, finetune=replace(self.finetune, epochs=epochs, steps_per_epoch=steps_per_epoch),
                       **changes)


@dataclass
class ReplayPixels:
    """Distorted images with FR pseudo-labels and their aligned originals (what
    :class:`cvrkd.train.finetune.SyntheticPixels` gives for the synthetic set)."""

    images: list[np.ndarray]
    originals: list[np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class HeldOut:
    """Per decisive held-out judgement, for the served model and the candidate: 1/0 agreement,
    and the log-probability each gives the answer people gave (:func:`held_out_answers`)."""

    agreement: tuple[np.ndarray, np.ndarray]
    log_likelihood: tuple[np.ndarray, np.ndarray]

    def __len__(self) -> int:
        return len(self.agreement[0])


@dataclass
class Decision:
    promote: bool
    reason: str
    base_agreement: float
    candidate_agreement: float
    agreement_gain_ci: tuple[float, float]
    likelihood_gain: float
    """Mean log-likelihood of people's held-out answers, candidate minus served model (nats per judgement)."""
    likelihood_gain_ci: tuple[float, float]
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
def load_views(images: dict[str, Path]) -> dict[str, np.ndarray]:
    """Each image as the network sees it at scoring (the whole view, long side capped)."""
    return {image_id: whole_view(load_image(path).pixels)[0] for image_id, path in images.items()}


def replay_sets(synthetic_dir: Path | None, gallery: Gallery, cache: FeatureCache, config: RedistillConfig,
                log: Log = print, replayed: bool = True
                ) -> tuple[SyntheticPixels | ReplayPixels | None, SyntheticPixels | ReplayPixels, str]:
    """(replayed set, the gate's synthetic check set, origin): the original synthetic training
    set when it is there (``synthetic``), else the built-in photos (``gallery``). ``replayed=False``
    (a round that replays nothing) skips regenerating the synthetic set's train split."""
    if synthetic_dir is not None:
        if not (Path(synthetic_dir) / "labels.csv").is_file():
            raise FileNotFoundError(f"no synthetic training set in {synthetic_dir} (see `cvrkd train data`)")
        replay = SyntheticPixels(synthetic_dir, "train", limit=config.replay_rows, seed=config.seed) if replayed \
            else None
        return replay, SyntheticPixels(synthetic_dir, "val"), "synthetic"
    return (*gallery_replay(gallery, cache, config.replay_types, log, replayed), "gallery")


def gallery_replay(gallery: Gallery, cache: FeatureCache, types: int = 25, log: Log = print,
                   replayed: bool = True) -> tuple[ReplayPixels | None, ReplayPixels]:
    """Every distortion type once per built-in photo (levels rotate) plus the pristine photo, with
    FR pseudo-labels (cached: they cost seconds each); ``REPLAY_VALIDATION_PHOTOS`` are the check.
    ``replayed=False``: the check's photos only (the replayed part is None)."""
    from cvrkd.distortions import DISTORTIONS, LEVELS, distort
    from cvrkd.train.pseudolabels import FAST_METRICS, fr_metrics, label_from_metrics

    photos = gallery.load_images()
    rows = []  # (photo name, image, original)
    for photo_index, photo in enumerate(photos):
        if not replayed and photo.name not in REPLAY_VALIDATION_PHOTOS:
            continue
        pristine = fit_to_patch(resize_long_side(photo.pixels, REPLAY_SIDE), 224)[0]
        rows.append((photo.name, pristine, pristine))
        for type_index, name in enumerate(list(DISTORTIONS)[:types]):
            level = LEVELS[(photo_index + type_index) % len(LEVELS)]
            rows.append((photo.name, distort(pristine, name, level, seed=photo_index), pristine))

    def compute() -> torch.Tensor:
        log(f"replay set: pseudo-labels of {len(rows)} distorted built-in photos")
        return torch.tensor([100.0 if image is original else
                             label_from_metrics(fr_metrics(original, image, FAST_METRICS))
                             for _, image, original in rows])

    part_key = "" if replayed else "-check"
    labels = cache.get_or_compute(f"replay-labels-{gallery.fingerprint()}-t{types}-s{REPLAY_SIDE}{part_key}",
                                  compute).numpy()
    check = np.array([name in REPLAY_VALIDATION_PHOTOS for name, _, _ in rows])

    def part(keep: np.ndarray) -> ReplayPixels:
        chosen = np.flatnonzero(keep)
        return ReplayPixels([rows[i][1] for i in chosen], [rows[i][2] for i in chosen], labels[chosen])

    return (part(~check) if replayed else None), part(check)


def split_images(image_ids: list[str], fraction: float, seed: int) -> set[str]:
    """Held-out image ids: a stable hash decides, so a split never changes between runs."""
    held = set()
    for image_id in image_ids:
        digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
        if int.from_bytes(digest[:4], "big") / 2**32 < fraction:
            held.add(image_id)
    return held


# --------------------------------------------------------------------- scoring
def own_scores(network: CVRKDNet, images: dict[str, np.ndarray], gallery: Gallery) -> dict[str, float]:
    """Scores as the scorer gives them (whole view, mean over the gallery), computed through
    ``network``'s own backbone, its tail in place, references included: a checkpoint's features
    are never reused for another."""
    ids = list(images)
    if not ids:
        return {}
    return dict(zip(ids, predict(network, [images[i] for i in ids], gallery).tolist()))


def agreement_vector(scores: dict[str, float], judgements: pd.DataFrame) -> np.ndarray:
    """1 where the model orders a decisive human judgement the same way, else 0 (ties skipped).
    Every judged image needs a score: a missing one would read as a vote for the right image."""
    decisive = _decisive_with_scores(scores, judgements)
    left = decisive["left_image_id"].map(scores).to_numpy(float)
    right = decisive["right_image_id"].map(scores).to_numpy(float)
    model_left = left > right
    return (model_left == (decisive["choice"] == "left").to_numpy()).astype(float)


def _decisive_with_scores(scores: dict[str, float], judgements: pd.DataFrame) -> pd.DataFrame:
    """The judgements that are not ties; every image they show must have a score."""
    decisive = judgements[judgements["choice"] != "tie"]
    missing = (set(decisive["left_image_id"]) | set(decisive["right_image_id"])) - set(scores)
    if missing:
        raise ValueError(f"{len(missing)} judged images have no score, e.g. {sorted(missing)[:3]}")
    return decisive


def answer_log_likelihood(scores: dict[str, float], judgements: pd.DataFrame) -> np.ndarray:
    """Per decisive judgement, the log-probability the scores give the answer people gave: each
    score difference read by a Thurstone observer (``CARELESS`` of answers random) at the one
    observer scale that fits these scores and answers best. The scale is the model's own (a model
    gains nothing by stretching its scores) and one number fitted on thousands of answers, so
    fitting it on them favours neither model."""
    decisive = _decisive_with_scores(scores, judgements)
    gaps = (decisive["left_image_id"].map(scores).to_numpy(float)
            - decisive["right_image_id"].map(scores).to_numpy(float))
    left = (decisive["choice"] == "left").to_numpy()
    spread = float(np.std(gaps)) or 1.0

    def log_likelihood(log_scale: float) -> np.ndarray:
        p_left = CARELESS / 2 + (1 - CARELESS) * norm.cdf(gaps / (spread * np.exp(log_scale)))
        return np.where(left, np.log(p_left), np.log1p(-p_left))

    best = minimize_scalar(lambda v: -log_likelihood(v).sum(), bounds=(-6.0, 6.0), method="bounded")
    return log_likelihood(float(best.x))


def held_out_answers(base_scores: dict[str, float], candidate_scores: dict[str, float],
                     judgements: pd.DataFrame) -> HeldOut:
    """What the gate compares: both models on the same decisive held-out judgements."""
    return HeldOut((agreement_vector(base_scores, judgements), agreement_vector(candidate_scores, judgements)),
                   (answer_log_likelihood(base_scores, judgements),
                    answer_log_likelihood(candidate_scores, judgements)))


def known_order_kept(scores: dict[str, float], pairs: list[tuple[str, str]]) -> float:
    """Share of (better, worse) pairs the scores put in that order; nan without pairs."""
    if not pairs:
        return float("nan")
    return float(np.mean([scores[better] > scores[worse] for better, worse in pairs]))


def synthetic_srcc(network: CVRKDNet, check: SyntheticPixels | ReplayPixels, gallery: Gallery) -> float:
    """SRCC against the pseudo-labels of the check set, through the network's own backbone."""
    predicted = predict(network, check.images, gallery)
    return float(correlations(predicted, np.asarray(check.labels), n_boot=0).values["srcc"])


def decide(held: HeldOut, base_srcc: float, candidate_srcc: float, config: RedistillConfig,
           known_order: tuple[float, float, int] = (float("nan"), float("nan"), 0)) -> Decision:
    """Promote only a candidate that predicts people's held-out answers better than the base beyond
    noise, keeps the synthetic skill and keeps photos above their own heavy distortions.

    The likelihood, not the 0/1 agreement, decides: it also counts how sure each model is, so it
    sees a gain that the agreement leaves inside its noise (``bench/redistill.py`` reports both
    intervals per split). ``known_order``: (base share, candidate share, pairs) of
    known-order pairs kept. People can be wrong together (a crowd answering the reverse of the
    question agrees with its own held-out judgements too, and the synthetic check does not see the
    pool's photos); this check needs no people. Nor is a crowd trusted whose held-out answers agree
    with the served model less often than chance, beyond noise: that model was validated against
    human MOS, so such people answer another question (a refitted readout can follow them and
    still pass both other checks), unless the known-order pairs show the served model itself
    reversed."""
    rng = np.random.default_rng(config.seed)
    base_correct, candidate_correct = held.agreement
    n = len(held)
    picks = rng.integers(0, n, (config.bootstrap, n))

    def mean_and_interval(values: np.ndarray) -> tuple[float, float, float]:
        if not n:
            return float("nan"), float("nan"), float("nan")
        draws = values[picks].mean(axis=1)
        return float(values.mean()), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))

    base_agree, _, base_high = mean_and_interval(base_correct)
    cand_agree = float(candidate_correct.mean()) if n else float("nan")
    _, low, high = mean_and_interval(candidate_correct - base_correct)
    gain, gain_low, gain_high = mean_and_interval(held.log_likelihood[1] - held.log_likelihood[0])
    # every check that fails is named: a flipped crowd fails the synthetic check and the
    # known-order check together, and the record should say both
    # the served model is the reference for "less often than chance" unless the check that needs no
    # people shows it reversed itself (a photo below its own strongest distortion more often than not)
    served_reversed = bool(known_order[2]) and known_order[0] < 0.5
    problems = []
    if n < 10:
        problems.append(f"too few held-out judgements ({n})")
    elif base_high < 0.5 and not served_reversed:
        problems.append(f"the people agree with the served model on {base_agree:.0%} of held-out pairs, less "
                        "often than chance: they answer another question")
    elif gain_low <= 0:
        problems.append(f"held-out likelihood gain not above noise ({gain:+.4f} per judgement, 95% CI "
                        f"{gain_low:+.4f}..{gain_high:+.4f})")
    if candidate_srcc < base_srcc - config.srcc_tolerance:
        problems.append(f"synthetic SRCC fell {base_srcc - candidate_srcc:.3f} (> tolerance {config.srcc_tolerance})")
    if known_order[2] and known_order[1] < known_order[0] - config.known_order_tolerance:
        problems.append(f"photos fell below their own strongest distortions: the candidate keeps "
                        f"{known_order[1]:.0%} of {known_order[2]} known-order pairs, the base {known_order[0]:.0%}")
    promote = not problems
    reason = "; ".join(problems) if problems else \
        (f"held-out likelihood {gain:+.4f} per judgement (95% CI {gain_low:+.4f}..{gain_high:+.4f}); "
         f"agreement {cand_agree - base_agree:+.3f}")
    return Decision(promote, reason, base_agree, cand_agree, (low, high), gain, (gain_low, gain_high),
                    base_srcc, candidate_srcc, n, *known_order)


# -------------------------------------------------------------------- training
def trainable_base(base: CVRKDNet, config: RedistillConfig) -> CVRKDNet:
    """``base`` with a backbone tail to train: its own, or ImageNet's last ``config.tuned_stages``
    stages for a base without one (it scores exactly as the base does)."""
    stages = base.config.tuned_stages or config.finetune.tuned_stages
    return with_tail(base, FrozenBackbone(base.config.backbone), stages).eval()


def judged_labels(judgements: pd.DataFrame, ids: list[str], weights: dict[str, float] | None,
                  emphasis: np.ndarray | None = None):
    """The judgements as pairs over positions in ``ids``, each weighted by its rater's reliability
    times ``emphasis`` (one factor per judgement row)."""
    position = {image_id: k for k, image_id in enumerate(ids)}
    return judgement_pairs(judgements["left_image_id"].map(position).to_numpy(dtype=np.int64, copy=True),
                           judgements["right_image_id"].map(position).to_numpy(dtype=np.int64, copy=True),
                           judgements["choice"].tolist(),
                           judgements["rater_id"].map(weights or {}).fillna(1.0).to_numpy()
                           * (1.0 if emphasis is None else emphasis))


def choose_mix(base: CVRKDNet, tuned: CVRKDNet, check: SyntheticPixels | ReplayPixels, gallery: Gallery,
               config: RedistillConfig, log: Log = print) -> tuple[float, dict[str, float]]:
    """The largest share whose synthetic-check SRCC drop is within the gate's tolerance.

    Returns the share (the smallest one if none passes; the gate then rejects
    it) and the check's SRCC for each share tried (``base`` = share 0), each
    scored through its own (mixed) backbone.
    """
    tried = {"base": synthetic_srcc(base, check, gallery)}
    for share in sorted(config.mix_choices, reverse=True):
        tried[f"{share:g}"] = synthetic_srcc(mix_weights(base, tuned, share), check, gallery)
        log(f"mix {share:g}: synthetic check SRCC {tried[f'{share:g}']:.3f} (base {tried['base']:.3f})")
        if tried[f"{share:g}"] >= tried["base"] - config.srcc_tolerance:
            return share, tried
    return min(config.mix_choices), tried


# ----------------------------------------------------------------------- round
def run_round(*, judgements: pd.DataFrame, image_paths: dict[str, Path], base: CVRKDNet,
              base_info: CheckpointInfo, teacher: CVRKDNet, gallery: Gallery, registry: ModelRegistry,
              cache: FeatureCache, config: RedistillConfig = RedistillConfig(),
              weights: dict[str, float] | None = None, log: Log = print,
              synthetic_dir: Path | None = None, known_order: list[tuple[str, str]] = ()) -> RoundResult:
    """One complete round: split, fine-tune, gate, record (and promote if better).

    ``synthetic_dir``: the original synthetic training set, replayed and checked
    on when given; otherwise the built-in photos' replay set (its pseudo-labels
    are kept in ``cache``). ``known_order``: (better, worse) image pairs whose
    order needs no people (a pool photo and its strongest distortion); the gate
    refuses a candidate that keeps fewer of them. A killed round resumes its
    fine-tuning from the registry's ``training`` folder when rerun on the same
    judgements.
    """
    started = time.time()
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run_round(judgements, image_paths, base, base_info, teacher, gallery, registry, cache,
                          config, weights, log, synthetic_dir, known_order, started)
    finally:
        torch.set_num_threads(threads)  # callers in the same process keep their thread pool


def _run_round(judgements, image_paths, base, base_info, teacher, gallery, registry, cache, config,
               weights, log, synthetic_dir, known_order, started) -> RoundResult:
    run_id = uuid.uuid4().hex[:12]
    usable = judgements[judgements["left_image_id"].isin(image_paths)
                        & judgements["right_image_id"].isin(image_paths)]
    record = {"run_id": run_id, "started_at": started, "base_version": base_info.version,
              "n_judgements": int(len(usable)), "config": config.to_dict()}
    refusal = None
    if len(usable) < config.min_judgements:
        refusal = f"only {len(usable)} usable judgements (< {config.min_judgements})"
    elif config.design == "readout" and not _keeps_memory(base):
        refusal = ("the served model keeps no readout memory (it was trained before rounds refit the readout): "
                   "use the design 'finetune'")
    if refusal:
        nothing = (float("nan"), float("nan"))
        decision = Decision(False, refusal, *nothing, nothing, float("nan"), nothing, *nothing, 0)
        return _finish(registry, record, decision, None, started)
    image_ids = sorted(set(usable["left_image_id"]) | set(usable["right_image_id"]))
    held = split_images(image_ids, config.holdout_fraction, config.seed)
    touches_held = usable["left_image_id"].isin(held) | usable["right_image_id"].isin(held)
    train_judgements, val_judgements = usable[~touches_held], usable[touches_held]
    record.update(n_train=int(len(train_judgements)), n_validation=int(len(val_judgements)),
                  n_images=len(image_ids), n_held_out_images=len(held))
    log(f"loading {len(image_ids)} judged images")
    views = load_views({i: image_paths[i] for i in image_ids})
    start = trainable_base(base, config)
    log("scoring the judged images with the base model")
    base_scores = own_scores(start, views, gallery)  # disagreements (training images) and the gate (held out)
    flagged = disagreement_images(base_scores, base_info.version, train_judgements, weights)
    record.update(n_disagreements=len(flagged), disagreement_images=flagged[:20])
    train_ids = sorted(set(train_judgements["left_image_id"]) | set(train_judgements["right_image_id"]))
    labels = judged_labels(train_judgements, train_ids, weights,
                           pair_emphasis(train_judgements, set(flagged), config.disagreement_weight))
    anchored = config.design == "readout" and config.synthetic_anchor > 0
    replay, check, origin = replay_sets(synthetic_dir, gallery, cache, config, log,
                                        replayed=config.design == "finetune" or anchored)
    record.update(replay=origin, design=config.design)
    if config.design == "readout":
        log(f"refitting the readout on its {start.readout.memory_mos.numel()} kept photos and {len(labels)} "
            f"judgements" + (f", with {len(replay)} synthetic anchors" if anchored else ""))
        # one backbone pass per judged image: the gate's fit reads the training images' rows
        statistics = dict(zip(image_ids, readout_statistics(start, [views[i] for i in image_ids], gallery)))
        anchors = readout_statistics(start, replay.images, gallery) if anchored else None
        candidate = refit_readout(start, np.stack([statistics[i] for i in train_ids]), labels,
                                  anchors=anchors, anchor_weight=config.synthetic_anchor)
        served = _fit_on_every_judgement(start, usable, image_ids, statistics, weights, flagged, config, anchors) \
            if config.final_fit_on_all else candidate
        checks = (synthetic_srcc(start, check, gallery), synthetic_srcc(served, check, gallery))
        record.update(mix=None, mix_check_srcc={"base": checks[0], "candidate": checks[1]},
                      fitted_on="every judgement" if served is not candidate else "the training judgements")
    else:
        state = registry.root / "training" / _round_key(base_info.version, usable, config)
        tuned = finetune(start, Photos([views[i] for i in train_ids], np.zeros(len(train_ids))), gallery,
                         config.finetune_config(start.config.tuned_stages), state, replay, teacher,
                         log=lambda m: log(m.replace("fine-tune", "re-distill")), pairs=labels)
        share, tried = choose_mix(start, tuned, check, gallery, config, log)
        candidate = served = mix_weights(start, tuned, share).eval()
        checks = (tried["base"], tried[f"{share:g}"])
        record.update(mix=share, mix_check_srcc=tried)
        shutil.rmtree(state, ignore_errors=True)
    record.update(tuned_stages=start.config.tuned_stages,
                  backbones={"base": _fingerprint(start), "candidate": _fingerprint(served)})
    # every image a validation judgement shows, the trained partner of a held-out photo included:
    # both models are judged on the same pairs, each with its own scores; the agreement is the fit
    # that never saw those judgements, the checks without people are the model that would serve
    shown = sorted(set(val_judgements["left_image_id"]) | set(val_judgements["right_image_id"]))
    cand_scores = own_scores(candidate, {i: views[i] for i in shown}, gallery)
    decision = decide(held_out_answers(base_scores, cand_scores, val_judgements), *checks, config,
                      _known_order(start, served, known_order, image_paths, gallery))
    record["validation_scores"] = {"base": {i: base_scores[i] for i in shown}, "candidate": cand_scores}
    gate = {"decision": "promoted" if decision.promote else "rejected", **asdict(decision)}
    info = CheckpointInfo("student", base_info.backbone, served.config, base_info.patches, trained=True,
                          extra={"redistilled_from": base_info.version, "run_id": run_id, "design": config.design,
                                 "mix": record["mix"],
                                 "n_fitted_judgements": int(len(usable if served is not candidate
                                                                else train_judgements)),
                                 "gate": {k: v for k, v in gate.items() if k != "promote"}})
    version = registry.add(served, info)
    if decision.promote:
        registry.promote(version, reason=decision.reason)
    return _finish(registry, record, decision, version, started)


def _fit_on_every_judgement(start: CVRKDNet, judgements: pd.DataFrame, image_ids: list[str],
                            statistics: dict[str, np.ndarray], weights: dict[str, float] | None,
                            flagged: list[str], config: RedistillConfig, anchors: np.ndarray | None = None
                            ) -> CVRKDNet:
    """The readout refitted on every judgement, the held-out ones included: what serves once the gate
    has judged the same fit on the training judgements alone."""
    labels = judged_labels(judgements, image_ids, weights,
                           pair_emphasis(judgements, set(flagged), config.disagreement_weight))
    return refit_readout(start, np.stack([statistics[i] for i in image_ids]), labels, anchors=anchors,
                         anchor_weight=config.synthetic_anchor)


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
                 gallery: Gallery) -> tuple[float, float, int]:
    """(base share, candidate share, pairs) of the known-order pairs whose images are on disk."""
    pairs = [(better, worse) for better, worse in pairs if better in image_paths and worse in image_paths]
    if not pairs:
        return float("nan"), float("nan"), 0
    views = load_views({i: image_paths[i] for i in sorted({image_id for pair in pairs for image_id in pair})})
    return (known_order_kept(own_scores(base, views, gallery), pairs),
            known_order_kept(own_scores(candidate, views, gallery), pairs), len(pairs))


def _keeps_memory(network: CVRKDNet) -> bool:
    return network.readout is not None and hasattr(network.readout, "memory_mos")


def _fingerprint(network: CVRKDNet) -> str:
    from cvrkd.train.finetune import tuned_backbone

    return tuned_backbone(network).fingerprint()


def _round_key(base_version: str, judgements: pd.DataFrame, config: RedistillConfig) -> str:
    """Names a round's resumable training state: the same base, judgements and settings only."""
    columns = ["rater_id", "left_image_id", "right_image_id", "choice"]
    content = judgements[columns].to_csv(index=False)
    text = json.dumps([base_version, content, config.to_dict()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
