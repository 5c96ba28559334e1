"""The pairs each rater was served in a campaign's round, so that none is served to them twice.

A rater who is shown the same two images again and again learns nothing new
and teaches the campaign nothing new; the only pair served twice is a repeat
check (``annotations.sampler``). The record lives in memory, per campaign, round
and rater, and is rebuilt from the store (the rater's judgements and skips of
the round) the first time a rater asks after a restart or after being
forgotten: the least recently active raters are forgotten beyond
``max_raters``. Pairs served and never answered are known only while the
rater is remembered.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable

Key = tuple[str, int, str]
"""(campaign, round, public rater id)."""


class ServedPairs:
    """How often each pair was served to each rater in a campaign's round; not thread-safe (the rating
    service holds its lock)."""

    def __init__(self, max_raters: int = 50_000) -> None:
        self.max_raters = max_raters
        self._served: OrderedDict[Key, Counter[frozenset[str]]] = OrderedDict()

    def get(self, key: Key) -> Counter[frozenset[str]] | None:
        """The rater's record, or None when it must first be rebuilt from the store (``remember``)."""
        served = self._served.get(key)
        if served is not None:
            self._served.move_to_end(key)
        return served

    def remember(self, key: Key, answered: Iterable[tuple[str, str]]) -> Counter[frozenset[str]]:
        """Start the rater's record from the pairs they answered (left, right), unless another request did
        meanwhile; return it."""
        served = self._served.get(key)
        if served is None:
            served = Counter(frozenset(pair) for pair in answered)
            self._served[key] = served
            while len(self._served) > self.max_raters:
                self._served.popitem(last=False)
        self._served.move_to_end(key)
        return served
