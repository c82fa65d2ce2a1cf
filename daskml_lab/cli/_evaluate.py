"""``daskml-lab evaluate``: metrics of a saved model on labelled data, from blockwise sufficient statistics.

The scores come from :mod:`daskml_lab.metrics`: predictions never reach the client, each row block yields a few
numbers that are merged into the scores, in one computation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np

from daskml_lab.cli._data import cluster, data_format, local_path, print_dashboard, read_for_model
from daskml_lab.cli._predict import load_model
from daskml_lab.data.formats import get_format
from daskml_lab.metrics import classification_scores, regression_scores

__all__ = ["classification_metrics", "regression_metrics", "run_evaluate"]


def run_evaluate(settings: Mapping[str, Any], *, verbose: bool) -> None:
    """Print the metrics of MODEL on DATA (see ``daskml-lab evaluate --help``).

    Parameters
    ----------
    settings : dict
        The merged options of ``evaluate``.
    verbose : bool
        Show the cluster's logs.

    Raises
    ------
    ValueError
        For a corrupt model file, a missing target, or labels the model has never seen.
    """
    from sklearn.base import is_classifier

    path = local_path(settings["data"])
    model, info = load_model(settings)
    trained_on = (info.get("metadata") or {}).get("data") or {}
    fmt = data_format(path, settings["input_format"], trained_on=trained_on.get("format"))
    target = settings["target"] or trained_on.get("target")
    labels_in_file = get_format(fmt).labels_in_file
    if target is None and not labels_in_file:
        msg = "missing --target: the model file does not say which column holds the target; name it."
        raise ValueError(msg)
    with cluster(settings, verbose=verbose) as client:
        if not settings["json"]:
            print_dashboard(client, settings)
        if model is None:  # partitioned coefficients: into parameter shards on this cluster
            model, info = load_model(settings)
        X, y, _ = read_for_model(
            path,
            trained_on,
            fmt=fmt,
            target=None if labels_in_file else target,
            read_options=settings["read_options"],
            n_features=getattr(model, "n_features_in_", None),
        )
        metrics = (
            classification_metrics(model, X, y) if is_classifier(model) else regression_metrics(model, X, y)
        )
    result = {"model": type(model).__name__, "n_samples": int(X.shape[0]), "metrics": metrics}
    if settings["json"]:
        print(json.dumps(result, indent=2))
        return
    width = max(len(name) for name in metrics)
    print(f"Evaluation of {type(model).__name__} on {int(X.shape[0]):,} rows of {settings['data']}")
    print(f"  {'metric':<{width}}  value")
    for name, value in metrics.items():
        print(f"  {name:<{width}}  {value:.6g}")


def classification_metrics(model: Any, X: da.Array, y: da.Array) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1 and (with ``predict_proba``) log loss, in one computation.

    Parameters
    ----------
    model : fitted classifier
        With ``classes_``.
    X : dask.array.Array of shape (n_samples, n_features)
        Rows.
    y : dask.array.Array of shape (n_samples,)
        True labels, among ``model.classes_``.

    Returns
    -------
    dict
        As :func:`daskml_lab.metrics.classification_scores` with ``labels=model.classes_``.

    Raises
    ------
    ValueError
        When computed, if ``y`` holds a label the model was not trained on.
    """
    classes = np.asarray(model.classes_)
    if classes.dtype.kind in "iu" and y.dtype.kind == "f":
        y = y.astype(classes.dtype)  # whole-number labels read as floats (a CSV column with assume_missing)
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    return classification_scores(y, model.predict(X), y_proba=proba, labels=classes)


def regression_metrics(model: Any, X: da.Array, y: da.Array) -> dict[str, float]:
    """R², mean absolute error and root mean squared error, in one computation.

    Parameters
    ----------
    model : fitted regressor
        Any estimator with ``predict``.
    X : dask.array.Array of shape (n_samples, n_features)
        Rows.
    y : dask.array.Array of shape (n_samples,)
        True targets.

    Returns
    -------
    dict
        ``r2``, ``mae`` and ``rmse`` of :func:`daskml_lab.metrics.regression_scores`.
    """
    scores = regression_scores(y, model.predict(X))
    return {name: scores[name] for name in ("r2", "mae", "rmse")}
