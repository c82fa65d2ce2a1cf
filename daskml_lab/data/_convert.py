"""Turn the containers users hand us into Dask arrays, remembering where they came from.

This module only converts; it never checks values (that is :mod:`daskml_lab.data.validation`) and never
computes data. The :class:`InputOrigin` it returns records what is needed to give results back in the
user's own type: numpy in, numpy out; dask in, dask out; xarray in, xarray on the original coordinates.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp

from daskml_lab._runtime.client import seceded_in_task
from daskml_lab.data._blocks import default_row_chunks
from daskml_lab.data._origin import InputOrigin, Kind

__all__ = ["InputOrigin", "Kind", "default_row_chunks", "is_dask_dataframe", "to_dask_array", "wrap_output"]


def is_dask_dataframe(obj: Any) -> bool:
    """Whether ``obj`` is a dask DataFrame or Series (without importing dask.dataframe eagerly)."""
    module = type(obj).__module__
    return module.startswith(("dask.dataframe", "dask_expr")) and hasattr(obj, "npartitions")


def _is_xarray(obj: Any) -> bool:
    return type(obj).__module__.startswith("xarray.")


def to_dask_array(
    obj: Any,
    *,
    name: str = "X",
    chunks: Any = None,
    known_chunks: bool = True,
) -> tuple[da.Array, InputOrigin]:
    """Convert a supported container into a Dask array without computing it.

    Parameters
    ----------
    obj : {array-like, sparse matrix, dask array, pandas or dask DataFrame/Series, xarray.DataArray}
        The input.
    name : str, default="X"
        Name used in error messages.
    chunks : int, tuple or None, default=None
        Row chunks for in-memory inputs. ``None`` chooses blocks of about ``array.chunk-size`` bytes.
    known_chunks : bool, default=True
        For dask DataFrames, whether to compute the partition lengths (one integer per partition) so that
        the result has known chunk sizes. Prediction paths pass ``False`` to stay fully lazy; for xarray
        input it also means that samples with NaN are filled and come back as NaN from :func:`wrap_output`.

    Returns
    -------
    array : dask.array.Array
        The data, lazily. Non-numeric content is kept as is; validation rejects it.
    origin : InputOrigin
        What the input was.

    Raises
    ------
    TypeError
        If ``obj`` is of a type the package cannot read.
    """
    if _is_xarray(obj):
        from daskml_lab.data._xarray import xarray_to_dask

        # Prediction (known_chunks=False) fills samples with NaN and masks them back in wrap_output.
        return xarray_to_dask(obj, name=name, chunks=chunks, fill_masked=not known_chunks)
    if isinstance(obj, da.Array):
        return obj, InputOrigin("dask")
    if is_dask_dataframe(obj):
        feature_names = np.asarray(obj.columns, dtype=object) if obj.ndim == 2 else None
        # compute (when known_chunks): one integer per partition, so that rows line up with other arrays
        # (dask takes lengths=True to compute them and None to leave them unknown; False is an error)
        array = obj.to_dask_array(lengths=True if known_chunks else None)
        return array, InputOrigin("dask-dataframe", feature_names=feature_names)
    if isinstance(obj, pd.DataFrame | pd.Series):
        feature_names = np.asarray(obj.columns, dtype=object) if isinstance(obj, pd.DataFrame) else None
        values = obj.to_numpy()
        return _from_memory(values, chunks), InputOrigin(
            "pandas", feature_names=feature_names, index=obj.index
        )
    if sp.issparse(obj):
        csr = sp.csr_matrix(obj)
        return _from_memory(csr, chunks), InputOrigin("sparse")
    if isinstance(obj, np.ndarray | list | tuple) or np.isscalar(obj) or hasattr(obj, "__array__"):
        return _from_memory(np.asarray(obj), chunks), InputOrigin("numpy")
    msg = (
        f"{name} must be array-like (numpy array, list, scipy sparse matrix, dask array, pandas or dask "
        f"DataFrame, xarray DataArray); got an object of type {type(obj).__module__}.{type(obj).__qualname__}."
    )
    raise TypeError(msg)


def _from_memory(values: Any, chunks: Any) -> da.Array:
    """Wrap an in-memory array (dense or CSR) as a dask array of row blocks (no copy of the data)."""
    if values.ndim == 0:
        return da.from_array(np.asarray(values), chunks=())
    n_rows = values.shape[0]
    n_cols = values.shape[1] if values.ndim == 2 else 1
    if chunks is None and sp.issparse(values):
        # by the bytes the rows store, not their dense width: 2**18 columns would make 64-row blocks
        row_bytes = values.nnz * (values.dtype.itemsize + 8) / max(n_rows, 1)  # a value and its index each
        chunks = default_row_chunks(n_rows, 1, max(1, int(np.ceil(row_bytes))))
    elif chunks is None:
        itemsize = values.dtype.itemsize if values.dtype != object else 8
        chunks = default_row_chunks(n_rows, n_cols, itemsize)
    block_shape = (chunks,) + (-1,) * (values.ndim - 1)
    if sp.issparse(values):
        return da.from_array(values, chunks=block_shape, asarray=False, fancy=False)
    return da.from_array(values, chunks=block_shape)


def wrap_output(
    result: da.Array, origin: InputOrigin, *, columns: Any = None, name: str | None = None
) -> Any:
    """Return a per-sample result in the form the user gave the input.

    Parameters
    ----------
    result : dask.array.Array of shape (n_samples,) or (n_samples, n_columns)
        A lazy per-sample result (predictions, probabilities, transformed features) with the row chunks of
        the validated input.
    origin : InputOrigin
        What the input was.
    columns : array-like of shape (n_columns,), default=None
        Labels of the result's columns (e.g. ``classes_``), used for xarray outputs.
    name : str, default=None
        Name of the result (e.g. ``"prediction"``), used for xarray outputs.

    Returns
    -------
    ndarray, dask.array.Array or xarray.DataArray
        numpy (computed) for numpy, sparse and pandas inputs, as scikit-learn does; the lazy dask array for
        dask inputs; a lazy DataArray on the original sample coordinates for xarray inputs.
    """
    if origin.kind == "xarray":
        from daskml_lab.data._xarray import wrap_xarray_output

        return wrap_xarray_output(result, origin, columns=columns, name=name)
    if origin.is_eager:
        # compute: the caller gave in-memory data and expects an in-memory result of n_samples values
        with seceded_in_task():  # inside a dask task, wait without holding the worker's thread
            return result.compute()
    return result
