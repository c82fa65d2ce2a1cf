"""The machinery every metric shares: input checks, the zero-weight rule and the blocked reduction.

A metric is three pure numpy functions: ``_<stat>_chunk`` turns one row block into a small dict of sufficient
statistics, ``_<stat>_combine`` merges a list of such dicts, and ``_<metric>_agg`` turns the merged dict into
the score. Described by a :class:`Statistics`, :func:`evaluate` runs them: in memory directly, or for dask
input as a ``daskml-<stat>-chunk`` task per row block, a tree of ``daskml-<stat>-merge`` tasks
(:func:`dask.array.reduction` with dict intermediates and the fan-in of dask's ``split_every`` setting) and
one ``daskml-<stat>-<score>`` task that calls the aggregate.

Metrics that share a ``stat`` (R², MSE and MAE; accuracy from the confusion matrix) build the same chunk and merge
keys, so computing several of them together reads every block once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from daskml_lab._compat import unique_fused_keys
from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.cluster_health import explain_cluster_failures
from daskml_lab._runtime.watched_compute import watched_compute
from daskml_lab.data import is_dask_dataframe, to_dask_array
from daskml_lab.monitoring import task_prefix

__all__ = [
    "COMPUTE_DOC",
    "Output",
    "Statistics",
    "check_inputs",
    "check_total_weight",
    "evaluate",
    "fill_compute_doc",
    "finish",
    "lazy_statistics",
    "row_weights",
]


# ---------------------------------------------------------------------------------------------------------
# inputs


def check_inputs(
    metric: str,
    inputs: dict[str, Any],
    *,
    numeric: Sequence[str] = (),
    matrix: Sequence[str] = (),
) -> tuple[list[Any], bool]:
    """Check the inputs of a metric (metadata only) and align their row blocks.

    Parameters
    ----------
    metric : str
        Name of the public function, for messages.
    inputs : dict
        Name to value (``None`` for an absent ``sample_weight``), in the order the chunk kernel takes them.
    numeric : sequence of str
        Names of the inputs that must be numeric.
    matrix : sequence of str
        Names of the inputs that may be 2-D (probabilities); the others must be 1-D.

    Returns
    -------
    arrays : list
        numpy arrays when no input is a dask collection (``eager``), else dask arrays with identical row
        chunks (2-D inputs in one column chunk); ``None`` stays ``None``.
    eager : bool
        Whether every input was in memory.

    Raises
    ------
    TypeError
        For a non-numeric input that must be numeric.
    ValueError
        For wrong dimensions, different lengths, empty input, unknown chunk sizes or different row chunks.
    """
    arrays: dict[str, Any] = {}
    for name, value in inputs.items():
        arrays[name] = None if value is None else _as_array(value, name)
    present = {name: a for name, a in arrays.items() if a is not None}
    for name, array in present.items():
        allowed = (1, 2) if name in matrix else (1,)
        if array.ndim not in allowed:
            shape = "(n_samples,) or (n_samples, n_classes)" if name in matrix else "(n_samples,)"
            msg = (
                f"{metric}: {name} must be of shape {shape}; got an array of shape {array.shape}. Multi-output "
                "targets are not supported; score one output column at a time."
            )
            raise ValueError(msg)
        if name in numeric and array.dtype.kind not in "biufO":
            msg = f"{metric}: {name} must be numeric, got dtype {array.dtype}. Convert it with astype(float)."
            raise TypeError(msg)
    lengths = {name: array.shape[0] for name, array in present.items()}
    for name, length in lengths.items():
        if isinstance(length, float) and math.isnan(length):
            msg = (
                f"{metric}: {name} has unknown chunk sizes, so its rows cannot be matched with the other "
                f"inputs. Call {name}.compute_chunk_sizes() first, or build it with known lengths."
            )
            raise ValueError(msg)
    if len(set(lengths.values())) > 1:
        names = list(lengths)
        msg = (
            f"Found input variables with inconsistent numbers of samples: {list(lengths.values())}. "
            f"{metric} needs one value per row in each of {', '.join(names)}."
        )
        raise ValueError(msg)
    first_name, n_samples = next(iter(lengths.items()))
    if n_samples == 0:
        msg = (
            f"Found empty input: {first_name} has 0 rows, while {metric} needs at least one row. Check the filter "
            "or file that produced it."
        )
        raise ValueError(msg)
    dask_inputs = {name: a for name, a in present.items() if isinstance(a, da.Array)}
    if not dask_inputs:
        return list(arrays.values()), True
    reference_name, reference = next(iter(dask_inputs.items()))
    row_chunks = reference.chunks[0]
    for name, array in present.items():
        if not isinstance(array, da.Array):
            block_shape = (row_chunks, *tuple((size,) for size in array.shape[1:]))
            arrays[name] = da.from_array(array, chunks=block_shape)
        elif array.chunks[0] != row_chunks:
            msg = (
                f"{metric}: {reference_name} and {name} have different row chunks: {reference_name} "
                f"{_short(row_chunks)}, {name} {_short(array.chunks[0])}. Rows must be split the same way; "
                f"call {name} = {name}.rechunk({{0: {reference_name}.chunks[0]}})."
            )
            raise ValueError(msg)
        if arrays[name].ndim == 2 and arrays[name].numblocks[1] != 1:
            arrays[name] = arrays[name].rechunk({1: -1})
    return list(arrays.values()), False


def _as_array(value: Any, name: str) -> Any:
    """A dask array for dask (or dask-backed xarray) input, else a numpy array; never computes data."""
    if isinstance(value, da.Array):
        return value
    if is_dask_dataframe(value):
        # compute (inside to_dask_array): one integer per partition, so that rows can be matched
        return to_dask_array(value, name=name)[0]
    if type(value).__module__.startswith("xarray."):
        value = value.data
        if isinstance(value, da.Array):
            return value
    if hasattr(value, "to_numpy"):  # pandas Series/DataFrame: keep the values, not the index
        return value.to_numpy()
    return np.asarray(value)


def _short(chunks: tuple[int, ...]) -> str:
    if len(chunks) <= 6:
        return str(chunks)
    return f"({', '.join(map(str, chunks[:3]))}, ..., {chunks[-1]}) in {len(chunks)} blocks"


def row_weights(sample_weight: np.ndarray | None, n_rows: int) -> np.ndarray:
    """The float64 weights of one block (ones when absent), checked to be finite and non-negative."""
    if sample_weight is None:
        return np.ones(n_rows, dtype=np.float64)
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.size and (not np.isfinite(weights).all() or (weights < 0).any()):
        bad = weights[~np.isfinite(weights) | (weights < 0)][:3].tolist()
        msg = (
            f"sample_weight must be finite and non-negative, found {bad}. Give each row a weight >= 0 "
            "(0 ignores the row)."
        )
        raise ValueError(msg)
    return weights


def check_total_weight(total: float, metric: str) -> None:
    """The zero-weight rule of every metric: a score over rows of total weight 0 is an error.

    Parameters
    ----------
    total : float
        Sum of the sample weights (the number of rows when unweighted).
    metric : str
        Name of the metric, for the message.

    Raises
    ------
    ValueError
        If ``total`` is zero, as scikit-learn (1.9) does for every weighted metric.
    """
    if not total > 0:
        msg = (
            f"{metric} is undefined when the sample weights sum to zero ({total}): no row counts. Give at "
            "least one row a positive weight."
        )
        raise ValueError(msg)


#: The ``compute`` parameter, documented once for every metric.
COMPUTE_DOC = """compute : bool, default=True
        For dask input: compute the score at once (one ``dask.compute``) and return it, or return a lazy dask
        array to compute later, for example together with other scores in one ``dask.compute`` (scores of the
        same inputs then share their pass over the blocks). In-memory input is always scored at once."""


#: The inputs of every regression score, documented once.
REGRESSION_INPUTS_DOC = """y_true : {array-like, dask array} of shape (n_samples,)
        True values.
    y_pred : {array-like, dask array} of shape (n_samples,)
        Predicted values, with the row chunks of ``y_true`` when both are dask arrays.
    sample_weight : {array-like, dask array} of shape (n_samples,), default=None
        Non-negative row weights."""


def fill_compute_doc(*functions: Callable[..., Any]) -> None:
    """Put the shared fragments in the docstrings of ``functions``.

    ``%(compute)s`` becomes :data:`COMPUTE_DOC` and ``%(regression_inputs)s`` :data:`REGRESSION_INPUTS_DOC`.
    """
    fragments = {"compute": COMPUTE_DOC, "regression_inputs": REGRESSION_INPUTS_DOC}
    for function in functions:
        function.__doc__ = (function.__doc__ or "") % fragments


# ---------------------------------------------------------------------------------------------------------
# the reduction


def lazy_statistics(
    stat: str,
    chunk: Callable[..., dict[str, Any]],
    combine: Callable[[list[dict[str, Any]]], dict[str, Any]],
    arrays: Sequence[da.Array | None],
    **chunk_kwargs: Any,
) -> da.Array:
    """The merged statistics of all row blocks, as a lazy 0-d object array.

    Parameters
    ----------
    stat : str
        Name of the statistics, for task names (``daskml-<stat>-chunk``, ``daskml-<stat>-merge``).
    chunk : callable
        ``chunk(*blocks, **chunk_kwargs) -> dict``.
    combine : callable
        ``combine(list of dict) -> dict``.
    arrays : list of dask.array.Array or None
        Inputs with identical row chunks, 1-D or 2-D with one column chunk; ``None`` is passed as is.
    **chunk_kwargs
        Small constants for ``chunk`` (class labels).

    Returns
    -------
    dask.array.Array of shape () and dtype object
        Lazy; its single value is the merged dict.
    """
    args: list[Any] = []
    for array in arrays:
        if array is None:
            args += [None, None]
        else:
            args += [array, "i" if array.ndim == 1 else "ij"]
    token = tokenize(chunk, combine, *arrays, chunk_kwargs)
    per_block = da.blockwise(
        _chunk_block,
        "i",
        chunk,
        None,
        *args,
        adjust_chunks={"i": 1},
        concatenate=True,
        dtype=object,
        meta=np.empty((0,), dtype=object),
        name=f"{task_prefix(stat + ' chunk')}-{token}",
        **chunk_kwargs,
    )
    return da.reduction(
        per_block,
        _unwrap,
        partial(_merge_to_array, combine=combine),
        combine=partial(_merge, combine=combine),
        axis=0,
        concatenate=False,
        dtype=object,
        meta=np.empty((), dtype=object),
        split_every=None,  # dask's ``split_every`` setting decides the fan-in
        name=task_prefix(stat + " merge"),
    )


@dataclass(frozen=True, eq=False)
class Statistics:
    """How to get one set of merged statistics: the kernels, the inputs and the chunk kernel's constants."""

    stat: str
    chunk: Callable[..., dict[str, Any]]
    combine: Callable[[list[dict[str, Any]]], dict[str, Any]]
    arrays: Sequence[Any]
    chunk_kwargs: dict[str, Any] = field(default_factory=dict)

    def merged(self) -> dict[str, Any]:
        """In memory: the statistics of the whole input as a single block."""
        return self.combine([self.chunk(*self.arrays, **self.chunk_kwargs)])

    def lazy(self) -> da.Array:
        """For dask input: :func:`lazy_statistics`."""
        return lazy_statistics(self.stat, self.chunk, self.combine, self.arrays, **self.chunk_kwargs)


