"""Checkpoints and progress of the successive-halving searches.

An interrupted HalvingGridSearchCV / HalvingRandomSearchCV resumes by fitting only the (round, candidate, fold)
pairs without a saved result (fits counted by the estimator), reaches the same rounds, and gives the
``cv_results_`` of an uninterrupted search, itself scikit-learn's on the same folds. The progress reports the
round (training page, progress bar), and fits are counted over the whole search.
"""

from __future__ import annotations

import io
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from _fault_injection import wait_until_idle
from scipy.stats import randint
from sklearn import model_selection as sk
from sklearn.datasets import make_classification
from sklearn.experimental import enable_halving_search_cv  # noqa: F401 -- scikit-learn's reference
from sklearn.tree import DecisionTreeClassifier

from daskml_lab._runtime.checkpoint_files import CheckpointError
from daskml_lab.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV, KFold
from daskml_lab.model_selection._search_progress import SearchProgress
from daskml_lab.monitoring import TOPIC, TrainingMonitor
from daskml_lab.monitoring import _progress as progress_module
from daskml_lab.monitoring._page import _run_summary

GRID = {"max_depth": [1, 2, 3, 4, 5, 6]}
DISTRIBUTIONS = {"max_depth": randint(1, 10), "min_samples_leaf": randint(1, 20)}
# 6 candidates x 3 folds, then 2 x 3 (cv=3, factor=3, min_resources='exhaust')
N_FITS = 24
TIMES = {"mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"}


class Interrupted(BaseException):
    """Stands for Ctrl-C or a killed client: not an error a search turns into error_score."""


class CountedTree(DecisionTreeClassifier):
    """DecisionTreeClassifier(random_state=0) that appends a line to ``log`` per fit and stops at ``log.limit``.

    Files, so that fits in worker processes count too; the limit is not a parameter, so the search is the same
    one before and after the interruption (``log.error`` makes it a RuntimeError, raised by error_score).
    """

    def __init__(self, max_depth=None, min_samples_leaf=1, log=None):
        super().__init__(max_depth=max_depth, min_samples_leaf=min_samples_leaf, random_state=0)
        self.log = log

    def fit(self, X, y, sample_weight=None, check_input=True):
        log = Path(self.log)
        limit = log.with_suffix(".limit")
        if limit.exists() and _count(log) >= int(limit.read_text()):
            raise (RuntimeError if log.with_suffix(".error").exists() else Interrupted)(
                "interrupted by the test"
            )
        with log.open("a") as stream:
            stream.write(f"{self.max_depth}\n")
        return super().fit(X, y, sample_weight=sample_weight, check_input=check_input)


def _count(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=300, n_features=6, n_informative=3, random_state=0)


def _search(kind, log, checkpoint=None, **options):
    estimator = CountedTree(log=str(log))
    if kind == "grid":
        return HalvingGridSearchCV(estimator, GRID, cv=3, random_state=0, checkpoint=checkpoint, **options)
    return HalvingRandomSearchCV(
        estimator, DISTRIBUTIONS, n_candidates=6, cv=3, random_state=0, checkpoint=checkpoint, **options
    )


def _same_results(resumed, reference):
    assert set(resumed) == set(reference)
    for key in set(reference) - TIMES:
        if key == "params":
            assert resumed[key] == reference[key]
        else:
            np.testing.assert_array_equal(np.asarray(resumed[key]), np.asarray(reference[key]), err_msg=key)


@pytest.mark.parametrize("kind", ["grid", "random"])
def test_interrupted_halving_search_resumes_only_the_missing_pairs(tmp_path, data, kind):
    X, y = data
    log, checkpoint = tmp_path / "fits.log", tmp_path / "ckpt"
    with dask.config.set(scheduler="sync"):  # in-process: fits one after the other, interrupted after 20
        reference = _search(kind, log).fit(X, y)
        assert reference.n_candidates_ == [6, 2]
        assert _count(log) == N_FITS + 1  # and the refit
        log.unlink()
        log.with_suffix(".limit").write_text("20")  # all of round 0 (18) and 2 fits of round 1
        with pytest.raises(Interrupted):
            _search(kind, log, checkpoint).fit(X, y)
        assert len(list(checkpoint.glob("round-0-fit-*.json"))) == 18
        assert len(list(checkpoint.glob("round-1-fit-*.json"))) == 2
        log.with_suffix(".limit").unlink()
        resumed = _search(kind, log, checkpoint).fit(X, y)
    assert _count(log) == 20 + (N_FITS - 20) + 1  # the 4 missing pairs of round 1, and the refit
    _same_results(resumed.cv_results_, reference.cv_results_)
    assert resumed.best_params_ == reference.best_params_
    assert resumed.n_candidates_ == reference.n_candidates_

    # the uninterrupted search is scikit-learn's on the same folds (rows, rounds, scores, survivors)
    model = DecisionTreeClassifier(random_state=0)
    if kind == "grid":
        sklearn_search = sk.HalvingGridSearchCV(model, GRID, cv=3, random_state=0)
    else:
        sklearn_search = sk.HalvingRandomSearchCV(model, DISTRIBUTIONS, n_candidates=6, cv=3, random_state=0)
    sklearn_search.fit(X, y)
    assert resumed.cv_results_["params"] == list(sklearn_search.cv_results_["params"])
    np.testing.assert_array_equal(resumed.cv_results_["iter"], sklearn_search.cv_results_["iter"])
    np.testing.assert_allclose(
        resumed.cv_results_["mean_test_score"],
        sklearn_search.cv_results_["mean_test_score"],
        rtol=0,
        atol=1e-12,
    )
    assert resumed.best_params_ == sklearn_search.best_params_


