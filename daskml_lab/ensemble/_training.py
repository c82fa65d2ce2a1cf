"""Shard-wise training: one clone of the base estimator per row block, fitted where the block lives.

The graph built by :func:`build_shard_fit_graph` has, for every shard ``i``:

- ``("daskml-shard-fit-<token>", i)``: :func:`_fit_shard_block` splits the block into training and held-out
  rows (seeded), fits a clone of the base estimator on the training rows and keeps the held-out rows, on the
  worker that holds the block;
- ``("daskml-shard-summary-<token>", i)``: :func:`_summarize_shard_block`, the fitted model and a few counts
  (what reaches the client);

and, when rows are held out, a second pass that needs every model:

- ``"daskml-shard-members-<token>"``: :func:`_collect_members_block`, the list of fitted models and the global
  classes (one key, fetched once by every worker that needs it);
- ``("daskml-held-out-<token>", i)``: :func:`_held_out_from_fit_block`, every member's score statistics and
  the fusion's meta-features on the held-out rows of shard ``i``: small arrays.

One ``dask.compute`` runs both passes: the data blocks are read once and no row crosses the network, except
as meta-features. The same functions serve a Cascade SVM or any other shard-wise trainer that needs
"fit a clone per block, keep held-out rows local" (see :func:`build_shard_fit_graph`).

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
import functools
import logging
import numbers
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.utils.multiclass import check_classification_targets

from daskml_lab._compat import unique_fused_keys
from daskml_lab.fusion import Fusion
from daskml_lab.fusion._base import member_score_stats
from daskml_lab.monitoring import task_prefix
from daskml_lab.monitoring._events import publish_shard_event

__all__ = [
    "PlacedShards",
    "ShardSeeds",
    "build_held_out_graph",
    "build_shard_fit_graph",
    "cluster_timeout_s",
    "compute_pinned",
    "compute_shard_fits",
    "current_client",
    "place_shards",
    "root_entropy",
    "seeded_clone",
    "shard_seeds",
    "split_rows",
]

logger = logging.getLogger(__name__)

#: Persist the shards for pinned fits only when their dense size is at most this share of the workers' memory.
PERSIST_MEMORY_FRACTION = 0.5

#: Seconds between two checks, while pinned shard tasks run, that the workers they are pinned to are alive.
WATCH_INTERVAL_S = 0.5
#: Computations of a pinned graph (the first one and the retries after lost workers) before giving up.
MAX_PINNED_ATTEMPTS = 4
#: Seconds a computation that lost its last worker waits for a worker to join (a nanny restarts its worker
#: within seconds) before it fails.
NO_WORKER_GRACE_S = 10.0

#: What a shard model is, in the shard report.
KIND_FITTED = "fitted"
KIND_CONSTANT = "constant"
KIND_EMPTY = "empty"


@dataclass(frozen=True)
class ShardSeeds:
    """Seeds derived from one root: one for the data layer's sharding, two per shard (model, row split)."""

    sharding: int
    shards: tuple[tuple[int, int], ...]


def root_entropy(random_state: Any, estimator: Any = None) -> int | None:
    """The root seed of an ensemble: its ``random_state``, else the base estimator's integer ``random_state``.

    Parameters
    ----------
    random_state : int, numpy.random.RandomState, numpy.random.Generator or None
        The ensemble's ``random_state``. A RandomState or Generator is drawn from once.
    estimator : estimator instance, default=None
        The base estimator; its ``random_state`` is used when it is an int and ``random_state`` is None.

    Returns
    -------
    int or None
        ``None`` means fresh operating-system entropy (a different result at every fit).
    """
    if random_state is None and estimator is not None:
        own = (
            estimator.get_params(deep=False).get("random_state") if hasattr(estimator, "get_params") else None
        )
        if isinstance(own, numbers.Integral) and not isinstance(own, bool):
            return int(own)
        return None
    if random_state is None:
        return None
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**32))
    return int(random_state)


