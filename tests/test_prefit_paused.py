"""A worker paused (SIGSTOP) before the fit starts: the small passes before the watched phases move too.

The shard fits and the solver rounds watch for a worker that stops answering; the plain computations that run
before them (a classifier's class counts, a stratified sharding's label counts, ...) are watched by
:func:`daskml_lab._runtime.watched_compute.watched_compute`. Before it, each of these fits waited for the
paused worker for ever in its first pass (the pytest timeout then fails the test). Every test pauses one of
three single-threaded worker processes for the whole fit and always resumes it (SIGCONT) in a ``finally``.
Durations are never asserted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Iterator

import dask
import numpy as np
import pytest
from _fault_injection import three_worker_cluster
from distributed import Client, LocalCluster, wait
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from daskml_lab._runtime.watched_compute import watched_compute
from daskml_lab.data import make_classification, make_regression
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier
from daskml_lab.exceptions import ConvergenceWarning, UnresponsiveWorkerError
from daskml_lab.linear_model import (
    HuberRegressor,
    LinearRegression,
    LogisticRegression,
    PoissonRegressor,
)
from daskml_lab.preprocessing import StandardScaler

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP is POSIX"),
    pytest.mark.timeout(120),
]

WATCH_LOGGER = "daskml_lab._runtime.watched_compute"
#: Lower than the 10 s defaults to keep the tests short; the rules are the same.
SETTINGS = {
    "daskml_lab.solvers.timeout_s": 60,
    "daskml_lab.solvers.straggler.min_delay_s": 2.0,
    "daskml_lab.solvers.straggler.unresponsive_s": 6.0,
    "daskml_lab.ensemble.speculation.unresponsive_s": 6.0,
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Three single-threaded worker processes, for this module only (one of them gets paused)."""
    with three_worker_cluster() as cluster:
        yield cluster


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster) as client:
        client.wait_for_workers(3, timeout=60)
        yield client


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=6_000, n_features=10, chunks=500, random_state=0)


@contextlib.contextmanager
def paused(client: Client) -> Iterator[str]:
    """One worker process stopped for the whole block (its address is yielded), always resumed after.

    The short delays of :data:`SETTINGS` apply inside the block only: the undisturbed reference fits keep the
    defaults, so that a worker merely starved of CPU by a loaded machine is not taken for a silent one there.
    """
    pids = client.run(os.getpid)
    victim = sorted(pids)[1]
    # an idle cluster first (what a worker resumed by an earlier test still had to do is done), so that the
    # scheduler gives the paused worker its share of the first pass, as it would before any fit
    deadline = time.monotonic() + 30
    while any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(pids[victim], signal.SIGSTOP)
    try:
        with dask.config.set(SETTINGS):
            yield victim
    finally:
        os.kill(pids[victim], signal.SIGCONT)


def _recomputed(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == WATCH_LOGGER]


def _logistic(solver: str) -> LogisticRegression:
    return LogisticRegression(solver=solver, random_state=0, max_iter=30)


def test_lbfgs_gives_the_undisturbed_coefficients(client, data, caplog):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = _logistic("lbfgs").fit(X, y)
        with paused(client) as victim, caplog.at_level(logging.WARNING, logger=WATCH_LOGGER):
            model = _logistic("lbfgs").fit(X, y)
    np.testing.assert_array_equal(model.coef_, reference.coef_)
    np.testing.assert_array_equal(model.intercept_, reference.intercept_)
    assert any(victim in message and "the class counts" in message for message in _recomputed(caplog))


def test_poisson_gives_the_undisturbed_coefficients(client, data):
    # the GLM checks of the target run before the solver; the solver's state may then be created on the paused
    # worker when it was given no row block (it is set aside after unresponsive_s and the start made again)
    X, y = data
    weights = y * 0 + 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = PoissonRegressor(max_iter=30).fit(X, y, sample_weight=weights)
        with paused(client):
            model = PoissonRegressor(max_iter=30).fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(model.coef_, reference.coef_)


@pytest.mark.parametrize("solver", ["sgd", "async-sgd"])
def test_stochastic_solvers_complete(client, data, solver):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = _logistic(solver).fit(X, y).score(X, y)
        with paused(client):
            model = _logistic(solver).fit(X, y)
    # they step over per-worker groups of blocks, which the move regroups: the same accuracy, not the same bits
    assert model.score(X, y) == pytest.approx(reference, abs=0.01)


def test_stratified_shard_ensemble_gives_the_undisturbed_predictions(client, data, caplog):
    X, y = data

    def fit():
        return ShardEnsembleClassifier(
            SkLogisticRegression(), sharding="stratified", n_shards=6, random_state=0
        ).fit(X, y)

    reference = fit().predict_proba(X).compute()
    with paused(client) as victim, caplog.at_level(logging.WARNING, logger=WATCH_LOGGER):
        model = fit()
    np.testing.assert_array_equal(model.predict_proba(X).compute(), reference)
    assert any(victim in message for message in _recomputed(caplog))


