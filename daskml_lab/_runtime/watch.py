"""Watching work pinned to workers: a pinned task waits for ever for a worker that has died.

A task pinned to a worker (``allow_other_workers=False``, an actor, a shard fit next to its blocks) is never
run elsewhere by the scheduler, and a worker restarted by its nanny comes back under a new address. Whoever
waits for such work therefore checks, every :data:`WATCH_INTERVAL_S` seconds, that the workers it is pinned to
are still in the cluster, and raises :class:`WorkersLost` as soon as one has left, so that the caller can move
the work to the new holders of the data and compute it again.

A worker is lost only when the scheduler has removed it: a worker that is slow, busy or paused (under CPU
contention, or stopped with SIGSTOP) is still one of the scheduler's workers, and is the business of the
straggler rule of whoever waits (:mod:`daskml_lab.ensemble._speculation` for the shard fits), never a loss.
The scheduler is asked in one request (:func:`daskml_lab._compat.scheduler_workers`): the answer of
``Client.scheduler_info()`` can be overwritten by the client's periodic refresh, which carries no workers,
and made whole clusters look "gone" under load.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from distributed import CancelledError, wait

from daskml_lab._compat import scheduler_workers
from daskml_lab._runtime.client import cluster_timeout_s
from daskml_lab._runtime.cluster_health import ClusterHealth, scheduler_lost
from daskml_lab._runtime.waiting import forget_traceback, lost_data_error, raise_task_errors, timeout_error

__all__ = ["WATCH_INTERVAL_S", "WorkerWatch", "WorkersLost", "require_a_worker"]

#: Seconds between two checks, while pinned work runs, that the workers it is pinned to are alive.
WATCH_INTERVAL_S = 0.5


class WorkersLost(OSError):
    """A worker that pinned work depends on has left the cluster (the work must be placed anew)."""


class WorkerWatch:
    """The scheduler's live workers, asked again at most every ``interval_s`` seconds, and waits that watch them.

    Parameters
    ----------
    client : distributed.Client
        The client whose scheduler is asked.
    interval_s : float, default=WATCH_INTERVAL_S
        Seconds between two checks while waiting.
    health : ClusterHealth or None, default=None
        The computation's cluster (scheduler gone, no worker left: the clear errors); ``None`` makes one.
    """

    def __init__(
        self, client: Any, interval_s: float = WATCH_INTERVAL_S, health: ClusterHealth | None = None
    ) -> None:
        self.client = client
        self.interval_s = float(interval_s)
        self.health = ClusterHealth(client) if health is None else health
        self._asked: tuple[float, dict[str, dict[str, Any]]] = (-float("inf"), {})

    def live(self, max_age_s: float | None = None) -> set[str]:
        """Addresses of the scheduler's workers, asked again when the last answer is older than ``max_age_s``."""
        return set(self.records(max_age_s))

    def records(self, max_age_s: float | None = None) -> dict[str, dict[str, Any]]:
        """The scheduler's record of each of its workers (``last_seen``: its last heartbeat), as :meth:`live`."""
        max_age_s = self.interval_s if max_age_s is None else max_age_s
        when, workers = self._asked
        if time.monotonic() - when > max_age_s:
            # a client without its scheduler cannot ask it: say that the scheduler is gone
            if scheduler_lost(self.client):
                msg = "checking that the workers are alive"
                raise self.health.scheduler_lost_error(msg)
            workers = scheduler_workers(self.client)
            self._asked = (time.monotonic(), workers)
        return workers

    def check(
        self, workers: Iterable[str | None], *, max_age_s: float | None = None, during: str = ""
    ) -> None:
        """Raise :class:`WorkersLost` when one of ``workers`` (``None`` entries ignored) has left the cluster."""
        pinned = {w for w in workers if w is not None}
        gone = sorted(pinned - self.live(max_age_s))
        if gone:
            msg = f"worker(s) {gone} left the cluster{' ' + during if during else ''}"
            raise WorkersLost(msg)

    def wait(
        self,
        futures: Sequence[Any],
        workers: Iterable[str | None],
        *,
        what: str,
        timeout_s: float | None = None,
    ) -> None:
        """Wait for ``futures`` while the workers they are pinned to stay; then raise the tasks' own errors.

        Parameters
        ----------
        futures : sequence of distributed.Future
            Work pinned to ``workers``.
        workers : iterable of str or None
            The workers the work depends on.
        what : str
            What the futures are, for messages.
        timeout_s : float or None, default=None
            Longest wait; ``None`` waits as long as the work takes (a shard fit may take any time).

        Raises
        ------
        WorkersLost
            As soon as one of ``workers`` has left the cluster.
        TimeoutError
            After ``timeout_s`` seconds.
        RuntimeError
            When the scheduler cancelled the work because its data were lost for good.
        """
        workers = list(workers)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            remaining = self.interval_s if deadline is None else max(deadline - time.monotonic(), 0.01)
            try:
                wait(list(futures), timeout=min(self.interval_s, remaining))
                break
            except CancelledError as err:
                # The scheduler cancels work whose inputs were lost for good (and the client cancels every
                # future when it loses the scheduler); after a lost worker, the caller's retry tells whether
                # they can be computed again.
                explained = self.health.explain(err, doing=f"waiting for {what}")
                if explained is not None:
                    raise explained from err
                self.check(workers, max_age_s=0.0, during=f"while waiting for {what}")
                raise lost_data_error(what, err, self.health) from err
            except TimeoutError as err:
                forget_traceback(err)
                self.check(workers, max_age_s=0.0, during=f"while waiting for {what}")
                if deadline is not None and time.monotonic() > deadline:
                    raise timeout_error(what, self.client, float(timeout_s)) from None
        raise_task_errors(futures)

    def gather(self, futures: Sequence[Any], workers: Iterable[str | None], *, what: str) -> list[Any]:
        """The values of ``futures``, waited for with :meth:`wait`; each fetch bounded by the cluster timeout.

        Raises
        ------
        WorkersLost
            When one of ``workers`` has left the cluster, also after the work finished (a value held by a worker
            that has just died would otherwise be waited for).
        TimeoutError
            When a value cannot be fetched within :func:`~daskml_lab._runtime.client.cluster_timeout_s`.
        """
        workers = list(workers)
        self.wait(futures, workers, what=what)
        self.check(workers, max_age_s=0.0, during=f"holding {what}")
        timeout_s = cluster_timeout_s()
        values = []
        for future in futures:
            try:
                values.append(future.result(timeout=timeout_s))
            except TimeoutError as err:
                self.check(workers, max_age_s=0.0, during=f"holding {what}")  # lost with its worker: retry
                awaited = f"the result {future.key!r}"
                raise timeout_error(awaited, self.client, timeout_s) from err
        return values


def require_a_worker(client: Any, *, grace_s: float, doing: str, health: ClusterHealth | None = None) -> None:
    """Return once the cluster has a worker; :class:`~daskml_lab.exceptions.NoWorkersLeftError` if none joins.

    A nanny restarts a lost worker within seconds, so work that lost its last worker waits ``grace_s`` seconds
    before it gives up (:meth:`ClusterHealth.check <daskml_lab._runtime.cluster_health.ClusterHealth.check>`,
    which also raises :class:`~daskml_lab.exceptions.SchedulerLostError` when the scheduler has gone).
    """
    health = ClusterHealth(client) if health is None else health
    health.check(doing=f"waiting for a worker to {doing}", grace_s=grace_s)