def test_lost_results_of_an_early_round_are_refitted_and_lead_to_the_same_rounds(tmp_path, data):
    X, y = data
    log, checkpoint = tmp_path / "fits.log", tmp_path / "ckpt"
    with dask.config.set(scheduler="sync"):
        reference = _search("grid", log, checkpoint, refit=False).fit(X, y)
        assert _count(log) == N_FITS
        # as if interrupted before these were saved: a survivor's fold of round 0, a dropped candidate's fold
        survivors = {GRID["max_depth"].index(p["max_depth"]) for p in reference.cv_results_["params"][6:]}
        dropped = min(set(range(6)) - survivors)
        lost = [
            f"round-0-fit-{min(survivors)}-1.json",
            f"round-0-fit-{dropped}-2.json",
            f"round-1-fit-{max(survivors)}-0.json",
        ]
        for name in lost:
            (checkpoint / name).unlink()
        resumed = _search("grid", log, checkpoint, refit=False).fit(X, y)
        assert _count(log) == N_FITS + len(lost)
        _same_results(resumed.cv_results_, reference.cv_results_)
        assert len(list(checkpoint.glob("round-*-fit-*.json"))) == N_FITS
        again = _search("grid", log, checkpoint, refit=False).fit(X, y)  # every pair saved: nothing is fitted
    assert _count(log) == N_FITS + len(lost)
    _same_results(again.cv_results_, reference.cv_results_)
    assert again.best_params_ == reference.best_params_


def test_checkpoint_of_another_search_or_unseeded_rows_is_refused(tmp_path, data):
    X, y = data
    log = tmp_path / "fits.log"
    with dask.config.set(scheduler="sync"):
        _search("grid", log, tmp_path / "ckpt", refit=False).fit(X, y)
        before = _count(log)
        # another factor is another search (other rounds); another seed draws other rows
        for options in ({"factor": 2}, {"random_state": 1}, {"aggressive_elimination": True}):
            search = _search("grid", log, tmp_path / "ckpt", refit=False).set_params(**options)
            with pytest.raises(CheckpointError, match=r"belongs to another fit"):
                search.fit(X, y)
        with pytest.raises(CheckpointError, match=r"belongs to another fit"):
            _search("grid", log, tmp_path / "ckpt", refit=False).fit(X[:200], y[:200])
        with pytest.raises(CheckpointError, match=r"belongs to another fit"):  # the grid search's directory
            _search("random", log, tmp_path / "ckpt", refit=False).fit(X, y)
        assert _count(log) == before  # refused before any fit
        # a result file of a candidate that the saved scores did not keep for that round
        (tmp_path / "ckpt" / "round-0-fit-0-0.json").rename(tmp_path / "ckpt" / "round-1-fit-0-0.json")
        with pytest.raises(CheckpointError, match=r"round 1 for candidate\(s\) \[0\].*Delete the directory"):
            _search("grid", log, tmp_path / "ckpt", refit=False).fit(X, y)

    with pytest.raises(ValueError, match=r"HalvingGridSearchCV subsamples the rows of every round at random"):
        _search("grid", log, tmp_path / "other").set_params(random_state=None).fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"HalvingRandomSearchCV samples its candidates and the rows of every round at random",
    ):
        _search("random", log, tmp_path / "other").set_params(random_state=None).fit(X, y)
    assert not (tmp_path / "other").exists()  # refused before anything was written
    # an estimator parameter as the resource draws no rows: a grid search needs no seed
    search = HalvingGridSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"min_samples_leaf": [1, 5, 20]},
        resource="max_leaf_nodes",
        min_resources=2,
        max_resources=6,
        cv=3,
        checkpoint=tmp_path / "param",
    )
    with dask.config.set(scheduler="sync"):
        search.fit(X, y)
    assert search.n_resources_ == [2, 6]
    assert len(list((tmp_path / "param").glob("round-*-fit-*.json"))) == 3 * 3 + 1 * 3


class _Run:
    def __init__(self):
        self.states = []

    def search(self, state):
        self.states.append(state)


