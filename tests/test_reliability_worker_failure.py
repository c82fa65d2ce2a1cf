"""A worker process killed (SIGKILL) in the middle of a fit: the fit completes with the undisturbed result.

Every test really kills a worker process, at a known point of the fit:

- linear models: right after iteration 3 of the solver (its ``History.add`` is wrapped), so that the next
  evaluation meets a dead worker, often before the scheduler has noticed;
- shard ensembles and the cascade: from a thread, as soon as the first shard task has finished, while the
  other shard tasks are queued on (pinned to) both workers.

With a nanny (LocalCluster, ``dask worker``) the worker comes back under a new address; without one
(``dask worker --no-nanny``) it does not, and the persisted blocks it held exist nowhere else: they are
recomputed from their lineage, or, when they have none (scattered data), the fit fails with a clear message.
Nothing may hang: every wait of the package has a timeout, lowered here to keep failures fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator

import dask
import dask.array as da
import numpy as np
import pytest
from _fault_injection import after_first_task
from distributed import Client, LocalCluster
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from daskml_lab.data import make_classification
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier, _placement
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.solvers import _common
from tests.conftest import _dask_command, _free_port

pytestmark = pytest.mark.cluster

#: Longest wait of the package during these tests (its default is 600 s): a hang fails the test quickly.
TIMEOUT_S = 60
#: Wait for a killed worker's nanny to start its replacement: about a second on an idle machine, far more on a
#: loaded one (a slow restart is not the failure these tests look for).
RESTART_WAIT_S = 300
ENGINE_LOGGER = "daskml_lab.solvers._distributed_engine"
ENSEMBLE_LOGGER = "daskml_lab.ensemble._placement"


# ---------------------------------------------------------------------------------------------------------
# clusters


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two single-threaded worker processes under nannies, for this module only (its workers get killed).

    A LocalCluster forgets a worker whose replacement has not registered within
    ``distributed.deploy.lost-worker-timeout`` (15 s): on a loaded machine a nanny's restart can take longer,
    and the cluster then stays one worker short for the rest of the module. The timeout is raised here, and
    ``_worker_pids`` asks the cluster for its workers back should it still have forgotten one.
    """
    with (
        dask.config.set({"distributed.deploy.lost-worker-timeout": "1 hour"}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit="2GiB",
        ) as cluster,
    ):
        yield cluster


@pytest.fixture
def kill_client(cluster: LocalCluster) -> Iterator[Client]:
    """A client of the module's cluster.

    A killed worker is restarted by its nanny while the next test fits its reference model; the kill
    helpers wait for both workers before they arm.
    """
    with Client(cluster) as client, dask.config.set({"daskml_lab.solvers.timeout_s": TIMEOUT_S}):
        yield client


