"""Rounds of a campaign: a reset starts a new one, so a speaker can rerun a talk under the same link.

The judgement store is append-only, so a reset deletes nothing: the
campaign's manifest records when each new round began (``Campaign.resets``),
and a judgement belongs to the round during which the server stored it (its
timestamp). Whatever counts "now" (the sampler, a rater's count, the
leaderboard, the live and presenter views, the admin table, ``campaign
list``) keeps only ``in_current_round``; a full export keeps every round and
marks each judgement with its ``round``. Starting a round (and archiving the
earlier ones) is ``annotations.round_reset``.
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from annotations.campaigns import Campaign
from annotations.store import AnnotationStore

"""Folder of the data dir that holds archived rounds (outside the folders the app serves files from)."""


def round_of(campaign: Campaign, timestamps: pd.Series) -> np.ndarray:
    """The round (1, 2, ...) of each judgement time: one more than the resets at or before it."""
    if not campaign.resets:
        return np.ones(len(timestamps), dtype="int32")
    starts = pd.DatetimeIndex(pd.to_datetime(list(campaign.resets), utc=True, format="ISO8601"))
    times = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    return (starts.searchsorted(times, side="right") + 1).astype("int32")


def in_current_round(judgements: pd.DataFrame, campaign: Campaign | None) -> pd.DataFrame:
    """The rows stored since the campaign's last reset (all of them when it was never reset, or for ``None``:
    a campaign no longer there)."""
    if campaign is None or not campaign.resets:
        return judgements
    return judgements[round_of(campaign, judgements["timestamp"]) == campaign.round].reset_index(drop=True)


def current_judgements(store: AnnotationStore, campaign: Campaign | None, name: str) -> pd.DataFrame:
    """The standing judgements of campaign ``name`` (``campaign``: its record) in its current round."""
    return in_current_round(store.judgements(name), campaign)
