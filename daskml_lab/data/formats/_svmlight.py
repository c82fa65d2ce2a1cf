"""Read LIBSVM/svmlight text files in parallel into row-chunked dask arrays.

Each file is cut into line-aligned byte ranges with :func:`dask.bytes.read_bytes`, and every range is parsed
on a worker by scikit-learn's own parser (:func:`sklearn.datasets.load_svmlight_file` on an in-memory copy of
the range), so that the result is exactly what scikit-learn reads, only in row blocks. A small first pass over
the ranges returns a few integers per range (rows, lines, bytes and, when needed, the smallest and largest
feature index): that gives known chunk sizes, ``n_features`` and the ``zero_based="auto"`` decision without
bringing any data to the client.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any, cast

import dask
import dask.array as da
import fsspec
import numpy as np
import scipy.sparse as sp
from dask.bytes import read_bytes
from dask.delayed import Delayed, delayed
from fsspec.utils import infer_compression

from daskml_lab._runtime.watched_compute import watched_compute
from daskml_lab.data.formats._common import COMPRESSIONS
from daskml_lab.data.formats._registry import Format
from daskml_lab.data.formats._svmlight_blocks import Located, _parse_block, _scan_block, malformed_message
from daskml_lab.data.validation import check_X_y
from daskml_lab.exceptions import PerformanceWarning
from daskml_lab.monitoring import task_prefix

__all__ = ["SVMLIGHT", "read_svmlight"]

logger = logging.getLogger(__name__)

_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_GLOB_CHARACTERS = ("*", "?", "[")


@dataclass(frozen=True)
class _Source:
    """One input file and the delayed byte ranges it is read in."""

    name: str
    compression: str | None
    blocks: list[Delayed]


# ---------------------------------------------------------------------------------------------------------
# public function


def read_svmlight(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    n_features: int | None = None,
    dtype: Any = np.float64,
    chunks: int | tuple[int, ...] | None = None,
    blocksize: int | str | None = "64MiB",
    zero_based: bool | str = "auto",
    query_id: bool = False,
    dense: bool = False,
    compression: str | None = "infer",
) -> tuple[da.Array, da.Array] | tuple[da.Array, da.Array, da.Array]:
    """Read LIBSVM/svmlight files in parallel into a row-chunked dask array of sparse blocks.

    The counterpart of :func:`sklearn.datasets.load_svmlight_file` for data read by a Dask cluster: the
    options it shares with it keep their names and meanings, and the rows, columns, values and labels are
    exactly those that scikit-learn reads. Uncompressed files are split into line-aligned byte ranges of about
    ``blocksize`` bytes that workers read and parse independently; each range becomes one row block.

    Parameters
    ----------
    path : str, path-like, or list of them
        One file, a glob pattern (``"data/part-*.svm"``), or a list of files and patterns. Rows come in the
        order of the list, and of the sorted matches of each pattern. Any fsspec URL (``s3://...``) works when
        the matching filesystem library is installed.
    n_features : int, default=None
        Number of columns. ``None`` infers it as one more than the largest feature index in all the files
        (after the shift of one-based indices), as scikit-learn does. Give it when several datasets must have
        the same width, or when the last features are rare (a9a: ``n_features=123``).
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        Type of the feature values (the labels are always float64).
    chunks : int, tuple of int or None, default=None
        Rows per block of the result. ``None`` keeps one block per byte range (their row counts vary with the
        line lengths); an int or a tuple of row counts rechunks the parsed blocks lazily.
    blocksize : int, str or None, default="64MiB"
        Size of the byte ranges uncompressed files are cut into (``"1MiB"``, ``2**26``). ``None`` reads each
        file as one block. Compressed files are always one block each (see Notes).
    zero_based : bool or "auto", default="auto"
        Whether the feature indices in the files start at 0 (``True``) or at 1 (``False``; they are shifted to
        start at 0). ``"auto"`` decides from the data as scikit-learn does: the indices are taken as one-based
        when every file has at least one feature entry and none has the index 0.
    query_id : bool, default=False
        Whether to also return the ``qid:`` values of the rows (0 on rows without one).
    dense : bool, default=False
        Whether to return dense numpy blocks instead of ``scipy.sparse.csr_matrix`` blocks.
    compression : str or None, default="infer"
        Compression of the files: ``"infer"`` from the file name extension (``.gz``, ``.bz2``, ``.xz``,
        ...), ``None`` for plain text, or a name known to fsspec (``"gzip"``, ``"bz2"``, ``"xz"``, ...) for
        all files.

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        Lazy, with known row chunks and one column chunk; its blocks are ``scipy.sparse.csr_matrix`` (or
        numpy arrays when ``dense=True``) of ``dtype``. It passed :func:`daskml_lab.data.check_X_y`, so NaN or
        infinite values raise when the blocks are computed.
    y : dask.array.Array of shape (n_samples,)
        Lazy float64 labels with the row chunks of ``X``.
    qid : dask.array.Array of shape (n_samples,)
        Only when ``query_id=True``: lazy int64 query ids with the row chunks of ``X``.

    Raises
    ------
    FileNotFoundError
        If a file does not exist or a pattern matches no file.
    TypeError
        If ``path``, ``n_features`` or ``dtype`` have the wrong type.
    ValueError
        If an option has a bad value; if a line is malformed (the message names the file, the line number
        and the byte offset of the line in the uncompressed text); if a feature index does not fit
        ``n_features``; or if the files hold no data rows. Malformed lines and too-large indices are found by
        the first pass, except when both ``n_features`` and a boolean ``zero_based`` are given: the first
        pass then only counts rows, and these errors are raised when the blocks are computed.

    Warns
    -----
    PerformanceWarning
        When a compressed file is larger than ``blocksize``: it is read by one task as one block.

    See Also
    --------
    sklearn.datasets.load_svmlight_file : The single-process reader whose results this function reproduces.
    sklearn.datasets.dump_svmlight_file : Write data in this format.

    Notes
    -----
    **What is computed.** Building the arrays runs one small computation, over all the byte ranges at once
    and on the current scheduler: each task reads its range and returns a handful of integers (rows, lines,
    bytes, and the smallest and largest feature index). No data come to the client, and nothing is persisted:
    the ranges are read and parsed again, lazily, when the blocks of ``X`` and ``y`` are computed. Knowing the
    row count of every block gives the arrays known chunk sizes (blocks without rows are left out), which the
    package's algorithms need to align rows and to shard them.

    How much that first pass costs depends on what it must find out:

    - with ``n_features=None`` or ``zero_based="auto"`` it needs the feature indices, so each task parses its
      range with scikit-learn's parser and keeps only the integers: the data are parsed twice in all;
    - with both ``n_features`` and a boolean ``zero_based`` given, it only counts the data rows with a regular
      expression, several times faster than parsing. Pass both for the fastest read of large data.

    Persisting the parsed blocks in the first pass would save the second parse, but would hold the whole
    dataset in the workers' memory whether or not it is used next, and the synchronous and threaded schedulers
    would hold it in the client process. Reading twice keeps the arrays lazy and their memory bounded.

    **Byte ranges.** A range of an uncompressed file starts after the first newline at or after its start
    offset (except the first, which starts at 0) and ends after the first newline at or after its end offset,
    so every line is read by exactly one task, whatever the ``blocksize``.

    **Compressed files** (gzip, bz2, xz, ...) cannot be split: they are decompressed by one task each and give
    one block each. To read a large compressed file in parallel, decompress it first, or store it as several
    compressed parts matched by a glob.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from daskml_lab.data import read_svmlight
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp, "tiny.svm")
    ...     _ = path.write_text("1 1:0.5 3:2\\n# a comment\\n-1 2:1.5\\n")
    ...     X, y = read_svmlight(path)
    ...     dense = X.compute().toarray()
    ...     labels = y.compute()
    >>> X.shape, X.chunks
    ((2, 3), ((2,), (3,)))
    >>> dense
    array([[0.5, 0. , 2. ],
           [0. , 1.5, 0. ]])
    >>> labels
    array([ 1., -1.])
    """
    dtype = _check_options(n_features, dtype, chunks, blocksize, zero_based, compression)
    sources = _open_sources(path, blocksize, compression)
    index_scan = n_features is None or zero_based == "auto"
    scan_prefix = task_prefix("svmlight scan")
    scans = [
        [
            delayed(_scan_block, pure=True)(
                block,
                index_scan=index_scan,
                zero_based=zero_based is not False,
                dask_key_name=f"{scan_prefix}-{dask.base.tokenize(block.key, index_scan, zero_based)}",
            )
            for block in source.blocks
        ]
        for source in sources
    ]
    # compute: one small dict of integers per byte range (rows, lines, bytes, min/max feature index)
    (stats,) = watched_compute(scans, what="the scan of the svmlight files")
    starts = [_range_starts(file_stats) for file_stats in stats]
    _raise_scan_errors(sources, stats, starts)

    one_based = _decide_one_based(zero_based, stats)
    if n_features is None or zero_based == "auto":
        n_features = _decide_n_features(n_features, one_based, sources, stats, starts)
    n_samples = sum(s["n_rows"] for file_stats in stats for s in file_stats)
    if n_samples == 0:
        names = [source.name for source in sources]
        msg = (
            f"No data rows found in {names}: every line is empty or a comment. Expected lines like "
            "'<label> <index>:<value> ...'; check the path and the file contents."
        )
        raise ValueError(msg)
    logger.debug(
        "svmlight: %d rows, %d features, %d byte ranges in %d file(s) (%s first pass, %s indices)",
        n_samples,
        n_features,
        sum(len(source.blocks) for source in sources),
        len(sources),
        "index" if index_scan else "row-count",
        "one-based" if one_based else "zero-based",
    )

    X, y, qid = _assemble(
        sources,
        stats,
        starts,
        n_features=n_features,
        dtype=dtype,
        zero_based=not one_based,
        query_id=query_id,
        dense=dense,
    )
    if chunks is not None:
        row_chunks = _check_row_chunks(chunks, n_samples)
        X, y = X.rechunk({0: row_chunks}), y.rechunk({0: row_chunks})
        qid = qid.rechunk({0: row_chunks})
    validated = check_X_y(X, y)
    y = cast(da.Array, validated.y)  # check_X_y returns the y it was given, validated
    if query_id:
        return validated.X, y, qid
    return validated.X, y


# ---------------------------------------------------------------------------------------------------------
# options and files


def _check_options(
    n_features: Any, dtype: Any, chunks: Any, blocksize: Any, zero_based: Any, compression: Any
) -> np.dtype:
    """Check the options before anything is read; return the feature dtype."""
    if n_features is not None:
        if not isinstance(n_features, Integral) or isinstance(n_features, bool):
            msg = (
                f"n_features must be a positive int or None, got {n_features!r} of type "
                f"{type(n_features).__name__}."
            )
            raise TypeError(msg)
        if n_features < 1:
            msg = (
                f"n_features must be a positive int or None, got {n_features}. Pass None to infer it from "
                "the data."
            )
            raise ValueError(msg)
    try:
        dtype = np.dtype(dtype)
    except TypeError as err:
        msg = f"dtype must be numpy.float64 or numpy.float32, got {dtype!r}."
        raise TypeError(msg) from err
    if dtype not in _FLOAT_DTYPES:
        msg = (
            f"dtype must be numpy.float64 or numpy.float32, got {dtype}. The package works on floating "
            "features; convert the result with X.astype(...) if you need another type."
        )
        raise ValueError(msg)
    if blocksize is not None:
        if isinstance(blocksize, str):
            try:
                blocksize = dask.utils.parse_bytes(blocksize)
            except ValueError as err:
                msg = _blocksize_message(blocksize)
                raise ValueError(msg) from err
        if not isinstance(blocksize, Integral) or isinstance(blocksize, bool) or blocksize < 1:
            msg = _blocksize_message(blocksize)
            raise ValueError(msg)
    if not (isinstance(zero_based, bool) or (isinstance(zero_based, str) and zero_based == "auto")):
        msg = f"zero_based must be True, False or 'auto', got {zero_based!r}."
        raise ValueError(msg)
    known = [name for name in fsspec.available_compressions() if name is not None]
    if compression is not None and compression != "infer" and compression not in known:
        msg = f"compression must be 'infer', None or one of {known}, got {compression!r}."
        raise ValueError(msg)
    if chunks is not None and not isinstance(chunks, Integral | tuple | list):
        msg = f"chunks must be None, a number of rows per block or a tuple of row counts; got {chunks!r}."
        raise ValueError(msg)
    return dtype


def _blocksize_message(blocksize: Any) -> str:
    return f"blocksize must be a number of bytes such as '64MiB' or 2**26, or None; got {blocksize!r}."


def _check_row_chunks(chunks: int | Sequence[int], n_samples: int) -> int | tuple[int, ...]:
    """Check the requested row chunks against the number of rows found."""
    if isinstance(chunks, Integral):
        if chunks < 1:
            msg = f"chunks must be a positive number of rows per block, got {chunks}."
            raise ValueError(msg)
        return int(chunks)
    row_chunks = tuple(int(c) for c in cast(Sequence[int], chunks))
    if sum(row_chunks) != n_samples or any(c < 0 for c in row_chunks):
        msg = (
            f"chunks={_short(row_chunks)} must be non-negative row counts adding up to the {n_samples} rows "
            f"read, but they add up to {sum(row_chunks)}. Pass an int (rows per block) or None."
        )
        raise ValueError(msg)
    return row_chunks


def _short(values: tuple[int, ...]) -> str:
    if len(values) <= 6:
        return str(values)
    return f"({', '.join(map(str, values[:3]))}, ..., {values[-1]}) in {len(values)} blocks"


def _expand_paths(path: Any) -> list[tuple[str, str]]:
    """Expand files and glob patterns into ``(name shown to the user, URL for fsspec)`` pairs, in order."""
    items = list(path) if isinstance(path, list | tuple) else [path]
    if not items:
        msg = "path is an empty list. Pass a file name, a glob pattern, or a non-empty list of them."
        raise ValueError(msg)
    expanded: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, str | os.PathLike):
            msg = (
                f"path must be a file name, a glob pattern or a list of them (str or os.PathLike), got an "
                f"object of type {type(item).__name__}."
            )
            raise TypeError(msg)
        text = os.fspath(item)
        fs, fs_path = fsspec.core.url_to_fs(text)
        if any(char in fs_path for char in _GLOB_CHARACTERS):
            matches = sorted(m for m in fs.glob(fs_path) if fs.isfile(m))
            if not matches:
                msg = f"No svmlight file matches the pattern {text!r}. Check the directory and the pattern."
                raise FileNotFoundError(msg)
            expanded.extend((match, fs.unstrip_protocol(match)) for match in matches)
        elif fs.isfile(fs_path):
            expanded.append((text, fs.unstrip_protocol(fs_path)))
        else:
            what = "is a directory, not a file" if fs.isdir(fs_path) else "does not exist"
            msg = f"svmlight file {text!r} {what}. Pass an existing file, a glob pattern, or a list of files."
            raise FileNotFoundError(msg)
    return expanded


def _open_sources(path: Any, blocksize: Any, compression: str | None) -> list[_Source]:
    """The files to read and, for each, the delayed line-aligned byte ranges of dask.bytes.read_bytes."""
    sources = []
    for name, url in _expand_paths(path):
        comp = infer_compression(url) if compression == "infer" else compression
        file_blocksize = blocksize
        if comp is not None:
            # A compressed stream cannot be entered in the middle: one task decompresses the whole file.
            file_blocksize = None
            limit = dask.utils.parse_bytes(blocksize) if isinstance(blocksize, str) else blocksize
            fs, fs_path = fsspec.core.url_to_fs(url)
            size = fs.size(fs_path)
            if limit is not None and size is not None and size > limit:
                warnings.warn(
                    f"{name} is {comp}-compressed ({dask.utils.format_bytes(size)}) and cannot be split into "
                    f"byte ranges of {dask.utils.format_bytes(limit)}: one task will read it as one block. "
                    "Decompress it, or store it as several compressed parts, to read it in parallel.",
                    PerformanceWarning,
                    stacklevel=3,
                )
        _, blocks, _ = read_bytes(
            url,
            delimiter=b"\n",
            blocksize=file_blocksize,
            sample=False,
            compression=comp,
            include_path=True,
        )
        sources.append(_Source(name, comp, list(blocks[0])))
    return sources


# ---------------------------------------------------------------------------------------------------------
# first pass: what the integers of the byte ranges decide


def _range_starts(file_stats: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Byte offset and line number (0-based) at which each byte range of one file starts."""
    starts = []
    byte = line = 0
    for stats in file_stats:
        starts.append((byte, line))
        byte += stats["n_bytes"]
        line += stats["n_lines"]
    return starts


