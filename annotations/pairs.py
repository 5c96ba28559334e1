"""Judgement tables as index arrays (winner, loser, tie, weight) for the models.

The scaler, the sampler's posterior and the quality checks all need the same
conversion from "left/right/tie as shown" to "who beat whom"; it lives here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Per-rater weights (a mapping or a Series indexed by rater id; raters not
#: listed weigh 1) or one weight per row (a list or array).
Weights = Mapping[str, float] | Sequence[float] | np.ndarray | pd.Series | None


@dataclass(frozen=True)
class Comparisons:
    """Judgements as arrays over ``ids``; a tie is stored with ``winner``=left, ``loser``=right."""

    ids: list[str]
    winner: np.ndarray
    loser: np.ndarray
    tie: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.winner)


def row_weights(judgements: pd.DataFrame, weights: Weights) -> np.ndarray:
    """One weight per judgement row from per-rater or per-row weights."""
    n = len(judgements)
    if weights is None:
        return np.ones(n)
    if isinstance(weights, (Mapping, pd.Series)):
        lookup = dict(weights.items())
        out = np.array([lookup.get(r, 1.0) for r in judgements["rater_id"]], dtype=float)
    else:
        out = np.asarray(weights, dtype=float)
        if out.shape != (n,):
            raise ValueError(f"expected {n} row weights, got shape {out.shape}")
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise ValueError("weights must be finite and non-negative")
    return out


def comparisons(judgements: pd.DataFrame, ids: Sequence[str] | None = None, weights: Weights = None) -> Comparisons:
    """Convert a judgement table to index arrays.

    ``ids`` fixes the image order (judgements about other images are
    dropped); by default it is every image in the table, sorted.
    """
    w = row_weights(judgements, weights)
    left = judgements["left_image_id"].astype(str).to_numpy()
    right = judgements["right_image_id"].astype(str).to_numpy()
    choice = judgements["choice"].astype(str).to_numpy()
    bad = sorted(set(choice) - {"left", "right", "tie"})
    if bad:
        raise ValueError(f"unknown choice value(s) {bad}; expected left, right or tie")
    if ids is None:
        ids = sorted(set(left) | set(right))
    index = {image_id: k for k, image_id in enumerate(ids)}
    li = np.array([index.get(x, -1) for x in left], dtype=np.int64)
    ri = np.array([index.get(x, -1) for x in right], dtype=np.int64)
    keep = (li >= 0) & (ri >= 0)
    right_won = choice == "right"
    winner = np.where(right_won, ri, li)[keep]
    loser = np.where(right_won, li, ri)[keep]
    return Comparisons(list(ids), winner, loser, (choice == "tie")[keep], w[keep])


def half_wins(c: Comparisons) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(winner, loser, weight) for a model without ties: a tie counts as half a win each way."""
    half = np.where(c.tie, 0.5, 1.0) * c.weight
    winner = np.concatenate([c.winner, c.loser[c.tie]])
    loser = np.concatenate([c.loser, c.winner[c.tie]])
    return winner, loser, np.concatenate([half, half[c.tie]])
