"""Shard fits on a distributed cluster run on the worker holding their block, and no shard rows travel."""

from __future__ import annotations

import logging
from collections import Counter

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import futures_of, get_task_stream, wait
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

from daskml_lab.data import make_classification
from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.ensemble._placement import place_shards, place_shards_for_fit

pytestmark = pytest.mark.cluster

# Keys a shard task may fetch from another worker: models and fusion objects, never rows.
MODEL_KEY_PREFIXES = (
    "daskml-base-estimator",
    "daskml-shard-summary",
    "daskml-shard-members",
    "daskml-fusion",
)


def _name(key):
    return str(key[0] if isinstance(key, tuple) else key)


def _clear_transfer_logs(client):
    def clear(dask_worker):
        dask_worker.transfer_incoming_log.clear()

    client.run(clear)


def _transferred_keys(client):
    def keys(dask_worker):
        return [key for entry in dask_worker.transfer_incoming_log for key in entry["keys"]]

    return [key for per_worker in client.run(keys).values() for key in per_worker]


def _records(stream, prefix):
    return [r for r in stream.data if _name(r["key"]).startswith(prefix)]


def _holders(client, array):
    """Worker holding each block of a persisted array, matched by block key."""
    who_has = client.who_has(futures_of(array))
    return [sorted(who_has[b.key]) for b in array.to_delayed().ravel()]


@pytest.fixture
def on_one_worker(client):
    """Small co-generated blocks (16 KB), all persisted on the first worker; the second worker is idle."""
    X, y = make_classification(6400, 5, n_informative=3, chunks=400, random_state=0)
    first = sorted(client.scheduler_info()["workers"])[0]
    X, y = client.persist([X, y], workers=[first])
    wait([X, y])
    return X, y, first


def test_every_shard_fit_runs_where_its_block_lives_and_no_rows_travel(client, on_one_worker):
    X, y, first = on_one_worker
    assert all(h == [first] for h in _holders(client, X))
    _clear_transfer_logs(client)
    with get_task_stream(client) as stream:
        # stacking: a held-out pass as well, whose tasks read the held-out rows kept by the fits
        model = ShardEnsembleClassifier(GaussianNB(), fusion="stacking", random_state=0).fit(X, y)
    fits = _records(stream, "daskml-shard-fit-")
    held_out = _records(stream, "daskml-held-out-")
    assert sorted(r["key"][1] for r in fits) == list(range(16))
    assert len(held_out) == 16
    # The second worker was idle the whole time, yet every shard task stayed with its block.
    assert {r["worker"] for r in fits + held_out} == {first}
    for record in fits + held_out:
        assert "transfer" not in {s["action"] for s in record["startstops"]}
    moved = [key for key in _transferred_keys(client) if not _name(key).startswith(MODEL_KEY_PREFIXES)]
    assert moved == []
    report = model.shard_report_.to_frame()
    assert report["worker"].tolist() == [first] * 16
    # Same models as on the local scheduler (same blocks, same seeds).
    X_np, y_np = dask.compute(X, y)
    with dask.config.set(scheduler="sync"):
        expected = ShardEnsembleClassifier(GaussianNB(), fusion="stacking", random_state=0)
        expected.fit(da.from_array(X_np, chunks=400), y_np)
    np.testing.assert_allclose(model.predict_proba(X_np[:800]), expected.predict_proba(X_np[:800]))


