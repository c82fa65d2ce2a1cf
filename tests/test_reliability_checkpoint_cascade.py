"""Checkpoints of CascadeSVC: killed after some shard SVCs, resumed training only the missing shards.

A subprocess fits a checkpointed cascade and exits (``os._exit``, no clean-up) right after the ``k``-th shard's
support vectors were saved; this process fits again with the same directory. The resumed fit must train
only the missing shards (counted), leave the saved files untouched, and give the uninterrupted fit's model:
the same support vectors, predictions and decision values. Bad cases: changed rows, a damaged file, a
directory of another estimator.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier, _cascade_graph
from daskml_lab.solvers import CheckpointError

N_SHARDS = 6

BUILD = textwrap.dedent(
    """
    import numpy as np
    import dask.array as da
    from daskml_lab.ensemble import CascadeSVC


    def make_data(shift=0.0):
        rng = np.random.default_rng(5)
        X = rng.normal(size=(900, 3))
        y = np.where(X[:, 0] ** 2 + X[:, 1] + 0.3 * rng.normal(size=900) > 0.5, "high", "low")
        weight = rng.uniform(0.5, 2.0, size=900)
        return da.from_array(X + shift, chunks=150), y, weight


    def make_cascade(checkpoint=None, **params):
        params = {"n_shards": N_SHARDS, "random_state": 0, "probability": True, "C": 3.0, **params}
        return CascadeSVC(checkpoint=checkpoint, **params)
    """
).replace("N_SHARDS", str(N_SHARDS))

# Exits (os._exit: no clean-up) right after the k-th shard's support vectors were saved.
CASCADE_EXIT = textwrap.dedent(
    """
    import os, sys
    import dask
    sys.path.insert(0, sys.argv[1])
    from build_cascade import make_cascade, make_data
    from daskml_lab.ensemble import _cascade_checkpoint

    original = _cascade_checkpoint.CascadeCheckpoint.save_node
    saved = [0]

    def save_node(self, shard, payload, digest):
        original(self, shard, payload, digest)
        saved[0] += 1
        if saved[0] == int(sys.argv[3]):
            os._exit(3)

    _cascade_checkpoint.CascadeCheckpoint.save_node = save_node
    X, y, weight = make_data()
    with dask.config.set(scheduler="sync"):
        make_cascade(sys.argv[2]).fit(X, y, sample_weight=weight)
    print("finished", flush=True)
    """
)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("cascade-build")
    (folder / "build_cascade.py").write_text(BUILD)
    namespace: dict[str, Any] = {}
    exec(compile(BUILD, str(folder / "build_cascade.py"), "exec"), namespace)  # our own source, as a module
    return folder, namespace


@pytest.fixture(scope="module")
def reference(build: tuple[Path, dict[str, Any]]) -> CascadeSVC:
    _, namespace = build
    X, y, weight = namespace["make_data"]()
    with dask.config.set(scheduler="sync"):
        return namespace["make_cascade"]().fit(X, y, sample_weight=weight)


def _interrupt(folder: Path, directory: Path, n_saved: int) -> dict[str, int]:
    completed = subprocess.run(
        [sys.executable, "-c", CASCADE_EXIT, str(folder), str(directory), str(n_saved)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 3, completed.stderr[-3000:]
    files = _shard_files(directory)
    assert len([name for name in files if name.endswith(".json")]) == n_saved
    return files


def _shard_files(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in directory.glob("shard-*")}


def _assert_same_model(model: CascadeSVC, reference: CascadeSVC, X: Any) -> None:
    X_numpy = np.asarray(X)
    assert_array_equal(model.support_, reference.support_)
    assert_array_equal(model.predict(X_numpy), reference.predict(X_numpy))
    assert_allclose(model.decision_function(X_numpy), reference.decision_function(X_numpy), rtol=1e-10)
    assert_allclose(model.predict_proba(X_numpy), reference.predict_proba(X_numpy), rtol=1e-8)
    assert model.n_passes_ == reference.n_passes_


def _count_shard_svcs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Shards whose first-pass SVC is trained in this process."""
    trained: list[int] = []
    original = _cascade_graph._fit_shard_svc_block

    def counting(*args: Any, **kwargs: Any) -> Any:
        pass_index, _, shard = kwargs["position"]
        if pass_index == 0:
            trained.append(shard)
        return original(*args, **kwargs)

    monkeypatch.setattr(_cascade_graph, "_fit_shard_svc_block", counting)
    return trained


