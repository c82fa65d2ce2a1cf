"""Penalties on the coefficients (never on the intercept row) and the proximal operator of the l1 norm.

All functions take the parameter matrix ``W`` of shape ``(n_params, n_outputs)`` and the number of penalised
rows ``n_features`` (the rows after it, i.e. the intercept, are left alone). They work in float64 on the
client: parameters are model-sized.
"""

from __future__ import annotations

import numpy as np

__all__ = ["l1_norm", "l1_optimality", "l2_value_grad", "prox_l1"]


def l2_value_grad(W: np.ndarray, n_features: int, l2: float) -> tuple[float, np.ndarray]:
    """Value ``(l2 / 2) ||W[:n_features]||_F^2`` and its gradient.

    Parameters
    ----------
    W : ndarray of shape (n_params, n_outputs)
    n_features : int
        Penalised rows.
    l2 : float
        Strength (>= 0).

    Returns
    -------
    value : float
    grad : ndarray of shape (n_params, n_outputs)

    Examples
    --------
    >>> import numpy as np
    >>> value, grad = l2_value_grad(np.array([[1.0], [2.0], [5.0]]), 2, 2.0)
    >>> value, grad.ravel().tolist()
    (5.0, [2.0, 4.0, 0.0])
    """
    grad = np.zeros_like(W, dtype=np.float64)
    if l2 == 0:
        return 0.0, grad
    coef = W[:n_features]
    grad[:n_features] = l2 * coef
    return 0.5 * l2 * float(np.vdot(coef, coef)), grad


def l1_norm(W: np.ndarray, n_features: int) -> float:
    """``||W[:n_features]||_1``, the sum of absolute coefficients (intercepts excluded).

    Examples
    --------
    >>> import numpy as np
    >>> l1_norm(np.array([[1.0], [-2.0], [5.0]]), 2)
    3.0
    """
    return float(np.abs(W[:n_features]).sum())


def prox_l1(W: np.ndarray, n_features: int, threshold: float) -> np.ndarray:
    """Soft-thresholding of the coefficient rows: ``sign(w) * max(|w| - threshold, 0)``; intercepts unchanged.

    Parameters
    ----------
    W : ndarray of shape (n_params, n_outputs)
    n_features : int
        Penalised rows.
    threshold : float
        Step size times the l1 strength.

    Returns
    -------
    ndarray of shape (n_params, n_outputs)
        A new array; coefficients whose magnitude is below ``threshold`` become exactly 0.

    Examples
    --------
    >>> import numpy as np
    >>> prox_l1(np.array([[0.5], [-2.0], [0.1]]), 2, 1.0).ravel().tolist()
    [0.0, -1.0, 0.1]
    """
    out = np.array(W, dtype=np.float64, copy=True)
    coef = out[:n_features]
    np.copyto(coef, np.sign(coef) * np.maximum(np.abs(coef) - threshold, 0.0))
    return out


def l1_optimality(W: np.ndarray, grad: np.ndarray, n_features: int, l1: float) -> np.ndarray:
    """Distance of ``0`` to the subdifferential of ``f + l1 ||W[:n_features]||_1`` at ``W``, per entry.

    ``grad`` is the gradient of the smooth part ``f``. For a non-zero coefficient the entry is
    ``|g + l1 sign(w)|``, for a zero coefficient ``max(|g| - l1, 0)``, and for intercepts ``|g|``. The
    sup-norm of the result is zero exactly at a minimiser.

    Returns
    -------
    ndarray of shape (n_params, n_outputs)
    """
    out = np.abs(grad).astype(np.float64)
    if l1 == 0:
        return out
    coef, g = W[:n_features], grad[:n_features]
    out[:n_features] = np.where(coef != 0, np.abs(g + l1 * np.sign(coef)), np.maximum(np.abs(g) - l1, 0.0))
    return out
