"""PoissonRegressor, GammaRegressor, TweedieRegressor: scikit-learn's optimum, predictions and D^2, errors."""

from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn import linear_model as sk

from daskml_lab.base import InvalidParameterError
from daskml_lab.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor
from daskml_lab.testing import raise_if_computes

from .conftest import shared_file

#: Our coefficients against scikit-learn's, both fitted to tol=1e-10 on the same objective.
RTOL, ATOL = 1e-5, 1e-7
TIGHT = {"tol": 1e-10, "max_iter": 1000}
SOLVERS = ["lbfgs", "newton-cg", "newton-cholesky"]

# (name, ours, scikit-learn's): TweedieRegressor at the powers of the issue, with the default link ('auto':
# identity for power 0, log otherwise)
MODELS = {
    "poisson": (PoissonRegressor, sk.PoissonRegressor, {}),
    "gamma": (GammaRegressor, sk.GammaRegressor, {}),
    "tweedie-0": (TweedieRegressor, sk.TweedieRegressor, {"power": 0.0}),
    "tweedie-1.5": (TweedieRegressor, sk.TweedieRegressor, {"power": 1.5}),
    "tweedie-2": (TweedieRegressor, sk.TweedieRegressor, {"power": 2.0}),
    "tweedie-3": (TweedieRegressor, sk.TweedieRegressor, {"power": 3.0}),
}


