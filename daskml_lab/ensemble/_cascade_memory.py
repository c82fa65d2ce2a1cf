"""The memory plan of the Cascade SVM: every SVC of the cascade sized to the workers before it is trained.

An SVC trained on ``n`` rows of ``d`` features holds, on its worker, about :data:`ROW_COPIES` copies of the
rows (the shard or the children's support vectors, their union, the SVC's support vectors and the node's
result) and libsvm's kernel cache, which grows up to ``min(cache_size MiB, 4 n**2 bytes)`` (one float32 per
kernel entry). With ``cache_size=200`` (scikit-learn's default) a merge of a few thousand support vectors
takes 200 MiB more than the worker held: on small workers the nanny kills it, the scheduler retries the merge
elsewhere, and after a few restarts the fit fails with ``KilledWorker``; or the worker stays above its pause
threshold (its process memory seldom shrinks) and the fit hangs.

:func:`plan_cascade_memory` decides before the work, from the workers' ``memory_limit`` and use
(:func:`daskml_lab._runtime.memory.measure_workers`): the *budget* of one SVC is the free memory of the
smallest worker below its ``distributed.worker.memory.pause`` fraction. A shard's SVC (whose rows are known)
that cannot fit even with the smallest cache is refused at once. A merge of ``fan_in`` shards holds at most
``fan_in`` shards' rows; when that bound does not fit with ``cache_size``, the cache is reduced (it changes
the speed of libsvm, never its solution), then ``fan_in`` (a smaller fan-in gives smaller merges). Each node
then checks its actual size against the budget (:func:`node_cache_size`): the cache of a larger merge is
reduced further, and a merge whose rows alone exceed the budget fails with a clear error instead of killing
workers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from daskml_lab._runtime.memory import WorkerMemory, worker_room

__all__ = [
    "MIN_CACHE_MB",
    "ROW_COPIES",
    "CascadeMemoryPlan",
    "node_cache_size",
    "plan_cascade_memory",
    "svc_nbytes",
]

logger = logging.getLogger(__name__)

#: Copies of an SVC's rows a node holds at once (input, union, support vectors, result).
ROW_COPIES = 4
#: Smallest kernel cache the plan gives an SVC, in MiB (smaller caches make libsvm recompute most kernels).
MIN_CACHE_MB = 8.0
#: libsvm's unit of ``cache_size``.
MIB = float(2**20)


def svc_nbytes(n_rows: int, n_features: int, cache_size: float) -> float:
    """Estimated peak memory, in bytes, of training one SVC of the cascade on a worker.

    Parameters
    ----------
    n_rows, n_features : int
        The SVC's training rows.
    cache_size : float
        libsvm's kernel cache, in MiB (it fills up to at most ``4 * n_rows ** 2`` bytes).

    Examples
    --------
    >>> svc_nbytes(1000, 10, 200) / 1e6  # 4 copies of 80 kB, and a 4 MB cache (all the kernel)
    4.32
    """
    rows = float(ROW_COPIES) * n_rows * n_features * 8
    return rows + min(cache_size * MIB, 4.0 * float(n_rows) ** 2)


@dataclass(frozen=True)
class CascadeMemoryPlan:
    """What :func:`plan_cascade_memory` decided.

    Attributes
    ----------
    cache_size : float
        libsvm's kernel cache of every SVC, in MiB (at most the user's ``cache_size``).
    fan_in : int
        Nodes merged into one (at most the user's ``fan_in``).
    budget : float
        Bytes one SVC may take on a worker (``inf`` without workers with a ``memory_limit``).
    reason : str
        What was changed and why (empty when nothing was).
    """

    cache_size: float
    fan_in: int
    budget: float = math.inf
    reason: str = ""


def _limits(workers: Sequence[WorkerMemory]) -> str:
    smallest = min(worker.limit for worker in workers)
    return f"below the pause threshold of the smallest worker (memory_limit {smallest / 1e6:.0f} MB)"


def plan_cascade_memory(
    *,
    shard_rows: int,
    n_features: int,
    fan_in: int,
    cache_size: float,
    workers: Sequence[WorkerMemory],
) -> CascadeMemoryPlan:
    """Size the cascade's SVCs to the workers, or refuse a shard no worker can train.

    Parameters
    ----------
    shard_rows : int
        Rows of the largest shard.
    n_features : int
        Features of ``X``.
    fan_in : int
        The user's fan-in.
    cache_size : float
        The user's ``cache_size``, in MiB.
    workers : sequence of WorkerMemory
        The workers' memory; empty: nothing is bounded.

    Returns
    -------
    CascadeMemoryPlan

    Raises
    ------
    ValueError
        When the SVC of the largest shard does not fit the budget even with the smallest cache
        (:data:`MIN_CACHE_MB`); the message gives the sizes and the fixes.

    Examples
    --------
    >>> workers = [WorkerMemory(400 * 2**20, 250 * 2**20)] * 2
    >>> plan = plan_cascade_memory(shard_rows=4000, n_features=20, fan_in=2, cache_size=200, workers=workers)
    >>> plan.cache_size, plan.fan_in, round(plan.budget / 2**20)
    (65.0, 2, 70)
    """
    if not workers:
        return CascadeMemoryPlan(float(cache_size), int(fan_in))
    budget = worker_room(workers, "pause")
    shard_need = svc_nbytes(shard_rows, n_features, MIN_CACHE_MB)
    if shard_need > budget:
        rows_fit = max(
            1, int(shard_rows * max(budget - MIN_CACHE_MB * MIB, 0.0) / (shard_need - MIN_CACHE_MB * MIB))
        )
        msg = (
            f"CascadeSVC: the SVC of a shard of {shard_rows} rows x {n_features} features needs about "
            f"{shard_need / 1e6:.0f} MB on its worker (about {ROW_COPIES} copies of the rows and a kernel cache "
            f"of {MIN_CACHE_MB:g} MiB), but a worker has {max(budget, 0.0) / 1e6:.0f} MB free {_limits(workers)}: "
            f"the workers would be killed by their nanny. Use more shards (shards of at most about {rows_fit} "
            "rows), fewer features, or workers with more memory."
        )
        raise ValueError(msg)
    for candidate in range(int(fan_in), 1, -1):
        merge_rows = candidate * shard_rows
        rows = svc_nbytes(merge_rows, n_features, 0.0)
        room_mb = (budget - rows) / MIB
        if svc_nbytes(merge_rows, n_features, cache_size) <= budget:
            cache = float(cache_size)
        elif room_mb >= MIN_CACHE_MB:
            cache = float(math.floor(room_mb))
        else:
            continue
        changes = []
        if cache < cache_size:
            changes.append(f"cache_size {cache_size:g} -> {cache:g} MiB")
        if candidate < fan_in:
            changes.append(f"fan_in {fan_in} -> {candidate}")
        reason = ""
        if changes:
            reason = (
                f"{', '.join(changes)}, so that a merge of {candidate} shards of {shard_rows} rows fits in "
                f"{budget / 1e6:.0f} MB {_limits(workers)}"
            )
        return CascadeMemoryPlan(cache, candidate, budget, reason)
    # Even two whole shards do not fit: merges are usually far smaller (support vectors only), and each checks
    # its actual size (node_cache_size).
    cache = float(
        min(cache_size, max(MIN_CACHE_MB, math.floor((budget - svc_nbytes(shard_rows, n_features, 0)) / MIB)))
    )
    reason = (
        f"cache_size {cache_size:g} -> {cache:g} MiB and fan_in {fan_in} -> 2: a merge of two whole shards of "
        f"{shard_rows} rows would not fit in {budget / 1e6:.0f} MB {_limits(workers)}; a merge of more support "
        "vectors than fit will fail with a clear error"
    )
    return CascadeMemoryPlan(min(cache, float(cache_size)), 2, budget, reason)


def node_cache_size(
    n_rows: int, n_features: int, cache_size: float, budget: float, *, position: tuple[int, int, int]
) -> float:
    """The kernel cache (MiB) of one node's SVC within the plan's budget; a clear error if its rows do not fit.

    Parameters
    ----------
    n_rows, n_features : int
        The node's training rows.
    cache_size : float
        The planned cache, in MiB.
    budget : float
        Bytes the SVC may take (``inf``: no bound).
    position : tuple of int
        ``(pass, layer, node)``, for the message.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When the rows alone leave less than :data:`MIN_CACHE_MB` of the budget (raised in the node's task,
        before libsvm allocates anything: the fit fails instead of killing the worker).

    Examples
    --------
    >>> node_cache_size(1000, 10, 200.0, float("inf"), position=(0, 1, 0))
    200.0
    >>> node_cache_size(6000, 10, 200.0, 100 * 2**20, position=(0, 1, 0))
    98.0
    """
    if svc_nbytes(n_rows, n_features, cache_size) <= budget:
        return float(cache_size)
    room_mb = (budget - svc_nbytes(n_rows, n_features, 0.0)) / MIB
    if room_mb >= MIN_CACHE_MB:
        return float(min(cache_size, math.floor(room_mb)))
    pass_index, layer, index = position
    need = svc_nbytes(n_rows, n_features, MIN_CACHE_MB)
    msg = (
        f"CascadeSVC: node {index} of layer {layer} (pass {pass_index}) would train an SVC on {n_rows} rows "
        f"x {n_features} features (support vectors of its children), which needs about {need / 1e6:.0f} MB, "
        f"but the plan of this fit gives one SVC {max(budget, 0.0) / 1e6:.0f} MB (the free memory of the "
        "smallest worker below its pause threshold); it was stopped before it could get the worker killed. "
        "Use workers with more memory or fewer features, n_feedback=0 (fewer rows reach the root), or "
        "ShardEnsembleClassifier(SVC(...)), which never merges support vectors."
    )
    raise ValueError(msg)
