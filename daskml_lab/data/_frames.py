"""Tables (pandas and dask DataFrames) to validated row blocks, with optional ordinal encoding.

What is computed, and why: the partition lengths of dask DataFrames (one integer per partition) and the distinct
values of categorical columns that are encoded (one small list per column), in one pass.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd

from daskml_lab._compat import unique_fused_keys
from daskml_lab._runtime.watched_compute import watched_compute
from daskml_lab.data._convert import InputOrigin, Kind, is_dask_dataframe
from daskml_lab.data.validation import check_array, check_X_y

__all__ = ["FrameOrigin", "from_dataframe"]

logger = logging.getLogger(__name__)

_CATEGORICAL_MODES = ("error", "encode")


@dataclass(frozen=True)
class FrameOrigin(InputOrigin):
    """The :class:`~daskml_lab.data.InputOrigin` of a table, with the encoding of its categorical columns.

    Attributes
    ----------
    categories : dict of str to ndarray
        For each ordinal-encoded column, its categories: the code of a value is its position in this array.
        Pass the dict back as ``categorical=`` to encode another table (a test set) the same way.
    n_dropped : int
        Rows left out because their target was missing (``drop_missing_target=True``).
    column_types : dict of str to str, default=None
        Types :func:`~daskml_lab.data.read_csv` gave to columns that dask's sample had mistyped (its
        ``dtype=`` for them); pass them back as ``dtype=`` to read another file of the same layout in one pass.
    """

    categories: Mapping[Hashable, np.ndarray] | None = None
    n_dropped: int = 0
    column_types: Mapping[Hashable, str] | None = None


# ---------------------------------------------------------------------------------------------------------
# tables


def from_dataframe(
    df: Any,
    target: Hashable | None = None,
    *,
    features: Sequence[Hashable] | None = None,
    categorical: str | Mapping[Hashable, Sequence[Any]] = "error",
    chunks: int | None = None,
    allow_nan: bool = False,
    drop_missing_target: bool = False,
    unknown_code: float | None = None,
    return_origin: bool = False,
) -> Any:
    """Turn a pandas or dask DataFrame into row-chunked ``X`` (and ``y``).

    Numeric columns (including booleans and nullable integers, whose missing values become NaN) are kept.
    Text, object and categorical columns are either refused or ordinal-encoded, as ``categorical`` says.

    Parameters
    ----------
    df : pandas.DataFrame or dask.dataframe.DataFrame
        The table.
    target : hashable, default=None
        Name of the target column. Its values are kept as they are (string class labels stay labels;
        classifiers encode them in ``fit``). ``None`` returns ``X`` only.
    features : sequence of hashable, default=None
        Feature columns, in this order. ``None`` takes every column but the target.
    categorical : {"error", "encode"} or dict, default="error"
        What to do with non-numeric feature columns (object, string, category dtypes):

        - ``"error"``: raise a ``TypeError`` naming them;
        - ``"encode"``: replace each by the code of its value among its categories (0, 1, ...; float64, NaN
          for missing values). The categories are the declared ones of a ``category`` column, and otherwise
          the sorted distinct values (computed for dask DataFrames, see Notes);
        - a dict ``{column: categories}``: encode these columns with these categories (for instance those of
          the training set, from ``origin.categories``); other non-numeric columns raise as with ``"error"``,
          and a value outside the given categories raises ``ValueError`` when its block is computed.
    chunks : int, default=None
        Rows per block. ``None``: for pandas, blocks of about dask's ``array.chunk-size``; for dask, one block
        per partition.
    allow_nan : bool, default=False
        Whether missing values (NaN) may stay in ``X``, for estimators that handle them (scikit-learn's
        ``allow_nan`` tag, e.g. HistGradientBoosting models in a shard ensemble). Infinity is always refused.
    drop_missing_target : bool, default=False
        Leave out the rows whose target is missing (NaN, None, an empty field), counted in the origin's
        ``n_dropped``. Without it such rows are refused by the validation.
    unknown_code : float, default=None
        With ``categorical`` a dict: the code given to values outside the given categories (e.g. ``-1``,
        which :class:`~sklearn.ensemble.HistGradientBoostingClassifier` treats as missing). ``None`` raises
        for them.
    return_origin : bool, default=False
        Also return a :class:`FrameOrigin` holding the feature names, the categories used and the number of
        rows dropped.

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        Lazy, float32 or float64, one column chunk, known row chunks.
    y : dask.array.Array of shape (n_samples,)
        Lazy, with the row chunks of ``X``; only when ``target`` is given.
    origin : FrameOrigin
        Only when ``return_origin`` is true.

    Raises
    ------
    TypeError
        If ``df`` is not a DataFrame, if a feature column is non-numeric and not encoded, or has a type that
        cannot be encoded (dates, intervals).
    ValueError
        If ``target`` or a feature column does not exist (the message lists the available ones), or
        ``categorical`` is not understood.

    See Also
    --------
    read_csv, read_parquet : Read a file into a dask DataFrame and call this function.

    Notes
    -----
    For a dask DataFrame, one ``dask.compute`` call gets the partition lengths (one integer per partition, so
    that ``X`` and ``y`` have known chunk sizes) and, with ``categorical="encode"``, the distinct values of
    each encoded column whose categories are not known (a pass over those columns; the result is one small
    array per column). Nothing is computed for a pandas DataFrame. Missing values in feature columns become
    NaN, which the validation reports unless ``allow_nan=True``: impute them
    (:class:`daskml_lab.preprocessing.SimpleImputer`) or drop them first, or keep them for an estimator that
    handles them.

    Examples
    --------
    >>> import pandas as pd
    >>> from daskml_lab.data import from_dataframe
    >>> df = pd.DataFrame({"size": [1.0, 2.0, 3.0], "color": ["red", "blue", "red"], "label": [0, 1, 0]})
    >>> X, y = from_dataframe(df, "label", categorical="encode")
    >>> X.compute()
    array([[1., 1.],
           [2., 0.],
           [3., 1.]])
    >>> y.compute()
    array([0, 1, 0])
    """
    is_dask = is_dask_dataframe(df)
    if not (is_dask or isinstance(df, pd.DataFrame)) or getattr(df, "ndim", 0) != 2:
        got = f"{type(df).__module__}.{type(df).__qualname__}"
        msg = f"df must be a pandas or dask DataFrame; got {got}. Use df.to_frame() for a Series."
        raise TypeError(msg)
    feature_cols = _check_columns(df, target, features)
    modes, explicit = _categorical_modes(categorical)
    encode = _columns_to_encode(df, feature_cols, modes, explicit)

    categories = {col: _as_categories(col, explicit[col]) for col in encode if col in explicit}
    for col in encode:
        dtype = df[col].dtype
        # A category column brings its categories (unless a dask one has not computed them yet).
        if col not in categories and isinstance(dtype, pd.CategoricalDtype):
            if not is_dask or df[col].cat.known:
                categories[col] = np.asarray(dtype.categories, dtype=object)
    to_find = [col for col in encode if col not in categories]
    drop = drop_missing_target and target is not None
    n_dropped = 0
    kind: Kind
    if is_dask:
        X_in, y_in, found, n_dropped = _frame_blocks(
            df, target, feature_cols, encode, categories, to_find, drop=drop, unknown_code=unknown_code
        )
        categories.update(found)
        if chunks is not None:
            X_in = X_in.rechunk({0: chunks})
            y_in = None if y_in is None else y_in.rechunk({0: chunks})
        kind, index = "dask-dataframe", None
    else:
        if drop:
            kept = _kept_rows(df, target)
            n_dropped = len(df) - len(kept)
            df = kept
        categories.update({c: _sorted_categories(df[c].dropna()) for c in to_find})
        X_in = _numeric_frame(df[feature_cols], encode, categories, unknown_code)
        y_in = None if target is None else _target_column(df[target])
        kind, index = "pandas", df.index
    if y_in is None:
        X, _ = check_array(X_in, chunks=chunks, allow_nan=allow_nan)
        data: tuple[Any, ...] = (X,)
    else:
        validated = check_X_y(X_in, y_in, chunks=chunks, allow_nan=allow_nan)
        data = (validated.X, validated.y)
    names = np.asarray(feature_cols, dtype=object)
    origin = FrameOrigin(
        kind, feature_names=names, index=index, categories=categories or None, n_dropped=n_dropped
    )
    return _result(data, origin, return_origin)


def _check_columns(df: Any, target: Hashable | None, features: Sequence[Hashable] | None) -> list[Hashable]:
    columns = list(df.columns)
    if target is not None and (not isinstance(target, Hashable) or target not in columns):
        msg = f"Target column {target!r} not found in the DataFrame. Available columns: {_preview(columns)}."
        raise ValueError(msg)
    if features is None:
        return [c for c in columns if c != target]
    features = [features] if isinstance(features, str) else list(features)
    missing = [c for c in features if c not in columns]
    if missing:
        msg = (
            f"Feature column(s) {missing} not found in the DataFrame. Available columns: {_preview(columns)}."
        )
        raise ValueError(msg)
    if target is not None and target in features:
        msg = f"The target column {target!r} is also listed in features={features}; leave it out."
        raise ValueError(msg)
    if len(set(features)) != len(features):
        msg = f"features={features} lists a column more than once; list each column once."
        raise ValueError(msg)
    return features


def _preview(items: Sequence[Any], limit: int = 40) -> str:
    """``repr`` of a list, shortened to its first ``limit`` items."""
    items = list(items)
    if len(items) <= limit:
        return repr(items)
    return f"{items[:limit]!r} and {len(items) - limit} more"


def _categorical_modes(categorical: Any) -> tuple[str, Mapping[Hashable, Any]]:
    if isinstance(categorical, Mapping):
        return "explicit", categorical
    if isinstance(categorical, str) and categorical in _CATEGORICAL_MODES:
        return categorical, {}
    msg = (
        "categorical must be 'error', 'encode' or a dict mapping columns to their categories; got "
        f"{categorical!r}."
    )
    raise ValueError(msg)


def _kind_of(dtype: Any) -> str:
    """``"numeric"``, ``"categorical"`` (text, objects, categories) or ``"other"`` (dates, intervals...)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "categorical"
    return "other"