def shard_seeds(root: int | None, n_shards: int) -> ShardSeeds:
    """Independent seeds from ``numpy.random.SeedSequence(root)``: child 0 shards the data, 1+i is shard i.

    Parameters
    ----------
    root : int or None
        From :func:`root_entropy`.
    n_shards : int
        Number of shards.

    Returns
    -------
    ShardSeeds

    Examples
    --------
    >>> seeds = shard_seeds(0, 2)
    >>> len(seeds.shards), seeds.shards == shard_seeds(0, 2).shards
    (2, True)
    """
    children = np.random.SeedSequence(root).spawn(n_shards + 1)
    sharding = int(children[0].generate_state(1)[0])
    shards = tuple(tuple(int(v) for v in child.generate_state(2)) for child in children[1:])
    return ShardSeeds(sharding, shards)  # type: ignore[arg-type]


def seeded_clone(estimator: Any, seed: int) -> Any:
    """A clone of ``estimator`` whose ``random_state`` parameters (nested ones too) derive from ``seed``.

    Parameters
    ----------
    estimator : estimator instance
    seed : int

    Returns
    -------
    estimator instance
        Unfitted.
    """
    model = clone(estimator)
    names = sorted(
        name
        for name in model.get_params(deep=True)
        if name == "random_state" or name.endswith("__random_state")
    )
    if names:
        values = np.random.SeedSequence(seed).generate_state(len(names))
        model.set_params(**{name: int(value) for name, value in zip(names, values, strict=True)})
    return model


