"""Lazy prediction with a fitted model over row blocks: the model enters the graph once."""

from __future__ import annotations

import weakref
from typing import Any

import dask
import dask.array as da
import numpy as np

from daskml_lab._runtime.client import current_client
from daskml_lab.monitoring import task_prefix

__all__ = ["map_model_method"]


def _model_method_block(
    X: Any, model: Any, *, method_name: str, n_columns: int | None, out_dtype: Any
) -> np.ndarray:
    """Apply ``model.<method_name>`` to one row block (empty blocks give empty results)."""
    if X.shape[0] == 0:
        return np.empty((0,) if n_columns is None else (0, n_columns), dtype=out_dtype)
    return np.asarray(getattr(model, method_name)(X), dtype=out_dtype)


#: Models already scattered: ``{model: (client, future)}``. Weak keys: when a fitted model is garbage
#: collected, its entry goes and the future's release frees the copies on the workers.
_SCATTERED: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()


def _model_node(model: Any, key: str) -> Any:
    """One graph node holding ``model``.

    On a distributed cluster the model is scattered to the workers once, outside the task graph, so that a
    large fitted forest does not make every ``compute`` ship a graph of tens of MiB; with a local scheduler it is
    a delayed literal under the key ``key``.

    The scattered model is copied to every worker (``broadcast=True``): scattered data have no lineage, so a
    single copy would be lost for good with its worker, and every later computation of the prediction would
    fail. The tasks of every worker need the model anyway. The copies are reused by later predictions with the
    same fitted model and client (a refit makes a new model object, hence a new copy); they are scattered
    again if the cluster lost them.
    """
    client = current_client()
    if client is None:
        return dask.delayed(model, name=key, pure=True, traverse=False)
    try:
        cached = _SCATTERED.get(model)
    except TypeError:  # an unhashable model: scattered for every prediction
        return client.scatter(model, hash=False, broadcast=True)
    if cached is not None and cached[0] is client and cached[1].status == "finished":
        return cached[1]
    future = client.scatter(model, hash=False, broadcast=True)
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
