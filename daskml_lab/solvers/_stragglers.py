"""Stragglers in the solver engine: a worker that stops answering, or runs far behind the others.

A solver round sends one call to the actor of every *position* (a fixed group of row blocks, see
:mod:`daskml_lab.solvers._distributed_engine`) and needs every answer. A worker that is alive but does not
answer (paused with SIGSTOP, swapping, starved of CPU) is still in the cluster, so the lost-worker watch never
fires, and the round would wait for it until ``daskml_lab.solvers.timeout_s`` (600 s).

**The rule.** Once at least half of the calls of a round have answered, a call still running after
``max(min_delay_s, factor * median)`` seconds, where ``median`` is the median time the answered calls took,
marks its worker as a straggler. With the defaults (``factor=4``, ``min_delay_s=5``) the detection delay is
at most 30 s for rounds whose typical duration is under 7.5 s. Asynchronous SGD applies the same rule to the
calls it keeps in flight, against the median duration of its recent calls.

**The move.** The straggler's share of the row blocks is rebuilt on the other workers from the blocks'
lineage: each block's graph is cloned under new keys (:func:`dask.graph_manipulation.clone`) and computed on
a healthy worker only, so that nothing is ever fetched from the straggler (a paused worker would never send
it). Its blocks are split between the healthy workers by rows, and new actors are created there; the call is
then sent again to them and the round continues. Since the loss and gradient sums do not depend on how the
blocks are grouped (:mod:`daskml_lab.solvers._exact_sum`), lbfgs, gd and proximal give the numbers of an
undisturbed fit; the Newton solvers (Hessian products summed in floating point) give them to rounding; sgd,
async-sgd and admm continue from their current parameters with the new grouping. The straggler is never
given work again during the fit. Data placement is unchanged when every worker answers in time.

**Before the first round.** The row blocks are computed and persisted before any call is sent; the same
rule compares the time each block is taking with the median time of the blocks already in memory. When no
block can finish at all (they all wait for one task held by a paused worker, such as a generator's shared
parameters), there is no median: a worker the scheduler has had no heartbeat from for ``unresponsive_s``
seconds (:mod:`daskml_lab._runtime.heartbeats`) is then the straggler, and the blocks still missing are
computed from their lineage on the others.

When the blocks have no lineage outside the straggler (data persisted or scattered by the caller and held
only there), or no other worker is left, nothing is moved and the round waits as before (up to the timeout).

Settings (``dask.config``): ``daskml_lab.solvers.straggler.enabled`` (default True),
``daskml_lab.solvers.straggler.factor`` (default 4), ``daskml_lab.solvers.straggler.min_delay_s``
(default 5) and ``daskml_lab.solvers.straggler.unresponsive_s`` (default 10).
"""

from __future__ import annotations

import logging
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
from dask.graph_manipulation import clone
from distributed import CancelledError, futures_of

from daskml_lab._runtime.heartbeats import Heartbeats
from daskml_lab._runtime.waiting import wait_briefly

logger = logging.getLogger(__name__)

__all__ = ["STRAGGLER_KEY", "CallClock", "StragglerRule", "gather_round", "move_positions", "wait_blocks"]

#: ``dask.config`` prefix of the straggler settings.
STRAGGLER_KEY = "daskml_lab.solvers.straggler"

#: Seconds between two looks at the calls of a round while one of them is awaited.
_POLL_S = 0.05


