"""The format registry: what a format is (:class:`Format`), the registered ones, and :func:`read`.

A format is found from a path by its extension (a compressed form too, for text formats), or for a directory
by the names it contains. Registration order is the order in which formats are tried, listed and offered by
the command line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from daskml_lab.data.formats._common import check_exists, first_path, is_local

__all__ = [
    "FORMATS",
    "Format",
    "format_of",
    "get_format",
    "output_format_of",
    "output_formats",
    "read",
    "register_format",
    "unregister_format",
]


@dataclass(frozen=True, kw_only=True)
class Format:
    """A file format that :func:`daskml_lab.data.read` reads, and perhaps writes, as one registry entry.

    Parameters
    ----------
    name : str
        Registry name, given as ``read(path, format=name)`` and ``--input-format name`` on the command line.
    description : str
        Name shown in messages (``"CSV/TSV"``, ``"netCDF/HDF5"``).
    suffixes : tuple of str
        Lower-case extensions with their dot (``(".csv", ".tsv")``); no two formats share one.
    reader : callable
        ``reader(path, target=None, **options)``, returning ``X``, ``(X, y)`` or, with
        ``return_origin=True``, the origin as well. It checks its data with
        :func:`daskml_lab.data.check_X_y` (or :func:`~daskml_lab.data.check_array`) and stays lazy.
    features : str or None
        What the reader's ``features=`` keyword chooses, in words (``"column names"``). ``None`` when the files
        number their features, which then cannot be chosen; such a reader takes ``n_features=`` instead.
    compressions : tuple of str, default=()
        Compression suffixes also accepted after ``suffixes`` (``".gz"``...), for text formats.
    table : bool, default=False
        Whether files hold a table of named columns, whose text columns the reader encodes with
        ``categorical=`` (see :func:`daskml_lab.data.from_dataframe`).
    labels_in_file : bool, default=False
        Whether every file holds its labels in a fixed place: ``target`` is then not chosen, the reader
        always returns ``(X, y)`` and has no ``return_origin``.
    is_directory : callable, default=None
        ``is_directory(entries)``: whether a directory whose file names are ``entries`` is a store of this
        format. ``None``: a directory is recognised by its extension only.
    directory : str, default=""
        What such a directory looks like, for messages (``"a parquet dataset (*.parquet files)"``).
    writer : callable, default=None
        ``writer(dataset, path, *, tabular, label_width)``: writes an :class:`xarray.Dataset` of per-sample
        outputs (a ``prediction`` variable, and ``probability`` over a ``class`` dimension) to ``path`` from
        the workers. ``tabular`` says that its rows are on a ``sample`` dimension (rows of a table) rather
        than on the coordinates of an xarray input; ``label_width`` is the length of the longest text label.
        ``None``: the format is read, never written.
    output_suffixes : tuple of str, default=None
        Extensions of the outputs written (default: ``suffixes``).

    See Also
    --------
    register_format : Add a format to the registry.
    read : Read a file of any registered format.

    Examples
    --------
    >>> from daskml_lab.data.formats import FORMATS
    >>> FORMATS["csv"].suffixes, FORMATS["csv"].table, FORMATS["svmlight"].features is None
    (('.csv', '.tsv', '.data'), True, True)
    """

    name: str
    description: str
    suffixes: tuple[str, ...]
    reader: Callable[..., Any]
    features: str | None
    compressions: tuple[str, ...] = ()
    table: bool = False
    labels_in_file: bool = False
    is_directory: Callable[[Collection[str]], bool] | None = None
    directory: str = ""
    writer: Callable[..., None] | None = None
    output_suffixes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            msg = f"Format name must be a non-empty str; got {self.name!r}."
            raise TypeError(msg)
        for field_name in ("suffixes", "compressions", "output_suffixes"):
            value = getattr(self, field_name)
            if value is None and field_name == "output_suffixes":
                continue
            if not isinstance(value, tuple) or any(
                not isinstance(s, str) or not s.startswith(".") or s != s.lower() for s in value
            ):
                msg = (
                    f"{field_name} of format {self.name!r} must be a tuple of lower-case extensions starting "
                    f"with a dot, such as ('.csv',); got {value!r}."
                )
                raise ValueError(msg)
        for field_name in ("reader", "writer", "is_directory"):
            value = getattr(self, field_name)
            optional = field_name != "reader"
            if not callable(value) and not (optional and value is None):
                msg = f"{field_name} of format {self.name!r} must be callable; got {value!r}."
                raise TypeError(msg)

    @property
    def written_suffixes(self) -> tuple[str, ...]:
        """Extensions of the outputs this format writes (empty without a writer)."""
        if self.writer is None:
            return ()
        return self.suffixes if self.output_suffixes is None else self.output_suffixes


_BY_NAME: dict[str, Format] = {}

#: The registered formats by name, in registration order (read-only; see :func:`register_format`).
FORMATS: Mapping[str, Format] = MappingProxyType(_BY_NAME)


def register_format(fmt: Format) -> None:
    """Add a format to :data:`FORMATS`, so that :func:`read` and the command line use it.

    Parameters
    ----------
    fmt : Format
        The entry. It is tried after the formats registered before it.

    Raises
    ------
    TypeError
        If ``fmt`` is not a :class:`Format`.
    ValueError
        If its name, or one of its suffixes, is already registered (unregister that format first).

    See Also
    --------
    unregister_format : Remove a format.

    Notes
    -----
    The registry belongs to the process: register at import time (as :mod:`daskml_lab.data.formats` does for
    the built-in formats), before building the command line, whose choices are read once.
    """
    if not isinstance(fmt, Format):
        msg = f"register_format takes a daskml_lab.data.formats.Format; got {type(fmt).__name__}."
        raise TypeError(msg)
    if fmt.name in _BY_NAME:
        msg = f"A format named {fmt.name!r} is already registered; unregister_format({fmt.name!r}) first."
        raise ValueError(msg)
    for other in _BY_NAME.values():
        shared = sorted(set(fmt.suffixes) & set(other.suffixes))
        if shared:
            msg = (
                f"The suffix(es) {shared} of format {fmt.name!r} already belong to format {other.name!r}; a "
                "suffix names one format. Pick others, or unregister that format first."
            )
            raise ValueError(msg)
    _BY_NAME[fmt.name] = fmt


def unregister_format(name: str) -> Format:
    """Remove the format ``name`` from :data:`FORMATS` and return its entry.

    Raises
    ------
    ValueError
        If no format has that name.
    """
    fmt = get_format(name)
    del _BY_NAME[fmt.name]
    return fmt


def get_format(name: str) -> Format:
    """The registered format called ``name``.

    Raises
    ------
    ValueError
        If no format has that name (the message lists those that do).

    Examples
    --------
    >>> get_format("netcdf").suffixes[:2]
    ('.nc', '.nc4')
    """
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        msg = f"Unknown format {name!r}; use one of {sorted(_BY_NAME)} or None to decide from the extension."
        raise ValueError(msg) from None


def format_of(path: Any, format: str | None = None) -> Format:
    """The format in which :func:`read` reads ``path``: ``format`` if given, else found from the path.

    The extension decides (a compressed form, such as ``.csv.gz``, counts for formats with
    ``compressions``); a directory without a known extension is recognised by the files it holds.

    Parameters
    ----------
    path : str, path-like or list of them
        A file, directory, glob pattern or URL (for a list, the first item decides).
    format : str, default=None
        A registered format name, which is then returned without looking at the extension.

    Returns
    -------
    Format

    Raises
    ------
    FileNotFoundError
        If a local ``path`` does not exist.
    ValueError
        If ``format`` is not registered, or the format cannot be told (the message lists what can).

    Examples
    --------
    >>> format_of("http://example.org/train.tsv.gz").name
    'csv'
    """
    check_exists(path)
    if format is not None:
        return get_format(format)
    first = first_path(path).rstrip("/")
    name = first.lower()
    for fmt in _BY_NAME.values():
        if name.endswith(fmt.suffixes) or any(
            name.endswith(tuple(s + c for s in fmt.suffixes)) for c in fmt.compressions
        ):
            return fmt
    stores = [fmt for fmt in _BY_NAME.values() if fmt.is_directory is not None]
    if is_local(first) and os.path.isdir(first):
        entries = set(os.listdir(first))
        for fmt in stores:
            if fmt.is_directory(entries):  # type: ignore[misc]
                return fmt
        msg = (
            f"The directory {first!r} is neither {' nor '.join(fmt.directory for fmt in stores)}; pass one of "
            "those, or a file."
        )
        raise ValueError(msg)
    supported = [s for fmt in _BY_NAME.values() for s in fmt.suffixes]
    compressed: dict[tuple[str, ...], list[str]] = {}
    for fmt in _BY_NAME.values():
        if fmt.compressions:
            compressed.setdefault(fmt.compressions, []).append(fmt.description)
    notes = "; ".join(
        f"{' and '.join(descriptions)} also compressed with {', '.join(suffixes)}"
        for suffixes, descriptions in compressed.items()
    )
    directories = " or ".join(fmt.directory for fmt in stores)
    msg = (
        f"Cannot tell the format of {first!r} from its extension. Supported: {', '.join(supported)}"
        f"{f' ({notes})' if notes else ''}{f', or a directory: {directories}' if directories else ''}. Rename "
        f"the file, or name its format: read(path, format=...) with one of {', '.join(_BY_NAME)}."
    )
    raise ValueError(msg)


def output_formats() -> tuple[str, ...]:
    """Names of the formats that have a writer: table formats first, then in registration order.

    Examples
    --------
    >>> output_formats()
    ('parquet', 'csv', 'zarr', 'netcdf')
    """
    writers = [fmt for fmt in _BY_NAME.values() if fmt.writer is not None]
    return tuple(fmt.name for fmt in sorted(writers, key=lambda fmt: not fmt.table))


def output_format_of(path: Any) -> Format:
    """The format in which an output at ``path`` is written, from its extension.

    Raises
    ------
    ValueError
        If no format with a writer has that extension (the message lists those that do).

    Examples
    --------
    >>> output_format_of("predictions.pq").name
    'parquet'
    """
    name = os.path.basename(os.fspath(path).rstrip("/"))
    suffix = os.path.splitext(name)[1].lower()
    writers = [get_format(n) for n in output_formats()]
    for fmt in writers:
        if suffix in fmt.written_suffixes:
            return fmt
    suffixes = [s for fmt in writers for s in fmt.written_suffixes]
    msg = (
        f"Cannot tell the output format from {name!r}: use an extension among {', '.join(suffixes)}, or name "
        f"the format ({' | '.join(fmt.name for fmt in writers)})."
    )
    raise ValueError(msg)


def read(path: Any, target: Hashable | None = None, *, format: str | None = None, **options: Any) -> Any:
    """Read a file or store of any registered format, chosen from its extension (or ``format``).

    ======================================================  ==========================================
    extension                                               reader
    ======================================================  ==========================================
    ``.zarr`` (or a directory holding zarr metadata)        :func:`~daskml_lab.data.read_zarr`
    ``.nc``, ``.nc4``, ``.cdf``, ``.h5``, ``.hdf5``, ...    :func:`~daskml_lab.data.read_netcdf`
    ``.parquet``, ``.pq`` (or a directory of them)          :func:`~daskml_lab.data.read_parquet`
    ``.csv``, ``.tsv``, possibly compressed (``.gz``...)    :func:`~daskml_lab.data.read_csv`
    ``.svm``, ``.svmlight``, ``.libsvm``                    :func:`~daskml_lab.data.read_svmlight`
    ======================================================  ==========================================

    These are the built-in entries of :data:`~daskml_lab.data.formats.FORMATS`; a format added with
    :func:`~daskml_lab.data.formats.register_format` is read the same way.

    Parameters
    ----------
    path : str or path-like
        The file, directory or glob pattern.
    target : hashable, default=None
        The target column, variable or array; see the reader. svmlight files always hold labels, so for them
        ``(X, y)`` is returned and ``target`` must be ``None``.
    format : {"zarr", "netcdf", "parquet", "csv", "svmlight"} or another registered name, default=None
        The format, for files whose extension does not tell it (e.g. ``a9a.gz``, a LIBSVM file). ``None``
        decides from the extension.
    **options
        Passed to the reader. ``features=`` chooses the features with every reader that can choose them.

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

    See Also
    --------
    daskml_lab.data.formats.format_of : The format this function picks for a path.

    Examples
    --------
    >>> X, y = read("/data/magic.tsv.gz", target="target")  # doctest: +SKIP
    """
    fmt = format_of(path, format)
    return fmt.reader(path, target, **options)
