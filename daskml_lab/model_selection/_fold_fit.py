"""One (candidate, fold) of a cross-validation: fit a fresh clone on the train rows, score it on the test rows.

The task of every in-memory fit, wherever it runs (a worker, or this process without a cluster); the distributed
fits of daskml_lab's own estimators share :func:`timed_fit` and the failed-fit result.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import FitFailedWarning

from daskml_lab.model_selection._scoring import Scorer
from daskml_lab.model_selection._shard_fits import candidate_model

__all__ = ["failed_fit", "fit_and_score", "fit_and_score_rows", "refit_candidate", "timed_fit"]


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
    y_train = None if y is None else _rows(y, train)
    y_test = None if y is None else _rows(y, test)
    return fit_and_score_rows(
        estimator,
        _rows(X, train),
        y_train,
        _rows(X, test),
        y_test,
        scorers,
        return_train_score=return_train_score,
        return_estimator=return_estimator,
        error_score=error_score,
        parameters=parameters,
    )


def fit_and_score_rows(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    scorers: dict[str, Scorer],
    *,
    return_train_score: bool,
    return_estimator: bool,
    error_score: Any,
    parameters: dict[str, Any] | None,
) -> dict[str, Any]:
    # one fold's fit and scores on in-memory rows (inside a task, or here without a cluster)
    model, fit_time, failed = timed_fit(
        estimator, parameters, X_train, y_train, scorers, error_score, return_estimator
    )
    if failed is not None:
        return failed
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


def timed_fit(
    estimator: Any,
    parameters: dict[str, Any] | None,
    X_train: Any,
    y_train: Any,
    scorers: dict[str, Scorer],
    error_score: Any,
    return_estimator: bool,
) -> tuple[Any, float, dict[str, Any] | None]:
    """A clone of ``estimator`` with ``parameters``, fitted and timed; the third item is the failed-fit result
    (:func:`failed_fit`) when the fit raised and ``error_score`` is not ``"raise"``, else ``None``."""
    model = candidate_model(estimator, parameters)
    start = time.perf_counter()
    try:
        model.fit(X_train, y_train)
    except Exception as err:
        if isinstance(error_score, str) and error_score == "raise":
            raise
        fit_time = time.perf_counter() - start
        return model, fit_time, failed_fit(err, model, scorers, error_score, fit_time, return_estimator)
    return model, time.perf_counter() - start, None


def refit_candidate(estimator: Any, X: Any, y: Any, parameters: dict[str, Any]) -> tuple[Any, float]:
    """A search's refit: a clone of ``estimator`` with ``parameters`` fitted on all of ``X`` and ``y``, and its
    fit time in seconds (a task on a worker, or this process)."""
    model = candidate_model(estimator, parameters)
    start = time.perf_counter()
    model.fit(X, y)
    return model, time.perf_counter() - start


def failed_fit(
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
    if isinstance(data, list):
        return [data[i] for i in index]
    return data[index]
