"""Newton's method on a smoothed hinge with decreasing smoothing, stopped by the duality gap (``LinearSVC``).

The hinge objective ``F(w) = data_scale * sum_i w_i max(0, 1 - y_i (x_i . w + b)) + l2 / 2 ||w||^2`` is not
differentiable. Replacing each hinge by its Huber smoothing of width ``mu`` (see
:mod:`daskml_lab.solvers._smoothed_hinge`) gives a piecewise-quadratic function ``F_mu`` with
``F_mu <= F <= F_mu + mu / 2 * data_scale * sum_weights``, whose Hessian involves only the rows within ``mu``
of the margin. The solver runs Newton's method on ``F_mu`` and multiplies ``mu`` by ``shrink`` whenever the
smoothed problem is solved (continuation): large ``mu`` first, where
Newton's model is good far from the optimum, then smaller ones, each warm-started at the previous solution.

It stops on a certificate, not a heuristic: at every evaluated point the derivatives ``beta_i`` of the
smoothed hinge are a feasible point of the hinge's dual (once the intercept's equality constraint is restored by
scaling down the ``beta`` of the class with the larger sum), so ``(best primal - best dual) / best primal``
bounds the relative distance of the returned parameters' objective to the optimum; the solver stops when it is
at most ``tol``.

One Newton iteration is two round trips: the statistics at the current point (value, gradient, dual bound,
and the Hessian of the few quadratic rows, summed on each worker), then the slopes of ``F_mu`` along the Newton
direction at a grid of steps (an exact line search up to the grid's resolution, linearly interpolated). When
``n_params`` exceeds ``max_dense_params``, the Hessian is not formed: the Newton system is solved by
conjugate gradients, one round trip per Hessian-vector product.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._options import SolverOptions, check_int, check_positive, option_error
from daskml_lab.solvers._result import SolverResult
from daskml_lab.solvers._scaffold import Outcome, SolverRun, Status, run_solver
from daskml_lab.solvers._smoothed_hinge import (
    HingeStatistics,
    combine,
    hinge_hessian_product,
    hinge_slopes,
    hinge_statistics,
)

logger = logging.getLogger(__name__)

__all__ = ["SmoothedNewtonOptions", "smoothed_newton"]

#: Steps at which the line search evaluates the slope along the Newton direction.
_STEPS = np.concatenate([[0.0], 2.0 ** np.arange(-16, 3)])
#: Smallest smoothing width: below it the duality gap no longer shrinks in float64.
_MIN_SMOOTHING = 1e-12
_EPS = float(np.finfo(np.float64).eps)


@dataclasses.dataclass(frozen=True)
class SmoothedNewtonOptions(SolverOptions):
    """Tuning constants of :func:`smoothed_newton` (see its parameters), validated when created.

    Examples
    --------
    >>> SmoothedNewtonOptions(shrink=1.5)
    Traceback (most recent call last):
    ...
    ValueError: smoothed-newton: shrink must be in (0, 1), got 1.5.
    """

    solver = "smoothed-newton"
    smoothing: float = 2.0
    shrink: float = 0.1
    level_tol: float = 0.1
    max_dense_params: int = 2048
    cg_max_iter: int = 50

    def __post_init__(self) -> None:
        for name in ("smoothing", "shrink", "level_tol"):
            check_positive(self.solver, name, getattr(self, name))
        if not self.shrink < 1:
            raise option_error(self.solver, f"shrink must be in (0, 1), got {self.shrink!r}.")
        for name in ("max_dense_params", "cg_max_iter"):
            check_int(self.solver, name, getattr(self, name))

    def check_problem(self, problem: Any) -> None:
        """Refuse losses other than the hinge, and a hinge without l2 penalty (its dual bound needs one)."""
        if problem.loss != "hinge":
            raise option_error(
                self.solver,
                f"this solver minimises the 'hinge' loss only, got loss={problem.loss!r}. Use solver='lbfgs' "
                "for smooth losses (or 'auto').",
            )
        if not problem.l2 > 0:
            raise option_error(
                self.solver,
                f"needs an l2 penalty (l2 > 0), got l2={problem.l2:g}: without one the hinge problem may have "
                "no minimiser. Use solver='admm' or 'sgd'.",
            )


def smoothed_newton(
    problem: Any,
    *,
    w0: Any = None,
    tol: float = 1e-4,
    max_iter: int = 500,
    random_state: Any = None,
    callback: Callable[..., Any] | None = None,
    smoothing: float = 2.0,
    shrink: float = 0.1,
    level_tol: float = 0.1,
    max_dense_params: int = 2048,
    cg_max_iter: int = 50,
    checkpoint: SolverCheckpoint | None = None,
) -> SolverResult:
    """Minimise a hinge-loss :class:`~daskml_lab.solvers.BlockedProblem` (``l2 > 0``, ``l1 = 0``).

    Newton's method on the Huber-smoothed hinge, with a smoothing width ``mu`` that starts at ``smoothing``
    and is multiplied by ``shrink`` each time the smoothed problem is solved (its own duality gap at most
    ``level_tol * tol`` relative). Stops when the relative duality gap of the hinge is at most ``tol``.

    Parameters
    ----------
    problem : BlockedProblem
        Problem with the ``"hinge"`` loss, ``l2 > 0`` and ``l1 == 0``.
    w0 : ndarray of shape (n_params, 1) or None, default=None
        Starting parameters; zeros when None.
    tol : float, default=1e-4
        Stop when ``(F(w) - D) / F(w) <= tol``, with ``w`` the evaluated parameters of lowest objective and
        ``D`` the best dual lower bound seen: the returned objective is then within ``tol`` (relative) of the
        optimum.
    max_iter : int, default=500
        Largest number of Newton iterations (each is two round trips).
    random_state : None
        Unused by this deterministic solver.
    callback : callable or None, default=None
        ``callback(record, W)`` after each iteration; returning True stops the solver.
    smoothing : float, default=2.0
        Starting smoothing width, in margin units (above 1, every row has curvature at ``w = 0``).
    shrink : float, default=0.1
        Factor of the smoothing width from one level to the next, in (0, 1).
    level_tol : float, default=0.1
        A level ends when the smoothed problem's own duality gap (same betas) is at most ``level_tol * tol``
        times the objective: its betas then give a bound on the hinge within ``O(mu)`` of the optimum.
    max_dense_params : int, default=2048
        Up to this many parameters, each worker returns the Hessian of its quadratic rows and the client solves
        the Newton system directly; beyond, conjugate gradients with one round trip per Hessian-vector
        product (preconditioned by the Hessian's diagonal).
    cg_max_iter : int, default=50
        Conjugate-gradient iterations per Newton step (when the Hessian is not formed).
    checkpoint : SolverCheckpoint or None, default=None
        Save the parameters, the smoothing width, the best primal point and dual bound and the history every
        ``checkpoint.every`` iterations; a run given a checkpoint of the same problem resumes from it (see
        :doc:`/checkpoints`).

    Returns
    -------
    SolverResult
        History records: ``objective`` (exact hinge objective at the iterate), ``grad_norm`` (the relative
        duality gap compared with ``tol``), ``step_size`` (the line search's step), ``smoothing`` (``mu``),
        ``dual_bound`` and ``n_quadratic`` (rows within ``mu`` of the margin).

    Raises
    ------
    ValueError
        If the loss is not the hinge, ``l2 == 0``, ``l1 > 0``, or for invalid arguments.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` is reached, or the smoothing width reaches ``1e-12`` (float64's limit), before the
        duality gap is at most ``tol``.

    Notes
    -----
    Why this solver for the hinge (measured on a9a, see :doc:`/linear_models`): the objective is piecewise
    quadratic in a few hundred parameters, so Newton steps on the smoothed problem need few passes over the
    data, each returning a ``n_params x n_params`` matrix summed on the workers; consensus ADMM needs hundreds
    of rounds for the same accuracy, and a dual coordinate descent is sequential over the rows (fast only in
    compiled code).
    """
    options = SmoothedNewtonOptions(
        smoothing=smoothing,
        shrink=shrink,
        level_tol=level_tol,
        max_dense_params=max_dense_params,
        cg_max_iter=cg_max_iter,
    )
    return run_solver(
        "smoothed-newton",
        problem,
        options,
        _run_smoothed_newton,
        w0=w0,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        callback=callback,
        checkpoint=checkpoint,
        advice="Increase max_iter, scale the features, or loosen tol.",
    )


class _Point:
    """The objective, smoothed objective, gradient and dual bound at one evaluated point."""

    def __init__(self, problem: Any, w: np.ndarray, mu: float, stats: HingeStatistics) -> None:
        scale, l2 = problem.data_scale, problem.l2
        n_features = problem.n_features
        coef = w[:n_features]
        penalty = 0.5 * l2 * float(coef @ coef)
        self.w, self.mu, self.stats = w, mu, stats
        self.primal = scale * stats.hinge + penalty
        self.smoothed = scale * stats.smoothed + penalty
        plus, minus = stats.beta_sums
        grad = np.empty_like(w)
        grad[:n_features] = l2 * coef - scale * (stats.signed_sums[0] - stats.signed_sums[1])
        if problem.fit_intercept:
            grad[n_features] = -scale * (plus - minus)
        self.grad = grad
        self.dual = _dual_bound(problem, stats)
        # F_mu(w) - D_mu(beta), with D_mu = D - mu / 2 * data_scale * sum_i w_i beta_i^2 (same feasible beta)
        self.smoothed_gap = self.smoothed - (self.dual - 0.5 * mu * scale * stats.beta_squares)


def _dual_bound(problem: Any, stats: HingeStatistics) -> float:
    """The hinge's dual objective at a feasible point made from the betas of ``stats``: a lower bound of ``F``.

    The dual is ``D(beta) = data_scale * sum_i w_i beta_i - ||v||^2 / (2 l2)`` with ``v = data_scale * sum_i
    w_i beta_i y_i x_i``, over ``beta`` in ``[0, 1]`` with, when there is an intercept, ``sum_i w_i beta_i y_i =
    0``. The betas of the class with the larger sum are scaled down until that holds, those of the quadratic
    rows first: their slack is below ``mu``, so lowering them costs the bound least. Then all betas are scaled
    by the factor in ``[0, 1]`` that maximises ``D``.
    """
    scale, l2 = problem.data_scale, problem.l2
    sums = stats.beta_sums.astype(np.float64).copy()
    signed = stats.signed_sums.astype(np.float64).copy()
    if problem.fit_intercept:
        larger = 0 if sums[0] > sums[1] else 1
        excess = sums[larger] - sums[1 - larger]
        quadratic_sum = float(stats.quadratic_beta_sums[larger])
        quadratic_signed = stats.quadratic_signed_sums[larger]
        first = min(1.0, excess / quadratic_sum) if quadratic_sum > 0 else 0.0
        rest = sums[larger] - quadratic_sum
        second = (excess - first * quadratic_sum) / rest if rest > 0 else 0.0
        signed[larger] -= first * quadratic_signed + second * (signed[larger] - quadratic_signed)
        sums[larger] -= excess
    total = scale * float(sums.sum())
    v = scale * (signed[0] - signed[1])
    squared = float(v @ v)
    factor = min(1.0, total * l2 / squared) if squared > 0 else 1.0
    return factor * total - factor**2 * squared / (2.0 * l2)


def _run_smoothed_newton(run: SolverRun) -> Outcome:
    """Newton iterations on the smoothed hinge; the smoothing shrinks as levels are solved."""
    options: SmoothedNewtonOptions = run.options  # type: ignore[assignment]
    problem, tol, max_iter, saved = run.problem, run.tol, run.max_iter, run.saved
    dense = problem.n_params <= options.max_dense_params
    curvature = "dense" if dense else "diagonal"
    n_features = problem.n_features
    penalty = np.ones(problem.n_params)
    penalty[n_features:] = 0.0  # the intercept is not penalised

    def evaluate(w: np.ndarray, mu: float) -> _Point:
        # one round trip: scalars, two d-vectors and (dense) the Hessian of the quadratic rows per worker
        return _Point(problem, w, mu, combine(problem.map_workers(hinge_statistics, w, mu, curvature)))

    w = run.initial_params().ravel()
    mu = float(options.smoothing)
    best_w, best_primal, best_dual = w, math.inf, -math.inf
    n_iter, n_passes = run.start_iteration, 0
    if saved is not None:
        w, best_w = saved.arrays["w"].ravel(), saved.arrays["best_w"].ravel()
        mu, best_primal, best_dual = (float(saved.state[k]) for k in ("mu", "best_primal", "best_dual"))
        n_passes = int(saved.state["n_passes"])
    point = evaluate(w, mu)
    n_passes += 1
    step = None
    while True:
        if point.primal < best_primal:
            best_w, best_primal = point.w, point.primal
        best_dual = max(best_dual, point.dual)
        gap = max(best_primal - best_dual, 0.0)
        relative_gap = gap / best_primal if best_primal > 0 else 0.0
        stop = run.record(
            objective_scaled=point.primal / problem.objective_scale,
            grad_norm=relative_gap,
            step_size=step,
            n_evals=n_passes,
            x=point.w,
            smoothing=mu,
            dual_bound=best_dual,
            n_quadratic=point.stats.n_quadratic,
        )
        if relative_gap <= tol:
            return Outcome(best_w, n_iter, Status.CONVERGED, f"duality gap {relative_gap:.3g} <= tol={tol:g}")
        if stop:
            return Outcome(best_w, n_iter, Status.STOPPED, "stopped by the callback")
        if n_iter >= max_iter:
            message = f"reached max_iter={max_iter} with duality gap {relative_gap:.3g} > tol={tol:g}"
            return Outcome(best_w, n_iter, Status.MAX_ITER, message)
        direction, n_products = _newton_direction(problem, point, penalty, dense, options)
        n_passes += n_products
        # a level is solved when the smoothed problem's own duality gap is small: its betas then give a
        # bound within O(mu) of the optimum, and a smaller mu is needed to get closer
        while point.smoothed_gap <= options.level_tol * tol * best_primal or (
            -float(point.grad @ direction) <= _EPS * best_primal
        ):
            mu *= options.shrink
            if mu < _MIN_SMOOTHING:
                message = (
                    f"the duality gap stalled at {relative_gap:.3g} > tol={tol:g} (smoothing width {mu:.1e})"
                )
                return Outcome(best_w, n_iter, Status.FAILED, message)
            point = evaluate(point.w, mu)
            n_passes += 1
            best_dual = max(best_dual, point.dual)
            direction, n_products = _newton_direction(problem, point, penalty, dense, options)
            n_passes += n_products
        step = _line_search(problem, point, direction, penalty)
        n_passes += 1
        point = evaluate(point.w + step * direction, mu)
        n_passes += 1
        n_iter += 1
        run.save(
            n_iter,
            {"w": point.w, "best_w": best_w},
            mu=mu,
            best_primal=best_primal,
            best_dual=best_dual,
            n_passes=n_passes,
        )


def _newton_direction(
    problem: Any, point: _Point, penalty: np.ndarray, dense: bool, options: SmoothedNewtonOptions
) -> tuple[np.ndarray, int]:
    """The Newton direction of the smoothed objective at ``point``, and the round trips it took."""
    scale, l2 = problem.data_scale, problem.l2
    if dense:
        hessian = scale * point.stats.hessian
        hessian[np.diag_indices_from(hessian)] += l2 * penalty
        # a tiny ridge keeps the system solvable when no row gives the intercept curvature
        ridge = 1e-10 * max(float(np.max(np.diag(hessian))), l2)
        hessian[np.diag_indices_from(hessian)] += ridge
        try:
            return -scipy.linalg.solve(hessian, point.grad, assume_a="pos"), 0
        except (np.linalg.LinAlgError, ValueError):
            return -np.linalg.lstsq(hessian, point.grad, rcond=None)[0], 0
    diagonal = scale * point.stats.diagonal + l2 * penalty
    diagonal = np.maximum(diagonal, 1e-10 * max(float(diagonal.max()), l2))

    def product(v: np.ndarray) -> np.ndarray:
        # one round trip: a parameter-sized vector per worker
        parts = problem.map_workers(hinge_hessian_product, point.w, point.mu, v)
        return scale * sum(parts) + l2 * penalty * v

    return _conjugate_gradient(product, -point.grad, diagonal, options.cg_max_iter)


def _conjugate_gradient(
    product: Callable[[np.ndarray], np.ndarray], rhs: np.ndarray, diagonal: np.ndarray, max_iter: int
) -> tuple[np.ndarray, int]:
    """Preconditioned conjugate gradients for ``H x = rhs`` (inexact Newton forcing term ``min(0.5, ||rhs||^0.5)``).

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> x, n = _conjugate_gradient(lambda v: H @ v, np.array([1.0, 2.0]), np.diag(H).copy(), 10)
    >>> np.allclose(H @ x, [1.0, 2.0], atol=0.5)
    True
    """
    x = np.zeros_like(rhs)
    residual = rhs.copy()
    norm = float(np.linalg.norm(rhs))
    target = min(0.5, math.sqrt(norm)) * norm
    z = residual / diagonal
    direction = z.copy()
    rz = float(residual @ z)
    n_products = 0
    for _ in range(max_iter):
        if float(np.linalg.norm(residual)) <= target:
            break
        Hd = product(direction)
        n_products += 1
        curvature = float(direction @ Hd)
        if curvature <= 0:
            break
        alpha = rz / curvature
        x += alpha * direction
        residual -= alpha * Hd
        z = residual / diagonal
        rz, rz_old = float(residual @ z), rz
        direction = z + (rz / rz_old) * direction
    if not x.any():
        x = z * 0.0 + rhs / diagonal  # no progress: a preconditioned gradient step
    return x, n_products


def _line_search(problem: Any, point: _Point, direction: np.ndarray, penalty: np.ndarray) -> float:
    """Step along ``direction`` where the slope of the smoothed objective changes sign (one round trip).

    The slope ``phi'(t) = l2 <w + t d, d>_P - data_scale * sum_i w_i e_i beta_i(t)`` is increasing (the
    objective is convex); it is evaluated at the grid :data:`_STEPS` and its zero located by linear
    interpolation between the two grid steps around it.
    """
    scale, l2 = problem.data_scale, problem.l2
    # one round trip: the slopes at the grid of steps (about 20 numbers) per worker
    sums = sum(problem.map_workers(hinge_slopes, point.w, direction, point.mu, _STEPS))
    penalised = penalty * direction
    slopes = l2 * (float(penalised @ point.w) + _STEPS * float(penalised @ direction)) - scale * sums
    if slopes[0] >= 0:  # not a descent direction (round-off): a tiny step keeps the iteration going
        return float(_STEPS[1])
    above = np.flatnonzero(slopes >= 0)
    if above.size == 0:
        return float(_STEPS[-1])
    k = int(above[0])
    low, high = _STEPS[k - 1], _STEPS[k]
    return float(low + (high - low) * (-slopes[k - 1]) / (slopes[k] - slopes[k - 1]))
