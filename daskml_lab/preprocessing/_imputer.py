"""Blocked imputation of missing values: :class:`SimpleImputer`."""

from __future__ import annotations

import numbers
import warnings
from typing import Any, ClassVar

import dask.array as da
import numpy as np
from sklearn.utils.validation import check_is_fitted

from daskml_lab.base import Interval, Options
from daskml_lab.data import check_array
from daskml_lab.preprocessing._base import BlockedTransformer, is_numeric_column, row_blocks, tree_reduce
from daskml_lab.preprocessing._docs import fill_doc
from daskml_lab.preprocessing._statistics import (
    _counts_agg,
    _counts_chunk,
    _counts_combine,
    _missing_mask,
    _moments_agg,
    _moments_chunk,
    _moments_combine,
    _sketch_chunk,
    _sketch_combine,
    sketch_quantiles,
)

__all__ = ["SimpleImputer"]


def _missing_to_nan_block(block: np.ndarray, missing_values: float) -> np.ndarray:
    """Mark ``missing_values`` as NaN, so that every statistic and the transform see one kind of missing."""
    return np.where(block == missing_values, np.nan, block).astype(block.dtype, copy=False)


def _impute_block(block: np.ndarray, fill: np.ndarray, keep: np.ndarray, indicate: np.ndarray) -> np.ndarray:
    missing = np.isnan(block)
    filled = np.where(missing, fill, block)[:, keep]
    if indicate.size:
        filled = np.hstack([filled, missing[:, indicate]])
    return filled.astype(block.dtype, copy=False)


def _restore_missing_block(
    block: np.ndarray, kept: np.ndarray, indicated: np.ndarray, n_features: int, missing_value: float
) -> np.ndarray:
    result = np.full((block.shape[0], n_features), missing_value, dtype=block.dtype)
    result[:, kept] = block[:, : len(kept)]
    mask = block[:, len(kept) :].astype(bool)
    original = result[:, indicated]
    original[mask] = missing_value
    result[:, indicated] = original
    return result


def _text_missing(missing_values: Any) -> Any:
    """The placeholder the count and impute kernels compare against (``None``: NaN, None and pd.NA only)."""
    if missing_values is None or (isinstance(missing_values, float) and np.isnan(missing_values)):
        return None
    return missing_values


def _impute_text_block(
    block: np.ndarray, fill: np.ndarray, keep: np.ndarray, indicate: np.ndarray, missing_value: Any
) -> np.ndarray:
    block = np.asarray(block, dtype=object)
    missing = _missing_mask(block, missing_value)
    filled = np.where(missing, fill, block)[:, keep]
    if indicate.size:
        filled = np.hstack([filled, missing[:, indicate]])
    return filled.astype(object, copy=False)


def _warn_empty(empty: np.ndarray, strategy: str) -> None:
    warnings.warn(
        f"Skipping features without any observed values: {np.flatnonzero(empty).tolist()}. At least one "
        f"non-missing value is needed for imputation with strategy='{strategy}'.",
        UserWarning,
        stacklevel=4,
    )


