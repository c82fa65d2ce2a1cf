"""Lazy prediction with a fitted model over row blocks: the model enters the graph once.

Where a prediction runs is decided by :func:`prediction_place` from the memory plan
(:func:`daskml_lab._runtime.memory.plan_prediction`): in-memory input may be predicted in this process, where
the model and the rows already are, rather than sending a large model to every worker.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import dask
import dask.array as da
import numpy as np

from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.memory import dense_nbytes, measure_workers, plan_prediction
from daskml_lab.data import InputOrigin
from daskml_lab.monitoring import task_prefix

__all__ = ["map_model_method", "model_nbytes", "prediction_place"]

logger = logging.getLogger(__name__)

#: Serialised sizes already measured: ``{model: nbytes}`` (weak keys, as for the scattered copies).
_SIZES: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def model_nbytes(model: Any) -> int:
    """Serialised size of ``model`` in bytes: what a worker receives (and holds) to predict with it.

    Measured once per fitted model by pickling it with out-of-band buffers (protocol 5), so that the numpy
    arrays of the model (the nodes of trees, support vectors) are counted without being copied.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> model = LinearRegression().fit(np.zeros((4, 1000)), np.zeros(4))
    >>> model_nbytes(model) > 8000
    True
    """
    try:
        cached = _SIZES.get(model)
    except TypeError:  # unhashable: measured every time
        cached = None
    if cached is not None:
        return cached
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(model, protocol=5, buffer_callback=buffers.append)
    size = len(head) + sum(memoryview(buffer).nbytes for buffer in buffers)
    with contextlib.suppress(TypeError):
        _SIZES[model] = size
    return size


@contextlib.contextmanager
def prediction_place(model: Any, X: da.Array, origin: InputOrigin, *, what: str) -> Iterator[str]:
    """Build and compute the prediction inside this context: on the cluster, or in this process.

    With a distributed client, the memory plan (:func:`~daskml_lab._runtime.memory.plan_prediction`)
    decides from the model's serialised size, the input's dense size and kind, and the workers' memory. In
    this process (``"client"``), the graph is built with the model as a literal and computed with the
    threaded scheduler: no task reaches the cluster. Dask input stays lazy (and on the cluster); a model the
    workers cannot hold is refused here, before any task runs.

    Parameters
    ----------
    model : object
        The fitted model the prediction sends to the workers.
    X : dask.array.Array
        The validated input.
    origin : InputOrigin
        What the input was (numpy, pandas and sparse input are in this process's memory).
    what : str
        The model, for messages ("The fused model of ShardEnsembleClassifier").

    Yields
    ------
    {"client", "cluster", "local"}
        Where the prediction runs (``"local"``: no distributed client).

    Raises
    ------
    ValueError
        For dask or xarray input, when the smallest worker cannot hold the model.
    """
    client = current_client()
    if client is None:
        yield "local"
        return
    workers = measure_workers(client)
    place = "cluster"
    if workers:
        size = model_nbytes(model)
        place = plan_prediction(
            model_nbytes=size,
            X_nbytes=dense_nbytes(X) if X.ndim == 2 else 0.0,
            in_client=origin.is_eager,
            workers=workers,
            what=what,
        )
        logger.debug("predicting %s (%.1f MB serialised): %s", what, size / 1e6, place)
    if place == "client":
        # the model stays here: the graph gets it as a literal and runs on the threaded scheduler
        with dask.config.set(scheduler="threads"):
            yield place
    else:
        yield place


def _model_method_block(
    X: Any, model: Any, *, method_name: str, n_columns: int | None, out_dtype: Any
) -> np.ndarray:
    """Apply ``model.<method_name>`` to one row block (empty blocks give empty results)."""
    if X.shape[0] == 0:
        return np.empty((0,) if n_columns is None else (0, n_columns), dtype=out_dtype)
    with warnings.catch_warnings():
        # members trained on named columns see unnamed blocks here; the ensemble checked the names of the
        # user's input at its own boundary (``feature_names_in_``), so their warning would be a false alarm
        warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
        return np.asarray(getattr(model, method_name)(X), dtype=out_dtype)


#: Models already scattered: ``{model: (client, future)}``. Weak keys: when a fitted model is garbage
#: collected, its entry goes and the future's release frees the copies on the workers.
_SCATTERED: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()


def _scatter_above_bytes() -> int:
    """Serialised size above which a model is scattered rather than put in the graph.

    ``daskml_lab.ensemble.scatter_model_above_bytes`` (dask config, default 8 MiB): just
    below the size at which distributed warns about a large graph.
    """
    return int(
        dask.utils.parse_bytes(dask.config.get("daskml_lab.ensemble.scatter_model_above_bytes", 8 * 2**20))
    )


def _model_node(model: Any, key: str) -> Any:
    """One graph node holding ``model``.

    The model enters the graph once, as a literal under the key ``key``, whatever the number of row blocks:
    the scheduler keeps it with the graph, so a worker lost between the building of a lazy prediction and its
    computation (or during it) loses nothing the scheduler cannot send again.

    A model larger than ``daskml_lab.ensemble.scatter_model_above_bytes`` (default 8 MiB serialised: a large
    forest) is instead scattered to the workers once, outside the graph, so that every ``compute`` does not
    ship a graph of tens of MiB; the copy is reused by later predictions with the same fitted model and client
    (a refit makes a new model object, hence a new copy) and scattered again when the scheduler says that no
    worker holds it any more.
    Scattered data have no lineage, and distributed's active memory manager keeps one replica of data no
    task waits for: a computation that starts after the loss of that replica's worker fails, and predicting
    again scatters a new copy.
    """
    client = current_client()
    if client is None or model_nbytes(model) <= _scatter_above_bytes():
        return dask.delayed(model, name=key, pure=True, traverse=False)
    try:
        cached = _SCATTERED.get(model)
    except TypeError:  # an unhashable model: scattered for every prediction
        return client.scatter(model, hash=False)
    if cached is not None and cached[0] is client and cached[1].status == "finished":
        # asked of the scheduler: the client may not have heard yet that the copy's worker has gone
        if client.who_has([cached[1]]).get(cached[1].key):
            return cached[1]
    future = client.scatter(model, hash=False)
    _SCATTERED[model] = (client, future)
    return future


def map_model_method(
    model: Any, key: str, X: da.Array, method_name: str, *, out_dtype: Any, n_columns: int | None, action: str
) -> da.Array:
    """Lazy ``model.<method_name>`` over the row blocks of ``X``, one ``daskml-<action>`` task per block.

    Parameters
    ----------
    model : object
        A fitted model (a fusion, an SVC, ...).
    key : str
        Graph key of the model when it is a delayed literal.
    X : dask.array.Array of shape (n_samples, n_features)
        Validated row blocks.
    method_name : str
        ``"predict"``, ``"predict_proba"``, ``"decision_function"``, ...
    out_dtype : dtype
        Dtype of the result.
    n_columns : int or None
        Columns of a 2-D result; ``None`` for one value per row.
    action : str
        Words for the task prefix, e.g. ``"fuse predict"``.

    Returns
    -------
    dask.array.Array
        Lazy, with the row chunks of ``X``.
    """
    node = _model_node(model, key)
    common = {
        "method_name": method_name,
        "n_columns": n_columns,
        "out_dtype": out_dtype,
        "dtype": out_dtype,
        "token": task_prefix(action),
    }
    if n_columns is None:
        return da.map_blocks(
            _model_method_block,
            X,
            node,
            drop_axis=1,
            chunks=(X.chunks[0],),
            meta=np.empty((0,), out_dtype),
            **common,
        )
    return da.map_blocks(
        _model_method_block,
        X,
        node,
        chunks=(X.chunks[0], (n_columns,)),
        meta=np.empty((0, 0), out_dtype),
        **common,
    )
