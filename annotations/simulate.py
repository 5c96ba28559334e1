"""Simulated crowds, to measure the sampler and the quality control offline.

An attentive rater is a Thurstone observer: each time they see an image they
perceive its quality as N(MOS, mos_std^2) (the spread of the real raters who
produced the MOS), prefer the higher perception, and call a tie when the two
are within ``tie_margin``. A careless rater answers left or right at random,
quickly. ``simulate_session`` runs the same loop the app runs (sampler ->
rater -> judgement -> periodic refit with reliability weights).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from annotations.quality import rater_stats
from annotations.sampler import ActiveSampler

COLUMNS = ["rater_id", "left_image_id", "right_image_id", "choice", "response_ms", "pair_kind"]


@dataclass(frozen=True)
class Judged:
    """A simulated answer."""

    choice: str
    response_ms: int


class Crowd:
    """A pool of raters, ``careless_share`` of them answering at random."""

    def __init__(
        self,
        mos: Mapping[str, float],
        mos_std: Mapping[str, float],
        n_raters: int = 50,
        careless_share: float = 0.0,
        tie_margin: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.mos, self.mos_std = dict(mos), dict(mos_std)
        self.tie_margin = tie_margin
        self.rng = np.random.default_rng(seed)
        self.rater_ids = [f"sim-{k:03d}" for k in range(n_raters)]
        n_careless = int(round(careless_share * n_raters))
        self.careless = set(self.rng.choice(self.rater_ids, n_careless, replace=False).tolist())

    def pick_rater(self) -> str:
        """The rater who asks for the next pair (uniformly at random)."""
        return self.rater_ids[self.rng.integers(len(self.rater_ids))]

    def judge(self, rater_id: str, left: str, right: str) -> Judged:
        """The rater's answer to "which looks better?"."""
        if rater_id in self.careless:
            return Judged("left" if self.rng.random() < 0.5 else "right", int(self.rng.uniform(300, 900)))
        q_left = self.rng.normal(self.mos[left], self.mos_std[left])
        q_right = self.rng.normal(self.mos[right], self.mos_std[right])
        if abs(q_left - q_right) < self.tie_margin:
            choice = "tie"
        else:
            choice = "left" if q_left > q_right else "right"
        return Judged(choice, int(self.rng.lognormal(np.log(2500), 0.4)))


def simulate_session(
    crowd: Crowd,
    sampler: ActiveSampler,
    budget: int,
    checkpoints: Iterable[int],
    gold_pairs: Iterable[tuple[str, str]],
    weighting: bool = True,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Collect ``budget`` judgements; yield (count, judgements so far) at each checkpoint.

    With ``weighting`` the sampler refits with the raters' reliability weights.
    """
    gold = list(gold_pairs)
    marks = set(checkpoints)
    rows: list[tuple] = []
    for count in range(1, budget + 1):
        if sampler.needs_update(len(rows)):
            df = pd.DataFrame(rows, columns=COLUMNS)
            sampler.update(df, rater_stats(df, gold)["weight"] if weighting and rows else None)
        rater = crowd.pick_rater()
        pair = sampler.next_pair(rater)
        answer = crowd.judge(rater, pair.left, pair.right)
        rows.append((rater, pair.left, pair.right, answer.choice, answer.response_ms, pair.kind))
        if count in marks:
            yield count, pd.DataFrame(rows, columns=COLUMNS)
