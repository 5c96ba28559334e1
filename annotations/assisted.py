"""Two estimates of every image's quality: from the judgements alone, and model-assisted.

* **human-only**: the Thurstone posterior of the scores given the judgements
  under an exchangeable prior (every image N(0, spread^2), the spread fitted
  by empirical Bayes). It uses nothing but the judgements: what a published
  data set should carry.
* **model-assisted**: the same posterior under the prior that the served
  model's scores give each image (``annotations.calibration``), so an image
  with few judgements leans on the model as far as the model has proved to
  agree with people.

Both are Laplace (Gaussian) posteriors; the 95% intervals are mean ± 1.96 sd.
Scores are on the Thurstone scale (units of one observer's perceptual noise,
the average image at 0), higher = better.

**Disagreement**: how far the judgements moved an image away from its prior,
in units of how far they could be expected to move it if the prior were
right: z = (assisted − prior mean) / sqrt(prior var − assisted var) (the law
of total variance: the prior variance splits into the posterior variance and
the variance of the posterior mean). |z| above ``DISAGREEMENT_Z`` flags the
image: people and model disagree beyond their uncertainty. Those images are
the most valuable training examples for re-distillation (``disagreements``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from annotations.calibration import Calibration, fit, uninformative
from annotations.pairs import Weights, comparisons, half_wins
from annotations.posterior import GaussianPosterior

Z95 = 1.959964
DISAGREEMENT_Z = 2.575829  # two-sided 1%: with hundreds of images, 5% would flag a dozen by chance alone
COLUMNS = [
    "image_id", "n_judgements", "model_score", "prior_mean", "prior_sd",
    "human_score", "human_ci_low", "human_ci_high",
    "assisted_score", "assisted_ci_low", "assisted_ci_high",
    "disagreement", "flagged",
]


@dataclass(frozen=True)
class Estimates:
    """Per-image estimates (``table``, best first) and the fits behind them.

    ``calibration`` is the model-to-scale map (None with the prior off);
    ``human`` holds the spread of the human-only prior (a calibration with
    slope 0). Pass an ``Estimates`` back as ``warm`` to start the next fit
    where this one ended.
    """

    table: pd.DataFrame
    calibration: Calibration | None
    human: Calibration
    use_prior: bool

    @property
    def model_version(self) -> str | None:
        return self.calibration.model_version if self.calibration else None

    def flagged(self) -> pd.DataFrame:
        """The images where model and people disagree, largest disagreement first."""
        flagged = self.table[self.table["flagged"]]
        return flagged.reindex(flagged["disagreement"].abs().sort_values(ascending=False).index)

    def export_frame(self) -> pd.DataFrame:
        """The table with the prior's model version on every row (for exports)."""
        return self.table.assign(prior_model_version=self.model_version)


