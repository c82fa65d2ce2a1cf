"""Whether the shard blocks of an ensemble fit are persisted on the workers or read from their source.

A shard model needs its whole shard in one worker's memory, but nothing needs all the shards in memory at
once: data larger than the workers' memory are fitted by letting every ``daskml-shard-fit`` task read its own
block from storage (zarr, parquet, ...), so that worker memory stays bounded by a few shards whatever the size
of the data. :func:`place_shards_for_fit` makes that choice with the package's one memory plan
(:func:`daskml_lab._runtime.memory.plan_memory`; ``dask.config`` key ``daskml_lab.ensemble.persist``:
``"auto"``, ``True`` or ``False``) and refuses, before anything is computed, what would get workers killed by
their nanny.

**Locality.** On a distributed cluster, :func:`place_shards` persists the shard blocks once and asks the
scheduler which worker holds each block (matched by key); :func:`build_shard_fit_graph` then pins every
shard's tasks to that worker (``dask.annotate(workers=[...], allow_other_workers=False)``), so that neither
the scheduler's placement heuristics nor work stealing can move a shard's rows to another worker. Without a
distributed client (local schedulers) the blocks are used as they are.

**Stragglers.** Pinning switches off work stealing, Dask's answer to a slow worker. While the pinned
graph runs, :class:`~daskml_lab.ensemble._speculation.ShardProgress` watches for a worker that stopped
answering (no heartbeat) or runs far behind the others (relative to the other shards' durations); its
shards are then computed again from the blocks' lineage on the healthy workers (never fetched from the
straggler), and the shards already done elsewhere are kept. See :mod:`~daskml_lab.ensemble._speculation`.

**Lost workers.** A task pinned to a worker that dies would wait for that worker for ever (a restarted worker
has a new address). :func:`compute_pinned` therefore computes the pinned graph while watching the workers it
is pinned to (:class:`daskml_lab._runtime.watch.WorkerWatch`): when one leaves, it releases the computation,
waits for the scheduler to recompute the lost blocks from their lineage, pins the shards to their new holders
and computes a fresh graph (every task is pure and seeded, so the result is the one an undisturbed fit gives).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from distributed import CancelledError, futures_of, wait

from daskml_lab._compat import unique_fused_keys
from daskml_lab._runtime.client import cluster_timeout_s, current_client
from daskml_lab._runtime.cluster_health import ClusterHealth
from daskml_lab._runtime.memory import (
    WorkerMemory,
    block_room,
    dense_nbytes,
    measure_workers,
    plan_memory,
    resolve_persist,
)
from daskml_lab._runtime.waiting import forget_traceback, lost_data_error, raise_task_errors, timeout_error
from daskml_lab._runtime.watch import WorkersLost, WorkerWatch, require_a_worker
from daskml_lab.ensemble._speculation import ShardProgress, SpeculationRule, move_shards

__all__ = [
    "PlacedShards",
    "compute_pinned",
    "place_shards",
    "place_shards_for_fit",
]

logger = logging.getLogger(__name__)

#: ``dask.config`` key of the override.
CONFIG_KEY = "daskml_lab.ensemble.persist"

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
    sources : tuple of dask.array.Array
        ``X``, ``y`` (and the weights) before they were persisted: the lineage a straggler's shards are
        computed again from, elsewhere (:mod:`~daskml_lab.ensemble._speculation`).
    avoid : tuple of str
        Workers found unresponsive while the blocks were persisted: no shard is pinned to them, and no
        task of the fit is run on them.
    """

    X_blocks: list[Any]
    y_blocks: list[Any]
    sw_blocks: list[Any] | None
    workers: list[str | None] | None
    futures: list[Any] = field(default_factory=list)
    rows: tuple[int, ...] = ()
    sources: tuple[Any, ...] = ()
    avoid: tuple[str, ...] = ()


def _unplaced(X: da.Array, y: da.Array, sample_weight: da.Array | None) -> PlacedShards:
    """The blocks as they are; the scheduler places the fits (each reads its block from the source)."""
    sw_blocks = None if sample_weight is None else list(sample_weight.to_delayed().ravel())
    return PlacedShards(list(X.to_delayed().ravel()), list(y.to_delayed().ravel()), sw_blocks, None)


