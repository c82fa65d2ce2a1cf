"""Asynchronous SGD (parameter server): convergence, staleness records and bounds, errors."""

from __future__ import annotations

import re

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from daskml_lab.linear_model import LinearSVC, LogisticRegression
from daskml_lab.solvers import BlockedProblem, get_solver, supported_solvers
from daskml_lab.solvers._parameter_server import wait_first
from daskml_lab.solvers.async_sgd import async_sgd

#: Relative objective gap to the exact optimum that async-sgd must reach at tol=1e-6. Was 1e-3 before the steps
#: were variance-reduced (issue 15); the optimality criterion now puts it where lbfgs gets at the same tol.
GAP = 1e-8


def _logistic(n=3000, seed=0):
    X, y = make_classification(n, 8, n_informative=5, random_state=seed)
    return StandardScaler().fit_transform(X), y


def _problem(X, y, *, chunks=500, client=None, **options):
    options = {"loss": "logistic", "data_scale": 1.0, "l2": 1.0, **options}
    return BlockedProblem(
        da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks=chunks), client=client, **options
    )


def _best(problem):
    return problem.objective(get_solver("lbfgs")(problem, tol=1e-10, max_iter=500).W)


def test_registered():
    assert "async-sgd" in supported_solvers("hinge", 0.0)
    assert "async-sgd" in supported_solvers("logistic", 1.0)


@pytest.mark.parametrize("loss", ["logistic", "squared"])
def test_local_engine_reaches_the_optimum(loss):
    if loss == "squared":
        X, y = make_regression(3000, 8, n_informative=5, noise=5.0, random_state=0)
        X, y = StandardScaler().fit_transform(X), y / y.std()
    else:
        X, y = _logistic()
    with _problem(X, y, loss=loss) as problem:
        best = _best(problem)
        result = async_sgd(problem, tol=1e-6, max_iter=200, random_state=0)
        assert best <= problem.objective(result.W) <= best * (1 + GAP)
    assert result.converged
    # one worker, whose calls complete at once: a change is stale only when the "adaptive" schedule restarted
    # from the best parameters while it was in flight
    assert max(record["staleness"] for record in result.history) <= 1
    counts = [record["staleness_counts"] for record in result.history]
    assert sum(c[0] for c in counts) >= 0.9 * sum(sum(c) for c in counts)


def test_reproducible_on_the_local_path():
    X, y = _logistic(n=1500)
    with _problem(X, y) as problem:
        first = async_sgd(problem, max_iter=20, random_state=5)
        second = async_sgd(problem, max_iter=20, random_state=5)
    np.testing.assert_array_equal(first.W, second.W)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_history_records_every_received_change():
    X, y = _logistic(n=1500)
    with _problem(X, y) as problem:
        result = async_sgd(problem, max_iter=3, tol=0.0, updates_per_iter=7, random_state=0)
    assert result.n_iter == len(result.history) == 3
    for record in result.history:
        assert {"objective", "grad_norm", "step_size", "time_s", "staleness", "staleness_mean"} <= set(record)
        assert record["n_updates"] + record["n_dropped"] == sum(record["staleness_counts"]) == 7
    versions = [record["version"] for record in result.history]
    assert versions == sorted(versions)
    assert versions[-1] >= sum(record["n_updates"] for record in result.history)


def test_warns_at_max_iter():
    X, y = _logistic(n=1000)
    with _problem(X, y) as problem, pytest.warns(ConvergenceWarning, match="reached max_iter=2 iterations"):
        result = async_sgd(problem, max_iter=2, tol=0.0, random_state=0)
    assert not result.converged


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_staleness": -1}, "async-sgd: max_staleness must be an int >= 0 or None, got -1"),
        ({"staleness_power": -0.5}, "async-sgd: staleness_power must be a finite number >= 0, got -0.5"),
        ({"updates_per_iter": 0}, "async-sgd: updates_per_iter must be a finite number > 0, got 0"),
        ({"local_steps": 0}, "async-sgd: local_steps must be an int >= 1, got 0"),
        ({"local_steps": None}, "async-sgd: local_steps must be an int >= 1, got None"),
        ({"shrink": 2.0}, "async-sgd: shrink must be in (0, 1), got 2.0"),
        ({"learning_rate": "slow"}, "async-sgd: learning_rate must be one of"),
    ],
)
def test_invalid_arguments(kwargs, message):
    X, y = _logistic(n=200)
    with (
        _problem(X, y, chunks=100) as problem,
        pytest.raises(ValueError, match=re.escape(message)),
    ):
        async_sgd(problem, **kwargs)


