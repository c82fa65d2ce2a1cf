"""Read tables, xarray objects and files of every supported format into validated row blocks.

Every public function here ends in :func:`daskml_lab.data.check_X_y` (or :func:`~daskml_lab.data.check_array`
without a target), so what it returns satisfies the data contract: ``X`` is a 2-D dask array chunked by rows
only (one column chunk), with known chunk sizes and a float dtype; ``y`` is a 1-D dask array with the same
row chunks.

Nothing here brings data to the client. What is computed, and why, is said in each docstring: the partition
lengths of dask DataFrames (one integer per partition), the distinct values of categorical columns that are
encoded (one small list per column), and the number of samples kept per block of an xarray input with masked
samples (one integer per block).
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import lzma
import os
import zlib
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd

from daskml_lab.data._convert import InputOrigin, Kind, is_dask_dataframe
from daskml_lab.data.validation import check_array, check_X_y

__all__ = [
    "FrameOrigin",
    "from_dataframe",
    "from_xarray",
    "read",
    "read_csv",
    "read_netcdf",
    "read_parquet",
    "read_zarr",
]

logger = logging.getLogger(__name__)

_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zip", ".zst")
_SUFFIXES = {
    "zarr": (".zarr",),
    "netcdf": (".nc", ".nc4", ".cdf", ".h5", ".hdf5", ".hdf", ".he5"),
    "parquet": (".parquet", ".pq"),
    "csv": (".csv", ".tsv"),
    "svmlight": (".svm", ".svmlight", ".libsvm"),
}
_CATEGORICAL_MODES = ("error", "encode")


@dataclass(frozen=True)
class FrameOrigin(InputOrigin):
    """The :class:`~daskml_lab.data.InputOrigin` of a table, with the encoding of its categorical columns.

    Attributes
    ----------
    categories : dict of str to ndarray
        For each ordinal-encoded column, its categories: the code of a value is its position in this array.
        Pass the dict back as ``categorical=`` to encode another table (a test set) the same way.
    """

    categories: Mapping[Hashable, np.ndarray] | None = None


# ---------------------------------------------------------------------------------------------------------
# tables


def from_dataframe(
    df: Any,
    target: Hashable | None = None,
    *,
    features: Sequence[Hashable] | None = None,
    categorical: str | Mapping[Hashable, Sequence[Any]] = "error",
    chunks: int | None = None,
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
    return_origin : bool, default=False
        Also return a :class:`FrameOrigin` holding the feature names and the categories used.

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
    NaN, which the validation reports: impute or drop them first.

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
    kind: Kind
    if is_dask:
        X_in, y_in, found = _frame_blocks(df, target, feature_cols, encode, categories, to_find)
        categories.update(found)
        if chunks is not None:
            X_in = X_in.rechunk({0: chunks})
            y_in = None if y_in is None else y_in.rechunk({0: chunks})
        kind, index = "dask-dataframe", None
    else:
        categories.update({c: _sorted_categories(df[c].dropna()) for c in to_find})
        X_in = _numeric_frame(df[feature_cols], encode, categories)
        y_in = None if target is None else _target_column(df[target])
        kind, index = "pandas", df.index
    if y_in is None:
        X, _ = check_array(X_in, chunks=chunks)
        data: tuple[Any, ...] = (X,)
    else:
        validated = check_X_y(X_in, y_in, chunks=chunks)
        data = (validated.X, validated.y)
    names = np.asarray(feature_cols, dtype=object)
    origin = FrameOrigin(kind, feature_names=names, index=index, categories=categories or None)
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
) -> tuple[da.Array, da.Array | None, dict[Hashable, np.ndarray]]:
    """X and y of a dask DataFrame as dask arrays of known row chunks, and the categories that were found.

    The blocks, their lengths and the distinct values are all cut from the same delayed partitions: dask may
    merge the partitions of a frame differently for different column projections (parquet), so deriving X, y
    and the lengths as separate frames could pair rows wrongly.
    """
    columns = feature_cols + ([] if target is None else [target])
    parts = df[columns].to_delayed()
    token = dask.base.tokenize(df, columns, categories)
    counts = [
        dask.delayed(_describe_partition_block, pure=True)(
            part, to_find, dask_key_name=(f"daskml-frame-lengths-{token}", i)
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
    described = dask.compute(*counts)
    lengths = tuple(n for n, _ in described)
    found = {
        col: _sorted_categories(np.concatenate([distinct[col] for _, distinct in described]))
        for col in to_find
    }
    categories = {**categories, **found}
    meta = df._meta
    X_dtype = _numeric_frame(meta[feature_cols], encode, categories).dtypes
    X_dtype = np.dtype(X_dtype.iloc[0]) if len(X_dtype) else np.dtype(np.float64)
    X_blocks = [
        da.from_delayed(
            dask.delayed(_table_block, pure=True)(
                part, feature_cols, encode, categories, X_dtype, dask_key_name=(f"daskml-frame-X-{token}", i)
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
                    part, target, dask_key_name=(f"daskml-frame-y-{token}", i)
                ),
                shape=(n,),
                dtype=y_dtype,
            )
            for i, (part, n) in enumerate(zip(parts, lengths, strict=True))
        ]
        y = da.concatenate(y_blocks) if y_blocks else da.empty((0,), dtype=y_dtype)
    return X, y, found


def _numeric_frame(
    table: pd.DataFrame, encode: list[Hashable], categories: Mapping[Hashable, np.ndarray]
) -> pd.DataFrame:
    """The columns as one numeric dtype: codes for encoded columns, floats for nullable ones."""
    converted = {}
    for col in table.columns:
        series = table[col]
        if col in encode:
            converted[col] = _encode_column_block(series, categories[col], col)
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


def _describe_partition_block(
    frame: pd.DataFrame, columns: list[Hashable]
) -> tuple[int, dict[Hashable, Any]]:
    """Number of rows of a partition, and the distinct non-missing values of some of its columns."""
    return len(frame), {col: pd.unique(frame[col].dropna().astype(object)) for col in columns}


def _table_block(
    frame: pd.DataFrame,
    feature_cols: list[Hashable],
    encode: list[Hashable],
    categories: Mapping[Hashable, np.ndarray],
    dtype: np.dtype,
) -> np.ndarray:
    """The numeric feature matrix of one partition, in the dtype declared from the frame's metadata."""
    return _numeric_frame(frame[feature_cols], encode, categories).to_numpy(dtype=dtype)