def place_shards_for_fit(
    X: da.Array,
    y: da.Array,
    sample_weight: da.Array | None,
    *,
    workers: tuple[WorkerMemory, ...] | None = None,
) -> PlacedShards:
    """Persist and pin the shard blocks when the memory plan keeps them, else leave them at the source.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        The sharded features, one row block per shard.
    y : dask.array.Array of shape (n_samples,)
        Targets with the row chunks of ``X``.
    sample_weight : dask.array.Array of shape (n_samples,) or None
        Weights with the row chunks of ``X``.
    workers : tuple of WorkerMemory or None, default=None
        The workers' memory the plan decides on; ``None`` measures the current cluster's.

    Returns
    -------
    PlacedShards
        From :func:`place_shards` (persisted, fits pinned to the holders of their blocks) or, when streaming
        or without a distributed client, the lazy blocks with ``workers=None``: every fit task then reads its
        shard from the source where the scheduler runs it, and drops it when done.

    Raises
    ------
    ValueError
        If ``daskml_lab.ensemble.persist`` is not ``"auto"``, True or False; and, on a cluster whose workers
        have a ``memory_limit`` (dense ``X`` only), if a shard exceeds the free memory of every worker, or if
        persisting is forced for data that exceed the free memory of all of them.

    Notes
    -----
    The decision is :func:`daskml_lab._runtime.memory.plan_memory`'s, the same rule as the linear models'
    solvers: ``"auto"`` streams when the dense size of ``X``, ``y`` and ``sample_weight`` exceeds half (dask.config
    ``daskml_lab.memory.persist_fraction``) of the workers' free memory below their spill threshold.
    """
    persist = resolve_persist(None, CONFIG_KEY)
    client = current_client()
    if client is None:
        return _unplaced(X, y, sample_weight)  # local schedulers: nothing to persist or pin
    sparse = sp.issparse(X._meta)
    workers = measure_workers(client) if workers is None else tuple(workers)
    if workers and not sparse:
        _check_shard_fits(X, workers)
    plan = plan_memory(
        nbytes=dense_nbytes(X, y, sample_weight),
        sparse=sparse,
        persist=persist,
        config_key=CONFIG_KEY,
        workers=workers,
        subject="the shards",
        streaming="each shard fit reads its block from the source",
        logger=logger,
    )
    if not plan.persist:
        return _unplaced(X, y, sample_weight)
    return place_shards(X, y, sample_weight, client)


def place_shards(
    X: da.Array, y: da.Array, sample_weight: da.Array | None, client: Any = None
) -> PlacedShards:
    """Persist the shard blocks on the cluster once and find the worker holding each (by key).

    The memory plan is :func:`place_shards_for_fit`'s; this function persists whatever it is given.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        The sharded features, one row block per shard.
    y : dask.array.Array of shape (n_samples,)
        Targets with the row chunks of ``X``.
    sample_weight : dask.array.Array of shape (n_samples,) or None
        Weights with the row chunks of ``X``.
    client : distributed.Client, default=None
        The client; ``None`` uses :func:`~daskml_lab._runtime.client.current_client`.

    Returns
    -------
    PlacedShards
        Without a distributed client, the blocks as they are and ``workers=None`` (the scheduler places the
        fits). Otherwise the persisted blocks and, per shard, a worker holding its ``X`` block, preferring one
        that also holds its ``y`` (and weight) block; among several such workers (replicated blocks), the one
        with the fewest rows assigned so far. The fits follow the data: blocks persisted unevenly give some
        workers more fits than others.

    Raises
    ------
    ValueError
        What computing a block raised (for example the finiteness check of the data layer).
    TimeoutError
        If the blocks are not in memory within :func:`~daskml_lab._runtime.client.cluster_timeout_s`.
    RuntimeError
        If blocks were lost with a worker and cannot be computed again (no lineage).
    """
    client = current_client() if client is None else client
    if client is None:
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
        tuple(collections),
    )
    return _locate(placed, client)


