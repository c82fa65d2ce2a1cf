"""A worker that stops answering (SIGSTOP) during a linear-model fit: its share moves, the fit completes.

The worker process is paused, not killed: it stays in the cluster, so only the straggler rule of the solver
engine (:mod:`daskml_lab.solvers._stragglers`) can notice it. Every test pauses one of three single-threaded
worker processes holding blocks, for the whole rest of the fit, and always resumes it (SIGCONT) in a
``finally``. The package's timeout is lowered to 60 s: without the straggler rule each paused fit fails with
a ``TimeoutError`` instead of completing. Durations are never asserted (see
``benchmarks/bench_stragglers_solvers.py`` for them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import warnings
from collections.abc import Iterator

import dask
import numpy as np
import pytest
from _fault_injection import three_worker_cluster
from distributed import Client, LocalCluster

from daskml_lab.data import make_classification
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.solvers import BlockedProblem, _common, get_solver
from daskml_lab.solvers._stragglers import StragglerRule

pytestmark = pytest.mark.cluster

TIMEOUT_S = 60
STRAGGLER_LOGGER = "daskml_lab.solvers._stragglers"
#: A lower floor than the default 5 s keeps the tests short; the rule is the same.
SETTINGS = {
    "daskml_lab.solvers.timeout_s": TIMEOUT_S,
    "daskml_lab.solvers.straggler.min_delay_s": 2.0,
    "daskml_lab.solvers.straggler.unresponsive_s": 4.0,
}


# ---------------------------------------------------------------------------------------------------------
# the rule


def test_rule_waits_for_half_of_the_answers_and_uses_the_median():
    rule = StragglerRule(factor=4.0, min_delay_s=5.0)
    assert rule.late(3, [0.1], {2: 100.0}) == []  # one answer of three: too early to compare
    assert rule.late(3, [0.1, 0.2], {2: 4.9}) == []  # under the floor
    assert rule.late(3, [0.1, 0.2], {2: 5.1}) == [2]
    assert rule.late(3, [3.0, 2.0], {2: 9.0}) == []  # 4 x the median (2.5 s) = 10 s
    assert rule.late(3, [3.0, 2.0], {2: 10.5}) == [2]
    assert StragglerRule(enabled=False).late(3, [0.1, 0.2], {2: 1e6}) == []


def test_rule_from_config_is_checked():
    with dask.config.set(
        {"daskml_lab.solvers.straggler.factor": 2, "daskml_lab.solvers.straggler.min_delay_s": 1}
    ):
        assert StragglerRule.from_config() == StragglerRule(True, 2.0, 1.0, 10.0)
    with (
        dask.config.set({"daskml_lab.solvers.straggler.factor": 0.5}),
        pytest.raises(ValueError, match=r"straggler.factor must be >= 1, .* got factor=0.5"),
    ):
        StragglerRule.from_config()
    with (
        dask.config.set({"daskml_lab.solvers.straggler.unresponsive_s": 0}),
        pytest.raises(ValueError, match=r"unresponsive_s > 0, got .* unresponsive_s=0.0"),
    ):
        StragglerRule.from_config()


# ---------------------------------------------------------------------------------------------------------
# a paused worker


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Three single-threaded worker processes, for this module only (one of them gets paused)."""
    with three_worker_cluster() as cluster:
        yield cluster


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster) as client, dask.config.set(SETTINGS):
        client.wait_for_workers(3, timeout=TIMEOUT_S)
        yield client


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=12_000, n_features=10, chunks=1_000, random_state=0)


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def pause_after_iteration(monkeypatch, client: Client, iteration: int) -> Iterator[list[str]]:
    """Pause a worker process right after the solver records ``iteration``; resume it on leaving."""
    pids = client.run(os.getpid)
    victim = sorted(pids)[1]
    stopped: list[str] = []
    original = _common.History.add

    def add(self, **kwargs):
        stop = original(self, **kwargs)
        if len(self.records) == iteration and not stopped:
            os.kill(pids[victim], signal.SIGSTOP)
            stopped.append(victim)
        return stop

    monkeypatch.setattr(_common.History, "add", add)
    try:
        yield stopped
    finally:
        monkeypatch.setattr(_common.History, "add", original)
        if stopped:
            os.kill(pids[victim], signal.SIGCONT)


def _fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(random_state=0, **params).fit(X, y)


def _moves(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == STRAGGLER_LOGGER]


@pytest.mark.parametrize(
    ("solver", "rtol"),
    [
        ("lbfgs", 1e-12),  # exact, grouping-independent sums: the undisturbed bits (seen equal)
        ("newton-cg", 1e-9),  # Hessian products summed in floating point over the new grouping: to rounding
    ],
)
def test_deterministic_solver_moves_the_paused_workers_blocks_and_gives_the_undisturbed_coefficients(
    client, data, monkeypatch, caplog, solver, rtol
):
    X, y = data
    params = {"solver": solver, "tol": 1e-8, "max_iter": 40}
    reference = _fit(X, y, **params)
    with (
        caplog.at_level(logging.WARNING, logger=STRAGGLER_LOGGER),
        pause_after_iteration(monkeypatch, client, 1) as stopped,
    ):
        model = _fit(X, y, **params)
    assert stopped, "the worker was never paused"
    # (on a loaded machine a healthy worker may be found late too: only the paused one's move is required)
    assert any(stopped[0] in message and "from their lineage" in message for message in _moves(caplog))
    assert model.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=rtol, atol=0)
    np.testing.assert_allclose(model.intercept_, reference.intercept_, rtol=rtol, atol=0)


def test_worker_paused_before_the_blocks_are_persisted(client, data, caplog):
    """The blocks the paused worker was given to compute are computed again elsewhere, from their lineage.

    The generator's shared task (its model) lands on any worker: when it lands on the paused one, no block can
    be computed at all and the worker's silence (no heartbeat) names it; otherwise the blocks it holds fall
    behind the others' median.
    """
    X, y = data
    y = y.astype(np.float64)
    lbfgs = get_solver("lbfgs")

    def fit():
        with BlockedProblem(X, y, loss="logistic", persist=True) as problem:
            return lbfgs(problem, tol=1e-8, max_iter=40)

    reference = fit()
    victim = sorted(client.run(os.getpid).items())[2]
    with caplog.at_level(logging.WARNING, logger=STRAGGLER_LOGGER), paused(victim[1]):
        result = fit()
    assert any(victim[0] in message and "not computed" in message for message in _moves(caplog))
    assert result.n_iter == reference.n_iter
    np.testing.assert_allclose(result.W, reference.W, rtol=1e-12, atol=0)


@pytest.mark.parametrize("solver", ["sgd", "async-sgd"])
def test_stochastic_solvers_complete_with_the_undisturbed_score(client, data, monkeypatch, caplog, solver):
    X, y = data
    params = {"solver": solver, "tol": 1e-6, "max_iter": 15}
    reference = _fit(X, y, **params)
    with (
        caplog.at_level(logging.WARNING, logger=STRAGGLER_LOGGER),
        pause_after_iteration(monkeypatch, client, 1) as stopped,
    ):
        model = _fit(X, y, **params)
    assert stopped
    assert any(stopped[0] in message or "async-sgd" in message for message in _moves(caplog))
    assert abs(model.score(X, y) - reference.score(X, y)) < 0.01
    np.testing.assert_allclose(model.coef_, reference.coef_, atol=0.05 * np.abs(reference.coef_).max())
