"""Plots of a fit: training history, shard report, fusion comparison (matplotlib, the ``plot`` extra).

Each function returns the :class:`matplotlib.figure.Figure` it drew on, and draws on given axes when ``ax`` is
passed. matplotlib is imported only when a function is called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["plot_fusion_comparison", "plot_history", "plot_shard_report"]

_HISTORY_METRICS = ("objective", "grad_norm")
_LOG_SCALE = frozenset({"grad_norm", "step_size"})


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        msg = (
            "The plotting helpers of daskml_lab.monitoring need matplotlib, which is not installed. Install "
            "the plot extra: pip install 'daskml-lab[plot]' (or pip install matplotlib)."
        )
        raise ImportError(msg) from err
    return plt


def _axes_list(ax: Any, n_axes: int, *, width: float = 5.0, height: float = 3.5) -> tuple[Any, list[Any]]:
    """``(figure, [axes] * n_axes)``: new side-by-side axes, or the given ones."""
    plt = _pyplot()
    if ax is None:
        figure, axes = plt.subplots(1, n_axes, figsize=(width * n_axes, height), squeeze=False)
        return figure, list(axes[0])
    axes = list(np.ravel(np.asarray(ax, dtype=object))) if not hasattr(ax, "plot") else [ax]
    if len(axes) != n_axes:
        msg = f"ax must hold {n_axes} axes here (one per panel), got {len(axes)}. Pass ax=None for new axes."
        raise ValueError(msg)
    return axes[0].figure, axes


def _history_frame(model_or_history: Any) -> pd.DataFrame:
    history = getattr(model_or_history, "history_", model_or_history)
    history = getattr(history, "history", history)  # a SolverResult
    if isinstance(history, pd.DataFrame):
        return history
    if isinstance(history, Sequence) and not isinstance(history, str):
        return pd.DataFrame.from_records(list(history))
    msg = (
        "plot_history expects a fitted model with history_, a history DataFrame, a SolverResult or a list of "
        f"records; got {type(model_or_history).__name__}."
    )
    raise TypeError(msg)


def plot_history(model_or_history: Any, *, ax: Any = None, metrics: Sequence[str] | None = None) -> Any:
    """Plot a solver's training history: objective and gradient norm per iteration.

    Parameters
    ----------
    model_or_history : estimator, pandas.DataFrame, SolverResult or list of dict
        A fitted linear model (its ``history_``), a history DataFrame or the records themselves.
    ax : matplotlib Axes or sequence of Axes, default=None
        One axes per metric; new axes side by side when ``None``.
    metrics : sequence of str, default=None
        Columns to plot; ``("objective", "grad_norm")``, plus ``"staleness"`` when present.

    Returns
    -------
    matplotlib.figure.Figure
        The figure: one line per metric per panel (one per class for one-vs-rest fits with a ``class``
        column), gradient norm and step size on a log scale.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If a metric is not a column of the history, or ``ax`` has the wrong number of axes.

    Examples
    --------
    >>> from daskml_lab.monitoring import plot_history
    >>> figure = plot_history([{"iteration": 1, "objective": 2.0, "grad_norm": 0.5},
    ...                        {"iteration": 2, "objective": 1.5, "grad_norm": 0.1}])
    >>> [axes.get_ylabel() for axes in figure.axes]
    ['objective', 'grad_norm']
    """
    frame = _history_frame(model_or_history)
    if metrics is None:
        metrics = [m for m in _HISTORY_METRICS if m in frame.columns]
        if "staleness" in frame.columns:
            metrics.append("staleness")
    missing = [m for m in metrics if m not in frame.columns]
    if missing or not metrics:
        msg = (
            f"The history has no column {missing or list(_HISTORY_METRICS)}; its columns are "
            f"{list(frame.columns)}. Choose metrics among them."
        )
        raise ValueError(msg)
    figure, axes = _axes_list(ax, len(metrics))
    x = "iteration" if "iteration" in frame.columns else None
    groups = list(frame.groupby("class", sort=False)) if "class" in frame.columns else [(None, frame)]
    for metric, axes_ in zip(metrics, axes, strict=True):
        for label, part in groups:
            values = pd.to_numeric(part[metric], errors="coerce").to_numpy(dtype=np.float64)
            xs = part[x].to_numpy() if x else np.arange(1, len(part) + 1)
            kwargs = {"label": f"class {label}"} if label is not None else {}
            axes_.plot(xs, values, marker="." if len(xs) <= 50 else None, **kwargs)
        axes_.set_xlabel("iteration")
        axes_.set_ylabel(metric)
        if metric in _LOG_SCALE and np.nanmin(pd.to_numeric(frame[metric], errors="coerce")) > 0:
            axes_.set_yscale("log")
        if len(groups) > 1:
            axes_.legend()
        axes_.grid(True, alpha=0.3)
    figure.tight_layout()
    return figure


def _report_frame(model_or_report: Any) -> pd.DataFrame:
    report = getattr(model_or_report, "shard_report_", model_or_report)
    if hasattr(report, "to_frame") and not isinstance(report, pd.DataFrame | pd.Series):
        report = report.to_frame()
    if isinstance(report, pd.DataFrame):
        return report
    msg = (
        "plot_shard_report expects a fitted shard ensemble, its shard_report_ or the report's DataFrame; "
        f"got {type(model_or_report).__name__}."
    )
    raise TypeError(msg)


_REPORT_COLUMNS = frozenset(
    {"n_rows", "n_train", "n_held_out", "model", "member", "validation_score", "weight"}
)


def plot_shard_report(model_or_report: Any, *, ax: Any = None) -> Any:
    """Plot a shard ensemble's report: rows per shard (by class) and each shard model's score and weight.

    Parameters
    ----------
    model_or_report : shard ensemble, ShardReport or pandas.DataFrame
        A fitted :class:`~daskml_lab.ensemble.ShardEnsembleClassifier`/``Regressor`` or its
        ``shard_report_``.
    ax : sequence of two matplotlib Axes, default=None
        Axes for the rows and for the scores; new ones side by side when ``None``.

    Returns
    -------
    matplotlib.figure.Figure
        Left: stacked bars of the rows of each class per shard (classifiers) or the rows per shard. Right:
        each shard model's validation score (bars) and its fusion weight (line, right axis).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    """
    frame = _report_frame(model_or_report)
    figure, (rows_axes, score_axes) = _axes_list(ax, 2)
    shards = frame.index.to_numpy()
    class_columns = [c for c in frame.columns if c not in _REPORT_COLUMNS]
    if class_columns:
        bottom = np.zeros(len(frame))
        for column in class_columns:
            counts = pd.to_numeric(frame[column], errors="coerce").fillna(0).to_numpy(dtype=np.float64)
            rows_axes.bar(shards, counts, bottom=bottom, label=str(column))
            bottom += counts
        if len(class_columns) <= 12:
            rows_axes.legend(title="class", fontsize="small")
    else:
        rows_axes.bar(shards, pd.to_numeric(frame["n_rows"], errors="coerce").fillna(0), label="rows")
    rows_axes.set_xlabel("shard")
    rows_axes.set_ylabel("rows")
    rows_axes.set_title("Rows per shard")
    scores = pd.to_numeric(frame.get("validation_score"), errors="coerce")
    score_axes.bar(
        shards, scores.fillna(0).to_numpy(dtype=np.float64), color="#3070b0", label="validation score"
    )
    score_axes.set_xlabel("shard")
    score_axes.set_ylabel("validation score")
    score_axes.set_title("Shard models")
    if "weight" in frame.columns:
        weight_axes = score_axes.twinx()
        weight_axes.plot(
            shards,
            pd.to_numeric(frame["weight"], errors="coerce"),
            color="#d07020",
            marker="o",
            label="fusion weight",
        )
        weight_axes.set_ylabel("fusion weight")
    figure.tight_layout()
    return figure


