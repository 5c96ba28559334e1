"""What the judgements say: scaled quality with CIs, model agreement, activity, raters.

Scaling is ``annotations.scaling.scale`` (Bradley–Terry with bootstrap 95%
intervals, raters weighted by ``annotations.quality.rater_stats``); this module
adds the model-vs-people comparison and the summaries the Leaderboard tab and
the ``/leaderboard`` endpoint show, per campaign. Results are cached until new
judgements arrive, because the bootstrap takes seconds (the live view adds its
own refresh interval on top, see ``space.services.live``).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from annotations.assisted import Estimates, estimate
from annotations.quality import rater_stats
from annotations.rounds import current_judgements
from annotations.scaling import scale
from annotations.schema import DEFAULT_CAMPAIGN
from annotations.store import AnnotationStore
from space.services.catalogue import ImageCatalogue
from space.services.pool_scores import PoolScores


@dataclass
class Agreement:
    """How often the model orders a pair the way most people did, and rank correlation."""

    pairs: int = 0
    agreed: int = 0
    srcc: float | None = None
    images: int = 0

    @property
    def share(self) -> float | None:
        return self.agreed / self.pairs if self.pairs else None

    def to_dict(self) -> dict:
        return {"majority_pairs": self.pairs, "model_agrees": self.agreed, "share": self.share,
                "srcc_vs_scaled": self.srcc, "images_compared": self.images}


@dataclass
class Insights:
    n_judgements: int
    n_raters: int
    ranking: pd.DataFrame
    agreement: Agreement
    activity: pd.DataFrame
    raters: pd.DataFrame
    estimates: Estimates
    """Human-only and model-assisted estimates, the calibration of the model's prior, disagreements."""
    campaign: str = DEFAULT_CAMPAIGN
    computed_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    results_hidden: bool = False
    """The campaign's presenter hides the results: no ranking, agreement or estimates (see ``withheld``)."""

    def withheld(self) -> Insights:
        """What anyone may see of a hidden campaign: how many votes, raters and when, not what they say.

        The ranking, the model's agreement with people and both estimates are emptied (rater statistics
        stay: they rate the raters, not the images)."""
        return replace(self, ranking=self.ranking.iloc[0:0], agreement=Agreement(), results_hidden=True,
                       estimates=replace(self.estimates, table=self.estimates.table.iloc[0:0], calibration=None,
                                         use_prior=False))

    def to_dict(self) -> dict:
        """Plain JSON for API clients."""
        return {
            "campaign": self.campaign, "results_hidden": self.results_hidden,
            "n_judgements": self.n_judgements, "n_raters": self.n_raters,
            "ranking": json_rows(self.ranking), "agreement": self.agreement.to_dict(),
            "activity": json_rows(self.activity), "raters": json_rows(self.raters),
            "estimates": json_rows(self.estimates.table),
            "calibration": self.estimates.calibration.to_dict() if self.estimates.calibration else None,
            "disagreements": json_rows(self.estimates.flagged()),
            "computed_at": self.computed_at,
        }


HIDDEN_NOTE = "Results are hidden until the presenter reveals them."

RANKING_COLUMNS = ["rank", "image_id", "title", "score", "ci_low", "ci_high", "n_judgements", "model_score"]
RATER_COLUMNS = ["rater", "judgements", "gold_accuracy", "repeat_consistency", "left_share",
                 "median_response_s", "weight", "flagged"]


def model_agreement(judgements: pd.DataFrame, model_scores: dict[str, float],
                    scaled: pd.DataFrame) -> Agreement:
    """Majority agreement over pairs people judged (ties and split votes left out) + SRCC."""
    result = Agreement()
    decided = judgements[judgements["choice"] != "tie"]
    if len(decided) and model_scores:
        winner = decided["left_image_id"].where(decided["choice"] == "left", decided["right_image_id"])
        loser = decided["right_image_id"].where(decided["choice"] == "left", decided["left_image_id"])
        a, b = winner.where(winner < loser, loser), loser.where(winner < loser, winner)
        wins = pd.DataFrame({"a": a, "b": b, "a_won": (winner == a).astype(int)})
        tally = wins.groupby(["a", "b"])["a_won"].agg(["sum", "count"]).reset_index()
        tally = tally[2 * tally["sum"] != tally["count"]]
        for row in tally.itertuples(index=False):
            if row.a not in model_scores or row.b not in model_scores:
                continue
            model_prefers_a = model_scores[row.a] > model_scores[row.b]
            people_prefer_a = 2 * row.sum > row.count
            result.pairs += 1
            result.agreed += int(model_prefers_a == people_prefer_a)
    both = scaled[scaled["image_id"].isin(model_scores.keys())]
    result.images = len(both)
    if len(both) >= 3:
        rho = spearmanr(both["score"], [model_scores[i] for i in both["image_id"]]).statistic
        result.srcc = None if np.isnan(rho) else float(rho)
    return result


