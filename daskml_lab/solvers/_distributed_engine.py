"""The distributed engines of :class:`~daskml_lab.solvers.BlockedProblem`: ``"actors"`` and ``"tasks"``.

The row blocks are persisted once and grouped by the worker that holds them (a *position* per group); every
evaluation then costs one round trip per worker (see :mod:`daskml_lab.solvers._engine` for the other engines).

**Lost workers** (``"actors"``). Each actor serves a fixed group of blocks (a *position*). A wait for an
actor's answer checks every ``WATCH_INTERVAL_S`` seconds that its worker is still in the cluster; when it has
left (or a call fails to reach it), the scheduler recomputes the lost blocks from their lineage, the actors of
the lost positions are recreated on the workers that now hold most of their blocks, and the call is sent again.
The answers equal those an undisturbed fit gets, since the sums do not depend on the grouping of the blocks
(:mod:`daskml_lab.solvers._exact_sum`); only the ``state`` dict of a recreated position starts empty. The
``"actors"`` engine also moves the work of a worker that stays in the cluster but stops answering, or runs far
behind the others (see :mod:`daskml_lab.solvers._stragglers`). The
``"tasks"`` engine's tasks may run on any worker (the scheduler reruns them elsewhere; a failed evaluation
places the blocks anew and is retried).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from dask.graph_manipulation import clone
from distributed import CancelledError, futures_of, wait
from distributed.comm import CommClosedError

from daskml_lab._compat import unique_fused_keys
from daskml_lab._runtime.cluster_health import ClusterHealth, scheduler_lost
from daskml_lab._runtime.heartbeats import Heartbeats, known_silent
from daskml_lab._runtime.waiting import DataLostError, forget_traceback, result_within, wait_for
from daskml_lab._runtime.watch import WATCH_INTERVAL_S, WorkersLost, WorkerWatch
from daskml_lab.exceptions import NoWorkersLeftError, SchedulerLostError
from daskml_lab.monitoring import shown_in_task_stream, task_prefix
from daskml_lab.solvers._engine import (
    EngineSpec,
    LocalBlocks,
    WorkerCall,
    _Engine,
    combine_loss_grad,
    combine_sum_weights,
)
from daskml_lab.solvers._objectives import _aligned_block
from daskml_lab.solvers._stragglers import StragglerRule, gather_round, move_positions, wait_blocks

logger = logging.getLogger(__name__)

__all__ = ["DistributedEngine"]

#: Rebuild attempts after a lost worker before an evaluation gives up.
_MAX_REBUILDS = 3
#: Seconds to wait, after a call failed to reach a worker, for the scheduler to notice that it has gone.
_LOSS_GRACE_S = 10.0
#: Errors that end the fit at once: no recovery is possible on this cluster (they are OSError/RuntimeError
#: subclasses, so they are re-raised before the handlers of lost workers see them).
_CLUSTER_GONE = (SchedulerLostError, NoWorkersLeftError)


class _WorkerActor:
    """Long-lived per-worker state: the worker's blocks, prepared once, answering evaluations directly."""

    def __init__(
        self, spec: EngineSpec, indices: list[int], n_blocks: int, has_weight: bool, *arrays: Any
    ) -> None:
        X_blocks = list(arrays[:n_blocks])
        y_blocks = list(arrays[n_blocks : 2 * n_blocks])
        sw_blocks = list(arrays[2 * n_blocks :]) if has_weight else None
        self.local = LocalBlocks.from_raw(spec, indices, X_blocks, y_blocks, sw_blocks)

    def describe(self) -> tuple[int, np.ndarray]:
        return self.local.n_rows, self.local.sum_weight_sum()

    def loss_grad_sum(self, W: np.ndarray) -> np.ndarray:
        with shown_in_task_stream("loss grad"):
            return self.local.loss_grad_sum(W)

    def run(self, func: Callable, args: tuple) -> Any:
        with shown_in_task_stream(getattr(func, "__name__", "solver step")):
            return func(self.local, *args)


