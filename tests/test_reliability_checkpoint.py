"""Checkpoints: fits interrupted in a subprocess resume from their checkpoint and reach the uninterrupted result.

Each solver family is interrupted part way (an exception raised from the history after iteration ``k``, or a
real ``SIGKILL``), then fitted again in this process with the same checkpoint path; the resumed fit must start
where the checkpoint left off and end with the coefficients of an uninterrupted fit. Shard ensembles are
killed (``os._exit``) after some shards; the resumed fit trains only the missing ones and predicts exactly as
an uninterrupted fit. Bad cases: another problem's checkpoint, corrupt files, an unwritable directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from daskml_lab.base import InvalidParameterError
from daskml_lab.solvers import CheckpointError, SolverCheckpoint, _common
from daskml_lab.testing import raise_if_computes

# Builders shared by the subprocesses and this process (written to a file, and executed here).
BUILDERS = textwrap.dedent(
    """
    import numpy as np
    import dask.array as da

    # case: (estimator, parameters, data, iteration after which the subprocess is interrupted)
    CASES = {
        "lbfgs": ("LogisticRegression", {"solver": "lbfgs", "tol": 1e-8, "max_iter": 200}, "binary", 10),
        "gd": ("Ridge", {"alpha": 1.0, "solver": "gd", "tol": 1e-7, "max_iter": 1000}, "regression", 30),
        "proximal": (
            "Lasso", {"alpha": 0.05, "solver": "proximal", "tol": 1e-7, "max_iter": 2000}, "regression", 25
        ),
        "sgd": (
            "LogisticRegression",
            {"solver": "sgd", "random_state": 0, "tol": 1e-3, "max_iter": 60},
            "binary",
            9,
        ),
        "async-sgd": (
            "Ridge", {"alpha": 1.0, "solver": "async-sgd", "random_state": 0, "max_iter": 40}, "regression", 7
        ),
        "admm": ("LinearSVC", {"loss": "hinge", "solver": "admm", "tol": 1e-5, "max_iter": 500}, "binary", 15),
        # several solver runs per fit: one-vs-rest (stages class-k) and the Huber alternation (scale-i)
        "ovr": ("LinearSVC", {"solver": "lbfgs", "tol": 1e-8, "max_iter": 300}, "multiclass", 25),
        "huber": ("HuberRegressor", {"solver": "lbfgs", "tol": 1e-8, "max_iter": 300}, "regression", 20),
    }


    def make_data(kind, shift=0.0):
        rng = np.random.default_rng(42)
        X = rng.normal(size=(600, 5))
        X[:, 1] *= 3.0
        score = X @ np.array([1.0, -0.5, 0.0, 2.0, 0.0]) + rng.normal(size=600)
        if kind == "binary":
            y = (score > 0).astype(np.int64)
        elif kind == "multiclass":
            y = np.digitize(score, [-1.0, 1.0])
        else:
            y = score + shift
            y[:20] += 10.0
        return da.from_array(X, chunks=150), da.from_array(y, chunks=150)


    def make_estimator(case, checkpoint=None, checkpoint_every=1):
        from daskml_lab import linear_model

        name, params, kind, _ = CASES[case]
        model = getattr(linear_model, name)(**params, checkpoint=checkpoint, checkpoint_every=checkpoint_every)
        return model, make_data(kind)


    def make_ensemble(checkpoint=None, **params):
        from sklearn.tree import DecisionTreeClassifier
        from daskml_lab.ensemble import ShardEnsembleClassifier

        rng = np.random.default_rng(7)
        X = rng.normal(size=(800, 4))
        y = np.where(X[:, 0] - X[:, 2] + rng.normal(size=800) > 0, "yes", "no")
        params = {"fusion": "stacking", "random_state": 0, **params}
        model = ShardEnsembleClassifier(DecisionTreeClassifier(max_depth=3), checkpoint=checkpoint, **params)
        return model, (da.from_array(X, chunks=100), y)
    """
)

# Interrupts every listed fit by raising from the solver history after iteration k (counted over all the
# solver runs of the fit), then goes on with the next one.
INTERRUPT_BY_RAISING = textwrap.dedent(
    """
    import json, sys
    import dask
    sys.path.insert(0, sys.argv[1])
    from builders import CASES, make_estimator
    from daskml_lab.solvers import _common

    class Interrupted(Exception):
        pass

    original_add = _common.History.add
    count = [0, None]

    def add(self, **record):
        stop = original_add(self, **record)
        count[0] += 1
        if count[0] == count[1]:
            raise Interrupted
        return stop

    _common.History.add = add
    for case, directory, every in json.loads(sys.argv[2]):
        count[0], count[1] = 0, CASES[case][3]
        model, (X, y) = make_estimator(case, directory, every)
        try:
            with dask.config.set(scheduler="sync"):
                model.fit(X, y)
        except Interrupted:
            print("interrupted", case, flush=True)
        else:
            print("finished", case, flush=True)
    """
)

# A fit slowed down (one iteration per 0.1 s) so that the test can kill it from outside.
SLOW_FIT = textwrap.dedent(
    """
    import sys, time
    import dask
    sys.path.insert(0, sys.argv[1])
    from builders import make_estimator
    from daskml_lab.solvers import _common

    original_add = _common.History.add

    def add(self, **record):
        time.sleep(0.1)
        return original_add(self, **record)

    _common.History.add = add
    model, (X, y) = make_estimator(sys.argv[2], sys.argv[3])
    print("fitting", flush=True)
    with dask.config.set(scheduler="sync"):
        model.fit(X, y)
    print("finished", flush=True)
    """
)

# Kills the process (os._exit, no clean-up) right after the k-th shard model was saved.
ENSEMBLE_EXIT = textwrap.dedent(
    """
    import os, sys
    import dask
    sys.path.insert(0, sys.argv[1])
    from builders import make_ensemble
    from daskml_lab.ensemble import _checkpoint

    original_save = _checkpoint.ShardCheckpoint.save_shard
    saved = [0]

    def save_shard(self, summary, digest):
        original_save(self, summary, digest)
        saved[0] += 1
        if saved[0] == int(sys.argv[3]):
            os._exit(3)

    _checkpoint.ShardCheckpoint.save_shard = save_shard
    model, (X, y) = make_ensemble(sys.argv[2], fusion=sys.argv[4])
    with dask.config.set(scheduler="sync"):
        model.fit(X, y)
    print("finished", flush=True)
    """
)

LINEAR_CASES = ["lbfgs", "gd", "proximal", "sgd", "async-sgd", "admm", "ovr", "huber"]
#: Cases whose resumed run repeats the uninterrupted one exactly (the others restart L-BFGS's memory).
EXACT_CASES = {"gd", "proximal", "sgd", "async-sgd", "admm"}
N_SHARDS = 8


@pytest.fixture(scope="module")
def builders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("builders")
    (folder / "builders.py").write_text(BUILDERS)
    namespace: dict[str, Any] = {}
    exec(compile(BUILDERS, str(folder / "builders.py"), "exec"), namespace)
    return folder, namespace


def _run_script(source: str, *args: str, expect_code: int = 0) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", source, *args], capture_output=True, text=True, timeout=240, check=False
    )
    assert completed.returncode == expect_code, completed.stderr[-3000:]
    return completed.stdout


@pytest.fixture(scope="module")
def interrupted(builders: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One subprocess interrupting every linear case part way; returns ``{case: checkpoint directory}``."""
    folder, _ = builders
    root = tmp_path_factory.mktemp("interrupted")
    jobs = [[case, str(root / case), 1] for case in LINEAR_CASES] + [["gd", str(root / "gd-every-4"), 4]]
    output = _run_script(INTERRUPT_BY_RAISING, str(folder), json.dumps(jobs))
    for case, _, _ in jobs:
        assert f"interrupted {case}" in output, output
    return {Path(directory).name: Path(directory) for _, directory, _ in jobs}