def plot_fusion_comparison(
    results: Any, *, ax: Any = None, member_scores: Any = None, metric: str = "score"
) -> Any:
    """Compare fusion strategies: one bar per strategy, with the single shard models' scores for reference.

    Parameters
    ----------
    results : mapping or pandas.DataFrame or pandas.Series
        ``{strategy name: score}``, ``{name: [scores, ...]}`` (bar at the mean, error bar at the standard
        deviation), a Series indexed by name, or a DataFrame with a ``fusion`` column (or index) and a
        ``metric`` column.
    ax : matplotlib Axes, default=None
        Where to draw; new axes when ``None``.
    member_scores : array-like, ShardReport or fitted shard ensemble, default=None
        Scores of the individual shard models (for a ensemble or report: the ``validation_score`` column);
        their mean and range are drawn as a band.
    metric : str, default="score"
        Name of the score (axis label, and the column of a DataFrame).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If ``results`` is empty or has no ``metric`` column.

    Examples
    --------
    >>> from daskml_lab.monitoring import plot_fusion_comparison
    >>> figure = plot_fusion_comparison({"soft-voting": 0.91, "stacking": 0.93})
    >>> [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    ['soft-voting', 'stacking']
    """
    names, means, spreads = _comparison_values(results, metric)
    figure, (axes,) = _axes_list(ax, 1, width=max(5.0, 1.1 * len(names) + 2))
    positions = np.arange(len(names))
    bars = axes.bar(
        positions,
        means,
        yerr=spreads if np.any(spreads > 0) else None,
        capsize=4,
        color="#3070b0",
        label="fused model",
    )
    axes.bar_label(bars, fmt="%.4g", fontsize="small")
    axes.set_xticks(positions, names, rotation=20 if len(names) > 4 else 0)
    axes.set_ylabel(metric)
    axes.set_title("Fusion strategies")
    if member_scores is not None:
        members = _member_scores(member_scores)
        if members.size:
            axes.axhspan(
                members.min(), members.max(), color="#d07020", alpha=0.15, label="shard models (range)"
            )
            axes.axhline(members.mean(), color="#d07020", linestyle="--", label="shard models (mean)")
            axes.legend(fontsize="small", loc="lower right")
    finite = means[np.isfinite(means)]
    if finite.size:
        low = min(finite.min(), _member_scores(member_scores).min() if member_scores is not None else np.inf)
        high = finite.max()
        margin = max((high - low) * 0.5, 1e-3)
        axes.set_ylim(max(low - margin, 0.0) if low >= 0 else low - margin, high + margin)
    figure.tight_layout()
    return figure


