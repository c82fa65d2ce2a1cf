"""Newton-CG and Newton-Cholesky: blocked Hessians against finite differences, scikit-learn's optimum, errors."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import linear_model as sk

from daskml_lab import solvers
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LinearSVC, LogisticRegression
from daskml_lab.solvers import LOSSES, BlockedProblem
from daskml_lab.solvers._curvature import _hessian_block, _hessian_product_block
from daskml_lab.solvers._engine import EngineSpec
from daskml_lab.solvers._objectives import _loss_grad_block, _prepare_block, get_loss
from daskml_lab.testing import raise_if_computes

NEWTON = ["newton-cg", "newton-cholesky"]
SMOOTH = sorted(name for name in LOSSES if get_loss(name).smooth)
#: Options of the losses that take them (a power strictly between the special cases).
OPTIONS = {"tweedie": {"power": 1.5, "link": "log"}}


def _block_data(loss, *, n=80, d=4, n_classes=3, sparse=False, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if sparse:
        X = sp.csr_matrix(np.where(rng.uniform(size=X.shape) < 0.5, X, 0.0))
    info = get_loss(loss)
    if info.target == "binary":
        y = rng.integers(0, 2, n).astype(np.float64)
    elif info.target == "codes":
        y = rng.integers(0, n_classes, n).astype(np.float64)
    elif loss in ("poisson", "gamma", "tweedie"):
        y = rng.gamma(2.0, 1.0, n)
    else:
        y = rng.standard_normal(n)
    k = n_classes if info.multi_output else 1
    W = rng.standard_normal((d + 1, k)) * 0.3
    sw = rng.uniform(0.5, 2.0, n)
    return X, y, sw, W


@pytest.mark.parametrize("loss", SMOOTH)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
def test_hessian_kernels_match_finite_differences_of_the_gradient(loss, sparse, fit_intercept):
    X, y, sw, W = _block_data(loss, sparse=sparse)
    params = W if fit_intercept else W[:-1]
    k = params.shape[1]
    options = OPTIONS.get(loss)
    spec = EngineSpec(loss, k, fit_intercept, options)
    block = _prepare_block(X, y, sw, loss=loss, n_outputs=k, loss_options=options)
    V = np.random.default_rng(1).standard_normal(params.shape)

    def grad(P):
        return _loss_grad_block(X, y, sw, P, loss=loss, fit_intercept=fit_intercept, loss_options=options)[1]

    eps = 1e-6
    expected = (grad(params + eps * V) - grad(params - eps * V)) / (2 * eps)
    product, curvature = _hessian_product_block(block, V, spec, W=params)
    np.testing.assert_allclose(product, expected, rtol=1e-5, atol=1e-6)
    # the curvature handed back gives the same product without the parameters
    again, _ = _hessian_product_block(block, V, spec, curvature=curvature)
    np.testing.assert_allclose(again, product, rtol=1e-12)
    H = _hessian_block(block, params, spec)
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(H @ V.ravel(), product.ravel(), rtol=1e-10, atol=1e-10)


def test_hessian_of_the_subblock_sweep_equals_one_pass():
    X, y, sw, W = _block_data("multinomial", n=3000, d=6)
    block = _prepare_block(X, y, sw, loss="multinomial", n_outputs=3)
    spec = EngineSpec("multinomial", 3, True)
    V = np.ones_like(W)
    # about 1 MB per sub-block: 3000 x 6 float64 rows fit in one; shrink the budget by slicing X's rows
    whole, _ = _hessian_product_block(block, V, spec, W=W)
    parts = [
        _hessian_product_block(
            _prepare_block(X[s], y[s], sw[s], loss="multinomial", n_outputs=3), V, spec, W=W
        )[0]
        for s in (slice(0, 1000), slice(1000, 2500), slice(2500, 3000))
    ]
    np.testing.assert_allclose(sum(parts), whole, rtol=1e-12)


def test_problem_hessians_add_the_penalty_and_keep_the_curvature_between_products():
    X, y, sw, W = _block_data("logistic", n=200)
    Xd, yd, swd = (da.from_array(a, chunks=(50,) + (-1,) * (a.ndim - 1)) for a in (X, y, sw))
    with BlockedProblem(Xd, yd, swd, loss="logistic", data_scale=0.1, l2=2.0) as problem:
        V = np.arange(5.0).reshape(5, 1)
        product = problem.hessian_product(W, V)
        data = sum(
            _hessian_product_block(
                _prepare_block(X[s], y[s], sw[s], loss="logistic"), V, EngineSpec("logistic", 1, True), W=W
            )[0]
            for s in (slice(0, 100), slice(100, 200))
        )
        expected = 0.1 * data + 2.0 * np.vstack([V[:4], [[0.0]]])
        np.testing.assert_allclose(product, expected, rtol=1e-12)
        H = problem.hessian(W)
        np.testing.assert_allclose(H @ V.ravel(), product.ravel(), rtol=1e-12)
        np.testing.assert_allclose(problem.hessian_diagonal(W).ravel(), np.diag(H), rtol=1e-12)
        assert problem.n_hessian_products == 1
        # the local engine keeps the curvature: the next product at the same W computes nothing new
        with raise_if_computes():
            problem.hessian_product(W, 2 * V)
        state = problem.map_workers(_curvature_key)
        assert state[0] is not None


def _curvature_key(local):
    cached = local.state.get("curvature")
    return None if cached is None else cached[0]


@pytest.mark.parametrize("solver", NEWTON)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
def test_binary_logistic_matches_scikit_learn(solver, weighted, fit_intercept):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    X[:, 0] += 2.0
    y = (X @ np.array([1.0, -1.0, 0.5, 0.0, 0.3, -0.2]) + rng.logistic(size=400) > 1.5).astype(int)
    sw = rng.uniform(0.2, 3.0, 400) if weighted else None
    theirs = sk.LogisticRegression(
        C=0.5, solver=solver, tol=1e-10, max_iter=1000, fit_intercept=fit_intercept
    )
    theirs.fit(X, y, sample_weight=sw)
    Xd, yd = da.from_array(X, chunks=(100, 6)), da.from_array(y, chunks=100)
    swd = None if sw is None else da.from_array(sw, chunks=100)
    ours = LogisticRegression(C=0.5, solver=solver, tol=1e-10, max_iter=1000, fit_intercept=fit_intercept)
    ours.fit(Xd, yd, sample_weight=swd)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-5, atol=1e-7)
    assert ours.n_iter_ <= 20


@pytest.mark.parametrize("solver", NEWTON)
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
def test_multinomial_logistic_matches_scikit_learn(solver, fit_intercept):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(450, 4))
    y = np.argmax(X @ rng.normal(size=(4, 3)) + rng.gumbel(size=(450, 3)), axis=1)
    sw = rng.uniform(0.5, 2.0, 450)
    theirs = sk.LogisticRegression(
        C=2.0, solver=solver, tol=1e-10, max_iter=1000, fit_intercept=fit_intercept
    )
    theirs.fit(X, y, sample_weight=sw)
    ours = LogisticRegression(C=2.0, solver=solver, tol=1e-10, max_iter=1000, fit_intercept=fit_intercept)
    ours.fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-5, atol=1e-7)


def _ill_conditioned(n=2000, d=8, seed=0):
    """Features whose scales span 1e-3 .. 1e3: the gradient methods' hard case."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(-3, 3, d)
    X = rng.normal(size=(n, d)) * scales
    w = rng.normal(size=d) / scales
    y = (X @ w + rng.logistic(size=n) > 0).astype(float)
    return da.from_array(X, chunks=(500, d)), da.from_array(y, chunks=500)