class _CountIterations:
    """Counts the solver iterations run in this process (History.add calls)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = _common.History.add

        def add(history: Any, **record: Any) -> bool:
            self.count += 1
            return original(history, **record)

        monkeypatch.setattr(_common.History, "add", add)


def _stage_info(directory: Path, stage: str = "solver") -> dict[str, Any]:
    return json.loads((directory / f"{stage}.json").read_text())


def _reference(namespace: dict[str, Any], case: str) -> Any:
    model, (X, y) = namespace["make_estimator"](case)
    with dask.config.set(scheduler="sync"):
        return model.fit(X, y)


# ---------------------------------------------------------------------------------------------------------
# (a) linear models: interrupted in a subprocess, resumed here


@pytest.mark.parametrize("case", LINEAR_CASES)
def test_linear_fit_resumes_from_checkpoint(case, builders, interrupted, monkeypatch):
    _, namespace = builders
    directory = interrupted[case]
    stop_at = namespace["CASES"][case][3]
    reference = _reference(namespace, case)
    single_stage = case not in ("ovr", "huber")
    if single_stage:
        info = _stage_info(directory)
        # the subprocess stopped during iteration stop_at: the last save is the iteration before
        assert (info["status"], info["iteration"]) == ("running", stop_at - 1)
        assert len(info["history"]) == stop_at - 1
        saved_objectives = [record["objective"] for record in info["history"]]

    counter = _CountIterations(monkeypatch)
    model, (X, y) = namespace["make_estimator"](case, directory)
    with dask.config.set(scheduler="sync"):
        model.fit(X, y)
    n_records = len(reference.history_)
    if single_stage:
        # resumed: the saved iterations were not run again, the history continues the saved one
        assert_allclose(model.history_["objective"].to_numpy()[: stop_at - 1], saved_objectives, rtol=0)
        assert model.history_["iteration"].tolist() == list(range(1, len(model.history_) + 1))
    if case in EXACT_CASES:
        assert counter.count == n_records - (stop_at - 1)
        assert model.n_iter_ == reference.n_iter_
        assert_allclose(model.history_["objective"], reference.history_["objective"], rtol=1e-12)
        assert_allclose(model.coef_, reference.coef_, rtol=1e-10, atol=1e-12)
        assert_allclose(model.intercept_, reference.intercept_, rtol=1e-10, atol=1e-12)
    else:
        # L-BFGS restarts its memory, so the resumed path differs, but both meet tol=1e-8
        assert counter.count < len(model.history_)
        assert_allclose(model.coef_, reference.coef_, rtol=1e-5, atol=1e-6)
        assert_allclose(model.intercept_, reference.intercept_, rtol=1e-5, atol=1e-6)
    if case == "huber":
        assert model.scale_ == pytest.approx(reference.scale_, rel=1e-6)
    assert model.score(X, y) == pytest.approx(reference.score(X, y), rel=1e-9, abs=1e-9)

    # the checkpoint now records a completed fit: fitting again gives the same model without iterating
    completed = counter.count
    again, _ = namespace["make_estimator"](case, directory)
    with dask.config.set(scheduler="sync"):
        again.fit(X, y)
    assert counter.count == completed
    assert_array_equal(again.coef_, model.coef_)
    assert again.n_iter_ == model.n_iter_
    assert len(again.history_) == len(model.history_)


def test_checkpoint_every_k_iterations(builders, interrupted):
    _, namespace = builders
    directory = interrupted["gd-every-4"]
    stop_at = namespace["CASES"]["gd"][3]
    info = _stage_info(directory)
    assert info["iteration"] == 4 * ((stop_at - 1) // 4)  # the last multiple of 4 before the interruption
    assert sorted(p.name for p in directory.iterdir()) == [
        "checkpoint.json",
        "checkpoint.lock",
        f"solver.{info['iteration']}.npz",
        "solver.json",
    ]
    model, (X, y) = namespace["make_estimator"]("gd", directory, 4)
    model.fit(X, y)
    reference = _reference(namespace, "gd")
    assert model.n_iter_ == reference.n_iter_
    assert_allclose(model.coef_, reference.coef_, rtol=1e-10)


def test_sigkill_mid_fit_then_resume(builders, tmp_path, monkeypatch):
    folder, namespace = builders
    directory = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_FIT, str(folder), "gd", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        iteration = 0
        while time.monotonic() < deadline and process.poll() is None:
            try:
                iteration = _stage_info(directory)["iteration"]
            except (OSError, ValueError):  # not written yet (it is replaced atomically, never partial)
                iteration = 0
            if iteration >= 8:
                break
            time.sleep(0.02)
        assert process.poll() is None, process.communicate()[1][-3000:]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    info = _stage_info(directory)
    assert info["status"] == "running"
    saved = info["iteration"]
    assert 8 <= saved < 73

    reference = _reference(namespace, "gd")
    counter = _CountIterations(monkeypatch)
    model, (X, y) = namespace["make_estimator"]("gd", directory)
    model.fit(X, y)
    assert counter.count == reference.n_iter_ - saved
    assert model.n_iter_ == reference.n_iter_
    assert_allclose(model.coef_, reference.coef_, rtol=1e-10)


# ---------------------------------------------------------------------------------------------------------
# (b) ensembles: killed after some shards, resumed training only the missing ones


def _shard_files(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in directory.glob("shard-*.json")}


def _interrupt_ensemble(folder: Path, directory: Path, n_saved: int, fusion: str) -> None:
    _run_script(ENSEMBLE_EXIT, str(folder), str(directory), str(n_saved), fusion, expect_code=3)
    assert len(_shard_files(directory)) == n_saved


def _assert_same_predictions(model: Any, reference: Any, X: Any) -> None:
    X_numpy = np.asarray(X)
    assert_array_equal(model.predict(X_numpy), reference.predict(X_numpy))
    assert_array_equal(model.predict_proba(X_numpy), reference.predict_proba(X_numpy))
    assert_array_equal(model.classes_, reference.classes_)
    assert_array_equal(
        model.shard_report_.to_frame()["n_held_out"], reference.shard_report_.to_frame()["n_held_out"]
    )


def test_ensemble_resumes_with_the_trained_shards(builders, tmp_path, monkeypatch):
    folder, namespace = builders
    directory = tmp_path / "ensemble"
    _interrupt_ensemble(folder, directory, 3, "stacking")
    from daskml_lab.ensemble import _training

    trained = []
    original = _training._fit_shard_model_block

    def counting(*args: Any, **kwargs: Any) -> Any:
        trained.append(kwargs["shard"])
        return original(*args, **kwargs)

    monkeypatch.setattr(_training, "_fit_shard_model_block", counting)
    before = _shard_files(directory)
    model, (X, y) = namespace["make_ensemble"](directory)
    with dask.config.set(scheduler="sync"):
        model.fit(X, y)
    # only the missing shards were trained; the saved ones were neither refitted nor rewritten
    assert sorted(trained) == sorted(set(range(N_SHARDS)) - {int(name[6:11]) for name in before})
    after = _shard_files(directory)
    assert len(after) == N_SHARDS
    assert all(after[name] == mtime for name, mtime in before.items())
    if model.fusion_.refits_members():  # stacking refits its members: both models of every shard are saved
        assert len(list(directory.glob("shard-*.held-out.model"))) == N_SHARDS
    monkeypatch.setattr(_training, "_fit_shard_model_block", original)
    reference, _ = namespace["make_ensemble"]()
    with dask.config.set(scheduler="sync"):
        reference.fit(X, y)
    _assert_same_predictions(model, reference, X)


@pytest.mark.cluster
def test_ensemble_resumes_on_a_cluster(builders, tmp_path, client):
    """Interrupted under the local scheduler, resumed on the LocalCluster (futures saved as they complete)."""
    folder, namespace = builders
    directory = tmp_path / "ensemble"
    _interrupt_ensemble(folder, directory, 5, "soft-voting")
    before = _shard_files(directory)
    model, (X, y) = namespace["make_ensemble"](directory, fusion="soft-voting")
    model.fit(X, y)
    after = _shard_files(directory)
    assert len(after) == N_SHARDS
    assert all(after[name] == mtime for name, mtime in before.items())  # 3 shards trained, 5 reused
    reference, _ = namespace["make_ensemble"](fusion="soft-voting")
    with dask.config.set(scheduler="sync"):  # the same model as on the cluster (seeded, placement-free)
        reference.fit(X, y)
    _assert_same_predictions(model, reference, X)


@pytest.mark.cluster
def test_linear_fit_interrupted_locally_resumes_on_a_cluster(builders, tmp_path, client, monkeypatch):
    """The data digest is computed by the workers' solver state (actors) as by the local engine."""
    _, namespace = builders
    reference = _reference(namespace, "proximal")
    original = _common.History.add

    class Interrupted(Exception):
        pass

    def add(history: Any, **record: Any) -> bool:
        stop = original(history, **record)
        if len(history.records) == 12:
            raise Interrupted
        return stop

    model, (X, y) = namespace["make_estimator"]("proximal", tmp_path / "ckpt")
    with monkeypatch.context() as patch, dask.config.set(scheduler="sync"):
        patch.setattr(_common.History, "add", add)
        with pytest.raises(Interrupted):
            model.fit(X, y)
    assert _stage_info(tmp_path / "ckpt")["iteration"] == 11
    counter = _CountIterations(monkeypatch)
    model.fit(X, y)  # on the cluster: the blocks are persisted on the workers, evaluated by actors
    assert counter.count == reference.n_iter_ - 11
    assert model.n_iter_ == reference.n_iter_
    # the sums over the workers are ordered differently from the local ones: equal up to rounding
    assert_allclose(model.coef_, reference.coef_, rtol=1e-8, atol=1e-10)


