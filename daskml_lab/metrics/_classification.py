"""Classification metrics: accuracy, the confusion matrix (and the scores derived from it), log loss.

Class labels need not be known in advance: each block reports the labels it holds with its statistics
(weighted counts per (true, predicted) pair; per label and probability column, the weighted sum of
``-log p``), and the merge aligns the blocks on the union of their labels. Labels of any sortable dtype work,
text included.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

from daskml_lab.metrics._reduce import (
    Output,
    Statistics,
    check_inputs,
    check_total_weight,
    evaluate,
    fill_compute_doc,
    row_weights,
)

__all__ = ["accuracy_score", "classification_scores", "confusion_matrix", "log_loss"]


# ---------------------------------------------------------------------------------------------------------
# kernels


def _accuracy_chunk(
    y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None
) -> dict[str, Any]:
    """``correct``: weight of the rows predicted right (one value per column of a 2-D ``y_pred``); ``weight``."""
    y, prediction = np.asarray(y_true), np.asarray(y_pred)
    weights = row_weights(sample_weight, y.shape[0])
    correct = prediction == (y if prediction.ndim == 1 else y[:, None])
    return {"correct": weights @ correct, "weight": float(weights.sum())}


def _accuracy_combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "correct": sum((p["correct"] for p in parts[1:]), parts[0]["correct"]),
        "weight": float(sum(p["weight"] for p in parts)),
    }


def _accuracy_agg(stats: dict[str, Any], metric: str = "accuracy_score") -> Any:
    check_total_weight(stats["weight"], metric)
    return np.asarray(stats["correct"], dtype=np.float64) / stats["weight"]


def _confusion_chunk(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    labels: np.ndarray | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """``labels`` of the block (or the given ones), weighted ``counts`` per (true, predicted), total ``weight``.

    With given ``labels``, rows whose true or predicted label is not among them are left out, as scikit-learn
    does, or (``strict``) raise ``ValueError``.
    """
    y, prediction = np.asarray(y_true), np.asarray(y_pred)
    weights = row_weights(sample_weight, y.shape[0])
    if labels is None:
        block_labels, codes = np.unique(np.concatenate([y, prediction]), return_inverse=True)
        true_codes, predicted_codes = codes[: len(y)], codes[len(y) :]
        keep = np.ones(len(y), dtype=bool)
    else:
        block_labels = labels
        true_codes, true_known = _codes(y, labels)
        predicted_codes, predicted_known = _codes(prediction, labels)
        keep = true_known & predicted_known
        if strict and not keep.all():
            unknown = np.unique(np.concatenate([y[~true_known], prediction[~predicted_known]]))
            msg = (
                f"y_true or y_pred contains labels not among the given labels: {unknown[:5].tolist()}; the "
                f"labels are {labels.tolist()}."
            )
            raise ValueError(msg)
    n_labels = len(block_labels)
    counts = np.bincount(
        true_codes[keep] * n_labels + predicted_codes[keep], weights=weights[keep], minlength=n_labels**2
    )
    return {
        "labels": block_labels,
        "counts": counts.reshape(n_labels, n_labels),
        "weight": float(weights.sum()),
    }


def _confusion_combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    labels, positions = _union_labels(parts)
    counts = np.zeros((len(labels), len(labels)), dtype=np.float64)
    for part, where in zip(parts, positions, strict=True):
        counts[np.ix_(where, where)] += part["counts"]
    return {"labels": labels, "counts": counts, "weight": float(sum(p["weight"] for p in parts))}


def _confusion_agg(stats: dict[str, Any], metric: str = "confusion_matrix") -> np.ndarray:
    check_total_weight(stats["weight"], metric)
    return stats["counts"]


def _log_loss_chunk(
    y_true: np.ndarray,
    y_proba: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """Per label of the block (or given label) and probability column, the weighted sum of ``-log p``.

    Probabilities are clipped to ``[eps, 1 - eps]`` (``eps`` of their float dtype), as scikit-learn does; a
    1-D ``y_proba`` is the probability of the second class.
    """
    y = np.asarray(y_true)
    proba = np.asarray(y_proba)
    proba = proba.astype(np.float32 if proba.dtype == np.float32 else np.float64, copy=False)
    if proba.ndim == 1:
        proba = proba[:, None]
    if proba.shape[1] == 1:
        proba = np.hstack([1 - proba, proba])
    if proba.size and proba.max() > 1:
        msg = f"y_proba contains values greater than 1: {proba.max()}. Pass probabilities (predict_proba)."
        raise ValueError(msg)
    if proba.size and proba.min() < 0:
        msg = f"y_proba contains values lower than 0: {proba.min()}. Pass probabilities (predict_proba)."
        raise ValueError(msg)
    weights = row_weights(sample_weight, y.shape[0])
    if labels is None:
        block_labels, codes = np.unique(y, return_inverse=True)
    else:
        block_labels = labels
        codes, known = _codes(y, labels)
        if not known.all():
            msg = (
                f"y_true contains values not belonging to the passed labels: {np.unique(y[~known])[:5].tolist()};"
                f" the labels are {labels.tolist()}."
            )
            raise ValueError(msg)
    eps = np.finfo(proba.dtype).eps
    losses = -np.log(np.clip(proba, eps, 1 - eps).astype(np.float64))
    n_labels = len(block_labels)
    indicator = sp.csr_matrix((weights, (codes.ravel(), np.arange(len(y)))), shape=(n_labels, len(y)))
    return {
        "labels": block_labels,
        "loss": np.asarray(indicator @ losses).reshape(n_labels, proba.shape[1]),
        "label_weight": np.bincount(codes.ravel(), weights=weights, minlength=n_labels),
        "n_columns": proba.shape[1],
    }


def _log_loss_combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    labels, positions = _union_labels(parts)
    n_columns = parts[0]["n_columns"]
    loss = np.zeros((len(labels), n_columns), dtype=np.float64)
    label_weight = np.zeros(len(labels), dtype=np.float64)
    for part, where in zip(parts, positions, strict=True):
        loss[where] += part["loss"]
        label_weight[where] += part["label_weight"]
    return {"labels": labels, "loss": loss, "label_weight": label_weight, "n_columns": n_columns}


def _log_loss_agg(stats: dict[str, Any], metric: str = "log_loss", labels_given: bool = False) -> float:
    labels, n_columns = stats["labels"], stats["n_columns"]
    check_total_weight(float(stats["label_weight"].sum()), metric)
    if len(labels) != n_columns:
        if labels_given:
            msg = (
                f"The number of classes in labels is different from that in y_proba ({n_columns} columns). "
                f"Classes found in labels: {labels.tolist()}."
            )
        elif len(labels) == 1:
            msg = (
                f"y_true contains only one label ({labels.tolist()[0]!r}). Please provide the list of all "
                "expected class labels explicitly through the labels argument."
            )
        else:
            msg = (
                f"y_true and y_proba contain different number of classes: {len(labels)} vs {n_columns}. Please "
                f"provide the true labels explicitly through the labels argument. Classes found in y_true: "
                f"{labels.tolist()}."
            )
        raise ValueError(msg)
    # Columns follow the sorted labels, so label k's loss is in column k.
    return float(np.trace(stats["loss"]) / stats["label_weight"].sum())


def _balanced_accuracy_agg(stats: dict[str, Any], metric: str = "classification_scores") -> float:
    """Mean recall over the classes present in ``y_true`` (:func:`sklearn.metrics.balanced_accuracy_score`)."""
    counts = _confusion_agg(stats, metric)
    support = counts.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(counts)[present] / support[present]))


def _f1_macro_agg(stats: dict[str, Any], metric: str = "classification_scores") -> float:
    """Unweighted mean F1 over the classes in ``y_true`` or ``y_pred`` (sklearn's ``f1_score(average="macro")``)."""
    counts = _confusion_agg(stats, metric)
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    seen = (support + predicted) > 0
    return float(np.mean(2 * np.diag(counts)[seen] / (support[seen] + predicted[seen])))


def _confusion_accuracy_agg(stats: dict[str, Any], metric: str = "classification_scores") -> float:
    return float(np.trace(_confusion_agg(stats, metric)) / stats["weight"])


def _codes(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each value in ``labels`` (any order) and whether it is there at all."""
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    positions = np.clip(np.searchsorted(ordered, values), 0, max(len(labels) - 1, 0))
    known = ordered[positions] == values if len(labels) else np.zeros(len(values), dtype=bool)
    return order[positions], np.asarray(known, dtype=bool)


def _union_labels(parts: list[dict[str, Any]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The labels of all parts (kept as they are when every part has the same) and each part's positions."""
    first = parts[0]["labels"]
    if all(len(p["labels"]) == len(first) and np.array_equal(p["labels"], first) for p in parts[1:]):
        return first, [np.arange(len(first))] * len(parts)
    non_empty = [p["labels"] for p in parts if len(p["labels"])]
    labels = np.unique(np.concatenate(non_empty)) if non_empty else first
    return labels, [np.searchsorted(labels, p["labels"]).astype(np.intp) for p in parts]


def _label_array(labels: Any) -> np.ndarray | None:
    return None if labels is None else np.asarray(labels)


# ---------------------------------------------------------------------------------------------------------
# public functions


def accuracy_score(y_true: Any, y_pred: Any, *, sample_weight: Any = None, compute: bool = True) -> Any:
    """Fraction (or weighted fraction) of rows predicted right, as :func:`sklearn.metrics.accuracy_score`.

    Parameters
    ----------
    y_true : {array-like, dask array} of shape (n_samples,)
        True labels (any dtype, text included).
    y_pred : {array-like, dask array} of shape (n_samples,)
        Predicted labels, with the row chunks of ``y_true`` when both are dask arrays.
    sample_weight : {array-like, dask array} of shape (n_samples,), default=None
        Non-negative row weights.
    %(compute)s

    Returns
    -------
    float or dask.array.Array
        The weighted share of rows with ``y_pred == y_true``. Lazy only for dask input with ``compute=False``.

    Raises
    ------
    ValueError
        For empty input, different lengths or row chunks, negative weights, and weights that sum to zero (for
        dask input the value checks raise when computed).

    See Also
    --------
    classification_scores, confusion_matrix

    Examples
    --------
    >>> import dask.array as da
    >>> from daskml_lab.metrics import accuracy_score
    >>> y_true = da.from_array(["cat", "dog", "dog", "emu"], chunks=2)
    >>> y_pred = da.from_array(["cat", "dog", "emu", "emu"], chunks=2)
    >>> accuracy_score(y_true, y_pred)
    0.75
    """
    arrays, eager = check_inputs(
        "accuracy_score",
        {"y_true": y_true, "y_pred": y_pred, "sample_weight": sample_weight},
        numeric=("sample_weight",),
    )
    statistics = Statistics("accuracy", _accuracy_chunk, _accuracy_combine, arrays)
    return evaluate({"score": (statistics, _accuracy_agg, ())}, eager=eager, compute=compute)["score"]


def confusion_matrix(
    y_true: Any, y_pred: Any, *, labels: Any = None, sample_weight: Any = None, compute: bool = True
) -> Any:
    """Confusion matrix, as :func:`sklearn.metrics.confusion_matrix`, in one pass over row blocks.

    Parameters
    ----------
    y_true : {array-like, dask array} of shape (n_samples,)
        True labels.
    y_pred : {array-like, dask array} of shape (n_samples,)
        Predicted labels, with the row chunks of ``y_true`` when both are dask arrays.
    labels : array-like of shape (n_classes,), default=None
        The labels indexing the matrix, in this order. Rows whose true or predicted label is not among them
        are left out. ``None`` uses the sorted labels found in ``y_true`` or ``y_pred`` (found in the same
        pass).
    sample_weight : {array-like, dask array} of shape (n_samples,), default=None
        Non-negative row weights.
    %(compute)s

    Returns
    -------
    ndarray or dask.array.Array of shape (n_classes, n_classes)
        Entry ``[i, j]`` counts (or weighs) the rows of true label ``i`` predicted as ``j``; int64 without
        weights, float64 with them. Lazy only for dask input with ``compute=False``; its shape is then unknown
        (``nan``) unless ``labels`` are given.

    Raises
    ------
    ValueError
        As :func:`accuracy_score`.

    See Also
    --------
    accuracy_score, classification_scores

    Examples
    --------
    >>> from daskml_lab.metrics import confusion_matrix
    >>> confusion_matrix(["cat", "dog", "dog", "emu"], ["cat", "dog", "emu", "emu"])
    array([[1, 0, 0],
           [0, 1, 1],
           [0, 0, 1]])
    """
    arrays, eager = check_inputs(
        "confusion_matrix",
        {"y_true": y_true, "y_pred": y_pred, "sample_weight": sample_weight},
        numeric=("sample_weight",),
    )
    given = _label_array(labels)
    statistics = Statistics(
        "confusion", _confusion_chunk, _confusion_combine, arrays, {"labels": given, "strict": False}
    )
    n_classes = float("nan") if given is None else len(given)
    result = evaluate(
        {"matrix": (statistics, _confusion_agg, (n_classes, n_classes))}, eager=eager, compute=compute
    )["matrix"]
    return result if sample_weight is not None else result.astype(np.int64)


def log_loss(
    y_true: Any, y_proba: Any, *, labels: Any = None, sample_weight: Any = None, compute: bool = True
) -> Any:
    """Cross-entropy loss, as :func:`sklearn.metrics.log_loss`, in one pass over row blocks.

    Parameters
    ----------
    y_true : {array-like, dask array} of shape (n_samples,)
        True labels.
    y_proba : {array-like, dask array} of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities (``predict_proba``), one column per label in sorted order; a vector is the
        probability of the second label. Row chunks as ``y_true`` when both are dask arrays.
    labels : array-like of shape (n_classes,), default=None
        All the labels (sorted, they name the columns of ``y_proba``). ``None`` uses the labels found in
        ``y_true``, which must then hold every class.
    sample_weight : {array-like, dask array} of shape (n_samples,), default=None
        Non-negative row weights.
    %(compute)s

    Returns
    -------
    float or dask.array.Array
        The weighted mean of ``-log p(true label)``, probabilities clipped to ``[eps, 1 - eps]``. Lazy only
        for dask input with ``compute=False``.

    Raises
    ------
    ValueError
        As :func:`accuracy_score`; also for probabilities outside ``[0, 1]``, labels of ``y_true`` not among
        ``labels``, and a number of labels that differs from the number of columns.

    See Also
    --------
    classification_scores

    Notes
    -----
    Unlike scikit-learn, rows of ``y_proba`` that do not sum to one raise no warning.

    Examples
    --------
    >>> from daskml_lab.metrics import log_loss
    >>> round(log_loss(["spam", "ham", "ham"], [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2]]), 4)
    0.1446
    """
    arrays, eager = check_inputs(
        "log_loss",
        {"y_true": y_true, "y_proba": y_proba, "sample_weight": sample_weight},
        numeric=("y_proba", "sample_weight"),
        matrix=("y_proba",),
    )
    statistics, final = _log_loss_statistics("log_loss", arrays, labels)
    return evaluate({"score": (statistics, final, ())}, eager=eager, compute=compute)["score"]


def classification_scores(
    y_true: Any,
    y_pred: Any,
    *,
    y_proba: Any = None,
    labels: Any = None,
    sample_weight: Any = None,
    compute: bool = True,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1 and (with ``y_proba``) log loss, from one pass over row blocks.

    Parameters
    ----------
    y_true : {array-like, dask array} of shape (n_samples,)
        True labels.
    y_pred : {array-like, dask array} of shape (n_samples,)
        Predicted labels, with the row chunks of ``y_true`` when both are dask arrays.
    y_proba : {array-like, dask array} of shape (n_samples, n_classes), default=None
        Predicted probabilities, one column per label in sorted order; adds ``log_loss``.
    labels : array-like of shape (n_classes,), default=None
        All the labels, for example a model's ``classes_``. A label in ``y_true`` or ``y_pred`` outside them
        raises ``ValueError``. ``None`` uses the labels found in the data.
    sample_weight : {array-like, dask array} of shape (n_samples,), default=None
        Non-negative row weights.
    compute : bool, default=True
        For dask input: compute every score in one ``dask.compute`` and return floats, or return lazy 0-d dask
        arrays (that share one pass over the blocks).

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy`` (mean recall over the classes present in ``y_true``), ``f1_macro``
        (over the classes in ``y_true`` or ``y_pred``) and, with ``y_proba``, ``log_loss``, each as
        :mod:`sklearn.metrics` defines it.

    Raises
    ------
    ValueError
        As :func:`accuracy_score` and :func:`log_loss`.

    See Also
    --------
    accuracy_score, confusion_matrix, log_loss

    Examples
    --------
    >>> from daskml_lab.metrics import classification_scores
    >>> scores = classification_scores(["a", "b", "b", "b"], ["a", "b", "b", "a"])
    >>> scores["accuracy"], round(scores["balanced_accuracy"], 4)
    (0.75, 0.8333)
    """
    metric = "classification_scores"
    arrays, eager = check_inputs(
        metric,
        {"y_true": y_true, "y_pred": y_pred, "sample_weight": sample_weight, "y_proba": y_proba},
        numeric=("y_proba", "sample_weight"),
        matrix=("y_proba",),
    )
    y_true_arr, y_pred_arr, weight_arr, proba_arr = arrays
    given = _label_array(labels)
    confusion = Statistics(
        "confusion",
        _confusion_chunk,
        _confusion_combine,
        [y_true_arr, y_pred_arr, weight_arr],
        {"labels": given, "strict": True},
    )
    outputs: dict[str, Output] = {
        "accuracy": (confusion, partial(_confusion_accuracy_agg, metric=metric), ()),
        "balanced_accuracy": (confusion, partial(_balanced_accuracy_agg, metric=metric), ()),
        "f1_macro": (confusion, partial(_f1_macro_agg, metric=metric), ()),
    }
    if proba_arr is not None:
        losses, final = _log_loss_statistics(metric, [y_true_arr, proba_arr, weight_arr], labels)
        outputs["log_loss"] = (losses, final, ())
    return evaluate(outputs, eager=eager, compute=compute)


def _log_loss_statistics(metric: str, arrays: list[Any], labels: Any) -> tuple[Statistics, Any]:
    given = None if labels is None else np.unique(np.asarray(labels))
    if given is not None and len(given) < 2:
        msg = f"The labels array needs to contain at least two labels for {metric}, got {given.tolist()}."
        raise ValueError(msg)
    statistics = Statistics("log loss", _log_loss_chunk, _log_loss_combine, arrays, {"labels": given})
    return statistics, partial(_log_loss_agg, metric=metric, labels_given=given is not None)


fill_compute_doc(accuracy_score, confusion_matrix, log_loss)
