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
    "prediction_frame",
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


def unreadable(path: Any, fmt: str, err: BaseException, advice: str | None = None) -> ValueError:
    """The error of a reader that could not parse ``path`` as ``fmt``; raise it ``from err``.

    ``advice`` replaces the general one (truncated, corrupt or another format) when the reader knows better.
    """
    if advice is None:
        advice = (
            "The file may be truncated, corrupt or of another format; check it, or call the reader for its "
            "actual format."
        )
    return ValueError(
        f"Could not read {describe(path) if not isinstance(path, list) else path} as {fmt}: "
        f"{type(err).__name__}: {str(err).rstrip()}. {advice}"
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


def prediction_frame(dataset: Any) -> Any:
    """A dask DataFrame with one row per sample of a Dataset of table outputs, for the table writers.

    Its columns: the ``id`` variable if the Dataset has one (named by its ``name`` attribute: the
    identifiers passed through from the input), ``row`` (the row number in the input), ``prediction``, and
    ``proba_<class>`` for each class of a ``probability`` variable.
    """
    import dask
    import dask.dataframe as dd
    import numpy as np

    prediction = dataset["prediction"].data
    probability = dataset["probability"].data if "probability" in dataset else None
    ids = dataset["id"].data if "id" in dataset else None
    columns = ["row", "prediction"]
    if ids is not None:
        columns.insert(0, str(dataset["id"].attrs.get("name", "id")))
    if probability is not None:
        columns += [f"proba_{label}" for label in dataset["class"].values.tolist()]
    offsets = np.cumsum((0, *prediction.chunks[0]))
    blocks = prediction.to_delayed().ravel()
    n = len(blocks)
    proba_blocks = probability.to_delayed().ravel() if probability is not None else [None] * n
    id_blocks = ids.to_delayed().ravel() if ids is not None else [None] * n
    parts = [
        dask.delayed(_prediction_frame_block, pure=True)(block, proba, id_block, columns, int(offsets[i]))
        for i, (block, proba, id_block) in enumerate(zip(blocks, proba_blocks, id_blocks, strict=True))
    ]
    meta = _prediction_frame_block(
        np.empty(0, dtype=prediction.dtype),
        None if probability is None else np.empty((0, probability.shape[1]), dtype=probability.dtype),
        None if ids is None else np.empty(0, dtype=ids.dtype),
        columns,
        0,
    )
    sizes = prediction.chunks[0]
    divisions = (*offsets[:-1].tolist(), int(offsets[-1]) - 1) if sizes and min(sizes) > 0 else None
    return dd.from_delayed(parts, meta=meta, divisions=divisions, verify_meta=False)


def _prediction_frame_block(
    prediction: Any, probability: Any, ids: Any, columns: list[str], offset: int
) -> Any:
    """One block of predictions (with identifiers, probabilities, the input's row numbers) as a DataFrame."""
    import numpy as np
    import pandas as pd

    index = pd.RangeIndex(offset, offset + len(prediction))
    data: dict[str, Any] = {}
    first = 0
    if ids is not None:
        data[columns[0]] = ids
        first = 1
    data["row"] = np.arange(offset, offset + len(prediction), dtype=np.int64)
    data["prediction"] = prediction
    if probability is not None:
        for j, name in enumerate(columns[first + 2 :]):
            data[name] = np.asarray(probability)[:, j]
    return pd.DataFrame(data, index=index, columns=columns)