def test_ensemble_without_random_state_reuses_the_recorded_seed(builders, tmp_path):
    _, namespace = builders
    params = {"random_state": None, "fusion": "soft-voting", "validation_fraction": 0.3}
    model, (X, y) = namespace["make_ensemble"](tmp_path / "ensemble", **params)
    with dask.config.set(scheduler="sync"):
        model.fit(X, y)
        again, _ = namespace["make_ensemble"](tmp_path / "ensemble", **params)
        again.fit(X, y)
        independent, _ = namespace["make_ensemble"](**params)
        independent.fit(X, y)
    _assert_same_predictions(again, model, X)
    # without the checkpoint, random_state=None gives another model (so the equality above is meaningful)
    assert not np.array_equal(independent.predict_proba(np.asarray(X)), model.predict_proba(np.asarray(X)))


# ---------------------------------------------------------------------------------------------------------
# (c) bad cases


def test_checkpoint_of_another_problem_is_refused(builders, tmp_path):
    _, namespace = builders
    model, (X, y) = namespace["make_estimator"]("gd", tmp_path / "ckpt")
    with dask.config.set(scheduler="sync"):
        model.fit(X, y)
        # other parameters
        other = namespace["make_estimator"]("gd", tmp_path / "ckpt")[0].set_params(alpha=2.0)
        with pytest.raises(CheckpointError, match=r"belongs to another fit.*alpha.*Delete the directory"):
            other.fit(X, y)
        # another estimator
        lasso, _ = namespace["make_estimator"]("proximal", tmp_path / "ckpt")
        with pytest.raises(CheckpointError, match=r"belongs to another fit \(Ridge\).*owner"):
            lasso.fit(X, y)
        # other data of the same shape and chunks: the digest of the blocks differs
        X_other, y_other = namespace["make_data"]("regression", shift=1.0)
        with pytest.raises(CheckpointError, match=r"other data.*content of the row blocks differs"):
            model.fit(X_other, y_other)
        # other chunks
        with pytest.raises(CheckpointError, match=r"another problem.*row_chunks"):
            model.fit(X.rechunk(200), y.rechunk(200))


