"""Local steps for the SGD over the store (``local_steps=k``): pull once, take ``k`` mini-batch steps on the
worker's own copy with the shards' rule, push the change once.

Real two-process cluster (the session's LocalCluster). With one row block, one worker runs every step, so the
steps are the same whatever ``k``: the coefficients must equal the one-step SGD's. With blocks on both
workers the steps see each other's changes up to ``k`` steps late: the fit must still reach scikit-learn's
accuracy. Also: the faster column compaction the steps rely on, and the worker allocator setting the clusters
we start use.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import dask
import numpy as np
import pytest
import scipy.sparse as sp
from distributed import Client, LocalCluster
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from daskml_lab.cluster import WORKER_ALLOCATOR_ENV, connect, worker_allocator
from daskml_lab.data import make_sparse_classification
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.solvers._partitioned_fit import compact

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def steps_client(local_cluster: LocalCluster) -> Iterator[Client]:
    with Client(local_cluster) as client:
        yield client


def _fit(X, y, *, max_iter: int = 3, C: float = 1.0, **options) -> LogisticRegression:
    model = LogisticRegression(
        C=C,
        solver="sgd",
        model_partitions=2,
        max_iter=max_iter,
        tol=0,
        random_state=0,
        solver_options={"batch_size": 64, **options},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter epochs on purpose
        return model.fit(X, y)


def _parameters(model: LogisticRegression) -> np.ndarray:
    return np.r_[np.asarray(model.coef_).ravel(), np.asarray(model.intercept_).ravel()]


@pytest.mark.parametrize(
    ("step_rule", "learning_rate", "n_classes"),
    [("adagrad", 1.0, 2), ("sgd", 0.3, 2), ("adagrad", 1.0, 3)],
)
def test_one_worker_takes_the_same_steps_whatever_k(
    steps_client: Client, step_rule: str, learning_rate: float, n_classes: int
) -> None:
    # one row block: one worker runs every step; the shards are on both workers. C small enough that the L2
    # steps (applied lazily by the shards, eagerly on the worker's copy) matter
    X, y = make_sparse_classification(
        2_000, 2**9, nnz_per_row=8, n_classes=n_classes, chunks=2_000, random_state=1
    )
    X, y = steps_client.persist([X, y])
    options = {"step_rule": step_rule, "learning_rate": learning_rate}
    one = _fit(X, y, C=0.05, local_steps=1, **options)
    reference = _parameters(one)
    assert np.abs(reference).max() > 0.05  # a model that moved, not zeros compared with zeros
    for k in (4, 40):  # 40 steps: more than one epoch's 32 per pull, so an epoch is a single pull and push
        many = _fit(X, y, C=0.05, local_steps=k, **options)
        np.testing.assert_allclose(_parameters(many), reference, rtol=0, atol=1e-10)
        np.testing.assert_allclose(many.history_["objective"], one.history_["objective"], rtol=1e-12)
        # fewer round trips for the same steps: one pull and one push per k steps, per shard
        assert many.history_["n_steps"].sum() == one.history_["n_steps"].sum()
        assert many.history_["n_pushes"].sum() < one.history_["n_pushes"].sum()


def test_two_workers_reach_scikit_learns_accuracy(steps_client: Client) -> None:
    X, y = make_sparse_classification(12_000, 2**10, nnz_per_row=10, chunks=3_000, random_state=3)
    X_train, y_train, X_test, y_test = X[:10_000], y[:10_000], X[10_000:], y[10_000:]
    X_train, y_train = steps_client.persist([X_train, y_train])
    X_np, y_np = X_train.compute(), y_train.compute()
    X_test_np, y_test_np = X_test.compute(), y_test.compute()
    reference = SkLogisticRegression(C=1.0, tol=1e-8, max_iter=1_000).fit(X_np, y_np)
    best = reference.score(X_test_np, y_test_np)
    model = _fit(X_train, y_train, max_iter=6, local_steps=8)
    # within a point of the optimum's accuracy, whichever way the two workers' steps interleaved (where the
    # scheduler put the blocks and how the tasks overlapped decide it, so it is not asserted)
    accuracy = float(np.mean(model.predict(X_test).compute() == y_test_np))
    assert accuracy >= best - 0.01, (accuracy, best)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"local_steps": 0}, "local_steps"),
        ({"local_steps": 4, "step_rule": "ftrl"}, "FTRL-proximal's closed form lives in the shards"),
        ({"local_steps": 4, "class_partitions": 2}, "class_partitions=1"),
    ],
)
def test_bad_local_steps_are_refused(steps_client: Client, options: dict, match: str) -> None:
    X, y = make_sparse_classification(200, 2**6, nnz_per_row=5, n_classes=4, chunks=100, random_state=0)
    with pytest.raises(ValueError, match=match):
        _fit(X, y, **options)


# ---------------------------------------------------------------------------------------------- compaction
@pytest.mark.parametrize("table_max", [0, 2**22])
def test_compaction_keeps_the_rows_whichever_way_it_finds_the_columns(monkeypatch, table_max: int) -> None:
    # table_max 0 with a width above 16 x the non-zeros: the sorting path; else the table path
    monkeypatch.setattr("daskml_lab.solvers._partitioned_fit.COMPACT_TABLE_MAX", table_max)
    X = sp.random(50, 5_000, density=0.002, format="csr", random_state=0, dtype=np.float64)
    columns, local = compact(X)
    np.testing.assert_array_equal(columns, np.unique(X.indices))
    assert local.shape == (50, len(columns))
    restored = sp.csr_matrix((local.data, columns[local.indices], local.indptr), shape=X.shape)
    assert (restored != X).nnz == 0


# ----------------------------------------------------------------------------------------------- allocator
def _malloc_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name.startswith("MALLOC_")}


def test_clusters_we_start_keep_temporaries_on_the_heap() -> None:
    ((name, value),) = WORKER_ALLOCATOR_ENV.items()
    client = connect(n_workers=1, threads_per_worker=1)
    try:
        (environment,) = client.run(_malloc_environment).values()
    finally:
        client.close()
    assert environment[name] == str(value)
    # dask's own setting stays (it hands freed memory back to the system)
    assert "MALLOC_TRIM_THRESHOLD_" in environment


def test_a_configured_allocator_setting_is_kept() -> None:
    ((name, _),) = WORKER_ALLOCATOR_ENV.items()
    key = f"distributed.nanny.pre-spawn-environ.{name}"
    with dask.config.set({key: 4096}), worker_allocator():
        assert dask.config.get(key) == 4096
    with worker_allocator():
        assert dask.config.get(key) == WORKER_ALLOCATOR_ENV[name]
