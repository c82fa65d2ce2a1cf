"""The per-worker evaluation machinery behind :class:`~daskml_lab.solvers.BlockedProblem`.

A solver iteration must cost one round trip that carries only the parameters out and ``(scalar, d-vector)``
per worker back. The engines here achieve that in different settings:

``"actors"`` (default with a distributed client)
    The row blocks are persisted once; every worker gets one long-lived :class:`_WorkerActor` (a Dask actor,
    key ``daskml-solver-state-...``) built from the blocks it already holds. An evaluation calls
    ``actor.loss_grad(W)`` on every worker at once; the call goes from the client straight to the worker, with
    no task and no scheduler bookkeeping, and the worker sums over its blocks before answering.
``"tasks"``
    The same placement, but an evaluation submits one ``daskml-loss-grad`` task per worker, pinned to the
    worker and depending on its block futures. Slower per iteration (scheduler round trip), but every
    evaluation appears in the dashboard's task stream.
``"local"`` (no distributed client)
    The blocks are computed once with the current dask scheduler and kept in this process; one
    :class:`LocalBlocks` plays the role of the single worker.
``"stream"`` (the data do not fit in memory, or ``persist=False``)
    Nothing is kept: every evaluation runs a graph of one ``daskml-loss-grad`` task per row block over the
    original (lazy) source of the blocks, summed in a tree. Each evaluation then re-reads the data.

Whatever the engine, per-worker work beyond the loss goes through ``map_workers(func, *args)``, which runs
``func(local_blocks, *args)`` once per worker with a :class:`LocalBlocks` (that worker's blocks and a
``state`` dict that survives between calls) and returns the small results in worker order.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np

from daskml_lab.monitoring import task_prefix
from daskml_lab.solvers._objectives import PreparedBlock, _aligned_block, _loss_grad_prepared, _prepare_block

logger = logging.getLogger(__name__)

__all__ = ["EngineSpec", "LocalBlocks", "WorkerCall"]

#: Rebuild attempts after a lost worker before an evaluation gives up.
_MAX_REBUILDS = 3


@dataclass(frozen=True)
class EngineSpec:
    """What every worker needs to know about the problem (small, sent once).

    Attributes
    ----------
    loss : str
    n_outputs : int
    fit_intercept : bool
    loss_options : dict or None
    """

    loss: str
    n_outputs: int
    fit_intercept: bool
    loss_options: dict | None = None


class LocalBlocks:
    """The row blocks one worker holds, as seen by functions run with ``problem.map_workers``.

    Parameters
    ----------
    spec : EngineSpec
        The problem description.
    indices : list of int
        Global row-block indices, in increasing order.
    blocks : list of PreparedBlock
        The blocks, in the order of ``indices``.

    Attributes
    ----------
    indices : list of int
        Global indices of the blocks held here.
    blocks : list of PreparedBlock
        ``(X, target, weight, sum_weight)`` per block: the block (numpy or CSR), the target encoded for the
        loss (``2 y - 1`` for binary losses, class codes, or real values), weights or None, and their sum.
    state : dict
        Free for the caller: it survives between ``map_workers`` calls for the lifetime of the problem (except
        with the ``"stream"`` engine, where it is new at each call).
    n_rows : int
        Rows held here.
    sum_weight : float
        Sum of the sample weights held here.
    """

    def __init__(self, spec: EngineSpec, indices: list[int], blocks: list[PreparedBlock]) -> None:
        self.spec = spec
        self.indices = list(indices)
        self.blocks = list(blocks)
        self.state: dict[str, Any] = {}
        self.n_rows = int(sum(block.X.shape[0] for block in self.blocks))
        self.sum_weight = float(sum(block.sum_weight for block in self.blocks))

    @classmethod
    def from_raw(
        cls, spec: EngineSpec, indices: list[int], X_blocks: list, y_blocks: list, sw_blocks: list | None
    ):
        """Prepare raw ``(X, y, sample_weight)`` blocks (checks labels against the loss)."""
        sw_blocks = sw_blocks if sw_blocks is not None else [None] * len(X_blocks)
        prepared = [
            _prepare_block(X, y, sw, loss=spec.loss, n_outputs=spec.n_outputs, block_index=index)
            for index, X, y, sw in zip(indices, X_blocks, y_blocks, sw_blocks, strict=True)
        ]
        return cls(spec, indices, prepared)

    def loss_grad(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        """Unscaled data term and gradient summed over the local blocks (float64).

        Parameters
        ----------
        W : ndarray of shape (n_params, n_outputs)

        Returns
        -------
        loss : float
        grad : ndarray of float64 of shape (n_params, n_outputs)
        """
        spec = self.spec
        W = np.asarray(W)
        out = np.zeros((W.shape[0], spec.n_outputs))
        total = 0.0
        for block in self.blocks:
            part, _ = _loss_grad_prepared(
                block,
                W,
                loss=spec.loss,
                fit_intercept=spec.fit_intercept,
                loss_options=spec.loss_options,
                out=out,
            )
            total += part
        return total, out

    def loss_grad_batch(self, batch: PreparedBlock, W: np.ndarray) -> tuple[float, np.ndarray]:
        """Unscaled data term and gradient over one mini-batch from :meth:`iter_minibatches`."""
        spec = self.spec
        return _loss_grad_prepared(
            batch, W, loss=spec.loss, fit_intercept=spec.fit_intercept, loss_options=spec.loss_options
        )

    def iter_minibatches(self, batch_size: int, *, entropy: int, epoch: int = 0) -> Iterator[PreparedBlock]:
        """Mini-batches of about ``batch_size`` rows covering every local row once, in a random order.

        The blocks are visited in a random order and the rows of each block are shuffled; the random streams
        come from ``entropy`` combined with ``epoch`` and each block's global index, so they do not depend on
        which worker holds the block.

        Parameters
        ----------
        batch_size : int
            Rows per mini-batch (the last one of a block may be smaller).
        entropy : int
            Root entropy (``daskml_lab.data._blocks.root_entropy(random_state)``).
        epoch : int, default=0
            Pass number, to draw a new order each pass.

        Yields
        ------
        PreparedBlock
            A mini-batch; evaluate it with :meth:`loss_grad_batch`.
        """
        from daskml_lab.data._blocks import block_rng

        order_rng = block_rng(entropy, 0, epoch, *self.indices[:1])
        for position in order_rng.permutation(len(self.blocks)):
            block = self.blocks[position]
            rng = block_rng(entropy, 1, epoch, self.indices[position])
            rows = rng.permutation(block.X.shape[0])
            for start in range(0, rows.size, batch_size):
                yield _take_rows(block, np.sort(rows[start : start + batch_size]))


def _take_rows(block: PreparedBlock, rows: np.ndarray) -> PreparedBlock:
    weight = None if block.weight is None else block.weight[rows]
    sum_weight = float(rows.size) if weight is None else float(np.sum(weight, dtype=np.float64))
    return PreparedBlock(block.X[rows], block.target[rows], weight, sum_weight)


class WorkerCall:
    """Handle on one running ``map_workers``-style call: ``result(timeout_s)`` and ``done()``."""

    def __init__(self, future: Any = None, value: Any = None, error: BaseException | None = None) -> None:
        self._future = future
        self._value = value
        self._error = error

    def done(self) -> bool:
        """Whether the call has finished."""
        return self._future is None or self._future.done()

    def result(self, timeout_s: float | None = None) -> Any:
        """The call's return value (waits at most ``timeout_s`` seconds, then raises ``TimeoutError``)."""
        if self._future is not None:
            return self._future.result(timeout=timeout_s)
        if self._error is not None:
            raise self._error
        return self._value


