"""Stage 2 of human-label training: a global-statistics head on top of the CVRKD student.

Stage 1 (:func:`cvrkd.train.human_pipeline.train_synthetic_student`) trains the student's token
mixers on synthetic distortions with FR pseudo-labels and distillation from the teacher. Stage
2 keeps those mixers frozen and learns, from human pairs, the
:class:`~cvrkd.model.GlobalStatisticsHead` (on the whole view's statistics and the frozen
branches' vectors) and the weight of the mixers' score next to it.

Why two stages: training the mixers on a few hundred human-rated photos overfit (5-fold CV
SRCC 0.635, below a linear probe's 0.724), while the frozen mixers' synthetic skill and a
small head on whole-image statistics each keep what they are good at. Because the mixers are
frozen, their scores are computed once per image and stage 2 trains in seconds.

Every loss is the fidelity loss on pairs (:mod:`cvrkd.train.pairwise`): MOS-derived pairs,
crowd judgements and, with a small weight, synthetic pseudo-label pairs that keep the head
from undoing the synthetic ranking.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import cached_property

import torch

from cvrkd.model import CVRKDNet, GlobalStatisticsHead
from cvrkd.train.pairwise import PairLabels, fidelity_loss


@dataclass(frozen=True)
class HeadConfig:
    hidden: int = 256
    epochs: int = 30
    steps_per_epoch: int = 20
    pairs_per_step: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    initial_mix: float = 0.0
    """Start of the mixers' score weight: at 0.5 the frozen mixer score (CV SRCC 0.40 alone) dragged
    the head down (5-fold CV SRCC 0.703 with the branch-reading head, whole view only)."""
    synthetic_weight: float = 0.0
    """Weight of the synthetic pseudo-label pairs next to the human pairs (chosen by CV)."""
    read_branches: bool = True
    """The head reads the frozen branches' vectors too (``ModelConfig.head_reads_branches``)."""
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class HeadData:
    """What stage 2 trains on, for one set of images."""

    whole: torch.Tensor  # [N, variants, C, 7, 7] whole-image-view variants (augmentation)
    mixer: torch.Tensor  # [N] the frozen stage-1 score (inference views, mean over references)
    pairs: PairLabels
    branches: torch.Tensor | None = None
    """[N, references, D] the frozen branches' vectors (inference views), one per reference:
    each training pair draws a reference, as each reference scores at inference."""

    @cached_property
    def statistics(self) -> torch.Tensor:
        """[N, variants, 2C]: what the head reads of each whole-view variant, computed once."""
        flat = GlobalStatisticsHead.statistics(self.whole.flatten(0, 1).float())
        return flat.view(*self.whole.shape[:2], -1)


def with_global_head(student: CVRKDNet, hidden: int, read_branches: bool = False) -> CVRKDNet:
    """A copy of the stage-1 student with a fresh global head; every mixer weight is kept."""
    network = CVRKDNet(replace(student.config, global_head=hidden, head_reads_branches=read_branches))
    missing, unexpected = network.load_state_dict(student.state_dict(), strict=False)
    if unexpected or any(not key.startswith(("global_head.", "mix")) for key in missing):
        raise ValueError(f"stage-1 weights do not fit: missing {missing}, unexpected {unexpected}")
    return network


def _pair_loss(network: CVRKDNet, data: HeadData, count: int, generator: torch.Generator) -> torch.Tensor:
    pick = torch.randint(0, len(data.pairs), (count,), generator=generator)
    pairs = data.pairs.subset(pick)
    rows = torch.cat([pairs.first, pairs.second])
    variants = torch.randint(0, data.whole.shape[1], (len(rows),), generator=generator)
    branches = None
    if network.config.head_reads_branches:
        references = torch.randint(0, data.branches.shape[1], (len(rows),), generator=generator)
        branches = data.branches[rows, references]
    scores = network.mix * data.mixer[rows] + network.global_head.read(data.statistics[rows, variants], branches)
    return fidelity_loss(scores[:count], scores[count:], pairs.prob, pairs.weight)


def train_global_head(student: CVRKDNet, human: HeadData, config: HeadConfig,
                      synthetic: HeadData | None = None) -> CVRKDNet:
    """Stage 2: the student with a global head trained on ``human`` (+ ``synthetic``) pairs."""
    torch.manual_seed(config.seed)
    read_branches = config.read_branches and human.branches is not None
    if read_branches and synthetic is not None and synthetic.branches is None:
        raise ValueError("the head reads the branches: the synthetic pairs need their vectors too")
    network = with_global_head(student, config.hidden, read_branches)
    head = network.global_head
    # standardise on the human-rated photos the head is for: fitting on the synthetic set too
    # cost 0.03 CV SRCC on clive_dev (0.709 -> 0.678, same folds)
    parts = [human.statistics.flatten(0, 1)]
    if read_branches:
        parts.append(human.branches.flatten(0, 1).float())
    head.fit_normalisation(*parts)
    with torch.no_grad():
        network.mix.fill_(config.initial_mix)
    optimizer = torch.optim.AdamW([*head.parameters(), network.mix], lr=config.lr,
                                  weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    head.train()
    for _ in range(config.epochs * config.steps_per_epoch):
        loss = _pair_loss(network, human, config.pairs_per_step, generator)
        if synthetic is not None and config.synthetic_weight > 0:
            loss = loss + config.synthetic_weight * _pair_loss(network, synthetic, config.pairs_per_step,
                                                               generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return network.eval()
