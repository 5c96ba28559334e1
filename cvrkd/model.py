"""The CVRKD network: one class for the FR teacher and the NAR student.

Input: pooled backbone features (see :mod:`cvrkd.features`) of the P patches of
the low-quality image and of one reference (aligned original for the teacher,
other-content HQ image for the student), each [B, P, sum(channels), 7, 7].
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from timm.models.mlp_mixer import MixerBlock
from torch import nn

from cvrkd.backbone import tail_structure
from cvrkd.features import GRID

SCORE_RANGE = (0.0, 100.0)


@dataclass(frozen=True)
class ModelConfig:
    """Network sizes. Defaults keep teacher + student weights under 30 MB (docs/model.md)."""

    stage_channels: tuple[int, ...] = (24, 40, 112, 320)
    num_patches: int = 10
    projected_channels: int = 64
    dim: int = 128
    lq_depth: int = 4
    diff_depth: int = 8
    distill_layers: int = 4
    use_reference: bool = True
    global_head: int = 0
    """Hidden width of the global-statistics head on the whole-image view (0 = no head). It
    needs a layout whose last view is the whole image (``PatchConfig.whole_view``)."""
    head_reads_branches: bool = False
    """The global head also reads the LQ and reference-difference branches' pooled vectors
    (for the reference in hand), not only the whole view's statistics."""
    tuned_stages: int = 0
    """Trailing backbone stages this network fine-tuned and carries (``backbone_tail``); 0 = the
    ImageNet backbone as it is. Scoring runs the backbone with this tail in place."""
    backbone: str = "lite0"
    """The backbone a tuned tail belongs to (only read when ``tuned_stages`` > 0)."""
    readout: bool = False
    """The score also reads a fixed linear readout of the whole view's statistics
    (:class:`LinearReadout`, fitted after training by :mod:`cvrkd.train.readout`)."""
    readout_memory: int = 0
    """Labelled photos whose whole-view statistics and MOS the readout keeps (not the photos):
    a crowd round refits the readout on them and on people's judgements together."""
    calibration: tuple[float, ...] = ()
    """4-parameter logistic (b1, b2, b3, b4) from the network's raw output to the human (MOS)
    scale, fitted on cross-validated predictions; empty = raw output (synthetic scale)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in ("stage_channels", "calibration"):
            if name in known:
                known[name] = tuple(known[name])
        return cls(**known)


@dataclass
class ModelOutput:
    score: torch.Tensor  # [B], on the 0–100 scale
    diff_features: list[torch.Tensor] = field(default_factory=list)  # last L diff-encoder blocks
    vectors: torch.Tensor | None = None  # [B, D] the branches' pooled vectors (CVRKDNet.branch_vectors)


class StageProjection(nn.Module):
    """Per-stage 1x1 projection to C channels, patches stacked along channels."""

    def __init__(self, stage_channels: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        self.splits = list(stage_channels)
        self.projections = nn.ModuleList(nn.Linear(c, out_channels) for c in stage_channels)

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        """[B, P, sumC, 7, 7] -> per stage [B, 49, P*C] tokens."""
        batch, patches = features.shape[:2]
        tokens = features.flatten(3).transpose(2, 3)  # [B, P, 49, sumC]
        stages = torch.split(tokens, self.splits, dim=3)
        out = []
        for stage, projection in zip(stages, self.projections):
            projected = projection(stage)  # [B, P, 49, C]
            out.append(projected.permute(0, 2, 1, 3).reshape(batch, GRID * GRID, -1))
        return out


class MixerEncoder(nn.Module):
    """Token embedding + MLP-Mixer blocks + LayerNorm + mean over tokens."""

    def __init__(self, in_dim: int, dim: int, depth: int) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(MixerBlock(dim, GRID * GRID) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.embed(tokens)
        inner = []
        for block in self.blocks:
            x = block(x)
            inner.append(x)
        return self.norm(x).mean(dim=1), inner


class GlobalStatisticsHead(nn.Module):
    """Scores the whole-image view from per-channel mean and spread over its 7x7 cells.

    Why: authentic camera distortions (blur, noise, exposure) show up as image-wide statistics
    that a linear probe on these numbers already reads better than the token mixers do when
    trained on a few hundred photos. It may also read the student's LQ and
    reference-difference vectors (``branch_dim``), so the reference branch reaches the score
    (cross-validated figures in docs/results.md). Inputs are standardised with buffers fitted on the
    training images (:meth:`fit_normalisation`), so they travel with the checkpoint."""

    def __init__(self, channels: int, hidden: int, dropout: float = 0.2, branch_dim: int = 0) -> None:
        super().__init__()
        inputs = 2 * channels + branch_dim
        self.register_buffer("center", torch.zeros(inputs))
        self.register_buffer("scale", torch.ones(inputs))
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(inputs, hidden), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, 1))

    @staticmethod
    def statistics(view: torch.Tensor) -> torch.Tensor:
        """[B, C, 7, 7] -> [B, 2C]: mean and standard deviation over the cells."""
        return torch.cat([view.mean(dim=(2, 3)), view.std(dim=(2, 3))], dim=1)

    @staticmethod
    def inputs(view: torch.Tensor, branches: torch.Tensor | None = None) -> torch.Tensor:
        """[B, 2C (+ D)]: the view's statistics, then the branch vectors when the head reads them.
        One view ([1, C, 7, 7]) may go with B branch rows: its statistics are computed once."""
        return GlobalStatisticsHead.joined(GlobalStatisticsHead.statistics(view), branches)

    @staticmethod
    def joined(statistics: torch.Tensor, branches: torch.Tensor | None = None) -> torch.Tensor:
        if branches is None:
            return statistics
        return torch.cat([statistics.expand(branches.shape[0], -1), branches], dim=1)

    @torch.no_grad()
    def fit_normalisation(self, *parts: torch.Tensor) -> None:
        """Centre and scale from training-set inputs, given as consecutive column blocks
        ([N, 2C] statistics, then [M, D] branch vectors; row counts may differ)."""
        self.center.copy_(torch.cat([part.mean(0) for part in parts]))
        self.scale.copy_(torch.cat([part.std(0) for part in parts]).clamp_min(1e-3))

    def forward(self, view: torch.Tensor, branches: torch.Tensor | None = None) -> torch.Tensor:
        """[B, C, 7, 7] (and branch vectors [B, D]) -> [B] on the 0–100 scale."""
        return self.read(self.statistics(view), branches)

    def read(self, statistics: torch.Tensor, branches: torch.Tensor | None = None) -> torch.Tensor:
        """The same from statistics computed beforehand ([B, 2C]): training computes each image's
        once instead of once per step (about 50 MB of features a step otherwise)."""
        standard = (self.joined(statistics, branches) - self.center) / self.scale
        return self.mlp(standard).squeeze(1) * SCORE_RANGE[1]


class LinearReadout(nn.Module):
    """A second member in the same pass: a linear function of the whole view's statistics (the
    numbers the global head reads), mixed with the head's score as
    ``head_weight x (score - head_center) + statistics . weight + bias``.

    Why: a ridge regression refitted on the fine-tuned backbone's statistics ranked photos
    better than the head trained with that backbone (cross-validated in docs/results.md), and
    the two together keep the reference branch in the score for no extra backbone pass. Its
    numbers are buffers, set by a closed-form fit, never by gradients."""

    def __init__(self, channels: int, memory: int = 0) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(2 * channels))
        self.register_buffer("bias", torch.zeros(()))
        self.register_buffer("head_weight", torch.ones(()))
        self.register_buffer("head_center", torch.zeros(()))
        if memory:  # what it was fitted on, kept for crowd rounds; the score never reads it
            self.register_buffer("memory_statistics", torch.zeros(memory, 2 * channels))
            self.register_buffer("memory_mos", torch.zeros(memory))

    def forward(self, score: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
        """The head's ``score`` [B] and the whole view [1 or B, C, 7, 7] -> the mixed score [B]."""
        linear = GlobalStatisticsHead.statistics(view) @ self.weight + self.bias
        return self.head_weight * (score - self.head_center) + linear