@dataclass(frozen=True)
class StragglerRule:
    """When a call is late: after ``max(min_delay_s, factor * median)`` seconds, once half have answered.

    Parameters
    ----------
    enabled : bool, default=True
        Whether late calls are moved at all.
    factor : float, default=4.0
        Multiple of the median duration of the answered calls.
    min_delay_s : float, default=5.0
        Floor of the delay, so that short rounds do not flag a worker for a hiccup.
    unresponsive_s : float, default=10.0
        Seconds without a heartbeat after which a worker holding up the row blocks is a straggler, when no
        block has been computed yet to compare with.

    Examples
    --------
    >>> rule = StragglerRule(factor=4.0, min_delay_s=5.0)
    >>> rule.delay_s([0.1, 0.2]), rule.delay_s([3.0, 2.0])
    (5.0, 10.0)
    """

    enabled: bool = True
    factor: float = 4.0
    min_delay_s: float = 5.0
    unresponsive_s: float = 10.0

    @classmethod
    def from_config(cls) -> StragglerRule:
        """The rule of ``dask.config`` keys ``daskml_lab.solvers.straggler.*`` (checked)."""
        enabled = bool(dask.config.get(f"{STRAGGLER_KEY}.enabled", True))
        factor = float(dask.config.get(f"{STRAGGLER_KEY}.factor", 4.0))
        min_delay_s = float(dask.config.get(f"{STRAGGLER_KEY}.min_delay_s", 5.0))
        unresponsive_s = float(dask.config.get(f"{STRAGGLER_KEY}.unresponsive_s", 10.0))
        if not factor >= 1.0 or not min_delay_s >= 0.0 or not unresponsive_s > 0.0:
            msg = (
                f"dask.config {STRAGGLER_KEY}.factor must be >= 1, {STRAGGLER_KEY}.min_delay_s >= 0 and "
                f"{STRAGGLER_KEY}.unresponsive_s > 0, got factor={factor!r}, min_delay_s={min_delay_s!r} and "
                f"unresponsive_s={unresponsive_s!r}."
            )
            raise ValueError(msg)
        return cls(enabled, factor, min_delay_s, unresponsive_s)

    def delay_s(self, durations: Sequence[float]) -> float:
        """Seconds after which a call is late, given the durations of the calls that answered."""
        return max(self.min_delay_s, self.factor * statistics.median(durations))

    def late(self, n_calls: int, durations: Sequence[float], elapsed: dict[Any, float]) -> list[Any]:
        """Which of the running calls (``elapsed``: seconds since each was sent) are late."""
        if not self.enabled or not durations or 2 * len(durations) < n_calls:
            return []
        limit = self.delay_s(durations)
        return [name for name, seconds in elapsed.items() if seconds > limit]


class CallClock:
    """Send times and recent durations of the calls kept in flight by asynchronous SGD.

    Parameters
    ----------
    rule : StragglerRule
    window : int
        How many recent durations the median is taken over.
    """

    def __init__(self, rule: StragglerRule, window: int) -> None:
        self.rule, self.window = rule, max(2, int(window))
        self.sent: dict[int, float] = {}
        self.durations: list[float] = []

    def send(self, position: int) -> None:
        """A call was sent to ``position``."""
        self.sent[position] = time.monotonic()

    def answer(self, position: int) -> None:
        """The call of ``position`` answered."""
        started = self.sent.pop(position, None)
        if started is not None:
            self.durations = [*self.durations, time.monotonic() - started][-self.window :]

    def late(self, n_positions: int) -> list[int]:
        """Positions whose call is late by the rule."""
        now = time.monotonic()
        elapsed = {p: now - started for p, started in self.sent.items()}
        # the recent durations stand for "the others' answers": at least one per position is asked for
        return self.rule.late(min(n_positions, self.window), self.durations, elapsed)

    def abandon_after_s(self) -> float:
        """How long to wait, at the end of a run, for a call whose answer is not needed any more."""
        return self.rule.delay_s(self.durations) if self.durations else self.rule.min_delay_s


def gather_round(engine: Any, calls: list[Any], timeout_s: float) -> list[Any]:
    """The answers of a round of actor calls; a late call's blocks are moved and the call sent again.

    Parameters
    ----------
    engine : DistributedEngine
        The engine the calls belong to (``"actors"`` mode).
    calls : list of _ActorCall
        One call per position, all sent just now.
    timeout_s : float
        Longest wait for any one answer (as before stragglers were handled).

    Returns
    -------
    list
        The answers, in position order; a position split by a move answers once per new position.
    """
    pending = dict(enumerate(calls))
    answers: dict[int, Any] = {}
    durations: list[float] = []
    started = time.monotonic()
    while pending:
        for index, call in list(pending.items()):
            if call.done():  # answered, failed, or its worker has left (result() then recovers)
                answers[index] = call.result(timeout_s)
                durations.append(time.monotonic() - call.sent_at)
                del pending[index]
        if not pending:
            break
        now = time.monotonic()
        rule: StragglerRule = engine.straggler_rule  # switched off when a move was impossible
        late = rule.late(
            len(answers) + len(pending), durations, {i: now - pending[i].sent_at for i in pending}
        )
        if late and _move_late(engine, late, pending, calls, durations):
            started = time.monotonic()  # the moved calls were sent again just now
            continue
        if now - started > timeout_s:
            call = next(iter(pending.values()))
            msg = (
                f"Timed out after {timeout_s:g} s waiting for the worker {call.address} to answer {call.method!r} "
                f"(cluster at {engine.client.scheduler.address}), and its work could not be moved to another "
                "worker. Check that the worker is alive and not overloaded, or raise the timeout (dask.config "
                "daskml_lab.solvers.timeout_s)."
            )
            raise TimeoutError(msg)
        _wait_one(next(iter(pending.values())))
    return [answers[index] for index in sorted(answers)]


