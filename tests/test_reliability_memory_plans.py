"""Clear, early errors (or plans that fit) when the data or the model do not fit the workers (issue 17, item 6).

Three cases found on main with small workers, each ending far from its cause:

- in-memory (numpy) training data larger than the workers' memory: the workers were killed again and again,
  and the fit ended in a ``TimeoutError`` (an empty one from an unwrapped wait);
- ``predict`` on numpy input with a 50 MB forest and 400 MB workers: the model was sent to every worker, both
  were restarted, and the user saw ``FutureCancelledError ... already forgotten``;
- ``CascadeSVC`` merges with libsvm's default 200 MiB kernel cache on small workers: restarts, then
  ``KilledWorker`` (or a worker paused for ever).

The plans are unit-tested with explicit :class:`WorkerMemory` inputs; the cluster tests use two worker
processes with ``memory_limit=500MiB`` (a worker that has loaded this package's libraries holds about 350 MiB,
above the pause threshold of a 400 MiB worker) and sizes chosen so that the outcome does not depend on how much
memory the worker processes use: refused data exceed the workers' whole limits, and the Cascade SVM's merge
would need more than the limit with the user's cache.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.naive_bayes import GaussianNB

from daskml_lab._runtime.memory import WorkerMemory, check_client_data, measure_workers, plan_prediction
from daskml_lab._runtime.waiting import result_within
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier
from daskml_lab.ensemble._cascade_memory import (
    MIN_CACHE_MB,
    node_cache_size,
    plan_cascade_memory,
    svc_nbytes,
)
from daskml_lab.ensemble._predict import model_nbytes
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.solvers._engine import WorkerCall

MIB = 2**20
LIMIT = 400 * MIB
CLUSTER_LIMIT = 500 * MIB


# ---------------------------------------------------------------------------------------------------------
# the plans, from explicit worker memory


def test_client_data_beyond_the_workers_is_refused_with_sizes_and_fixes():
    workers = [WorkerMemory(LIMIT, 200 * MIB)] * 2
    check_client_data(100e6, workers)  # fits
    check_client_data(1e12, [])  # no cluster to bound
    with pytest.raises(ValueError, match=r"\(1\.00 GB dense\) are in this process's memory") as info:
        check_client_data(1e9, workers, address="tcp://127.0.0.1:1")
    message = str(info.value)
    assert "2 workers" in message
    assert "0.38 GB free below their memory_limit (0.84 GB in all)" in message
    assert "read_zarr" in message
    assert "add workers or memory" in message


@pytest.mark.parametrize(
    ("model_mb", "X_mb", "in_client", "place"),
    [
        (50, 1, True, "client"),  # small input: no round trip
        (70, 100, True, "client"),  # a model large for the workers
        (1, 2000, True, "client"),  # rows beyond the workers' free memory
        (1, 100, True, "cluster"),  # large input, small model: the cluster's parallelism
        (1, 2000, False, "cluster"),  # dask input stays on the cluster
        (50, 2000, False, "cluster"),  # ... when the workers can hold the model
    ],
)
def test_where_a_prediction_runs(model_mb, X_mb, in_client, place):
    workers = [WorkerMemory(LIMIT, 150 * MIB)] * 2  # 230 MB free below terminate each
    assert (
        plan_prediction(
            model_nbytes=model_mb * 1e6, X_nbytes=X_mb * 1e6, in_client=in_client, workers=workers
        )
        == place
    )


def test_a_model_no_worker_can_hold_is_refused_for_dask_input():
    workers = [WorkerMemory(LIMIT, 250 * MIB), WorkerMemory(4 * LIMIT, 250 * MIB)]
    with pytest.raises(ValueError, match=r"The model \(80 MB serialised\) is sent to every worker") as info:
        plan_prediction(model_nbytes=80e6, X_nbytes=1e9, in_client=False, workers=workers, what="The model")
    assert "smallest worker has 136 MB free below its memory_limit (419 MB)" in str(info.value)
    assert "in-memory input" in str(info.value)
    assert plan_prediction(model_nbytes=80e6, X_nbytes=1e9, in_client=True, workers=workers) == "client"
    assert plan_prediction(model_nbytes=1e12, X_nbytes=1e9, in_client=False, workers=[]) == "cluster"


def test_small_in_memory_input_threshold_is_a_config_key():
    workers = [WorkerMemory(LIMIT, 0)] * 2
    kwargs = {"model_nbytes": 1e6, "X_nbytes": 10e6, "in_client": True, "workers": workers}
    assert plan_prediction(**kwargs) == "client"
    with dask.config.set({"daskml_lab.memory.client_predict_bytes": 0}):
        assert plan_prediction(**kwargs) == "cluster"


def test_model_size_counts_the_arrays_once():
    small = model_nbytes(SkLogisticRegression().fit(np.eye(4), [0, 1, 0, 1]))
    heavy = SkLogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    heavy.ballast_ = np.zeros(10 * MIB // 8)
    assert 10 * MIB < model_nbytes(heavy) < 10 * MIB + 2 * small


def test_cascade_plan_keeps_what_fits_and_reduces_the_cache_first():
    big = [WorkerMemory(8 * 2**30, 0)] * 2
    plan = plan_cascade_memory(shard_rows=4000, n_features=20, fan_in=3, cache_size=200, workers=big)
    assert (plan.cache_size, plan.fan_in, plan.reason) == (200, 3, "")
    assert plan_cascade_memory(
        shard_rows=10**6, n_features=10**3, fan_in=2, cache_size=200, workers=[]
    ).budget == (float("inf"))
    small = [WorkerMemory(LIMIT, 250 * MIB)] * 2  # 70 MiB below the pause threshold (80 %)
    plan = plan_cascade_memory(shard_rows=4000, n_features=20, fan_in=2, cache_size=200, workers=small)
    assert plan.fan_in == 2
    assert MIN_CACHE_MB <= plan.cache_size < 70
    assert svc_nbytes(8000, 20, plan.cache_size) <= plan.budget < svc_nbytes(8000, 20, plan.cache_size + 1)
    assert plan.reason.startswith("cache_size 200 -> ")


def test_cascade_plan_reduces_the_fan_in_when_the_cache_cannot_make_it_fit():
    workers = [WorkerMemory(LIMIT, 200 * MIB)] * 2  # 120 MiB below pause
    # shards of 20,000 x 40 (6.4 MB, 4 copies): a merge of 6 or 5 needs more than the budget for its rows
    plan = plan_cascade_memory(shard_rows=20_000, n_features=40, fan_in=6, cache_size=200, workers=workers)
    assert plan.fan_in == 4
    assert "fan_in 6 -> 4" in plan.reason
    assert svc_nbytes(4 * 20_000, 40, plan.cache_size) <= plan.budget


def test_cascade_plan_refuses_a_shard_no_worker_can_train():
    workers = [WorkerMemory(LIMIT, 200 * MIB)] * 2
    with pytest.raises(
        ValueError, match="the SVC of a shard of 100000 rows x 200 features needs about"
    ) as info:
        plan_cascade_memory(shard_rows=100_000, n_features=200, fan_in=2, cache_size=200, workers=workers)
    assert "Use more shards (shards of at most about" in str(info.value)


def test_a_merge_larger_than_the_plan_fails_in_its_task_with_a_clear_error():
    budget = 100 * MIB
    assert node_cache_size(1000, 10, 200.0, budget, position=(0, 1, 0)) == 200.0  # the whole kernel fits
    assert MIN_CACHE_MB <= node_cache_size(6000, 10, 200.0, budget, position=(0, 1, 0)) < 100
    with pytest.raises(ValueError, match=r"node 3 of layer 2 \(pass 1\) would train an SVC on 500000 rows"):
        node_cache_size(500_000, 10, 200.0, budget, position=(1, 2, 3))


# ---------------------------------------------------------------------------------------------------------
# waits with a message


def test_worker_calls_time_out_with_a_message(client):
    future = client.submit(time.sleep, 30, pure=False)
    try:
        with pytest.raises(
            TimeoutError, match=r"Timed out after 0\.2 s waiting for the test call on the cluster"
        ):
            WorkerCall(future, what="the test call").result(0.2)
        with pytest.raises(TimeoutError, match=r"waiting for the sleep on the cluster at tcp://127\.0\.0\.1"):
            result_within(future, what="the sleep", client=client, timeout_s=0.2)
    finally:
        client.cancel(future)


def test_a_tasks_own_timeout_error_is_passed_on(client):
    def fails() -> None:
        msg = "the task's own"
        raise TimeoutError(msg)

    future = client.submit(fails, pure=False)
    with pytest.raises(TimeoutError, match="the task's own"):
        result_within(future, what="x", client=client, timeout_s=30)


def test_a_future_done_just_after_the_poll_gave_up_gives_its_value(client):
    # The poll's own TimeoutError, with the future finished before it is looked at: a race that failed one fit
    # in eighteen of a joblib search on two loaded 1-thread workers ("timed out after 0.5 s").
    class FinishesDuringThePoll:
        def __init__(self) -> None:
            self.polled = False

        def result(self, timeout: float | None = None) -> int:
            if timeout is not None and not self.polled:
                self.polled = True
                msg = f"timed out after {timeout} s."
                raise TimeoutError(msg)
            return 42

        def done(self) -> bool:
            return self.polled

    assert result_within(FinishesDuringThePoll(), what="x", client=client, timeout_s=30) == 42


@pytest.fixture(scope="module")
def small_client() -> Iterator[Client]:
    """Two single-threaded worker processes with ``memory_limit=500MiB`` each."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            memory_limit=CLUSTER_LIMIT,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: __import__("daskml_lab.ensemble") and __import__("sklearn.svm"))
        yield client


