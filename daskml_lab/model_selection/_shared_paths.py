"""Searches over the penalty of our linear models on dask data, through the shared-pass path engines.

A grid over ``C`` of :class:`~daskml_lab.linear_model.LogisticRegression` (or over ``alpha`` of
:class:`~daskml_lab.linear_model.Ridge`) on dask data needs no fit per (candidate, fold): :class:`GridSearchCV`
and :class:`RandomizedSearchCV` hand such searches here. For the logistic model every (candidate, fold) is one
problem of the lockstep L-BFGS of :class:`LogisticRegressionCV`, started from zeros as its own fit would be (so
the scores are those of separate fits), and one blocked pass per round evaluates all of them; for ridge, one
Gram pass gives every (candidate, fold) exactly, as in :class:`RidgeCV`. Parameters other than the penalty may
be in the candidates when all have the same value (a successive-halving round's ``max_iter``); train scores cost
the logistic path one more pass. Anything else (parameters that vary, other penalties, solvers or scorers)
returns ``None`` and runs as before.
"""

from __future__ import annotations

import numbers
import time
from typing import Any

import numpy as np
from dask.base import is_dask_collection
from sklearn.base import clone

from daskml_lab import solvers
from daskml_lab.base import check_params, encode_labels
from daskml_lab.data.validation import check_X_y
from daskml_lab.linear_model import LogisticRegression, Ridge
from daskml_lab.model_selection._execution import run_folds
from daskml_lab.model_selection._fold_roles import fold_role_matrix
from daskml_lab.model_selection._folds import block_class_counts
from daskml_lab.model_selection._gram_paths import r2_from_sse
from daskml_lab.model_selection._logistic_path import logistic_path
from daskml_lab.model_selection._scoring import Scorer, _estimator_score
from daskml_lab.monitoring import fit_span

__all__ = ["search_results", "shared_pass_results"]

#: Scorer names the logistic path scores in its own pass: name -> (metric, sign); None is ``score``.
_LOGISTIC_METRICS = {
    None: ("accuracy", 1.0),
    "accuracy": ("accuracy", 1.0),
    "neg_log_loss": ("log_loss", -1.0),
}
_RIDGE_METRICS = {None: "r2", "r2": "r2", "neg_mean_squared_error": "neg_mean_squared_error"}


def _scorer_key(scorer: Scorer) -> Any:
    # the estimator's own score is None; a named scorer is its name; any other callable is not ours to compute
    if scorer.function is _estimator_score:
        return None
    return scorer.name if scorer.name is not None else _UNSUPPORTED


_UNSUPPORTED = object()


