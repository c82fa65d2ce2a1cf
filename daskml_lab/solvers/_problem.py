"""The blocked objective: one linear-model fitting problem over row-chunked dask arrays."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

from daskml_lab._runtime.client import cluster_timeout_s, current_client
from daskml_lab._runtime.memory import (
    WorkerMemory,
    block_room,
    dense_nbytes,
    measure_workers,
    plan_memory,
    resolve_persist,
)
from daskml_lab.solvers._curvature import (
    _hessian_diagonal_local,
    _hessian_local,
    _hessian_product_local,
    params_token,
)
from daskml_lab.solvers._distributed_engine import DistributedEngine
from daskml_lab.solvers._engine import EngineSpec, LocalEngine, StreamEngine, WorkerCall
from daskml_lab.solvers._glm_losses import GLM_LOSSES, family_of
from daskml_lab.solvers._objectives import get_loss
from daskml_lab.solvers._regularizers import l1_norm, l2_value_grad

logger = logging.getLogger(__name__)

__all__ = ["BlockedProblem"]

_ENGINES = ("actors", "tasks", "local", "stream")

#: ``dask.config`` key of the persist setting of the solvers.
PERSIST_KEY = "daskml_lab.solvers.persist"


class BlockedProblem:
    r"""A linear-model objective over row-chunked dask arrays, evaluated where the blocks live.

    The objective, over parameters ``W`` of shape ``(n_params, n_outputs)`` (feature rows, then the intercept
    row when ``fit_intercept``), is

    .. math::

        F(W) = s \sum_i w_i \, \ell(y_i, x_i W_{:d} + b) + \frac{\lambda_2}{2} \|W_{:d}\|_F^2
               + \lambda_1 \|W_{:d}\|_1

    with ``s = data_scale``, ``w = sample_weight``, ``lambda_2 = l2`` and ``lambda_1 = l1``; intercepts are
    never penalised. :meth:`loss_grad` returns the smooth part (everything but the l1 term) and its gradient
    in one pass over the data; :meth:`objective` adds the l1 term. :meth:`hessian_product`,
    :meth:`hessian_diagonal` and :meth:`hessian` give its second derivatives (for the Newton solvers), also in
    one pass each.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Validated features: row chunks, one column chunk, float32 or float64, numpy or scipy.sparse CSR
        blocks.
    y : dask.array.Array of shape (n_samples,)
        Target encoded for the loss (0/1 for binary losses, class codes ``0 .. n_outputs - 1`` for
        ``"multinomial"``, real values for regression losses), with the row chunks of ``X``.
    sample_weight : dask.array.Array of shape (n_samples,) or None, default=None
        Non-negative weights with the row chunks of ``X``.
    loss : str, default="logistic"
        Per-sample loss of the linear score, one of :data:`~daskml_lab.solvers.LOSSES`: ``"logistic"``,
        ``"multinomial"``, ``"squared"``, ``"squared_hinge"``, ``"hinge"``, ``"huber"``, and scikit-learn's half
        Tweedie deviances of a generalised linear model, ``"poisson"``, ``"gamma"`` (log link) and
        ``"tweedie"``.
    n_outputs : int, default=1
        Columns of ``W``: the number of classes for ``"multinomial"``, else 1.
    fit_intercept : bool, default=True
        Whether ``W`` has an (unpenalised) intercept row.
    data_scale : float, default=1.0
        Factor of the data term (for example ``C`` for logistic regression).
    l2 : float, default=1.0
        Strength of the squared l2 penalty.
    l1 : float, default=0.0
        Strength of the l1 penalty (only the proximal solver accepts ``l1 > 0``).
    loss_options : dict or None, default=None
        Loss parameters, e.g. ``{"epsilon": 1.35}`` for ``"huber"``, ``{"power": 1.5, "link": "log"}`` for
        ``"tweedie"`` (link ``"log"`` or ``"identity"``).
    client : distributed.Client or None, default=None
        Cluster to run on. ``None`` uses the default client if dask's current scheduler is distributed,
        otherwise evaluates in this process with the current dask scheduler.
    persist : {"auto", True, False} or None, default=None
        Whether to keep the blocks in (worker) memory for the whole fit, decided by the package's one memory
        plan (:func:`daskml_lab._runtime.memory.plan_memory`, shared with the ensembles). ``"auto"`` persists
        when the dense size of the data is at most half (``dask.config`` key
        ``daskml_lab.memory.persist_fraction``) of the free memory (on a cluster: summed over the workers, the
        part of ``memory_limit`` below dask's ``distributed.worker.memory.spill`` fraction that the worker
        process does not use yet; without a cluster: this machine's available memory), and otherwise streams
        the blocks from their source at every evaluation (logged at INFO level), so that worker memory stays
        bounded by a few blocks whatever the size of the data. ``True`` always persists, ``False`` always
        streams. ``None`` reads ``dask.config`` key ``daskml_lab.solvers.persist`` (default ``"auto"``),
        which is how the estimators are overridden:
        ``with dask.config.set({"daskml_lab.solvers.persist": False}): model.fit(X, y)``.
    engine : {"actors", "tasks"} or None, default=None
        How a persisted problem evaluates on a cluster (see :mod:`daskml_lab.solvers._engine`); ``None`` reads
        ``dask.config`` key ``daskml_lab.solvers.engine`` (default ``"actors"``).
    timeout_s : float or None, default=None
        Longest wait for any cluster operation; ``None`` reads ``daskml_lab.solvers.timeout_s`` (default 600).

    Attributes
    ----------
    n_features, n_params, n_outputs, n_samples : int
        Problem dimensions (``n_params = n_features + fit_intercept``).
    dtype : numpy.dtype
        The dtype of ``X`` (float32 data are evaluated in float32).
    sum_weights : float
        Sum of the sample weights (known after :meth:`start`).
    n_evaluations : int
        Number of :meth:`loss_grad` calls so far (each is one pass over the data and one round trip).
    n_hessian_products : int
        Number of :meth:`hessian_product` calls so far (likewise one pass and one round trip each).
    engine_name : str
        The engine in use after :meth:`start`: ``"actors"``, ``"tasks"``, ``"local"`` or ``"stream"``.

    Notes
    -----
    Use the problem as a context manager: entering persists the blocks (once) and creates the per-worker
    state; leaving drops both. :meth:`loss_grad` starts the problem on first use if needed.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> X = da.from_array(np.array([[0.0], [1.0], [2.0], [3.0]]), chunks=2)
    >>> y = da.from_array(np.array([0, 0, 1, 1]), chunks=2)
    >>> with BlockedProblem(X, y, loss="logistic", l2=1.0) as problem:
    ...     f, g = problem.loss_grad(np.zeros((2, 1)))
    >>> round(f, 4), g.ravel().tolist()
    (2.7726, [-2.0, 0.0])
    """

    def __init__(
        self,
        X: da.Array,
        y: da.Array,
        sample_weight: da.Array | None = None,
        *,
        loss: str = "logistic",
        n_outputs: int = 1,
        fit_intercept: bool = True,
        data_scale: float = 1.0,
        l2: float = 1.0,
        l1: float = 0.0,
        loss_options: dict | None = None,
        client: Any = None,
        persist: bool | str | None = None,
        engine: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        _check_arrays(X, y, sample_weight)
        self.loss_info = get_loss(loss)
        self.loss = loss
        _check_positive_int("n_outputs", n_outputs)
        if self.loss_info.multi_output and n_outputs < 2:
            msg = f"The 'multinomial' loss needs n_outputs=n_classes >= 2, got n_outputs={n_outputs}."
            raise ValueError(msg)
        if not self.loss_info.multi_output and n_outputs != 1:
            msg = (
                f"The {loss!r} loss has one output (n_outputs=1), got n_outputs={n_outputs}. Use "
                "loss='multinomial' for several classes, or fit one problem per output."
            )
            raise ValueError(msg)
        if loss in GLM_LOSSES:
            family_of(loss, loss_options)  # bad powers, links or option names raise here
        _check_non_negative("data_scale", data_scale, strict=True)
        _check_non_negative("l2", l2)
        _check_non_negative("l1", l1)
        persist = resolve_persist(persist, PERSIST_KEY)
        engine = engine if engine is not None else dask.config.get("daskml_lab.solvers.engine", "actors")
        if engine not in ("actors", "tasks"):
            msg = f"engine must be 'actors' or 'tasks' (or None for the configured default), got {engine!r}."
            raise ValueError(msg)
        if timeout_s is None:
            timeout_s = cluster_timeout_s()
        _check_non_negative("timeout_s", timeout_s, strict=True)
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.n_outputs = int(n_outputs)
        self.fit_intercept = bool(fit_intercept)
        self.data_scale = float(data_scale)
        self.l2 = float(l2)
        self.l1 = float(l1)
        self.loss_options = dict(loss_options) if loss_options else None
        self.client = client
        self.persist = persist
        self.engine = engine
        self.timeout_s = float(timeout_s)
        self.n_samples = int(X.shape[0])
        self.n_features = int(X.shape[1])
        self.n_params = self.n_features + int(self.fit_intercept)
        self.dtype = np.dtype(X.dtype)
        self.sum_weights = float("nan")
        self.n_evaluations = 0
        self.n_hessian_products = 0
        self.engine_name: str | None = None
        self._engine: Any = None

    # -- life cycle ---------------------------------------------------------------------------------------
    def __enter__(self) -> BlockedProblem:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def will_persist(self) -> bool:
        """Whether :meth:`start` keeps the blocks in memory (``True``) or streams them (``False``).

        Applies the ``persist`` rule now, with the same checks as :meth:`start` (it raises the same errors),
        so that a caller that reads the data several times can decide the same way before it starts.

        Returns
        -------
        bool
        """
        return self._decide_persist(self._resolve_client())

    def start(self) -> BlockedProblem:
        """Persist the blocks (or prepare streaming) and create the per-worker state; idempotent.

        Returns
        -------
        BlockedProblem
            ``self``.

        Raises
        ------
        ValueError
            On a cluster whose workers have a ``memory_limit``, before anything is computed: when
            ``persist=True`` and the data exceed the workers' free memory, or when streaming and a row block
            exceeds the free memory of every worker (either would get the workers killed by their nanny).
        """
        if self._engine is not None:
            return self
        spec = EngineSpec(self.loss, self.n_outputs, self.fit_intercept, self.loss_options)
        client = self._resolve_client()
        keep = self._decide_persist(client)
        if not keep:
            engine = StreamEngine(spec, self.X, self.y, self.sample_weight, client, self.timeout_s)
        elif client is None:
            engine = LocalEngine(spec, self.X, self.y, self.sample_weight)
        else:
            engine = DistributedEngine(
                spec, self.X, self.y, self.sample_weight, client, self.timeout_s, self.engine
            )
        n_rows, sum_weights = engine.start()
        self._engine = engine
        self.engine_name = engine.name
        self.sum_weights = sum_weights
        logger.debug(
            "BlockedProblem started: engine %s, %d rows, %d workers", engine.name, n_rows, engine.n_workers
        )
        return self

    def close(self) -> None:
        """Drop the references to persisted blocks and per-worker state."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def _resolve_client(self) -> Any:
        return self.client if self.client is not None else current_client()

    def _decide_persist(self, client: Any, workers: tuple[WorkerMemory, ...] | None = None) -> bool:
        """The memory plan of this problem's data (persist or stream), after refusing blocks no worker holds."""
        workers = measure_workers(client) if workers is None else tuple(workers)
        sparse = sp.issparse(getattr(self.X, "_meta", None))
        plan = plan_memory(
            nbytes=dense_nbytes(self.X, self.y, self.sample_weight),
            sparse=sparse,
            persist=self.persist,
            config_key=PERSIST_KEY,
            workers=workers,
            subject="the data",
            streaming="streaming the blocks from their source at every evaluation",
            logger=logger,
        )
        if workers and not sparse and not plan.persist:
            self._check_block_fits(workers)
        return plan.persist

    def _check_block_fits(self, workers: tuple[WorkerMemory, ...]) -> None:
        """Refuse, before any graph runs, a row block that no worker can hold: streaming reads one whole block.

        Its task would get the worker killed by its nanny again and again until the scheduler gives up.
        """
        rows = max(self.X.chunks[0], default=0)
        block = float(rows) * self.n_features * self.dtype.itemsize
        room = block_room(workers)
        if block > room:
            suggested = max(1, int(rows * room / (4 * block)))
            msg = (
                f"The largest row block ({rows} rows, {block / 1e6:.0f} MB dense) does not fit in the free "
                f"memory of any worker (at most {room / 1e6:.0f} MB below its memory_limit), and streaming "
                f"reads one whole block per task. Use smaller row blocks, e.g. X.rechunk({{0: {suggested}}}) "
                "or read_zarr(..., chunks=...), or workers with more memory."
            )
            raise ValueError(msg)

    @property
    def n_workers(self) -> int:
        """Workers that hold blocks (1 for the local and streaming engines without a cluster)."""
        self.start()
        return int(self._engine.n_workers)

    @property
    def objective_scale(self) -> float:
        """``data_scale * sum_weights``: ``F`` divided by it is a per-sample mean, which ``tol`` uses."""
        self.start()
        scale = self.data_scale * self.sum_weights
        return scale if scale > 0 else 1.0

    # -- evaluation ---------------------------------------------------------------------------------------
    def _as_params(self, W: Any) -> np.ndarray:
        W = np.asarray(W, dtype=np.float64)
        if W.size != self.n_params * self.n_outputs:
            msg = (
                f"W must have shape (n_params, n_outputs) = ({self.n_params}, {self.n_outputs}) (or be its "
                f"flattened form), got shape {W.shape}."
            )
            raise ValueError(msg)
        return W.reshape(self.n_params, self.n_outputs)

    def loss_grad(self, W: Any) -> tuple[float, np.ndarray]:
        """Smooth part of the objective (data term plus l2 penalty) and its gradient, in one data pass.

        Parameters
        ----------
        W : array-like of shape (n_params, n_outputs) or (n_params * n_outputs,)
            Parameters.

        Returns
        -------
        objective : float
        grad : ndarray of float64 with the shape of ``W``
        """
        self.start()
        shape = np.shape(W)
        params = self._as_params(W)
        self.n_evaluations += 1
        data_loss, data_grad = self._engine.loss_grad(params.astype(self.dtype))
        penalty, penalty_grad = l2_value_grad(params, self.n_features, self.l2)
        objective = self.data_scale * data_loss + penalty
        grad = self.data_scale * data_grad + penalty_grad
        return float(objective), grad.reshape(shape)

    def hessian_product(self, W: Any, V: Any) -> np.ndarray:
        """Hessian of the smooth part of the objective at ``W``, times ``V``, in one pass over the data.

        Only ``W`` and ``V`` travel to the workers and one parameter-sized vector per worker comes back. The
        per-row curvature at ``W`` is kept on the workers (with the ``"actors"`` and ``"local"`` engines), so
        that products at the same ``W`` (the steps of a conjugate-gradient solve) do not compute it again.

        Parameters
        ----------
        W : array-like of shape (n_params, n_outputs) or (n_params * n_outputs,)
            Where the Hessian is taken.
        V : array-like with the shape of ``W``
            Direction.

        Returns
        -------
        ndarray of float64 with the shape of ``V``

        Raises
        ------
        ValueError
            For a loss without a second derivative (``"hinge"``).
        """
        self._require_curvature()
        self.start()
        params, direction = self._as_params(W), self._as_params(V)
        parts = self.map_workers(_hessian_product_local, params, params_token(params), direction)
        data = parts[0].product.copy()
        for part in parts[1:]:
            data += part.product
        self.n_hessian_products += 1
        product = self.data_scale * data.reshape(direction.shape)
        product[: self.n_features] += self.l2 * direction[: self.n_features]
        return product.reshape(np.shape(V))

    def hessian_diagonal(self, W: Any) -> np.ndarray:
        """Diagonal of the Hessian of the smooth part of the objective at ``W``, in one pass over the data.

        The per-row curvature computed on the way is kept on the workers (as by :meth:`hessian_product`), so
        the products at the same ``W`` that follow do not compute it again.

        Parameters
        ----------
        W : array-like of shape (n_params, n_outputs) or (n_params * n_outputs,)

        Returns
        -------
        ndarray of float64 with the shape of ``W``

        Raises
        ------
        ValueError
            For a loss without a second derivative (``"hinge"``).
        """
        self._require_curvature()
        self.start()
        params = self._as_params(W)
        parts = self.map_workers(_hessian_diagonal_local, params, params_token(params))
        data = parts[0].diagonal.copy()
        for part in parts[1:]:
            data += part.diagonal
        diagonal = self.data_scale * data
        diagonal[: self.n_features] += self.l2
        return diagonal.reshape(np.shape(W))

    def hessian(self, W: Any) -> np.ndarray:
        """Hessian matrix of the smooth part of the objective at ``W``, in one pass over the data.

        Each worker returns a ``(n_params * n_outputs)``-square matrix: meant for narrow data (see the
        ``"newton-cholesky"`` solver's ``max_width``).

        Parameters
        ----------
        W : array-like of shape (n_params, n_outputs) or (n_params * n_outputs,)

        Returns
        -------
        ndarray of float64 of shape (n_params * n_outputs, n_params * n_outputs)
            Rows and columns in the order of ``W.ravel()``.

        Raises
        ------
        ValueError
            For a loss without a second derivative (``"hinge"``).
        """
        self._require_curvature()
        self.start()
        params = self._as_params(W)
        parts = self.map_workers(_hessian_local, params)
        data = parts[0].hessian.copy()
        for part in parts[1:]:
            data += part.hessian
        H = self.data_scale * data
        penalised = np.arange(self.n_features * self.n_outputs)  # coefficient rows come first in W.ravel()
        H[penalised, penalised] += self.l2
        return H

    def _require_curvature(self) -> None:
        if not self.loss_info.smooth:
            msg = (
                f"The {self.loss!r} loss has no second derivative, so its Hessian is not defined; Newton "
                "solvers need a smooth loss (use solver='admm' or 'sgd' for it)."
            )
            raise ValueError(msg)

    def objective(self, W: Any) -> float:
        """The full objective ``F(W)``, including the l1 term (one pass over the data)."""
        params = self._as_params(W)
        value, _ = self.loss_grad(params)
        return value + self.l1 * l1_norm(params, self.n_features)

    def unpack(self, W: Any) -> tuple[np.ndarray, np.ndarray]:
        """Split ``W`` into ``coef`` of shape (n_outputs, n_features) and ``intercept`` of shape (n_outputs,).

        Examples
        --------
        >>> import dask.array as da
        >>> problem = BlockedProblem(da.zeros((4, 2), chunks=2), da.zeros(4, chunks=2), loss="squared")
        >>> coef, intercept = problem.unpack([[1.0], [2.0], [3.0]])
        >>> coef.tolist(), intercept.tolist()
        ([[1.0, 2.0]], [3.0])
        """
        params = self._as_params(W)
        coef = params[: self.n_features].T.copy()
        intercept = params[self.n_features].copy() if self.fit_intercept else np.zeros(self.n_outputs)
        return coef, intercept

    def initial_params(self, w0: Any = None) -> np.ndarray:
        """Starting parameters: zeros, or ``w0`` checked against ``(n_params, n_outputs)``, in float64."""
        if w0 is None:
            return np.zeros((self.n_params, self.n_outputs))
        params = self._as_params(w0).copy()
        if not np.all(np.isfinite(params)):
            msg = "w0 (the starting parameters, e.g. from warm_start) contains NaN or infinity."
            raise ValueError(msg)
        return params

    # -- per-worker work for other solvers ----------------------------------------------------------------
    def map_workers(self, func: Callable[..., Any], *args: Any) -> list[Any]:
        """Run ``func(local_blocks, *args)`` once per worker, on the blocks it holds; return the results.

        Parameters
        ----------
        func : callable
            A picklable module-level function ``func(local: LocalBlocks, *args)`` returning something small.
        *args
            Small arguments (parameters, step sizes), sent to every worker.

        Returns
        -------
        list
            One result per worker, in a fixed worker order.
        """
        calls = self.submit_workers(func, *args)
        # a round: on a cluster, the work of a worker that stops answering is moved (see _stragglers)
        return self._engine.gather_calls(calls, self.timeout_s)

    def submit_workers(self, func: Callable[..., Any], *args: Any) -> list[WorkerCall]:
        """Like :meth:`map_workers` without waiting: one :class:`WorkerCall` handle per worker.

        Each handle has ``done()`` and ``result(timeout_s)``; asynchronous solvers poll them.
        """
        self.start()
        return self._engine.submit_workers(func, args)

    def move_stragglers(self, positions: list[int], reason: str) -> bool:
        """Move the blocks of the given worker positions to the other workers (a straggler's share).

        Used by asynchronous solvers, which have no rounds to time (see :mod:`daskml_lab.solvers._stragglers`);
        the calls in flight to those positions then finish by being sent again to the new holders.

        Parameters
        ----------
        positions : list of int
            Indices into the calls of :meth:`submit_workers`.
        reason : str
            Why, for the log.

        Returns
        -------
        bool
            Whether anything was moved (only the ``"actors"`` engine moves work).
        """
        self.start()
        move = getattr(self._engine, "move_stragglers", None)
        return bool(move is not None and move(positions, reason))

    def __repr__(self) -> str:
        return (
            f"BlockedProblem(loss={self.loss!r}, n_samples={self.n_samples}, n_features={self.n_features}, "
            f"n_outputs={self.n_outputs}, fit_intercept={self.fit_intercept}, "
            f"data_scale={self.data_scale:g}, l2={self.l2:g}, l1={self.l1:g}, dtype={self.dtype}, "
            f"engine={self.engine_name})"
        )


def _check_arrays(X: Any, y: Any, sample_weight: Any) -> None:
    if not isinstance(X, da.Array) or X.ndim != 2:
        msg = (
            f"X must be a 2-D dask array (validated with daskml_lab.data.check_X_y), got {type(X).__name__}"
            f"{' of shape ' + str(X.shape) if hasattr(X, 'shape') else ''}."
        )
        raise TypeError(msg)
    if len(X.chunks[1]) != 1:
        msg = f"X must have all features in one column chunk, got column chunks {X.chunks[1]}; rechunk first."
        raise ValueError(msg)
    if np.dtype(X.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        msg = f"X must be float32 or float64, got {X.dtype}; validate it with daskml_lab.data.check_X_y."
        raise TypeError(msg)
    for name, vector in (("y", y), ("sample_weight", sample_weight)):
        if vector is None and name == "sample_weight":
            continue
        if not isinstance(vector, da.Array) or vector.ndim != 1:
            msg = f"{name} must be a 1-D dask array with the row chunks of X, got {type(vector).__name__}."
            raise TypeError(msg)
        if vector.chunks[0] != X.chunks[0]:
            msg = (
                f"{name} must have the row chunks of X: X has {len(X.chunks[0])} row blocks "
                f"{X.chunks[0][:4]}..., {name} has {len(vector.chunks[0])} {vector.chunks[0][:4]}...; "
                f"rechunk({name}, X.chunks[0])."
            )
            raise ValueError(msg)


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        msg = f"{name} must be a positive int, got {value!r}."
        raise ValueError(msg)


def _check_non_negative(name: str, value: Any, *, strict: bool = False) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < 0 or (strict and value == 0):
        bound = "> 0" if strict else ">= 0"
        msg = f"{name} must be a finite number {bound}, got {value!r}."
        raise ValueError(msg)
