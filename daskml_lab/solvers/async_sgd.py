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

import logging
import math
import numbers
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from daskml_lab.monitoring import fit_span
from daskml_lab.solvers._checkpoint import SolverCheckpoint, finished_result, open_checkpoint
from daskml_lab.solvers._common import History, check_solver_args, require_problem, single_threaded_blas
from daskml_lab.solvers._regularizers import prox_l1
from daskml_lab.solvers._result import SolverResult, warn_not_converged
from daskml_lab.solvers.sgd import (
    NoChange,
    Schedule,
    check_stochastic_args,
    diverged_error,
    estimate_eta0,
    evaluate,
    n_local_batches,
    next_batches,
    proximal_step,
    resolve_batch_size,
    worker_key,
)

logger = logging.getLogger(__name__)

__all__ = ["async_sgd"]


def _async_worker(
    local: Any,
    token: str,
    W: np.ndarray,
    version: int,
    targets: dict[tuple[int, ...], int] | None,
    default_start: int,
    local_steps: int,
    batch_size: int,
    entropy: int,
    schedule: Schedule,
    l2: float,
    n_features: int,
) -> tuple[tuple[int, ...], np.ndarray, int, float, float, int] | None:
    """Pull ``W`` (of ``version``), take ``local_steps`` mini-batch steps on the local rows, push the change.

    Workers whose key is not in ``targets`` return None at once (the engine sends every call to every worker;
    this is how one worker alone is addressed). ``targets[key]`` (or ``default_start`` when ``targets`` is
    None) is the worker's position in its sequence of mini-batches. The steps are gradient steps on the
    worker's per-sample objective with the l2 penalty applied exactly; the l1 penalty is left to the server.

    Returns
    -------
    (key, delta, version, sum_weight, eta_sum, steps) or None
    """
    key = worker_key(local)
    if targets is not None and key not in targets:
        return None
    start = default_start if targets is None else int(targets[key])
    W_local = np.array(W, dtype=np.float64, copy=True)
    steps_per_epoch = n_local_batches(local, batch_size)
    if local.sum_weight <= 0 or steps_per_epoch == 0:
        return key, np.zeros_like(W_local), version, 0.0, 0.0, 0
    mean_weight = local.sum_weight / local.n_rows
    eta_sum = 0.0
    for j, batch in enumerate(next_batches(local, token, entropy, batch_size, start, local_steps)):
        eta = schedule.rate(start + j, steps_per_epoch=steps_per_epoch)
        _, grad = local.loss_grad_batch(batch, W_local)
        grad /= batch.X.shape[0] * mean_weight
        proximal_step(W_local, grad, eta, l2, 0.0, n_features)
        eta_sum += eta
    return (
        key,
        W_local - np.asarray(W, dtype=np.float64),
        version,
        float(local.sum_weight),
        eta_sum,
        local_steps,
    )