def test_cascade_resumes_with_the_trained_shards(build, reference, tmp_path, monkeypatch):
    folder, namespace = build
    directory = tmp_path / "cascade"
    before = _interrupt(folder, directory, 4)
    trained = _count_shard_svcs(monkeypatch)
    X, y, weight = namespace["make_data"]()
    with dask.config.set(scheduler="sync"):
        model = namespace["make_cascade"](directory).fit(X, y, sample_weight=weight)
    done_before = {int(name[6:11]) for name in before if name.endswith(".json")}
    assert sorted(trained) == sorted(set(range(N_SHARDS)) - done_before)
    after = _shard_files(directory)
    assert len([name for name in after if name.endswith(".json")]) == N_SHARDS
    assert all(after[name] == mtime for name, mtime in before.items())  # saved files not rewritten
    _assert_same_model(model, reference, X)

    # a third fit finds every shard trained: only the merges and feedback passes run again
    trained.clear()
    with dask.config.set(scheduler="sync"):
        again = namespace["make_cascade"](directory).fit(X, y, sample_weight=weight)
    assert trained == []
    _assert_same_model(again, reference, X)


@pytest.mark.cluster
def test_cascade_interrupted_locally_resumes_on_a_cluster(build, reference, tmp_path, client):
    folder, namespace = build
    directory = tmp_path / "cascade"
    before = _interrupt(folder, directory, 2)
    X, y, weight = namespace["make_data"]()
    model = namespace["make_cascade"](directory).fit(X, y, sample_weight=weight)
    after = _shard_files(directory)
    assert len([name for name in after if name.endswith(".json")]) == N_SHARDS
    assert all(after[name] == mtime for name, mtime in before.items())
    _assert_same_model(model, reference, X)


def test_cascade_checkpoint_of_changed_rows_is_refused(build, tmp_path):
    _, namespace = build
    directory = tmp_path / "cascade"
    X, y, weight = namespace["make_data"]()
    with dask.config.set(scheduler="sync"):
        namespace["make_cascade"](directory).fit(X, y, sample_weight=weight)
        X_other, _, _ = namespace["make_data"](shift=0.5)  # same shape and chunks, other values
        with pytest.raises(CheckpointError, match=r"rows of shard \d+ differ.*Delete the directory"):
            namespace["make_cascade"](directory).fit(X_other, y, sample_weight=weight)


def test_damaged_support_vector_file_gives_a_clear_error(build, tmp_path):
    _, namespace = build
    directory = tmp_path / "cascade"
    X, y, weight = namespace["make_data"]()
    with dask.config.set(scheduler="sync"):
        namespace["make_cascade"](directory).fit(X, y, sample_weight=weight)
        path = directory / "shard-00001.svs.npz"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(CheckpointError, match=r"shard-00001.svs.npz' is corrupt.*Delete the directory"):
            namespace["make_cascade"](directory).fit(X, y, sample_weight=weight)


def test_cascade_refuses_the_directory_of_another_estimator_or_parameters(build, tmp_path):
    _, namespace = build
    X, y, weight = namespace["make_data"]()
    from sklearn.tree import DecisionTreeClassifier

    with dask.config.set(scheduler="sync"):
        ShardEnsembleClassifier(DecisionTreeClassifier(), checkpoint=tmp_path / "other").fit(X, y)
        with pytest.raises(CheckpointError, match="belongs to another fit"):
            namespace["make_cascade"](tmp_path / "other").fit(X, y, sample_weight=weight)
        namespace["make_cascade"](tmp_path / "cascade").fit(X, y, sample_weight=weight)
        with pytest.raises(CheckpointError, match=r"belongs to another fit.*C"):
            namespace["make_cascade"](tmp_path / "cascade", C=1.0).fit(X, y, sample_weight=weight)


def test_single_shard_cascade_saves_nothing_but_fits(build, tmp_path):
    _, namespace = build
    X, y, _ = namespace["make_data"]()
    with dask.config.set(scheduler="sync"):
        model = namespace["make_cascade"](tmp_path / "one", n_shards=1, probability=False).fit(X, y)
    assert list((tmp_path / "one").glob("shard-*")) == []
    assert model.score(np.asarray(X), y) > 0.8


def test_checkpoint_parameter_is_validated():
    from daskml_lab.base import InvalidParameterError

    X = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(InvalidParameterError, match="checkpoint"):
        CascadeSVC(checkpoint=3).fit(X, (X[:, 0] > 0).astype(int))