def _columns_to_encode(
    df: Any, feature_cols: list[Hashable], mode: str, explicit: Mapping[Hashable, Any]
) -> list[Hashable]:
    """Columns to ordinal-encode; raise for columns that may not be encoded and are not numeric."""
    unknown = [c for c in explicit if c not in feature_cols]
    if unknown:
        msg = f"categorical names column(s) {unknown} that are not feature columns {feature_cols}."
        raise ValueError(msg)
    kinds = {c: _kind_of(df[c].dtype) for c in feature_cols}
    other = [f"{c} ({df[c].dtype})" for c in feature_cols if kinds[c] == "other"]
    if other:
        msg = (
            f"Feature column(s) {other} are neither numeric nor categorical. Convert them to numbers first "
            "(for dates, e.g. df[col].dt.year or an elapsed time in seconds), or leave them out with "
            "features=[...]."
        )
        raise TypeError(msg)
    categorical = [c for c in feature_cols if kinds[c] == "categorical"]
    if mode == "encode":
        encode = categorical
    else:
        encode = [c for c in feature_cols if c in explicit]
        refused = [c for c in categorical if c not in explicit]
        if refused:
            described = ", ".join(f"{c!r} ({df[c].dtype})" for c in refused)
            msg = (
                f"X must be numeric, but the feature column(s) {described} are not. Pass "
                "categorical='encode' to ordinal-encode them, encode them yourself (e.g. "
                "sklearn.preprocessing.OrdinalEncoder or pandas.get_dummies), or leave them out with "
                "features=[...]."
            )
            raise TypeError(msg)
    return encode


