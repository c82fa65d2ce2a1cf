"""The readable part of a model file: parameters and a training summary, as JSON-safe values."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from daskml_lab.persistence._trusted import type_name

__all__ = ["describe_params", "json_safe", "plain", "training_summary"]

logger = logging.getLogger(__name__)


def training_summary(model: Any) -> dict[str, Any]:
    """A small JSON-safe summary of what a fitted estimator learned (empty fields are left out).

    Parameters
    ----------
    model : estimator instance
        Any estimator.

    Returns
    -------
    dict
        ``estimator`` (class name), ``fitted``, and when available ``n_features_in``, ``feature_names_in``,
        ``classes``, ``n_iter``, ``n_estimators``, ``fusion``, ``n_shards``, a ``history`` summary
        (``n_records``, ``final_objective``, ``solver_time_s``) and a ``shards`` summary of the shard report
        (``n_shards``, ``n_rows``, ``n_train``, ``n_held_out``, ``models``, ``mean_validation_score``,
        ``fit_time_s``).

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import Ridge
    >>> model = Ridge().fit(np.array([[0.0], [1.0], [2.0]]), np.array([0.0, 1.0, 2.0]))
    >>> summary = training_summary(model)
    >>> summary["estimator"], summary["n_features_in"], summary["fitted"]
    ('Ridge', 1, True)
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    summary: dict[str, Any] = {"estimator": type(model).__name__}
    try:
        check_is_fitted(model)
        summary["fitted"] = True
    except (NotFittedError, TypeError):
        summary["fitted"] = False
    for attribute, key in (
        ("n_features_in_", "n_features_in"),
        ("feature_names_in_", "feature_names_in"),
        ("classes_", "classes"),
        ("n_iter_", "n_iter"),
        ("n_shards_", "n_shards"),
    ):
        value = getattr(model, attribute, None)
        if value is not None:
            summary[key] = json_safe(value)
    estimators = getattr(model, "estimators_", None)
    if isinstance(estimators, list):
        summary["n_estimators"] = len(estimators)
    fusion = getattr(model, "fusion_", None)
    if fusion is not None:
        summary["fusion"] = type(fusion).__name__
    history = getattr(model, "history_", None)
    if isinstance(history, pd.DataFrame):
        record: dict[str, Any] = {"n_records": len(history)}
        if len(history) and "objective" in history:
            record["final_objective"] = json_safe(history["objective"].iloc[-1])
        if len(history) and "time_s" in history:
            record["solver_time_s"] = json_safe(history["time_s"].max())
        summary["history"] = record
    report = getattr(model, "shard_report_", None)
    if report is not None and callable(getattr(report, "to_frame", None)):
        summary["shards"] = _shard_summary(report.to_frame())
    return summary


def describe_params(model: Any) -> dict[str, Any]:
    """``get_params(deep=False)`` as JSON-safe values (empty if it fails)."""
    try:
        params = model.get_params(deep=False)
    except Exception as err:  # an estimator may break get_params; the payload is still complete
        logger.warning("get_params() of %s failed (%s); parameters not recorded", type(model).__name__, err)
        return {}
    return {str(key): json_safe(value) for key, value in params.items()}


def _shard_summary(frame: pd.DataFrame) -> dict[str, Any]:
    summary: dict[str, Any] = {"n_shards": len(frame)}
    for column in ("n_rows", "n_train", "n_held_out", "fit_time_s"):
        if column in frame:
            total = pd.to_numeric(frame[column], errors="coerce").sum(min_count=1)
            summary[column] = json_safe(total)
    if "model" in frame:
        summary["models"] = {str(k): int(v) for k, v in frame["model"].value_counts(sort=False).items()}
    if "validation_score" in frame:
        scores = pd.to_numeric(frame["validation_score"], errors="coerce")
        summary["mean_validation_score"] = json_safe(scores.mean()) if scores.notna().any() else None
    return summary


def json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-serialisable description of ``value`` (estimators by class and parameters, arrays as lists)."""
    if depth > 20:
        return repr(value)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int | str | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [json_safe(v, depth + 1) for v in value.tolist()] if value.size <= 10_000 else repr(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, pd.DataFrame | pd.Series | pd.Index):
        return repr(value)
    if callable(getattr(value, "get_params", None)) and not isinstance(value, type):
        try:
            params = value.get_params(deep=False)
        except Exception:  # a description only
            params = {}
        return {"class": type_name(type(value)), "params": json_safe(params, depth + 1)}
    if isinstance(value, type):
        return type_name(value)
    return repr(value)


def plain(value: Any) -> Any:
    """``value`` with numpy arrays and scalars as lists and Python scalars (anything else is kept)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
