"""Which workers have stopped answering: the scheduler's heartbeats, seen on the client's clock.

A worker sends the scheduler a heartbeat about every 0.5 s; the scheduler records when it last heard one
(``last_seen``, on the scheduler's clock). A worker that is paused (SIGSTOP), swapping hard or frozen stops
sending them while it stays one of the scheduler's workers, so no lost-worker error ever fires for it, and
the tasks it was given wait for it. Comparing ``last_seen`` between two looks tells, on the client's own
clock, how long each worker has been silent (the two clocks are never compared with each other).

Used by whoever waits for work that a silent worker may hold up: the ensembles' shard placement
(:mod:`daskml_lab.ensemble._speculation`), the solver engine's row blocks
(:mod:`daskml_lab.solvers._stragglers`) and the passes before a fit
(:mod:`daskml_lab._runtime.watched_compute`).

A worker found silent is remembered, with the ``last_seen`` it had then: a later watch (the next phase of the
same fit, the next solver run of a ``HuberRegressor``, the next fit) that finds the same ``last_seen`` knows at
its first look that the worker is still silent, and since when, instead of waiting ``unresponsive_s`` again.
The first heartbeat the worker sends (a new ``last_seen``) forgets it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["Heartbeats", "known_silent"]

#: The workers found silent, by address: the ``last_seen`` they had then and since when (client's clock) they
#: had not changed it. Shared by every :class:`Heartbeats` of this process.
_FOUND_SILENT: dict[str, tuple[Any, float]] = {}


class Heartbeats:
    """When each worker's ``last_seen`` last changed, on the client's clock.

    Parameters
    ----------
    clock : callable, default=time.monotonic
        The client's clock (tests pass a fake one). Only watches on the real clock tell the others of this
        process which workers they found silent.
    recall : bool, default=False
        Whether a worker found silent by an earlier watch, and silent since, is silent from this watch's first
        look (the passes and the solver state, which then go to the other workers from the start). The
        watches that move blocks or shards already being computed (the solver engine's row blocks, the shard
        placement) keep their own delay: moving work that a silent worker may not even hold copies it for
        nothing, and their first look is taken while the scheduler may still list a worker just killed.

    Examples
    --------
    >>> now = [0.0]
    >>> beats = Heartbeats(clock=lambda: now[0])
    >>> beats.heard({"a": {"last_seen": 1}, "b": {"last_seen": 1}})
    >>> now[0] = 12.0
    >>> beats.heard({"a": {"last_seen": 2}, "b": {"last_seen": 1}})
    >>> beats.silent(10.0)
    {'b': 12.0}
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, recall: bool = False) -> None:
        self.clock = clock
        self.recall = recall
        self._changed: dict[str, tuple[Any, float]] = {}  # worker -> (last_seen, when it last changed)
        self._found = _FOUND_SILENT if clock is time.monotonic else {}

    def heard(self, records: dict[str, dict[str, Any]]) -> None:
        """Record the scheduler's ``last_seen`` of every worker (``WorkerWatch.records``)."""
        now = self.clock()
        for worker, record in records.items():
            seen = record.get("last_seen")
            previous = self._changed.get(worker)
            if previous is None:
                found = self._found.get(worker) if self.recall else None
                # still the heartbeat it had when found silent: silent since then
                self._changed[worker] = found if found is not None and found[0] == seen else (seen, now)
            elif previous[0] != seen:
                self._changed[worker] = (seen, now)
            if worker in self._found and _later(seen, self._found[worker][0]):
                # it sent a heartbeat since (an older record, asked earlier, is not one)
                del self._found[worker]

    def silent(self, longer_than_s: float) -> dict[str, float]:
        """The workers whose heartbeat has not changed for more than ``longer_than_s`` seconds, and for how long."""
        now = self.clock()
        found = {
            worker: now - changed
            for worker, (_, changed) in sorted(self._changed.items())
            if now - changed > longer_than_s
        }
        for worker in found:
            self._found[worker] = self._changed[worker]
        return found


def _later(seen: Any, than: Any) -> bool:
    try:
        return bool(seen > than)
    except TypeError:  # not a time: any change is news
        return seen != than


def known_silent(records: dict[str, dict[str, Any]]) -> set[str]:
    """The workers of ``records`` (``WorkerWatch.records``) found silent before and without a heartbeat since.

    Lets work be placed away from them from the start, rather than found held up by them again.
    """
    return {
        worker
        for worker, record in records.items()
        if worker in _FOUND_SILENT and _FOUND_SILENT[worker][0] == record.get("last_seen")
    }
