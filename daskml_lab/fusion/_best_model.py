"""Best-model selection: the one member with the best score on held-out rows it never trained on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.utils.metaestimators import available_if

from daskml_lab.fusion._base import Fusion, FusionData, aligned_proba, class_index
from daskml_lab.fusion._scorer import check_scorer_fits, resolve_scorer

__all__ = ["BestModel"]

logger = logging.getLogger(__name__)


def _best_has(method: str) -> Any:
    """``available_if`` check: before fit any member may have ``method``; after fit the chosen one must."""

    def check(self: BestModel) -> bool:
        if not hasattr(self, "best_estimator_"):
            return True
        best = self.best_estimator_
        if not hasattr(best, method):
            msg = f"The selected member {type(best).__name__} has no {method}."
            raise AttributeError(msg)
        if method == "decision_function" and not np.array_equal(np.asarray(best.classes_), self.classes_):
            msg = (
                f"The selected member saw only the classes {np.asarray(best.classes_).tolist()} of "
                f"{self.classes_.tolist()}: its decision_function has no column for the others. Use "
                "predict_proba, or shard with sharding='stratified'."
            )
            raise AttributeError(msg)
        return True

    return check


class BestModel(Fusion):
    """The member with the best score on held-out rows it never trained on; it alone predicts.

    For ``M`` members with held-out scores :math:`s_1, \\dots, s_M` (higher is better),

    .. math:: f(x) = f_{m^*}(x), \\qquad m^* = \\operatorname{arg\\,max}_m s_m,

    ties going to the first member (in shard order). Members whose score is ``NaN`` are never chosen; a single
    member is chosen even without a score.

    The scores come from held-out rows: in a shard ensemble, a share of each shard's own rows held out from
    its model's training (``validation_fraction``, default 0.1), and every member is scored on the held-out
    rows of all shards (its own shard's held-out rows and the other shards' rows, none of which it trained
    on); with :func:`fuse` or ``from_estimators``, the rows ``X_val``/``y_val`` given.

    - ``scoring=None``: accuracy (classifiers) or :math:`R^2` (regressors) over all held-out rows, exact
      whatever the blocks (additive statistics, computed where the blocks live).
    - ``scoring`` a scikit-learn scorer name or callable ``scorer(estimator, X, y)``: evaluated on every block
      of held-out rows where it lives (one block per shard in an ensemble; one block for in-memory
      ``X_val``, which gives scikit-learn's score exactly), and a member's score is the mean of its block
      scores weighted by the blocks' rows (or sample weights). Scores that are not means over rows (ROC AUC,
      F1) then differ slightly from the score of all held-out rows at once.

    Parameters
    ----------
    scoring : str, callable or None, default=None
        How members are compared; higher is better (scikit-learn's ``neg_*`` names for losses).

    Attributes
    ----------
    best_estimator_ : estimator
        The selected member (not copied): ``predict`` delegates to it.
    best_index_ : int
        Its position among the members (``estimators_`` of the ensemble).
    best_score_ : float
        Its held-out score.
    scores_ : ndarray of shape (n_members,)
        Every member's held-out score (``NaN`` where it could not be computed).
    classes_ : ndarray of shape (n_classes,)
        Global class labels (classification only).
    weights_ : ndarray of shape (n_members,)
        1 for the selected member, 0 for the others.
    n_members_ : int
        Number of members.

    See Also
    --------
    WeightedAveraging : Weights from the same held-out scores, every member kept.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from daskml_lab.fusion import fuse
    >>> X = np.arange(6.0).reshape(-1, 1)
    >>> good = LinearRegression().fit(X, 2 * X.ravel())
    >>> poor = LinearRegression().fit(X, -X.ravel())
    >>> fused = fuse([poor, good], "best-model", X_val=X, y_val=2 * X.ravel())
    >>> fused.best_index_, fused.weights_.tolist()
    (1, [0.0, 1.0])
    >>> fused.predict(np.array([[10.0]])).round(6).tolist()
    [20.0]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "scoring": [None, "str", "callable"],
    }

    def __init__(self, scoring: Any = None) -> None:
        self.scoring = scoring

    def requires_held_out(self) -> bool:
        """Always: the member is chosen by its held-out score.

        Returns
        -------
        bool
        """
        return True

    def member_scorer(self) -> Any:
        """The scorer of ``scoring``, or ``None`` for accuracy or R².

        Returns
        -------
        callable or None
        """
        return resolve_scorer(self.scoring, type(self).__name__)

    def check_base_estimator(self, estimator: Any, *, classification: bool) -> None:
        """Reject, before training, a scorer that cannot score the estimator (ROC AUC of a regressor).

        Parameters
        ----------
        estimator : estimator instance
            The base estimator (or a member).
        classification : bool
            Whether the task is classification.

        Raises
        ------
        ValueError
            If ``scoring`` is unknown, needs probabilities or decision values of a regressor, or needs a
            method the estimator lacks.
        """
        check_scorer_fits(self.scoring, estimator, classification=classification, fusion_name="BestModel")

    def fit(self, estimators: Sequence[Any], data: FusionData | None = None) -> BestModel:
        """Select the member with the best held-out score.

        Parameters
        ----------
        estimators : list of fitted estimators
            The members.
        data : FusionData
            ``validation_scores`` (computed with :meth:`member_scorer` on held-out rows); ``classes``.

        Returns
        -------
        self
            The fitted object.

        Raises
        ------
        ValueError
            If no member of several has a held-out score.
        """
        members, data = self._start_fit(estimators, data)
        scores = (
            np.full(len(members), np.nan)
            if data.validation_scores is None
            else np.asarray(data.validation_scores, dtype=np.float64)
        )
        if np.all(np.isnan(scores)) and len(members) > 1:
            msg = (
                f"BestModel chooses among {len(members)} members by their scores on held-out rows, but no score "
                "was computed (no rows were held out: shards too small for validation_fraction, or no X_val). "
                "In ShardEnsemble* keep validation_fraction > 0 (None gives 0.1) with shards of at least "
                "10 rows; with fuse() or from_estimators pass X_val and y_val (rows the members were not "
                "trained on)."
            )
            raise ValueError(msg)
        # a single member is the choice, with or without a score
        best = 0 if np.all(np.isnan(scores)) else int(np.nanargmax(scores))  # ties: the first, in shard order
        self.scores_ = scores
        self.best_index_ = best
        self.best_score_ = float(scores[best])
        self.best_estimator_ = members[best]
        self.weights_ = np.zeros(len(members))
        self.weights_[best] = 1.0
        logger.info(
            "selected member %s (%s) with held-out score %.6g",
            best,
            type(members[best]).__name__,
            scores[best],
        )
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Prediction of the selected member.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return np.asarray(self.best_estimator_.predict(X))

    @available_if(_best_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the selected member, aligned to ``classes_`` (0 for classes it never saw).

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows, n_classes)
        """
        best = self.best_estimator_
        return aligned_proba(best, class_index(best, self.classes_), X, len(self.classes_))

    @available_if(_best_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision function of the selected member (available when it saw every class).

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows,) or (n_rows, n_classes)
        """
        return np.asarray(self.best_estimator_.decision_function(X))
