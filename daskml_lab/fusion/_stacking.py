"""Stacking: a meta-estimator trained on the members' outputs for held-out rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GridSearchCV
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
    :class:`~sklearn.linear_model.LogisticRegression` or :class:`~sklearn.linear_model.RidgeCV`, tuned) is fitted on
    ``(z(x_i), y_i)`` over the held-out rows, and predictions are :math:`\\hat y(x) = g(z(x))`. Because no
    member saw the held-out rows, ``g`` learns how far to trust each member on unseen data (the held-out
    analogue of the out-of-fold predictions of scikit-learn's stacking).

    With ``refit_members=True`` (the default), once the meta-features are computed every member is fitted
    again on its whole shard, held-out rows included, and these refitted members feed ``g`` at prediction
    time -- what :class:`sklearn.ensemble.StackingClassifier` does after its cross-validated predictions. The
    members then lose nothing to the held-out rows (with ``refit_members=False`` they train on
    ``1 - validation_fraction`` of their shard, which costs tree bases on small shards about half a point of
    accuracy), at the price of a second fit per shard. Because of that, stacking holds out a larger share by
    default (``validation_fraction=None`` means 0.2 here): more rows for ``g``, none taken from the members.
    A refitted member has seen the held-out rows of its own shard, but never those of the other shards: the
    meta-features of shard ``s``'s held-out rows therefore come from the refitted members, except member
    ``s``, which contributes through its model of the training rows. ``g`` then learns on (all but one of)
    the very models it will combine, not on stand-ins fitted to fewer rows.

    The default ``g`` chooses its regularisation by 5-fold cross-validation on the held-out meta-features
    (:class:`~sklearn.linear_model.LogisticRegression` with ``C`` in ``0.01, 0.1, 1, 10`` chosen by
    log-loss, or :class:`~sklearn.linear_model.RidgeCV`); the chosen model is kept as ``final_estimator_``.
    ``C`` stops at 10 because a weaker penalty lets ``g`` put large opposite weights on near-identical
    members, which exploits the held-out models' small differences and does not survive their refit (seen
    on the skin dataset: -3 points with ``C=1000``).

    In :class:`~daskml_lab.ensemble.ShardEnsembleClassifier` the held-out rows are a ``validation_fraction``
    of every shard, the meta-features are computed on the workers and only the meta-feature matrix
    (``n_held_out`` rows of ``M`` or ``M * n_classes`` columns, plus the features with ``passthrough``)
    reaches the client.

    Parameters
    ----------
    final_estimator : estimator instance, default=None
        The meta-estimator, cloned before fitting. ``None``: for classification, ``LogisticRegression``
        with ``C`` chosen among ``0.01, 0.1, 1, 10`` by 5-fold cross-validated log-loss (plain
        ``LogisticRegression()`` when a class has fewer than 5 held-out rows); for regression,
        ``RidgeCV(alphas=np.logspace(-3, 3, 7))``.
    method : {"auto", "predict_proba", "predict"}, default="auto"
        Member outputs used as meta-features for classifiers; ``"auto"`` uses probabilities when every
        member has ``predict_proba``. Regression always uses predictions.
    passthrough : bool, default=False
        Whether the original features are appended to the meta-features.
    refit_members : bool, default=True
        In :class:`~daskml_lab.ensemble.ShardEnsembleClassifier` and
        :class:`~daskml_lab.ensemble.ShardEnsembleRegressor`: refit every member on its whole shard after the
        held-out meta-features are computed (see above). Ignored by :func:`~daskml_lab.fusion.fuse`, whose
        members come fitted.

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
        "refit_members": ["boolean"],
    }

    def __init__(
        self,
        final_estimator: Any = None,
        *,
        method: str = "auto",
        passthrough: bool = False,
        refit_members: bool = True,
    ) -> None:
        self.final_estimator = final_estimator
        self.method = method
        self.passthrough = passthrough
        self.refit_members = refit_members

    def requires_held_out(self) -> bool:
        """Always true: the final estimator learns from held-out rows.

        Returns
        -------
        bool
        """
        return True

    def held_out_fraction(self) -> float:
        """0.2: the final estimator gets more rows, and refitted members lose none to it.

        Returns
        -------
        float
        """
        return 0.2 if self.refit_members else 0.1

    def refits_members(self) -> bool:
        """``refit_members``: whether the members are refitted on their whole shard.

        Returns
        -------
        bool
        """
        return bool(self.refit_members)

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
            final = _default_final_estimator(classification, target)
        fit_params: dict[str, Any] = {}
        if data.meta_sample_weight is not None:
            # the default grid search passes the weights on to LogisticRegression.fit
            if self.final_estimator is not None and not has_fit_parameter(final, "sample_weight"):
                msg = (
                    f"Sample weights were given, but the final estimator {type(final).__name__} does not "
                    "accept sample_weight in fit. Choose another final_estimator or drop the weights."
                )
                raise ValueError(msg)
            fit_params["sample_weight"] = data.meta_sample_weight
        final.fit(features, target, **fit_params)
        # keep the chosen model, not the search (whose scorer and splitter have no place in a saved model)
        self.final_estimator_ = final.best_estimator_ if isinstance(final, GridSearchCV) else final
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


#: Folds of the cross-validation that chooses the default final estimator's penalty.
_FINAL_CV_FOLDS = 5
#: Penalties the default final estimator chooses from. Capped at 10: a weaker penalty lets it weight the small
#: differences between near-identical members heavily, which does not survive the members' refit.
_FINAL_CS = [0.01, 0.1, 1.0, 10.0]


def _default_final_estimator(classification: bool, target: np.ndarray) -> Any:
    """The final estimator used when none is given: a linear model whose penalty is chosen by 5-fold CV.

    (A grid search over ``LogisticRegression`` rather than ``LogisticRegressionCV``, whose parameters and
    attributes are changing across scikit-learn releases.) With fewer than 5 held-out rows in some class,
    stratified folds are impossible: plain ``LogisticRegression()``.
    """
    if not classification:
        return RidgeCV(alphas=np.logspace(-3, 3, 7))
    _, counts = np.unique(target, return_counts=True)
    if counts.min() < _FINAL_CV_FOLDS:
        return LogisticRegression()
    return GridSearchCV(
        LogisticRegression(max_iter=1000),
        {"C": _FINAL_CS},
        cv=_FINAL_CV_FOLDS,
        scoring="neg_log_loss",
    )


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
