"""Calibrated probabilities for the Cascade SVM: Platt scaling on rows held out from training.

With ``probability=True`` every shard holds a seeded share of every class out of training
(:func:`calibration_split`); the final SVC's decision values on those rows (computed where the rows live) are
all that reaches :func:`fit_calibrator`, which fits scikit-learn's sigmoid calibration on them through
:class:`DecisionValues`, a "classifier" whose decision function is its input. :class:`CalibratedSVC` is what
``predict_proba`` sends to the workers.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.svm import SVC

__all__ = [
    "CALIBRATION_FRACTION",
    "CalibratedSVC",
    "DecisionValues",
    "calibration_split",
    "fit_calibrator",
    "ovr_values",
]

#: Share of every class of every shard held out from training to calibrate ``predict_proba``.
CALIBRATION_FRACTION = 0.1


def calibration_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and calibration rows of one shard: ``fraction`` of every class held out (seeded).

    A class with at least two rows keeps at least one for training and gives at least one to calibration
    (``max(1, round(fraction * count))``); a class with a single row keeps it for training.

    Parameters
    ----------
    y : ndarray of shape (n_rows,)
        The shard's labels.
    fraction : float
        Share of every class held out; ``0`` holds out nothing.
    seed : int
        The shard's seed.

    Returns
    -------
    train, held_out : ndarray of int64
        Sorted row positions.

    Examples
    --------
    >>> import numpy as np
    >>> train, held_out = calibration_split(np.array([0] * 20 + [1] * 5), 0.1, seed=0)
    >>> len(train), len(held_out), sorted(np.r_[train, held_out].tolist()) == list(range(25))
    (22, 3, True)
    """
    n_rows = len(y)
    if fraction <= 0 or n_rows == 0:
        return np.arange(n_rows, dtype=np.int64), np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        if rows.size >= 2:
            n_held = min(rows.size - 1, max(1, round(fraction * rows.size)))
            held_out.append(rng.choice(rows, n_held, replace=False))
    held = np.sort(np.concatenate(held_out)).astype(np.int64) if held_out else np.empty(0, dtype=np.int64)
    return np.setdiff1d(np.arange(n_rows, dtype=np.int64), held), held


class DecisionValues(ClassifierMixin, BaseEstimator):
    """A classifier whose decision function is its input, to calibrate precomputed decision values.

    ``CalibratedClassifierCV(FrozenEstimator(DecisionValues(classes).fit(...)), method="sigmoid")`` fitted
    on decision values is scikit-learn's Platt scaling of the model that produced them.

    Parameters
    ----------
    classes : array-like of shape (n_classes,), default=None
        The labels, in the order of the decision-value columns.
    """

    def __init__(self, classes: Any = None) -> None:
        self.classes = classes

    def fit(self, X: Any, y: Any = None) -> DecisionValues:
        """Record the classes; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Decision values (ignored).
        y : array-like of shape (n_samples,), default=None
            Labels (ignored).

        Returns
        -------
        self
        """
        self.classes_ = np.asarray(self.classes)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """The decision values themselves (one column for two classes)."""
        values = np.asarray(X, dtype=np.float64)
        return values[:, 0] if len(self.classes_) == 2 else values

    def predict(self, X: Any) -> np.ndarray:
        """The class of the largest decision value (two classes: positive values give ``classes_[1]``)."""
        values = self.decision_function(X)
        if len(self.classes_) == 2:
            return self.classes_[(values > 0).astype(int)]
        return self.classes_[np.argmax(values, axis=1)]


class CalibratedSVC:
    """An SVC and the sigmoid calibration of its one-vs-rest decision values: what ``predict_proba`` sends.

    Parameters
    ----------
    svc : sklearn.svm.SVC
        Fitted.
    calibrator : sklearn.calibration.CalibratedClassifierCV
        Fitted on the SVC's decision values (shape ``"ovr"``).
    """

    def __init__(self, svc: SVC, calibrator: CalibratedClassifierCV) -> None:
        self.svc = svc
        self.calibrator = calibrator

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities of the rows ``X``."""
        return np.asarray(self.calibrator.predict_proba(ovr_values(self.svc, X)))


def ovr_values(model: SVC, X: Any) -> np.ndarray:
    """The SVC's decision values as a 2-D array of shape ``"ovr"`` (one column for two classes)."""
    ovr = copy.copy(model)
    ovr.decision_function_shape = "ovr"  # whatever the user chose
    values = np.asarray(ovr.decision_function(X), dtype=np.float64)
    return values.reshape(len(values), -1)


def fit_calibrator(model: SVC, parts: Sequence[dict[str, Any]]) -> CalibratedClassifierCV:
    """Platt scaling of the final SVC, fitted on the decision values of the calibration rows."""
    parts = [p for p in parts if p["values"] is not None]
    y = np.concatenate([p["y"] for p in parts]) if parts else np.empty(0)
    missing = np.setdiff1d(model.classes_, y)
    if missing.size:
        msg = (
            f"probability=True calibrates predict_proba on {CALIBRATION_FRACTION:.0%} of every class held out "
            f"from training, but no row of the classes {missing.tolist()} was held out (a class needs 2 rows "
            "in a shard). Use probability=False, fewer shards or more data."
        )
        raise ValueError(msg)
    values = np.concatenate([p["values"] for p in parts])
    sw = None if parts[0]["sw"] is None else np.concatenate([p["sw"] for p in parts])
    identity = FrozenEstimator(DecisionValues(model.classes_).fit(values, y))
    # A frozen model predicts the same in every fold: one "fold" holding every row avoids the class counts a
    # stratified split would need.
    rows = np.arange(len(y))
    calibrator = CalibratedClassifierCV(identity, method="sigmoid", cv=[(rows, rows)])
    with warnings.catch_warnings():
        # The weights are meant for the sigmoid only: the frozen "model" is not refitted.
        warnings.filterwarnings(
            "ignore", message="Since FrozenEstimator does not appear to accept sample_weight"
        )
        return calibrator.fit(values, y, **({} if sw is None else {"sample_weight": sw}))