def test_cascade_gives_the_undisturbed_decision_values(client, data):
    X, y = data
    X, y = X[:3_000], y[:3_000]
    reference = CascadeSVC(n_shards=6, random_state=0).fit(X, y)
    with paused(client):
        model = CascadeSVC(n_shards=6, random_state=0).fit(X, y)
    np.testing.assert_array_equal(
        model.decision_function(X).compute(), reference.decision_function(X).compute()
    )


def test_data_persisted_only_on_the_paused_worker_give_a_clear_error(client):
    # data of their own (keys no earlier test computed, so that they exist on the victim only)
    X, y = make_classification(n_samples=3_000, n_features=10, chunks=500, random_state=7)
    victim = sorted(client.run(os.getpid))[1]
    # the caller's data, persisted on one worker only: futures without lineage to compute them again from
    X_held, y_held = client.persist([X, y], workers=[victim], allow_other_workers=False)
    wait([X_held, y_held])
    assert {tuple(w) for w in client.who_has([X_held, y_held]).values()} == {(victim,)}  # the premise
    with (
        paused(client) as stopped,
        pytest.raises(UnresponsiveWorkerError, match=r"sent no heartbeat .* Resume the worker") as raised,
    ):
        _logistic("lbfgs").fit(X_held, y_held)
    assert stopped == victim
    assert raised.value.workers == [victim]
    assert victim in str(raised.value)
    # never removed: the worker (and the caller's data on it) stay in the cluster
    assert victim in client.scheduler_info(n_workers=-1)["workers"]
    del X_held, y_held


def test_a_local_scheduler_computes_as_dask_does():
    X, y = make_classification(n_samples=40, n_features=5, chunks=10, random_state=0)
    with dask.config.set(scheduler="sync"):
        total, first = watched_compute(y.sum(), X[:2], what="a test pass")
        expected = dask.compute(y.sum(), X[:2])
    assert total == expected[0]
    np.testing.assert_array_equal(first, expected[1])


def test_the_seconds_are_checked():
    y = make_classification(n_samples=40, n_features=5, chunks=10, random_state=0)[1]
    with (
        dask.config.set({"daskml_lab.solvers.straggler.unresponsive_s": 0}),
        pytest.raises(ValueError, match=r"unresponsive_s must be > 0 seconds, got 0.0"),
    ):
        watched_compute(y.sum(), what="a test pass")


def test_score_and_transformer_statistics_do_not_wait_for_the_paused_worker(client):
    # the passes of score and of a preprocessing transformer's fit are watched like those before a fit
    X, y = make_regression(n_samples=6_000, n_features=10, chunks=500, random_state=0)
    model = LinearRegression().fit(X, y)
    reference_score = model.score(X, y)
    reference = StandardScaler().fit(X)
    with paused(client):
        score = model.score(X, y)
        scaler = StandardScaler().fit(X)
    assert score == reference_score
    np.testing.assert_array_equal(scaler.mean_, reference.mean_)
    np.testing.assert_array_equal(scaler.scale_, reference.scale_)


def test_huber_gives_the_undisturbed_coefficients(client):
    # it persists its rows itself (read by every solver run and scale update): the persist is watched too
    X, y = make_regression(n_samples=6_000, n_features=10, chunks=500, noise=5.0, random_state=0)
    reference = HuberRegressor(max_iter=50).fit(X, y)
    with paused(client):
        model = HuberRegressor(max_iter=50).fit(X, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-12)
    assert model.scale_ == pytest.approx(reference.scale_, rel=1e-12)


def test_a_worker_found_silent_gets_no_block_in_the_next_fit(client, data, caplog):
    # the delay is paid once: the next fit knows at once that the worker is still silent
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = _logistic("lbfgs").fit(X, y)
        with paused(client) as victim:
            _logistic("lbfgs").fit(X, y)
            caplog.clear()  # the warnings of the first fit
            with caplog.at_level(logging.WARNING, logger="daskml_lab"):
                model = _logistic("lbfgs").fit(X, y)
    np.testing.assert_array_equal(model.coef_, reference.coef_)
    messages = [r.getMessage() for r in caplog.records]
    assert any(victim in m and "no row block goes to them" in m for m in messages)
    # no pass before the solver waited for it again (a pass that did would say "sent no heartbeat for ...
    # while computing"; one that knew it at once says "found silent earlier")
    assert not any(victim in m and "while computing" in m for m in messages), messages
