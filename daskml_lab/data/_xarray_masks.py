"""Samples with missing values in xarray inputs: dropped for training, filled for prediction, put back in outputs.

Samples with NaN in a feature (land/sea masks, clouds) are handled in two ways:

- for training (:func:`drop_invalid`) they are dropped; the number of kept rows per block is computed (one
  integer per block) so that chunk sizes stay known;
- for prediction (:func:`fill_invalid`) their NaN are replaced by zeros so that the model can run, and which
  samples had NaN is recorded lazily.

Per-sample results are put back on all samples by :func:`scatter_rows` (after dropping) or :func:`mask_rows`
(after filling), with NaN at the masked samples. Nothing here computes data except the per-block counts of
kept samples in :func:`drop_invalid`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable
from typing import Any

import dask.array as da
import numpy as np

from daskml_lab.data._xarray_stack import XarraySamples, replace_samples, unique_name

__all__ = [
    "COLUMN_DIM",
    "as_row_array",
    "column_layout",
    "drop_invalid",
    "fill_invalid",
    "mask_rows",
    "scatter_rows",
    "valid_rows",
]

logger = logging.getLogger(__name__)

#: Dimension of 2-D results whose columns are not the input's features (e.g. ``predict_proba``).
COLUMN_DIM = "column"


# ---------------------------------------------------------------------------------------------------------
# masks: dropping (training), filling (prediction), putting back (outputs)


def valid_rows(data: da.Array) -> da.Array:
    return da.map_blocks(
        _valid_rows_block, data, drop_axis=list(range(1, data.ndim)), dtype=bool, token="daskml-valid-rows"
    )


def fill_invalid(data: da.Array) -> tuple[da.Array, da.Array]:
    """NaN replaced by 0, lazily, and which rows had none (``valid``), so that NaN can be put back later."""
    valid = valid_rows(data)
    filled = da.map_blocks(
        _fill_nan_block, data, dtype=data.dtype, meta=data._meta, token="daskml-fill-masked"
    )
    return filled, valid


def drop_invalid(
    X: da.Array, y: da.Array | None, samples: XarraySamples, *, is_lazy: bool
) -> tuple[da.Array, da.Array | None, XarraySamples]:
    """Drop samples with NaN in a feature (or the target), keeping chunk sizes known."""
    checks = [valid_rows(X)] if X.dtype.kind in "fc" else []
    if y is not None and y.dtype.kind in "fc":
        checks.append(valid_rows(y))
    if not checks:
        return X, y, samples
    valid = checks[0] if len(checks) == 1 else checks[0] & checks[1]
    counts = da.map_blocks(
        _count_true_block,
        valid,
        chunks=((1,) * valid.numblocks[0],),
        dtype=np.int64,
        token="daskml-count-valid",
    )
    logger.info("Counting samples without NaN in %d row blocks of an xarray input", valid.numblocks[0])
    # compute: one integer per row block (the number of samples kept), so that the kept rows have known
    # chunks. In-memory inputs are counted on the client with the synchronous scheduler.
    kept = tuple(int(c) for c in (counts.compute() if is_lazy else counts.compute(scheduler="sync")))
    if kept == tuple(X.chunks[0]):
        return X, y, samples
    if sum(kept) == 0:
        msg = (
            f"Every one of the {samples.n_samples} samples has NaN in a feature or the target, so none is "
            "left to learn from. Check the mask, fill missing values first, or pass skipna=False to see "
            "where."
        )
        raise ValueError(msg)
    X = _take_rows(X, valid, kept)
    y = None if y is None else _take_rows(y, valid, kept)
    return X, y, replace_samples(samples, valid=valid, kept_chunks=kept)


def _take_rows(data: da.Array, valid: da.Array, kept: tuple[int, ...]) -> da.Array:
    index = "ij"[: data.ndim]
    return da.blockwise(
        _take_rows_block,
        index,
        data,
        index,
        valid,
        "i",
        adjust_chunks={"i": kept},
        align_arrays=False,
        dtype=data.dtype,
        meta=data._meta,
        token="daskml-drop-masked",
    )


def _masked_dtype(dtype: np.dtype) -> np.dtype:
    """A dtype able to hold NaN for missing samples."""
    if dtype.kind in "fc":
        return dtype
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    return np.dtype(object)


def scatter_rows(result: da.Array, samples: XarraySamples) -> da.Array:
    kept = samples.kept_chunks
    if result.chunks[0] != kept:
        result = result.rechunk({0: kept})
    index = "ij"[: result.ndim]
    dtype = _masked_dtype(result.dtype)
    return da.blockwise(
        _scatter_rows_block,
        index,
        result,
        index,
        samples.valid,
        "i",
        adjust_chunks={"i": samples.row_chunks},
        align_arrays=False,
        dtype=dtype,
        meta=np.empty((0,) * result.ndim, dtype=dtype),
        token="daskml-unmask",
    )


def mask_rows(result: da.Array, samples: XarraySamples) -> da.Array:
    index = "ij"[: result.ndim]
    dtype = _masked_dtype(result.dtype)
    return da.blockwise(
        _mask_rows_block,
        index,
        result,
        index,
        samples.valid,
        "i",
        dtype=dtype,
        meta=np.empty((0,) * result.ndim, dtype=dtype),
        token="daskml-unmask",
    )


def as_row_array(result: Any, samples: XarraySamples) -> da.Array:
    """Check the number of rows of a result; wrap in-memory results in the expected row blocks."""
    expected = samples.n_rows
    if not isinstance(result, da.Array):
        result = np.asarray(result)
        if result.ndim >= 1 and result.shape[0] == expected:
            chunks = samples.kept_chunks or samples.row_chunks
            result = da.from_array(result, chunks=(chunks,) + (-1,) * (result.ndim - 1))
        else:
            result = da.from_array(result)
    n_rows = result.shape[0] if result.ndim else None
    if n_rows is None or (not math.isnan(n_rows) and n_rows != expected):
        what = "kept (non-masked) samples" if samples.kept_chunks is not None else "samples"
        msg = (
            f"The result has shape {result.shape}, but the xarray input had {expected} {what}; a per-sample "
            "result needs one row per row of the validated input (pass the same origin as that input's)."
        )
        raise ValueError(msg)
    if math.isnan(n_rows) or any(math.isnan(c) for c in result.chunks[0]):
        expected_chunks = samples.kept_chunks or samples.row_chunks
        if result.numblocks[0] != len(expected_chunks):
            msg = (
                f"The result has unknown chunk sizes and {result.numblocks[0]} row blocks, while the input "
                f"had {len(expected_chunks)}; call result.compute_chunk_sizes() first."
            )
            raise ValueError(msg)
        # Per-block results (predict maps blocks one to one) have the row blocks of the input: declare them.
        result = da.map_blocks(
            _identity_block,
            result,
            chunks=(expected_chunks, *result.chunks[1:]),
            dtype=result.dtype,
            meta=result._meta,
            token="daskml-known-rows",
        )
    return result


def column_layout(full: da.Array, samples: XarraySamples, columns: Any) -> tuple[tuple[Hashable, ...], Any]:
    if full.ndim == 1:
        return (), None
    n_columns = full.shape[1]
    if columns is not None:
        columns = np.asarray(columns)
        if columns.shape != (n_columns,):
            msg = (
                f"columns has {columns.size} labels, but the result has {n_columns} columns; give one per "
                "column."
            )
            raise ValueError(msg)
        column_dim = unique_name(COLUMN_DIM, samples.sample_dims)
        return (column_dim,), {column_dim: columns}
    if samples.feature_dim is not None and samples.n_features == n_columns:
        return (samples.feature_dim,), samples.feature_coords
    return (unique_name(COLUMN_DIM, samples.sample_dims),), None


# ---------------------------------------------------------------------------------------------------------
# per-block kernels


def _valid_rows_block(block: np.ndarray) -> np.ndarray:
    """Whether each row has no NaN (1-D blocks: whether each value is not NaN)."""
    missing = np.isnan(block)
    return ~missing if block.ndim == 1 else ~missing.any(axis=1)


def _count_true_block(valid: np.ndarray) -> np.ndarray:
    return np.array([np.count_nonzero(valid)], dtype=np.int64)


def _identity_block(block: np.ndarray) -> np.ndarray:
    return block


def _take_rows_block(block: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return block[valid]


def _fill_nan_block(block: np.ndarray) -> np.ndarray:
    """NaN replaced by 0 (a copy only when there is NaN), so that a model can run on masked samples."""
    missing = np.isnan(block)
    return np.where(missing, 0, block).astype(block.dtype, copy=False) if missing.any() else block


def _scatter_rows_block(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rows of ``values`` placed at the valid samples of the block, NaN elsewhere."""
    out = np.full((valid.shape[0], *values.shape[1:]), np.nan, dtype=_masked_dtype(values.dtype))
    out[valid] = values
    return out


def _mask_rows_block(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``values`` with NaN at the invalid samples."""
    out = values.astype(_masked_dtype(values.dtype), copy=True)
    out[~valid] = np.nan
    return out
