"""Progress bars (silent unless someone watches, off with verbose=False) and the HTML performance report."""

from __future__ import annotations

import io

import dask.array as da
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.monitoring import _progress as progress_module
from daskml_lab.monitoring import compute_with_progress, fit_report, is_interactive, progress
from daskml_lab.monitoring._progress import IterationBar, ShardBar, progress_enabled


def _data(n_samples: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, 4))
    return X, (X[:, 0] + 0.3 * rng.normal(size=n_samples) > 0).astype(np.int64)


@pytest.fixture
def interactive(monkeypatch):
    """Pretend standard error is a terminal."""
    monkeypatch.setattr(progress_module, "is_interactive", lambda stream=None: True)


def test_not_interactive_means_silent(capfd):
    assert not is_interactive(io.StringIO())
    assert not progress_enabled()
    X, y = _data()
    LogisticRegression().fit(X, y)
    ShardEnsembleClassifier(SkLogisticRegression(), n_shards=2).fit(X, y)
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_solver_bar_when_interactive(interactive, capsys):
    X, y = _data()
    model = LogisticRegression().fit(X, y)
    err = capsys.readouterr().err
    assert "LogisticRegression / lbfgs: iteration 1" in err
    last = err.rstrip("\n").split("\r")[-1]
    assert last.startswith(f"LogisticRegression / lbfgs: iteration {model.n_iter_}  objective ")
    assert last.rstrip().endswith("[finished]")
    assert err.endswith("\n")


def test_verbose_false_silences_even_when_interactive(interactive, capsys):
    X, y = _data()
    with progress(verbose=False):
        assert not progress_enabled()
        LogisticRegression().fit(X, y)
    assert capsys.readouterr().err == ""
    with progress(verbose=True):
        assert progress_enabled()


def test_iteration_bar_throttles_and_keeps_the_last_record():
    stream = io.StringIO()
    bar = IterationBar("Model", stream=stream)
    for iteration in range(1, 101):
        bar.update({"iteration": iteration, "objective": 1.0 / iteration, "grad_norm": 0.5, "staleness": 2})
    bar.close("finished")
    lines = stream.getvalue().split("\r")
    assert len(lines) < 20  # drawn at most every 0.1 s, not 100 times
    assert lines[-1].startswith(
        "Model: iteration 100  objective 0.01  grad_norm 0.5  staleness 2  [finished]"
    )


def test_shard_bar():
    stream = io.StringIO()
    bar = ShardBar("Ensemble", 4, stream=stream)
    bar.update(0, "started")
    bar.update(0, "finished")
    bar.update(1, "failed")
    bar.update(2, "started")
    bar.close("failed")
    last = stream.getvalue().split("\r")[-1]
    assert last == "Ensemble: [######------------------] 1/4 shards fitted, 1 running, 1 failed  [failed]\n"


def test_compute_with_progress_local(interactive, capsys):
    x = da.arange(10, chunks=5)
    assert compute_with_progress(x.sum(), x.max(), verbose=False) == (45, 9)
    assert capsys.readouterr().err == ""
    assert compute_with_progress(x.sum()) == (45,)
    assert "100% Completed" in capsys.readouterr().err


@pytest.mark.cluster
def test_compute_with_progress_distributed(client, interactive, capsys):
    x = da.arange(10, chunks=5)
    assert compute_with_progress(x.sum(), (x * 2).max()) == (45, 18)
    assert "100% Completed" in capsys.readouterr().out


@pytest.mark.cluster
def test_ensemble_bar_on_a_cluster(client, interactive, capsys):
    X, y = _data(800)
    X_dask, y_dask = da.from_array(X, chunks=200), da.from_array(y, chunks=200)
    ShardEnsembleClassifier(SkLogisticRegression(), random_state=0).fit(X_dask, y_dask)
    err = capsys.readouterr().err
    assert "ShardEnsembleClassifier: [" in err
    assert "/4 shards fitted" in err
    assert err.rstrip("\n").endswith("[finished]")


@pytest.mark.cluster
def test_fit_report_writes_dask_performance_report(client, tmp_path):
    X, y = _data(800)
    X_dask, y_dask = da.from_array(X, chunks=200), da.from_array(y, chunks=200)
    path = tmp_path / "fit.html"
    with fit_report(path) as written:
        ShardEnsembleClassifier(SkLogisticRegression(), random_state=0).fit(X_dask, y_dask)
    assert written == str(path)
    html = path.read_text()
    assert "<html" in html.lower()
    assert "daskml-shard-fit" in html


def test_fit_report_needs_a_client(tmp_path):
    with (
        pytest.raises(ValueError, match="fit_report needs a distributed client"),
        fit_report(tmp_path / "r.html"),
    ):
        pass