def activity(judgements: pd.DataFrame) -> pd.DataFrame:
    """Judgements per hour (per day once there are more than three days), with a running total."""
    if judgements.empty:
        return pd.DataFrame(columns=["period", "judgements", "total"])
    times = judgements["timestamp"]
    freq = "D" if times.max() - times.min() > pd.Timedelta(days=3) else "h"
    counts = times.dt.floor(freq).value_counts().sort_index()
    return pd.DataFrame({"period": counts.index.strftime("%Y-%m-%d %H:%M"),
                         "judgements": counts.to_numpy(), "total": counts.cumsum().to_numpy()})


def rater_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Per-rater statistics under neutral labels (rater 1 = most active): no ids, no personal data."""
    if stats.empty:
        return pd.DataFrame(columns=RATER_COLUMNS)
    ordered = stats.reset_index(drop=True).sort_values(["n_judgements", "rater_id"], ascending=[False, True])
    return pd.DataFrame({
        "rater": [f"rater {k + 1}" for k in range(len(ordered))],
        "judgements": ordered["n_judgements"].to_numpy(),
        "gold_accuracy": ordered["gold_accuracy"].to_numpy(dtype=float),
        "repeat_consistency": ordered["repeat_consistency"].to_numpy(dtype=float),
        "left_share": ordered["left_share"].to_numpy(dtype=float),
        "median_response_s": ordered["median_response_ms"].to_numpy(dtype=float) / 1000.0,
        "weight": ordered["weight"].to_numpy(dtype=float),
        "flagged": ordered["flagged"].to_numpy(dtype=bool),
    })


class InsightsService:
    """Computes ``Insights`` on demand, reusing the last result while nothing changed."""

    def __init__(self, store: AnnotationStore, images: ImageCatalogue, scores: PoolScores,
                 n_boot: int = 200, model_prior: bool = True) -> None:
        self.store, self.images, self.scores = store, images, scores
        self.n_boot = n_boot
        self.model_prior = model_prior  # the model's scores as a prior for the model-assisted estimate
        self._estimates: dict[str, Estimates] = {}  # campaign -> the last fit, to start the next one from
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[tuple, Insights, Insights]] = {}  # campaign -> (key, insights, withheld)

    def current(self, campaign: str | None = None) -> Insights:
        """The insights of a campaign's current round (default: the pool), withheld while its results are
        hidden; raises ``UnknownCampaign`` for a bad name.

        This is the one place that hides a ranking: the Leaderboard tab, ``/leaderboard``, the Live tab,
        ``/live``, the presenter view and the rating page's live route all read it here (an admin's
        ``campaign export`` reads the store itself). Recomputed only when judgements or model scores
        changed; one computation at a time, callers arriving meanwhile get its result.
        """
        found = self.images.campaign(campaign)
        with self._lock:
            judgements = current_judgements(self.store, found, found.name)
            model_scores = self.scores.current()
            ids = found.ids
            key = (len(judgements), self.scores.version(), len(model_scores), found.created_at, found.round,
                   tuple(ids))
            cached = self._cached.get(found.name)
            if cached is None or cached[0] != key:
                computed = self._compute(found.name, judgements, model_scores, found.gold_pairs(), ids)
                cached = (key, computed, computed.withheld())
                self._cached[found.name] = cached
            return cached[2] if found.results_hidden else cached[1]

    def _compute(self, campaign: str, judgements: pd.DataFrame, model_scores: dict[str, float],
                 gold: list[tuple[str, str]], image_ids: list[str]) -> Insights:
        stats = rater_stats(judgements, gold)
        weights = stats["weight"] if len(stats) else None
        scaled = scale(judgements, weights=weights, n_boot=self.n_boot) if len(judgements) else \
            pd.DataFrame(columns=["image_id", "score", "ci_low", "ci_high", "n_judgements"])
        ranking = scaled.assign(
            rank=np.arange(1, len(scaled) + 1),
            title=[self.images.title(i) if i in self.images else i for i in scaled["image_id"]],
            model_score=[model_scores.get(i, np.nan) for i in scaled["image_id"]],
        )[RANKING_COLUMNS]
        ids = list(dict.fromkeys([*image_ids, *scaled["image_id"]]))
        estimates = estimate(judgements, {i: model_scores[i] for i in ids if i in model_scores}, weights,
                             use_prior=self.model_prior, model_version=self.scores.version() or None,
                             image_ids=ids, warm=self._estimates.get(campaign))
        self._estimates[campaign] = estimates
        return Insights(
            n_judgements=len(judgements), n_raters=int(judgements["rater_id"].nunique()),
            ranking=ranking, agreement=model_agreement(judgements, model_scores, scaled),
            activity=activity(judgements), raters=rater_table(stats), estimates=estimates, campaign=campaign,
        )


def json_rows(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-safe dicts (NaN -> None)."""
    clean = frame.astype(object).where(pd.notna(frame), None)
    return [{k: _plain(v) for k, v in row.items()} for row in clean.to_dict(orient="records")]


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value