def _pids(client: Client) -> dict[str, int]:
    return client.run(os.getpid)


def _task_prefixes(client: Client) -> set[str]:
    return set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))


@pytest.mark.cluster
@pytest.mark.parametrize(
    "estimator", [LogisticRegression(max_iter=5), ShardEnsembleClassifier(GaussianNB(), n_shards=2)]
)
def test_in_memory_data_larger_than_the_workers_are_refused_before_sending(small_client, estimator):
    # 1.38 GB dense: more than the two workers' whole limits (1.05 GB). np.zeros takes no memory until written.
    X = np.zeros((2_300_000, 75))
    y = np.arange(X.shape[0]) % 2
    pids = _pids(small_client)
    before = _task_prefixes(small_client)
    with (
        dask.config.set({"daskml_lab.solvers.timeout_s": 20}),
        pytest.raises(ValueError, match=r"The data \(1\.40 GB dense\) are in this process's memory") as info,
    ):
        estimator.fit(X, y)
    assert "read_zarr" in str(info.value)
    assert _task_prefixes(small_client) == before  # nothing was sent
    assert _pids(small_client) == pids


def _heavy_members(ballast_bytes: int) -> tuple[list, np.ndarray, np.ndarray]:
    """Two fitted logistic regressions, one carrying ``ballast_bytes`` of zeros (sent with the model)."""
    X, y = make_classification(400, 5, random_state=0)
    members = [SkLogisticRegression().fit(X[:200], y[:200]), SkLogisticRegression().fit(X[200:], y[200:])]
    members[0].ballast_ = np.zeros(ballast_bytes // 8)  # no memory used until written
    return members, X, y


@pytest.mark.cluster
def test_numpy_prediction_with_a_large_model_runs_in_this_process(small_client):
    members, X, _ = _heavy_members(60 * 10**6)
    ensemble = ShardEnsembleClassifier.from_estimators(members, classes=[0, 1])
    with dask.config.set(scheduler="sync"):
        expected = ensemble.predict(X)
        expected_proba = ensemble.predict_proba(X)
    pids = _pids(small_client)
    np.testing.assert_array_equal(ensemble.predict(X), expected)
    np.testing.assert_allclose(ensemble.predict_proba(X), expected_proba)
    assert ensemble.score(X, expected) == 1.0
    assert not {
        p for p in _task_prefixes(small_client) if p.startswith("daskml-fuse")
    }  # no cluster round trip
    assert _pids(small_client) == pids


@pytest.mark.cluster
def test_dask_prediction_with_a_model_no_worker_holds_is_refused_before_any_task(small_client):
    # 300 MB, held twice while loaded: more than a whole 500 MiB worker
    members, X, _ = _heavy_members(300 * 10**6)
    ensemble = ShardEnsembleClassifier.from_estimators(members, classes=[0, 1])
    pids = _pids(small_client)
    with pytest.raises(ValueError, match=r"fused model of ShardEnsembleClassifier \(300 MB serialised\)"):
        ensemble.predict(da.from_array(X, chunks=100))
    # in-memory input of the same model is predicted here, where the model is
    assert ensemble.predict(X).shape == (400,)
    assert _pids(small_client) == pids


@pytest.mark.cluster
def test_cascade_refuses_shards_no_worker_can_train_before_the_work(small_client):
    # shards of 10,000 x 1,600: 4 copies are 512 MB, more than 80 % of a 500 MiB worker (419 MB)
    X = da.random.default_rng(0).random((20_000, 1_600), chunks=(10_000, 1_600))
    y = (da.arange(20_000, chunks=10_000) % 2).astype(np.int64)
    pids = _pids(small_client)
    with pytest.raises(ValueError, match="the SVC of a shard of 10000 rows x 1600 features needs about"):
        CascadeSVC(sharding="contiguous").fit(X, y)
    assert not {p for p in _task_prefixes(small_client) if p.startswith("daskml-cascade")}
    assert _pids(small_client) == pids


@pytest.mark.cluster
@pytest.mark.timeout(240)
def test_cascade_merge_is_sized_to_the_workers(small_client, caplog):
    # A merge of the two shards' support vectors (about 6,000 of 8,000 noisy rows) with the user's 300 MiB
    # cache would fill up to 4 * 6000**2 = 144 MB of kernel on top of the worker's libraries: on main, the
    # workers are paused or killed. The plan gives it the cache that fits.
    X, y = make_classification(8000, 5, n_informative=3, flip_y=0.3, random_state=0)
    pids = _pids(small_client)
    with caplog.at_level(logging.WARNING, logger="daskml_lab.ensemble._cascade"):
        model = CascadeSVC(n_shards=2, n_feedback=0, cache_size=300, random_state=0).fit(X, y)
    assert "CascadeSVC memory plan: cache_size 300 -> " in caplog.text
    assert model.final_estimator_.cache_size == 300  # the fitted model keeps the user's parameter
    assert model.support_.size > 2000  # a large merge
    assert _pids(small_client) == pids


def test_the_workers_are_measured_again_when_the_scheduler_answered_with_its_cached_identity():
    # a loaded scheduler: scheduler_info() falls back to the client's cached identity, which lists no worker;
    # planning on it would bound nothing (a forced persist of data larger than the cluster went through)
    listed = {
        f"tcp://127.0.0.1:{port}": {"memory_limit": 2**30, "metrics": {"memory": 2**20}} for port in (1, 2)
    }
    answers = [{"n_workers": 2, "workers": {}}, {"n_workers": 2, "workers": listed}]

    class LoadedClient:
        def scheduler_info(self):
            return answers.pop(0) if len(answers) > 1 else answers[0]

    assert measure_workers(LoadedClient()) == (WorkerMemory(2**30, 2**20), WorkerMemory(2**30, 2**20))
