"""Date parts of datetime columns as numeric features: :class:`DateTimeFeatures`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp
from pandas.api.types import is_datetime64_any_dtype
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from daskml_lab.base import InvalidParameterError, Options, check_params
from daskml_lab.data import is_dask_dataframe

__all__ = ["DATE_PARTS", "DateTimeFeatures"]

#: The parts :class:`DateTimeFeatures` can extract, with what each one is.
DATE_PARTS: dict[str, str] = {
    "year": "the year, e.g. 2013",
    "quarter": "the quarter, 1 to 4",
    "month": "the month, 1 to 12",
    "day": "the day of the month, 1 to 31",
    "dayofyear": "the day of the year, 1 to 366",
    "weekday": "the day of the week, Monday=0 to Sunday=6",
    "hour": "the hour, 0 to 23",
    "minute": "the minute, 0 to 59",
    "second": "the second, 0 to 59",
    "is_weekend": "1 on Saturdays and Sundays, else 0",
    "timestamp": "seconds since 1970-01-01 00:00 (UTC for time-zone aware columns)",
}


#: pandas' names of the parts whose name here is scikit-learn-like rather than pandas' own.
_ACCESSORS = {"weekday": "day_of_week", "dayofyear": "day_of_year"}


def _in_memory(X: Any, unit: str | None) -> Any:
    """Checks of an in-memory array (not a DataFrame): 2-D, not empty, real; object numbers made float."""
    if not isinstance(X, np.ndarray | list | tuple):
        return X
    X = np.asarray(X)
    if X.ndim != 2:
        msg = (
            f"Expected 2D array, got {X.ndim}D array instead. Reshape your data either using "
            "array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) if it contains a "
            "single sample."
        )
        raise ValueError(msg)
    if X.shape[0] == 0:
        msg = f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required."
        raise ValueError(msg)
    if X.shape[1] == 0:
        msg = f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required."
        raise ValueError(msg)
    if X.dtype.kind == "c":
        msg = "Complex data not supported; DateTimeFeatures takes datetime columns."
        raise ValueError(msg)
    if X.dtype.kind == "O" and unit is not None:
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as err:
            msg = (
                f"DateTimeFeatures(unit={unit!r}) reads numbers; the object array holds other values ({err})."
            )
            raise TypeError(msg) from err
    return X


def _as_datetime(values: pd.Series, unit: str | None) -> pd.Series:
    """A datetime Series; numbers are read as times since 1970-01-01 in ``unit``."""
    if is_datetime64_any_dtype(values.dtype):
        return values
    numbers_ = values.to_numpy(dtype=np.float64)
    if np.isinf(numbers_).any():
        msg = "Input contains infinity: a time since 1970-01-01 must be finite (NaN marks a missing date)."
        raise ValueError(msg)
    return pd.Series(pd.to_datetime(numbers_, unit=unit), index=values.index)


def _part(values: pd.Series, part: str) -> np.ndarray:
    """One date part of a datetime Series as float64 (NaN where the date is missing)."""
    accessor = values.dt
    if part == "timestamp":
        naive = accessor.tz_convert("UTC").dt.tz_localize(None) if accessor.tz is not None else values
        seconds = (naive - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
        return seconds.to_numpy(dtype=np.float64, na_value=np.nan)
    if part == "is_weekend":
        result = np.array(accessor.day_of_week >= 5, dtype=np.float64)
        result[values.isna().to_numpy()] = np.nan
        return result
    return getattr(accessor, _ACCESSORS.get(part, part)).to_numpy(dtype=np.float64, na_value=np.nan)


def _date_parts_block(block: Any, features: tuple[str, ...], unit: str | None = None) -> np.ndarray:
    """The date parts of every column of one block (pandas DataFrame or Series, or datetime64 array)."""
    if isinstance(block, pd.Series):
        columns = [block]
    elif isinstance(block, pd.DataFrame):
        columns = [block.iloc[:, i] for i in range(block.shape[1])]
    else:
        array = np.asarray(block)
        array = array.reshape(-1, 1) if array.ndim == 1 else array
        columns = [pd.Series(array[:, i]) for i in range(array.shape[1])]
    n_rows = len(columns[0]) if columns else 0
    out = np.empty((n_rows, len(columns) * len(features)), dtype=np.float64)
    for i, column in enumerate(columns):
        column = _as_datetime(column, unit)
        for j, part in enumerate(features):
            out[:, i * len(features) + j] = _part(column, part)
    return out


class DateTimeFeatures(TransformerMixin, BaseEstimator):
    """Date parts (year, month, day, weekday, hour, ...) of datetime columns as numeric features.

    Each datetime column becomes one float64 column per requested part, named ``<column>_<part>``; a
    missing date (``NaT``) gives ``NaN`` in every part. Nothing is learned from the data: fitting records
    the columns, so it never computes anything, and transforming is lazy for dask input (one task per
    partition). Use it inside a :class:`~daskml_lab.compose.ColumnTransformer`, for instance on the columns
    chosen by ``make_column_selector(dtype_include="datetime")``.

    Parameters
    ----------
    features : sequence of str, default=("year", "month", "day", "weekday", "hour")
        The parts to extract, in this order, among ``"year"``, ``"quarter"``, ``"month"``, ``"day"``,
        ``"dayofyear"``, ``"weekday"`` (Monday=0), ``"hour"``, ``"minute"``, ``"second"``,
        ``"is_weekend"`` (1 or 0) and ``"timestamp"`` (seconds since 1970-01-01, UTC for time-zone aware
        columns). Parts of time-zone aware columns are read in their own time zone.
    unit : {"s", "ms", "us", "ns"}, default=None
        Read numeric columns as times since 1970-01-01 (UTC) in this unit, for tables that store Unix
        times; ``NaN`` is a missing date. With ``None``, numeric columns are refused.

    Attributes
    ----------
    n_features_in_ : int
        Number of datetime columns seen in :meth:`fit`.
    feature_names_in_ : ndarray of str of shape (`n_features_in_`,)
        Their names, when fitted on a DataFrame with string column names.

    See Also
    --------
    ColumnTransformer : Applies it to the datetime columns of a table.

    Examples
    --------
    >>> import pandas as pd
    >>> from daskml_lab.compose import DateTimeFeatures
    >>> X = pd.DataFrame({"when": pd.to_datetime(["2013-01-01 05:00", "2013-07-06 17:30", None])})
    >>> parts = DateTimeFeatures(features=["month", "weekday", "hour"]).fit(X)
    >>> parts.transform(X)
    array([[ 1.,  1.,  5.],
           [ 7.,  5., 17.],
           [nan, nan, nan]])
    >>> parts.get_feature_names_out().tolist()
    ['when_month', 'when_weekday', 'when_hour']
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "features": [list, tuple],
        "unit": [Options({"s", "ms", "us", "ns"}), None],
    }

    def __init__(
        self,
        features: Sequence[str] = ("year", "month", "day", "weekday", "hour"),
        *,
        unit: str | None = None,
    ) -> None:
        self.features = features
        self.unit = unit

    def _check_features(self) -> tuple[str, ...]:
        check_params(self)
        unknown = [part for part in self.features if part not in DATE_PARTS]
        if unknown or not self.features:
            msg = (
                f"The 'features' parameter of DateTimeFeatures must be a non-empty list of parts among "
                f"{sorted(DATE_PARTS)}; got {list(self.features)!r}."
            )
            raise InvalidParameterError(msg)
        return tuple(self.features)

    def fit(self, X: Any, y: Any = None) -> DateTimeFeatures:
        """Record the datetime columns of ``X`` (no data are read).

        Parameters
        ----------
        X : {pandas or dask DataFrame or Series, datetime64 array} of shape (n_samples, n_features)
            Datetime columns.
        y : None
            Not used, present for scikit-learn's API.

        Returns
        -------
        self : DateTimeFeatures
            Fitted.

        Raises
        ------
        TypeError
            If a column is not of a datetime dtype (the message says how to convert it).
        """
        return self._fit_finish(X, self._fit_plan(X))

    def _fit_plan(self, X: Any) -> dict[str, Any]:
        """The statistics :meth:`fit` needs: none (the dtypes are checked here, without computing)."""
        self._check_features()
        X = _in_memory(X, self.unit)
        _check_datetime(X, self.unit)
        if isinstance(X, np.ndarray) and X.dtype.kind in "iuf" and np.isinf(X).any():
            _as_datetime(pd.Series(X.ravel()), self.unit)  # raises, naming the infinity
        return {}

    def _fit_finish(self, X: Any, statistics: dict[str, Any]) -> DateTimeFeatures:
        """Set the fitted attributes (the ColumnTransformer calls it after its one pass of statistics)."""
        X = _in_memory(X, self.unit)
        names = _column_names(X)
        self.n_features_in_ = len(names) if names is not None else _n_columns(X)
        if names is not None and all(isinstance(n, str) for n in names):
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def transform(self, X: Any) -> Any:
        """The date parts of every column, lazily for dask input.

        Parameters
        ----------
        X : {pandas or dask DataFrame or Series, datetime64 array} of shape (n_samples, `n_features_in_`)
            The datetime columns seen in :meth:`fit` (a DataFrame's are taken by name).

        Returns
        -------
        {ndarray, dask.array.Array} of shape (n_samples, `n_features_in_` * len(features))
            float64; a lazy dask array (one row block per partition or row block) for dask input, numpy
            otherwise.
        """
        check_is_fitted(self)
        features = self._check_features()
        X = self._columns_of(_in_memory(X, self.unit))
        _check_datetime(X, self.unit)
        width = self.n_features_in_ * len(features)
        if is_dask_dataframe(X):
            meta = pd.DataFrame(np.empty((0, width)), columns=[str(i) for i in range(width)])
            frame = X.map_partitions(
                _date_parts_frame, features, self.unit, meta=meta, token="daskml-date-parts"
            )
            return frame.to_dask_array(lengths=None)
        if isinstance(X, da.Array):
            blocks = X if X.ndim == 2 else X[:, None]
            return blocks.map_blocks(
                _date_parts_block,
                features,
                self.unit,
                chunks=(blocks.chunks[0], (width,)),
                dtype=np.float64,
                token="daskml-date-parts",
            )
        return _date_parts_block(X, features, self.unit)

    def _columns_of(self, X: Any) -> Any:
        """``X`` with the fitted columns, taken by name from a DataFrame; checks the column count."""
        names = getattr(self, "feature_names_in_", None)
        given = _column_names(X)
        if names is not None and given is not None and X.ndim == 2:
            missing = [n for n in names if n not in set(given)]
            if missing:
                msg = (
                    f"DateTimeFeatures was fitted on the columns {names.tolist()}; {missing} are missing from "
                    "the input. Pass the same datetime columns as in fit."
                )
                raise ValueError(msg)
            return X[list(names)]
        n_columns = _n_columns(X)
        if n_columns != self.n_features_in_:
            msg = (
                f"X has {n_columns} features, but DateTimeFeatures is expecting {self.n_features_in_} "
                "features as input."
            )
            raise ValueError(msg)
        return X

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output names ``<column>_<part>``.

        Parameters
        ----------
        input_features : array-like of str, default=None
            The input columns' names; ``feature_names_in_`` (or ``x0``, ``x1``, ...) when None.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self)
        features = self._check_features()
        if input_features is None:
            input_features = getattr(self, "feature_names_in_", [f"x{i}" for i in range(self.n_features_in_)])
        input_features = list(input_features)
        if len(input_features) != self.n_features_in_:
            msg = (
                f"input_features should have length equal to the number of features seen in fit "
                f"({self.n_features_in_}); got {len(input_features)}."
            )
            raise ValueError(msg)
        return np.asarray(
            [f"{column}_{part}" for column in input_features for part in features], dtype=object
        )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.input_tags.allow_nan = True
        tags.input_tags.two_d_array = True
        return tags


