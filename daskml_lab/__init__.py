"""daskml_lab: machine learning on row-chunked Dask arrays.

The package is organised by responsibility:

- :mod:`daskml_lab.data` turns numpy, pandas, xarray, zarr, netCDF/HDF5, parquet, CSV and svmlight inputs into
  row-chunked Dask arrays, shards and splits them, and validates them;
- :mod:`daskml_lab.solvers` minimises blocked objectives (L-BFGS, gradient descent, proximal methods, SGD, ADMM)
  where only the parameters travel;
- :mod:`daskml_lab.linear_model` holds scikit-learn compatible linear models built on those solvers;
- :mod:`daskml_lab.ensemble` trains any scikit-learn estimator once per shard, where the shard lives, and
  :mod:`daskml_lab.fusion` fuses the shard models (voting, weighted averaging, stacking, parameter averaging,
  forest union);
- :mod:`daskml_lab.preprocessing` scales, imputes and encodes features block by block (scikit-learn's
  scalers, ``SimpleImputer``, ``OneHotEncoder``, ``OrdinalEncoder``), fitted by one blocked pass;
- :mod:`daskml_lab.compose` applies transformers to the columns of a table (pandas or dask DataFrame) in one
  pass over the data (:class:`~daskml_lab.compose.ColumnTransformer`, date parts);
- :mod:`daskml_lab.metrics` scores predictions block by block (accuracy, confusion matrix, log loss, R², MSE,
  MAE), for every estimator's ``score`` and for your own evaluations;
- :mod:`daskml_lab.cluster` connects to a Dask scheduler (or starts a local one);
- :mod:`daskml_lab.monitoring` names our tasks, feeds the live training page of the Dask dashboard, draws
  progress bars and plots;
- :func:`daskml_lab.save` / :func:`daskml_lab.load` keep fitted models in a safe format (no pickle);
- :mod:`daskml_lab.testing` holds public helpers for testing code built on the package.

Importing the package has no side effects: no cluster is started and no client is looked up.
"""

from daskml_lab import (
    compose,
    data,
    ensemble,
    fusion,
    linear_model,
    metrics,
    monitoring,
    preprocessing,
    solvers,
)
from daskml_lab._version import __version__
from daskml_lab.cluster import connect
from daskml_lab.persistence import load, save

__all__ = [
    "__version__",
    "compose",
    "connect",
    "data",
    "ensemble",
    "fusion",
    "linear_model",
    "load",
    "metrics",
    "monitoring",
    "preprocessing",
    "save",
    "solvers",
]
