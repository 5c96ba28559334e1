"""Quality scores from pairwise judgements, with bootstrap confidence intervals.

Two classic models, both fitted by penalised maximum likelihood (a weak
Gaussian prior keeps scores finite for images that always win or lose):

* Bradley–Terry with Davidson's tie model: P(i beats j) = e^si / Z,
  P(tie) = nu * e^((si+sj)/2) / Z. Scores are in logits.
* Thurstone Case V with a tie threshold (ordered probit): an image's
  perceived quality is N(s, 1), so P(i beats j) = Phi((si-sj)/sqrt2 - delta).
  Scores are in units of one observer's perceptual noise.

Without ties both reduce to their textbook forms (checked against ``choix``
in the tests). The 95% interval comes from refitting on judgements resampled
with replacement (percentile bootstrap). An image needs
``MIN_INTERVAL_JUDGEMENTS`` judgements that carry weight for an interval: with
fewer, the resamples take only a handful of distinct values (none at all for
an image seen only by zero-weight raters, which gave 0.0 [0.0, 0.0]), so
their percentiles are no 95% interval, and the interval is NaN ("not enough
judgements").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import log_ndtr, ndtr, ndtri

from annotations.blas import single_threaded
from annotations.pairs import Comparisons, Weights, comparisons

Method = Literal["bradley_terry", "thurstone"]
_SQRT2 = np.sqrt(2.0)
_TIE_BOUNDS = (-12.0, 4.0)  # log tie parameter; keeps resamples without ties finite
MIN_INTERVAL_JUDGEMENTS = 3
"""Judgements with a positive weight an image needs before its bootstrap interval means anything."""


def _bt_terms(d: np.ndarray, tie: np.ndarray, nu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-likelihood per row and its derivatives in d = s_winner - s_loser and log nu."""
    a = np.abs(d)
    e1 = np.exp(-a)
    e2 = nu * np.exp(-a / 2)
    denom = 1.0 + e1 + e2  # Z * e^(-|d|/2)
    log_z = a / 2 + np.log(denom)
    sinh_over_z = 0.5 * np.sign(d) * (1.0 - e1) / denom
    nu_over_z = e2 / denom
    ll = np.where(tie, np.log(nu) if nu > 0 else -np.inf, d / 2) - log_z
    dd = np.where(tie, 0.0, 0.5) - sinh_over_z
    dk = np.where(tie, 1.0, 0.0) - nu_over_z
    return ll, dd, dk