def _wait_one(call: Any) -> None:
    future = getattr(call, "future", None)
    if future is None:
        return
    try:
        future.result(timeout=_POLL_S)
    except Exception as err:  # looked at again, with its error, by the caller's done()/result()
        logger.debug("straggler watch: a call is not answered yet or failed: %r", err)


def _move_late(
    engine: Any, late: list[int], pending: dict[int, Any], calls: list[Any], durations: list[float]
) -> bool:
    """Move the positions of the late calls; send them again (and to the new positions). False: not moved."""
    positions = sorted({pending[i].position for i in late})
    elapsed = {pending[i].address: time.monotonic() - pending[i].sent_at for i in late}
    created = move_positions(
        engine, positions, reason=f"{elapsed_text(elapsed)} (others: {durations_text(durations)})"
    )
    if created is None:
        engine.straggler_rule = StragglerRule(enabled=False)  # nothing can be moved: stop trying this fit
        return False
    method, args = pending[late[0]].method, pending[late[0]].args
    for index in late:
        pending[index].send()  # to the new actor of its position
    for position in created:
        index = len(calls)
        calls.append(engine.new_call(position, method, args))
        pending[index] = calls[-1]
    return True


def elapsed_text(elapsed: dict[str, float]) -> str:
    """``"worker tcp://... silent for 5.1 s"`` for the log."""
    return ", ".join(f"worker {address} silent for {seconds:.1f} s" for address, seconds in elapsed.items())


def durations_text(durations: Sequence[float]) -> str:
    """The median of the answered calls' durations, for the log."""
    return f"median {statistics.median(durations):.2f} s" if durations else "none answered"


def move_positions(engine: Any, positions: list[int], *, reason: str) -> list[int] | None:
    """Rebuild the blocks of ``positions`` on the other workers from their lineage; new actors there.

    Returns
    -------
    list of int or None
        The positions created in addition to ``positions`` (a position's blocks may be split over several
        workers), or None when nothing could be moved (no other worker, or blocks without lineage).
    """
    slow = {engine._worker_args[p][0] for p in positions}
    engine.stragglers |= slow
    live = sorted(engine._watch.live(0.0) - engine.stragglers)
    sources = engine.sources
    if not live or sources is None:
        logger.warning(
            "solver engine: %s, but %s; waiting for it",
            reason,
            "no other worker" if not live else "no lineage",
        )
        return None
    indices = sorted(i for p in positions for i in engine._worker_args[p][1])
    blocks = [[source.blocks[i] for source in sources if source is not None] for i in indices]
    if not _has_lineage_outside(engine, [b for group in blocks for b in group], slow):
        logger.warning(
            "solver engine: %s, but its blocks exist only there (no lineage); waiting for it", reason
        )
        return None
    groups = _split(engine, indices, live, exclude=set(positions))
    logger.warning(
        "solver engine: %s; rebuilding its %d block(s) from their lineage on %s",
        reason,
        len(indices),
        sorted(groups),
    )
    engine.n_straggler_moves += 1
    engine.client.cancel([engine._actor_futures[p] for p in positions])
    has_weight = engine._worker_args[positions[0]][3]
    seed = uuid.uuid4().hex
    free = list(positions)
    created: list[int] = []
    for target, group in groups.items():
        cloned = clone(*[b for i in group for b in blocks[indices.index(i)]], seed=seed)
        # compute: the moved row blocks, on the healthy target only (never fetched from the straggler)
        persisted = engine.client.persist(
            list(cloned), workers=[target], allow_other_workers=False, optimize_graph=False
        )
        width = len(persisted) // len(group)
        for k, i in enumerate(group):
            triple = tuple(futures_of(c)[0] for c in persisted[k * width : (k + 1) * width])
            engine._block_futures[i] = triple
        triples = [engine._block_futures[i] for i in group]
        arrays = (
            [t[0] for t in triples]
            + [t[1] for t in triples]
            + ([t[2] for t in triples] if has_weight else [])
        )
        args = (target, list(group), len(group), has_weight, arrays)
        if free:
            position = free.pop(0)
            engine._worker_args[position] = args
            engine._generation[position] += 1
        else:
            position = len(engine._worker_args)
            engine._worker_args.append(args)
            engine._generation.append(0)
            engine._actor_futures.append(None)
            engine._actors.append(None)
            created.append(position)
        engine._actor_futures[position] = engine._submit_actor(position)
        engine._actors[position] = None
    for position in free:  # more positions than targets: keep the list dense with empty groups
        engine._worker_args[position] = (live[0], [], 0, has_weight, [])
        engine._generation[position] += 1
        engine._actor_futures[position] = engine._submit_actor(position)
        engine._actors[position] = None
    engine.n_workers = len(engine._worker_args)
    engine._persisted = []  # its futures would keep the straggler's copies wanted; the blocks' are above
    engine._rehome([], RuntimeError(reason))  # waits for the new actors
    return created


