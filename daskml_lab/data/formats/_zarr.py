"""zarr stores: plain arrays (``X`` and ``y``, or one 1-D array per column) or stores written by xarray."""

from __future__ import annotations

import warnings
from collections.abc import Collection, Hashable, Sequence
from typing import Any

import dask.array as da
import numpy as np

from daskml_lab.data._frames import _result
from daskml_lab.data._from_xarray import from_xarray
from daskml_lab.data._origin import InputOrigin
from daskml_lab.data.formats._common import check_exists, describe, is_local, text_as_fixed_width, unreadable
from daskml_lab.data.formats._registry import Format
from daskml_lab.data.validation import check_array, check_X_y

__all__ = ["ZARR", "read_zarr", "write_zarr"]


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

    check_exists(store)
    try:
        node = zarr.open(store, mode="r", path=component)
    except (ValueError, OSError, KeyError, zarr.errors.BaseZarrError) as err:
        if isinstance(err, FileNotFoundError) and not is_local(store):
            raise
        raise unreadable(store, "a zarr store", err) from err
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
            f"sample_dims and feature_dim apply to zarr stores written by xarray; {describe(store)} holds "
            "plain arrays without dimension names. Leave them out."
        )
        raise ValueError(msg)
    if not is_group:
        if target is not None:
            msg = (
                f"{describe(store)} is a single array, which holds X only, so target={target!r} cannot be "
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
                f"{describe(store)} has no array 'X' and no 1-D column array(s) {missing or ''}. Available "
                f"arrays: {sorted(arrays)}."
            )
            raise ValueError(msg)
        columns = [da.from_zarr(arrays[n]) for n in names]
        row_chunks = chunks if chunks is not None else columns[0].chunks[0]
        X = da.stack([c.rechunk({0: row_chunks}) for c in columns], axis=1).rechunk({1: -1})
    if target is not None:
        if target not in arrays:
            msg = (
                f"Target array {target!r} not found in {describe(store)}. Available arrays: {sorted(arrays)}."
            )
            raise ValueError(msg)
        y = da.from_zarr(arrays[target])
        if y.ndim == 1 and y.shape[0] == X.shape[0]:
            y = y.rechunk({0: X.chunks[0]})
    names_array = None if names is None else np.asarray(names, dtype=object)
    return _validated(X, y, InputOrigin("dask", feature_names=names_array), return_origin)


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
        raise unreadable(store, "an xarray zarr store", err) from err
    return from_xarray(ds, target, return_origin=return_origin, **kwargs)


def _validated(X: da.Array, y: da.Array | None, origin: InputOrigin, return_origin: bool) -> Any:
    if y is None:
        X, _ = check_array(X)
        return _result((X,), origin, return_origin)
    validated = check_X_y(X, y)
    return _result((validated.X, validated.y), origin, return_origin)


# ---------------------------------------------------------------------------------------------------------
# predictions


def write_zarr(dataset: Any, path: str, *, tabular: bool, label_width: int) -> None:
    """Write a Dataset of per-sample outputs to a new zarr store, from the workers (``tabular`` changes nothing).

    Text labels are stored as fixed-width strings of ``label_width`` characters.
    """
    dataset, text = text_as_fixed_width(dataset, label_width)
    regular = dataset.chunk({dim: max(sizes) for dim, sizes in dataset.chunks.items()})
    # Zarr format 3 has no stable specification for text arrays yet: text labels are written in format 2.
    options = {"zarr_format": 2} if text else {}
    with warnings.catch_warnings():
        # Consolidated metadata (which readers such as xarray.open_zarr expect) is an extension of format 3.
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        # compute: each worker writes its chunks (zarr needs regular chunks along each dimension)
        regular.to_zarr(path, mode="w-", **options)


def _is_zarr_store(entries: Collection[str]) -> bool:
    return bool(set(entries) & {"zarr.json", ".zgroup", ".zarray"})


#: The registry entry of zarr stores.
ZARR = Format(
    name="zarr",
    description="zarr",
    suffixes=(".zarr",),
    reader=read_zarr,
    features="positions of the columns of X, names of 1-D arrays, or variables of an xarray store",
    is_directory=_is_zarr_store,
    directory="a zarr store (zarr.json, .zgroup or .zarray)",
    writer=write_zarr,
)
