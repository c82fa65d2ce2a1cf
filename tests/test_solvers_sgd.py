"""Synchronous distributed SGD: distance to the lbfgs/proximal optimum, hinge loss, schedules, errors."""

from __future__ import annotations

import itertools
import math
import re
import warnings

import dask.array as da
import numpy as np
import pytest
from sklearn import svm
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from daskml_lab.linear_model import LinearSVC
from daskml_lab.solvers import BlockedProblem, LocalBlocks, get_solver, supported_solvers
from daskml_lab.solvers._engine import EngineSpec
from daskml_lab.solvers.sgd import NoChange, Schedule, next_batches, proximal_step, sgd
from daskml_lab.testing import raise_if_computes

#: Relative objective gap to the exact optimum that sgd must reach at tol=1e-6 (a few thousand rows). Was 1e-3
#: before the steps were variance-reduced (issue 15); the optimality criterion now puts it where lbfgs gets
#: at the same tol (measured: at most 3e-10 here).
GAP = 1e-8


def _data(kind, n=3000, seed=0):
    """(X, y, problem keywords) for one loss; features standardised, as SGD wants them."""
    if kind == "squared":
        X, y = make_regression(n, 8, n_informative=5, noise=5.0, random_state=seed)
        y = y / y.std() + 1.0
        options = {"loss": "squared", "data_scale": 1.0 / n, "l2": 1e-2}
    elif kind == "multinomial":
        X, y = make_classification(n, 8, n_informative=5, n_classes=3, random_state=seed)
        options = {"loss": "multinomial", "n_outputs": 3, "data_scale": 1.0, "l2": 1.0}
    elif kind == "l1":
        X, y = make_classification(n, 10, n_informative=3, n_redundant=0, random_state=seed)
        options = {"loss": "logistic", "data_scale": 1.0, "l2": 0.0, "l1": n / 100}
    else:
        X, y = make_classification(n, 8, n_informative=5, random_state=seed)
        options = {"loss": kind, "data_scale": 1.0, "l2": 1.0}
    return StandardScaler().fit_transform(X), y, options


def _problem(X, y, sw=None, *, chunks=500, **options):
    Xd = da.from_array(X, chunks=(chunks, -1))
    yd = da.from_array(y, chunks=chunks)
    swd = None if sw is None else da.from_array(sw, chunks=chunks)
    return BlockedProblem(Xd, yd, swd, **options)


def _optimum(problem):
    """The exact optimum, by proximal (l1) or lbfgs at a tight tolerance."""
    name = "proximal" if problem.l1 > 0 else "lbfgs"
    result = get_solver(name)(problem, tol=1e-10, max_iter=5000)
    return result.W, problem.objective(result.W)


def test_registered_for_every_loss_and_l1():
    for loss in ("logistic", "hinge", "squared", "multinomial"):
        assert "sgd" in supported_solvers(loss, 0.0)
        assert "sgd" in supported_solvers(loss, 1.0)


@pytest.mark.parametrize("kind", ["logistic", "multinomial", "squared", "squared_hinge", "l1"])
def test_reaches_the_optimum_within_gap(kind):
    X, y, options = _data(kind)
    with _problem(X, y, **options) as problem:
        _, best = _optimum(problem)
        result = sgd(problem, tol=1e-6, max_iter=200, random_state=0)
        value = problem.objective(result.W)
    assert result.converged
    assert best <= value <= best * (1 + GAP)
    assert result.W.shape == (problem.n_params, problem.n_outputs)
    assert result.W.dtype == np.float64


def test_weighted_rows_match_the_weighted_optimum():
    X, y, options = _data("logistic")
    sw = np.random.default_rng(1).uniform(0.2, 3.0, size=len(y))
    with _problem(X, y, sw, **options) as problem:
        _, best = _optimum(problem)
        result = sgd(problem, tol=1e-6, max_iter=200, random_state=0)
        assert best <= problem.objective(result.W) <= best * (1 + GAP)


