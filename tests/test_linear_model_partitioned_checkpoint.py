"""``checkpoint=`` resume of partitioned fits (issue 13): each shard saved and restored on its own worker.

Real two-process cluster (the session's LocalCluster). A fit is interrupted by raising from the report the
partitioned solvers make after each epoch. The rows are one block, so that one worker runs the SGD steps
while the shards live on both workers: in lockstep (``max_staleness=0``, or local steps, whose pull waits for
the previous push) its steps are then applied in one order, and an interrupted and resumed fit can be compared
with an uninterrupted one bit for bit (with rows on several workers, the asynchronous steps interleave in an
order that varies from run to run, even with ``max_staleness=0``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster

from daskml_lab.data import make_sparse_classification
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression, PartitionedCoefficients, _partitioned
from daskml_lab.solvers import (
    CheckpointError,
    SolverCheckpoint,
    _partitioned_fit,
    partitioned_gd,
    partitioned_sgd,
)
from daskml_lab.solvers._checkpoint import lock_checkpoint
from daskml_lab.solvers._shard_checkpoint import open_store_checkpoint
from daskml_lab.solvers._sharded_store import FTRLShard, ParameterShard

pytestmark = pytest.mark.cluster

N_FEATURES = 2**10
#: Below the binary model's (N_FEATURES + 1) x 8 bytes: the fitted model stays in its shards.
KEEP_IN_SHARDS = {"daskml_lab.solvers.store.max_gather_bytes": 2**10}
OPTIONS = {"model_partitions": 2, "max_iter": 6, "tol": 0.0, "random_state": 0}
TO_CLIENT = 2**24


class Interrupted(Exception):
    pass


class Epochs:
    """Counts the epochs the partitioned solvers run (their per-epoch reports); raises after ``stop_after``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.stop_after: int | None = None
        original = _partitioned_fit.FitReport.__call__

        def report(fit_report: Any, record: Any, stats: Any) -> None:
            original(fit_report, record, stats)
            self.count += 1
            if self.count == self.stop_after:
                raise Interrupted

        monkeypatch.setattr(_partitioned_fit.FitReport, "__call__", report)

    def run(self, model: LogisticRegression, X: Any, y: Any, *, stop_after: int | None = None) -> int:
        """Fit ``model``; return how many epochs ran (interrupted after ``stop_after`` of them if given)."""
        self.count, self.stop_after = 0, stop_after
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a few epochs: the resume is checked
            if stop_after is None:
                model.fit(X, y)
            else:
                with pytest.raises(Interrupted):
                    model.fit(X, y)
        return self.count


@pytest.fixture(scope="module")
def ckpt_client(local_cluster: LocalCluster) -> Iterator[Client]:
    with Client(local_cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data(ckpt_client: Client) -> tuple[Any, Any]:
    X, y = make_sparse_classification(3_000, N_FEATURES, nnz_per_row=10, chunks=3_000, random_state=0)
    return X.persist(), y.persist()


@pytest.fixture
def epochs(monkeypatch: pytest.MonkeyPatch) -> Epochs:
    return Epochs(monkeypatch)


def _stage(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "solver.json").read_text())


# ------------------------------------------------------------------------------------------------ resume
#: FTRL-proximal with an L1 penalty: its z and n are the shards' state, its exact zeros must come back. In
#: lockstep (max_staleness=0), as every case compared to 1e-10 here: with one step in flight, a pull can
#: overtake the worker's previous push at a remote shard on a loaded machine, and the runs differ.
FTRL = {
    "l1_ratio": 0.5,
    "C": 10.0,
    "solver_options": {"step_rule": "ftrl", "learning_rate": 0.5, "max_staleness": 0},
}


