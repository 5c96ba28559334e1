"""One loss for every kind of human label: pairs with a target probability.

A MOS-labelled set (like clive_dev) gives, for two images, the probability that a random
observer prefers the first (Thurstone Case V with each image's rater spread); a crowd
judgement gives 1, 0 or 0.5 with the rater's reliability as weight. Both feed the fidelity
loss of UNIQUE (Zhang et al., 2021) on the model's score difference, so the seed data set,
the Rate tab's judgements and re-distillation share one code path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import norm

OBSERVER_SCALE = 20.0 * math.sqrt(2.0)
"""Score difference (0–100 scale) at which the model says 'a beats b' with probability Φ(1):
two observers' noise of about 20 MOS points each, as in the human data (mean mos_std 19.4)."""
MIN_SPREAD = 1.0
CARELESS = 0.05
"""Share of crowd answers our likelihoods take as random (a lapse, a mis-tap): one wrong answer
then costs a bounded penalty instead of an unbounded one."""


@dataclass
class PairLabels:
    """Pairs of image indices and P(first is better), with a weight per pair."""

    first: torch.Tensor  # [M] long
    second: torch.Tensor  # [M] long
    prob: torch.Tensor  # [M] float in [0, 1]
    weight: torch.Tensor  # [M] float >= 0

    def __len__(self) -> int:
        return int(self.first.shape[0])

    def subset(self, keep: torch.Tensor) -> "PairLabels":
        return PairLabels(self.first[keep], self.second[keep], self.prob[keep], self.weight[keep])

    def among(self, images: torch.Tensor) -> "PairLabels":
        """Only pairs whose two images are both in ``images`` (e.g. one CV training fold)."""
        inside = torch.zeros(int(max(self.first.max(), self.second.max())) + 1, dtype=torch.bool)
        inside[images[images < len(inside)]] = True
        return self.subset(inside[self.first] & inside[self.second])


def mos_pairs(mos: np.ndarray, mos_std: np.ndarray | None = None) -> PairLabels:
    """Every pair of a MOS-labelled set with its Thurstone preference probability."""
    mos = np.asarray(mos, float)
    spread = np.full_like(mos, OBSERVER_SCALE / math.sqrt(2.0)) if mos_std is None else \
        np.maximum(np.asarray(mos_std, float), MIN_SPREAD)
    first, second = np.triu_indices(len(mos), k=1)
    prob = norm.cdf((mos[first] - mos[second]) / np.hypot(spread[first], spread[second]))
    return PairLabels(torch.from_numpy(first).long(), torch.from_numpy(second).long(),
                      torch.from_numpy(prob).float(), torch.ones(len(first)))


CHOICE_PROB = {"left": 1.0, "right": 0.0, "tie": 0.5}


def judgement_pairs(first: np.ndarray, second: np.ndarray, choices: list[str],
                    weights: np.ndarray | None = None) -> PairLabels:
    """Crowd judgements: ``first``/``second`` are image indices, ``choices`` left/right/tie."""
    prob = torch.tensor([CHOICE_PROB[c] for c in choices], dtype=torch.float32)
    weight = torch.ones(len(prob)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    return PairLabels(torch.as_tensor(first).long(), torch.as_tensor(second).long(), prob, weight)


def fidelity_loss(score_first: torch.Tensor, score_second: torch.Tensor, prob: torch.Tensor,
                  weight: torch.Tensor | None = None, scale: float = OBSERVER_SCALE) -> torch.Tensor:
    """Weighted mean fidelity loss 1 - sqrt(p p̂) - sqrt((1-p)(1-p̂)), p̂ = Φ(Δscore / scale)."""
    predicted = torch.special.ndtr((score_first - score_second) / scale)
    eps = 1e-8
    loss = 1 - torch.sqrt(prob * predicted + eps) - torch.sqrt((1 - prob) * (1 - predicted) + eps)
    if weight is None:
        return loss.mean()
    return (loss * weight).sum() / weight.sum().clamp_min(1e-6)
