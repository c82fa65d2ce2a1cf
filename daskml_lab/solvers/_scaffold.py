"""The scaffold every solver runs in: what each solver would otherwise repeat around its own loop.

:func:`run_solver` checks the problem against the solver's registry entry and the common arguments, opens the
fit span, limits the client's BLAS to one thread, starts the problem, opens the checkpoint (returning the saved
result at once when the stage had completed), keeps the history, hands the algorithm a :class:`SolverRun`,
and turns the algorithm's :class:`Outcome` into a :class:`~daskml_lab.solvers.SolverResult`, saving it and
warning with :class:`~daskml_lab.exceptions.ConvergenceWarning` when the solver stopped before meeting ``tol``.

A solver module then holds only its algorithm: a function ``algorithm(run) -> Outcome`` with its loop and its
state, its options (a frozen :class:`~daskml_lab.solvers._options.SolverOptions`) and the public function,
which builds the options and calls :func:`run_solver`. See "Adding a solver" in :doc:`/solvers`.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from daskml_lab._runtime.cluster_health import explain_error, stopped_error
from daskml_lab.monitoring import fit_span
from daskml_lab.solvers._checkpoint import (
    SavedState,
    SolverCheckpoint,
    check_checkpoint_argument,
    finished_result,
    lock_checkpoint,
    open_checkpoint,
)
from daskml_lab.solvers._common import History, require_problem, single_threaded_blas
from daskml_lab.solvers._options import SolverOptions
from daskml_lab.solvers._registry import SOLVERS
from daskml_lab.solvers._result import SolverResult, warn_not_converged

__all__ = ["Outcome", "SolverRun", "Status", "check_common_args", "run_solver"]

logger = logging.getLogger(__name__)


class Status(enum.Enum):
    """Why an algorithm stopped; the scaffold warns for ``MAX_ITER`` and ``FAILED``."""

    #: The stopping test was met.
    CONVERGED = "converged"
    #: ``max_iter`` iterations ran without meeting it.
    MAX_ITER = "max_iter"
    #: The algorithm could not go on (a line search found no decrease, ...).
    FAILED = "failed"
    #: The user's callback asked to stop.
    STOPPED = "stopped"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What an algorithm returns to the scaffold.

    Attributes
    ----------
    W : ndarray
        Final parameters, float64, of ``n_params * n_outputs`` entries (any shape that reshapes to it).
    n_iter : int
        Iterations run, the resumed ones included.
    status : Status
        Why the algorithm stopped.
    message : str
        The result's message.
    detail : str or None, default=None
        What the convergence warning says before the solver's advice; ``message`` when None.
    """

    W: np.ndarray
    n_iter: int
    status: Status
    message: str
    detail: str | None = None


