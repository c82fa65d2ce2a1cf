"""xarray objects as row blocks, and per-sample results back on the original coordinates.

An xarray object holds samples on one or several *sample dimensions* (``time``, ``lat``, ``lon``) and features
either along one *feature dimension* of a DataArray (``band``) or as the data variables of a Dataset. This
module stacks the sample dimensions into rows (C order, as ``numpy.reshape`` and ``xarray``'s ``stack`` do),
remembers the shape and coordinates in an :class:`XarraySamples`, and unstacks per-sample results into a
DataArray on the original coordinates.

Samples with NaN in a feature (land/sea masks, clouds) are handled in two ways:

- for training (:func:`prepare_training`, used by :func:`daskml_lab.data.from_xarray`) they are dropped; the
  number of kept rows per block is computed (one integer per block) so that chunk sizes stay known;
- for prediction (:func:`xarray_to_dask` with ``fill_masked=True``, asked for by ``check_array`` when
  ``known_chunks=False``) their NaN are replaced by zeros so that the model can run, and
  :func:`wrap_xarray_output` puts NaN back at those samples.

Nothing here computes data except the per-block counts of kept samples in :func:`prepare_training`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from daskml_lab.data._convert import InputOrigin, default_row_chunks

__all__ = [
    "XarraySamples",
    "prepare_training",
    "wrap_xarray_output",
    "xarray_to_dask",
]

logger = logging.getLogger(__name__)

#: Names under which the validation gate passes 1-D inputs; their xarray objects have no feature dimension.
_VECTOR_NAMES = ("y", "sample_weight")
#: Dimension of 2-D results whose columns are not the input's features (e.g. ``predict_proba``).
COLUMN_DIM = "column"


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
class _Stacked:
    """An xarray object flattened to rows (internal result of :func:`_stack`)."""

    data: da.Array
    samples: XarraySamples
    feature_names: np.ndarray | None
    is_lazy: bool


# ---------------------------------------------------------------------------------------------------------
# entry points


def xarray_to_dask(
    obj: Any,
    *,
    name: str = "X",
    chunks: Any = None,
    fill_masked: bool = False,
) -> tuple[da.Array, InputOrigin]:
    """Flatten a DataArray or Dataset into a dask array of rows, without computing it.

    This is the xarray hook of :func:`daskml_lab.data._convert.to_dask_array`, and thus of ``check_array``.
    The layout is chosen by a fixed rule (use :func:`daskml_lab.data.from_xarray` to choose it yourself):

    - a 1-D DataArray is a vector of samples (for ``y`` or ``sample_weight``);
    - an N-D DataArray has its **last dimension as the feature dimension**, all others are sample dimensions,
      stacked in order into rows;
    - a Dataset has one feature per data variable, over the union of the variables' dimensions.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        The input. Dask-backed objects stay lazy; numpy-backed ones are wrapped in row blocks.
    name : str, default="X"
        Name used in error messages. ``"y"`` and ``"sample_weight"`` must be 1-D.
    chunks : int, tuple or None, default=None
        Row chunks for numpy-backed input (``None``: blocks of about ``array.chunk-size`` bytes).
    fill_masked : bool, default=False
        Replace NaN by 0 and record, lazily, which samples had any NaN, so that
        :func:`wrap_xarray_output` returns NaN for them. The prediction path asks for this; training does not,
        so that NaN there is reported instead of silently learnt from.

    Returns
    -------
    array : dask.array.Array of shape (n_samples, n_features) or (n_samples,)
        Lazy rows.
    origin : InputOrigin
        ``kind="xarray"``, the feature names and an :class:`XarraySamples` for putting results back.

    Raises
    ------
    TypeError
        If ``obj`` is another xarray type, or a Dataset has non-numeric variables.
    ValueError
        If ``y`` or ``sample_weight`` is not 1-D.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> cube = xr.DataArray(np.arange(12.0).reshape(2, 3, 2), dims=("lat", "lon", "band"))
    >>> X, origin = xarray_to_dask(cube)
    >>> X.shape, origin.xarray.sample_dims
    ((6, 2), ('lat', 'lon'))
    """
    obj = _as_xarray(obj, name)
    if isinstance(obj, xr.DataArray) and obj.ndim == 1:
        stacked = _stack(obj, sample_dims=obj.dims, feature_dim=None, chunks=chunks, vector=True)
    elif name in _VECTOR_NAMES and isinstance(obj, xr.DataArray):
        msg = (
            f"{name} must be 1-D of shape (n_samples,), got a DataArray with dims {obj.dims} and shape "
            f"{obj.shape}. Build X and {name} together from the xarray object with "
            "daskml_lab.data.from_xarray(obj, target=..., sample_dims=...), which stacks the sample "
            f"dimensions of both, or pass {name}.stack(sample={obj.dims}) (one value per sample)."
        )
        raise ValueError(msg)
    elif isinstance(obj, xr.Dataset):
        stacked = _stack_dataset(obj, name=name, sample_dims=None, features=None, chunks=chunks)
    else:
        stacked = _stack(obj, sample_dims=obj.dims[:-1], feature_dim=obj.dims[-1], chunks=chunks)
    data, samples = stacked.data, stacked.samples
    if fill_masked and data.dtype.kind in "fc":
        valid = _valid_rows(data)
        data = da.map_blocks(
            _fill_nan_block, data, dtype=data.dtype, meta=data._meta, token="daskml-fill-masked"
        )
        samples = _replace(samples, valid=valid)
    return data, InputOrigin("xarray", feature_names=stacked.feature_names, xarray=samples)


def prepare_training(
    obj: Any,
    target: Any = None,
    *,
    sample_dims: Sequence[Hashable] | None = None,
    feature_dim: Hashable | None = None,
    features: Sequence[Any] | None = None,
    skipna: bool = True,
    chunks: Any = None,
) -> tuple[da.Array, da.Array | None, InputOrigin]:
    """Rows of features (and target) of an xarray object, with masked samples dropped.

    The work of :func:`daskml_lab.data.from_xarray` before validation; see it for the parameters.

    Returns
    -------
    X : dask.array.Array of shape (n_kept, n_features)
        Lazy; chunk sizes known.
    y : dask.array.Array of shape (n_kept,) or None
        Lazy, with the row chunks of ``X``.
    origin : InputOrigin
        ``kind="xarray"``, with what :func:`wrap_xarray_output` needs to scatter results back.
    """
    obj = _as_xarray(obj, "obj")
    y_obj = None
    if isinstance(obj, xr.Dataset):
        if feature_dim is not None:
            msg = (
                f"feature_dim={feature_dim!r} applies to a DataArray; the features of a Dataset are its data "
                "variables. Pass features=[...] to choose them, or give ds.to_dataarray(dim=...) instead."
            )
            raise ValueError(msg)
        if target is not None:
            y_obj, target_name = _dataset_target(obj, target)
            if features is None:
                features = [v for v in obj.data_vars if v != target_name]
            elif target_name is not None and target_name in list(features):
                msg = f"The target {target_name!r} is also listed in features={list(features)}; leave it out."
                raise ValueError(msg)
        if sample_dims is None and y_obj is not None:
            sample_dims = _ordered_union(
                obj, [obj[v].dims for v in _feature_vars(obj, features)] + [y_obj.dims]
            )
        stacked = _stack_dataset(obj, name="X", sample_dims=sample_dims, features=features, chunks=chunks)
    else:
        sample_dims, feature_dim = _resolve_dims(obj, sample_dims, feature_dim)
        if target is not None:
            obj, y_obj = _dataarray_target(obj, target, feature_dim)
        if features is not None:
            obj = _select_features(obj, feature_dim, features)
        stacked = _stack(obj, sample_dims=sample_dims, feature_dim=feature_dim, chunks=chunks)
    X, samples = stacked.data, stacked.samples
    y = None
    is_lazy = stacked.is_lazy
    if y_obj is not None:
        y_rows = _target_rows(y_obj, obj, samples)
        is_lazy = is_lazy or y_rows.is_lazy
        y = y_rows.data.rechunk({0: X.chunks[0]})
    if skipna:
        X, y, samples = _drop_invalid(X, y, samples, is_lazy=is_lazy)
    return X, y, InputOrigin("xarray", feature_names=stacked.feature_names, xarray=samples)


def wrap_xarray_output(
    result: Any, origin: InputOrigin, *, columns: Any = None, name: str | None = None
) -> Any:
    """Put a per-sample result back on the sample coordinates of the xarray input, lazily.

    Parameters
    ----------
    result : dask.array.Array of shape (n_rows,) or (n_rows, n_columns)
        One row per row of the validated input: per kept sample for training data from
        :func:`daskml_lab.data.from_xarray`, per sample otherwise.
    origin : InputOrigin
        The origin returned with the input (``kind="xarray"``).
    columns : array-like of shape (n_columns,), default=None
        Labels of the result's columns (e.g. ``classes_``), put on a ``"column"`` dimension. Without them,
        a result with one column per input feature is put on the input's feature dimension.
    name : str, default=None
        Name of the returned DataArray.

    Returns
    -------
    xarray.DataArray
        Dask-backed, with dimensions ``sample_dims`` (plus one column dimension for 2-D results) and the
        input's sample coordinates. Samples that were masked (dropped in training, NaN in prediction) hold
        NaN; integer and boolean results are therefore returned as float64, strings as objects.

    Raises
    ------
    ValueError
        If the result does not have one row per sample (or per kept sample), or ``columns`` has the wrong
        length.
    """
    samples: XarraySamples = origin.xarray
    result = _as_row_array(result, samples)
    if result.ndim not in (1, 2):
        msg = (
            "A per-sample result must be 1-D or 2-D to be put back on xarray coordinates; got shape "
            f"{result.shape}."
        )
        raise ValueError(msg)
    if result.ndim == 2 and result.numblocks[1] != 1:
        result = result.rechunk({1: -1})
    if samples.kept_chunks is not None:
        full = _scatter_rows(result, samples)
    elif samples.valid is not None:
        full = _mask_rows(result.rechunk({0: samples.row_chunks}), samples)
    else:
        full = result
    column_dims, column_coords = _column_layout(full, samples, columns)
    data = full.reshape(samples.sample_shape + full.shape[1:])
    out = xr.DataArray(data, dims=(*samples.sample_dims, *column_dims), coords=samples.coords, name=name)
    if column_coords is not None:
        out = out.assign_coords(column_coords)
    return out


# ---------------------------------------------------------------------------------------------------------
# stacking


def _as_xarray(obj: Any, name: str) -> xr.DataArray | xr.Dataset:
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


def _resolve_dims(
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


def _stack(
    obj: xr.DataArray,
    *,
    sample_dims: Sequence[Hashable],
    feature_dim: Hashable | None,
    chunks: Any,
    vector: bool = False,
) -> _Stacked:
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
    return _Stacked(rows, samples, feature_names, is_lazy)


def _stack_dataset(
    ds: xr.Dataset,
    *,
    name: str,
    sample_dims: Sequence[Hashable] | None,
    features: Sequence[Hashable] | None,
    chunks: Any,
) -> _Stacked:
    """Rows of a Dataset, one column per data variable (broadcast over the sample dims)."""
    names = _feature_vars(ds, features)
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
        sample_dims = _ordered_union(ds, [ds[v].dims for v in names])
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
    stack_dim = _unique_name("variable", ds.dims)
    array = subset.to_dataarray(dim=stack_dim)
    array = array.drop_vars(stack_dim)
    stacked = _stack(array, sample_dims=sample_dims, feature_dim=stack_dim, chunks=chunks)
    samples = _replace(stacked.samples, feature_dim=None, feature_coords=None)
    return _Stacked(stacked.data, samples, np.asarray(names, dtype=object), stacked.is_lazy)


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


def _feature_vars(ds: xr.Dataset, features: Sequence[Hashable] | None) -> list[Hashable]:
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


def _select_features(
    obj: xr.DataArray, feature_dim: Hashable | None, features: Sequence[Any]
) -> xr.DataArray:
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


def _ordered_union(ds: xr.Dataset, dim_lists: Sequence[Sequence[Hashable]]) -> tuple[Hashable, ...]:
    """The dimensions used by some variables, in the Dataset's order."""
    used = {d for dims in dim_lists for d in dims}
    return tuple(d for d in ds.dims if d in used)