def _wait_first(calls: dict[int, Any], timeout_s: float, poll_s: float) -> list[int]:
    """Positions of the calls that have finished, waiting (by polling ``done()``) until at least one has."""
    deadline = time.monotonic() + timeout_s
    delay = min(poll_s, 1e-4)
    while True:
        finished = [position for position, call in calls.items() if call.done()]
        if finished:
            return finished
        if time.monotonic() > deadline:
            msg = (
                f"async-sgd: no worker answered within {timeout_s:g} s. Check that the workers are alive, or "
                "raise the problem's timeout_s (dask.config daskml_lab.solvers.timeout_s)."
            )
            raise TimeoutError(msg)
        time.sleep(delay)
        delay = min(2 * delay, poll_s)


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
    poll_s: float = 1e-3,
    checkpoint: SolverCheckpoint | None = None,
) -> SolverResult:
    """Minimise a :class:`~daskml_lab.solvers.BlockedProblem` with asynchronous SGD (a parameter server).

    The client holds the parameters and a version number; each worker has one call in flight at all times.
    A call pulls the parameters, takes ``local_steps`` mini-batch gradient steps on the worker's own rows and
    returns the change. As each change arrives, the client applies it with the factor
    ``n_workers * share / (1 + staleness) ** staleness_power`` (``share``: the worker's fraction of the sample
    weight; ``staleness``: updates applied since the worker pulled), followed by the l1 proximal step, drops
    changes with staleness above ``max_staleness``, and sends the new parameters to that worker alone. Workers
    never wait for each other, so a slow worker does not hold the others back.

    One iteration is ``updates_per_iter`` received changes (by default about one pass over the data), after
    which the client evaluates the objective (one synchronous round trip) and records it.

    Parameters
    ----------
    problem : BlockedProblem
        Any loss (the hinge through its subgradient), any ``l1 >= 0`` and ``l2 >= 0``.
    w0 : ndarray of shape (n_params, n_outputs) or None, default=None
        Starting parameters; zeros when None.
    tol : float, default=1e-4
        Stop when the objective improves on its best value by less than ``tol`` (relative) in
        ``n_iter_no_change`` consecutive iterations, or when the optimality measure (as for lbfgs) is at most
        ``tol``.
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
        Iterations without improvement needed to stop.
    poll_s : float, default=1e-3
        Longest sleep between two polls of the workers' calls.
    checkpoint : SolverCheckpoint or None, default=None
        Save the server's parameters and version, each worker's position in its mini-batch sequence, the
        best parameters so far, the schedule, the stopping counters, the random streams' root entropy and the
        history every ``checkpoint.every`` iterations. A run given a checkpoint of the same problem resumes
        from it; the changes in flight when the run stopped are lost, and the order of the workers' answers is
        not reproducible anyway, so the resumed run converges like an uninterrupted one rather than
        repeating it (see :doc:`/checkpoints`).

    Returns
    -------
    SolverResult
        One history record per iteration: ``objective``, ``grad_norm``, ``step_size`` (current learning
        rate), ``time_s``, ``n_evals``, and the staleness observed in the iteration: ``staleness`` (the
        largest staleness of an applied change, at most ``max_staleness``), ``staleness_mean`` (over the
        applied changes), ``staleness_counts`` (``counts[s]`` = changes received with staleness ``s``,
        dropped ones included), ``n_updates`` (applied), ``n_dropped``, ``version`` (the parameters'
        version; the ``"adaptive"`` restarts from the best parameters also create a version). The message
        ends with the staleness summary of the whole run.

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
    B. Recht, C. Re, S. Wright and F. Niu, "Hogwild!: a lock-free approach to parallelizing stochastic
    gradient descent", NeurIPS 2011. W. Zhang, S. Gupta, X. Lian and J. Liu, "Staleness-aware async-SGD for
    distributed deep learning", IJCAI 2016.
    """
    check_solver_args(
        "async-sgd", tol, max_iter, shrink=shrink, poll_s=poll_s, updates_per_iter=updates_per_iter
    )
    if not 0 < shrink < 1:
        msg = f"async-sgd: shrink must be in (0, 1), got {shrink!r}."
        raise ValueError(msg)
    if max_staleness is not None and (
        not isinstance(max_staleness, numbers.Integral)
        or isinstance(max_staleness, bool)
        or max_staleness < 0
    ):
        msg = f"async-sgd: max_staleness must be an int >= 0 or None, got {max_staleness!r}."
        raise ValueError(msg)
    ok = isinstance(staleness_power, numbers.Real) and not isinstance(staleness_power, bool)
    if not ok or not np.isfinite(staleness_power) or staleness_power < 0:
        msg = f"async-sgd: staleness_power must be a finite number >= 0, got {staleness_power!r}."
        raise ValueError(msg)
    if updates_per_iter is not None and (
        not isinstance(updates_per_iter, numbers.Integral) or isinstance(updates_per_iter, bool)
    ):
        msg = f"async-sgd: updates_per_iter must be an int >= 1 or None, got {updates_per_iter!r}."
        raise ValueError(msg)
    require_problem(problem, "async-sgd", smooth=False, allow_l1=True)
    with fit_span("async-sgd"), single_threaded_blas():
        problem.start()
        scale = problem.objective_scale
        l2, l1 = problem.l2 / scale, problem.l1 / scale
        check_stochastic_args(
            "async-sgd",
            learning_rate=learning_rate,
            eta0=eta0,
            decay=decay,
            power_t=power_t,
            batch_size=batch_size,
            local_steps=local_steps,
            n_iter_no_change=n_iter_no_change,
            l2=l2,
            local_steps_optional=False,
        )
        from daskml_lab.data._blocks import root_entropy

        run = open_checkpoint(
            checkpoint,
            problem,
            "async-sgd",
            {
                "tol": tol,
                "max_iter": max_iter,
                "random_state": random_state,
                "learning_rate": learning_rate,
                "eta0": eta0,
                "shrink": shrink,
                "decay": decay,
                "power_t": power_t,
                "batch_size": batch_size,
                "local_steps": local_steps,
                "max_staleness": max_staleness,
                "staleness_power": staleness_power,
                "updates_per_iter": updates_per_iter,
                "n_iter_no_change": n_iter_no_change,
            },
        )
        saved = run.load()
        if saved is not None and saved.complete:
            return finished_result(saved, problem, "async-sgd")
        entropy = root_entropy(random_state) if saved is None else int(saved.state["entropy"])
        batch_size = resolve_batch_size(batch_size, problem.n_samples)
        server = _ParameterServer(
            problem,
            problem.initial_params(w0) if saved is None else saved.arrays["W"],
            token=uuid.uuid4().hex,
            entropy=entropy,
            batch_size=batch_size,
            local_steps=local_steps,
            l2=l2,
            l1=l1,
            staleness_power=float(staleness_power),
            max_staleness=max_staleness,
            poll_s=float(poll_s),
        )
        period = updates_per_iter or max(1, math.ceil(problem.n_samples / (batch_size * local_steps)))
        history = History(scale, callback, (problem.n_params, problem.n_outputs))
        no_change = NoChange(tol, n_iter_no_change)
        converged, message, n_iter = False, "", 0
        if saved is None:
            first_eta = estimate_eta0(problem, batch_size, l2, entropy) if eta0 == "auto" else float(eta0)
            schedule = Schedule(learning_rate, first_eta, float(decay), float(power_t), l2)
            best_W, best_objective = server.W, math.inf
        else:  # resume: parameters, version, each worker's mini-batch position, schedule and counters
            state = saved.state
            first_eta = float(state["first_eta"])
            schedule = Schedule(learning_rate, float(state["eta0"]), float(decay), float(power_t), l2)
            best_W = saved.arrays.get("best_W", server.W.copy())
            best_objective = float(state["best_objective"])
            no_change.best, no_change.count = float(state["no_change_best"]), int(state["no_change_count"])
            server.restore(state, saved.arrays)
            n_iter = saved.iteration
            history.restore(saved.history)
        try:
            server.start(schedule)
            while n_iter < max_iter:
                stats = server.run(period, schedule)
                n_iter += 1
                objective, optimality = evaluate(problem, server.W, scale)
                change = math.nan
                if not math.isfinite(objective) or not np.all(np.isfinite(server.W)):
                    if learning_rate != "adaptive" or schedule.eta0 < 1e-8 * first_eta:
                        raise diverged_error(first_eta, solver="async-sgd")
                    schedule = schedule.shrunk(shrink)
                    server.reset(best_W if math.isfinite(best_objective) else problem.initial_params(w0))
                else:
                    change = no_change.update(objective)
                    if objective < best_objective:
                        best_W, best_objective = server.W.copy(), objective
                    elif learning_rate == "adaptive":
                        # worse than the best point: restart from it with a smaller rate
                        server.reset(best_W)
                        schedule = schedule.shrunk(shrink)
                stop = history.add(
                    objective_scaled=objective,
                    grad_norm=optimality,
                    step_size=schedule.eta0 if learning_rate == "adaptive" else stats["eta"],
                    n_evals=problem.n_evaluations,
                    x=server.W,
                    relative_change=change,
                    **{k: v for k, v in stats.items() if k != "eta"},
                )
                if optimality <= tol:
                    converged, message = True, f"optimality {optimality:.3g} <= tol={tol:g}"
                    break
                if no_change.done:
                    converged = True
                    message = (
                        f"the objective decreased by less than tol={tol:g} (relative) in {n_iter_no_change} "
                        "consecutive iterations"
                    )
                    break
                if stop:
                    message = "stopped by the callback"
                    break
                run.save(
                    n_iter,
                    history.records,
                    {"W": server.W, "best_W": best_W, **server.state_arrays()},
                    entropy=entropy,
                    first_eta=first_eta,
                    eta0=schedule.eta0,
                    best_objective=best_objective,
                    no_change_best=no_change.best,
                    no_change_count=no_change.count,
                    **server.state(),
                )
            else:
                message = f"reached max_iter={max_iter} iterations"
        finally:
            server.drain()
        W = best_W if math.isfinite(best_objective) else server.W
        message += f"; {server.summary()}"
        warning = None
        if not converged and not message.startswith("stopped by the callback"):
            warning = f"{message}. Increase max_iter, or loosen tol."
        W = np.asarray(W, dtype=np.float64)
        run.complete(SolverResult(W, n_iter, converged, history.records, message), warning)
    if warning is not None:
        warn_not_converged("async-sgd", warning)
    logger.debug("async-sgd: %d iterations, eta0=%.3g: %s", n_iter, first_eta, message)
    W = W.astype(problem.dtype)
    return SolverResult(W=W, n_iter=n_iter, converged=converged, history=history.records, message=message)


