"""The distributed evaluation engines: same numbers as the local path, one small round trip per evaluation,
per-worker state for other solvers, readable names, and recovery from a lost worker."""

from __future__ import annotations

import gc
import time

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from distributed import Client
from sklearn.datasets import make_classification

from daskml_lab.solvers import BlockedProblem, LocalBlocks, get_solver

pytestmark = pytest.mark.cluster


def _data(n=4000, d=8, chunks=250, seed=0, sparse=False, weighted=True):
    X, y = make_classification(n, d, n_informative=5, n_redundant=0, random_state=seed)
    sw = np.random.default_rng(seed).uniform(0.5, 2.0, n) if weighted else None
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    Xd = da.from_array(X, chunks=(chunks, -1), asarray=not sparse)
    yd = da.from_array(y, chunks=chunks)
    swd = None if sw is None else da.from_array(sw, chunks=chunks)
    return Xd, yd, swd


def _params(d, k=1, seed=1):
    return np.random.default_rng(seed).standard_normal((d + 1, k)) * 0.3


def _local_value(Xd, yd, swd, W, **kwargs):
    with BlockedProblem(Xd, yd, swd, client=None, **kwargs) as problem:
        # the local path: no client resolves to in-process evaluation once the scheduler is set explicitly
        return problem.loss_grad(W), problem.engine_name


def _n_scheduler_tasks(client) -> int:
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))