#: One output of :func:`evaluate`: the statistics, the aggregate (merged dict -> score) and the score's shape.
Output = tuple[Statistics, Callable[[dict[str, Any]], Any], tuple[float, ...]]


def evaluate(outputs: dict[str, Output], *, eager: bool, compute: bool) -> dict[str, Any]:
    """Run metrics: in memory at once, or as lazy reductions computed together (once, unless ``compute=False``).

    Parameters
    ----------
    outputs : dict
        Name to ``(statistics, aggregate, shape)``; outputs may share a :class:`Statistics` (its reduction is
        then built once). ``shape`` is ``()`` for a float and may hold ``nan`` where unknown before computing.
    eager : bool
        Whether the inputs are numpy arrays (from :func:`check_inputs`).
    compute : bool
        For dask input, whether to compute the results.

    Returns
    -------
    dict
        Name to float (or ndarray for a non-scalar shape) for in-memory input or with ``compute=True``; else
        name to a lazy dask array of that shape.
    """
    if eager:
        merged: dict[int, dict[str, Any]] = {}
        results = {}
        for name, (statistics, aggregate, _) in outputs.items():
            if id(statistics) not in merged:
                merged[id(statistics)] = statistics.merged()
            results[name] = _as_result(aggregate(merged[id(statistics)]))
        return results
    reductions: dict[int, da.Array] = {}
    lazy = {}
    for name, (statistics, aggregate, shape) in outputs.items():
        if id(statistics) not in reductions:
            reductions[id(statistics)] = statistics.lazy()
        lazy[name] = finish(
            reductions[id(statistics)], aggregate, name=statistics.stat + " " + name, shape=shape
        )
    if not compute:
        return lazy
    # compute: the scores, floats (or a confusion matrix), from small per-block statistics, all in one pass
    # (a lost scheduler, or no worker left, is told as such rather than as a cancelled future)
    with explain_cluster_failures(current_client(), doing="computing a score"), unique_fused_keys():
        (values,) = watched_compute(lazy, what="a score")
    return {name: _as_result(value) for name, value in values.items()}


