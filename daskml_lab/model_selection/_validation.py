"""``cross_validate`` and ``cross_val_score``: scikit-learn's functions, with the folds run on the cluster.

The folds run through :func:`~daskml_lab.model_selection._execution.run_folds` (where each fit happens is
decided there); this module resolves ``cv`` and ``scoring`` and lays the results out as scikit-learn does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import is_classifier

from daskml_lab.model_selection._execution import check_cv, run_folds
from daskml_lab.model_selection._scoring import Scorer, check_scoring

__all__ = ["cross_val_score", "cross_validate"]


def _collect(
    results: list[dict[str, Any]], scorers: dict[str, Scorer], multimetric: bool, **flags: bool
) -> dict:
    out: dict[str, Any] = {
        "fit_time": np.array([r["fit_time"] for r in results]),
        "score_time": np.array([r["score_time"] for r in results]),
    }
    if flags["return_estimator"]:
        out["estimator"] = [r["estimator"] for r in results]
    for name in scorers:
        key = name if multimetric else "score"
        out[f"test_{key}"] = np.array([r["test_scores"][name] for r in results], dtype=float)
        if flags["return_train_score"]:
            out[f"train_{key}"] = np.array([r["train_scores"][name] for r in results], dtype=float)
    return out


def cross_validate(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    groups: Any = None,
    scoring: Any = None,
    cv: Any = None,
    return_train_score: bool = False,
    return_estimator: bool = False,
    error_score: Any = np.nan,
) -> dict[str, Any]:
    """Evaluate scores by cross-validation: :func:`sklearn.model_selection.cross_validate` on the cluster.

    Parameters
    ----------
    estimator : estimator
        Cloned for every fold; the object given is never fitted.
    X : {array-like, dask array} of shape (n_samples, n_features)
        Dask arrays stay on the workers: each fold's rows are taken inside every block. daskml_lab's
        estimators receive them as lazy dask arrays (distributed fits, one fold after the other); other
        estimators get one task per fold on the cluster, fed with the fold's rows assembled on the worker.
    y : {array-like, dask array} of shape (n_samples,), default=None
        Target.
    groups : array-like, default=None
        Passed to a scikit-learn splitter given as ``cv``.
    scoring : None, str, callable, list or dict, default=None
        scikit-learn's scorer names (:func:`sklearn.metrics.get_scorer_names`) or callables
        ``scorer(estimator, X, y)``; ``None`` uses ``estimator.score``. On dask data ``"accuracy"``, ``"r2"``,
        ``"neg_mean_squared_error"``, ``"neg_mean_absolute_error"`` and ``"neg_log_loss"`` are blocked
        scores of :mod:`daskml_lab.metrics`, computed together per fold.
    cv : int, splitter or iterable, default=None
        Folds, as in scikit-learn (``None``: 5; an int gives :class:`StratifiedKFold` for classifiers and
        :class:`KFold` otherwise, both of this package).
    return_train_score : bool, default=False
        Also score each fold's estimator on its training rows.
    return_estimator : bool, default=False
        Also return the fitted estimator of each fold.
    error_score : 'raise' or float, default=np.nan
        Score given to a fold whose fit fails (with a :class:`~sklearn.exceptions.FitFailedWarning`);
        ``"raise"`` raises the error.

    Returns
    -------
    dict of str to ndarray
        scikit-learn's keys: ``fit_time``, ``score_time``, ``test_score`` (or ``test_<name>`` for several
        scorers), ``train_score``/``train_<name>`` with ``return_train_score``, ``estimator`` with
        ``return_estimator``. Computed (not lazy), one entry per fold.

    Notes
    -----
    In-memory data are sent to the cluster once and every fold is one task (fit and score); without a
    distributed client the folds run here, one after the other. On dask data a daskml_lab estimator's fold is
    a distributed fit of its own, and its scores one computation that brings back a float per score; any other
    estimator's fold is one task fed with the fold's rows from the blocks. daskml_lab's estimators on in-memory
    data also run from here, one fold after the other, each fit spreading over the cluster.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from daskml_lab.model_selection import cross_validate
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> scores = cross_validate(LogisticRegression(), X, y, cv=3, scoring=["accuracy", "neg_log_loss"])
    >>> sorted(scores)
    ['fit_time', 'score_time', 'test_accuracy', 'test_neg_log_loss']
    """
    scorers, multimetric = check_scoring(scoring)
    splitter = check_cv(cv, y, classifier=is_classifier(estimator))
    (results,) = run_folds(
        estimator,
        X,
        y,
        splitter,
        scorers,
        groups=groups,
        return_train_score=return_train_score,
        return_estimator=return_estimator,
        error_score=error_score,
    )
    return _collect(
        results,
        scorers,
        multimetric,
        return_train_score=return_train_score,
        return_estimator=return_estimator,
    )


def cross_val_score(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    groups: Any = None,
    scoring: Any = None,
    cv: Any = None,
    error_score: Any = np.nan,
) -> np.ndarray:
    """The test score of every fold: :func:`sklearn.model_selection.cross_val_score` on the cluster.

    Parameters
    ----------
    estimator : estimator
        Cloned for every fold.
    X : {array-like, dask array} of shape (n_samples, n_features)
    y : {array-like, dask array} of shape (n_samples,), default=None
    groups : array-like, default=None
        Passed to a scikit-learn splitter given as ``cv``.
    scoring : None, str or callable, default=None
        One score (see :func:`cross_validate`).
    cv : int, splitter or iterable, default=None
        Folds (see :func:`cross_validate`).
    error_score : 'raise' or float, default=np.nan
        Score of a fold whose fit fails.

    Returns
    -------
    ndarray of shape (n_splits,)

    Raises
    ------
    ValueError
        For several scorers (use :func:`cross_validate`).

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.linear_model import Ridge
    >>> from daskml_lab.model_selection import cross_val_score
    >>> X, y = make_regression(n_samples=100, noise=1.0, random_state=0)
    >>> cross_val_score(Ridge(), X, y, cv=4).shape
    (4,)
    """
    if not (scoring is None or isinstance(scoring, str) or callable(scoring)):
        msg = f"cross_val_score takes one scorer (a name or a callable); got {scoring!r}. Use cross_validate."
        raise ValueError(msg)
    return cross_validate(estimator, X, y, groups=groups, scoring=scoring, cv=cv, error_score=error_score)[
        "test_score"
    ]
