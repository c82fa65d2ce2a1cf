"""Blocked scores: each metric reads every row block once, where it lives, and only small statistics travel.

The functions take numpy arrays or row-chunked dask arrays (the same row chunks for every input) and follow the
names, signatures and definitions of :mod:`sklearn.metrics`. For dask input they compute once and return a float
(or, for :func:`confusion_matrix`, an ndarray); ``compute=False`` returns a lazy dask array instead, so that
several scores can be computed together in one ``dask.compute``. :func:`classification_scores` and
:func:`regression_scores` give the usual set of scores from one pass. :func:`check_scorer_fits` rejects, before
any training, a scikit-learn scorer that cannot score an estimator (ROC AUC of a regressor).

Every metric follows one rule for rows that carry no weight: when the sample weights sum to zero (all weights
zero), the score is undefined and the metric raises ``ValueError``, as scikit-learn does; empty input raises
``ValueError`` before anything is computed.

Every score is built from three pure numpy kernels, ``_<stat>_chunk`` (one block to a small dict of sufficient
statistics), ``_<stat>_combine`` (merge a list of such dicts) and ``_<metric>_agg`` (merged statistics to the
score). The estimators' ``score`` methods, the fusion strategies' validation scores and ``daskml-lab evaluate``
all use them.
"""

from daskml_lab.metrics._classification import (
    accuracy_score,
    classification_scores,
    confusion_matrix,
    log_loss,
)
from daskml_lab.metrics._regression import (
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    regression_scores,
)
from daskml_lab.metrics._scorers import check_scorer_fits

__all__ = [
    "accuracy_score",
    "check_scorer_fits",
    "classification_scores",
    "confusion_matrix",
    "log_loss",
    "mean_absolute_error",
    "mean_squared_error",
    "r2_score",
    "regression_scores",
]
