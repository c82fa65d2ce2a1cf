"""Placeholder: being written (see issue 2)."""

def from_dataframe(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("from_dataframe")


def from_xarray(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("from_xarray")


def read(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("read")


def read_csv(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("read_csv")


def read_netcdf(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("read_netcdf")


def read_parquet(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("read_parquet")


def read_zarr(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("read_zarr")