def _as_categories(column: Hashable, values: Any) -> np.ndarray:
    categories = np.asarray(list(values), dtype=object)
    if categories.ndim != 1 or len(pd.unique(categories)) != len(categories):
        msg = f"The categories given for column {column!r} must be a list of distinct values; got {values!r}."
        raise ValueError(msg)
    return categories


def _sorted_categories(values: Any) -> np.ndarray:
    values = list(pd.unique(np.asarray(values, dtype=object)))
    try:
        values = sorted(values)
    except TypeError:  # mixed types: order by type name, then text
        values = sorted(values, key=lambda v: (type(v).__name__, str(v)))
    return np.asarray(values, dtype=object)


def _frame_blocks(
    df: Any,
    target: Hashable | None,
    feature_cols: list[Hashable],
    encode: list[Hashable],
    categories: Mapping[Hashable, np.ndarray],
    to_find: list[Hashable],
    *,
    drop: bool = False,
    unknown_code: float | None = None,
) -> tuple[da.Array, da.Array | None, dict[Hashable, np.ndarray], int]:
    """X and y of a dask DataFrame as dask arrays of known row chunks, the categories that were found, and the
    number of rows dropped for a missing target (``drop``; each block function leaves them out alike).

    The blocks, their lengths and the distinct values are all cut from the same delayed partitions: dask may
    merge the partitions of a frame differently for different column projections (parquet), so deriving X, y
    and the lengths as separate frames could pair rows wrongly.
    """
    columns = feature_cols + ([] if target is None else [target])
    parts = df[columns].to_delayed()
    token = dask.base.tokenize(df, columns, categories, drop, unknown_code)
    dropped_by = target if drop else None
    counts = [
        dask.delayed(_describe_partition_block, pure=True)(
            part, to_find, dropped_by, dask_key_name=(f"daskml-frame-lengths-{token}", i)
        )
        for i, part in enumerate(parts)
    ]
    logger.info(
        "Computing the lengths of %d partitions%s",
        len(parts),
        f" and the categories of {len(to_find)} column(s)" if to_find else "",
    )
    # compute: one integer per partition (the row chunks of X and y) and the distinct values of each column to
    # encode (a small array per column and partition), from one pass over the partitions.
    with unique_fused_keys():
        described = watched_compute(*counts, what="the partition lengths")
    lengths = tuple(n for n, _, _ in described)
    n_dropped = sum(d for _, _, d in described)
    found = {
        col: _sorted_categories(np.concatenate([distinct[col] for _, distinct, _ in described]))
        for col in to_find
    }
    categories = {**categories, **found}
    meta = df._meta
    X_dtype = _numeric_frame(meta[feature_cols], encode, categories).dtypes
    X_dtype = np.dtype(X_dtype.iloc[0]) if len(X_dtype) else np.dtype(np.float64)
    X_blocks = [
        da.from_delayed(
            dask.delayed(_table_block, pure=True)(
                part,
                feature_cols,
                encode,
                categories,
                X_dtype,
                dropped_by,
                unknown_code,
                dask_key_name=(f"daskml-frame-X-{token}", i),
            ),
            shape=(n, len(feature_cols)),
            dtype=X_dtype,
        )
        for i, (part, n) in enumerate(zip(parts, lengths, strict=True))
    ]
    X = da.concatenate(X_blocks) if X_blocks else da.empty((0, len(feature_cols)), dtype=X_dtype)
    y = None
    if target is not None:
        y_dtype = _target_column(meta[target]).dtype
        y_blocks = [
            da.from_delayed(
                dask.delayed(_target_block, pure=True)(
                    part, target, drop, dask_key_name=(f"daskml-frame-y-{token}", i)
                ),
                shape=(n,),
                dtype=y_dtype,
            )
            for i, (part, n) in enumerate(zip(parts, lengths, strict=True))
        ]
        y = da.concatenate(y_blocks) if y_blocks else da.empty((0,), dtype=y_dtype)
    return X, y, found, n_dropped


