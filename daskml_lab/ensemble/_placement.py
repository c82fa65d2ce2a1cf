"""Whether the shard blocks of an ensemble fit are persisted on the workers or read from their source.

A shard model needs its whole shard in one worker's memory, but nothing needs all the shards in memory at
once: data larger than the workers' memory are fitted by letting every ``daskml-shard-fit`` task read its own
block from storage (zarr, parquet, ...), so that worker memory stays bounded by a few shards whatever the size
of the data. :func:`place_shards_for_fit` makes that choice (``dask.config`` key
``daskml_lab.ensemble.persist``: ``"auto"``, ``True`` or ``False``) and refuses, before anything is computed,
what would get workers killed by their nanny.

**Locality.** On a distributed cluster, :func:`place_shards` persists the shard blocks once and asks the
scheduler which worker holds each block (matched by key); :func:`build_shard_fit_graph` then pins every
shard's tasks to that worker (``dask.annotate(workers=[...], allow_other_workers=False)``), so that neither
the scheduler's placement heuristics nor work stealing can move a shard's rows to another worker. Without a
distributed client (local schedulers) the blocks are used as they are.

**Lost workers.** A task pinned to a worker that dies would wait for that worker for ever (a restarted worker
has a new address). :func:`compute_pinned` therefore computes the pinned graph while watching the workers it
is pinned to: when one leaves, it cancels the computation, waits for the scheduler to recompute the lost
blocks from their lineage, pins the shards to their new holders and computes a fresh graph (every task is
pure and seeded, so the result is the one an undisturbed fit gives).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

from daskml_lab._compat import unique_fused_keys
from daskml_lab.cluster._current import current_client
from daskml_lab.solvers import _problem

__all__ = [
    "PlacedShards",
    "cluster_timeout_s",
    "compute_pinned",
    "current_client",
    "place_shards",
    "place_shards_for_fit",
]

logger = logging.getLogger(__name__)

#: ``dask.config`` key of the override.
CONFIG_KEY = "daskml_lab.ensemble.persist"

#: Persist the shards for pinned fits only when their dense size is at most this share of the workers' memory.
PERSIST_MEMORY_FRACTION = 0.5

#: Seconds between two checks, while pinned shard tasks run, that the workers they are pinned to are alive.
WATCH_INTERVAL_S = 0.5
#: Computations of a pinned graph (the first one and the retries after lost workers) before giving up.
MAX_PINNED_ATTEMPTS = 4
#: Seconds a computation that lost its last worker waits for a worker to join (a nanny restarts its worker
#: within seconds) before it fails.
NO_WORKER_GRACE_S = 10.0


@dataclass(frozen=True)
class PlacedShards:
    """The row blocks of every shard, and the worker each shard is fitted on.

    Attributes
    ----------
    X_blocks, y_blocks : list of dask.delayed.Delayed
        One delayed block per shard.
    sw_blocks : list of dask.delayed.Delayed or None
        Sample-weight blocks.
    workers : list of str or None
        Address of the worker holding shard ``i`` (its tasks are pinned there), or ``None`` for every shard
        when no distributed client is in use or the blocks were not persisted.
    futures : list of distributed.Future
        The persisted blocks. The delayed blocks name their keys but do not hold them: keep this object
        until the fits have been computed, then drop it to free the workers' memory.
    rows : tuple of int
        Rows of every shard (balances the shards between the holders of replicated blocks).
    """

    X_blocks: list[Any]
    y_blocks: list[Any]
    sw_blocks: list[Any] | None
    workers: list[str | None] | None
    futures: list[Any] = field(default_factory=list)
    rows: tuple[int, ...] = ()


def cluster_timeout_s() -> float:
    """Longest wait for a cluster operation that should not take long (blocks in memory, a result to fetch).

    The solvers' setting, ``dask.config`` key ``daskml_lab.solvers.timeout_s`` (600 seconds by default), is
    shared by the ensembles. A shard fit itself may take any time: it is not bounded by this timeout, only
    watched for lost workers (see :func:`compute_pinned`).
    """
    return float(dask.config.get("daskml_lab.solvers.timeout_s", 600))


def _unplaced(X: da.Array, y: da.Array, sample_weight: da.Array | None) -> PlacedShards:
    """The blocks as they are; the scheduler places the fits."""
    sw_blocks = None if sample_weight is None else list(sample_weight.to_delayed().ravel())
    return PlacedShards(list(X.to_delayed().ravel()), list(y.to_delayed().ravel()), sw_blocks, None)


def place_shards(
    X: da.Array, y: da.Array, sample_weight: da.Array | None, client: Any = None
) -> PlacedShards:
    """Persist the shard blocks on the cluster once and find the worker holding each (by key).

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        The sharded features, one row block per shard.
    y : dask.array.Array of shape (n_samples,)
        Targets with the row chunks of ``X``.
    sample_weight : dask.array.Array of shape (n_samples,) or None
        Weights with the row chunks of ``X``.
    client : distributed.Client, default=None
        The client; ``None`` uses :func:`current_client`.

    Returns
    -------
    PlacedShards
        Without a distributed client, or when the dense size of ``X`` exceeds ``PERSIST_MEMORY_FRACTION`` of
        the workers' memory, the blocks as they are and ``workers=None`` (the scheduler places the fits).
        Otherwise the persisted blocks and, per shard, a worker holding its ``X`` block, preferring one that
        also holds its ``y`` (and weight) block; among several such workers (replicated blocks), the one with
        the fewest rows assigned so far. Sparse ``X`` is always persisted. The fits follow the data: blocks
        persisted unevenly give some workers more fits than others.

    Raises
    ------
    ValueError
        What computing a block raised (for example the finiteness check of the data layer).
    TimeoutError
        If the blocks are not in memory within :func:`cluster_timeout_s`.
    RuntimeError
        If blocks were lost with a worker and cannot be computed again (no lineage).
    """
    client = current_client() if client is None else client
    if client is None:
        return _unplaced(X, y, sample_weight)
    from distributed import futures_of

    memory = sum(w.get("memory_limit", 0) or 0 for w in client.scheduler_info()["workers"].values())
    dense_nbytes = float(np.prod(X.shape)) * X.dtype.itemsize
    if memory and not sp.issparse(X._meta) and dense_nbytes > PERSIST_MEMORY_FRACTION * memory:
        logger.info(
            "The shards (%.1f GB dense) exceed %d%% of the workers' memory (%.1f GB): not persisting them; "
            "each shard is fitted where the scheduler computes its block.",
            dense_nbytes / 1e9,
            int(100 * PERSIST_MEMORY_FRACTION),
            memory / 1e9,
        )
        return _unplaced(X, y, sample_weight)
    collections = [X, y] if sample_weight is None else [X, y, sample_weight]
    # persist: the shard blocks, once, so that the scheduler can tell where each lives (data-sized, kept on
    # the workers for the duration of the fit; blocks already in memory are only referenced again)
    with unique_fused_keys():
        persisted = client.persist(collections)
    blocks = [list(c.to_delayed().ravel()) for c in persisted]
    placed = PlacedShards(
        blocks[0],
        blocks[1],
        blocks[2] if len(blocks) == 3 else None,
        None,
        futures_of(persisted),
        tuple(int(size) for size in X.chunks[0]),
    )
    return _locate(placed, client)


def _wait_for_blocks(futures: list[Any], client: Any) -> None:
    """Wait (at most :func:`cluster_timeout_s`) until the persisted blocks are in memory; raise their errors."""
    from distributed import CancelledError, wait

    timeout_s = cluster_timeout_s()
    try:
        wait(futures, timeout=timeout_s)
    except TimeoutError as err:
        msg = (
            f"Timed out after {timeout_s:g} s waiting for the shard blocks to be computed and held in memory on "
            f"the cluster at {client.scheduler.address}. Check that the workers are alive and have memory for "
            "the data, or raise the timeout (dask.config daskml_lab.solvers.timeout_s)."
        )
        raise TimeoutError(msg) from err
    except CancelledError as err:
        # The scheduler forgets data lost with a worker when it cannot compute them again.
        msg = (
            "Shard blocks were lost with a worker and cannot be computed again (they have no lineage: scattered "
            "data, or data persisted by a client that has gone). Load the input from its source (files or a "
            f"lazy graph) rather than scattering it, or keep a copy on another worker (client.replicate). "
            f"Details: {err}"
        )
        raise RuntimeError(msg) from err
    for future in futures:
        if future.status == "error":
            future.result()  # raises the task's own exception (e.g. NaN found by the finiteness check)


def _locate(placed: PlacedShards, client: Any) -> PlacedShards:
    """``placed`` with, per shard, a worker holding its blocks now (after waiting for them to be in memory)."""
    _wait_for_blocks(placed.futures, client)
    who_has = client.who_has(placed.futures)
    blocks = [placed.X_blocks, placed.y_blocks] + ([placed.sw_blocks] if placed.sw_blocks is not None else [])
    workers: list[str | None] = []
    rows_per_worker: Counter[str] = Counter()
    for index, X_block in enumerate(blocks[0]):
        x_holders = sorted(who_has.get(X_block.key, ()))
        others = [set(who_has.get(b[index].key, ())) for b in blocks[1:]]
        candidates = [w for w in x_holders if all(w in o for o in others)] or x_holders
        if not candidates:
            workers.append(None)
            continue
        # A block held by several workers (replicas) goes to the one with the fewest rows to fit so far.
        chosen = min(candidates, key=lambda w: (rows_per_worker[w], w))
        rows_per_worker[chosen] += placed.rows[index] if placed.rows else 1
        workers.append(chosen)
    logger.debug("shard fits pinned to the workers holding their blocks: %s", dict(Counter(workers)))
    return dataclasses.replace(placed, workers=workers)


class _PinnedWorkerLost(Exception):
    """A worker that shard tasks are pinned to has left the cluster."""


def compute_pinned(
    build: Callable[[list[str | None] | None, str], tuple[Any, ...]],
    placed: PlacedShards,
    *,
    client: Any = None,
) -> tuple[Any, ...]:
    """Compute the graph of pinned shard tasks that ``build`` makes, surviving the loss of workers.

    A task pinned to a worker (``allow_other_workers=False``) waits for ever once that worker has died: the
    scheduler never runs it elsewhere, and a worker restarted by its nanny has a new address. So the
    computation is watched: every :data:`WATCH_INTERVAL_S` seconds the workers the shards are pinned to are
    compared with the scheduler's; when one has left, the computation is cancelled, the lost blocks are
    recomputed from their lineage by the scheduler, the shards are pinned to their new holders and a fresh
    graph is computed (:data:`MAX_PINNED_ATTEMPTS` times at most). The tasks are pure and seeded, so a
    recomputed result equals the undisturbed one.

    Parameters
    ----------
    build : callable
        ``build(workers, suffix)`` returns a tuple whose items are delayed objects or lists of them, with
        the shards' tasks pinned to ``workers`` (one address or None per shard, or None) and ``suffix``
        appended to the token of every key (keys of a cancelled attempt are never reused).
    placed : PlacedShards
        From :func:`place_shards`.
    client : distributed.Client, default=None
        ``None`` uses :func:`current_client`.

    Returns
    -------
    tuple
        The computed items, in the structure ``build`` returned.

    Raises
    ------
    RuntimeError
        When workers keep leaving (:data:`MAX_PINNED_ATTEMPTS` attempts), or when a block was lost and
        cannot be computed again.
    TimeoutError
        When the blocks or a result do not arrive within :func:`cluster_timeout_s`.
    """
    client = current_client() if client is None else client
    if client is None or placed.workers is None:
        # compute: what the caller's graph brings back (the caller states its size); unpinned tasks are
        # rescheduled by the scheduler itself when a worker dies
        with unique_fused_keys():
            return tuple(dask.compute(*build(placed.workers, "")))
    for attempt in range(MAX_PINNED_ATTEMPTS):
        parts = build(placed.workers, "" if attempt == 0 else f"-retry{attempt}")
        flat = [item for part in parts for item in (part if isinstance(part, list | tuple) else [part])]
        # compute: what the caller's graph brings back (the caller states its size)
        with unique_fused_keys():
            futures = client.compute(flat)
        try:
            values = _gather_watching(client, futures, placed.workers)
        except _PinnedWorkerLost as err:
            # Released rather than cancelled: the scheduler then forgets the tasks pinned to the dead worker.
            # (client.cancel of futures that depend on each other can trip an assertion in the scheduler and
            # close the client's connection, distributed 2026.8.)
            for future in futures:
                future.release()
            del futures
            if attempt + 1 == MAX_PINNED_ATTEMPTS:
                msg = (
                    f"Workers holding shards left the cluster at {client.scheduler.address} during "
                    f"{MAX_PINNED_ATTEMPTS} attempts in a row of the shard computation (last: {err}); giving "
                    "up. Check the workers' logs (memory limits, crashes) and fit again."
                )
                raise RuntimeError(msg) from err
            logger.warning(
                "shard computation: %s; recomputing the lost blocks and pinning the shards anew", err
            )
            _require_a_worker(client)
            placed = _locate(placed, client)
            continue
        out: list[Any] = []
        position = 0
        for part in parts:
            if isinstance(part, list | tuple):
                out.append(values[position : position + len(part)])
                position += len(part)
            else:
                out.append(values[position])
                position += 1
        return tuple(out)
    msg = "unreachable"  # pragma: no cover
    raise AssertionError(msg)  # pragma: no cover


def _require_a_worker(client: Any) -> None:
    """Return once the cluster has a worker; ``RuntimeError`` if none joins within :data:`NO_WORKER_GRACE_S`."""
    if client.scheduler_info()["workers"]:
        return
    try:
        client.wait_for_workers(1, timeout=NO_WORKER_GRACE_S)
    except TimeoutError as err:
        msg = (
            f"No worker is left in the cluster at {client.scheduler.address} to fit the shards (none joined "
            f"within {NO_WORKER_GRACE_S:g} s after the last one was lost). Start workers and fit again."
        )
        raise RuntimeError(msg) from err


def _gather_watching(client: Any, futures: list[Any], workers: Sequence[str | None]) -> list[Any]:
    """The futures' values; raises :class:`_PinnedWorkerLost` as soon as a worker in ``workers`` has left."""
    from distributed import CancelledError, wait

    pinned = {w for w in workers if w is not None}

    def check() -> None:
        gone = pinned - set(client.scheduler_info()["workers"])
        if gone:
            msg = f"worker(s) {sorted(gone)} left the cluster"
            raise _PinnedWorkerLost(msg)

    while True:
        try:
            wait(futures, timeout=WATCH_INTERVAL_S)
            break
        except TimeoutError:
            check()
        except CancelledError:
            # The scheduler cancels tasks whose inputs were lost for good: after a lost worker, retrying
            # tells whether the blocks can be computed again (and says so clearly when they cannot).
            check()
            raise
    # Every future is done: errors are the tasks' own (the first one is raised, as dask.compute does).
    for future in futures:
        if future.status == "error":
            future.result()
    check()  # a value held by a worker that has just died would otherwise be waited for (see below)
    timeout_s = cluster_timeout_s()
    values = []
    for future in futures:
        try:
            values.append(future.result(timeout=timeout_s))
        except TimeoutError as err:
            check()  # the value was lost with its worker: retry
            msg = (
                f"Timed out after {timeout_s:g} s fetching the result {future.key!r} from the cluster at "
                f"{client.scheduler.address}. Check the workers, or raise the timeout (dask.config "
                "daskml_lab.solvers.timeout_s)."
            )
            raise TimeoutError(msg) from err
    return values


