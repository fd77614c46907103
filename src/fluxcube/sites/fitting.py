"""Batched non-linear least squares: many small curve fits (one per time window) solved at once.

A Levenberg-Marquardt iteration (Marquardt's diagonal scaling, box bounds by projection) runs on a
batch of independent problems of the same model; each problem has its own data row (padded to a
common length, padding carries weight zero), parameters, damping and convergence state. The normal
equations are tiny (2 to 4 parameters), so one numpy call solves all windows of a site-year at once
instead of one optimiser call per window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: model(params (B', P), rows (B',)) -> (prediction (B', M), jacobian (B', M, P)) for the problems ``rows``
Model = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
BOUND_TOL = 1e-6  # relative distance (to 1 + |bound|) at which a parameter counts as sitting on its bound


@dataclass
class BatchFit:
    """Result per problem: ``params`` (B, P), standard errors ``stderr`` (B, P), residual sum of squares
    ``rss`` (weighted), number of data ``n`` and ``ok`` (finite solution with more data than parameters).
    """

    params: np.ndarray
    stderr: np.ndarray
    rss: np.ndarray
    n: np.ndarray
    ok: np.ndarray


def fit_batch(
    model: Model,
    p0: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    max_iter: int = 200,
    rtol: float = 1e-9,
    fixed: np.ndarray | None = None,
) -> BatchFit:
    """Minimise sum(weight * (y - model(p))**2) for every row of ``y`` (B, M) separately.

    ``weight`` (B, M) is zero for padding and missing data (and 1/sigma**2 for weighted fits);
    ``y`` must be finite where ``weight`` > 0. ``lower``/``upper`` (P,) are box bounds (a step that
    would cross one goes 90 % of the way to it). A problem has
    converged when a step lowers its residual sum of squares by less than ``rtol`` (relative) or moves
    no parameter by more than ``rtol`` (relative); each iteration works on unconverged problems only.
    ``fixed`` (B, P) boolean: parameters held at their ``p0`` value (the others are fitted).
    """
    p = np.array(p0, dtype=np.float64, copy=True)
    b, n_par = p.shape
    y = np.where(weight > 0, y, 0.0)
    lo = np.broadcast_to(-np.inf if lower is None else lower, (n_par,))
    hi = np.broadcast_to(np.inf if upper is None else upper, (n_par,))
    p = np.clip(p, lo, hi)
    every = np.arange(b)
    pred, jac = model(p, every)
    rss = _rss(y, pred, weight)
    lam = np.full(b, 1e-3)
    n = np.count_nonzero(weight, axis=1)
    active = np.isfinite(rss) & (n > n_par)
    eye = np.eye(n_par)
    for _ in range(max_iter):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        w, yr, pr, jr = weight[rows], y[rows], pred[rows], jac[rows]
        jw = np.swapaxes(jr * w[..., None], 1, 2)  # (B, P, M)
        a = jw @ jr
        g = (jw @ (yr - pr)[..., None])[..., 0]
        # active set: a parameter at a bound (within BOUND_TOL) whose gradient points outside is held
        # there and the others solve the reduced problem (else they crawl while it creeps to the bound)
        pr_ = p[rows]
        with np.errstate(invalid="ignore"):
            held = (np.isfinite(lo) & (pr_ - lo <= BOUND_TOL * (1 + np.abs(lo))) & (g <= 0)) | (
                np.isfinite(hi) & (hi - pr_ <= BOUND_TOL * (1 + np.abs(hi))) & (g >= 0)
            )
        if fixed is not None:
            held |= fixed[rows]
        if held.any():
            free = ~held
            a = a * (free[:, :, None] & free[:, None, :]) + held[:, :, None] * eye
            g = np.where(held, 0.0, g)
        diag = np.maximum(np.einsum("bpp->bp", a), 1e-12)
        step = _solve(a + lam[rows, None, None] * diag[:, :, None] * eye, g)
        trial = _inside(p[rows], step, lo, hi)
        t_pred, t_jac = model(trial, rows)
        t_rss = _rss(yr, t_pred, w)
        better = np.isfinite(t_rss) & (t_rss <= rss[rows])
        moved = np.abs(trial - p[rows]) <= rtol * (np.abs(p[rows]) + 1e-12)
        done = better & ((rss[rows] - t_rss <= rtol * rss[rows]) | moved.all(axis=1))
        ok_rows = rows[better]
        p[ok_rows], pred[ok_rows], jac[ok_rows], rss[ok_rows] = (
            trial[better],
            t_pred[better],
            t_jac[better],
            t_rss[better],
        )
        lam[rows] = np.where(better, lam[rows] / 3.0, lam[rows] * 4.0)
        active[rows[done | (lam[rows] > 1e12)]] = False
    a = np.einsum("bmp,bmq->bpq", jac * weight[..., None], jac)
    dof = np.maximum(n - n_par, 1)
    cov = _inverse(a) * (rss / dof)[:, None, None]
    stderr = np.sqrt(np.clip(np.einsum("bpp->bp", cov), 0.0, None))
    ok = np.isfinite(p).all(axis=1) & np.isfinite(rss) & (n > n_par)
    return BatchFit(p, stderr, rss, n, ok)


def _inside(p: np.ndarray, step: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``p + step``, except that a component which would cross a bound moves 90 % of the way to it.

    Parameters never land exactly on a bound (where a light-response fit can lose all its gradient,
    e.g. alpha = beta0 = 0) unless they start there; parameters at a bound stay unless the step points
    inside.
    """
    trial = p + step
    below, above = trial < lo, trial > hi
    with np.errstate(invalid="ignore"):  # infinite bounds give inf - inf in the unused branch
        trial = np.where(below, lo + 0.1 * (p - lo), trial)
        return np.where(above, hi - 0.1 * (hi - p), trial)


def _rss(y: np.ndarray, pred: np.ndarray, weight: np.ndarray) -> np.ndarray:
    r = np.where(weight > 0, y - pred, 0.0)
    return np.einsum("bm,bm->b", weight * r, r)


def _solve(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(a, g[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("bpq,bq->bp", np.linalg.pinv(a), g)


def _inverse(a: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(a)


def pad_rows(groups: list[np.ndarray], *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Gather ``arrays[k][groups[i]]`` into padded (len(groups), max size) rows plus a 0/1 weight row.

    Returns ``(weight, gathered_0, gathered_1, ...)``; padding holds 0 (weight 0).
    """
    width = max((g.size for g in groups), default=0)
    width = max(width, 1)
    weight = np.zeros((len(groups), width))
    out = [np.zeros((len(groups), width)) for _ in arrays]
    for i, g in enumerate(groups):
        weight[i, : g.size] = 1.0
        for o, a in zip(out, arrays, strict=True):
            o[i, : g.size] = a[g]
    return (weight, *out)
