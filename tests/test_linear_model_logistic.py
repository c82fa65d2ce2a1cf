"""LogisticRegression: coefficients against scikit-learn for each solver, laziness, errors."""

from __future__ import annotations

import re

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from dask.array.utils import assert_eq
from scipy.special import logsumexp
from sklearn import linear_model as sk
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.preprocessing import StandardScaler

from daskml_lab import solvers
from daskml_lab.base import InvalidParameterError
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.testing import raise_if_computes

RTOL, ATOL = 1e-3, 1e-4
#: Solvers that converge to the exact optimum, and the settings that get them there on these small problems.
SOLVER_SETTINGS = {
    "lbfgs": {"tol": 1e-8, "max_iter": 500},
    "gd": {"tol": 1e-8, "max_iter": 5000},
    "proximal": {"tol": 1e-8, "max_iter": 5000},
    "admm": {"tol": 1e-8, "max_iter": 2000},
}
#: Stochastic solvers stop near the optimum, not at it: they are compared on objective and accuracy instead.
STOCHASTIC_SETTINGS = {
    "sgd": {"tol": 1e-6, "max_iter": 500, "random_state": 0},
    "async-sgd": {"tol": 1e-6, "max_iter": 500, "random_state": 0},
}


def solvers_for(loss, l1):
    """The registered solvers of a loss and penalty that target the exact optimum (parametrisation)."""
    return [name for name in solvers.supported_solvers(loss, l1) if name in SOLVER_SETTINGS]


def settings(solver):
    return {"solver": solver, **SOLVER_SETTINGS[solver]}


@pytest.fixture(scope="module")
def binary():
    X, y = make_classification(
        n_samples=400, n_features=6, n_informative=4, flip_y=0.1, class_sep=0.8, random_state=0
    )
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def multiclass():
    X, y = make_classification(
        n_samples=450, n_features=6, n_informative=4, n_classes=3, flip_y=0.05, random_state=1
    )
    return StandardScaler().fit_transform(X), y


def chunked(X, y, rows=90):
    return da.from_array(X, chunks=(rows, -1)), da.from_array(y, chunks=rows)


def assert_coef_close(ours, theirs):
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=RTOL, atol=ATOL)


def sklearn_logistic(**params):
    return sk.LogisticRegression(tol=1e-10, max_iter=10_000, **params)


# ----------------------------------------------------------------------------------------------- correctness


@pytest.mark.parametrize("solver", solvers_for("logistic", 0.0))
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_binary_matches_sklearn(binary, solver, fit_intercept):
    X, y = binary
    Xd, yd = chunked(X, y)
    ours = LogisticRegression(C=0.5, fit_intercept=fit_intercept, **settings(solver)).fit(Xd, yd)
    theirs = sklearn_logistic(C=0.5, fit_intercept=fit_intercept).fit(X, y)
    assert ours.coef_.shape == (1, X.shape[1])
    assert ours.intercept_.shape == (1,)
    assert_coef_close(ours, theirs)
    if not fit_intercept:
        assert ours.intercept_[0] == 0.0
    np.testing.assert_array_equal(ours.classes_, [0, 1])


@pytest.mark.parametrize("solver", solvers_for("logistic", 0.0))
def test_binary_sample_and_class_weights_match_sklearn(binary, solver):
    X, y = binary
    weights = np.random.default_rng(0).uniform(0.2, 3.0, size=len(y))
    Xd, yd = chunked(X, y)
    swd = da.from_array(weights, chunks=90)
    for class_weight in ["balanced", {0: 3.0}]:
        ours = LogisticRegression(class_weight=class_weight, **settings(solver)).fit(
            Xd, yd, sample_weight=swd
        )
        theirs = sklearn_logistic(class_weight=class_weight).fit(X, y, sample_weight=weights)
        assert_coef_close(ours, theirs)


