"""Search checkpoints: an interrupted search resumes without refitting finished (candidate, fold) pairs, and a
worker killed mid-search does not lose it; folds without some class are refused before any fit."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from _fault_injection import after_first_task, three_worker_cluster, wait_until_idle
from distributed import Client
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from daskml_lab._runtime.checkpoint_files import CheckpointError
from daskml_lab.model_selection import GridSearchCV, KFold, RandomizedSearchCV

GRID = {"C": [0.01, 0.1, 1.0, 10.0]}
TIMES = {"mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"}


class Interrupted(BaseException):
    """Stands for Ctrl-C or a killed client: not an error a search turns into error_score."""


class CountedLogistic(LogisticRegression):
    """LogisticRegression that appends a line to ``log`` per fit, and stops after the count in ``log.limit``.

    Both are files, so that fits in worker processes count too; the limit is not a parameter, so the search
    is the same one before and after the interruption.
    """

    def __init__(self, C=1.0, log=None, delay_s=0.0):
        super().__init__(C=C)
        self.log = log
        self.delay_s = delay_s

    def fit(self, X, y, sample_weight=None):
        log = Path(self.log)
        limit = log.with_suffix(".limit")
        if limit.exists() and _count(log) >= int(limit.read_text()):
            error = limit.with_suffix(".error").exists()
            raise (RuntimeError if error else Interrupted)("interrupted by the test")
        with log.open("a") as stream:
            stream.write(f"{self.C}\n")
        time.sleep(self.delay_s)
        return super().fit(X, y, sample_weight=sample_weight)


def _count(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=240, n_features=6, random_state=0)


def _same_results(resumed, reference):
    assert set(resumed) == set(reference)
    for key in set(reference) - TIMES:
        if key == "params":
            assert resumed[key] == reference[key]
        else:
            np.testing.assert_array_equal(np.asarray(resumed[key]), np.asarray(reference[key]), err_msg=key)


@pytest.mark.parametrize("kind", ["grid", "random"])
def test_interrupted_search_resumes_without_refitting_finished_pairs(tmp_path, data, kind):
    X, y = data
    log = tmp_path / "fits.log"

    def search(checkpoint=None):
        estimator = CountedLogistic(log=str(log))
        if kind == "grid":
            return GridSearchCV(estimator, GRID, cv=3, checkpoint=checkpoint)
        return RandomizedSearchCV(
            estimator, {"C": np.logspace(-3, 2, 20)}, n_iter=4, cv=3, random_state=0, checkpoint=checkpoint
        )

    with dask.config.set(scheduler="sync"):  # in-process: fits one after the other, interrupted after 5
        reference = search().fit(X, y)
        log.unlink()
        log.with_suffix(".limit").write_text("5")
        with pytest.raises(Interrupted):
            search(tmp_path / "ckpt").fit(X, y)
        assert _count(log) == 5
        assert len(list((tmp_path / "ckpt").glob("fit-*.json"))) == 5
        log.with_suffix(".limit").unlink()
        resumed = search(tmp_path / "ckpt").fit(X, y)
    assert _count(log) == 5 + (12 - 5) + 1  # the 7 missing pairs, and the refit of the best candidate
    _same_results(resumed.cv_results_, reference.cv_results_)
    assert resumed.best_params_ == reference.best_params_
    with dask.config.set(scheduler="sync"):
        again = search(tmp_path / "ckpt").fit(X, y)  # every pair saved: only the refit runs
    assert _count(log) == 14
    _same_results(again.cv_results_, reference.cv_results_)


@pytest.mark.cluster
@pytest.mark.parametrize("dask_input", [False, True])
def test_search_on_the_cluster_saves_each_pair_as_it_finishes_and_resumes(client, tmp_path, data, dask_input):
    X, y = data
    if dask_input:  # an in-memory estimator on dask data: one task per pair, fed by the fold's blocks
        X, y = da.from_array(X, chunks=60), da.from_array(y, chunks=60)
    log = tmp_path / "fits.log"
    estimator = CountedLogistic(log=str(log))
    reference = GridSearchCV(estimator, GRID, cv=KFold(3), refit=False).fit(X, y)
    log.unlink()
    log.with_suffix(".limit").write_text("4")
    log.with_suffix(".error").write_text("")  # an error in a task, raised by error_score="raise"
    checkpoint = tmp_path / "ckpt"
    interrupted = GridSearchCV(estimator, GRID, cv=KFold(3), refit=False, error_score="raise")
    with pytest.raises(RuntimeError, match="interrupted by the test"):
        interrupted.set_params(checkpoint=checkpoint).fit(X, y)
    saved = len(list(checkpoint.glob("fit-*.json")))
    # those finished before the error (two workers may both pass the limit check: up to 5)
    assert 1 <= saved < 12
    wait_until_idle(client)  # the interrupted search's tasks already on a worker have ended
    log.with_suffix(".limit").unlink()
    before = _count(log)
    resumed = interrupted.fit(X, y)
    assert _count(log) - before == 12 - saved
    _same_results(resumed.cv_results_, reference.cv_results_)


def test_checkpoint_of_another_search_or_random_folds_is_refused(tmp_path, data):
    X, y = data
    with dask.config.set(scheduler="sync"):
        GridSearchCV(LogisticRegression(), GRID, cv=3, checkpoint=tmp_path).fit(X, y)
        with pytest.raises(CheckpointError, match=r"belongs to another fit.*candidates"):
            GridSearchCV(LogisticRegression(), {"C": [1.0, 2.0]}, cv=3, checkpoint=tmp_path).fit(X, y)
        with pytest.raises(CheckpointError, match=r"belongs to another fit.*data"):
            GridSearchCV(LogisticRegression(), GRID, cv=3, checkpoint=tmp_path).fit(X[:200], y[:200])
    with pytest.raises(ValueError, match=r"draws its folds at random: give it random_state=<int>"):
        GridSearchCV(
            LogisticRegression(), GRID, cv=KFold(3, shuffle=True), checkpoint=tmp_path / "other"
        ).fit(X, y)
    with pytest.raises(ValueError, match=r"RandomizedSearchCV samples its candidates at random"):
        RandomizedSearchCV(LogisticRegression(), GRID, n_iter=2, checkpoint=tmp_path / "other").fit(X, y)
    assert not (tmp_path / "other").exists()  # refused before anything was written


@pytest.mark.cluster
@pytest.mark.slow
def test_a_worker_killed_mid_search_does_not_lose_the_search(tmp_path, data):
    X, y = data
    log = tmp_path / "fits.log"
    # 0.1 s per fit: 16 fits on 3 workers still run when the first has finished and a worker is killed
    estimator = CountedLogistic(log=str(log), delay_s=0.1)
    grid = {"C": [0.01, 0.1, 1.0, 10.0]}
    with dask.config.set(scheduler="sync"):
        reference = GridSearchCV(estimator, grid, cv=4).fit(X, y)
    with three_worker_cluster() as cluster, Client(cluster) as client:
        client.wait_for_workers(3, timeout=60)
        pids = client.run(os.getpid)
        killed: list[str] = []

        def kill(worker: str) -> None:
            os.kill(pids[worker], signal.SIGKILL)
            killed.append(worker)

        with after_first_task(client, "daskml-cv-fit", kill):
            search = GridSearchCV(estimator, grid, cv=4, checkpoint=tmp_path / "ckpt").fit(X, y)
        assert killed, "the search ended before the fault"
    assert search.best_params_ == reference.best_params_
    _same_results(search.cv_results_, reference.cv_results_)
    assert len(list((tmp_path / "ckpt").glob("fit-*.json"))) == 16


def test_folds_without_some_class_are_refused_before_any_fit(tmp_path, data):
    X, y = data
    order = np.argsort(y, kind="stable")  # sorted labels: fold 0 tests the 0s and trains on the 1s only
    log = tmp_path / "fits.log"
    search = GridSearchCV(CountedLogistic(log=str(log)), GRID, cv=KFold(2))
    with pytest.raises(
        ValueError, match=r"training rows of fold 0 hold no row of class\(es\) \[0\].*stratified"
    ):
        search.fit(X[order], y[order])
    assert not log.exists()  # nothing was fitted
    with dask.config.set(scheduler="sync"):
        search.set_params(cv=2).fit(X[order], y[order])  # stratified folds: every class in every fold
