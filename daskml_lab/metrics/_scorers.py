"""Whether a scikit-learn scorer can score an estimator at all: checked before any training."""

from __future__ import annotations

from typing import Any

from daskml_lab._compat import scorer_response_methods

__all__ = ["check_scorer_fits"]


def check_scorer_fits(scorer: Any, estimator: Any, *, classification: bool, name: str) -> None:
    """Reject a scorer that cannot score ``estimator``: ROC AUC of a regressor, log loss without probabilities.

    Parameters
    ----------
    scorer : callable
        A scorer of :func:`sklearn.metrics.get_scorer` or :func:`sklearn.metrics.make_scorer` (other callables
        are not checked: what they call is unknown).
    estimator : estimator instance
        The (unfitted) estimator it will score.
    classification : bool
        Whether the task is classification.
    name : str
        How the scorer was given, for messages (``"scoring='roc_auc'"``).

    Raises
    ------
    ValueError
        If the scorer scores probabilities or decision values and the task is regression, or the estimator
        has none of the methods the scorer calls.

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.metrics import get_scorer
    >>> check_scorer_fits(get_scorer("r2"), Ridge(), classification=False, name="scoring='r2'")
    >>> check_scorer_fits(get_scorer("roc_auc"), Ridge(), classification=False, name="scoring='roc_auc'")
    Traceback (most recent call last):
    ...
    ValueError: scoring='roc_auc' scores decision_function or predict_proba outputs of a classifier, but ...
    """
    methods = scorer_response_methods(scorer)
    if methods is None or methods == ("predict",):
        return
    if not classification:
        msg = (
            f"{name} scores {' or '.join(methods)} outputs of a classifier, but the task is regression "
            f"({type(estimator).__name__}). Use a regression scorer such as 'r2' or 'neg_mean_squared_error'."
        )
        raise ValueError(msg)
    if not any(hasattr(estimator, method) for method in methods):
        msg = (
            f"{name} needs {' or '.join(methods)}, which {type(estimator).__name__} does not provide. Use a "
            "scorer of predicted labels such as 'accuracy' or 'f1_macro', or an estimator with probabilities "
            "(e.g. SVC(probability=True))."
        )
        raise ValueError(msg)
