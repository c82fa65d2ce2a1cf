"""LinearRegression, Ridge, Lasso, ElasticNet: coefficients against scikit-learn, R^2, laziness, errors."""

from __future__ import annotations

import re

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from dask.array.utils import assert_eq
from sklearn import linear_model as sk
from sklearn.datasets import make_regression
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score

from daskml_lab import solvers
from daskml_lab.base import InvalidParameterError
from daskml_lab.linear_model import ElasticNet, HuberRegressor, Lasso, LinearRegression, Ridge
from daskml_lab.testing import raise_if_computes

RTOL, ATOL = 1e-3, 1e-4
SOLVER_SETTINGS = {
    "lbfgs": {"tol": 1e-8, "max_iter": 500},
    "gd": {"tol": 1e-7, "max_iter": 5000},
    "proximal": {"tol": 1e-7, "max_iter": 5000},
    "admm": {"tol": 1e-7, "max_iter": 2000},
}
#: Stochastic solvers stop near the optimum, not at it: they are compared on the objective instead.
STOCHASTIC_SETTINGS = {
    "sgd": {"tol": 1e-6, "max_iter": 500, "random_state": 0},
    "async-sgd": {"tol": 1e-6, "max_iter": 500, "random_state": 0},
}


def solvers_for(l1):
    return [name for name in solvers.supported_solvers("squared", l1) if name in SOLVER_SETTINGS]


def settings(solver):
    return {"solver": solver, **SOLVER_SETTINGS[solver]}


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=300, n_features=8, n_informative=4, noise=5.0, random_state=0)
    X[:, 0] += 3.0  # a non-centred feature, so that the intercept matters
    return X, y / 10 + 4.0


@pytest.fixture(scope="module")
def weights(regression):
    return np.random.default_rng(0).uniform(0.2, 3.0, size=len(regression[1]))


def chunked(*arrays, rows=70):
    return [da.from_array(a, chunks=(rows,) + (-1,) * (a.ndim - 1)) for a in arrays]


def assert_coef_close(ours, theirs):
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=RTOL, atol=ATOL)


# (our estimator, scikit-learn's estimator, l1 strength for the solver table) for each model
MODELS = {
    "linear": (lambda **kw: LinearRegression(**kw), lambda **kw: sk.LinearRegression(**kw), 0.0),
    "ridge": (lambda **kw: Ridge(alpha=3.0, **kw), lambda **kw: sk.Ridge(alpha=3.0, **kw), 0.0),
    "lasso": (
        lambda **kw: Lasso(alpha=0.2, **kw),
        lambda **kw: sk.Lasso(alpha=0.2, tol=1e-12, max_iter=100_000, **kw),
        0.2,
    ),
    "elastic-net": (
        lambda **kw: ElasticNet(alpha=0.3, l1_ratio=0.4, **kw),
        lambda **kw: sk.ElasticNet(alpha=0.3, l1_ratio=0.4, tol=1e-12, max_iter=100_000, **kw),
        0.12,
    ),
}
CASES = [(model, solver) for model, (_, _, l1) in MODELS.items() for solver in solvers_for(l1)]


@pytest.mark.parametrize(("model", "solver"), CASES)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_coefficients_match_sklearn(regression, weights, model, solver, fit_intercept, weighted):
    X, y = regression
    ours_factory, theirs_factory, _ = MODELS[model]
    Xd, yd, wd = chunked(X, y, weights)
    ours = ours_factory(fit_intercept=fit_intercept, **settings(solver))
    ours.fit(Xd, yd, sample_weight=wd if weighted else None)
    theirs = theirs_factory(fit_intercept=fit_intercept).fit(
        X, y, sample_weight=weights if weighted else None
    )
    assert ours.coef_.shape == (X.shape[1],)
    assert np.ndim(ours.intercept_) == 0
    assert_coef_close(ours, theirs)
    if model in ("lasso", "elastic-net"):
        assert (theirs.coef_ == 0).sum() >= 2, "the test problem should have zero coefficients"
        np.testing.assert_array_equal(ours.coef_ == 0, theirs.coef_ == 0)


@pytest.mark.parametrize("solver", [name for name in STOCHASTIC_SETTINGS if name in solvers.SOLVERS])
@pytest.mark.parametrize("model", ["ridge", "lasso"])
def test_stochastic_solvers_get_close_to_sklearn(regression, model, solver):
    X, y = regression
    X = (X - X.mean(axis=0)) / X.std(axis=0)  # SGD wants scaled features
    ours_factory, theirs_factory, _ = MODELS[model]
    ours = ours_factory(solver=solver, **STOCHASTIC_SETTINGS[solver]).fit(*chunked(X, y))
    theirs = theirs_factory().fit(X, y)

    def objective(estimator):  # sklearn's objective of each model
        residual = y - X @ estimator.coef_ - estimator.intercept_
        if model == "ridge":
            return residual @ residual + 3.0 * estimator.coef_ @ estimator.coef_
        return residual @ residual / (2 * len(y)) + 0.2 * np.abs(estimator.coef_).sum()

    # stated tolerance: objective within 1e-3 (relative) of the optimum
    assert objective(ours) <= objective(theirs) * (1 + 1e-3)


