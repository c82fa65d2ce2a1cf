"""Consensus ADMM: exact optima of smooth losses, l1 sparsity, the exact hinge, workers, errors."""

from __future__ import annotations

import re
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import Bounds, minimize
from sklearn import svm
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso
from sklearn.preprocessing import StandardScaler

from daskml_lab.linear_model import LinearSVC
from daskml_lab.solvers import BlockedProblem, LocalBlocks, get_solver, supported_solvers
from daskml_lab.solvers._admm_hinge import hinge_local_solve
from daskml_lab.solvers._engine import EngineSpec
from daskml_lab.solvers.admm import _prox_penalty, admm
from daskml_lab.testing import raise_if_computes


def _data(kind, n=600, seed=0):
    if kind in ("squared", "huber"):
        X, y = make_regression(n, 8, n_informative=5, noise=5.0, random_state=seed)
        y = y / y.std() + 2.0
        options = {"loss": kind, "data_scale": 1.0 / n, "l2": 1e-2}
    elif kind == "multinomial":
        X, y = make_classification(n, 8, n_informative=5, n_classes=3, random_state=seed)
        options = {"loss": "multinomial", "n_outputs": 3, "data_scale": 1.0, "l2": 1.0}
    else:
        X, y = make_classification(n, 8, n_informative=5, flip_y=0.1, random_state=seed)
        options = {"loss": kind, "data_scale": 1.0, "l2": 1.0}
    return StandardScaler().fit_transform(X), y, options


def _problem(X, y, sw=None, *, chunks=150, client=None, **options):
    Xd = da.from_array(X, chunks=(chunks, -1), asarray=not sp.issparse(X))
    yd = da.from_array(y, chunks=chunks)
    swd = None if sw is None else da.from_array(sw, chunks=chunks)
    return BlockedProblem(Xd, yd, swd, client=client, **options)


def test_registered_for_every_loss_and_l1():
    for loss in ("hinge", "logistic", "multinomial", "squared"):
        assert "admm" in supported_solvers(loss, 0.0)
        assert "admm" in supported_solvers(loss, 1.0)


@pytest.mark.parametrize("kind", ["logistic", "multinomial", "squared", "squared_hinge", "huber"])
def test_matches_lbfgs_optimum(kind):
    X, y, options = _data(kind)
    with _problem(X, y, **options) as problem:
        exact = get_solver("lbfgs")(problem, tol=1e-10, max_iter=1000)
        best = problem.objective(exact.W)
        result = admm(problem, tol=1e-8, max_iter=500)
        value = problem.objective(result.W)
    assert result.converged
    # tol means what it means for lbfgs: sup-norm of the per-sample gradient <= 1e-8
    assert result.history[-1]["grad_norm"] <= 1e-8
    assert abs(value - best) <= 1e-8 * abs(best)
    np.testing.assert_allclose(result.W, exact.W, rtol=1e-5, atol=1e-6)


def test_default_tol_is_accurate_to_1e4_relative():
    X, y, options = _data("logistic")
    with _problem(X, y, **options) as problem:
        best = problem.objective(get_solver("lbfgs")(problem, tol=1e-10, max_iter=1000).W)
        result = admm(problem)
        assert problem.objective(result.W) <= best * (1 + 1e-4)