@pytest.fixture
def no_nanny_cluster(tmp_path) -> Iterator[str]:
    """`dask scheduler` and three `dask worker --no-nanny` subprocesses: a killed worker never comes back."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    commands = [
        [*_dask_command("scheduler"), "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        *(
            [
                *_dask_command("worker"),
                address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--memory-limit",
                "2GiB",
                "--no-nanny",
                "--no-dashboard",
                "--name",
                f"no-nanny-{index}",
            ]
            for index in range(3)
        ),
    ]
    processes = []
    try:
        for index, command in enumerate(commands):
            processes.append(
                subprocess.Popen(command, stdout=(logs / f"{index}.log").open("w"), stderr=subprocess.STDOUT)
            )
        with Client(address, timeout=30) as probe:
            probe.wait_for_workers(3, timeout=TIMEOUT_S)
        yield address
    finally:
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + 5
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


# ---------------------------------------------------------------------------------------------------------
# killing


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def _worker_pids(client: Client, n_workers: int | None) -> dict[str, int]:
    """Process ids of the worker processes (not their nannies), once ``n_workers`` workers are up."""
    if n_workers is not None:
        if client.cluster is not None and len(client.cluster.workers) < n_workers:
            client.cluster.scale(n_workers)  # the cluster forgot a worker whose restart was slow: start one
        client.wait_for_workers(n_workers, timeout=RESTART_WAIT_S)
    return client.run(os.getpid)


@contextlib.contextmanager
def kill_after_iteration(monkeypatch, client: Client, iteration: int, n_workers: int | None = 2):
    """Kill a worker process right after the solver records ``iteration``; yields the list of killed workers."""
    pids = _worker_pids(client, n_workers)
    victim = sorted(pids)[0]
    killed: list[str] = []
    original = _common.History.add

    def add(self, **kwargs):
        stop = original(self, **kwargs)
        if len(self.records) == iteration and not killed:
            _kill(pids[victim])
            killed.append(victim)
        return stop

    monkeypatch.setattr(_common.History, "add", add)
    try:
        yield killed
    finally:
        monkeypatch.setattr(_common.History, "add", original)


@contextlib.contextmanager
def kill_after_first_task(client: Client, prefix: str, n_workers: int | None = 2):
    """Kill a worker process from a thread once the first task whose key starts with ``prefix`` has finished.

    Yields the list of killed workers.
    """
    pids = _worker_pids(client, n_workers)
    victim = sorted(pids)[0]
    killed: list[str] = []

    def kill(_worker: str) -> None:
        _kill(pids[victim])
        killed.append(victim)

    with after_first_task(client, prefix, kill):
        yield killed


def _assert_gone(client: Client, victim: str) -> None:
    # the nanny restarts the worker process under a new address (the next test waits for it)
    assert victim not in client.scheduler_info()["workers"]


# ---------------------------------------------------------------------------------------------------------
# linear models


@pytest.fixture(scope="module")
def linear_data():
    """Lazy synthetic data (every block can be computed again from its lineage): 40,000 rows in 8 blocks."""
    return make_classification(40_000, 10, n_informative=6, chunks=5_000, random_state=0)


def _fit_linear(X, y, solver, **params):
    with warnings.catch_warnings():
        # a solver reaching max_iter warns; the comparison with the undisturbed fit is the test here
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(solver=solver, random_state=0, **params).fit(X, y)


@pytest.mark.parametrize(
    ("solver", "rtol", "atol"),
    [
        pytest.param("lbfgs", 1e-6, 1e-9, id="lbfgs"),
        pytest.param("proximal", 1e-6, 1e-9, id="proximal"),
        # ADMM's iterates depend on how the blocks are grouped by worker, which depends on where the scheduler
        # put them: two undisturbed fits agree to the solver's tolerance (tol=1e-6), not to rounding
        pytest.param("admm", 0.0, 1e-4, id="admm"),
    ],
)
def test_deterministic_solver_survives_a_killed_worker(
    kill_client, linear_data, monkeypatch, caplog, solver, rtol, atol
):
    X, y = linear_data
    if solver == "admm":
        _worker_pids(kill_client, 2)  # its iterates depend on the number of workers: compare like with like
    reference = _fit_linear(X, y, solver, tol=1e-6, max_iter=300)
    with (
        caplog.at_level(logging.WARNING, logger=ENGINE_LOGGER),
        kill_after_iteration(monkeypatch, kill_client, 3) as killed,
    ):
        model = _fit_linear(X, y, solver, tol=1e-6, max_iter=300)
    assert killed, "the fit ended before the kill"
    assert "lost" in caplog.text  # the engine noticed the loss and recovered
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(model.intercept_, reference.intercept_, rtol=rtol, atol=atol)
    _assert_gone(kill_client, killed[0])


@pytest.mark.parametrize(
    ("solver", "options"),
    [
        pytest.param("sgd", None, id="sgd"),
        pytest.param("async-sgd", {"batch_size": 256, "local_steps": 16}, id="async-sgd"),
    ],
)
def test_stochastic_solver_survives_a_killed_worker(
    kill_client, linear_data, monkeypatch, caplog, solver, options
):
    X, y = linear_data
    params = {"tol": 1e-4, "max_iter": 10, "solver_options": options}
    _worker_pids(kill_client, 2)  # the iterates depend on the number of workers: compare like with like
    reference = _fit_linear(X, y, solver, **params)
    with (
        caplog.at_level(logging.WARNING, logger=ENGINE_LOGGER),
        kill_after_iteration(monkeypatch, kill_client, 2) as killed,
    ):
        model = _fit_linear(X, y, solver, **params)
    assert killed, "the fit ended before the kill"
    assert "lost" in caplog.text
    X_np, y_np = dask.compute(X[:10_000], y[:10_000])
    # The same accuracy to a fraction of a percent, and the same model up to mini-batch noise (undisturbed
    # fits of these settings differ by up to 2% of the largest coefficient from one run to the next).
    assert model.score(X_np, y_np) == pytest.approx(reference.score(X_np, y_np), abs=0.01)
    np.testing.assert_allclose(model.coef_, reference.coef_, atol=0.1 * np.abs(reference.coef_).max())
    _assert_gone(kill_client, killed[0])


# ---------------------------------------------------------------------------------------------------------
# ensembles


@pytest.fixture(scope="module")
def ensemble_data():
    """24,000 rows of 20 features in 8 lazy blocks, and 2,000 test rows."""
    X, y = make_classification(26_000, 20, n_informative=8, chunks=3_250, random_state=1)
    X_test = X[24_000:].compute()
    return X[:24_000], y[:24_000], X_test


ENSEMBLES = {
    "soft-voting": lambda: ShardEnsembleClassifier(
        SkLogisticRegression(max_iter=1_000), fusion="soft-voting", n_shards=16, random_state=0
    ),
    "forest-union": lambda: ShardEnsembleClassifier(
        ExtraTreesClassifier(n_estimators=10), fusion="forest-union", n_shards=16, random_state=0
    ),
}


@pytest.mark.parametrize("fusion", sorted(ENSEMBLES))
def test_shard_ensemble_survives_a_killed_worker(kill_client, ensemble_data, caplog, fusion):
    X, y, X_test = ensemble_data
    reference = ENSEMBLES[fusion]().fit(X, y)
    with (
        caplog.at_level(logging.WARNING, logger=ENSEMBLE_LOGGER),
        kill_after_first_task(kill_client, "daskml-shard-fit") as killed,
    ):
        model = ENSEMBLES[fusion]().fit(X, y)
    assert killed, "the fit ended before the kill"
    assert "left the cluster" in caplog.text  # the pinned shards were moved to the new holders of the blocks
    np.testing.assert_array_equal(model.predict(X_test), reference.predict(X_test))
    np.testing.assert_allclose(model.predict_proba(X_test), reference.predict_proba(X_test), rtol=1e-12)
    _assert_gone(kill_client, killed[0])


def test_cascade_svc_survives_a_killed_worker(kill_client, ensemble_data, caplog):
    X, y, X_test = ensemble_data
    X, y = X[:4_000].rechunk(500), y[:4_000].rechunk(500)
    reference = CascadeSVC(C=1.0, random_state=0).fit(X, y)
    with (
        caplog.at_level(logging.WARNING, logger=ENSEMBLE_LOGGER),
        kill_after_first_task(kill_client, "daskml-cascade-fit") as killed,
    ):
        model = CascadeSVC(C=1.0, random_state=0).fit(X, y)
    assert killed, "the fit ended before the kill"
    assert "left the cluster" in caplog.text
    np.testing.assert_array_equal(model.support_, reference.support_)
    np.testing.assert_array_equal(model.predict(X_test), reference.predict(X_test))
    _assert_gone(kill_client, killed[0])


def test_lazy_prediction_survives_the_loss_of_a_worker_before_it_is_computed(kill_client, ensemble_data):
    X, y, X_test = ensemble_data
    pids = _worker_pids(kill_client, 2)
    model = ENSEMBLES["soft-voting"]().fit(X, y)
    expected = model.predict(X_test)
    prediction = model.predict(da.from_array(X_test, chunks=500))  # lazy: the model is a node of its graph
    victim = sorted(pids)[0]
    _kill(pids[victim])
    np.testing.assert_array_equal(prediction.compute(), expected)
    _assert_gone(kill_client, victim)


def test_a_scattered_model_is_sent_again_after_its_worker_is_lost(kill_client, ensemble_data):
    # above daskml_lab.ensemble.scatter_model_above_bytes the model is scattered, outside the graph, to one
    # worker; after the loss of that worker a new prediction scatters it again instead of failing on a
    # forgotten key
    X, y, X_test = ensemble_data
    pids = _worker_pids(kill_client, 2)
    model = ENSEMBLES["soft-voting"]().fit(X, y)
    expected = model.predict(X_test)  # a small model: in the graph, nothing scattered yet
    prefix = type(model.fusion_).__name__ + "-"  # the key of the scattered model

    def holders() -> list[str]:
        return sorted(
            w for w, keys in kill_client.has_what().items() if any(str(k).startswith(prefix) for k in keys)
        )

    with dask.config.set({"daskml_lab.ensemble.scatter_model_above_bytes": 1}):
        model.predict(da.from_array(X_test, chunks=500))  # lazy: scattered to one worker, nothing computed
        (holder,) = holders()
        _kill(pids[holder])
        deadline = time.monotonic() + TIMEOUT_S
        while holders():
            assert time.monotonic() < deadline, "the scheduler still lists the killed worker's copy"
            time.sleep(0.1)
        _worker_pids(kill_client, 2)
        np.testing.assert_array_equal(model.predict(da.from_array(X_test, chunks=500)).compute(), expected)


# ---------------------------------------------------------------------------------------------------------
# external scheduler and workers


def test_shard_ensemble_survives_a_killed_worker_on_an_external_cluster(external_scheduler, caplog):
    # `dask scheduler` and `dask worker` subprocesses (tests/conftest.py): the worker process is killed, its
    # nanny starts a new one under a new address. (The solvers on such a cluster: the no-nanny test below.)
    X, y = make_classification(20_000, 10, n_informative=6, chunks=2_500, random_state=2)
    X_test = X[:1_000].compute()
    ensemble = ENSEMBLES["soft-voting"]
    with (
        Client(external_scheduler, timeout=30) as client,
        dask.config.set({"daskml_lab.solvers.timeout_s": TIMEOUT_S}),
        caplog.at_level(logging.WARNING, logger=ENSEMBLE_LOGGER),
    ):
        expected = ensemble().fit(X, y).predict_proba(X_test)
        with kill_after_first_task(client, "daskml-shard-fit") as killed:
            model = ensemble().fit(X, y)
        assert killed
        assert "left the cluster" in caplog.text
        np.testing.assert_allclose(model.predict_proba(X_test), expected, rtol=1e-12)
        client.wait_for_workers(2, timeout=RESTART_WAIT_S)  # the session's external workers are shared


# ---------------------------------------------------------------------------------------------------------
# the only copy of the data dies with its worker (no nanny)


def test_without_nannies_lost_blocks_are_recomputed_or_the_fit_fails_clearly(
    no_nanny_cluster, monkeypatch, caplog
):
    X, y = make_classification(20_000, 10, n_informative=6, chunks=2_500, random_state=3)
    rng = np.random.default_rng(4)
    X_np = rng.normal(size=(20_000, 10))
    y_np = (X_np[:, 0] + X_np[:, 1] > 0).astype(np.int64)
    with (
        Client(no_nanny_cluster, timeout=30) as client,
        dask.config.set({"daskml_lab.solvers.timeout_s": TIMEOUT_S}),
    ):
        # 1. Lazy data: the killed worker held a third of the persisted blocks, and nothing restarts it. The
        # blocks are recomputed from their lineage on the other workers, which take over its share.
        reference = _fit_linear(X, y, "lbfgs", tol=1e-6)
        with (
            caplog.at_level(logging.WARNING, logger=ENGINE_LOGGER),
            kill_after_iteration(monkeypatch, client, 3, n_workers=3) as killed,
        ):
            model = _fit_linear(X, y, "lbfgs", tol=1e-6)
        assert killed
        assert "lost" in caplog.text
        np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-9)
        assert len(client.scheduler_info()["workers"]) == 2

        # 2. Scattered blocks have no lineage: the copy on the killed worker was the only one. The fit must
        # fail, naming the cause, in bounded time.
        futures = client.scatter([X_np[i : i + 2_500] for i in range(0, 20_000, 2_500)])
        X_scattered = da.concatenate([da.from_delayed(f, (2_500, 10), dtype=X_np.dtype) for f in futures])
        started = time.monotonic()
        with (
            kill_after_iteration(monkeypatch, client, 3, n_workers=None),
            pytest.raises(RuntimeError, match="lost with a worker and cannot be computed again"),
        ):
            _fit_linear(X_scattered, da.from_array(y_np, chunks=2_500), "lbfgs", tol=1e-6)
        assert time.monotonic() - started < TIMEOUT_S
        del futures, X_scattered

        # 3. The last worker dies in the middle of an ensemble fit: after a short grace for a worker to
        # join, the fit fails saying that no worker is left, instead of waiting for ever.
        monkeypatch.setattr(_placement, "NO_WORKER_GRACE_S", 2.0)
        started = time.monotonic()
        with (
            kill_after_first_task(client, "daskml-shard-fit", n_workers=None),
            pytest.raises(RuntimeError, match="No worker is left in the cluster"),
        ):
            ENSEMBLES["soft-voting"]().fit(X, y)
        assert time.monotonic() - started < TIMEOUT_S