def test_ensemble_checkpoint_of_other_data_is_refused(builders, tmp_path):
    _, namespace = builders
    model, (X, y) = namespace["make_ensemble"](tmp_path / "ensemble", fusion="soft-voting")
    with dask.config.set(scheduler="sync"):
        model.fit(X, y)
        with pytest.raises(
            CheckpointError, match=r"rows of shard \d+ differ from those its checkpointed model"
        ):
            model.fit(X + 1.0, y)
        with pytest.raises(CheckpointError, match=r"belongs to another fit.*n_samples"):
            model.fit(X[:700], y[:700])
        with pytest.raises(CheckpointError, match=r"belongs to another fit.*fusion"):
            model.set_params(fusion="hard-voting").fit(X, y)


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["arrays", "metadata", "manifest", "missing arrays"])
def test_corrupt_checkpoint_files_give_a_clear_error(builders, tmp_path, damage):
    _, namespace = builders
    directory = tmp_path / "ckpt"
    model, (X, y) = namespace["make_estimator"]("proximal", directory)
    with dask.config.set(scheduler="sync"):
        model.fit(X, y)
        (arrays,) = directory.glob("solver.*.npz")
        if damage == "arrays":
            _garble(arrays)
            expected = r"is corrupt: its SHA-256 checksum does not match"
        elif damage == "metadata":
            (directory / "solver.json").write_text('{"format": "daskml-lab-checkp')
            expected = r"solver.json' is unreadable or corrupt"
        elif damage == "manifest":
            (directory / "checkpoint.json").write_text("[1, 2]")
            expected = r"checkpoint.json' is not a daskml_lab checkpoint manifest"
        else:
            arrays.unlink()
            expected = r"array file .* is missing or unreadable"
        with pytest.raises(CheckpointError, match=expected + r".*Delete the directory"):
            model.fit(X, y)