class _NeverDone:
    def done(self):
        return False


def test_wait_first_times_out_with_a_clear_message():
    with pytest.raises(TimeoutError, match=re.escape("async-sgd: no worker answered within 0.01 s")):
        wait_first({0: _NeverDone()}, timeout_s=0.01, poll_s=1e-3)


def test_hinge_with_the_estimator():
    X, y = make_classification(n_samples=2000, n_features=6, n_informative=4, flip_y=0.1, random_state=0)
    X = StandardScaler().fit_transform(X)
    exact = LinearSVC(loss="hinge", C=0.5, solver="admm", tol=1e-8).fit(X, y)
    ours = LinearSVC(loss="hinge", C=0.5, solver="async-sgd", tol=1e-6, random_state=0).fit(X, y)
    assert abs(ours.score(X, y) - exact.score(X, y)) <= 0.005
    assert {"staleness", "staleness_mean", "n_dropped"} <= set(ours.history_.columns)


# ------------------------------------------------------------------------------------------ two workers


@pytest.mark.cluster
def test_two_workers_converge_and_record_bounded_staleness(client):
    X, y = _logistic(n=4000)
    # the blocks must stay on both workers: on a loaded machine the straggler rule may legitimately move a slow
    # worker's blocks to the other one (it did in a CI run), tested in test_reliability_stragglers_solvers.py
    with (
        dask.config.set({"daskml_lab.solvers.straggler.enabled": False}),
        _problem(X, y, client=client) as problem,
    ):
        assert problem.engine_name == "actors"
        assert problem.n_workers == 2
        best = _best(problem)
        result = async_sgd(problem, tol=1e-6, max_iter=100, max_staleness=3, random_state=0)
        value = problem.objective(result.W)
    assert result.converged
    # with two workers the order in which changes arrive depends on timing, but the stopping test does not:
    # the optimality of the returned point is at most tol whatever the order
    assert best <= value <= best * (1 + GAP)
    counts = np.sum([np.pad(r["staleness_counts"], (0, 50))[:50] for r in result.history], axis=0)
    # two workers never wait for each other: changes computed from an older version arrive...
    assert counts[1:].sum() > 0
    # ... none staler than the bound is applied, the staler ones are dropped
    assert max(record["staleness"] for record in result.history) <= 3
    assert sum(record["n_dropped"] for record in result.history) == counts[4:].sum()
    assert sum(record["n_updates"] for record in result.history) == counts[:4].sum()
    assert re.search(r"staleness mean [0-9.]+, max [0-3] over [0-9]+ applied changes", result.message)


@pytest.mark.cluster
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_max_staleness_zero_drops_every_stale_change(client):
    X, y = _logistic(n=2000)
    with _problem(X, y, client=client) as problem:
        result = async_sgd(problem, max_iter=6, tol=0.0, max_staleness=0, random_state=0)
    applied = sum(r["n_updates"] for r in result.history)
    dropped = sum(r["n_dropped"] for r in result.history)
    fresh = sum(r["staleness_counts"][0] for r in result.history)
    assert applied == fresh  # only changes computed from the current version were applied
    assert dropped == sum(sum(r["staleness_counts"][1:]) for r in result.history)
    assert all(record["staleness"] == 0 for record in result.history)


@pytest.mark.cluster
def test_logistic_regression_estimator_on_two_workers(client):
    X, y = _logistic(n=3000, seed=2)
    Xd, yd = da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500)
    exact = LogisticRegression(C=1.0, tol=1e-8).fit(Xd, yd)
    ours = LogisticRegression(C=1.0, solver="async-sgd", tol=1e-6, random_state=0).fit(Xd, yd)
    assert abs(ours.score(Xd, yd) - exact.score(Xd, yd)) <= 0.005
    assert ours.history_["staleness"].max() <= 4  # the default bound: twice the number of workers
