"""Former home of the readers, kept so that ``daskml_lab.data.ingest.<name>`` imports keep working.

The readers now live in one module per format under :mod:`daskml_lab.data.formats`, and
:func:`~daskml_lab.data.read` dispatches through its registry; import them from :mod:`daskml_lab.data`.
"""

from daskml_lab.data._frames import FrameOrigin, from_dataframe
from daskml_lab.data._from_xarray import from_xarray
from daskml_lab.data.formats._csv import read_csv
from daskml_lab.data.formats._netcdf import read_netcdf
from daskml_lab.data.formats._parquet import read_parquet
from daskml_lab.data.formats._registry import read
from daskml_lab.data.formats._zarr import read_zarr

__all__ = [
    "FrameOrigin",
    "from_dataframe",
    "from_xarray",
    "read",
    "read_csv",
    "read_netcdf",
    "read_parquet",
    "read_zarr",
]