def wait_blocks(engine: Any, what: str) -> None:
    """Wait for the persisted row blocks; the blocks a straggler computes far behind the others are rebuilt
    elsewhere from their lineage (a worker paused before the fit would otherwise hold up the start).

    Block ``i`` counts as answered once its ``(X, y[, sample_weight])`` futures are all done; the rule compares
    the time since the persist with the median time the answered blocks took. Before any block is answered,
    a worker silent for ``rule.unresponsive_s`` seconds (no heartbeat) is the straggler instead.
    """
    rule: StragglerRule = engine.straggler_rule
    heartbeats = Heartbeats()
    started = time.monotonic()
    durations: list[float] = []
    answered: set[int] = set()
    n_blocks = len(engine._block_futures)
    since = dict.fromkeys(range(n_blocks), started)  # when each block was (last) sent
    while rule.enabled and len(answered) < n_blocks:
        for index, triple in enumerate(engine._block_futures):
            if index not in answered and all(f.done() for f in triple):
                answered.add(index)
                durations.append(time.monotonic() - started)
        now = time.monotonic()
        elapsed = now - started
        waiting = {i: now - since[i] for i in range(n_blocks) if i not in answered}
        late = rule.late(n_blocks, durations, waiting)
        slow: set[str] = set()
        if late:
            # the workers still busy (with the late blocks or what they are made from) when the others are
            # long done; a late block waiting in the scheduler's queue is not moved
            slow = {w for w, tasks in engine.client.processing().items() if tasks}
            reason = f"not computed after {elapsed:.1f} s (others: {durations_text(durations)})"
        elif rule.enabled and not durations:
            # nothing to compare with: the blocks may all wait for one task a silent worker holds
            heartbeats.heard(engine._watch.records())
            silent = heartbeats.silent(rule.unresponsive_s) if elapsed > rule.unresponsive_s else {}
            slow = set(silent) - engine.stragglers
            late = [i for i, seconds in waiting.items() if seconds > rule.unresponsive_s] if slow else []
            heard = ", ".join(f"{seconds:.1f} s" for seconds in silent.values())
            reason = f"not computed after {elapsed:.1f} s, no heartbeat for {heard}"
        if late:
            healthy = engine._watch.live(0.0) - engine.stragglers - slow
            if slow and healthy:
                if not _rebuild_blocks(engine, late, slow, reason):
                    break  # no lineage: wait as before
                since.update(dict.fromkeys(late, time.monotonic()))
        if elapsed > engine.timeout_s:
            break
        pending = [f for i in range(n_blocks) if i not in answered for f in engine._block_futures[i]]
        if pending:
            try:
                wait_briefly(pending[:1], _POLL_S)
            except CancelledError:
                break  # data lost, or the scheduler gone: the wait below raises the clear error
    engine._wait([f for t in engine._block_futures for f in t], what)  # errors, or the clear TimeoutError
    if engine.stragglers:  # blocks a straggler computed before it stopped: reachable only through it
        who_has = engine.client.who_has([t[0] for t in engine._block_futures])
        stuck = [
            i
            for i, t in enumerate(engine._block_futures)
            if set(who_has.get(t[0].key, ())) <= engine.stragglers
        ]
        if stuck and _rebuild_blocks(engine, stuck, set(engine.stragglers), "held by a straggler only"):
            engine._wait([f for t in engine._block_futures for f in t], what)


