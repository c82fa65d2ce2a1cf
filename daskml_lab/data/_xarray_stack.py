"""Stacking the sample dimensions of xarray objects into rows, and the record of how to undo it.

An xarray object holds samples on one or several *sample dimensions* (``time``, ``lat``, ``lon``) and features
either along one *feature dimension* of a DataArray (``band``) or as the data variables of a Dataset. The
functions here stack the sample dimensions into rows (C order, as ``numpy.reshape`` and ``xarray``'s ``stack``
do), check that a target lies on the same coordinates, and remember the shape and coordinates in an
:class:`XarraySamples`. They compute nothing: dask-backed objects stay lazy.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from daskml_lab.data._blocks import default_row_chunks

__all__ = [
    "Stacked",
    "XarraySamples",
    "as_xarray",
    "dataarray_target",
    "dataset_target",
    "feature_vars",
    "ordered_union",
    "replace_samples",
    "resolve_dims",
    "select_features",
    "stack",
    "stack_dataset",
    "target_rows",
    "unique_name",
]


@dataclass(frozen=True, eq=False)
class XarraySamples:
    """How the rows of a 2-D array map onto the sample coordinates of an xarray object.

    Attributes
    ----------
    sample_dims : tuple of hashable
        The dimensions stacked into rows, slowest-varying first.
    sample_shape : tuple of int
        Their sizes; the number of samples is their product.
    coords : xarray.Coordinates
        The coordinates that live on the sample dimensions only (indexes included).
    row_chunks : tuple of int
        Row chunks of all samples, before any were dropped.
    feature_dim : hashable or None
        The feature dimension of a DataArray input (``None`` for a Dataset, whose features are variables).
    n_features : int or None
        Number of features (``None`` for a vector).
    feature_coords : xarray.Coordinates or None
        Coordinates on the feature dimension, used when a result has one column per input feature.
    valid : dask.array.Array of bool of shape (n_samples,) or None
        Lazily, which samples had no NaN (``None``: every sample is taken as valid).
    kept_chunks : tuple of int or None
        When invalid samples were dropped (training data), the number of kept rows of each row block; a result
        on those rows is scattered back into all samples. ``None`` when every sample has a row.
    """

    sample_dims: tuple[Hashable, ...]
    sample_shape: tuple[int, ...]
    coords: xr.Coordinates
    row_chunks: tuple[int, ...]
    feature_dim: Hashable | None = None
    n_features: int | None = None
    feature_coords: xr.Coordinates | None = field(default=None, repr=False)
    valid: da.Array | None = field(default=None, repr=False)
    kept_chunks: tuple[int, ...] | None = None

    @property
    def n_samples(self) -> int:
        """Number of samples (rows before any were dropped)."""
        return math.prod(self.sample_shape)

    @property
    def n_rows(self) -> int:
        """Number of rows a per-sample result must have."""
        return self.n_samples if self.kept_chunks is None else int(sum(self.kept_chunks))


@dataclass(frozen=True, eq=False)
class Stacked:
    """An xarray object flattened to rows (internal result of :func:`stack`)."""

    data: da.Array
    samples: XarraySamples
    feature_names: np.ndarray | None
    is_lazy: bool


# ---------------------------------------------------------------------------------------------------------
# stacking


def as_xarray(obj: Any, name: str) -> xr.DataArray | xr.Dataset:
    if isinstance(obj, xr.DataArray | xr.Dataset):
        return obj
    if isinstance(obj, xr.Variable):
        return xr.DataArray(obj)
    msg = (
        f"{name} must be an xarray.DataArray or xarray.Dataset; got "
        f"{type(obj).__module__}.{type(obj).__qualname__}. Wrap it with xarray.DataArray(...) or convert it "
        "with .to_dataset()."
    )
    raise TypeError(msg)


def resolve_dims(
    obj: xr.DataArray, sample_dims: Sequence[Hashable] | None, feature_dim: Hashable | None
) -> tuple[tuple[Hashable, ...], Hashable | None]:
    """Sample and feature dims of a DataArray: defaults, existence, and that every dim is accounted for."""
    dims = tuple(obj.dims)
    if sample_dims is not None:
        sample_dims = (sample_dims,) if isinstance(sample_dims, str) else tuple(sample_dims)
    given = [*(sample_dims or ()), *(() if feature_dim is None else (feature_dim,))]
    unknown = [d for d in given if d not in dims]
    if unknown:
        msg = f"Dimension(s) {unknown} not found in the DataArray, whose dimensions are {list(dims)}."
        raise ValueError(msg)
    if sample_dims is None:
        if feature_dim is None:
            if len(dims) < 2:
                msg = (
                    f"A DataArray of features needs a sample and a feature dimension; got dims {list(dims)}. "
                    "Pass sample_dims=... for a single feature, or use a Dataset with one variable per "
                    "feature."
                )
                raise ValueError(msg)
            feature_dim = dims[-1]
        sample_dims = tuple(d for d in dims if d != feature_dim)
    elif feature_dim is None:
        rest = [d for d in dims if d not in sample_dims]
        if len(rest) > 1:
            msg = (
                f"Cannot tell the feature dimension: {rest} are not sample dimensions {list(sample_dims)}. "
                "Pass feature_dim=..., or add the others to sample_dims."
            )
            raise ValueError(msg)
        feature_dim = rest[0] if rest else None
    if feature_dim in sample_dims:
        msg = (
            f"feature_dim={feature_dim!r} is also among sample_dims={list(sample_dims)}; a dimension is one "
            "or the other."
        )
        raise ValueError(msg)
    left = [d for d in dims if d not in sample_dims and d != feature_dim]
    if left:
        msg = (
            f"Dimension(s) {left} of the DataArray are neither sample dims {list(sample_dims)} nor the "
            f"feature dim {feature_dim!r}. Add them to sample_dims, or select one slice with "
            f".isel({left[0]}=0)."
        )
        raise ValueError(msg)
    return tuple(sample_dims), feature_dim


def stack(
    obj: xr.DataArray,
    *,
    sample_dims: Sequence[Hashable],
    feature_dim: Hashable | None,
    chunks: Any,
    vector: bool = False,
) -> Stacked:
    """Rows of a DataArray: ``(n_samples, n_features)``, or ``(n_samples,)`` for a vector."""
    sample_dims = tuple(sample_dims)
    order = sample_dims if feature_dim is None else (*sample_dims, feature_dim)
    obj = obj.transpose(*order)
    sample_shape = tuple(int(obj.sizes[d]) for d in sample_dims)
    n_features = None if vector else (1 if feature_dim is None else int(obj.sizes[feature_dim]))
    raw = obj.data
    is_lazy = isinstance(raw, da.Array)
    rows = _to_rows(raw, sample_shape, n_features, chunks)
    feature_names = None
    feature_coords = None
    if feature_dim is not None:
        if feature_dim in obj.indexes:
            feature_names = np.asarray(obj.indexes[feature_dim], dtype=object)
        feature_coords = _coords_on(obj.coords, (feature_dim,))
    elif not vector:
        feature_names = np.asarray([obj.name if obj.name is not None else 0], dtype=object)
    samples = XarraySamples(
        sample_dims=sample_dims,
        sample_shape=sample_shape,
        coords=_coords_on(obj.coords, sample_dims),
        row_chunks=tuple(int(c) for c in rows.chunks[0]),
        feature_dim=feature_dim,
        n_features=n_features,
        feature_coords=feature_coords,
    )
    return Stacked(rows, samples, feature_names, is_lazy)


def stack_dataset(
    ds: xr.Dataset,
    *,
    name: str,
    sample_dims: Sequence[Hashable] | None,
    features: Sequence[Hashable] | None,
    chunks: Any,
) -> Stacked:
    """Rows of a Dataset, one column per data variable (broadcast over the sample dims)."""
    names = feature_vars(ds, features)
    if not names:
        msg = "The Dataset has no data variable to use as a feature; pass features=[...] naming some."
        raise ValueError(msg)
    non_numeric = [f"{v} ({ds[v].dtype})" for v in names if ds[v].dtype.kind not in "biuf"]
    if non_numeric:
        msg = (
            f"{name} must be numeric, but the Dataset variables {non_numeric} are not. Encode them as "
            "numbers first (e.g. with an integer code per category), or leave them out with features=[...]."
        )
        raise TypeError(msg)
    if sample_dims is None:
        sample_dims = ordered_union(ds, [ds[v].dims for v in names])
    sample_dims = (sample_dims,) if isinstance(sample_dims, str) else tuple(sample_dims)
    missing_dims = [d for d in sample_dims if d not in ds.dims]
    if missing_dims:
        msg = f"Dimension(s) {missing_dims} not found in the Dataset, whose dimensions are {list(ds.dims)}."
        raise ValueError(msg)
    for v in names:
        extra = [d for d in ds[v].dims if d not in sample_dims]
        if extra:
            msg = (
                f"Variable {v!r} has dimension(s) {extra} besides the sample dims {list(sample_dims)}, so it "
                f"is not one value per sample. Select a slice (ds[{v!r}].isel({extra[0]}=0)), add the "
                "dimension to sample_dims, or leave the variable out with features=[...]."
            )
            raise ValueError(msg)
    dtypes = {ds[v].dtype for v in names}
    common = np.result_type(*dtypes)
    subset = ds[names]
    if len(dtypes) > 1:
        # xarray promotes bool+number to object when stacking; cast to the common numeric type ourselves.
        common = common if common.kind == "f" else np.dtype(np.float64)
        subset = subset.astype(common)
    stack_dim = unique_name("variable", ds.dims)
    array = subset.to_dataarray(dim=stack_dim)
    array = array.drop_vars(stack_dim)
    stacked = stack(array, sample_dims=sample_dims, feature_dim=stack_dim, chunks=chunks)
    samples = replace_samples(stacked.samples, feature_dim=None, feature_coords=None)
    return Stacked(stacked.data, samples, np.asarray(names, dtype=object), stacked.is_lazy)


def _to_rows(raw: Any, sample_shape: tuple[int, ...], n_features: int | None, chunks: Any) -> da.Array:
    """Reshape an array whose leading axes are the sample dims into row blocks (lazily for dask input)."""
    n_samples = math.prod(sample_shape)
    shape = (n_samples,) if n_features is None else (n_samples, n_features)
    if isinstance(raw, da.Array):
        rows = raw.reshape(shape)
        if _usable_chunks(chunks, n_samples):
            rows = rows.rechunk({0: chunks})
        return rows if rows.ndim == 1 or rows.numblocks[1] == 1 else rows.rechunk({1: -1})
    values = np.reshape(np.asarray(raw), shape)
    if not _usable_chunks(chunks, n_samples):
        itemsize = values.dtype.itemsize if values.dtype != object else 8
        chunks = default_row_chunks(n_samples, n_features or 1, itemsize)
    return da.from_array(values, chunks=(chunks,) + (-1,) * (values.ndim - 1))


def _usable_chunks(chunks: Any, n_samples: int) -> bool:
    if chunks is None:
        return False
    if isinstance(chunks, tuple):
        # The validation gate passes X's row chunks for y; a length mismatch is reported there.
        return sum(chunks) == n_samples
    return True


def _coords_on(coords: xr.Coordinates, dims: Sequence[Hashable]) -> xr.Coordinates:
    """The coordinates (with their indexes) that live only on ``dims``."""
    keep = set(dims)
    drop = [k for k, v in coords.items() if not set(v.dims) <= keep]
    return coords.to_dataset().drop_vars(drop).coords


def feature_vars(ds: xr.Dataset, features: Sequence[Hashable] | None) -> list[Hashable]:
    if features is None:
        return list(ds.data_vars)
    features = [features] if isinstance(features, str) else list(features)
    missing = [f for f in features if f not in ds.variables]
    if missing:
        msg = (
            f"Feature variable(s) {missing} not found in the Dataset. Available data variables: "
            f"{list(ds.data_vars)}."
        )
        raise ValueError(msg)
    return features


def select_features(obj: xr.DataArray, feature_dim: Hashable | None, features: Sequence[Any]) -> xr.DataArray:
    features = [features] if isinstance(features, str) else list(features)
    if feature_dim is None:
        msg = "features=... selects labels along the feature dimension, but this DataArray has none."
        raise ValueError(msg)
    if feature_dim in obj.indexes:
        index = obj.indexes[feature_dim]
        missing = [f for f in features if f not in index]
        if missing:
            msg = f"Feature(s) {missing} not found along dimension {feature_dim!r}. Available: {list(index)}."
            raise ValueError(msg)
        return obj.sel({feature_dim: features})
    size = obj.sizes[feature_dim]
    bad = [f for f in features if not isinstance(f, int | np.integer) or not -size <= f < size]
    if bad:
        msg = (
            f"Dimension {feature_dim!r} has no coordinate, so features must be integer positions in [0, "
            f"{size}); got {bad}."
        )
        raise ValueError(msg)
    return obj.isel({feature_dim: features})


def ordered_union(ds: xr.Dataset, dim_lists: Sequence[Sequence[Hashable]]) -> tuple[Hashable, ...]:
    """The dimensions used by some variables, in the Dataset's order."""
    used = {d for dims in dim_lists for d in dims}
    return tuple(d for d in ds.dims if d in used)


