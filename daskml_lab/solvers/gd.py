"""Full-batch gradient descent with a backtracking (Armijo) line search on the exact blocked gradient."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._common import ScaledObjective
from daskml_lab.solvers._linesearch import backtracking_armijo
from daskml_lab.solvers._options import SolverOptions, check_int, check_positive, option_error
from daskml_lab.solvers._result import SolverResult
from daskml_lab.solvers._scaffold import Outcome, SolverRun, Status, run_solver

__all__ = ["GDOptions", "gd", "sup_norm"]


@dataclasses.dataclass(frozen=True)
class GDOptions(SolverOptions):
    """Tuning constants of :func:`gd` (see its parameters), validated when created.

    Examples
    --------
    >>> GDOptions(shrink=2.0)
    Traceback (most recent call last):
    ...
    ValueError: gd: need 0 < shrink < 1, grow >= 1 and 0 < c1 < 1; got shrink=2.0, grow=2.0, c1=0.0001.
    """

    solver = "gd"
    step_size: float = 1.0
    shrink: float = 0.5
    grow: float = 2.0
    c1: float = 1e-4
    max_line_search: int = 50

    def __post_init__(self) -> None:
        for name in ("step_size", "shrink", "grow", "c1"):
            check_positive(self.solver, name, getattr(self, name))
        check_int(self.solver, "max_line_search", self.max_line_search)
        if not (0 < self.shrink < 1 and self.grow >= 1 and 0 < self.c1 < 1):
            raise option_error(
                self.solver,
                "need 0 < shrink < 1, grow >= 1 and 0 < c1 < 1; got "
                f"shrink={self.shrink}, grow={self.grow}, c1={self.c1}.",
            )


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
    options = GDOptions(step_size=step_size, shrink=shrink, grow=grow, c1=c1, max_line_search=max_line_search)
    return run_solver(
        "gd",
        problem,
        options,
        _run_gd,
        w0=w0,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        callback=callback,
        checkpoint=checkpoint,
        advice="Increase max_iter, scale the features, or use solver='lbfgs'.",
    )


def _run_gd(run: SolverRun) -> Outcome:
    """Armijo steps along the negative gradient until ``tol``, ``max_iter`` or a failed line search."""
    options: GDOptions = run.options  # type: ignore[assignment]
    tol, max_iter = run.tol, run.max_iter
    fun = ScaledObjective(run.problem)
    x = run.initial_params().ravel() if run.saved is None else run.saved.arrays["x"]
    f, g = fun(x)
    step = float(options.step_size) if run.saved is None else float(run.saved.state["step"])
    n_iter = run.start_iteration
    grad_norm = sup_norm(g)
    while True:
        if grad_norm <= tol:
            message = f"gradient sup-norm {grad_norm:.3g} <= tol={tol:g}"
            return Outcome(x, n_iter, Status.CONVERGED, message)
        if n_iter >= max_iter:
            message = f"reached max_iter={max_iter} with gradient sup-norm {grad_norm:.3g} > tol={tol:g}"
            return Outcome(x, n_iter, Status.MAX_ITER, message)
        search = backtracking_armijo(
            fun, x, f, g, -g, step, shrink=options.shrink, c1=options.c1, max_trials=options.max_line_search
        )
        if not search.success:
            message = (
                f"the line search found no decrease after {options.max_line_search} trials (gradient "
                f"sup-norm {grad_norm:.3g}); the objective is flat at working precision"
            )
            return Outcome(x, n_iter, Status.FAILED, message)
        x, f, g = search.x, search.f, search.g
        n_iter += 1
        grad_norm = sup_norm(g)
        step = search.step * options.grow
        if run.record(
            objective_scaled=f, grad_norm=grad_norm, step_size=search.step, n_evals=fun.n_evals, x=x
        ):
            return Outcome(x, n_iter, Status.STOPPED, "stopped by the callback")
        run.save(n_iter, {"x": x}, step=step)


def sup_norm(g: np.ndarray) -> float:
    """The largest absolute entry of ``g`` (0 for an empty array)."""
    return float(np.max(np.abs(g))) if g.size else 0.0
