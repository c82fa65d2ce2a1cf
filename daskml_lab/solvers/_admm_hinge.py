"""The exact local hinge solve of consensus ADMM (:mod:`daskml_lab.solvers.admm`), run on the workers.

A worker's local problem for the non-differentiable hinge loss is solved in two steps: a smoothed version
(L-BFGS-B over the parameters) tells which rows lie near the margin, then the dual quadratic program
restricted to those rows gives the exact solution (:func:`hinge_local_solve`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.optimize import Bounds, minimize

logger = logging.getLogger(__name__)

__all__ = ["hinge_local_solve"]

_EPS = float(np.finfo(np.float64).eps)


def _margins(block: Any, x: np.ndarray, n_features: int, fit_intercept: bool) -> np.ndarray:
    """Margins ``s_j x_j . x`` (``x_j`` extended by 1 with an intercept) of one block's rows, in float64."""
    scores = np.asarray(block.X @ x[:n_features].astype(block.X.dtype), dtype=np.float64).ravel()
    if fit_intercept:
        scores += x[n_features]
    return block.target.astype(np.float64) * scores


def _signed_sum(
    block: Any, beta: np.ndarray, n_params: int, n_features: int, fit_intercept: bool
) -> np.ndarray:
    """``sum_j beta_j s_j x_j`` over one block's rows (``x_j`` extended by 1 with an intercept)."""
    signed = beta * block.target
    out = np.zeros(n_params)
    out[:n_features] = np.asarray(block.X.T @ signed.astype(block.X.dtype), dtype=np.float64).ravel()
    if fit_intercept:
        out[n_features] = signed.sum()
    return out


