"""Which raters may review contributed photos: only ids with a track record ("proven").

A fresh id costs nothing (anyone gets three in a second), so a review by one
proves nothing: an uploader could approve their own photo. A rater is proven
when the store holds, under their public id, at least ``min_judgements``
judgements, the first of them at least ``min_age_s`` ago, and at least
``min_gold`` answers to gold pairs (pairs with a known better image), of which
at least ``min_gold_accuracy`` chose the known better one (a tie counts as
wrong). Ids carry no issue time, so an id's age is that of its first stored
judgement. Only proven raters are shown photos to review, and only their
``ok`` or ``flag`` counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from annotations.quality import rater_stats
from annotations.store import AnnotationStore


@dataclass(frozen=True)
class ProofRule:
    """How much of a track record a reviewer needs."""

    min_judgements: int = 20
    min_age_s: float = 3600.0
    min_gold: int = 4
    min_gold_accuracy: float = 0.8

    def describe(self) -> str:
        return (f"at least {self.min_judgements} judgements over at least {self.min_age_s / 60:.0f} minutes, "
                f"including {self.min_gold} check pairs with {self.min_gold_accuracy:.0%} answered as expected")


class Reviewers:
    """Decides from the judgement store whether a rater's reviews count."""

    def __init__(self, store: AnnotationStore, gold_pairs: Callable[[], Iterable[tuple[str, str]]],
                 rule: ProofRule | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.store, self.gold_pairs, self.rule, self._now = store, gold_pairs, rule or ProofRule(), now

    def shortfall(self, rater: str) -> str | None:
        """None for a proven rater; otherwise what their record lacks, in words for them."""
        rule = self.rule
        judgements = self.store.judgements()
        mine = judgements[judgements["rater_id"] == rater]
        missing = []
        if len(mine) < rule.min_judgements:
            missing.append(f"{len(mine)} of {rule.min_judgements} judgements")
        if len(mine) == 0 or self._now() - mine["timestamp"].min() < timedelta(seconds=rule.min_age_s):
            missing.append(f"your first judgement is less than {rule.min_age_s / 60:.0f} minutes old")
        n_gold, accuracy = 0, 0.0
        if len(mine):
            stats = rater_stats(mine, self.gold_pairs()).iloc[0]
            n_gold = int(stats["n_gold"])
            accuracy = float(stats["gold_accuracy"]) if n_gold else 0.0
        if n_gold < rule.min_gold:
            missing.append(f"{n_gold} of {rule.min_gold} check pairs")
        elif accuracy < rule.min_gold_accuracy:
            missing.append(f"{accuracy:.0%} of check pairs answered as expected")
        if not missing:
            return None
        return (f"Photos are reviewed only by raters with a track record ({rule.describe()}). "
                f"So far: {'; '.join(missing)}.")
