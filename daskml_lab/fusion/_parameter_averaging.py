"""Parameter averaging: one linear model whose coefficients are the weighted mean of the members'."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.utils.metaestimators import available_if

from daskml_lab.base import ArrayLike, Options
from daskml_lab.fusion._base import (
    Fusion,
    FusionData,
    _n_members,
    _size_weights,
    _user_weights,
)

__all__ = ["ParameterAveraging"]


def _fused_has(method: str) -> Any:
    def check(self: ParameterAveraging) -> bool:
        if hasattr(self, "fused_estimator_") and not hasattr(self.fused_estimator_, method):
            msg = f"The averaged model {type(self.fused_estimator_).__name__} has no {method}."
            raise AttributeError(msg)
        return True

    return check


class ParameterAveraging(Fusion):
    """One linear model whose ``coef_`` and ``intercept_`` are the weighted means of the members'.

    For ``M`` linear members of the same class with coefficients :math:`W_m` and intercepts :math:`b_m`,

    .. math:: W = \\sum_{m=1}^{M} w_m W_m, \\qquad b = \\sum_{m=1}^{M} w_m b_m, \\qquad \\sum_m w_m = 1,

    with size weights :math:`w_m = n_m / \\sum_j n_j` by default. The result, ``fused_estimator_``, is a deep
    copy of the first member with these parameters: one plain scikit-learn estimator that predicts without
    the members (and is what the ensemble ships to the workers). Its other fitted attributes (``n_iter_``,
    ...) are those of the first member.

    Averaging parameters is exact for models whose prediction is linear in the parameters (the mean of the
    members' regression predictions equals the prediction of the averaged model); for classifiers it
    averages decision functions, not probabilities. It approximates the model trained on all data best when
    the shards are alike (``sharding="shuffle"`` or ``"stratified"``) and the objective is convex, e.g.
    :class:`~sklearn.linear_model.LogisticRegression`, :class:`~sklearn.linear_model.Ridge`,
    :class:`~sklearn.linear_model.SGDClassifier`, :class:`~sklearn.svm.LinearSVC`.

    Every member must be of the same class, expose ``coef_`` and ``intercept_`` of the same shape, and, for
    classifiers, have been trained on all the global classes (a shard missing a class cannot be averaged:
    its coefficient rows mean something else). Pipelines are refused: their preprocessing differs per shard.

    Parameters
    ----------
    weights : {"size", "uniform"} or array-like of shape (n_shards,), default="size"
        Member weights: proportional to the training rows, equal, or given (one non-negative number per
        shard), normalised to sum 1.

    Attributes
    ----------
    fused_estimator_ : estimator
        The averaged model.
    classes_ : ndarray of shape (n_classes,)
        Global class labels (classification only).
    weights_ : ndarray of shape (n_members,)
        Normalised weights.
    n_members_ : int
        Number of members.

    See Also
    --------
    ForestUnion : The equivalent for trees and forests.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from daskml_lab.fusion import FusionData
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> members = [LinearRegression().fit(X, [0.0, 1, 2]), LinearRegression().fit(X, [1.0, 4, 7])]
    >>> fused = ParameterAveraging().fit(members, FusionData(n_samples=np.array([3, 1])))
    >>> round(float(fused.fused_estimator_.coef_[0]), 6), round(float(fused.fused_estimator_.intercept_), 6)
    (1.5, 0.25)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "weights": [Options({"size", "uniform"}), ArrayLike()],
    }

    def __init__(self, weights: Any = "size") -> None:
        self.weights = weights

    def fit(self, estimators: Sequence[Any], data: FusionData | None = None) -> ParameterAveraging:
        """Average the members' parameters into ``fused_estimator_``.

        Parameters
        ----------
        estimators : list of fitted linear estimators
            The members, all of one class.
        data : FusionData, default=None
            ``n_samples`` for size weights; ``classes``.

        Returns
        -------
        self
            The fitted object.

        Raises
        ------
        TypeError
            If a member is not a linear model or the members differ in class.
        ValueError
            If shapes differ, a classifier member missed classes, or weights are invalid.
        """
        members, data = self._start_fit(estimators, data)
        if self._is_classifier():
            partial = [
                p for p, m in enumerate(members) if not np.array_equal(np.asarray(m.classes_), self.classes_)
            ]
            if partial:
                msg = (
                    f"ParameterAveraging needs every member to have been trained on all classes "
                    f"{self.classes_.tolist()}, but members {self._member_names(partial, data)} saw only "
                    f"{np.asarray(members[partial[0]].classes_).tolist()}. Shard with sharding='stratified' "
                    "or 'shuffle', or use fusion='soft-voting'."
                )
                raise ValueError(msg)
        first = members[0]
        for position, member in enumerate(members):
            if not (hasattr(member, "coef_") and hasattr(member, "intercept_")):
                msg = (
                    "ParameterAveraging needs linear models exposing coef_ and intercept_ "
                    "(LogisticRegression, Ridge, SGDClassifier, LinearSVC, ...); member "
                    f"{self._member_names([position], data)} is a {type(member).__name__}. Use "
                    "fusion='soft-voting', or 'forest-union' for trees."
                )
                raise TypeError(msg)
            if type(member) is not type(first):
                msg = (
                    "ParameterAveraging averages models of one class; member 0 is a "
                    f"{type(first).__name__} but "
                    f"member {self._member_names([position], data)} is a {type(member).__name__}."
                )
                raise TypeError(msg)
        shapes = {(np.shape(m.coef_), np.shape(m.intercept_)) for m in members}
        if len(shapes) != 1:
            msg = f"The members' coef_/intercept_ shapes differ: {sorted(shapes)}; use one feature set."
            raise ValueError(msg)
        weights = self._weights(data)
        coef = np.tensordot(
            weights, np.stack([np.asarray(m.coef_, dtype=np.float64) for m in members]), axes=1
        )
        intercept = np.tensordot(
            weights, np.stack([np.asarray(m.intercept_, dtype=np.float64) for m in members]), axes=1
        )
        fused = copy.deepcopy(first)
        fused.coef_ = coef.astype(np.asarray(first.coef_).dtype, copy=False)
        if np.ndim(first.intercept_) == 0:
            fused.intercept_ = float(intercept)
        else:
            fused.intercept_ = intercept.astype(np.asarray(first.intercept_).dtype, copy=False)
        self.fused_estimator_ = fused
        self.weights_ = weights
        return self

    def _weights(self, data: FusionData) -> np.ndarray:
        if isinstance(self.weights, str):
            if self.weights == "uniform":
                return np.full(_n_members(data), 1.0 / _n_members(data))
            return _size_weights(data, type(self).__name__)
        return _user_weights(self.weights, data, type(self).__name__)

    def predict(self, X: Any) -> np.ndarray:
        """Prediction of the averaged model.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return np.asarray(self.fused_estimator_.predict(X))

    @available_if(_fused_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the averaged model.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows, n_classes)
        """
        return np.asarray(self.fused_estimator_.predict_proba(X))

    @available_if(_fused_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision function of the averaged model.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows,) or (n_rows, n_classes)
        """
        return np.asarray(self.fused_estimator_.decision_function(X))
