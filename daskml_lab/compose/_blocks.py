"""The lazy side of a ColumnTransformer on dask input: each transformer's output as a row-chunked dask array,
and the row blocks of all outputs stacked side by side, dense or CSR.

Every output has one row block per partition (or row block) of the input and one column block, so the
outputs line up block by block without knowing the row counts: the stack is one ``blockwise`` task per row
block (``daskml-column-stack``) and never rechunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp
from dask.base import tokenize

__all__ = ["lazy_output", "stack_outputs"]


def _as_block(result: Any, name: str) -> Any:
    """A transformer's output for one block as a 2-D numpy array or CSR matrix."""
    if sp.issparse(result):
        return sp.csr_matrix(result)
    if isinstance(result, pd.DataFrame | pd.Series):
        result = result.to_numpy()
    result = np.asarray(result)
    if result.ndim != 2:
        msg = (
            f"The output of the {name!r} transformer should be 2D (numpy array, scipy sparse matrix, "
            f"dataframe); got an array of shape {result.shape}."
        )
        raise ValueError(msg)
    return result


def _transform_block(block: Any, transformer: Any, name: str) -> Any:
    """One fitted scikit-learn transformer applied to one in-memory block (a partition or an array block)."""
    return _as_block(transformer.transform(block), name)


def _transform_partition(partition: pd.DataFrame, columns: Any, transformer: Any, name: str) -> Any:
    """One fitted scikit-learn transformer applied to its columns of one whole partition."""
    return _transform_block(partition[columns], transformer, name)


def _values_partition(partition: pd.DataFrame, columns: Any) -> np.ndarray:
    """The values of some columns of one whole partition (passthrough columns)."""
    return _values_block(partition[columns])


def _values_block(block: Any) -> np.ndarray:
    """A block's values as a 2-D numpy array (passthrough columns)."""
    values = block.to_numpy() if isinstance(block, pd.DataFrame | pd.Series) else np.asarray(block)
    return values.reshape(-1, 1) if values.ndim == 1 else values


def _meta(width: int, sparse: bool, dtype: Any) -> Any:
    return sp.csr_matrix((0, width), dtype=dtype) if sparse else np.empty((0, width), dtype=dtype)


def lazy_output(
    transformer: Any,
    X: Any,
    *,
    name: str,
    width: int,
    sparse: bool,
    dtype: Any,
    dask_aware: bool,
    partitions: Any = None,
    columns: Any = None,
) -> da.Array:
    """The output of one fitted transformer on a column subset of dask input, lazily.

    Parameters
    ----------
    transformer : estimator or "passthrough"
        Fitted. A ``dask_aware`` transformer (one following the ``_fit_plan``/``_fit_finish`` protocol of
        :mod:`daskml_lab.preprocessing`) transforms the dask input itself; any other is applied to each
        in-memory partition (or row block) in a task of its own.
    X : dask DataFrame, dask Series or dask array
        The selected columns.
    name : str
        The transformer's name (error messages, task names).
    width : int
        Number of output columns (recorded when fitting).
    sparse : bool
        Whether the blocks are CSR matrices.
    dtype : numpy dtype
        The declared dtype of the blocks.
    dask_aware : bool
        See ``transformer``.
    partitions : list of Delayed, default=None
        The partitions of the whole dask DataFrame ``X`` was selected from (``to_delayed()``), shared by all
        transformers applied partition by partition, so that each partition is read once for all of them
        (column subsets turned into arrays separately would each read it).
    columns : label or list of labels, default=None
        The columns of ``X`` in those partitions.

    Returns
    -------
    dask.array.Array
        One row block per input block, one column block.
    """
    if dask_aware:
        result = transformer.transform(X)
        if hasattr(result, "to_dask_array"):
            result = result.to_dask_array(lengths=None)
        if not isinstance(result, da.Array) or result.ndim != 2:
            msg = (
                f"The {name!r} transformer ({type(transformer).__name__}) returned "
                f"{type(result).__name__} for dask input; a 2-D dask array was expected."
            )
            raise TypeError(msg)
        return result.rechunk({1: -1}) if result.numblocks[1] != 1 else result
    if isinstance(X, da.Array):
        blocks = X if X.ndim == 2 else X[:, None]
        if transformer == "passthrough":
            return blocks
        return blocks.map_blocks(
            _transform_block,
            transformer,
            name,
            chunks=(blocks.chunks[0], (width,)),
            dtype=dtype,
            meta=_meta(width, sparse, dtype),
            token=f"daskml-column-{name}",
        )
    # A dask DataFrame or Series: one task per partition, on the pandas partition.
    function = _values_partition if transformer == "passthrough" else _transform_partition
    arguments = (columns,) if transformer == "passthrough" else (columns, transformer, name)
    delayed_parts = partitions
    pieces = [
        da.from_delayed(
            dask.delayed(function, pure=True)(
                part, *arguments, dask_key_name=f"daskml-column-{name}-{tokenize(part, *arguments)}"
            ),
            shape=(math.nan, width),
            dtype=dtype,
            meta=_meta(width, sparse, dtype),
        )
        for part in delayed_parts
    ]
    return da.concatenate(pieces, axis=0)


def _stack_block(*blocks: Any, sparse_output: bool, out_dtype: Any) -> Any:
    """Row block of the ColumnTransformer's output: the blocks of every transformer side by side."""
    if sparse_output:
        return sp.hstack([sp.csr_matrix(b) for b in blocks], format="csr", dtype=out_dtype)
    return np.hstack([b.toarray() if sp.issparse(b) else np.asarray(b) for b in blocks]).astype(
        out_dtype, copy=False
    )


def stack_outputs(
    outputs: Sequence[da.Array],
    *,
    sparse_output: bool,
    dtype: Any,
    row_chunks: tuple[float, ...] | None = None,
) -> da.Array:
    """The outputs side by side, one ``daskml-column-stack`` task per row block.

    ``row_chunks`` gives the row counts when they are known (counted while fitting); otherwise they are
    those of the outputs, unknown for DataFrame input.
    """
    n_blocks = {o.numblocks[0] for o in outputs}
    if len(n_blocks) != 1:
        msg = (
            f"The transformers' outputs have different numbers of row blocks ({sorted(n_blocks)}); each must "
            "keep the row blocks (partitions) of its input."
        )
        raise ValueError(msg)
    width = sum(int(o.shape[1]) for o in outputs)
    arguments: list[Any] = []
    for index, output in enumerate(outputs):
        arguments.extend([output, ("i", f"j{index}")])
    stacked = da.blockwise(
        _stack_block,
        "ij",
        *arguments,
        new_axes={"j": width},
        align_arrays=False,
        concatenate=True,
        meta=_meta(width, sparse_output, dtype),
        name=f"daskml-column-stack-{tokenize(*outputs, sparse_output, str(dtype))}",
        sparse_output=sparse_output,
        out_dtype=dtype,
    )
    chunks = row_chunks if row_chunks is not None else outputs[0].chunks[0]
    return da.Array(stacked.dask, stacked.name, (tuple(chunks), (width,)), meta=stacked._meta)