@pytest.mark.parametrize("solver", solvers_for("multinomial", 0.0))
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_multinomial_matches_sklearn(multiclass, solver, fit_intercept):
    X, y = multiclass
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    Xd, yd = chunked(X, y)
    ours = LogisticRegression(C=2.0, fit_intercept=fit_intercept, class_weight="balanced", **settings(solver))
    ours.fit(Xd, yd, sample_weight=da.from_array(weights, chunks=90))
    theirs = sklearn_logistic(C=2.0, fit_intercept=fit_intercept, class_weight="balanced")
    theirs.fit(X, y, sample_weight=weights)
    assert ours.coef_.shape == (3, X.shape[1])
    assert_coef_close(ours, theirs)
    np.testing.assert_allclose(ours.intercept_.sum(), 0.0, atol=1e-8)
    assert_eq(ours.predict_proba(Xd), theirs.predict_proba(X), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("solver", solvers_for("logistic", 1.0))
def test_l1_gives_sklearn_sparsity_pattern(binary, solver):
    X, y = binary
    X = np.hstack([X, np.random.default_rng(2).normal(size=(len(y), 4))])  # 4 pure-noise features
    ours = LogisticRegression(C=0.05, l1_ratio=1.0, **settings(solver)).fit(*chunked(X, y))
    theirs = sklearn_logistic(C=0.05, l1_ratio=1.0, solver="saga").fit(X, y)
    assert (theirs.coef_ == 0).sum() >= 2, "the test problem should have zero coefficients"
    np.testing.assert_array_equal(ours.coef_ == 0, theirs.coef_ == 0)
    assert_coef_close(ours, theirs)


@pytest.mark.parametrize("solver", solvers_for("multinomial", 0.5))
def test_elastic_net_multinomial_matches_sklearn(multiclass, solver):
    X, y = multiclass
    ours = LogisticRegression(C=0.1, l1_ratio=0.5, **settings(solver)).fit(*chunked(X, y))
    theirs = sklearn_logistic(C=0.1, l1_ratio=0.5, solver="saga").fit(X, y)
    np.testing.assert_array_equal(ours.coef_ == 0, theirs.coef_ == 0)
    assert_coef_close(ours, theirs)


@pytest.mark.parametrize("solver", [name for name in STOCHASTIC_SETTINGS if name in solvers.SOLVERS])
@pytest.mark.parametrize("multi", [False, True])
def test_stochastic_solvers_get_close_to_sklearn(binary, multiclass, solver, multi):
    X, y = multiclass if multi else binary
    ours = LogisticRegression(C=0.5, solver=solver, **STOCHASTIC_SETTINGS[solver]).fit(*chunked(X, y))
    theirs = sklearn_logistic(C=0.5).fit(X, y)

    def objective(model):  # sklearn's: C * sum of log-losses + ||coef||^2 / 2
        scores = X @ model.coef_.T + model.intercept_
        if not multi:
            scores = np.hstack([np.zeros_like(scores), scores])
        log_loss = (logsumexp(scores, axis=1) - scores[np.arange(len(y)), y]).sum()
        return 0.5 * log_loss + 0.5 * (model.coef_**2).sum()

    # stated tolerances: objective within 1e-3 (relative) of the optimum, accuracy within 1 point (these
    # problems are noisy: 4 of the 450 rows)
    assert objective(ours) <= objective(theirs) * (1 + 1e-3)
    assert abs(ours.score(X, y) - theirs.score(X, y)) <= 0.01


def test_unpenalised_matches_sklearn(binary):
    X, y = binary
    ours = LogisticRegression(C=np.inf, **settings("lbfgs")).fit(*chunked(X, y))
    theirs = sklearn_logistic(C=np.inf).fit(X, y)
    assert_coef_close(ours, theirs)


def test_history_objective_is_the_scaled_sklearn_objective(binary):
    X, y = binary
    C = 0.5
    model = LogisticRegression(C=C, **settings("lbfgs")).fit(*chunked(X, y))
    history = model.history_
    assert isinstance(history, pd.DataFrame)
    assert {"iteration", "objective", "grad_norm", "step_size", "time_s"} <= set(history.columns)
    assert 1 <= len(history)
    assert model.n_iter_ >= 1
    z = X @ model.coef_[0] + model.intercept_[0]
    s = 2 * y - 1
    expected = np.mean(np.logaddexp(0, -s * z)) + model.coef_[0] @ model.coef_[0] / (2 * C * len(y))
    np.testing.assert_allclose(history["objective"].iloc[-1], expected, rtol=1e-6)


def test_multinomial_loss_value_matches_history(multiclass):
    X, y = multiclass
    model = LogisticRegression(C=1.0, **settings("lbfgs")).fit(X, y)
    Z = X @ model.coef_.T + model.intercept_
    data_term = np.mean(logsumexp(Z, axis=1) - Z[np.arange(len(y)), y])
    expected = data_term + np.sum(model.coef_**2) / (2 * len(y))
    np.testing.assert_allclose(model.history_["objective"].iloc[-1], expected, rtol=1e-6)


def test_float32_stays_float32(binary):
    X, y = binary
    X32 = X.astype(np.float32)
    model = LogisticRegression(**settings("lbfgs")).fit(*chunked(X32, y))
    reference = LogisticRegression(**settings("lbfgs")).fit(*chunked(X, y))
    assert model.coef_.dtype == np.float32
    assert model.intercept_.dtype == np.float32
    Xd = da.from_array(X32, chunks=(90, -1))
    for method in ["predict_proba", "predict_log_proba", "decision_function"]:
        result = getattr(model, method)(Xd)
        assert result.dtype == np.float32, method
        assert result.compute().dtype == np.float32, method
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=RTOL, atol=ATOL)


