"""The reports of the ensembles: the shard report (a DataFrame, an HTML table in notebooks) and the cascade's."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from daskml_lab.ensemble._cascade_nodes import KIND_SKIPPED
from daskml_lab.persistence import register_trusted_type

__all__ = ["ShardReport", "build_cascade_report", "build_report"]


@register_trusted_type  # a fitted ensemble holds one: load() creates it without trusted=
class ShardReport:
    """What each shard contributed to a fitted shard ensemble.

    One row per shard (index ``shard``), empty shards included, with the columns

    - ``n_rows``, ``n_train``, ``n_held_out``: rows of the shard, rows its model was trained on, rows held out
      for validation and stacking;
    - ``model``: the class of the shard model, ``"constant"`` for a shard whose training rows held a single
      class (a :class:`~sklearn.dummy.DummyClassifier` predicting it), ``"empty"`` for a shard without rows;
    - ``member``: the position of the shard model in ``estimators_`` (``-1`` for empty shards);
    - ``validation_score``: the model's accuracy (classifiers) or R² (regressors) on the held-out rows of all
      shards, which no model trained on, or the score of the fusion's own scorer
      (:class:`~daskml_lab.fusion.BestModel` with ``scoring``; ``NaN`` without held-out rows);
    - ``weight``: the model's share of the fused prediction (``fusion_.weights_``; 0 for empty shards,
      ``NaN`` for stacking, whose final estimator combines the models);
    - ``worker``: the address of the dask worker that fitted the shard (only when ``fit`` ran on a
      distributed cluster);
    - for classifiers, one column per class (named by the label) with the number of rows of that class.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.
    title : str, default=""
        One-line summary shown above the HTML table.

    Examples
    --------
    >>> import pandas as pd
    >>> report = ShardReport(pd.DataFrame({"n_rows": [3, 0]}), title="2 shards")
    >>> report.to_frame()["n_rows"].tolist()
    [3, 0]
    >>> "<table" in report._repr_html_()
    True
    """

    def __init__(self, frame: pd.DataFrame, title: str = "") -> None:
        self._frame = frame
        self.title = title

    def to_frame(self) -> pd.DataFrame:
        """A copy of the report as a DataFrame.

        Returns
        -------
        pandas.DataFrame
        """
        return self._frame.copy()

    @property
    def frame(self) -> pd.DataFrame:
        """The report as a DataFrame (a copy)."""
        return self.to_frame()

    def __len__(self) -> int:
        return len(self._frame)

    def __repr__(self) -> str:
        header = f"{self.title}\n" if self.title else ""
        return header + self._frame.to_string()

    def _repr_html_(self) -> str:
        caption = f"<p><strong>{html.escape(self.title)}</strong></p>" if self.title else ""
        table = self._frame.to_html(float_format=lambda v: f"{v:.4g}", na_rep="-", border=0)
        return f"<div class='daskml-shard-report'>{caption}{table}</div>"


def build_report(
    summaries: list[dict[str, Any]],
    *,
    classes: np.ndarray | None,
    scores: np.ndarray,
    weights: np.ndarray,
    title: str,
) -> ShardReport:
    """Assemble the report from the per-shard summaries and the per-member scores and weights."""
    rows = []
    member = 0
    with_workers = any(s.get("worker") is not None for s in summaries)
    for summary in summaries:
        has_model = summary["model"] is not None
        row: dict[str, Any] = {
            "n_rows": _count(summary["n_rows"]),
            "n_train": _count(summary.get("n_train")),
            "n_held_out": _count(summary.get("n_held_out")),
            "model": _model_name(summary),
            "member": member if has_model else -1,
            "validation_score": float(scores[member]) if has_model else np.nan,
            "weight": float(weights[member]) if has_model else 0.0,
        }
        if with_workers:
            row["worker"] = summary.get("worker")
        if classes is not None:
            counts = dict.fromkeys(classes.tolist(), 0)
            if summary.get("labels") is not None:
                for label, count in zip(summary["labels"].tolist(), summary["counts"].tolist(), strict=True):
                    counts[label] = int(count)
            row.update(counts)
        rows.append(row)
        member += int(has_model)
    frame = pd.DataFrame(rows, index=pd.RangeIndex(len(rows), name="shard"))
    return ShardReport(frame, title=title)


def _model_name(summary: dict[str, Any]) -> str:
    if summary["model"] is None:
        return "empty"
    if summary.get("kind") == "constant":
        return "constant"
    return type(summary["model"]).__name__


def _count(value: Any) -> float | int:
    return np.nan if value is None else int(value)


def build_cascade_report(stats: Sequence[dict[str, Any]], sv_changes: Sequence[int | None]) -> pd.DataFrame:
    """The cascade report (``CascadeSVC.cascade_report_``): one row per node that ran, by pass, layer and node.

    Parameters
    ----------
    stats : list of dict
        The statistics of every node (``kind`` ``"skipped"`` for the nodes of passes that did not run).
    sv_changes : list of int or None
        Per pass, the rows that entered or left the support vectors (set on the root of the pass).

    Returns
    -------
    pandas.DataFrame
    """
    columns = [
        "pass",
        "layer",
        "node",
        "kind",
        "n_train",
        "n_violators",
        "n_classes",
        "n_sv",
        "n_bounded_sv",
        "dual_objective",
        "fit_time_s",
        "worker",
    ]
    rows = [s for s in stats if s["kind"] != KIND_SKIPPED]
    frame = pd.DataFrame(rows, columns=columns).sort_values(["pass", "layer", "node"], ignore_index=True)
    changes = np.full(len(frame), np.nan)
    for pass_index, value in enumerate(sv_changes):
        if value is None:
            continue
        in_pass = np.flatnonzero(frame["pass"].to_numpy() == pass_index)
        if in_pass.size:
            changes[in_pass[np.argmax(frame["layer"].to_numpy()[in_pass])]] = value
    frame["sv_changes"] = changes
    return frame
