"""Stacking: a meta-estimator trained on the members' outputs for held-out rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import has_fit_parameter

from daskml_lab.base import HasMethods, Options
from daskml_lab.fusion._base import Fusion, FusionData, aligned_proba, class_index, label_index

__all__ = ["Stacking"]


def _final_has(method: str) -> Any:
    def check(self: Stacking) -> bool:
        if not hasattr(self, "final_estimator_"):
            return True  # unfitted: the method exists, calling it raises NotFittedError
        if not self._is_classifier():
            msg = f"Stacking of regressors has no {method}; use predict."
            raise AttributeError(msg)
        if not hasattr(self.final_estimator_, method):
            msg = f"The final estimator {type(self.final_estimator_).__name__} has no {method}."
            raise AttributeError(msg)
        if method == "decision_function" and not np.array_equal(
            self.final_estimator_.classes_, self.classes_
        ):
            msg = (
                "decision_function needs the final estimator to have seen all classes "
                f"{self.classes_.tolist()}; the held-out rows held only "
                f"{np.asarray(self.final_estimator_.classes_).tolist()}. Use predict_proba."
            )
            raise AttributeError(msg)
        return True

    return check


class Stacking(Fusion):
    """A final estimator learns to combine the members from their outputs on held-out rows.

    With ``M`` members, each held-out row ``x`` (a row no member was trained on) becomes a meta-feature vector

    .. math:: z(x) = [\\,o_1(x), \\dots, o_M(x)\\,] \\; (\\,\\Vert\\, x \\text{ when passthrough}),

    where ``o_m`` is the member's class-probability vector aligned to the global classes
    (``method="predict_proba"``), the one-hot vector of its predicted label (``method="predict"``) or its
    prediction (regression). For two classes only the probability (or indicator) of the second class is kept
    per member, as :class:`sklearn.ensemble.StackingClassifier` does. The final estimator ``g`` (default
    :class:`~sklearn.linear_model.LogisticRegression` or :class:`~sklearn.linear_model.Ridge`) is fitted on
    ``(z(x_i), y_i)`` over the held-out rows, and predictions are :math:`\\hat y(x) = g(z(x))`. Because no
    member saw the held-out rows, ``g`` learns how far to trust each member on unseen data (the held-out
    analogue of the out-of-fold predictions of scikit-learn's stacking).

    In :class:`~daskml_lab.ensemble.ShardEnsembleClassifier` the held-out rows are a ``validation_fraction``
    of every shard, the meta-features are computed on the workers and only the meta-feature matrix
    (``n_held_out`` rows of ``M`` or ``M * n_classes`` columns, plus the features with ``passthrough``)
    reaches the client.

    Parameters
    ----------
    final_estimator : estimator instance, default=None
        The meta-estimator, cloned before fitting. ``None``: ``LogisticRegression()`` for classification,
        ``Ridge()`` for regression.
    method : {"auto", "predict_proba", "predict"}, default="auto"
        Member outputs used as meta-features for classifiers; ``"auto"`` uses probabilities when every
        member has ``predict_proba``. Regression always uses predictions.
    passthrough : bool, default=False
        Whether the original features are appended to the meta-features.

    Attributes
    ----------
    final_estimator_ : estimator
        The fitted meta-estimator.
    classes_ : ndarray of shape (n_classes,)
        Global class labels (classification only).
    estimators_ : list of estimators
        The members.
    weights_ : ndarray of shape (n_members,)
        All ``NaN``: the final estimator, not a weight per member, combines them.
    n_members_ : int
        Number of members.
    method_ : str
        The method used for the meta-features.

    See Also
    --------
    WeightedAveraging : Weights from held-out scores by a fixed rule.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from daskml_lab.fusion import FusionData
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> members = [LinearRegression().fit(X, [0.0, 1, 2, 3]), LinearRegression().fit(X, [0.0, 2, 4, 6])]
    >>> stacking = Stacking(final_estimator=LinearRegression())
    >>> meta = stacking.held_out_features(members, X, classes=None)
    >>> meta.shape
    (4, 2)
    >>> target = np.array([0.0, 1.5, 3.0, 4.5])
    >>> fused = stacking.fit(members, FusionData(meta_features=meta, meta_target=target))
    >>> fused.predict(np.array([[4.0]])).round(6).tolist()
    [6.0]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "final_estimator": [HasMethods(["fit", "predict"]), None],
        "method": [Options({"auto", "predict_proba", "predict"})],
        "passthrough": ["boolean"],
    }

    def __init__(
        self, final_estimator: Any = None, *, method: str = "auto", passthrough: bool = False
    ) -> None:
        self.final_estimator = final_estimator
        self.method = method
        self.passthrough = passthrough

    def requires_held_out(self) -> bool:
        """Always true: the final estimator learns from held-out rows.

        Returns
        -------
        bool
        """
        return True

    def check_base_estimator(self, estimator: Any, *, classification: bool) -> None:
        """Reject ``method="predict_proba"`` with a base estimator that has no ``predict_proba``.

        Parameters
        ----------
        estimator : estimator instance
            The unfitted base estimator.
        classification : bool
            Whether the task is classification.

        Raises
        ------
        ValueError
            If probabilities are requested from a model without them.
        """
        if classification and self.method == "predict_proba" and not hasattr(estimator, "predict_proba"):
            msg = (
                f"Stacking(method='predict_proba') needs predict_proba, which {type(estimator).__name__} "
                "does not have. Use method='predict' or 'auto'."
            )
            raise ValueError(msg)

    def _resolved_method(self, estimators: Sequence[Any], classes: np.ndarray | None) -> str:
        if classes is None:
            return "predict"
        if self.method == "auto":
            return "predict_proba" if all(hasattr(m, "predict_proba") for m in estimators) else "predict"
        return self.method

    def held_out_features(self, estimators: Sequence[Any], X: Any, *, classes: np.ndarray | None) -> Any:
        """Meta-features ``z(x)`` of the rows ``X``: the members' outputs, plus ``X`` with ``passthrough``.

        Parameters
        ----------
        estimators : list of fitted estimators
            The members.
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)
            Rows.
        classes : ndarray of shape (n_classes,) or None
            Global classes (``None`` for regression).

        Returns
        -------
        {ndarray, sparse matrix} of shape (n_rows, n_meta_features)
        """
        return _meta_features(
            estimators, X, classes, self._resolved_method(estimators, classes), passthrough=self.passthrough
        )

    def fit(self, estimators: Sequence[Any], data: FusionData | None = None) -> Stacking:
        """Fit a clone of the final estimator on the held-out meta-features.

        Parameters
        ----------
        estimators : list of fitted estimators
            The members.
        data : FusionData
            ``meta_features`` (from :meth:`held_out_features`), ``meta_target`` and optionally
            ``meta_sample_weight``.

        Returns
        -------
        self
            The fitted object.

        Raises
        ------
        ValueError
            If no held-out rows were given.
        """
        members, data = self._start_fit(estimators, data)
        features, target = data.meta_features, data.meta_target
        if features is None or target is None or features.shape[0] == 0:
            msg = (
                "Stacking trains its final estimator on held-out rows that no member was trained on, but "
                "none were given. In ShardEnsemble* set validation_fraction > 0 (e.g. 0.1) and make shards "
                "large enough to hold rows out; with fuse() or from_estimators pass X_val and y_val."
            )
            raise ValueError(msg)
        if features.shape[0] != np.shape(target)[0]:
            msg = (
                f"meta_features has {features.shape[0]} rows but meta_target has {np.shape(target)[0]}; "
                "pass one target per held-out row."
            )
            raise ValueError(msg)
        classification = self._is_classifier()
        if self.final_estimator is not None:
            final = clone(self.final_estimator)
        else:
            final = LogisticRegression() if classification else Ridge()
        fit_params: dict[str, Any] = {}
        if data.meta_sample_weight is not None:
            if not has_fit_parameter(final, "sample_weight"):
                msg = (
                    f"Sample weights were given, but the final estimator {type(final).__name__} does not "
                    "accept sample_weight in fit. Choose another final_estimator or drop the weights."
                )
                raise ValueError(msg)
            fit_params["sample_weight"] = data.meta_sample_weight
        final.fit(features, target, **fit_params)
        self.final_estimator_ = final
        self.estimators_ = members
        self.method_ = self._resolved_method(members, data.classes)
        self.weights_ = np.full(len(members), np.nan)
        return self

    def _features(self, X: Any) -> Any:
        classes = self.classes_ if self._is_classifier() else None
        return _meta_features(self.estimators_, X, classes, self.method_, passthrough=self.passthrough)

    def predict(self, X: Any) -> np.ndarray:
        """The final estimator's prediction from the members' outputs on ``X``.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return np.asarray(self.final_estimator_.predict(self._features(X)))

    @available_if(_final_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """The final estimator's class probabilities, aligned to ``classes_``.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows, n_classes)
        """
        final = self.final_estimator_
        return aligned_proba(final, class_index(final, self.classes_), self._features(X), len(self.classes_))

    @available_if(_final_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """The final estimator's decision function.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows,) or (n_rows, n_classes)
        """
        return np.asarray(self.final_estimator_.decision_function(self._features(X)))


def _meta_features(
    estimators: Sequence[Any], X: Any, classes: np.ndarray | None, method: str, *, passthrough: bool
) -> Any:
    columns = []
    for member in estimators:
        if classes is None:
            columns.append(np.asarray(member.predict(X), dtype=np.float64).reshape(-1, 1))
            continue
        n_classes = len(classes)
        if method == "predict_proba":
            outputs = aligned_proba(member, class_index(member, classes), X, n_classes)
        else:
            outputs = np.zeros((X.shape[0], n_classes))
            outputs[np.arange(X.shape[0]), label_index(member.predict(X), classes)] = 1.0
        columns.append(outputs[:, 1:] if n_classes == 2 else outputs)
    features = np.hstack(columns)
    if not passthrough:
        return features
    if sp.issparse(X):
        return sp.hstack([sp.csr_matrix(features), X], format="csr")
    return np.hstack([features, np.asarray(X, dtype=np.float64)])
