"""Fits inside dask tasks (issue 12): they complete on workers with a single thread.

``client.submit(lambda: model.fit(X, y))``, the joblib dask backend and dask-ml's searches run our fits inside
a task. The fit's own tasks then need a worker thread while the fitting task holds the only one: before the
fix each of these hung for ever (reproduced: ``TimeoutError`` after 40 s for a 500-row logistic regression).
Each test carries a pytest timeout, and every wait a timeout, so that a regression fails instead of hanging;
the cluster is the module's own, so that a hung task cannot block the session's cluster.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import dask.array as da
import joblib
import numpy as np
import pytest
from distributed import Client, LocalCluster, wait
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.tree import DecisionTreeClassifier

from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.linear_model import LogisticRegression

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]

#: Seconds to wait for a result; an undisturbed run takes about one.
WAIT_S = 60


@pytest.fixture(scope="module")
def _cluster() -> Iterator[LocalCluster]:
    """Single-threaded worker processes on 127.0.0.1, for this module only; the fixtures below set their number
    (one cluster scaled between one and two workers: a second cluster would cost its start and cold workers)."""
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        memory_limit="2GiB",
    ) as cluster:
        yield cluster


def _client_with_workers(cluster: LocalCluster, n_workers: int) -> Client:
    cluster.scale(n_workers)
    client = Client(cluster)
    deadline = time.monotonic() + WAIT_S
    # wait_for_workers waits for at least n: after a scale down, wait for the retired worker to be gone too
    while len(client.scheduler_info(n_workers=-1)["workers"]) != n_workers:
        assert time.monotonic() < deadline, f"the cluster did not reach {n_workers} worker(s)"
        time.sleep(0.1)
    return client


@pytest.fixture
def one_thread_client(_cluster: LocalCluster) -> Iterator[Client]:
    """One single-threaded worker process: the setting where a nested fit deadlocked."""
    with _client_with_workers(_cluster, 1) as client:
        yield client


@pytest.fixture
def two_worker_client(_cluster: LocalCluster) -> Iterator[Client]:
    """Two single-threaded worker processes: more concurrent fitting tasks than threads, on more than one worker."""
    with _client_with_workers(_cluster, 2) as client:
        yield client


def _data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=600, n_features=6, random_state=0)


def _fit_and_score(model: object, X: np.ndarray, y: np.ndarray) -> tuple[object, float]:
    model.fit(X, y)
    return model, float(model.score(X, y))


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(max_iter=50),
        ShardEnsembleClassifier(DecisionTreeClassifier(random_state=0), n_shards=2, random_state=0),
    ],
    ids=["logistic", "shard-ensemble"],
)
def test_fit_submitted_as_a_task(one_thread_client: Client, model: object) -> None:
    X, y = _data()
    future = one_thread_client.submit(_fit_and_score, model, X, y, pure=False)
    fitted, score = future.result(timeout=WAIT_S)
    # the same model as a fit from the client (the task saw the cluster, not another computation)
    expected = _fit_and_score(clone(model), X, y)[1]
    assert score == pytest.approx(expected, abs=1e-6)
    # predictions of a model fitted in a task, inside another task (numpy in, numpy out: computed there)
    predicted = one_thread_client.submit(fitted.predict, X, pure=False).result(timeout=WAIT_S)
    np.testing.assert_array_equal(predicted, fitted.predict(X))


def test_fit_on_dask_arrays_inside_a_task(one_thread_client: Client) -> None:
    X, y = _data()

    def fit_lazy() -> float:
        model = LogisticRegression(max_iter=50).fit(da.from_array(X, chunks=(200, -1)), da.from_array(y, 200))
        return float(model.score(X, y))

    score = one_thread_client.submit(fit_lazy, pure=False).result(timeout=WAIT_S)
    assert score == pytest.approx(LogisticRegression(max_iter=50).fit(X, y).score(X, y), abs=1e-6)


def test_joblib_dask_backend(one_thread_client: Client) -> None:
    X, y = _data()
    with joblib.parallel_backend("dask", wait_for_workers_timeout=WAIT_S):
        scores = cross_val_score(LogisticRegression(max_iter=50), X, y, cv=3, n_jobs=-1)
        search = GridSearchCV(LogisticRegression(max_iter=50), {"C": [0.1, 1.0]}, cv=2, n_jobs=-1).fit(X, y)
    assert scores.shape == (3,)
    assert scores.min() > 0.7
    assert search.best_params_["C"] in (0.1, 1.0)


def test_dask_ml_search(one_thread_client: Client) -> None:
    dask_ml_model_selection = pytest.importorskip("dask_ml.model_selection")
    X, y = _data()
    search = dask_ml_model_selection.GridSearchCV(LogisticRegression(max_iter=50), {"C": [0.1, 1.0]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["C"] in (0.1, 1.0)


def test_outside_a_task_nothing_changes(one_thread_client: Client) -> None:
    X, y = _data()
    model = LogisticRegression(max_iter=50).fit(X, y)
    assert model.score(X, y) > 0.7


def _coefficients(model: LogisticRegression, X: np.ndarray, y: np.ndarray, lazy: bool) -> np.ndarray:
    if lazy:
        X, y = da.from_array(X, chunks=(200, -1)), da.from_array(y, 200)
    return model.fit(X, y).coef_


@pytest.mark.parametrize("lazy", [False, True], ids=["numpy", "dask"])
def test_many_concurrent_fits_in_tasks(two_worker_client: Client, lazy: bool) -> None:
    # Eight fitting tasks on two 1-thread workers. Before the fix the first fit on a worker seceded, the
    # worker started the next fitting task with the seceded flag of the first one (a context variable carried
    # over by distributed's secede callback), that fit held the only thread while waiting for its own tasks,
    # and five fits or more never finished (one to three did).
    X, y = _data()
    models = [LogisticRegression(C=1.0 + i, max_iter=50) for i in range(8)]
    futures = [two_worker_client.submit(_coefficients, m, X, y, lazy, pure=False) for m in models]
    wait(futures, timeout=WAIT_S)
    fitted = two_worker_client.gather(futures)
    for model, coef in zip(models, fitted, strict=True):
        np.testing.assert_allclose(coef, _coefficients(clone(model), X, y, lazy), rtol=1e-10, atol=1e-12)


def test_joblib_search_with_more_fits_than_threads(two_worker_client: Client) -> None:
    # 4 candidates x 2 folds: 8 concurrent fitting tasks on two threads, then the refit
    X, y = _data()
    grid = {"C": [0.01, 0.3, 1.0, 10.0]}
    with joblib.parallel_backend("dask", wait_for_workers_timeout=WAIT_S):
        search = GridSearchCV(LogisticRegression(max_iter=50), grid, cv=2, n_jobs=-1).fit(X, y)
    expected = GridSearchCV(LogisticRegression(max_iter=50), grid, cv=2).fit(X, y)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], expected.cv_results_["mean_test_score"], atol=1e-12
    )
    assert search.best_params_ == expected.best_params_
