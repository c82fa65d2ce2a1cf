"""The same ``random_state`` gives the same model on 1, 2 or 4 workers and for any chunking of the input.

What is guaranteed, and tested here against the fit on the local (synchronous) scheduler:

- deterministic solvers (``lbfgs``; ``Ridge``): the same coefficients to rounding whatever the number of
  workers and the row chunks; with the same row chunks, the same bits on every run and engine, even stopped
  at ``max_iter`` far from convergence (the blocks' sums do not depend on how they are grouped);
- shard ensembles with an explicit ``n_shards``: ``sharding="contiguous"`` gives the same row ranges whatever
  the input chunks; ``"shuffle"`` and ``"stratified"`` send each row to the shard a seeded permutation of the
  row positions (of the class's rows) gives it, which depends on the row's global position only; so the shard
  models and the predictions are the same;
- ``CascadeSVC`` with an explicit ``n_shards``: the same shards, hence the same support vectors at every
  node and the same final SVC.

Not covered by the guarantee: ``admm``, ``sgd`` and ``async-sgd``, whose iterates depend on how the blocks are
grouped by worker (they agree to the solver's tolerance, not to rounding).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier
from daskml_lab.linear_model import LogisticRegression, Ridge

pytestmark = pytest.mark.cluster

N_SAMPLES = 12_000
#: Row chunks of the same data: even, uneven, and one large block with small ones.
CHUNKINGS = {
    "even": 1_500,
    "uneven": (1_000, 2_500, 500, 3_000, 2_000, 3_000),
    "lopsided": (7_000, 1_000, 1_000, 1_000, 2_000),
}
#: Worker counts, largest first (the module's cluster is scaled down between them), and the chunkings fitted
#: on each (the references are fitted on the even chunking, on the local scheduler).
WORKER_COUNTS = {4: ("lopsided",), 2: ("uneven", "lopsided"), 1: ("uneven",)}

MODELS = {
    "logistic-lbfgs": lambda: LogisticRegression(C=0.5, solver="lbfgs", tol=1e-8, random_state=0),
    "ridge": lambda: Ridge(alpha=2.0, tol=1e-8, random_state=0),
    "soft-voting-contiguous": lambda: ShardEnsembleClassifier(
        SkLogisticRegression(max_iter=1_000), n_shards=5, sharding="contiguous", random_state=0
    ),
    "forest-union-contiguous": lambda: ShardEnsembleClassifier(
        ExtraTreesClassifier(n_estimators=4), fusion="forest-union", n_shards=5, random_state=0
    ),
    "soft-voting-stratified": lambda: ShardEnsembleClassifier(
        SkLogisticRegression(max_iter=1_000), n_shards=5, sharding="stratified", random_state=0
    ),
    "cascade-svc-stratified": lambda: CascadeSVC(C=2.0, n_shards=4, random_state=0),
    "forest-union-shuffle": lambda: ShardEnsembleClassifier(
        ExtraTreesClassifier(n_estimators=4),
        fusion="forest-union",
        n_shards=5,
        sharding="shuffle",
        random_state=0,
    ),
}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(N_SAMPLES, 8, n_informative=5, random_state=0)
    target = X @ np.linspace(-1.0, 1.0, 8) + 0.1 * np.random.default_rng(0).normal(size=N_SAMPLES)
    return X, y, target, X[:2_000]


def _chunked(data, chunking):
    X, y, target, _ = data
    rows = CHUNKINGS[chunking]
    return (
        da.from_array(X, chunks=(rows, -1)),
        da.from_array(y, chunks=rows),
        da.from_array(target, chunks=rows),
    )


def _fit(name, X, y, target):
    return MODELS[name]().fit(X, target if name == "ridge" else y)


def _assert_same(name, model, reference, X_test):
    if name in ("logistic-lbfgs", "ridge"):
        np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(model.intercept_, reference.intercept_, rtol=1e-6, atol=1e-10)
        return
    if isinstance(model, CascadeSVC):  # the same shards, hence the same SVCs all the way up
        np.testing.assert_array_equal(model.support_, reference.support_)
        np.testing.assert_array_equal(model.predict(X_test), reference.predict(X_test))
        np.testing.assert_allclose(
            model.decision_function(X_test), reference.decision_function(X_test), rtol=1e-9
        )
        return
    np.testing.assert_array_equal(model.predict(X_test), reference.predict(X_test))
    np.testing.assert_allclose(model.predict_proba(X_test), reference.predict_proba(X_test), rtol=1e-9)
    assert [len(e.estimators_) if hasattr(e, "estimators_") else 1 for e in model.estimators_] == [
        len(e.estimators_) if hasattr(e, "estimators_") else 1 for e in reference.estimators_
    ]


@pytest.fixture(scope="module")
def references(data):
    """Every model fitted on the local synchronous scheduler, on the even chunking."""
    X, y, target = _chunked(data, "even")
    with dask.config.set(scheduler="sync"):
        return {name: _fit(name, X, y, target) for name in MODELS}


@pytest.fixture(scope="module")
def threaded_cluster() -> Iterator[LocalCluster]:
    """Four single-threaded workers in this process (scaled down to 1 by the tests).

    Threads rather than processes: four fresh worker processes each import scikit-learn, scipy and daskml_lab
    at their first task, which costs more than 10 s on a 2-core machine; the property tested (how the blocks
    and the shards are spread over the workers) is the same.
    """
    with LocalCluster(
        n_workers=max(WORKER_COUNTS),
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster


@pytest.fixture
def scaled_client(request) -> Iterator[Client]:
    """A client of a cluster of ``request.param`` workers: the session's 2 worker processes, or threads."""
    n_workers = request.param
    if n_workers == 2:
        client = request.getfixturevalue("client")  # tests/conftest.py: 2 worker processes
        client.wait_for_workers(2, timeout=60)
        yield client
        return
    cluster = request.getfixturevalue("threaded_cluster")
    with Client(cluster) as client:
        cluster.scale(n_workers)
        deadline = time.monotonic() + 60
        while len(client.scheduler_info()["workers"]) != n_workers and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(client.scheduler_info()["workers"]) == n_workers
        yield client


