"""What the solvers over a partitioned parameter store share: row blocks by worker, losses, watched waits.

Both :func:`~daskml_lab.solvers.partitioned_sgd` and :func:`~daskml_lab.solvers.partitioned_lbfgs` persist the
row blocks once, group them by the worker holding them, run tasks pinned to those workers, and end a fit with a
clear error as soon as a worker holding a parameter shard or rows leaves the cluster (a lost shard's values
are gone: continuing would silently restart part of the model).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from distributed import futures_of, wait
from scipy.special import expit, log_softmax, softmax

from daskml_lab._compat import scheduler_workers
from daskml_lab._runtime.waiting import wait_briefly
from daskml_lab.monitoring import fit_span, start_run
from daskml_lab.solvers._sharded_store import ShardedStore, max_gather_bytes

__all__ = [
    "FitReport",
    "ShardsLostError",
    "as_csr",
    "check_gather",
    "class_parts",
    "compact",
    "explained",
    "gather_watched",
    "group_by_worker",
    "in_fit_span",
    "loss_and_residual",
    "lost_error",
    "place_blocks",
    "run_and_keep",
]

#: The losses the partitioned solvers take (``"squared"``: ``(z - y)^2 / 2``, least squares;
#: ``"squared_hinge"``: ``max(0, 1 - t z)^2`` with ``t = +-1``, one-vs-rest over the outputs).
LOSSES = ("logistic", "multinomial", "squared", "squared_hinge")
#: Seconds between two checks that the workers of the fit are still in the cluster.
WATCH_S = 1.0
#: Seconds to wait, after a call to a shard failed, for the scheduler to notice that its worker has gone.
LOSS_GRACE_S = 10.0
#: ``class_partitions="auto"`` splits the classes over the shards from this many classes on.
AUTO_CLASS_PARTS_MIN_OUTPUTS = 256


def class_parts(
    solver: str, class_partitions: int | str, n_partitions: int | None, client: Any, n_outputs: int
) -> int:
    """The number of class parts of a fit's store (``class_partitions`` checked; before any work).

    ``"auto"``: every shard a class part of its own (the shards each hold all the keys for a range of
    classes) when the model has at least :data:`AUTO_CLASS_PARTS_MIN_OUTPUTS` outputs and no fewer than
    shards, else 1 (the shards split the keys only). An int must divide the number of shards (``n_partitions``,
    or one per worker) and be at most ``n_outputs``.
    """
    n_shards = n_partitions if n_partitions is not None else max(len(scheduler_workers(client)), 1)
    if class_partitions == "auto":
        return n_shards if n_outputs >= max(AUTO_CLASS_PARTS_MIN_OUTPUTS, n_shards) else 1
    given = class_partitions
    if isinstance(given, bool) or not isinstance(given, (int, np.integer)) or given < 1:
        msg = f"{solver}: class_partitions must be 'auto' or a positive int, got {given!r}."
        raise ValueError(msg)
    if n_shards % given or given > n_outputs:
        msg = (
            f"{solver}: class_partitions={given} cannot split the {n_outputs} output(s) over {n_shards} parameter "
            f"shard(s): it must divide the number of shards (model_partitions, or one per worker) and be at "
            f"most the number of outputs. Use a divisor of {n_shards} up to {n_outputs}, or 'auto'."
        )
        raise ValueError(msg)
    return int(given)


def loss_and_residual(
    scores: np.ndarray, y: np.ndarray, weight: np.ndarray, loss: str
) -> tuple[float, np.ndarray]:
    """Weighted loss sum of rows with ``scores`` (``(n, n_outputs)``) and the weighted residual ``dloss/dscore``.

    ``y`` is 0/1 for ``"logistic"`` (one output), class codes for ``"multinomial"``, the target for
    ``"squared"`` (one output; the loss ``(z - y)^2 / 2``). For ``"squared_hinge"``, 0/1 with one output
    (``t = 2 y - 1``), class codes with several: output ``k`` is the problem "class ``k`` against the rest"
    (``t = +1`` for the rows of class ``k``, ``-1`` for the others), their losses summed.
    """
    if loss == "squared_hinge":
        if scores.shape[1] == 1:
            signs = (2.0 * y - 1.0)[:, None]
        else:
            signs = -np.ones_like(scores)
            signs[np.arange(len(y)), y.astype(np.int64)] = 1.0
        slack = np.maximum(0.0, 1.0 - signs * scores)
        losses = np.sum(slack**2, axis=1)
        residual = -2.0 * signs * slack
    elif loss == "squared":
        difference = scores[:, 0] - y
        losses = 0.5 * difference**2
        residual = difference[:, None]
    elif loss == "logistic":
        z = scores[:, 0]
        losses = np.logaddexp(0.0, z) - y * z
        residual = (expit(z) - y)[:, None]
    else:
        log_p = log_softmax(scores, axis=1)
        losses = -log_p[np.arange(len(y)), y.astype(np.int64)]
        residual = softmax(scores, axis=1)
        residual[np.arange(len(y)), y.astype(np.int64)] -= 1.0
    return float(weight @ losses), residual * weight[:, None]


#: Widths up to which :func:`compact` finds the columns present with a table the width of ``X`` (faster than
#: sorting the indices: 0.8 ms against 15 ms for 146,000 indices of 2**18 columns, and an int32 table
#: 60 ms against an int64 one's 125 ms for 10,000,000); wider, it sorts.
COMPACT_TABLE_MAX = 2**22


def compact(X: sp.csr_matrix) -> tuple[np.ndarray, sp.csr_matrix]:
    """The columns present in ``X`` (sorted) and ``X`` restricted to them (columns renumbered)."""
    indices, width = X.indices, X.shape[1]
    if width <= max(COMPACT_TABLE_MAX, 16 * len(indices)):
        # one int32 table: first a mark per column present, then each present column's new number (half the
        # bytes of an int64 table, and the renumbered indices stay int32 for the sparse products)
        index_type = np.int32 if len(indices) < np.iinfo(np.int32).max else np.int64
        table = np.zeros(width, dtype=index_type)
        table[indices] = 1
        columns = np.flatnonzero(table)
        table[columns] = np.arange(len(columns), dtype=index_type)
        local_indices = table[indices]
    else:
        columns, local_indices = np.unique(indices, return_inverse=True)
    local = sp.csr_matrix((X.data, local_indices, X.indptr), shape=(X.shape[0], len(columns)))
    return columns, local


def as_csr(block: Any) -> sp.csr_matrix:
    """A row block as CSR (dense blocks are converted)."""
    return block.tocsr() if sp.issparse(block) else sp.csr_matrix(np.asarray(block))


def group_by_worker(client: Any, persisted: list[Any]) -> dict[str, list[int]]:
    """Block indices grouped by the worker holding the block of ``X`` (sorted addresses)."""
    X_futures = futures_of(persisted[0])
    keys = [f.key for f in X_futures]
    order = {key: index for index, key in enumerate(sorted(keys, key=lambda k: k[1:]))}
    who_has = client.who_has(X_futures)
    groups: dict[str, list[int]] = {}
    for key in keys:
        holders = sorted(who_has.get(key, ()))
        groups.setdefault(holders[0], []).append(order[key])
    return {address: sorted(indices) for address, indices in sorted(groups.items())}


class ShardsLostError(RuntimeError):
    """A worker holding a parameter shard or rows of a partitioned fit left the cluster during the fit."""


def lost_error(
    client: Any, store: ShardedStore, groups: dict[str, list[int]], solver: str
) -> RuntimeError | None:
    """The clear error (:class:`ShardsLostError`) when a worker of the fit has left the cluster, else None.

    A lost shard's values are gone with its worker, and a fit continued without them would silently restart
    part of the model: the fit ends; a refit with the same ``checkpoint`` resumes from the last saved epoch.
    """
    lost = sorted((set(store.workers) | set(groups)) - set(scheduler_workers(client)))
    if not lost:
        return None
    shards = [s for s, address in enumerate(store.workers) if address in lost]
    msg = (
        f"{solver}: worker(s) {lost} left the cluster during the fit, with parameter shard(s) {shards} of the "
        "model and their rows: their values are gone, the fit cannot go on without them. Fit again once the "
        "cluster is healthy (a fit given checkpoint=DIR resumes from its last checkpointed epoch)."
    )
    return ShardsLostError(msg)


def explained(
    client: Any, store: ShardedStore, groups: dict[str, list[int]], err: Exception, solver: str
) -> BaseException:
    """``err`` (a failed call to a shard) replaced by the lost-worker error once the scheduler sees the loss."""
    if not isinstance(err, OSError) and not store.lost_shards():
        return err  # not a lost shard: the error is the caller's
    deadline = time.monotonic() + LOSS_GRACE_S
    while time.monotonic() < deadline:
        lost = lost_error(client, store, groups, solver)
        if lost is not None:
            return lost
        time.sleep(0.2)
    return err


def gather_watched(
    client: Any, calls: list[Any], store: ShardedStore, groups: dict[str, list[int]], solver: str
) -> list[Any]:
    """The tasks' results; the lost-worker error as soon as a worker of the fit has left (never a hang)."""
    while True:
        wait_briefly(calls, WATCH_S)
        lost = lost_error(client, store, groups, solver)
        if lost is not None:
            client.cancel(calls)
            raise lost
        if all(call.done() for call in calls):
            # gather: small results, one per worker
            return client.gather(calls)