class CVRKDNet(nn.Module):
    """Scores an LQ image from its features and one reference's features."""

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.config = config
        self.projection = StageProjection(config.stage_channels, config.projected_channels)
        in_dim = config.num_patches * config.projected_channels * len(config.stage_channels)
        self.lq_encoder = MixerEncoder(in_dim, config.dim, config.lq_depth)
        self.diff_encoder = (MixerEncoder(in_dim, config.dim, config.diff_depth)
                             if config.use_reference else None)
        heads = 2 if config.use_reference else 1
        self.regressor = nn.Sequential(nn.Linear(heads * config.dim, config.dim), nn.GELU(),
                                       nn.Linear(config.dim, 1))
        nn.init.constant_(self.regressor[-1].bias, 0.5)
        branch_dim = heads * config.dim if config.head_reads_branches else 0
        self.global_head = (GlobalStatisticsHead(sum(config.stage_channels), config.global_head,
                                                 branch_dim=branch_dim)
                            if config.global_head else None)
        # weight of the token mixers' score next to the global head's, learnt with the head
        self.mix = nn.Parameter(torch.tensor(1.0)) if config.global_head else None
        self.backbone_tail = (tail_structure(config.backbone, config.tuned_stages)
                              if config.tuned_stages else None)
        self.readout = (LinearReadout(sum(config.stage_channels), config.readout_memory)
                        if config.readout else None)

    def branch_vectors(self, lq: torch.Tensor, reference: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """[B, D]: the LQ branch's pooled vector, then the reference-difference branch's (when the
        model has one); and the difference encoder's last blocks, for distillation.

        ``lq`` may be a single image ([1, P, ...]) against B references: its branch then runs
        once and is broadcast, which is what scoring against a gallery needs."""
        lq_stages = self.projection(lq)
        lq_vector, _ = self.lq_encoder(torch.cat(lq_stages, dim=2))
        inner: list[torch.Tensor] = []
        vectors = [lq_vector]
        if self.diff_encoder is not None:
            if reference is None:
                raise ValueError("this model needs reference features")
            ref_stages = self.projection(reference)
            diff = torch.cat([r - q for r, q in zip(ref_stages, lq_stages)], dim=2)
            diff_vector, inner = self.diff_encoder(diff)
            vectors = [lq_vector.expand(diff_vector.shape[0], -1), diff_vector]
            inner = inner[-self.config.distill_layers:] if self.config.distill_layers else []
        return torch.cat(vectors, dim=1), inner

    def forward(self, lq: torch.Tensor, reference: torch.Tensor | None = None) -> ModelOutput:
        vectors, inner = self.branch_vectors(lq, reference)
        score = self.regressor(vectors).squeeze(1) * SCORE_RANGE[1]
        if self.global_head is not None:
            branches = vectors if self.config.head_reads_branches else None
            score = self.mix * score + self.global_head(lq[:, -1], branches)
        if self.readout is not None:
            score = self.readout(score, lq[:, -1])
        return ModelOutput(score=score, diff_features=inner, vectors=vectors)

    def score_references(self, lq: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """[K] calibrated scores of one image's features ([P, C, 7, 7]) against K references
        ([K, P, C, 7, 7]). The LQ branch and the whole view's statistics do not depend on the
        reference, so they run once, not K times (the same numbers as ``forward`` on K copies)."""
        scores = self.calibrate(self(lq[None], references).score)
        return scores.expand(references.shape[0])

    def calibrate(self, raw: torch.Tensor) -> torch.Tensor:
        """Map raw scores onto the human scale with the stored logistic (identity if none),
        so a score reads like a MOS: a blurred photo near the bottom, a sharp one near the top."""
        if not self.config.calibration:
            return raw
        b1, b2, b3, b4 = self.config.calibration
        return (b1 - b2) * torch.sigmoid((raw - b3) / abs(b4)) + b2