def _loss_grad_worker_task(
    spec: EngineSpec, indices: list[int], n_blocks: int, has_weight: bool, W: Any, *arrays
):
    """Task body of the ``"tasks"`` engine: prepare the local blocks and sum their loss and gradient."""
    actor = _WorkerActor(spec, indices, n_blocks, has_weight, *arrays)
    return actor.local.loss_grad_sum(W)  # a task already shows in the task stream


def _run_worker_task(
    spec: EngineSpec, indices: list[int], n_blocks: int, has_weight: bool, func, args, *arrays
):
    actor = _WorkerActor(spec, indices, n_blocks, has_weight, *arrays)
    return func(actor.local, *args)  # a task already shows in the task stream


class DistributedEngine(_Engine):
    """Persisted blocks, one unit of work per worker per evaluation (actors or pinned tasks)."""

    def __init__(
        self,
        spec: EngineSpec,
        X: Any,
        y: Any,
        sample_weight: Any,
        client: Any,
        timeout_s: float,
        mode: str = "actors",
    ) -> None:
        self.spec, self.client, self.timeout_s, self.mode = spec, client, timeout_s, mode
        self.name = mode
        self._collections = (X, y, sample_weight)
        self._block_rows = tuple(int(c) for c in X.chunks[0])
        self._token = uuid.uuid4().hex[:10]
        self._persisted: list[Any] = []
        self._block_futures: list[tuple[Any, Any, Any]] = []
        self._placement: dict[str, list[int]] = {}
        self._actors: list[Any] = []
        self._actor_futures: list[Any] = []
        self._worker_args: list[tuple] = []
        self._generation: list[int] = []  # per position: how many times its actor was created
        # the clear errors when the scheduler goes or no worker is left (instead of recovery attempts)
        self._health = ClusterHealth.started(client)
        self._watch = WorkerWatch(client, health=self._health)
        self.n_rebuilds = 0
        #: When a worker counts as a straggler, and the workers found to be stragglers during this fit.
        self.straggler_rule = StragglerRule.from_config()
        self.stragglers: set[str] = set()
        self.n_straggler_moves = 0
        #: The lazy (not persisted) blocks: the lineage a straggler's blocks are rebuilt from elsewhere.
        self.sources: tuple[Any, Any, Any] | None = None

    # -- set-up -------------------------------------------------------------------------------------------
    def start(self) -> tuple[int, float]:
        X, y, sw = self._collections
        # Blocks that travelled over the network can be misaligned in memory (slow BLAS paths): realign them
        # on the worker once, as part of the persist, so that the stored copy is the one the kernels read.
        X = X.map_blocks(_aligned_block, dtype=X.dtype, meta=X._meta, token=task_prefix("align"))
        collections = [X, y] if sw is None else [X, y, sw]
        self.sources = (X, y, sw)
        # workers an earlier watch found silent, and silent since, get no block (see _runtime.heartbeats)
        silent = known_silent(self._watch.records()) if self.straggler_rule.enabled else set()
        responsive = sorted(self._watch.live(0.0) - silent)
        placement: dict[str, Any] = {}
        if silent and responsive:
            try:
                # new keys for the whole lineage: a task of it that the silent worker already holds (a shared
                # generator, a pass it was given) would otherwise keep the blocks waiting for it
                collections = list(clone(*collections, seed=uuid.uuid4().hex))
            except ValueError as err:  # dask cannot copy every graph: the straggler rule's own delay then
                logger.warning("solver engine: worker(s) %s are still silent (%s)", sorted(silent), err)
            else:
                self.stragglers |= silent
                # not optimised: dask's fusion of some cloned graphs fails (see _stragglers)
                placement = {"workers": responsive, "allow_other_workers": False, "optimize_graph": False}
                logger.warning(
                    "solver engine: worker(s) %s are still silent: no row block goes to them", sorted(silent)
                )
        # persist: the row blocks stay on the workers for the whole fit (the only data-sized step)
        with unique_fused_keys():
            self._persisted = self.client.persist(collections, **placement)
        futures = {f.key: f for c in self._persisted for f in futures_of(c)}
        keys = [list(_flatten_keys(c.__dask_keys__())) for c in self._persisted]
        self._block_futures = [tuple(futures[ks[i]] for ks in keys) for i in range(len(keys[0]))]
        self._collections = (None, None, None)
        for attempt in range(_MAX_REBUILDS + 1):
            try:
                return self._build()
            except (TimeoutError, *_CLUSTER_GONE):
                raise
            except OSError as err:  # a worker was lost while the actors were being created
                if attempt == _MAX_REBUILDS:
                    raise self._gave_up(attempt, err) from err
                logger.warning(
                    "solver engine: a worker was lost or stopped answering while starting (%r); starting again",
                    err,
                )
                # cancelled, not released: an actor pinned to a dead worker would wait for it for ever
                self.client.cancel(self._actor_futures)
                self.n_rebuilds += 1
        msg = "unreachable"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    def _gave_up(self, attempt: int, err: BaseException) -> RuntimeError:
        msg = (
            f"The solver lost contact with its workers {attempt + 1} times in a row (last error: {err!r}); "
            f"giving up.{self._health.lost_summary()} Check the cluster at {self._health.address} (the workers' "
            "logs tell why "
            "they died: memory limits, crashes) and fit again."
        )
        return RuntimeError(msg)

    def _wait(self, futures: list[Any], what: str) -> None:
        wait_for(futures, what=what, client=self.client, timeout_s=self.timeout_s, health=self._health)

    def _result(self, future: Any, what: str) -> Any:
        return result_within(
            future, what=what, client=self.client, timeout_s=self.timeout_s, health=self._health
        )

    # -- liveness -------------------------------------------------------------------------------------------
    def _position_alive(self, position: int, generation: int, address: str, max_age_s: float) -> bool:
        """Whether the actor ``generation`` of ``position``, created on ``address``, can still answer."""
        if generation != self._generation[position]:
            return False  # already replaced
        if self._actor_futures[position].status in ("lost", "cancelled", "error"):
            return False
        return address in self._watch.live(max_age_s)

    def _wait_actors(self, positions: list[int]) -> None:
        """Wait for the actors of ``positions`` to exist; :class:`WorkersLost` if their worker leaves."""
        futures = [self._actor_futures[p] for p in positions]
        deadline = time.monotonic() + self.timeout_s
        heartbeats = Heartbeats(recall=True)  # the solver state is not started yet: none to copy
        while True:
            try:
                wait(futures, timeout=min(WATCH_INTERVAL_S, max(deadline - time.monotonic(), 0.01)))
                break
            except CancelledError:
                # the scheduler cancels an actor whose blocks were lost for good: say so clearly
                self._wait(futures, "the per-worker solver state")
                raise
            except TimeoutError as err:
                forget_traceback(err)
                self._watch.check(
                    [self._worker_args[p][0] for p in positions],
                    max_age_s=0.0,
                    during="before its solver state was created",
                )
                self._check_silent(heartbeats, positions, futures)
                if time.monotonic() > deadline:
                    self._wait(futures, "the per-worker solver state")  # raises the clear TimeoutError
        self._wait(futures, "the per-worker solver state")  # errors of the actors' constructors

    def _check_silent(self, heartbeats: Heartbeats, positions: list[int], futures: list[Any]) -> None:
        """:class:`WorkersLost` when a worker an actor waits for has sent no heartbeat for ``unresponsive_s``.

        A worker paused before the fit may hold no row block (the blocks went to the others) and still be given
        an actor; it is then set aside as a straggler, and the start is made again without it.
        """
        rule = self.straggler_rule
        if not rule.enabled:
            return
        heartbeats.heard(self._watch.records())
        waiting = {self._worker_args[p][0] for p, f in zip(positions, futures, strict=True) if not f.done()}
        silent = sorted((set(heartbeats.silent(rule.unresponsive_s)) & waiting) - self.stragglers)
        if silent:
            self.stragglers |= set(silent)
            msg = (
                f"worker(s) {silent} sent no heartbeat for {rule.unresponsive_s:g} s before their solver state "
                "was created (set aside as stragglers)"
            )
            raise WorkersLost(msg)

    def _build(self) -> tuple[int, float]:
        """Wait for the blocks, place them on workers, and create the per-worker state."""
        self._release_state()
        wait_blocks(self, "the row blocks to be computed and held in memory")
        X_futures = [triple[0] for triple in self._block_futures]
        who_has = self.client.who_has(X_futures)
        sizes = list(self._block_rows)
        holders = [next(iter(who_has.get(f.key, ())), None) for f in X_futures]
        workers = sorted(set(self.client.scheduler_info()["workers"]) - self.stragglers)
        self._placement = _balance(holders, sizes, workers)
        self.n_workers = len(self._placement)
        has_weight = len(self._block_futures[0]) == 3
        self._worker_args = []
        for address, indices in self._placement.items():
            triples = [self._block_futures[i] for i in indices]
            arrays = [t[0] for t in triples] + [t[1] for t in triples]
            if has_weight:
                arrays += [t[2] for t in triples]
            self._worker_args.append((address, indices, len(indices), has_weight, arrays))
        logger.debug(
            "solver engine %s: blocks per worker %s",
            self.mode,
            {a: len(i) for a, i in self._placement.items()},
        )
        if self.mode == "actors":
            positions = list(range(len(self._worker_args)))
            self._actor_futures = [self._submit_actor(p) for p in positions]
            self._generation = [0] * len(positions)
            self._wait_actors(positions)
            self._actors = [self._result(f, "the per-worker solver state") for f in self._actor_futures]
            described = [_ActorCall(self, p, "describe", ()).result(self.timeout_s) for p in positions]
        else:
            described = [c.result(self.timeout_s) for c in self._submit_tasks(_describe_local, ())]
        return int(sum(d[0] for d in described)), combine_sum_weights([d[1] for d in described])

    def _submit_actor(self, position: int) -> Any:
        """Create the actor of ``position`` on the worker ``self._worker_args[position]`` names."""
        address, indices, n, has_weight, arrays = self._worker_args[position]
        return self.client.submit(
            _WorkerActor,
            self.spec,
            indices,
            n,
            has_weight,
            *arrays,
            workers=[address],
            allow_other_workers=False,
            actor=True,
            pure=False,
            key=(
                f"{task_prefix('solver state')}-{self._token}-{self.n_rebuilds}-{self.n_straggler_moves}-{position}"
            ),
        )

    def _recover(self, err: BaseException) -> None:
        """After a failed call: recreate the actors of the positions whose worker has left the cluster.

        The scheduler may not have noticed the loss yet when the call fails: wait for it (at most
        ``_LOSS_GRACE_S`` seconds). If every worker is still there, nothing is done and the call is retried.
        """
        deadline = time.monotonic() + min(_LOSS_GRACE_S, self.timeout_s)
        for attempt in range(_MAX_REBUILDS + 1):
            while True:
                self._watch.live(0.0)  # one fresh answer of the scheduler for all the positions
                lost = [
                    p
                    for p in range(len(self._worker_args))
                    if not self._position_alive(p, self._generation[p], self._worker_args[p][0], float("inf"))
                ]
                if lost or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if not lost and all(actor is not None for actor in self._actors):
                logger.warning(
                    "solver engine: a call failed (%r) but every worker is alive; retrying it", err
                )
                return
            try:
                self._rehome(lost, err)
                return
            except (TimeoutError, *_CLUSTER_GONE):
                raise
            except OSError as again:  # a worker left during the recovery: start it again
                if attempt == _MAX_REBUILDS:
                    raise self._gave_up(attempt, again) from again
                err, deadline = again, time.monotonic()

    def _rehome(self, lost: list[int], err: BaseException) -> None:
        """Recreate the actors of ``lost`` positions where their blocks are now, and wait for every new actor."""
        if lost:
            self.n_rebuilds += 1
            logger.warning(
                "solver engine: worker(s) %s lost (%r); recreating the state of %d position(s) from their "
                "blocks",
                sorted({self._worker_args[p][0] for p in lost}),
                err,
                len(lost),
            )
            # The old actors are cancelled, not just released: a task pinned to a dead worker would otherwise
            # wait for it for ever, holding its blocks in the cluster's memory.
            self.client.cancel([self._actor_futures[p] for p in lost])
            triples = [self._block_futures[i] for p in lost for i in self._worker_args[p][1]]
            # The scheduler recomputes the lost blocks from their lineage (the futures still want them).
            self._wait([f for t in triples for f in t], "the lost row blocks to be computed again")
            try:
                who_has = self.client.who_has([t[0] for t in triples])
            except CancelledError:  # cancelled since the wait (lost for good): the wait says so clearly
                self._wait([f for t in triples for f in t], "the lost row blocks to be computed again")
                raise
            # never onto a worker found to be a straggler (it holds nothing, so it would look the least loaded)
            live = sorted(self._watch.live(0.0) - self.stragglers) or sorted(self._watch.live(0.0))
            if not live:
                msg = "the solver recreated its lost state"
                raise self._health.no_workers_error(msg, 0.0)
            load = Counter(self._worker_args[p][0] for p in range(len(self._worker_args)) if p not in lost)
            for p in lost:
                _, indices, n, has_weight, arrays = self._worker_args[p]
                held: Counter[str] = Counter()
                for i in indices:
                    for worker in who_has.get(self._block_futures[i][0].key, ()):
                        held[worker] += self._block_rows[i]
                # Where most of the position's rows are now, else the worker with the fewest positions.
                target = min(live, key=lambda w: (-held[w], load[w], w))
                load[target] += 1
                self._worker_args[p] = (target, indices, n, has_weight, arrays)
                self._actor_futures[p] = self._submit_actor(p)
                self._generation[p] += 1
                self._actors[p] = None
        pending = [p for p, actor in enumerate(self._actors) if actor is None]
        self._wait_actors(pending)
        for p in pending:
            self._actors[p] = self._result(self._actor_futures[p], "the per-worker solver state")

    def _actor_result(self, call: _ActorCall, timeout_s: float | None) -> Any:
        """The answer to ``call``; when its worker is lost, recover and send the call again."""
        timeout_s = self.timeout_s if timeout_s is None else float(timeout_s)
        error: BaseException | None = None
        for attempt in range(_MAX_REBUILDS + 1):
            try:
                if error is not None:
                    if call.generation == self._generation[call.position]:  # else: already recreated
                        self._recover(error)
                    call.send()
                return self._await(call, timeout_s)
            except (TimeoutError, *_CLUSTER_GONE):
                raise
            except OSError as err:  # WorkersLost, CommClosedError, "Unable to contact Actor's worker"
                if attempt == _MAX_REBUILDS:
                    raise self._gave_up(attempt, err) from err
                error = err
        msg = "unreachable"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    def _await(self, call: _ActorCall, timeout_s: float) -> Any:
        if scheduler_lost(self.client):
            # actors answer without the scheduler: stop now rather than iterate on until the workers give up
            msg = f"waiting for the workers to answer {call.method!r}"
            raise self._health.scheduler_lost_error(msg)
        if call.error is not None:
            raise call.error
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return call.future.result(
                    timeout=min(WATCH_INTERVAL_S, max(deadline - time.monotonic(), 0.01))
                )
            except TimeoutError as err:
                forget_traceback(err)
                if call.future.done():  # finished just now, or the call itself raised TimeoutError
                    return call.future.result()
                if not self._position_alive(call.position, call.generation, call.address, WATCH_INTERVAL_S):
                    msg = f"worker {call.address} left the cluster while computing {call.method!r}"
                    raise WorkersLost(msg) from None
                if time.monotonic() > deadline:
                    msg = (
                        f"Timed out after {timeout_s:g} s waiting for the worker {call.address} to answer "
                        f"{call.method!r} (cluster at {self.client.scheduler.address}). Check that the worker is "
                        "alive and not overloaded, or raise the timeout (dask.config "
                        "daskml_lab.solvers.timeout_s)."
                    )
                    raise TimeoutError(msg) from None

    def _release_state(self) -> None:
        self._actors = []
        for future in self._actor_futures:
            future.release()
        self._actor_futures = []

    # -- evaluation ---------------------------------------------------------------------------------------
    def _submit_tasks(self, func: Callable, args: tuple) -> list[WorkerCall]:
        token = uuid.uuid4().hex[:8]
        prefix = task_prefix("worker run")
        return [
            WorkerCall(
                self.client.submit(
                    _run_worker_task,
                    self.spec,
                    indices,
                    n,
                    has_weight,
                    func,
                    args,
                    *arrays,
                    workers=[address],
                    allow_other_workers=True,
                    pure=False,
                    key=f"{prefix}-{token}-{position}",
                ),
                what=f"the solver task of the worker {address}",
            )
            for position, (address, indices, n, has_weight, arrays) in enumerate(self._worker_args)
        ]

    def _call_all(self, method: str, args: tuple) -> list[Any]:
        if self.mode == "actors":
            calls = [_ActorCall(self, p, method, args) for p in range(len(self._actors))]
            return gather_round(self, calls, self.timeout_s)
        token = uuid.uuid4().hex[:8]
        prefix = task_prefix("loss grad")
        futures = [
            self.client.submit(
                _loss_grad_worker_task,
                self.spec,
                indices,
                n,
                has_weight,
                args[0],
                *arrays,
                workers=[address],
                allow_other_workers=True,
                pure=False,
                key=f"{prefix}-{token}-{position}",
            )
            for position, (address, indices, n, has_weight, arrays) in enumerate(self._worker_args)
        ]
        self._wait(futures, "the per-worker loss and gradient")
        return self.client.gather(futures)

    def _with_rebuild(self, method: str, args: tuple) -> list[Any]:
        for attempt in range(_MAX_REBUILDS + 1):
            try:
                return self._call_all(method, args)
            except _CLUSTER_GONE:
                raise
            except (OSError, CommClosedError, TimeoutError, DataLostError) as err:
                if attempt == _MAX_REBUILDS:
                    msg = (
                        f"The solver lost contact with its workers {attempt + 1} times in a row (last error: "
                        f"{err!r}); giving up. Check the cluster at {self.client.scheduler.address}."
                    )
                    raise RuntimeError(msg) from err
                logger.warning("solver engine: a worker was lost (%r); rebuilding its blocks and state", err)
                self.n_rebuilds += 1
                time.sleep(0.2 * (attempt + 1))
                self._build()
        msg = "unreachable"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    def loss_grad(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        # the workers' packed sums combine exactly: the result does not depend on which blocks each holds
        if self.mode == "actors":  # the calls recover from lost workers themselves
            return combine_loss_grad(self._call_all("loss_grad_sum", (W,)), W.shape)
        return combine_loss_grad(self._with_rebuild("loss_grad_sum", (W,)), W.shape)

    def submit_workers(self, func: Callable, args: tuple) -> list[WorkerCall]:
        if self.mode == "actors":
            return [_ActorCall(self, p, "run", (func, args)) for p in range(len(self._actors))]
        return self._submit_tasks(func, args)

    def gather_calls(self, calls: list[WorkerCall], timeout_s: float) -> list[Any]:
        # a round of actor calls moves the work of a straggler instead of waiting for it
        if self.mode == "actors" and all(isinstance(call, _ActorCall) for call in calls):
            return gather_round(self, list(calls), timeout_s)
        return super().gather_calls(calls, timeout_s)

    def new_call(self, position: int, method: str, args: tuple) -> _ActorCall:
        """Send ``method(*args)`` to the actor of ``position`` (a position created by a straggler move)."""
        return _ActorCall(self, position, method, args)

    def move_stragglers(self, positions: list[int], reason: str) -> bool:
        """Rebuild the blocks of ``positions`` on the other workers (see :mod:`~daskml_lab.solvers._stragglers`).

        Returns False when nothing was moved (the ``"tasks"`` engine, the rule disabled, no other worker, or
        blocks without lineage).
        """
        if self.mode != "actors" or not self.straggler_rule.enabled:
            return False
        return move_positions(self, positions, reason=reason) is not None

    def close(self) -> None:
        # Each actor method call leaves a reference cycle inside distributed (a self-referencing closure that
        # holds the Actor proxy, whose own Future keeps the actor and its blocks alive on the workers) until
        # the garbage collector runs. Cancelled, the actors are forgotten now whatever still refers to them,
        # so closing the problem frees the workers' memory at once (gc.collect() did the same in 0.27 s
        # per fit in a process holding scikit-learn and dask).
        if self._actor_futures and self.client.status == "running":  # a closed client cannot cancel (or hold)
            self.client.cancel(self._actor_futures)
        self._release_state()
        self._worker_args = []
        self._block_futures = []
        self._persisted = []
        self.sources = None


class _ActorCall(WorkerCall):
    """A call to the actor of one position; ``result`` recovers from a lost worker and sends it again."""

    def __init__(self, engine: DistributedEngine, position: int, method: str, args: tuple) -> None:
        super().__init__()
        self.engine, self.position, self.method, self.args = engine, position, method, args
        self.send()

    def send(self) -> None:
        """Send the call to the current actor of the position."""
        engine = self.engine
        self.generation = engine._generation[self.position]
        self.address = engine._worker_args[self.position][0]
        self.future, self.error = None, None
        self.sent_at = time.monotonic()
        actor = engine._actors[self.position]
        try:
            if actor is None:
                msg = f"the solver state of position {self.position} is being recreated"
                raise WorkersLost(msg)
            self.future = getattr(actor, self.method)(*self.args)
        except RuntimeError as err:  # the Actor proxy refuses calls once it knows that its worker was lost
            if engine._position_alive(self.position, self.generation, self.address, 0.0):
                raise
            self.error = WorkersLost(str(err))
        except WorkersLost as err:
            self.error = err

    def done(self) -> bool:
        """Whether the call has finished, or its worker has left (``result`` then sends it again)."""
        if self.future is None or self.future.done():
            return True
        return not self.engine._position_alive(self.position, self.generation, self.address, WATCH_INTERVAL_S)

    def result(self, timeout_s: float | None = None) -> Any:
        """The call's return value (each attempt waits at most ``timeout_s`` seconds)."""
        return self.engine._actor_result(self, timeout_s)


def _flatten_keys(keys: Any) -> Iterator[Any]:
    """Block keys of a dask collection in block order (the nested lists of ``__dask_keys__`` flattened)."""
    for key in keys:
        if isinstance(key, list):
            yield from _flatten_keys(key)
        else:
            yield key


def _describe_local(local: LocalBlocks) -> tuple[int, np.ndarray]:
    return local.n_rows, local.sum_weight_sum()


def _balance(holders: list[str | None], sizes: list[int], workers: list[str]) -> dict[str, list[int]]:
    """Assign blocks to workers: keep a block where it lives unless that worker already has its share.

    Returns ``{address: [block indices]}`` for the workers that get at least one block, indices sorted.
    """
    total = float(sum(sizes)) or 1.0
    live = [w for w in workers if w] or [h for h in holders if h]
    share = total / max(1, len(live))
    largest = max(sizes) if sizes else 0
    load = dict.fromkeys(live, 0.0)
    assignment: dict[str, list[int]] = {w: [] for w in live}
    pending = []
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        holder = holders[index]
        if holder in load and load[holder] + sizes[index] <= share + largest / 2:
            assignment[holder].append(index)
            load[holder] += sizes[index]
        else:
            pending.append(index)
    for index in pending:
        target = min(load, key=lambda w: (load[w], w))
        assignment[target].append(index)
        load[target] += sizes[index]
    return {w: sorted(ix) for w, ix in assignment.items() if ix}
