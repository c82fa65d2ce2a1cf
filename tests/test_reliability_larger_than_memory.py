"""Data on disk larger than the workers' memory: fitted by streaming the blocks, no worker killed (issue 6).

A zarr store of about 1.2 GiB (150 row chunks of 8 MiB) is fitted on two workers of ``memory_limit=500MiB``
each: more than the whole cluster's limit, and about 2.5 times one worker's. Persisting it would get the
workers killed by their nanny, so the linear model's solver and the shard ensemble must choose on their own to
read the blocks from the store at every pass and keep worker memory bounded. A worker process of this package
holds about 300 MiB of libraries before it holds any data; 500 MiB leaves room for a few blocks below dask's
pause threshold (80 %).

The store repeats 3 distinct blocks 50 times, so that the exact answers are cheap to compute in memory: the
logistic regression on the store with ``C`` equals scikit-learn's on the 3 blocks with ``50 * C`` (the
objective is the same up to a factor), and shard ``i`` of the ensemble is scikit-learn's model of block
``i % 3``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import dask
import numpy as np
import pytest
import zarr
from distributed import Client, LocalCluster
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.naive_bayes import GaussianNB

from daskml_lab._runtime.memory import WorkerMemory, dense_nbytes, plan_memory
from daskml_lab.data import read_zarr
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier
from daskml_lab.linear_model import HuberRegressor, LogisticRegression
from daskml_lab.linear_model import _huber as huber_module
from daskml_lab.testing import PeakMemory

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

MEMORY_LIMIT_MIB = 500
N_WORKERS = 2
BLOCK_ROWS = 16_384
N_FEATURES = 64  # 8 MiB per float64 block
N_DISTINCT = 3
N_COPIES = 50  # 150 blocks, 1.17 GiB of X
PAUSE_FRACTION = 0.8  # dask's distributed.worker.memory.pause default


def _base_blocks() -> list[tuple[np.ndarray, np.ndarray]]:
    coef = np.random.default_rng(0).standard_normal(N_FEATURES) / np.sqrt(N_FEATURES) * 3
    blocks = []
    for index in range(N_DISTINCT):
        rng = np.random.default_rng([1, index])
        X = rng.standard_normal((BLOCK_ROWS, N_FEATURES))
        y = (X @ coef + rng.logistic(size=BLOCK_ROWS) > 0).astype(np.int64)
        blocks.append((X, y))
    return blocks


@pytest.fixture(scope="module")
def base_blocks() -> list[tuple[np.ndarray, np.ndarray]]:
    return _base_blocks()


def _link_chunk(path: Path, block: int) -> bool:
    """Hard-link the (uncompressed, identical) chunk files of block ``block % N_DISTINCT`` as ``block``'s.

    The store and every worker's reads stay 1.2 GiB (each chunk is a file read whole into a worker); only the
    disk holds one copy, and writing 1.2 GiB took most of the module's set-up. False where links fail.
    """
    group = zarr.open_group(str(path), mode="r+")
    try:
        for name in ("X", "y"):
            array = group[name]
            extra = (0,) * (array.ndim - 1)
            source = path / name / array.metadata.encode_chunk_key((block % N_DISTINCT, *extra))
            target = path / name / array.metadata.encode_chunk_key((block, *extra))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory, base_blocks) -> Iterator[Path]:
    """A zarr group with ``X`` (chunks of BLOCK_ROWS rows) and ``y``; removed after the module."""
    path = tmp_path_factory.mktemp("larger_than_memory") / "big.zarr"
    n_blocks = N_DISTINCT * N_COPIES
    group = zarr.open_group(str(path), mode="w")
    X_array = group.create_array(
        "X",
        shape=(n_blocks * BLOCK_ROWS, N_FEATURES),
        chunks=(BLOCK_ROWS, N_FEATURES),
        dtype="f8",
        compressors=None,
    )
    y_array = group.create_array(
        "y", shape=(n_blocks * BLOCK_ROWS,), chunks=(BLOCK_ROWS,), dtype="i8", compressors=None
    )
    for block in range(n_blocks):
        if block >= N_DISTINCT and _link_chunk(path, block):
            continue
        X, y = base_blocks[block % N_DISTINCT]
        rows = slice(block * BLOCK_ROWS, (block + 1) * BLOCK_ROWS)
        X_array[rows] = X
        y_array[rows] = y
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def tight_client() -> Iterator[Client]:
    """Two single-threaded worker processes with a memory limit of MEMORY_LIMIT_MIB each."""
    with (
        LocalCluster(
            n_workers=N_WORKERS,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            memory_limit=f"{MEMORY_LIMIT_MIB}MiB",
        ) as cluster,
        Client(cluster) as client,
    ):
        # the libraries the fit tasks need, loaded before anything is measured
        client.run(lambda: __import__("daskml_lab.solvers") and __import__("sklearn.naive_bayes"))
        yield client


def _assert_no_worker_restarted(client: Client, pids_before: dict[str, int]) -> None:
    # a worker killed by its nanny comes back with another process id (and address)
    assert client.run(os.getpid) == pids_before


def test_store_is_larger_than_the_cluster_memory(big_store, tight_client):
    X, _ = read_zarr(big_store, target="y")
    limits = [w["memory_limit"] for w in tight_client.scheduler_info()["workers"].values()]
    assert limits == [MEMORY_LIMIT_MIB * 2**20] * N_WORKERS
    assert X.nbytes > 1.1 * sum(limits)
    assert X.chunks[0] == (BLOCK_ROWS,) * (N_DISTINCT * N_COPIES)


def test_the_memory_plan_streams_the_store_whatever_the_workers_use(big_store, tight_client):
    # The plan's inputs made explicit: with no memory in use at all (the most room the workers can have), the
    # store still exceeds half of their free memory, so the fits below stream however much the worker processes
    # happen to use.
    X, y = read_zarr(big_store, target="y")
    idle = (WorkerMemory(MEMORY_LIMIT_MIB * 2**20, 0.0),) * N_WORKERS
    for key, subject in (
        ("daskml_lab.solvers.persist", "the data"),
        ("daskml_lab.ensemble.persist", "the shards"),
    ):
        plan = plan_memory(
            nbytes=dense_nbytes(X, y),
            sparse=False,
            persist="auto",
            config_key=key,
            workers=idle,
            subject=subject,
            streaming="reading the blocks from the source",
            logger=logging.getLogger(__name__),
        )
        assert not plan.persist
        assert plan.reason.startswith("more than 0.5 of the workers' free memory")


def test_logistic_regression_streams_and_matches_the_in_memory_reference(
    big_store, tight_client, base_blocks, caplog
):
    X, y = read_zarr(big_store, target="y")
    pids = tight_client.run(os.getpid)
    with (
        caplog.at_level(logging.DEBUG, logger="daskml_lab.solvers._problem"),
        PeakMemory(tight_client) as memory,
    ):
        model = LogisticRegression(C=1.0 / N_COPIES, tol=1e-5, max_iter=100).fit(X, y)
    assert "streaming the blocks from their source at every evaluation" in caplog.text
    assert "engine stream" in caplog.text
    _assert_no_worker_restarted(tight_client, pids)
    assert memory.max_mib < PAUSE_FRACTION * MEMORY_LIMIT_MIB, memory.peak
    # the same objective (up to the factor N_COPIES) on the distinct blocks, in memory
    X_ref = np.vstack([b[0] for b in base_blocks])
    y_ref = np.concatenate([b[1] for b in base_blocks])
    reference = SkLogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(X_ref, y_ref)
    # tol=1e-5 stops lbfgs within about 5e-5 of the optimal coefficients (about 1 in magnitude)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=0, atol=3e-4)
    np.testing.assert_allclose(model.intercept_, reference.intercept_, rtol=0, atol=3e-4)


def test_shard_ensemble_streams_and_matches_the_in_memory_reference(
    big_store, tight_client, base_blocks, caplog
):
    X, y = read_zarr(big_store, target="y")
    pids = tight_client.run(os.getpid)
    with (
        caplog.at_level(logging.INFO, logger="daskml_lab.ensemble"),
        PeakMemory(tight_client) as memory,
    ):
        ensemble = ShardEnsembleClassifier(GaussianNB(), random_state=0).fit(X, y)
    assert "Not persisting the shards" in caplog.text
    _assert_no_worker_restarted(tight_client, pids)
    assert memory.max_mib < PAUSE_FRACTION * MEMORY_LIMIT_MIB, memory.peak
    references = [GaussianNB().fit(X_block, y_block) for X_block, y_block in base_blocks]
    assert ensemble.n_shards_ == N_DISTINCT * N_COPIES
    for index, member in enumerate(ensemble.estimators_):
        np.testing.assert_allclose(member.theta_, references[index % N_DISTINCT].theta_, rtol=1e-12)
        np.testing.assert_allclose(member.var_, references[index % N_DISTINCT].var_, rtol=1e-12)
    rows = np.vstack([X_block[:50] for X_block, _ in base_blocks])
    expected = np.mean([reference.predict_proba(rows) for reference in references], axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(rows), expected, rtol=1e-10, atol=1e-12)


def test_forced_persist_of_data_larger_than_memory_fails_before_killing_workers(big_store, tight_client):
    X, y = read_zarr(big_store, target="y")
    pids = tight_client.run(os.getpid)
    with (
        dask.config.set({"daskml_lab.solvers.persist": True}),
        pytest.raises(
            ValueError, match=r"persist=True, but the data \(1\.\d+ GB dense\) exceed the free memory"
        ),
    ):
        LogisticRegression(max_iter=5).fit(X, y)
    with (
        dask.config.set({"daskml_lab.ensemble.persist": True}),
        pytest.raises(ValueError, match=r"daskml_lab.ensemble.persist=True, but the data .* exceed the free"),
    ):
        ShardEnsembleClassifier(GaussianNB()).fit(X, y)
    _assert_no_worker_restarted(tight_client, pids)


def test_blocks_larger_than_a_worker_fail_before_killing_workers(big_store, tight_client):
    rows = N_DISTINCT * N_COPIES * BLOCK_ROWS // 2  # two blocks of 600 MB: more than a worker's limit
    X, y = read_zarr(big_store, target="y", chunks=rows)
    pids = tight_client.run(os.getpid)
    with pytest.raises(ValueError, match=r"largest row block \(1228800 rows, 629 MB dense\) does not fit"):
        LogisticRegression(max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match=r"largest shard \(1228800 rows, 629 MB dense\) does not fit"):
        ShardEnsembleClassifier(GaussianNB()).fit(X, y)
    with pytest.raises(ValueError, match="Use more, smaller shards"):
        ShardEnsembleClassifier(GaussianNB(), n_shards=2).fit(*read_zarr(big_store, target="y"))
    _assert_no_worker_restarted(tight_client, pids)


# -- the overrides, on small data and the session's cluster ------------------------------------------------
# With the persist fraction made tiny, "auto" streams even these small data: True must then persist anyway.


AUTO_STREAM_REASON = "more than 1e-12 of the workers' free memory"


@pytest.fixture
def tiny_persist_fraction() -> Iterator[None]:
    # an explicit input of the memory plan, instead of the workers' momentary memory use
    with dask.config.set({"daskml_lab.memory.persist_fraction": 1e-12}):
        yield


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory, base_blocks) -> Path:
    path = tmp_path_factory.mktemp("small") / "small.zarr"
    group = zarr.open_group(str(path), mode="w")
    group.create_array("X", data=np.vstack([b[0][:2048] for b in base_blocks]), chunks=(2048, N_FEATURES))
    group.create_array("y", data=np.concatenate([b[1][:2048] for b in base_blocks]), chunks=(2048,))
    return path


def _fit_logged(caplog, make_model, X, y, key: str, persist: object) -> tuple[object, str]:
    caplog.clear()
    settings = {} if persist == "auto" else {key: persist}
    with caplog.at_level(logging.DEBUG, logger="daskml_lab"), dask.config.set(settings):
        model = make_model().fit(X, y)
    return model, caplog.text


def test_persist_override_of_the_linear_models(client, small_store, caplog, tiny_persist_fraction):
    X, y = read_zarr(small_store, target="y")
    key = "daskml_lab.solvers.persist"
    models = {}
    for persist, engine in (("auto", "stream"), (True, "actors"), (False, "stream")):
        models[persist], log = _fit_logged(caplog, lambda: LogisticRegression(tol=1e-8), X, y, key, persist)
        assert f"BlockedProblem started: engine {engine}" in log, persist
        assert ("streaming the blocks from their source" in log) is (persist == "auto")
        assert (f"persist={persist} set explicitly" in log) is (persist != "auto")
    for persist in (True, False):
        np.testing.assert_allclose(models[persist].coef_, models["auto"].coef_, rtol=1e-7, atol=1e-9)


def test_persist_override_of_the_ensembles(client, small_store, base_blocks, caplog, tiny_persist_fraction):
    X, y = read_zarr(small_store, target="y")
    key = "daskml_lab.ensemble.persist"
    references = [GaussianNB().fit(X_block[:2048], y_block[:2048]) for X_block, y_block in base_blocks]
    for persist, reason in (("auto", AUTO_STREAM_REASON), (True, None), (False, "persist=False")):
        ensemble, log = _fit_logged(
            caplog, lambda: ShardEnsembleClassifier(GaussianNB(), random_state=0), X, y, key, persist
        )
        if reason is None:
            assert "Not persisting the shards" not in log
        else:
            assert "Not persisting the shards" in log
            assert reason in log
        for member, reference in zip(ensemble.estimators_, references, strict=True):
            np.testing.assert_allclose(member.theta_, reference.theta_, rtol=1e-12)


def test_invalid_persist_setting_is_rejected(client, small_store):
    X, y = read_zarr(small_store, target="y")
    with (
        dask.config.set({"daskml_lab.solvers.persist": "yes"}),
        pytest.raises(ValueError, match=r"daskml_lab\.solvers\.persist' must be 'auto', True or False"),
    ):
        LogisticRegression().fit(X, y)
    with (
        dask.config.set({"daskml_lab.ensemble.persist": "yes"}),
        pytest.raises(ValueError, match=r"daskml_lab\.ensemble\.persist' must be 'auto', True or False"),
    ):
        ShardEnsembleClassifier(GaussianNB()).fit(X, y)


def test_huber_regressor_follows_the_persist_rule(
    client, small_store, caplog, monkeypatch, tiny_persist_fraction
):
    # HuberRegressor reads the rows for several coefficient fits and scale updates: it keeps them in memory
    # only when the solvers' rule would, so that data larger than memory are streamed by every one of its fits.
    X, y = read_zarr(small_store, target="y")
    key = "daskml_lab.solvers.persist"
    persisted = []
    original_persist = huber_module.watched_persist  # how it keeps its rows (watched for a paused worker)
    monkeypatch.setattr(
        huber_module,
        "watched_persist",
        lambda *args, **kw: persisted.append(args) or original_persist(*args, **kw),
    )
    models = {}
    for persist, engine, other in (("auto", "stream", "actors"), (True, "actors", "stream")):
        persisted.clear()
        models[persist], log = _fit_logged(caplog, lambda: HuberRegressor(tol=1e-6), X, y, key, persist)
        assert f"BlockedProblem started: engine {engine}" in log, persist
        assert f"BlockedProblem started: engine {other}" not in log, persist
        assert bool(persisted) is (persist is True), persist  # the rows are persisted only when kept
    np.testing.assert_allclose(models["auto"].coef_, models[True].coef_, rtol=1e-6, atol=1e-8)
    assert models["auto"].scale_ == pytest.approx(models[True].scale_, rel=1e-6)


def test_persist_override_of_the_cascade_svm(client, small_store, caplog, tiny_persist_fraction):
    X, y = read_zarr(small_store, target="y")
    key = "daskml_lab.ensemble.persist"
    supports = {}
    for persist, reason in (("auto", AUTO_STREAM_REASON), (True, None), (False, "persist=False")):
        model, log = _fit_logged(caplog, lambda: CascadeSVC(n_feedback=0, random_state=0), X, y, key, persist)
        assert ("Not persisting the shards" in log) is (reason is not None), persist
        if reason is not None:
            assert reason in log
        supports[persist] = model.support_
    np.testing.assert_array_equal(supports[True], supports["auto"])
    np.testing.assert_array_equal(supports[False], supports["auto"])
