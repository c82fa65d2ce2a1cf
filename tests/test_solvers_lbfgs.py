"""BlockedProblem on the local path, and the lbfgs and gd solvers against scikit-learn."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge

from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.solvers import SOLVERS, BlockedProblem, SolverResult, get_solver, supported_solvers
from daskml_lab.solvers._objectives import _loss_grad_block
from daskml_lab.testing import raise_if_computes


def _dask(X, y, sw=None, chunks=97):
    Xd = da.from_array(X, chunks=(chunks, -1), asarray=not sp.issparse(X))
    yd = da.from_array(y, chunks=chunks)
    swd = None if sw is None else da.from_array(sw, chunks=chunks)
    return Xd, yd, swd


def _binary(n=600, d=6, seed=0):
    X, y = make_classification(n, d, n_informative=min(d, 4), n_redundant=0, random_state=seed)
    return X, y


def _fit(solver, X, y, sw=None, *, chunks=97, tol=1e-4, max_iter=1000, **problem_kwargs):
    Xd, yd, swd = _dask(X, y, sw, chunks)
    with BlockedProblem(Xd, yd, swd, **problem_kwargs) as problem:
        result = get_solver(solver)(problem, tol=tol, max_iter=max_iter)
        coef, intercept = problem.unpack(result.W)
    return result, coef, intercept


# ---------------------------------------------------------------------------------------------------------
# problem


def test_problem_loss_grad_matches_kernel_plus_penalty():
    X, y = _binary()
    sw = np.random.default_rng(0).uniform(0.5, 2, len(y))
    W = np.random.default_rng(1).standard_normal((X.shape[1] + 1, 1))
    with BlockedProblem(*_dask(X, y, sw), loss="logistic", data_scale=0.3, l2=2.0) as problem:
        value, grad = problem.loss_grad(W)
        assert problem.engine_name == "local"
        assert problem.sum_weights == pytest.approx(sw.sum())
        assert problem.objective_scale == pytest.approx(0.3 * sw.sum())
    data, data_grad = _loss_grad_block(X, y, sw, W, loss="logistic", fit_intercept=True)
    coef = W[:-1]
    np.testing.assert_allclose(value, 0.3 * data + coef.ravel() @ coef.ravel(), rtol=1e-12)
    expected = 0.3 * data_grad
    expected[:-1] += 2.0 * coef
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_problem_accepts_flat_parameters_and_adds_l1_in_objective():
    X, y = _binary()
    W = np.linspace(-1, 1, X.shape[1] + 1)
    with BlockedProblem(*_dask(X, y), loss="logistic", l2=0.5, l1=0.25) as problem:
        value, grad = problem.loss_grad(W)
        assert grad.shape == W.shape
        assert problem.objective(W) == pytest.approx(value + 0.25 * np.abs(W[:-1]).sum())


def test_problem_result_does_not_depend_on_chunks():
    X, y = _binary(n=1000)
    W = np.random.default_rng(1).standard_normal((X.shape[1] + 1, 1))
    values = []
    for chunks in (1000, 333, 50):
        with BlockedProblem(*_dask(X, y, chunks=chunks), loss="logistic") as problem:
            values.append(problem.loss_grad(W))
    for value, grad in values[1:]:
        np.testing.assert_allclose(value, values[0][0], rtol=1e-13)
        np.testing.assert_allclose(grad, values[0][1], rtol=1e-12)


def test_local_fit_computes_once_and_iterations_build_no_graph():
    X, y = _binary()
    Xd, yd, _ = _dask(X, y)
    with raise_if_computes(max_computes=1) as counter:
        with BlockedProblem(Xd, yd, loss="logistic") as problem:
            result = get_solver("lbfgs")(problem, tol=1e-6, max_iter=100)
    assert counter.n_computes == 1  # the blocks, once; every evaluation after that runs on them in memory
    assert result.n_iter > 3
    assert problem.n_evaluations >= result.n_iter


def test_problem_unpack_and_initial_params():
    X, y = _binary(d=3)
    problem = BlockedProblem(*_dask(X, y), loss="multinomial", n_outputs=3, fit_intercept=True)
    W = np.arange(12.0).reshape(4, 3)
    coef, intercept = problem.unpack(W)
    np.testing.assert_array_equal(coef, W[:3].T)
    np.testing.assert_array_equal(intercept, W[3])
    np.testing.assert_array_equal(problem.initial_params(None), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"W must have shape \(n_params, n_outputs\) = \(4, 3\)"):
        problem.initial_params(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"w0 .* contains NaN or infinity"):
        problem.initial_params(np.full((4, 3), np.nan))
    no_intercept = BlockedProblem(*_dask(X, y), loss="logistic", fit_intercept=False)
    assert no_intercept.n_params == 3
    np.testing.assert_array_equal(no_intercept.unpack(np.ones(3))[1], [0.0])


def test_problem_argument_errors():
    X, y = _binary(d=3)
    Xd, yd, _ = _dask(X, y)
    with pytest.raises(TypeError, match="X must be a 2-D dask array"):
        BlockedProblem(X, yd)
    with pytest.raises(ValueError, match="y must have the row chunks of X"):
        BlockedProblem(Xd, da.from_array(y, chunks=50))
    with pytest.raises(ValueError, match="all features in one column chunk"):
        BlockedProblem(Xd.rechunk((97, 1)), yd)
    with pytest.raises(TypeError, match="sample_weight must be a 1-D dask array"):
        BlockedProblem(Xd, yd, np.ones(len(y)))
    with pytest.raises(ValueError, match=r"loss must be one of \["):
        BlockedProblem(Xd, yd, loss="exponential")
    with pytest.raises(ValueError, match="needs n_outputs=n_classes >= 2, got n_outputs=1"):
        BlockedProblem(Xd, yd, loss="multinomial")
    with pytest.raises(ValueError, match="has one output \\(n_outputs=1\\), got n_outputs=2"):
        BlockedProblem(Xd, yd, loss="logistic", n_outputs=2)
    with pytest.raises(ValueError, match="data_scale must be a finite number > 0, got 0"):
        BlockedProblem(Xd, yd, data_scale=0)
    with pytest.raises(ValueError, match="l1 must be a finite number >= 0, got -1"):
        BlockedProblem(Xd, yd, l1=-1)
    with pytest.raises(ValueError, match="persist must be 'auto', True or False"):
        BlockedProblem(Xd, yd, persist="yes")
    with pytest.raises(ValueError, match="engine must be 'actors' or 'tasks'"):
        BlockedProblem(Xd, yd, engine="mpi")
    bad = da.from_array(np.where(y == 1, 2, 0), chunks=97)
    with pytest.raises(ValueError, match=r"needs y encoded as 0/1, found labels \[2\]"):
        with BlockedProblem(Xd, bad) as problem:
            problem.loss_grad(np.zeros(4))


def test_stream_engine_without_persist_matches_local():
    X, y = _binary()
    W = np.random.default_rng(1).standard_normal((X.shape[1] + 1, 1))
    with BlockedProblem(*_dask(X, y), loss="logistic") as problem:
        expected = problem.loss_grad(W)
    with raise_if_computes(max_computes=3) as counter:
        with BlockedProblem(*_dask(X, y), loss="logistic", persist=False) as problem:
            assert problem.engine_name == "stream"
            value = problem.loss_grad(W)
            problem.loss_grad(W)
    assert counter.n_computes == 3  # counting rows once, then one graph per evaluation (data re-read)
    np.testing.assert_allclose(value[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(value[1], expected[1], rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# lbfgs / gd against scikit-learn


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs_binary_logistic_matches_sklearn(fit_intercept, weighted):
    X, y = _binary()
    sw = np.random.default_rng(3).uniform(0.2, 3, len(y)) if weighted else None
    C = 0.7
    reference = LogisticRegression(C=C, fit_intercept=fit_intercept, tol=1e-10, max_iter=10_000)
    reference.fit(X, y, sample_weight=sw)
    result, coef, intercept = _fit(
        "lbfgs", X, y, sw, tol=1e-8, loss="logistic", data_scale=C, l2=1.0, fit_intercept=fit_intercept
    )
    assert result.converged
    np.testing.assert_allclose(coef, reference.coef_, rtol=1e-5)
    np.testing.assert_allclose(intercept, reference.intercept_ if fit_intercept else [0.0], atol=1e-5)


def test_lbfgs_default_tol_matches_sklearn_default_tol():
    X, y = make_classification(2000, 12, n_informative=6, random_state=5)
    X = X * np.linspace(0.5, 3, 12)  # some conditioning to make tol matter
    reference = LogisticRegression(C=1.0).fit(X, y)
    _, coef, intercept = _fit("lbfgs", X, y, tol=1e-4, loss="logistic", data_scale=1.0, l2=1.0)
    np.testing.assert_allclose(coef, reference.coef_, rtol=1e-3)
    np.testing.assert_allclose(intercept, reference.intercept_, rtol=1e-3)


@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_multinomial_matches_sklearn(solver):
    X, y = make_classification(900, 6, n_informative=4, n_redundant=0, n_classes=3, random_state=1)
    sw = np.random.default_rng(0).uniform(0.5, 1.5, len(y))
    reference = LogisticRegression(C=2.0, tol=1e-10, max_iter=10_000).fit(X, y, sample_weight=sw)
    result, coef, intercept = _fit(
        solver, X, y, sw, tol=1e-7, max_iter=5000, loss="multinomial", n_outputs=3, data_scale=2.0, l2=1.0
    )
    assert result.converged
    np.testing.assert_allclose(coef, reference.coef_, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(intercept, reference.intercept_, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_squared_loss_matches_ridge(solver):
    X, y = make_regression(500, 7, noise=2.0, random_state=0)
    X = X / X.std(axis=0)
    reference = Ridge(alpha=5.0).fit(X, y)
    result, coef, intercept = _fit(
        solver, X, y, tol=1e-8, max_iter=5000, loss="squared", data_scale=1.0, l2=5.0
    )
    assert result.converged
    np.testing.assert_allclose(coef.ravel(), reference.coef_, rtol=1e-6)
    np.testing.assert_allclose(intercept[0], reference.intercept_, rtol=1e-6)


def test_gd_binary_logistic_matches_sklearn():
    X, y = _binary()
    reference = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(X, y)
    result, coef, intercept = _fit("gd", X, y, tol=1e-6, max_iter=5000, loss="logistic", data_scale=0.5)
    assert result.converged
    np.testing.assert_allclose(coef, reference.coef_, rtol=1e-3)
    np.testing.assert_allclose(intercept, reference.intercept_, rtol=1e-3)


def test_float32_stays_float32():
    X, y = _binary()
    _, coef64, _ = _fit("lbfgs", X, y, tol=1e-6, loss="logistic")
    result, coef32, _ = _fit("lbfgs", X.astype(np.float32), y, tol=1e-6, loss="logistic")
    assert result.W.dtype == np.float32
    np.testing.assert_allclose(coef32, coef64, rtol=1e-3, atol=1e-5)


def test_sparse_blocks_give_the_dense_result():
    rng = np.random.default_rng(0)
    X = sp.random(800, 20, density=0.2, random_state=0, format="csr")
    y = (X @ rng.standard_normal(20) + 0.1 * rng.standard_normal(800) > 0).astype(np.int64)
    _, coef_sparse, b_sparse = _fit("lbfgs", X, y, tol=1e-8, loss="logistic")
    _, coef_dense, b_dense = _fit("lbfgs", X.toarray(), y, tol=1e-8, loss="logistic")
    np.testing.assert_allclose(coef_sparse, coef_dense, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(b_sparse, b_dense, rtol=1e-6, atol=1e-8)


def test_solution_does_not_depend_on_chunks():
    X, y = _binary(n=1000)
    _, coef_a, b_a = _fit("lbfgs", X, y, chunks=1000, tol=1e-9, loss="logistic")
    _, coef_b, b_b = _fit("lbfgs", X, y, chunks=61, tol=1e-9, loss="logistic")
    np.testing.assert_allclose(coef_a, coef_b, rtol=1e-7)
    np.testing.assert_allclose(b_a, b_b, rtol=1e-7)


# ---------------------------------------------------------------------------------------------------------
# history, warnings, callbacks, refusals


@pytest.mark.parametrize("solver", ["lbfgs", "gd", "proximal"])
def test_convergence_warning_at_max_iter_points_at_caller(solver):
    X, y = _binary()
    Xd, yd, _ = _dask(X, y)
    with BlockedProblem(Xd, yd, loss="logistic", data_scale=100.0) as problem:
        with pytest.warns(ConvergenceWarning, match=f"{solver} failed to converge") as record:
            result = get_solver(solver)(problem, tol=1e-12, max_iter=3)
    assert record[0].filename == __file__
    assert not result.converged
    assert result.n_iter == 3
    assert len(result.history) == 3


@pytest.mark.parametrize("solver", ["lbfgs", "gd", "proximal"])
def test_history_records(solver):
    X, y = _binary()
    Xd, yd, _ = _dask(X, y)
    with BlockedProblem(Xd, yd, loss="logistic") as problem:
        result = get_solver(solver)(problem, tol=1e-5, max_iter=500)
        n_evaluations = problem.n_evaluations
    assert isinstance(result, SolverResult)
    assert result.converged
    assert result.n_iter == len(result.history) > 2
    assert [r["iteration"] for r in result.history] == list(range(1, result.n_iter + 1))
    assert {"iteration", "objective", "grad_norm", "step_size", "time_s", "n_evals"} <= set(result.history[0])
    objectives = np.array([r["objective"] for r in result.history])
    assert np.all(np.diff(objectives) <= 1e-12 * abs(objectives[0])) or solver == "proximal"
    assert objectives[-1] < objectives[0]
    times = [r["time_s"] for r in result.history]
    assert times == sorted(times)
    assert result.history[-1]["grad_norm"] <= 1e-5
    assert all(r["step_size"] > 0 for r in result.history)
    assert sum(r["n_evals"] for r in result.history) <= n_evaluations


@pytest.mark.parametrize("solver", ["lbfgs", "gd", "proximal"])
def test_callback_can_stop_the_solver(solver):
    X, y = _binary()
    seen = []

    def callback(record, W):
        seen.append((record["iteration"], W.shape))
        return record["iteration"] == 2

    with BlockedProblem(*_dask(X, y), loss="logistic") as problem, warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = get_solver(solver)(problem, tol=1e-10, callback=callback)
    assert seen == [(1, (7, 1)), (2, (7, 1))]
    assert not result.converged
    assert result.n_iter == 2


def test_warm_start_at_the_optimum_needs_no_iteration():
    X, y = _binary()
    with BlockedProblem(*_dask(X, y), loss="logistic") as problem:
        first = get_solver("lbfgs")(problem, tol=1e-6)
        before = problem.n_evaluations
        second = get_solver("lbfgs")(problem, w0=first.W, tol=1e-5)
        assert problem.n_evaluations - before == 1
    assert second.n_iter == 0
    assert second.converged


def test_solvers_refuse_what_they_cannot_fit():
    X, y = _binary()
    Xd, yd, _ = _dask(X, y)
    hinge = BlockedProblem(Xd, yd, loss="hinge")
    for solver in ("lbfgs", "gd", "proximal"):
        with pytest.raises(ValueError, match=f"solver='{solver}' needs a smooth loss, but the 'hinge' loss"):
            get_solver(solver)(hinge)
    l1 = BlockedProblem(Xd, yd, loss="logistic", l1=0.1)
    for solver in ("lbfgs", "gd"):
        with pytest.raises(ValueError, match=r"does not support an l1 penalty .* use solver='proximal'"):
            get_solver(solver)(l1)
    problem = BlockedProblem(Xd, yd)
    with pytest.raises(ValueError, match="lbfgs: tol must be a finite number >= 0, got -1"):
        get_solver("lbfgs")(problem, tol=-1)
    with pytest.raises(ValueError, match=r"gd: max_iter must be an int >= 0, got 1\.5"):
        get_solver("gd")(problem, max_iter=1.5)
    with pytest.raises(ValueError, match="gd: need 0 < shrink < 1"):
        get_solver("gd")(problem, shrink=2.0)


def test_registry():
    assert {"lbfgs", "gd", "proximal"} <= set(SOLVERS)
    assert get_solver("gd") is SOLVERS["gd"]
    with pytest.raises(ValueError, match=r"Unknown solver 'newton'; the available solvers are \["):
        get_solver("newton")
    assert supported_solvers("logistic", 0.0)[:3] == ["lbfgs", "gd", "proximal"]
    assert "lbfgs" not in supported_solvers("logistic", 1.0)
    assert "proximal" in supported_solvers("squared", 1.0)
    assert not {"lbfgs", "gd", "proximal"} & set(supported_solvers("hinge", 0.0))


def test_auto_persist_streams_when_the_data_do_not_fit(caplog):
    X, y = _binary()
    with (
        dask.config.set({"daskml_lab.memory.persist_fraction": 1e-12}),
        caplog.at_level("INFO", logger="daskml_lab.solvers._problem"),
    ):
        with BlockedProblem(*_dask(X, y), loss="logistic") as problem:
            result = get_solver("lbfgs")(problem, tol=1e-6)
            assert problem.engine_name == "stream"
    assert "streaming the blocks from their source at every evaluation" in caplog.text
    _, coef, _ = _fit("lbfgs", X, y, tol=1e-6, loss="logistic")
    np.testing.assert_allclose(problem.unpack(result.W)[0], coef, rtol=1e-6)
