"""Forest union: the trees of every member pooled into one scikit-learn forest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)
from sklearn.utils.metaestimators import available_if

from daskml_lab.fusion._base import Fusion, FusionData

__all__ = ["ForestUnion"]

_FORESTS = (RandomForestClassifier, ExtraTreesClassifier, RandomForestRegressor, ExtraTreesRegressor)
_TREES = (DecisionTreeClassifier, DecisionTreeRegressor)


def _is_classifier_union(self: ForestUnion) -> bool:
    if hasattr(self, "fused_estimator_") and not self._is_classifier():
        msg = "ForestUnion of regressors has no predict_proba; use predict."
        raise AttributeError(msg)
    return True


class ForestUnion(Fusion):
    """All trees of all members pooled into one random-forest (or extra-trees) estimator.

    If member ``m`` is a forest of :math:`T_m` trees (a single decision tree counts as a forest of one), the
    union holds :math:`T = \\sum_m T_m` trees and predicts, as any scikit-learn forest does, by averaging its
    trees:

    .. math:: P(x) = \\frac{1}{T} \\sum_{m=1}^{M} \\sum_{t=1}^{T_m} p_{m,t}(x), \\qquad
              \\hat y(x) = \\arg\\max_c P_c(x),

    with :math:`p_{m,t}` the class frequencies in the leaf of tree ``t`` reached by ``x`` (regression: the
    leaf mean). Every tree weighs the same, so a member's weight is its share of the trees,
    :math:`T_m / T`. The result, ``fused_estimator_``, is one plain
    :class:`~sklearn.ensemble.RandomForestClassifier` / :class:`~sklearn.ensemble.ExtraTreesClassifier`
    (or regressor) with all trees in ``estimators_``: it can be saved, inspected and used without daskml_lab.
    Its constructor parameters are those of the first member (or defaults when the members are single trees)
    with ``n_estimators`` set to the number of pooled trees; it has no out-of-bag attributes.

    For classification every member must have been trained on all the global classes (a tree's leaf values
    have one column per class it saw, so trees from shards missing classes cannot be pooled): shard with
    ``sharding="stratified"`` or ``"shuffle"``, or use ``SoftVoting``, which aligns probabilities.

    Attributes
    ----------
    fused_estimator_ : forest estimator
        The pooled forest.
    classes_ : ndarray of shape (n_classes,)
        Global class labels (classification only).
    weights_ : ndarray of shape (n_members,)
        Each member's share of the trees.
    n_members_ : int
        Number of members.

    See Also
    --------
    ParameterAveraging : The equivalent for linear models.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = [0, 0, 1, 1]
    >>> members = [RandomForestClassifier(n_estimators=3, random_state=s).fit(X, y) for s in (0, 1)]
    >>> forest = ForestUnion().fit(members).fused_estimator_
    >>> type(forest).__name__, len(forest.estimators_)
    ('RandomForestClassifier', 6)
    """

    prediction_methods: ClassVar[frozenset[str]] = frozenset(
        {"predict", "predict_proba"}
    )  # forests have no scores

    def __init__(self) -> None:
        pass

    def check_base_estimator(self, estimator: Any, *, classification: bool) -> None:
        """Reject base estimators that are neither forests nor decision trees.

        Parameters
        ----------
        estimator : estimator instance
            The unfitted base estimator.
        classification : bool
            Whether the task is classification.

        Raises
        ------
        ValueError
            If the estimator is not a scikit-learn forest or tree.
        """
        if not isinstance(estimator, _FORESTS + _TREES):
            msg = (
                "ForestUnion pools the trees of RandomForest*, ExtraTrees* or DecisionTree* / ExtraTree* "
                f"models; got {type(estimator).__name__}. Use fusion='soft-voting' for other estimators."
            )
            raise ValueError(msg)

    def fit(self, estimators: Sequence[Any], data: FusionData | None = None) -> ForestUnion:
        """Pool the members' trees into ``fused_estimator_``.

        Parameters
        ----------
        estimators : list of fitted forests or trees
            The members.
        data : FusionData, default=None
            Only ``classes`` is used.

        Returns
        -------
        self
            The fitted object.

        Raises
        ------
        TypeError
            If a member is not a forest or a tree.
        ValueError
            If a classifier member missed classes, or the members differ in features or outputs.
        """
        members, data = self._start_fit(estimators, data)
        if self._is_classifier():
            partial = [
                p for p, m in enumerate(members) if not np.array_equal(np.asarray(m.classes_), self.classes_)
            ]
            if partial:
                msg = (
                    f"ForestUnion needs every member to have been trained on all classes "
                    f"{self.classes_.tolist()}, but members {self._member_names(partial, data)} saw only "
                    f"{np.asarray(members[partial[0]].classes_).tolist()}. Shard with sharding='stratified' "
                    "or 'shuffle', or use fusion='soft-voting'."
                )
                raise ValueError(msg)
        trees: list[Any] = []
        counts = []
        for position, member in enumerate(members):
            self._check_member(member, position, data)
            member_trees = list(member.estimators_) if isinstance(member, _FORESTS) else [member]
            trees.extend(member_trees)
            counts.append(len(member_trees))
        features = {int(m.n_features_in_) for m in members}
        if len(features) != 1:
            msg = f"The members were trained on different numbers of features: {sorted(features)}."
            raise ValueError(msg)
        if any(getattr(m, "n_outputs_", 1) != 1 for m in members):
            msg = "ForestUnion supports single-output members only; fit one model per target column."
            raise ValueError(msg)
        fused = self._container(members[0], len(trees))
        fused.estimators_ = trees
        fused.n_features_in_ = features.pop()
        fused.n_outputs_ = 1
        if self._is_classifier():
            fused.classes_ = self.classes_
            fused.n_classes_ = len(self.classes_)
        if hasattr(members[0], "feature_names_in_"):
            fused.feature_names_in_ = members[0].feature_names_in_
        self.fused_estimator_ = fused
        self.weights_ = np.asarray(counts, dtype=np.float64) / len(trees)
        return self

    def _check_member(self, member: Any, position: int, data: FusionData) -> None:
        if not isinstance(member, _FORESTS + _TREES):
            msg = (
                f"ForestUnion pools the trees of forests and decision trees; member "
                f"{self._member_names([position], data)} is a {type(member).__name__}. Use "
                "fusion='soft-voting' for other estimators."
            )
            raise TypeError(msg)

    def _container(self, first: Any, n_trees: int) -> Any:
        if isinstance(first, _FORESTS):
            fused = clone(first).set_params(n_estimators=n_trees)
            fused.estimator_ = first.estimator_
        else:
            if isinstance(first, DecisionTreeClassifier):
                kind = (
                    ExtraTreesClassifier if isinstance(first, ExtraTreeClassifier) else RandomForestClassifier
                )
            else:
                kind = ExtraTreesRegressor if isinstance(first, ExtraTreeRegressor) else RandomForestRegressor
            fused = kind(n_estimators=n_trees)
            fused.estimator_ = clone(first)
        return fused

    def predict(self, X: Any) -> np.ndarray:
        """Prediction of the pooled forest.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return np.asarray(self.fused_estimator_.predict(X))

    @available_if(_is_classifier_union)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Mean class probabilities of the pooled trees.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows, n_classes)
        """
        return np.asarray(self.fused_estimator_.predict_proba(X))