def _target_block(frame: pd.DataFrame, target: Hashable) -> np.ndarray:
    """The target column of one partition as a numpy array (labels as objects)."""
    return _target_column(frame[target]).to_numpy()


def _target_column(series: Any) -> Any:
    """The target as a numpy-typed column: labels as objects, nullable numbers as float."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        return series
    if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        return series.astype("float64")
    return series.astype(object)


def _encode_column_block(series: pd.Series, categories: np.ndarray, column: Hashable) -> pd.Series:
    """Codes of ``series`` among ``categories`` as float64; NaN for missing values.

    Raises ``ValueError`` for values that are not among the categories.
    """
    codes = pd.Index(categories).get_indexer(series.astype(object)).astype(np.float64)
    missing = series.isna().to_numpy()
    unknown = (codes < 0) & ~missing
    if unknown.any():
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


# ---------------------------------------------------------------------------------------------------------
# xarray


def from_xarray(
    obj: Any,
    target: Any = None,
    *,
    sample_dims: Sequence[Hashable] | None = None,
    feature_dim: Hashable | None = None,
    features: Sequence[Any] | None = None,
    skipna: bool = True,
    chunks: int | None = None,
    return_origin: bool = False,
) -> Any:
    """Turn a DataArray or Dataset into row-chunked ``X`` (and ``y``), one row per sample.

    A *sample* is one position on the sample dimensions (for instance one ``(time, lat, lon)`` pixel); its
    features are the values along the feature dimension of a DataArray (``band``) or the data variables of a
    Dataset. The sample dimensions are stacked into rows in C order (the last one varies fastest).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        The data. Dask-backed objects stay lazy.
    target : str or xarray.DataArray, default=None
        The target: for a Dataset, the name of a variable; for a DataArray, the name of a coordinate over the
        sample dims or of a label along the feature dimension (which is then removed from the features). A
        DataArray on the sample dims (or some of them: it is broadcast) works for both. Its coordinates must
        match those of ``obj``. ``None`` returns ``X`` only.
    sample_dims : sequence of str, default=None
        The dimensions stacked into samples. ``None``: for a DataArray every dimension but ``feature_dim``;
        for a Dataset the dimensions of the feature variables and the target.
    feature_dim : str, default=None
        DataArray only: the dimension holding the features. ``None``: the one dimension not in
        ``sample_dims``, or the last dimension when ``sample_dims`` is not given either. With ``sample_dims``
        covering all dimensions the array is a single feature.
    features : sequence, default=None
        For a Dataset, the variables to use (in this order; default: every data variable but the target); for
        a DataArray, labels (or, without a coordinate, positions) along the feature dimension.
    skipna : bool, default=True
        Drop samples with NaN in any feature or in a float target (land/sea masks, clouds). Results wrapped
        with :func:`daskml_lab.data._convert.wrap_output` and the returned origin put NaN back at those
        samples. ``False`` keeps them, and the validation then reports the NaN when the data are computed.
    chunks : int, default=None
        Rows per block: for numpy-backed objects ``None`` gives blocks of about dask's ``array.chunk-size``;
        dask-backed objects keep the blocks from their chunks unless this is given.
    return_origin : bool, default=False
        Also return the :class:`~daskml_lab.data.InputOrigin` that puts per-sample results back on the
        coordinates (see Examples).

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        Lazy, float, one column chunk, known row chunks; masked samples left out when ``skipna``.
    y : dask.array.Array of shape (n_samples,)
        Lazy, with the row chunks of ``X``; only when ``target`` is given.
    origin : InputOrigin
        ``kind="xarray"``; only when ``return_origin`` is true.

    Raises
    ------
    TypeError
        If ``obj`` is not an xarray object, or a feature variable is not numeric.
    ValueError
        If a dimension, variable, feature or the target does not exist (the message lists what does), the
        dimensions are ambiguous, the target's coordinates differ from the features', or every sample is
        masked.

    See Also
    --------
    read_netcdf, read_zarr : Open a file with xarray and call this function.

    Notes
    -----
    With ``skipna`` and float data, the number of samples kept in each row block is computed (one integer per
    block) so that the chunk sizes of the result are known; the kept rows themselves stay lazy. Nothing else
    is computed.

    To predict on the whole grid, pass the DataArray (or the Dataset of feature variables) to ``predict``:
    estimators validate it with ``check_array`` whose default layout is *last dimension = features*, fill the
    samples that have NaN, predict, and return a DataArray on the original coordinates with NaN there.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from daskml_lab.data import from_xarray
    >>> from daskml_lab.data._convert import wrap_output
    >>> ds = xr.Dataset(
    ...     {"red": (("y", "x"), [[0.1, np.nan], [0.3, 0.4]]), "nir": (("y", "x"), [[0.5, 0.6], [0.7, 0.8]]),
    ...      "crop": (("y", "x"), [[1, 0], [1, 0]])},
    ...     coords={"y": [10, 20], "x": [1, 2]},
    ... )
    >>> X, y, origin = from_xarray(ds, "crop", return_origin=True)
    >>> X.shape, y.compute().tolist()
    ((3, 2), [1, 1, 0])
    >>> back = wrap_output(X[:, 0] * 10, origin, name="red10")
    >>> back.dims, back.values.tolist()
    (('y', 'x'), [[1.0, nan], [3.0, 4.0]])
    """
    from daskml_lab.data._xarray import prepare_training

    if not isinstance(skipna, bool | np.bool_):
        msg = f"skipna must be True or False; got {skipna!r}."
        raise TypeError(msg)
    X, y, origin = prepare_training(
        obj,
        target,
        sample_dims=sample_dims,
        feature_dim=feature_dim,
        features=features,
        skipna=skipna,
        chunks=chunks,
    )
    if y is None:
        X, _ = check_array(X)
        return _result((X,), origin, return_origin)
    validated = check_X_y(X, y)
    return _result((validated.X, validated.y), origin, return_origin)


# ---------------------------------------------------------------------------------------------------------
# files


def read_csv(
    path: Any,
    target: Hashable | None = None,
    *,
    features: Sequence[Hashable] | None = None,
    categorical: str | Mapping[Hashable, Sequence[Any]] = "error",
    return_origin: bool = False,
    **dd_read_csv_options: Any,
) -> Any:
    """Read delimited text files (CSV, TSV, compressed or not) with dask into ``X`` (and ``y``).

    Parameters
    ----------
    path : str, path-like or list of them
        A file, a glob pattern (``"data/part-*.csv"``) or a list of files; any URL dask understands.
    target : hashable, default=None
        Name of the target column (see :func:`from_dataframe`).
    features : sequence of hashable, default=None
        Feature columns (see :func:`from_dataframe`).
    categorical : {"error", "encode"} or dict, default="error"
        Non-numeric feature columns: see :func:`from_dataframe`.
    return_origin : bool, default=False
        Also return the :class:`FrameOrigin` (feature names, categories).
    **dd_read_csv_options
        Passed to :func:`dask.dataframe.read_csv` (and on to :func:`pandas.read_csv`): ``header``, ``names``,
        ``na_values``, ``dtype``, ``blocksize``... ``sep`` defaults to a tab for ``.tsv`` files.

    Returns
    -------
    X, y[, origin]
        As :func:`from_dataframe`.

    Raises
    ------
    FileNotFoundError
        If the file (or every file of the pattern) does not exist.
    ValueError
        If the file cannot be parsed (the parser's error is chained), or as :func:`from_dataframe`.
    TypeError
        As :func:`from_dataframe`.

    Notes
    -----
    Uncompressed files are split into partitions of ``blocksize`` bytes. A compressed file (``.gz``, ``.bz2``,
    ``.xz``, ``.zip``, ``.zst``) cannot be split at byte offsets, so it becomes **one partition per file**
    (this function passes ``blocksize=None``, as dask requires): one row block, read by one worker. For large
    data, convert once to parquet (``dd.read_csv(...).to_parquet(...)``) and use :func:`read_parquet`.

    The partition lengths are computed (one integer per partition), which parses the files once; reading them
    for training parses them again. Persist ``X`` and ``y`` if they fit in the cluster's memory.

    Examples
    --------
    >>> X, y = read_csv("magic.tsv.gz", target="target")  # doctest: +SKIP
    """
    import dask.dataframe as dd

    _check_exists(path)
    first = _first_path(path)
    options = dict(dd_read_csv_options)
    if _strip_compression(first).endswith(".tsv") and "sep" not in options and "delimiter" not in options:
        options["sep"] = "\t"
    if first.endswith(_COMPRESSIONS) and "blocksize" not in options:
        options["blocksize"] = None  # compressed files cannot be split by byte ranges
    try:
        df = dd.read_csv(path, **options)
    except (ValueError, OSError, EOFError, zlib.error, lzma.LZMAError) as err:
        raise _unreadable(path, "a delimited text (CSV/TSV) file", err) from err
    return from_dataframe(df, target, features=features, categorical=categorical, return_origin=return_origin)


def read_parquet(
    path: Any,
    target: Hashable | None = None,
    *,
    columns: Sequence[Hashable] | None = None,
    categorical: str | Mapping[Hashable, Sequence[Any]] = "error",
    return_origin: bool = False,
) -> Any:
    """Read a parquet file or dataset (a directory of parquet files) with dask into ``X`` (and ``y``).

    Parameters
    ----------
    path : str, path-like or list of them
        A parquet file, a directory holding a parquet dataset, or a list of files.
    target : hashable, default=None
        Name of the target column (see :func:`from_dataframe`).
    columns : sequence of hashable, default=None
        Feature columns to read, in this order (the target is read as well). ``None``: all but the target.
    categorical : {"error", "encode"} or dict, default="error"
        Non-numeric feature columns: see :func:`from_dataframe`.
    return_origin : bool, default=False
        Also return the :class:`FrameOrigin` (feature names, categories).

    Returns
    -------
    X, y[, origin]
        As :func:`from_dataframe`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is not valid parquet (the reader's error is chained), or as :func:`from_dataframe`.
    TypeError
        As :func:`from_dataframe`.

    Notes
    -----
    One row block per partition (dask's parquet reader decides them, by default one per row group or file).
    The partition lengths are computed (one integer per partition), which reads one column.

    Examples
    --------
    >>> X, y = read_parquet("flights.parquet", "arr_delay", columns=["dep_delay"])  # doctest: +SKIP
    """
    import dask.dataframe as dd

    _check_exists(path)
    read_columns = None
    if columns is not None:
        features = [columns] if isinstance(columns, str) else list(columns)
        read_columns = features + ([target] if target is not None and target not in features else [])
    else:
        features = None
    try:
        df = dd.read_parquet(path, columns=read_columns)
    except KeyError as err:
        msg = f"Column(s) {read_columns} were requested from {path!r}, but some are missing ({err})."
        raise ValueError(msg) from err
    except (ValueError, OSError) as err:
        raise _unreadable(path, "parquet", err) from err
    return from_dataframe(df, target, features=features, categorical=categorical, return_origin=return_origin)


def read_zarr(
    store: Any,
    target: Hashable | None = None,
    *,
    component: str | None = None,
    features: Sequence[Any] | None = None,
    chunks: int | None = None,
    sample_dims: Sequence[Hashable] | None = None,
    feature_dim: Hashable | None = None,
    skipna: bool = True,
    return_origin: bool = False,
) -> Any:
    """Read a zarr store into ``X`` (and ``y``), lazily.

    Three layouts are understood:

    - a 2-D **array**: it is ``X`` (no target);
    - a **group with an array** ``"X"`` (2-D) and 1-D arrays: ``target`` names the array holding ``y``;
      ``features`` may pick columns of ``X`` by position;
    - a **group of 1-D arrays**, one per column: ``target`` names one, ``features`` the others (default: every
      1-D array but the target, in the store's order);
    - a store written by **xarray** (arrays carry dimension names): opened with :func:`xarray.open_zarr`
      and handed to :func:`from_xarray`, with ``target``, ``features``, ``sample_dims``, ``feature_dim`` and
      ``skipna``.

    Parameters
    ----------
    store : str, path-like or zarr store
        The store (a ``.zarr`` directory, a URL, or a zarr store object).
    target : str, default=None
        Name of the target array (or variable). ``None`` returns ``X`` only.
    component : str, default=None
        Path of the group or array inside the store.
    features : sequence, default=None
        Columns: positions in ``X``, names of 1-D arrays, or variables of an xarray store.
    chunks : int, default=None
        Rows per block; ``None`` keeps the zarr chunks along rows.
    sample_dims, feature_dim : default=None
        xarray stores only: see :func:`from_xarray`; giving them for another layout raises ``ValueError``.
    skipna : bool, default=True
        xarray stores only: see :func:`from_xarray` (other layouts have no notion of masked samples: NaN
        there is reported by the validation).
    return_origin : bool, default=False
        Also return the :class:`~daskml_lab.data.InputOrigin`.

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        Lazy, one column chunk.
    y : dask.array.Array of shape (n_samples,)
        Lazy, with the row chunks of ``X``; only when ``target`` is given.
    origin : InputOrigin
        Only when ``return_origin`` is true.

    Raises
    ------
    FileNotFoundError
        If a local store does not exist.
    ValueError
        If the store cannot be opened (the error is chained), the layout is not one of the above, or an array
        or column does not exist (the message lists the available ones).

    Notes
    -----
    Only metadata is read up front; with an xarray store and ``skipna``, see :func:`from_xarray` for the
    per-block counts.

    Examples
    --------
    >>> X, y = read_zarr("train.zarr", target="y")  # doctest: +SKIP
    """
    import zarr

    _check_exists(store)
    try:
        node = zarr.open(store, mode="r", path=component)
    except (ValueError, OSError, KeyError, zarr.errors.BaseZarrError) as err:
        if isinstance(err, FileNotFoundError) and not _is_local(store):
            raise
        raise _unreadable(store, "a zarr store", err) from err
    is_group = isinstance(node, zarr.Group)
    arrays = dict(node.arrays()) if isinstance(node, zarr.Group) else {}
    if is_group and any(_dimension_names(a) for a in arrays.values()):
        return _read_xarray_zarr(
            store,
            target,
            component=component,
            features=features,
            chunks=chunks,
            sample_dims=sample_dims,
            feature_dim=feature_dim,
            skipna=skipna,
            return_origin=return_origin,
        )
    if sample_dims is not None or feature_dim is not None:
        msg = (
            f"sample_dims and feature_dim apply to zarr stores written by xarray; {_describe(store)} holds "
            "plain arrays without dimension names. Leave them out."
        )
        raise ValueError(msg)
    if not is_group:
        if target is not None:
            msg = (
                f"{_describe(store)} is a single array, which holds X only, so target={target!r} cannot be "
                "read from it. Store X and y as two arrays of a group and pass the group with target='y'."
            )
            raise ValueError(msg)
        X = _zarr_matrix(node, features, chunks)
        return _validated(X, None, InputOrigin("dask"), return_origin)
    y = None
    if "X" in arrays:
        X = _zarr_matrix(arrays["X"], features, chunks)
        names = None
    else:
        names = (
            [n for n, a in arrays.items() if a.ndim == 1 and n != target]
            if features is None
            else list(features)
        )
        missing = [n for n in names if n not in arrays]
        if missing or not names:
            msg = (
                f"{_describe(store)} has no array 'X' and no 1-D column array(s) {missing or ''}. Available "
                f"arrays: {sorted(arrays)}."
            )
            raise ValueError(msg)
        columns = [da.from_zarr(arrays[n]) for n in names]
        row_chunks = chunks if chunks is not None else columns[0].chunks[0]
        X = da.stack([c.rechunk({0: row_chunks}) for c in columns], axis=1).rechunk({1: -1})
    if target is not None:
        if target not in arrays:
            msg = (
                f"Target array {target!r} not found in {_describe(store)}. Available arrays: "
                f"{sorted(arrays)}."
            )
            raise ValueError(msg)
        y = da.from_zarr(arrays[target])
        if y.ndim == 1 and y.shape[0] == X.shape[0]:
            y = y.rechunk({0: X.chunks[0]})
    names_array = None if names is None else np.asarray(names, dtype=object)
    return _validated(X, y, InputOrigin("dask", feature_names=names_array), return_origin)


def read_netcdf(
    path: Any,
    target: Hashable | None = None,
    *,
    dataset: str | None = None,
    features: Sequence[Any] | None = None,
    sample_dims: Sequence[Hashable] | None = None,
    feature_dim: Hashable | None = None,
    skipna: bool = True,
    chunks: int | None = None,
    return_origin: bool = False,
    **xarray_options: Any,
) -> Any:
    """Read a netCDF4/HDF5 file lazily with xarray into ``X`` (and ``y``).

    The file is opened with ``xarray.open_dataset(path, chunks={}, ...)`` (dask-backed, the file's own chunks)
    and handed to :func:`from_xarray`. Two layouts:

    - netCDF variables, one feature per variable (``dataset=None``), with ``target`` naming a variable;
    - one 2-D dataset of features (``dataset="X"``, or ``"group/X"`` inside a group), first axis samples,
      second features, with ``target`` naming a 1-D dataset of the same group. This also reads plain HDF5
      files written by h5py (their axes get phony dimension names).

    Parameters
    ----------
    path : str or path-like
        The file.
    target : str, default=None
        Name of the target variable (or dataset). ``None`` returns ``X`` only.
    dataset : str, default=None
        Name (path) of a 2-D feature dataset, as described above.
    features, sample_dims, feature_dim, skipna, chunks
        See :func:`from_xarray`.
    return_origin : bool, default=False
        Also return the :class:`~daskml_lab.data.InputOrigin` for putting results back on coordinates.
    **xarray_options
        Passed to :func:`xarray.open_dataset`: ``engine`` (default ``"h5netcdf"`` when h5py is installed,
        otherwise ``"netcdf4"``), ``group``, ``decode_times``, ``phony_dims``...

    Returns
    -------
    X, y[, origin]
        As :func:`from_xarray`.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it cannot be read as netCDF/HDF5 (the error is chained), or as :func:`from_xarray`.
    ImportError
        If no netCDF engine is installed.

    Notes
    -----
    Opening reads metadata only. See :func:`from_xarray` for what ``skipna`` computes.

    Examples
    --------
    >>> X, y = read_netcdf("era5.nc", target="precip", sample_dims=("time", "lat", "lon"))  # doctest: +SKIP
    """
    import xarray as xr

    _check_exists(path)
    options = dict(xarray_options)
    options.setdefault("engine", _netcdf_engine())
    options.setdefault("chunks", {})
    group = options.pop("group", None)
    if dataset is not None and "/" in dataset.strip("/"):
        prefix, dataset = dataset.strip("/").rsplit("/", 1)
        group = prefix if group is None else f"{group.rstrip('/')}/{prefix}"
    if options["engine"] == "h5netcdf" and dataset is not None:
        options.setdefault("phony_dims", "sort")
    try:
        ds = xr.open_dataset(path, group=group, **options)
    except (ValueError, OSError, KeyError) as err:
        raise _unreadable(path, "netCDF/HDF5", err) from err
    if dataset is None:
        return from_xarray(
            ds,
            target,
            sample_dims=sample_dims,
            feature_dim=feature_dim,
            features=features,
            skipna=skipna,
            chunks=chunks,
            return_origin=return_origin,
        )
    if dataset not in ds.variables:
        msg = f"Dataset {dataset!r} not found in {path} (group {group!r}). Available: {list(ds.variables)}."
        raise ValueError(msg)
    X = ds[dataset]
    y = None
    if target is not None:
        if target not in ds.variables:
            msg = f"Target {target!r} not found in {path} (group {group!r}). Available: {list(ds.variables)}."
            raise ValueError(msg)
        y = ds[target]
        if y.ndim == 1 and X.ndim >= 1 and y.dims[0] not in X.dims and y.shape[0] == X.shape[0]:
            # Plain HDF5 axes have phony names, which need not match between datasets: pair them by position.
            y = y.rename({y.dims[0]: X.dims[0]})
    return from_xarray(
        X,
        y,
        sample_dims=sample_dims,
        feature_dim=feature_dim,
        features=features,
        skipna=skipna,
        chunks=chunks,
        return_origin=return_origin,
    )


def read(path: Any, target: Hashable | None = None, *, format: str | None = None, **options: Any) -> Any:  # noqa: A002
    """Read a file or store of any supported format, chosen from its extension (or ``format``).

    ======================================================  ==========================================
    extension                                               reader
    ======================================================  ==========================================
    ``.zarr`` (or a directory holding zarr metadata)        :func:`read_zarr`
    ``.nc``, ``.nc4``, ``.cdf``, ``.h5``, ``.hdf5``, ...    :func:`read_netcdf`
    ``.parquet``, ``.pq`` (or a directory of them)          :func:`read_parquet`
    ``.csv``, ``.tsv``, possibly compressed (``.gz``...)    :func:`read_csv`
    ``.svm``, ``.svmlight``, ``.libsvm``                    :func:`daskml_lab.data.read_svmlight`
    ======================================================  ==========================================

    Parameters
    ----------
    path : str or path-like
        The file, directory or glob pattern.
    target : hashable, default=None
        The target column, variable or array; see the reader. svmlight files always hold labels, so for them
        ``(X, y)`` is returned and ``target`` must be ``None``.
    format : {"zarr", "netcdf", "parquet", "csv", "svmlight"}, default=None
        The format, for files whose extension does not tell it (e.g. ``a9a.gz``, a LIBSVM file). ``None``
        decides from the extension.
    **options
        Passed to the reader.

    Returns
    -------
    X, y[, origin]
        As the reader returns them.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the extension is not supported (the message lists those that are), or the file is corrupt.

    Examples
    --------
    >>> X, y = read("/data/magic.tsv.gz", target="target")  # doctest: +SKIP
    """
    _check_exists(path)
    if format is not None and format not in _SUFFIXES:
        msg = f"Unknown format {format!r}; use one of {sorted(_SUFFIXES)} or None to decide from the extension."
        raise ValueError(msg)
    kind = format or _format_of(path)
    if kind == "zarr":
        return read_zarr(path, target, **options)
    if kind == "netcdf":
        return read_netcdf(path, target, **options)
    if kind == "parquet":
        return read_parquet(path, target, **options)
    if kind == "csv":
        return read_csv(path, target, **options)
    from daskml_lab.data.svmlight import read_svmlight

    if target is not None:
        msg = (
            f"svmlight files hold their labels in the first field of each line, so target={target!r} cannot "
            "be chosen; leave it out: X, y = read(path)."
        )
        raise ValueError(msg)
    return read_svmlight(path, **options)


# ---------------------------------------------------------------------------------------------------------
# file helpers


def _first_path(path: Any) -> str:
    if isinstance(path, list | tuple):
        if not path:
            msg = "path is an empty list; give at least one file."
            raise ValueError(msg)
        path = path[0]
    return os.fspath(path) if isinstance(path, os.PathLike) else str(path)


def _is_local(path: Any) -> bool:
    return isinstance(path, str | os.PathLike) and "://" not in os.fspath(path)


def _check_exists(path: Any) -> None:
    """Raise FileNotFoundError naming local paths (or patterns) that match nothing."""
    paths = path if isinstance(path, list | tuple) else [path]
    for item in paths:
        if not _is_local(item):
            continue
        text = os.fspath(item)
        if any(ch in text for ch in "*?["):
            if not glob.glob(text):
                msg = f"No file matches the pattern {text!r}."
                raise FileNotFoundError(msg)
        elif not os.path.exists(text):
            msg = f"No such file or directory: {text!r}."
            raise FileNotFoundError(msg)


def _strip_compression(name: str) -> str:
    for suffix in _COMPRESSIONS:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _format_of(path: Any) -> str:
    first = _first_path(path).rstrip("/")
    name = _strip_compression(first.lower())
    for kind, suffixes in _SUFFIXES.items():
        if name.endswith(suffixes):
            if kind in ("zarr", "netcdf", "parquet") and name != first.lower():
                break  # compressed binary containers are not a thing: report as unsupported
            return kind
    if _is_local(first) and os.path.isdir(first):
        entries = set(os.listdir(first))
        if entries & {"zarr.json", ".zgroup", ".zarray"}:
            return "zarr"
        if "_metadata" in entries or any(e.endswith((".parquet", ".pq")) for e in entries):
            return "parquet"
        msg = (
            f"The directory {first!r} is neither a zarr store (zarr.json, .zgroup or .zarray) nor a parquet "
            "dataset (*.parquet files); pass one of those, or a file."
        )
        raise ValueError(msg)
    supported = [s for suffixes in _SUFFIXES.values() for s in suffixes]
    msg = (
        f"Cannot tell the format of {first!r} from its extension. Supported: {', '.join(supported)} (CSV/TSV "
        f"also compressed with {', '.join(_COMPRESSIONS)}), a zarr store or a parquet directory. Rename the "
        "file, or call read_csv, read_parquet, read_zarr, read_netcdf or read_svmlight directly."
    )
    raise ValueError(msg)


def _describe(store: Any) -> str:
    return (
        repr(os.fspath(store))
        if isinstance(store, str | os.PathLike)
        else f"the store {type(store).__name__}"
    )


def _unreadable(path: Any, fmt: str, err: BaseException) -> ValueError:
    return ValueError(
        f"Could not read {_describe(path) if not isinstance(path, list) else path} as {fmt}: "
        f"{type(err).__name__}: {err}. The file may be truncated, corrupt or of another format; check it, or "
        "call the reader for its actual format."
    )


def _netcdf_engine() -> str:
    if importlib.util.find_spec("h5py") is not None and importlib.util.find_spec("h5netcdf") is not None:
        return "h5netcdf"
    if importlib.util.find_spec("netCDF4") is not None:
        return "netcdf4"
    msg = "Reading netCDF/HDF5 needs h5netcdf with h5py, or netCDF4: pip install h5netcdf h5py."
    raise ImportError(msg)


def _dimension_names(array: Any) -> Any:
    """Dimension names of a zarr array written by xarray (v3 metadata, or v2 ``_ARRAY_DIMENSIONS``)."""
    names = getattr(array.metadata, "dimension_names", None)
    return names or array.attrs.get("_ARRAY_DIMENSIONS")


def _zarr_matrix(array: Any, features: Sequence[Any] | None, chunks: int | None) -> da.Array:
    X = da.from_zarr(array)
    if X.ndim != 2:
        msg = f"The zarr array holding X must be 2-D (n_samples, n_features); it has shape {X.shape}."
        raise ValueError(msg)
    if features is not None:
        positions = list(features)
        bad = [
            f for f in positions if not isinstance(f, int | np.integer) or not -X.shape[1] <= f < X.shape[1]
        ]
        if bad:
            msg = f"features picks columns of the zarr array X by position in [0, {X.shape[1]}); got {bad}."
            raise ValueError(msg)
        X = X[:, positions]
    if chunks is not None:
        X = X.rechunk({0: chunks})
    return X.rechunk({1: -1})


def _read_xarray_zarr(
    store: Any, target: Any, *, component: str | None, return_origin: bool, **kwargs: Any
) -> Any:
    import xarray as xr

    try:
        ds = xr.open_zarr(store, group=component, chunks={})
    except (ValueError, OSError, KeyError) as err:
        raise _unreadable(store, "an xarray zarr store", err) from err
    return from_xarray(ds, target, return_origin=return_origin, **kwargs)


def _validated(X: da.Array, y: da.Array | None, origin: InputOrigin, return_origin: bool) -> Any:
    if y is None:
        X, _ = check_array(X)
        return _result((X,), origin, return_origin)
    validated = check_X_y(X, y)
    return _result((validated.X, validated.y), origin, return_origin)