def _numeric_frame(
    table: pd.DataFrame,
    encode: list[Hashable],
    categories: Mapping[Hashable, np.ndarray],
    unknown_code: float | None = None,
) -> pd.DataFrame:
    """The columns as one numeric dtype: codes for encoded columns, floats for nullable ones."""
    converted = {}
    for col in table.columns:
        series = table[col]
        if col in encode:
            converted[col] = _encode_column_block(series, categories[col], col, unknown_code)
        elif not isinstance(series.dtype, np.dtype):
            converted[col] = series.astype("float64")  # nullable Int64/Float64/boolean: missing -> NaN
    if converted:
        table = table.copy()
        for col, values in converted.items():
            table[col] = values
    dtypes = [np.dtype(dt) for dt in table.dtypes]
    common = np.result_type(*dtypes) if dtypes else np.dtype(np.float64)
    if common.kind != "f":
        common = np.dtype(np.float64)
    if any(dt != common for dt in dtypes):
        # One dtype for all columns, so that to_numpy gives no object array.
        table = table.astype(common)
    return table


def _kept_rows(frame: pd.DataFrame, target: Hashable | None) -> pd.DataFrame:
    """The rows of ``frame`` whose ``target`` is present (all rows when ``target`` is None)."""
    return frame if target is None else frame[frame[target].notna()]