def test_l1_keeps_the_optimum_zeros():
    X, y, options = _data("l1")
    with _problem(X, y, **options) as problem:
        W_exact, _ = _optimum(problem)
        result = sgd(problem, tol=1e-6, max_iter=200, random_state=0)
    exact_zeros = W_exact[:-1, 0] == 0
    assert exact_zeros.sum() >= 3
    # the variance-reduced proximal steps converge to the optimum, so its zeros are exact zeros (the plain
    # stochastic steps of issue 15 left them at up to 1e-2 of the largest coefficient)
    np.testing.assert_array_equal(result.W[:-1, 0] == 0, exact_zeros)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_reproducible_with_random_state_and_seed_matters():
    X, y, options = _data("logistic", n=1500)
    with _problem(X, y, **options) as problem:
        first = sgd(problem, max_iter=5, tol=0.0, random_state=3, n_iter_no_change=10)
        second = sgd(problem, max_iter=5, tol=0.0, random_state=3, n_iter_no_change=10)
        other = sgd(problem, max_iter=5, tol=0.0, random_state=4, n_iter_no_change=10)
    np.testing.assert_array_equal(first.W, second.W)
    assert not np.array_equal(first.W, other.W)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_history_records_objective_step_and_time():
    X, y, options = _data("logistic", n=1500)
    seen = []
    with _problem(X, y, **options) as problem:
        result = sgd(
            problem, max_iter=6, tol=0.0, random_state=0, callback=lambda r, W: seen.append(W.shape) and False
        )
    assert len(result.history) == result.n_iter == 6 == len(seen)
    record = result.history[-1]
    assert {
        "iteration",
        "objective",
        "grad_norm",
        "step_size",
        "time_s",
        "relative_change",
        "n_steps",
    } <= set(record)
    times = [r["time_s"] for r in result.history]
    assert times == sorted(times)
    objectives = [r["objective"] for r in result.history]
    assert objectives[-1] < objectives[0]
    steps = [r["step_size"] for r in result.history]
    assert all(b <= a for a, b in itertools.pairwise(steps))  # "adaptive" only decreases
    # batch_size="auto" is 1500 // 64 = 23 rows; one pass is ceil(500 / 23) batches for each of 3 blocks
    assert record["n_steps"] == 3 * math.ceil(500 / 23)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_eval_every_skips_evaluations():
    X, y, options = _data("logistic", n=1500)
    with _problem(X, y, **options) as problem:
        result = sgd(problem, max_iter=4, tol=0.0, eval_every=2, random_state=0, n_iter_no_change=10)
        # the starting point (the anchor of the first round) and the rounds 2 and 4
        assert problem.n_evaluations == 3
    objectives = [r["objective"] for r in result.history]
    assert np.isnan(objectives[0])
    assert np.isnan(objectives[2])
    assert np.isfinite(objectives[1])
    assert np.isfinite(objectives[3])


@pytest.mark.parametrize(
    ("learning_rate", "options"),
    [("invscaling", {"decay": 5.0}), ("optimal", {}), ("constant", {"eta0": 0.05})],
)
def test_other_schedules_get_close(learning_rate, options):
    X, y, problem_options = _data("logistic")
    with _problem(X, y, **problem_options) as problem:
        _, best = _optimum(problem)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = sgd(problem, learning_rate=learning_rate, max_iter=30, random_state=0, **options)
        assert problem.objective(result.W) <= best * (1 + 1e-2)


def test_warns_at_max_iter():
    X, y, options = _data("logistic", n=1000)
    with _problem(X, y, **options) as problem, pytest.warns(ConvergenceWarning, match="reached max_iter=2"):
        result = sgd(problem, max_iter=2, tol=0.0, random_state=0)
    assert not result.converged
    assert result.n_iter == 2


def test_constant_rate_that_diverges_raises():
    X, y, options = _data("squared", n=1000)
    with _problem(X, y, **options) as problem, pytest.raises(ValueError, match="sgd diverged"):
        with np.errstate(all="ignore"):
            sgd(problem, learning_rate="constant", eta0=1e6, max_iter=5, random_state=0)


def test_adaptive_rate_recovers_from_a_too_large_eta0():
    X, y, options = _data("squared", n=1000)
    with _problem(X, y, **options) as problem:
        _, best = _optimum(problem)
        with np.errstate(all="ignore"):
            result = sgd(problem, eta0=50.0, tol=1e-6, max_iter=200, random_state=0)
        assert np.all(np.isfinite(result.W))
        assert problem.objective(result.W) <= best * (1 + 1e-2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": "fast"}, "sgd: learning_rate must be one of"),
        ({"shrink": 1.5}, "sgd: shrink must be in (0, 1), got 1.5"),
        ({"batch_size": 0}, "sgd: batch_size must be an int >= 1, got 0"),
        ({"local_steps": 0}, "sgd: local_steps must be an int >= 1 or None, got 0"),
        ({"eta0": -1.0}, "sgd: eta0 must be a finite number > 0, got -1.0"),
        ({"decay": -1.0}, "sgd: decay must be a finite number >= 0, got -1.0"),
        ({"eval_every": 0}, "sgd: eval_every must be a finite number > 0, got 0"),
        ({"tol": -1.0}, "sgd: tol must be a finite number >= 0, got -1.0"),
    ],
)
def test_invalid_arguments(kwargs, message):
    X, y, options = _data("logistic", n=200)
    with (
        _problem(X, y, chunks=100, **options) as problem,
        pytest.raises(ValueError, match=re.escape(message)),
    ):
        sgd(problem, **kwargs)


def test_optimal_schedule_needs_l2():
    X, y, options = _data("l1", n=200)
    with (
        _problem(X, y, chunks=100, **options) as problem,
        pytest.raises(ValueError, match=re.escape("learning_rate='optimal' needs an l2 penalty")),
    ):
        sgd(problem, learning_rate="optimal")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_computes_the_data_once_on_the_local_path():
    X, y, options = _data("logistic", n=1000)
    with raise_if_computes(max_computes=1), _problem(X, y, **options) as problem:
        result = sgd(problem, max_iter=3, tol=0.0, random_state=0, n_iter_no_change=5)
    assert result.n_iter == 3


