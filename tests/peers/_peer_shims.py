"""Thin adapters that let dask-ml's and dask-glm's own tests run against daskml_lab.

The vendored test modules import ``_peer_dask_ml`` and ``_peer_dask_glm``, registered here, instead of ``dask_ml``
and ``dask_glm`` (the change made to their import lines; see ORIGIN.md). Every adapter maps the peer's constructor
parameters onto a daskml_lab estimator and returns **that estimator itself**, so what the tests exercise is
daskml_lab's own code; nothing here reimplements a model. The data generators copy the peers' recipes (with
NumPy/Dask random generators) because the tests depend on their shapes, dtypes and chunks.

Parameter mapping (dask-ml / dask-glm -> daskml_lab):

- ``C`` -> ``C`` (logistic) or ``alpha = 1 / C`` (linear and Poisson regression), ``lamduh`` -> ``1 / lamduh``
  as ``C``: both peers minimise ``loss + lamduh * penalty`` with ``lamduh = 1 / C`` and the L2 penalty
  ``||w||^2 / 2``, which is scikit-learn's objective for these estimators;
- ``penalty``/``regularizer`` ``"l2"``, ``"l1"``, ``"elastic_net"`` -> ``l1_ratio`` 0, 1, 0.5;
- ``solver``: ``"admm"``, ``"lbfgs"``, ``"proximal_grad"`` -> ``"proximal"``, ``"gradient_descent"`` -> ``"gd"``,
  ``"newton"`` -> ``"newton-cholesky"`` (a Newton method on the blocked ``X^T W X``); anything else (the peers'
  tests pass regularizer objects as solvers to constructors they never fit) is stored unvalidated, as
  scikit-learn's contract has ``__init__`` do;
- ``BlockwiseVotingClassifier(estimator, voting=...)`` -> ``ShardEnsembleClassifier(estimator,
  fusion="hard-voting"|"soft-voting", sharding="contiguous")`` (one shard per row block, as the peer);
  ``BlockwiseVotingRegressor`` -> ``ShardEnsembleRegressor(..., fusion="soft-voting")`` (the mean).
"""

from __future__ import annotations

import sys
import types
from typing import Any

import dask
import dask.array as da
import numpy as np
import sklearn.datasets
from sklearn.metrics import mean_poisson_deviance
from sklearn.model_selection import GridSearchCV

from daskml_lab import ensemble, linear_model

_SOLVERS = {
    "admm": "admm",
    "lbfgs": "lbfgs",
    "newton": "newton-cholesky",
    "proximal_grad": "proximal",
    "gradient_descent": "gd",
}
_L1_RATIO = {"l2": 0.0, "l1": 1.0, "elastic_net": 0.5}


def _solver(solver: Any) -> Any:
    return _SOLVERS.get(solver, solver) if isinstance(solver, str) else solver


def _l1_ratio(penalty: Any) -> float:
    if isinstance(penalty, str):
        return _L1_RATIO[penalty]
    return _L1_RATIO.get(getattr(penalty, "name", "l2"), 0.0)


# ---------------------------------------------------------------------------------------------------------
# estimators


def LogisticRegression(
    penalty: Any = "l2",
    C: float = 1.0,
    fit_intercept: bool = True,
    solver: Any = "admm",
    max_iter: int = 100,
    tol: float = 1e-4,
    lamduh: float | None = None,
    regularizer: Any = None,
    **_ignored: Any,
) -> linear_model.LogisticRegression:
    """dask-ml's/dask-glm's ``LogisticRegression`` as daskml_lab's."""
    if lamduh is not None:
        C = 1.0 / lamduh
    return linear_model.LogisticRegression(
        C=C,
        l1_ratio=_l1_ratio(regularizer if regularizer is not None else penalty),
        fit_intercept=fit_intercept,
        solver=_solver(solver),
        max_iter=max_iter,
        tol=tol,
    )


