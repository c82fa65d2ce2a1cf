"""Which workers have stopped answering: the scheduler's heartbeats, seen on the client's clock.

A worker sends the scheduler a heartbeat about every 0.5 s; the scheduler records when it last heard one
(``last_seen``, on the scheduler's clock). A worker that is paused (SIGSTOP), swapping hard or frozen stops
sending them while it stays one of the scheduler's workers, so no lost-worker error ever fires for it, and
the tasks it was given wait for it. Comparing ``last_seen`` between two looks tells, on the client's own
clock, how long each worker has been silent (the two clocks are never compared with each other).

Used by whoever waits for work that a silent worker may hold up: the ensembles' shard placement
(:mod:`daskml_lab.ensemble._speculation`) and the solver engine's row blocks
(:mod:`daskml_lab.solvers._stragglers`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["Heartbeats"]


class Heartbeats:
    """When each worker's ``last_seen`` last changed, on the client's clock.

    Parameters
    ----------
    clock : callable, default=time.monotonic
        The client's clock (tests pass a fake one).

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

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._changed: dict[str, tuple[Any, float]] = {}  # worker -> (last_seen, when it last changed)

    def heard(self, records: dict[str, dict[str, Any]]) -> None:
        """Record the scheduler's ``last_seen`` of every worker (``WorkerWatch.records``)."""
        now = self.clock()
        for worker, record in records.items():
            seen = record.get("last_seen")
            previous = self._changed.get(worker)
            if previous is None or previous[0] != seen:
                self._changed[worker] = (seen, now)

    def silent(self, longer_than_s: float) -> dict[str, float]:
        """The workers whose heartbeat has not changed for more than ``longer_than_s`` seconds, and for how long."""
        now = self.clock()
        return {
            worker: now - changed
            for worker, (_, changed) in sorted(self._changed.items())
            if now - changed > longer_than_s
        }
