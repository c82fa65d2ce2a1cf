"""A fitted model kept in its parameter shards (``PartitionedCoefficients``) and ``model_partitions="auto"``.

Issue 13, item 4. Real two-process cluster (the session's LocalCluster), one client for the module; the size
limits are lowered with ``dask.config.set`` so that small models stay partitioned.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import os
import pickle
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

import dask
import numpy as np
import pytest
import scipy.sparse as sp
from distributed import Client, LocalCluster, futures_of
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from daskml_lab.data import make_sparse_classification
from daskml_lab.exceptions import ConvergenceWarning, NotStorableError, PartitionedModelLostError
from daskml_lab.linear_model import LogisticRegression, PartitionedCoefficients
from daskml_lab.persistence import _streamed as streamed
from daskml_lab.persistence import describe, load, save
from daskml_lab.persistence._container import checksum_member
from daskml_lab.testing import raise_if_computes

pytestmark = pytest.mark.cluster

N_FEATURES = 2**14
#: A gather limit below the binary model's 2**14 x 8 bytes: the fitted model stays partitioned.
SMALL_GATHER = {"daskml_lab.solvers.store.max_gather_bytes": 2**14 * 8 // 2}
#: Large enough to bring the test models to the client on purpose.
TO_CLIENT = 2**24


@pytest.fixture(scope="module")
def part_client(local_cluster: LocalCluster) -> Iterator[Client]:
    with Client(local_cluster) as client:
        yield client


def _fit(model: LogisticRegression, X: Any, y: Any) -> LogisticRegression:
    with warnings.catch_warnings():
        # a few epochs: the predictions are what is checked
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


@pytest.fixture(scope="module")
def binary(part_client: Client) -> tuple[LogisticRegression, Any, Any]:
    X, y = make_sparse_classification(5_000, N_FEATURES, nnz_per_row=20, chunks=1_000, random_state=0)
    X, y = X.persist(), y.persist()
    with dask.config.set(SMALL_GATHER):
        model = _fit(LogisticRegression(model_partitions=2, max_iter=3, random_state=0), X, y)
    return model, X, y


def _sklearn_twin(model: LogisticRegression, coef: np.ndarray) -> SkLogisticRegression:
    """scikit-learn's LogisticRegression holding the same coefficients (no fit)."""
    twin = SkLogisticRegression()
    twin.coef_, twin.intercept_, twin.classes_ = coef, model.intercept_, model.classes_
    return twin


def _gathered_twin(model: LogisticRegression, coef: np.ndarray) -> LogisticRegression:
    """Our LogisticRegression with the same, gathered, coefficients: today's replicated prediction path."""
    twin = clone(model)
    twin.coef_, twin.intercept_, twin.classes_ = coef, model.intercept_, model.classes_
    twin.n_features_in_ = model.n_features_in_
    return twin


# ----------------------------------------------------------------------------------------- the fitted model
def test_a_large_model_stays_in_its_shards(binary: tuple) -> None:
    model, _, _ = binary
    coef = model.coef_
    assert isinstance(coef, PartitionedCoefficients)
    assert (coef.shape, coef.dtype, coef.ndim, coef.n_partitions) == ((1, N_FEATURES), np.float64, 2, 2)
    assert coef.nbytes == N_FEATURES * 8
    assert sorted(coef.workers) == sorted(set(coef.workers))  # one shard per worker
    assert isinstance(model.intercept_, np.ndarray)
    assert model.intercept_.shape == (1,)
    assert "bytes_pulled" in model.history_.columns
    # the fit never gathered the model, and neither did anything since
    assert all(s["n_gathers"] == 0 for s in coef.stats())
    with dask.config.set(SMALL_GATHER):
        with pytest.raises(ValueError, match=r"\(1, 16384\) have 131072 bytes, more than the 65536 bytes"):
            coef.to_numpy()
        with pytest.raises(ValueError, match=r"call to_numpy\(max_bytes=\.\.\.\) with a larger limit"):
            np.asarray(coef)
    assert all(s["n_gathers"] == 0 for s in coef.stats())


