"""Least-squares paths from the folds' Gram statistics: one pass over the data, then small solves on the client.

For the squared loss, everything a fold needs is in the centred second moments of ``A = [X, y]`` over its
train rows (count, means, scatter matrix ``sum (a - mean)(a - mean)^T``) and over its test rows: the ridge
solution for any ``alpha``, coordinate descent for the lasso and the elastic net, and the test error of any
coefficients. One blocked pass computes, in every block, the statistics of all its rows and of each fold's
test (and unused) rows; they are merged over the blocks with the pairwise update of Chan et al. (centred, so
large feature means do not cancel), and each fold's train statistics are the whole data's minus its test and
unused rows. The cost on the client is ``O(n_folds * n_features^2)`` memory and small dense solves: this
suits ``n_features`` up to a few thousand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.linalg
import scipy.sparse as sp
from dask.base import tokenize

__all__ = ["FoldMoments", "Moments", "enet_gram_path", "fold_moments", "heldout_sse", "ridge_solve"]

#: Role codes (those of :mod:`daskml_lab.model_selection`).
_TRAIN, _TEST, _UNUSED = 0, 1, 2
_SPLIT_EVERY = 8


@dataclass(frozen=True)
class Moments:
    """Count, mean and centred scatter matrix of a set of rows of ``A = [X, y]``.

    Attributes
    ----------
    n : float
    mean : ndarray of shape (n_features + 1,)
    scatter : ndarray of shape (n_features + 1, n_features + 1)
    """

    n: float
    mean: np.ndarray
    scatter: np.ndarray

    def merge(self, other: Moments) -> Moments:
        """The moments of the union of two disjoint row sets (Chan et al.'s pairwise update)."""
        n = self.n + other.n
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        scatter = self.scatter + other.scatter + np.outer(delta, delta) * (self.n * other.n / n)
        return Moments(n, mean, scatter)

    def remove(self, part: Moments) -> Moments:
        """The moments of these rows without ``part`` (a subset of them): the inverse of :meth:`merge`."""
        if part.n == 0:
            return self
        n = self.n - part.n
        if n <= 0:
            size = len(self.mean)
            return Moments(0.0, np.zeros(size), np.zeros((size, size)))
        mean = (self.n * self.mean - part.n * part.mean) / n
        delta = mean - part.mean
        scatter = self.scatter - part.scatter - np.outer(delta, delta) * (part.n * n / self.n)
        return Moments(n, mean, scatter)


@dataclass(frozen=True)
class FoldMoments:
    """The statistics of every fold: ``train[f]``, ``test[f]`` and those of all the rows (``full``)."""

    full: Moments
    train: list[Moments]
    test: list[Moments]


def _moments_of(A: np.ndarray) -> Moments:
    n = A.shape[0]
    if n == 0:
        return Moments(0.0, np.zeros(A.shape[1]), np.zeros((A.shape[1], A.shape[1])))
    mean = A.mean(axis=0)
    centred = A - mean
    return Moments(float(n), mean, centred.T @ centred)


def _fold_moments_block(X: Any, y: np.ndarray, roles: np.ndarray) -> dict[str, Any]:
    """Moments of one block's rows: all of them, and each fold's test and unused rows."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    A = np.column_stack([X.astype(np.float64, copy=False), np.asarray(y, dtype=np.float64).ravel()])
    n_folds = roles.shape[1]
    return {
        "full": _moments_of(A),
        "test": [_moments_of(A[roles[:, f] == _TEST]) for f in range(n_folds)],
        "unused": [_moments_of(A[roles[:, f] == _UNUSED]) for f in range(n_folds)],
    }


def _fold_moments_combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = parts[0]
    for part in parts[1:]:
        out = {
            "full": out["full"].merge(part["full"]),
            "test": [a.merge(b) for a, b in zip(out["test"], part["test"], strict=True)],
            "unused": [a.merge(b) for a, b in zip(out["unused"], part["unused"], strict=True)],
        }
    return out


def fold_moments(X: da.Array, y: da.Array, roles: da.Array) -> FoldMoments:
    """The moments of every fold's train and test rows, from one blocked pass (one dask computation).

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Row chunks, one column chunk.
    y : dask.array.Array of shape (n_samples,)
    roles : dask.array.Array of int8 of shape (n_samples, n_folds)
        ``0`` train, ``1`` test, ``2`` neither; X's row chunks, one column chunk.

    Returns
    -------
    FoldMoments
    """
    token = tokenize(X, y, roles)
    kernel = dask.delayed(_fold_moments_block, pure=True)
    parts = [
        kernel(Xb, yb, rb, dask_key_name=f"daskml-cv-gram-{token}-{i}")
        for i, (Xb, yb, rb) in enumerate(
            zip(X.to_delayed().ravel(), y.to_delayed().ravel(), roles.to_delayed().ravel(), strict=True)
        )
    ]
    level = 0
    while len(parts) > 1:
        parts = [
            dask.delayed(_fold_moments_combine)(
                parts[i : i + _SPLIT_EVERY], dask_key_name=f"daskml-cv-gram-combine-{token}-{level}-{i}"
            )
            for i in range(0, len(parts), _SPLIT_EVERY)
        ]
        level += 1
    # compute: one pass; (n_folds * 2 + 1) moment sets of size (n_features + 1)^2 come back
    (total,) = dask.compute(parts[0])
    full = total["full"]
    train = [full.remove(t).remove(u) for t, u in zip(total["test"], total["unused"], strict=True)]
    return FoldMoments(full=full, train=train, test=list(total["test"]))


def _split(moments: Moments) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, float]:
    d = len(moments.mean) - 1
    S = moments.scatter
    return S[:d, :d], S[:d, d], float(S[d, d]), moments.mean[:d], float(moments.mean[d])


def ridge_solve(
    moments: Moments, alphas: np.ndarray, *, fit_intercept: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge coefficients and intercepts for every ``alpha`` from the rows' moments.

    Minimises ``||y - X w - b||^2 + alpha ||w||^2`` (scikit-learn's :class:`~sklearn.linear_model.Ridge`).

    Returns
    -------
    coefs : ndarray of shape (n_alphas, n_features)
    intercepts : ndarray of shape (n_alphas,)
    """
    Sxx, Sxy, _, mx, my = _gram(moments, fit_intercept)
    d = len(Sxy)
    coefs = np.empty((len(alphas), d))
    for i, alpha in enumerate(alphas):
        matrix = Sxx + alpha * np.eye(d)
        try:
            coefs[i] = scipy.linalg.solve(matrix, Sxy, assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            coefs[i] = scipy.linalg.lstsq(matrix, Sxy)[0]
    intercepts = my - coefs @ mx if fit_intercept else np.zeros(len(alphas))
    return coefs, intercepts


def _gram(moments: Moments, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, float]:
    """``X^T X``, ``X^T y``, ``y^T y`` of the centred rows (or the raw ones without an intercept), and means."""
    Sxx, Sxy, Syy, mx, my = _split(moments)
    if fit_intercept:
        return Sxx, Sxy, Syy, mx, my
    n = moments.n
    return Sxx + n * np.outer(mx, mx), Sxy + n * mx * my, Syy + n * my * my, mx, my


def heldout_sse(moments: Moments, coefs: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """``sum (y - X w - b)^2`` over the rows of ``moments``, for every (w, b), without reading the rows.

    Parameters
    ----------
    moments : Moments
    coefs : ndarray of shape (n_models, n_features)
    intercepts : ndarray of shape (n_models,)

    Returns
    -------
    ndarray of shape (n_models,)
    """
    Sxx, Sxy, Syy, mx, my = _split(moments)
    # residual r = y - x w - b: its spread around its mean plus n times its mean squared
    spread = Syy - 2 * coefs @ Sxy + np.einsum("md,de,me->m", coefs, Sxx, coefs)
    offset = my - coefs @ mx - intercepts
    return np.maximum(spread, 0.0) + moments.n * offset**2


def enet_gram_path(
    moments: list[Moments],
    alphas: np.ndarray,
    *,
    l1_ratio: float,
    fit_intercept: bool,
    tol: float = 1e-4,
    max_iter: int = 1000,
    positive: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Elastic-net paths of several row sets at once by cyclic coordinate descent on their Gram matrices.

    Minimises scikit-learn's ``1 / (2 n) ||y - X w - b||^2 + alpha * l1_ratio ||w||_1 +
    alpha * (1 - l1_ratio) / 2 ||w||^2`` for every ``alpha`` (largest first, each warm-started from the
    previous one), the row sets updated side by side (vectorised over them). A set stops at an ``alpha`` when
    its duality gap is at most ``tol * y^T y`` (centred ``y``), scikit-learn's criterion.

    Parameters
    ----------
    moments : list of Moments
        One per row set (fold).
    alphas : ndarray of shape (n_alphas,)
        Decreasing.
    l1_ratio : float
    fit_intercept : bool
    tol : float, default=1e-4
    max_iter : int, default=1000
        Sweeps per alpha.
    positive : bool, default=False
        Constrain the coefficients to be non-negative.

    Returns
    -------
    coefs : ndarray of shape (n_sets, n_alphas, n_features)
    intercepts : ndarray of shape (n_sets, n_alphas)
    n_iter : ndarray of int of shape (n_sets, n_alphas)
    dual_gaps : ndarray of shape (n_sets, n_alphas)
    """
    grams = [_gram(m, fit_intercept) for m in moments]
    G = np.stack([g[0] for g in grams])  # (S, d, d)
    q = np.stack([g[1] for g in grams])  # (S, d)
    yy = np.array([g[2] for g in grams])
    mx = np.stack([g[3] for g in grams])
    my = np.array([g[4] for g in grams])
    n = np.array([m.n for m in moments])
    n_sets, d = q.shape
    diag = np.einsum("sjj->sj", G)
    w = np.zeros((n_sets, d))
    Gw = np.zeros((n_sets, d))
    coefs = np.zeros((n_sets, len(alphas), d))
    n_iter = np.zeros((n_sets, len(alphas)), dtype=np.int64)
    gaps = np.zeros((n_sets, len(alphas)))
    for a, alpha in enumerate(alphas):
        l1 = alpha * l1_ratio * n
        l2 = alpha * (1.0 - l1_ratio) * n
        denominator = diag + l2[:, None]
        safe = np.where(denominator > 0, denominator, 1.0)
        active = np.ones(n_sets, dtype=bool)
        gap = np.full(n_sets, np.inf)
        for sweep in range(1, max_iter + 1):
            for j in range(d):
                old = w[:, j]
                rho = q[:, j] - Gw[:, j] + diag[:, j] * old
                if positive:
                    new = np.maximum(rho - l1, 0.0)
                else:
                    new = np.sign(rho) * np.maximum(np.abs(rho) - l1, 0.0)
                # a constant column without an l2 term (zero denominator) keeps a zero coefficient
                new = np.where(denominator[:, j] > 0, new / safe[:, j], 0.0)
                new = np.where(active, new, old)
                delta = new - old
                if np.any(delta):
                    w[:, j] = new
                    Gw += G[:, :, j] * delta[:, None]
            gap = _duality_gap(w, Gw, q, yy, l1, l2, positive)
            n_iter[active, a] = sweep
            active &= gap > tol * yy
            if not active.any():
                break
        coefs[:, a] = w
        gaps[:, a] = gap
    if fit_intercept:
        intercepts = my[:, None] - np.einsum("sad,sd->sa", coefs, mx)
    else:
        intercepts = np.zeros((n_sets, len(alphas)))
    return coefs, intercepts, n_iter, gaps


def _duality_gap(
    w: np.ndarray,
    Gw: np.ndarray,
    q: np.ndarray,
    yy: np.ndarray,
    l1: np.ndarray,
    l2: np.ndarray,
    positive: bool,
) -> np.ndarray:
    """scikit-learn's duality gap of the elastic net in its Gram form (``enet_coordinate_descent_gram``)."""
    XtA = q - Gw - l2[:, None] * w
    dual_norm = np.max(XtA, axis=1) if positive else np.max(np.abs(XtA), axis=1)
    R_norm2 = yy + np.einsum("sd,sd->s", w, Gw) - 2 * np.einsum("sd,sd->s", q, w)
    w_norm2 = np.einsum("sd,sd->s", w, w)
    const = np.where(dual_norm > l1, l1 / np.where(dual_norm > 0, dual_norm, 1), 1.0)
    gap = np.where(dual_norm > l1, 0.5 * (R_norm2 + R_norm2 * const**2), R_norm2)
    gap += l1 * np.abs(w).sum(axis=1) - const * (yy - np.einsum("sd,sd->s", q, w))
    gap += 0.5 * l2 * (1 + const**2) * w_norm2
    return gap