def _is_text(X: Any) -> bool:
    """Whether ``X`` holds text: DataFrames with text or category columns, string arrays, object arrays whose
    values are not all numbers (dask object arrays are taken as text: their values are not looked at)."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None and getattr(X, "ndim", 2) == 2 and hasattr(dtypes, "__iter__"):
        return any(not is_numeric_column(dtype) for dtype in dtypes)
    if isinstance(X, list | tuple):
        X = np.asarray(X, dtype=object)
    dtype = getattr(X, "dtype", None)
    if dtype is None or np.dtype(dtype).kind not in "OUS":
        return False
    if np.dtype(dtype).kind == "O" and isinstance(X, np.ndarray):
        # scikit-learn's rule: an object array of numbers is numeric
        return not all(isinstance(value, numbers.Number) or value is None for value in X.ravel())
    return True


@fill_doc
class SimpleImputer(BlockedTransformer):
    """Replace missing values with a per-column statistic, on row blocks.

    scikit-learn's :class:`sklearn.impute.SimpleImputer` for dask arrays and DataFrames: the statistic of
    every column comes from one blocked pass; the transform is lazy. Text and ``category`` columns (object
    arrays, DataFrames with such columns) take ``"most_frequent"`` or ``"constant"`` and give object arrays.

    Parameters
    ----------
    missing_values : float, str or None, default=np.nan
        The placeholder for missing values (e.g. ``"?"`` in text columns); every occurrence is imputed.
        ``NaN``, ``None`` and ``pd.NA`` in text columns are always missing.
    strategy : {"mean", "median", "most_frequent", "constant"}, default="mean"
        ``"median"`` uses the quantile sketch of :class:`RobustScaler` (exact up to ``sketch_size`` values per
        column and block, otherwise within the rank error documented there).
    fill_value : float or str, default=None
        The value used with ``strategy="constant"``; ``None`` means 0 (``"missing_value"`` for text).
    %(copy)s
    add_indicator : bool, default=False
        Whether to append one indicator column per feature that had missing values in ``fit``.
    keep_empty_features : bool, default=False
        Whether to keep features that were missing throughout ``fit`` (imputed with 0, or ``fill_value`` for
        ``"constant"``) instead of dropping them from the output.
    sketch_size : int, default=2000
        Points of each column's quantile sketch (``strategy="median"`` only).

    Attributes
    ----------
    statistics_ : ndarray of shape (n_features,)
        The imputation value of each feature (NaN, or ``None`` for text, for dropped empty features).
    indicator_features_ : ndarray of int
        Indices of the features that get a missing-value indicator column (``add_indicator=True``).
    %(fitted_features)s

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.preprocessing import SimpleImputer
    >>> SimpleImputer(strategy="mean").fit_transform(np.array([[1.0], [np.nan], [3.0]])).ravel()
    array([1., 2., 3.])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "missing_values": [numbers.Real, str, None],
        "strategy": [Options({"mean", "median", "most_frequent", "constant"})],
        "fill_value": [numbers.Real, str, None],
        "copy": ["boolean"],
        "add_indicator": ["boolean"],
        "keep_empty_features": ["boolean"],
        "sketch_size": [Interval(numbers.Integral, 16, None, closed="left")],
    }

    def __init__(
        self,
        *,
        missing_values: float = np.nan,
        strategy: str = "mean",
        fill_value: float | None = None,
        copy: bool = True,
        add_indicator: bool = False,
        keep_empty_features: bool = False,
        sketch_size: int = 2000,
    ) -> None:
        self.missing_values = missing_values
        self.strategy = strategy
        self.fill_value = fill_value
        self.copy = copy
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.sketch_size = sketch_size

    def _marked(self, X: Any, *, fitting: bool) -> tuple[da.Array, Any]:
        array, origin = self._numeric_input(X, fitting=fitting)
        if self.missing_values is not None and not np.isnan(self.missing_values):
            array = array.map_blocks(
                _missing_to_nan_block, self.missing_values, dtype=array.dtype, token="daskml-mark-missing"
            )
        return array, origin

    def _fit_plan(self, X: Any) -> dict[str, Any]:
        # an in-memory object array with the mean or median goes to the numeric gate, which converts it or
        # says which value is not a number (scikit-learn's behaviour)
        numeric_wanted = self.strategy in ("mean", "median") and isinstance(X, np.ndarray | list | tuple)
        self._text = (_is_text(X) and not numeric_wanted) or isinstance(self.missing_values, str)
        if self._text:
            return self._fit_plan_text(X)
        array, _ = self._marked(X, fitting=True)
        blocks = row_blocks(array)
        # the moments give the missing counts that every strategy needs (empty features, indicators); under the
        # name StandardScaler uses too, so that the two fitted together on the same blocks share the tasks
        plan = {
            "moments": tree_reduce(
                blocks, _moments_chunk, _moments_combine, _moments_agg, name="column-moments"
            )
        }
        if self.strategy == "median":
            plan["sketch"] = tree_reduce(
                blocks,
                _sketch_chunk,
                _sketch_combine,
                _identity,
                name="imputer-sketch",
                sketch_size=int(self.sketch_size),
            )
        elif self.strategy == "most_frequent":
            plan["counts"] = tree_reduce(
                blocks, _counts_chunk, _counts_combine, _counts_agg, name="imputer-counts"
            )
        return plan

    def _fit_plan_text(self, X: Any) -> dict[str, Any]:
        """Text columns (``most_frequent`` and ``constant`` only): one pass of value and missing counts."""
        array, _, _ = self._table_input(X, fitting=True)
        if self.strategy in ("mean", "median"):
            msg = (
                f"Cannot use the {self.strategy} strategy with non-numeric data (text or category columns). "
                "Use strategy='most_frequent' or 'constant' for them, or encode them first."
            )
            raise ValueError(msg)
        counts = tree_reduce(
            row_blocks(array),
            _counts_chunk,
            _counts_combine,
            _counts_agg,
            name="imputer-text-counts",
            missing_value=_text_missing(self.missing_values),
        )
        return {"counts": counts}

    def _fit_finish_text(self, statistics: dict[str, Any]) -> SimpleImputer:
        columns = statistics["counts"]["columns"]
        if self.strategy == "constant":
            fill = "missing_value" if self.fill_value is None else self.fill_value
            values = [fill] * len(columns)
        else:
            values = [cats[np.argmax(freqs)] if len(cats) else None for cats, freqs, _ in columns]
        empty = np.array([len(cats) == 0 for cats, _, _ in columns])
        keep = np.ones(len(columns), dtype=bool)
        if self.strategy != "constant" and empty.any():
            if self.keep_empty_features:
                values = [0 if e else v for v, e in zip(values, empty, strict=True)]
            else:
                keep = ~empty
                _warn_empty(empty, self.strategy)
        self.statistics_ = np.asarray(values, dtype=object)
        self._kept_features = np.flatnonzero(keep)
        n_missing = np.array([m for _, _, m in columns])
        self.indicator_features_ = (
            np.flatnonzero(n_missing > 0) if self.add_indicator else np.array([], np.int64)
        )
        return self

    def _fit_finish(self, X: Any, statistics: dict[str, Any]) -> SimpleImputer:
        if self._text:
            return self._fit_finish_text(statistics)
        moments = statistics["moments"]
        count, n_rows = moments["count"], moments["n_rows"]
        if self.strategy == "mean":
            values = moments["mean"]
        elif self.strategy == "median":
            values = sketch_quantiles(statistics["sketch"], np.array([0.5]))[0][0]
        elif self.strategy == "most_frequent":
            values = np.array(
                [
                    float(categories[np.argmax(frequencies)]) if len(categories) else np.nan
                    for categories, frequencies, _ in statistics["counts"]["columns"]
                ]
            )
        else:
            values = np.full(self.n_features_in_, 0.0 if self.fill_value is None else float(self.fill_value))
        empty = count == 0
        keep = np.ones(self.n_features_in_, dtype=bool)
        if self.strategy != "constant" and np.any(empty):
            if self.keep_empty_features:
                values = np.where(empty, 0.0, values)
            else:
                keep = ~empty
                _warn_empty(empty, self.strategy)
        self.statistics_ = np.asarray(values, dtype=np.float64)
        self._kept_features = np.flatnonzero(keep)
        self.indicator_features_ = (
            np.flatnonzero(count < n_rows) if self.add_indicator else np.array([], dtype=np.int64)
        )
        return self

    def transform(self, X: Any) -> Any:
        """Impute the missing values of ``X`` block by block (and append the indicator columns).

        Parameters
        ----------
        X : {array-like, dask array, DataFrame, dask DataFrame} of shape (n_samples, n_features)
            The data.

        Returns
        -------
        ndarray or dask array of shape (n_samples, n_features_out)
            Lazy (same row chunks) for dask input, numpy for in-memory input.
        """
        if self._text:
            return self._transform_text(X)
        array, origin = self._marked(X, fitting=False)
        fill = np.where(np.isnan(self.statistics_), 0.0, self.statistics_)
        n_out = len(self._kept_features) + len(self.indicator_features_)
        result = array.map_blocks(
            _impute_block,
            fill,
            self._kept_features,
            self.indicator_features_,
            dtype=array.dtype,
            chunks=(array.chunks[0], (n_out,)),
            token="daskml-impute",
        )
        return self._wrap_output(result, origin)

    def _transform_text(self, X: Any) -> Any:
        array, origin, _ = self._table_input(X, fitting=False)
        n_out = len(self._kept_features) + len(self.indicator_features_)
        result = array.map_blocks(
            _impute_text_block,
            self.statistics_,
            self._kept_features,
            self.indicator_features_,
            _text_missing(self.missing_values),
            dtype=object,
            chunks=(array.chunks[0], (n_out,)),
            meta=np.empty((0, n_out), dtype=object),
            token="daskml-impute-text",
        )
        return self._wrap_output(result, origin)

    def inverse_transform(self, X: Any) -> Any:
        """Put the missing values back where the indicator columns say, block by block.

        Only with ``add_indicator=True``, whose columns record where values were missing. Features dropped
        because they were empty in ``fit`` come back as missing throughout.

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features_out)
            The output of :meth:`transform`.

        Returns
        -------
        ndarray or dask array of shape (n_samples, n_features)
            Lazy for dask input, numpy for in-memory input.

        Raises
        ------
        ValueError
            Without ``add_indicator=True``, or when ``X`` has another number of columns than ``transform`` gives.
        """
        check_is_fitted(self)
        if self._text:
            msg = (
                "inverse_transform is implemented for numeric columns only; this imputer was fitted on text."
            )
            raise ValueError(msg)
        if not self.add_indicator:
            msg = (
                "'inverse_transform' works only when 'SimpleImputer' is instantiated with 'add_indicator=True'. "
                f"Got 'add_indicator={self.add_indicator}' instead."
            )
            raise ValueError(msg)
        array, origin = check_array(X, accept_sparse=False, known_chunks=False)
        n_out = len(self._kept_features) + len(self.indicator_features_)
        if array.shape[1] != n_out:
            msg = (
                f"X has {array.shape[1]} columns, but SimpleImputer.transform gives {n_out}. Pass its output."
            )
            raise ValueError(msg)
        missing = np.nan if self.missing_values is None else float(self.missing_values)
        result = array.map_blocks(
            _restore_missing_block,
            self._kept_features,
            self.indicator_features_,
            self.n_features_in_,
            missing,
            dtype=array.dtype,
            chunks=(array.chunks[0], (self.n_features_in_,)),
            token="daskml-impute-inverse",
        )
        return self._wrap_output(result, origin)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns: the kept features, then ``missingindicator_<name>`` per indicator.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input names; ``feature_names_in_`` or ``x0, x1, ...`` when ``None``.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self)
        names = self._input_names(input_features)
        indicators = [f"missingindicator_{name}" for name in names[self.indicator_features_]]
        return np.asarray(list(names[self._kept_features]) + indicators, dtype=object)


def _identity(part: Any) -> Any:
    return part