def _wait_placed(placed: PlacedShards, client: Any, health: ClusterHealth | None = None) -> PlacedShards:
    """``placed`` once its blocks are in memory; blocks stuck on an unresponsive worker are computed elsewhere.

    A worker that stops answering (paused, SIGSTOP) while its blocks are persisted would hold the fit until
    the cluster timeout: once it has sent no heartbeat for ``unresponsive_s`` seconds
    (:mod:`~daskml_lab.ensemble._speculation`), the blocks not yet in memory are computed again from their
    lineage on the other workers, and the straggler is recorded in ``avoid``.
    """
    what = "the shard blocks to be computed and held in memory"
    timeout_s = cluster_timeout_s()
    deadline = time.monotonic() + timeout_s
    health = ClusterHealth(client) if health is None else health
    watch = WorkerWatch(client, health=health)
    progress = ShardProgress(len(placed.X_blocks), SpeculationRule.from_config())
    while True:
        try:
            wait(list(placed.futures), timeout=watch.interval_s)
            break
        except CancelledError as err:
            explained = health.explain(err, doing=f"waiting for {what}")
            raise (lost_data_error(what, err, health) if explained is None else explained) from err
        except TimeoutError as err:
            forget_traceback(err)
            # the scheduler knows at once that no worker is left: do not wait for the timeout
            health.check(doing=f"waiting for {what}", grace_s=NO_WORKER_GRACE_S)
            if time.monotonic() > deadline:
                raise timeout_error(what, client, timeout_s) from None
        progress.heard(watch.records())
        silent = {w: why for w, why in progress.unresponsive().items() if w not in placed.avoid}
        healthy = sorted(watch.live() - set(placed.avoid) - set(silent))
        if not silent or not healthy or not placed.sources:
            continue
        done = {future.key for future in placed.futures if future.done()}
        columns = [placed.X_blocks, placed.y_blocks] + ([placed.sw_blocks] if placed.sw_blocks else [])
        missing = [i for i in range(len(placed.X_blocks)) if any(c[i].key not in done for c in columns)]
        logger.warning(
            "shard blocks: straggler(s) %s; computing %d block(s) again on %s",
            "; ".join(f"{w}: {why}" for w, why in silent.items()),
            len(missing),
            healthy,
        )
        placed = move_shards(placed, missing, healthy, client)
        placed = dataclasses.replace(placed, avoid=(*placed.avoid, *silent))
    raise_task_errors(placed.futures)
    return placed


def _locate(placed: PlacedShards, client: Any, health: ClusterHealth | None = None) -> PlacedShards:
    """``placed`` with, per shard, a worker holding its blocks now (after waiting for them to be in memory)."""
    placed = _wait_placed(placed, client, health)
    who_has = client.who_has(placed.futures)
    blocks = [placed.X_blocks, placed.y_blocks] + ([placed.sw_blocks] if placed.sw_blocks is not None else [])
    workers: list[str | None] = []
    rows_per_worker: Counter[str] = Counter()
    for index, X_block in enumerate(blocks[0]):
        x_holders = sorted(set(who_has.get(X_block.key, ())) - set(placed.avoid))
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


def compute_pinned(
    build: Callable[[PlacedShards, str, list[str]], tuple[Any, ...]],
    placed: PlacedShards,
    *,
    first_tasks: Callable[[tuple[Any, ...]], list[Any]] | None = None,
    client: Any = None,
) -> tuple[Any, ...]:
    """Compute the graph of pinned shard tasks that ``build`` makes, surviving lost workers and stragglers.

    A task pinned to a worker (``allow_other_workers=False``) waits for ever once that worker has died: the
    scheduler never runs it elsewhere, and a worker restarted by its nanny has a new address. So the
    computation is watched (:class:`~daskml_lab._runtime.watch.WorkerWatch`); when a worker the shards are
    pinned to has left, the computation is released, the lost blocks are recomputed from their lineage by the
    scheduler, the shards are pinned to their new holders and a fresh graph is computed
    (:data:`MAX_PINNED_ATTEMPTS` times at most). A worker that is still in the cluster but stopped answering
    or runs far behind the others (:mod:`~daskml_lab.ensemble._speculation`) is not waited for either: its
    shards' blocks are computed again from their lineage on the other workers, the shards are pinned there,
    and the graph is submitted again; shard tasks that are done or running elsewhere keep their keys and are
    not computed again. The tasks are pure and seeded, so a recomputed result equals the undisturbed one.

    Parameters
    ----------
    build : callable
        ``build(placed, suffix, shard_suffixes)`` returns a tuple whose items are delayed objects or lists
        of them, over the blocks of ``placed`` with the shards' tasks pinned to ``placed.workers``;
        ``suffix`` is appended to the token of every key and ``shard_suffixes[i]`` may replace it in the
        keys of the tasks that depend on shard ``i`` only (keys of a cancelled attempt are never reused).
    placed : PlacedShards
        From :func:`place_shards`.
    first_tasks : callable, default=None
        ``first_tasks(parts)``: per shard, the delayed object of ``build``'s result whose completion means
        the shard's first task is done, for the relative straggler rule; ``None`` watches heartbeats only.
    client : distributed.Client, default=None
        ``None`` uses :func:`~daskml_lab._runtime.client.current_client`.

    Returns
    -------
    tuple
        The computed items, in the structure ``build`` returned.

    Raises
    ------
    RuntimeError
        When workers keep leaving (:data:`MAX_PINNED_ATTEMPTS` attempts), or when a block was lost and
        cannot be computed again.
    NoWorkersLeftError
        When every worker was lost and none joined within :data:`NO_WORKER_GRACE_S` seconds.
    SchedulerLostError
        As soon as the client has lost its scheduler.
    TimeoutError
        When the blocks or a result do not arrive within :func:`~daskml_lab._runtime.client.cluster_timeout_s`.
    """
    client = current_client() if client is None else client
    n_shards = len(placed.X_blocks)
    if client is None or placed.workers is None:
        # compute: what the caller's graph brings back (the caller states its size); unpinned tasks are
        # rescheduled by the scheduler itself when a worker dies
        with unique_fused_keys():
            return tuple(dask.compute(*build(placed, "", [""] * n_shards)))
    health = ClusterHealth.started(client)
    with health.translating(doing="computing the shards"):
        return _compute_watched(build, placed, first_tasks, client, health)