def estimate(
    judgements_df: pd.DataFrame,
    model_scores: Mapping[str, float] | None = None,
    weights: Weights = None,
    use_prior: bool = True,
    model_version: str | None = None,
    image_ids: Sequence[str] | None = None,
    warm: Estimates | Calibration | None = None,
    threshold: float = DISAGREEMENT_Z,
) -> Estimates:
    """Human-only and model-assisted scores with 95% intervals for every image.

    ``model_scores`` maps image id -> the model's score (any scale, higher =
    better; images without one get the uninformative prior). ``weights`` are
    rater reliability weights as for ``scaling.scale``. The images are
    ``image_ids`` or every image judged or scored. With ``use_prior=False``
    (or no model scores) only the human-only estimate is computed and the
    model-assisted columns are NaN. ``warm`` (the last ``Estimates``, or a
    sampler's calibration) starts the fits where they ended.
    """
    scores = {str(k): float(v) for k, v in (model_scores or {}).items() if v is not None and np.isfinite(v)}
    if image_ids is None:
        judged = set(judgements_df["left_image_id"].astype(str)) | set(judgements_df["right_image_id"].astype(str)) \
            if len(judgements_df) else set()
        image_ids = sorted(judged | set(scores))
    ids = list(dict.fromkeys(str(i) for i in image_ids))
    n = len(ids)
    if len(judgements_df):
        c = comparisons(judgements_df, ids=ids, weights=weights)
        winner, loser, weight = half_wins(c)
        counts = np.bincount(c.winner, minlength=n) + np.bincount(c.loser, minlength=n)
    else:
        winner = loser = np.zeros(0, dtype=np.int64)
        weight, counts = np.zeros(0), np.zeros(n, dtype=np.int64)
    model = np.array([scores.get(i, np.nan) for i in ids])
    assisted_on = use_prior and bool(np.isfinite(model).any())

    warm_human = warm.human if isinstance(warm, Estimates) else None
    warm_model = warm.calibration if isinstance(warm, Estimates) else warm
    human_start = warm_human or uninformative(model_scores=())
    human_post = GaussianPosterior(n)
    human = fit(human_post, winner, loser, weight, np.full(n, np.nan), human_start, use_model=False)
    human = replace(human, n_judgements=len(judgements_df))
    table = pd.DataFrame({"image_id": ids, "n_judgements": counts, "model_score": model})
    table = _with(table, "human", human_post)

    calibration = None
    if assisted_on:
        start = uninformative(scores, model_version)
        if warm_model is not None:  # keep the standardisation of these scores, start from the last fit
            start = replace(start, slope=warm_model.em_slope, residual_sd=warm_model.residual_sd)
        else:  # start uninformative at the spread the judgements alone give
            start = replace(start, residual_sd=human.residual_sd)
        post = GaussianPosterior(n)
        z = start.standardise(model)
        calibration = replace(fit(post, winner, loser, weight, z, start), n_judgements=len(judgements_df),
                              model_version=model_version)
        prior_mean, prior_sd = calibration.prior(model)
        table = _with(table, "assisted", post).assign(prior_mean=prior_mean, prior_sd=prior_sd)
        spare = np.maximum(prior_sd**2 - np.diag(post.cov), 0.0)
        moved = table["assisted_score"].to_numpy() - prior_mean
        z_dis = np.where(spare > 1e-9, moved / np.sqrt(np.maximum(spare, 1e-300)), 0.0)
        table = table.assign(disagreement=z_dis, flagged=np.abs(z_dis) > threshold)
    else:
        table = table.assign(prior_mean=np.nan, prior_sd=np.nan, assisted_score=np.nan, assisted_ci_low=np.nan,
                             assisted_ci_high=np.nan, disagreement=np.nan, flagged=False)
    order = "assisted_score" if assisted_on else "human_score"
    table = table[COLUMNS].sort_values(order, ascending=False, kind="stable").reset_index(drop=True)
    return Estimates(table, calibration, human, assisted_on)


def disagreements(
    judgements_df: pd.DataFrame,
    model_scores: Mapping[str, float],
    weights: Weights = None,
    model_version: str | None = None,
    threshold: float = DISAGREEMENT_Z,
) -> pd.DataFrame:
    """Images where the model's prior and the people's judgements disagree beyond their uncertainty.

    The public entry for re-distillation: these are the most valuable
    training examples. Largest |disagreement| first; ``disagreement`` > 0
    means people rate the image higher than the model's prior said.
    """
    return estimate(judgements_df, model_scores, weights, model_version=model_version,
                    threshold=threshold).flagged().reset_index(drop=True)


def _with(table: pd.DataFrame, name: str, posterior: GaussianPosterior) -> pd.DataFrame:
    sd = np.sqrt(np.maximum(np.diag(posterior.cov), 0.0))
    return table.assign(**{f"{name}_score": posterior.mean, f"{name}_ci_low": posterior.mean - Z95 * sd,
                           f"{name}_ci_high": posterior.mean + Z95 * sd})
