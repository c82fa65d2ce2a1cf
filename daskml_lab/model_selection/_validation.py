"""``cross_validate`` and ``cross_val_score``: scikit-learn's functions, with the folds run on the cluster.

Two ways to run, chosen by the data:

- **dask arrays**: each fold's rows are taken inside every block (no gathering, chunk sizes known), and the fold's
  estimator is fitted on them as a distributed fit, one fold after the other; all the blocked scores of a fold
  are computed together, in one pass over its rows.
- **in-memory data**: ``X`` and ``y`` are placed on the cluster once, and every fold is one task that fits a
  clone and scores it, all folds at once (the joblib model of scikit-learn's ``n_jobs``, on the cluster). Without
  a distributed client, or for daskml_lab's own estimators (which spread each fit over the cluster themselves),
  the folds run one after the other from this process.
"""

from __future__ import annotations

import math
import numbers
import time
import uuid
import warnings
from collections.abc import Iterable
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import is_dask_collection
from sklearn.base import clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.utils.multiclass import type_of_target

from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.waiting import wait_for
from daskml_lab.model_selection._folds import TEST, TRAIN
from daskml_lab.model_selection._scoring import Scorer, check_scoring, lazy_score
from daskml_lab.model_selection._splitters import KFold, StratifiedKFold
from daskml_lab.monitoring import fit_span, task_prefix

__all__ = ["check_cv", "cross_val_score", "cross_validate", "dask_folds", "fit_and_score", "run_folds"]


def check_cv(cv: Any = 5, y: Any = None, *, classifier: bool = False) -> Any:
    """The splitter ``cv`` stands for, as :func:`sklearn.model_selection.check_cv` decides, for dask data too.

    Parameters
    ----------
    cv : int, splitter, iterable of (train, test) or None, default=5
        An int (or ``None``, 5) gives :class:`StratifiedKFold` for a classifier with class labels and
        :class:`KFold` otherwise; a splitter (an object with ``split``) is used as is; an iterable of
        (train, test) pairs is used once.
    y : {array-like, dask array} or None, default=None
        The target (a dask target of a classifier counts as class labels without being read).
    classifier : bool, default=False
        Whether the estimator is a classifier.

    Returns
    -------
    splitter or list of (train, test)
    """
    if cv is None:
        cv = 5
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if classifier and y is not None:
            labels = is_dask_collection(y) or type_of_target(y) in ("binary", "multiclass")
            if labels:
                return StratifiedKFold(cv)
        return KFold(cv)
    if hasattr(cv, "split"):
        return cv
    if isinstance(cv, Iterable) and not isinstance(cv, str):
        return list(cv)
    msg = (
        f"cv must be an int (number of folds), a splitter with a split method, or an iterable of (train, test) "
        f"pairs; got {cv!r} of type {type(cv).__name__}."
    )
    raise ValueError(msg)


class _IndexFold:
    """A fold given as row indices or a boolean mask (a scikit-learn splitter or a list): dask's indexing."""

    def __init__(self, train: Any, test: Any) -> None:
        self.rows = {TRAIN: train, TEST: test}

    def take(self, array: da.Array, role: int) -> da.Array:
        rows = self.rows[role]
        if is_dask_collection(rows):
            # a lazy mask from another splitter: dask's boolean indexing (unknown chunk sizes, computed here)
            return array[rows].compute_chunk_sizes() if rows.dtype == bool else array[rows]
        return array[np.asarray(rows)]


def dask_folds(cv: Any, X: da.Array, y: Any, groups: Any = None) -> list[Any]:
    """The folds of ``cv`` on dask data: objects whose ``take(array, role)`` gives a fold's rows lazily.

    Parameters
    ----------
    cv : splitter or list of (train, test)
        As returned by :func:`check_cv`.
    X, y : dask.array.Array
        The data, with the same row chunks.
    groups : array-like or None
        Passed on to splitters other than daskml_lab's.

    Returns
    -------
    list
    """
    if hasattr(cv, "_dask_folds"):
        # daskml_lab's splitters: roles computed next to the blocks, chunk sizes known in advance
        return list(cv._dask_folds(X, y))
    pairs = cv.split(X, y, groups) if hasattr(cv, "split") else cv
    return [_IndexFold(train, test) for train, test in pairs]


def _check_dask_data(X: Any, y: Any) -> tuple[da.Array, Any]:
    if not isinstance(X, da.Array):
        msg = (
            f"cross_validate takes a dask array or in-memory data; got {type(X).__name__}. Turn a dask DataFrame "
            "into an array with daskml_lab.data.from_dataframe (or X.to_dask_array(lengths=True))."
        )
        raise TypeError(msg)
    if X.ndim == 2 and X.numblocks[1] > 1:
        X = X.rechunk({1: -1})  # lazy: the folds take whole rows, so every block holds all the columns
    if y is None:
        return X, None
    rows = X.chunks[0]
    if not is_dask_collection(y):
        y = np.asarray(y)
        if len(y) != X.shape[0]:
            msg = f"X has {X.shape[0]} rows but y has {len(y)}; give one target per row."
            raise ValueError(msg)
        return X, da.from_array(y, chunks=(rows, *y.shape[1:]))
    if y.shape[0] != X.shape[0]:
        msg = f"X has {X.shape[0]} rows but y has {y.shape[0]}; give one target per row."
        raise ValueError(msg)
    return X, (y if y.chunks[0] == rows else y.rechunk({0: rows}))