def test_sparse_input_matches_dense(multiclass):
    X, y = multiclass
    X = X * (np.random.default_rng(3).uniform(size=X.shape) > 0.4)  # about 60 % non-zero
    dense = LogisticRegression(**settings("lbfgs")).fit(X, y)
    from_scipy = LogisticRegression(**settings("lbfgs")).fit(sp.csr_matrix(X), y)
    blocks = da.from_array(sp.csr_matrix(X), chunks=(100, -1), asarray=False, fancy=False)
    from_blocks = LogisticRegression(**settings("lbfgs")).fit(blocks, da.from_array(y, chunks=100))
    for model in [from_scipy, from_blocks]:
        np.testing.assert_allclose(model.coef_, dense.coef_, rtol=1e-6, atol=1e-8)
    with raise_if_computes():
        proba = from_blocks.predict_proba(blocks)
    assert_eq(proba, dense.predict_proba(X), rtol=1e-6, atol=1e-8)


def test_string_labels_and_predict_dtype():
    X, y_int = make_classification(
        n_samples=200, n_features=4, n_classes=3, n_informative=3, n_redundant=0, random_state=4
    )
    labels = np.array(["cat", "dog", "emu"])
    model = LogisticRegression().fit(X, labels[y_int])
    theirs = sk.LogisticRegression().fit(X, labels[y_int])
    np.testing.assert_array_equal(model.classes_, labels)
    predicted = model.predict(X)
    assert predicted.dtype == model.classes_.dtype
    np.testing.assert_array_equal(predicted, theirs.predict(X))
    assert model.score(X, labels[y_int]) == np.mean(predicted == labels[y_int])


# --------------------------------------------------------------------------------------------------- laziness


def test_prediction_methods_are_lazy_and_match_sklearn(multiclass):
    X, y = multiclass
    Xd, yd = chunked(X, y)
    model = LogisticRegression(**settings("lbfgs")).fit(Xd, yd)
    theirs = sklearn_logistic().fit(X, y)
    with raise_if_computes():
        outputs = {
            "predict": model.predict(Xd),
            "predict_proba": model.predict_proba(Xd),
            "predict_log_proba": model.predict_log_proba(Xd),
            "decision_function": model.decision_function(Xd),
        }
    for method, result in outputs.items():
        assert isinstance(result, da.Array), method
        assert result.chunks[0] == Xd.chunks[0], method
        assert result.name.startswith("daskml-"), method
        assert_eq(result, getattr(theirs, method)(X), rtol=RTOL, atol=ATOL)
    # The coefficients enter each graph as a single key.
    graph = dict(outputs["predict_proba"].__dask_graph__())
    assert sum(1 for key in graph if str(key).startswith("daskml-coef")) == 1


def test_fit_computes_labels_once_then_lets_the_solver_load_the_blocks(multiclass):
    X, y = multiclass
    Xd, yd = chunked(X, y)
    # 1: the class labels and their weighted counts; 1: the solver loading the row blocks (local path).
    with raise_if_computes(max_computes=2):
        model = LogisticRegression(class_weight="balanced").fit(Xd, yd)
    assert model.n_iter_ > 2