def _raise_scan_errors(
    sources: list[_Source], stats: list[list[dict[str, Any]]], starts: list[list[tuple[int, int]]]
) -> None:
    for source, file_stats, file_starts in zip(sources, stats, starts, strict=True):
        for block_stats, (first_byte, first_line) in zip(file_stats, file_starts, strict=True):
            if block_stats["error"] is not None:
                line, byte, text, message = block_stats["error"]
                located = Located(first_line + line, first_byte + byte, text)
                raise ValueError(malformed_message(source.name, located, message, source.compression))


def _decide_one_based(zero_based: bool | str, stats: list[list[dict[str, Any]]]) -> bool:
    """scikit-learn's rule: one-based when asked, or for "auto" when every file has indices and none is 0."""
    if zero_based != "auto":
        return not zero_based
    for file_stats in stats:
        with_indices = [s["min_index"] for s in file_stats if s["n_indices"]]
        if not with_indices or min(with_indices) == 0:
            return False
    return True


def _decide_n_features(
    n_features: int | None,
    one_based: bool,
    sources: list[_Source],
    stats: list[list[dict[str, Any]]],
    starts: list[list[tuple[int, int]]],
) -> int:
    """Infer ``n_features`` from the largest index, or check the given one against it."""
    shift = int(one_based)
    needed, where = 1, None
    for source, file_stats, file_starts in zip(sources, stats, starts, strict=True):
        for block_stats, (first_byte, _) in zip(file_stats, file_starts, strict=True):
            if block_stats["n_indices"] and block_stats["max_index"] - shift + 1 > needed:
                needed = block_stats["max_index"] - shift + 1
                where = (source.name, block_stats["max_index"], first_byte)
    if n_features is None:
        return needed
    if n_features < needed and where is not None:
        name, index, first_byte = where
        msg = (
            f"n_features={n_features} is too small: {name} has the feature index {index} (in the byte range "
            f"starting at byte {first_byte}), so the data need at least {needed} features with "
            f"{'one' if one_based else 'zero'}-based indices. Pass a larger n_features "
            f"(n_features>={needed}), or n_features=None to infer it from the data."
        )
        raise ValueError(msg)
    return n_features


