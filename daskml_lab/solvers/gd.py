"""Full-batch gradient descent with a backtracking (Armijo) line search on the exact blocked gradient."""

from __future__ import annotations

import logging
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
from daskml_lab.solvers._linesearch import backtracking_armijo
from daskml_lab.solvers._result import SolverResult, warn_not_converged

logger = logging.getLogger(__name__)

__all__ = ["gd"]


def gd(
    problem: Any,
    *,
    w0: Any = None,
    tol: float = 1e-4,
    max_iter: int = 100,
    random_state: Any = None,
    callback: Callable[..., Any] | None = None,
    step_size: float = 1.0,
    shrink: float = 0.5,
    grow: float = 2.0,
    c1: float = 1e-4,
    max_line_search: int = 50,
    checkpoint: SolverCheckpoint | None = None,
) -> SolverResult:
    """Minimise a smooth :class:`~daskml_lab.solvers.BlockedProblem` by gradient descent.

    Each iteration moves along the negative gradient with the largest step of the sequence
    ``step, step * shrink, ...`` that decreases the objective enough (Armijo's condition). Every trial step is
    one fused evaluation, so the accepted point's gradient comes for free. After an accepted step the next
    first trial is ``grow`` times larger, so the step adapts to the local curvature in both directions.

    Parameters
    ----------
    problem : BlockedProblem
        Problem with a smooth loss and ``l1 == 0``.
    w0 : ndarray of shape (n_params, n_outputs) or None, default=None
        Starting parameters; zeros when None.
    tol : float, default=1e-4
        Stop when the largest absolute gradient entry of the per-sample objective
        ``F / (data_scale * sum_weights)`` is at most ``tol`` (as :func:`~daskml_lab.solvers.lbfgs.lbfgs`).
    max_iter : int, default=100
        Largest number of iterations (accepted steps).
    random_state : None
        Unused by this deterministic solver.
    callback : callable or None, default=None
        ``callback(record, W)`` after each iteration; returning True stops the solver.
    step_size : float, default=1.0
        First step tried, on the per-sample objective.
    shrink : float, default=0.5
        Step factor after a rejected trial (in (0, 1)).
    grow : float, default=2.0
        Factor from an accepted step to the next first trial (>= 1).
    c1 : float, default=1e-4
        Armijo sufficient-decrease constant (in (0, 1)).
    max_line_search : int, default=50
        Evaluations allowed per line search.
    checkpoint : SolverCheckpoint or None, default=None
        Save the parameters, the iteration, the history and the next trial step every ``checkpoint.every``
        iterations; a run given a checkpoint of the same problem resumes from it and reaches the solution of
        an uninterrupted run (see :doc:`/checkpoints`).

    Returns
    -------
    SolverResult
        ``step_size`` in the history is the accepted step.

    Raises
    ------
    ValueError
        If the loss is not smooth or ``l1 > 0``, or for invalid arguments.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` is reached or a line search fails.
    """
    check_solver_args("gd", tol, max_iter, step_size=step_size, shrink=shrink, grow=grow, c1=c1)
    _check_int("max_line_search", max_line_search)
    if not (0 < shrink < 1 and grow >= 1 and 0 < c1 < 1):
        msg = f"gd: need 0 < shrink < 1, grow >= 1 and 0 < c1 < 1; got shrink={shrink}, grow={grow}, c1={c1}."
        raise ValueError(msg)
    require_problem(problem, "gd")
    with fit_span("gd"), single_threaded_blas():
        problem.start()
        run = open_checkpoint(
            checkpoint,
            problem,
            "gd",
            {
                "tol": tol,
                "max_iter": max_iter,
                "step_size": step_size,
                "shrink": shrink,
                "grow": grow,
                "c1": c1,
                "max_line_search": max_line_search,
            },
        )
        saved = run.load()
        if saved is not None and saved.complete:
            return finished_result(saved, problem, "gd")
        fun = ScaledObjective(problem)
        x = problem.initial_params(w0).ravel() if saved is None else saved.arrays["x"]
        f, g = fun(x)
        history = History(fun.scale, callback, fun.shape)
        step = float(step_size)
        converged, message, n_iter = False, "", 0
        if saved is not None:
            history.restore(saved.history)
            step, n_iter = float(saved.state["step"]), saved.iteration
        grad_norm = _sup(g)
        while True:
            if grad_norm <= tol:
                converged, message = True, f"gradient sup-norm {grad_norm:.3g} <= tol={tol:g}"
                break
            if n_iter >= max_iter:
                message = f"reached max_iter={max_iter} with gradient sup-norm {grad_norm:.3g} > tol={tol:g}"
                break
            search = backtracking_armijo(
                fun, x, f, g, -g, step, shrink=shrink, c1=c1, max_trials=max_line_search
            )
            if not search.success:
                message = (
                    f"the line search found no decrease after {max_line_search} trials (gradient sup-norm "
                    f"{grad_norm:.3g}); the objective is flat at working precision"
                )
                break
            x, f, g = search.x, search.f, search.g
            n_iter += 1
            grad_norm = _sup(g)
            step = search.step * grow
            if history.add(
                objective_scaled=f, grad_norm=grad_norm, step_size=search.step, n_evals=fun.n_evals, x=x
            ):
                message = "stopped by the callback"
                break
            run.save(n_iter, history.records, {"x": x}, step=step)
        warning = None
        if not converged and message != "stopped by the callback":
            warning = f"{message}. Increase max_iter, scale the features, or use solver='lbfgs'."
        W = np.asarray(x, dtype=np.float64).reshape(fun.shape)
        run.complete(SolverResult(W, n_iter, converged, history.records, message), warning)
    if warning is not None:
        warn_not_converged("gd", warning)
    logger.debug("gd: %d iterations, %d evaluations: %s", n_iter, fun.n_evals, message)
    W = W.astype(problem.dtype)
    return SolverResult(W=W, n_iter=n_iter, converged=converged, history=history.records, message=message)


def _sup(g: np.ndarray) -> float:
    return float(np.max(np.abs(g))) if g.size else 0.0


def _check_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = f"{name} must be an int >= 1, got {value!r}."
        raise ValueError(msg)
