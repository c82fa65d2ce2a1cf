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

**Lost workers** (``"actors"``). Each actor serves a fixed group of blocks (a *position*). A wait for an
actor's answer checks every ``_WATCH_INTERVAL_S`` seconds that its worker is still in the cluster; when it has
left (or a call fails to reach it), the scheduler recomputes the lost blocks from their lineage, the actors of
the lost positions are recreated on the workers that now hold most of their blocks, and the call is sent again.
The groups do not change, so the sums come out in the same order and the answers equal those an undisturbed
fit gets (only the ``state`` dict of a recreated position starts empty). The ``"tasks"`` engine's tasks may
run on any worker (the scheduler reruns them elsewhere; a failed evaluation places the blocks anew and is
retried), and the ``"stream"`` engine leaves lost workers to the scheduler.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np

from daskml_lab._compat import unique_fused_keys
from daskml_lab.monitoring import task_prefix
from daskml_lab.solvers._objectives import PreparedBlock, _aligned_block, _loss_grad_prepared, _prepare_block

logger = logging.getLogger(__name__)

__all__ = ["EngineSpec", "LocalBlocks", "WorkerCall"]

#: Rebuild attempts after a lost worker before an evaluation gives up.
_MAX_REBUILDS = 3
#: Seconds between two checks, while an actor's answer is awaited, that its worker is still in the cluster.
_WATCH_INTERVAL_S = 0.5
#: Seconds to wait, after a call failed to reach a worker, for the scheduler to notice that it has gone.
_LOSS_GRACE_S = 10.0


class _WorkerLost(OSError):
    """The worker an actor lives on has left the cluster, or the actor was lost."""


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


def _loss_grad_stream_chunk(
    X: Any, y: Any, sw: Any, W: np.ndarray, spec: EngineSpec, block_id: tuple[int, ...] | None = None
) -> np.ndarray:
    """Kernel of the ``"stream"`` engine: one block's ``[loss, *grad.ravel()]`` as a ``(1, 1 + W.size)`` row.

    ``y`` and ``sw`` arrive as ``(n_rows, 1)`` columns (so that ``map_blocks`` aligns them with the rows of
    ``X``). The block is read, checked and reduced inside this one task: no data-sized result is kept in
    the worker's memory.
    """
    index = 0 if block_id is None else int(block_id[0])
    weights = None if sw is None else [np.asarray(sw)[:, 0]]
    local = LocalBlocks.from_raw(spec, [index], [X], [np.asarray(y)[:, 0]], weights)
    loss, grad = local.loss_grad(W)
    return np.concatenate([[loss], np.asarray(grad, dtype=np.float64).ravel()])[None, :]


def _sum_parts(*parts: tuple[float, np.ndarray]) -> tuple[float, np.ndarray]:
    total = sum(part[0] for part in parts)
    grad = parts[0][1].copy()
    for part in parts[1:]:
        grad += part[1]
    return total, grad


def _column_block(vector: np.ndarray) -> np.ndarray:
    return np.asarray(vector)[:, None]


def _as_column(vector: Any) -> Any:
    """A 1-D dask array as an ``(n, 1)`` column with the same row chunks (a fusable blockwise step)."""
    return vector.map_blocks(
        _column_block,
        new_axis=1,
        chunks=(vector.chunks[0], (1,)),
        dtype=vector.dtype,
        meta=np.empty((0, 0), dtype=vector.dtype),
    )