def _compute_watched(
    build: Callable[[PlacedShards, str, list[str]], tuple[Any, ...]],
    placed: PlacedShards,
    first_tasks: Callable[[tuple[Any, ...]], list[Any]] | None,
    client: Any,
    health: ClusterHealth,
) -> tuple[Any, ...]:
    """:func:`compute_pinned` on a cluster, shards pinned: watched, moved off stragglers, recomputed after losses."""
    n_shards = len(placed.X_blocks)
    watch = WorkerWatch(client, health=health)
    progress = ShardProgress(n_shards, SpeculationRule.from_config())
    progress.assign(placed.workers)
    shard_suffixes = [""] * n_shards
    suffix, moves = "", 0
    stragglers: dict[str, str] = dict.fromkeys(placed.avoid, "unresponsive while the blocks were persisted")
    for attempt in range(MAX_PINNED_ATTEMPTS):
        if attempt:
            suffix = f"-retry{attempt}"
            shard_suffixes = [suffix] * n_shards
        avoid = sorted(watch.live(0.0) - set(stragglers)) if stragglers else None
        futures, parts, firsts = _submit(build, placed, suffix, shard_suffixes, first_tasks, avoid, client)
        try:
            while not _wait_watching(watch, futures, placed.workers, progress, firsts):
                found = _new_stragglers(progress, placed.workers, stragglers, len(watch.live()))
                healthy = sorted(watch.live() - set(stragglers) - set(found))
                if not found or not healthy:
                    continue
                stragglers.update(found)
                moved = _shards_to_move(placed, stragglers, client)
                logger.warning(
                    "shard computation: straggler(s) %s; moving their %d shard(s) to %s (blocks computed again "
                    "from their lineage)",
                    "; ".join(f"{w}: {why}" for w, why in found.items()),
                    len(moved),
                    healthy,
                )
                placed = move_shards(placed, moved, healthy, client)
                moves += 1
                suffix = f"-retry{attempt}-move{moves}"
                # Only the shards done elsewhere keep their keys: a shard still to fit may need an input that
                # the scheduler placed on the straggler (the base estimator, a y block), so it starts again
                # under new keys, with its unpinned inputs kept off the stragglers.
                restart = [i for i in range(n_shards) if i in moved or not progress.done[i]]
                for index in restart:
                    shard_suffixes[index] = suffix
                progress.assign([placed.workers[i] for i in restart], restart)
                old = futures
                futures, parts, firsts = _submit(
                    build, placed, suffix, shard_suffixes, first_tasks, healthy, client
                )
                # dropped once the new graph holds the keys it shares with the old one (shards done elsewhere)
                del old
            values = watch.gather(futures, placed.workers, what="the shard computation")
        except WorkersLost as err:
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
            require_a_worker(client, grace_s=NO_WORKER_GRACE_S, doing="fit the shards", health=health)
            placed = _locate(placed, client, health)
            progress.assign(placed.workers, range(n_shards))
            continue
        return _unflatten(parts, values)
    msg = "unreachable"  # pragma: no cover
    raise AssertionError(msg)  # pragma: no cover


