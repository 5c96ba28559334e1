"""The pairs each rater was served, and answered, in a campaign's round, so that none is served to them twice.

A rater who is shown the same two images again and again learns nothing new
and teaches the campaign nothing new; the only pair served twice is a repeat
check (``annotations.sampler``), or a pair the rater never answered (they
reloaded the page) once every other one was served. The record lives in
memory, per campaign, round and rater, and is rebuilt from the store (the
rater's judgements and skips of the round) the first time a rater asks after
a restart or after being forgotten: the least recently active raters are
forgotten beyond ``max_raters``. Pairs served and never answered are known
only while the rater is remembered.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

Key = tuple[str, int, str]
"""(campaign, round, public rater id)."""


@dataclass
class RaterRecord:
    """How often each pair was served to one rater, and answered (judged or skipped) by them."""

    served: Counter[frozenset[str]] = field(default_factory=Counter)
    answered: Counter[frozenset[str]] = field(default_factory=Counter)


class ServedPairs:
    """Every rater's record; not thread-safe (the rating service holds its lock)."""

    def __init__(self, max_raters: int = 50_000) -> None:
        self.max_raters = max_raters
        self._records: OrderedDict[Key, RaterRecord] = OrderedDict()

    def get(self, key: Key) -> RaterRecord | None:
        """The rater's record, or None when it must first be rebuilt from the store (``remember``)."""
        record = self._records.get(key)
        if record is not None:
            self._records.move_to_end(key)
        return record

    def remember(self, key: Key, answered: Iterable[tuple[str, str]]) -> RaterRecord:
        """Start the rater's record from the pairs they answered (left, right), unless another request did
        meanwhile; return it."""
        record = self._records.get(key)
        if record is None:
            pairs = Counter(frozenset(pair) for pair in answered)
            record = self._records[key] = RaterRecord(pairs, pairs.copy())
            while len(self._records) > self.max_raters:
                self._records.popitem(last=False)
        self._records.move_to_end(key)
        return record

    def answer(self, key: Key, left: str, right: str, change: int = 1) -> None:
        """Count an answer to a pair (``change=-1``: one taken back) in the rater's record, if it is kept."""
        record = self._records.get(key)
        if record is not None:
            pair = frozenset((left, right))
            record.answered[pair] += change
            if record.answered[pair] <= 0:
                del record.answered[pair]
