"""L-BFGS on the blocked objective (scipy's L-BFGS-B driving fused distributed evaluations)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult, minimize

from daskml_lab.monitoring import fit_span
from daskml_lab.solvers._checkpoint import SolverCheckpoint, finished_result, open_checkpoint
from daskml_lab.solvers._common import (
    History,
    ScaledObjective,
    check_solver_args,
    require_problem,
    single_threaded_blas,
)
from daskml_lab.solvers._result import SolverResult, warn_not_converged

logger = logging.getLogger(__name__)

__all__ = ["lbfgs"]

_EPS = float(np.finfo(np.float64).eps)


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
    check_solver_args("lbfgs", tol, max_iter, ftol=ftol)
    check_solver_args("lbfgs", tol, memory, max_line_search=max_line_search)
    require_problem(problem, "lbfgs")
    with fit_span("lbfgs"), single_threaded_blas():
        problem.start()
        run = open_checkpoint(
            checkpoint,
            problem,
            "lbfgs",
            {
                "tol": tol,
                "max_iter": max_iter,
                "memory": memory,
                "max_line_search": max_line_search,
                "ftol": ftol,
            },
        )
        saved = run.load()
        if saved is not None and saved.complete:
            return finished_result(saved, problem, "lbfgs")
        fun = ScaledObjective(problem)
        x0 = problem.initial_params(w0).ravel() if saved is None else saved.arrays["x"]
        history = History(fun.scale, callback, fun.shape)
        start_iter = 0
        if saved is not None:
            history.restore(saved.history)
            start_iter = saved.iteration
        previous = {"x": x0}

        def on_iteration(intermediate_result: Any) -> None:
            x = np.asarray(intermediate_result.x)
            if fun.last_x is not None and np.array_equal(x, fun.last_x):
                grad_norm = float(np.max(np.abs(fun.last_g))) if fun.last_g.size else 0.0
            else:  # pragma: no cover - scipy reports the last evaluated point
                grad_norm = float("nan")
            step = float(np.linalg.norm(x - previous["x"]))
            previous["x"] = x.copy()
            stop = history.add(
                objective_scaled=float(intermediate_result.fun),
                grad_norm=grad_norm,
                step_size=step,
                n_evals=fun.n_evals,
                x=x,
            )
            if stop:
                raise StopIteration
            run.save(len(history.records), history.records, {"x": x})

        options = {
            "maxiter": max_iter - start_iter,
            "maxcor": memory,
            "maxls": max_line_search,
            "gtol": tol,
            "ftol": ftol,
        }
        if options["maxiter"] > 0:
            result = minimize(fun, x0, jac=True, method="L-BFGS-B", callback=on_iteration, options=options)
        else:  # resumed after the last iteration (scipy would still run one)
            result = OptimizeResult(
                x=x0, nit=0, status=1, message="STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
            )
        n_iter = start_iter + int(result.nit)
        message = str(result.message)
        converged = result.status == 0
        warning = None
        if result.status == 1 or result.status == 2:
            warning = (
                f"stopped after {n_iter} iteration(s) (status={result.status}): {message}. Increase max_iter, "
                "scale the features (e.g. StandardScaler), or loosen tol."
            )
        W = np.asarray(result.x, dtype=np.float64).reshape(fun.shape)
        run.complete(SolverResult(W, n_iter, converged, history.records, message), warning)
    if warning is not None:
        warn_not_converged("lbfgs", warning)
    logger.debug("lbfgs: %d iterations, %d evaluations, %s", n_iter, fun.n_evals, message)
    W = W.astype(problem.dtype)
    return SolverResult(W=W, n_iter=n_iter, converged=converged, history=history.records, message=message)