def _target(name: str, mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A target in the family's range whose conditional mean is ``mean``."""
    if name == "poisson":
        return rng.poisson(mean).astype(np.float64)
    if name == "tweedie-1.5":
        # compound Poisson-gamma: exact zeros and positive totals
        counts = rng.poisson(mean / 2.0)
        return np.array([rng.gamma(2.0 * k, 1.0) if k else 0.0 for k in counts])
    if name == "tweedie-0":
        return mean + rng.normal(size=mean.shape)
    return rng.gamma(4.0, mean / 4.0)  # gamma and inverse-Gaussian-like positive targets


@pytest.fixture(scope="module")
def glm_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    X[:, 0] = X[:, 0] * 3.0 + 1.0  # a wider, non-centred feature
    mean = np.exp(0.5 + X @ np.array([0.1, -0.3, 0.2, 0.0, 0.15]))
    weights = rng.uniform(0.2, 3.0, size=400)
    targets = {name: _target(name, mean, rng) for name in MODELS}
    return X, targets, weights


def _dask(*arrays, rows=100):
    return [da.from_array(a, chunks=(rows,) + (-1,) * (a.ndim - 1)) for a in arrays]


def _assert_same_model(ours, theirs):
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(
    ("weighted", "fit_intercept"),
    [(True, True), (False, False)],
    ids=["weighted-intercept", "unweighted-no-intercept"],
)
def test_coefficients_match_scikit_learn(glm_data, name, solver, weighted, fit_intercept):
    X, targets, weights = glm_data
    y = targets[name]
    ours_cls, theirs_cls, params = MODELS[name]
    sw = weights if weighted else None
    theirs = theirs_cls(alpha=0.05, fit_intercept=fit_intercept, **params, **TIGHT).fit(
        X, y, sample_weight=sw
    )
    Xd, yd, swd = _dask(X, y, weights)
    ours = ours_cls(alpha=0.05, fit_intercept=fit_intercept, solver=solver, **params, **TIGHT)
    ours.fit(Xd, yd, sample_weight=swd if weighted else None)
    _assert_same_model(ours, theirs)
    assert ours.n_iter_ >= 1
    if solver != "lbfgs":  # (lbfgs may also stop on scipy's ftol, as scikit-learn's)
        assert ours.history_["grad_norm"].iloc[-1] <= TIGHT["tol"]


@pytest.mark.parametrize("name", ["poisson", "gamma", "tweedie-1.5"])
def test_predict_and_d2_score_match_scikit_learn(glm_data, name):
    X, targets, weights = glm_data
    y = targets[name]
    ours_cls, theirs_cls, params = MODELS[name]
    theirs = theirs_cls(alpha=0.1, **params, **TIGHT).fit(X, y)
    Xd, yd, swd = _dask(X, y, weights)
    ours = ours_cls(alpha=0.1, **params, **TIGHT).fit(Xd, yd)
    with raise_if_computes():
        prediction = ours.predict(Xd)
    assert isinstance(prediction, da.Array)
    assert prediction.chunks == (Xd.chunks[0],)
    np.testing.assert_allclose(prediction.compute(), theirs.predict(X), rtol=1e-6)
    with raise_if_computes(max_computes=1):
        score = ours.score(Xd, yd)
    assert score == pytest.approx(theirs.score(X, y), rel=1e-7)
    weighted = ours.score(Xd, yd, sample_weight=swd)
    assert weighted == pytest.approx(theirs.score(X, y, sample_weight=weights), rel=1e-7)
    assert weighted != pytest.approx(score, rel=1e-4)  # the weights are used
    # numpy input gives numpy output
    assert isinstance(ours.predict(X), np.ndarray)


def test_identity_link_matches_scikit_learn(glm_data):
    X = glm_data[0]
    # counts whose mean is linear in x and stays well above 0 (the identity link's domain for power 1)
    y = np.random.default_rng(1).poisson(6.0 + X @ np.array([0.3, -0.5, 0.4, 0.0, 0.3])).astype(float)
    theirs = sk.TweedieRegressor(power=1.0, link="identity", alpha=0.1, **TIGHT).fit(X, y)
    ours = TweedieRegressor(power=1.0, link="identity", alpha=0.1, **TIGHT).fit(*_dask(X, y))
    _assert_same_model(ours, theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6)
    assert ours.predict(X).min() > 0


def test_sparse_blocks_match_dense(glm_data):
    X, targets, _ = glm_data
    y = targets["poisson"]
    dense = PoissonRegressor(alpha=0.05, solver="newton-cholesky", **TIGHT).fit(X, y)
    Xs = da.from_array(sp.csr_matrix(X), chunks=(100, 5), asarray=False)
    sparse = PoissonRegressor(alpha=0.05, solver="newton-cg", **TIGHT).fit(Xs, _dask(y)[0])
    _assert_same_model(sparse, dense)


def test_float32_input_stays_float32(glm_data):
    X, targets, _ = glm_data
    y = targets["gamma"]
    model = GammaRegressor(alpha=0.05, tol=1e-5).fit(X.astype(np.float32), y.astype(np.float32))
    assert model.coef_.dtype == np.float32
    theirs = sk.GammaRegressor(alpha=0.05, **TIGHT).fit(X, y)
    np.testing.assert_allclose(model.coef_, theirs.coef_, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    ("model", "y", "match"),
    [
        (PoissonRegressor(), [1.0, -2.0, 3.0, 0.0], r"Poisson deviance .* needs y >= 0, but y has 1 value"),
        (GammaRegressor(), [1.0, 0.0, 3.0, 2.0], r"gamma deviance .* needs y > 0, .*smallest y is 0"),
        (TweedieRegressor(power=3), [1.0, 2.0, 0.0, 2.0], r"inverse Gaussian deviance .* needs y > 0"),
        (TweedieRegressor(power=1.5), [1.0, -1.0, 0.0, 2.0], r"Tweedie deviance \(power=1.5, log link\)"),
    ],
)
def test_targets_outside_the_family_range_are_refused_before_the_solver(model, y, match):
    X = np.arange(8.0).reshape(4, 2)
    Xd, yd = _dask(X, np.asarray(y), rows=2)
    # the check is the first computation of fit: no solver pass runs
    with pytest.raises(ValueError, match=match), raise_if_computes(max_computes=1):
        model.fit(Xd, yd)
    assert not hasattr(model, "coef_")


def test_tweedie_ranges_follow_the_power():
    X = np.arange(8.0).reshape(4, 2)
    zeros_allowed = np.array([0.0, 1.0, 2.0, 1.0])
    TweedieRegressor(power=1.5, tol=1e-6).fit(X, zeros_allowed)
    TweedieRegressor(power=0.0, tol=1e-6).fit(X, zeros_allowed - 5)  # any real y
    with pytest.raises(ValueError, match="needs y > 0"):
        TweedieRegressor(power=2.5).fit(X, zeros_allowed)


def test_score_refuses_targets_outside_the_range(glm_data):
    X, targets, _ = glm_data
    model = GammaRegressor(tol=1e-6).fit(X, targets["gamma"])
    with pytest.raises(ValueError, match="needs y > 0"):
        model.score(X, np.where(np.arange(400) == 3, -1.0, targets["gamma"]))


def test_parameter_errors():
    X, y = np.arange(8.0).reshape(4, 2), np.ones(4)
    with pytest.raises(InvalidParameterError, match="link"):
        TweedieRegressor(link="logit").fit(X, y)
    with pytest.raises(InvalidParameterError, match="alpha"):
        PoissonRegressor(alpha=-1.0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="verbose"):
        GammaRegressor(verbose=-1).fit(X, y)
    with pytest.raises(InvalidParameterError, match="solver"):
        PoissonRegressor(solver="newton").fit(X, y)


def test_the_intercept_starts_at_the_link_of_the_mean(glm_data):
    """Like scikit-learn: the first record is already below the objective of the zero model."""
    X, targets, _ = glm_data
    y = targets["gamma"] * 1000.0  # far from exp(0) = 1
    model = GammaRegressor(alpha=0.1, solver="newton-cholesky", **TIGHT).fit(X, y)
    assert model.n_iter_ <= 8
    theirs = sk.GammaRegressor(alpha=0.1, **TIGHT).fit(X, y)
    _assert_same_model(model, theirs)


def test_warm_start_continues_from_the_previous_fit(glm_data):
    X, targets, _ = glm_data
    y = targets["poisson"]
    model = PoissonRegressor(alpha=0.05, solver="newton-cg", warm_start=True, **TIGHT).fit(X, y)
    first = model.n_iter_
    model.fit(X, y)
    assert first >= 2
    assert model.n_iter_ == 0  # already at the optimum


def test_verbose_logs_each_iteration(glm_data, caplog):
    X, targets, _ = glm_data
    with caplog.at_level(logging.INFO, logger="daskml_lab.linear_model._glm"):
        model = PoissonRegressor(verbose=1, solver="newton-cholesky").fit(X, targets["poisson"])
    lines = [r.getMessage() for r in caplog.records if "PoissonRegressor iteration" in r.getMessage()]
    assert len(lines) == model.n_iter_ >= 1
    with caplog.at_level(logging.INFO, logger="daskml_lab.linear_model._glm"):
        caplog.clear()
        PoissonRegressor(verbose=0).fit(X, targets["poisson"])
    assert not [r for r in caplog.records if "iteration" in r.getMessage()]


@pytest.mark.cluster
def test_on_a_multi_process_cluster(client, glm_data):
    X, targets, weights = glm_data
    y = targets["tweedie-1.5"]
    theirs = sk.TweedieRegressor(power=1.5, alpha=0.05, **TIGHT).fit(X, y, sample_weight=weights)
    Xd, yd, swd = _dask(X, y, weights)
    for solver in ("newton-cg", "newton-cholesky"):
        ours = TweedieRegressor(power=1.5, alpha=0.05, solver=solver, **TIGHT)
        ours.fit(Xd, yd, sample_weight=swd)
        _assert_same_model(ours, theirs)
    assert ours.score(Xd, yd) == pytest.approx(theirs.score(X, y), rel=1e-7)


# ------------------------------------------------------------------------------------------------ real data


def _diamonds(shared_data):
    frame = pd.read_csv(shared_file(shared_data, "diamonds", "diamonds.csv.gz"))
    numeric = frame[["carat", "depth", "table", "x", "y", "z"]].to_numpy(dtype=np.float64)
    ordinal = np.column_stack(
        [
            frame[column].astype("category").cat.codes.to_numpy(np.float64)
            for column in ("cut", "color", "clarity")
        ]
    )
    X = np.column_stack([numeric, ordinal])
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X, frame["price"].to_numpy(dtype=np.float64)


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cholesky"])
def test_gamma_model_of_diamond_prices_matches_scikit_learn(shared_data, solver):
    """53,940 real prices (326..18,823 USD): a gamma GLM with the log link, against scikit-learn's."""
    X, price = _diamonds(shared_data)
    theirs = sk.GammaRegressor(alpha=1e-3, tol=1e-8, max_iter=1000).fit(X, price)
    Xd, yd = _dask(X, price, rows=10_000)
    ours = GammaRegressor(alpha=1e-3, tol=1e-8, max_iter=1000, solver=solver).fit(Xd, yd)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-5, atol=1e-6)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=1e-6)
    assert ours.score(Xd, yd) == pytest.approx(theirs.score(X, price), rel=1e-6)
    assert ours.score(Xd, yd) > 0.8


def test_identity_link_steps_stay_where_the_mean_is_positive(glm_data):
    """Steps to a negative mean are rejected: every solver ends at the same feasible optimum.

    (On these data scikit-learn's lbfgs ends with one negative mean, where its objective is NaN.)
    """
    X, targets, _ = glm_data
    y = targets["gamma"]
    fits = [
        TweedieRegressor(power=1.0, link="identity", alpha=0.1, solver=solver, **TIGHT).fit(X, y)
        for solver in SOLVERS
    ]
    for model in fits:
        assert model.predict(X).min() > 0
        np.testing.assert_allclose(model.coef_, fits[-1].coef_, rtol=1e-6, atol=1e-8)