@pytest.mark.parametrize(
    ("every", "stop_after", "resumed_from", "settings"),
    [
        (1, 3, 3, {"solver_options": {"max_staleness": 0}}),
        (2, 3, 2, {"solver_options": {"max_staleness": 0}}),
        (1, 4, 4, FTRL),
        # the averaged model is saved with the last iterate the next epoch continues from
        (2, 3, 2, {"solver_options": {"average": True, "local_steps": 4}}),
    ],
)
def test_an_interrupted_fit_resumes_to_the_uninterrupted_coefficients(
    data: tuple,
    epochs: Epochs,
    tmp_path: Path,
    every: int,
    stop_after: int,
    resumed_from: int,
    settings: dict[str, Any],
) -> None:
    X, y = data
    options = {**OPTIONS, **settings}
    reference = LogisticRegression(**options)
    assert epochs.run(reference, X, y) == 6
    model = LogisticRegression(checkpoint=tmp_path, checkpoint_every=every, **options)
    epochs.run(model, X, y, stop_after=stop_after)
    info = _stage(tmp_path)
    assert (info["status"], info["iteration"], len(info["shards"])) == ("running", resumed_from, 2)
    assert info["layout"]["n_shards"] == 2
    # only the remaining epochs run, and the result is the uninterrupted fit's
    assert epochs.run(model, X, y) == 6 - resumed_from
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, reference.intercept_, rtol=0, atol=1e-10)
    assert model.n_iter_ == 6
    if settings is FTRL:
        assert 0 < np.count_nonzero(model.coef_) < N_FEATURES
    assert model.history_["iteration"].tolist() == list(range(1, 7))
    np.testing.assert_allclose(model.history_["objective"], reference.history_["objective"], rtol=1e-12)
    # a completed run returns at once from its checkpoint
    assert _stage(tmp_path)["status"] == "complete"
    again = LogisticRegression(checkpoint=tmp_path, checkpoint_every=every, **options)
    assert epochs.run(again, X, y) == 0
    np.testing.assert_array_equal(again.coef_, model.coef_)
    assert again.n_iter_ == 6
    # one file per shard, of the last save only
    assert sorted(p.name for p in tmp_path.glob("solver.shard-*.npz")) == [
        "solver.shard-0.6.npz",
        "solver.shard-1.6.npz",
    ]


def test_a_model_kept_in_its_shards_resumes_without_being_gathered(
    data: tuple, epochs: Epochs, tmp_path: Path
) -> None:
    # model_partitions="auto" partitions a model with a checkpoint (it no longer falls back to a replicated fit)
    X, y = data
    options = {**OPTIONS, "model_partitions": "auto"}
    with dask.config.set({"daskml_lab.model_partitions.auto_min_bytes": 1, **KEEP_IN_SHARDS}):
        reference = LogisticRegression(**options)
        epochs.run(reference, X, y)
        model = LogisticRegression(checkpoint=tmp_path, **options)
        epochs.run(model, X, y, stop_after=2)
        assert epochs.run(model, X, y) == 4
        again = LogisticRegression(checkpoint=tmp_path, **options)
        assert epochs.run(again, X, y) == 0
    assert isinstance(reference.coef_, PartitionedCoefficients)
    expected = reference.coef_.to_numpy(max_bytes=TO_CLIENT)
    for fitted in (model, again):
        assert isinstance(fitted.coef_, PartitionedCoefficients)
        assert fitted.coef_.n_partitions == 2  # one shard per worker
        # restored shard by shard on the workers: nothing was ever gathered
        assert all(stats["n_gathers"] == 0 for stats in fitted.coef_.stats())
        np.testing.assert_allclose(fitted.coef_.to_numpy(max_bytes=TO_CLIENT), expected, rtol=0, atol=1e-10)
        np.testing.assert_allclose(fitted.intercept_, reference.intercept_, rtol=0, atol=1e-10)


# ------------------------------------------------------------------------------------------------ refusals
def test_other_data_or_another_split_is_refused_before_any_epoch(
    data: tuple, epochs: Epochs, tmp_path: Path
) -> None:
    X, y = data
    epochs.run(LogisticRegression(checkpoint=tmp_path, **{**OPTIONS, "max_iter": 2}), X, y)
    flipped = 1 - y
    with pytest.raises(CheckpointError, match=r"other data.*content of the row blocks differs.*Delete the"):
        epochs.run(LogisticRegression(checkpoint=tmp_path, **{**OPTIONS, "max_iter": 2}), X, flipped)
    assert epochs.count == 0
    with pytest.raises(CheckpointError, match=r"belongs to another fit.*model_partitions \(saved 2, now 3\)"):
        epochs.run(LogisticRegression(checkpoint=tmp_path, **{**OPTIONS, "model_partitions": 3}), X, y)
    assert epochs.count == 0