def test_features_never_move_when_labels_live_elsewhere(client):
    rng = np.random.default_rng(1)
    X_np = rng.normal(size=(3200, 4))
    y_np = (X_np[:, 0] - X_np[:, 2] > 0).astype(int)
    first, second = sorted(client.scheduler_info()["workers"])
    X = client.persist(da.from_array(X_np, chunks=400), workers=[first])
    y = client.persist(da.from_array(y_np, chunks=400), workers=[second])
    wait([X, y])
    _clear_transfer_logs(client)
    with get_task_stream(client) as stream:
        model = ShardEnsembleClassifier(LogisticRegression(), random_state=0).fit(X, y)
    assert {r["worker"] for r in _records(stream, "daskml-shard-fit-")} == {first}
    assert model.shard_report_.to_frame()["worker"].tolist() == [first] * 8
    moved = {_name(key) for key in _transferred_keys(client)}
    x_names = {_name(key) for key in X.__dask_keys__() for key in key}
    assert not moved & x_names
    assert moved - {p for p in moved if p.startswith(MODEL_KEY_PREFIXES)}  # the label blocks did travel


def test_place_shards_matches_blocks_by_key(client, on_one_worker):
    X, y, first = on_one_worker
    sw = da.ones_like(y, dtype=np.float64)
    placed = place_shards(X, y, sw, client)
    assert placed.workers == [first] * 16
    assert [b.key for b in placed.X_blocks] == [b.key for b in X.to_delayed().ravel()]
    assert len(placed.y_blocks) == len(placed.sw_blocks) == 16
    values = dask.compute(placed.X_blocks[3], placed.sw_blocks[3])
    np.testing.assert_array_equal(values[0], X.blocks[3].compute())
    np.testing.assert_array_equal(values[1], np.ones(400))


def test_replicated_blocks_are_shared_out_between_their_holders(client, on_one_worker):
    X, y, _ = on_one_worker
    # the scheduler's active memory manager drops replicas nobody needs (every 2 s by default): off for the
    # test, or the second copies may be gone before the shards are placed (seen under load in CI)
    was_running = client.amm.running()
    client.amm.stop()
    try:
        client.replicate(futures_of(X) + futures_of(y))  # every block now lives on both workers
        assert all(len(h) == 2 for h in _holders(client, X))
        placed = place_shards(X, y, None, client)
        assert sorted(Counter(placed.workers).values()) == [8, 8]
        with get_task_stream(client) as stream:
            model = ShardEnsembleClassifier(GaussianNB(), random_state=0).fit(X, y)
    finally:
        if was_running:
            client.amm.start()
    assert sorted(Counter(r["worker"] for r in _records(stream, "daskml-shard-fit-")).values()) == [8, 8]
    assert sorted(Counter(model.shard_report_.to_frame()["worker"]).values()) == [8, 8]


def test_local_scheduler_inside_a_client_keeps_the_delayed_path(client):
    X, y = make_classification(1600, 5, n_informative=3, chunks=400, random_state=0)  # lazy, not persisted
    with dask.config.set(scheduler="sync"):
        placed = place_shards(X, y, None)
        model = ShardEnsembleClassifier(GaussianNB(), random_state=0).fit(X, y)
    assert placed.workers is None
    assert "worker" not in model.shard_report_.to_frame().columns


def test_data_larger_than_the_memory_share_are_not_persisted(client, on_one_worker, caplog):
    X, y, _ = on_one_worker
    with (
        dask.config.set({"daskml_lab.memory.persist_fraction": 1e-9}),
        caplog.at_level(logging.INFO, logger="daskml_lab.ensemble._placement"),
    ):
        placed = place_shards_for_fit(X, y, None)
    assert placed.workers is None
    assert "Not persisting the shards" in caplog.text
    model = ShardEnsembleClassifier(GaussianNB(), random_state=0).fit(X, y)  # fits placed by the scheduler
    assert len(model.estimators_) == 16
    assert model.score(X, y) > 0.7


def test_errors_in_the_blocks_surface_from_fit(client):
    X_np = np.random.default_rng(2).normal(size=(800, 3))
    X_np[450, 1] = np.nan
    X = client.persist(da.from_array(X_np, chunks=200))
    y = (np.arange(800) % 2).astype(int)
    with pytest.raises(ValueError, match=r"Input X contains NaN \(row block 2, rows 400 to 599\)"):
        ShardEnsembleClassifier(GaussianNB()).fit(X, y)
