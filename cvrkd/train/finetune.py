"""Stage 3 of human-label training: fine-tune the student through its backbone's last stages.

Stages 1–2 learn on frozen ImageNet features, so human labels could only move a small head.
Here the stage-2 student (mixers, global head) and a copy of the backbone's last
``tuned_stages`` stages, which it then carries in its checkpoint (``CVRKDNet.backbone_tail``),
train end to end on quality-preserving views of the photos: crops at native resolution and
flips, never a resize or a filter. The losses:

* human pairs: the fidelity loss on every pair of photos in the batch, with Thurstone
  probabilities from MOS and its spread; or, for re-distillation, on people's judgements
  (``pairs``: :func:`cvrkd.train.pairwise.judgement_pairs`, reliability-weighted), the same
  loop and loss (:mod:`cvrkd.train.pairwise`);
* synthetic replay: pseudo-label pairs among distorted Kodak crops, and distillation of the
  FR teacher's inner features (the teacher reads them and their aligned originals through the
  untouched ImageNet backbone), so the synthetic ranking is not forgotten.

Only the tail gets gradients: backward passes through the early, high-resolution stages are
most of the cost (``python bench/finetune_cost.py`` times each depth). Every epoch is
checkpointed, so a killed run resumes where it stopped.
"""
from __future__ import annotations

import copy
import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from cvrkd.backbone import FrozenBackbone
from cvrkd.evaluation import correlations
from cvrkd.features import GRID, whole_view
from cvrkd.gallery import Gallery
from cvrkd.imageio import load_image
from cvrkd.model import CVRKDNet
from cvrkd.patches import fit_to_patch
from cvrkd.train.pairwise import OBSERVER_SCALE, PairLabels, fidelity_loss, mos_pairs

Log = Callable[[str], None]


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of stage 3; the shipped values were chosen by 5-fold CV (docs/results.md)."""

    tuned_stages: int = 4
    """Trailing backbone stages trained (of Lite0's 7): 4 = every stage at strides 16 and 32."""
    epochs: int = 8
    batch: int = 12
    crop: int = 320
    """Side of the square native-resolution training crops (the test view is the whole image)."""
    lr_backbone: float = 1e-4
    lr_head: float = 1e-3
    """Global head and the mixers' weight."""
    lr_mixers: float = 1e-4
    """Projection, token mixers and regressor."""
    weight_decay: float = 0.01
    synthetic_weight: float = 0.1
    """Weight of the pseudo-label pairs among the replayed synthetic crops."""
    distill_weight: float = 0.1
    """Weight of the teacher's inner features on the replayed crops (0 = no distillation)."""
    replay_batch: int = 4
    steps_per_epoch: int = 0
    """Cap on the steps of an epoch (0 = one pass over the photos, or over the judgements):
    what bounds a re-distillation round's time."""
    seed: int = 0
    tuned_share: float = 1.0
    """WiSE-FT: the result is start + share x (tuned - start), tensor by tensor, where the start
    is the phase-2a student with ImageNet's tail. Below 1 it keeps part of what the frozen
    features knew, in one network: nothing is added per score."""

    def to_dict(self) -> dict:
        return asdict(self)

    def trained(self) -> "FinetuneConfig":
        """The settings that decide the training run (the share only mixes its result), so rows
        that differ in the share alone share one run."""
        return replace(self, tuned_share=1.0)


# ------------------------------------------------------------------------ data
@dataclass
class Photos:
    """Human-rated photos as the network sees them at test time (whole views), with labels."""

    pixels: list[np.ndarray]
    mos: np.ndarray
    spread: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.pixels)

    def subset(self, rows: np.ndarray) -> "Photos":
        rows = np.asarray(rows)
        return Photos([self.pixels[i] for i in rows], self.mos[rows],
                      None if self.spread is None else self.spread[rows])

    def preference(self) -> torch.Tensor:
        """[N, N] probability that photo i is preferred to photo j (Thurstone, MOS spread)."""
        pairs = mos_pairs(self.mos, self.spread)
        matrix = torch.full((len(self), len(self)), 0.5)
        matrix[pairs.first, pairs.second] = pairs.prob
        matrix[pairs.second, pairs.first] = 1 - pairs.prob
        return matrix


