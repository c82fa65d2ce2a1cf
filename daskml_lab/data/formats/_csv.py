"""CSV/TSV files (compressed or not), read with dask into a DataFrame and handed to ``from_dataframe``."""

from __future__ import annotations

import ast
import dataclasses
import lzma
import re
import warnings
import zlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from daskml_lab.data._frames import from_dataframe
from daskml_lab.data.formats._common import (
    COMPRESSIONS,
    check_exists,
    first_path,
    prediction_frame,
    strip_compression,
    unreadable,
)
from daskml_lab.data.formats._registry import Format

__all__ = ["CSV", "read_csv", "write_csv"]

#: Reads again with the column types dask found after its sample (see :func:`_retyped_options`).
MAX_TYPE_RETRIES = 3

#: pandas' message for a line with more fields than the first line (the header, or the first row).
_MORE_FIELDS = re.compile(r"Expected (\d+) fields? in line (\d+), saw (\d+)")


def read_csv(
    path: Any,
    target: Hashable | None = None,
    *,
    features: Sequence[Hashable] | None = None,
    categorical: str | Mapping[Hashable, Sequence[Any]] = "error",
    return_origin: bool = False,
    drop_missing_target: bool = False,
    unknown_code: float | None = None,
    allow_nan: bool = False,
    **dd_read_csv_options: Any,
) -> Any:
    """Read delimited text files (CSV, TSV, compressed or not) with dask into ``X`` (and ``y``).

    Parameters
    ----------
    path : str, path-like or list of them
        A file (``.csv``, ``.tsv``, ``.data``, possibly compressed), a glob pattern (``"data/part-*.csv"``)
        or a list of files; any URL dask understands.
    target : hashable, default=None
        Name of the target column (see :func:`from_dataframe`).
    features : sequence of hashable, default=None
        Feature columns (see :func:`from_dataframe`).
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

    check_exists(path)
    first = first_path(path)
    options = dict(dd_read_csv_options)
    if strip_compression(first).endswith(".tsv") and "sep" not in options and "delimiter" not in options:
        options["sep"] = "\t"
    if first.endswith(COMPRESSIONS) and "blocksize" not in options:
        options["blocksize"] = None  # compressed files cannot be split by byte ranges
    retyped: dict[Hashable, str] = {}
    for _ in range(MAX_TYPE_RETRIES + 1):
        try:
            df = dd.read_csv(path, **options)
        except (ValueError, OSError, EOFError, zlib.error, lzma.LZMAError) as err:
            raise unreadable(path, "a delimited text (CSV/TSV) file", err, _field_count_advice(err)) from err
        try:
            result = from_dataframe(
                df,
                target,
                features=features,
                categorical=categorical,
                drop_missing_target=drop_missing_target,
                unknown_code=unknown_code,
                allow_nan=allow_nan,
                return_origin=return_origin,
            )
        except ValueError as err:
            again = _retyped_options(path, options, err)
            if again is None:
                _raise_if_no_rows(path, df, err)
                raise
            retyped.update({k: v for k, v in again["dtype"].items() if k not in (options.get("dtype") or {})})
            options = again
        except TypeError as err:
            _raise_if_no_rows(path, df, err)
            raise
        else:
            if return_origin and retyped:
                *arrays, origin = result
                return (*arrays, dataclasses.replace(origin, column_types=retyped))
            return result
    msg = f"The column types of {path!s} kept changing after {MAX_TYPE_RETRIES} reads; pass dtype={{...}}."
    raise ValueError(msg)


def _mismatched_dtypes(err: BaseException) -> dict[Hashable, str] | None:
    """The columns, and the types found in them, of dask's "Mismatched dtypes" error; None for another error.

    dask infers the column types from the first ``sample`` bytes of the first file, then refuses a block
    whose columns parse to other types (text below numbers, a missing value in an integer column), naming
    the ``dtype={...}`` that would read them.
    """
    text = str(err)
    if not text.startswith("Mismatched dtypes found"):
        return None
    match = re.search(r"dtype=(\{.*?\})", text, flags=re.DOTALL)
    if match is None:
        return None
    try:
        found = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):
        return None
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        return None
    return found


def _retyped_options(path: Any, options: dict[str, Any], err: BaseException) -> dict[str, Any] | None:
    """``options`` with ``dtype`` set to the types dask found in the columns it mistyped; None when ``err`` is
    not that error, or the caller chose the types of those columns (or of all, ``dtype=`` not a dict)."""
    found = _mismatched_dtypes(err)
    given = options.get("dtype")
    if not found or not isinstance(given, dict | type(None)):
        return None
    given = dict(given or {})
    if any(column in given for column in found):
        return None  # a type the caller chose is kept (and dask's error stands)
    warnings.warn(
        f"Columns {sorted(map(str, found))} of {path!s} hold values of other types than the first rows dask "
        f"read to infer the column types: reading the file again with dtype={found!r} (pass dtype= to "
        "read_csv to choose the types yourself).",
        UserWarning,
        stacklevel=4,
    )
    return {**options, "dtype": {**given, **found}}


def _raise_if_no_rows(path: Any, df: Any, err: BaseException) -> None:
    """A file with a header and no rows gives text-typed columns: say "no rows", not "not numeric"."""
    # Only on this error path, a look at the first row (computed: at most one row).
    if "numeric" in str(err) and len(df.head(1, npartitions=-1)) == 0:
        msg = (
            f"{path!s} has a header but no data rows (0 samples). Check the file, or the glob pattern, "
            "points at the data."
        )
        raise ValueError(msg) from err


def write_csv(dataset: Any, path: str, *, tabular: bool, label_width: int) -> None:
    """Write a Dataset of per-sample outputs as one CSV file (with a header), from the workers' blocks.

    A table's outputs become the columns of :func:`~daskml_lab.data.formats._common.prediction_frame`
    (``row``, ``prediction``, ``proba_<class>``, and the passed-through identifiers first); outputs on the
    coordinates of an xarray input become one row per sample with its coordinates as columns.
    ``label_width`` is not needed: text has any length.
    """
    frame = prediction_frame(dataset) if tabular else dataset.to_dask_dataframe()
    # compute: the blocks are written one after the other into the one file; nothing returns to the client
    frame.to_csv(path, single_file=True, index=False)


def _field_count_advice(err: BaseException) -> str | None:
    """What to do when a line has more fields than the first (None: another error)."""
    match = _MORE_FIELDS.search(str(err))
    if match is None:
        return None
    expected, line, saw = (int(group) for group in match.groups())
    if line == 2:  # the very first line is the odd one: a title or a note above the data (UCI's adult.test)
        return (
            f"The first line has {expected} field(s) and the next {saw}: if the file starts with lines that are "
            "not data (a title, a note), skip them with skiprows=N (read(..., skiprows=N); on the command line "
            "--read-option skiprows=N); if its fields are split by another character, pass sep=..."
        )
    return (
        f"Line {line} has {saw} fields where the first line has {expected}: a field may hold the separator "
        "unquoted, or the line is damaged. Fix or quote it; or drop such lines with on_bad_lines='skip' "
        "(on the command line --read-option on_bad_lines=skip), knowing that they are then left out."
    )


#: The registry entry of delimited text files.
CSV = Format(
    name="csv",
    description="CSV/TSV",
    # .data: the UCI repository's comma-separated files (adult.data, covtype.data), compressed or not.
    suffixes=(".csv", ".tsv", ".data"),
    compressions=COMPRESSIONS,
    reader=read_csv,
    features="column names",
    table=True,
    writer=write_csv,
    output_suffixes=(".csv",),
)