@pytest.mark.parametrize("scaled_client", WORKER_COUNTS, indirect=True, ids=lambda n: f"{n}-workers")
def test_same_model_on_any_number_of_workers_and_any_chunking(scaled_client, data, references):
    X_test = data[3]
    n_workers = len(scaled_client.scheduler_info()["workers"])
    for chunking in WORKER_COUNTS[n_workers]:
        X, y, target = _chunked(data, chunking)
        for name in MODELS:
            _assert_same(name, _fit(name, X, y, target), references[name], X_test)


# ---------------------------------------------------------------------------------------------------------
# L-BFGS stopped far from convergence: every run and every engine gives the same bits


def _far_from_converged():
    """Badly scaled features and weak regularisation: 30 L-BFGS iterations stop far from the optimum."""
    X, y = make_classification(10_000, 20, n_informative=10, random_state=0)
    X = X * np.logspace(0, 3, 20)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    chunks = 1_250  # 8 blocks: their grouping over the 2 workers varies between runs
    return (
        da.from_array(X, chunks=chunks),
        da.from_array(y, chunks=chunks),
        da.from_array(weights, chunks=chunks),
    )


def _lbfgs_at_max_iter(X, y, weights):
    model = LogisticRegression(C=1e4, solver="lbfgs", max_iter=30, tol=1e-12)
    with pytest.warns(ConvergenceWarning, match=r"stopped after 30 iteration"):
        return model.fit(X, y, sample_weight=weights)


def test_lbfgs_stopped_at_max_iter_gives_the_same_bits_on_every_run(client):
    """Before issue 17 the workers' partial sums depended on which blocks each held (it varies between runs)
    and L-BFGS amplified the last-bit differences; the grouping-independent sums make every fit identical."""
    X, y, weights = _far_from_converged()
    with dask.config.set(scheduler="sync"):
        reference = _lbfgs_at_max_iter(X, y, weights)
    assert reference.n_iter_ == 30
    assert reference.history_["grad_norm"].iloc[-1] > 1e-3  # far from converged: differences would grow
    fits = [_lbfgs_at_max_iter(X, y, weights) for _ in range(2)]  # 2 worker processes, actors
    with dask.config.set({"daskml_lab.solvers.engine": "tasks"}):
        fits.append(_lbfgs_at_max_iter(X, y, weights))
    with dask.config.set({"daskml_lab.solvers.persist": False}):  # the stream engine's tree of sums
        fits.append(_lbfgs_at_max_iter(X, y, weights))
    for model in fits:
        np.testing.assert_array_equal(model.coef_, reference.coef_)
        np.testing.assert_array_equal(model.intercept_, reference.intercept_)