def test_corrupt_shard_model_gives_a_clear_error(builders, tmp_path):
    _, namespace = builders
    directory = tmp_path / "ensemble"
    model, (X, y) = namespace["make_ensemble"](directory, fusion="soft-voting")
    with dask.config.set(scheduler="sync"):
        model.fit(X, y)
        _garble(directory / "shard-00002.model")
        with pytest.raises(CheckpointError, match=r"shard-00002.model' is corrupt.*Delete the directory"):
            model.fit(X, y)


def _unwritable_paths(tmp_path: Path) -> list[Path]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    paths = [blocker, blocker / "checkpoint"]
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root ignores permissions
        read_only = tmp_path / "read-only"
        read_only.mkdir()
        read_only.chmod(0o500)
        paths.append(read_only)
    return paths


def test_unwritable_directory_fails_before_any_computation(builders, tmp_path):
    _, namespace = builders
    for path in _unwritable_paths(tmp_path):
        for make in (
            lambda p: namespace["make_estimator"]("lbfgs", p),
            lambda p: namespace["make_ensemble"](p),
        ):
            model, (X, y) = make(path)
            with (
                raise_if_computes(max_computes=0),
                pytest.raises(CheckpointError, match=r"is not a directory|cannot be created or written to"),
            ):
                model.fit(X, y)


