"""Voting: the members' labels (hard) or class probabilities (soft), every member weighing the same."""

from __future__ import annotations

from typing import Any, ClassVar

from daskml_lab.fusion._averaging import _Averaging

__all__ = ["HardVoting", "SoftVoting"]


class HardVoting(_Averaging):
    """Majority vote of the members' predicted labels.

    For ``M`` members with predicted labels ``h_m(x)``, the fused label is

    .. math:: \\hat y(x) = \\arg\\max_{c} \\sum_{m=1}^{M} [h_m(x) = c].

    **Tie rule**: among classes with the most votes, the one that comes first in the sorted ``classes_`` wins
    (``numpy.argmax`` picks the first maximum), as in :class:`sklearn.ensemble.VotingClassifier`.

    Works with any classifier, with or without ``predict_proba``; offers neither ``predict_proba`` nor
    ``decision_function``. Classification only.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Global class labels.
    estimators_ : list of estimators
        The members.
    weights_ : ndarray of shape (n_members,)
        ``1 / n_members`` each.
    n_members_ : int
        Number of members.
    method_ : str
        ``"predict"``.
    class_index_ : list of ndarray
        Positions of each member's classes among ``classes_``.

    See Also
    --------
    SoftVoting : Mean of class probabilities.
    WeightedAveraging : Votes or probabilities with unequal weights.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> members = [DecisionTreeClassifier().fit(X, y) for y in ([0, 0, 1, 1], [0, 1, 1, 1])]
    >>> HardVoting().fit(members).predict(X).tolist()  # row 1 is a tie: class 0 comes first
    [0, 0, 1, 1]
    """

    _method = "predict"
    prediction_methods: ClassVar[frozenset[str]] = frozenset({"predict"})  # votes give no scores

    def __init__(self) -> None:
        pass

    def check_base_estimator(self, estimator: Any, *, classification: bool) -> None:
        """Reject regression: votes are over class labels.

        Parameters
        ----------
        estimator : estimator instance
            The unfitted base estimator.
        classification : bool
            Whether the task is classification.

        Raises
        ------
        ValueError
            For regression.
        """
        if not classification:
            msg = (
                "HardVoting counts votes for class labels, so it cannot fuse regressors. Use "
                "fusion='soft-voting' (the mean prediction) or fusion='weighted'."
            )
            raise ValueError(msg)

    def fit(self, estimators: Any, data: Any = None) -> HardVoting:
        """Check that the members are classifiers and record the global classes.

        Parameters
        ----------
        estimators : list of fitted classifiers
            The members.
        data : FusionData, default=None
            Only ``classes`` is used.

        Returns
        -------
        self
            The fitted object.
        """
        super().fit(estimators, data)
        if not self._is_classifier():
            self.check_base_estimator(self.estimators_[0], classification=False)
        return self


class SoftVoting(_Averaging):
    """Mean of the members' class probabilities (classification) or predictions (regression).

    For ``M`` members with probability vectors ``p_m(x)`` aligned to the global classes (a class a member
    never saw gets probability 0 from it),

    .. math:: P(x) = \\frac{1}{M} \\sum_{m=1}^{M} p_m(x), \\qquad \\hat y(x) = \\arg\\max_c P_c(x),

    with ties going to the class that comes first in ``classes_``. For regressors,
    :math:`\\hat y(x) = \\frac{1}{M} \\sum_m f_m(x)`, the rule of :class:`sklearn.ensemble.VotingRegressor`.
    ``decision_function`` is the mean of the members' decision functions, available when every member saw
    every class.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Global class labels (classification only).
    estimators_ : list of estimators
        The members.
    weights_ : ndarray of shape (n_members,)
        ``1 / n_members`` each.
    n_members_ : int
        Number of members.
    method_ : str
        ``"predict_proba"`` (classification) or ``"predict"`` (regression).
    class_index_ : list of ndarray
        Positions of each member's classes among ``classes_`` (classification only).

    See Also
    --------
    HardVoting : Majority of labels.
    WeightedAveraging : The same mean with unequal weights.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> members = [LogisticRegression().fit(X, [0, 0, 1, 1]), LogisticRegression().fit(X, [0, 1, 1, 1])]
    >>> fused = SoftVoting().fit(members)
    >>> mean = (members[0].predict_proba(X) + members[1].predict_proba(X)) / 2
    >>> bool(np.allclose(fused.predict_proba(X), mean))
    True
    """

    _method = "predict_proba"

    def __init__(self) -> None:
        pass
