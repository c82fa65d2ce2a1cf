"""Linear models on row-chunked Dask arrays, with scikit-learn's parameters, objectives and results.

Each estimator describes its objective and hands it to a solver of :mod:`daskml_lab.solvers`; prediction
methods are lazy for dask and xarray input.
"""

from daskml_lab.linear_model._glm import GammaRegressor, PoissonRegressor, TweedieRegressor
from daskml_lab.linear_model._huber import HuberRegressor
from daskml_lab.linear_model._logistic import LogisticRegression
from daskml_lab.linear_model._partitioned_model import PartitionedCoefficients
from daskml_lab.linear_model._regression import ElasticNet, Lasso, LinearRegression, Ridge
from daskml_lab.linear_model._svm import LinearSVC

__all__ = [
    "ElasticNet",
    "GammaRegressor",
    "HuberRegressor",
    "Lasso",
    "LinearRegression",
    "LinearSVC",
    "LogisticRegression",
    "PartitionedCoefficients",
    "PoissonRegressor",
    "Ridge",
    "TweedieRegressor",
]