def unique_name(base: str, taken: Any) -> str:
    name = base
    while name in taken:
        name = f"_{name}"
    return name


def replace_samples(samples: XarraySamples, **changes: Any) -> XarraySamples:
    fields = {k: getattr(samples, k) for k in samples.__dataclass_fields__}
    return XarraySamples(**{**fields, **changes})


# ---------------------------------------------------------------------------------------------------------
# target


def dataset_target(ds: xr.Dataset, target: Any) -> tuple[xr.DataArray, Hashable | None]:
    if isinstance(target, xr.DataArray):
        return target, None
    if target in ds.variables:
        return ds[target], target
    msg = (
        f"Target variable {target!r} not found in the Dataset. Available data variables: "
        f"{list(ds.data_vars)}; coordinates: {list(ds.coords)}."
    )
    raise ValueError(msg)


def dataarray_target(
    obj: xr.DataArray, target: Any, feature_dim: Hashable | None
) -> tuple[xr.DataArray, xr.DataArray]:
    """The target of a DataArray: a DataArray, a coordinate, or one label along the feature dimension."""
    if isinstance(target, xr.DataArray):
        return obj, target
    if target in obj.coords and target not in obj.dims:
        return obj, obj.coords[target]
    if feature_dim is not None and feature_dim in obj.indexes and target in obj.indexes[feature_dim]:
        y = obj.sel({feature_dim: target}, drop=True)
        return obj.drop_sel({feature_dim: [target]}), y
    labels = list(obj.indexes[feature_dim]) if feature_dim is not None and feature_dim in obj.indexes else []
    msg = (
        f"Target {target!r} is neither a coordinate of the DataArray ({list(obj.coords)}) nor a label along "
        f"its feature dimension {feature_dim!r} ({labels}). Pass the target as a DataArray on the sample "
        "dims, or use a Dataset with a target variable."
    )
    raise ValueError(msg)