def test_partitioned_predictions_equal_the_gathered_model_and_sklearn(binary: tuple) -> None:
    model, X, _ = binary
    with raise_if_computes(max_computes=0):  # lazy: the graph only
        scores = model.decision_function(X)
        labels = model.predict(X)
        probabilities = model.predict_proba(X)
    assert scores.chunks == (X.chunks[0],)
    assert probabilities.chunks == (X.chunks[0], (2,))
    coef = model.coef_.to_numpy(max_bytes=TO_CLIENT)
    X_np = X.compute()
    gathered = _gathered_twin(model, coef)
    reference = _sklearn_twin(model, coef)
    np.testing.assert_array_equal(scores.compute(), gathered.decision_function(X).compute())
    np.testing.assert_allclose(scores.compute(), reference.decision_function(X_np), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(labels.compute(), reference.predict(X_np))
    np.testing.assert_allclose(probabilities.compute(), reference.predict_proba(X_np), rtol=1e-12, atol=1e-12)
    # in-memory input gives numpy, as for a gathered model
    np.testing.assert_array_equal(model.predict(X_np[:300]), reference.predict(X_np[:300]))
    assert model.score(X, binary[2]) == pytest.approx(reference.score(X_np, binary[2].compute()), abs=1e-12)
    assert np.count_nonzero(coef) > 0


def test_predict_pulls_only_the_keys_of_each_block(binary: tuple) -> None:
    model, X, _ = binary
    before = model.coef_.stats()
    model.decision_function(X).compute()
    after = model.coef_.stats()
    pulled = sum(a["keys_pulled"] - b["keys_pulled"] for a, b in zip(after, before, strict=True))
    blocks = dask.compute(*X.to_delayed().ravel())  # the test's own reference: small CSR blocks
    expected = sum(len(np.unique(block.indices)) for block in blocks)
    # one pull per block of exactly its columns (no intercept key: intercept_ travels with the task), and
    # nothing gathered: neither the client nor a scoring worker builds an n_features-sized array
    assert pulled == expected
    assert expected < 0.5 * X.numblocks[0] * N_FEATURES
    assert sum(a["n_gathers"] - b["n_gathers"] for a, b in zip(after, before, strict=True)) == 0
    bytes_pulled = sum(a["bytes_pulled"] - b["bytes_pulled"] for a, b in zip(after, before, strict=True))
    assert bytes_pulled == 16 * pulled  # an int64 slot and one float64 per key


def test_multinomial_partitioned_model_matches_sklearn(part_client: Client) -> None:
    X, y = make_sparse_classification(3_000, 2**10, nnz_per_row=10, n_classes=3, chunks=750, random_state=4)
    with dask.config.set({"daskml_lab.solvers.store.max_gather_bytes": 2**10 * 8}):
        model = _fit(LogisticRegression(model_partitions=3, max_iter=2, random_state=0), X, y)
    assert isinstance(model.coef_, PartitionedCoefficients)
    assert model.coef_.shape == (3, 2**10)
    assert model.coef_.n_partitions == 3  # three shards on two workers
    reference = _sklearn_twin(model, model.coef_.to_numpy(max_bytes=TO_CLIENT))
    X_np = X.compute()
    np.testing.assert_allclose(
        model.decision_function(X).compute(), reference.decision_function(X_np), atol=1e-12
    )
    np.testing.assert_allclose(model.predict_proba(X).compute(), reference.predict_proba(X_np), atol=1e-12)
    np.testing.assert_array_equal(model.predict(X).compute(), reference.predict(X_np))


# ------------------------------------------------------------------------------------------------------ auto
def test_auto_partitions_above_its_threshold_only(
    part_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    X, y = make_sparse_classification(2_000, 2**12, nnz_per_row=10, chunks=500, random_state=1)
    size = 2**12 * 8  # coef_ of a binary model: n_features x 1 x 8 bytes
    options = {"max_iter": 2, "random_state": 0}
    with dask.config.set({"daskml_lab.model_partitions.auto_min_bytes": size}):
        below = _fit(LogisticRegression(model_partitions="auto", **options), X, y)
    with dask.config.set({"daskml_lab.model_partitions.auto_min_bytes": size - 1}):
        above = _fit(LogisticRegression(model_partitions="auto", **options), X, y)
        with dask.config.set({"daskml_lab.solvers.store.max_gather_bytes": size // 2}):
            kept = _fit(LogisticRegression(model_partitions="auto", **options), X, y)
        with caplog.at_level(logging.INFO, logger="daskml_lab.linear_model._partitioned"):
            refused = _fit(LogisticRegression(model_partitions="auto", l1_ratio=0.5, **options), X, y)
    replicated = _fit(LogisticRegression(**options), X, y)
    # at the threshold: today's replicated solver, exactly
    np.testing.assert_array_equal(below.coef_, replicated.coef_)
    assert "bytes_pulled" not in below.history_.columns
    # above it: the partitioned store (its traffic in history_), gathered when small enough, else kept
    assert "bytes_pulled" in above.history_.columns
    assert isinstance(above.coef_, np.ndarray)
    assert isinstance(kept.coef_, PartitionedCoefficients)
    assert kept.coef_.n_partitions == len(part_client.scheduler_info()["workers"])  # one shard per worker
    # above it, but an L1 penalty: replicated, and the log says why
    assert "bytes_pulled" not in refused.history_.columns
    assert "supports the L2 penalty only" in caplog.text


# ------------------------------------------------------------------------------------- estimator contract
def test_clone_params_copies_and_pickling(binary: tuple) -> None:
    model, X, _ = binary
    assert model.get_params()["model_partitions"] == 2
    fresh = clone(model)
    assert fresh.get_params() == model.get_params()
    assert not hasattr(fresh, "coef_")
    # a copy shares the shards (the fitted model is read-only)
    twin = copy.deepcopy(model)
    assert twin.coef_ is model.coef_
    first = X[:1_000]
    np.testing.assert_array_equal(twin.predict(first).compute(), model.predict(first).compute())
    message = r"A partitioned model cannot be pickled: its coefficients \(\(1, 16384\), 131072 bytes\)"
    with pytest.raises(NotStorableError, match=message):
        pickle.dumps(model)


def _slices_of(path: Any) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return sorted(name for name in archive.namelist() if name.startswith("columns/"))


def test_save_streams_the_shards_and_load_puts_them_back(
    binary: tuple, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, X, _ = binary
    monkeypatch.setattr(streamed, "SLICE_BYTES", 2**14)  # 2,048 features a slice: 8 slices
    before = model.coef_.stats()
    path = save(model, tmp_path / "model.daskml")
    # written slice by slice from the shards: never gathered, every key pulled once (plus the intercept key)
    after = model.coef_.stats()
    assert [s["n_gathers"] for s in after] == [s["n_gathers"] for s in before]
    assert (
        sum(a["keys_pulled"] - b["keys_pulled"] for a, b in zip(after, before, strict=True)) == N_FEATURES + 1
    )
    assert len(_slices_of(path)) == 8
    info = describe(path)
    assert info["format_version"] == 3
    assert [piece["stop"] - piece["start"] for piece in info["streamed"][0]["slices"]] == [2_048] * 8
    first = X[:1_000]
    expected = model.decision_function(first).compute()
    with dask.config.set(SMALL_GATHER):
        loaded = load(path)
    # above the gather limit: new shards on the cluster, the same model
    assert isinstance(loaded.coef_, PartitionedCoefficients)
    assert loaded.coef_.n_partitions == 2
    assert loaded.coef_.shape == model.coef_.shape
    np.testing.assert_array_equal(loaded.decision_function(first).compute(), expected)
    np.testing.assert_array_equal(loaded.coef_.intercept_row(), model.coef_.intercept_row())
    # below it: a numpy array, equal to the gathered model
    small = load(path)
    assert isinstance(small.coef_, np.ndarray)
    np.testing.assert_array_equal(small.coef_, model.coef_.to_numpy(max_bytes=TO_CLIENT))
    np.testing.assert_array_equal(small.decision_function(first).compute(), expected)


def test_a_saved_partitioned_model_is_signed_and_checked_slice_by_slice(binary: tuple, tmp_path: Any) -> None:
    model, _, _ = binary
    key = "k" * 32
    path = save(model, tmp_path / "signed.daskml", key=key)
    with pytest.raises(ValueError, match="signed with a key"):
        load(path)
    assert isinstance(load(path, key=key).coef_, np.ndarray)
    # one slice changed (the metadata, which lists its SHA-256, is untouched): refused, nothing loaded
    tampered = tmp_path / "tampered.daskml"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.startswith("columns/"):
                data = data[:-8] + np.float64(1e6).tobytes()
            target.writestr(item, data)
    with pytest.raises(
        ValueError, match=r"coefficient slice 'columns/0/0.npy' .* does not match the checksum"
    ):
        load(tampered, key=key)


def test_loading_a_large_partitioned_model_without_a_cluster_says_how(binary: tuple, tmp_path: Any) -> None:
    model, _, _ = binary
    path = save(model, tmp_path / "model.daskml")
    script = (
        "import dask, daskml_lab\n"
        f"with dask.config.set({SMALL_GATHER!r}):\n"
        f"    daskml_lab.load({str(path)!r})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 1
    assert "they are loaded into parameter shards on a cluster: connect to one first" in result.stderr


def test_warm_start_continues_from_the_shards(part_client: Client) -> None:
    X, y = make_sparse_classification(3_000, N_FEATURES, nnz_per_row=10, chunks=750, random_state=5)
    X, y = X.persist(), y.persist()
    with dask.config.set(SMALL_GATHER), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few iterations on purpose
        first = LogisticRegression(solver="lbfgs", model_partitions=2, max_iter=8).fit(X, y)
        copied_before = sum(s["keys_pulled"] for s in first.coef_.stats())
        model = copy.copy(first)
        model.set_params(warm_start=True, model_partitions=3)  # another number of shards: keys move
        model.fit(X, y)
        cold = LogisticRegression(solver="lbfgs", model_partitions=3, max_iter=8).fit(X, y)
    assert isinstance(model.coef_, PartitionedCoefficients)
    assert model.coef_.n_partitions == 3
    # every key of the first model was read once from its shards, on the workers (never gathered)
    stats = first.coef_.stats()
    assert sum(s["keys_pulled"] for s in stats) - copied_before == N_FEATURES + 1
    assert all(s["n_gathers"] == 0 for s in stats)
    # the warm fit starts where the first ended: its first iteration is below the first fit's last objective
    assert model.history_["objective"].iloc[0] < first.history_["objective"].iloc[-1]
    assert model.history_["objective"].iloc[-1] < cold.history_["objective"].iloc[-1]


def test_warm_start_from_a_partitioned_model_into_a_replicated_fit_is_refused(binary: tuple) -> None:
    model, X, y = binary
    twin = copy.copy(model)
    twin.set_params(warm_start=True, model_partitions=None)
    with pytest.raises(
        ValueError, match=r"warm_start=True with model_partitions=None would bring the previous"
    ):
        twin.fit(X, y)


# ------------------------------------------------------------------------------ a wide model gathered to numpy
def test_a_wide_gathered_model_is_scattered_once_not_put_in_the_prediction_graph(part_client: Client) -> None:
    # 9 classes x 2**17 features: 9 MiB of float64, above SCATTER_MIN_BYTES (8 MiB); the graph would carry it
    # to the scheduler (dask warns from 10 MB), and predict and predict_proba would each carry a copy
    from scipy.special import softmax

    rng = np.random.default_rng(3)
    n_classes, n_features = 9, 2**17
    model = LogisticRegression()
    model.coef_ = rng.normal(size=(n_classes, n_features))
    model.intercept_ = rng.normal(size=n_classes)
    model.classes_ = np.arange(n_classes)
    model.n_features_in_ = n_features
    X, _ = make_sparse_classification(1_000, n_features, nnz_per_row=20, chunks=250, random_state=3)
    # (outside raise_if_computes, whose counting scheduler is not the cluster's: the model is scattered to the
    # client's cluster only; nothing is computed either way)
    labels, proba = model.predict(X), model.predict_proba(X)
    graph = {**dict(labels.__dask_graph__()), **dict(proba.__dask_graph__())}
    assert max(len(pickle.dumps(task)) for task in graph.values()) < 2**20  # no model-sized object inside
    scattered = futures_of([labels, proba])
    assert len({future.key for future in scattered}) == 1  # one copy on the cluster for both
    assert part_client.who_has(scattered)  # it lives on a worker
    rows = X.compute()
    scores = rows @ model.coef_.T + model.intercept_
    got_labels, got_proba = dask.compute(labels, proba)
    np.testing.assert_array_equal(got_labels, scores.argmax(axis=1))
    np.testing.assert_allclose(got_proba, softmax(scores, axis=1), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------- lost model
def test_a_model_whose_client_closed_says_it_was_lost(local_cluster: LocalCluster) -> None:
    X, y = make_sparse_classification(1_000, 2**10, nnz_per_row=5, chunks=500, random_state=2)
    with Client(local_cluster, set_as_default=True):
        with dask.config.set({"daskml_lab.solvers.store.max_gather_bytes": 2**10}):
            model = _fit(LogisticRegression(model_partitions=2, max_iter=1, random_state=0), X, y)
        assert isinstance(model.coef_, PartitionedCoefficients)
    with pytest.raises(
        PartitionedModelLostError,
        match=r"partitioned model was lost .*fitted it \(scheduler tcp://.*\) is closed",
    ):
        model.predict(X)
    with pytest.raises(
        PartitionedModelLostError, match=r"save it before closing them \(daskml_lab.save streams it"
    ):
        model.coef_.to_numpy(max_bytes=TO_CLIENT)


def test_release_frees_the_shards_and_the_model_then_says_so(part_client: Client) -> None:
    X, y = make_sparse_classification(1_000, 2**12, nnz_per_row=5, chunks=500, random_state=2)

    def actors() -> int:
        return sum(part_client.run(lambda dask_worker: len(dask_worker.state.actors)).values())

    before = actors()
    with dask.config.set({"daskml_lab.solvers.store.max_gather_bytes": 2**10}):
        model = _fit(LogisticRegression(model_partitions=2, max_iter=1, random_state=0), X, y)
    twin = copy.copy(model)  # shares the shards
    assert actors() == before + 2
    model.coef_.release()
    deadline = time.monotonic() + 30
    while actors() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert actors() == before
    for fitted in (model, twin):
        with pytest.raises(PartitionedModelLostError, match=r"its shards were released \(release\(\)\)"):
            fitted.predict(X)


def _workers(client: Client) -> list[str]:
    return sorted(client.run(os.getpid))


def test_a_model_whose_worker_died_says_it_was_lost() -> None:
    # a cluster of its own: one of its workers is killed
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        X, y = make_sparse_classification(1_000, 2**10, nnz_per_row=5, chunks=250, random_state=3)
        # a short limit on each call to a shard: without the loss checks this test fails, it does not hang
        limits = {"daskml_lab.solvers.store.max_gather_bytes": 2**10, "daskml_lab.solvers.timeout_s": 30}
        with dask.config.set(limits):
            model = _fit(LogisticRegression(model_partitions=2, max_iter=1, random_state=0), X, y)
        built_before = model.decision_function(X)  # a graph built while the shards were there
        victim = model.coef_.workers[1]
        client.run(os._exit, 1, workers=[victim], on_error="ignore")  # the nanny starts a new, empty worker
        lost = r"partitioned model was lost with its parameter shards: shard\(s\) \[1\] were on worker\(s\)"
        with pytest.raises(PartitionedModelLostError, match=lost):
            built_before.compute()  # the tasks notice (never a silent zero model, never a hang)
        deadline = time.monotonic() + 30
        while victim in _workers(client) and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(
            PartitionedModelLostError, match=lost + r" \['" + victim + r"'\], which left the cluster"
        ):
            model.predict(X)  # refused when the graph is built


def test_dense_blocks_are_scored_too(binary: tuple) -> None:
    model, X, _ = binary
    dense = X[:500].map_blocks(lambda b: b.toarray(), dtype=X.dtype, meta=np.empty((0, 0)))
    reference = model.decision_function(X[:500]).compute()
    np.testing.assert_array_equal(model.decision_function(dense).compute(), reference)
    assert sp.issparse(X[:10].compute())


def test_a_crafted_slice_with_a_valid_checksum_is_refused_before_allocation(
    binary: tuple, tmp_path: Any
) -> None:
    # whoever rewrites an unsigned file can recompute its checksums: the slice's .npy header is still checked
    # against the bytes behind it before numpy allocates anything
    model, _, _ = binary
    path = save(model, tmp_path / "model.daskml")
    with zipfile.ZipFile(path) as source:
        members = {item.filename: source.read(item) for item in source.infolist()}
    name = "columns/0/0.npy"
    header = {"descr": "<f8", "fortran_order": False, "shape": (1, 2**40)}
    crafted = io.BytesIO()
    np.lib.format.write_array_header_1_0(crafted, header)
    members[name] = crafted.getvalue() + members[name][-64:]
    info = json.loads(members["daskml_lab.json"])
    piece = info["streamed"][0]["slices"][0]
    piece["sha256"], piece["n_bytes"] = hashlib.sha256(members[name]).hexdigest(), len(members[name])
    members["daskml_lab.json"] = json.dumps(info).encode()
    members["checksum.json"] = checksum_member(
        members["daskml_lab.json"], members["model.skops"], None
    ).encode()
    crafted_path = tmp_path / "crafted.daskml"
    with zipfile.ZipFile(crafted_path, "w") as target:
        for member, data in members.items():
            target.writestr(member, data)
    with pytest.raises(
        ValueError, match=r"declares shape \(1, 1099511627776\) .* it was refused before anything"
    ):
        load(crafted_path)


def test_partitioned_coefficients_larger_than_the_cap_are_refused_before_allocation(
    binary: tuple, tmp_path: Any
) -> None:
    model, _, _ = binary
    path = save(model, tmp_path / "model.daskml")
    with pytest.raises(
        ValueError, match=r"coefficients \(1, 16384\) .* take 131072 bytes, more than the cap"
    ):
        load(path, max_member_bytes=2**16)