def fit_and_score(
    estimator: Any,
    X: Any,
    y: Any,
    train: Any,
    test: Any,
    scorers: dict[str, Scorer],
    *,
    return_train_score: bool = False,
    return_estimator: bool = False,
    error_score: Any = np.nan,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit ``estimator`` (a fresh clone) on the train rows of in-memory data and score it: one fold's task.

    Parameters
    ----------
    estimator : estimator
        Cloned here; ``parameters`` are set on the clone.
    X, y : array-like
        The whole data (placed once on the cluster and shared by the folds' tasks).
    train, test : ndarray of int
        Row indices.
    scorers : dict of str to Scorer
    return_train_score, return_estimator : bool, default=False
    error_score : 'raise' or float, default=np.nan
        Score of a fit that fails (with a :class:`~sklearn.exceptions.FitFailedWarning`), or ``"raise"``.
    parameters : dict or None, default=None
        Parameters of this candidate (searches).

    Returns
    -------
    dict
        ``fit_time``, ``score_time``, ``test_scores``, ``train_scores`` (dicts by scorer name), ``estimator``
        (or ``None``) and ``fit_error`` (the error's text, or ``None``).
    """
    model = clone(estimator)
    if parameters:
        model.set_params(**clone(parameters, safe=False))
    X_train, X_test = _rows(X, train), _rows(X, test)
    y_train = None if y is None else _rows(y, train)
    y_test = None if y is None else _rows(y, test)
    start = time.perf_counter()
    try:
        model.fit(X_train, y_train)
    except Exception as err:
        if isinstance(error_score, str) and error_score == "raise":
            raise
        return _failed_fit(err, model, scorers, error_score, time.perf_counter() - start, return_estimator)
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    test_scores = {name: scorer(model, X_test, y_test) for name, scorer in scorers.items()}
    score_time = time.perf_counter() - start
    train_scores = (
        {name: scorer(model, X_train, y_train) for name, scorer in scorers.items()}
        if return_train_score
        else {}
    )
    return {
        "fit_time": fit_time,
        "score_time": score_time,
        "test_scores": test_scores,
        "train_scores": train_scores,
        "estimator": model if return_estimator else None,
        "fit_error": None,
    }


def _failed_fit(
    err: Exception, model: Any, scorers: dict[str, Scorer], error_score: Any, fit_time: float, keep: bool
) -> dict[str, Any]:
    """The result of a fit that raised: every score is ``error_score``, with a ``FitFailedWarning``."""
    failed = {name: error_score for name in scorers}
    warnings.warn(
        f"A fit failed and its scores were set to error_score={error_score!r} (error_score='raise' shows "
        f"the traceback): {type(err).__name__}: {err}",
        FitFailedWarning,
        stacklevel=3,
    )
    return {
        "fit_time": fit_time,
        "score_time": 0.0,
        "test_scores": failed,
        "train_scores": dict(failed),
        "estimator": model if keep else None,
        "fit_error": f"{type(err).__name__}: {err}",
    }


def _rows(data: Any, index: Any) -> Any:
    if hasattr(data, "iloc"):
        return data.iloc[index]
    return data[index]


def _fit_and_score_dask(
    estimator: Any,
    X: da.Array,
    y: Any,
    fold: Any,
    scorers: dict[str, Scorer],
    *,
    return_train_score: bool,
    return_estimator: bool,
    error_score: Any,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    model = clone(estimator)
    if parameters:
        model.set_params(**clone(parameters, safe=False))
    X_train, X_test = fold.take(X, TRAIN), fold.take(X, TEST)
    y_train = None if y is None else fold.take(y, TRAIN)
    y_test = None if y is None else fold.take(y, TEST)
    start = time.perf_counter()
    try:
        model.fit(X_train, y_train)
    except Exception as err:
        if isinstance(error_score, str) and error_score == "raise":
            raise
        return _failed_fit(err, model, scorers, error_score, time.perf_counter() - start, return_estimator)
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    sets = {"test_scores": (X_test, y_test)}
    if return_train_score:
        sets["train_scores"] = (X_train, y_train)
    lazy: dict[tuple[str, str], Any] = {}
    results: dict[str, dict[str, Any]] = {key: {} for key in sets}
    for key, (X_set, y_set) in sets.items():
        for name, scorer in scorers.items():
            score = lazy_score(scorer, model, X_set, y_set)
            if score is None:
                results[key][name] = scorer(model, X_set, y_set)
            else:
                lazy[key, name] = score
    # compute: the fold's blocked scores together, one pass over its rows; a float per score comes back
    (values,) = dask.compute(lazy)
    for (key, name), value in values.items():
        results[key][name] = float(value)
    return {
        "fit_time": fit_time,
        "score_time": time.perf_counter() - start,
        "test_scores": {name: results["test_scores"][name] for name in scorers},
        "train_scores": {name: results["train_scores"][name] for name in scorers}
        if return_train_score
        else {},
        "estimator": model if return_estimator else None,
        "fit_error": None,
    }


def run_folds(
    estimator: Any,
    X: Any,
    y: Any,
    cv: Any,
    scorers: dict[str, Scorer],
    *,
    candidates: list[dict[str, Any]] | None = None,
    groups: Any = None,
    return_train_score: bool = False,
    return_estimator: bool = False,
    error_score: Any = np.nan,
) -> list[list[dict[str, Any]]]:
    """Fit and score every (candidate, fold): results indexed ``[candidate][fold]``.

    Parameters
    ----------
    estimator : estimator
    X, y : {array-like, dask array}
    cv : splitter or list of (train, test)
        From :func:`check_cv`.
    scorers : dict of str to Scorer
    candidates : list of dict or None, default=None
        Parameter settings (``None``: the estimator as it is).
    groups : array-like or None, default=None
    return_train_score, return_estimator : bool, default=False
    error_score : 'raise' or float, default=np.nan

    Returns
    -------
    list of list of dict
        The dicts of :func:`fit_and_score`.
    """
    candidates = candidates if candidates is not None else [{}]
    options = {
        "return_train_score": return_train_score,
        "return_estimator": return_estimator,
        "error_score": error_score,
    }
    with fit_span("cross-validation", type(estimator).__name__):
        if is_dask_collection(X) or is_dask_collection(y):
            X, y = _check_dask_data(X, y)
            folds = dask_folds(cv, X, y, groups)
            # distributed fits: one after the other, each lazy over its fold's blocks
            return [
                [
                    _fit_and_score_dask(estimator, X, y, fold, scorers, parameters=parameters, **options)
                    for fold in folds
                ]
                for parameters in candidates
            ]
        splits = [
            (np.asarray(train), np.asarray(test))
            for train, test in (cv.split(X, y, groups) if hasattr(cv, "split") else cv)
        ]
        client = current_client()
        if client is None or _distributes_itself(estimator):
            return [
                [
                    fit_and_score(estimator, X, y, train, test, scorers, parameters=parameters, **options)
                    for train, test in splits
                ]
                for parameters in candidates
            ]
        return _run_on_cluster(client, estimator, X, y, splits, scorers, candidates, options)


def _distributes_itself(estimator: Any) -> bool:
    """Whether ``estimator`` (or one of its parts, such as a pipeline step) is one of daskml_lab's.

    Those fits spread their own work over the cluster, so they run from here one after the other instead of
    inside a task each (nested cluster work inside tasks would only compete for the same worker threads).
    """
    parts = [estimator]
    if hasattr(estimator, "get_params"):
        parts += [value for value in estimator.get_params(deep=True).values() if hasattr(value, "fit")]
    return any(type(part).__module__.startswith("daskml_lab.") for part in parts)


def _run_on_cluster(
    client: Any,
    estimator: Any,
    X: Any,
    y: Any,
    splits: list[tuple[np.ndarray, np.ndarray]],
    scorers: dict[str, Scorer],
    candidates: list[dict[str, Any]],
    options: dict[str, Any],
) -> list[list[dict[str, Any]]]:
    # the data go to the cluster once; every (candidate, fold) task reads them from there
    X_future, y_future = client.scatter([X, y])
    estimator_future = client.scatter(estimator)
    run = uuid.uuid4().hex[:12]
    prefix = task_prefix("cv fit")
    futures = [
        [
            client.submit(
                fit_and_score,
                estimator_future,
                X_future,
                y_future,
                train,
                test,
                scorers,
                parameters=parameters,
                key=f"{prefix}-{run}-{c}-{f}",
                **options,
            )
            for f, (train, test) in enumerate(splits)
        ]
        for c, parameters in enumerate(candidates)
    ]
    flat = [future for row in futures for future in row]
    wait_for(flat, what="the cross-validation fits", client=client, timeout_s=math.inf)
    results = client.gather(flat)
    return [results[c * len(splits) : (c + 1) * len(splits)] for c in range(len(candidates))]


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
        Dask arrays stay on the workers: each fold's rows are taken inside every block and the fold's estimator
        receives lazy dask arrays (use an estimator that fits on dask arrays, such as those of
        :mod:`daskml_lab.linear_model`; a scikit-learn estimator would gather each fold into its own process).
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
    distributed client the folds run here, one after the other. On dask data every fold is a distributed fit
    of its own, and its scores one computation that brings back a float per score.

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
