"""Worker side of :mod:`daskml_lab.solvers.smoothed_newton`: the smoothed hinge on the blocks a worker holds.

The hinge ``max(0, s)`` of the slack ``s_i = 1 - y_i (x_i . w + b)`` is replaced by its Moreau envelope of width
``mu`` (a Huber function)::

    h_mu(s) = 0              for s <= 0
            = s^2 / (2 mu)   for 0 < s < mu     (the "quadratic" rows)
            = s - mu / 2     for s >= mu

so that ``h_mu <= max(0, s) <= h_mu + mu / 2``. Its derivative ``beta_i = clip(s_i / mu, 0, 1)`` is in ``[0, 1]``:
a feasible point of the hinge's dual (after the intercept's equality constraint is restored on the client),
which gives the lower bound the solver stops on. Only the quadratic rows have curvature, so the Hessian is a
sum over few rows once ``mu`` is small.

Each function here runs once per worker through ``problem.map_workers`` and returns scalars, parameter-sized
vectors, or (for the dense Newton step) an ``(n_params, n_params)`` matrix.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

__all__ = ["HingeStatistics", "hinge_hessian_product", "hinge_slopes", "hinge_statistics"]

#: Rows processed at once by the line search (it holds a ``rows x steps`` array).
_SLOPE_ROWS = 16_384


class HingeStatistics(NamedTuple):
    """One worker's share of the smoothed hinge at ``(W, mu)``, unscaled (weights, not ``data_scale``).

    ``+`` and ``-`` below are the rows with ``y = 1`` and ``y = -1``.
    """

    #: ``sum_i w_i max(0, s_i)``: the exact hinge.
    hinge: float
    #: ``sum_i w_i h_mu(s_i)``.
    smoothed: float
    #: ``sum_i w_i beta_i^2`` (the smoothed dual's extra term).
    beta_squares: float
    #: ``[sum_+ w_i beta_i, sum_- w_i beta_i]``.
    beta_sums: np.ndarray
    #: ``[sum_+ w_i beta_i x_i, sum_- w_i beta_i x_i]``, shape ``(2, n_features)``.
    signed_sums: np.ndarray
    #: ``beta_sums`` over the quadratic rows only (``0 < s_i < mu``).
    quadratic_beta_sums: np.ndarray
    #: ``signed_sums`` over the quadratic rows only.
    quadratic_signed_sums: np.ndarray
    #: ``sum over quadratic rows of (w_i / mu) u_i u_i^T`` with ``u_i = (x_i, 1)`` (``x_i`` without an
    #: intercept); None unless asked for.
    hessian: np.ndarray | None
    #: The diagonal of that sum (for the conjugate-gradient preconditioner); None unless asked for.
    diagonal: np.ndarray | None
    #: Number of quadratic rows.
    n_quadratic: int


def _scores(X: Any, w: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``X @ w[:d] (+ w[d])`` in float64, computed in X's dtype."""
    n_features = X.shape[1]
    scores = np.asarray(X @ w[:n_features].astype(X.dtype, copy=False), dtype=np.float64).ravel()
    if fit_intercept:
        scores += w[n_features]
    return scores


def _weights(block: Any) -> np.ndarray:
    n_rows = block.X.shape[0]
    return np.ones(n_rows) if block.weight is None else np.asarray(block.weight, dtype=np.float64)


def _transpose_times(X: Any, v: np.ndarray) -> np.ndarray:
    """``X.T @ v`` as a float64 vector."""
    return np.asarray(X.T @ v.astype(X.dtype, copy=False), dtype=np.float64).ravel()


