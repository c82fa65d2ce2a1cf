"""The data layer: inputs of every kind turned into row-chunked Dask arrays, validated, sharded and split.

Every algorithm of the package relies on the contract established here: ``X`` is a 2-D dask array chunked by
rows only (all features in one column chunk), ``y`` and ``sample_weight`` are 1-D dask arrays with the same row
chunks, chunk sizes are known and the dtype is numeric.

Files are read through the format registry of :mod:`daskml_lab.data.formats`: :func:`read` picks the reader
of a path from its extension, and a new format is one module and one registry line there.
"""

from daskml_lab.data._convert import is_dask_dataframe, to_dask_array, wrap_output
from daskml_lab.data._frames import from_dataframe
from daskml_lab.data._from_xarray import from_xarray
from daskml_lab.data._origin import InputOrigin
from daskml_lab.data._target_summary import TargetSummary, describe_target
from daskml_lab.data.formats import read
from daskml_lab.data.formats._csv import read_csv
from daskml_lab.data.formats._netcdf import read_netcdf
from daskml_lab.data.formats._parquet import read_parquet
from daskml_lab.data.formats._svmlight import read_svmlight
from daskml_lab.data.formats._zarr import read_zarr
from daskml_lab.data.hashing import HashingSpec, hash_features
from daskml_lab.data.sharding import shard, shard_summary
from daskml_lab.data.split import train_test_split
from daskml_lab.data.synthetic import make_classification, make_regression
from daskml_lab.data.synthetic_sparse import make_sparse_classification
from daskml_lab.data.validation import check_array, check_classes, check_n_features, check_X_y

__all__ = [
    "HashingSpec",
    "InputOrigin",
    "TargetSummary",
    "check_X_y",
    "check_array",
    "check_classes",
    "check_n_features",
    "describe_target",
    "from_dataframe",
    "from_xarray",
    "hash_features",
    "is_dask_dataframe",
    "make_classification",
    "make_regression",
    "make_sparse_classification",
    "read",
    "read_csv",
    "read_netcdf",
    "read_parquet",
    "read_svmlight",
    "read_zarr",
    "shard",
    "shard_summary",
    "to_dask_array",
    "train_test_split",
    "wrap_output",
]