def _run_stream_chunk(
    X: Any,
    y: Any,
    sw: Any,
    spec: EngineSpec,
    func: Callable,
    args: tuple,
    block_id: tuple[int, ...] | None = None,
) -> np.ndarray:
    """``func(local_blocks, *args)`` on one block, read inside the task; its result in a 1 x 1 object array."""
    index = 0 if block_id is None else int(block_id[0])
    weights = None if sw is None else [np.asarray(sw)[:, 0]]
    local = LocalBlocks.from_raw(spec, [index], [X], [np.asarray(y)[:, 0]], weights)
    out = np.empty((1, 1), dtype=object)
    out[0, 0] = func(local, *args)
    return out


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
        with unique_fused_keys():
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
    """Nothing persisted: every evaluation reads every block from its source, in one task per block.

    The evaluation is a ``map_blocks`` over the lazy blocks followed by a tree sum of the small per-block
    results. Dask fuses the reading of an ``X`` block (e.g. from zarr), the checks of the data layer and the
    kernel into one task, so that a worker only ever holds the blocks it is working on, and never stores
    one as a task result (which dask would count as managed memory and spill to disk).
    """

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
        self._X = X
        # (n_rows, 1) columns, since map_blocks aligns the arrays' trailing dimensions; made by map_blocks
        # (not y[:, None]) so that reading y fuses into the block task as well
        self._y = _as_column(y)
        self._sw = None if sample_weight is None else _as_column(sample_weight)
        self.n_workers = 1 if client is None else max(1, len(client.scheduler_info().get("workers", {})))

    def _compute(self, value: Any) -> Any:
        if self.client is None:
            # compute: one small result (per-block counts, a loss and gradient, or per-block small results)
            with unique_fused_keys():
                (result,) = dask.compute(value)
            return result
        from distributed import wait

        # compute: one small result (per-block counts, a loss and gradient, or per-block small results)
        with unique_fused_keys():
            futures = self.client.compute(value)
        wait(futures if isinstance(futures, list) else [futures], timeout=self.timeout_s)
        return self.client.gather(futures)

    def start(self) -> tuple[int, float]:
        from dask import delayed

        token = uuid.uuid4().hex[:8]
        y_blocks = self._y.to_delayed().ravel().tolist()
        sw_blocks = [None] * len(y_blocks) if self._sw is None else self._sw.to_delayed().ravel().tolist()
        counts = [
            delayed(_count_block, name=f"{task_prefix('count rows')}-{token}-{index}")(y, sw)
            for index, (y, sw) in enumerate(zip(y_blocks, sw_blocks, strict=True))
        ]
        totals = self._compute(counts)
        return int(sum(c[0] for c in totals)), float(sum(c[1] for c in totals))

    def _per_block(self, func: Callable, what: str, width: int, dtype: Any, token: str, *args: Any) -> Any:
        return self._X.map_blocks(
            func,
            self._y,
            self._sw,
            *args,
            chunks=((1,) * self._X.numblocks[0], (width,)),
            dtype=dtype,
            meta=np.empty((0, 0), dtype=dtype),
            name=f"{task_prefix('block ' + what)}-{token}",
        )

    def loss_grad(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        import dask.array as da
        from dask import delayed

        token = uuid.uuid4().hex[:8]
        # the parameters enter the graph once, as one key every block task depends on
        W_node = delayed(W, name=f"{task_prefix('params')}-{token}", traverse=False)
        parts = self._per_block(
            _loss_grad_stream_chunk, "loss grad", 1 + W.size, np.float64, token, W_node, self.spec
        )
        # a tree sum whose first step is fused with the reading of each block (named after our task)
        total = da.reduction(
            parts,
            np.sum,
            np.sum,
            axis=0,
            dtype=np.float64,
            split_every=self.split_every,
            name=task_prefix("loss grad"),
        )
        values = np.asarray(self._compute(total), dtype=np.float64)
        return float(values[0]), values[1:].reshape(W.shape)

    def submit_workers(self, func: Callable, args: tuple) -> list[WorkerCall]:
        from dask import delayed

        token = uuid.uuid4().hex[:8]
        # The arguments (parameters, and for admm every block's copy and dual) enter the graph once, not
        # once per block: with n blocks, per-block copies would make the graph grow as n ** 2.
        args_node = delayed(args, name=f"{task_prefix('worker args')}-{token}", traverse=False)
        calls = self._per_block(_run_stream_chunk, "worker run", 1, object, token, self.spec, func, args_node)
        try:
            return [WorkerCall(value=value) for value in np.asarray(self._compute(calls)).ravel()]
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
        self._generation: list[int] = []  # per position: how many times its actor was created
        self._live: tuple[float, set[str]] = (-float("inf"), set())  # (when, scheduler's worker addresses)
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
        with unique_fused_keys():
            self._persisted = self.client.persist(collections)
        futures = {f.key: f for c in self._persisted for f in futures_of(c)}
        keys = [list(_flatten_keys(c.__dask_keys__())) for c in self._persisted]
        self._block_futures = [tuple(futures[ks[i]] for ks in keys) for i in range(len(keys[0]))]
        self._collections = (None, None, None)
        for attempt in range(_MAX_REBUILDS + 1):
            try:
                return self._build()
            except TimeoutError:
                raise
            except OSError as err:  # a worker was lost while the actors were being created
                if attempt == _MAX_REBUILDS:
                    raise self._gave_up(attempt, err) from err
                logger.warning("solver engine: a worker was lost while starting (%r); starting again", err)
                # cancelled, not released: an actor pinned to a dead worker would wait for it for ever
                self.client.cancel(self._actor_futures)
                self.n_rebuilds += 1
        msg = "unreachable"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    def _gave_up(self, attempt: int, err: BaseException) -> RuntimeError:
        msg = (
            f"The solver lost contact with its workers {attempt + 1} times in a row (last error: {err!r}); "
            f"giving up. Check the cluster at {self.client.scheduler.address} (the workers' logs tell why "
            "they died: memory limits, crashes) and fit again."
        )
        return RuntimeError(msg)

    def _wait(self, futures: list[Any], what: str) -> None:
        from distributed import CancelledError, wait

        try:
            wait(futures, timeout=self.timeout_s)
        except TimeoutError as err:
            msg = (
                f"Timed out after {self.timeout_s:g} s waiting for {what} on the cluster at "
                f"{self.client.scheduler.address}. Check that the workers are alive and have memory to "
                "hold the data, or raise the timeout (dask.config daskml_lab.solvers.timeout_s)."
            )
            raise TimeoutError(msg) from err
        except CancelledError as err:
            # The scheduler forgets data lost with a worker when it cannot compute them again.
            msg = (
                f"Waiting for {what} failed: data were lost with a worker and cannot be computed again (they "
                "have no lineage: scattered data, or data persisted by a client that has gone). Load the input "
                "from its source (files or a lazy graph) rather than scattering it, or keep a copy on another "
                f"worker (client.replicate). Details: {err}"
            )
            raise RuntimeError(msg) from err
        for future in futures:
            if future.status == "error":
                future.result()  # raises the task's own exception

    # -- liveness -------------------------------------------------------------------------------------------
    def _live_workers(self, max_age_s: float = _WATCH_INTERVAL_S) -> set[str]:
        """Addresses of the scheduler's workers (asked again when the last answer is older than ``max_age_s``)."""
        when, live = self._live
        if time.monotonic() - when > max_age_s:
            live = set(self.client.scheduler_info()["workers"])
            self._live = (time.monotonic(), live)
        return live

    def _position_alive(self, position: int, generation: int, address: str, max_age_s: float) -> bool:
        """Whether the actor ``generation`` of ``position``, created on ``address``, can still answer."""
        if generation != self._generation[position]:
            return False  # already replaced
        if self._actor_futures[position].status in ("lost", "cancelled", "error"):
            return False
        return address in self._live_workers(max_age_s)

    def _wait_actors(self, positions: list[int]) -> None:
        """Wait for the actors of ``positions`` to exist; :class:`_WorkerLost` if their worker leaves."""
        from distributed import wait

        futures = [self._actor_futures[p] for p in positions]
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                wait(futures, timeout=min(_WATCH_INTERVAL_S, max(deadline - time.monotonic(), 0.01)))
                break
            except TimeoutError:
                gone = [p for p in positions if self._worker_args[p][0] not in self._live_workers(0.0)]
                if gone:
                    msg = f"worker {self._worker_args[gone[0]][0]} left before its solver state was created"
                    raise _WorkerLost(msg) from None
                if time.monotonic() > deadline:
                    self._wait(futures, "the per-worker solver state")  # raises the clear TimeoutError
        self._wait(futures, "the per-worker solver state")  # errors of the actors' constructors

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
            positions = list(range(len(self._worker_args)))
            self._actor_futures = [self._submit_actor(p) for p in positions]
            self._generation = [0] * len(positions)
            self._wait_actors(positions)
            self._actors = [f.result(timeout=self.timeout_s) for f in self._actor_futures]
            described = [_ActorCall(self, p, "describe", ()).result(self.timeout_s) for p in positions]
        else:
            described = [c.result(self.timeout_s) for c in self._submit_tasks(_describe_local, ())]
        return int(sum(d[0] for d in described)), float(sum(d[1] for d in described))

    def _submit_actor(self, position: int) -> Any:
        """Create the actor of ``position`` on the worker ``self._worker_args[position]`` names."""
        address, indices, n, has_weight, arrays = self._worker_args[position]
        return self.client.submit(
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

    def _recover(self, err: BaseException) -> None:
        """After a failed call: recreate the actors of the positions whose worker has left the cluster.

        The scheduler may not have noticed the loss yet when the call fails: wait for it (at most
        ``_LOSS_GRACE_S`` seconds). If every worker is still there, nothing is done and the call is retried.
        """
        deadline = time.monotonic() + min(_LOSS_GRACE_S, self.timeout_s)
        for attempt in range(_MAX_REBUILDS + 1):
            while True:
                self._live_workers(0.0)  # one fresh answer of the scheduler for all the positions
                lost = [
                    p
                    for p in range(len(self._worker_args))
                    if not self._position_alive(p, self._generation[p], self._worker_args[p][0], float("inf"))
                ]
                if lost or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if not lost and all(actor is not None for actor in self._actors):
                logger.warning(
                    "solver engine: a call failed (%r) but every worker is alive; retrying it", err
                )
                return
            try:
                self._rehome(lost, err)
                return
            except TimeoutError:
                raise
            except OSError as again:  # a worker left during the recovery: start it again
                if attempt == _MAX_REBUILDS:
                    raise self._gave_up(attempt, again) from again
                err, deadline = again, time.monotonic()

    def _rehome(self, lost: list[int], err: BaseException) -> None:
        """Recreate the actors of ``lost`` positions where their blocks are now, and wait for every new actor."""
        if lost:
            self.n_rebuilds += 1
            logger.warning(
                "solver engine: worker(s) %s lost (%r); recreating the state of %d position(s) from their "
                "blocks",
                sorted({self._worker_args[p][0] for p in lost}),
                err,
                len(lost),
            )
            # The old actors are cancelled, not just released: a task pinned to a dead worker would otherwise
            # wait for it for ever, holding its blocks in the cluster's memory.
            self.client.cancel([self._actor_futures[p] for p in lost])
            triples = [self._block_futures[i] for p in lost for i in self._worker_args[p][1]]
            # The scheduler recomputes the lost blocks from their lineage (the futures still want them).
            self._wait([f for t in triples for f in t], "the lost row blocks to be computed again")
            who_has = self.client.who_has([t[0] for t in triples])
            live = sorted(self._live_workers(0.0))
            if not live:
                msg = (
                    f"No worker is left in the cluster at {self.client.scheduler.address} to run the solver."
                )
                raise RuntimeError(msg)
            load = Counter(self._worker_args[p][0] for p in range(len(self._worker_args)) if p not in lost)
            for p in lost:
                _, indices, n, has_weight, arrays = self._worker_args[p]
                held: Counter[str] = Counter()
                for i in indices:
                    for worker in who_has.get(self._block_futures[i][0].key, ()):
                        held[worker] += self._block_rows[i]
                # Where most of the position's rows are now, else the worker with the fewest positions.
                target = min(live, key=lambda w: (-held[w], load[w], w))
                load[target] += 1
                self._worker_args[p] = (target, indices, n, has_weight, arrays)
                self._actor_futures[p] = self._submit_actor(p)
                self._generation[p] += 1
                self._actors[p] = None
        pending = [p for p, actor in enumerate(self._actors) if actor is None]
        self._wait_actors(pending)
        for p in pending:
            self._actors[p] = self._actor_futures[p].result(timeout=self.timeout_s)

    def _actor_result(self, call: _ActorCall, timeout_s: float | None) -> Any:
        """The answer to ``call``; when its worker is lost, recover and send the call again."""
        timeout_s = self.timeout_s if timeout_s is None else float(timeout_s)
        error: BaseException | None = None
        for attempt in range(_MAX_REBUILDS + 1):
            try:
                if error is not None:
                    if call.generation == self._generation[call.position]:  # else: already recreated
                        self._recover(error)
                    call.send()
                return self._await(call, timeout_s)
            except TimeoutError:
                raise
            except OSError as err:  # _WorkerLost, CommClosedError, "Unable to contact Actor's worker"
                if attempt == _MAX_REBUILDS:
                    raise self._gave_up(attempt, err) from err
                error = err
        msg = "unreachable"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    def _await(self, call: _ActorCall, timeout_s: float) -> Any:
        if call.error is not None:
            raise call.error
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return call.future.result(
                    timeout=min(_WATCH_INTERVAL_S, max(deadline - time.monotonic(), 0.01))
                )
            except TimeoutError:
                if call.future.done():  # finished just now, or the call itself raised TimeoutError
                    return call.future.result()
                if not self._position_alive(call.position, call.generation, call.address, _WATCH_INTERVAL_S):
                    msg = f"worker {call.address} left the cluster while computing {call.method!r}"
                    raise _WorkerLost(msg) from None
                if time.monotonic() > deadline:
                    msg = (
                        f"Timed out after {timeout_s:g} s waiting for the worker {call.address} to answer "
                        f"{call.method!r} (cluster at {self.client.scheduler.address}). Check that the worker is "
                        "alive and not overloaded, or raise the timeout (dask.config "
                        "daskml_lab.solvers.timeout_s)."
                    )
                    raise TimeoutError(msg) from None

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
            calls = [_ActorCall(self, p, method, args) for p in range(len(self._actors))]
            return [call.result(self.timeout_s) for call in calls]
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
        if self.mode == "actors":  # the calls recover from lost workers themselves
            return _sum_parts(*self._call_all("loss_grad", (W,)))
        results = self._with_rebuild("loss_grad", (W,))
        return _sum_parts(*results)

    def submit_workers(self, func: Callable, args: tuple) -> list[WorkerCall]:
        if self.mode == "actors":
            return [_ActorCall(self, p, "run", (func, args)) for p in range(len(self._actors))]
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


class _ActorCall(WorkerCall):
    """A call to the actor of one position; ``result`` recovers from a lost worker and sends it again."""

    def __init__(self, engine: DistributedEngine, position: int, method: str, args: tuple) -> None:
        super().__init__()
        self.engine, self.position, self.method, self.args = engine, position, method, args
        self.send()

    def send(self) -> None:
        """Send the call to the current actor of the position."""
        engine = self.engine
        self.generation = engine._generation[self.position]
        self.address = engine._worker_args[self.position][0]
        self.future, self.error = None, None
        actor = engine._actors[self.position]
        try:
            if actor is None:
                msg = f"the solver state of position {self.position} is being recreated"
                raise _WorkerLost(msg)
            self.future = getattr(actor, self.method)(*self.args)
        except RuntimeError as err:  # the Actor proxy refuses calls once it knows that its worker was lost
            if "lost" not in str(err).lower():
                raise
            self.error = _WorkerLost(str(err))
        except _WorkerLost as err:
            self.error = err

    def done(self) -> bool:
        """Whether the call has finished, or its worker has left (``result`` then sends it again)."""
        if self.future is None or self.future.done():
            return True
        return not self.engine._position_alive(
            self.position, self.generation, self.address, _WATCH_INTERVAL_S
        )

    def result(self, timeout_s: float | None = None) -> Any:
        """The call's return value (each attempt waits at most ``timeout_s`` seconds)."""
        return self.engine._actor_result(self, timeout_s)


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
