"""Asynchronous SGD: a parameter server on the client, workers that never wait for each other.

The client keeps the parameters ``W`` and a version number. Each worker always has exactly one call in
flight: it pulls the parameters of the version it was sent, takes a few mini-batch steps on its own rows and
pushes the resulting change back. The client applies each change as soon as it arrives, damped by its
staleness (how many updates were applied since the worker pulled its parameters), drops changes staler than
``max_staleness``, bumps the version and immediately sends the new parameters to that worker only. Nothing
here opens a socket: the calls are the engine's per-worker calls (Dask actor method calls by default,
pinned tasks with the ``"tasks"`` engine), whose handles are polled as they complete.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import uuid
from collections.abc import Callable
from typing import Any

from daskml_lab._runtime.seeding import root_entropy
from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._options import check_int, check_non_negative, check_positive
from daskml_lab.solvers._parameter_server import AsyncUpdate, ParameterServer
from daskml_lab.solvers._result import SolverResult
from daskml_lab.solvers._scaffold import Outcome, SolverRun, Status, run_solver
from daskml_lab.solvers._stochastic import StochasticOptions, estimate_eta0, resolve_batch_size
from daskml_lab.solvers._stochastic_progress import Progress, evaluate

logger = logging.getLogger(__name__)

__all__ = ["AsyncSGDOptions", "AsyncUpdate", "async_sgd"]


@dataclasses.dataclass(frozen=True)
class AsyncSGDOptions(StochasticOptions):
    """Tuning constants of :func:`async_sgd` (see its parameters), validated when created.

    ``poll_s`` does not change the solution, so it stays out of the checkpoint fingerprint.

    Examples
    --------
    >>> AsyncSGDOptions(max_staleness=-1)
    Traceback (most recent call last):
    ...
    ValueError: async-sgd: max_staleness must be an int >= 0 or None, got -1.
    """

    solver = "async-sgd"
    _local_steps_optional = False
    local_steps: int = 8
    max_staleness: int | None = None
    staleness_power: float = 1.0
    updates_per_iter: int | None = None
    poll_s: float = dataclasses.field(default=1e-3, metadata={"fingerprint": False})

    def __post_init__(self) -> None:
        check_positive(self.solver, "poll_s", self.poll_s)
        check_positive(self.solver, "updates_per_iter", self.updates_per_iter, allow_none=True)
        check_int(self.solver, "updates_per_iter", self.updates_per_iter, allow_none=True)
        check_int(self.solver, "max_staleness", self.max_staleness, minimum=0, allow_none=True)
        check_non_negative(self.solver, "staleness_power", self.staleness_power)
        super().__post_init__()


def async_sgd(
    problem: Any,
    *,
    w0: Any = None,
    tol: float = 1e-4,
    max_iter: int = 100,
    random_state: Any = None,
    callback: Callable[..., Any] | None = None,
    learning_rate: str = "adaptive",
    eta0: float | str = "auto",
    shrink: float = 0.5,
    decay: float = 1.0,
    power_t: float = 1.0,
    batch_size: int | str = "auto",
    local_steps: int = 8,
    max_staleness: int | None = None,
    staleness_power: float = 1.0,
    updates_per_iter: int | None = None,
    n_iter_no_change: int = 5,
    variance_reduction: str = "auto",
    poll_s: float = 1e-3,
    checkpoint: SolverCheckpoint | None = None,
) -> SolverResult:
    """Minimise a :class:`~daskml_lab.solvers.BlockedProblem` with asynchronous SGD (a parameter server).

    The client holds the parameters and a version number; each worker has one call in flight at all times.
    A call pulls the parameters, takes ``local_steps`` proximal mini-batch steps on the worker's own rows
    (variance-reduced for differentiable losses, as in :func:`~daskml_lab.solvers.sgd.sgd`: the anchor, the
    last evaluated point and its gradient, travels with the parameters) and returns the change. As each change
    arrives, the client applies it with the factor ``n_workers * share / (1 + staleness) ** staleness_power``
    (``share``: the worker's fraction of the sample weight; ``staleness``: updates applied since the worker
    pulled), drops changes with staleness above ``max_staleness``, and sends the new parameters to that worker
    alone. Workers never wait for each other, so a slow worker does not hold the others back. With an anchor
    at the optimum a worker's steps leave the optimum unchanged, so the damped changes converge to it.

    One iteration is ``updates_per_iter`` received changes (by default about one pass over the data), after
    which the client evaluates the objective (one synchronous round trip), records it and makes the evaluated
    point the new anchor. The starting point is evaluated too (not recorded).

    Parameters
    ----------
    problem : BlockedProblem
        Any loss (the hinge through its subgradient), any ``l1 >= 0`` and ``l2 >= 0``.
    w0 : ndarray of shape (n_params, n_outputs) or None, default=None
        Starting parameters; zeros when None.
    tol : float, default=1e-4
        The stopping criterion of :func:`~daskml_lab.solvers.sgd.sgd`, tested after every iteration: the
        optimality measure of the evaluated point (that of lbfgs) is at most ``tol``; for the hinge loss also
        the plateau of ``n_iter_no_change`` evaluations. Otherwise a ``ConvergenceWarning`` at ``max_iter``.
    max_iter : int, default=100
        Largest number of iterations (evaluation periods).
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the mini-batch order (per block and epoch). The result also depends on the order in which the
        workers' answers arrive, so it is reproducible only with one worker (or the local engine).
    callback : callable or None, default=None
        ``callback(record, W)`` after each iteration; returning True stops the solver.
    learning_rate : {"adaptive", "invscaling", "constant", "optimal"}, default="adaptive"
        As for :func:`~daskml_lab.solvers.sgd.sgd`; ``"adaptive"`` multiplies the rate by ``shrink`` after
        every iteration whose objective is worse than the best so far, and restarts from the best parameters.
    eta0 : float or "auto", default="auto"
        First learning rate (see ``sgd``).
    shrink : float, default=0.5
        Factor of the ``"adaptive"`` decrease, in (0, 1).
    decay : float, default=1.0
        Decay per epoch of ``"invscaling"``.
    power_t : float, default=1.0
        Exponent of ``"invscaling"``.
    batch_size : int or "auto", default="auto"
        Rows per mini-batch; ``"auto"`` is ``min(128, max(8, n_samples // 64))``.
    local_steps : int, default=8
        Mini-batch steps per call (more steps amortise the round trip; 1 gives plain asynchronous SGD).
    max_staleness : int or None, default=None
        Changes computed from parameters more than this many versions old are dropped (and the worker is sent
        the current parameters). None means twice the number of workers.
    staleness_power : float, default=1.0
        Exponent of the staleness damping ``1 / (1 + staleness) ** staleness_power`` (0 disables it).
    updates_per_iter : int or None, default=None
        Received changes per iteration; None means ``ceil(n_samples / (batch_size * local_steps))``.
    n_iter_no_change : int, default=5
        For the hinge loss only: iterations without relative improvement above ``tol`` needed to stop.
    variance_reduction : {"auto", "svrg", "none"}, default="auto"
        As for :func:`~daskml_lab.solvers.sgd.sgd`: variance-reduced steps for differentiable losses.
    poll_s : float, default=1e-3
        Longest sleep between two polls of the workers' calls.
    checkpoint : SolverCheckpoint or None, default=None
        Save the server's parameters and version, each worker's position in its mini-batch sequence, the
        anchors (also that of the calls in flight), the best parameters so far, the schedule, the stopping
        counters, the random streams' root entropy and the history every ``checkpoint.every`` iterations. A
        run given a checkpoint of the same problem resumes from it; the changes in flight when the run stopped
        are lost, and the order of the workers' answers is not reproducible anyway, so the resumed run
        converges like an uninterrupted one rather than repeating it (see :doc:`/checkpoints`).

    Returns
    -------
    SolverResult
        ``W`` is the evaluated point that met the optimality criterion, or else the evaluated parameters with
        the lowest objective. One history record per iteration: ``objective``, ``grad_norm``, ``step_size``
        (current learning rate), ``time_s``, ``n_evals``, and the staleness observed in the iteration:
        ``staleness`` (the largest staleness of an applied change, at most ``max_staleness``),
        ``staleness_mean`` (over the applied changes), ``staleness_counts`` (``counts[s]`` = changes received
        with staleness ``s``, dropped ones included), ``n_updates`` (applied), ``n_dropped``, ``version`` (the
        parameters' version; the ``"adaptive"`` restarts from the best parameters also create a version). The
        message ends with the staleness summary of the whole run.

    Raises
    ------
    ValueError
        For invalid arguments, or when the iterates diverge.
    TimeoutError
        When no worker answers within the problem's ``timeout_s``.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` iterations are reached before the stopping test is met.

    Notes
    -----
    The engine addresses all workers at once, so the new parameters for one worker go to every worker and
    the others return immediately: the extra messages are small. With the ``"local"`` and ``"stream"`` engines
    calls complete at once; the solver then sends to every worker together and applies their changes one
    after another (staleness ``0 .. n_workers - 1``). With workers holding rows of different distributions,
    a faster worker's rows weigh more: shuffle the rows across blocks for the best results.

    References
    ----------
    R. Johnson and T. Zhang, "Accelerating stochastic gradient descent using predictive variance reduction",
    NeurIPS 2013. B. Recht, C. Re, S. Wright and F. Niu, "Hogwild!: a lock-free approach to parallelizing
    stochastic gradient descent", NeurIPS 2011. W. Zhang, S. Gupta, X. Lian and J. Liu, "Staleness-aware
    async-SGD for distributed deep learning", IJCAI 2016.
    """
    options = AsyncSGDOptions(
        learning_rate=learning_rate,
        eta0=eta0,
        shrink=shrink,
        decay=decay,
        power_t=power_t,
        batch_size=batch_size,
        local_steps=local_steps,
        n_iter_no_change=n_iter_no_change,
        variance_reduction=variance_reduction,
        max_staleness=max_staleness,
        staleness_power=staleness_power,
        updates_per_iter=updates_per_iter,
        poll_s=poll_s,
    )
    return run_solver(
        "async-sgd",
        problem,
        options,
        _run_async_sgd,
        w0=w0,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        callback=callback,
        checkpoint=checkpoint,
        advice="Increase max_iter, loosen tol, or scale the features (e.g. StandardScaler).",
    )


def _run_async_sgd(run: SolverRun) -> Outcome:
    """The parameter server's periods, each followed by an evaluation of the objective."""
    options: AsyncSGDOptions = run.options  # type: ignore[assignment]
    problem, tol, max_iter, saved = run.problem, run.tol, run.max_iter, run.saved
    scale = problem.objective_scale
    l2, l1 = problem.l2 / scale, problem.l1 / scale
    svrg, smooth = options.uses_svrg(problem), bool(problem.loss_info.smooth)
    entropy = root_entropy(run.random_state) if saved is None else int(saved.state["entropy"])
    batch_size = resolve_batch_size(options.batch_size, problem.n_samples)
    server = ParameterServer(
        problem,
        run.initial_params() if saved is None else saved.arrays["W"],
        token=uuid.uuid4().hex,
        entropy=entropy,
        batch_size=batch_size,
        local_steps=options.local_steps,
        l2=l2,
        l1=l1,
        staleness_power=float(options.staleness_power),
        max_staleness=options.max_staleness,
        poll_s=float(options.poll_s),
    )
    period = options.updates_per_iter or max(
        1, math.ceil(problem.n_samples / (batch_size * options.local_steps))
    )
    if saved is None:
        eta0 = options.eta0
        first_eta = estimate_eta0(problem, batch_size, l2, entropy) if eta0 == "auto" else float(eta0)
        schedule = options.schedule(first_eta, l2)
        progress = Progress("async-sgd", options, tol, first_eta, schedule, server.W, smooth=smooth)
        # the starting point is evaluated (not recorded as an iteration): it anchors the first period, and a
        # first period that makes the objective worse is caught by the "adaptive" rule
        progress.observe(evaluate(problem, server.W, scale), fallback=run.initial_params)
    else:  # resume: parameters, version, anchors, each worker's mini-batch position, schedule and counters
        progress = Progress.resumed("async-sgd", options, tol, l2, saved.state, saved.arrays, smooth=smooth)
        server.restore(saved.state, saved.arrays)
    n_iter = run.start_iteration
    adaptive = options.learning_rate == "adaptive"
    result_W = None
    try:
        server.anchor = progress.anchor if svrg else None
        server.start(progress.schedule)
        while n_iter < max_iter:
            stats = server.run(period, progress.schedule)
            n_iter += 1
            evaluation = evaluate(problem, server.W, scale)
            change, restart = progress.observe(evaluation, fallback=run.initial_params)
            if restart is not None:
                server.reset(restart)
            server.anchor = progress.anchor if svrg else None
            eta = stats.pop("eta")
            stop = run.record(
                objective_scaled=evaluation.objective,
                grad_norm=evaluation.optimality,
                step_size=progress.schedule.eta0 if adaptive else eta,
                n_evals=problem.n_evaluations,
                x=evaluation.anchor.W,
                relative_change=change,
                **stats,
            )
            stopping = progress.stopping(evaluation)
            if stopping is not None:
                status, message, result_W = Status.CONVERGED, stopping.message, stopping.W
                break
            if stop:
                status, message = Status.STOPPED, "stopped by the callback"
                break
            run.save(
                n_iter,
                {"W": server.W, **progress.arrays(), **server.state_arrays()},
                entropy=entropy,
                **progress.state(),
                **server.state(),
            )
        else:
            status = Status.MAX_ITER
            message = f"reached max_iter={max_iter} iterations (tol={tol:g})"
    finally:
        server.drain()
    if result_W is None:
        result_W = progress.best_W if math.isfinite(progress.best_objective) else server.W
    logger.debug("async-sgd: %d iterations, eta0=%.3g", n_iter, progress.first_eta)
    return Outcome(result_W, n_iter, status, f"{message}; {server.summary()}")
