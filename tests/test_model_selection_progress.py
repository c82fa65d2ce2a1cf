"""Search progress: fits and candidates done/running and the best score so far, on the training page and in a
progress bar."""

from __future__ import annotations

import dask
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from daskml_lab.model_selection import GridSearchCV
from daskml_lab.model_selection._search_progress import SearchProgress
from daskml_lab.monitoring import TOPIC, TrainingMonitor, progress
from daskml_lab.monitoring import _progress as progress_module
from daskml_lab.monitoring._page import _run_summary

GRID = {"C": [0.01, 0.1, 1.0]}


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=200, random_state=0)


@pytest.fixture
def interactive(monkeypatch):
    """Pretend standard error is a terminal."""
    monkeypatch.setattr(progress_module, "is_interactive", lambda stream=None: True)


class _Run:
    def __init__(self):
        self.states = []

    def search(self, state):
        self.states.append(state)


def _result(score):
    return {"test_scores": {"score": score}}


def test_progress_counts_candidates_and_keeps_the_best_mean_of_finished_candidates():
    run = _Run()
    candidates = [{"C": 0.1}, {"C": 1.0}, {"C": 10.0}]
    tracker = SearchProgress(run, candidates, 2, "score", finished={(2, 0): _result(0.9)})
    assert run.states[-1] == {
        "n_candidates": 3,
        "n_splits": 2,
        "n_fits": 6,
        "fits_done": 1,
        "candidates_done": 0,
        "candidates_running": 1,
        "best_score": None,
        "best_params": None,
        "best_candidate": None,
    }
    tracker(0, 0, _result(0.8))
    tracker(0, 1, _result(0.6))  # candidate 0 done: mean 0.7
    assert run.states[-1]["best_score"] == pytest.approx(0.7)
    assert run.states[-1]["best_params"] == "C=0.1"
    tracker(1, 0, _result(np.nan))
    tracker(1, 1, _result(1.0))  # a NaN mean never wins
    tracker(2, 1, _result(0.5))  # candidate 2: mean 0.7, equal to candidate 0: the first wins
    state = run.states[-1]
    assert (state["fits_done"], state["candidates_done"], state["candidates_running"]) == (6, 3, 0)
    assert state["best_candidate"] == 0


def test_search_bar_when_interactive(interactive, capsys, data):
    X, y = data
    with dask.config.set(scheduler="sync"):
        search = GridSearchCV(LogisticRegression(), GRID, cv=3).fit(X, y)
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\r")[-1]
    best = f"best {search.best_score_:.6g} (C={search.best_params_['C']!r})"
    assert last.startswith(f"GridSearchCV: [{'#' * 24}] 9/9 fits, candidates 3/3 done, {best}")
    assert last.rstrip().endswith("[finished]")
    with progress(verbose=False), dask.config.set(scheduler="sync"):
        GridSearchCV(LogisticRegression(), GRID, cv=3).fit(X, y)
    assert capsys.readouterr().err == ""


def test_monitor_keeps_the_search_state_and_the_page_summarises_it():
    monitor = TrainingMonitor()
    start = {"run": "s", "kind": "run-start", "run_kind": "search", "label": "GridSearchCV", "time": 1.0}
    state = {
        "n_candidates": 4,
        "n_fits": 12,
        "fits_done": 7,
        "candidates_done": 2,
        "candidates_running": 1,
        "best_score": 0.875,
        "best_params": "C=<b>1</b>",
        "junk": "dropped",
    }
    monitor.log_event(TOPIC, {"v": 1, "messages": [start, {"run": "s", "kind": "search", "state": state}]})
    run = monitor.snapshot("s")["runs"][0]
    assert run["kind"] == "search"
    assert run["search"] == {k: v for k, v in state.items() if k != "junk"}
    summary = _run_summary(monitor.runs["s"])
    assert "candidates done: 2/4" in summary
    assert "running: 1" in summary
    assert "fits: 7/12" in summary
    assert "best score so far: 0.875 (C=&lt;b&gt;1&lt;/b&gt;)" in summary  # escaped: events are untrusted


@pytest.mark.cluster
def test_search_on_the_cluster_reports_to_the_training_page(client, data):
    X, y = data
    search = GridSearchCV(LogisticRegression(), GRID, cv=3).fit(X, y)

    def runs(dask_scheduler):
        return dask_scheduler.plugins[TrainingMonitor.name].snapshot(records=False)["runs"]

    searches = [run for run in client.run_on_scheduler(runs) if run["kind"] == "search"]
    assert searches, "no search run on the page"
    run = searches[-1]
    assert run["status"] == "finished"
    assert run["label"] == "GridSearchCV"
    assert run["info"]["candidates"] == 3
    state = run["search"]
    assert (state["fits_done"], state["n_fits"], state["candidates_done"]) == (9, 9, 3)
    assert state["best_score"] == pytest.approx(search.best_score_, rel=1e-12)
    assert state["best_params"] == f"C={search.best_params_['C']!r}"
