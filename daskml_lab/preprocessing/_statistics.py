"""Per-block statistics of the transformers as chunk / combine / aggregate kernels (pure functions on numpy).

Each statistic is computed by :func:`daskml_lab.preprocessing._base.tree_reduce`: ``_<stat>_chunk`` on every row
block, ``_<stat>_combine`` on groups of partial results, ``_<stat>_agg`` once. Partial results are small dicts
of per-column vectors; NaN marks a missing value and is skipped by every statistic.

Quantiles (``RobustScaler``, the imputer's median) come from a mergeable *weighted sketch*: each column keeps at
most ``sketch_size`` sorted points with weights summing to the number of values it stands for. Compressing a
sketch to ``k`` points keeps the points at the ranks ``(j + 1/2) W / k``; this moves the estimated rank of any
value by at most ``W / (2k)``. Merging sketches adds their rank errors. Each sketch carries the bound of its
own rank error, so the aggregate knows the guaranteed error of every quantile it returns (see
``RobustScaler.quantile_rank_error_``). A column with no more than ``sketch_size`` values is kept exactly:
its quantiles are then numpy's (and scikit-learn's) own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__: list[str] = []


# ---- moments: count, mean and centred sum of squares per column (Chan et al.'s pairwise update) ----------


#: Rows per slice of a block in the moments kernel. The kernel works on slices through two buffers allocated
#: once per block: a Dask worker's allocator hands large arrays back to the system at once (the nanny sets
#: ``MALLOC_TRIM_THRESHOLD_``), so every fresh block-sized temporary costs page faults (measured 2.4x slower
#: in a worker than in a plain process), while slice-sized buffers stay in the CPU cache.
_MOMENTS_SLICE_ROWS = 4096


def _moments_chunk(block: np.ndarray) -> dict[str, np.ndarray]:
    X = np.asarray(block, dtype=np.float64)
    n_rows, n_columns = X.shape
    step = max(min(n_rows, _MOMENTS_SLICE_ROWS), 1)
    work = np.empty((step, n_columns))
    missing = np.empty((step, n_columns), dtype=bool)
    parts = []
    for start in range(0, n_rows, step):
        rows = X[start : start + step]
        parts.append(_moments_slice(rows, work[: len(rows)], missing[: len(rows)]))
    if not parts:
        return _moments_slice(X, work[:0], missing[:0])
    return _moments_combine(parts)


def _moments_slice(X: np.ndarray, work: np.ndarray, missing: np.ndarray) -> dict[str, np.ndarray]:
    """Moments of the rows ``X``; ``work`` and ``missing`` are buffers of its shape, overwritten."""
    np.isnan(X, out=missing)
    any_missing = bool(missing.any())
    # zeros where missing, then centred in place (few passes over the slice, no temporary of its size)
    np.copyto(work, X)
    if any_missing:
        np.copyto(work, 0.0, where=missing)
        count = (X.shape[0] - np.count_nonzero(missing, axis=0)).astype(np.float64)
    else:
        count = np.full(X.shape[1], X.shape[0], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, work.sum(axis=0) / np.maximum(count, 1), 0.0)
    work -= mean
    if any_missing:
        np.copyto(work, 0.0, where=missing)
    m2 = np.einsum("ij,ij->j", work, work)
    return {"n_rows": np.float64(X.shape[0]), "count": count, "mean": mean, "m2": m2}


def _moments_combine(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    result = parts[0]
    for part in parts[1:]:
        count = result["count"] + part["count"]
        delta = part["mean"] - result["mean"]
        safe = np.maximum(count, 1)
        mean = result["mean"] + delta * part["count"] / safe
        m2 = result["m2"] + part["m2"] + delta**2 * result["count"] * part["count"] / safe
        result = {"n_rows": result["n_rows"] + part["n_rows"], "count": count, "mean": mean, "m2": m2}
    return result


def _moments_agg(part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    count = part["count"]
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(count > 0, part["m2"] / np.maximum(count, 1), np.nan)
    mean = np.where(count > 0, part["mean"], np.nan)
    return {"n_rows": int(part["n_rows"]), "count": count.astype(np.int64), "mean": mean, "var": var}


# ---- minimum and maximum per column (NaN skipped) ---------------------------------------------------------


def _minmax_chunk(block: np.ndarray) -> dict[str, np.ndarray]:
    X = np.asarray(block, dtype=np.float64)
    observed = ~np.isnan(X)
    low = np.where(observed, X, np.inf).min(axis=0, initial=np.inf)
    high = np.where(observed, X, -np.inf).max(axis=0, initial=-np.inf)
    return {"n_rows": np.float64(X.shape[0]), "min": low, "max": high}


def _minmax_combine(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {
        "n_rows": np.sum([p["n_rows"] for p in parts]),
        "min": np.min([p["min"] for p in parts], axis=0),
        "max": np.max([p["max"] for p in parts], axis=0),
    }


def _minmax_agg(part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # a column without any observed value has no range: NaN, as numpy's nanmin gives
    low = np.where(np.isinf(part["min"]) & (part["min"] > 0), np.nan, part["min"])
    high = np.where(np.isinf(part["max"]) & (part["max"] < 0), np.nan, part["max"])
    return {"n_rows": int(part["n_rows"]), "min": low, "max": high}


# ---- quantile sketches ------------------------------------------------------------------------------------


def _compress(values: np.ndarray, weights: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Keep the points at ranks (j + 1/2) W / size; returns the points, their weights and the added rank error."""
    total = weights.sum()
    cumulative = np.cumsum(weights)
    targets = (np.arange(size) + 0.5) * total / size
    index = np.minimum(np.searchsorted(cumulative, targets, side="left"), len(values) - 1)
    kept, counts = np.unique(index, return_counts=True)
    return values[kept], counts * (total / size), total / (2.0 * size)


