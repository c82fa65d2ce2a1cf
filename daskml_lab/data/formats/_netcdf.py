"""netCDF4/HDF5 files, opened lazily with xarray and handed to ``from_xarray``; predictions written as netCDF."""

from __future__ import annotations

import importlib.util
from collections.abc import Hashable, Sequence
from typing import Any

from daskml_lab.data._from_xarray import from_xarray
from daskml_lab.data.formats._common import check_exists, text_as_fixed_width, unreadable
from daskml_lab.data.formats._registry import Format

__all__ = ["NETCDF", "read_netcdf", "write_netcdf"]


def read_netcdf(
    path: Any,
    target: Hashable | None = None,
    *,
    dataset: str | None = None,
    features: Sequence[Any] | None = None,
    sample_dims: Sequence[Hashable] | None = None,
    feature_dim: Hashable | None = None,
    skipna: bool = True,
    chunks: int | None = None,
    return_origin: bool = False,
    **xarray_options: Any,
) -> Any:
    """Read a netCDF4/HDF5 file lazily with xarray into ``X`` (and ``y``).

    The file is opened with ``xarray.open_dataset(path, chunks={}, ...)`` (dask-backed, the file's own chunks)
    and handed to :func:`from_xarray`. Two layouts:

    - netCDF variables, one feature per variable (``dataset=None``), with ``target`` naming a variable;
    - one 2-D dataset of features (``dataset="X"``, or ``"group/X"`` inside a group), first axis samples,
      second features, with ``target`` naming a 1-D dataset of the same group. This also reads plain HDF5
      files written by h5py (their axes get phony dimension names).

    Parameters
    ----------
    path : str or path-like
        The file.
    target : str, default=None
        Name of the target variable (or dataset). ``None`` returns ``X`` only.
    dataset : str, default=None
        Name (path) of a 2-D feature dataset, as described above.
    features, sample_dims, feature_dim, skipna, chunks
        See :func:`from_xarray`.
    return_origin : bool, default=False
        Also return the :class:`~daskml_lab.data.InputOrigin` for putting results back on coordinates.
    **xarray_options
        Passed to :func:`xarray.open_dataset`: ``engine`` (default ``"h5netcdf"`` when h5py is installed,
        otherwise ``"netcdf4"``), ``group``, ``decode_times``, ``phony_dims``...

    Returns
    -------
    X, y[, origin]
        As :func:`from_xarray`.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it cannot be read as netCDF/HDF5 (the error is chained), or as :func:`from_xarray`.
    ImportError
        If no netCDF engine is installed.

    Notes
    -----
    Opening reads metadata only. See :func:`from_xarray` for what ``skipna`` computes.

    Examples
    --------
    >>> X, y = read_netcdf("era5.nc", target="precip", sample_dims=("time", "lat", "lon"))  # doctest: +SKIP
    """
    import xarray as xr

    check_exists(path)
    options = dict(xarray_options)
    options.setdefault("engine", _netcdf_engine())
    options.setdefault("chunks", {})
    group = options.pop("group", None)
    if dataset is not None and "/" in dataset.strip("/"):
        prefix, dataset = dataset.strip("/").rsplit("/", 1)
        group = prefix if group is None else f"{group.rstrip('/')}/{prefix}"
    if options["engine"] == "h5netcdf" and dataset is not None:
        options.setdefault("phony_dims", "sort")
    try:
        ds = xr.open_dataset(path, group=group, **options)
    except (ValueError, OSError, KeyError) as err:
        raise unreadable(path, "netCDF/HDF5", err) from err
    if dataset is None:
        return from_xarray(
            ds,
            target,
            sample_dims=sample_dims,
            feature_dim=feature_dim,
            features=features,
            skipna=skipna,
            chunks=chunks,
            return_origin=return_origin,
        )
    if dataset not in ds.variables:
        msg = f"Dataset {dataset!r} not found in {path} (group {group!r}). Available: {list(ds.variables)}."
        raise ValueError(msg)
    X = ds[dataset]
    y = None
    if target is not None:
        if target not in ds.variables:
            msg = f"Target {target!r} not found in {path} (group {group!r}). Available: {list(ds.variables)}."
            raise ValueError(msg)
        y = ds[target]
        if y.ndim == 1 and X.ndim >= 1 and y.dims[0] not in X.dims and y.shape[0] == X.shape[0]:
            # Plain HDF5 axes have phony names, which need not match between datasets: pair them by position.
            y = y.rename({y.dims[0]: X.dims[0]})
    return from_xarray(
        X,
        y,
        sample_dims=sample_dims,
        feature_dim=feature_dim,
        features=features,
        skipna=skipna,
        chunks=chunks,
        return_origin=return_origin,
    )


def _netcdf_engine() -> str:
    if importlib.util.find_spec("h5py") is not None and importlib.util.find_spec("h5netcdf") is not None:
        return "h5netcdf"
    if importlib.util.find_spec("netCDF4") is not None:
        return "netcdf4"
    msg = "Reading netCDF/HDF5 needs h5netcdf with h5py, or netCDF4: pip install h5netcdf h5py."
    raise ImportError(msg)


def write_netcdf(dataset: Any, path: str, *, tabular: bool, label_width: int) -> None:
    """Write a Dataset of per-sample outputs to a netCDF4 file, from the workers (``tabular`` changes nothing).

    Text labels are stored as fixed-width strings of ``label_width`` characters.
    """
    dataset, _ = text_as_fixed_width(dataset, label_width)
    # compute: the workers write the blocks into the netCDF file, one at a time under xarray's lock
    dataset.to_netcdf(path)


#: The registry entry of netCDF4 and HDF5 files.
NETCDF = Format(
    name="netcdf",
    description="netCDF/HDF5",
    suffixes=(".nc", ".nc4", ".cdf", ".h5", ".hdf5", ".hdf", ".he5"),
    reader=read_netcdf,
    features="variables, or labels (positions) along the feature dimension",
    writer=write_netcdf,
    # Predictions are written as netCDF4: .h5 and the like are read (plain HDF5 too) but never written.
    output_suffixes=(".nc", ".nc4"),
)
