"""Which pair to show next: informative pairs, plus gold and repeat checks.

Most pairs are "active": the pair whose judgement is expected to teach the
most about the scores, by expected information gain under the current
Gaussian belief (``annotations.posterior``, as in ASAP). ``strategy="mst"``
serves them in batches instead, as ASAP and Hybrid-MST do: the spanning tree
of all pairs with the most information, so each batch covers every image (on
the benchmark this did worse than random pairing: see docs/performance_annotations.md).
``strategy="random"`` draws active pairs uniformly (the benchmark's baseline).

A share of pairs are gold checks (a known better image against a known worse
one) and repeats (a pair the rater already judged, shown again with sides
swapped); they feed ``annotations.quality``. The check share is a budget
spent where it buys most: raters who look unreliable or have had few checks
get checks more often, trusted raters less, with the overall share kept at
``gold_share + repeat_share``. A flagged rater's answers are down-weighted
anyway, so their turns cost no information when spent on checks, and trusted
raters see more informative pairs. Active pairs alternate between
same-content pairs (two versions of one photo: easiest for people) and
cross-content pairs (needed to put different photos on one scale). A rater
never gets the same pair twice in a row, and sides are always randomised.

Given the pairs a rater was already served (``served``, as the app passes
them) and those they answered, the sampler serves none of them to that rater
again except as a repeat check (at most once each) or, once every other pair
was served, a pair they were served and never answered (a page reloaded);
once they answered every pair the content mode allows, it has nothing useful
left for them and returns None.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from scipy.sparse.csgraph import minimum_spanning_tree

from annotations.blas import single_threaded
from annotations.calibration import Calibration, m_step, prior_arrays, shrunk, uninformative
from annotations.pairs import Weights, comparisons, half_wins, row_weights
from annotations.posterior import GaussianPosterior

PairKind = Literal["active", "gold", "repeat"]
Strategy = Literal["information", "mst", "random"]
STRATEGIES = ("information", "mst", "random")
_HISTORY = 200  # served pairs remembered per rater, for repeats when no judgements are passed
_CHECKS = ("gold", "repeat")
_SHARE_HORIZON = 100.0  # turns over which a surplus or deficit of checks is made up


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
    perceptual noise (re-estimated at each fit). ``design`` (n x n, by
    position in ``image_ids``, upper triangle used) makes
    ``strategy="random"`` draw active pairs in proportion to fixed weights,
    e.g. an optimal design computed offline, rather than uniformly.
    ``model_scores`` (image id -> the served model's score, named by
    ``model_version``) give every image a prior from the model
    (``annotations.calibration``), refitted at every refit, so pairs are
    chosen by information gain under the model-assisted posterior; None
    turns the prior off. The
    belief is an n x n covariance: meant for up to a few thousand images.
    Thread-safe.
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
        design: np.ndarray | None = None,
        model_scores: Mapping[str, float] | None = None,
        model_version: str | None = None,
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
        self.calibration: Calibration | None = None  # the model prior, when model scores are given
        if model_scores:
            known = {str(k): float(v) for k, v in model_scores.items() if v is not None and np.isfinite(v)}
            scores = np.array([known.get(x, np.nan) for x in self.ids])
            self.calibration = uninformative(scores, model_version, spread_sd=prior_sd)
            self._z = self.calibration.standardise(scores)
            self.posterior.set_prior(*prior_arrays(self.calibration, self._z), reset=True)
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
        self._batches: dict[bool, list[int]] = {True: [], False: []}  # "mst": pairs left, same / cross content
        self._design = None if design is None else self._checked_design(design)
        self._weight: dict[str, float] = {}  # reliability by rater, from the last update
        self._turns: Counter[str] = Counter()  # pairs served (or judged) per rater
        self._checks: Counter[str] = Counter()  # of which gold or repeat checks
        self._gain = self._jittered(self.posterior.information_gain())  # refreshed at fits and for picked rows

    def _checked_design(self, design: np.ndarray) -> np.ndarray:
        weights = np.triu(np.asarray(design, dtype=float), k=1)
        n = len(self.ids)
        if weights.shape != (n, n) or not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(f"design must be a finite, non-negative {n} x {n} matrix with some weight above the diagonal")
        return weights

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
        if len(judgements_df) == 0:
            return
        self._track_raters(judgements_df, weights)
        if self.strategy == "random":
            return
        winner, loser, weight = half_wins(comparisons(judgements_df, ids=self.ids, weights=weights))
        with single_threaded():
            self.posterior.fit(winner, loser, weight)
            if self.calibration is not None:  # one EM step of the model prior per refit, used by the next fit
                fitted = m_step(self.calibration, self.posterior, self._z, True)
                self.calibration = replace(shrunk(fitted, self.posterior, self._z), n_judgements=len(judgements_df))
                self.posterior.set_prior(*prior_arrays(self.calibration, self._z))
            self._gain = self._jittered(self.posterior.information_gain())

    def _track_raters(self, judgements_df: pd.DataFrame, weights: Weights) -> None:
        """Turns, checks and reliability per rater, from the judgements (which may come from other processes)."""
        raters = judgements_df["rater_id"].astype(str)
        kinds = judgements_df["pair_kind"] if "pair_kind" in judgements_df else pd.Series("active", index=raters.index)
        self._turns = Counter(raters.value_counts().to_dict())
        self._checks = Counter(raters[kinds.isin(_CHECKS)].value_counts().to_dict())
        self._weight = {} if weights is None else (
            pd.Series(row_weights(judgements_df, weights), index=raters.index).groupby(raters).mean().to_dict()
        )

    # --- checks --------------------------------------------------------------

    def doubt(self, rater_id: str) -> float:
        """How much a check of this rater is worth: low reliability plus little evidence so far.

        ``1 - weight`` (raters without a weight count as reliable) plus
        ``1 / (1 + checks so far)``, so new raters are checked soon and
        trusted ones still now and then.
        """
        weight = min(max(self._weight.get(rater_id, 1.0), 0.0), 1.0)
        return 1.0 - weight + 1.0 / (1.0 + self._checks[rater_id])

    def check_probability(self, rater_id: str) -> float:
        """Chance that this rater's next pair is a gold or repeat check.

        Proportional to ``doubt`` (at most 1), scaled so that over the raters,
        weighted by how often each asks for pairs, the chance averages
        ``gold_share + repeat_share``. That average is nudged (by at most half
        of it) by the checks owed so far or served in excess, so the share of
        checks served stays on target, e.g. while new raters, who get more
        checks, keep arriving.
        """
        share = self.gold_share + self.repeat_share
        raters = [r for r, turns in self._turns.items() if turns > 0]
        if share in (0.0, 1.0) or not raters:
            return share
        turns = np.array([self._turns[r] for r in raters], dtype=float)
        owed = share * turns.sum() - sum(self._checks[r] for r in raters)
        target = min(1.0, share + float(np.clip(owed / _SHARE_HORIZON, -share / 2, share / 2)))
        level = _water_level(turns / turns.sum(), np.array([self.doubt(r) for r in raters]), target)
        return min(1.0, level * self.doubt(rater_id))

    # --- choosing ------------------------------------------------------------

    def next_pair(self, rater_id: str, judgements_df: pd.DataFrame | None = None, weights: Weights = None,
                  served: Mapping[frozenset[str], int] | None = None,
                  answered: Collection[frozenset[str]] = ()) -> Pair | None:
        """The pair to show ``rater_id`` now.

        Pass the current judgements (and rater weights) to let the sampler
        refit when due and draw repeats from what the rater really judged;
        without them it uses the active pairs it served this rater. With
        ``served`` (each pair already served to this rater, and how often) and
        ``answered`` (the pairs they answered), no pair is served again except
        as a repeat check of a pair served once, or a pair never answered once
        all were served; None means nothing useful is left for this rater.
        Without ``served`` a pair is always returned.
        """
        with self._lock:
            if judgements_df is not None and self.needs_update(len(judgements_df)):
                self._update(judgements_df, weights)
            return self._next(rater_id, judgements_df, served, answered)

    def _next(self, rater_id: str, judgements_df: pd.DataFrame | None,
              served: Mapping[frozenset[str], int] | None, answered: Collection[frozenset[str]]) -> Pair | None:
        last = self._last.get(rater_id)
        avoid = {self._flat(last)} - {None}
        pair: Pair | None = None
        if served is not None:
            avoid |= {self._flat(p) for p in served} - {None}
            if not (self._permitted() & ~self._flagged(avoid)).any():  # every pair was served to the rater
                pair = self._unanswered(served, answered)
                if pair is None:
                    return None  # and answered: repeats alone teach little
        if pair is None and self.rng.random() < self.check_probability(rater_id):
            pair = self._check(rater_id, last, judgements_df, avoid, served)
        if pair is None:
            pair = self._active(rater_id, avoid, strict=served is not None)
        self._turns[rater_id] += 1
        self._checks[rater_id] += pair.kind in _CHECKS
        self._last[rater_id] = frozenset((pair.left, pair.right))
        if pair.kind == "active":
            history = self._history.setdefault(rater_id, [])
            history.append((pair.left, pair.right))
            del history[:-_HISTORY]
        return pair

    def _shown(self, a: str, b: str, kind: PairKind) -> Pair:
        return Pair(a, b, kind) if self.rng.random() < 0.5 else Pair(b, a, kind)

    def _check(self, rater_id: str, last: frozenset[str] | None, judgements_df: pd.DataFrame | None,
               avoid: Set[int], served: Mapping[frozenset[str], int] | None) -> Pair | None:
        """Gold or repeat in the ratio ``gold_share : repeat_share``; the other kind when one cannot be made."""
        def gold() -> Pair | None:
            return self._gold(avoid)

        def repeat() -> Pair | None:
            return self._repeat(rater_id, last, judgements_df, served)

        gold_first = self.rng.random() * (self.gold_share + self.repeat_share) < self.gold_share
        makers = [(self.gold_share, gold), (self.repeat_share, repeat)]
        for share, make in makers if gold_first else makers[::-1]:
            pair = make() if share > 0 else None
            if pair is not None:
                return pair
        return None

    def _unanswered(self, served: Mapping[frozenset[str], int], answered: Collection[frozenset[str]]) -> Pair | None:
        """A pair the content mode allows that the rater was served and never answered (None if there is none)."""
        permitted = self._permitted()
        options = sorted(sorted(p) for p in served if p not in answered
                         and (k := self._flat(p)) is not None and permitted.flat[k])
        if not options:
            return None
        return self._shown(*options[self.rng.integers(len(options))], "active")

    def _gold(self, avoid: Set[int]) -> Pair | None:
        options = [p for p in self.gold_pairs if self._flat(frozenset(p)) not in avoid]
        if not options:
            return None
        better, worse = options[self.rng.integers(len(options))]
        return self._shown(better, worse, "gold")

    def _repeat(self, rater_id: str, last: frozenset[str] | None, judgements_df: pd.DataFrame | None,
                served: Mapping[frozenset[str], int] | None) -> Pair | None:
        """A pair the rater judged, sides swapped; with ``served``, only one served to them once so far."""
        if judgements_df is not None:
            mine = judgements_df[(judgements_df["rater_id"] == rater_id) & (judgements_df["pair_kind"] == "active")]
            seen = list(zip(mine["left_image_id"], mine["right_image_id"]))
        else:
            seen = self._history.get(rater_id, [])
        options = [p for p in seen if frozenset(p) != last and (served is None or served.get(frozenset(p)) == 1)]
        if not options:
            return None
        left, right = options[self.rng.integers(len(options))]
        return Pair(right, left, "repeat")

    def _modes(self) -> list[bool]:
        """Content modes to try in order (True: same content), the first drawn with ``same_content_share``."""
        use_same = self._has_same and (not self._has_cross or self.rng.random() < self.same_content_share)
        return [use_same, not use_same]

    def _mask(self, same: bool) -> np.ndarray:
        return self._same if same else self._cross

    def _permitted(self) -> np.ndarray:
        """The pairs the content mode allows at all (upper triangle): only same-content pairs when every
        active pair must be one, only cross-content when none may be, else both."""
        if self.same_content_share >= 1.0 and self._has_same:
            return self._same
        if self.same_content_share <= 0.0 and self._has_cross:
            return self._cross
        return self._same | self._cross

    def _flagged(self, positions: Set[int]) -> np.ndarray:
        """An n x n mask, True at ``positions`` (flat indices)."""
        mask = np.zeros((len(self.ids), len(self.ids)), dtype=bool)
        mask.flat[list(positions)] = True
        return mask

    def _flat(self, pair: frozenset[str] | None) -> int | None:
        """Position of a pair in the upper triangle of the n x n matrices (None for unknown images)."""
        indices = [self.index.get(x) for x in pair] if pair is not None else []
        if len(indices) != 2 or None in indices:
            return None
        return min(indices) * len(self.ids) + max(indices)

    def _candidates(self, avoid: Set[int], modes: list[bool] | None = None, strict: bool = False) -> np.ndarray:
        """Upper-triangular mask of the pairs allowed now: one content mode, none of the pairs to ``avoid`` (the
        rater's last, or all they were served).

        Falls back to the other content mode, then (unless ``strict``: then only
        to pairs the content mode permits and not to avoid) to the pairs avoided,
        only when nothing else is left.
        """
        avoided = self._flagged(avoid)
        for same in self._modes() if modes is None else modes:
            allowed = self._mask(same) & ~avoided
            if allowed.any():
                return allowed
        return self._permitted() & ~avoided if strict else self._same | self._cross

    def _active(self, rater_id: str, avoid: Set[int], strict: bool = False) -> Pair:
        if self.strategy == "random":
            k = self._draw(self._candidates(avoid, strict=strict))
        elif self.strategy == "mst":
            k = self._from_batch(avoid, strict)
        else:
            k = int(np.argmax(np.where(self._candidates(avoid, strict=strict), self._gain, -np.inf)))
        i, j = divmod(k, len(self.ids))
        if self.strategy != "random":
            self._pretend(rater_id, i, j)
        return self._shown(self.ids[i], self.ids[j], "active")

    def _from_batch(self, avoid: Set[int], strict: bool) -> int:
        """Next pair of the current spanning-tree batch of the drawn content mode; a new batch when it is used up.

        Skips the pairs to avoid (they stay in the batch for someone else).
        Only when no batch can offer another pair does the best allowed pair
        by information gain stand in.
        """
        modes = self._modes()
        for same in modes:
            if not self._mask(same).any():
                continue
            batch = self._batches[same]
            k = _take(batch, avoid)
            if k is None:
                batch[:] = self._tree(self._mask(same))
                k = _take(batch, avoid)
            if k is not None:
                return k
        return int(np.argmax(np.where(self._candidates(avoid, modes, strict), self._gain, -np.inf)))

    def _tree(self, mask: np.ndarray) -> list[int]:
        """A batch: the spanning tree (forest, for same-content pairs) of ``mask`` with the most information.

        Every image appears at least once per batch, which keeps coverage
        balanced, and among such covers the tree prefers informative pairs:
        a minimum spanning tree with edge costs 1 / gain (any decreasing
        function of the gain gives the same tree). Served in random order.
        """
        cost = np.where(mask, 1.0 / np.maximum(self._gain, 1e-12), 0.0)  # zero: no edge
        with single_threaded():
            tree = minimum_spanning_tree(cost).tocoo()
        batch = (np.minimum(tree.row, tree.col) * len(self.ids) + np.maximum(tree.row, tree.col)).tolist()
        self.rng.shuffle(batch)
        return batch

    def _draw(self, allowed: np.ndarray) -> int:
        """A random allowed pair: uniform, or in proportion to the design where it has weight."""
        if self._design is not None and self._design[allowed].sum() > 0:
            weights = np.where(allowed, self._design, 0.0).ravel()
            return int(self.rng.choice(len(weights), p=weights / weights.sum()))
        options = np.flatnonzero(allowed)
        return int(options[self.rng.integers(len(options))])

    def _pretend(self, rater_id: str, i: int, j: int) -> None:
        """Shrink the belief as if the rater had judged (i, j), by as much as their weight says."""
        with single_threaded():
            self.posterior.pretend_observed(i, j, self._weight.get(rater_id, 1.0))
            touched = np.array([i, j])
            fresh = self._jittered(self.posterior.information_gain(touched))
        self._gain[touched, :] = fresh
        self._gain[:, touched] = fresh.T


def _take(batch: list[int], avoid: Set[int]) -> int | None:
    """Remove and return the last pair of the batch not in ``avoid`` (None if there is none)."""
    for position in range(len(batch) - 1, -1, -1):
        if batch[position] not in avoid:
            return batch.pop(position)
    return None


def _water_level(mass: np.ndarray, doubt: np.ndarray, share: float) -> float:
    """The level L with sum(mass * min(1, L * doubt)) = share (mass sums to 1, doubt > 0, 0 <= share <= 1).

    Raters are clipped at probability 1 from the most doubtful down, until the
    rest, scaled linearly, make up the remaining share.
    """
    order = np.argsort(-doubt)
    mass, doubt = mass[order], doubt[order]
    clipped = np.concatenate([[0.0], np.cumsum(mass)[:-1]])  # mass of the raters before k
    rest = np.cumsum((mass * doubt)[::-1])[::-1]  # sum of mass * doubt from k on
    with np.errstate(divide="ignore"):
        levels = np.where(rest > 0, (share - clipped) / rest, np.inf)
    fits = np.flatnonzero(levels * doubt <= 1.0)
    return float(levels[fits[0]]) if len(fits) else float("inf")
