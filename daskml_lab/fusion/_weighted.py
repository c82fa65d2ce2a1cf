"""Weighted averaging of member outputs with uniform, size, validation or user-given weights."""

from __future__ import annotations

import logging
import numbers
from typing import Any, ClassVar

import numpy as np

from daskml_lab.base import ArrayLike, Interval, Options
from daskml_lab.fusion._averaging import _Averaging
from daskml_lab.fusion._base import FusionData, _normalise_weights, _size_weights, _user_weights

__all__ = ["WeightedAveraging"]

logger = logging.getLogger(__name__)


class WeightedAveraging(_Averaging):
    """Weighted mean of the members' probabilities, votes or predictions.

    For ``M`` members with outputs ``o_m(x)`` and non-negative weights normalised to ``sum_m w_m = 1``,

    .. math:: S(x) = \\sum_{m=1}^{M} w_m\\, o_m(x),

    where ``o_m`` is the member's probability vector aligned to the global classes
    (``method="predict_proba"``; ``predict`` is ``argmax_c S_c``, ties to the first class), the one-hot vector
    of its predicted label (``method="predict"``: weighted majority vote), or its prediction (regression:
    ``predict`` is ``S``).

    Weights:

    - ``"uniform"``: :math:`w_m = 1/M` (soft voting).
    - ``"size"``: :math:`w_m = n_m / \\sum_j n_j`, with :math:`n_m` the rows member ``m`` was trained on.
    - ``"validation"``: from each member's score :math:`s_m` on held-out rows it never trained on (accuracy
      for classifiers, :math:`R^2` for regressors) and the score :math:`s_0` of a constant prediction on the
      same rows (the majority-class accuracy; 0 for :math:`R^2`, which already compares with the mean),

      .. math:: w_m \\propto \\max(s_m - s_0, 0)^{p},

      with ``p = power``. A member no better than the constant prediction gets weight 0; if no member beats
      it, the weights fall back to uniform (logged).
    - an array of non-negative numbers, one per shard (or per member), normalised to sum 1.

    Parameters
    ----------
    weights : {"uniform", "size", "validation"} or array-like of shape (n_shards,), default="size"
        How members are weighted.
    method : {"auto", "predict_proba", "predict"}, default="auto"
        What is averaged for classifiers: probabilities, or one-hot predicted labels. ``"auto"`` uses
        probabilities when every member has ``predict_proba``. Regression always averages predictions.
    power : float, default=1.0
        Exponent ``p`` of the validation rule; larger values favour the best members more.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Global class labels (classification only).
    estimators_ : list of estimators
        The members.
    weights_ : ndarray of shape (n_members,)
        Normalised weights.
    n_members_ : int
        Number of members.
    method_ : str
        The method used.
    class_index_ : list of ndarray
        Positions of each member's classes among ``classes_`` (classification only).

    See Also
    --------
    SoftVoting : Uniform weights.
    Stacking : Weights learned by a meta-estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> members = [LinearRegression().fit(X, [0.0, 1.0, 2.0]), LinearRegression().fit(X, [1.0, 2.0, 3.0])]
    >>> fused = WeightedAveraging(weights=[3, 1]).fit(members)
    >>> fused.weights_.tolist()
    [0.75, 0.25]
    >>> fused.predict(X).round(6).tolist()
    [0.25, 1.25, 2.25]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "weights": [Options({"uniform", "size", "validation"}), ArrayLike()],
        "method": [Options({"auto", "predict_proba", "predict"})],
        "power": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(self, weights: Any = "size", *, method: str = "auto", power: float = 1.0) -> None:
        self.weights = weights
        self.method = method
        self.power = power

    def _resolve_method(self) -> str:
        return self.method

    def requires_held_out(self) -> bool:
        """Whether the weights come from held-out scores (``weights="validation"``).

        Returns
        -------
        bool
        """
        return isinstance(self.weights, str) and self.weights == "validation"

    def _weights(self, members: list[Any], data: FusionData) -> np.ndarray:
        name = type(self).__name__
        if isinstance(self.weights, str):
            if self.weights == "uniform":
                return np.full(len(members), 1.0 / len(members))
            if self.weights == "size":
                return _size_weights(data, name)
            return self._validation_weights(members, data)
        return _user_weights(self.weights, data, name)

    def _validation_weights(self, members: list[Any], data: FusionData) -> np.ndarray:
        scores = data.validation_scores
        if scores is None or data.baseline_score is None or np.all(np.isnan(scores)):
            msg = (
                "WeightedAveraging(weights='validation') needs each member's score on held-out rows, but "
                "none were computed. In ShardEnsemble* set validation_fraction > 0 (e.g. 0.1); with fuse() "
                "or from_estimators pass X_val and y_val."
            )
            raise ValueError(msg)
        scores = np.asarray(scores, dtype=np.float64)
        skill = np.clip(np.nan_to_num(scores - data.baseline_score, nan=0.0), 0.0, None) ** self.power
        if skill.sum() <= 0:
            logger.warning(
                "No member scores above the constant-prediction baseline %.4g on held-out rows (scores %s); "
                "using uniform weights.",
                data.baseline_score,
                np.round(scores, 4).tolist(),
            )
            return np.full(len(members), 1.0 / len(members))
        return _normalise_weights(skill, "validation")
