"""Stragglers: a worker paused (SIGSTOP) or slow during a shard-wise fit, and slow workers that are not lost.

Every test runs real worker processes (3 workers, 1 thread each, on 127.0.0.1). A paused worker stays in the
cluster (the scheduler removes a silent worker only after ``distributed.scheduler.worker-ttl``, 5 minutes):
the shard ensembles and the Cascade SVM must move its shards to the other workers, computing its blocks
again from their lineage, and give the result of an undisturbed fit. The paused worker is always resumed
(SIGCONT) in a ``finally``. No test asserts a duration (``benchmarks/bench_stragglers.py`` measures them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator

import dask
import numpy as np
import pytest
from _fault_injection import after_first_task, three_worker_cluster
from distributed import Client, LocalCluster
from sklearn.ensemble import ExtraTreesClassifier

from daskml_lab._runtime.watch import WorkerWatch
from daskml_lab.data import make_classification
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier
from daskml_lab.ensemble._speculation import ShardProgress, SpeculationRule

pytestmark = pytest.mark.cluster

ENSEMBLE_LOGGER = "daskml_lab.ensemble._placement"
#: The straggler rule, quicker than its defaults so that the tests stay short. 3 s without a heartbeat gave
#: false stragglers when two test processes and other jobs loaded the 2 cores (every worker set aside in turn).
RULE = {
    "daskml_lab.ensemble.speculation.unresponsive_s": 6.0,
    "daskml_lab.ensemble.speculation.floor_s": 2.0,
    "daskml_lab.solvers.timeout_s": 120,
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Three single-threaded worker processes, for this module only (one of them gets paused)."""
    with three_worker_cluster() as cluster:
        yield cluster


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster) as client, dask.config.set(RULE):
        client.wait_for_workers(3, timeout=60)
        yield client


@contextlib.contextmanager
def paused(client: Client, worker: str | None = None) -> Iterator[str]:
    """SIGSTOP one worker process (default: the first by address) for the block; SIGCONT however it ends."""
    pids = client.run(os.getpid)
    victim = worker or sorted(pids)[0]
    os.kill(pids[victim], signal.SIGSTOP)
    try:
        yield victim
    finally:
        os.kill(pids[victim], signal.SIGCONT)


@contextlib.contextmanager
def paused_after_first_task(client: Client, prefix: str) -> Iterator[list[str]]:
    """SIGSTOP, from a thread, the worker that finished the first task whose key starts with ``prefix``."""
    pids = client.run(os.getpid)
    try:
        with after_first_task(
            client, prefix, lambda worker: os.kill(pids[worker], signal.SIGSTOP)
        ) as stopped:
            yield stopped
    finally:
        for victim in stopped:
            os.kill(pids[victim], signal.SIGCONT)


@pytest.fixture(scope="module")
def data():
    """12,000 rows of 10 features in 12 lazy blocks (every block has a lineage), and 1,000 test rows."""
    X, y = make_classification(13_000, 10, n_informative=6, chunks=1_000, random_state=3)
    return X[:12_000], y[:12_000], X[12_000:].compute()


def _forest(**params) -> ShardEnsembleClassifier:
    return ShardEnsembleClassifier(ExtraTreesClassifier(n_estimators=10), random_state=0, **params)


# ---------------------------------------------------------------------------------------------------------
# slow is not lost


def test_the_watch_sees_every_worker_whatever_the_client_refreshes(cluster):
    """``Client.scheduler_info()`` can return the periodic refresh's answer, which has no workers."""
    with (
        dask.config.set({"distributed.client.scheduler-info-interval": "5ms"}),
        Client(cluster) as client,
    ):
        client.wait_for_workers(3, timeout=60)
        watch = WorkerWatch(client)
        expected = set(client.run(os.getpid))
        seen = [watch.live(0.0) for _ in range(500)]
    assert all(live == expected for live in seen)


def test_a_paused_worker_is_not_lost(client):
    watch = WorkerWatch(client)
    workers = sorted(watch.live(0.0))
    with paused(client):
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            watch.check(workers, max_age_s=0.0, during="in the test")  # raises WorkersLost if one is gone
            time.sleep(0.2)


def test_the_straggler_rule():
    now = [0.0]
    rule = SpeculationRule(unresponsive_s=10.0, factor=3.0, floor_s=5.0, min_done_fraction=0.5)
    progress = ShardProgress(6, rule, clock=lambda: now[0])
    workers = ["a", "a", "b", "b", "c", "c"]
    progress.assign(workers)
    progress.heard({w: {"last_seen": 0} for w in "abc"})
    now[0] = 2.0
    progress.finished(0, "a")
    progress.finished(2, "b")
    progress.heard({w: {"last_seen": 1} for w in "ab"})
    assert progress.stragglers(workers) == {}  # only 2 of 6 done: the relative rule waits
    now[0] = 4.0
    progress.finished(1, "a")
    progress.heard({w: {"last_seen": 2} for w in "ab"})
    assert progress.stragglers(workers) == {}  # 3 of 6 done, c idle 4 s: below the 5 s floor
    now[0] = 6.5
    progress.heard({w: {"last_seen": 3} for w in "ab"})
    assert set(progress.stragglers(workers)) == {"c"}  # 6.5 s > max(5, 3 * median 2 s); b just idle 4.5 s
    now[0] = 10.5
    progress.heard({"a": {"last_seen": 4}, "c": {"last_seen": 4}})  # b's last heartbeat seen at 6.5 s
    assert set(progress.stragglers(workers)) == {"b", "c"}  # b idle 8.5 s > 6 s too
    assert progress.unresponsive() == {}  # b silent for 4 s only
    now[0] = 17.0
    progress.heard({"a": {"last_seen": 5}, "c": {"last_seen": 5}})
    assert list(progress.unresponsive()) == ["b"]  # silent for 10.5 s > 10 s
    assert "no heartbeat" in progress.stragglers(workers)["b"]


