"""Newton-Cholesky: damped Newton steps with the Hessian assembled from the blocks and factorised on the client."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._newton import NewtonOptions, run_newton
from daskml_lab.solvers._options import check_int, option_error
from daskml_lab.solvers._result import SolverResult
from daskml_lab.solvers._scaffold import Outcome, SolverRun, run_solver

__all__ = ["MAX_WIDTH", "NewtonCholeskyOptions", "newton_cholesky", "newton_step"]

#: Relative size (to the unit diagonal of the Jacobi-scaled Hessian) below which a pivot counts as zero.
_SINGULAR = 1e-12

#: Default largest number of parameters ``n_params * n_outputs``: each worker then returns a Hessian of at most
#: 1000 x 1000 float64 (8 MB) per iteration, and the client factorises it in well under a second.
MAX_WIDTH = 1000


@dataclasses.dataclass(frozen=True)
class NewtonCholeskyOptions(NewtonOptions):
    """Tuning constants of :func:`newton_cholesky` (see its parameters), validated when created.

    Examples
    --------
    >>> NewtonCholeskyOptions(max_width=0)
    Traceback (most recent call last):
    ...
    ValueError: newton-cholesky: max_width must be an int >= 1, got 0.
    """

    solver = "newton-cholesky"
    max_width: int = dataclasses.field(default=MAX_WIDTH, metadata={"fingerprint": False})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self.solver, "max_width", self.max_width)

    def check_problem(self, problem: Any) -> None:
        """Refuse problems wider than ``max_width`` parameters, before any work."""
        width = int(problem.n_params) * int(problem.n_outputs)
        if width > self.max_width:
            raise option_error(
                self.solver,
                f"the problem has {width} parameters (n_params={problem.n_params} x n_outputs="
                f"{problem.n_outputs}), more than max_width={self.max_width}: every iteration would send a "
                f"{width} x {width} Hessian from each worker and factorise it on the client. Use "
                "solver='newton-cg' (Hessian-vector products only) or 'lbfgs', or raise the limit with "
                f"solver_options={{'max_width': {width}}} if the client has the memory and time.",
            )


def newton_cholesky(
    problem: Any,
    *,
    w0: Any = None,
    tol: float = 1e-4,
    max_iter: int = 100,
    random_state: Any = None,
    callback: Callable[..., Any] | None = None,
    max_width: int = MAX_WIDTH,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_line_search: int = 50,
    checkpoint: SolverCheckpoint | None = None,
) -> SolverResult:
    """Minimise a smooth :class:`~daskml_lab.solvers.BlockedProblem` with Newton steps and Cholesky solves.

    Each iteration assembles the Hessian ``[X, 1]^T C [X, 1]`` (plus the l2 term) where the blocks live, in
    one pass (:meth:`~daskml_lab.solvers.BlockedProblem.hessian`: each worker returns one square matrix of
    side ``n_params * n_outputs``), solves the Newton system on the client by a Cholesky factorisation, and
    takes a line-searched step. For narrow data (``n_samples >> n_features``) it converges in a handful of
    iterations whatever the conditioning of the features: scikit-learn's ``"newton-cholesky"``.

    Parameters
    ----------
    problem : BlockedProblem
        Problem with a smooth loss and ``l1 == 0``, with at most ``max_width`` parameters.
    w0 : ndarray of shape (n_params, n_outputs) or None, default=None
        Starting parameters; zeros when None.
    tol : float, default=1e-4
        Stop when the largest absolute entry of the gradient of the per-sample objective
        ``F / (data_scale * sum_weights)`` is at most ``tol``.
    max_iter : int, default=100
        Largest number of Newton iterations.
    random_state : None
        Unused by this deterministic solver (accepted for a uniform solver signature).
    callback : callable or None, default=None
        ``callback(record, W)`` after each iteration; returning True stops the solver.
    max_width : int, default=1000
        Largest number of parameters ``n_params * n_outputs``; wider problems are refused with a
        ``ValueError`` before any work (use ``"newton-cg"``).
    c1 : float, default=1e-4
        Sufficient-decrease constant of the line search.
    shrink : float, default=0.5
        Factor applied to the step after each failed trial of the line search.
    max_line_search : int, default=50
        Trials allowed per line search.
    checkpoint : SolverCheckpoint or None, default=None
        Save the parameters, the iteration and the history every ``checkpoint.every`` iterations; a run
        given a checkpoint of the same problem resumes from the saved parameters (see :doc:`/checkpoints`).

    Returns
    -------
    SolverResult
        History records hold ``objective``, ``grad_norm``, ``step_size``, ``time_s``, ``n_evals`` (passes
        over the data in the iteration: the Hessian plus line-search evaluations) and ``singular`` (whether
        the Hessian had to be solved by least squares).

    Raises
    ------
    ValueError
        If the loss is not smooth, ``l1 > 0``, the problem is wider than ``max_width``, or for invalid
        arguments.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` is reached or a line search fails before ``tol`` is met.

    Notes
    -----
    A Hessian that is singular (no penalty and collinear features; the multinomial loss, unchanged when the
    same constant is added to every class's unpenalised parameters) is solved by least squares, which gives
    the minimum-norm Newton step; for the multinomial loss the step is then centred over the classes on its
    unpenalised rows.
    """
    options = NewtonCholeskyOptions(
        c1=c1, shrink=shrink, max_line_search=max_line_search, max_width=max_width
    )
    return run_solver(
        "newton-cholesky",
        problem,
        options,
        _run_newton_cholesky,
        w0=w0,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        callback=callback,
        checkpoint=checkpoint,
        advice="Increase max_iter, or loosen tol.",
    )


def _run_newton_cholesky(run: SolverRun) -> Outcome:
    options: NewtonCholeskyOptions = run.options  # type: ignore[assignment]
    problem = run.problem
    scale = problem.objective_scale

    def direction(x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        W = x.reshape(problem.n_params, problem.n_outputs)
        H = problem.hessian(W) / scale
        p, singular = newton_step(H, g)
        if problem.n_outputs > 1:
            _centre_unpenalised(p.reshape(W.shape), problem)
        return p, {"singular": singular, "n_passes": 1}

    return run_newton(run, direction, options)


def newton_step(H: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, bool]:
    """``-H^{-1} g`` by Cholesky, or the least-squares (minimum-norm) solution when ``H`` is singular.

    Returns
    -------
    p : ndarray
    singular : bool
        Whether the least-squares path was taken.

    Examples
    --------
    >>> import numpy as np
    >>> newton_step(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([2.0, 4.0]))[0].round(12).tolist()
    [-1.0, -1.0]
    >>> p, singular = newton_step(np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([2.0, 2.0]))
    >>> p.round(12).tolist(), singular
    ([-1.0, -1.0], True)
    """
    # Jacobi scaling first: features on very different scales make H ill-conditioned without making it
    # singular, and the scaled matrix (unit diagonal) tells the two apart.
    diagonal = np.diag(H)
    root = np.sqrt(np.where(diagonal > 0, diagonal, 1.0))
    scaled = H / root[:, None] / root[None, :]
    rhs = -g / root
    try:
        factor = scipy.linalg.cho_factor(scaled, lower=True, check_finite=True)
        # a pivot this small means H is singular to working precision (collinear, or the multinomial
        # loss's common shifts)
        if float(np.min(np.abs(np.diag(factor[0])))) ** 2 > _SINGULAR:
            return scipy.linalg.cho_solve(factor, rhs) / root, False
    except np.linalg.LinAlgError:
        pass
    p, *_ = scipy.linalg.lstsq(scaled, rhs, cond=_SINGULAR, check_finite=True)
    return p / root, True


def _centre_unpenalised(P: np.ndarray, problem: Any) -> None:
    """Remove, in place, the component of a multinomial step that changes no prediction (common shifts)."""
    rows = slice(problem.n_features, None) if problem.l2 > 0 else slice(None)
    P[rows] -= P[rows].mean(axis=1, keepdims=True)