# ------------------------------------------------------------------------------------------------- pieces


def test_proximal_step_is_the_elastic_net_prox():
    rng = np.random.default_rng(0)
    W, grad = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    eta, l2, l1 = 0.3, 0.7, 0.4
    expected = W - eta * grad
    coef = expected[:4]
    coef[:] = np.sign(coef) * np.maximum(np.abs(coef) - eta * l1, 0) / (1 + eta * l2)
    proximal_step(W, grad, eta, l2, l1, 4)
    np.testing.assert_allclose(W, expected)


def test_schedules():
    invscaling = Schedule("invscaling", eta0=2.0, decay=1.0, power_t=0.5, l2=0.0)
    assert invscaling.rate(0, steps_per_epoch=4) == 2.0
    assert invscaling.rate(12, steps_per_epoch=4) == pytest.approx(1.0)
    optimal = Schedule("optimal", eta0=1.0, decay=0.0, power_t=1.0, l2=0.1)
    assert optimal.rate(10, steps_per_epoch=3) == pytest.approx(0.5)
    adaptive = Schedule("adaptive", eta0=1.0, decay=0.0, power_t=1.0, l2=0.0)
    assert adaptive.rate(1000, steps_per_epoch=3) == 1.0
    assert adaptive.shrunk(0.5).rate(0, steps_per_epoch=3) == 0.5


def test_no_change_counter():
    counter = NoChange(tol=0.1, patience=2)
    assert counter.update(10.0) == np.inf
    counter.update(9.5)  # improved by 5%: counts
    assert counter.count == 1
    assert not counter.done
    counter.update(5.0)  # improved by 47%: resets
    assert counter.count == 0
    counter.update(5.1)
    counter.update(4.9)
    assert counter.done


def _local_blocks(sizes=(7, 5, 9), seed=0):
    rng = np.random.default_rng(seed)
    spec = EngineSpec("logistic", 1, True)
    X = [rng.normal(size=(n, 3)) for n in sizes]
    y = [rng.integers(0, 2, size=n) for n in sizes]
    return LocalBlocks.from_raw(spec, [4, 9, 11], X, y, None)


def test_minibatch_cursor_continues_and_survives_lost_state():
    local = _local_blocks()
    first = [b.target.copy() for b in next_batches(local, "t", 123, 3, 0, 4)]
    second = [b.target.copy() for b in next_batches(local, "t", 123, 3, 4, 6)]  # continues from the state
    fresh = _local_blocks()  # same blocks, no state: the cursor is rebuilt and advanced
    again = [b.target.copy() for b in next_batches(fresh, "t", 123, 3, 4, 6)]
    assert len(first) == 4
    assert len(second) == 6
    for a, b in zip(second, again, strict=True):
        np.testing.assert_array_equal(a, b)
    # one epoch is ceil(7/3) + ceil(5/3) + ceil(9/3) = 8 batches and covers every row once
    rows = sum(b.X.shape[0] for b in next_batches(_local_blocks(), "u", 5, 3, 0, 8))
    assert rows == 21


# -------------------------------------------------------------------------------------------------- hinge


def test_linear_svc_hinge_with_sgd_matches_liblinear_accuracy():
    X, y = make_classification(n_samples=2000, n_features=6, n_informative=4, flip_y=0.1, random_state=0)
    X = StandardScaler().fit_transform(X)
    C = 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = svm.LinearSVC(
            loss="hinge", C=C, fit_intercept=False, dual=True, tol=1e-10, max_iter=1_000_000, random_state=0
        ).fit(X, y)
    ours = LinearSVC(loss="hinge", C=C, fit_intercept=False, solver="sgd", tol=1e-6, random_state=0).fit(X, y)
    sign = 2 * y - 1

    def objective(coef):
        return C * np.maximum(0, 1 - sign * (X @ coef.ravel())).sum() + 0.5 * coef.ravel() @ coef.ravel()

    # stated tolerances: accuracy within 0.5 points, objective within 1e-3 (relative) of liblinear's
    assert abs(ours.score(X, y) - reference.score(X, y)) <= 0.005
    assert objective(ours.coef_) <= objective(reference.coef_) * (1 + 1e-3)
    assert "objective" in ours.history_.columns


@pytest.mark.cluster
def test_on_two_workers_reaches_the_optimum(client):
    X, y, options = _data("logistic", n=4000)
    with _problem(X, y, chunks=500, client=client, **options) as problem:
        assert problem.n_workers == 2
        _, best = _optimum(problem)
        result = sgd(problem, tol=1e-6, max_iter=200, random_state=0)
        assert best <= problem.objective(result.W) <= best * (1 + GAP)
    assert result.converged