def _unique_name(base: str, taken: Any) -> str:
    name = base
    while name in taken:
        name = f"_{name}"
    return name


def _replace(samples: XarraySamples, **changes: Any) -> XarraySamples:
    fields = {k: getattr(samples, k) for k in samples.__dataclass_fields__}
    return XarraySamples(**{**fields, **changes})


# ---------------------------------------------------------------------------------------------------------
# target


def _dataset_target(ds: xr.Dataset, target: Any) -> tuple[xr.DataArray, Hashable | None]:
    if isinstance(target, xr.DataArray):
        return target, None
    if target in ds.variables:
        return ds[target], target
    msg = (
        f"Target variable {target!r} not found in the Dataset. Available data variables: "
        f"{list(ds.data_vars)}; coordinates: {list(ds.coords)}."
    )
    raise ValueError(msg)


def _dataarray_target(
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


def _target_rows(y: xr.DataArray, x: xr.DataArray | xr.Dataset, samples: XarraySamples) -> _Stacked:
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
    return _stack(y, sample_dims=sample_dims, feature_dim=None, chunks=samples.row_chunks, vector=True)


# ---------------------------------------------------------------------------------------------------------
# masks: dropping (training), filling (prediction), putting back (outputs)


def _valid_rows(data: da.Array) -> da.Array:
    return da.map_blocks(
        _valid_rows_block, data, drop_axis=list(range(1, data.ndim)), dtype=bool, token="daskml-valid-rows"
    )


def _drop_invalid(
    X: da.Array, y: da.Array | None, samples: XarraySamples, *, is_lazy: bool
) -> tuple[da.Array, da.Array | None, XarraySamples]:
    """Drop samples with NaN in a feature (or the target), keeping chunk sizes known."""
    checks = [_valid_rows(X)] if X.dtype.kind in "fc" else []
    if y is not None and y.dtype.kind in "fc":
        checks.append(_valid_rows(y))
    if not checks:
        return X, y, samples
    valid = checks[0] if len(checks) == 1 else checks[0] & checks[1]
    counts = da.map_blocks(
        _count_true_block,
        valid,
        chunks=((1,) * valid.numblocks[0],),
        dtype=np.int64,
        token="daskml-count-valid",
    )
    logger.info("Counting samples without NaN in %d row blocks of an xarray input", valid.numblocks[0])
    # compute: one integer per row block (the number of samples kept), so that the kept rows have known
    # chunks. In-memory inputs are counted on the client with the synchronous scheduler.
    kept = tuple(int(c) for c in (counts.compute() if is_lazy else counts.compute(scheduler="sync")))
    if kept == tuple(X.chunks[0]):
        return X, y, samples
    if sum(kept) == 0:
        msg = (
            f"Every one of the {samples.n_samples} samples has NaN in a feature or the target, so none is "
            "left to learn from. Check the mask, fill missing values first, or pass skipna=False to see "
            "where."
        )
        raise ValueError(msg)
    X = _take_rows(X, valid, kept)
    y = None if y is None else _take_rows(y, valid, kept)
    return X, y, _replace(samples, valid=valid, kept_chunks=kept)


def _take_rows(data: da.Array, valid: da.Array, kept: tuple[int, ...]) -> da.Array:
    index = "ij"[: data.ndim]
    return da.blockwise(
        _take_rows_block,
        index,
        data,
        index,
        valid,
        "i",
        adjust_chunks={"i": kept},
        align_arrays=False,
        dtype=data.dtype,
        meta=data._meta,
        token="daskml-drop-masked",
    )


def _masked_dtype(dtype: np.dtype) -> np.dtype:
    """A dtype able to hold NaN for missing samples."""
    if dtype.kind in "fc":
        return dtype
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    return np.dtype(object)


def _scatter_rows(result: da.Array, samples: XarraySamples) -> da.Array:
    kept = samples.kept_chunks
    if result.chunks[0] != kept:
        result = result.rechunk({0: kept})
    index = "ij"[: result.ndim]
    dtype = _masked_dtype(result.dtype)
    return da.blockwise(
        _scatter_rows_block,
        index,
        result,
        index,
        samples.valid,
        "i",
        adjust_chunks={"i": samples.row_chunks},
        align_arrays=False,
        dtype=dtype,
        meta=np.empty((0,) * result.ndim, dtype=dtype),
        token="daskml-unmask",
    )


def _mask_rows(result: da.Array, samples: XarraySamples) -> da.Array:
    index = "ij"[: result.ndim]
    dtype = _masked_dtype(result.dtype)
    return da.blockwise(
        _mask_rows_block,
        index,
        result,
        index,
        samples.valid,
        "i",
        dtype=dtype,
        meta=np.empty((0,) * result.ndim, dtype=dtype),
        token="daskml-unmask",
    )


def _as_row_array(result: Any, samples: XarraySamples) -> da.Array:
    """Check the number of rows of a result; wrap in-memory results in the expected row blocks."""
    expected = samples.n_rows
    if not isinstance(result, da.Array):
        result = np.asarray(result)
        if result.ndim >= 1 and result.shape[0] == expected:
            chunks = samples.kept_chunks or samples.row_chunks
            result = da.from_array(result, chunks=(chunks,) + (-1,) * (result.ndim - 1))
        else:
            result = da.from_array(result)
    n_rows = result.shape[0] if result.ndim else None
    if n_rows is None or (not math.isnan(n_rows) and n_rows != expected):
        what = "kept (non-masked) samples" if samples.kept_chunks is not None else "samples"
        msg = (
            f"The result has shape {result.shape}, but the xarray input had {expected} {what}; a per-sample "
            "result needs one row per row of the validated input (pass the same origin as that input's)."
        )
        raise ValueError(msg)
    if math.isnan(n_rows) or any(math.isnan(c) for c in result.chunks[0]):
        expected_chunks = samples.kept_chunks or samples.row_chunks
        if result.numblocks[0] != len(expected_chunks):
            msg = (
                f"The result has unknown chunk sizes and {result.numblocks[0]} row blocks, while the input "
                f"had {len(expected_chunks)}; call result.compute_chunk_sizes() first."
            )
            raise ValueError(msg)
        # Per-block results (predict maps blocks one to one) have the row blocks of the input: declare them.
        result = da.map_blocks(
            _identity_block,
            result,
            chunks=(expected_chunks, *result.chunks[1:]),
            dtype=result.dtype,
            meta=result._meta,
            token="daskml-known-rows",
        )
    return result


def _column_layout(full: da.Array, samples: XarraySamples, columns: Any) -> tuple[tuple[Hashable, ...], Any]:
    if full.ndim == 1:
        return (), None
    n_columns = full.shape[1]
    if columns is not None:
        columns = np.asarray(columns)
        if columns.shape != (n_columns,):
            msg = (
                f"columns has {columns.size} labels, but the result has {n_columns} columns; give one per "
                "column."
            )
            raise ValueError(msg)
        column_dim = _unique_name(COLUMN_DIM, samples.sample_dims)
        return (column_dim,), {column_dim: columns}
    if samples.feature_dim is not None and samples.n_features == n_columns:
        return (samples.feature_dim,), samples.feature_coords
    return (_unique_name(COLUMN_DIM, samples.sample_dims),), None


# ---------------------------------------------------------------------------------------------------------
# per-block kernels


def _valid_rows_block(block: np.ndarray) -> np.ndarray:
    """Whether each row has no NaN (1-D blocks: whether each value is not NaN)."""
    missing = np.isnan(block)
    return ~missing if block.ndim == 1 else ~missing.any(axis=1)


def _count_true_block(valid: np.ndarray) -> np.ndarray:
    return np.array([np.count_nonzero(valid)], dtype=np.int64)


def _identity_block(block: np.ndarray) -> np.ndarray:
    return block


def _take_rows_block(block: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return block[valid]


def _fill_nan_block(block: np.ndarray) -> np.ndarray:
    """NaN replaced by 0 (a copy only when there is NaN), so that a model can run on masked samples."""
    missing = np.isnan(block)
    return np.where(missing, 0, block).astype(block.dtype, copy=False) if missing.any() else block


def _scatter_rows_block(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rows of ``values`` placed at the valid samples of the block, NaN elsewhere."""
    out = np.full((valid.shape[0], *values.shape[1:]), np.nan, dtype=_masked_dtype(values.dtype))
    out[valid] = values
    return out


def _mask_rows_block(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``values`` with NaN at the invalid samples."""
    out = values.astype(_masked_dtype(values.dtype), copy=True)
    out[~valid] = np.nan
    return out