def _penalty_values(candidates: list[dict[str, Any]], name: str) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The candidates' values of the penalty ``name`` and the parameters all of them share, or None.

    The shared parameters (one value for every candidate, e.g. the ``max_iter`` of a successive-halving
    round) are set on the estimator; a parameter whose value varies leaves the search to separate fits.
    """
    if not candidates or any(set(candidate) != set(candidates[0]) for candidate in candidates):
        return None
    if name not in candidates[0]:
        return None
    shared = {key: value for key, value in candidates[0].items() if key != name}
    for key, value in shared.items():
        if not isinstance(value, (numbers.Real, str, type(None))):
            return None  # arrays, estimators, callables: not compared here
        if any(
            type(candidate[key]) is not type(value) or candidate[key] != value for candidate in candidates
        ):
            return None
    values = [candidate[name] for candidate in candidates]
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0 for v in values):
        return None
    return np.asarray(values, dtype=np.float64), shared


def _logistic_applies(estimator: Any) -> bool:
    params = estimator.get_params(deep=False)
    return (
        type(estimator) is LogisticRegression
        and params["l1_ratio"] == 0
        and params["class_weight"] is None
        and params["solver"] in ("auto", "lbfgs")
        and not params["solver_options"]
        and params["checkpoint"] is None
    )


def shared_pass_results(
    estimator: Any,
    X: Any,
    y: Any,
    cv: Any,
    scorers: dict[str, Scorer],
    candidates: list[dict[str, Any]],
    *,
    groups: Any = None,
    return_train_score: bool = False,
) -> list[list[dict[str, Any]]] | None:
    """The search's results ``[candidate][fold]`` from a shared-pass path, or ``None`` when it does not apply.

    Parameters
    ----------
    estimator : estimator
    X, y : {array-like, dask array}
    cv : splitter or list of (train, test)
    scorers : dict of str to Scorer
    candidates : list of dict
    groups : array-like or None, default=None
    return_train_score : bool, default=False
        Also the scores on each fold's train rows (one more pass for the logistic path, none for ridge).

    Returns
    -------
    list of list of dict or None
        The dicts of :func:`~daskml_lab.model_selection._execution.fit_and_score` (``fit_time`` is the path's
        time shared evenly, ``score_time`` 0).
    """
    if y is None or not is_dask_collection(X):
        return None
    keys = {name: _scorer_key(scorer) for name, scorer in scorers.items()}
    path = _PATHS.get(type(estimator))
    if path is None:
        return None
    penalty, metrics, scores_of, applies = path
    found = _penalty_values(candidates, penalty)
    if found is None or not all(key in metrics for key in keys.values()):
        return None
    values, shared = found
    estimator = _with_params(estimator, shared)
    if estimator is None or not applies(estimator):
        return None
    return _timed(lambda: scores_of(estimator, X, y, cv, groups, values, keys, return_train_score))


def search_results(
    estimator: Any,
    X: Any,
    y: Any,
    cv: Any,
    scorers: dict[str, Scorer],
    candidates: list[dict[str, Any]],
    *,
    groups: Any,
    return_train_score: bool,
    error_score: Any,
    finished: dict[tuple[int, int], dict[str, Any]],
    on_result: Any,
    shared: bool = True,
    early_refit: Any = None,
) -> list[list[dict[str, Any]]]:
    """A search's results ``[candidate][fold]``: from the shared passes when they apply, else ``run_folds``.

    The shared passes give all the pairs together (``on_result`` is then called for each); a resumed search
    (``finished`` not empty), or ``shared=False``, fits its missing pairs one by one; ``early_refit`` goes to
    ``run_folds``.
    """
    if shared and not finished:
        results = shared_pass_results(
            estimator, X, y, cv, scorers, candidates, groups=groups, return_train_score=return_train_score
        )
        if results is not None:
            for c, row in enumerate(results):
                for f, result in enumerate(row):
                    on_result(c, f, result)
            return results
    return run_folds(
        estimator,
        X,
        y,
        cv,
        scorers,
        candidates=candidates,
        groups=groups,
        return_train_score=return_train_score,
        error_score=error_score,
        finished=finished,
        on_result=on_result,
        early_refit=early_refit,
    )


def _with_params(estimator: Any, shared: dict[str, Any]) -> Any:
    """A clone of ``estimator`` with the parameters every candidate shares, or None if one is not valid."""
    if not shared:
        return estimator
    try:
        changed = clone(estimator).set_params(**shared)
        check_params(changed)  # a bad value fails here as it would in each candidate's own fit
    except (ValueError, TypeError):
        return None  # left to the separate fits, which report it as theirs
    return changed


def _timed(run: Any) -> list[list[dict[str, Any]]]:
    start = time.perf_counter()
    scores, train_scores = run()  # {scorer name: (n_candidates, n_folds)}, the same for train rows or {}
    first = next(iter(scores.values()))
    n_candidates, n_folds = first.shape
    fit_time = (time.perf_counter() - start) / (n_candidates * n_folds)
    return [
        [
            {
                "fit_time": fit_time,
                "score_time": 0.0,
                "test_scores": {name: float(values[c, f]) for name, values in scores.items()},
                "train_scores": {name: float(values[c, f]) for name, values in train_scores.items()},
                "estimator": None,
                "fit_error": None,
            }
            for f in range(n_folds)
        ]
        for c in range(n_candidates)
    ]


Scores = dict[str, np.ndarray]


def _logistic_scores(
    estimator: Any,
    X: Any,
    y: Any,
    cv: Any,
    groups: Any,
    Cs: np.ndarray,
    keys: dict[str, Any],
    train: bool,
) -> tuple[Scores, Scores]:
    """Test (and with ``train``, train) scores of every (C, fold) of the lockstep cold-start path."""
    data = check_X_y(X, y)
    with fit_span("GridSearchCV", "shared-pass path"):
        classes = np.sort(block_class_counts(data.y)[0])
        if len(classes) < 2:
            msg = f"LogisticRegression needs at least 2 classes; y has only {classes.tolist()}."
            raise ValueError(msg)
        roles = fold_role_matrix(cv, data.X, data.y, groups)
        order = np.argsort(Cs, kind="stable")
        metrics = sorted({_LOGISTIC_METRICS[key][0] for key in keys.values()})
        _, scores, _ = logistic_path(
            data.X,
            encode_labels(data.y, classes),
            roles,
            Cs[order],
            metrics,
            n_classes=len(classes),
            fit_intercept=estimator.fit_intercept,
            tol=estimator.tol,
            max_iter=estimator.max_iter,
            # every candidate from zeros, as its own fit would start: the same iterates, the same scores
            cold_start=True,
            train_metrics=train,
        )

    def by_scorer(found: list[np.ndarray]) -> Scores:
        by_metric = dict(zip(metrics, found, strict=True))
        out = {}
        for name, key in keys.items():
            metric, sign = _LOGISTIC_METRICS[key]
            values = np.empty((len(Cs), by_metric[metric].shape[0]))
            values[order] = sign * by_metric[metric].T
            out[name] = values
        return out

    n = len(metrics)
    return by_scorer(scores[:n]), by_scorer(scores[n:]) if train else {}


def _ridge_scores(
    estimator: Any,
    X: Any,
    y: Any,
    cv: Any,
    groups: Any,
    alphas: np.ndarray,
    keys: dict[str, Any],
    train: bool,
) -> tuple[Scores, Scores]:
    """Test (and with ``train``, train) scores of every (alpha, fold), from one pass of Gram moments."""
    data = check_X_y(X, y, y_numeric=True)
    with fit_span("GridSearchCV", "shared-pass path"):
        roles = fold_role_matrix(cv, data.X, data.y, groups)
        moments = solvers.fold_moments(data.X, data.y, roles)
    n_folds = len(moments.test)
    sides = ("test", "train") if train else ("test",)
    r2 = {side: np.empty((len(alphas), n_folds)) for side in sides}
    mse = {side: np.empty((len(alphas), n_folds)) for side in sides}
    for f, (train_moments, test_moments) in enumerate(zip(moments.train, moments.test, strict=True)):
        coefs, intercepts = solvers.ridge_solve(train_moments, alphas, fit_intercept=estimator.fit_intercept)
        for side in sides:
            rows = test_moments if side == "test" else train_moments
            sse = solvers.heldout_sse(rows, coefs, intercepts)
            r2[side][:, f] = r2_from_sse(sse, rows)
            mse[side][:, f] = -sse / rows.n

    def by_scorer(side: str) -> Scores:
        return {
            name: (mse[side] if _RIDGE_METRICS[key] == "neg_mean_squared_error" else r2[side])
            for name, key in keys.items()
        }

    return by_scorer("test"), by_scorer("train") if train else {}


#: The estimators with a shared-pass path: (penalty, scorer keys, scores of the grid, whether it applies).
_PATHS: dict[type, tuple[str, dict[Any, Any], Any, Any]] = {
    LogisticRegression: ("C", _LOGISTIC_METRICS, _logistic_scores, _logistic_applies),
    Ridge: ("alpha", _RIDGE_METRICS, _ridge_scores, lambda estimator: True),
}