def test_newton_needs_few_iterations_where_lbfgs_needs_many():
    X, y = _ill_conditioned()
    results = {}
    for name in ("lbfgs", *NEWTON):
        with BlockedProblem(X, y, loss="logistic", data_scale=1 / 2000, l2=1e-4 / 2000) as problem:
            results[name] = solvers.get_solver(name)(problem, tol=1e-8, max_iter=2000)
    for name in NEWTON:
        assert results[name].converged
        assert results[name].n_iter <= 25
        np.testing.assert_allclose(results[name].W, results["newton-cholesky"].W, rtol=1e-5, atol=1e-9)
    assert results["lbfgs"].n_iter > 4 * results["newton-cholesky"].n_iter
    # the history counts the passes over the data: the diagonal, CG steps and line-search evaluations
    cg = results["newton-cg"].history
    assert all(r["n_evals"] >= r["cg_iterations"] + 2 for r in cg)
    # without the Jacobi preconditioner (scikit-learn's newton-cg) CG needs far more products
    with BlockedProblem(X, y, loss="logistic", data_scale=1 / 2000, l2=1e-4 / 2000) as problem:
        plain = solvers.newton_cg(problem, tol=1e-8, max_iter=2000, precondition=False)
    np.testing.assert_allclose(plain.W, results["newton-cholesky"].W, rtol=1e-5, atol=1e-9)
    products = {
        name: sum(r["cg_iterations"] for r in run.history)
        for name, run in (("pcg", results["newton-cg"]), ("cg", plain))
    }
    assert products["cg"] > 5 * products["pcg"]