def test_checkpoint_parameters_are_validated(builders, tmp_path):
    _, namespace = builders
    model, (X, y) = namespace["make_estimator"]("gd", 5)
    with pytest.raises(
        InvalidParameterError, match=r"'checkpoint' parameter of Ridge must be None, a str or"
    ):
        model.fit(X, y)
    model, _ = namespace["make_estimator"]("gd", tmp_path, checkpoint_every=0)
    with pytest.raises(InvalidParameterError, match=r"'checkpoint_every' parameter of Ridge"):
        model.fit(X, y)
    assert not any(tmp_path.iterdir())  # nothing written for a rejected fit


def test_registered_solver_without_checkpoint_support_is_refused(builders, tmp_path, monkeypatch):
    from daskml_lab import solvers

    def plain(problem, *, w0=None, tol=1e-4, max_iter=100, random_state=None, callback=None):
        raise AssertionError("never called")  # pragma: no cover

    registry = dict(solvers.SOLVERS, plain=plain)
    monkeypatch.setattr(solvers, "SOLVERS", registry)
    monkeypatch.setattr(solvers, "get_solver", registry.__getitem__)
    _, namespace = builders
    model, (X, y) = namespace["make_estimator"]("gd", tmp_path / "ckpt")
    model.set_params(solver="plain")
    with (
        raise_if_computes(max_computes=0),
        pytest.raises(ValueError, match=r"solver='plain' does not support"),
    ):
        model.fit(X, y)


def test_solver_checkpoint_arguments():
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        SolverCheckpoint("somewhere", every=0)
    with pytest.raises(ValueError, match="stage must be"):
        SolverCheckpoint("somewhere", stage="../escape")
    with pytest.raises(TypeError, match="directory must be a str or path-like"):
        SolverCheckpoint(3)


def test_solver_level_checkpoint_without_estimator(tmp_path):
    """The solvers take ``checkpoint=`` directly; a completed run returns its saved result."""
    from daskml_lab.solvers import BlockedProblem, get_solver

    rng = np.random.default_rng(0)
    X = da.from_array(rng.normal(size=(200, 3)), chunks=50)
    y = da.from_array((rng.normal(size=200) > 0).astype(np.int64), chunks=50)
    checkpoint = SolverCheckpoint(tmp_path / "solver", every=2, stage="mine")
    with dask.config.set(scheduler="sync"):
        with BlockedProblem(X, y, loss="logistic") as problem:
            first = get_solver("gd")(problem, tol=1e-6, checkpoint=checkpoint)
        with BlockedProblem(X, y, loss="logistic") as problem:
            second = get_solver("gd")(problem, tol=1e-6, checkpoint=checkpoint)
            with pytest.raises(CheckpointError, match=r"another problem or solver settings.*tol"):
                get_solver("gd")(problem, tol=1e-5, checkpoint=checkpoint)
    assert_array_equal(first.W, second.W)
    assert (second.n_iter, second.history) == (first.n_iter, first.history)
    assert _stage_info(tmp_path / "solver", "mine")["status"] == "complete"