def split_rows(n_rows: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out row positions of one shard: ``floor(fraction * n_rows)`` rows held out at random.

    Parameters
    ----------
    n_rows : int
        Rows of the shard.
    fraction : float
        In ``[0, 1)``; at least one row is always left for training.
    seed : int
        The shard's split seed.

    Returns
    -------
    train, held_out : ndarray of int64
        Sorted positions.

    Examples
    --------
    >>> train, held_out = split_rows(10, 0.2, seed=1)
    >>> len(train), len(held_out), sorted(train.tolist() + held_out.tolist()) == list(range(10))
    (8, 2, True)
    """
    n_held_out = int(np.floor(fraction * n_rows))
    if n_held_out == 0:
        return np.arange(n_rows, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(order[n_held_out:]).astype(np.int64), np.sort(order[:n_held_out]).astype(np.int64)


# ---------------------------------------------------------------------------------------------------------
# placement (client side)


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


def current_client() -> Any:
    """The distributed client ``dask.compute`` uses now, or ``None`` when a local scheduler is in use.

    Returns
    -------
    distributed.Client or None
        ``None`` when ``dask.config`` names a local scheduler (``"sync"``, ``"threads"``, a counting
        scheduler, ...) or no default client exists.
    """
    scheduler = dask.config.get("scheduler", None)
    if scheduler is not None and scheduler not in ("dask.distributed", "distributed"):
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


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


def _fit_shard_block(
    X: Any,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    estimator: Any,
    *,
    shard: int,
    seeds: tuple[int, int],
    validation_fraction: float,
    classification: bool,
    run_id: str | None = None,
    refit: bool = False,
) -> dict[str, Any]:
    """Fit a seeded clone of ``estimator`` on the training rows of one shard; keep the held-out rows.

    A classification shard whose training rows hold a single class gets a constant predictor
    (``DummyClassifier(strategy="constant")``); an empty shard gets no model. With a ``run_id``, the shard's
    start and end are reported to the training monitor from the worker. With ``refit`` and held-out rows,
    a second clone is fitted on the whole shard: it becomes ``model`` (the member), and the model of the
    training rows, which never saw the held-out rows, is kept as ``held_out_model`` to evaluate them.
    """
    n_rows = int(X.shape[0])
    publish_shard_event(run_id, shard, "started", n_rows=n_rows)
    started = time.perf_counter()
    model_seed, split_seed = seeds
    result: dict[str, Any] = {
        "shard": shard,
        "n_rows": n_rows,
        "model": None,
        "kind": KIND_EMPTY,
        "labels": None,
        "counts": None,
        "worker": _worker_address(),
    }
    if n_rows == 0:
        result.update(n_train=0, n_held_out=0, X_held_out=X[:0], y_held_out=y[:0], sw_held_out=None)
        if classification:
            result.update(labels=y[:0], counts=np.zeros(0, dtype=np.int64))
        publish_shard_event(run_id, shard, "finished", n_rows=0, n_train=0, n_held_out=0, model="empty")
        return result
    if classification:
        check_classification_targets(y)
    train, held_out = split_rows(n_rows, validation_fraction, split_seed)
    if held_out.size:
        X_train, y_train = X[train], y[train]
        sw_train = None if sample_weight is None else sample_weight[train]
    else:
        X_train, y_train, sw_train = X, y, sample_weight
    member = functools.partial(
        _fit_member, estimator, seed=model_seed, classification=classification, shard=shard, run_id=run_id
    )
    model, kind = member(X_train, y_train, sw_train)
    held_out_model = None
    n_member_rows = int(train.size)
    if refit and held_out.size:
        held_out_model = model
        model, kind = member(X, y, sample_weight)
        n_member_rows = n_rows
    publish_shard_event(
        run_id,
        shard,
        "finished",
        n_rows=n_rows,
        n_train=n_member_rows,
        n_held_out=int(held_out.size),
        fit_time_s=time.perf_counter() - started,
        model=kind if kind != KIND_FITTED else type(model).__name__,
    )
    result.update(
        model=model,
        held_out_model=held_out_model,
        kind=kind,
        n_train=n_member_rows,
        n_held_out=int(held_out.size),
        X_held_out=X[held_out],
        y_held_out=y[held_out],
        sw_held_out=None if sample_weight is None else sample_weight[held_out],
    )
    if classification:
        labels, counts = np.unique(y, return_counts=True)
        result.update(labels=labels, counts=counts.astype(np.int64))
    return result


def _fit_member(
    estimator: Any,
    X: Any,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    seed: int,
    classification: bool,
    shard: int,
    run_id: str | None,
) -> tuple[Any, str]:
    """One fitted member and its kind: a seeded clone, or a constant predictor for a single class."""
    fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
    labels = np.unique(y) if classification else None
    if labels is not None and labels.size == 1:
        model, kind = DummyClassifier(strategy="constant", constant=labels[:1]), KIND_CONSTANT
    else:
        model, kind = seeded_clone(estimator, seed), KIND_FITTED
    try:
        model.fit(X, y, **fit_params)
    except Exception as err:
        publish_shard_event(run_id, shard, "failed", error=f"{type(err).__name__}: {err}"[:200])
        err.add_note(
            f"daskml_lab: raised while fitting {type(model).__name__} on shard {shard} ({len(y)} rows)."
        )
        raise
    return model, kind


def _summarize_shard_block(fitted: dict[str, Any]) -> dict[str, Any]:
    """The part of a shard's result that goes to the client: model and counts, no rows."""
    return {
        key: value for key, value in fitted.items() if not key.endswith("_held_out") or key == "n_held_out"
    }


def _collect_members_block(summaries: Sequence[dict[str, Any]], classification: bool) -> dict[str, Any]:
    """The fitted members (non-empty shards, in shard order), what evaluates the held-out rows, and the classes.

    ``estimators`` are the models of the training rows (with refitted members, their ``held_out_model``);
    ``refitted`` the members as the fused model uses them (``None`` without refitting), and ``shards`` the
    shard of each member. See :func:`_members_for_shard`.
    """
    present = [(index, s) for index, s in enumerate(summaries) if s["model"] is not None]
    refit = any(s.get("held_out_model") is not None for _, s in present)
    classes = None
    if classification:
        classes = np.unique(np.concatenate([s["labels"] for s in summaries]))
    return {
        "estimators": [s["model"] if s.get("held_out_model") is None else s["held_out_model"] for _, s in present],
        "refitted": [s["model"] for _, s in present] if refit else None,
        "shards": [index for index, _ in present],
        "classes": classes,
    }


def _members_for_shard(members: dict[str, Any], shard_index: int | None) -> list[Any]:
    """The models that evaluate the held-out rows of shard ``shard_index``.

    A refitted member trained on its whole shard, held-out rows included, so it evaluates its own shard's
    held-out rows through the model of its training rows; the held-out rows of the other shards it never saw,
    so it evaluates them as the fused model will use it: refitted. The meta-features then differ from what
    the fused model sees at prediction time only in one member out of ``n_shards``.
    """
    refitted = members.get("refitted")
    if refitted is None or shard_index is None:
        return list(members["estimators"])
    return [
        own if shard == shard_index else full
        for own, full, shard in zip(members["estimators"], refitted, members["shards"], strict=True)
    ]


def _held_out_block(
    X: Any,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    members: dict[str, Any],
    fusion: Fusion,
    shard_index: int | None = None,
) -> dict[str, Any]:
    """Every member's score statistics and the fusion's meta-features on held-out rows ``X`` of a shard."""
    n_rows = int(X.shape[0])
    if n_rows == 0:
        return {"n_rows": 0, "stats": None, "features": None, "target": None, "sample_weight": None}
    estimators, classes = _members_for_shard(members, shard_index), members["classes"]
    features = fusion.held_out_features(estimators, X, classes=classes)
    return {
        "n_rows": n_rows,
        "stats": member_score_stats(estimators, X, y, sample_weight, classes=classes),
        "features": features,
        "target": None if features is None else y,
        "sample_weight": None if features is None else sample_weight,
    }


def _held_out_from_fit_block(
    fitted: dict[str, Any], members: dict[str, Any], fusion: Fusion, shard_index: int
) -> dict[str, Any]:
    return _held_out_block(
        fitted["X_held_out"], fitted["y_held_out"], fitted["sw_held_out"], members, fusion, shard_index
    )


# ---------------------------------------------------------------------------------------------------------
# graphs


def build_shard_fit_graph(
    X_blocks: Sequence[Any],
    y_blocks: Sequence[Any],
    sw_blocks: Sequence[Any] | None,
    estimator: Any,
    *,
    seeds: ShardSeeds,
    validation_fraction: float,
    classification: bool,
    fusion: Fusion | None,
    token: str,
    workers: Sequence[str | None] | None = None,
    run_id: str | None = None,
) -> tuple[list[Any], list[Any] | None]:
    """Delayed shard fits (and held-out evaluations) over matching row blocks; nothing is computed.

    Parameters
    ----------
    X_blocks, y_blocks : list of dask.delayed.Delayed
        One delayed block per shard (``X.to_delayed().ravel()``, ``y.to_delayed().ravel()``).
    sw_blocks : list of dask.delayed.Delayed or None
        Sample-weight blocks.
    estimator : estimator instance
        The base estimator; it enters the graph once.
    seeds : ShardSeeds
        From :func:`shard_seeds`.
    validation_fraction : float
        Share of each shard held out; ``0`` builds no held-out pass.
    classification : bool
        Whether labels are classes.
    fusion : Fusion or None
        Unfitted fusion whose :meth:`~daskml_lab.fusion.Fusion.held_out_features` runs on the held-out rows;
        when its :meth:`~daskml_lab.fusion.Fusion.refits_members` is true, each member is refitted on its
        whole shard after its held-out model is kept.
    token : str
        Unique suffix of the task keys.
    workers : list of str or None, default=None
        Per shard, the worker its fit, summary and held-out tasks are pinned to (from :func:`place_shards`;
        ``None`` leaves the placement to the scheduler).
    run_id : str, default=None
        Training-monitor run the shard fits report to (from the workers); ``None`` reports nothing.

    Returns
    -------
    summaries : list of dask.delayed.Delayed
        Per shard: ``model``, ``kind``, ``n_rows``, ``n_train``, ``n_held_out``, ``labels``, ``counts`` and
        ``worker`` (the address of the worker that fitted it, ``None`` under a local scheduler).
    held_out : list of dask.delayed.Delayed or None
        Per shard: ``stats``, ``features``, ``target``, ``sample_weight`` of its held-out rows.
    """
    base = dask.delayed(estimator, name=f"{task_prefix('base estimator')}-{token}", pure=True, traverse=False)
    placement = list(workers) if workers is not None else [None] * len(X_blocks)
    refit = fusion is not None and validation_fraction > 0 and fusion.refits_members()
    fits = []
    summaries = []
    for index, X_block in enumerate(X_blocks):
        with _pinned(placement[index]):
            fit = dask.delayed(_fit_shard_block, pure=True)(
                X_block,
                y_blocks[index],
                None if sw_blocks is None else sw_blocks[index],
                base,
                shard=index,
                seeds=seeds.shards[index],
                validation_fraction=validation_fraction,
                classification=classification,
                run_id=run_id,
                refit=refit,
                dask_key_name=(f"{task_prefix('shard fit')}-{token}", index),
            )
            summaries.append(
                dask.delayed(_summarize_shard_block, pure=True)(
                    fit, dask_key_name=(f"{task_prefix('shard summary')}-{token}", index)
                )
            )
        fits.append(fit)
    if validation_fraction <= 0:
        return summaries, None
    members = dask.delayed(_collect_members_block, pure=True)(
        summaries, classification, dask_key_name=f"{task_prefix('shard members')}-{token}"
    )
    fusion_node = dask.delayed(fusion, name=f"{task_prefix('fusion')}-{token}", pure=True, traverse=False)
    held_out = []
    for index, fit in enumerate(fits):
        # The held-out rows stay in the fit's result, on the shard's worker: evaluate them there.
        with _pinned(placement[index]):
            held_out.append(
                dask.delayed(_held_out_from_fit_block, pure=True)(
                    fit,
                    members,
                    fusion_node,
                    index,
                    dask_key_name=(f"{task_prefix('held out')}-{token}", index),
                )
            )
    return summaries, held_out


def compute_shard_fits(
    placed: PlacedShards,
    estimator: Any,
    *,
    seeds: ShardSeeds,
    validation_fraction: float,
    classification: bool,
    fusion: Fusion | None,
    token: str,
    run_id: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Build the shard-fit graph over ``placed`` (:func:`build_shard_fit_graph`) and compute it.

    Computed by :func:`compute_pinned`: a lost worker makes the shards move to the new holders of their
    blocks instead of waiting for ever. The keyword arguments are those of :func:`build_shard_fit_graph`.

    Returns
    -------
    summaries : list of dict
        Per shard.
    held_out : list of dict
        Per shard; empty when no rows are held out.
    """

    def build(workers: list[str | None] | None, suffix: str) -> tuple[list[Any], list[Any]]:
        summaries, held_out = build_shard_fit_graph(
            placed.X_blocks,
            placed.y_blocks,
            placed.sw_blocks,
            estimator,
            seeds=seeds,
            validation_fraction=validation_fraction,
            classification=classification,
            fusion=fusion,
            token=token + suffix,
            workers=workers,
            run_id=run_id,
        )
        return summaries, held_out or []

    # compute: one fitted model and a few counts per shard; with held-out rows also per-model score sums
    # and, for stacking, the meta-features of the held-out rows
    summaries, held_out = compute_pinned(build, placed)
    return list(summaries), list(held_out)


def build_held_out_graph(
    X_blocks: Sequence[Any],
    y_blocks: Sequence[Any],
    sw_blocks: Sequence[Any] | None,
    members: dict[str, Any],
    fusion: Fusion,
    *,
    token: str,
) -> list[Any]:
    """Delayed held-out evaluations of given members over row blocks (``from_estimators``, checkpoints).

    Parameters
    ----------
    X_blocks, y_blocks, sw_blocks : list of dask.delayed.Delayed
        Row blocks of the held-out data: user-given, or (resumed from a checkpoint) block ``i`` holds the
        held-out rows of shard ``i``.
    members : dict
        ``{"estimators": [...], "classes": ndarray or None}``, or :func:`_collect_members_block`'s result;
        enters the graph once.
    fusion : Fusion
        Unfitted fusion.
    token : str
        Unique suffix of the task keys.

    Returns
    -------
    list of dask.delayed.Delayed
    """
    members_node = dask.delayed(
        members, name=f"{task_prefix('shard members')}-{token}", pure=True, traverse=False
    )
    fusion_node = dask.delayed(fusion, name=f"{task_prefix('fusion')}-{token}", pure=True, traverse=False)
    return [
        dask.delayed(_held_out_block, pure=True)(
            X_block,
            y_blocks[index],
            None if sw_blocks is None else sw_blocks[index],
            members_node,
            fusion_node,
            index,
            dask_key_name=(f"{task_prefix('held out')}-{token}", index),
        )
        for index, X_block in enumerate(X_blocks)
    ]
