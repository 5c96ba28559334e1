"""Which pair to show next: informative pairs, plus gold and repeat checks.

Most pairs are "active": the pair whose judgement is expected to teach the
most about the scores, by expected information gain under the current
Gaussian belief (``annotations.posterior``, as in ASAP). ``strategy="random"``
draws active pairs uniformly instead (the benchmark's baseline).

A share of pairs are gold checks (a known better image against a known worse
one) and repeats (a pair the rater already judged, shown again with sides
swapped); they feed ``annotations.quality``. Active pairs alternate between
same-content pairs (two versions of one photo: easiest for people) and
cross-content pairs (needed to put different photos on one scale). A rater
never gets the same pair twice in a row, and sides are always randomised.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from annotations.blas import single_threaded
from annotations.pairs import Weights, comparisons
from annotations.posterior import GaussianPosterior

PairKind = Literal["active", "gold", "repeat"]
Strategy = Literal["information", "random"]
STRATEGIES = ("information", "random")
_HISTORY = 200  # served pairs remembered per rater, for repeats when no judgements are passed


@dataclass(frozen=True)
class Pair:
    """A pair to show, already in display order."""

    left: str
    right: str
    kind: PairKind


class ActiveSampler:
    """Chooses the next pair for a rater.

    ``content_of`` maps image id -> content id (e.g. the pristine photo a
    distorted image was made from); images without an entry are their own
    content. ``gold_pairs`` are (better, worse) image-id pairs. The posterior
    is refitted when the number of judgements has grown by ``refit_every`` or
    by ``refit_fraction`` of it, whichever is larger. ``prior_sd`` is the
    initial guess of the spread of the scores in units of one rater's
    perceptual noise (re-estimated at each fit). The belief is an n x n
    covariance: meant for up to a few thousand images. Thread-safe.
    """

    def __init__(
        self,
        image_ids: Sequence[str],
        content_of: Mapping[str, str] | None = None,
        gold_pairs: Iterable[tuple[str, str]] = (),
        gold_share: float = 0.1,
        repeat_share: float = 0.1,
        same_content_share: float = 0.5,
        seed: int = 0,
        strategy: Strategy = "information",
        refit_every: int = 10,
        refit_fraction: float = 0.01,
        prior_sd: float = 1.0,
    ) -> None:
        self.ids = list(dict.fromkeys(image_ids))
        if len(self.ids) < 2:
            raise ValueError("the sampler needs at least two images")
        shares = {"gold_share": gold_share, "repeat_share": repeat_share, "same_content_share": same_content_share}
        for name, share in shares.items():
            if not 0 <= share <= 1:
                raise ValueError(f"{name} must be in [0, 1]; got {share}")
        if gold_share + repeat_share > 1:
            raise ValueError("gold_share + repeat_share must not exceed 1")
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
        self.index = {image_id: k for k, image_id in enumerate(self.ids)}
        self.gold_pairs = [(str(b), str(w)) for b, w in gold_pairs]
        self.gold_share, self.repeat_share = gold_share, repeat_share
        self.same_content_share = same_content_share
        self.strategy = strategy
        self.refit_every, self.refit_fraction = refit_every, refit_fraction
        self.rng = np.random.default_rng(seed)
        self.posterior = GaussianPosterior(len(self.ids), prior_sd=prior_sd)
        self.fitted_on = 0
        self._lock = threading.Lock()
        self._last: dict[str, frozenset[str]] = {}
        self._history: dict[str, list[tuple[str, str]]] = {}
        content = content_of or {}
        groups = {c: k for k, c in enumerate(dict.fromkeys(content.get(x, x) for x in self.ids))}
        self._content = np.array([groups[content.get(x, x)] for x in self.ids])
        same = self._content[:, None] == self._content[None, :]
        self._same = np.triu(same, k=1)  # pairs i < j only
        self._cross = np.triu(~same, k=1)
        self._has_same, self._has_cross = bool(self._same.any()), bool(self._cross.any())
        self._gain = self._jittered(self.posterior.information_gain())  # refreshed at fits and for picked rows

    def _jittered(self, gain: np.ndarray) -> np.ndarray:
        """Break exact ties (e.g. before any judgement) at random rather than by image order."""
        return gain + 1e-9 * self.rng.random(gain.shape)

    # --- model -------------------------------------------------------------

    def needs_update(self, n_judgements: int) -> bool:
        """True when enough new judgements arrived to refit the posterior."""
        grown = n_judgements - self.fitted_on
        return grown >= max(self.refit_every, self.refit_fraction * self.fitted_on)

    def update(self, judgements_df: pd.DataFrame, weights: Weights = None) -> None:
        """Refit the posterior on all judgements (ties count half a win each way)."""
        with self._lock:
            self._update(judgements_df, weights)

    def _update(self, judgements_df: pd.DataFrame, weights: Weights) -> None:
        self.fitted_on = len(judgements_df)
        if self.strategy == "random" or len(judgements_df) == 0:
            return
        c = comparisons(judgements_df, ids=self.ids, weights=weights)
        half = np.where(c.tie, 0.5, 1.0) * c.weight
        winner = np.concatenate([c.winner, c.loser[c.tie]])
        loser = np.concatenate([c.loser, c.winner[c.tie]])
        weight = np.concatenate([half, half[c.tie]])
        with single_threaded():
            self.posterior.fit(winner, loser, weight)
            self._gain = self._jittered(self.posterior.information_gain())

    # --- choosing ------------------------------------------------------------

    def next_pair(self, rater_id: str, judgements_df: pd.DataFrame | None = None, weights: Weights = None) -> Pair:
        """The pair to show ``rater_id`` now.

        Pass the current judgements (and rater weights) to let the sampler
        refit when due and draw repeats from what the rater really judged;
        without them it uses the active pairs it served this rater.
        """
        with self._lock:
            if judgements_df is not None and self.needs_update(len(judgements_df)):
                self._update(judgements_df, weights)
            return self._next(rater_id, judgements_df)

    def _next(self, rater_id: str, judgements_df: pd.DataFrame | None) -> Pair:
        last = self._last.get(rater_id)
        u = self.rng.random()
        pair: Pair | None = None
        if u < self.gold_share:
            pair = self._gold(last)
        elif u < self.gold_share + self.repeat_share:
            pair = self._repeat(rater_id, last, judgements_df)
        if pair is None:
            pair = self._active(last)
        self._last[rater_id] = frozenset((pair.left, pair.right))
        if pair.kind == "active":
            history = self._history.setdefault(rater_id, [])
            history.append((pair.left, pair.right))
            del history[:-_HISTORY]
        return pair

    def _shown(self, a: str, b: str, kind: PairKind) -> Pair:
        return Pair(a, b, kind) if self.rng.random() < 0.5 else Pair(b, a, kind)

    def _gold(self, last: frozenset[str] | None) -> Pair | None:
        options = [p for p in self.gold_pairs if frozenset(p) != last]
        if not options:
            return None
        better, worse = options[self.rng.integers(len(options))]
        return self._shown(better, worse, "gold")

    def _repeat(self, rater_id: str, last: frozenset[str] | None, judgements_df: pd.DataFrame | None) -> Pair | None:
        if judgements_df is not None:
            mine = judgements_df[(judgements_df["rater_id"] == rater_id) & (judgements_df["pair_kind"] == "active")]
            seen = list(zip(mine["left_image_id"], mine["right_image_id"]))
        else:
            seen = self._history.get(rater_id, [])
        options = [p for p in seen if frozenset(p) != last]
        if not options:
            return None
        left, right = options[self.rng.integers(len(options))]
        return Pair(right, left, "repeat")

    def _candidates(self, last: frozenset[str] | None) -> np.ndarray:
        """Upper-triangular mask of the pairs allowed now: one content mode, not the rater's last pair.

        Falls back to the other content mode, then to repeating the last pair,
        only when nothing else is left.
        """
        use_same = self._has_same and (not self._has_cross or self.rng.random() < self.same_content_share)
        modes = [self._same, self._cross] if use_same else [self._cross, self._same]
        indices = [self.index.get(x) for x in last] if last is not None else []
        for mode in modes:
            allowed = mode.copy()
            if len(indices) == 2 and None not in indices:
                allowed[min(indices), max(indices)] = False
            if allowed.any():
                return allowed
        return self._same | self._cross

    def _active(self, last: frozenset[str] | None) -> Pair:
        allowed = self._candidates(last)
        if self.strategy == "random":
            options = np.flatnonzero(allowed)
            k = int(options[self.rng.integers(len(options))])
        else:
            k = int(np.argmax(np.where(allowed, self._gain, -np.inf)))
        i, j = divmod(k, len(self.ids))
        if self.strategy != "random":
            with single_threaded():
                self.posterior.pretend_observed(i, j)
                touched = np.array([i, j])
                fresh = self._jittered(self.posterior.information_gain(touched))
            self._gain[touched, :] = fresh
            self._gain[:, touched] = fresh.T
        return self._shown(self.ids[i], self.ids[j], "active")