class SolverRun:
    """One run of a solver, as the scaffold hands it to the algorithm.

    Attributes
    ----------
    name : str
        Registry name of the solver.
    problem : BlockedProblem
        The problem, started.
    options : SolverOptions
        The solver's validated options.
    tol : float
    max_iter : int
    w0 : ndarray or None
    random_state : int, numpy.random.Generator or None
    saved : SavedState or None
        The state of an interrupted run to resume from (never a completed one), None on a fresh start.
    history : History
        The history records (restored from ``saved`` when resuming).
    """

    def __init__(
        self,
        name: str,
        problem: Any,
        options: SolverOptions,
        *,
        tol: float,
        max_iter: int,
        w0: Any,
        random_state: Any,
        saved: SavedState | None,
        history: History,
        checkpoint: Any,
    ) -> None:
        self.name, self.problem, self.options = name, problem, options
        self.tol, self.max_iter, self.w0, self.random_state = tol, max_iter, w0, random_state
        self.saved = saved
        self.history = history
        self._checkpoint = checkpoint

    @property
    def start_iteration(self) -> int:
        """Iterations already run (those of the saved state; 0 on a fresh start)."""
        return 0 if self.saved is None else int(self.saved.iteration)

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the parameters, ``(n_params, n_outputs)``."""
        return (self.problem.n_params, self.problem.n_outputs)

    def initial_params(self) -> np.ndarray:
        """The starting parameters ``w0`` (zeros when None), float64 of shape :attr:`shape`."""
        return self.problem.initial_params(self.w0)

    def record(
        self,
        *,
        objective_scaled: float,
        grad_norm: float,
        step_size: float | None,
        n_evals: int,
        x: np.ndarray,
        **extra: Any,
    ) -> bool:
        """Add an iteration's history record (and call the user's callback); True when it asks to stop."""
        return self.history.add(
            objective_scaled=objective_scaled,
            grad_norm=grad_norm,
            step_size=step_size,
            n_evals=n_evals,
            x=x,
            **extra,
        )

    def save(self, iteration: int, arrays: Mapping[str, Any], **state: Any) -> None:
        """Save the state after ``iteration`` iterations to the checkpoint (every ``checkpoint.every``)."""
        self._checkpoint.save(iteration, self.history.records, arrays, **state)


def check_common_args(solver: str, tol: Any, max_iter: Any, callback: Any) -> None:
    """Raise for a negative ``tol``, a bad ``max_iter`` or a ``callback`` that cannot be called.

    Examples
    --------
    >>> check_common_args("gd", 1e-4, 1.5, None)
    Traceback (most recent call last):
    ...
    ValueError: gd: max_iter must be an int >= 0, got 1.5.
    """
    if not isinstance(tol, numbers.Real) or isinstance(tol, bool) or not np.isfinite(tol) or tol < 0:
        msg = f"{solver}: tol must be a finite number >= 0, got {tol!r}."
        raise ValueError(msg)
    if not isinstance(max_iter, numbers.Integral) or isinstance(max_iter, bool) or max_iter < 0:
        msg = f"{solver}: max_iter must be an int >= 0, got {max_iter!r}."
        raise ValueError(msg)
    if callback is not None and not callable(callback):
        msg = f"{solver}: callback must be callable (record, W) -> bool, or None; got {type(callback).__name__}."
        raise TypeError(msg)


def run_solver(
    name: str,
    problem: Any,
    options: SolverOptions,
    algorithm: Callable[[SolverRun], Outcome],
    *,
    w0: Any,
    tol: float,
    max_iter: int,
    random_state: Any,
    callback: Callable[..., Any] | None,
    checkpoint: SolverCheckpoint | None,
    advice: str,
) -> SolverResult:
    """Run ``algorithm`` on ``problem`` as the solver registered as ``name``.

    Parameters
    ----------
    name : str
        Registry name: the entry's capabilities decide which problems are refused and whether
        ``random_state`` enters the checkpoint fingerprint.
    problem : BlockedProblem
        The problem (started here).
    options : SolverOptions
        The solver's validated options; its fields enter the checkpoint fingerprint.
    algorithm : callable
        ``algorithm(run: SolverRun) -> Outcome``: the solver's own loop.
    w0, tol, max_iter, random_state, callback, checkpoint
        The solver's common arguments.
    advice : str
        How to fix a run that did not converge, appended to the convergence warning.

    Returns
    -------
    SolverResult
        ``W`` in the problem's dtype.

    Raises
    ------
    ValueError
        If ``name`` is not registered, the problem does not suit the solver, or for invalid arguments.
    TypeError
        If ``callback`` is not callable or ``checkpoint`` is not a :class:`SolverCheckpoint`.

    Warns
    -----
    ConvergenceWarning
        When the outcome's status is ``MAX_ITER`` or ``FAILED`` (again when a completed checkpoint holds such
        a run).
    """
    entry = SOLVERS.get(name)
    if entry is None:
        msg = (
            f"The solver {name!r} is not registered, so its capabilities are unknown: add it with "
            f"daskml_lab.solvers.register_solver({name!r}, ...) before running it."
        )
        raise ValueError(msg)
    check_common_args(name, tol, max_iter, callback)
    check_checkpoint_argument(checkpoint, name)
    require_problem(problem, name, smooth=entry.smooth_only, allow_l1=entry.supports_l1)
    options.check_problem(problem)
    # the checkpoint directory's lock is held for the run (already held when an estimator's fit runs it)
    with fit_span(name), single_threaded_blas(), lock_checkpoint(checkpoint):
        problem.start()
        seeded = {"random_state": random_state} if entry.stochastic else {}
        stage = open_checkpoint(
            checkpoint, problem, name, {"tol": tol, "max_iter": max_iter, **seeded, **options.fingerprint()}
        )
        saved = stage.load()
        if saved is not None and saved.complete:
            return finished_result(saved, problem, name)
        shape = (problem.n_params, problem.n_outputs)
        history = History(problem.objective_scale, callback, shape)
        if saved is not None:
            history.restore(saved.history)
        run = SolverRun(
            name,
            problem,
            options,
            tol=tol,
            max_iter=max_iter,
            w0=w0,
            random_state=random_state,
            saved=saved,
            history=history,
            checkpoint=stage,
        )
        try:
            outcome = algorithm(run)
        except Exception as err:
            # the cluster is gone (whatever surfaced first): say where the fit stopped and how to resume it
            explained = explain_error(err, doing=f"running the {name} solver")
            if explained is None:
                raise
            stopped = f"the {name} solver stopped at iteration {len(history.records)}"
            directory = None if checkpoint is None else checkpoint.directory
            raise stopped_error(explained, stopped=stopped, checkpoint=directory) from err
        warning = None
        if outcome.status in (Status.MAX_ITER, Status.FAILED):
            warning = f"{outcome.detail or outcome.message}. {advice}"
        W = np.asarray(outcome.W, dtype=np.float64).reshape(shape)
        converged = outcome.status is Status.CONVERGED
        n_iter = int(outcome.n_iter)
        stage.complete(SolverResult(W, n_iter, converged, history.records, outcome.message), warning)
    if warning is not None:
        warn_not_converged(name, warning)
    logger.debug("%s: %d iterations: %s", name, n_iter, outcome.message)
    return SolverResult(
        W=W.astype(problem.dtype),
        n_iter=n_iter,
        converged=converged,
        history=history.records,
        message=outcome.message,
    )
