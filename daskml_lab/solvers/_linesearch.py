"""Shared backtracking line searches, written once for every solver.

Each trial point costs one fused loss+gradient evaluation, so the searches return the gradient at the accepted
point too: the next iteration then needs no extra pass over the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["LineSearchResult", "backtracking_armijo", "backtracking_proximal"]


@dataclass
class LineSearchResult:
    """Outcome of a line search.

    Attributes
    ----------
    success : bool
        Whether an acceptable point was found within the allowed trials.
    step : float
        Accepted step size (the last one tried on failure).
    x : ndarray
        Accepted point.
    f : float
        Objective at ``x``.
    g : ndarray
        Gradient at ``x``.
    n_evals : int
        Objective evaluations spent.
    """

    success: bool
    step: float
    x: np.ndarray
    f: float
    g: np.ndarray
    n_evals: int


def backtracking_armijo(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    f: float,
    g: np.ndarray,
    direction: np.ndarray,
    step: float,
    *,
    shrink: float = 0.5,
    c1: float = 1e-4,
    max_trials: int = 50,
) -> LineSearchResult:
    """Shrink ``step`` until ``f(x + step d) <= f(x) + c1 step <g, d>`` (sufficient decrease).

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, g)``, one fused evaluation.
    x, g : ndarray
        Current point and gradient.
    f : float
        Current objective.
    direction : ndarray
        Descent direction (``<g, d> < 0``).
    step : float
        First step tried.
    shrink : float, default=0.5
        Factor applied to the step after each failed trial.
    c1 : float, default=1e-4
        Sufficient-decrease constant.
    max_trials : int, default=50
        Evaluations allowed.

    Returns
    -------
    LineSearchResult

    Examples
    --------
    >>> import numpy as np
    >>> fun = lambda x: (float(x @ x), 2 * x)
    >>> x = np.array([1.0]); f, g = fun(x)
    >>> res = backtracking_armijo(fun, x, f, g, -g, 1.0)
    >>> res.success, res.step, res.x.tolist()
    (True, 0.5, [0.0])
    """
    slope = float(np.vdot(g, direction))
    new_x, new_f, new_g = x, f, g
    for trial in range(1, max_trials + 1):
        new_x = x + step * direction
        new_f, new_g = fun(new_x)
        if np.isfinite(new_f) and new_f <= f + c1 * step * slope:
            return LineSearchResult(True, step, new_x, new_f, new_g, trial)
        step *= shrink
    return LineSearchResult(False, step / shrink, new_x, new_f, new_g, max_trials)


def backtracking_proximal(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    prox: Callable[[np.ndarray, float], np.ndarray],
    y: np.ndarray,
    f_y: float,
    g_y: np.ndarray,
    step: float,
    *,
    shrink: float = 0.5,
    max_trials: int = 50,
) -> LineSearchResult:
    """Shrink ``step`` until the proximal-gradient point ``x = prox(y - step g, step)`` satisfies
    ``f(x) <= f(y) + <g, x - y> + ||x - y||^2 / (2 step)`` (Beck and Teboulle's condition).

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, g)`` for the smooth part, one fused evaluation.
    prox : callable
        ``prox(v, step)``, the proximal operator of ``step`` times the non-smooth part.
    y : ndarray
        Point the gradient step starts from.
    f_y : float
        Smooth objective at ``y``.
    g_y : ndarray
        Its gradient.
    step : float
        First step tried.
    shrink : float, default=0.5
        Factor applied after each failed trial.
    max_trials : int, default=50
        Evaluations allowed.

    Returns
    -------
    LineSearchResult
        ``f`` and ``g`` are the smooth objective and gradient at the accepted ``x``.
    """
    x, f_x, g_x = y, f_y, g_y
    for trial in range(1, max_trials + 1):
        x = prox(y - step * g_y, step)
        diff = x - y
        f_x, g_x = fun(x)
        bound = f_y + float(np.vdot(g_y, diff)) + float(np.vdot(diff, diff)) / (2 * step)
        # a relative slack absorbs rounding when the step no longer changes anything
        if np.isfinite(f_x) and f_x <= bound + 1e-12 * abs(f_y):
            return LineSearchResult(True, step, x, f_x, g_x, trial)
        step *= shrink
    return LineSearchResult(False, step / shrink, x, f_x, g_x, max_trials)
