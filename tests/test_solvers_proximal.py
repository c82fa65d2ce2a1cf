"""The proximal solver (FISTA) against scikit-learn's Lasso, ElasticNet and l1 logistic regression."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression

from daskml_lab.solvers import BlockedProblem, get_solver


def _fit(X, y, sw=None, *, chunks=113, tol=1e-8, max_iter=20_000, **problem_kwargs):
    Xd = da.from_array(X, chunks=(chunks, -1), asarray=not sp.issparse(X))
    yd = da.from_array(y, chunks=chunks)
    swd = None if sw is None else da.from_array(sw, chunks=chunks)
    with BlockedProblem(Xd, yd, swd, **problem_kwargs) as problem:
        result = get_solver("proximal")(problem, tol=tol, max_iter=max_iter)
        coef, intercept = problem.unpack(result.W)
    return result, coef.ravel() if coef.shape[0] == 1 else coef, intercept


def _regression(n=400, d=12, seed=0):
    X, y = make_regression(n, d, n_informative=5, noise=5.0, random_state=seed)
    return X / X.std(axis=0), y


@pytest.mark.parametrize("weighted", [False, True])
def test_lasso_coefficients_and_sparsity_match_sklearn(weighted):
    X, y = _regression()
    n = len(y)
    sw = np.random.default_rng(0).uniform(0.5, 2, n) if weighted else None
    alpha = 2.0
    reference = Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y, sample_weight=sw)
    # sklearn: 1/(2 sum(sw)) sum sw r^2 + alpha |w|_1 (it rescales weights to sum to n_samples)
    scale = 1.0 / (n if sw is None else sw.sum())
    result, coef, intercept = _fit(X, y, sw, loss="squared", data_scale=scale, l2=0.0, l1=alpha)
    assert result.converged
    np.testing.assert_array_equal(coef == 0, reference.coef_ == 0)
    assert 0 < np.count_nonzero(coef) < X.shape[1]
    np.testing.assert_allclose(coef, reference.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(intercept[0], reference.intercept_, rtol=1e-5)


def test_elastic_net_matches_sklearn():
    X, y = _regression(seed=1)
    alpha, l1_ratio = 1.5, 0.6
    reference = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000).fit(X, y)
    result, coef, intercept = _fit(
        X, y, loss="squared", data_scale=1.0 / len(y), l1=alpha * l1_ratio, l2=alpha * (1 - l1_ratio)
    )
    assert result.converged
    np.testing.assert_array_equal(coef == 0, reference.coef_ == 0)
    np.testing.assert_allclose(coef, reference.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(intercept[0], reference.intercept_, rtol=1e-5)


def test_l1_logistic_matches_sklearn_saga():
    X, y = make_classification(500, 10, n_informative=3, n_redundant=0, random_state=2)
    C = 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        reference = LogisticRegression(C=C, l1_ratio=1.0, solver="saga", tol=1e-10, max_iter=100_000).fit(
            X, y
        )
    result, coef, intercept = _fit(X, y, tol=1e-9, loss="logistic", data_scale=C, l2=0.0, l1=1.0)
    assert result.converged
    np.testing.assert_array_equal(coef == 0, reference.coef_.ravel() == 0)
    assert 0 < np.count_nonzero(coef) < X.shape[1]
    np.testing.assert_allclose(coef, reference.coef_.ravel(), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(intercept, reference.intercept_, rtol=1e-3, atol=1e-5)


def test_l1_multinomial_gives_exact_zeros_and_is_optimal():
    X, y = make_classification(600, 8, n_informative=4, n_redundant=0, n_classes=3, random_state=3)
    result, coef, _ = _fit(X, y, tol=1e-7, loss="multinomial", n_outputs=3, data_scale=0.1, l2=0.0, l1=1.0)
    assert result.converged
    assert 0 < np.count_nonzero(coef) < coef.size
    # optimality: a zero coefficient's gradient is at most l1, a non-zero one's equals -l1 sign(w)
    Xd = da.from_array(X, chunks=113)
    yd = da.from_array(y, chunks=113)
    with BlockedProblem(Xd, yd, loss="multinomial", n_outputs=3, data_scale=0.1, l2=0.0, l1=1.0) as problem:
        _, grad = problem.loss_grad(result.W.astype(np.float64))
    W, g = result.W[:-1], grad[:-1]
    assert np.all(np.abs(g[W == 0]) <= 1.0 + 1e-4)
    np.testing.assert_allclose(g[W != 0], -np.sign(W[W != 0]), atol=1e-4)


def test_sparse_input_without_densifying():
    rng = np.random.default_rng(0)
    X = sp.random(600, 30, density=0.1, random_state=0, format="csr")
    y = X @ rng.standard_normal(30) + 0.1 * rng.standard_normal(600)
    reference = Lasso(alpha=0.01, tol=1e-12, max_iter=100_000).fit(X, y)
    _, coef, _ = _fit(X, y, loss="squared", data_scale=1 / 600, l2=0.0, l1=0.01)
    np.testing.assert_allclose(coef, reference.coef_, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(coef == 0, reference.coef_ == 0)


def test_without_l1_it_matches_lbfgs():
    X, y = make_classification(500, 6, n_informative=4, n_redundant=0, random_state=4)
    Xd = da.from_array(X, chunks=100)
    yd = da.from_array(y, chunks=100)
    with BlockedProblem(Xd, yd, loss="logistic") as problem:
        a = get_solver("lbfgs")(problem, tol=1e-9)
        b = get_solver("proximal")(problem, tol=1e-9, max_iter=5000)
    np.testing.assert_allclose(a.W, b.W, rtol=1e-6, atol=1e-8)


def test_restart_is_used_and_can_be_disabled():
    X, y = _regression(seed=5)
    kwargs = {"loss": "squared", "data_scale": 1 / len(y), "l1": 0.5, "l2": 0.0}
    with_restart, coef_a, _ = _fit(X, y, **kwargs)
    Xd, yd = da.from_array(X, chunks=113), da.from_array(y, chunks=113)
    with BlockedProblem(Xd, yd, **kwargs) as problem:
        without = get_solver("proximal")(problem, tol=1e-8, max_iter=20_000, restart=False)
    assert any(r["restart"] for r in with_restart.history)
    assert not any(r["restart"] for r in without.history)
    np.testing.assert_allclose(coef_a, problem.unpack(without.W)[0].ravel(), rtol=1e-5, atol=1e-6)


def test_argument_errors():
    X, y = _regression()
    problem = BlockedProblem(
        da.from_array(X, chunks=100), da.from_array(y, chunks=100), loss="squared", l1=1.0
    )
    with pytest.raises(ValueError, match="proximal: need 0 < shrink < 1 and grow >= 1"):
        get_solver("proximal")(problem, grow=0.5)
    with pytest.raises(ValueError, match="proximal: step_size must be a finite number > 0, got 0"):
        get_solver("proximal")(problem, step_size=0)
    with pytest.raises(ValueError, match="proximal: max_line_search must be an int >= 1, got 0"):
        get_solver("proximal")(problem, max_line_search=0)