def test_round_progress_counts_the_fits_of_the_whole_search():
    run = _Run()
    candidates = [{"max_depth": 5}, {"max_depth": 6}]
    saved = {(1, 0): {"test_scores": {"score": 0.5}}}
    tracker = SearchProgress(
        run, candidates, 2, "score", saved, round_index=1, n_rounds=3, fits_before=12, n_fits=18
    )
    assert run.states[-1] == {
        "n_candidates": 2,
        "n_splits": 2,
        "n_fits": 18,
        "fits_done": 13,
        "candidates_done": 0,
        "candidates_running": 1,
        "best_score": None,
        "best_params": None,
        "best_candidate": None,
        "round": 1,
        "n_rounds": 3,
    }
    tracker(1, 1, {"test_scores": {"score": 0.7}})
    state = run.states[-1]
    assert (state["fits_done"], state["candidates_done"], state["best_params"]) == (14, 1, "max_depth=6")
    assert state["best_score"] == pytest.approx(0.6)

    monitor = TrainingMonitor()
    start = {
        "run": "h",
        "kind": "run-start",
        "run_kind": "search",
        "label": "HalvingGridSearchCV",
        "time": 1.0,
    }
    monitor.log_event(TOPIC, {"v": 1, "messages": [start, {"run": "h", "kind": "search", "state": state}]})
    assert monitor.snapshot("h")["runs"][0]["search"] == state
    summary = _run_summary(monitor.runs["h"])
    assert "round: 2/3" in summary  # counted from 1 on the page
    assert "candidates done: 1/2" in summary
    assert "fits: 14/18" in summary


def test_halving_search_bar_shows_the_rounds(monkeypatch, capsys, data):
    monkeypatch.setattr(progress_module, "is_interactive", lambda stream=None: True)
    X, y = data
    with dask.config.set(scheduler="sync"):
        search = HalvingGridSearchCV(DecisionTreeClassifier(random_state=0), GRID, cv=3, random_state=0).fit(
            X, y
        )
    last = capsys.readouterr().err.rstrip("\n").split("\r")[-1]
    best = f"best {search.best_score_:.6g} (max_depth={search.best_params_['max_depth']!r})"
    assert last.startswith(
        f"HalvingGridSearchCV: [{'#' * 24}] 24/24 fits, round 2/2, candidates 2/2 done, {best}"
    )
    assert last.rstrip().endswith("[finished]")
    # a round's state, drawn at once by close (updates in between are throttled)
    bar = progress_module.SearchBar("HalvingGridSearchCV", 24, stream=io.StringIO())
    bar.update({"n_candidates": 6, "fits_done": 18, "candidates_done": 6, "round": 0, "n_rounds": 2})
    bar.close("interrupted")
    assert (
        bar.stream.getvalue()
        .split("\r")[-1]
        .startswith(f"HalvingGridSearchCV: [{'#' * 18}{'-' * 6}] 18/24 fits, round 1/2, candidates 6/6 done")
    )


@pytest.mark.cluster
def test_halving_on_the_cluster_resumes_dask_data_and_reports_its_rounds(client, tmp_path, data):
    X, y = data
    X, y = da.from_array(X, chunks=75), da.from_array(y, chunks=75)  # rows of each round taken in the blocks
    log, checkpoint = tmp_path / "fits.log", tmp_path / "ckpt"
    options = {"cv": KFold(3), "random_state": 0, "refit": False}
    reference = HalvingGridSearchCV(CountedTree(log=str(log)), GRID, **options).fit(X, y)
    log.unlink()
    log.with_suffix(".limit").write_text("7")
    log.with_suffix(".error").write_text("")  # an error in a task, raised by error_score="raise"
    search = HalvingGridSearchCV(CountedTree(log=str(log)), GRID, checkpoint=checkpoint, error_score="raise")
    search.set_params(**options)
    with pytest.raises(RuntimeError, match="interrupted by the test"):
        search.fit(X, y)
    saved = len(list(checkpoint.glob("round-*-fit-*.json")))
    assert 1 <= saved < N_FITS  # those finished before the error (two workers: up to 8)
    wait_until_idle(client)  # the interrupted search's tasks already on a worker have ended
    log.with_suffix(".limit").unlink()
    before = _count(log)
    resumed = search.fit(X, y)
    assert _count(log) - before == N_FITS - saved
    _same_results(resumed.cv_results_, reference.cv_results_)

    def runs(dask_scheduler):
        return dask_scheduler.plugins[TrainingMonitor.name].snapshot(records=False)["runs"]

    run = [run for run in client.run_on_scheduler(runs) if run["kind"] == "search"][-1]
    assert (run["status"], run["label"], run["info"]["rounds"]) == ("finished", "HalvingGridSearchCV", 2)
    state = run["search"]
    assert (state["round"], state["n_rounds"], state["fits_done"], state["n_fits"]) == (1, 2, N_FITS, N_FITS)
    assert state["candidates_done"] == 2
    assert state["best_score"] == pytest.approx(resumed.best_score_, rel=1e-12)
