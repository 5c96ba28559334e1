"""From a model's score to a prior on the judgement scale, refitted as judgements arrive.

The judgement scale is the Thurstone scale of ``annotations.posterior``: an
image's quality ``s`` in units of one observer's perceptual noise, the
average image at 0. A model's scores ``m`` inform it through a linear map on
the standardised score ``z = (m - mean) / sd``:

    s_i = slope * z_i + e_i,    e_i ~ N(0, residual_sd^2)

so the prior of image i is N(slope * z_i, residual_sd^2); an image without a
model score gets N(0, slope^2 + residual_sd^2), the spread of all images.
``slope`` and ``residual_sd`` are fitted by empirical Bayes: EM on the
(Laplace-approximated) posterior of the scores given the judgements, which
maximises the marginal likelihood of the judgements. The fit starts
uninformative (slope 0, the prior the same for every image) and moves only
as far as the judgements support, so with few judgements the prior stays
close to uninformative, and a model whose scores do not predict the
judgements ends with a slope near 0 and changes nothing. Weak hyperpriors
keep the fit sane with few images: the slope ~ N(0, 1) and the residual
variance as if two more images had the uninformative spread.

With few judgements the fitted slope is noisy, and a noisy slope would put a
made-up ranking into the prior. So the slope the estimates use is shrunk
towards 0 by its own uncertainty: slope * max(0, 1 - se^2 / slope^2), where
se is the standard error of the fitted slope from the judgements'
information about each image (an empirical-Bayes shrinkage of one
coefficient). A slope within one standard error of 0 gives an uninformative
prior; with many judgements the shrinkage vanishes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from annotations.blas import single_threaded
from annotations.posterior import GaussianPosterior

UNINFORMATIVE_SD = 1.0  # initial spread of the scores, in units of one observer's noise (as the sampler)
_SLOPE_PRIOR_VAR = 1.0
_PSEUDO_IMAGES = 2.0
_VAR_BOUNDS = (0.05**2, 100.0)


@dataclass(frozen=True)
class Calibration:
    """The map from model score to prior: N(slope * z, residual_sd^2), z the standardised score.

    ``score_mean`` and ``score_sd`` standardise the model's scores;
    ``n_judgements`` is how many judgements the fit saw; ``model_version``
    names the model whose scores these are.
    """

    slope: float
    residual_sd: float
    score_mean: float = 0.0
    score_sd: float = 1.0
    n_judgements: int = 0
    iterations: int = 0
    model_version: str | None = None
    fitted_slope: float | None = None  # the EM estimate before shrinkage (None: same as slope)
    slope_se: float | None = None  # its standard error, when known

    @property
    def em_slope(self) -> float:
        """The slope EM continues from (the fitted one, not the shrunk one)."""
        return self.slope if self.fitted_slope is None else self.fitted_slope

    @property
    def spread_sd(self) -> float:
        """Prior sd of an image whose model score is unknown: the spread of all images."""
        return float(np.hypot(self.slope, self.residual_sd))

    @property
    def explained(self) -> float:
        """Share of the score variance the model's scores explain (0: uninformative)."""
        return float(self.slope**2 / (self.slope**2 + self.residual_sd**2))

    def standardise(self, model_scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """z for each model score (NaN stays NaN: no score)."""
        return (np.asarray(model_scores, dtype=float) - self.score_mean) / self.score_sd

    def prior(self, model_scores: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean and sd on the judgement scale for each model score (NaN: no score)."""
        return self._prior_of_z(self.standardise(model_scores))

    def _prior_of_z(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        known = np.isfinite(z)
        mean = np.where(known, self.slope * np.where(known, z, 0.0), 0.0)
        sd = np.where(known, self.residual_sd, self.spread_sd)
        return mean, sd

    def line(self, model_scores: np.ndarray) -> np.ndarray:
        """Calibrated prediction on the judgement scale (the fitted line), for plots."""
        return self.slope * self.standardise(model_scores)

    def to_dict(self) -> dict:
        return {"slope": self.slope, "fitted_slope": self.em_slope, "slope_se": self.slope_se,
                "residual_sd": self.residual_sd, "score_mean": self.score_mean,
                "score_sd": self.score_sd, "explained": self.explained, "n_judgements": self.n_judgements,
                "model_version": self.model_version}


def uninformative(model_scores: Mapping[str, float] | Sequence[float] | np.ndarray = (),
                  model_version: str | None = None, spread_sd: float = UNINFORMATIVE_SD) -> Calibration:
    """Where a fit starts: slope 0, so every image has the same prior; scores standardised as given."""
    values = np.asarray(list(model_scores.values()) if isinstance(model_scores, Mapping) else model_scores,
                        dtype=float)
    values = values[np.isfinite(values)]
    mean = float(values.mean()) if len(values) else 0.0
    sd = float(values.std()) if len(values) > 1 else 0.0
    return Calibration(0.0, spread_sd, mean, sd if sd > 0 else 1.0, model_version=model_version)


def m_step(calibration: Calibration, posterior: GaussianPosterior, z: np.ndarray, use_model: bool) -> Calibration:
    """New slope and residual sd from the current posterior (the M step of EM).

    The expected squared residual is the residual of the posterior mean plus
    the posterior variance. Without ``use_model`` (or fewer than two scored
    images) the slope stays 0 and only the spread is refitted.
    """
    mean, var = posterior.mean, np.diag(posterior.cov)
    known = np.isfinite(z) if use_model else np.zeros(len(z), dtype=bool)
    var_now = calibration.residual_sd**2
    if known.sum() >= 2:
        zk, mk = z[known], mean[known]
        slope = float(np.dot(mk, zk) / (np.dot(zk, zk) + var_now / _SLOPE_PRIOR_VAR))
        residual = float(np.sum((mk - slope * zk) ** 2) + np.sum(var[known]))
        count = known.sum()
    else:
        slope, residual, count = 0.0, float(np.sum(mean**2) + np.sum(var)), len(z)
    new_var = (residual + _PSEUDO_IMAGES * UNINFORMATIVE_SD**2) / (count + _PSEUDO_IMAGES)
    return replace(calibration, slope=slope, fitted_slope=None, slope_se=None,
                   residual_sd=float(np.sqrt(np.clip(new_var, *_VAR_BOUNDS))))


def shrunk(calibration: Calibration, posterior: GaussianPosterior, z: np.ndarray) -> Calibration:
    """The calibration with its slope shrunk towards 0 by its standard error (see the module notes).

    ``posterior`` must be the posterior under ``calibration``'s prior. The
    judgements' information about image i is its posterior precision minus
    its prior precision; the slope's information is then
    sum z_i^2 / (residual_sd^2 + 1 / information_i).
    """
    known = np.isfinite(z)
    prior_var = prior_arrays(calibration, z)[1]
    information = np.maximum(1.0 / np.maximum(np.diag(posterior.cov), 1e-12) - 1.0 / prior_var, 0.0)
    tau2 = calibration.residual_sd**2
    slope_information = float(np.sum((z**2 * information / (1.0 + tau2 * information))[known]))
    slope = calibration.em_slope
    if slope_information <= 0 or slope == 0:
        return replace(calibration, slope=0.0, fitted_slope=slope, slope_se=float("inf"))
    se2 = 1.0 / slope_information
    factor = max(0.0, 1.0 - se2 / slope**2)
    return replace(calibration, slope=slope * factor, fitted_slope=slope, slope_se=float(np.sqrt(se2)))


@single_threaded()
def fit(
    posterior: GaussianPosterior,
    winner: np.ndarray,
    loser: np.ndarray,
    weight: np.ndarray,
    z: np.ndarray,
    start: Calibration,
    use_model: bool = True,
    max_iter: int = 200,
    tol: float = 1e-4,
    shrink: bool = True,
) -> Calibration:
    """EM for the calibration; on return ``posterior`` is the posterior under the returned prior.

    ``z`` are the standardised model scores of the posterior's images (NaN:
    none). ``start`` is where EM starts (``uninformative`` or the last fit);
    without judgements it is returned as it is. With ``shrink`` the returned
    slope is shrunk by its standard error (``shrunk``).
    """
    if not len(weight):
        posterior.set_prior(*prior_arrays(start, z, use_model))
        posterior.fit(winner, loser, weight)
        return start
    calibration = replace(start, slope=start.em_slope, fitted_slope=None, slope_se=None)
    for iteration in range(1, max_iter + 1):
        posterior.set_prior(*prior_arrays(calibration, z, use_model))
        posterior.fit(winner, loser, weight)
        new = replace(m_step(calibration, posterior, z, use_model), iterations=iteration)
        done = abs(new.slope - calibration.slope) < tol and abs(new.residual_sd - calibration.residual_sd) < tol
        calibration = new
        if done:
            break
    posterior.set_prior(*prior_arrays(calibration, z, use_model))
    posterior.fit(winner, loser, weight)
    if shrink and use_model and calibration.slope != 0:
        calibration = shrunk(calibration, posterior, z)
        posterior.set_prior(*prior_arrays(calibration, z, use_model))
        posterior.fit(winner, loser, weight)
    return calibration


def prior_arrays(calibration: Calibration, z: np.ndarray, use_model: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Prior mean and variance per image for ``GaussianPosterior.set_prior`` (z: standardised scores)."""
    mean, sd = calibration._prior_of_z(z if use_model else np.full(len(z), np.nan))
    return mean, sd**2
