"""Regression metrics (R², MSE, MAE) from one set of per-block statistics.

Every block gives its total weight, the weighted mean of ``y_true``, the weighted sum of squared deviations from
that mean (``m2``) and the weighted sums of squared and absolute errors. Blocks merge with the parallel formula of
Chan, Golub and LeVeque, which never forms a raw sum of squares of ``y``: R² stays accurate when ``y`` has a
large offset (``y = 1e8 + noise``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from daskml_lab.metrics._reduce import (
    Output,
    Statistics,
    check_inputs,
    check_total_weight,
    evaluate,
    fill_compute_doc,
    row_weights,
)

__all__ = ["mean_absolute_error", "mean_squared_error", "r2_score", "regression_scores"]


def _regression_chunk(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    check_finite: bool = True,
) -> dict[str, Any]:
    """Sufficient statistics of one block: ``weight``, ``shift``, ``mean``, ``m2``, ``sse``, ``sae``.

    ``mean`` is the weighted mean of ``y_true - shift``, where ``shift`` is a value of the block: differences of
    nearby floats are exact, so the means of two blocks compare to the last bit even when ``y`` has a large
    offset. ``y_pred`` may be 2-D (one column per model); ``sse`` and ``sae`` are then one value per column.
    ``check_finite=False`` lets NaN or infinity through (into the scores) instead of raising ``ValueError``.
    """
    y = _finite(y_true, "y_true", check_finite)
    prediction = _finite(y_pred, "y_pred", check_finite)
    weights = row_weights(sample_weight, y.shape[0])
    total = float(weights.sum())
    shift = float(y[0]) if y.size else 0.0
    centred = y - shift
    mean = 0.0
    if total > 0:
        mean = float(weights @ centred / total)
        mean += float(weights @ (centred - mean) / total)  # one refinement step: the mean to the last bit
    m2 = float(weights @ (centred - mean) ** 2)
    residual = prediction - (y if prediction.ndim == 1 else y[:, None])
    return {
        "weight": total,
        "shift": shift,
        "mean": mean,
        "m2": m2,
        "sse": weights @ residual**2,
        "sae": weights @ np.abs(residual),
    }


def _regression_combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge block statistics: sums of errors and weights, means and ``m2`` by Chan et al.'s formula."""
    merged = dict(parts[0])
    for part in parts[1:]:
        total = merged["weight"] + part["weight"]
        if part["weight"] > 0 and merged["weight"] > 0:
            # The part's mean relative to the merged shift; the difference of the shifts is exact.
            delta = (part["shift"] - merged["shift"]) + part["mean"] - merged["mean"]
            merged["m2"] = merged["m2"] + part["m2"] + delta**2 * merged["weight"] * part["weight"] / total
            merged["mean"] = merged["mean"] + delta * part["weight"] / total
        elif part["weight"] > 0:
            merged["shift"], merged["mean"], merged["m2"] = part["shift"], part["mean"], part["m2"]
        merged["weight"] = total
        merged["sse"] = merged["sse"] + part["sse"]
        merged["sae"] = merged["sae"] + part["sae"]
    return merged


def _r2_agg(stats: dict[str, Any], metric: str = "r2_score") -> Any:
    """``1 - sse / m2``; for a constant ``y_true``, 1.0 for a perfect prediction and 0.0 otherwise (sklearn)."""
    check_total_weight(stats["weight"], metric)
    sse = np.asarray(stats["sse"], dtype=np.float64)
    if stats["m2"] > 0:
        return 1.0 - sse / stats["m2"]
    return np.where(sse == 0, 1.0, 0.0)


def _mse_agg(stats: dict[str, Any], metric: str = "mean_squared_error") -> Any:
    check_total_weight(stats["weight"], metric)
    return np.asarray(stats["sse"], dtype=np.float64) / stats["weight"]


def _rmse_agg(stats: dict[str, Any], metric: str = "root_mean_squared_error") -> Any:
    return np.sqrt(_mse_agg(stats, metric))


def _mae_agg(stats: dict[str, Any], metric: str = "mean_absolute_error") -> Any:
    check_total_weight(stats["weight"], metric)
    return np.asarray(stats["sae"], dtype=np.float64) / stats["weight"]


#: The aggregates of the regression statistics, by the short name of their score.
_FINALS = {"r2": _r2_agg, "mae": _mae_agg, "mse": _mse_agg, "rmse": _rmse_agg}


def _finite(values: Any, name: str, check: bool = True) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if check and not np.isfinite(array).all():
        msg = f"Input {name} contains NaN or infinity. Drop or fix those rows before scoring."
        raise ValueError(msg)
    return array


def _statistics(metric: str, y_true: Any, y_pred: Any, sample_weight: Any) -> tuple[Statistics, bool]:
    arrays, eager = check_inputs(
        metric,
        {"y_true": y_true, "y_pred": y_pred, "sample_weight": sample_weight},
        numeric=("y_true", "y_pred", "sample_weight"),
    )
    return Statistics("regression", _regression_chunk, _regression_combine, arrays), eager


