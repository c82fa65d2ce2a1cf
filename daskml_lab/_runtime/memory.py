"""The memory plan: whether a fit keeps its blocks in (worker) memory or streams them from their source.

Solvers read the data at every iteration and shard ensembles read each shard once; both would rather hold the
blocks in memory, and both must not when the data do not fit. :func:`plan_memory` is the one rule that decides,
for both, from explicit inputs (the dense size of the data, what the workers can hold, the user's setting), and
writes the one log message that says what was decided and why. :func:`measure_workers` is the only place that
asks the cluster how much memory its workers have and use.

``"auto"`` keeps the blocks when their dense size is at most ``fraction`` (``dask.config`` key
``daskml_lab.memory.persist_fraction``, 0.5 by default) of the free memory: summed over the workers, the part of
each ``memory_limit`` below dask's ``distributed.worker.memory.spill`` fraction that the worker process does not
use yet (without workers, or with workers without a limit: this machine's available memory). Sparse data are
always kept (their dense size says nothing). ``True`` keeps them whatever the size, unless that exceeds what the
workers can hold below their ``terminate`` fraction (the nanny would kill them): that is refused before anything
runs. ``False`` always streams.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import psutil

__all__ = [
    "MemoryPlan",
    "WorkerMemory",
    "block_room",
    "dense_nbytes",
    "free_memory",
    "measure_workers",
    "plan_memory",
    "resolve_persist",
]

#: ``dask.config`` key of the share of the free memory that ``"auto"`` lets persisted blocks take.
FRACTION_KEY = "daskml_lab.memory.persist_fraction"
DEFAULT_FRACTION = 0.5


@dataclass(frozen=True)
class WorkerMemory:
    """A worker's ``memory_limit`` and the memory its process uses, in bytes.

    The memory in use is the worker process's at its last heartbeat: a worker holds a few hundred MB of
    libraries before it holds any data, so its limit alone overstates the room for blocks.
    """

    limit: float
    used: float = 0.0


@dataclass(frozen=True)
class MemoryPlan:
    """What :func:`plan_memory` decided.

    Attributes
    ----------
    persist : bool
        Keep the blocks in memory for the whole fit (``True``) or read them from their source where they are
        needed (``False``).
    reason : str
        Why, in words (also in the log message).
    nbytes : float
        Dense size of the data, in bytes.
    room : float
        The free memory the decision compared with (``nan`` when the setting decided alone).
    """

    persist: bool
    reason: str
    nbytes: float
    room: float = float("nan")


def measure_workers(client: Any) -> tuple[WorkerMemory, ...]:
    """The memory of every worker of ``client``'s cluster; empty without a client or when a worker has no limit.

    Parameters
    ----------
    client : distributed.Client or None

    Returns
    -------
    tuple of WorkerMemory
    """
    if client is None:
        return ()
    workers = []
    for info in client.scheduler_info().get("workers", {}).values():
        limit = float(info.get("memory_limit", 0) or 0)
        if limit <= 0:
            return ()  # a worker without a limit: nothing to bound
        used = float((info.get("metrics") or {}).get("memory", 0) or 0)
        workers.append(WorkerMemory(limit, used))
    return tuple(workers)


def free_memory(workers: Sequence[WorkerMemory], threshold: str, *, available: float | None = None) -> float:
    """Bytes below the workers' ``distributed.worker.memory.<threshold>`` fraction not in use yet, summed.

    Parameters
    ----------
    workers : sequence of WorkerMemory
        Empty means no cluster (or workers without limits): ``available`` is returned.
    threshold : {"spill", "terminate"}
        ``"spill"`` (0.7 by default): above it, dask moves persisted blocks to disk, which defeats persisting;
        ``"terminate"`` (0.95): above it, the nanny kills the worker.
    available : float or None, default=None
        Free memory without workers; ``None`` asks this machine (``psutil``).

    Examples
    --------
    >>> import dask
    >>> with dask.config.set({"distributed.worker.memory.spill": 0.5}):
    ...     free_memory([WorkerMemory(1000, 100), WorkerMemory(1000, 600)], "spill")
    400.0
    """
    if not workers:
        return float(psutil.virtual_memory().available) if available is None else float(available)
    fraction = dask.config.get(f"distributed.worker.memory.{threshold}", None)
    fraction = float(fraction) if fraction else 1.0  # False disables the threshold: the limit itself
    return float(sum(max(fraction * w.limit - w.used, 0.0) for w in workers))


def block_room(workers: Sequence[WorkerMemory]) -> float:
    """The most free memory of any one worker (below its ``terminate`` fraction): the largest block it can hold."""
    return max((free_memory([worker], "terminate") for worker in workers), default=float("inf"))


def dense_nbytes(X: Any, *vectors: Any) -> float:
    """Dense size in bytes of ``X`` (2-D) and of the 1-D ``vectors`` (``None`` entries skipped)."""
    total = float(np.prod(X.shape)) * np.dtype(X.dtype).itemsize
    for vector in vectors:
        if vector is not None:
            total += float(vector.shape[0]) * np.dtype(vector.dtype).itemsize
    return total


def resolve_persist(persist: Any, config_key: str) -> bool | str:
    """The persist setting: ``persist`` itself, or ``dask.config`` key ``config_key`` when it is ``None``.

    Raises
    ------
    ValueError
        If the setting is not ``"auto"``, True or False (the message names where it came from).

    Examples
    --------
    >>> resolve_persist(None, "daskml_lab.solvers.persist")
    'auto'
    """
    from_config = persist is None
    if from_config:
        persist = dask.config.get(config_key, "auto")
    if persist is True or persist is False or (isinstance(persist, str) and persist == "auto"):
        return persist
    where = f"dask.config key {config_key!r}" if from_config else "persist"
    msg = f"{where} must be 'auto', True or False, got {persist!r}."
    raise ValueError(msg)


def plan_memory(
    *,
    nbytes: float,
    sparse: bool,
    persist: bool | str,
    config_key: str,
    workers: Sequence[WorkerMemory],
    subject: str,
    streaming: str,
    logger: logging.Logger,
    fraction: float | None = None,
    available: float | None = None,
) -> MemoryPlan:
    """Decide whether a fit keeps its blocks in memory, log the decision, refuse what would kill workers.

    Parameters
    ----------
    nbytes : float
        Dense size in bytes of everything the fit would keep (see :func:`dense_nbytes`).
    sparse : bool
        Whether ``X`` has sparse blocks (kept under ``"auto"``; the worker checks apply to dense data).
    persist : {"auto", True, False}
        The setting (see :func:`resolve_persist`).
    config_key : str
        The ``dask.config`` key of the setting, named in messages.
    workers : sequence of WorkerMemory
        The workers' memory (:func:`measure_workers`); empty without a cluster or without limits.
    subject : str
        What would be kept, for the log message ("the data", "the shards").
    streaming : str
        What the fit does instead of keeping them, for the log message.
    logger : logging.Logger
        The caller's logger: the message is logged under the name of the module that reads the data.
    fraction : float or None, default=None
        Share of the free memory ``"auto"`` lets the blocks take; ``None`` reads ``dask.config`` key
        ``daskml_lab.memory.persist_fraction`` (0.5).
    available : float or None, default=None
        Free memory without workers; ``None`` asks this machine.

    Returns
    -------
    MemoryPlan

    Raises
    ------
    ValueError
        When ``persist=True`` and the dense data exceed what the workers can hold below their ``terminate``
        fraction (persisting would get them killed by their nanny).

    Examples
    --------
    >>> import logging
    >>> plan = plan_memory(nbytes=8e9, sparse=False, persist="auto", config_key="daskml_lab.solvers.persist",
    ...                    workers=[WorkerMemory(4e9, 0.0)] * 2, subject="the data",
    ...                    streaming="streaming the blocks", logger=logging.getLogger("doctest"))
    >>> plan.persist, plan.reason
    (False, "more than 0.5 of the workers' free memory (5.60 GB)")
    """
    if fraction is None:
        fraction = float(dask.config.get(FRACTION_KEY, DEFAULT_FRACTION))
    where = "the workers'" if workers else "this machine's"
    if persist is True or persist is False:
        if persist and workers and not sparse:
            _refuse_forced_persist(nbytes, workers, config_key)
        reason = f"persist={persist} set explicitly (dask.config {config_key!r} or the persist argument)"
        plan = MemoryPlan(bool(persist), reason, nbytes)
    elif sparse:
        plan = MemoryPlan(True, "sparse blocks are always kept", nbytes)
    else:
        room = free_memory(workers, "spill", available=available)
        keep = nbytes <= fraction * room
        relation = "at most" if keep else "more than"
        plan = MemoryPlan(
            keep, f"{relation} {fraction:g} of {where} free memory ({room / 1e9:.2f} GB)", nbytes, room
        )
    if plan.persist:
        logger.debug("Persisting %s (%.2f GB dense): %s.", subject, nbytes / 1e9, plan.reason)
    elif persist is False:
        logger.info("Not persisting %s (%.2f GB dense): %s.", subject, nbytes / 1e9, plan.reason)
    else:
        logger.info(
            "Not persisting %s (%.2f GB dense; %s): %s. Set dask.config %r to True to persist anyway.",
            subject,
            nbytes / 1e9,
            plan.reason,
            streaming,
            config_key,
        )
    return plan


def _refuse_forced_persist(nbytes: float, workers: Sequence[WorkerMemory], config_key: str) -> None:
    room = free_memory(workers, "terminate")
    if nbytes > room:
        msg = (
            f"dask.config {config_key}=True, but the data ({nbytes / 1e9:.2f} GB dense) exceed the free memory of "
            f"the {len(workers)} workers ({room / 1e9:.2f} GB below their memory_limit): persisting them would get "
            f"the workers killed. Set {config_key} to 'auto' or False to read the blocks from their source "
            "instead, or add workers or memory."
        )
        raise ValueError(msg)