def test_lasso_sparsity_and_coefficients_match_sklearn():
    X, y = make_regression(500, 12, n_informative=5, noise=5.0, random_state=0)
    X = X / X.std(axis=0)
    alpha = 2.0
    reference = Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y)
    with _problem(X, y, loss="squared", data_scale=1.0 / len(y), l2=0.0, l1=alpha) as problem:
        result = admm(problem, tol=1e-8, max_iter=1000)
        coef, intercept = problem.unpack(result.W)
    assert result.converged
    np.testing.assert_array_equal(coef.ravel() == 0, reference.coef_ == 0)
    assert 0 < np.count_nonzero(coef) < X.shape[1]
    np.testing.assert_allclose(coef.ravel(), reference.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(intercept[0], reference.intercept_, rtol=1e-6)


def test_l1_logistic_sparsity_matches_proximal():
    X, y = make_classification(600, 10, n_informative=3, n_redundant=0, random_state=2)
    with _problem(X, y, loss="logistic", data_scale=0.05, l2=0.1, l1=1.0) as problem:
        reference = get_solver("proximal")(problem, tol=1e-10, max_iter=20_000)
        result = admm(problem, tol=1e-9, max_iter=1000)
    np.testing.assert_array_equal(result.W == 0, reference.W == 0)
    assert 0 < np.count_nonzero(result.W[:-1]) < 10
    np.testing.assert_allclose(result.W, reference.W, rtol=1e-5, atol=1e-7)


def test_sample_weights():
    X, y, options = _data("logistic")
    sw = np.random.default_rng(0).uniform(0.0, 3.0, size=len(y))
    with _problem(X, y, sw, **options) as problem:
        exact = get_solver("lbfgs")(problem, tol=1e-10, max_iter=1000)
        result = admm(problem, tol=1e-8)
    np.testing.assert_allclose(result.W, exact.W, rtol=1e-5, atol=1e-6)


def test_history_records_residuals_and_rho():
    X, y, options = _data("logistic")
    seen = []
    with _problem(X, y, **options) as problem:
        result = admm(problem, tol=1e-8, callback=lambda record, W: seen.append(W.shape) and False)
    assert len(result.history) == result.n_iter == len(seen)
    keys = {"iteration", "objective", "grad_norm", "step_size", "time_s", "n_evals", "primal_residual"}
    assert keys | {"dual_residual", "rho"} <= set(result.history[0])
    assert all(record["n_evals"] >= 2 for record in result.history)  # the evaluation at z + a local solve
    objectives = [record["objective"] for record in result.history]
    assert objectives[-1] < objectives[0]


def test_warm_start_from_the_solution_stops_at_once():
    X, y, options = _data("logistic")
    with _problem(X, y, **options) as problem:
        first = admm(problem, tol=1e-8)
        again = admm(problem, w0=first.W, tol=1e-8)
    assert again.n_iter == 1
    assert again.converged


def test_warns_at_max_iter():
    X, y, options = _data("logistic")
    with _problem(X, y, **options) as problem, pytest.warns(ConvergenceWarning, match="reached max_iter=2"):
        result = admm(problem, tol=1e-12, max_iter=2)
    assert not result.converged
    assert result.n_iter == 2


def test_callback_stops():
    X, y, options = _data("logistic")
    with _problem(X, y, **options) as problem:
        result = admm(problem, tol=1e-12, callback=lambda record, W: record["iteration"] == 3)
    assert result.n_iter == 3
    assert result.message == "stopped by the callback"


def test_fit_computes_the_data_once_on_the_local_path():
    X, y, options = _data("hinge")
    with raise_if_computes(max_computes=1), _problem(X, y, **options) as problem:
        result = admm(problem, tol=1e-6)
    assert result.converged


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rho": 0.0}, "admm: rho must be a finite number > 0, got 0.0"),
        ({"relaxation": 2.5}, "admm: relaxation must be in (0, 2), got 2.5"),
        ({"rho_tau": 1.0}, "admm: rho_mu and rho_tau must be > 1, got rho_mu=10.0, rho_tau=1.0"),
        ({"local_tol": -1.0}, "admm: local_tol must be a finite number > 0, got -1.0"),
        ({"max_iter": -1}, "admm: max_iter must be an int >= 0, got -1"),
    ],
)
def test_invalid_arguments(kwargs, message):
    X, y, options = _data("logistic", n=200)
    with (
        _problem(X, y, chunks=100, **options) as problem,
        pytest.raises(ValueError, match=re.escape(message)),
    ):
        admm(problem, **kwargs)


def test_prox_penalty_leaves_the_intercept_alone():
    a = np.array([[3.0, -0.2], [0.5, 4.0], [7.0, -7.0]])
    z = _prox_penalty(a, 2, l2=1.0, l1=1.0, rho=2.0)
    # coefficients: soft-threshold at l1/rho = 0.5, then divide by 1 + l2/rho = 1.5
    np.testing.assert_allclose(z[:2], [[2.5 / 1.5, 0.0], [0.0, 3.5 / 1.5]])
    np.testing.assert_array_equal(z[2], a[2])


# -------------------------------------------------------------------------------------------------- hinge


def _local_hinge(X, y, weight=None, fit_intercept=True):
    spec = EngineSpec("hinge", 1, fit_intercept)
    cut = len(y) // 2
    sw = None if weight is None else [weight[:cut], weight[cut:]]
    return LocalBlocks.from_raw(spec, [0, 1], [X[:cut], X[cut:]], [y[:cut], y[cut:]], sw)


def _local_hinge_reference(X, y, v, rho, c, weight):
    """The same local problem through its full dual, solved to high accuracy."""
    A = (2 * y - 1)[:, None] * np.hstack([X, np.ones((len(y), 1))])
    q = 1 - A @ v

    def negative_dual(alpha):
        r = A.T @ alpha
        return 0.5 / rho * r @ r - alpha @ q, A @ r / rho - q

    caps = c * weight
    result = minimize(
        negative_dual,
        np.zeros(len(y)),
        jac=True,
        method="L-BFGS-B",
        bounds=Bounds(np.zeros(len(y)), caps),
        options={"gtol": 1e-14, "ftol": 1e-16, "maxiter": 100_000},
    )
    return v + A.T @ result.x / rho


@pytest.mark.parametrize("weighted", [False, True])
def test_local_hinge_solve_is_exact(weighted):
    X, y = make_classification(300, 5, n_informative=3, flip_y=0.1, random_state=4)
    X = StandardScaler().fit_transform(X)
    weight = np.random.default_rng(1).uniform(0.2, 2.0, size=len(y)) if weighted else np.ones(len(y))
    local = _local_hinge(X, y, weight if weighted else None)
    v = np.random.default_rng(2).normal(scale=0.3, size=6)
    rho, c = 0.05, 1.0 / len(y)
    x, n_passes = hinge_local_solve(local, v, v, rho, c, 1e-10, 200, 10, 1e-3, 20_000)
    expected = _local_hinge_reference(X, y, v, rho, c, weight)
    np.testing.assert_allclose(x, expected, atol=1e-7)
    assert n_passes > 0


