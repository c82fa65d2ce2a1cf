"""The client side of async-sgd (a parameter server) and the worker call it keeps in flight on each worker.

The server holds the parameters and their version; each worker always has one call of :func:`_async_worker`
in flight, which pulls the parameters, takes a few mini-batch steps on the worker's rows and pushes the change
back as an :class:`AsyncUpdate`. The solver's loop is in :mod:`daskml_lab.solvers.async_sgd`.

The server lives in the client process, so a worker that stops answering never takes it along: its call is
timed against the others' recent calls (:class:`~daskml_lab.solvers._stragglers.CallClock`), and when it is
late its blocks are moved to the other workers; the call is then sent again to their new holders.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from daskml_lab.solvers._stochastic import Anchor, Schedule, n_local_batches, next_batches, stochastic_step
from daskml_lab.solvers._stragglers import CallClock, StragglerRule, on_wait

logger = logging.getLogger(__name__)

__all__ = ["AsyncUpdate", "ParameterServer", "wait_first"]


class AsyncUpdate(NamedTuple):
    """What one worker's call of :func:`async_sgd` returns: the change it pushes to the server."""

    #: The worker's share of the data (global block indices).
    key: tuple[int, ...]
    #: Its parameters after the local steps minus the parameters it pulled.
    delta: np.ndarray
    #: The version of the parameters it pulled.
    version: int
    #: Total sample weight of its rows (0 when it holds none).
    sum_weight: float
    #: Sum of the learning rates of its steps.
    eta_sum: float
    #: Local steps taken.
    n_steps: int


def _async_worker(
    local: Any,
    token: str,
    W: np.ndarray,
    version: int,
    anchor: Anchor | None,
    targets: dict[tuple[int, ...], int] | None,
    default_start: int,
    local_steps: int,
    batch_size: int,
    entropy: int,
    schedule: Schedule,
    l2: float,
    l1: float,
    n_features: int,
) -> AsyncUpdate | None:
    """Pull ``W`` (of ``version``), take ``local_steps`` mini-batch steps on the local rows, push the change.

    The steps are variance-reduced with ``anchor`` (SVRG) when it is given: the anchor travels with the
    parameters, so a change is consistent with the anchor it was computed with, however stale. Workers
    whose key is not in ``targets`` return None at once (the engine sends every call to every worker;
    this is how one worker alone is addressed). ``targets[key]`` (or ``default_start`` when ``targets`` is
    None) is the worker's position in its sequence of mini-batches. The steps are gradient steps on the
    worker's per-sample objective, each followed by the proximal step of the penalties (l2 and l1, exactly):
    with an anchor at the optimum the optimum is then an exact fixed point of the worker's steps, so the
    server's sum of damped changes converges to it whatever the damping.

    Returns
    -------
    AsyncUpdate or None
    """
    key = local.key
    if targets is not None and key not in targets:
        return None
    start = default_start if targets is None else int(targets[key])
    W_local = np.array(W, dtype=np.float64, copy=True)
    steps_per_epoch = n_local_batches(local, batch_size)
    if local.sum_weight <= 0 or steps_per_epoch == 0:
        return AsyncUpdate(key, np.zeros_like(W_local), version, 0.0, 0.0, 0)
    mean_weight = local.sum_weight / local.n_rows
    eta_sum = 0.0
    for j, batch in enumerate(next_batches(local, token, entropy, batch_size, start, local_steps)):
        eta = schedule.rate(start + j, steps_per_epoch=steps_per_epoch)
        stochastic_step(local, batch, W_local, anchor, eta, l2, l1, n_features, mean_weight)
        eta_sum += eta
    return AsyncUpdate(
        key, W_local - np.asarray(W, dtype=np.float64), version, float(local.sum_weight), eta_sum, local_steps
    )


def wait_first(
    calls: dict[int, Any], timeout_s: float, poll_s: float, check: Callable[[], None] | None = None
) -> list[int]:
    """Positions of the calls that have finished, waiting (by polling ``done()``) until at least one has.

    ``check()``, when given, runs at every poll that finds nothing finished (the straggler watch).
    """
    deadline = time.monotonic() + timeout_s
    delay = min(poll_s, 1e-4)
    while True:
        finished = [position for position, call in calls.items() if call.done()]
        if finished:
            return finished
        if check is not None:
            check()
        if time.monotonic() > deadline:
            msg = (
                f"async-sgd: no worker answered within {timeout_s:g} s. Check that the workers are alive, or "
                "raise the problem's timeout_s (dask.config daskml_lab.solvers.timeout_s)."
            )
            raise TimeoutError(msg)
        time.sleep(delay)
        delay = min(2 * delay, poll_s)