# ---------------------------------------------------------------------------------------------------------
# second pass: the lazy blocks


def _assemble(
    sources: list[_Source],
    stats: list[list[dict[str, Any]]],
    starts: list[list[tuple[int, int]]],
    *,
    n_features: int,
    dtype: np.dtype,
    zero_based: bool,
    query_id: bool,
    dense: bool,
) -> tuple[da.Array, da.Array, da.Array]:
    """Concatenate one lazily parsed block per non-empty byte range into X, y and qid."""
    meta_X = np.empty((0, n_features), dtype=dtype) if dense else sp.csr_matrix((0, n_features), dtype=dtype)
    parse_prefix = task_prefix("svmlight parse")
    parts_X, parts_y, parts_qid = [], [], []
    for source, file_stats, file_starts in zip(sources, stats, starts, strict=True):
        for block, block_stats, (first_byte, first_line) in zip(
            source.blocks, file_stats, file_starts, strict=True
        ):
            n_rows = block_stats["n_rows"]
            if n_rows == 0:
                continue
            token = dask.base.tokenize(block.key, n_features, dtype, zero_based, query_id, dense)
            parsed = delayed(_parse_block, pure=True, nout=3)(
                block,
                n_rows=n_rows,
                n_features=n_features,
                dtype=dtype,
                zero_based=zero_based,
                query_id=query_id,
                dense=dense,
                name=source.name,
                compression=source.compression,
                first_byte=first_byte,
                first_line=first_line,
                dask_key_name=f"{parse_prefix}-{token}",
            )
            block_X, block_y, block_qid = parsed
            parts_X.append(da.from_delayed(block_X, shape=(n_rows, n_features), dtype=dtype, meta=meta_X))
            parts_y.append(da.from_delayed(block_y, shape=(n_rows,), dtype=np.float64, meta=np.empty(0)))
            parts_qid.append(
                da.from_delayed(block_qid, shape=(n_rows,), dtype=np.int64, meta=np.empty(0, dtype=np.int64))
            )
    return da.concatenate(parts_X), da.concatenate(parts_y), da.concatenate(parts_qid)


def _read_labelled(path: Any, target: Any = None, **options: Any) -> Any:
    """:func:`read_svmlight` as the registry calls readers: the labels are in the file, so no ``target``."""
    if target is not None:
        msg = (
            f"svmlight files hold their labels in the first field of each line, so target={target!r} cannot "
            "be chosen; leave it out: X, y = read(path)."
        )
        raise ValueError(msg)
    return read_svmlight(path, **options)


#: The registry entry of LIBSVM/svmlight text files.
SVMLIGHT = Format(
    name="svmlight",
    description="svmlight",
    suffixes=(".svm", ".svmlight", ".libsvm"),
    compressions=COMPRESSIONS,
    reader=_read_labelled,
    features=None,
    labels_in_file=True,
)
