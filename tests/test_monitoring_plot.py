"""Plot helpers: figures with the expected lines and bars (Agg backend), clear errors."""

from __future__ import annotations

import sys

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

mpl.use("Agg")

import matplotlib.pyplot as plt

from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.monitoring import plot_fusion_comparison, plot_history, plot_shard_report


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _data(n_samples: int = 300, n_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, 4))
    y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=n_samples), np.linspace(-1, 1, n_classes - 1))
    return X, y


def test_plot_history_of_a_model():
    X, y = _data()
    model = LogisticRegression(tol=1e-8).fit(X, y)
    figure = plot_history(model)
    objective_axes, grad_axes = figure.axes
    assert objective_axes.get_ylabel() == "objective"
    assert grad_axes.get_ylabel() == "grad_norm"
    assert grad_axes.get_yscale() == "log"
    (line,) = objective_axes.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), model.history_["iteration"])
    np.testing.assert_array_equal(line.get_ydata(), model.history_["objective"])
    np.testing.assert_array_equal(grad_axes.get_lines()[0].get_ydata(), model.history_["grad_norm"])


def test_plot_history_per_class_and_staleness_on_given_axes():
    history = pd.DataFrame(
        {
            "class": [0, 0, 1, 1],
            "iteration": [1, 2, 1, 2],
            "objective": [3.0, 2.0, 5.0, 4.0],
            "grad_norm": [1.0, 0.1, 2.0, 0.2],
            "staleness": [0, 1, 0, 2],
        }
    )
    figure, axes = plt.subplots(1, 3)
    assert plot_history(history, ax=axes) is figure
    assert [a.get_ylabel() for a in axes] == ["objective", "grad_norm", "staleness"]
    lines = axes[0].get_lines()
    assert [list(line.get_ydata()) for line in lines] == [[3.0, 2.0], [5.0, 4.0]]
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["class 0", "class 1"]


def test_plot_history_errors():
    records = [{"iteration": 1, "objective": 1.0}]
    with pytest.raises(ValueError, match=r"no column \['grad_norm'\]"):
        plot_history(records, metrics=["objective", "grad_norm"])
    with pytest.raises(ValueError, match="ax must hold 1 axes here"):
        plot_history(records, ax=list(plt.subplots(1, 2)[1]))
    with pytest.raises(TypeError, match="plot_history expects a fitted model with history_"):
        plot_history(42)


def test_plot_shard_report():
    X, y = _data(600, n_classes=3)
    model = ShardEnsembleClassifier(
        SkLogisticRegression(), n_shards=3, validation_fraction=0.2, random_state=0
    ).fit(X, y)
    report = model.shard_report_.to_frame()
    figure = plot_shard_report(model)
    rows_axes, score_axes, weight_axes = figure.axes
    # Stacked bars: one bar per shard and class; their heights add up to the shard's rows.
    heights = np.array([patch.get_height() for patch in rows_axes.patches]).reshape(3, 3)
    np.testing.assert_array_equal(heights.sum(axis=0), report["n_rows"])
    np.testing.assert_allclose([p.get_height() for p in score_axes.patches], report["validation_score"])
    np.testing.assert_allclose(weight_axes.get_lines()[0].get_ydata(), report["weight"])
    assert plot_shard_report(model.shard_report_).axes[0].get_title() == "Rows per shard"


def test_plot_fusion_comparison():
    figure = plot_fusion_comparison(
        {"soft-voting": 0.9, "stacking": [0.92, 0.94]}, member_scores=[0.8, 0.85, 0.82], metric="accuracy"
    )
    (axes,) = figure.axes
    assert [p.get_height() for p in axes.patches[:2]] == pytest.approx([0.9, 0.93])
    assert [t.get_text() for t in axes.get_xticklabels()] == ["soft-voting", "stacking"]
    assert axes.get_ylabel() == "accuracy"
    (mean_line,) = [line for line in axes.get_lines() if line.get_linestyle() == "--"]
    assert mean_line.get_ydata()[0] == pytest.approx(np.mean([0.8, 0.85, 0.82]))
    frame = pd.DataFrame({"fusion": ["a", "a", "b"], "score": [0.5, 0.7, 0.9]})
    bars = [p.get_height() for p in plot_fusion_comparison(frame).axes[0].patches]
    assert bars == pytest.approx([0.6, 0.9])
    with pytest.raises(ValueError, match="results must be a non-empty mapping"):
        plot_fusion_comparison({})
    with pytest.raises(ValueError, match="results has no column 'accuracy'"):
        plot_fusion_comparison(frame, metric="accuracy")


def test_missing_matplotlib_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'daskml-lab\[plot\]'"):
        plot_history([{"iteration": 1, "objective": 1.0}])