def test_a_store_split_otherwise_is_refused_naming_the_layout(
    ckpt_client: Client, data: tuple, epochs: Epochs, tmp_path: Path
) -> None:
    X, y = data
    arguments = {
        "client": ckpt_client,
        "loss": "logistic",
        "n_outputs": 1,
        "fit_intercept": True,
        "data_scale": 1 / 3_000,
        "l2": 1 / 3_000,
        "max_iter": 1,
        "random_state": 0,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        partitioned_sgd(X, y, None, n_partitions=2, checkpoint=SolverCheckpoint(tmp_path), **arguments)
        with pytest.raises(
            CheckpointError,
            match=r"other parameter shards.*n_shards \(saved 2, now 3\).*same model_partitions",
        ):
            partitioned_sgd(X, y, None, n_partitions=3, checkpoint=SolverCheckpoint(tmp_path), **arguments)
    assert epochs.count == 1  # the first run's epoch only


def test_a_partitioned_solver_without_checkpoints_says_which_take_one(
    data: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every partitioned solver takes one now: a solver without the keyword stands in for a future one
    def no_checkpoint(X: Any, y: Any, sample_weight: Any, *, client: Any, gather: bool = True) -> None:
        raise AssertionError("refused before the fit")

    monkeypatch.setitem(_partitioned._PARTITIONED_SOLVERS, "gd", no_checkpoint)
    X, y = data
    model = LogisticRegression(solver="gd", checkpoint=tmp_path, **OPTIONS)
    with pytest.raises(
        ValueError,
        match=r"solver='gd' does not support checkpoints yet.*\['async-sgd', 'auto', 'lbfgs', 'proximal', 'sgd'\]",
    ):
        model.fit(X, y)


# ------------------------------------------------------------------------------------- full-batch solvers
#: The full-batch partitioned solvers (deterministic): L-BFGS, gradient descent, FISTA with an L1 penalty.
FULL_BATCH = {
    "lbfgs": {"solver": "lbfgs"},
    "gd": {"solver": "gd"},
    "proximal": {"solver": "proximal", "l1_ratio": 1.0, "C": 10.0},
}


@pytest.mark.parametrize(
    ("name", "every", "stop_after", "resumed_from"),
    [("lbfgs", 1, 3, 3), ("lbfgs", 2, 3, 2), ("gd", 1, 2, 2), ("proximal", 2, 4, 4)],
)
def test_an_interrupted_full_batch_fit_resumes_to_the_uninterrupted_one(
    data: tuple, epochs: Epochs, tmp_path: Path, name: str, every: int, stop_after: int, resumed_from: int
) -> None:
    X, y = data
    options = {**OPTIONS, **FULL_BATCH[name]}
    reference = LogisticRegression(**options)
    n_iter = epochs.run(reference, X, y)
    assert n_iter == reference.n_iter_ > stop_after
    model = LogisticRegression(checkpoint=tmp_path, checkpoint_every=every, **options)
    epochs.run(model, X, y, stop_after=stop_after)
    info = _stage(tmp_path)
    assert (info["status"], info["iteration"], len(info["shards"])) == ("running", resumed_from, 2)
    # only the remaining iterations run; the scores X w are recomputed from the restored shards, so the
    # result agrees to rounding
    assert epochs.run(model, X, y) == n_iter - resumed_from
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, reference.intercept_, rtol=0, atol=1e-10)
    assert model.n_iter_ == n_iter
    if name == "proximal":
        assert 0 < np.count_nonzero(model.coef_) < N_FEATURES
    assert model.history_["iteration"].tolist() == list(range(1, n_iter + 1))
    np.testing.assert_allclose(model.history_["objective"], reference.history_["objective"], rtol=1e-10)
    # a completed run returns at once from its checkpoint
    assert _stage(tmp_path)["status"] == "complete"
    again = LogisticRegression(checkpoint=tmp_path, checkpoint_every=every, **options)
    assert epochs.run(again, X, y) == 0
    np.testing.assert_array_equal(again.coef_, model.coef_)
    assert again.n_iter_ == n_iter


def test_a_full_batch_checkpoint_of_other_settings_data_or_split_is_refused(
    ckpt_client: Client, data: tuple, epochs: Epochs, tmp_path: Path
) -> None:
    X, y = data
    arguments = {
        "client": ckpt_client,
        "loss": "logistic",
        "n_outputs": 1,
        "fit_intercept": True,
        "data_scale": 1 / 3_000,
        "l2": 1 / 3_000,
        "max_iter": 2,
        "tol": 0.0,
    }
    saved = SolverCheckpoint(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        partitioned_gd(X, y, None, n_partitions=2, checkpoint=saved, **arguments)
        assert epochs.count == 2
        with pytest.raises(CheckpointError, match=r"another problem or solver settings.*step_size"):
            partitioned_gd(X, y, None, n_partitions=2, step_size=0.5, checkpoint=saved, **arguments)
        with pytest.raises(CheckpointError, match=r"other parameter shards.*n_shards \(saved 2, now 3\)"):
            partitioned_gd(X, y, None, n_partitions=3, checkpoint=saved, **arguments)
        with pytest.raises(CheckpointError, match=r"other data.*content of the row blocks differs"):
            partitioned_gd(X, 1 - y, None, n_partitions=2, checkpoint=saved, **arguments)
    assert epochs.count == 2  # the first run's iterations only


def test_the_full_batch_lost_worker_advice_names_the_iteration(tmp_path: Path) -> None:
    # what run_over_store appends to the lost-worker error (the SGD's own is tested end to end below)
    spec = SolverCheckpoint(tmp_path)
    with lock_checkpoint(spec):
        saver = open_store_checkpoint(spec, "partitioned lbfgs", {}, lambda: "", unit="iteration")
        assert "No iteration was checkpointed yet" in saver.resume_advice()
        saver.last_saved = 4
        assert re.search(r"as of iteration 4: fit again .* resume from iteration 5", saver.resume_advice())


# ---------------------------------------------------------------------------------------------- the files
def test_a_corrupt_shard_file_is_refused(data: tuple, epochs: Epochs, tmp_path: Path) -> None:
    X, y = data
    epochs.run(LogisticRegression(checkpoint=tmp_path, **{**OPTIONS, "max_iter": 2}), X, y)
    path = tmp_path / "solver.shard-1.2.npz"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(CheckpointError, match=r"solver.shard-1.2.npz' is corrupt: its SHA-256.*Delete the"):
        epochs.run(LogisticRegression(checkpoint=tmp_path, **{**OPTIONS, "max_iter": 2}), X, y)
    assert epochs.count == 0


@pytest.mark.parametrize("shard_class", [ParameterShard, FTRLShard])
def test_a_shard_state_round_trips_and_is_never_unpickled(shard_class: type, tmp_path: Path) -> None:
    # in this process: the actor's methods are plain methods
    def make() -> ParameterShard:
        return shard_class(50, 3, 49, "adagrad" if shard_class is ParameterShard else "ftrl", 0.5, 0.1)

    shard = make()
    rng = np.random.default_rng(0)
    for clock in range(5):
        slots = np.unique(rng.integers(0, 50, size=10))
        shard.push(slots, rng.normal(size=(len(slots), 3)), clock, 0, clock + 1)
    saved = shard.save_state(os.fspath(tmp_path / "shard.npz"))
    restored = make()
    restored.restore_state(os.fspath(tmp_path / "shard.npz"), saved["sha256"])
    np.testing.assert_array_equal(restored.gather(), shard.gather())
    assert restored.clock == shard.clock == 5
    for name in ("values", "accumulator", "last_tick", "z", "n"):
        if getattr(shard, name, None) is not None:
            np.testing.assert_array_equal(getattr(restored, name), getattr(shard, name))
    # a file with a pickled (object) array and a matching checksum is still refused: never unpickled
    hostile = tmp_path / "hostile.npz"
    np.savez(
        hostile, scalars=np.frombuffer(b'{"class": "x"}', dtype=np.uint8), **{"array.values": np.array([{}])}
    )
    checksum = hashlib.sha256(hostile.read_bytes()).hexdigest()
    with pytest.raises(CheckpointError, match=r"hostile.npz' is missing or unreadable.*allow_pickle"):
        make().restore_state(os.fspath(hostile), checksum)
    # another shape of shard (another split of the model) is refused
    with pytest.raises(
        CheckpointError, match=r"holds values of shape \(50, 3\) but this shard's has \(40, 3\)"
    ):
        shard_class(40, 3, 40, shard.step_rule, 0.5, 0.1).restore_state(
            os.fspath(tmp_path / "shard.npz"), saved["sha256"]
        )


# ---------------------------------------------------------------------------------------------- lost worker
def test_a_lost_worker_says_what_was_lost_and_where_to_resume(tmp_path: Path) -> None:
    # a cluster of its own: the worker of shard 1 is killed after epoch 2 (the nanny restarts an empty one)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        X, y = make_sparse_classification(2_000, N_FEATURES, nnz_per_row=5, chunks=500, random_state=0)
        victim = sorted(client.scheduler_info()["workers"])[1]

        seen: list[dict] = []

        def kill_after_second_epoch(record: dict) -> None:
            seen.append(record)
            if record["iteration"] == 2:
                client.run(os._exit, 1, workers=[victim], on_error="ignore")

        arguments = {
            "client": client,
            "loss": "logistic",
            "n_outputs": 1,
            "fit_intercept": True,
            "data_scale": 1 / 2_000,
            "l2": 1 / 2_000,
            "max_iter": 4,
            "random_state": 0,
            "n_partitions": 2,
        }
        with (
            # a call to the dead shard fails within seconds (then the error says which worker left)
            dask.config.set({"daskml_lab.solvers.timeout_s": 5}),
            pytest.raises(
                RuntimeError,
                match=r"left the cluster during the fit, with parameter shard\(s\) \[1\].*holds every shard as "
                r"of epoch 2: fit again with the same checkpoint.*to resume from epoch 3",
            ),
        ):
            partitioned_sgd(
                X,
                y,
                None,
                checkpoint=SolverCheckpoint(tmp_path),
                callback=kill_after_second_epoch,
                **arguments,
            )
        client.wait_for_workers(2, timeout=60)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = partitioned_sgd(
                X, y, None, checkpoint=SolverCheckpoint(tmp_path), callback=seen.append, **arguments
            )
        assert result.n_iter == 4
        # epochs 1 and 2 come from the checkpoint, only 3 and 4 ran again
        assert [record["iteration"] for record in seen] == [1, 2, 3, 4]
        assert result.history[:2] == seen[:2]
        assert [record["iteration"] for record in result.history] == [1, 2, 3, 4]
        assert result.W.shape == (N_FEATURES + 1, 1)


def test_a_fit_with_a_checkpoint_recovers_a_lost_worker_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # the estimator resumes from its checkpoint within the same fit (the nanny restarts the killed worker)
    original = _partitioned._PARTITIONED_SOLVERS["sgd"]
    epochs_run: list[list[int]] = []
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        victim = sorted(client.scheduler_info()["workers"])[1]

        @functools.wraps(original)
        def killing_after_the_second_epoch(*args: Any, **kwargs: Any) -> Any:
            run: list[int] = []
            epochs_run.append(run)

            def callback(record: dict) -> None:
                run.append(record["iteration"])
                if len(epochs_run) == 1 and record["iteration"] == 2:
                    client.run(os._exit, 1, workers=[victim], on_error="ignore")

            return original(*args, **{**kwargs, "callback": callback})

        monkeypatch.setitem(_partitioned._PARTITIONED_SOLVERS, "sgd", killing_after_the_second_epoch)
        X, y = make_sparse_classification(2_000, N_FEATURES, nnz_per_row=5, chunks=500, random_state=0)
        model = LogisticRegression(
            solver="sgd", model_partitions=2, max_iter=4, tol=1e-12, random_state=0, checkpoint=tmp_path
        )
        with (
            dask.config.set({"daskml_lab.solvers.timeout_s": 5}),
            warnings.catch_warnings(),
            caplog.at_level("WARNING", logger="daskml_lab.linear_model._partitioned"),
        ):
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        # the first run ended after epoch 2 with the worker; the second resumed at epoch 3, nothing was redone
        assert epochs_run == [[1, 2], [3, 4]]
        assert list(model.history_["iteration"]) == [1, 2, 3, 4]
        assert "Resuming from the checkpoint" in caplog.text
        assert "recovery 1 of at most 3" in caplog.text
        assert model.score(X, y) > 0.6
        # without a checkpoint the same loss is an error (the lost values exist nowhere else)
        client.wait_for_workers(2, timeout=60)
        epochs_run.clear()
        model.set_params(checkpoint=None)
        victim = sorted(client.scheduler_info()["workers"])[1]
        with (
            dask.config.set({"daskml_lab.solvers.timeout_s": 5}),
            pytest.raises(RuntimeError, match=r"left the cluster during the fit"),
        ):
            model.fit(X, y)
