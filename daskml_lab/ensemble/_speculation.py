"""Stragglers among the workers that pinned shard work waits for, and moving their shards to the others.

Shard tasks are pinned to the worker holding their block (:mod:`~daskml_lab.ensemble._placement`), which
switches off Dask's answer to stragglers, work stealing: a worker that stops answering (paused, swapping,
stopped with SIGSTOP) or runs far behind the others holds its shards for as long as it takes. While a pinned
computation runs, :class:`ShardProgress` watches, every :data:`~daskml_lab._runtime.watch.WATCH_INTERVAL_S`
seconds, two signs that a worker with unfinished shards is a straggler:

- **it stopped answering**: the scheduler has had no heartbeat from it (a worker sends one about every
  0.5 s) for ``unresponsive_s`` seconds;
- **it runs far behind**: at least ``min_done_fraction`` of the shards are done, and the worker has
  finished none of its shards for longer than ``max(floor_s, factor * median)``, where ``median`` is the
  median time a worker took per shard so far (the time between two shard completions on one worker).
  At most half of the workers are set aside for this reason (under CPU contention a healthy worker can
  fall behind for a while; moving its shards is harmless, piling every shard onto one worker is not).

A straggler is not a lost worker: the scheduler still counts it, and it may answer again. Its shards are
moved (:func:`move_shards`): each one's blocks are computed again from their lineage, under new keys
(:func:`daskml_lab._compat.recomputable_copy`), on the healthy worker with the fewest rows so far, so that nothing
is ever fetched from the straggler; the shard tasks are pinned there, and the graph is computed again
(shards already fitted elsewhere keep their keys and are not fitted again). The tasks are pure and seeded,
so the result equals the undisturbed one. With all workers healthy nothing is moved or copied.

The rule's parameters are ``dask.config`` keys under ``daskml_lab.ensemble.speculation`` (see
:data:`DEFAULTS`); ``enabled: False`` turns it off.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
from distributed import futures_of

from daskml_lab._compat import recomputable_copy, unique_fused_keys
from daskml_lab._runtime.heartbeats import Heartbeats

__all__ = ["DEFAULTS", "ShardProgress", "SpeculationRule", "move_shards"]

logger = logging.getLogger(__name__)

#: ``dask.config`` prefix of the rule's parameters.
CONFIG_PREFIX = "daskml_lab.ensemble.speculation"

#: Default parameters of the straggler rule (``dask.config`` keys under :data:`CONFIG_PREFIX`).
DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "unresponsive_s": 10.0,
    "factor": 3.0,
    "floor_s": 10.0,
    "min_done_fraction": 0.5,
}


@dataclass(frozen=True)
class SpeculationRule:
    """The parameters of the straggler rule (see the module's description).

    Attributes
    ----------
    enabled : bool
        Whether stragglers are looked for at all.
    unresponsive_s : float
        Seconds without a heartbeat after which a worker is a straggler.
    factor : float
        A worker that has finished no shard for ``factor`` times the median time per shard is a straggler.
    floor_s : float
        ... but never before ``floor_s`` seconds.
    min_done_fraction : float
        Share of the shards that must be done before the relative rule applies.
    """

    enabled: bool = True
    unresponsive_s: float = 10.0
    factor: float = 3.0
    floor_s: float = 10.0
    min_done_fraction: float = 0.5

    @classmethod
    def from_config(cls) -> SpeculationRule:
        """The rule with the parameters set in ``dask.config`` (defaults: :data:`DEFAULTS`)."""
        values = {
            name: dask.config.get(f"{CONFIG_PREFIX}.{name}", default) for name, default in DEFAULTS.items()
        }
        return cls(
            enabled=bool(values["enabled"]),
            unresponsive_s=float(values["unresponsive_s"]),
            factor=float(values["factor"]),
            floor_s=float(values["floor_s"]),
            min_done_fraction=float(values["min_done_fraction"]),
        )


class ShardProgress:
    """Per worker, when it last finished a shard and last sent a heartbeat; who is a straggler.

    Parameters
    ----------
    n_shards : int
        Number of shards.
    rule : SpeculationRule
        The rule's parameters.
    clock : callable, default=time.monotonic
        The client's clock (tests pass a fake one).
    """

    def __init__(self, n_shards: int, rule: SpeculationRule, clock: Any = time.monotonic) -> None:
        self.rule = rule
        self.clock = clock
        self.done: list[bool] = [False] * n_shards
        self.durations: list[float] = []
        self._progress: dict[str, float] = {}  # worker -> when it last finished a shard (or got work)
        self._heartbeats = Heartbeats(clock)

    def assign(self, workers: Iterable[str | None], shards: Iterable[int] | None = None) -> None:
        """Start the clock of the workers given (new) shards; ``shards`` restart (default: none)."""
        now = self.clock()
        for worker in set(workers) - {None}:
            self._progress[worker] = now
        for index in shards or ():
            self.done[index] = False

    def finished(self, index: int, worker: str | None) -> None:
        """Record that shard ``index``'s first task, pinned to ``worker``, is done."""
        if self.done[index]:
            return
        self.done[index] = True
        now = self.clock()
        if worker is not None:
            self.durations.append(now - self._progress.get(worker, now))
            self._progress[worker] = now

    def heard(self, records: dict[str, dict[str, Any]]) -> None:
        """Record the scheduler's ``last_seen`` of every worker (from ``WorkerWatch.records``)."""
        self._heartbeats.heard(records)

    def unresponsive(self) -> dict[str, str]:
        """The workers the scheduler has had no heartbeat from for more than ``unresponsive_s`` seconds."""
        if not self.rule.enabled:
            return {}
        silent = self._heartbeats.silent(self.rule.unresponsive_s)
        return {worker: f"no heartbeat for {seconds:.1f} s" for worker, seconds in silent.items()}

    def stragglers(self, workers: Sequence[str | None]) -> dict[str, str]:
        """The stragglers, and why: unresponsive workers, and those with unfinished shards far behind.

        ``workers[i]`` is the worker shard ``i`` is pinned to. An unresponsive worker counts even without
        shards: the tasks that are not pinned (members, merges) may be waiting for it.
        """
        if not self.rule.enabled:
            return {}
        now = self.clock()
        found = self.unresponsive()
        if not self.durations or sum(self.done) < self.rule.min_done_fraction * len(self.done):
            return found
        median = statistics.median(self.durations)
        threshold = max(self.rule.floor_s, self.rule.factor * median)
        pending = {w for w, done in zip(workers, self.done, strict=True) if w is not None and not done}
        for worker in sorted(pending - set(found)):
            idle = now - self._progress.get(worker, now)
            if idle > threshold:
                found[worker] = (
                    f"no shard finished for {idle:.1f} s, against a median of {median:.2f} s per shard"
                )
        return found


def _without_lineage(block: Any) -> bool:
    """Whether ``block`` (one block of a collection) is data already on the cluster, with no task to rerun."""
    key = block.__dask_keys__()
    while isinstance(key, list):  # one block of an array: [[key]]
        (key,) = key
    return recomputable_copy(block, "probe").key == key


def move_shards(
    placed: Any,
    shards: Sequence[int],
    targets: Sequence[str],
    client: Any,
) -> Any:
    """``placed`` with the blocks of ``shards`` computed again from their lineage on ``targets``.

    Parameters
    ----------
    placed : PlacedShards
        With ``sources`` (the collections before they were persisted); ``workers`` may be None (blocks
        still being persisted).
    shards : sequence of int
        The shards to move.
    targets : sequence of str
        Healthy workers; each shard goes to the one with the fewest rows so far.
    client : distributed.Client
        The client.

    Returns
    -------
    PlacedShards
        The moved shards' blocks are new persisted keys held (only) by their new worker, to which the shards'
        tasks are pinned; the other shards are unchanged.
    """
    workers = list(placed.workers or [None] * len(placed.X_blocks))
    rows: Counter[str] = Counter()
    for index, worker in enumerate(workers):
        if worker in targets and index not in shards:
            rows[worker] += placed.rows[index] if placed.rows else 1
    sources = placed.sources
    columns = [list(placed.X_blocks), list(placed.y_blocks)]
    if placed.sw_blocks is not None:
        columns.append(list(placed.sw_blocks))
    # a block that is itself data persisted before (a future, no lineage) cannot be computed again elsewhere:
    # its copy would keep its key, and dropping the straggler's future below would release the data
    shards = [
        index for index in shards if not any(_without_lineage(source.blocks[index]) for source in sources)
    ]
    old_keys = {column[index].key for column in columns for index in shards}
    # the straggler's copies are dropped, not released: other references to the keys may still exist
    futures = [future for future in placed.futures if future.key not in old_keys]
    for index in shards:
        target = min(targets, key=lambda w: (rows[w], w))
        rows[target] += placed.rows[index] if placed.rows else 1
        # Computed again from the lineage under new keys: the scheduler would otherwise fetch the existing
        # keys from the straggler, which may never answer.
        tag = f"moved-{uuid.uuid4().hex[:8]}"
        blocks = [recomputable_copy(source.blocks[index], tag) for source in sources]
        # persist: one shard's blocks, on its new worker only (shard-sized)
        with unique_fused_keys():
            persisted = client.persist(
                blocks, workers=[target], allow_other_workers=False, optimize_graph=False
            )
        futures.extend(futures_of(persisted))
        for column, block in zip(columns, persisted, strict=True):
            column[index] = block
        workers[index] = target
    logger.debug("shards %s moved to %s", list(shards), sorted({workers[i] for i in shards}))
    return dataclasses.replace(
        placed,
        X_blocks=columns[0],
        y_blocks=columns[1],
        sw_blocks=columns[2] if len(columns) == 3 else None,
        workers=workers,
        futures=futures,
    )