def _rebuild_blocks(engine: Any, late: list[int], slow: set[str], reason: str) -> bool:
    """Persist the blocks ``late`` again, from their lineage, on workers other than ``slow``."""
    reason = f"row blocks {sorted(late)} {reason}"
    live = sorted(engine._watch.live(0.0) - engine.stragglers - slow)
    blocks = [source.blocks[i] for i in late for source in engine.sources if source is not None]
    if not slow or not live or not _has_lineage_outside(engine, blocks, slow):
        logger.warning("solver engine: %s; no other worker can compute them, waiting", reason)
        return False
    engine._watch.health.check(doing="moving row blocks off a straggler")  # a lost scheduler: say so now
    try:
        cloned = clone(*blocks, seed=uuid.uuid4().hex)
    except ValueError as err:  # dask cannot copy every graph (fused tasks with several outputs)
        logger.warning("solver engine: %s; their lineage cannot be copied (%s), waiting", reason, err)
        return False
    engine.stragglers |= slow
    logger.warning(
        "solver engine: %s on %s; computing them again from their lineage on %s", reason, sorted(slow), live
    )
    # persist: the late row blocks again, on the other workers only (never fetched from the straggler)
    # not optimised: dask's fusion of some cloned graphs fails ("Cannot fuse tasks with multiple outputs"),
    # and only later, as the error of the persisted futures
    persisted = engine.client.persist(
        list(cloned), workers=live, allow_other_workers=False, optimize_graph=False
    )
    width = len(persisted) // len(late)
    for k, index in enumerate(late):
        engine._block_futures[index] = tuple(futures_of(c)[0] for c in persisted[k * width : (k + 1) * width])
    engine._persisted = []  # its futures would keep the straggler's copies wanted
    return True


def _has_lineage_outside(engine: Any, collections: list[Any], slow: set[str]) -> bool:
    """Whether the blocks can be computed without the ``slow`` workers (their inputs' futures held elsewhere)."""
    inputs = futures_of(collections)
    if not inputs:
        return True
    who_has = engine.client.who_has(inputs)
    return all(set(who_has.get(f.key, ())) - slow for f in inputs)


def _split(engine: Any, indices: list[int], live: list[str], exclude: set[int]) -> dict[str, list[int]]:
    """Blocks to healthy workers, largest first to the least loaded (in rows, counting what they hold)."""
    rows = engine._block_rows
    load = dict.fromkeys(live, 0)
    for position, (address, held, *_rest) in enumerate(engine._worker_args):
        if position not in exclude and address in load:
            load[address] += sum(rows[i] for i in held)
    groups: dict[str, list[int]] = {}
    for index in sorted(indices, key=lambda i: (-rows[i], i)):
        target = min(load, key=lambda w: (load[w], w))
        groups.setdefault(target, []).append(index)
        load[target] += rows[index]
    return {w: sorted(g) for w, g in groups.items()}


def on_wait(clock: CallClock, problem: Any) -> Callable[[], None]:
    """For async-sgd's wait: move the positions whose call is late (their calls then count as done).

    When nothing can be moved, the clock's rule is switched off for the rest of the run.
    """

    def check() -> None:
        late = clock.late(len(clock.sent))
        if not late:
            return
        now = time.monotonic()
        reason = (
            f"async-sgd: the call of position(s) {late} silent for "
            f"{max(now - clock.sent[p] for p in late):.1f} s (others: {durations_text(clock.durations)})"
        )
        if not problem.move_stragglers(late, reason):
            clock.rule = StragglerRule(enabled=False)
        for position in late:
            clock.sent.pop(position, None)

    return check
