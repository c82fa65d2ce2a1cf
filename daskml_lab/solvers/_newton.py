"""What the Newton solvers share: the damped Newton loop, its line search and the truncated conjugate gradient.

Both ``"newton-cg"`` and ``"newton-cholesky"`` run :func:`run_newton`; they differ only in how they solve the
Newton system ``H p = -g`` (conjugate gradient on Hessian-vector products, or a Cholesky factorisation of the
Hessian). They work on the per-sample objective ``F / scale`` of
:class:`~daskml_lab.solvers._common.ScaledObjective`, so that ``tol`` means what it means for ``"lbfgs"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from daskml_lab.solvers._common import ScaledObjective
from daskml_lab.solvers._linesearch import backtracking_armijo
from daskml_lab.solvers._options import SolverOptions, check_in_range, check_int, check_positive
from daskml_lab.solvers._scaffold import Outcome, SolverRun, Status
from daskml_lab.solvers.gd import sup_norm

__all__ = ["NewtonOptions", "run_newton", "truncated_cg"]

_EPS = float(np.finfo(np.float64).eps)


@dataclasses.dataclass(frozen=True)
class NewtonOptions(SolverOptions):
    """Line-search constants shared by the Newton solvers (validated by the subclasses' ``__post_init__``)."""

    solver = "newton"
    c1: float = 1e-4
    shrink: float = 0.5
    max_line_search: int = 50

    def __post_init__(self) -> None:
        for name in ("c1", "shrink"):
            check_positive(self.solver, name, getattr(self, name))
            check_in_range(self.solver, name, getattr(self, name), 0.0, 1.0)
        check_int(self.solver, "max_line_search", self.max_line_search)


#: ``direction(x, g) -> (p, info)``: the Newton direction at ``x`` and the iteration's history fields
#: (``info["n_passes"]`` counts the passes over the data it made).
Direction = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, Any]]]


def truncated_cg(
    hessp: Callable[[np.ndarray], np.ndarray],
    g: np.ndarray,
    *,
    tol: float,
    max_iter: int,
    preconditioner: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Approximately solve ``H p = -g`` by (preconditioned) conjugate gradient, until ``sum |H p + g| <= tol``.

    scikit-learn's ``_cg`` (``sklearn/utils/optimize.py``), with an optional diagonal preconditioner: it also
    stops on tiny or negative curvature along a search direction, returning the iterate so far (or the
    steepest-descent step when that happens at the first step), so that the result is a descent direction.

    Parameters
    ----------
    hessp : callable
        ``hessp(v) -> H v``, one pass over the data.
    g : ndarray
        Gradient.
    tol : float
        Stop when the l1 norm of the residual ``H p + g`` is at most ``tol``.
    max_iter : int
        Largest number of products.
    preconditioner : ndarray or None, default=None
        The inverse of a positive approximation of ``diag(H)`` (Jacobi preconditioning): with features on
        very different scales it cuts the number of products by orders of magnitude.

    Returns
    -------
    p : ndarray
    n_products : int
        Calls of ``hessp`` made.

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[2.0, 0.0], [0.0, 4000.0]])
    >>> p, n = truncated_cg(lambda v: H @ v, np.array([2.0, 4000.0]), tol=1e-9, max_iter=10)
    >>> p.round(9).tolist(), n
    ([-1.0, -1.0], 2)
    >>> p, n = truncated_cg(lambda v: H @ v, np.array([2.0, 4000.0]), tol=1e-9, max_iter=10,
    ...                     preconditioner=1 / np.diag(H))
    >>> p.round(9).tolist(), n
    ([-1.0, -1.0], 1)
    """
    eps = 16 * _EPS
    scaling = np.ones_like(g) if preconditioner is None else preconditioner
    p = np.zeros_like(g)
    residual = g.copy()
    z = scaling * residual
    direction = -z
    rz = float(residual @ z)
    n_products = 0
    while n_products < max_iter and float(np.abs(residual).sum()) > tol:
        Hd = hessp(direction)
        n_products += 1
        curvature = float(direction @ Hd)
        if 0 <= curvature <= eps * float(direction @ direction):
            break
        if curvature < 0:
            if n_products == 1:
                p += rz / curvature * direction  # steepest descent, as scikit-learn
            break
        alpha = rz / curvature
        p += alpha * direction
        residual += alpha * Hd
        z = scaling * residual
        rz_next = float(residual @ z)
        direction = -z + (rz_next / rz) * direction
        rz = rz_next
    return p, n_products


def run_newton(run: SolverRun, direction: Direction, options: NewtonOptions) -> Outcome:
    """Damped Newton iterations until the gradient's sup-norm is at most ``tol``.

    Each iteration computes the direction, tries the full step and backtracks (Armijo) when it does not
    decrease the objective enough. Near the optimum the decrease can fall below the objective's rounding
    error; the step is then accepted when the objective did not change beyond that rounding and the gradient
    got smaller (scikit-learn's Newton solvers do the same).
    """
    fun = ScaledObjective(run.problem)
    x = run.initial_params().ravel() if run.saved is None else np.asarray(run.saved.arrays["x"]).ravel()
    f, g = fun(x)
    n_iter = run.start_iteration
    extra_passes = 0
    while True:
        grad_norm = sup_norm(g)
        if grad_norm <= run.tol:
            return Outcome(
                x, n_iter, Status.CONVERGED, f"gradient sup-norm {grad_norm:.3g} <= tol={run.tol:g}"
            )
        if n_iter >= run.max_iter:
            message = (
                f"reached max_iter={run.max_iter} with gradient sup-norm {grad_norm:.3g} > tol={run.tol:g}"
            )
            return Outcome(x, n_iter, Status.MAX_ITER, message)
        p, info = direction(x, g)
        extra_passes += int(info.pop("n_passes", 0))
        if not np.all(np.isfinite(p)) or not float(g @ p) < 0:
            p, info["steepest_descent"] = -g, True  # not a descent direction (rounding): fall back
        accepted = _accept_full_step(fun, x, f, g, p, options)
        if accepted is None:
            search = backtracking_armijo(
                fun,
                x,
                f,
                g,
                p,
                options.shrink,
                shrink=options.shrink,
                c1=options.c1,
                max_trials=options.max_line_search,
            )
            if not search.success:
                message = (
                    f"the line search found no decrease after {options.max_line_search} trials (gradient "
                    f"sup-norm {grad_norm:.3g}); the objective is flat at working precision"
                )
                return Outcome(x, n_iter, Status.FAILED, message)
            accepted = (search.step, search.x, search.f, search.g)
        step, x, f, g = accepted
        n_iter += 1
        if run.record(
            objective_scaled=f,
            grad_norm=sup_norm(g),
            step_size=step,
            n_evals=fun.n_evals + extra_passes,
            x=x,
            **info,
        ):
            return Outcome(x, n_iter, Status.STOPPED, "stopped by the callback")
        run.save(n_iter, {"x": x})


def _accept_full_step(
    fun: ScaledObjective, x: np.ndarray, f: float, g: np.ndarray, p: np.ndarray, options: NewtonOptions
) -> tuple[float, np.ndarray, float, np.ndarray] | None:
    """The unit step if it passes Armijo's test or only rounding keeps it from passing; else None."""
    new_x = x + p
    new_f, new_g = fun(new_x)
    if not np.isfinite(new_f):
        return None
    if new_f <= f + options.c1 * float(g @ p):
        return 1.0, new_x, new_f, new_g
    rounding = abs(f) * 16 * _EPS
    if abs(new_f - f) <= rounding and np.abs(new_g).sum() < np.abs(g).sum():
        return 1.0, new_x, new_f, new_g
    return None
