"""The data layer: inputs of every kind turned into row-chunked Dask arrays, validated, sharded and split.

Every algorithm of the package relies on the contract established here: ``X`` is a 2-D dask array chunked by
rows only (all features in one column chunk), ``y`` and ``sample_weight`` are 1-D dask arrays with the same row
chunks, chunk sizes are known and the dtype is numeric.
"""

from daskml_lab.data._convert import InputOrigin
from daskml_lab.data.ingest import (
    from_dataframe,
    from_xarray,
    read,
    read_csv,
    read_netcdf,
    read_parquet,
    read_zarr,
)
from daskml_lab.data.sharding import shard, shard_summary
from daskml_lab.data.split import train_test_split
from daskml_lab.data.svmlight import read_svmlight
from daskml_lab.data.synthetic import make_classification, make_regression
from daskml_lab.data.validation import check_array, check_classes, check_n_features, check_X_y

__all__ = [
    "InputOrigin",
    "check_X_y",
    "check_array",
    "check_classes",
    "check_n_features",
    "from_dataframe",
    "from_xarray",
    "make_classification",
    "make_regression",
    "read",
    "read_csv",
    "read_netcdf",
    "read_parquet",
    "read_svmlight",
    "read_zarr",
    "shard",
    "shard_summary",
    "train_test_split",
]
