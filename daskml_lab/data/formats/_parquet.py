"""Parquet files and datasets, read with dask and handed to ``from_dataframe``; predictions written as parquet."""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import Any

from daskml_lab.data._frames import from_dataframe
from daskml_lab.data.formats._common import check_exists, prediction_frame, unreadable
from daskml_lab.data.formats._registry import Format
from daskml_lab.exceptions import DaskMLLabDeprecationWarning

__all__ = ["PARQUET", "read_parquet", "write_parquet"]


def read_parquet(
    path: Any,
    target: Hashable | None = None,
    *,
    features: Sequence[Hashable] | None = None,
    categorical: str | Mapping[Hashable, Sequence[Any]] = "error",
    return_origin: bool = False,
    drop_missing_target: bool = False,
    unknown_code: float | None = None,
    allow_nan: bool = False,
    columns: Sequence[Hashable] | None = None,
) -> Any:
    """Read a parquet file or dataset (a directory of parquet files) with dask into ``X`` (and ``y``).

    Parameters
    ----------
    path : str, path-like or list of them
        A parquet file, a directory holding a parquet dataset, or a list of files.
    target : hashable, default=None
        Name of the target column (see :func:`from_dataframe`).
    features : sequence of hashable, default=None
        Feature columns to read, in this order (the target is read as well). ``None``: all but the target.
    categorical : {"error", "encode"} or dict, default="error"
        Non-numeric feature columns: see :func:`from_dataframe`.
    return_origin : bool, default=False
        Also return the :class:`FrameOrigin` (feature names, categories).
    drop_missing_target : bool, default=False
        Leave out rows whose target is missing (see :func:`from_dataframe`).
    unknown_code : float, default=None
        Code of values outside the categories given as ``categorical`` (see :func:`from_dataframe`).
    allow_nan : bool, default=False
        Let missing values stay in ``X``, for estimators that handle them (see :func:`from_dataframe`).
    columns : sequence of hashable, default=None
        Deprecated alias of ``features`` (the keyword of every other reader); it will be removed in 0.3.

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
        If both ``features`` and ``columns`` are given, or as :func:`from_dataframe`.

    Warns
    -----
    DaskMLLabDeprecationWarning
        When ``columns`` is given: pass ``features`` instead.

    Notes
    -----
    One row block per partition (dask's parquet reader decides them, by default one per row group or file).
    The partition lengths are computed (one integer per partition), which reads one column.

    Examples
    --------
    >>> X, y = read_parquet("flights.parquet", "arr_delay", features=["dep_delay"])  # doctest: +SKIP
    """
    import dask.dataframe as dd

    check_exists(path)
    if columns is not None:
        if features is not None:
            msg = "read_parquet got both features= and its deprecated alias columns=; pass features= only."
            raise TypeError(msg)
        warnings.warn(
            "read_parquet(columns=...) is deprecated and will be removed in 0.3; pass features=... instead, the "
            "keyword of every reader.",
            DaskMLLabDeprecationWarning,
            stacklevel=2,
        )
        features = columns
    read_columns = None
    if features is not None:
        features = [features] if isinstance(features, str) else list(features)
        read_columns = features + ([target] if target is not None and target not in features else [])
    try:
        df = dd.read_parquet(path, columns=read_columns)
    except KeyError as err:
        msg = f"Column(s) {read_columns} were requested from {path!r}, but some are missing ({err})."
        raise ValueError(msg) from err
    except (ValueError, OSError) as err:
        raise unreadable(path, "parquet", err) from err
    _check_parquet_footers(path)
    return from_dataframe(
        df,
        target,
        features=features,
        categorical=categorical,
        drop_missing_target=drop_missing_target,
        unknown_code=unknown_code,
        allow_nan=allow_nan,
        return_origin=return_origin,
    )


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


# ---------------------------------------------------------------------------------------------------------
# predictions


def write_parquet(dataset: Any, path: str, *, tabular: bool, label_width: int) -> None:
    """Write a Dataset of per-sample outputs as a parquet dataset, from the workers.

    A table's outputs become the columns of :func:`prediction_frame`; outputs on the
    coordinates of an xarray input become one row per sample with its coordinates as columns.
    ``label_width`` is not needed: parquet stores text of any length.
    """
    frame = prediction_frame(dataset) if tabular else dataset.to_dask_dataframe()
    # compute: each worker writes its partitions; only file metadata reach the client
    frame.to_parquet(path, write_index=False)


def _is_parquet_dataset(entries: Collection[str]) -> bool:
    return "_metadata" in entries or any(e.endswith((".parquet", ".pq")) for e in entries)


#: The registry entry of parquet files and datasets.
PARQUET = Format(
    name="parquet",
    description="parquet",
    suffixes=(".parquet", ".pq"),
    reader=read_parquet,
    features="column names (only those columns and the target are read)",
    table=True,
    is_directory=_is_parquet_dataset,
    directory="a parquet dataset (*.parquet files)",
    writer=write_parquet,
)
