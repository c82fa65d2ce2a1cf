"""What the format modules share: local paths and globs, compression suffixes, the "could not read" message,
and fixed-width text for the writers.
"""

from __future__ import annotations

import glob
import os
from typing import Any

__all__ = [
    "COMPRESSIONS",
    "check_exists",
    "describe",
    "first_path",
    "is_local",
    "strip_compression",
    "text_as_fixed_width",
    "unreadable",
]

#: Compression suffixes of text files that are read (decompressed) whole, one block per file.
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zip", ".zst")


def first_path(path: Any) -> str:
    """The first file of ``path`` (a path, a URL, a glob pattern or a list of them), as text."""
    if isinstance(path, list | tuple):
        if not path:
            msg = "path is an empty list; give at least one file."
            raise ValueError(msg)
        path = path[0]
    return os.fspath(path) if isinstance(path, os.PathLike) else str(path)


def is_local(path: Any) -> bool:
    """Whether ``path`` names a local file (not a URL such as ``s3://...``, not a store object)."""
    return isinstance(path, str | os.PathLike) and "://" not in os.fspath(path)


def check_exists(path: Any) -> None:
    """Raise ``FileNotFoundError`` naming local paths (or patterns) that match nothing.

    The first check of every reader, so that a missing file is reported by name before any library opens it.

    Parameters
    ----------
    path : str, os.PathLike or list of them
        Local paths or glob patterns; remote URLs (``s3://...``) are left to the reader.

    Raises
    ------
    FileNotFoundError
        Naming the first path that does not exist or pattern that matches no file.
    """
    paths = path if isinstance(path, list | tuple) else [path]
    for item in paths:
        if not is_local(item):
            continue
        text = os.fspath(item)
        if any(ch in text for ch in "*?["):
            if not glob.glob(text):
                msg = f"No file matches the pattern {text!r}."
                raise FileNotFoundError(msg)
        elif not os.path.exists(text):
            msg = f"No such file or directory: {text!r}."
            raise FileNotFoundError(msg)


def strip_compression(name: str) -> str:
    """``name`` without a trailing compression suffix (``"a.csv.gz"`` -> ``"a.csv"``)."""
    for suffix in COMPRESSIONS:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def describe(store: Any) -> str:
    """A path as quoted text, or the type of a store object, for messages."""
    return (
        repr(os.fspath(store))
        if isinstance(store, str | os.PathLike)
        else f"the store {type(store).__name__}"
    )


def unreadable(path: Any, fmt: str, err: BaseException) -> ValueError:
    """The error of a reader that could not parse ``path`` as ``fmt``; raise it ``from err``."""
    return ValueError(
        f"Could not read {describe(path) if not isinstance(path, list) else path} as {fmt}: "
        f"{type(err).__name__}: {err}. The file may be truncated, corrupt or of another format; check it, or "
        "call the reader for its actual format."
    )


def text_as_fixed_width(dataset: Any, width: int) -> tuple[Any, bool]:
    """Object (text) labels as fixed-width unicode, which zarr and netCDF store without inspecting values.

    Returns the Dataset and whether it holds text. ``width`` is the length of the longest label.
    """
    text = False
    for name in list(dataset.variables):
        if dataset[name].dtype.kind in "US":
            text = True
        if dataset[name].dtype == object:
            text = True
            converted = dataset[name].astype(f"<U{max(width, 3)}")  # 3: room for "nan" of masked samples
            if name in dataset.coords:
                dataset = dataset.assign_coords({name: converted})
            else:
                dataset[name] = converted
    return dataset, text
