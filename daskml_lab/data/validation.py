"""The single input gate of daskml_lab.

Every estimator and data function passes its inputs through here. The contract it establishes, and that every
algorithm relies on:

- ``X`` is a 2-D dask array chunked by rows only (all features in one column chunk), with known chunk sizes
  (unknown ones, as from ``ddf.to_dask_array()``, are computed in one logged pass over the inputs together)
  and a floating dtype (float32 stays float32; integers and booleans become float64);
- ``y`` and ``sample_weight`` are 1-D dask arrays with exactly the row chunks of ``X``;
- cheap checks (types, dimensions, lengths, chunks, dtypes, empty input) raise *before* any graph is built;
- the check for NaN and infinity (and for missing class labels) is folded into the first pass over the data (a
  ``daskml-check-finite`` / ``daskml-check-labels`` task per block) for dask inputs, so that no separate full
  pass is needed. In-memory inputs are checked at once. Each input is judged by its own kind: an in-memory ``y``
  is checked at once even when ``X`` is a dask array, and a dask ``y`` is never computed on the client.

Nothing here computes data, except the row lengths of inputs whose chunk sizes are unknown.
Error messages say what was expected, what arrived, and how to fix it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from daskml_lab.data._convert import InputOrigin, is_dask_dataframe, to_dask_array
from daskml_lab.data._feature_names import check_feature_names, fitted_feature_names
from daskml_lab.data._row_chunks import (
    as_scipy_blocks,
    has_pydata_sparse_blocks,
    has_unknown_rows,
    resolve_row_chunks,
)
from daskml_lab.exceptions import DataConversionWarning

__all__ = [
    "ValidatedData",
    "check_X_y",
    "check_array",
    "check_classes",
    "check_feature_names",
    "check_n_features",
    "fitted_feature_names",
]

_FLOAT_DTYPES = (np.dtype("float64"), np.dtype("float32"))


@dataclass(frozen=True)
class ValidatedData:
    """Validated, row-aligned inputs.

    Attributes
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Row-chunked features with one column chunk.
    y : dask.array.Array of shape (n_samples,) or None
        Target with the row chunks of ``X``.
    sample_weight : dask.array.Array of shape (n_samples,) or None
        Non-negative weights with the row chunks of ``X``.
    origin : InputOrigin
        What ``X`` was given as.
    """

    X: da.Array
    y: da.Array | None
    sample_weight: da.Array | None
    origin: InputOrigin

    @property
    def n_features(self) -> int:
        """Number of columns of ``X``."""
        return int(self.X.shape[1])


def check_array(
    X: Any,
    *,
    name: str = "X",
    allow_nan: bool = False,
    accept_sparse: bool = True,
    ensure_min_samples: int = 1,
    chunks: Any = None,
    known_chunks: bool = True,
) -> tuple[da.Array, InputOrigin]:
    """Validate a feature matrix and return it as row-chunked dask array.

    Parameters
    ----------
    X : {array-like, sparse matrix, dask array, DataFrame, xarray.DataArray} of shape (n_samples, n_features)
        The input features.
    name : str, default="X"
        Name used in error messages.
    allow_nan : bool, default=False
        Whether NaN values are allowed (infinity never is).
    accept_sparse : bool, default=True
        Whether scipy sparse matrices (and dask arrays of sparse blocks) are accepted.
    ensure_min_samples : int, default=1
        Fewest rows accepted.
    chunks : int, tuple or None, default=None
        Row chunks for in-memory inputs (``None``: blocks of about dask's ``array.chunk-size``).
    known_chunks : bool, default=True
        Whether the result must have known row chunk sizes. Unknown ones (a dask DataFrame, or an array made
        from one) are then computed in one pass over the data, which is logged. Prediction passes ``False``:
        it maps blocks one to one and stays fully lazy.

    Returns
    -------
    X : dask.array.Array
        Lazy, row-chunked, float32 or float64. For dask input the finiteness check runs when the blocks are
        first computed.
    origin : InputOrigin
        What the input was, for returning results in the same form.

    Raises
    ------
    TypeError
        If the input is not array-like, is sparse when that is not accepted, or is not numeric.
    ValueError
        If it is not 2-D, is empty, or (in-memory input) contains NaN or infinity.
    """
    array, origin = _check_array(X, name, allow_nan, accept_sparse, ensure_min_samples, chunks, known_chunks)
    if known_chunks:
        array = resolve_row_chunks({name: array})[name]
        _check_min_samples(array, name, ensure_min_samples)
    return array, origin


def _check_array(
    X: Any,
    name: str,
    allow_nan: bool,
    accept_sparse: bool,
    ensure_min_samples: int,
    chunks: Any,
    known_chunks: bool,
) -> tuple[da.Array, InputOrigin]:
    """:func:`check_array` without resolving unknown row chunks (the caller resolves them with other inputs)."""
    # A dask DataFrame's partition lengths are computed later together with y's (one pass, not two).
    as_dataframe = is_dask_dataframe(X)
    array, origin = to_dask_array(X, name=name, chunks=chunks, known_chunks=known_chunks and not as_dataframe)
    if isinstance(array, da.Array) and has_pydata_sparse_blocks(array):
        array = as_scipy_blocks(array, name)
    if array.ndim != 2:
        raise ValueError(_ndim_message(name, array))
    if origin.kind == "sparse" or _has_sparse_blocks(array):
        if not accept_sparse:
            msg = (
                f"{name} is a sparse matrix, which this estimator does not accept. Convert it with "
                f"{name}.toarray() (in memory) or {name}.map_blocks(lambda b: b.toarray()) (dask)."
            )
            raise TypeError(msg)
    _check_min_samples(array, name, ensure_min_samples)
    n_features = array.shape[1]
    if n_features < 1:
        msg = (
            f"Found array with 0 feature(s) (shape={array.shape}) while a minimum of 1 is required. "
            f"Check that {name} has at least one feature column."
        )
        raise ValueError(msg)
    array = _as_float(array, X, name, origin)
    if array.numblocks[1] != 1:
        # Blocked algorithms need all features of a row in one block.
        array = array.rechunk({1: -1})
    if origin.is_eager:
        _check_finite_in_memory(array, name, allow_nan)
    else:
        array = _fold_finite_check(array, name, allow_nan)
    return array, origin


def _check_min_samples(array: da.Array, name: str, ensure_min_samples: int) -> None:
    n_samples = array.shape[0]
    if not math.isnan(n_samples) and n_samples < ensure_min_samples:
        msg = (
            f"Found array with {n_samples} sample(s) (shape={array.shape}) while a minimum of "
            f"{ensure_min_samples} is required. {name} is empty; check the filter or file that produced it."
        )
        raise ValueError(msg)


def check_X_y(
    X: Any,
    y: Any,
    *,
    sample_weight: Any = None,
    y_numeric: bool = False,
    allow_nan: bool = False,
    accept_sparse: bool = True,
    chunks: Any = None,
) -> ValidatedData:
    """Validate features, target and optional sample weights together.

    Parameters
    ----------
    X : {array-like, sparse matrix, dask array, DataFrame, xarray.DataArray} of shape (n_samples, n_features)
        The input features.
    y : {array-like, dask array, Series, xarray.DataArray} of shape (n_samples,)
        The target. Class labels may be of any dtype unless ``y_numeric`` is true.
    sample_weight : {array-like, dask array} of shape (n_samples,), default=None
        Non-negative weights.
    y_numeric : bool, default=False
        Whether ``y`` must be numeric (regression); it is then converted to float64 (or X's float32).
    allow_nan : bool, default=False
        Whether NaN values are allowed in ``X``.
    accept_sparse : bool, default=True
        Whether sparse ``X`` is accepted.
    chunks : int, tuple or None, default=None
        Row chunks for in-memory inputs.

    Returns
    -------
    ValidatedData
        ``X``, ``y`` and ``sample_weight`` as lazy dask arrays with identical row chunks.

    Raises
    ------
    TypeError, ValueError
        As :func:`check_array`, and if the lengths or row chunks of ``X``, ``y`` and ``sample_weight`` differ,
        if ``y`` is not 1-D, if the weights are negative, if ``y`` holds NaN or infinity, or (class labels) if
        ``y`` has missing labels (``None``/NaN) or mixes text and numbers. For dask inputs the value checks
        raise when the blocks are first computed.
    """
    if y is None:
        msg = "This estimator requires y to be passed, but the target y is None."
        raise ValueError(msg)
    X_arr, origin = _check_array(X, "X", allow_nan, accept_sparse, 1, chunks, known_chunks=True)
    # Unknown row chunks of X, y and the weights are computed together: one pass over a shared source.
    lazy = {
        "X": X_arr,
        "y": _lazy_vector(y, "y"),
        "sample_weight": _lazy_vector(sample_weight, "sample_weight"),
    }
    if any(has_unknown_rows(value) for value in lazy.values()):
        resolved = resolve_row_chunks(lazy)
        X_arr = resolved["X"]
        _check_min_samples(X_arr, "X", 1)
        y = resolved["y"] if resolved["y"] is not None else y
        if resolved["sample_weight"] is not None:
            sample_weight = resolved["sample_weight"]
    y_arr, y_origin = _check_vector(y, "y", X_arr)
    if y_numeric:
        y_arr = _as_numeric_target(y_arr, X_arr.dtype)
        # A regression target must be finite, like X (checked at once in memory, else in the first pass).
        if y_origin.is_eager:
            _check_finite_in_memory(y_arr, "y", allow_nan=False)
        else:
            y_arr = _fold_finite_check(y_arr, "y", allow_nan=False)
    else:
        # Class labels (or a target not yet known to be numeric) must be present and of one kind; np.unique
        # would otherwise fail deep inside fit (or on a worker) with "'<' not supported between instances of
        # 'float' and 'str'", or take NaN for a class.
        y_arr = _check_labels(y_arr, "y", eager=y_origin.is_eager)
    sw_arr = None
    if sample_weight is not None:
        sw_arr, _ = _check_vector(sample_weight, "sample_weight", X_arr)
        sw_arr = _as_numeric_target(sw_arr, X_arr.dtype, name="sample_weight")
        sw_arr = _fold_weight_check(sw_arr, eager=origin.is_eager)
    return ValidatedData(X_arr, y_arr, sw_arr, origin)


def check_classes(classes: np.ndarray, *, name: str = "y") -> np.ndarray:
    """Check that computed class labels describe a classification problem with at least two classes.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
        The sorted unique labels, as computed in ``fit``.
    name : str, default="y"
        Name used in error messages.

    Returns
    -------
    ndarray
        ``classes`` unchanged.

    Raises
    ------
    ValueError
        If there are fewer than two classes, or if the labels are continuous floats.
    """
    classes = np.asarray(classes)
    if classes.size < 2:
        found = "no labels" if classes.size == 0 else f"only one class: {classes.tolist()}"
        msg = (
            f"The target {name} has {found}. A classifier needs samples of at least 2 classes in the "
            f"training data; check the filter or split that produced {name}."
        )
        raise ValueError(msg)
    if classes.dtype.kind == "f" and not np.all(np.mod(classes, 1) == 0):
        msg = (
            f"Unknown label type: continuous. The target {name} has non-integer float values "
            f"(for example {classes[~(np.mod(classes, 1) == 0)][:3].tolist()}), which is a regression target. "
            "Use a regressor, or discretise the target into classes."
        )
        raise ValueError(msg)
    return classes


def check_n_features(X: da.Array, n_features_in: int, *, estimator_name: str = "The estimator") -> None:
    """Check that ``X`` has the number of features seen in ``fit``.

    Parameters
    ----------
    X : dask.array.Array
        Validated input.
    n_features_in : int
        Number of features seen during ``fit``.
    estimator_name : str, default="The estimator"
        Name used in the message.

    Raises
    ------
    ValueError
        Naming both counts.
    """
    if X.shape[1] != n_features_in:
        msg = (
            f"X has {X.shape[1]} features, but {estimator_name} is expecting {n_features_in} features as "
            "input. Pass data with the same columns as in fit."
        )
        raise ValueError(msg)


# ---------------------------------------------------------------------------------------------------------
# helpers


def _ndim_message(name: str, array: da.Array) -> str:
    if array.ndim == 1:
        return (
            f"Expected a 2-D array of shape (n_samples, n_features) for {name}, got a 1-D array of shape "
            f"{array.shape}. Reshape your data with {name}.reshape(-1, 1) if it has a single feature or "
            f"{name}.reshape(1, -1) if it contains a single sample."
        )
    return (
        f"Expected a 2-D array of shape (n_samples, n_features) for {name}, got a {array.ndim}-D array of "
        f"shape {array.shape}. Flatten the extra dimensions into samples or features first (for xarray "
        "input, name them with sample_dims=...)."
    )


def _has_sparse_blocks(array: da.Array) -> bool:
    return sp.issparse(getattr(array, "_meta", None))


def _check_known_chunks(array: da.Array, name: str) -> None:
    if any(math.isnan(c) for c in array.chunks[0]) or math.isnan(array.shape[0]):
        msg = (
            f"{name} has unknown chunk sizes (shape {array.shape}), so its rows cannot be aligned with y or "
            f"split into shards. Call {name}.compute_chunk_sizes() first, or build it from a dask DataFrame "
            "with df.to_dask_array(lengths=True)."
        )
        raise ValueError(msg)


def _as_float(array: da.Array, original: Any, name: str, origin: InputOrigin) -> da.Array:
    """Convert a numeric array to float32/float64; reject strings, objects that are not numbers, complex."""
    dtype = array.dtype
    if dtype in _FLOAT_DTYPES:
        return array
    if dtype.kind in "biu" or dtype == np.float16:
        return array.astype(np.float64)
    if dtype.kind == "c":
        msg = f"Complex data not supported: {name} has dtype {dtype}. Use the real part or split into two features."
        raise ValueError(msg)
    columns = _non_numeric_columns(original, origin)
    where = f" (non-numeric columns: {columns})" if columns else ""
    if dtype.kind == "O" and origin.is_eager:
        # In-memory object arrays holding numbers are converted as scikit-learn does.
        try:
            values = np.asarray(array.compute(scheduler="sync"), dtype=np.float64)
        except (TypeError, ValueError) as err:
            msg = (
                f"{name} has dtype object and could not be converted to float ({err}){where}. Encode "
                "categorical or string columns as numbers first (e.g. sklearn.preprocessing.OrdinalEncoder, or "
                "daskml_lab.data.from_dataframe(..., categorical='encode'))."
            )
            raise TypeError(msg) from err
        return da.from_array(values, chunks=array.chunks)
    msg = (
        f"{name} must be numeric, but it has dtype {dtype}{where}. Encode categorical or string columns as "
        "numbers first (e.g. sklearn.preprocessing.OrdinalEncoder, pandas.get_dummies, or "
        "daskml_lab.data.from_dataframe(..., categorical='encode'))."
    )
    raise TypeError(msg)


def _non_numeric_columns(original: Any, origin: InputOrigin) -> list[str]:
    dtypes = getattr(original, "dtypes", None)
    if origin.feature_names is None or dtypes is None or not hasattr(dtypes, "items"):
        return []
    return [str(col) for col, dt in dtypes.items() if not (is_numeric_dtype(dt) or is_bool_dtype(dt))]


def _check_finite_in_memory(array: da.Array, name: str, allow_nan: bool) -> None:
    # Blocks of an in-memory input are views of the user's array: checking them one by one copies nothing.
    for index in range(array.numblocks[0]):
        block = array.blocks[index].compute(scheduler="sync")
        data = block.data if sp.issparse(block) else np.asarray(block)
        message = _finite_error(data, name, allow_nan)
        if message:
            raise ValueError(message)


def _finite_error(data: np.ndarray, name: str, allow_nan: bool, where: str = "") -> str | None:
    if data.size == 0 or data.dtype.kind not in "fc":
        return None
    # a finite sum proves every value finite (scikit-learn's fast path), without a mask of the block's size
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(data.sum()):
            return None
    if not allow_nan and _any_where(np.isnan, data):
        return _nan_message(name, where)
    if _any_where(np.isinf, data):
        return (
            f"Input {name} contains infinity or a value too large for {data.dtype!r}{where}. Replace "
            "infinite values (e.g. np.nan_to_num) or rescale the feature."
        )
    return None


#: Rows per slice when a block is searched for NaN or infinity: masks of a slice's size, not the block's (a
#: Dask worker's allocator returns large temporaries to the system, so each costs page faults).
_SEARCH_SLICE_ROWS = 4096


def _any_where(test: np.ufunc, data: np.ndarray) -> bool:
    """Whether ``test`` (``np.isnan``, ``np.isinf``) holds anywhere in ``data``, slice by slice of rows."""
    if data.ndim < 2 or data.shape[0] <= _SEARCH_SLICE_ROWS:
        return bool(test(data).any())
    mask = np.empty((_SEARCH_SLICE_ROWS, *data.shape[1:]), dtype=bool)
    for start in range(0, data.shape[0], _SEARCH_SLICE_ROWS):
        rows = data[start : start + _SEARCH_SLICE_ROWS]
        if test(rows, out=mask[: len(rows)]).any():
            return True
    return False


def _nan_message(name: str, where: str) -> str:
    if name != "X":
        return f"Input {name} contains NaN{where}. Drop the rows whose {name} is missing (e.g. dropna)."
    return (
        f"Input X contains NaN{where}. This estimator does not take missing values: impute them with "
        "daskml_lab.preprocessing.SimpleImputer (in a Pipeline before it), drop those rows (dropna), or use a "
        "base estimator that handles NaN (scikit-learn's allow_nan tag), e.g. "
        "ShardEnsembleClassifier(HistGradientBoostingClassifier())."
    )


def _check_finite_block(block: Any, input_name: str, allow_nan: bool, block_info: Any = None) -> Any:
    """Raise a clear ValueError if a block holds NaN/inf; otherwise return the block unchanged (no copy)."""
    data = block.data if sp.issparse(block) else np.asarray(block)
    location = ""
    if block_info is not None and 0 in block_info:
        start, stop = block_info[0]["array-location"][0]
        location = f" (row block {block_info[0]['chunk-location'][0]}, rows {start} to {stop - 1})"
    message = _finite_error(data, input_name, allow_nan, location)
    if message:
        raise ValueError(message)
    return block


def _fold_finite_check(array: da.Array, name: str, allow_nan: bool) -> da.Array:
    return array.map_blocks(
        _check_finite_block,
        input_name=name,
        allow_nan=allow_nan,
        dtype=array.dtype,
        meta=array._meta,
        token="daskml-check-finite",
    )


def _lazy_vector(vector: Any, name: str) -> da.Array | None:
    """A dask y or weight vector as a dask array, its unknown lengths left for one joint pass; else None."""
    if isinstance(vector, da.Array):
        return vector
    if is_dask_dataframe(vector):
        return to_dask_array(vector, name=name, known_chunks=False)[0]
    return None


def _check_vector(vector: Any, name: str, X: da.Array) -> tuple[da.Array, InputOrigin]:
    """Convert y or sample_weight to a 1-D dask array with the row chunks of X (and say what it was)."""
    # In-memory vectors of the right length are cut exactly like X; anything else is checked below.
    same_length = _length(vector) == X.shape[0]
    array, origin = to_dask_array(vector, name=name, chunks=X.chunks[0] if same_length else None)
    if array.ndim == 2 and array.shape[1] == 1:
        warnings.warn(
            f"A column-vector {name} was passed when a 1d array was expected. Please change the shape of "
            f"{name} to (n_samples,), for example using ravel().",
            DataConversionWarning,
            stacklevel=4,
        )
        array = array[:, 0]
    if array.ndim != 1:
        msg = (
            f"{name} must be 1-D of shape (n_samples,), got an array of shape {array.shape}. "
            "Multi-output targets are not supported; fit one model per output column."
        )
        raise ValueError(msg)
    _check_known_chunks(array, name)
    if array.shape[0] != X.shape[0]:
        msg = (
            f"Found input variables with inconsistent numbers of samples: [{X.shape[0]}, {array.shape[0]}]. "
            f"X has {X.shape[0]} rows but {name} has {array.shape[0]}; pass one {name} value per row of X."
        )
        raise ValueError(msg)
    if array.chunks[0] != X.chunks[0]:
        if origin.kind == "dask" or origin.kind == "dask-dataframe":
            msg = (
                f"X and {name} have different row chunks: X {_short_chunks(X.chunks[0])}, {name} "
                f"{_short_chunks(array.chunks[0])}{_block_counts(X, array)}. Rows must be split the same way; call "
                f"{name} = {name}.rechunk(X.chunks[0]) (or use daskml_lab.data.shard on both together)."
            )
            raise ValueError(msg)
        array = array.rechunk((X.chunks[0],))
    return array, origin


def _length(vector: Any) -> int | None:
    if is_dask_dataframe(vector):
        # A dask Series' length is a lazy scalar; comparing it would need a compute.
        return None
    shape = getattr(vector, "shape", None)
    if shape is not None:
        return shape[0] if len(shape) else None
    try:
        return len(vector)
    except TypeError:
        return None


def _block_counts(X: da.Array, vector: da.Array) -> str:
    if X.numblocks[0] == vector.numblocks[0]:
        return ""
    return f" ({X.numblocks[0]} != {vector.numblocks[0]} row blocks)"


def _short_chunks(chunks: tuple[int, ...]) -> str:
    if len(chunks) <= 6:
        return str(chunks)
    return f"({', '.join(map(str, chunks[:3]))}, ..., {chunks[-1]}) in {len(chunks)} blocks"


def _as_numeric_target(array: da.Array, float_dtype: np.dtype, name: str = "y") -> da.Array:
    if array.dtype.kind in "biu":
        return array.astype(float_dtype)
    if array.dtype.kind == "f":
        return array if array.dtype == float_dtype else array.astype(float_dtype)
    if array.dtype.kind == "O":
        # Numbers stored as objects (e.g. a pandas object column) are converted, as scikit-learn does.
        return array.astype(float_dtype)
    msg = (
        f"{name} must be numeric for this estimator, got dtype {array.dtype}. Convert it with astype(float)."
    )
    raise TypeError(msg)


def _label_error(labels: np.ndarray, name: str, where: str = "") -> tuple[type[Exception], str] | None:
    """What is wrong with a block of targets not declared numeric (exception type and message), or None."""
    if labels.size == 0:
        return None
    if labels.dtype.kind in "fc":
        if np.isfinite(labels).all():
            return None
        bad = "NaN" if np.isnan(labels).any() else "infinity"
        return ValueError, (
            f"Input {name} contains {bad}{where}. Every row needs a finite target: drop or fix the rows whose "
            "target is NaN or infinite (e.g. dropna on the DataFrame)."
        )
    if labels.dtype != object:
        return None
    missing = pd.isna(labels)
    if missing.any():
        return ValueError, (
            f"Input {name} contains NaN or None (missing values) at {int(missing.sum())} row(s){where}. Drop "
            "the rows whose target is missing (e.g. dropna on the DataFrame), or fill them in."
        )
    text = np.fromiter((isinstance(v, str | bytes) for v in labels), dtype=bool, count=labels.size)
    if text.any() and not text.all():
        kinds = sorted({type(v).__name__ for v in labels})
        return TypeError, (
            f"The labels of {name} mix text and other types ({', '.join(kinds)}){where}; they cannot be sorted "
            f"into classes. Convert them to one type first, e.g. {name}.astype(str)."
        )
    return None


def _check_labels_block(block: np.ndarray, input_name: str, block_info: Any = None) -> np.ndarray:
    """Raise a clear error if a block of class labels is missing values or mixes types; else return it."""
    location = ""
    if block_info is not None and 0 in block_info:
        start, stop = block_info[0]["array-location"][0]
        location = f" (row block {block_info[0]['chunk-location'][0]}, rows {start} to {stop - 1})"
    problem = _label_error(np.asarray(block), input_name, location)
    if problem is not None:
        error, message = problem
        raise error(message)
    return block


def _check_labels(labels: da.Array, name: str, *, eager: bool) -> da.Array:
    """Check class labels at once (in-memory input) or in the first pass over them (dask input)."""
    if labels.dtype.kind not in "fcO":
        return labels  # integers, booleans and fixed-width text cannot be missing
    if eager:
        _check_labels_block(labels.compute(scheduler="sync"), name)
        return labels
    return labels.map_blocks(
        _check_labels_block,
        input_name=name,
        dtype=labels.dtype,
        meta=labels._meta,
        token="daskml-check-labels",
    )


def _check_weight_block(block: np.ndarray) -> np.ndarray:
    """Raise if a sample-weight block has negative or non-finite values."""
    if block.size and (not np.isfinite(block).all() or (block < 0).any()):
        bad = block[~np.isfinite(block) | (block < 0)][:3].tolist()
        msg = (
            f"sample_weight must be finite and non-negative, found {bad}. Give each row a weight >= 0 "
            "(0 ignores the row)."
        )
        raise ValueError(msg)
    return block


def _fold_weight_check(weights: da.Array, *, eager: bool) -> da.Array:
    if eager:
        _check_weight_block(weights.compute(scheduler="sync"))
        return weights
    return weights.map_blocks(_check_weight_block, dtype=weights.dtype, token="daskml-check-weights")