def test_integer_sample_weights_equal_repeated_rows(regression):
    X, y = regression
    repeats = np.random.default_rng(1).integers(0, 3, size=len(y))
    weighted = Lasso(alpha=0.1, tol=1e-8).fit(X, y, sample_weight=repeats.astype(float))
    repeated = Lasso(alpha=0.1, tol=1e-8).fit(np.repeat(X, repeats, axis=0), np.repeat(y, repeats))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=RTOL, atol=ATOL)


def test_score_is_weighted_r2_in_one_compute(regression, weights):
    X, y = regression
    Xd, yd, wd = chunked(X, y, weights)
    model = Ridge(alpha=1.0).fit(Xd, yd)
    prediction = model.predict(X)
    with raise_if_computes(max_computes=1):
        score = model.score(Xd, yd, sample_weight=wd)
    assert isinstance(score, float)
    np.testing.assert_allclose(score, r2_score(y, prediction, sample_weight=weights), rtol=1e-8)
    np.testing.assert_allclose(model.score(X, y), r2_score(y, prediction), rtol=1e-8)


def test_r2_of_a_constant_target_follows_sklearn():
    X = np.random.default_rng(2).normal(size=(30, 2))
    model = LinearRegression().fit(X, np.full(30, 2.0))
    model.coef_, model.intercept_ = np.zeros(2), 2.0  # the exact solution, free of solver round-off
    assert model.score(X, np.full(30, 2.0)) == 1.0  # perfect prediction of a constant
    assert model.score(X, np.full(30, 5.0)) == 0.0  # imperfect prediction of a constant


def test_predict_is_lazy_and_matches_sklearn(regression):
    X, y = regression
    Xd, yd = chunked(X, y)
    ours = Ridge(alpha=2.0, **settings("lbfgs")).fit(Xd, yd)
    theirs = sk.Ridge(alpha=2.0).fit(X, y)
    with raise_if_computes():
        prediction = ours.predict(Xd)
    assert isinstance(prediction, da.Array)
    assert prediction.chunks == (Xd.chunks[0],)
    assert prediction.name.startswith("daskml-decision-function")
    assert_eq(prediction, theirs.predict(X), rtol=RTOL, atol=ATOL)
    numpy_prediction = ours.predict(X)
    assert isinstance(numpy_prediction, np.ndarray)


def test_fit_compute_budget(regression, weights):
    X, y = regression
    Xd, yd, wd = chunked(X, y, weights)
    # 1: the sum of the sample weights; 1: the solver loading the row blocks (local path).
    with raise_if_computes(max_computes=2):
        model = ElasticNet(alpha=0.1).fit(Xd, yd, sample_weight=wd)
    with raise_if_computes(max_computes=1):
        Ridge().fit(Xd, yd)
    assert model.n_iter_ > 2


def test_float32_stays_float32(regression):
    X, y = regression
    model = Ridge(alpha=1.0, **settings("lbfgs")).fit(*chunked(X.astype(np.float32), y.astype(np.float32)))
    reference = Ridge(alpha=1.0, **settings("lbfgs")).fit(X, y)
    assert model.coef_.dtype == np.float32
    assert np.asarray(model.intercept_).dtype == np.float32
    prediction = model.predict(da.from_array(X.astype(np.float32), chunks=(70, -1)))
    assert prediction.dtype == np.float32
    assert prediction.compute().dtype == np.float32
    # float32 sums carry about 7 significant digits: allow 1e-3 absolute on coefficients of order 10.
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=RTOL, atol=1e-3)


@pytest.mark.parametrize("model", [Ridge(alpha=1.0), Lasso(alpha=0.05)])
def test_sparse_blocks_match_dense(regression, model):
    X, y = regression
    X = X * (np.random.default_rng(3).uniform(size=X.shape) > 0.5)
    dense = model.set_params(tol=1e-7, max_iter=5000).fit(X, y).coef_.copy()
    blocks = da.from_array(sp.csr_matrix(X), chunks=(70, -1), asarray=False, fancy=False)
    model.fit(blocks, da.from_array(y, chunks=70))
    np.testing.assert_allclose(model.coef_, dense, rtol=1e-6, atol=1e-8)
    with raise_if_computes():
        prediction = model.predict(blocks)
    assert_eq(prediction, X @ model.coef_ + model.intercept_, rtol=1e-8)


def test_lasso_is_elastic_net_with_l1_ratio_one(regression):
    X, y = regression
    lasso = Lasso(alpha=0.3, tol=1e-8).fit(X, y)
    enet = ElasticNet(alpha=0.3, l1_ratio=1.0, tol=1e-8).fit(X, y)
    np.testing.assert_allclose(lasso.coef_, enet.coef_, rtol=1e-8, atol=1e-8)
    assert "l1_ratio" not in lasso.get_params()