class _ParameterServer:
    """The client side of async-sgd: parameters, version, one outstanding call per worker, staleness log."""

    def __init__(
        self,
        problem: Any,
        W: np.ndarray,
        *,
        token: str,
        entropy: int,
        batch_size: int,
        local_steps: int,
        l2: float,
        l1: float,
        staleness_power: float,
        max_staleness: int | None,
        poll_s: float,
    ) -> None:
        self.problem = problem
        self.W = np.array(W, dtype=np.float64, copy=True)
        self.version = 0
        self.token, self.entropy = token, entropy
        self.batch_size, self.local_steps = batch_size, local_steps
        self.l2, self.l1 = l2, l1
        self.staleness_power = staleness_power
        self.max_staleness = max_staleness
        self.poll_s = poll_s
        self.pending: dict[int, tuple[Any, int]] = {}  # position -> (call, version sent)
        self.keys: dict[int, tuple[int, ...]] = {}  # position -> worker key
        self.next_step: dict[tuple[int, ...], int] = {}
        self.orphans: list[Any] = []
        self.total_weight = float(problem.sum_weights) or 1.0
        self.all_staleness: list[int] = []
        self.n_dropped_total = 0
        self.bound = max_staleness

    # -- calls ------------------------------------------------------------------------------------------
    def _submit(self, positions: list[int] | None, schedule: Schedule) -> None:
        if positions is None:
            targets, default_start = None, max(self.next_step.values(), default=0)
        else:
            targets = {self.keys[p]: self.next_step[self.keys[p]] for p in positions}
            default_start = 0
        calls = self.problem.submit_workers(
            _async_worker,
            self.token,
            self.W,
            self.version,
            targets,
            default_start,
            self.local_steps,
            self.batch_size,
            self.entropy,
            schedule,
            self.l2,
            self.problem.n_features,
        )
        chosen = range(len(calls)) if positions is None else positions
        for position, call in enumerate(calls):
            if position in chosen:
                self.pending[position] = (call, self.version)
            else:
                self.orphans.append(call)
        self.orphans = [call for call in self.orphans if not call.done()]

    def start(self, schedule: Schedule) -> None:
        """Send the first call to every worker."""
        self._submit(None, schedule)

    def reset(self, W: np.ndarray) -> None:
        """Restart from ``W`` (a new version: changes in flight become stale by one more)."""
        self.W = np.array(W, dtype=np.float64, copy=True)
        self.version += 1

    def run(self, n_received: int, schedule: Schedule) -> dict[str, Any]:
        """Receive and apply ``n_received`` changes; return the staleness statistics of the period."""
        counts: list[int] = []
        staleness_seen: list[int] = []
        applied = dropped = 0
        eta = 0.0
        n_keys = max(len(self.pending), 1)
        bound = self.max_staleness if self.max_staleness is not None else 2 * n_keys
        self.bound = bound
        while applied + dropped < n_received:
            finished = _wait_first(
                {p: call for p, (call, _) in self.pending.items()}, self.problem.timeout_s, self.poll_s
            )
            lost = False
            for position in finished:
                call, _ = self.pending.pop(position)
                result = call.result(self.problem.timeout_s)
                if result is None:  # the worker did not recognise its key: placement changed, start afresh
                    lost = True
                    continue
                key, delta, version_used, weight, eta_sum, steps = result
                self.keys[position] = key
                self.next_step[key] = self.next_step.get(key, 0) + steps
                staleness = self.version - version_used
                while len(counts) <= staleness:
                    counts.append(0)
                counts[staleness] += 1
                if staleness > bound:
                    dropped += 1
                    continue
                staleness_seen.append(staleness)
                factor = n_keys * (weight / self.total_weight) / (1.0 + staleness) ** self.staleness_power
                self.W += factor * delta
                if self.l1 > 0:
                    self.W = prox_l1(self.W, self.problem.n_features, factor * eta_sum * self.l1)
                self.version += 1
                applied += 1
                eta = eta_sum / max(steps, 1)
            if lost:
                self.orphans.extend(call for call, _ in self.pending.values())
                self.pending.clear()
                self._submit(None, schedule)
            elif finished:
                self._submit([p for p in finished if p in self.keys], schedule)
        self.all_staleness.extend(staleness_seen)
        self.n_dropped_total += dropped
        return {
            "eta": eta,
            "staleness": max(staleness_seen, default=0),
            "staleness_mean": float(np.mean(staleness_seen)) if staleness_seen else 0.0,
            "staleness_counts": counts,
            "n_updates": applied,
            "n_dropped": dropped,
            "version": self.version,
        }

    def drain(self) -> None:
        """Wait for the calls still in flight (their results are discarded) so that the workers are idle."""
        for call, _ in self.pending.values():
            try:
                call.result(self.problem.timeout_s)
            except Exception as err:  # best effort: the solver is finishing
                logger.debug("async-sgd: a call in flight failed while finishing: %r", err)
        for call in self.orphans:
            try:
                call.result(self.problem.timeout_s)
            except Exception as err:
                logger.debug("async-sgd: a call in flight failed while finishing: %r", err)
        self.pending.clear()
        self.orphans = []

    def state(self) -> dict[str, Any]:
        """The server's scalar state, for a checkpoint."""
        return {
            "version": self.version,
            "next_step": [[list(key), int(step)] for key, step in sorted(self.next_step.items())],
            "n_dropped_total": self.n_dropped_total,
        }

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The server's array state (the staleness of every applied change), for a checkpoint."""
        return {"all_staleness": np.asarray(self.all_staleness, dtype=np.int64)}

    def restore(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`state` and :meth:`state_arrays` of a checkpoint (before :meth:`start`)."""
        self.version = int(state["version"])
        self.next_step = {tuple(int(i) for i in key): int(step) for key, step in state["next_step"]}
        self.n_dropped_total = int(state["n_dropped_total"])
        self.all_staleness = [int(s) for s in arrays.get("all_staleness", np.zeros(0, dtype=np.int64))]

    def summary(self) -> str:
        """Staleness of the applied changes over the whole run, for the result message."""
        if not self.all_staleness:
            return f"no change applied ({self.n_dropped_total} dropped)"
        values = np.asarray(self.all_staleness)
        return (
            f"staleness mean {values.mean():.2f}, max {int(values.max())} over {values.size} applied changes "
            f"({self.n_dropped_total} dropped as staler than {self.bound})"
        )
