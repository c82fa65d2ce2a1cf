"""A fitted linear model that stays in its parameter shards: :class:`PartitionedCoefficients`.

When a fit over the partitioned store (``model_partitions=``) ends with a model larger than the client may
gather (``daskml_lab.solvers.store.max_gather_bytes``), the coefficients stay where they were trained, in the
store's shards (Dask actors on the workers), and ``coef_`` is a :class:`PartitionedCoefficients`: a small
handle with ``shape``, ``dtype`` and ``n_partitions``, which owns the shards (they live as long as the handle
and the client that fitted it). Prediction enters the graph as one small :class:`StoreParams` object; each
row-block task pulls from the shards only the keys its block's columns use and scores the block
(:meth:`StoreParams.decision_function`), so no ``n_features``-sized array is built on the client or on a worker.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from dask.delayed import Delayed
from distributed import get_client

from daskml_lab._compat import scheduler_workers
from daskml_lab.exceptions import NotStorableError, PartitionedModelLostError
from daskml_lab.monitoring import task_prefix
from daskml_lab.solvers import ShardedStore, StoreView, max_gather_bytes

__all__ = ["PartitionedCoefficients", "StoreParams"]

_KEEP_IT = (
    "A partitioned model lives only as long as the client that fitted it and the workers holding its shards: "
    "save it before closing them (daskml_lab.save streams it from the shards; daskml_lab.load puts it back), "
    "or fit it again."
)


def _lost_message(what: str) -> str:
    return f"The partitioned model was lost with its parameter shards: {what}. {_KEEP_IT}"


def _raise_if_left(workers: Any, shards: list[int], present: set[str]) -> None:
    """The lost-model error if the worker of one of ``shards`` is not ``present`` in the cluster."""
    gone = [shard for shard in shards if workers[shard] not in present]
    if gone:
        where = sorted({workers[shard] for shard in gone})
        what = f"shard(s) {gone} were on worker(s) {where}, which left the cluster"
        raise PartitionedModelLostError(_lost_message(what))


@dataclass(frozen=True, eq=False)
class StoreParams:
    """What a scoring task needs of a partitioned model: the shards' handles, the width and the final clocks.

    Picklable (the actors travel as handles); it enters a prediction graph once, in place of the
    ``(n_features + 1, n_outputs)`` parameter array of a gathered model (see
    :func:`daskml_lab.linear_model._blocks._decision_function_block`).

    Attributes
    ----------
    view : StoreView
        The shards' handles and their rule.
    n_features : int
        Feature keys ``0 .. n_features - 1``; key ``n_features`` is the intercept row.
    dtype : numpy.dtype
        The dtype of ``coef_`` (the pulled float64 rows are cast to it, as a gathered model's are).
    clocks : tuple of int
        Each shard's clock at the end of the fit: a shard answering with another clock is not the one that
        was trained (its worker restarted and the actor was created again, empty).
    intercept : ndarray of shape (n_outputs,)
        The model's ``intercept_`` (small: it travels with the object, the store's intercept row is not
        pulled).
    workers : tuple of str
        The worker address of each shard.
    """

    view: Any
    n_features: int
    dtype: np.dtype
    clocks: tuple[int, ...]
    intercept: np.ndarray
    workers: tuple[str, ...]

    def __dask_tokenize__(self) -> Any:
        # the shards' keys and final clocks identify the model (the actors' handles need not be hashed)
        return (
            type(self).__name__,
            [shard.key for shard in self.view.shards],
            self.clocks,
            self.intercept.tobytes(),
        )

    def _check_alive(self, shards: list[int]) -> None:
        """Raise the lost-model error if the worker of one of ``shards`` has left the cluster (asks the scheduler)."""
        _raise_if_left(self.workers, shards, set(scheduler_workers(get_client())))

    def decision_function(self, X: Any) -> np.ndarray:
        """``X @ coef_.T + intercept_`` of a block (dense or CSR), pulling only the keys of its columns present.

        One class part at a time (a model whose classes are split over the shards): the block's keys are
        never held for all the classes at once.

        Raises
        ------
        PartitionedModelLostError
            When a shard does not answer, or answers with another clock than at the end of the fit (it was
            lost with its worker).
        """
        X = X.tocsr() if sp.issparse(X) else sp.csr_matrix(np.asarray(X))
        columns = np.unique(X.indices)
        local = sp.csr_matrix(
            (X.data, np.searchsorted(columns, X.indices), X.indptr), shape=(X.shape[0], len(columns))
        )
        keys = columns.astype(np.int64)
        intercept = np.asarray(self.intercept, dtype=np.float64).astype(self.dtype, copy=False)
        scores = np.empty((X.shape[0], len(intercept)), dtype=np.result_type(local.dtype, self.dtype))
        for part in self.view.class_parts:
            bounds = self.view.rule.class_bounds(part)
            rows = self._pull(keys, part).astype(self.dtype, copy=False)
            scores[:, bounds] = np.asarray(local @ rows) + intercept[bounds]
        return scores

    def _pull(self, keys: np.ndarray, part: int) -> np.ndarray:
        """The rows of ``keys`` for class part ``part``, from shards that still hold the fitted model."""
        try:
            rows, clocks, _ = self.view.pull(keys, part=part, alive=self._check_alive)
        except PartitionedModelLostError:
            raise
        except (
            Exception
        ) as err:  # a dead shard answers with various errors (lost actor, closed comm, timeout)
            what = f"a shard did not answer ({type(err).__name__}: {err})"
            raise PartitionedModelLostError(_lost_message(what)) from err
        for shard, positions, _ in self.view.rule.split(keys, part):
            if len(positions) and clocks[shard] != self.clocks[shard]:
                what = (
                    f"shard {shard} answered at step {clocks[shard]} instead of {self.clocks[shard]}: its worker "
                    "restarted and the shard was created again, empty"
                )
                raise PartitionedModelLostError(_lost_message(what))
        return rows


class PartitionedCoefficients:
    """The coefficients of a fitted model kept in the parameter shards on the workers.

    ``coef_`` of a linear model fitted with ``model_partitions`` when the model is larger than
    ``daskml_lab.solvers.store.max_gather_bytes`` (dask config, 256 MiB by default). It owns the shards: they
    are released when it is garbage-collected, or with the client that fitted it. Prediction with the model
    stays lazy and pulls, per row block, only the keys that block uses.

    Parameters
    ----------
    store : ShardedStore
        The open store of the fit (feature keys, then the intercept key).
    n_features : int
        Number of features.
    dtype : numpy.dtype
        The dtype of the coefficients (that of the training data).

    Attributes
    ----------
    shape : tuple of int
        ``(n_outputs, n_features)``, as ``coef_`` of a gathered model (one row for two classes).
    dtype : numpy.dtype
        The coefficients' dtype.
    ndim : int
        2.
    n_partitions : int
        Number of parameter shards.
    nbytes : int
        Size of the coefficients if gathered, in bytes.
    workers : list of str
        The worker address of each shard.

    Notes
    -----
    Not picklable: the shards are actors on workers that outlive neither the client nor the workers.
    :func:`daskml_lab.save` stores the model slice by slice (:meth:`columns`), never whole on the client, and
    :func:`daskml_lab.load` puts it back into new shards on the connected cluster when it is larger than the
    gather limit (:meth:`from_columns`), as a numpy array otherwise. Bring the model to the client with
    :meth:`to_numpy` when it fits there. A copy (``copy.copy``/``copy.deepcopy``) shares the same shards (the
    fitted model is read-only).

    Examples
    --------
    On a distributed cluster, with a model above the gather limit (lowered here):

    >>> import dask
    >>> from daskml_lab.linear_model import LogisticRegression
    >>> with dask.config.set({"daskml_lab.solvers.store.max_gather_bytes": 2**10}):  # doctest: +SKIP
    ...     model = LogisticRegression(model_partitions=2, max_iter=3).fit(X, y)
    >>> model.coef_  # doctest: +SKIP
    PartitionedCoefficients(shape=(1, 16384), dtype=float64, n_partitions=2, nbytes=131072)
    >>> model.predict(X_new)  # lazy; each row block pulls only its columns' keys  # doctest: +SKIP
    >>> coef = model.coef_.to_numpy(max_bytes=2**20)  # on purpose, when the client has the memory  # doctest: +SKIP
    """

    def __init__(self, store: ShardedStore, n_features: int, dtype: Any) -> None:
        self._store = store
        self.n_partitions = store.n_shards
        self.shape = (int(store.view.n_outputs), int(n_features))
        self.dtype = np.dtype(dtype)
        self.ndim = 2
        self.workers = list(store.workers)
        self._scheduler = str(getattr(store.client.scheduler, "address", "?"))
        # the clocks at the end of the fit identify the trained shards (a shard created again starts at 0)
        self._clocks = tuple(store.view.clocks())
        self._token = uuid.uuid4().hex[:10]

    @property
    def nbytes(self) -> int:
        """Size of the coefficients once gathered, in bytes (``n_outputs * n_features * itemsize``)."""
        return self.shape[0] * self.shape[1] * self.dtype.itemsize

    def __repr__(self) -> str:
        return (
            f"PartitionedCoefficients(shape={self.shape}, dtype={self.dtype}, n_partitions={self.n_partitions}, "
            f"nbytes={self.nbytes})"
        )

    # -- state of the shards -----------------------------------------------------------------------------------
    def check_available(self) -> None:
        """Raise if the shards are known to be gone (the client closed, or a shard's worker left).

        Asks the scheduler for its workers (one small request); nothing is computed.

        Raises
        ------
        PartitionedModelLostError
            Naming what was lost and how to keep a partitioned model.
        """
        if self._store.closed:
            raise PartitionedModelLostError(_lost_message("its shards were released (release())"))
        client = self._store.client
        if getattr(client, "status", "running") != "running":
            what = f"the client that fitted it (scheduler {self._scheduler}) is {client.status}"
            raise PartitionedModelLostError(_lost_message(what))
        # a shard's actor no longer held (Dask says so), or its worker gone (the scheduler says so)
        _raise_if_left(self.workers, self._store.lost_shards(), set())
        _raise_if_left(self.workers, list(range(self.n_partitions)), set(scheduler_workers(client)))

    def release(self) -> None:
        """Free the shards' memory on the workers now, instead of when the last reference goes.

        The model cannot predict afterwards (:class:`~daskml_lab.exceptions.PartitionedModelLostError`); save
        it first to keep it. Copies share the shards and are released with it. Making room for another wide
        model (a second fit, or :func:`daskml_lab.load`) is what it is for.
        """
        self._store.close(wait=True)

    def store_view(self) -> StoreView:
        """The handles of the shards and their rule: what a new fit starts from (``warm_start=True``).

        Raises
        ------
        PartitionedModelLostError
            When the shards are gone (see :meth:`check_available`).
        """
        self.check_available()
        return self._store.view

    def store_params(self, intercept: Any) -> StoreParams:
        """The small object a scoring task needs (see :class:`StoreParams`), with the model's ``intercept``."""
        intercept = np.broadcast_to(np.atleast_1d(np.asarray(intercept, dtype=np.float64)), (self.shape[0],))
        view = self._store.view
        return StoreParams(
            view, self.shape[1], self.dtype, self._clocks, intercept.copy(), tuple(self.workers)
        )

    def params_in_graph(self, intercept: Any) -> Delayed:
        """:meth:`store_params` as one delayed object, entering a prediction graph once.

        Checks first that the shards are available (:meth:`check_available`).
        """
        self.check_available()
        params = self.store_params(intercept)
        key = f"{task_prefix('coef partitioned')}-{self._token}-{tokenize(params.intercept)}"
        return dask.delayed(params, name=key, traverse=False)

    def stats(self) -> list[dict[str, Any]]:
        """Each shard's traffic counters (keys and bytes pulled, gathers, ...; see :meth:`ShardedStore.stats`)."""
        return self._store.stats()

    # -- bringing it to the client ---------------------------------------------------------------------------
    def to_numpy(self, max_bytes: int | None = None) -> np.ndarray:
        """The coefficients as a numpy array of shape ``shape`` on the client, if they fit ``max_bytes``.

        Parameters
        ----------
        max_bytes : int, default=None
            The largest array allowed; None reads ``daskml_lab.solvers.store.max_gather_bytes``.

        Returns
        -------
        ndarray of shape (n_outputs, n_features)

        Raises
        ------
        ValueError
            When the coefficients are larger than ``max_bytes``; nothing is gathered then.
        PartitionedModelLostError
            When the shards are lost.
        """
        limit = max_gather_bytes() if max_bytes is None else int(max_bytes)
        if self.nbytes > limit:
            msg = (
                f"The partitioned coefficients {self.shape} have {self.nbytes} bytes, more than the {limit} bytes "
                "a gather to the client may bring (dask config daskml_lab.solvers.store.max_gather_bytes). Keep "
                "the model partitioned (predict, decision_function and predict_proba use it where it is), or, if "
                "the client has the memory, call to_numpy(max_bytes=...) with a larger limit."
            )
            raise ValueError(msg)
        self.check_available()
        W = self._store.gather(limit_bytes=max(limit, self._store.nbytes))
        return np.ascontiguousarray(W[: self.shape[1]].T, dtype=self.dtype)

    # -- slices, for model files (daskml_lab.save/load stream them) --------------------------------------------
    def columns(self, start: int, stop: int) -> np.ndarray:
        """Coefficients of features ``start .. stop - 1``: ``coef_[:, start:stop]`` pulled from the shards.

        Only these keys are pulled (``save`` writes a large model slice by slice this way, so the client
        never holds the whole of it).

        Returns
        -------
        ndarray of shape (n_outputs, stop - start)
        """
        if not 0 <= start <= stop <= self.shape[1]:
            msg = f"columns({start}, {stop}) is outside the model's {self.shape[1]} features."
            raise ValueError(msg)
        self.check_available()
        rows = self._store.pull(np.arange(start, stop, dtype=np.int64))
        return np.ascontiguousarray(rows.T, dtype=self.dtype)

    def intercept_row(self) -> np.ndarray:
        """The store's intercept key (one value per output), where a warm start from this model begins."""
        self.check_available()
        return self._store.pull(np.array([self.shape[1]], dtype=np.int64))[0].copy()

    @classmethod
    def from_columns(
        cls,
        client: Any,
        shape: tuple[int, int],
        dtype: Any,
        blocks: Any,
        *,
        n_partitions: int | None = None,
        intercept_row: Any = None,
    ) -> PartitionedCoefficients:
        """A model's coefficients put into new parameter shards, slice by slice (``load`` of a large model).

        Parameters
        ----------
        client : distributed.Client
        shape : (int, int)
            ``(n_outputs, n_features)``.
        dtype : numpy.dtype
        blocks : iterable of (int, ndarray)
            ``(start, coef_[:, start:start + width])`` pairs covering the features once each; each is sent
            to the shards holding its keys and dropped before the next is read.
        n_partitions : int, default=None
            Number of shards (one per worker when None), placed over the cluster's workers.
        intercept_row : array-like of shape (n_outputs,), default=None
            The store's intercept key (zeros when None).

        Returns
        -------
        PartitionedCoefficients
        """
        n_outputs, n_features = (int(n) for n in shape)
        workers = sorted(scheduler_workers(client))
        store = ShardedStore.create(
            client,
            n_features + 1,
            n_outputs,
            workers=workers,
            n_shards=n_partitions,
            n_penalised=n_features,
            step_rule="sgd",  # a fitted model's shards hold the values only (no step rule's state)
            key=task_prefix("parameter shard"),
        )
        try:
            view = store.view
            for start, block in blocks:
                block = np.asarray(block)
                _load_keys(view, np.arange(start, start + block.shape[1], dtype=np.int64), block.T)
            if intercept_row is not None:
                _load_keys(view, np.array([n_features]), np.asarray(intercept_row, dtype=np.float64)[None, :])
        except OSError as err:  # an actor's worker is gone ("Unable to contact Actor's worker")
            store.close()
            gone = sorted(set(store.workers) - set(scheduler_workers(client)))
            msg = (
                f"Worker(s) {gone or store.workers} could not be reached while the model was loaded into their "
                f"parameter shards ({err}); a worker restarted above its memory limit is the usual cause. Check the "
                "workers' memory_limit and logs, then load again."
            )
            raise PartitionedModelLostError(msg) from err
        except BaseException:
            store.close()
            raise
        return cls(store, n_features, dtype)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy is False:
            msg = "PartitionedCoefficients cannot be viewed as an array without a copy: use to_numpy()."
            raise ValueError(msg)
        array = self.to_numpy()
        return array if dtype is None else array.astype(dtype, copy=False)

    def __dask_tokenize__(self) -> Any:
        return (type(self).__name__, self._token)

    # -- copies, pickling -------------------------------------------------------------------------------------
    def __copy__(self) -> PartitionedCoefficients:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> PartitionedCoefficients:
        return self

    def __reduce__(self) -> Any:
        msg = (
            f"A partitioned model cannot be pickled: its coefficients ({self.shape}, {self.nbytes} bytes) live "
            f"in {self.n_partitions} parameter shards on the workers {sorted(set(self.workers))}. Save it with "
            "daskml_lab.save(model, path), which streams them slice by slice, and load it back with "
            "daskml_lab.load(path) while connected to a cluster."
        )
        raise NotStorableError(msg)

    def __getstate__(self) -> Any:
        return self.__reduce__()


def _load_keys(view: StoreView, keys: np.ndarray, rows: np.ndarray) -> None:
    """Set the rows of ``keys`` in the shards holding them (all shards at once)."""
    for call in view.add_rows(keys, rows, "load_rows"):
        call.result(view.timeout_s)