def _thurstone_terms(d: np.ndarray, tie: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Same as ``_bt_terms`` for the ordered-probit model, derivative in log delta."""
    z = d / _SQRT2
    lo, hi = z - delta, z + delta
    log_pdf = lambda x: -0.5 * x * x - 0.5 * np.log(2 * np.pi)  # noqa: E731
    # win: log Phi(z - delta)
    ll_win = log_ndtr(lo)
    mills = np.exp(log_pdf(lo) - ll_win)
    # tie: log(Phi(z + delta) - Phi(z - delta)), computed in the tail that keeps precision
    p_tie = np.where(z > 0, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo))
    p_tie = np.maximum(p_tie, 1e-300)
    pdf_lo, pdf_hi = np.exp(log_pdf(lo)), np.exp(log_pdf(hi))
    ll = np.where(tie, np.log(p_tie), ll_win)
    dz = np.where(tie, (pdf_hi - pdf_lo) / p_tie, mills)
    ddelta = np.where(tie, (pdf_hi + pdf_lo) / p_tie, -mills)
    return ll, dz / _SQRT2, ddelta * delta


_TERMS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
    "bradley_terry": _bt_terms,
    "thurstone": _thurstone_terms,
}


def _initial_tie_param(method: str, tie_share: float) -> float:
    """Tie parameter (log nu or log delta) that matches the tie share of equal images."""
    t = min(max(tie_share, 1e-3), 0.9)
    if method == "bradley_terry":
        return float(np.log(2 * t / (1 - t)))
    return float(np.log(ndtri((1 + t) / 2)))


def fit(
    c: Comparisons,
    method: Method = "bradley_terry",
    row_weight: np.ndarray | None = None,
    prior_var: float = 10.0,
    fit_ties: bool | None = None,
    x0: np.ndarray | None = None,
) -> np.ndarray:
    """MAP scores (and, when ties are modelled, the log tie parameter as last entry).

    ``row_weight`` overrides ``c.weight`` (the bootstrap passes resampling
    counts times weights). ``fit_ties`` defaults to "the data has ties".
    """
    terms = _TERMS[method]
    w = c.weight if row_weight is None else row_weight
    n = len(c.ids)
    if fit_ties is None:
        fit_ties = bool(np.any(w[c.tie] > 0))
    tie_mask = c.tie if fit_ties else np.zeros_like(c.tie)
    w = w if fit_ties else np.where(c.tie, 0.0, w)  # without a tie model, ties carry no information
    if x0 is None:
        x0 = np.zeros(n + fit_ties)
        if fit_ties:
            x0[-1] = _initial_tie_param(method, float(w[c.tie].sum() / max(w.sum(), 1e-12)))

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        s = x[:n]
        tie_param = float(np.exp(x[n])) if fit_ties else 0.0
        d = s[c.winner] - s[c.loser]
        ll, dd, dk = terms(d, tie_mask, tie_param)
        wdd = w * dd
        grad = np.zeros_like(x)
        grad[:n] = np.bincount(c.loser, wdd, n) - np.bincount(c.winner, wdd, n) + s / prior_var
        if fit_ties:
            grad[n] = -np.dot(w, dk)
        return float(-np.dot(w, ll) + 0.5 * np.dot(s, s) / prior_var), grad

    bounds = [(None, None)] * n + ([_TIE_BOUNDS] if fit_ties else [])
    result = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-7})
    return result.x


@single_threaded()
def scale(
    judgements_df: pd.DataFrame,
    method: Method = "bradley_terry",
    weights: Weights = None,
    n_boot: int = 200,
    seed: int = 0,
    prior_var: float = 10.0,
) -> pd.DataFrame:
    """Scores with 95% bootstrap intervals, best image first.

    ``weights`` are per-rater reliability weights (e.g.
    ``quality.rater_stats(...)["weight"]``) or one weight per row. Columns:
    image_id, score, ci_low, ci_high, n_judgements (higher score = better;
    intervals are NaN when ``n_boot`` is 0 and for images with fewer than
    ``MIN_INTERVAL_JUDGEMENTS`` weighted judgements).
    """
    if method not in _TERMS:
        raise ValueError(f"method must be one of {', '.join(_TERMS)}; got {method!r}")
    c = comparisons(judgements_df, weights=weights)
    n = len(c.ids)
    columns = ["image_id", "score", "ci_low", "ci_high", "n_judgements"]
    if n == 0:
        return pd.DataFrame(columns=columns)
    fit_ties = bool(np.any(c.weight[c.tie] > 0))
    x = fit(c, method, prior_var=prior_var, fit_ties=fit_ties)
    low = high = np.full(n, np.nan)
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        m = len(c)
        boot = np.empty((n_boot, n))
        for b in range(n_boot):
            counts = np.bincount(rng.integers(0, m, m), minlength=m)
            boot[b] = fit(c, method, c.weight * counts, prior_var, fit_ties, x0=x)[:n]
        low, high = np.percentile(boot, [2.5, 97.5], axis=0)
        weighed = (c.weight > 0).astype(float)
        enough = np.bincount(c.winner, weighed, n) + np.bincount(c.loser, weighed, n) >= MIN_INTERVAL_JUDGEMENTS
        low, high = np.where(enough, low, np.nan), np.where(enough, high, np.nan)
    n_judgements = np.bincount(c.winner, minlength=n) + np.bincount(c.loser, minlength=n)
    out = pd.DataFrame(
        {"image_id": c.ids, "score": x[:n], "ci_low": low, "ci_high": high, "n_judgements": n_judgements}
    )
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