def test_local_hinge_solve_falls_back_to_the_smoothed_solution():
    X, y = make_classification(300, 5, n_informative=3, flip_y=0.1, random_state=4)
    X = StandardScaler().fit_transform(X)
    local = _local_hinge(X, y)
    v = np.zeros(6)
    rho, c = 0.05, 1.0 / len(y)
    x, _ = hinge_local_solve(local, v, v, rho, c, 1e-10, 200, 10, 1e-3, 0)  # no working set allowed
    expected = _local_hinge_reference(X, y, v, rho, c, np.ones(len(y)))
    assert not np.allclose(x, expected, atol=1e-7)
    np.testing.assert_allclose(x, expected, atol=1e-2)  # within O(smoothing)


@pytest.fixture(scope="module")
def svm_data():
    X, y = make_classification(n_samples=400, n_features=6, n_informative=4, flip_y=0.1, random_state=0)
    return StandardScaler().fit_transform(X), y


def _hinge_problem(X, y, C, sw=None, *, fit_intercept=True, client=None):
    total = len(y) if sw is None else sw.sum()
    return _problem(
        X,
        y,
        sw,
        chunks=90,
        client=client,
        loss="hinge",
        fit_intercept=fit_intercept,
        data_scale=1.0 / total,
        l2=1.0 / (C * total),
    )


@pytest.mark.parametrize("weighted", [False, True])
def test_hinge_with_intercept_matches_libsvm(svm_data, weighted):
    # libsvm's SVC(kernel="linear") solves the same problem: hinge loss, unpenalised intercept
    X, y = svm_data
    C = 0.5
    sw = np.random.default_rng(3).uniform(0.5, 2.0, size=len(y)) if weighted else None
    reference = svm.SVC(kernel="linear", C=C, tol=1e-12).fit(X, y, sample_weight=sw)
    with _hinge_problem(X, y, C, sw) as problem:
        result = admm(problem, tol=1e-8, max_iter=2000)
        coef, intercept = problem.unpack(result.W)
        expected = problem.objective(np.r_[reference.coef_.ravel(), reference.intercept_])
        value = problem.objective(result.W)
    assert result.converged
    assert value <= expected * (1 + 1e-8)
    np.testing.assert_allclose(coef, reference.coef_, atol=1e-5)
    np.testing.assert_allclose(intercept, reference.intercept_, atol=1e-5)


def test_linear_svc_hinge_matches_liblinear(svm_data):
    X, y = svm_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # random_state=2: liblinear's shuffling with some seeds (e.g. 0) cycles far from the optimum
        reference = svm.LinearSVC(
            loss="hinge", C=0.5, fit_intercept=False, dual=True, tol=1e-12, max_iter=1_000_000, random_state=2
        ).fit(X, y)
    ours = LinearSVC(loss="hinge", C=0.5, fit_intercept=False, solver="admm", tol=1e-7).fit(X, y)
    np.testing.assert_allclose(ours.coef_, reference.coef_, atol=1e-5)
    assert ours.score(X, y) == reference.score(X, y)
    # default tol: accuracy within 0.5 points, coefficients within 1e-3
    default = LinearSVC(loss="hinge", C=0.5, fit_intercept=False, solver="admm").fit(X, y)
    assert abs(default.score(X, y) - reference.score(X, y)) <= 0.005
    np.testing.assert_allclose(default.coef_, reference.coef_, atol=1e-3)


def test_hinge_on_sparse_blocks(svm_data):
    X, y = svm_data
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    with _hinge_problem(X, y, 1.0) as dense_problem:
        dense = admm(dense_problem, tol=1e-8, max_iter=2000)
    with _hinge_problem(sp.csr_matrix(X), y, 1.0) as sparse_problem:
        sparse = admm(sparse_problem, tol=1e-8, max_iter=2000)
    np.testing.assert_allclose(sparse.W, dense.W, atol=1e-7)


# ------------------------------------------------------------------------------------------ two workers


@pytest.mark.cluster
@pytest.mark.parametrize(("kind", "tol"), [("logistic", 1e-8), ("hinge", 1e-6)])
def test_two_workers_reach_the_local_result(client, kind, tol):
    X, y, options = _data(kind, n=800)
    with dask.config.set(scheduler="sync"), _problem(X, y, **options) as problem:
        local = admm(problem, tol=1e-9, max_iter=2000)
        best = problem.objective(local.W)
    with _problem(X, y, client=client, **options) as problem:
        assert problem.n_workers == 2
        distributed = admm(problem, tol=tol, max_iter=1000)
        value = problem.objective(distributed.W)
    assert distributed.converged
    # the fixed point does not depend on how the rows are spread over the workers
    assert best <= value * (1 + 1e-12)
    assert value <= best * (1 + 10 * tol)
    np.testing.assert_allclose(distributed.W, local.W, atol=1e3 * tol)