def _gram(X: Any, c: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``sum_i c_i u_i u_i^T`` with ``u_i = (x_i, 1)`` (or ``x_i``), dense float64."""
    n_features = X.shape[1]
    n_params = n_features + int(fit_intercept)
    out = np.zeros((n_params, n_params))
    if X.shape[0] == 0:
        return out
    if sp.issparse(X):
        weighted = sp.csr_matrix(X.multiply(c[:, None]))
        out[:n_features, :n_features] = (X.T @ weighted).toarray()
    else:
        X64 = np.asarray(X, dtype=np.float64)
        out[:n_features, :n_features] = X64.T @ (X64 * c[:, None])
    if fit_intercept:
        column = _transpose_times(X, c)
        out[:n_features, n_features] = column
        out[n_features, :n_features] = column
        out[n_features, n_features] = c.sum()
    return out


def _diagonal(X: Any, c: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """The diagonal of :func:`_gram`."""
    squared = X.multiply(X) if sp.issparse(X) else np.square(np.asarray(X, dtype=np.float64))
    diagonal = _transpose_times(squared, c)
    return np.append(diagonal, c.sum()) if fit_intercept else diagonal


def _hinge_statistics_block(
    block: Any, w: np.ndarray, mu: float, fit_intercept: bool, curvature: str
) -> HingeStatistics:
    """:class:`HingeStatistics` of one block (``curvature``: ``"dense"``, ``"diagonal"`` or ``"none"``)."""
    X, sign, weight = block.X, np.asarray(block.target, dtype=np.float64), _weights(block)
    slack = 1.0 - sign * _scores(X, w, fit_intercept)
    beta = np.clip(slack / mu, 0.0, 1.0)
    smoothed = np.where(slack >= mu, slack - 0.5 * mu, 0.5 * beta * np.maximum(slack, 0.0))
    positive = sign > 0
    weighted_beta = weight * beta
    beta_plus, beta_minus = np.where(positive, weighted_beta, 0.0), np.where(positive, 0.0, weighted_beta)
    quadratic = (slack > 0) & (slack < mu)
    quadratic_plus, quadratic_minus = (
        np.where(quadratic, beta_plus, 0.0),
        np.where(quadratic, beta_minus, 0.0),
    )
    hessian = diagonal = None
    if curvature != "none":
        rows = X[quadratic]
        c = weight[quadratic] / mu
        if curvature == "dense":
            hessian = _gram(rows, c, fit_intercept)
        else:
            diagonal = _diagonal(rows, c, fit_intercept)
    return HingeStatistics(
        hinge=float(weight @ np.maximum(slack, 0.0)),
        smoothed=float(weight @ smoothed),
        beta_squares=float(weighted_beta @ beta),
        beta_sums=np.array([beta_plus.sum(), beta_minus.sum()]),
        signed_sums=np.vstack([_transpose_times(X, beta_plus), _transpose_times(X, beta_minus)]),
        quadratic_beta_sums=np.array([quadratic_plus.sum(), quadratic_minus.sum()]),
        quadratic_signed_sums=np.vstack(
            [_transpose_times(X, quadratic_plus), _transpose_times(X, quadratic_minus)]
        ),
        hessian=hessian,
        diagonal=diagonal,
        n_quadratic=int(quadratic.sum()),
    )


def _add(first: HingeStatistics, second: HingeStatistics) -> HingeStatistics:
    def both(a: Any, b: Any) -> Any:
        return None if a is None or b is None else a + b

    return HingeStatistics(
        first.hinge + second.hinge,
        first.smoothed + second.smoothed,
        first.beta_squares + second.beta_squares,
        first.beta_sums + second.beta_sums,
        first.signed_sums + second.signed_sums,
        first.quadratic_beta_sums + second.quadratic_beta_sums,
        first.quadratic_signed_sums + second.quadratic_signed_sums,
        both(first.hessian, second.hessian),
        both(first.diagonal, second.diagonal),
        first.n_quadratic + second.n_quadratic,
    )


def combine(parts: list[HingeStatistics]) -> HingeStatistics:
    """The sum of several workers' (or blocks') statistics."""
    total = parts[0]
    for part in parts[1:]:
        total = _add(total, part)
    return total


def hinge_statistics(local: Any, W: np.ndarray, mu: float, curvature: str) -> HingeStatistics:
    """:class:`HingeStatistics` of the blocks of one worker (one pass over them)."""
    w = np.asarray(W, dtype=np.float64).ravel()
    fit_intercept = local.spec.fit_intercept
    n_params = w.shape[0]
    n_features = n_params - int(fit_intercept)
    parts = [
        _hinge_statistics_block(block, w, mu, fit_intercept, curvature)
        for block in local.blocks
        if block.X.shape[0] > 0
    ]
    if not parts:
        empty = np.zeros((n_params, n_params)) if curvature == "dense" else None
        return HingeStatistics(
            0.0,
            0.0,
            0.0,
            np.zeros(2),
            np.zeros((2, n_features)),
            np.zeros(2),
            np.zeros((2, n_features)),
            empty,
            np.zeros(n_params) if curvature == "diagonal" else None,
            0,
        )
    return combine(parts)


def hinge_slopes(
    local: Any, W: np.ndarray, direction: np.ndarray, mu: float, steps: np.ndarray
) -> np.ndarray:
    """``sum_i w_i e_i beta_i(t)`` for each step ``t`` of ``steps``, with ``e_i = y_i u_i . direction``.

    ``beta_i(t) = clip((s_i - t e_i) / mu, 0, 1)`` is the derivative of the smoothed hinge at ``W + t
    direction``; the client turns these sums into the derivative of the objective along the direction.
    """
    w = np.asarray(W, dtype=np.float64).ravel()
    delta = np.asarray(direction, dtype=np.float64).ravel()
    steps = np.asarray(steps, dtype=np.float64)
    fit_intercept = local.spec.fit_intercept
    total = np.zeros(steps.shape[0])
    for block in local.blocks:
        if block.X.shape[0] == 0:
            continue
        sign, weight = np.asarray(block.target, dtype=np.float64), _weights(block)
        slack = 1.0 - sign * _scores(block.X, w, fit_intercept)
        change = sign * _scores(block.X, delta, fit_intercept)
        for start in range(0, slack.shape[0], _SLOPE_ROWS):
            rows = slice(start, start + _SLOPE_ROWS)
            beta = np.clip((slack[rows, None] - change[rows, None] * steps[None, :]) / mu, 0.0, 1.0)
            total += (weight[rows] * change[rows]) @ beta
    return total


def hinge_hessian_product(local: Any, W: np.ndarray, mu: float, vector: np.ndarray) -> np.ndarray:
    """``sum over quadratic rows of (w_i / mu) u_i (u_i . vector)`` (for conjugate gradients)."""
    w = np.asarray(W, dtype=np.float64).ravel()
    v = np.asarray(vector, dtype=np.float64).ravel()
    fit_intercept = local.spec.fit_intercept
    n_features = w.shape[0] - int(fit_intercept)
    out = np.zeros_like(w)
    for block in local.blocks:
        if block.X.shape[0] == 0:
            continue
        sign, weight = np.asarray(block.target, dtype=np.float64), _weights(block)
        slack = 1.0 - sign * _scores(block.X, w, fit_intercept)
        quadratic = (slack > 0) & (slack < mu)
        rows = block.X[quadratic]
        projected = (weight[quadratic] / mu) * _scores(rows, v, fit_intercept)
        out[:n_features] += _transpose_times(rows, projected)
        if fit_intercept:
            out[n_features] += projected.sum()
    return out
