"""The public reader of xarray objects: :func:`from_xarray` (the rows of :mod:`daskml_lab.data._xarray`, checked).

It is separate from :mod:`daskml_lab.data._xarray` because it ends in the validation gate, which itself
converts xarray inputs through that module.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from daskml_lab.data._frames import _result
from daskml_lab.data._xarray import prepare_training
from daskml_lab.data.validation import check_array, check_X_y

__all__ = ["from_xarray"]


def from_xarray(
    obj: Any,
    target: Any = None,
    *,
    sample_dims: Sequence[Hashable] | None = None,
    feature_dim: Hashable | None = None,
    features: Sequence[Any] | None = None,
    skipna: bool = True,
    chunks: int | None = None,
    return_origin: bool = False,
) -> Any:
    """Turn a DataArray or Dataset into row-chunked ``X`` (and ``y``), one row per sample.

    A *sample* is one position on the sample dimensions (for instance one ``(time, lat, lon)`` pixel); its
    features are the values along the feature dimension of a DataArray (``band``) or the data variables of a
    Dataset. The sample dimensions are stacked into rows in C order (the last one varies fastest).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        The data. Dask-backed objects stay lazy.
    target : str or xarray.DataArray, default=None
        The target: for a Dataset, the name of a variable; for a DataArray, the name of a coordinate over the
        sample dims or of a label along the feature dimension (which is then removed from the features). A
        DataArray on the sample dims (or some of them: it is broadcast) works for both. Its coordinates must
        match those of ``obj``. ``None`` returns ``X`` only.
    sample_dims : sequence of str, default=None
        The dimensions stacked into samples. ``None``: for a DataArray every dimension but ``feature_dim``;
        for a Dataset the dimensions of the feature variables and the target.
    feature_dim : str, default=None
        DataArray only: the dimension holding the features. ``None``: the one dimension not in
        ``sample_dims``, or the last dimension when ``sample_dims`` is not given either. With ``sample_dims``
        covering all dimensions the array is a single feature.
    features : sequence, default=None
        For a Dataset, the variables to use (in this order; default: every data variable but the target); for
        a DataArray, labels (or, without a coordinate, positions) along the feature dimension.
    skipna : bool, default=True
        Drop samples with NaN in any feature or in a float target (land/sea masks, clouds). Results wrapped
        with :func:`daskml_lab.data._convert.wrap_output` and the returned origin put NaN back at those
        samples. ``False`` keeps them, and the validation then reports the NaN when the data are computed.
    chunks : int, default=None
        Rows per block: for numpy-backed objects ``None`` gives blocks of about dask's ``array.chunk-size``;
        dask-backed objects keep the blocks from their chunks unless this is given.
    return_origin : bool, default=False
        Also return the :class:`~daskml_lab.data.InputOrigin` that puts per-sample results back on the
        coordinates (see Examples).

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        Lazy, float, one column chunk, known row chunks; masked samples left out when ``skipna``.
    y : dask.array.Array of shape (n_samples,)
        Lazy, with the row chunks of ``X``; only when ``target`` is given.
    origin : InputOrigin
        ``kind="xarray"``; only when ``return_origin`` is true.

    Raises
    ------
    TypeError
        If ``obj`` is not an xarray object, or a feature variable is not numeric.
    ValueError
        If a dimension, variable, feature or the target does not exist (the message lists what does), the
        dimensions are ambiguous, the target's coordinates differ from the features', or every sample is
        masked.

    See Also
    --------
    read_netcdf, read_zarr : Open a file with xarray and call this function.

    Notes
    -----
    With ``skipna`` and float data, the number of samples kept in each row block is computed (one integer per
    block) so that the chunk sizes of the result are known; the kept rows themselves stay lazy. Nothing else
    is computed.

    To predict on the whole grid, pass the DataArray (or the Dataset of feature variables) to ``predict``:
    estimators validate it with ``check_array`` whose default layout is *last dimension = features*, fill the
    samples that have NaN, predict, and return a DataArray on the original coordinates with NaN there.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from daskml_lab.data import from_xarray
    >>> from daskml_lab.data._convert import wrap_output
    >>> ds = xr.Dataset(
    ...     {"red": (("y", "x"), [[0.1, np.nan], [0.3, 0.4]]), "nir": (("y", "x"), [[0.5, 0.6], [0.7, 0.8]]),
    ...      "crop": (("y", "x"), [[1, 0], [1, 0]])},
    ...     coords={"y": [10, 20], "x": [1, 2]},
    ... )
    >>> X, y, origin = from_xarray(ds, "crop", return_origin=True)
    >>> X.shape, y.compute().tolist()
    ((3, 2), [1, 1, 0])
    >>> back = wrap_output(X[:, 0] * 10, origin, name="red10")
    >>> back.dims, back.values.tolist()
    (('y', 'x'), [[1.0, nan], [3.0, 4.0]])
    """
    if not isinstance(skipna, bool | np.bool_):
        msg = f"skipna must be True or False; got {skipna!r}."
        raise TypeError(msg)
    X, y, origin = prepare_training(
        obj,
        target,
        sample_dims=sample_dims,
        feature_dim=feature_dim,
        features=features,
        skipna=skipna,
        chunks=chunks,
    )
    if y is None:
        X, _ = check_array(X)
        return _result((X,), origin, return_origin)
    validated = check_X_y(X, y)
    return _result((validated.X, validated.y), origin, return_origin)