def load_photos(paths: list[Path], mos: np.ndarray, spread: np.ndarray | None = None) -> Photos:
    """Whole views (long side capped as at scoring) of the photos, in memory."""
    return Photos([whole_view(load_image(path).pixels)[0] for path in paths], np.asarray(mos, float),
                  None if spread is None else np.asarray(spread, float))


class SyntheticPixels:
    """The synthetic set's images, regenerated from their sources (the set stores features only):
    each row's distorted image and its aligned pristine original, with its pseudo-label."""

    def __init__(self, synthetic_dir: Path, split: str, limit: int = 0, seed: int = 0) -> None:
        """``limit``: regenerate only a seeded subset of that many rows (0 = all of the split)."""
        from cvrkd.features import resize_long_side
        from cvrkd.distortions import distort

        config = json.loads((Path(synthetic_dir) / "config.json").read_text())
        rows = [row for row in _rows(synthetic_dir) if row["split"] == split]
        if 0 < limit < len(rows):
            rows = [rows[i] for i in np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))]
        size = config["patches"]["size"]
        originals: dict[int, np.ndarray] = {}
        self.images, self.originals, labels = [], [], []
        for row in rows:
            index = int(row["source_index"])
            if index not in originals:
                source = load_image(config["sources"][index]).pixels
                originals[index] = fit_to_patch(resize_long_side(source, config["max_side"]), size)[0]
            pristine = originals[index]
            self.images.append(pristine if row["distortion"] == "pristine" else
                               distort(pristine, row["distortion"], int(row["level"]), seed=config["seed"] + index))
            self.originals.append(pristine)
            labels.append(float(row["label"]))
        self.labels = np.array(labels)

    def __len__(self) -> int:
        return len(self.images)