class ParameterServer:
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
        #: The SVRG anchor sent with every call (None: plain steps); the solver sets it after evaluations.
        self.anchor: Anchor | None = None
        #: The anchor of the latest call sent (calls in flight during an evaluation keep the previous one).
        self.sent_anchor: Anchor | None = None
        self._resumed_anchor: Anchor | None = None
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
        self.n_positions = 0
        self.clock = CallClock(StragglerRule.from_config(), window=4 * max(problem.n_workers, 1))

    # -- calls ------------------------------------------------------------------------------------------
    def _submit(self, positions: list[int] | None, schedule: Schedule) -> None:
        if positions is None:
            targets, default_start = None, max(self.next_step.values(), default=0)
        else:
            targets = {self.keys[p]: self.next_step[self.keys[p]] for p in positions}
            default_start = 0
        anchor = self.anchor
        self.sent_anchor = anchor
        calls = self.problem.submit_workers(
            _async_worker,
            self.token,
            self.W,
            self.version,
            anchor,
            targets,
            default_start,
            self.local_steps,
            self.batch_size,
            self.entropy,
            schedule,
            self.l2,
            self.l1,
            self.problem.n_features,
        )
        chosen = range(len(calls)) if positions is None else positions
        if positions is None:
            self.n_positions = self.problem.n_workers
        for position, call in enumerate(calls):
            if position in chosen:
                self.pending[position] = (call, self.version)
                self.clock.send(position)
            else:
                self.orphans.append(call)
        self.orphans = [call for call in self.orphans if not call.done()]

    def start(self, schedule: Schedule) -> None:
        """Send the first call to every worker (after :meth:`restore`, with the anchor the calls in flight had
        when the state was saved, so that on the local path the resumed run repeats the uninterrupted one)."""
        current = self.anchor
        if self._resumed_anchor is not None:
            self.anchor, self._resumed_anchor = self._resumed_anchor, None
        self._submit(None, schedule)
        self.anchor = current

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
            finished = wait_first(
                {p: call for p, (call, _) in self.pending.items()},
                self.problem.timeout_s,
                self.poll_s,
                on_wait(self.clock, self.problem),
            )
            # the blocks were placed anew (a straggler's moved): every position gets a call again
            lost = self.problem.n_workers != self.n_positions
            for position in finished:
                call, _ = self.pending.pop(position)
                result = call.result(self.problem.timeout_s)
                self.clock.answer(position)
                if result is None:  # the worker did not recognise its key: placement changed, start afresh
                    lost = True
                    continue
                self.keys[position] = result.key
                self.next_step[result.key] = self.next_step.get(result.key, 0) + result.n_steps
                staleness = self.version - result.version
                while len(counts) <= staleness:
                    counts.append(0)
                counts[staleness] += 1
                if staleness > bound:
                    dropped += 1
                    continue
                staleness_seen.append(staleness)
                share = result.sum_weight / self.total_weight
                factor = n_keys * share / (1.0 + staleness) ** self.staleness_power
                self.W += factor * result.delta
                self.version += 1
                applied += 1
                eta = result.eta_sum / max(result.n_steps, 1)
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
        """Wait for the calls still in flight (their results are discarded) so that the workers are idle.

        A call that does not answer within the straggler delay of the recent calls is abandoned (its worker
        stopped answering; its result is not needed).
        """
        deadline = time.monotonic() + min(self.problem.timeout_s, self.clock.abandon_after_s())
        for call in [call for call, _ in self.pending.values()] + self.orphans:
            try:
                call.result(max(deadline - time.monotonic(), 0.01))
            except Exception as err:  # best effort: the solver is finishing
                logger.debug("async-sgd: a call in flight failed or was abandoned while finishing: %r", err)
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
        """The server's array state (staleness of every applied change, anchor of the last call sent)."""
        arrays = {"all_staleness": np.asarray(self.all_staleness, dtype=np.int64)}
        if self.sent_anchor is not None:
            arrays["sent_anchor_W"], arrays["sent_anchor_grad"] = self.sent_anchor
        return arrays

    def restore(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`state` and :meth:`state_arrays` of a checkpoint (before :meth:`start`)."""
        self.version = int(state["version"])
        self.next_step = {tuple(int(i) for i in key): int(step) for key, step in state["next_step"]}
        self.n_dropped_total = int(state["n_dropped_total"])
        self.all_staleness = [int(s) for s in arrays.get("all_staleness", np.zeros(0, dtype=np.int64))]
        if "sent_anchor_W" in arrays:
            self._resumed_anchor = Anchor(arrays["sent_anchor_W"], arrays["sent_anchor_grad"])

    def summary(self) -> str:
        """Staleness of the applied changes over the whole run, for the result message."""
        if not self.all_staleness:
            return f"no change applied ({self.n_dropped_total} dropped)"
        values = np.asarray(self.all_staleness)
        return (
            f"staleness mean {values.mean():.2f}, max {int(values.max())} over {values.size} applied changes "
            f"({self.n_dropped_total} dropped as staler than {self.bound})"
        )
