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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import psutil

logger = logging.getLogger(__name__)

__all__ = [
    "MemoryPlan",
    "WorkerMemory",
    "block_room",
    "check_client_data",
    "dense_nbytes",
    "free_memory",
    "measure_workers",
    "plan_memory",
    "plan_prediction",
    "resolve_persist",
    "worker_room",
]

#: ``dask.config`` key of the share of the free memory that ``"auto"`` lets persisted blocks take.
FRACTION_KEY = "daskml_lab.memory.persist_fraction"
DEFAULT_FRACTION = 0.5
#: ``dask.config`` key of the dense size (bytes) of in-memory input predicted in this process, not on the cluster.
CLIENT_PREDICT_KEY = "daskml_lab.memory.client_predict_bytes"
DEFAULT_CLIENT_PREDICT_BYTES = 16e6
#: A model is "large" for the workers above this share of the smallest worker's free memory.
MODEL_SHARE = 0.25
#: A model arriving on a worker is held twice while it is deserialised (the frames and the object).
MODEL_COPIES = 2


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
    for info in _worker_identities(client):
        limit = float(info.get("memory_limit", 0) or 0)
        if limit <= 0:
            return ()  # a worker without a limit: nothing to bound
        used = float((info.get("metrics") or {}).get("memory", 0) or 0)
        workers.append(WorkerMemory(limit, used))
    return tuple(workers)


def _worker_identities(client: Any, attempts: int = 5) -> list[dict[str, Any]]:
    """Every worker's entry of ``client.scheduler_info()``, asked again while the answer lists fewer than all.

    When the scheduler does not answer in time (a loaded machine), ``scheduler_info`` returns the client's
    cached identity, which lists no worker (only their number): planning on it would bound nothing.
    """
    for attempt in range(attempts):
        info = client.scheduler_info()
        listed = list((info.get("workers") or {}).values())
        if len(listed) >= int(info.get("n_workers", len(listed)) or 0):
            return listed
        time.sleep(0.2 * (attempt + 1))
    logger.warning(
        "The scheduler listed %d of its %s workers after %d attempts: the memory plan sees only those.",
        len(listed),
        info.get("n_workers"),
        attempts,
    )
    return listed


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


def worker_room(workers: Sequence[WorkerMemory], threshold: str = "terminate") -> float:
    """The free memory of the smallest worker below its ``threshold`` fraction: what every worker can hold.

    What goes to every worker (a model broadcast for prediction) or to any worker the scheduler picks (a merge
    of the Cascade SVM) must fit this one. ``inf`` without workers.
    """
    return min((free_memory([worker], threshold) for worker in workers), default=float("inf"))


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


def check_client_data(nbytes: float, workers: Sequence[WorkerMemory], *, address: str = "?") -> None:
    """Refuse data in this process's memory that the workers cannot hold, before any of it is sent.

    In-memory input (numpy, pandas, scipy.sparse) enters the task graph: every computation sends it from
    this process to the workers, and the workers must hold it, since they cannot read it from anywhere else
    (streaming would send all of it again at every pass). When its dense size exceeds the free memory of all
    the workers together below their ``terminate`` fraction, the workers are killed by their nanny again and
    again and the wait ends in a timeout; this check says so at once.

    Parameters
    ----------
    nbytes : float
        Dense size of the in-memory arrays (:func:`dense_nbytes`).
    workers : sequence of WorkerMemory
        The workers' memory (:func:`measure_workers`); empty means nothing to check.
    address : str, default="?"
        The scheduler's address, for the message.

    Raises
    ------
    ValueError
        When ``nbytes`` exceeds the workers' free memory; the message gives both sizes and the fixes.

    Examples
    --------
    >>> check_client_data(1e9, [WorkerMemory(4e9)] * 2)  # fits: nothing happens
    >>> check_client_data(9e9, [WorkerMemory(4e9)] * 2)
    Traceback (most recent call last):
    ...
    ValueError: The data (9.00 GB dense) are in this process's memory ...
    """
    if not workers:
        return
    room = free_memory(workers, "terminate")
    if nbytes <= room:
        return
    limits = sum(w.limit for w in workers)
    msg = (
        f"The data ({nbytes / 1e9:.2f} GB dense) are in this process's memory (numpy, pandas or scipy "
        f"input): fitting on the cluster at {address} would send all of them to its {len(workers)} workers, "
        f"which have {room / 1e9:.2f} GB free below their memory_limit ({limits / 1e9:.2f} GB in all), and "
        "the workers would be killed by their nanny until the fit times out. Read the data from files with "
        "daskml_lab.data (read_zarr, read_parquet, read_csv, ...) or build them with dask, so that the "
        "workers read the row blocks as they need them; or add workers or memory."
    )
    raise ValueError(msg)