def in_fit_span(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the decorated solver inside ``fit_span(name)``: its tasks grouped under the span, and the training
    run it starts ends with it (``failed`` if it raises)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def in_span(*args: Any, **kwargs: Any) -> Any:
            with fit_span(name):
                return function(*args, **kwargs)

        return in_span

    return decorate


class FitReport:
    """What a fit over a partitioned store tells after each iteration: the training page and the callback.

    Parameters
    ----------
    store : ShardedStore
        The store (for its shards' workers).
    callback : callable or None
        The caller's ``callback(record)``.
    info : dict
        Small facts shown with the run (solver, shards, keys).
    """

    def __init__(
        self, store: ShardedStore, callback: Callable[..., Any] | None, info: Mapping[str, Any]
    ) -> None:
        self.run = start_run("solver", info=info)
        self.workers = list(store.workers)
        self.callback = callback

    def __call__(self, record: Mapping[str, Any], stats: Sequence[Mapping[str, Any]]) -> None:
        """Report one iteration's ``record`` and every shard's counters ``stats`` so far."""
        self.run.iteration(record)
        self.run.store(
            [
                {"shard": shard, "worker": self.workers[shard], **counters}
                for shard, counters in enumerate(stats)
            ]
        )
        if self.callback is not None:
            self.callback(record)


def run_and_keep(
    client: Any,
    store: ShardedStore,
    groups: dict[str, list[int]],
    solver: str,
    gather: bool,
    run: Callable[[], Any],
) -> Any:
    """``run()`` (the solver's iterations, returning a ``PartitionedResult``), then the parameters gathered
    (``gather=True``, the store closed) or the store kept open in the result. A call to a shard that failed
    because its worker left becomes the lost-worker error; on any error the store is closed."""
    try:
        try:
            result = run()
        except (OSError, RuntimeError) as err:  # a shard did not answer: say whether its worker left
            replaced = explained(client, store, groups, err, solver)
            if replaced is err:
                raise
            raise replaced from err
        result.shard_stats = store.stats()
        if gather:
            result.W = store.gather()
        else:
            result.store = store
    except BaseException:
        store.close()
        raise
    if gather:
        store.close()
    return result


def check_gather(solver: str, n_keys: int, n_outputs: int, gather: bool) -> None:
    """Refuse ``gather=True`` for a model above ``max_gather_bytes`` (before any work)."""
    if gather and n_keys * n_outputs * 8 > max_gather_bytes():
        msg = (
            f"{solver}: the model ({n_keys} x {n_outputs} float64) is larger than {max_gather_bytes()} bytes, the "
            "most brought to the client (dask config daskml_lab.solvers.store.max_gather_bytes). Pass "
            "gather=False to keep it in the store (the estimators then keep a partitioned coef_), or raise the "
            "limit if the client has the memory."
        )
        raise ValueError(msg)


@dataclass
class PlacedBlocks:
    """The row blocks of a partitioned fit, persisted and grouped by the worker holding them.

    Attributes
    ----------
    workers : list of str
        The cluster's workers (sorted addresses), where the shards go.
    groups : dict
        Worker address -> the indices of the blocks it holds.
    block_futures : list of list
        For ``X``, ``y`` (and the weights): the blocks' futures, by block index.
    has_weight : bool
        Whether sample weights are among them.
    n_features : int
        Columns of ``X``; the store has ``n_features + 1`` keys (the intercept last).
    """

    workers: list[str]
    groups: dict[str, list[int]]
    block_futures: list[list[Any]]
    has_weight: bool
    n_features: int


def place_blocks(
    client: Any, X: Any, y: Any, sample_weight: Any, *, solver: str, loss: str, n_outputs: int, gather: bool
) -> PlacedBlocks:
    """Check the loss and the gather size, persist the row blocks once and group them by worker."""
    if loss not in LOSSES:
        msg = f"{solver}: loss must be one of {list(LOSSES)}, got {loss!r}."
        raise ValueError(msg)
    n_features = int(X.shape[1])
    check_gather(solver, n_features + 1, n_outputs, gather)
    workers = sorted(scheduler_workers(client))
    collections = [X, y] if sample_weight is None else [X, y, sample_weight]
    # persist: the row blocks stay on the workers for the whole fit (the only data-sized step)
    persisted = client.persist(collections)
    wait([f for c in persisted for f in futures_of(c)])
    groups = group_by_worker(client, persisted)
    # by block index (keys are (name, i) or (name, i, 0))
    block_futures = [sorted(futures_of(c), key=lambda f: f.key[1:]) for c in persisted]
    return PlacedBlocks(workers, groups, block_futures, sample_weight is not None, n_features)
