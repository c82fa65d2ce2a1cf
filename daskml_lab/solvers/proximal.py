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

__all__ = ["FistaState", "ProximalOptions", "fista_iterations", "proximal"]


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
    fun = ScaledObjective(run.problem)
    n_features = run.problem.n_features
    l1 = run.problem.l1 / fun.scale
    saved = run.saved
    x = run.initial_params().ravel() if saved is None else saved.arrays["x"]
    state = FistaState.start(fun, x, l1=l1, shape=fun.shape, n_features=n_features, step=options.step_size)
    state.n_iter = run.start_iteration
    if saved is not None:
        state.theta, state.step = float(saved.state["theta"]), float(saved.state["step"])
        if "y" in saved.arrays:  # the extrapolated point differs from the iterate
            state.y = saved.arrays["y"]
            state.f_y, state.g_y = fun(state.y)

    def after_iteration(state: FistaState, accepted_step: float, restarted: bool) -> bool:
        if run.record(
            objective_scaled=state.obj_x,
            grad_norm=state.optimality,
            step_size=accepted_step,
            n_evals=fun.n_evals,
            x=state.x,
            restart=restarted,
        ):
            return True
        arrays = {"x": state.x} if state.y is state.x else {"x": state.x, "y": state.y}
        run.save(state.n_iter, arrays, theta=state.theta, step=state.step)
        return False

    return fista_iterations(
        fun,
        state,
        l1=l1,
        shape=fun.shape,
        n_features=n_features,
        tol=run.tol,
        max_iter=run.max_iter,
        options=options,
        after_iteration=after_iteration,
    )


@dataclasses.dataclass
class FistaState:
    """Where FISTA stands: the iterate, the extrapolated point, the momentum and the next trial step.

    ``f_*`` and ``g_*`` are the smooth part and its gradient (flat vectors); ``obj_x`` adds the l1 term.
    """

    x: np.ndarray
    f_x: float
    g_x: np.ndarray
    obj_x: float
    optimality: float
    y: np.ndarray
    f_y: float
    g_y: np.ndarray
    theta: float = 1.0
    step: float = 1.0
    n_iter: int = 0

    @classmethod
    def start(
        cls,
        fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
        x: np.ndarray,
        *,
        l1: float,
        shape: tuple[int, int],
        n_features: int,
        step: float,
    ) -> FistaState:
        """The state at ``x`` (one evaluation of ``fun``), with no momentum."""
        f_x, g_x = fun(x)
        obj_x = f_x + l1 * l1_norm(x.reshape(shape), n_features)
        optimality = _optimality(x, g_x, shape, n_features, l1)
        return cls(x, f_x, g_x, obj_x, optimality, x, f_x, g_x, step=float(step))


def fista_iterations(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    state: FistaState,
    *,
    l1: float,
    shape: tuple[int, int],
    n_features: int,
    tol: float,
    max_iter: int,
    options: ProximalOptions,
    after_iteration: Callable[[FistaState, float, bool], bool] | None = None,
) -> Outcome:
    """Run FISTA from ``state`` (updated in place) until ``tol``, ``max_iter`` or a failed search.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, g)``: the smooth part of the per-sample objective and its gradient.
    state : FistaState
    l1 : float
        Weight of ``||W[:n_features]||_1`` in the per-sample objective.
    shape : tuple of int
        ``(n_params, n_outputs)`` of the flat vectors.
    n_features : int
        Rows of the parameters that are penalised (the intercept row is not).
    tol, max_iter
        As in :func:`proximal`; ``max_iter`` counts from ``state.n_iter``.
    options : ProximalOptions
    after_iteration : callable or None, default=None
        ``after_iteration(state, accepted_step, restarted)`` after every iteration; returning True stops.

    Returns
    -------
    Outcome
    """

    def prox(v: np.ndarray, step: float) -> np.ndarray:
        return prox_l1(v.reshape(shape), n_features, step * l1).ravel()

    while True:
        if state.optimality <= tol:
            message = f"optimality {state.optimality:.3g} <= tol={tol:g}"
            return Outcome(state.x, state.n_iter, Status.CONVERGED, message)
        if state.n_iter >= max_iter:
            message = f"reached max_iter={max_iter} with optimality {state.optimality:.3g} > tol={tol:g}"
            return Outcome(state.x, state.n_iter, Status.MAX_ITER, message)
        search = backtracking_proximal(
            fun,
            prox,
            state.y,
            state.f_y,
            state.g_y,
            state.step,
            shrink=options.shrink,
            max_trials=options.max_line_search,
        )
        if not search.success:
            message = (
                f"the backtracking search found no acceptable step after {options.max_line_search} trials "
                f"(optimality {state.optimality:.3g}); the objective is flat at working precision"
            )
            return Outcome(state.x, state.n_iter, Status.FAILED, message)
        state.n_iter += 1
        state.step = search.step * options.grow
        obj_new = search.f + l1 * l1_norm(search.x.reshape(shape), n_features)
        restarted = bool(options.restart and obj_new > state.obj_x and state.y is not state.x)
        if restarted:
            # momentum overshot: drop it and take the next step from the current point
            state.theta, state.y, state.f_y, state.g_y = 1.0, state.x, state.f_x, state.g_x
        else:
            theta_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * state.theta * state.theta))
            momentum = (state.theta - 1.0) / theta_next
            x_prev = state.x
            state.x, state.f_x, state.g_x, state.obj_x = search.x, search.f, search.g, obj_new
            state.theta = theta_next
            if momentum > 0:
                state.y = state.x + momentum * (state.x - x_prev)
                state.f_y, state.g_y = fun(state.y)
            else:
                state.y, state.f_y, state.g_y = state.x, state.f_x, state.g_x
            state.optimality = _optimality(state.x, state.g_x, shape, n_features, l1)
        if after_iteration is not None and after_iteration(state, search.step, restarted):
            return Outcome(state.x, state.n_iter, Status.STOPPED, "stopped by the callback")


def _optimality(x: np.ndarray, g: np.ndarray, shape: tuple[int, int], n_features: int, l1: float) -> float:
    values = l1_optimality(x.reshape(shape), g.reshape(shape), n_features, l1)
    return float(values.max()) if values.size else 0.0