def test_warm_start_reuses_coefficients(regression):
    X, y = regression
    model = Lasso(alpha=0.2, tol=1e-8, warm_start=True).fit(X, y)
    first = model.n_iter_
    model.fit(X, y)
    assert model.n_iter_ < first


# ------------------------------------------------------------------------------------------------------ error


def test_bad_target_and_weights(regression):
    X, y = regression
    with pytest.raises(ValueError, match="Ridge requires y to be passed, but the target y is None"):
        Ridge().fit(X, None)
    y_nan = y.copy()
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        Ridge().fit(X, y_nan)
    with pytest.raises(ValueError, match=r"The sample weights sum to zero \(0.0\)"):
        Lasso().fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match="sample_weight must be finite and non-negative"):
        Ridge().fit(X, y, sample_weight=-np.ones(len(y)))


def test_invalid_parameters(regression):
    X, y = regression
    with pytest.raises(
        InvalidParameterError, match=re.escape("The 'alpha' parameter of Ridge must be a float")
    ):
        Ridge(alpha=-1.0).fit(X, y)
    with pytest.raises(
        InvalidParameterError, match=re.escape("The 'l1_ratio' parameter of ElasticNet must be")
    ):
        ElasticNet(l1_ratio=2).fit(X, y)
    with pytest.raises(
        InvalidParameterError, match=re.escape("The 'fit_intercept' parameter of Lasso must be")
    ):
        Lasso(fit_intercept="yes").fit(X, y)


def test_solver_without_l1_support(regression):
    X, y = regression
    unsupported = [name for name in solvers.SOLVERS if name not in solvers.supported_solvers("squared", 1.0)]
    if not unsupported:
        pytest.skip("every registered solver supports the L1 penalty")
    with pytest.raises(
        ValueError, match=re.escape(f"solver={unsupported[0]!r} does not support loss='squared' with")
    ):
        Lasso(solver=unsupported[0]).fit(X, y)


def test_not_fitted_and_feature_count(regression):
    X, y = regression
    with pytest.raises(NotFittedError, match="This Lasso instance is not fitted yet"):
        Lasso().predict(X)
    model = LinearRegression().fit(X, y)
    with pytest.raises(
        ValueError, match="X has 9 features, but LinearRegression is expecting 8 features as input"
    ):
        model.predict(np.hstack([X, X[:, :1]]))


# ------------------------------------------------------------------------------------------------------ Huber


@pytest.fixture(scope="module")
def with_outliers():
    X, y = make_regression(n_samples=400, n_features=5, noise=5.0, random_state=3)
    rng = np.random.default_rng(3)
    y[:20] += rng.normal(0, 200, size=20)  # 5 % gross outliers
    return X, y, rng.uniform(0.2, 3.0, size=len(y))


@pytest.mark.parametrize("solver", solvers_for(0.0))
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_huber_matches_sklearn(with_outliers, solver, fit_intercept, weighted):
    X, y, weights = with_outliers
    Xd, yd, wd = chunked(X, y, weights)
    ours = HuberRegressor(epsilon=1.5, alpha=1e-3, fit_intercept=fit_intercept, **settings(solver))
    ours.fit(Xd, yd, sample_weight=wd if weighted else None)
    theirs = sk.HuberRegressor(
        epsilon=1.5, alpha=1e-3, fit_intercept=fit_intercept, tol=1e-10, max_iter=10_000
    )
    theirs.fit(X, y, sample_weight=weights if weighted else None)
    assert_coef_close(ours, theirs)
    np.testing.assert_allclose(ours.scale_, theirs.scale_, rtol=RTOL)
    history = ours.history_
    assert {"scale_update", "scale", "iteration", "objective"} <= set(history.columns)
    assert history["scale_update"].iloc[-1] >= 1  # the scale was updated at least once
    assert ours.n_iter_ >= history["scale_update"].nunique()


def test_huber_is_robust_where_least_squares_is_not(with_outliers):
    X, y, _ = with_outliers
    clean = sk.LinearRegression().fit(X[20:], y[20:]).coef_
    huber = HuberRegressor(tol=1e-8).fit(X, y).coef_
    least_squares = LinearRegression().fit(X, y).coef_
    assert np.abs(huber - clean).max() < 0.2 * np.abs(least_squares - clean).max()


def test_huber_warm_start_and_laziness(with_outliers):
    X, y, _ = with_outliers
    Xd, yd = chunked(X, y)
    model = HuberRegressor(tol=1e-7, warm_start=True).fit(Xd, yd)
    first = model.n_iter_
    model.fit(Xd, yd)
    assert model.n_iter_ < first
    with raise_if_computes():
        prediction = model.predict(Xd)
    assert_eq(prediction, X @ model.coef_ + model.intercept_, rtol=1e-10)


def test_huber_invalid_epsilon(with_outliers):
    X, y, _ = with_outliers
    message = (
        "The 'epsilon' parameter of HuberRegressor must be a float in the range [1, inf). Got 0.5 instead."
    )
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        HuberRegressor(epsilon=0.5).fit(X, y)