def _comparison_values(results: Any, metric: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    if isinstance(results, pd.DataFrame):
        frame = results.set_index("fusion") if "fusion" in results.columns else results
        if metric not in frame.columns:
            msg = f"results has no column {metric!r}; its columns are {list(frame.columns)}. Pass metric=..."
            raise ValueError(msg)
        grouped = frame[metric].groupby(level=0, sort=False)
        names = [str(name) for name in grouped.groups]
        means = grouped.mean().to_numpy(dtype=np.float64)
        spreads = grouped.std(ddof=0).fillna(0).to_numpy(dtype=np.float64)
        return names, means, spreads
    if isinstance(results, pd.Series):
        results = results.to_dict()
    if not isinstance(results, Mapping) or not results:
        msg = (
            "results must be a non-empty mapping {fusion name: score or list of scores}, a Series or a "
            f"DataFrame; got {type(results).__name__} {results!r:.80}."
        )
        raise ValueError(msg)
    names, means, spreads = [], [], []
    for name, value in results.items():
        values = np.atleast_1d(np.asarray(value, dtype=np.float64))
        names.append(str(name))
        means.append(float(values.mean()))
        spreads.append(float(values.std()) if values.size > 1 else 0.0)
    return names, np.asarray(means), np.asarray(spreads)


def _member_scores(member_scores: Any) -> np.ndarray:
    report = getattr(member_scores, "shard_report_", member_scores)
    if hasattr(report, "to_frame") and not isinstance(report, pd.DataFrame | pd.Series):
        report = report.to_frame()
    if isinstance(report, pd.DataFrame):
        report = report["validation_score"]
    values = np.asarray(report, dtype=np.float64).ravel()
    return values[np.isfinite(values)]