def _sketch_chunk(block: np.ndarray, sketch_size: int) -> dict[str, Any]:
    X = np.asarray(block, dtype=np.float64)
    columns = []
    for j in range(X.shape[1]):
        values = np.sort(X[:, j][~np.isnan(X[:, j])])
        weights = np.ones(len(values))
        error = 0.0
        if len(values) > sketch_size:
            values, weights, error = _compress(values, weights, sketch_size)
        columns.append((values, weights, error))
    return {"columns": columns, "sketch_size": sketch_size}


def _sketch_combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    size = parts[0]["sketch_size"]
    columns = []
    for j in range(len(parts[0]["columns"])):
        values = np.concatenate([p["columns"][j][0] for p in parts])
        weights = np.concatenate([p["columns"][j][1] for p in parts])
        error = sum(p["columns"][j][2] for p in parts)
        order = np.argsort(values, kind="stable")
        values, weights = values[order], weights[order]
        if len(values) > size:
            values, weights, added = _compress(values, weights, size)
            error += added
        columns.append((values, weights, error))
    return {"columns": columns, "sketch_size": size}


def sketch_quantiles(sketch: dict[str, Any], quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles of every column from a sketch, and each column's bound on the rank error (a fraction of n).

    Exact sketches (no compression happened) give numpy's linearly interpolated quantiles.
    """
    n_columns = len(sketch["columns"])
    result = np.full((len(quantiles), n_columns), np.nan)
    bound = np.zeros(n_columns)
    for j, (values, weights, error) in enumerate(sketch["columns"]):
        if len(values) == 0:
            continue
        if error == 0.0:
            result[:, j] = np.quantile(values, quantiles)
            continue
        total = weights.sum()
        cumulative = np.cumsum(weights)
        index = np.minimum(np.searchsorted(cumulative, quantiles * total, side="left"), len(values) - 1)
        result[:, j] = values[index]
        # the sketch's own rank error, plus the weight of one point (the step the answer lies in)
        bound[j] = (error + weights.max()) / total
    return result, bound


# ---- category counts --------------------------------------------------------------------------------------


def _is_missing(column: np.ndarray) -> np.ndarray:
    return np.asarray(pd.isna(column), dtype=bool)


def _missing_mask(block: np.ndarray, missing_value: Any = None) -> np.ndarray:
    """Missing entries: NaN, None and pd.NA, and ``missing_value`` (a placeholder such as ``"?"``) if given."""
    missing = np.asarray(pd.isna(block), dtype=bool)
    if missing_value is not None:
        missing |= np.asarray(block == missing_value, dtype=bool)
    return missing


def _counts_chunk(block: np.ndarray, missing_value: Any = None) -> dict[str, Any]:
    """For each column: the distinct non-missing values with their counts, and the number of missing values."""
    block = np.asarray(block)
    columns = []
    for j in range(block.shape[1]):
        column = block[:, j]
        missing = _missing_mask(column, missing_value)
        counts = pd.Series(column[~missing]).value_counts(dropna=True, sort=False)
        columns.append((counts, int(missing.sum())))
    return {"n_rows": block.shape[0], "columns": columns}


def _counts_combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    columns = []
    for j in range(len(parts[0]["columns"])):
        counts = parts[0]["columns"][j][0]
        for part in parts[1:]:
            counts = counts.add(part["columns"][j][0], fill_value=0)
        columns.append((counts, sum(p["columns"][j][1] for p in parts)))
    return {"n_rows": sum(p["n_rows"] for p in parts), "columns": columns}


def _counts_agg(part: dict[str, Any]) -> dict[str, Any]:
    """Per column: sorted categories (object or numeric array), their counts, and the missing count."""
    columns = []
    for counts, n_missing in part["columns"]:
        values = list(counts.index)
        try:
            order = sorted(range(len(values)), key=lambda i: values[i])
        except TypeError as err:
            kinds = sorted({type(v).__name__ for v in values})
            msg = (
                f"A column mixes values of types {kinds}, which cannot be sorted into categories. Convert the "
                "column to one type first (e.g. df[col].astype(str))."
            )
            raise TypeError(msg) from err
        categories = np.asarray([values[i] for i in order], dtype=object)
        frequencies = np.asarray([counts.iloc[i] for i in order], dtype=np.int64)
        columns.append((categories, frequencies, n_missing))
    return {"n_rows": part["n_rows"], "columns": columns}
