"""Shared machinery of the averaging fusions (hard voting, soft voting, weighted averaging).

All three compute, for one block of rows, a weighted sum over the members

    S(x) = sum_m w_m * o_m(x),     sum_m w_m = 1,

where ``o_m`` is the member's class-probability vector aligned to the global classes
(``method="predict_proba"``), the one-hot vector of its predicted label (``method="predict"``), or its
prediction (regression). They differ
only in how ``w`` is chosen; see :mod:`daskml_lab.fusion._voting` and :mod:`daskml_lab.fusion._weighted`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.utils.metaestimators import available_if

from daskml_lab.fusion._base import Fusion, FusionData, aligned_proba, class_index
from daskml_lab.fusion._votes import vote_totals

__all__: list[str] = []


def _has_proba(self: _Averaging) -> bool:
    if not self._is_classifier():
        msg = f"{type(self).__name__} of regressors has no predict_proba; use predict."
        raise AttributeError(msg)
    if self.method_ != "predict_proba":
        msg = (
            f"{type(self).__name__} fuses predicted labels (method={self.method_!r}), so it has no "
            "predict_proba. Use members with predict_proba and method='predict_proba'."
        )
        raise AttributeError(msg)
    return True


def _has_decision(self: _Averaging) -> bool:
    if not self._is_classifier():
        msg = f"{type(self).__name__} of regressors has no decision_function; use predict."
        raise AttributeError(msg)
    if self.method_ != "predict_proba":
        msg = f"{type(self).__name__} with method={self.method_!r} has no decision_function."
        raise AttributeError(msg)
    lacking = [p for p, m in enumerate(self.estimators_) if not hasattr(m, "decision_function")]
    if lacking:
        msg = (
            f"decision_function needs every member to have one; members {lacking} "
            f"({type(self.estimators_[lacking[0]]).__name__}) do not. Use predict_proba."
        )
        raise AttributeError(msg)
    partial = [
        p for p, m in enumerate(self.estimators_) if not np.array_equal(np.asarray(m.classes_), self.classes_)
    ]
    if partial:
        msg = (
            f"decision_function averages the members' decision values, which needs every member to have "
            f"seen all classes {self.classes_.tolist()}; members {partial} were trained on fewer (their "
            "shards miss classes). Use predict_proba, or shard with sharding='stratified' or 'shuffle'."
        )
        raise AttributeError(msg)
    return True


class _Averaging(Fusion):
    """Weighted sum of member outputs; subclasses choose the weights and the method."""

    #: "predict_proba", "predict" or "auto" (chosen by subclasses).
    _method: str = "auto"

    def _resolve_method(self) -> str:
        return self._method

    def _weights(self, members: list[Any], data: FusionData) -> np.ndarray:
        return np.full(len(members), 1.0 / len(members))

    def check_base_estimator(self, estimator: Any, *, classification: bool) -> None:
        """Reject a base estimator without ``predict_proba`` when probabilities must be averaged.

        Parameters
        ----------
        estimator : estimator instance
            The unfitted base estimator.
        classification : bool
            Whether the task is classification.

        Raises
        ------
        ValueError
            If the probabilities of a model without ``predict_proba`` are requested.
        """
        if (
            classification
            and self._resolve_method() == "predict_proba"
            and not hasattr(estimator, "predict_proba")
        ):
            msg = (
                f"{type(self).__name__} averages class probabilities, but {type(estimator).__name__} has no "
                "predict_proba (for SVC, pass probability=True). Use fusion='hard-voting', "
                "WeightedAveraging(method='predict') or Stacking(method='predict')."
            )
            raise ValueError(msg)

    def fit(self, estimators: Sequence[Any], data: FusionData | None = None) -> _Averaging:
        """Check the members, fix the method and the weights.

        Parameters
        ----------
        estimators : list of fitted estimators
            The members.
        data : FusionData, default=None
            Sizes and held-out scores when the weights need them.

        Returns
        -------
        self
            The fitted object.
        """
        members, data = self._start_fit(estimators, data)
        method = self._resolve_method()
        if self._is_classifier():
            if method == "auto":
                method = "predict_proba" if all(hasattr(m, "predict_proba") for m in members) else "predict"
            if method == "predict_proba":
                lacking = [p for p, m in enumerate(members) if not hasattr(m, "predict_proba")]
                if lacking:
                    msg = (
                        f"{type(self).__name__} averages predict_proba, which members "
                        f"{self._member_names(lacking, data)} ({type(members[lacking[0]]).__name__}) do not "
                        "have. Use HardVoting or WeightedAveraging(method='predict')."
                    )
                    raise ValueError(msg)
            self.class_index_ = [class_index(m, self.classes_) for m in members]
        else:
            method = "predict"
        self.method_ = method
        self.estimators_ = members
        self.weights_ = self._weights(members, data)
        return self

    def _scores(self, X: Any) -> np.ndarray:
        """Weighted sum of aligned probabilities or label votes, shape (n_rows, n_classes)."""
        n_classes = len(self.classes_)
        voters = [p for p, weight in enumerate(self.weights_) if weight != 0]
        if self.method_ != "predict_proba":
            return vote_totals(
                [self.estimators_[p] for p in voters],
                [self.class_index_[p] for p in voters],
                np.asarray(self.weights_)[voters],
                self.classes_,
                X,
            )
        total = np.zeros((X.shape[0], n_classes), dtype=np.float64)
        for p in voters:
            total += self.weights_[p] * aligned_proba(self.estimators_[p], self.class_index_[p], X, n_classes)
        return total

    def predict(self, X: Any) -> np.ndarray:
        """Fused prediction for one block of rows.

        Classification: the class with the largest weighted sum; ties go to the class that comes first in
        ``classes_``. Regression: the weighted mean of the members' predictions.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        if self._is_classifier():
            return self.classes_[np.argmax(self._scores(X), axis=1)]
        out = np.zeros(X.shape[0], dtype=np.float64)
        for member, weight in zip(self.estimators_, self.weights_, strict=True):
            if weight != 0:
                out += weight * np.asarray(member.predict(X), dtype=np.float64).reshape(X.shape[0])
        return out

    @available_if(_has_proba)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Weighted mean of the members' class probabilities, aligned to ``classes_``.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows, n_classes)
        """
        return self._scores(X)

    @available_if(_has_decision)
    def decision_function(self, X: Any) -> np.ndarray:
        """Weighted mean of the members' decision functions.

        Only available when every member saw every class. Its ranking may differ slightly from that of
        ``predict_proba`` (a mean of decision values is not a monotone function of the mean probability);
        ``predict`` follows ``predict_proba``.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows,) for two classes, (n_rows, n_classes) otherwise
        """
        values = [
            weight * np.asarray(member.decision_function(X), dtype=np.float64)
            for member, weight in zip(self.estimators_, self.weights_, strict=True)
        ]
        return np.sum(values, axis=0)