def target_rows(y: xr.DataArray, x: xr.DataArray | xr.Dataset, samples: XarraySamples) -> Stacked:
    """Stack the target over the sample dims of X, after checking that it lies on the same coordinates."""
    sample_dims = samples.sample_dims
    extra = [d for d in y.dims if d not in sample_dims]
    if extra:
        msg = (
            f"The target has dimension(s) {extra} besides the sample dims {list(sample_dims)}; it must hold "
            "one value per sample."
        )
        raise ValueError(msg)
    sizes = dict(zip(sample_dims, samples.sample_shape, strict=True))
    wrong = {d: (y.sizes[d], sizes[d]) for d in y.dims if y.sizes[d] != sizes[d]}
    if wrong:
        msg = f"The target's dimension sizes differ from X's: {{dim: (target, X)}} = {wrong}."
        raise ValueError(msg)
    template = xr.Dataset(coords=samples.coords)
    try:
        xr.align(template, y.drop_vars([c for c in y.coords if c not in y.dims]), join="exact")
    except ValueError as err:
        msg = (
            "The target's coordinates on the sample dims differ from those of the features, so samples "
            f"would be paired wrongly ({err}). Align them first, e.g. y = y.reindex_like(X) or y.sel(...)."
        )
        raise ValueError(msg) from err
    missing = {d: sizes[d] for d in sample_dims if d not in y.dims}
    if missing:
        y = y.expand_dims(missing)
    return stack(y, sample_dims=sample_dims, feature_dim=None, chunks=samples.row_chunks, vector=True)