class _HingeLocalProblem:
    """The local hinge problem of one worker, ``min_x c sum_j w_j max(0, 1 - a_j . x) + (rho/2) ||x - v||^2``.

    ``a_j = s_j x_j`` (``x_j`` extended by 1 with an intercept, which is then also pulled towards ``v``),
    ``c = data_factor``. The solution is ``x = v + (c / rho) sum_j beta_j w_j a_j`` with ``beta_j = 1`` for
    rows inside the margin (``a_j . x < 1``), ``0`` outside, and ``beta_j`` in ``[0, 1]`` on the margin.
    """

    def __init__(self, local: Any, v: np.ndarray, rho: float, data_factor: float) -> None:
        self.blocks = [block for block in local.blocks if block.X.shape[0] > 0]
        self.fit_intercept = local.spec.fit_intercept
        self.n_params = v.shape[0]
        self.n_features = self.n_params - int(self.fit_intercept)
        self.v, self.rho, self.c = v, rho, data_factor
        self.step = data_factor / rho
        self.weights = [
            np.ones(block.X.shape[0]) if block.weight is None else block.weight.astype(np.float64)
            for block in self.blocks
        ]
        self.n_passes = 0

    def margins(self, x: np.ndarray) -> list[np.ndarray]:
        self.n_passes += 1
        return [_margins(block, x, self.n_features, self.fit_intercept) for block in self.blocks]

    def combine(self, betas: list[np.ndarray]) -> np.ndarray:
        """``sum_j beta_j w_j a_j`` (one pass)."""
        self.n_passes += 1
        total = np.zeros(self.n_params)
        for block, weight, beta in zip(self.blocks, self.weights, betas, strict=True):
            total += _signed_sum(block, beta * weight, self.n_params, self.n_features, self.fit_intercept)
        return total

    def smoothed(self, x: np.ndarray, mu: float) -> tuple[float, np.ndarray]:
        """The local objective with the hinge replaced by its Huber-type smoothing of width ``mu``."""
        value, slopes = 0.0, []
        for margin, weight in zip(self.margins(x), self.weights, strict=True):
            slack = 1.0 - margin
            slope = np.clip(slack / mu, 0.0, 1.0)
            per_row = np.where(slack >= mu, slack - 0.5 * mu, 0.5 * slope * np.maximum(slack, 0.0))
            value += float(weight @ per_row)
            slopes.append(slope)
        diff = x - self.v
        return (
            self.c * value + 0.5 * self.rho * float(diff @ diff),
            -self.c * self.combine(slopes) + self.rho * diff,
        )

    def rows(self, masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Dense ``a_j`` (one per row) and ``w_j`` of the selected rows."""
        parts, weights = [], []
        for block, weight, mask in zip(self.blocks, self.weights, masks, strict=True):
            if not mask.any():
                continue
            X = block.X[mask]
            X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
            rows = X.astype(np.float64) * block.target[mask].astype(np.float64)[:, None]
            if self.fit_intercept:
                rows = np.hstack([rows, block.target[mask].astype(np.float64)[:, None]])
            parts.append(rows)
            weights.append(weight[mask])
        if not parts:
            return np.zeros((0, self.n_params)), np.zeros(0)
        return np.vstack(parts), np.concatenate(weights)


def _restricted_dual(
    beta: np.ndarray,
    fixed: np.ndarray,
    signed: np.ndarray,
    rows: np.ndarray,
    q: np.ndarray,
    weights: np.ndarray,
    step: float,
) -> tuple[float, np.ndarray]:
    """Negative local hinge dual (divided by ``c``) over the working-set rows, the other rows fixed.

    ``fixed = sum_j beta_j w_j a_j`` over the fixed rows, ``signed`` the working rows ``w_j a_j``, ``rows``
    the ``a_j``, ``q = 1 - a_j . v``; the gradient is ``w_j`` times the margin error of each working row.
    """
    r = fixed + signed.T @ beta
    value = 0.5 * step * float(r @ r) - float(beta @ (q * weights))
    return value, weights * (step * (rows @ r) - q)


def hinge_local_solve(
    local: Any,
    v: np.ndarray,
    x0: np.ndarray,
    rho_i: float,
    data_factor: float,
    pgtol: float,
    max_iter: int,
    memory: int,
    smoothing: float,
    max_working_set: int,
    max_rounds: int = 20,
) -> tuple[np.ndarray, int]:
    """Exact solution of a worker's local hinge problem (see :class:`_HingeLocalProblem`).

    1. Minimise the smoothed problem (hinge replaced by a Huber-type smoothing of width ``smoothing``) with
       L-BFGS-B over the ``n_params`` primal variables, warm-started at ``x0``: cheap, and its margins tell
       which rows are inside, on or outside the margin, up to ``O(smoothing)``.
    2. Polish: fix ``beta = 1`` inside and ``0`` outside, and solve the dual quadratic program over the rows
       near the margin only (the working set; box constraints, L-BFGS-B). Rows whose margins then contradict
       their fixed ``beta`` (by more than ``pgtol``) join the working set, and the polish repeats.

    The result satisfies the optimality conditions of the exact (non-smooth) problem to ``pgtol`` in margin
    units. If the working set outgrows ``max_working_set`` rows, the smoothed solution is returned.

    Returns
    -------
    x : ndarray of shape (n_params,)
    n_passes : int
        Passes over the local rows.
    """
    problem = _HingeLocalProblem(local, v, rho_i, data_factor)
    options = {"maxiter": max_iter, "maxcor": memory, "gtol": 0.1 * smoothing * rho_i, "ftol": 10 * _EPS}
    result = minimize(
        problem.smoothed,
        np.asarray(x0, dtype=np.float64),
        args=(smoothing,),
        jac=True,
        method="L-BFGS-B",
        options=options,
    )
    x_smooth = result.x
    margins = problem.margins(x_smooth)
    working = [(m > 1.0 - 2.0 * smoothing) & (m < 1.0 + smoothing) for m in margins]
    offsets = [1.0 - m for m in problem.margins(v)]
    for _ in range(max_rounds):
        inside = [(m <= 1.0 - 2.0 * smoothing) & ~w for m, w in zip(margins, working, strict=True)]
        if sum(int(w.sum()) for w in working) > max_working_set:
            logger.debug(
                "admm: hinge working set above %d rows; keeping the smoothed solution", max_working_set
            )
            return x_smooth, problem.n_passes
        fixed = problem.combine([mask.astype(np.float64) for mask in inside])
        rows, weights = problem.rows(working)
        q = (
            np.concatenate([o[w] for o, w in zip(offsets, working, strict=True)])
            if rows.size
            else np.zeros(0)
        )
        x = problem.v + problem.step * fixed
        if rows.shape[0]:
            signed = rows * weights[:, None]
            slack = np.concatenate([1.0 - m[w] for m, w in zip(margins, working, strict=True)])
            start = np.clip(slack / smoothing, 0.0, 1.0)
            polish = minimize(
                _restricted_dual,
                start,
                args=(fixed, signed, rows, q, weights, problem.step),
                jac=True,
                method="L-BFGS-B",
                bounds=Bounds(np.zeros_like(start), np.ones_like(start)),
                options={"maxiter": 10 * max_iter, "maxcor": memory, "gtol": pgtol, "ftol": 10 * _EPS},
            )
            x = problem.v + problem.step * (fixed + signed.T @ np.clip(polish.x, 0.0, 1.0))
        margins = problem.margins(x)
        violated = [
            (f & (m > 1.0 + pgtol)) | (~f & ~w & (m < 1.0 - pgtol))
            for m, f, w in zip(margins, inside, working, strict=True)
        ]
        if not any(mask.any() for mask in violated):
            return x, problem.n_passes
        working = [w | mask for w, mask in zip(working, violated, strict=True)]
    logger.debug("admm: hinge polish still inexact after %d rounds", max_rounds)
    return x, problem.n_passes