def LinearRegression(
    penalty: Any = "l2",
    C: float = 1.0,
    fit_intercept: bool = True,
    solver: Any = "admm",
    max_iter: int = 100,
    tol: float = 1e-4,
    lamduh: float | None = None,
    **_ignored: Any,
) -> Any:
    """The peers' ``LinearRegression`` (an L2-penalised least squares by default) as daskml_lab's ``Ridge``."""
    alpha = lamduh if lamduh is not None else 1.0 / C
    return linear_model.Ridge(alpha=alpha, fit_intercept=fit_intercept, max_iter=max_iter, tol=tol)


def PoissonRegression(
    penalty: Any = "l2",
    C: float = 1.0,
    fit_intercept: bool = True,
    solver: Any = "admm",
    max_iter: int = 100,
    tol: float = 1e-4,
    lamduh: float | None = None,
    **_ignored: Any,
) -> Any:
    """The peers' ``PoissonRegression`` as daskml_lab's ``PoissonRegressor`` (with their ``get_deviance``)."""
    alpha = lamduh if lamduh is not None else 1.0 / C
    solver = _solver(solver)
    if solver not in ("lbfgs", "newton-cholesky", "newton-cg"):
        solver = "lbfgs"  # daskml_lab's GLM families run on the smooth solvers only
    return _PoissonWithDeviance(
        alpha=alpha, fit_intercept=fit_intercept, solver=solver, max_iter=max_iter, tol=tol
    )


class _PoissonWithDeviance(linear_model.PoissonRegressor):
    """daskml_lab's PoissonRegressor plus the peers' ``get_deviance`` (scikit-learn has no such method)."""

    def get_deviance(self, X: Any, y: Any) -> float:
        """The total Poisson deviance of the predictions (scikit-learn's mean deviance times the rows)."""
        mu, y = dask.compute(self.predict(X), y)
        return float(mean_poisson_deviance(np.asarray(y, dtype=float), np.asarray(mu)) * len(mu))


def BlockwiseVotingClassifier(estimator: Any, voting: str = "hard", classes: Any = None) -> Any:
    """dask-ml's ``BlockwiseVotingClassifier`` as a ``ShardEnsembleClassifier`` over the row blocks."""
    return ensemble.ShardEnsembleClassifier(estimator, fusion=f"{voting}-voting", sharding="contiguous")


def BlockwiseVotingRegressor(estimator: Any) -> Any:
    """dask-ml's ``BlockwiseVotingRegressor`` (the mean of the block models) as a ``ShardEnsembleRegressor``."""
    return ensemble.ShardEnsembleRegressor(estimator, fusion="soft-voting", sharding="contiguous")


# ---------------------------------------------------------------------------------------------------------
# data generators (the peers' recipes)


def _ml_make_classification(n_samples=100, n_features=20, chunks=None, random_state=None, **kwargs):
    X, y = sklearn.datasets.make_classification(
        n_samples=n_samples, n_features=n_features, random_state=random_state, **kwargs
    )
    chunks = chunks if chunks is not None else n_samples
    row_chunks = chunks[0] if isinstance(chunks, tuple) else chunks
    return da.from_array(X, chunks=(row_chunks, n_features)), da.from_array(y, chunks=row_chunks)


def _ml_make_regression(n_samples=100, n_features=100, chunks=None, random_state=None, **kwargs):
    X, y = sklearn.datasets.make_regression(
        n_samples=n_samples, n_features=n_features, random_state=random_state, **kwargs
    )
    chunks = chunks if chunks is not None else n_samples
    row_chunks = chunks[0] if isinstance(chunks, tuple) else chunks
    return da.from_array(X, chunks=(row_chunks, n_features)), da.from_array(y, chunks=row_chunks)


def _ml_make_counts(
    n_samples=1000, n_features=100, n_informative=2, scale=1.0, chunks=100, random_state=None
):
    rng = np.random.RandomState(random_state)
    X = rng.normal(0, 1, size=(n_samples, n_features))
    informative_idx = rng.choice(n_features, n_informative)
    beta = (rng.random_sample(n_features) - 1) * scale
    rate = np.exp(X[:, informative_idx] @ beta[informative_idx])
    y = rng.poisson(rate)
    return da.from_array(X, chunks=(chunks, n_features)), da.from_array(y, chunks=chunks)