def test_binary_decision_function_is_a_vector(binary):
    X, y = binary
    model = LogisticRegression().fit(X, y)
    scores = model.decision_function(X)
    assert scores.shape == (len(y),)
    np.testing.assert_array_equal(model.predict(X), model.classes_[(scores > 0).astype(int)])
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


def test_score_computes_once_and_matches_sklearn(binary):
    X, y = binary
    weights = np.random.default_rng(5).uniform(0, 2, size=len(y))
    Xd, yd = chunked(X, y)
    model = LogisticRegression().fit(Xd, yd)
    reference = model.predict(X)
    expected = np.average(reference == y, weights=weights)
    with raise_if_computes(max_computes=1):
        score = model.score(Xd, yd, sample_weight=da.from_array(weights, chunks=90))
    assert isinstance(score, float)
    np.testing.assert_allclose(score, expected, rtol=1e-12)
    np.testing.assert_allclose(model.score(X, y), np.mean(reference == y), rtol=1e-12)


def test_xarray_in_xarray_out(binary):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("daskml_lab.data._xarray")
    X, y = binary
    time = pd.date_range("2020-01-01", periods=len(y), freq="h")
    features = xr.DataArray(X, dims=("time", "band"), coords={"time": time, "band": list("abcdef")}).chunk(
        {"time": 100}
    )
    model = LogisticRegression().fit(X, y)
    with raise_if_computes():
        proba = model.predict_proba(features)
        labels = model.predict(features)
    assert isinstance(proba, xr.DataArray)
    assert isinstance(labels, xr.DataArray)
    assert proba.dims[0] == "time"
    assert labels.dims == ("time",)
    np.testing.assert_array_equal(labels["time"].values, time.values)
    np.testing.assert_allclose(proba.values, model.predict_proba(X), rtol=1e-12)


# ------------------------------------------------------------------------------------------- fit behaviour


def test_warm_start_starts_from_previous_solution(binary):
    X, y = binary
    cold = LogisticRegression(C=0.5, **settings("lbfgs")).fit(X, y)
    warm = LogisticRegression(C=0.5, warm_start=True, **settings("lbfgs")).fit(X, y)
    first_iterations = warm.n_iter_
    warm.fit(X, y)
    assert warm.n_iter_ < first_iterations
    np.testing.assert_allclose(warm.coef_, cold.coef_, rtol=RTOL, atol=ATOL)


def test_refit_without_warm_start_starts_from_scratch(binary):
    X, y = binary
    model = LogisticRegression(**settings("lbfgs")).fit(X, y)
    iterations = model.n_iter_
    model.fit(X, y)
    assert model.n_iter_ == iterations


def test_max_iter_reached_warns(binary):
    X, y = binary
    with pytest.warns(ConvergenceWarning):
        model = LogisticRegression(tol=1e-12, max_iter=2).fit(X, y)
    assert model.n_iter_ <= 2


def test_registered_solver_receives_estimator_settings_and_options(binary, monkeypatch):
    X, y = binary
    calls = []
    lbfgs = solvers.get_solver("lbfgs")

    def spy(problem, *, w0=None, tol=1e-4, max_iter=100, random_state=None, callback=None, marker=0):
        calls.append(
            {
                "tol": tol,
                "max_iter": max_iter,
                "random_state": random_state,
                "marker": marker,
                "w0": w0,
                "loss": problem.n_outputs,
            }
        )
        return lbfgs(problem, w0=w0, tol=tol, max_iter=max_iter, random_state=random_state, callback=callback)

    registry = dict(solvers.SOLVERS, spy=spy)
    supported = solvers.supported_solvers
    monkeypatch.setattr(solvers, "SOLVERS", registry)
    monkeypatch.setattr(solvers, "get_solver", registry.__getitem__)
    monkeypatch.setattr(solvers, "supported_solvers", lambda loss, l1: [*supported(loss, l1), "spy"])
    model = LogisticRegression(
        solver="spy", solver_options={"marker": 7}, tol=1e-6, max_iter=50, random_state=3
    )
    model.fit(X, y)
    assert calls == [{"tol": 1e-6, "max_iter": 50, "random_state": 3, "marker": 7, "w0": None, "loss": 1}]
    reference = LogisticRegression(solver="lbfgs", tol=1e-6, max_iter=50).fit(X, y)
    np.testing.assert_array_equal(model.coef_, reference.coef_)


