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

Nothing here computes data except the per-block counts of kept samples in :func:`prepare_training`. The
stacking lives in :mod:`daskml_lab.data._xarray_stack`, the handling of masked samples in
:mod:`daskml_lab.data._xarray_masks`; this module is what the validation gate (through
:mod:`daskml_lab.data._convert`) and :func:`daskml_lab.data.from_xarray` call.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import dask.array as da
import xarray as xr

from daskml_lab.data._origin import InputOrigin
from daskml_lab.data._xarray_masks import (
    as_row_array,
    column_layout,
    drop_invalid,
    fill_invalid,
    mask_rows,
    scatter_rows,
)
from daskml_lab.data._xarray_stack import (
    XarraySamples,
    as_xarray,
    dataarray_target,
    dataset_target,
    feature_vars,
    ordered_union,
    replace_samples,
    resolve_dims,
    select_features,
    stack,
    stack_dataset,
    target_rows,
)

__all__ = [
    "XarraySamples",
    "prepare_training",
    "wrap_xarray_output",
    "xarray_to_dask",
]

#: Names under which the validation gate passes 1-D inputs; their xarray objects have no feature dimension.
_VECTOR_NAMES = ("y", "sample_weight")


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
    obj = as_xarray(obj, name)
    if isinstance(obj, xr.DataArray) and obj.ndim == 1:
        stacked = stack(obj, sample_dims=obj.dims, feature_dim=None, chunks=chunks, vector=True)
    elif name in _VECTOR_NAMES and isinstance(obj, xr.DataArray):
        msg = (
            f"{name} must be 1-D of shape (n_samples,), got a DataArray with dims {obj.dims} and shape "
            f"{obj.shape}. Build X and {name} together from the xarray object with "
            "daskml_lab.data.from_xarray(obj, target=..., sample_dims=...), which stacks the sample "
            f"dimensions of both, or pass {name}.stack(sample={obj.dims}) (one value per sample)."
        )
        raise ValueError(msg)
    elif isinstance(obj, xr.Dataset):
        stacked = stack_dataset(obj, name=name, sample_dims=None, features=None, chunks=chunks)
    else:
        stacked = stack(obj, sample_dims=obj.dims[:-1], feature_dim=obj.dims[-1], chunks=chunks)
    data, samples = stacked.data, stacked.samples
    if fill_masked and data.dtype.kind in "fc":
        data, valid = fill_invalid(data)
        samples = replace_samples(samples, valid=valid)
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
    obj = as_xarray(obj, "obj")
    y_obj = None
    if isinstance(obj, xr.Dataset):
        if feature_dim is not None:
            msg = (
                f"feature_dim={feature_dim!r} applies to a DataArray; the features of a Dataset are its data "
                "variables. Pass features=[...] to choose them, or give ds.to_dataarray(dim=...) instead."
            )
            raise ValueError(msg)
        if target is not None:
            y_obj, target_name = dataset_target(obj, target)
            if features is None:
                features = [v for v in obj.data_vars if v != target_name]
            elif target_name is not None and target_name in list(features):
                msg = f"The target {target_name!r} is also listed in features={list(features)}; leave it out."
                raise ValueError(msg)
        if sample_dims is None and y_obj is not None:
            sample_dims = ordered_union(
                obj, [obj[v].dims for v in feature_vars(obj, features)] + [y_obj.dims]
            )
        stacked = stack_dataset(obj, name="X", sample_dims=sample_dims, features=features, chunks=chunks)
    else:
        sample_dims, feature_dim = resolve_dims(obj, sample_dims, feature_dim)
        if target is not None:
            obj, y_obj = dataarray_target(obj, target, feature_dim)
        if features is not None:
            obj = select_features(obj, feature_dim, features)
        stacked = stack(obj, sample_dims=sample_dims, feature_dim=feature_dim, chunks=chunks)
    X, samples = stacked.data, stacked.samples
    y = None
    is_lazy = stacked.is_lazy
    if y_obj is not None:
        y_rows = target_rows(y_obj, obj, samples)
        is_lazy = is_lazy or y_rows.is_lazy
        y = y_rows.data.rechunk({0: X.chunks[0]})
    if skipna:
        X, y, samples = drop_invalid(X, y, samples, is_lazy=is_lazy)
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
    result = as_row_array(result, samples)
    if result.ndim not in (1, 2):
        msg = (
            "A per-sample result must be 1-D or 2-D to be put back on xarray coordinates; got shape "
            f"{result.shape}."
        )
        raise ValueError(msg)
    if result.ndim == 2 and result.numblocks[1] != 1:
        result = result.rechunk({1: -1})
    if samples.kept_chunks is not None:
        full = scatter_rows(result, samples)
    elif samples.valid is not None:
        full = mask_rows(result.rechunk({0: samples.row_chunks}), samples)
    else:
        full = result
    column_dims, column_coords = column_layout(full, samples, columns)
    data = full.reshape(samples.sample_shape + full.shape[1:])
    out = xr.DataArray(data, dims=(*samples.sample_dims, *column_dims), coords=samples.coords, name=name)
    if column_coords is not None:
        out = out.assign_coords(column_coords)
    return out