def test_streamed_blocks_give_the_same_newton_iterates():
    """With persist=False nothing survives between calls: the curvature is computed again in each product."""
    X, y = _ill_conditioned(n=600)
    runs = []
    for persist in (True, False):
        with dask.config.set({"daskml_lab.solvers.persist": persist}):
            with BlockedProblem(X, y, loss="logistic", data_scale=1 / 600, l2=1e-3) as problem:
                runs.append(solvers.newton_cg(problem, tol=1e-8, max_iter=100))
                assert problem.engine_name == ("local" if persist else "stream")
    np.testing.assert_allclose(runs[0].W, runs[1].W, rtol=1e-10, atol=1e-12)
    assert runs[0].n_iter == runs[1].n_iter


def test_newton_cholesky_refuses_wide_problems_before_any_work():
    X = da.zeros((40, 30), chunks=(20, 30))
    y = da.zeros(40, chunks=20)
    problem = BlockedProblem(X, y, loss="squared")
    with pytest.raises(ValueError, match=r"31 parameters .* more than max_width=20.*solver='newton-cg'"):
        with raise_if_computes():
            solvers.newton_cholesky(problem, max_width=20)
    with pytest.raises(ValueError, match="max_width"):
        LogisticRegression(solver="newton-cholesky", solver_options={"max_width": 3}).fit(
            np.arange(12.0).reshape(4, 3), [0, 1, 0, 1]
        )


def test_newton_solvers_refuse_the_hinge_loss():
    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 0, 1, 1, 0])
    with pytest.raises(ValueError, match="solver='newton-cg' does not support loss='hinge'"):
        LinearSVC(loss="hinge", solver="newton-cg").fit(X, y)
    problem = BlockedProblem(da.from_array(X, chunks=3), da.from_array(y, chunks=3), loss="hinge")
    with pytest.raises(ValueError, match="no second derivative"):
        problem.hessian(np.zeros(3))


@pytest.mark.parametrize("solver", NEWTON)
def test_max_iter_warns(solver):
    X, y = _ill_conditioned(n=400)
    with BlockedProblem(X, y, loss="logistic", data_scale=1 / 400, l2=1e-6) as problem:
        with pytest.warns(ConvergenceWarning, match=f"{solver} failed to converge.*max_iter=1"):
            result = solvers.get_solver(solver)(problem, tol=1e-12, max_iter=1)
    assert not result.converged
    assert result.n_iter == 1


def test_option_errors_name_the_solver_and_the_option():
    problem = BlockedProblem(da.zeros((4, 2), chunks=2), da.zeros(4, chunks=2), loss="squared")
    with pytest.raises(ValueError, match=r"newton-cg: max_inner must be an int >= 1, got 0"):
        solvers.newton_cg(problem, max_inner=0)
    with pytest.raises(ValueError, match=r"newton-cholesky: c1 must be in \(0, 1\), got 2"):
        solvers.newton_cholesky(problem, c1=2)


@pytest.mark.cluster
@pytest.mark.parametrize("solver", NEWTON)
def test_on_a_multi_process_cluster(client, solver):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 5)) * np.logspace(-2, 2, 5)
    y = (X @ (rng.normal(size=5) / np.logspace(-2, 2, 5)) + rng.logistic(size=600) > 0).astype(int)
    theirs = sk.LogisticRegression(solver=solver, tol=1e-10, max_iter=1000).fit(X, y)
    Xd, yd = da.from_array(X, chunks=(150, 5)), da.from_array(y, chunks=150)
    ours = LogisticRegression(solver=solver, tol=1e-10, max_iter=1000).fit(Xd, yd)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-5, atol=1e-7)
