"""Which distributed client a computation runs on, where a task runs, and how long a cluster wait may last."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import dask
from distributed import Client, get_worker, worker_client

__all__ = ["cluster_timeout_s", "current_client", "pinned_to", "seceded_in_task", "worker_address"]

#: Whether the fit running in this thread already left the worker's thread pool, so that the nested calls of
#: one fit (``fit`` calling ``score``) secede once. Per thread, not a context variable: distributed runs the
#: worker's reaction to a secession (and through it the start of the next task) in the context of the thread
#: that seceded, so a context variable set here leaked into the tasks started next on the worker, which then
#: skipped seceding, held the worker's only thread and deadlocked (five concurrent fits on 1-thread workers).
_SECEDED = threading.local()

#: ``dask.config`` key of the longest wait for a cluster operation that should not take long.
TIMEOUT_KEY = "daskml_lab.solvers.timeout_s"


def current_client() -> Any:
    """The distributed client ``dask.compute`` uses now, or ``None`` when a local scheduler is in use.

    This is the one rule, shared by solvers, ensembles, predictions, progress bars and training events.

    Returns
    -------
    distributed.Client or None
        ``None`` when ``dask.config`` names a local scheduler (``"sync"``, ``"threads"``, a counting
        scheduler, ...) or no default client exists.

    Examples
    --------
    >>> import dask
    >>> with dask.config.set(scheduler="sync"):
    ...     current_client() is None
    True
    """
    if _local_scheduler():
        return None
    try:
        # the client made current by ``Client.as_current`` (as :func:`seceded_in_task` does), else the default
        return Client.current()
    except ValueError:
        return None


def _local_scheduler() -> bool:
    scheduler = dask.config.get("scheduler", None)
    return scheduler is not None and scheduler not in ("dask.distributed", "distributed")


@contextlib.contextmanager
def seceded_in_task() -> Iterator[None]:
    """Let a fit (or a computing method) called inside a dask task use the cluster without deadlocking.

    A task that computes on the cluster waits for tasks that need a worker thread; on workers with one thread
    (the recommended setting) the waiting task holds the only one, and ``client.submit(model.fit, ...)``, the
    joblib dask backend or a dask-ml search around our estimators hang for ever. Inside a task this context
    leaves the worker's thread pool (:func:`distributed.secede`, through :func:`distributed.worker_client`),
    makes the worker's client the current one, so that the fit schedules its tasks on the cluster as from the
    client, and rejoins the pool when the block ends (:func:`distributed.rejoin`, which waits for a free
    thread). Outside a task, under a local scheduler, or when the block is nested in another, it does nothing.

    Yields
    ------
    None
    """
    if getattr(_SECEDED, "active", False) or _local_scheduler() or worker_address() is None:
        yield
        return
    _SECEDED.active = True
    try:
        with worker_client() as client, client.as_current():
            yield
    finally:
        _SECEDED.active = False


def cluster_timeout_s() -> float:
    """Longest wait, in seconds, for a cluster operation that should not take long.

    Blocks to be held in memory, a small result to fetch, a worker to answer: ``dask.config`` key
    ``daskml_lab.solvers.timeout_s`` (600 seconds by default), shared by the solvers and the ensembles. A shard
    fit itself may take any time: it is watched for lost workers, not bounded by this timeout.

    Examples
    --------
    >>> import dask
    >>> with dask.config.set({"daskml_lab.solvers.timeout_s": 30}):
    ...     cluster_timeout_s()
    30.0
    """
    return float(dask.config.get(TIMEOUT_KEY, 600))


def worker_address() -> str | None:
    """Address of the dask worker running the current task, or ``None`` under a local scheduler."""
    try:
        return str(get_worker().address)
    except ValueError:
        return None


def pinned_to(worker: str | None) -> Any:
    """Annotation context pinning the tasks created inside it to ``worker`` (nothing for ``None``).

    Pinned tasks never move to another worker (``allow_other_workers=False``): neither the scheduler's
    placement heuristics nor work stealing can take a shard's rows elsewhere. Compute such graphs with
    :func:`daskml_lab._runtime.watch.gather_watching`, since a pinned task waits for ever for a dead worker.
    """
    if worker is None:
        return contextlib.nullcontext()
    return dask.annotate(workers=[worker], allow_other_workers=False)