def _score(metric: str, key: str, y_true: Any, y_pred: Any, sample_weight: Any, compute: bool) -> Any:
    statistics, eager = _statistics(metric, y_true, y_pred, sample_weight)
    final = partial(_FINALS[key], metric=metric)
    return evaluate({key: (statistics, final, ())}, eager=eager, compute=compute)[key]


def r2_score(y_true: Any, y_pred: Any, *, sample_weight: Any = None, compute: bool = True) -> Any:
    """Coefficient of determination R², as :func:`sklearn.metrics.r2_score`, in one pass over row blocks.

    Parameters
    ----------
    %(regression_inputs)s
    %(compute)s

    Returns
    -------
    float or dask.array.Array
        R² (at most 1.0). When ``y_true`` is constant: 1.0 for a perfect prediction, 0.0 otherwise
        (scikit-learn's ``force_finite=True``). Lazy only for dask input with ``compute=False``.

    Raises
    ------
    ValueError
        For empty input, different lengths or row chunks, NaN or infinity, negative weights, and weights that
        sum to zero (for dask input the value checks raise when computed).

    See Also
    --------
    mean_squared_error, mean_absolute_error, regression_scores

    Notes
    -----
    The blocks' weighted means and centred sums of squares merge with Chan et al.'s parallel formula, so the
    result does not suffer from a large offset in ``y_true``.

    Examples
    --------
    >>> import dask.array as da
    >>> from daskml_lab.metrics import r2_score
    >>> y_true = da.from_array([3.0, -0.5, 2.0, 7.0], chunks=2)
    >>> y_pred = da.from_array([2.5, 0.0, 2.0, 8.0], chunks=2)
    >>> round(r2_score(y_true, y_pred), 4)
    0.9486
    """
    return _score("r2_score", "r2", y_true, y_pred, sample_weight, compute)


def mean_squared_error(y_true: Any, y_pred: Any, *, sample_weight: Any = None, compute: bool = True) -> Any:
    """Mean squared error, as :func:`sklearn.metrics.mean_squared_error`, in one pass over row blocks.

    Parameters
    ----------
    %(regression_inputs)s
    %(compute)s

    Returns
    -------
    float or dask.array.Array
        The weighted mean of the squared errors. Lazy only for dask input with ``compute=False``.

    Raises
    ------
    ValueError
        As :func:`r2_score`.

    See Also
    --------
    r2_score, mean_absolute_error, regression_scores

    Examples
    --------
    >>> from daskml_lab.metrics import mean_squared_error
    >>> mean_squared_error([3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0])
    0.375
    """
    return _score("mean_squared_error", "mse", y_true, y_pred, sample_weight, compute)


def mean_absolute_error(y_true: Any, y_pred: Any, *, sample_weight: Any = None, compute: bool = True) -> Any:
    """Mean absolute error, as :func:`sklearn.metrics.mean_absolute_error`, in one pass over row blocks.

    Parameters
    ----------
    %(regression_inputs)s
    %(compute)s

    Returns
    -------
    float or dask.array.Array
        The weighted mean of the absolute errors. Lazy only for dask input with ``compute=False``.

    Raises
    ------
    ValueError
        As :func:`r2_score`.

    See Also
    --------
    r2_score, mean_squared_error, regression_scores

    Examples
    --------
    >>> from daskml_lab.metrics import mean_absolute_error
    >>> mean_absolute_error([3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0])
    0.5
    """
    return _score("mean_absolute_error", "mae", y_true, y_pred, sample_weight, compute)


def regression_scores(y_true: Any, y_pred: Any, *, sample_weight: Any = None, compute: bool = True) -> Any:
    """R², MAE, MSE and RMSE together, from one pass over row blocks.

    Parameters
    ----------
    %(regression_inputs)s
    compute : bool, default=True
        For dask input: compute all four scores in one ``dask.compute`` and return floats, or return lazy 0-d
        dask arrays that share one reduction.

    Returns
    -------
    dict
        ``r2``, ``mae``, ``mse`` and ``rmse`` (``sqrt(mse)``), each as :mod:`sklearn.metrics` defines it.

    Raises
    ------
    ValueError
        As :func:`r2_score`.

    See Also
    --------
    r2_score, mean_absolute_error, mean_squared_error

    Examples
    --------
    >>> from daskml_lab.metrics import regression_scores
    >>> regression_scores([3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0])["mae"]
    0.5
    """
    statistics, eager = _statistics("regression_scores", y_true, y_pred, sample_weight)
    outputs: dict[str, Output] = {
        key: (statistics, partial(final, metric="regression_scores"), ()) for key, final in _FINALS.items()
    }
    return evaluate(outputs, eager=eager, compute=compute)


fill_compute_doc(r2_score, mean_squared_error, mean_absolute_error, regression_scores)