@pytest.mark.parametrize("engine", ["actors", "tasks"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_engines_match_the_local_path(client, engine, sparse):
    Xd, yd, swd = _data(sparse=sparse)
    W = _params(8)
    with BlockedProblem(Xd, yd, swd, loss="logistic", l2=0.5, client=client, engine=engine) as problem:
        value, grad = problem.loss_grad(W)
        assert problem.engine_name == engine
        assert problem.n_workers == 2
        assert problem.sum_weights == pytest.approx(float(swd.sum().compute()))
    import dask

    with dask.config.set(scheduler="sync"):
        (expected, expected_grad), name = _local_value(Xd, yd, swd, W, loss="logistic", l2=0.5)
    assert name == "local"
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-11, atol=1e-12)


def test_stream_engine_on_the_cluster(client):
    Xd, yd, swd = _data()
    W = _params(8)
    with BlockedProblem(Xd, yd, swd, loss="logistic", client=client) as problem:
        expected = problem.loss_grad(W)
    with BlockedProblem(Xd, yd, swd, loss="logistic", client=client, persist=False) as problem:
        assert problem.engine_name == "stream"
        value = problem.loss_grad(W)
    np.testing.assert_allclose(value[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(value[1], expected[1], rtol=1e-11)


def test_default_client_is_found(client):
    Xd, yd, _ = _data(n=1000)
    with BlockedProblem(Xd, yd, loss="logistic") as problem:
        problem.loss_grad(_params(8))
        assert problem.engine_name == "actors"


def test_fit_on_two_workers_equals_fit_in_one_process(client):
    Xd, yd, swd = _data(n=3000, chunks=170)
    results = {}
    for where in ("cluster", "local"):
        kwargs = {"client": client} if where == "cluster" else {}
        import dask

        with dask.config.set(scheduler="dask.distributed" if where == "cluster" else "sync"):
            with BlockedProblem(Xd, yd, swd, loss="logistic", **kwargs) as problem:
                results[where] = get_solver("lbfgs")(problem, tol=1e-9, max_iter=500)
    np.testing.assert_allclose(results["cluster"].W, results["local"].W, rtol=1e-7, atol=1e-10)
    assert abs(results["cluster"].n_iter - results["local"].n_iter) <= 2


def test_actor_evaluations_create_no_tasks_and_count_one_call(client):
    Xd, yd, _ = _data()
    W = _params(8)
    with BlockedProblem(Xd, yd, loss="logistic", client=client) as problem:
        problem.loss_grad(W)
        before_tasks = _n_scheduler_tasks(client)
        before = problem.n_evaluations
        for _ in range(5):
            problem.loss_grad(W)
        assert problem.n_evaluations - before == 5
        # the blocks stay put; evaluations are direct actor calls, not tasks or graphs
        assert _n_scheduler_tasks(client) == before_tasks
        keys = client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])
        assert sum(k.startswith("daskml-solver-state-") for k in keys) == 2
        assert any("daskml-align" in k for k in keys)


def test_tasks_engine_shows_named_tasks(client):
    from distributed import get_task_stream

    Xd, yd, _ = _data(n=1000)
    with BlockedProblem(Xd, yd, loss="logistic", client=client, engine="tasks") as problem:
        problem.start()
        with get_task_stream(client) as stream:
            problem.loss_grad(_params(8))
    names = {str(t["key"]) for t in stream.data}
    assert len(names) == 2
    assert all("daskml-loss-grad" in name for name in names)


def _count_calls(local: LocalBlocks, increment: int) -> tuple[int, int, float]:
    local.state["calls"] = local.state.get("calls", 0) + increment
    return local.state["calls"], local.n_rows, local.sum_weight


def _minibatch_rows(local: LocalBlocks, batch_size: int, entropy: int) -> tuple[int, int, list[int]]:
    rows, batches, sizes = 0, 0, []
    for batch in local.iter_minibatches(batch_size, entropy=entropy):
        rows += batch.X.shape[0]
        batches += 1
        sizes.append(batch.X.shape[0])
        local.loss_grad_batch(batch, np.zeros((local.blocks[0].X.shape[1] + 1, 1)))
    return rows, batches, sizes


@pytest.mark.parametrize("engine", ["actors", "tasks"])
def test_map_workers_runs_once_per_worker_with_state(client, engine):
    Xd, yd, swd = _data()
    with BlockedProblem(Xd, yd, swd, loss="logistic", client=client, engine=engine) as problem:
        first = problem.map_workers(_count_calls, 1)
        second = problem.map_workers(_count_calls, 10)
        assert len(first) == problem.n_workers == 2
        assert sum(r[1] for r in first) == 4000
        assert sum(r[2] for r in first) == pytest.approx(problem.sum_weights)
        if engine == "actors":  # long-lived per-worker state
            assert [r[0] for r in second] == [11, 11]
        else:
            assert [r[0] for r in second] == [10, 10]
        handles = problem.submit_workers(_count_calls, 0)
        assert all(h.result(30)[1] > 0 for h in handles)
        batches = problem.map_workers(_minibatch_rows, 64, 123)
        assert sum(b[0] for b in batches) == 4000
        assert all(max(b[2]) == 64 for b in batches)


def test_local_map_workers_and_minibatches_are_reproducible():
    import dask

    Xd, yd, swd = _data(n=500, chunks=100)
    with dask.config.set(scheduler="sync"), BlockedProblem(Xd, yd, swd, loss="logistic") as problem:
        (result,) = problem.map_workers(_minibatch_rows, 32, 7)
        assert result[0] == 500
        local = problem._engine.local
        first = [b.target.copy() for b in local.iter_minibatches(32, entropy=7)]
        again = [b.target.copy() for b in local.iter_minibatches(32, entropy=7)]
        other = [b.target.copy() for b in local.iter_minibatches(32, entropy=7, epoch=1)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_lost_worker_is_rebuilt(client):
    Xd, yd, swd = _data()
    W = _params(8)
    with BlockedProblem(Xd, yd, swd, loss="logistic", client=client, timeout_s=60) as problem:
        expected = problem.loss_grad(W)
        victim = sorted(problem._engine._placement)[0]
        client.restart_workers([victim], timeout=60)
        value = problem.loss_grad(W)
        assert problem._engine.n_rebuilds == 1
        result = get_solver("lbfgs")(problem, tol=1e-6)
    np.testing.assert_allclose(value[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(value[1], expected[1], rtol=1e-11)
    assert result.converged


def test_worker_errors_propagate_without_rebuilding(client):
    Xd, _, _ = _data(n=1000)
    bad = da.from_array(np.full(1000, 3), chunks=250)
    with pytest.raises(ValueError, match=r"needs y encoded as 0/1, found labels \[3\]"):
        BlockedProblem(Xd, bad, loss="logistic", client=client).start()


def test_close_releases_worker_state(client):
    # with the garbage collector off, so that close() itself frees the state (each actor call leaves a
    # reference cycle holding the actor's Future, which only a collection would otherwise break)
    Xd, yd, _ = _data(n=1000)

    def held() -> list[str]:
        keys = client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])
        actors = client.run(lambda dask_worker: [str(k) for k in dask_worker.state.actors])
        held = [k for k in keys if k.startswith("daskml-solver-state-") or "daskml-align" in k]
        return held + [k for keys in actors.values() for k in keys]

    gc.disable()
    try:
        problem = BlockedProblem(Xd, yd, loss="logistic", client=client).start()
        for _ in range(3):
            problem.loss_grad(_params(8))
        assert held()
        problem.close()
        deadline = time.monotonic() + 10
        while held() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not held(), (
            f"persisted blocks or solver state still on the cluster after close(): {held()[:5]}"
        )
    finally:
        gc.enable()


def test_close_after_the_client_was_closed_does_not_raise(client):
    Xd, yd, _ = _data(n=1000)
    with Client(client.scheduler.address) as other:
        problem = BlockedProblem(Xd, yd, loss="logistic", client=other).start()
        problem.loss_grad(_params(8))
    problem.close()  # the client is closed: nothing to cancel through it, and no error


def test_fit_on_an_external_scheduler(external_scheduler):
    from distributed import Client

    Xd, yd, swd = _data(n=2000, chunks=200)
    with Client(external_scheduler, timeout=30) as external:
        with BlockedProblem(Xd, yd, swd, loss="logistic", client=external) as problem:
            result = get_solver("lbfgs")(problem, tol=1e-8)
            assert problem.engine_name == "actors"
            assert problem.n_workers == 2
    import dask

    with dask.config.set(scheduler="sync"), BlockedProblem(Xd, yd, swd, loss="logistic") as problem:
        expected = get_solver("lbfgs")(problem, tol=1e-8)
    np.testing.assert_allclose(result.W, expected.W, rtol=1e-6, atol=1e-9)