def _new_stragglers(
    progress: ShardProgress, workers: list[str | None], known: dict[str, str], n_live: int
) -> dict[str, str]:
    """Stragglers not known yet; workers merely behind the others only while half of the workers are left.

    Under CPU contention a healthy worker can fall behind for a while: moving shards off it is harmless
    (same result) but must not pile every shard onto one worker.
    """
    unresponsive = progress.unresponsive()
    found = {w: why for w, why in progress.stragglers(workers).items() if w not in known}
    slow = sorted(w for w in found if w not in unresponsive)
    n_slow = sum(1 for w in known if w not in unresponsive)
    for worker in slow[max(n_live // 2 - n_slow, 0) :]:
        del found[worker]
    return found


def _submit(
    build: Callable[[PlacedShards, str, list[str]], tuple[Any, ...]],
    placed: PlacedShards,
    suffix: str,
    shard_suffixes: list[str],
    first_tasks: Callable[[tuple[Any, ...]], list[Any]] | None,
    healthy: list[str] | None,
    client: Any,
) -> tuple[list[Any], tuple[Any, ...], list[Any] | None]:
    """Build and submit the graph; its futures, its parts and the futures of the shards' first tasks.

    With ``healthy`` workers given (there are stragglers), the tasks that are not pinned (members, merges)
    are restricted to them: the scheduler would otherwise happily give them to an idle-looking straggler.
    """
    avoid: Any = contextlib.nullcontext()
    if healthy:
        avoid = dask.annotate(workers=list(healthy), allow_other_workers=False)
    with avoid:
        parts = build(placed, suffix, shard_suffixes)
    flat = [item for part in parts for item in (part if isinstance(part, list | tuple) else [part])]
    # compute: what the caller's graph brings back (the caller states its size)
    with unique_fused_keys():
        futures = client.compute(flat)
    firsts = None
    if first_tasks is not None:
        by_key = {future.key: future for future in futures}
        firsts = [by_key.get(task.key) for task in first_tasks(parts)]
    return futures, parts, firsts


def _wait_watching(
    watch: WorkerWatch,
    futures: list[Any],
    workers: list[str | None],
    progress: ShardProgress,
    firsts: list[Any] | None,
) -> bool:
    """Wait one watch interval; True once every future is done. Raise :class:`WorkersLost` on a lost worker."""
    try:
        wait(futures, timeout=watch.interval_s)
        return True
    except CancelledError as err:
        what = "the shard computation"
        watch.check(workers, max_age_s=0.0, during=f"while waiting for {what}")
        raise lost_data_error(what, err) from err
    except TimeoutError as err:
        forget_traceback(err)
    # a worker is lost only when the scheduler removed it; a slow or paused one is a straggler
    watch.check(workers, max_age_s=0.0, during="while waiting for the shard computation")
    progress.heard(watch.records())
    for index, future in enumerate(firsts or ()):
        if future is not None and future.done():
            progress.finished(index, workers[index])
    return False


def _shards_to_move(placed: PlacedShards, stragglers: dict[str, str], client: Any) -> list[int]:
    """Shards pinned to a straggler, or with a block that only stragglers hold (never fetched from them)."""
    who_has = client.who_has(placed.futures)
    columns = [placed.X_blocks, placed.y_blocks] + (
        [placed.sw_blocks] if placed.sw_blocks is not None else []
    )
    moved = []
    for index, worker in enumerate(placed.workers or ()):
        holders = [set(who_has.get(column[index].key, ())) for column in columns]
        if worker in stragglers or any(h and h <= set(stragglers) for h in holders):
            moved.append(index)
    return moved


def _unflatten(parts: tuple[Any, ...], values: list[Any]) -> tuple[Any, ...]:
    """``values`` (computed from the flattened ``parts``) in the structure of ``parts``."""
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


def _check_shard_fits(X: da.Array, workers: tuple[WorkerMemory, ...]) -> None:
    """Refuse, before computing, shards that no worker can hold: each shard model is trained on a whole shard."""
    rows = max(X.chunks[0], default=0)
    shard = float(rows) * X.shape[1] * np.dtype(X.dtype).itemsize
    room = block_room(workers)
    if shard > room:
        n_shards = math.ceil(4 * float(np.prod(X.shape)) * np.dtype(X.dtype).itemsize / max(room, 1.0))
        msg = (
            f"The largest shard ({rows} rows, {shard / 1e6:.0f} MB dense) does not fit in the free memory of "
            f"any worker (at most {room / 1e6:.0f} MB below its memory_limit), and each shard model is trained "
            f"on its whole shard in one worker. Use more, smaller shards (e.g. n_shards={n_shards}, or "
            "n_shards=None with smaller row blocks), or workers with more memory."
        )
        raise ValueError(msg)
