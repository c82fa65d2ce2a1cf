"""Which columns a :class:`~daskml_lab.compose.ColumnTransformer` hands to each transformer.

A column specification is what scikit-learn accepts: a name or list of names, a position or list of
positions, a slice, a boolean mask, or a callable (such as :class:`sklearn.compose.make_column_selector`)
returning one of those. This module turns a specification into column positions *without computing any
data*: a callable receives an **empty** pandas DataFrame built from the dask DataFrame's public ``dtypes``
(or the dask array itself), so selecting columns by dtype costs nothing. It also takes a column subset out
of each kind of input (pandas or dask DataFrame, numpy or dask array, scipy sparse matrix).
"""

from __future__ import annotations

import numbers
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp

from daskml_lab.data import is_dask_dataframe

__all__ = [
    "InputKind",
    "empty_frame",
    "input_kind",
    "is_empty_selection",
    "is_scalar_spec",
    "labels_of",
    "resolve_columns",
    "select_columns",
]

#: The kinds of input a ColumnTransformer reads: in memory (pandas, numpy, sparse) or lazy (dask).
InputKind = str


def input_kind(X: Any) -> InputKind:
    """``"pandas"``, ``"dask-dataframe"``, ``"dask"``, ``"sparse"`` or ``"numpy"`` (lists become numpy)."""
    if isinstance(X, pd.DataFrame):
        return "pandas"
    if is_dask_dataframe(X):
        if X.ndim != 2:
            msg = (
                "ColumnTransformer takes a 2-D input; got a dask Series. Select a DataFrame with a list of "
                "columns, e.g. ddf[['col']]."
            )
            raise ValueError(msg)
        return "dask-dataframe"
    if isinstance(X, da.Array):
        return "dask"
    if sp.issparse(X):
        return "sparse"
    if isinstance(X, pd.Series):
        msg = (
            "ColumnTransformer takes a 2-D input; got a pandas Series. Use df[['col']] or series.to_frame()."
        )
        raise ValueError(msg)
    return "numpy"


def empty_frame(dtypes: pd.Series) -> pd.DataFrame:
    """An empty pandas DataFrame with the given column dtypes (what column selectors see for dask input)."""
    return pd.DataFrame({i: pd.Series([], dtype=dtype) for i, dtype in enumerate(dtypes)}).set_axis(
        list(dtypes.index), axis=1
    )


def labels_of(X: Any, indices: list[int], columns: Any) -> Any:
    """The labels of a DataFrame's columns at ``indices`` (one label for a 1-D selection)."""
    labels = [X.columns[i] for i in indices]
    return labels[0] if is_scalar_spec(columns) else labels


def is_empty_selection(columns: Any) -> bool:
    """Whether a column specification selects nothing (an empty list or an all-False mask)."""
    if isinstance(columns, np.ndarray) and columns.dtype == bool:
        return not columns.any()
    if isinstance(columns, str | bytes | numbers.Integral | slice) or callable(columns):
        return False
    if hasattr(columns, "__len__"):
        return len(columns) == 0 or (
            all(isinstance(c, bool | np.bool_) for c in columns) and not any(columns)
        )
    return False


def resolve_columns(
    spec: Any,
    *,
    name: str,
    n_features: int,
    feature_names: np.ndarray | None,
    selector_input: Any,
) -> tuple[Any, list[int]]:
    """The specification with callables evaluated, and the column positions it selects.

    Parameters
    ----------
    spec : str, int, slice, array-like of str, int or bool, or callable
        The columns of one transformer, as given to the ColumnTransformer.
    name : str
        The transformer's name, for error messages.
    n_features : int
        Number of columns of the input.
    feature_names : ndarray of str or None
        The input's column names (``None`` for arrays).
    selector_input : DataFrame or array
        What a callable specification receives: an empty pandas DataFrame with the input's dtypes for
        DataFrames (pandas or dask), the input itself for arrays.

    Returns
    -------
    columns : object
        ``spec``, or what the callable returned.
    indices : list of int
        The selected positions, in the order given.

    Raises
    ------
    ValueError
        If a name is not a column, a position is out of range, a mask has the wrong length, or names are
        used on an input without column names.
    TypeError
        If the specification is of an unsupported type.
    """
    columns = spec(selector_input) if callable(spec) else spec
    indices = _indices(columns, name, n_features, feature_names)
    return columns, indices


