"""``daskml-lab evaluate``: metrics of a saved model on labelled data, from blockwise sufficient statistics.

Predictions never reach the client: each row block yields a few numbers (a confusion matrix and a log-loss
sum for classifiers; counts, mean, squared deviations and error sums for regressors), which are summed and
turned into the metrics.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize

from daskml_lab._compat import unique_fused_keys
from daskml_lab.cli._data import cluster, data_format, local_path, read_for_model
from daskml_lab.cli._predict import load_model
from daskml_lab.data.formats import get_format

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
    fmt = data_format(path, settings["data_format"])
    model, info = load_model(settings["model"], settings["trust"])
    trained_on = (info.get("metadata") or {}).get("data") or {}
    target = settings["target"] or trained_on.get("target")
    labels_in_file = get_format(fmt).labels_in_file
    if target is None and not labels_in_file:
        msg = "missing --target: the model file does not say which column holds the target; name it."
        raise ValueError(msg)
    with cluster(settings, verbose=verbose) as client:
        if not settings["json"]:
            print(f"Dask dashboard: {client.dashboard_link}")
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
        ``accuracy``, ``balanced_accuracy`` (mean recall over the classes present in ``y``), ``f1_macro``
        (over the classes present in ``y`` or predicted) and ``log_loss`` (probabilities clipped to
        ``[eps, 1 - eps]``, as scikit-learn does), each as :mod:`sklearn.metrics` defines it.

    Raises
    ------
    ValueError
        When computed, if ``y`` holds a label the model was not trained on.
    """
    from daskml_lab.base import encode_labels

    classes = np.asarray(model.classes_)
    n_classes = len(classes)
    true = encode_labels(y, classes)
    predicted = encode_labels(model.predict(X), classes)
    confusion = da.map_blocks(
        _confusion_block,
        true,
        predicted,
        n_classes=n_classes,
        new_axis=[1, 2],
        chunks=((1,) * true.numblocks[0], (n_classes,), (n_classes,)),
        dtype=np.int64,
        meta=np.empty((0, 0, 0), dtype=np.int64),
        token="daskml-confusion",
    ).sum(axis=0)
    parts = [confusion]
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        # blockwise, not map_blocks: map_blocks would align the 1-D labels with the class axis of proba.
        losses = da.blockwise(
            _log_loss_block,
            "i",
            true,
            "i",
            proba.rechunk({1: -1}),
            "ij",
            concatenate=True,
            adjust_chunks={"i": 1},
            dtype=np.float64,
            meta=np.empty((0,), dtype=np.float64),
            name=f"daskml-log-loss-{tokenize(true, proba)}",
        )
        parts.append(losses.sum())
    # compute: the n_classes x n_classes confusion matrix and, with probabilities, one log-loss sum
    with unique_fused_keys():
        computed = dask.compute(*parts)
    matrix = np.asarray(computed[0], dtype=np.float64)
    n_samples = matrix.sum()
    if n_samples == 0:
        msg = "The data hold no rows to evaluate."
        raise ValueError(msg)
    support, predicted_counts, correct = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    present = support > 0
    seen = present | (predicted_counts > 0)
    f1 = 2 * correct[seen] / (support[seen] + predicted_counts[seen])
    metrics = {
        "accuracy": float(correct.sum() / n_samples),
        "balanced_accuracy": float(np.mean(correct[present] / support[present])),
        "f1_macro": float(np.mean(f1)),
    }
    if len(computed) > 1:
        metrics["log_loss"] = float(computed[1] / n_samples)
    return metrics


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
        ``r2`` (1.0 for a perfect fit of a constant target and 0.0 for an imperfect one, as
        :func:`sklearn.metrics.r2_score`), ``mae`` and ``rmse``.
    """
    prediction = model.predict(X)
    stats = da.map_blocks(
        _regression_stats_block,
        y.astype(np.float64),
        prediction.astype(np.float64),
        new_axis=[1],
        chunks=((1,) * y.numblocks[0], (5,)),
        dtype=np.float64,
        meta=np.empty((0, 0), dtype=np.float64),
        token="daskml-regression-stats",
    )
    # compute: five numbers per row block (count, mean, squared deviations, squared and absolute errors)
    (blocks,) = dask.compute(stats)
    n, _, deviations, squared, absolute = _combine_regression_stats(np.asarray(blocks))
    if n == 0:
        msg = "The data hold no rows to evaluate."
        raise ValueError(msg)
    if deviations == 0:
        r2 = 1.0 if squared == 0 else 0.0
    else:
        r2 = 1.0 - squared / deviations
    return {"r2": float(r2), "mae": float(absolute / n), "rmse": float(math.sqrt(squared / n))}


def _combine_regression_stats(blocks: np.ndarray) -> tuple[float, float, float, float, float]:
    """Merge per-block (count, mean, squared deviations, squared error, absolute error) (Chan et al.)."""
    n = mean = deviations = squared = absolute = 0.0
    for count, block_mean, block_deviations, block_squared, block_absolute in blocks:
        squared += block_squared
        absolute += block_absolute
        if count == 0:
            continue
        total = n + count
        delta = block_mean - mean
        deviations += block_deviations + delta * delta * n * count / total
        mean += delta * count / total
        n = total
    return n, mean, deviations, squared, absolute


# ---------------------------------------------------------------------------------------------------------
# per-block kernels


def _confusion_block(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs in one block, shape (1, n_classes, n_classes)."""
    counts = np.bincount(true * n_classes + predicted, minlength=n_classes * n_classes)
    return counts.reshape(1, n_classes, n_classes).astype(np.int64)


def _log_loss_block(true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Summed ``-log p(true class)`` of one block, probabilities clipped to [eps, 1 - eps]."""
    proba = np.asarray(proba, dtype=np.float64)
    eps = np.finfo(proba.dtype).eps
    picked = np.clip(proba[np.arange(len(true)), true], eps, 1 - eps)
    return np.array([-np.log(picked).sum()])


def _regression_stats_block(y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    n = len(y)
    if n == 0:
        return np.zeros((1, 5))
    mean = y.mean()
    error = y - prediction
    return np.array([[n, mean, ((y - mean) ** 2).sum(), (error**2).sum(), np.abs(error).sum()]])
