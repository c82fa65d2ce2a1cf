"""FISTA (accelerated proximal gradient) with backtracking and adaptive restart, for l1 and elastic-net."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._common import ScaledObjective
from daskml_lab.solvers._linesearch import backtracking_proximal
from daskml_lab.solvers._options import SolverOptions, check_int, check_positive, option_error
from daskml_lab.solvers._regularizers import l1_norm, l1_optimality, prox_l1
from daskml_lab.solvers._result import SolverResult
from daskml_lab.solvers._scaffold import Outcome, SolverRun, Status, run_solver

__all__ = ["ProximalOptions", "proximal"]


@dataclasses.dataclass(frozen=True)
class ProximalOptions(SolverOptions):
    """Tuning constants of :func:`proximal` (see its parameters), validated when created.

    Examples
    --------
    >>> ProximalOptions(max_line_search=0)
    Traceback (most recent call last):
    ...
    ValueError: proximal: max_line_search must be an int >= 1, got 0.
    """

    solver = "proximal"
    step_size: float = 1.0
    shrink: float = 0.5
    grow: float = 1.25
    restart: bool = True
    max_line_search: int = 50

    def __post_init__(self) -> None:
        for name in ("step_size", "shrink", "grow"):
            check_positive(self.solver, name, getattr(self, name))
        if not (0 < self.shrink < 1 and self.grow >= 1):
            raise option_error(
                self.solver, f"need 0 < shrink < 1 and grow >= 1; got shrink={self.shrink}, grow={self.grow}."
            )
        check_int(self.solver, "max_line_search", self.max_line_search)
        if not isinstance(self.restart, bool | np.bool_):
            raise option_error(self.solver, f"restart must be True or False, got {self.restart!r}.")


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
    options = ProximalOptions(
        step_size=step_size, shrink=shrink, grow=grow, restart=restart, max_line_search=max_line_search
    )
    return run_solver(
        "proximal",
        problem,
        options,
        _run_fista,
        w0=w0,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        callback=callback,
        checkpoint=checkpoint,
        advice="Increase max_iter or scale the features.",
    )


def _run_fista(run: SolverRun) -> Outcome:
    """FISTA iterations until ``tol``, ``max_iter`` or a failed backtracking search."""
    options: ProximalOptions = run.options  # type: ignore[assignment]
    tol, max_iter = run.tol, run.max_iter
    fun = ScaledObjective(run.problem)
    shape = fun.shape
    n_features = run.problem.n_features
    l1 = run.problem.l1 / fun.scale

    def prox(v: np.ndarray, step: float) -> np.ndarray:
        return prox_l1(v.reshape(shape), n_features, step * l1).ravel()

    def total(f: float, x: np.ndarray) -> float:
        return f + l1 * l1_norm(x.reshape(shape), n_features)

    saved = run.saved
    x = run.initial_params().ravel() if saved is None else saved.arrays["x"]
    f_x, g_x = fun(x)
    obj_x = total(f_x, x)
    y, f_y, g_y = x, f_x, g_x
    theta = 1.0
    step = float(options.step_size)
    n_iter = run.start_iteration
    if saved is not None:
        theta, step = float(saved.state["theta"]), float(saved.state["step"])
        if "y" in saved.arrays:  # the extrapolated point differs from the iterate
            y = saved.arrays["y"]
            f_y, g_y = fun(y)
    optimality = _optimality(x, g_x, shape, n_features, l1)
    while True:
        if optimality <= tol:
            return Outcome(x, n_iter, Status.CONVERGED, f"optimality {optimality:.3g} <= tol={tol:g}")
        if n_iter >= max_iter:
            message = f"reached max_iter={max_iter} with optimality {optimality:.3g} > tol={tol:g}"
            return Outcome(x, n_iter, Status.MAX_ITER, message)
        search = backtracking_proximal(
            fun, prox, y, f_y, g_y, step, shrink=options.shrink, max_trials=options.max_line_search
        )
        if not search.success:
            message = (
                f"the backtracking search found no acceptable step after {options.max_line_search} trials "
                f"(optimality {optimality:.3g}); the objective is flat at working precision"
            )
            return Outcome(x, n_iter, Status.FAILED, message)
        n_iter += 1
        step = search.step * options.grow
        obj_new = total(search.f, search.x)
        restarted = options.restart and obj_new > obj_x and y is not x
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
        if run.record(
            objective_scaled=obj_x,
            grad_norm=optimality,
            step_size=search.step,
            n_evals=fun.n_evals,
            x=x,
            restart=bool(restarted),
        ):
            return Outcome(x, n_iter, Status.STOPPED, "stopped by the callback")
        run.save(n_iter, {"x": x} if y is x else {"x": x, "y": y}, theta=theta, step=step)


def _optimality(x: np.ndarray, g: np.ndarray, shape: tuple[int, int], n_features: int, l1: float) -> float:
    values = l1_optimality(x.reshape(shape), g.reshape(shape), n_features, l1)
    return float(values.max()) if values.size else 0.0
