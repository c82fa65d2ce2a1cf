"""L-BFGS on the blocked objective (scipy's L-BFGS-B driving fused distributed evaluations)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult, minimize

from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._common import ScaledObjective
from daskml_lab.solvers._options import SolverOptions, check_int, check_positive
from daskml_lab.solvers._result import SolverResult
from daskml_lab.solvers._scaffold import Outcome, SolverRun, Status, run_solver

__all__ = ["LBFGSOptions", "lbfgs"]

_EPS = float(np.finfo(np.float64).eps)
#: scipy's L-BFGS-B status codes: 0 converged, 1 iteration limit, 2 abnormal stop (line search failure);
#: anything else comes from the callback asking to stop.
_SCIPY_STATUS = {0: Status.CONVERGED, 1: Status.MAX_ITER, 2: Status.FAILED}


@dataclasses.dataclass(frozen=True)
class LBFGSOptions(SolverOptions):
    """Tuning constants of :func:`lbfgs` (see its parameters), validated when created.

    Examples
    --------
    >>> LBFGSOptions(memory=5).memory
    5
    >>> LBFGSOptions(memory=0)
    Traceback (most recent call last):
    ...
    ValueError: lbfgs: memory must be an int >= 1, got 0.
    """

    solver = "lbfgs"
    memory: int = 10
    max_line_search: int = 50
    ftol: float = 64 * _EPS

    def __post_init__(self) -> None:
        check_positive(self.solver, "ftol", self.ftol)
        check_int(self.solver, "memory", self.memory)
        check_int(self.solver, "max_line_search", self.max_line_search)


def lbfgs(
    problem: Any,
    *,
    w0: Any = None,
    tol: float = 1e-4,
    max_iter: int = 100,
    random_state: Any = None,
    callback: Callable[..., Any] | None = None,
    memory: int = 10,
    max_line_search: int = 50,
    ftol: float = 64 * _EPS,
    checkpoint: SolverCheckpoint | None = None,
) -> SolverResult:
    """Minimise a smooth :class:`~daskml_lab.solvers.BlockedProblem` with limited-memory BFGS.

    scipy's L-BFGS-B runs on the client; every function evaluation it asks for is one call of
    ``problem.loss_grad`` (one pass over the data, one round trip, a d-vector each way).

    Parameters
    ----------
    problem : BlockedProblem
        Problem with a smooth loss and ``l1 == 0``.
    w0 : ndarray of shape (n_params, n_outputs) or None, default=None
        Starting parameters; zeros when None.
    tol : float, default=1e-4
        Stop when the largest absolute entry of the gradient of the per-sample objective
        ``F / (data_scale * sum_weights)`` is at most ``tol`` (scipy's ``gtol``; scikit-learn's
        LogisticRegression uses the same criterion on the same scaled objective, so equal ``tol`` give equally
        accurate fits).
    max_iter : int, default=100
        Largest number of iterations.
    random_state : None
        Unused by this deterministic solver (accepted for a uniform solver signature).
    callback : callable or None, default=None
        ``callback(record, W)`` after each iteration, with the history record and current parameters of shape
        ``(n_params, n_outputs)``; returning True stops the solver.
    memory : int, default=10
        Number of correction pairs kept (scipy's ``maxcor``).
    max_line_search : int, default=50
        Function evaluations allowed per line search (``maxls``).
    ftol : float, default=64 * machine epsilon
        Also stop when the relative objective decrease ``(f_k - f_k+1) / max(|f_k|, |f_k+1|, 1)`` of the
        per-sample objective is at most ``ftol``.
    checkpoint : SolverCheckpoint or None, default=None
        Save the parameters, the iteration and the history every ``checkpoint.every`` iterations. A run
        given a checkpoint of the same problem resumes from the saved parameters with the remaining
        iterations (scipy cannot restore its correction pairs, so the resumed run rebuilds them: it reaches
        the same solution within ``tol``, not bit for bit; see :doc:`/checkpoints`).

    Returns
    -------
    SolverResult
        History records hold ``objective`` (the unscaled ``F``), ``grad_norm`` (the quantity compared with
        ``tol``), ``step_size`` (Euclidean length of the parameter change), ``time_s`` and ``n_evals``.

    Raises
    ------
    ValueError
        If the loss is not smooth or ``l1 > 0``, or for invalid arguments.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` is reached or the line search fails before ``tol`` is met.
    """
    options = LBFGSOptions(memory=memory, max_line_search=max_line_search, ftol=ftol)
    return run_solver(
        "lbfgs",
        problem,
        options,
        _run_lbfgs,
        w0=w0,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        callback=callback,
        checkpoint=checkpoint,
        advice="Increase max_iter, scale the features (e.g. StandardScaler), or loosen tol.",
    )


def _run_lbfgs(run: SolverRun) -> Outcome:
    """scipy's L-BFGS-B from ``w0`` (or the saved parameters), one history record per scipy iteration."""
    options: LBFGSOptions = run.options  # type: ignore[assignment]
    fun = ScaledObjective(run.problem)
    x0 = run.initial_params().ravel() if run.saved is None else run.saved.arrays["x"]
    start_iter = run.start_iteration
    previous = {"x": x0}

    def on_iteration(intermediate_result: Any) -> None:
        x = np.asarray(intermediate_result.x)
        if fun.last_x is not None and np.array_equal(x, fun.last_x):
            grad_norm = float(np.max(np.abs(fun.last_g))) if fun.last_g.size else 0.0
        else:  # pragma: no cover - scipy reports the last evaluated point
            grad_norm = float("nan")
        step = float(np.linalg.norm(x - previous["x"]))
        previous["x"] = x.copy()
        stop = run.record(
            objective_scaled=float(intermediate_result.fun),
            grad_norm=grad_norm,
            step_size=step,
            n_evals=fun.n_evals,
            x=x,
        )
        if stop:
            raise StopIteration
        run.save(len(run.history.records), {"x": x})

    scipy_options = {
        "maxiter": run.max_iter - start_iter,
        "maxcor": options.memory,
        "maxls": options.max_line_search,
        "gtol": run.tol,
        "ftol": options.ftol,
    }
    if scipy_options["maxiter"] > 0:
        result = minimize(fun, x0, jac=True, method="L-BFGS-B", callback=on_iteration, options=scipy_options)
    else:  # resumed after the last iteration (scipy would still run one)
        result = OptimizeResult(x=x0, nit=0, status=1, message="STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT")
    n_iter = start_iter + int(result.nit)
    message = str(result.message)
    return Outcome(
        W=np.asarray(result.x, dtype=np.float64),
        n_iter=n_iter,
        status=_SCIPY_STATUS.get(int(result.status), Status.STOPPED),
        message=message,
        detail=f"stopped after {n_iter} iteration(s) (status={result.status}): {message}",
    )
