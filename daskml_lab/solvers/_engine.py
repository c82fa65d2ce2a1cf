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

Whatever the engine, the loss and gradient of every block are summed with the grouping-independent sum of
:mod:`daskml_lab.solvers._exact_sum`: on each worker, across workers and in the stream engine's tree. The
result depends only on the blocks (their rows and chunking), not on which worker holds which block, on the
number of workers, or on the engine: a fit gives the same coefficients, bit for bit, on the local scheduler
and on any cluster. Workers send back a packed sum (``1 + N_BINS`` vectors of the gradient's size).

Whatever the engine, per-worker work beyond the loss goes through ``map_workers(func, *args)``, which runs
``func(local_blocks, *args)`` once per worker with a :class:`LocalBlocks` (that worker's blocks and a
``state`` dict that survives between calls) and returns the small results in worker order.

The ``"actors"`` and ``"tasks"`` engines, and how they survive lost workers, are in
:mod:`daskml_lab.solvers._distributed_engine`; the ``"stream"`` engine leaves lost workers to the scheduler.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask import delayed

from daskml_lab._compat import unique_fused_keys
from daskml_lab._runtime.seeding import block_rng
from daskml_lab._runtime.waiting import result_within, wait_for
from daskml_lab.monitoring import task_prefix
from daskml_lab.solvers import _exact_sum
from daskml_lab.solvers._objectives import PreparedBlock, _loss_grad_prepared, _prepare_block

logger = logging.getLogger(__name__)

__all__ = ["EngineSpec", "LocalBlocks", "WorkerCall", "combine_loss_grad", "combine_sum_weights"]


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
        Sum of the sample weights held here (grouping-independent: see :func:`combine_sum_weights`).
    key : tuple of int
        The global indices of the blocks held here, as a tuple (names this worker's share in results).
    """

    def __init__(self, spec: EngineSpec, indices: list[int], blocks: list[PreparedBlock]) -> None:
        self.spec = spec
        self.indices = list(indices)
        self.blocks = list(blocks)
        self.state: dict[str, Any] = {}
        self.n_rows = int(sum(block.X.shape[0] for block in self.blocks))
        self.sum_weight = float(combine_sum_weights([self.sum_weight_sum()]))

    def sum_weight_sum(self) -> np.ndarray:
        """The sum of the blocks' weights as a packed sum (see :mod:`~daskml_lab.solvers._exact_sum`)."""
        return _exact_sum.merge([_exact_sum.deposit([block.sum_weight]) for block in self.blocks] or [_ZERO])

    @property
    def key(self) -> tuple[int, ...]:
        """Identity of this worker's share of the data: the global indices of its blocks."""
        return tuple(int(index) for index in self.indices)

    @classmethod
    def from_raw(
        cls, spec: EngineSpec, indices: list[int], X_blocks: list, y_blocks: list, sw_blocks: list | None
    ):
        """Prepare raw ``(X, y, sample_weight)`` blocks (checks labels against the loss)."""
        sw_blocks = sw_blocks if sw_blocks is not None else [None] * len(X_blocks)
        prepared = [
            _prepare_block(
                X,
                y,
                sw,
                loss=spec.loss,
                n_outputs=spec.n_outputs,
                block_index=index,
                loss_options=spec.loss_options,
            )
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
        return combine_loss_grad([self.loss_grad_sum(W)], np.shape(W))

    def loss_grad_sum(self, W: np.ndarray) -> np.ndarray:
        """``[loss, *grad.ravel()]`` of every local block, as one packed sum (merged across workers).

        Parameters
        ----------
        W : ndarray of shape (n_params, n_outputs)

        Returns
        -------
        ndarray of float64 of shape (1 + N_BINS, 1 + W.size)
            See :mod:`~daskml_lab.solvers._exact_sum`; :func:`combine_loss_grad` turns such sums into the
            loss and the gradient.
        """
        spec = self.spec
        W = np.asarray(W)
        parts = []
        for block in self.blocks:
            # each block's own sum first: its rounding depends on the block alone, not on its neighbours
            part, grad = _loss_grad_prepared(
                block, W, loss=spec.loss, fit_intercept=spec.fit_intercept, loss_options=spec.loss_options
            )
            parts.append(_exact_sum.deposit(np.concatenate([[part], grad.ravel()])))
        return _exact_sum.merge(parts or [_exact_sum.deposit(np.zeros(1 + W.size))])

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
            Root entropy (``daskml_lab._runtime.seeding.root_entropy(random_state)``).
        epoch : int, default=0
            Pass number, to draw a new order each pass.

        Yields
        ------
        PreparedBlock
            A mini-batch; evaluate it with :meth:`loss_grad_batch`.
        """
        order_rng = block_rng(entropy, 0, epoch, *self.indices[:1])
        for position in order_rng.permutation(len(self.blocks)):
            block = self.blocks[position]
            rng = block_rng(entropy, 1, epoch, self.indices[position])
            rows = rng.permutation(block.X.shape[0])
            for start in range(0, rows.size, batch_size):
                yield _take_rows(block, np.sort(rows[start : start + batch_size]))


_ZERO = _exact_sum.deposit([0.0])


def combine_loss_grad(sums: list[np.ndarray], shape: tuple[int, ...]) -> tuple[float, np.ndarray]:
    """The loss and gradient from the packed sums of :meth:`LocalBlocks.loss_grad_sum` (any grouping).

    Parameters
    ----------
    sums : list of ndarray
        One packed sum per worker (or per block).
    shape : tuple of int
        Shape of the parameters.

    Returns
    -------
    loss : float
    grad : ndarray of float64 of shape ``shape``
    """
    values = _exact_sum.total(_exact_sum.merge(sums))
    return float(values[0]), values[1:].reshape(shape)


def combine_sum_weights(sums: list[np.ndarray]) -> float:
    """The total weight from packed sums of :meth:`LocalBlocks.sum_weight_sum` (any grouping)."""
    return float(_exact_sum.total(_exact_sum.merge(sums))[0])


def _take_rows(block: PreparedBlock, rows: np.ndarray) -> PreparedBlock:
    weight = None if block.weight is None else block.weight[rows]
    sum_weight = float(rows.size) if weight is None else float(np.sum(weight, dtype=np.float64))
    return PreparedBlock(block.X[rows], block.target[rows], weight, sum_weight)


class WorkerCall:
    """Handle on one running ``map_workers``-style call: ``result(timeout_s)`` and ``done()``."""

    def __init__(
        self,
        future: Any = None,
        value: Any = None,
        error: BaseException | None = None,
        *,
        what: str = "a per-worker solver call",
    ) -> None:
        self._future = future
        self._value = value
        self._error = error
        self._what = what

    def done(self) -> bool:
        """Whether the call has finished."""
        return self._future is None or self._future.done()

    def result(self, timeout_s: float | None = None) -> Any:
        """The call's return value (waits at most ``timeout_s`` seconds, then raises a clear ``TimeoutError``)."""
        if self._future is not None:
            # through the runtime's wait: a bare Future.result(timeout=...) times out without a message
            return result_within(
                self._future, what=self._what, client=self._future.client, timeout_s=timeout_s
            )
        if self._error is not None:
            raise self._error
        return self._value


# ---------------------------------------------------------------------------------------------------------
# worker side


def _loss_grad_stream_chunk(
    X: Any, y: Any, sw: Any, W: np.ndarray, spec: EngineSpec, block_id: tuple[int, ...] | None = None
) -> np.ndarray:
    """Kernel of the ``"stream"`` engine: one block's packed sum of ``[loss, *grad.ravel()]``, as one row.

    ``y`` and ``sw`` arrive as ``(n_rows, 1)`` columns (so that ``map_blocks`` aligns them with the rows of
    ``X``). The block is read, checked and reduced inside this one task: no data-sized result is kept in
    the worker's memory.
    """
    index = 0 if block_id is None else int(block_id[0])
    weights = None if sw is None else [np.asarray(sw)[:, 0]]
    local = LocalBlocks.from_raw(spec, [index], [X], [np.asarray(y)[:, 0]], weights)
    return local.loss_grad_sum(W).ravel()[None, :]


def _merge_rows(rows: np.ndarray, axis: Any = None, keepdims: bool = True) -> np.ndarray:
    """Combine step of the stream engine's tree: packed sums stored as rows, merged into one row."""
    packed = np.asarray(rows).reshape(-1, 1 + _exact_sum.N_BINS, rows.shape[-1] // (1 + _exact_sum.N_BINS))
    merged = _exact_sum.merge(list(packed)).ravel()
    return merged[None, :] if keepdims else merged


def _keep_rows(rows: np.ndarray, axis: Any = None, keepdims: bool = True) -> np.ndarray:
    return rows


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

    def gather_calls(self, calls: list[WorkerCall], timeout_s: float) -> list[Any]:
        """The results of the calls of one ``submit_workers``, in worker order."""
        return [call.result(timeout_s) for call in calls]

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
        # compute: one small result (per-block counts, a loss and gradient, or per-block small results)
        with unique_fused_keys():
            futures = self.client.compute(value)
        wait_for(
            futures if isinstance(futures, list) else [futures],
            what="the blocks streamed from their source",
            client=self.client,
            timeout_s=self.timeout_s,
        )
        return self.client.gather(futures)

    def start(self) -> tuple[int, float]:
        token = uuid.uuid4().hex[:8]
        y_blocks = self._y.to_delayed().ravel().tolist()
        sw_blocks = [None] * len(y_blocks) if self._sw is None else self._sw.to_delayed().ravel().tolist()
        counts = [
            delayed(_count_block, name=f"{task_prefix('count rows')}-{token}-{index}")(y, sw)
            for index, (y, sw) in enumerate(zip(y_blocks, sw_blocks, strict=True))
        ]
        totals = self._compute(counts)
        weights = [_exact_sum.deposit([c[1]]) for c in totals]
        return int(sum(c[0] for c in totals)), combine_sum_weights(weights or [_ZERO])

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
        token = uuid.uuid4().hex[:8]
        # the parameters enter the graph once, as one key every block task depends on
        W_node = delayed(W, name=f"{task_prefix('params')}-{token}", traverse=False)
        width = (1 + _exact_sum.N_BINS) * (1 + W.size)
        parts = self._per_block(
            _loss_grad_stream_chunk, "loss grad", width, np.float64, token, W_node, self.spec
        )
        # a tree of grouping-independent sums whose first step is fused with the reading of each block
        total = da.reduction(
            parts,
            _keep_rows,
            _merge_rows,
            combine=_merge_rows,
            axis=0,
            dtype=np.float64,
            split_every=self.split_every,
            name=task_prefix("loss grad"),
        )
        packed = np.asarray(self._compute(total), dtype=np.float64).reshape(1 + _exact_sum.N_BINS, -1)
        return combine_loss_grad([packed], W.shape)

    def submit_workers(self, func: Callable, args: tuple) -> list[WorkerCall]:
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