# ---------------------------------------------------------------------------------------------------------
# worker side


class _WorkerActor:
    """Long-lived per-worker state: the worker's blocks, prepared once, answering evaluations directly."""

    def __init__(
        self, spec: EngineSpec, indices: list[int], n_blocks: int, has_weight: bool, *arrays: Any
    ) -> None:
        X_blocks = list(arrays[:n_blocks])
        y_blocks = list(arrays[n_blocks : 2 * n_blocks])
        sw_blocks = list(arrays[2 * n_blocks :]) if has_weight else None
        self.local = LocalBlocks.from_raw(spec, indices, X_blocks, y_blocks, sw_blocks)

    def describe(self) -> tuple[int, float]:
        return self.local.n_rows, self.local.sum_weight

    def loss_grad(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        return self.local.loss_grad(W)

    def run(self, func: Callable, args: tuple) -> Any:
        return func(self.local, *args)


def _loss_grad_worker_task(
    spec: EngineSpec, indices: list[int], n_blocks: int, has_weight: bool, W: Any, *arrays
):
    """Task body of the ``"tasks"`` engine: prepare the local blocks and sum their loss and gradient."""
    actor = _WorkerActor(spec, indices, n_blocks, has_weight, *arrays)
    return actor.loss_grad(W)


def _run_worker_task(
    spec: EngineSpec, indices: list[int], n_blocks: int, has_weight: bool, func, args, *arrays
):
    actor = _WorkerActor(spec, indices, n_blocks, has_weight, *arrays)
    return actor.run(func, args)


def _loss_grad_stream_block(X: Any, y: Any, sw: Any, W: np.ndarray, spec: EngineSpec, index: int):
    """Task body of the ``"stream"`` engine: one block's loss and gradient."""
    local = LocalBlocks.from_raw(spec, [index], [X], [y], None if sw is None else [sw])
    return local.loss_grad(W)


def _sum_parts(*parts: tuple[float, np.ndarray]) -> tuple[float, np.ndarray]:
    total = sum(part[0] for part in parts)
    grad = parts[0][1].copy()
    for part in parts[1:]:
        grad += part[1]
    return total, grad


def _run_stream_block(
    X: Any, y: Any, sw: Any, spec: EngineSpec, index: int, func: Callable, args: tuple
) -> Any:
    local = LocalBlocks.from_raw(spec, [index], [X], [y], None if sw is None else [sw])
    return func(local, *args)


# ---------------------------------------------------------------------------------------------------------
# client side


class _Engine:
    """Interface shared by the engines."""

    name = "base"
    n_workers = 1

    def start(self) -> tuple[int, float]:  # pragma: no cover - interface
        raise NotImplementedError

    def loss_grad(self, W: np.ndarray) -> tuple[float, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def submit_workers(self, func: Callable, args: tuple) -> list[WorkerCall]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Drop every reference to data and per-worker state."""


class LocalEngine(_Engine):
    """All blocks in this process (no distributed client)."""

    name = "local"

    def __init__(self, spec: EngineSpec, X: Any, y: Any, sample_weight: Any) -> None:
        self.spec, self._arrays = spec, (X, y, sample_weight)
        self.local: LocalBlocks | None = None

    def start(self) -> tuple[int, float]:
        X, y, sw = self._arrays
        parts = [X.to_delayed().ravel().tolist(), y.to_delayed().ravel().tolist()]
        if sw is not None:
            parts.append(sw.to_delayed().ravel().tolist())
        # compute: the row blocks, kept in this process for the whole fit (the local path has no workers)
        (computed,) = dask.compute(parts)
        n_blocks = len(computed[0])
        sw_blocks = computed[2] if sw is not None else None
        self.local = LocalBlocks.from_raw(
            self.spec, list(range(n_blocks)), computed[0], computed[1], sw_blocks
        )
        self._arrays = (None, None, None)
        return self.local.n_rows, self.local.sum_weight

    def loss_grad(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        return self.local.loss_grad(W)

    def submit_workers(self, func: Callable, args: tuple) -> list[WorkerCall]:
        try:
            return [WorkerCall(value=func(self.local, *args))]
        except Exception as err:
            return [WorkerCall(error=err)]

    def close(self) -> None:
        self.local = None


class StreamEngine(_Engine):
    """Nothing persisted: every evaluation is a graph of one task per block over the lazy source, summed."""

    name = "stream"

    def __init__(
        self,
        spec: EngineSpec,
        X: Any,
        y: Any,
        sample_weight: Any,
        client: Any,
        timeout_s: float,
        split_every: int = 8,
    ) -> None:
        self.spec, self.client, self.timeout_s, self.split_every = spec, client, timeout_s, split_every
        self._X = X.to_delayed().ravel().tolist()
        self._y = y.to_delayed().ravel().tolist()
        self._sw = None if sample_weight is None else sample_weight.to_delayed().ravel().tolist()
        self.n_workers = 1 if client is None else max(1, len(client.scheduler_info().get("workers", {})))

    def _compute(self, value: Any) -> Any:
        if self.client is None:
            # compute: one small result (loss and gradient, or a list of small per-block results)
            (result,) = dask.compute(value)
            return result
        from distributed import wait

        # compute: one small result (loss and gradient, or a list of small per-block results)
        futures = self.client.compute(value)
        wait(futures if isinstance(futures, list) else [futures], timeout=self.timeout_s)
        return self.client.gather(futures)

    def _blocks(self) -> Iterator[tuple[int, Any, Any, Any]]:
        for index, (X, y) in enumerate(zip(self._X, self._y, strict=True)):
            yield index, X, y, None if self._sw is None else self._sw[index]

    def start(self) -> tuple[int, float]:
        from dask import delayed

        token = uuid.uuid4().hex[:8]
        counts = [
            delayed(_count_block, name=f"{task_prefix('count rows')}-{token}-{index}")(y, sw)
            for index, _, y, sw in self._blocks()
        ]
        totals = self._compute(counts)
        return int(sum(c[0] for c in totals)), float(sum(c[1] for c in totals))

    def loss_grad(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        from dask import delayed

        token = uuid.uuid4().hex[:8]
        W_node = delayed(W, name=f"{task_prefix('params')}-{token}", traverse=False)
        parts = [
            delayed(_loss_grad_stream_block, name=f"{task_prefix('loss grad')}-{token}-{index}", pure=False)(
                X, y, sw, W_node, self.spec, index
            )
            for index, X, y, sw in self._blocks()
        ]
        level = 0
        while len(parts) > 1:
            parts = [
                delayed(_sum_parts, name=f"{task_prefix('loss grad sum')}-{token}-{level}-{i}", pure=False)(
                    *parts[i : i + self.split_every]
                )
                for i in range(0, len(parts), self.split_every)
            ]
            level += 1
        return self._compute(parts[0])

    def submit_workers(self, func: Callable, args: tuple) -> list[WorkerCall]:
        from dask import delayed

        token = uuid.uuid4().hex[:8]
        calls = [
            delayed(_run_stream_block, name=f"{task_prefix('worker run')}-{token}-{index}", pure=False)(
                X, y, sw, self.spec, index, func, args
            )
            for index, X, y, sw in self._blocks()
        ]
        try:
            return [WorkerCall(value=value) for value in self._compute(calls)]
        except Exception as err:
            return [WorkerCall(error=err)]


def _count_block(y: Any, sw: Any) -> tuple[int, float]:
    n_rows = int(np.shape(y)[0])
    return n_rows, float(n_rows if sw is None else np.sum(sw, dtype=np.float64))


class DistributedEngine(_Engine):
    """Persisted blocks, one unit of work per worker per evaluation (actors or pinned tasks)."""

    def __init__(
        self,
        spec: EngineSpec,
        X: Any,
        y: Any,
        sample_weight: Any,
        client: Any,
        timeout_s: float,
        mode: str = "actors",
    ) -> None:
        self.spec, self.client, self.timeout_s, self.mode = spec, client, timeout_s, mode
        self.name = mode
        self._collections = (X, y, sample_weight)
        self._block_rows = tuple(int(c) for c in X.chunks[0])
        self._token = uuid.uuid4().hex[:10]
        self._persisted: list[Any] = []
        self._block_futures: list[tuple[Any, Any, Any]] = []
        self._placement: dict[str, list[int]] = {}
        self._actors: list[Any] = []
        self._actor_futures: list[Any] = []
        self._worker_args: list[tuple] = []
        self.n_rebuilds = 0

    # -- set-up -------------------------------------------------------------------------------------------
    def start(self) -> tuple[int, float]:
        from distributed import futures_of

        X, y, sw = self._collections
        # Blocks that travelled over the network can be misaligned in memory (slow BLAS paths): realign them
        # on the worker once, as part of the persist, so that the stored copy is the one the kernels read.
        X = X.map_blocks(_aligned_block, dtype=X.dtype, meta=X._meta, token=task_prefix("align"))
        collections = [X, y] if sw is None else [X, y, sw]
        # persist: the row blocks stay on the workers for the whole fit (the only data-sized step)
        self._persisted = self.client.persist(collections)
        futures = {f.key: f for c in self._persisted for f in futures_of(c)}
        keys = [list(_flatten_keys(c.__dask_keys__())) for c in self._persisted]
        self._block_futures = [tuple(futures[ks[i]] for ks in keys) for i in range(len(keys[0]))]
        self._collections = (None, None, None)
        return self._build()

    def _wait(self, futures: list[Any], what: str) -> None:
        from distributed import wait

        try:
            wait(futures, timeout=self.timeout_s)
        except TimeoutError as err:
            msg = (
                f"Timed out after {self.timeout_s:g} s waiting for {what} on the cluster at "
                f"{self.client.scheduler.address}. Check that the workers are alive and have memory to "
                "hold the data, or raise the timeout (dask.config daskml_lab.solvers.timeout_s)."
            )
            raise TimeoutError(msg) from err
        for future in futures:
            if future.status == "error":
                future.result()  # raises the task's own exception

    def _build(self) -> tuple[int, float]:
        """Wait for the blocks, place them on workers, and create the per-worker state."""
        self._release_state()
        flat = [f for triple in self._block_futures for f in triple]
        self._wait(flat, "the row blocks to be computed and held in memory")
        X_futures = [triple[0] for triple in self._block_futures]
        who_has = self.client.who_has(X_futures)
        sizes = list(self._block_rows)
        holders = [next(iter(who_has.get(f.key, ())), None) for f in X_futures]
        workers = sorted(self.client.scheduler_info()["workers"])
        self._placement = _balance(holders, sizes, workers)
        self.n_workers = len(self._placement)
        has_weight = len(self._block_futures[0]) == 3
        self._worker_args = []
        for address, indices in self._placement.items():
            triples = [self._block_futures[i] for i in indices]
            arrays = [t[0] for t in triples] + [t[1] for t in triples]
            if has_weight:
                arrays += [t[2] for t in triples]
            self._worker_args.append((address, indices, len(indices), has_weight, arrays))
        logger.debug(
            "solver engine %s: blocks per worker %s",
            self.mode,
            {a: len(i) for a, i in self._placement.items()},
        )
        if self.mode == "actors":
            self._actor_futures = [
                self.client.submit(
                    _WorkerActor,
                    self.spec,
                    indices,
                    n,
                    has_weight,
                    *arrays,
                    workers=[address],
                    allow_other_workers=False,
                    actor=True,
                    pure=False,
                    key=f"{task_prefix('solver state')}-{self._token}-{self.n_rebuilds}-{position}",
                )
                for position, (address, indices, n, has_weight, arrays) in enumerate(self._worker_args)
            ]
            self._wait(self._actor_futures, "the per-worker solver state")
            self._actors = [f.result(timeout=self.timeout_s) for f in self._actor_futures]
            described = [a.describe().result(timeout=self.timeout_s) for a in self._actors]
        else:
            described = [c.result(self.timeout_s) for c in self._submit_tasks(_describe_local, ())]
        return int(sum(d[0] for d in described)), float(sum(d[1] for d in described))

    def _release_state(self) -> None:
        self._actors = []
        for future in self._actor_futures:
            future.release()
        self._actor_futures = []

    # -- evaluation ---------------------------------------------------------------------------------------
    def _submit_tasks(self, func: Callable, args: tuple) -> list[WorkerCall]:
        token = uuid.uuid4().hex[:8]
        prefix = task_prefix("worker run")
        return [
            WorkerCall(
                self.client.submit(
                    _run_worker_task,
                    self.spec,
                    indices,
                    n,
                    has_weight,
                    func,
                    args,
                    *arrays,
                    workers=[address],
                    allow_other_workers=True,
                    pure=False,
                    key=f"{prefix}-{token}-{position}",
                )
            )
            for position, (address, indices, n, has_weight, arrays) in enumerate(self._worker_args)
        ]

    def _call_all(self, method: str, args: tuple) -> list[Any]:
        if self.mode == "actors":
            calls = [getattr(actor, method)(*args) for actor in self._actors]
            return [call.result(timeout=self.timeout_s) for call in calls]
        token = uuid.uuid4().hex[:8]
        prefix = task_prefix("loss grad")
        futures = [
            self.client.submit(
                _loss_grad_worker_task,
                self.spec,
                indices,
                n,
                has_weight,
                args[0],
                *arrays,
                workers=[address],
                allow_other_workers=True,
                pure=False,
                key=f"{prefix}-{token}-{position}",
            )
            for position, (address, indices, n, has_weight, arrays) in enumerate(self._worker_args)
        ]
        self._wait(futures, "the per-worker loss and gradient")
        return self.client.gather(futures)

    def _with_rebuild(self, method: str, args: tuple) -> list[Any]:
        from distributed.comm import CommClosedError

        for attempt in range(_MAX_REBUILDS + 1):
            try:
                return self._call_all(method, args)
            except (OSError, CommClosedError, TimeoutError, RuntimeError) as err:
                if isinstance(err, RuntimeError) and "lost" not in str(err).lower():
                    raise
                if attempt == _MAX_REBUILDS:
                    msg = (
                        f"The solver lost contact with its workers {attempt + 1} times in a row (last error: "
                        f"{err!r}); giving up. Check the cluster at {self.client.scheduler.address}."
                    )
                    raise RuntimeError(msg) from err
                logger.warning("solver engine: a worker was lost (%r); rebuilding its blocks and state", err)
                self.n_rebuilds += 1
                time.sleep(0.2 * (attempt + 1))
                self._build()
        msg = "unreachable"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    def loss_grad(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        results = self._with_rebuild("loss_grad", (W,))
        return _sum_parts(*results)

    def submit_workers(self, func: Callable, args: tuple) -> list[WorkerCall]:
        if self.mode == "actors":
            return [WorkerCall(actor.run(func, args)) for actor in self._actors]
        return self._submit_tasks(func, args)

    def close(self) -> None:
        self._release_state()
        self._worker_args = []
        self._block_futures = []
        self._persisted = []
        # Each actor method call leaves a reference cycle inside distributed (a self-referencing closure that
        # holds the Actor proxy, whose own Future keeps the actor and its blocks alive on the workers);
        # collect it now, so that closing the problem frees the workers' memory at once.
        gc.collect()


def _flatten_keys(keys: Any) -> Iterator[Any]:
    """Block keys of a dask collection in block order (the nested lists of ``__dask_keys__`` flattened)."""
    for key in keys:
        if isinstance(key, list):
            yield from _flatten_keys(key)
        else:
            yield key


def _describe_local(local: LocalBlocks) -> tuple[int, float]:
    return local.n_rows, local.sum_weight


def _balance(holders: list[str | None], sizes: list[int], workers: list[str]) -> dict[str, list[int]]:
    """Assign blocks to workers: keep a block where it lives unless that worker already has its share.

    Returns ``{address: [block indices]}`` for the workers that get at least one block, indices sorted.
    """
    total = float(sum(sizes)) or 1.0
    live = [w for w in workers if w] or [h for h in holders if h]
    share = total / max(1, len(live))
    largest = max(sizes) if sizes else 0
    load = dict.fromkeys(live, 0.0)
    assignment: dict[str, list[int]] = {w: [] for w in live}
    pending = []
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        holder = holders[index]
        if holder in load and load[holder] + sizes[index] <= share + largest / 2:
            assignment[holder].append(index)
            load[holder] += sizes[index]
        else:
            pending.append(index)
    for index in pending:
        target = min(load, key=lambda w: (load[w], w))
        assignment[target].append(index)
        load[target] += sizes[index]
    return {w: sorted(ix) for w, ix in assignment.items() if ix}
