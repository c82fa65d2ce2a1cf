"""FISTA (accelerated proximal gradient) with backtracking and adaptive restart, for l1 and elastic-net."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from daskml_lab.monitoring import fit_span
from daskml_lab.solvers._checkpoint import SolverCheckpoint, finished_result, open_checkpoint
from daskml_lab.solvers._common import (
    History,
    ScaledObjective,
    check_solver_args,
    require_problem,
    single_threaded_blas,
)
from daskml_lab.solvers._linesearch import backtracking_proximal
from daskml_lab.solvers._regularizers import l1_norm, l1_optimality, prox_l1
from daskml_lab.solvers._result import SolverResult, warn_not_converged

logger = logging.getLogger(__name__)

__all__ = ["proximal"]


def proximal(
    problem: Any,
    *,
    w0: Any = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    random_state: Any = None,
    callback: Callable[..., Any] | None = None,
    step_size: float = 1.0,
    shrink: float = 0.5,
    grow: float = 1.25,
    restart: bool = True,
    max_line_search: int = 50,
    checkpoint: SolverCheckpoint | None = None,
) -> SolverResult:
    """Minimise ``smooth + l1 * ||W[:d]||_1`` with FISTA (Beck and Teboulle, 2009).

    Each iteration takes a proximal gradient step (a gradient step on the smooth part, then soft-thresholding
    of the coefficients; intercepts are not thresholded) from an extrapolated point, with a backtracking
    search on the step. The momentum is reset whenever the objective goes up (adaptive restart, O'Donoghue and
    Candès, 2015), which restores linear convergence on strongly convex problems. Coefficients that the
    proximal step sets to zero are exactly zero, so the returned sparsity pattern is the solver's. An
    iteration costs two fused evaluations (extrapolated point and trial point), one after a restart.

    Parameters
    ----------
    problem : BlockedProblem
        Problem with a smooth loss; any ``l1 >= 0`` and ``l2 >= 0`` (elastic net).
    w0 : ndarray of shape (n_params, n_outputs) or None, default=None
        Starting parameters; zeros when None.
    tol : float, default=1e-4
        Stop when the sup-norm of the smallest subgradient of the per-sample objective
        ``F / (data_scale * sum_weights)`` at the current point is at most ``tol`` (for ``l1 == 0`` this is
        the gradient sup-norm, as for lbfgs and gd).
    max_iter : int, default=1000
        Largest number of iterations.
    random_state : None
        Unused by this deterministic solver.
    callback : callable or None, default=None
        ``callback(record, W)`` after each iteration; returning True stops the solver.
    step_size : float, default=1.0
        First step tried, on the per-sample objective.
    shrink : float, default=0.5
        Step factor after a rejected trial (in (0, 1)).
    grow : float, default=1.25
        Factor from an accepted step to the next first trial (>= 1), so the step can recover.
    restart : bool, default=True
        Whether to reset the momentum when the objective increases.
    max_line_search : int, default=50
        Evaluations allowed per backtracking search.
    checkpoint : SolverCheckpoint or None, default=None
        Save the iterate, the extrapolated point, the momentum, the next trial step, the iteration and the
        history every ``checkpoint.every`` iterations; a run given a checkpoint of the same problem resumes
        from it and reaches the solution of an uninterrupted run (see :doc:`/checkpoints`).

    Returns
    -------
    SolverResult
        ``grad_norm`` in the history is the optimality measure compared with ``tol``; ``step_size`` the
        accepted step; records also hold ``restart`` (whether the momentum was reset).

    Raises
    ------
    ValueError
        If the loss is not smooth, or for invalid arguments.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` is reached or a line search fails.

    References
    ----------
    A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear inverse problems",
    SIAM J. Imaging Sciences 2(1), 2009. B. O'Donoghue and E. Candès, "Adaptive restart for accelerated
    gradient schemes", Foundations of Computational Mathematics 15, 2015.
    """
    check_solver_args("proximal", tol, max_iter, step_size=step_size, shrink=shrink, grow=grow)
    if not (0 < shrink < 1 and grow >= 1):
        msg = f"proximal: need 0 < shrink < 1 and grow >= 1; got shrink={shrink}, grow={grow}."
        raise ValueError(msg)
    if not isinstance(max_line_search, int) or isinstance(max_line_search, bool) or max_line_search < 1:
        msg = f"proximal: max_line_search must be an int >= 1, got {max_line_search!r}."
        raise ValueError(msg)
    require_problem(problem, "proximal", allow_l1=True)
    with fit_span("proximal"), single_threaded_blas():
        problem.start()
        fun = ScaledObjective(problem)
        shape = fun.shape
        n_features = problem.n_features
        l1 = problem.l1 / fun.scale

        def prox(v: np.ndarray, step: float) -> np.ndarray:
            return prox_l1(v.reshape(shape), n_features, step * l1).ravel()

        def total(f: float, x: np.ndarray) -> float:
            return f + l1 * l1_norm(x.reshape(shape), n_features)

        run = open_checkpoint(
            checkpoint,
            problem,
            "proximal",
            {
                "tol": tol,
                "max_iter": max_iter,
                "step_size": step_size,
                "shrink": shrink,
                "grow": grow,
                "restart": restart,
                "max_line_search": max_line_search,
            },
        )
        saved = run.load()
        if saved is not None and saved.complete:
            return finished_result(saved, problem, "proximal")
        x = problem.initial_params(w0).ravel() if saved is None else saved.arrays["x"]
        f_x, g_x = fun(x)
        obj_x = total(f_x, x)
        y, f_y, g_y = x, f_x, g_x
        theta = 1.0
        step = float(step_size)
        history = History(fun.scale, callback, shape)
        converged, message, n_iter = False, "", 0
        if saved is not None:
            history.restore(saved.history)
            theta, step, n_iter = float(saved.state["theta"]), float(saved.state["step"]), saved.iteration
            if "y" in saved.arrays:  # the extrapolated point differs from the iterate
                y = saved.arrays["y"]
                f_y, g_y = fun(y)
        optimality = _optimality(x, g_x, shape, n_features, l1)
        while True:
            if optimality <= tol:
                converged, message = True, f"optimality {optimality:.3g} <= tol={tol:g}"
                break
            if n_iter >= max_iter:
                message = f"reached max_iter={max_iter} with optimality {optimality:.3g} > tol={tol:g}"
                break
            search = backtracking_proximal(
                fun, prox, y, f_y, g_y, step, shrink=shrink, max_trials=max_line_search
            )
            if not search.success:
                message = (
                    f"the backtracking search found no acceptable step after {max_line_search} trials "
                    f"(optimality {optimality:.3g}); the objective is flat at working precision"
                )
                break
            n_iter += 1
            step = search.step * grow
            obj_new = total(search.f, search.x)
            restarted = restart and obj_new > obj_x and y is not x
            if restarted:
                # momentum overshot: drop it and take the next step from the current point
                theta, y, f_y, g_y = 1.0, x, f_x, g_x
            else:
                theta_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * theta * theta))
                momentum = (theta - 1.0) / theta_next
                x_prev = x
                x, f_x, g_x, obj_x = search.x, search.f, search.g, obj_new
                theta = theta_next
                if momentum > 0:
                    y = x + momentum * (x - x_prev)
                    f_y, g_y = fun(y)
                else:
                    y, f_y, g_y = x, f_x, g_x
                optimality = _optimality(x, g_x, shape, n_features, l1)
            if history.add(
                objective_scaled=obj_x,
                grad_norm=optimality,
                step_size=search.step,
                n_evals=fun.n_evals,
                x=x,
                restart=bool(restarted),
            ):
                message = "stopped by the callback"
                break
            run.save(
                n_iter, history.records, {"x": x} if y is x else {"x": x, "y": y}, theta=theta, step=step
            )
        warning = None
        if not converged and message != "stopped by the callback":
            warning = f"{message}. Increase max_iter or scale the features."
        W = np.asarray(x, dtype=np.float64).reshape(shape)
        run.complete(SolverResult(W, n_iter, converged, history.records, message), warning)
    if warning is not None:
        warn_not_converged("proximal", warning)
    logger.debug("proximal: %d iterations, %d evaluations: %s", n_iter, fun.n_evals, message)
    W = W.astype(problem.dtype)
    return SolverResult(W=W, n_iter=n_iter, converged=converged, history=history.records, message=message)


def _optimality(x: np.ndarray, g: np.ndarray, shape: tuple[int, int], n_features: int, l1: float) -> float:
    values = l1_optimality(x.reshape(shape), g.reshape(shape), n_features, l1)
    return float(values.max()) if values.size else 0.0