def _date_parts_frame(
    frame: pd.DataFrame | pd.Series, features: tuple[str, ...], unit: str | None
) -> pd.DataFrame:
    """One partition's date parts, as a DataFrame (what ``map_partitions`` expects)."""
    values = _date_parts_block(frame, features, unit)
    return pd.DataFrame(values, columns=[str(i) for i in range(values.shape[1])], index=frame.index)


def _column_names(X: Any) -> list[Any] | None:
    if isinstance(X, pd.DataFrame) or (is_dask_dataframe(X) and X.ndim == 2):
        return list(X.columns)
    if isinstance(X, pd.Series) or is_dask_dataframe(X):
        return [X.name]
    return None


def _n_columns(X: Any) -> int:
    shape = getattr(X, "shape", None)
    if shape is None:
        X = np.asarray(X)
        shape = X.shape
    return 1 if len(shape) == 1 else int(shape[1])


def _is_date_dtype(dtype: Any, unit: str | None) -> bool:
    if is_datetime64_any_dtype(dtype):
        return True
    return unit is not None and isinstance(dtype, np.dtype) and dtype.kind in "iuf"


def _check_datetime(X: Any, unit: str | None) -> None:
    """Refuse columns that are not datetimes (or numbers, with ``unit``), naming them and the conversion."""
    if sp.issparse(X):
        msg = (
            "DateTimeFeatures does not accept sparse input; pass datetime columns (a DataFrame or an array)."
        )
        raise TypeError(msg)
    if isinstance(X, pd.DataFrame) or is_dask_dataframe(X):
        dtypes = X.dtypes if X.ndim == 2 else pd.Series([X.dtype], index=[X.name])
        wrong = {str(c): str(t) for c, t in dtypes.items() if not _is_date_dtype(t, unit)}
    elif isinstance(X, pd.Series):
        wrong = {} if _is_date_dtype(X.dtype, unit) else {str(X.name): str(X.dtype)}
    else:
        dtype = getattr(X, "dtype", None)
        if dtype is None:
            dtype = np.asarray(X).dtype
        wrong = {} if _is_date_dtype(np.dtype(dtype), unit) else {"X": str(dtype)}
    if wrong:
        numbers_hint = "" if unit is not None else " (numbers as Unix times: DateTimeFeatures(unit='s'))"
        msg = (
            f"DateTimeFeatures takes datetime columns{numbers_hint}; got {wrong} (column: dtype). Convert them "
            "first: pd.to_datetime(df[col]) for pandas, dd.to_datetime(ddf[col]) for dask, or read the file "
            "with parse_dates=[col]; select datetime columns with make_column_selector(dtype_include='datetime')."
        )
        raise TypeError(msg)
