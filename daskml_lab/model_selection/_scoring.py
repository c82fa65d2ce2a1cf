"""Scorers for cross-validation and searches: scikit-learn's names, blocked where the data are dask arrays.

``scoring`` takes scikit-learn's forms (``None``, a name, a callable, a list of names or a dict of names or
callables) and becomes one dict ``{name: scorer}``. On in-memory data every scorer is scikit-learn's own
(:func:`sklearn.metrics.get_scorer`), so scores are scikit-learn's to the last bit. On dask data the names with
a blocked metric in :mod:`daskml_lab.metrics` are computed from lazy predictions in one pass per fold, all
scores of a fold together; other names and callables receive the lazy test rows and do what they do with them.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
from sklearn.metrics import get_scorer, get_scorer_names

from daskml_lab import metrics

__all__ = ["Scorer", "check_scoring", "lazy_score", "score_models"]


@dataclass(frozen=True)
class Scorer:
    """One named score of a fitted estimator on (X, y).

    Attributes
    ----------
    name : str or None
        scikit-learn's scorer name, when given by name (``None`` for callables and ``estimator.score``).
    function : callable
        ``function(estimator, X, y) -> float`` (scikit-learn's scorer protocol).
    """

    name: str | None
    function: Callable[[Any, Any, Any], Any]

    def __call__(self, estimator: Any, X: Any, y: Any) -> Any:
        return self.function(estimator, X, y)


def _estimator_score(estimator: Any, X: Any, y: Any) -> Any:
    # scoring=None: the estimator's own score method (module level so that it pickles into tasks)
    return estimator.score(X, y)


def _named(name: str) -> Scorer:
    if not isinstance(name, str):
        msg = f"A scorer name must be a str; got {name!r} of type {type(name).__name__}."
        raise TypeError(msg)
    try:
        return Scorer(name, get_scorer(name))
    except ValueError as err:
        close = difflib.get_close_matches(name, sorted(get_scorer_names()), n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        msg = (
            f"{name!r} is not a scikit-learn scorer name.{hint} sklearn.metrics.get_scorer_names() lists the "
            "valid names; a callable scorer(estimator, X, y) is accepted too."
        )
        raise ValueError(msg) from err


def check_scoring(scoring: Any) -> tuple[dict[str, Scorer], bool]:
    """``scoring`` as ``{result name: scorer}``, and whether it names several metrics.

    Parameters
    ----------
    scoring : None, str, callable, list, tuple, set or dict
        scikit-learn's forms: ``None`` (the estimator's ``score``), one name or callable (result name
        ``"score"``), several names (each its own result name) or a dict of names or callables.

    Returns
    -------
    scorers : dict of str to Scorer
    multimetric : bool
        ``True`` for a list, tuple, set or dict (results are named ``test_<name>``).

    Raises
    ------
    ValueError
        For an unknown scorer name (with the closest valid ones), an empty or repeated list.
    TypeError
        For anything else.
    """
    if scoring is None:
        return {"score": Scorer(None, _estimator_score)}, False
    if isinstance(scoring, str):
        return {"score": _named(scoring)}, False
    if callable(scoring):
        return {"score": Scorer(None, scoring)}, False
    if isinstance(scoring, list | tuple | set | frozenset):
        names = list(scoring)
        if not names or len(set(names)) != len(names):
            msg = f"scoring must be a non-empty list of distinct scorer names; got {scoring!r}."
            raise ValueError(msg)
        return {name: _named(name) for name in names}, True
    if isinstance(scoring, Mapping):
        if not scoring:
            msg = "scoring must not be an empty dict; give {name: scorer name or callable}."
            raise ValueError(msg)
        scorers = {}
        for key, value in scoring.items():
            scorers[str(key)] = _named(value) if isinstance(value, str) else Scorer(None, value)
            if not callable(scorers[str(key)].function):
                msg = f"scoring[{key!r}] must be a scorer name or a callable; got {value!r}."
                raise TypeError(msg)
        return scorers, True
    msg = (
        f"scoring must be None, a scorer name, a callable, a list of names or a dict; got {scoring!r} of type "
        f"{type(scoring).__name__}."
    )
    raise TypeError(msg)


def _negated(value: Any) -> Any:
    return -value


#: scikit-learn scorer names with a blocked metric: (prediction method, metric, sign).
_BLOCKED = {
    "accuracy": ("predict", metrics.accuracy_score, 1.0),
    "r2": ("predict", metrics.r2_score, 1.0),
    "neg_mean_squared_error": ("predict", metrics.mean_squared_error, -1.0),
    "neg_mean_absolute_error": ("predict", metrics.mean_absolute_error, -1.0),
    "neg_log_loss": ("predict_proba", metrics.log_loss, -1.0),
}


def lazy_score(scorer: Scorer, estimator: Any, X: Any, y: Any) -> Any | None:
    """A lazy (dask) score of ``estimator`` on dask rows, or ``None`` when the scorer has no blocked form.

    Parameters
    ----------
    scorer : Scorer
    estimator : fitted estimator
    X, y : dask.array.Array
        The rows to score on (same row chunks).

    Returns
    -------
    dask.array.Array (0-d) or None
        Computed by the caller together with the other scores of the fold.
    """
    if scorer.name not in _BLOCKED:
        return None
    method, metric, sign = _BLOCKED[scorer.name]
    if not hasattr(estimator, method):
        return None  # scikit-learn's scorer raises its own error about the missing method
    prediction = getattr(estimator, method)(X)
    if method == "predict_proba":
        score = metric(y, prediction, labels=np.asarray(estimator.classes_), compute=False)
    else:
        score = metric(y, prediction, compute=False)
    return score if sign > 0 else _negated(score)


def score_models(
    models: Sequence[Any],
    X_test: Any,
    y_test: Any,
    scorers: Mapping[str, Scorer],
    *,
    train: tuple[Any, Any] | None = None,
) -> tuple[list[dict[str, dict[str, Any]]], float]:
    """Every score of fitted ``models`` on one fold's dask rows, the blocked ones in one pass over the rows.

    Parameters
    ----------
    models : list of fitted estimators
        The models of one fold (its candidates).
    X_test, y_test : dask.array.Array
        The fold's test rows.
    scorers : dict of str to Scorer
    train : (X, y) or None, default=None
        The fold's training rows, scored too (``"train_scores"``) when given.

    Returns
    -------
    scores : list of dict
        Per model, ``{"test_scores": {name: float}}`` (and ``"train_scores"``).
    score_time : float
        Seconds spent, for all the models together.
    """
    start = time.perf_counter()
    sets = {"test_scores": (X_test, y_test)}
    if train is not None:
        sets["train_scores"] = train
    results: list[dict[str, dict[str, Any]]] = [{key: {} for key in sets} for _ in models]
    lazy: dict[tuple[int, str, str], Any] = {}
    for index, model in enumerate(models):
        for key, (X_set, y_set) in sets.items():
            for name, scorer in scorers.items():
                score = lazy_score(scorer, model, X_set, y_set)
                if score is None:
                    results[index][key][name] = scorer(model, X_set, y_set)
                else:
                    lazy[index, key, name] = score
    # compute: the blocked scores of every model together, one pass over the fold's rows; a float per score
    (values,) = dask.compute(lazy)
    for (index, key, name), value in values.items():
        results[index][key][name] = float(value)
    ordered = [{key: {name: result[key][name] for name in scorers} for key in sets} for result in results]
    return ordered, time.perf_counter() - start