def _describe_partition_block(
    frame: pd.DataFrame, columns: list[Hashable], dropped_by: Hashable | None = None
) -> tuple[int, dict[Hashable, Any], int]:
    """Number of rows of a partition, the distinct non-missing values of some of its columns, and the number
    of rows left out for a missing ``dropped_by`` value."""
    kept = _kept_rows(frame, dropped_by)
    distinct = {col: pd.unique(kept[col].dropna().astype(object)) for col in columns}
    return len(kept), distinct, len(frame) - len(kept)


def _table_block(
    frame: pd.DataFrame,
    feature_cols: list[Hashable],
    encode: list[Hashable],
    categories: Mapping[Hashable, np.ndarray],
    dtype: np.dtype,
    dropped_by: Hashable | None = None,
    unknown_code: float | None = None,
) -> np.ndarray:
    """The numeric feature matrix of one partition, in the dtype declared from the frame's metadata."""
    kept = _kept_rows(frame, dropped_by)
    return _numeric_frame(kept[feature_cols], encode, categories, unknown_code).to_numpy(dtype=dtype)


def _target_block(frame: pd.DataFrame, target: Hashable, drop: bool = False) -> np.ndarray:
    """The target column of one partition as a numpy array (labels as objects)."""
    column = frame[target]
    if drop:
        column = column[column.notna()]
    return _target_column(column).to_numpy()


def _target_column(series: Any) -> Any:
    """The target as a numpy-typed column: labels as objects, nullable numbers as float."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        return series
    if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        return series.astype("float64")
    return series.astype(object)


def _encode_column_block(
    series: pd.Series, categories: np.ndarray, column: Hashable, unknown_code: float | None = None
) -> pd.Series:
    """Codes of ``series`` among ``categories`` as float64; NaN for missing values.

    Values that are not among the categories get ``unknown_code``, or raise ``ValueError`` when it is None.
    """
    codes = pd.Index(categories).get_indexer(series.astype(object)).astype(np.float64)
    missing = series.isna().to_numpy()
    unknown = (codes < 0) & ~missing
    if unknown.any() and unknown_code is not None:
        codes[unknown] = unknown_code
    elif unknown.any():
        values = pd.unique(series[unknown].astype(object))[:5].tolist()
        msg = (
            f"Column {column!r} has value(s) {values} that are not among its categories "
            f"{categories.tolist()[:20]}. Pass categorical={{{column!r}: [...]}} listing every value, or "
            "filter those rows out."
        )
        raise ValueError(msg)
    codes[missing] = np.nan
    return pd.Series(codes, index=series.index, name=series.name)


def _result(data: tuple[Any, ...], origin: InputOrigin, return_origin: bool) -> Any:
    if return_origin:
        return (*data, origin)
    return data[0] if len(data) == 1 else data