def _indices(columns: Any, name: str, n_features: int, feature_names: np.ndarray | None) -> list[int]:
    if isinstance(columns, slice):
        if _is_name(columns.start) or _is_name(columns.stop):
            names = _require_names(feature_names, name, columns)
            lookup = {column: i for i, column in enumerate(names)}
            start = 0 if columns.start is None else _position(columns.start, lookup, name)
            # A slice of names includes its end, as pandas' .loc does (and scikit-learn).
            stop = n_features if columns.stop is None else _position(columns.stop, lookup, name) + 1
            return list(range(n_features))[start : stop : columns.step]
        return list(range(n_features))[columns]
    if _is_name(columns):
        names = _require_names(feature_names, name, columns)
        return [_position(columns, {c: i for i, c in enumerate(names)}, name)]
    if isinstance(columns, numbers.Integral) and not isinstance(columns, bool | np.bool_):
        return [_in_range(int(columns), n_features, name)]
    if isinstance(columns, pd.Index | pd.Series):
        columns = columns.tolist()
    values = (
        list(np.asarray(columns, dtype=object).ravel())
        if not isinstance(columns, list | tuple)
        else list(columns)
    )
    if not values:
        return []
    if all(isinstance(v, bool | np.bool_) for v in values):
        if len(values) != n_features:
            msg = (
                f"The boolean column mask of transformer {name!r} has {len(values)} entries, but the input has "
                f"{n_features} columns. Give one True/False per column."
            )
            raise ValueError(msg)
        return [i for i, keep in enumerate(values) if keep]
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_) for v in values):
        return [_in_range(int(v), n_features, name) for v in values]
    if all(_is_name(v) for v in values):
        names = _require_names(feature_names, name, values)
        lookup = {c: i for i, c in enumerate(names)}
        missing = [v for v in values if v not in lookup]
        if missing:
            msg = (
                f"Transformer {name!r} selects columns {missing} that are not in the input, whose columns are "
                f"{_preview(names)}. Check the spelling, or select by dtype with "
                "sklearn.compose.make_column_selector."
            )
            raise ValueError(msg)
        return [lookup[v] for v in values]
    msg = (
        f"The columns of transformer {name!r} must be names, positions, a slice, a boolean mask or a callable "
        f"returning one of those (such as sklearn.compose.make_column_selector); got {columns!r}."
    )
    raise TypeError(msg)


def _is_name(value: Any) -> bool:
    return isinstance(value, str)


def _require_names(feature_names: np.ndarray | None, name: str, columns: Any) -> np.ndarray:
    if feature_names is None:
        msg = (
            f"Transformer {name!r} selects columns by name ({columns!r}), but the input has no column names "
            "(it is an array). Select columns by position, or pass a pandas or dask DataFrame."
        )
        raise ValueError(msg)
    return feature_names


def _position(column: str, lookup: dict[Any, int], name: str) -> int:
    if column not in lookup:
        msg = (
            f"Transformer {name!r} selects the column {column!r}, which is not in the input (columns: "
            f"{_preview(list(lookup))}). Check the spelling, or select by dtype with "
            "sklearn.compose.make_column_selector."
        )
        raise ValueError(msg)
    return lookup[column]


def _in_range(position: int, n_features: int, name: str) -> int:
    if not -n_features <= position < n_features:
        msg = (
            f"Transformer {name!r} selects the column at position {position}, but the input has only "
            f"{n_features} columns (positions 0 to {n_features - 1})."
        )
        raise ValueError(msg)
    return position % n_features


def _preview(items: Any, limit: int = 20) -> str:
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"


def select_columns(X: Any, kind: InputKind, indices: list[int], *, scalar: bool) -> Any:
    """The columns ``indices`` of ``X``, lazily for dask input (a Series or 1-D array when ``scalar``).

    A scalar specification (one name or position) hands a 1-D input to the transformer, as scikit-learn does
    (text vectorisers need it); anything else hands a 2-D input.
    """
    if kind in ("pandas", "dask-dataframe"):
        names = [X.columns[i] for i in indices]
        return X[names[0]] if scalar else X[names]
    if kind == "sparse":
        subset = sp.csr_matrix(X)[:, indices]
        return subset[:, 0] if scalar else subset
    if kind == "dask":
        return X[:, indices[0]] if scalar else X[:, indices]
    array = np.asarray(X)
    return array[:, indices[0]] if scalar else array[:, indices]


def is_scalar_spec(columns: Any) -> bool:
    """Whether a (resolved) specification is one name or position, which selects a 1-D input."""
    return isinstance(columns, str) or (
        isinstance(columns, numbers.Integral) and not isinstance(columns, bool | np.bool_)
    )