def _rows(synthetic_dir: Path) -> list[dict]:
    import csv

    with open(Path(synthetic_dir) / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# ----------------------------------------------------------------------- views
def random_crops(images: list[np.ndarray], side: int, rng: np.random.Generator,
                 partners: list[np.ndarray] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[B, 3, S, S] in 0–1: one native-resolution crop per image, flipped half the time;
    ``partners`` (aligned originals) get the same crop. S is ``side`` or the smallest image side."""
    side = min([side] + [min(image.shape[:2]) for image in images])
    crops, partner_crops = [], []
    for index, image in enumerate(images):
        top = int(rng.integers(0, image.shape[0] - side + 1))
        left = int(rng.integers(0, image.shape[1] - side + 1))
        flip = bool(rng.integers(0, 2))
        for source, out in ((image, crops), *(((partners[index], partner_crops),) if partners else ())):
            patch = source[top:top + side, left:left + side]
            out.append(np.ascontiguousarray(patch[:, ::-1] if flip else patch))
    return _tensor(crops), (_tensor(partner_crops) if partners else None)


def _tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


def pooled_views(backbone: FrozenBackbone, images: torch.Tensor) -> torch.Tensor:
    """[B, 1, C, 7, 7]: each image as the network's single (whole-image) view, with autograd."""
    maps = backbone.stage_maps(images)
    return torch.cat([F.adaptive_avg_pool2d(m, GRID) for m in maps], dim=1).unsqueeze(1)


@torch.no_grad()
def view_features(backbone: FrozenBackbone, images: list[np.ndarray]) -> torch.Tensor:
    """[N, 1, C, 7, 7] of whole views, one image at a time (their sizes differ); plain tensors, not
    inference-mode ones (``cvrkd.features.whole_features``), so training can read them."""
    return torch.cat([pooled_views(backbone, _tensor([image])) for image in images])


# -------------------------------------------------------------------- network
def with_tail(student: CVRKDNet, backbone: FrozenBackbone, stages: int) -> CVRKDNet:
    """A copy of ``student`` that owns a copy of the backbone's last ``stages`` stages (already
    tuned ones if the student has a tail of that depth)."""
    if student.backbone_tail is not None and student.config.tuned_stages != stages:
        raise ValueError(f"the student tuned {student.config.tuned_stages} stages, not {stages}")
    network = CVRKDNet(replace(student.config, tuned_stages=stages, backbone=backbone.name))
    state = student.state_dict()
    if student.backbone_tail is None:
        state.update({f"backbone_tail.{k}": v for k, v in backbone.tail(stages).state_dict().items()})
    network.load_state_dict(state, strict=True)
    return network


def tuned_backbone(network: CVRKDNet) -> FrozenBackbone:
    """The ImageNet backbone with ``network``'s tail in place (shared: its gradients reach the
    network)."""
    return FrozenBackbone(network.config.backbone).with_tail(network.backbone_tail)


def _parameter_groups(network: CVRKDNet, config: FinetuneConfig) -> list[dict]:
    head = [*network.global_head.parameters(), network.mix] if network.global_head is not None else []
    tail = list(network.backbone_tail.parameters())
    taken = {id(p) for p in head + tail}
    rest = [p for p in network.parameters() if id(p) not in taken]
    return [{"params": tail, "lr": config.lr_backbone}, {"params": head, "lr": config.lr_head},
            {"params": rest, "lr": config.lr_mixers}]


# ------------------------------------------------------------------- training
def finetune(student: CVRKDNet, photos: Photos, gallery: Gallery, config: FinetuneConfig, out_dir: Path,
             replay: SyntheticPixels | None = None, teacher: CVRKDNet | None = None,
             log: Log = print, pairs: PairLabels | None = None) -> CVRKDNet:
    """Stage 3 on ``photos`` (+ ``replay`` and ``teacher``); resumes from ``out_dir``.

    The human loss reads the photos' MOS, or ``pairs`` (people's judgements over the photos'
    indices) when given."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = FrozenBackbone(student.config.backbone)  # ImageNet's: the teacher's, and the tail's start
    network = with_tail(student, base, config.tuned_stages)
    backbone = tuned_backbone(network)
    groups = _parameter_groups(network, config)
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    batches = MosBatches(photos.preference(), config.batch) if pairs is None else \
        JudgementBatches(pairs, config.batch)
    steps = batches.steps if not config.steps_per_epoch else min(batches.steps, config.steps_per_epoch)
    # warm up over a quarter of the run, but at least two steps (OneCycleLR needs a phase of
    # length > 0, so a run shorter than four steps ends inside its warm-up)
    total_steps = max(4, config.epochs * steps)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in groups],
                                                   total_steps=total_steps,
                                                   pct_start=max(0.25, 2.0 / total_steps))
    start = _resume(out_dir, network, optimizer, schedule)
    replay_pairs = None if replay is None else torch.from_numpy(replay.labels).float()
    references = [image.pixels for image in gallery.load_images()]
    if teacher is not None:
        teacher.eval().requires_grad_(False)
    for epoch in range(start, config.epochs):
        rng = np.random.default_rng([config.seed, epoch])
        torch.manual_seed(config.seed * 1000 + epoch)  # the head's dropout: a resumed epoch is the same
        network.eval()
        reference_views = view_features(backbone, [whole_view(r)[0] for r in references])
        network.train()
        network.backbone_tail.eval()  # folded batch norms, no dropout: the tail has no train mode
        epoch_batches = batches.epoch(rng)
        total = 0.0
        for step in range(steps):
            rows, labels = epoch_batches(step)
            loss = _step_loss(network, backbone, base, photos, rows, labels, replay, replay_pairs,
                              reference_views, teacher, config, rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        _save_state(out_dir, network, optimizer, schedule, epoch + 1)
        log(f"fine-tune epoch {epoch + 1}/{config.epochs}: loss {total / steps:.4f}")
    if config.tuned_share != 1.0:  # the start is rebuilt from the untouched input, not kept through training
        return mix_weights(with_tail(student, base, config.tuned_stages), network, config.tuned_share).eval()
    return network.eval()


def mix_weights(base: CVRKDNet, tuned: CVRKDNet, share: float) -> CVRKDNet:
    """base + share x (tuned - base), tensor by tensor of the state dict, the backbone tail
    included (WiSE-FT)."""
    mixed = copy.deepcopy(base)
    start, end = base.state_dict(), tuned.state_dict()
    mixed.load_state_dict({k: start[k] + share * (end[k] - start[k]) if start[k].is_floating_point() else end[k]
                           for k in start})
    return mixed


class MosBatches:
    """MOS labels: each step takes ``batch`` photos and learns every pair among them."""

    def __init__(self, preference: torch.Tensor, batch: int) -> None:
        self.preference, self.batch = preference, batch
        self.steps = max(1, len(preference) // batch)

    def epoch(self, rng: np.random.Generator) -> Callable[[int], tuple[np.ndarray, PairLabels]]:
        order = rng.permutation(len(self.preference))

        def step(index: int) -> tuple[np.ndarray, PairLabels]:
            rows = order[index * self.batch:(index + 1) * self.batch]
            first, second = torch.triu_indices(len(rows), len(rows), offset=1)
            chosen = torch.from_numpy(np.asarray(rows))
            return rows, PairLabels(first, second, self.preference[chosen[first], chosen[second]],
                                    torch.ones(len(first)))
        return step


class JudgementBatches:
    """People's judgements: each step draws ``batch // 2`` judgements and learns them with every
    other judgement among their photos (a photo's crop is paid for once)."""

    def __init__(self, pairs: PairLabels, batch: int) -> None:
        self.pairs, self.draw = pairs, max(1, batch // 2)
        self.steps = max(1, -(-len(pairs) // self.draw))

    def epoch(self, rng: np.random.Generator) -> Callable[[int], tuple[np.ndarray, PairLabels]]:
        order = torch.from_numpy(rng.permutation(len(self.pairs)))

        def step(index: int) -> tuple[np.ndarray, PairLabels]:
            drawn = self.pairs.subset(order[index * self.draw:(index + 1) * self.draw])
            rows = torch.unique(torch.cat([drawn.first, drawn.second]))
            among = self.pairs.among(rows)
            local = torch.full((int(rows.max()) + 1,), -1, dtype=torch.long)
            local[rows] = torch.arange(len(rows))
            return rows.numpy(), PairLabels(local[among.first], local[among.second], among.prob, among.weight)
        return step


def _step_loss(network, backbone, base, photos, rows, labels: PairLabels, replay, replay_labels,
               reference_views, teacher, config, rng) -> torch.Tensor:
    """Fidelity loss of ``labels`` (pairs over positions in ``rows``) on the photos' crops, plus,
    with ``replay``, the synthetic pairs and the teacher's distillation on replayed crops. Both
    sets of crops go through the tuned backbone in one pass: one batch of 16 crops costs 8% less
    than 12 + 4 (the backbone has no batch statistics, so the numbers are the same)."""
    crops, _ = random_crops([photos.pixels[i] for i in rows], config.crop, rng)
    references = _draw_references(network, reference_views, len(rows), rng)
    replayed = None if replay is None else _draw_replay(network, replay, reference_views, config, rng)
    views = _pooled_together(backbone, [crops] + ([replayed.crops] if replayed else []))
    scores = network(views[0], references).score
    loss = fidelity_loss(scores[labels.first], scores[labels.second], labels.prob, labels.weight)
    if replayed is not None:
        loss = loss + _replay_loss(network, base, views[1], replayed, replay_labels, teacher, config)
    return loss


@dataclass
class _Replayed:
    """One step's replayed synthetic images: crops, their aligned originals, gallery references."""

    rows: np.ndarray
    crops: torch.Tensor
    originals: torch.Tensor
    references: torch.Tensor | None


def _draw_replay(network, replay, reference_views, config, rng) -> _Replayed:
    rows = rng.choice(len(replay), size=config.replay_batch, replace=False)
    crops, originals = random_crops([replay.images[i] for i in rows], config.crop, rng,
                                    [replay.originals[i] for i in rows])
    return _Replayed(rows, crops, originals, _draw_references(network, reference_views, len(rows), rng))


def _replay_loss(network, base, views, replayed: _Replayed, labels, teacher, config) -> torch.Tensor:
    """Pseudo-label pairs among the replayed crops, and the FR teacher's inner features on them
    (it reads each crop and its original through the untouched ImageNet backbone, in one pass)."""
    output = network(views, replayed.references)
    first, second = torch.triu_indices(len(replayed.rows), len(replayed.rows), offset=1)
    target = labels[torch.from_numpy(replayed.rows)]
    prob = torch.distributions.Normal(0.0, 1.0).cdf((target[first] - target[second]) / OBSERVER_SCALE)
    loss = config.synthetic_weight * fidelity_loss(output.score[first], output.score[second], prob)
    if teacher is not None and config.distill_weight > 0 and output.diff_features:
        with torch.no_grad():
            lq, original = pooled_views(base, torch.cat([replayed.crops, replayed.originals])).chunk(2)
            guide = teacher(lq, original).diff_features
        distill = sum(F.mse_loss(s, t) for s, t in zip(output.diff_features, guide)) / len(guide)
        loss = loss + config.distill_weight * distill
    return loss


def _draw_references(network: CVRKDNet, reference_views: torch.Tensor, count: int,
                     rng: np.random.Generator) -> torch.Tensor | None:
    """One random gallery reference per image (each reference scores at inference); None for
    an NR network."""
    if not network.config.use_reference:
        return None
    return reference_views[torch.from_numpy(rng.integers(0, len(reference_views), count))]


def _pooled_together(backbone: FrozenBackbone, batches: list[torch.Tensor]) -> list[torch.Tensor]:
    """:func:`pooled_views` of each batch, through one backbone pass when their crops share a size."""
    if len({batch.shape[1:] for batch in batches}) > 1:
        return [pooled_views(backbone, batch) for batch in batches]
    return list(pooled_views(backbone, torch.cat(batches)).split([len(batch) for batch in batches]))


# ------------------------------------------------------------------- predict
@torch.no_grad()
def predict(network: CVRKDNet, images: list[np.ndarray], gallery: Gallery) -> np.ndarray:
    """Raw scores (mean over the gallery's references) of whole views, as the scorer computes
    them with this network's tuned backbone."""
    return views_and_scores(network, images, gallery)[1]


@torch.no_grad()
def views_and_scores(network: CVRKDNet, images: list[np.ndarray], gallery: Gallery
                     ) -> tuple[torch.Tensor, np.ndarray]:
    """[N, C, 7, 7] whole views through this network's backbone, and their :func:`predict` scores."""
    network.eval()
    backbone = tuned_backbone(network)
    references = view_features(backbone, [whole_view(image.pixels)[0] for image in gallery.load_images()])
    views, scores = [], []
    for image in images:
        lq = view_features(backbone, [image])[0]
        views.append(lq[-1])
        if network.config.use_reference:
            scores.append(float(network.score_references(lq, references).mean()))
        else:
            scores.append(float(network(lq[None]).score[0]))
    return torch.stack(views), np.array(scores)


def synthetic_srcc(network: CVRKDNet, replay: SyntheticPixels, gallery: Gallery) -> float:
    """SRCC against the pseudo-labels of the synthetic validation images (no forgetting)."""
    predicted = predict(network, replay.images, gallery)
    return float(correlations(predicted, replay.labels, n_boot=0).values["srcc"])


# --------------------------------------------------------------------- resume
STATE_POINTER = "latest.json"


def _save_state(out_dir: Path, network: CVRKDNet, optimizer, schedule, epochs_done: int) -> None:
    """Write the epoch's state to its own folder, then point at it: a kill at any moment
    leaves the previous complete state in use."""
    folder = out_dir / f"epoch-{epochs_done:03d}"
    folder.mkdir(exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in network.state_dict().items()},
              str(folder / "network.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()},
               folder / "optimizer.pt")
    pointer = out_dir / (STATE_POINTER + ".tmp")
    pointer.write_text(json.dumps({"epochs_done": epochs_done, "folder": folder.name}))
    pointer.replace(out_dir / STATE_POINTER)
    for old in out_dir.glob("epoch-*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)


def _resume(out_dir: Path, network: CVRKDNet, optimizer, schedule) -> int:
    """Epochs already done in ``out_dir`` (0 for a fresh run), with their state restored."""
    pointer = out_dir / STATE_POINTER
    if not pointer.exists():
        return 0
    saved = json.loads(pointer.read_text())
    folder = out_dir / saved["folder"]
    network.load_state_dict(load_file(str(folder / "network.safetensors")), strict=True)
    state = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    return int(saved["epochs_done"])