def finish(
    stats: da.Array, final: Callable[[dict[str, Any]], Any], *, name: str, shape: tuple[float, ...] = ()
) -> da.Array:
    """Apply ``final`` to the merged statistics of :func:`lazy_statistics`, lazily (one task)."""
    extra = {"chunks": tuple((size,) for size in shape), "new_axis": list(range(len(shape)))} if shape else {}
    return stats.map_blocks(
        _final_block,
        final,
        dtype=np.float64,
        meta=np.empty((0,) * len(shape), dtype=np.float64),
        token=task_prefix(name),
        **extra,
    )


def _as_result(value: Any) -> Any:
    array = np.asarray(value)
    return float(array) if array.ndim == 0 else array


def _chunk_block(chunk: Callable[..., dict[str, Any]], *blocks: Any, **kwargs: Any) -> np.ndarray:
    out = np.empty(1, dtype=object)
    out[0] = chunk(*blocks, **kwargs)
    return out


def _unwrap(block: np.ndarray, axis: Any = None, keepdims: bool = False) -> dict[str, Any]:
    return block[0]


def _merge(
    parts: list[dict[str, Any]], axis: Any = None, keepdims: bool = False, *, combine: Callable[..., Any]
) -> dict[str, Any]:
    return combine(list(parts))


def _merge_to_array(
    parts: list[dict[str, Any]], axis: Any = None, keepdims: bool = False, *, combine: Callable[..., Any]
) -> np.ndarray:
    out = np.empty((), dtype=object)
    out[()] = combine(list(parts))
    return out


def _final_block(stats: np.ndarray, final: Callable[[dict[str, Any]], Any]) -> np.ndarray:
    return np.asarray(final(stats[()]), dtype=np.float64)
