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
from typing import Any

import dask.array as da
import numpy as np

from daskml_lab.data._convert import InputOrigin
from daskml_lab.data._frames import FrameOrigin, _result, from_dataframe
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
    try:
        return from_dataframe(
            df, target, features=features, categorical=categorical, return_origin=return_origin
        )
    except (ValueError, TypeError) as err:
        # A file with a header and no rows gives text-typed columns: say "no rows", not "not numeric".
        # Only on this error path, a look at the first row (computed: at most one row).
        if "numeric" in str(err) and len(df.head(1, npartitions=-1)) == 0:
            msg = (
                f"{path!s} has a header but no data rows (0 samples). Check the file, or the glob pattern, "
                "points at the data."
            )
            raise ValueError(msg) from err
        raise


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
    _check_parquet_footers(path)
    return from_dataframe(df, target, features=features, categorical=categorical, return_origin=return_origin)


def _check_parquet_footers(path: Any) -> None:
    """Read the footer of every file of a local parquet dataset, so that a damaged file is named now.

    dask reads the footers of some files only; a damaged one would otherwise fail later, in a worker's read
    task, with pyarrow's message and no file name. A footer is a few kilobytes: no data are read.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.path.isdir(path):
        return
    import pyarrow.parquet as pq

    for root, _, names in os.walk(path):
        for name in sorted(names):
            if name.startswith((".", "_")):  # hidden files, _metadata / _common_metadata / _SUCCESS
                continue
            file = os.path.join(root, name)
            try:
                pq.read_metadata(file)
            except (OSError, ValueError) as err:
                msg = (
                    f"The parquet dataset {os.fspath(path)!r} holds a damaged or non-parquet file: {file} "
                    f"({type(err).__name__}: {err}). Remove or rewrite that file."
                )
                raise ValueError(msg) from err


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


def read(path: Any, target: Hashable | None = None, *, format: str | None = None, **options: Any) -> Any:
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
        msg = (
            f"Unknown format {format!r}; use one of {sorted(_SUFFIXES)} or None to decide from the extension."
        )
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
