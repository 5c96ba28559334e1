"""Gaussian belief over all image scores, for choosing informative pairs.

Thurstone (probit) model, P(i beats j) = Phi((si - sj) / noise), with a
N(0, prior_sd^2) prior (or a per-image prior, e.g. from a model's scores:
``set_prior``), approximated by a full-covariance Gaussian at the MAP
(Laplace). The full covariance matters: two images linked by a chain of
judgements are not as uncertain relative to each other as their own
variances suggest.

A candidate pair is valued by the expected information its judgement gives
about the scores (as in ASAP, Mikhailiuk et al. 2020, in the closed form of
Houlsby et al. 2011 for a probit likelihood). The prior spread is re-estimated
from the data at every fit (empirical Bayes), so the rule does not depend on
knowing how far apart the images are. Between refits, ``pretend_observed``
shrinks the covariance as if a chosen pair had been judged, so consecutive
picks spread out.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import log_ndtr, ndtr

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def _mills(z: np.ndarray) -> np.ndarray:
    """phi(z) / Phi(z), stable for very negative z."""
    return np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_ndtr(z))


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


class GaussianPosterior:
    """Laplace-approximated Thurstone posterior over ``n`` scores."""

    def __init__(self, n: int, prior_sd: float = 1.0, noise: float = float(np.sqrt(2.0))) -> None:
        self.n = n
        self.prior_mean = np.zeros(n)
        self.prior_var: float | np.ndarray = prior_sd**2
        self.empirical_bayes = True  # re-estimate the (exchangeable) prior spread at every fit
        self.noise = noise
        self.mean = np.zeros(n)
        self.cov = np.eye(n) * self.prior_var

    def set_prior(self, mean: np.ndarray, var: np.ndarray, reset: bool = False) -> None:
        """Use a per-image prior N(mean_i, var_i) (e.g. from a model's scores) from now on.

        The prior then stays as set (no empirical-Bayes step in ``fit``): its
        owner re-estimates it. ``reset`` makes the belief the prior itself,
        as it is before any judgement.
        """
        self.prior_mean = np.asarray(mean, dtype=float).copy()
        self.prior_var = np.asarray(var, dtype=float).copy()
        self.empirical_bayes = False
        if reset:
            self.mean = self.prior_mean.copy()
            self.cov = np.diag(self.prior_var)

    def fit(self, winner: np.ndarray, loser: np.ndarray, weight: np.ndarray, max_iter: int = 30) -> None:
        """MAP by damped Newton (warm-started from the current mean), then covariance = inverse Hessian."""
        n, beta = self.n, self.noise
        s = self.mean.copy()

        def objective(s: np.ndarray) -> float:
            off = s - self.prior_mean
            return float(-np.dot(weight, log_ndtr((s[winner] - s[loser]) / beta)) + 0.5 * np.sum(off * off / self.prior_var))

        def hessian(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Gradient and Hessian of the objective (a weighted graph Laplacian plus the prior)."""
            z = (s[winner] - s[loser]) / beta
            lam = _mills(z)
            g_rows = weight * lam / beta
            grad = np.bincount(loser, g_rows, n) - np.bincount(winner, g_rows, n) + (s - self.prior_mean) / self.prior_var
            c = weight * lam * (z + lam) / beta**2
            h = -(np.bincount(winner * n + loser, c, n * n) + np.bincount(loser * n + winner, c, n * n)).reshape(n, n)
            h = h.astype(float, copy=False)  # no judgements: bincount gives integers
            h[np.diag_indices(n)] += np.bincount(winner, c, n) + np.bincount(loser, c, n) + 1.0 / self.prior_var
            return grad, h

        f = objective(s)
        for _ in range(max_iter):
            grad, h = hessian(s)
            step = cho_solve(cho_factor(h), grad)
            t = 1.0
            while True:
                candidate = s - t * step
                f_new = objective(candidate)
                if f_new <= f + 1e-12 or t < 1e-4:
                    break
                t *= 0.5
            s, f = candidate, f_new
            if np.max(np.abs(t * step)) < 1e-6:
                break
        _, h = hessian(s)
        self.mean = s
        self.cov = cho_solve(cho_factor(h), np.eye(n))
        if self.empirical_bayes:  # one EM step for the prior variance, used by the next fit
            self.prior_var = float(np.clip((s @ s + np.trace(self.cov)) / n, 0.05, 100.0))

    def _difference(self, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        var = self.cov[i, i] + self.cov[j, j] - 2 * self.cov[i, j]
        return self.mean[i] - self.mean[j], np.maximum(var, 1e-12)

    def _fisher(self, mu: np.ndarray, var: np.ndarray) -> np.ndarray:
        """Expected Fisher information of one judgement about the score difference."""
        z = mu / np.sqrt(self.noise**2 + var)
        p = np.clip(ndtr(z), 1e-12, 1 - 1e-12)
        return np.exp(-z * z - 2 * _LOG_SQRT_2PI) / (p * (1 - p)) / self.noise**2

    def information_gain(self, rows: np.ndarray | None = None) -> np.ndarray:
        """G[i, j]: expected information (bits) that one judgement of (i, j) gives about the scores.

        Only the given ``rows`` of G when asked (cheap updates after a pick).
        """
        rows = np.arange(self.n) if rows is None else np.asarray(rows)
        d = np.diag(self.cov)
        var = np.maximum(d[rows, None] + d[None, :] - 2 * self.cov[rows], 1e-12)
        mu2 = (self.mean[rows, None] - self.mean[None, :]) ** 2
        beta2 = self.noise**2
        c2 = beta2 * np.pi * np.log(2) / 2
        marginal = _entropy_bits(ndtr(np.sqrt(mu2 / (beta2 + var))))
        conditional = np.sqrt(c2 / (var + c2)) * np.exp(-mu2 / (2 * (var + c2)))
        return marginal - conditional

    def pretend_observed(self, i: int, j: int, weight: float = 1.0) -> None:
        """Shrink the covariance by the expected Fisher information of one judgement of (i, j).

        ``weight`` scales that information, as the fit scales a down-weighted rater's judgement.
        """
        mu, var = self._difference(np.array([i]), np.array([j]))
        info = weight * float(self._fisher(mu, var)[0])
        a = self.cov[:, i] - self.cov[:, j]  # Sigma (e_i - e_j)
        self.cov -= info / (1.0 + info * (a[i] - a[j])) * np.outer(a, a)
