"""Shard ensembles on real clusters and real data: task placement, task names, the example script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
from distributed import Client, get_task_stream, wait
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.testing import raise_if_computes
from tests.conftest import shared_file

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shard_ensemble.py"


@pytest.mark.cluster
def test_shard_fits_run_on_the_workers_under_our_task_names(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 5))
    y = (X[:, 0] - X[:, 3] > 0).astype(int)
    Xd, yd = client.persist([da.from_array(X, chunks=500), da.from_array(y, chunks=500)])
    wait([Xd, yd])
    workers = set(client.scheduler_info()["workers"])
    with get_task_stream(client) as stream:
        model = ShardEnsembleClassifier(GaussianNB(), fusion="stacking", random_state=0).fit(Xd, yd)
        proba = model.predict_proba(Xd).compute()
    by_prefix: dict[str, set] = {}
    for record in stream.data:
        key = record["key"]
        name = key[0] if isinstance(key, tuple) else key
        prefix = next(
            (
                p
                for p in ("daskml-shard-fit-", "daskml-held-out-", "daskml-fuse-predict-proba-")
                if str(name).startswith(p)
            ),
            None,
        )
        if prefix:
            by_prefix.setdefault(prefix, set()).add((key, record["worker"]))
    assert len(by_prefix["daskml-shard-fit-"]) == 8  # one task per shard
    assert len(by_prefix["daskml-held-out-"]) == 8
    assert len(by_prefix["daskml-fuse-predict-proba-"]) == 8
    assert {worker for entries in by_prefix.values() for _, worker in entries} <= workers
    with dask.config.set(scheduler="sync"):
        np.testing.assert_allclose(proba, model.predict_proba(X))
    assert len(model.estimators_) == 8


@pytest.mark.cluster
def test_fit_and_predict_on_the_cluster_match_the_local_result(client):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1200, 3))
    y = np.digitize(X[:, 0], [-0.5, 0.5])
    Xd = da.from_array(X, chunks=300)
    on_cluster = ShardEnsembleClassifier(LogisticRegression(), sharding="shuffle", n_shards=3, random_state=0)
    on_cluster.fit(Xd, y)
    with raise_if_computes(max_computes=0):
        lazy = on_cluster.predict(Xd)
    labels = lazy.compute()
    with dask.config.set(scheduler="sync"):
        local = ShardEnsembleClassifier(
            LogisticRegression(), sharding="shuffle", n_shards=3, random_state=0
        ).fit(Xd, y)
        np.testing.assert_array_equal(labels, local.predict(X))
        np.testing.assert_allclose(on_cluster.fusion_.weights_, local.fusion_.weights_)


@pytest.mark.cluster
def test_a_small_model_travels_in_the_graph_and_a_large_one_is_scattered_once_per_client(client):
    rng = np.random.default_rng(3)
    X = da.from_array(rng.normal(size=(900, 3)), chunks=300)
    y = (X[:, 0] > 0).astype(int).compute()
    model = ShardEnsembleClassifier(LogisticRegression(), fusion="hard-voting").fit(X, y)
    prefix = type(model.fusion_).__name__ + "-"

    def copies() -> set[str]:
        return {str(k) for keys in client.has_what().values() for k in keys if str(k).startswith(prefix)}

    # below daskml_lab.ensemble.scatter_model_above_bytes: one node of the graph, nothing scattered
    first = model.predict(X).compute()
    assert copies() == set()
    # above it (1 byte here): scattered before the graph is computed, and reused by the next prediction
    with dask.config.set({"daskml_lab.ensemble.scatter_model_above_bytes": 1}):
        np.testing.assert_array_equal(model.predict(X).compute(), first)
        sent = copies()
        assert len(sent) == 1
        np.testing.assert_array_equal(model.predict(X).compute(), first)
        assert copies() == sent  # the second prediction reused the copy on the workers
        model.fit(X, 1 - y)  # a refit is a new model: sent again, and predicts the new labels
        np.testing.assert_array_equal(model.predict(X).compute(), 1 - first)
        assert len(copies() - sent) == 1


def test_real_data_sorted_by_label_stratified_sharding_recovers(shared_data):
    path = shared_file(shared_data, "magic_gamma_telescope", "magic.tsv.gz")
    frame = pd.read_csv(path, sep="\t").iloc[::2]
    y = frame.pop("target").to_numpy()
    X = frame.to_numpy()
    rng = np.random.default_rng(0)
    test = rng.random(len(y)) < 0.25
    order = np.argsort(y[~test], kind="stable")
    X_train, y_train = X[~test][order], y[~test][order]
    base = LogisticRegression(max_iter=2000)
    reference = base.fit(X_train, y_train).score(X[test], y[test])
    scores = {}
    for sharding in ("contiguous", "stratified"):
        model = ShardEnsembleClassifier(base, n_shards=4, sharding=sharding, random_state=0)
        model.fit(da.from_array(X_train, chunks=2000), y_train)
        scores[sharding] = model.score(X[test], y[test])
    report = model.shard_report_.to_frame()
    assert (report[0] > 0).all()
    assert (report[1] > 0).all()
    assert scores["contiguous"] < reference - 0.05
    assert scores["stratified"] == pytest.approx(reference, abs=0.01)


def _load_example():
    spec = importlib.util.spec_from_file_location("shard_ensemble_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.cluster
def test_example_runs_on_an_external_scheduler(shared_data, external_scheduler, capsys):
    path = shared_file(shared_data, "magic_gamma_telescope", "magic.tsv.gz")
    example = _load_example()
    assert (
        example.main([str(path), "--target", "target", "--address", external_scheduler, "--n-shards", "3"])
        == 0
    )
    output = capsys.readouterr().out
    assert "19020 rows x 10 features" in output
    for label in ("hard voting", "soft voting", "stacking", "parameter averaging", "forest union"):
        line = next(row for row in output.splitlines() if row.startswith(label))
        assert float(line.split()[-2]) > 0.75  # accuracy on the held-out quarter
    assert "fused by ForestUnion" in output
    with Client(external_scheduler) as probe:
        assert len(probe.scheduler_info()["workers"]) == 2