def _glm_data(
    kind: str, n_samples=1000, n_features=100, n_informative=2, scale=1.0, chunksize=100, is_sparse=False
):
    # dask-glm's recipe, seeded here so that every run of the suite sees the same data.
    drng, rng = da.random.default_rng(0), np.random.default_rng(0)
    X = drng.normal(0, 1, size=(n_samples, n_features), chunks=(chunksize, n_features))
    if is_sparse:
        import pytest

        sparse = pytest.importorskip(
            "sparse", reason="pydata/sparse is not installed (optional, see tests/peers/ORIGIN.md)"
        )
        X = X.map_blocks(sparse.COO)
    informative_idx = rng.choice(n_features, n_informative)
    beta = (rng.random(n_features) - 1) * scale
    z0 = X[:, informative_idx].dot(beta[informative_idx])
    if kind == "classification":
        return X, drng.random(z0.shape, chunks=(chunksize,)) < 1 / (1 + da.exp(-z0))
    if kind == "regression":
        return X, drng.random(z0.shape, chunks=(chunksize,))
    return X, drng.poisson(da.exp(z0), chunks=(chunksize,))


class _Regularizer:
    """dask-glm's regularizer classes, only as far as the tests use them (their subclasses' instances)."""

    name = "base"


class _L1(_Regularizer):
    name = "l1"


class _L2(_Regularizer):
    name = "l2"


class _ElasticNet(_Regularizer):
    name = "elastic_net"


def _add_intercept_unsupported(*args: Any, **kwargs: Any) -> Any:
    msg = "daskml_lab has no add_intercept: the estimators fit the intercept themselves (fit_intercept=True)."
    raise NotImplementedError(msg)


# ---------------------------------------------------------------------------------------------------------
# the namespaces the vendored tests import


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


dask_ml = _module(
    "dask_ml",
    linear_model=_module(
        "dask_ml.linear_model",
        LinearRegression=LinearRegression,
        LogisticRegression=LogisticRegression,
        PoissonRegression=PoissonRegression,
        utils=_module("dask_ml.linear_model.utils", add_intercept=_add_intercept_unsupported),
    ),
    datasets=_module(
        "dask_ml.datasets",
        make_classification=_ml_make_classification,
        make_regression=_ml_make_regression,
        make_counts=_ml_make_counts,
    ),
    ensemble=_module(
        "dask_ml.ensemble",
        BlockwiseVotingClassifier=BlockwiseVotingClassifier,
        BlockwiseVotingRegressor=BlockwiseVotingRegressor,
    ),
    model_selection=_module("dask_ml.model_selection", GridSearchCV=GridSearchCV),
    # dask-ml skips its GLM tests on dask >= 2025.3 (dask/dask-ml#1016); daskml_lab runs them.
    _compat=_module("dask_ml._compat", DASK_2025_3_0=False),
)

dask_glm = _module(
    "dask_glm",
    __version__="0.3.2",  # the release the vendored tests come from (they skip themselves below 0.2.1)
    datasets=_module(
        "dask_glm.datasets",
        make_classification=lambda **kw: _glm_data("classification", **kw),
        make_regression=lambda **kw: _glm_data("regression", **kw),
        make_poisson=lambda **kw: _glm_data("poisson", **kw),
    ),
    estimators=_module(
        "dask_glm.estimators",
        LinearRegression=LinearRegression,
        LogisticRegression=LogisticRegression,
        PoissonRegression=PoissonRegression,
    ),
    regularizers=_module("dask_glm.regularizers", Regularizer=_Regularizer),
    utils=_module("dask_glm.utils", to_dask_cupy_array_xy=None),
)

Regularizer = _Regularizer


def _register(module: types.ModuleType, prefix: str) -> None:
    """Make ``module`` and its submodules importable as ``_peer_<name>...`` (never under the peers' own names,
    so an installed dask-ml or dask-glm is not shadowed)."""
    sys.modules[prefix] = module
    for attribute, value in vars(module).items():
        if isinstance(value, types.ModuleType):
            _register(value, f"{prefix}.{attribute}")


_register(dask_ml, "_peer_dask_ml")
_register(dask_glm, "_peer_dask_glm")