# ------------------------------------------------------------------------------------------------------ error


def test_single_class_raises():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match=re.escape("The target y has only one class: [1]")):
        LogisticRegression().fit(X, np.ones(20, dtype=int))


def test_one_class_with_positive_weight_raises():
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match=re.escape("Only the class [1] of [0, 1] has positive total weight")):
        LogisticRegression().fit(X, y, sample_weight=(y == 1).astype(float))


def test_zero_total_weight_raises():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match=r"The sample weights sum to zero \(0.0\)"):
        LogisticRegression().fit(X, np.repeat([0, 1], 10), sample_weight=np.zeros(20))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"C": 0.0},
            "The 'C' parameter of LogisticRegression must be a float in the range (0, inf). Got 0.0",
        ),
        (
            {"l1_ratio": 1.5},
            "The 'l1_ratio' parameter of LogisticRegression must be a float in the range [0, 1]",
        ),
        ({"solver": "newton"}, "The 'solver' parameter of LogisticRegression must be a str among {"),
        ({"class_weight": "auto"}, "The 'class_weight' parameter of LogisticRegression must be"),
        (
            {"max_iter": 0},
            "The 'max_iter' parameter of LogisticRegression must be an int in the range [1, inf)",
        ),
    ],
)
def test_invalid_parameters(binary, params, message):
    X, y = binary
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        LogisticRegression(**params).fit(X, y)


def test_solver_without_l1_support_names_the_alternatives(binary):
    X, y = binary
    unsupported = [name for name in solvers.SOLVERS if name not in solvers.supported_solvers("logistic", 1.0)]
    if not unsupported:
        pytest.skip("every registered solver supports the L1 penalty")
    supported = solvers.supported_solvers("logistic", 1.0)
    expected = (
        f"solver={unsupported[0]!r} does not support loss='logistic' with l1_ratio=1.0 in "
        "LogisticRegression. "
        f"Solvers that do: {supported}."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        LogisticRegression(l1_ratio=1.0, solver=unsupported[0]).fit(X, y)


def test_solver_options_errors(binary):
    X, y = binary
    with pytest.raises(
        ValueError, match=r"solver_options=\{'x': 1\} needs an explicit solver, but solver='auto'"
    ):
        LogisticRegression(solver_options={"x": 1}).fit(X, y)
    with pytest.raises(
        ValueError, match=r"solver_options has keys \['not_an_option'\] that solver='lbfgs' does"
    ):
        LogisticRegression(solver="lbfgs", solver_options={"not_an_option": 1}).fit(X, y)
    with pytest.raises(ValueError, match=r"solver_options may not set \['tol'\]"):
        LogisticRegression(solver="lbfgs", solver_options={"tol": 1}).fit(X, y)


def test_not_fitted_and_feature_count_errors(binary):
    X, y = binary
    model = LogisticRegression()
    for method in ["predict", "predict_proba", "predict_log_proba", "decision_function"]:
        with pytest.raises(NotFittedError, match="This LogisticRegression instance is not fitted yet"):
            getattr(model, method)(X)
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        model.score(X, y)
    model.fit(X, y)
    message = "X has 5 features, but LogisticRegression is expecting 6 features as input"
    for method in ["predict", "predict_proba", "decision_function"]:
        with pytest.raises(ValueError, match=message):
            getattr(model, method)(da.from_array(X[:, :5], chunks=(50, -1)))
    with pytest.raises(ValueError, match=message):
        model.score(X[:, :5], y)


def test_y_none_and_continuous_target_raise(binary):
    X, y = binary
    with pytest.raises(
        ValueError, match="LogisticRegression requires y to be passed, but the target y is None"
    ):
        LogisticRegression().fit(X, None)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        LogisticRegression().fit(X, np.linspace(0, 1, len(y)))