def _pinned(worker: str | None) -> Any:
    """Annotation context pinning the tasks created inside it to ``worker`` (nothing for ``None``)."""
    if worker is None:
        return contextlib.nullcontext()
    return dask.annotate(workers=[worker], allow_other_workers=False)


def _worker_address() -> str | None:
    """Address of the dask worker running the current task, or ``None`` under a local scheduler."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------------
# kernels (run on the workers)


def place_shards_for_fit(X: da.Array, y: da.Array, sample_weight: da.Array | None) -> PlacedShards:
    """Persist and pin the shard blocks when they fit in the workers' memory, else leave them at the source.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        The sharded features, one row block per shard.
    y : dask.array.Array of shape (n_samples,)
        Targets with the row chunks of ``X``.
    sample_weight : dask.array.Array of shape (n_samples,) or None
        Weights with the row chunks of ``X``.

    Returns
    -------
    PlacedShards
        From :func:`~daskml_lab.ensemble._placement.place_shards` (persisted, fits pinned to the holders of
        their blocks) or, when streaming, the lazy blocks with ``workers=None``: every fit task then reads its
        shard from the source where the scheduler runs it, and drops it when done.

    Raises
    ------
    ValueError
        If ``daskml_lab.ensemble.persist`` is not ``"auto"``, True or False; and, on a cluster whose workers
        have a ``memory_limit`` (dense ``X`` only), if a shard exceeds the free memory of every worker, or if
        persisting is forced for data that exceed the free memory of all of them.

    Notes
    -----
    ``"auto"`` streams when the dense size of ``X`` (and ``y``, ``sample_weight``) exceeds half of the
    workers' free memory: the part of their ``memory_limit`` below dask's ``distributed.worker.memory.spill``
    fraction that their processes do not use yet (the rule of the linear models' solvers); otherwise
    :func:`~daskml_lab.ensemble._placement.place_shards` decides. ``True`` persists whatever the size, ``False``
    always streams.
    """
    persist = dask.config.get(CONFIG_KEY, "auto")
    if not (persist is True or persist is False or (isinstance(persist, str) and persist == "auto")):
        msg = f"dask.config key {CONFIG_KEY!r} must be 'auto', True or False, got {persist!r}."
        raise ValueError(msg)
    client = current_client()
    if client is None:
        return place_shards(X, y, sample_weight, client)
    dense = not sp.issparse(X._meta)
    workers = _problem._worker_memory(client)
    itemsize = np.dtype(X.dtype).itemsize
    nbytes = float(np.prod(X.shape)) * itemsize + float(X.shape[0]) * 8 * (1 + (sample_weight is not None))
    if dense and workers:
        _check_memory(X, nbytes, workers, persist_forced=persist is True)
    if persist is False or (
        persist == "auto"
        and dense
        and workers
        and nbytes > _problem._PERSIST_FRACTION * _problem._free_memory(workers, "spill")
    ):
        logger.info(
            "Not persisting the shards (%.2f GB dense; %s): each shard fit reads its block from the source.",
            nbytes / 1e9,
            "persist=False" if persist is False else "more than half of the workers' free memory",
        )
        sw_blocks = None if sample_weight is None else list(sample_weight.to_delayed().ravel())
        return PlacedShards(list(X.to_delayed().ravel()), list(y.to_delayed().ravel()), sw_blocks, None)
    if persist is True:
        collections = [X, y] if sample_weight is None else [X, y, sample_weight]
        # persist: forced by dask.config daskml_lab.ensemble.persist=True (data-sized, on the workers for the
        # duration of the fit); place_shards only references these blocks again and pins the fits to them
        with unique_fused_keys():
            persisted = client.persist(collections)
        X, y = persisted[0], persisted[1]
        sample_weight = persisted[2] if sample_weight is not None else None
    return place_shards(X, y, sample_weight, client)


def _check_memory(
    X: da.Array, nbytes: float, workers: list[tuple[float, float]], *, persist_forced: bool
) -> None:
    """Refuse, before computing, shards that no worker can hold and forced persisting beyond all of them."""
    if persist_forced:
        room = _problem._free_memory(workers, "terminate")
        if nbytes > room:
            msg = (
                f"dask.config {CONFIG_KEY}=True, but the data ({nbytes / 1e9:.2f} GB dense) exceed the free "
                f"memory of the {len(workers)} workers ({room / 1e9:.2f} GB below their memory_limit): "
                "persisting them would get the workers killed. Set it to 'auto' or False to let each shard "
                "fit read its block from the source, or add workers or memory."
            )
            raise ValueError(msg)
    rows = max(X.chunks[0], default=0)
    shard = float(rows) * X.shape[1] * np.dtype(X.dtype).itemsize
    room = max(_problem._free_memory([worker], "terminate") for worker in workers)
    if shard > room:
        n_shards = math.ceil(4 * float(np.prod(X.shape)) * np.dtype(X.dtype).itemsize / max(room, 1.0))
        msg = (
            f"The largest shard ({rows} rows, {shard / 1e6:.0f} MB dense) does not fit in the free memory of "
            f"any worker (at most {room / 1e6:.0f} MB below its memory_limit), and each shard model is trained "
            f"on its whole shard in one worker. Use more, smaller shards (e.g. n_shards={n_shards}, or "
            "n_shards=None with smaller row blocks), or workers with more memory."
        )
        raise ValueError(msg)
