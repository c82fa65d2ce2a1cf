"""The linear models' blocked pieces: parameters entering a graph once, per-sample weights, per-block kernels."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed

from daskml_lab._runtime.client import current_client
from daskml_lab.monitoring import task_prefix

__all__ = [
    "SCATTER_MIN_BYTES",
    "block_statistics",
    "params_in_graph",
]

#: Models larger than this (bytes) are scattered to the cluster rather than put inside prediction graphs.
SCATTER_MIN_BYTES = 8 * 2**20
#: The scattered models still referenced by a graph, by (client, token of the parameters).
_SCATTERED: weakref.WeakValueDictionary[tuple[str, str], Any] = weakref.WeakValueDictionary()


def params_in_graph(coef: np.ndarray, intercept: np.ndarray) -> Delayed:
    """Coefficients ``(n_outputs, n_features)`` and intercepts ``(n_outputs,)`` as one delayed array.

    The array has shape ``(n_features + 1, n_outputs)``, the intercepts in its last row, and enters a graph
    once, under a ``daskml-coef`` key, however many tasks use it. Above :data:`SCATTER_MIN_BYTES`, with a
    distributed client, it is scattered to the cluster instead and the graph holds its future.

    Parameters
    ----------
    coef : ndarray of shape (n_outputs, n_features) or (n_features,)
        Coefficients.
    intercept : ndarray of shape (n_outputs,) or float
        Intercepts.

    Returns
    -------
    dask.delayed.Delayed
    """
    coef = np.atleast_2d(np.asarray(coef))
    intercept = np.broadcast_to(np.atleast_1d(np.asarray(intercept)), (coef.shape[0],))
    params = np.vstack([coef.T, intercept[None, :]]).astype(coef.dtype, copy=False)
    token = tokenize(params)
    client = current_client()
    if client is not None and params.nbytes > SCATTER_MIN_BYTES:
        # a wide model goes to a worker directly instead of inside the graph, which the scheduler would
        # receive, unpack and hold (dask warns from 10 MB); the graph references the future, and the graphs
        # built while one is alive share it (predict and predict_proba computed together move it once)
        future = _SCATTERED.get((client.id, token))
        if future is None or future.status != "finished":
            future = client.scatter(params, hash=False)
            _SCATTERED[client.id, token] = future
        return dask.delayed(future)
    return dask.delayed(params, name=f"{task_prefix('coef')}-{token}")


def block_statistics(
    kernel: Callable[..., np.ndarray],
    X: da.Array,
    y: da.Array,
    sample_weight: da.Array | None,
    params: Delayed,
    n_stats: int,
    **kwargs: Any,
) -> da.Array:
    """Lazy per-row-block statistics ``kernel(X_block, y_block, weight_block, params, **kwargs)``.

    Parameters
    ----------
    kernel : callable
        Returns an array of shape (1, n_stats) for one row block.
    X : dask.array.Array of shape (n_samples, n_features)
        Rows, with one column chunk.
    y : dask.array.Array of shape (n_samples,)
        Targets with the row chunks of ``X``.
    sample_weight : dask.array.Array of shape (n_samples,) or None
        Weights with the row chunks of ``X``.
    params : dask.delayed.Delayed
        From :func:`params_in_graph`.
    n_stats : int
        Number of statistics per block.
    **kwargs
        Small constant arguments of the kernel.

    Returns
    -------
    dask.array.Array of float64 of shape (n_blocks, n_stats)
    """
    args: list[Any] = [X, "ik", y, "i"]
    args += [sample_weight, "i"] if sample_weight is not None else [None, None]
    return da.blockwise(
        kernel,
        "ij",
        *args,
        params,
        None,
        new_axes={"j": n_stats},
        adjust_chunks={"i": 1},
        concatenate=True,
        dtype=np.float64,
        meta=np.empty((0, 0), dtype=np.float64),
        name=f"{task_prefix('block stats')}-{tokenize(kernel, X, y, sample_weight, kwargs, params.key)}",
        **kwargs,
    )


# ------------------------------------------------------------------------------------------------------------
# per-block kernels (pure, module level, picklable)


def _decision_function_block(X: Any, params: Any, ravel: bool = False) -> np.ndarray:
    """``X @ params[:-1] + params[-1]`` for a dense or CSR block (the intercepts are the last row).

    ``params`` is the ``(n_features + 1, n_outputs)`` array of a gathered model, or the handle of a
    partitioned one (``StoreParams``), which pulls the rows of the block's columns only
    (``StoreParams.decision_function``).
    """
    dtype = np.result_type(X.dtype, params.dtype)
    if isinstance(params, np.ndarray):
        scores = np.asarray(X @ params[:-1]) + params[-1]
    else:
        scores = params.decision_function(X)
    scores = scores.astype(dtype, copy=False)
    return scores[:, 0] if ravel else scores


def _predict_labels_block(X: Any, params: np.ndarray, classes: np.ndarray) -> np.ndarray:
    scores = _decision_function_block(X, params)
    indices = (scores[:, 0] > 0).astype(np.intp) if scores.shape[1] == 1 else scores.argmax(axis=1)
    return classes[indices]


def _class_weight_sums_block(
    y: np.ndarray, sample_weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted labels of a block and the total weight of each."""
    labels, inverse = np.unique(y, return_inverse=True)
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    sums = np.bincount(inverse.ravel(), weights=weights, minlength=len(labels)).astype(np.float64)
    return labels, sums


def _class_weight_sums_combine(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.unique(np.concatenate([block_labels for block_labels, _ in parts]))
    sums = np.zeros(len(labels), dtype=np.float64)
    for block_labels, block_sums in parts:
        np.add.at(sums, np.searchsorted(labels, block_labels), block_sums)
    return labels, sums
