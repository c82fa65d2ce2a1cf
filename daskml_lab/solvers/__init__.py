"""Solvers for linear models on row-chunked dask arrays, and the blocked objective they minimise.

A :class:`BlockedProblem` evaluates ``F(W)`` and its gradient where the row blocks live, in one fused pass and
one round trip per evaluation; the solvers are plain functions registered by name in :data:`SOLVERS`::

    with BlockedProblem(X, y, loss="logistic", data_scale=C, l2=1.0) as problem:
        result = get_solver("lbfgs")(problem, w0=None, tol=1e-4, max_iter=100, random_state=None,
                                     callback=None)

Every solver takes ``problem`` and the keywords ``w0, tol, max_iter, random_state, callback, checkpoint`` plus
its own tuning constants (each with a default), returns a :class:`SolverResult`, and warns with
:class:`~daskml_lab.exceptions.ConvergenceWarning` when it stops before meeting ``tol``. Given a
:class:`SolverCheckpoint`, a solver saves its state every few iterations and resumes from it (see
:doc:`/checkpoints`).
"""

from __future__ import annotations

from collections.abc import Callable

from daskml_lab.solvers._checkpoint import CheckpointError, SolverCheckpoint
from daskml_lab.solvers._engine import LocalBlocks, WorkerCall
from daskml_lab.solvers._objectives import LOSSES, get_loss
from daskml_lab.solvers._problem import BlockedProblem
from daskml_lab.solvers._result import SolverResult
from daskml_lab.solvers.admm import admm
from daskml_lab.solvers.async_sgd import async_sgd
from daskml_lab.solvers.gd import gd
from daskml_lab.solvers.lbfgs import lbfgs
from daskml_lab.solvers.proximal import proximal
from daskml_lab.solvers.sgd import sgd

__all__ = [
    "LOSSES",
    "SOLVERS",
    "BlockedProblem",
    "CheckpointError",
    "LocalBlocks",
    "SolverCheckpoint",
    "SolverResult",
    "WorkerCall",
    "get_solver",
    "register_solver",
    "supported_solvers",
]

#: Registered solvers, by name.
SOLVERS: dict[str, Callable[..., SolverResult]] = {}

# name -> (needs a smooth loss, accepts l1 > 0)
_CAPABILITIES: dict[str, tuple[bool, bool]] = {}


def register_solver(
    name: str, solver: Callable[..., SolverResult], *, smooth_only: bool, supports_l1: bool
) -> None:
    """Add a solver to :data:`SOLVERS` and record which problems it accepts.

    Parameters
    ----------
    name : str
        Registry name (e.g. ``"sgd"``).
    solver : callable
        ``solver(problem, *, w0, tol, max_iter, random_state, callback, checkpoint, ...) -> SolverResult``.
    smooth_only : bool
        Whether the solver needs a differentiable loss.
    supports_l1 : bool
        Whether the solver accepts ``l1 > 0``.
    """
    SOLVERS[name] = solver
    _CAPABILITIES[name] = (bool(smooth_only), bool(supports_l1))


def get_solver(name: str) -> Callable[..., SolverResult]:
    """The solver registered as ``name``.

    Raises
    ------
    ValueError
        If no solver has that name.

    Examples
    --------
    >>> get_solver("lbfgs").__name__
    'lbfgs'
    """
    try:
        return SOLVERS[name]
    except (KeyError, TypeError):
        msg = f"Unknown solver {name!r}; the available solvers are {sorted(SOLVERS)}."
        raise ValueError(msg) from None


def supported_solvers(loss: str, l1: float = 0.0) -> list[str]:
    """Names of the registered solvers that can fit ``loss`` with an l1 strength of ``l1``.

    Parameters
    ----------
    loss : str
        One of :data:`LOSSES`.
    l1 : float, default=0.0
        The problem's l1 strength.

    Returns
    -------
    list of str

    Examples
    --------
    >>> supported_solvers("logistic", 0.0)[:3]
    ['lbfgs', 'gd', 'proximal']
    >>> supported_solvers("logistic", 0.5)[:1]
    ['proximal']
    """
    info = get_loss(loss)
    names = []
    for name, (smooth_only, supports_l1) in _CAPABILITIES.items():
        if smooth_only and not info.smooth:
            continue
        if l1 > 0 and not supports_l1:
            continue
        names.append(name)
    return names


register_solver("lbfgs", lbfgs, smooth_only=True, supports_l1=False)
register_solver("gd", gd, smooth_only=True, supports_l1=False)
register_solver("proximal", proximal, smooth_only=True, supports_l1=True)
register_solver("admm", admm, smooth_only=False, supports_l1=True)
register_solver("sgd", sgd, smooth_only=False, supports_l1=True)
register_solver("async-sgd", async_sgd, smooth_only=False, supports_l1=True)