def plan_prediction(
    *,
    model_nbytes: float,
    X_nbytes: float,
    in_client: bool,
    workers: Sequence[WorkerMemory],
    client_bytes: float | None = None,
    what: str = "The fitted model",
) -> str:
    """Where a prediction runs: ``"client"`` (this process) or ``"cluster"`` (one task per row block).

    A prediction on the cluster sends the fitted model to every worker (see
    :mod:`daskml_lab.ensemble`), where it is held twice while it is deserialised. In-memory input (numpy,
    pandas, scipy.sparse) is predicted in this process, where the model and the rows already are, when the
    input is small (at most ``client_bytes``, ``dask.config`` key ``daskml_lab.memory.client_predict_bytes``,
    16 MB by default: the cluster round trip gains nothing), when the model is large for the workers (more
    than a quarter of the smallest worker's free memory), or when the rows would not fit in the workers'
    free memory. Dask input stays lazy and runs on the cluster: a model the smallest worker cannot hold is
    refused before any task runs.

    Parameters
    ----------
    model_nbytes : float
        Serialised size of the model, in bytes.
    X_nbytes : float
        Dense size of the input, in bytes.
    in_client : bool
        Whether the input is in this process's memory (numpy, pandas, scipy.sparse), whose result is
        computed at once.
    workers : sequence of WorkerMemory
        The workers' memory (:func:`measure_workers`); empty: nothing to bound, the cluster is used.
    client_bytes : float or None, default=None
        The "small input" size; ``None`` reads ``dask.config``.
    what : str, default="The fitted model"
        The model, for the message.

    Returns
    -------
    {"client", "cluster"}

    Raises
    ------
    ValueError
        For dask input, when the smallest worker cannot hold the model twice below its ``terminate``
        fraction (the broadcast would get every worker killed by its nanny).

    Examples
    --------
    >>> workers = [WorkerMemory(400e6, 250e6)] * 2
    >>> plan_prediction(model_nbytes=50e6, X_nbytes=1e9, in_client=True, workers=workers)
    'client'
    >>> plan_prediction(model_nbytes=1e6, X_nbytes=100e6, in_client=True, workers=workers)
    'cluster'
    """
    if not workers:
        return "cluster"
    if client_bytes is None:
        client_bytes = float(dask.config.get(CLIENT_PREDICT_KEY, DEFAULT_CLIENT_PREDICT_BYTES))
    room = worker_room(workers)
    if in_client:
        rows_fit = X_nbytes + len(workers) * MODEL_COPIES * model_nbytes <= free_memory(workers, "terminate")
        if X_nbytes <= client_bytes or model_nbytes > MODEL_SHARE * room or not rows_fit:
            return "client"
        return "cluster"
    if MODEL_COPIES * model_nbytes > room:
        smallest = min(workers, key=lambda w: free_memory([w], "terminate"))
        msg = (
            f"{what} ({model_nbytes / 1e6:.0f} MB serialised) is sent to every worker to predict, and needs "
            f"about {MODEL_COPIES * model_nbytes / 1e6:.0f} MB there while it is loaded, but the smallest "
            f"worker has {room / 1e6:.0f} MB free below its memory_limit ({smallest.limit / 1e6:.0f} MB): the "
            "workers would be killed by their nanny. Predict in this process by passing in-memory input "
            "(X.compute() in parts, or numpy), use workers with more memory, or fit a smaller model (fewer or "
            "shallower trees, fewer shards)."
        )
        raise ValueError(msg)
    return "cluster"
