"""Which distributed client a computation runs on, where a task runs, and how long a cluster wait may last."""

from __future__ import annotations

import contextlib
from typing import Any

import dask
from distributed import default_client, get_worker

__all__ = ["cluster_timeout_s", "current_client", "pinned_to", "worker_address"]

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
    scheduler = dask.config.get("scheduler", None)
    if scheduler is not None and scheduler not in ("dask.distributed", "distributed"):
        return None
    try:
        return default_client()
    except ValueError:
        return None


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