# ---------------------------------------------------------------------------------------------------------
# a paused worker


def test_shard_ensemble_with_a_worker_paused_for_the_whole_fit(client, data, caplog):
    X, y, X_test = data
    reference = _forest(fusion="soft-voting").fit(X, y)
    with caplog.at_level(logging.WARNING, logger=ENSEMBLE_LOGGER), paused(client) as victim:
        model = _forest(fusion="soft-voting").fit(X, y)
    assert "straggler" in caplog.text
    assert victim not in set(model.shard_report_.to_frame()["worker"])
    np.testing.assert_array_equal(model.predict_proba(X_test), reference.predict_proba(X_test))


@pytest.mark.parametrize("fusion", ["forest-union", "stacking"])
def test_shard_ensemble_with_a_worker_paused_mid_fit(client, data, caplog, fusion):
    X, y, X_test = data
    reference = _forest(fusion=fusion).fit(X, y)
    with (
        caplog.at_level(logging.WARNING, logger=ENSEMBLE_LOGGER),
        paused_after_first_task(client, "daskml-shard-fit") as stopped,
    ):
        model = _forest(fusion=fusion).fit(X, y)
    assert stopped, "the fit ended before the pause"
    assert "straggler" in caplog.text
    np.testing.assert_array_equal(model.predict_proba(X_test), reference.predict_proba(X_test))


def test_cascade_with_a_worker_paused_for_the_whole_fit(client, data, caplog):
    X, y, X_test = data
    X, y = X[:3_000].rechunk(500), y[:3_000].rechunk(500)
    # contiguous: stratified sharding first counts the labels of every block (a computation of the data
    # layer, before the shards are placed, that the straggler watch does not cover)
    reference = CascadeSVC(C=1.0, sharding="contiguous", random_state=0).fit(X, y)
    with caplog.at_level(logging.WARNING, logger=ENSEMBLE_LOGGER), paused(client):
        model = CascadeSVC(C=1.0, sharding="contiguous", random_state=0).fit(X, y)
    # no "straggler" assertion: the scheduler may place every shard block on the two workers that answer
    # (the mid-fit test below pauses a worker that holds shards)
    np.testing.assert_array_equal(model.support_, reference.support_)
    np.testing.assert_array_equal(model.predict(X_test), reference.predict(X_test))


def test_cascade_with_a_worker_paused_mid_fit(client, data, caplog):
    X, y, X_test = data
    X, y = X[:3_000].rechunk(500), y[:3_000].rechunk(500)
    reference = CascadeSVC(C=1.0, random_state=0).fit(X, y)
    with (
        caplog.at_level(logging.WARNING, logger=ENSEMBLE_LOGGER),
        paused_after_first_task(client, "daskml-cascade-fit") as stopped,
    ):
        model = CascadeSVC(C=1.0, random_state=0).fit(X, y)
    assert stopped, "the fit ended before the pause"
    assert "straggler" in caplog.text  # the paused worker holds shards of the next passes
    np.testing.assert_array_equal(model.support_, reference.support_)
    np.testing.assert_array_equal(model.predict(X_test), reference.predict(X_test))


def test_undisturbed_fits_move_nothing(client, data, caplog):
    """No straggler: every shard is fitted on the worker its block was persisted on, and nothing is copied.

    The rule's thresholds are raised so that the test does not depend on the machine's load (a healthy
    worker slowed by contention may legitimately have its shards moved).
    """
    X, y, _ = data
    quiet = {
        "daskml_lab.ensemble.speculation.unresponsive_s": 600,
        "daskml_lab.ensemble.speculation.floor_s": 600,
    }
    with caplog.at_level(logging.DEBUG, logger="daskml_lab.ensemble"), dask.config.set(quiet):
        model = _forest(fusion="soft-voting").fit(X, y)
    assert "straggler" not in caplog.text
    assert "moved" not in caplog.text
    pinned = [r.args for r in caplog.records if str(r.msg).startswith("shard fits pinned")]
    assert pinned
    report = model.shard_report_.to_frame()
    assert set(report["worker"]) <= set(client.run(os.getpid))
    # every shard ran where it was pinned (the holder of its block): as many shards per worker as pinned
    counts = pinned[-1] if isinstance(pinned[-1], dict) else pinned[-1][0]  # logging unpacks a lone dict
    assert dict(report["worker"].value_counts()) == {w: n for w, n in counts.items() if w}
