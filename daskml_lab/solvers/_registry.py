"""The solver registry: one entry per solver, holding the function and what problems it accepts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from daskml_lab.solvers._objectives import LOSSES, get_loss
from daskml_lab.solvers._result import SolverResult

__all__ = [
    "SOLVERS",
    "RegisteredSolver",
    "get_solver",
    "register_solver",
    "registered",
    "supported_solvers",
    "unregister_solver",
]


@dataclasses.dataclass(frozen=True)
class RegisteredSolver:
    """A solver in :data:`SOLVERS`: its function and its capabilities; calling it calls the function.

    Attributes
    ----------
    name : str
        Registry name.
    function : callable
        ``function(problem, *, w0, tol, max_iter, random_state, callback, checkpoint, ...) -> SolverResult``.
    smooth_only : bool
        Whether the solver needs a differentiable loss.
    supports_l1 : bool
        Whether the solver accepts ``l1 > 0``.
    stochastic : bool
        Whether the result depends on ``random_state`` (which then enters the checkpoint fingerprint).
    only_losses : tuple of str or None
        The losses the solver is restricted to (e.g. ``("hinge",)``); None for every loss it otherwise accepts.

    Notes
    -----
    ``inspect.signature`` of an entry is that of its function (the entry exposes it as ``__wrapped__``), so
    the estimators read a solver's keywords from the entry itself.
    """

    name: str
    function: Callable[..., SolverResult]
    smooth_only: bool
    supports_l1: bool
    stochastic: bool
    only_losses: tuple[str, ...] | None = None

    def __call__(self, problem: Any, /, **kwargs: Any) -> SolverResult:
        return self.function(problem, **kwargs)

    @property
    def __wrapped__(self) -> Callable[..., SolverResult]:
        return self.function

    @property
    def __name__(self) -> str:
        return str(getattr(self.function, "__name__", self.name))

    @property
    def losses(self) -> tuple[str, ...]:
        """The losses of :data:`~daskml_lab.solvers.LOSSES` this solver can minimise."""
        return tuple(loss for loss in LOSSES if self.accepts(loss))

    def accepts(self, loss: str, l1: float = 0.0) -> bool:
        """Whether the solver can fit ``loss`` with an l1 strength of ``l1``."""
        if self.smooth_only and not get_loss(loss).smooth:
            return False
        if self.only_losses is not None and loss not in self.only_losses:
            return False
        return not (l1 > 0 and not self.supports_l1)


#: Registered solvers, by name.
SOLVERS: dict[str, RegisteredSolver] = {}


def register_solver(
    name: str,
    solver: Callable[..., SolverResult],
    *,
    smooth_only: bool,
    supports_l1: bool,
    stochastic: bool = False,
    only_losses: tuple[str, ...] | None = None,
) -> RegisteredSolver:
    """Add a solver to :data:`SOLVERS`, with the problems it accepts.

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
    stochastic : bool, default=False
        Whether the result depends on ``random_state``.
    only_losses : tuple of str or None, default=None
        Restrict the solver to these losses (None: every loss allowed by ``smooth_only``).

    Returns
    -------
    RegisteredSolver
        The new entry.
    """
    restricted = None if only_losses is None else tuple(str(loss) for loss in only_losses)
    entry = RegisteredSolver(
        str(name), solver, bool(smooth_only), bool(supports_l1), bool(stochastic), restricted
    )
    SOLVERS[entry.name] = entry
    return entry


def unregister_solver(name: str) -> None:
    """Remove ``name`` from :data:`SOLVERS` (for solvers registered temporarily, e.g. in tests)."""
    SOLVERS.pop(name, None)


def registered(name: str) -> RegisteredSolver:
    """The entry of the solver registered as ``name`` (``ValueError`` when there is none)."""
    try:
        return SOLVERS[name]
    except (KeyError, TypeError):
        msg = f"Unknown solver {name!r}; the available solvers are {sorted(SOLVERS)}."
        raise ValueError(msg) from None


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
    return registered(name)


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
        In registration order.

    Examples
    --------
    >>> supported_solvers("logistic", 0.0)[:3]
    ['lbfgs', 'gd', 'proximal']
    >>> supported_solvers("logistic", 0.5)[:1]
    ['proximal']
    """
    get_loss(loss)  # unknown losses raise here, with the list of known ones
    return [name for name, entry in SOLVERS.items() if entry.accepts(loss, l1)]
