"""``GridSearchCV`` and ``RandomizedSearchCV``: scikit-learn's searches, with candidates x folds on the cluster.

The candidates come from scikit-learn's own :class:`~sklearn.model_selection.ParameterGrid` and
:class:`~sklearn.model_selection.ParameterSampler`, the folds from :func:`check_cv`, and every (candidate, fold)
runs through the same code as :func:`cross_validate` (``run_folds``): on in-memory data all of them are
concurrent tasks on the cluster, the data placed once; on dask data each is a distributed fit on the fold's lazy
rows, one after the other. ``cv_results_`` and the ``best_*`` attributes follow scikit-learn's definitions
(ranks by ``method="min"``, population standard deviations, NaN scores ranked last).
"""

from __future__ import annotations

import copy
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, is_classifier
from sklearn.model_selection import ParameterGrid, ParameterSampler
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from daskml_lab.base import HasMethods, Interval, Options, check_params
from daskml_lab.metrics import check_scorer_fits
from daskml_lab.model_selection._cluster_fits import EarlyRefit
from daskml_lab.model_selection._execution import check_cv, check_fold_classes
from daskml_lab.model_selection._fold_fit import refit_candidate
from daskml_lab.model_selection._scoring import check_scoring
from daskml_lab.model_selection._search_checkpoint import search_checkpoint
from daskml_lab.model_selection._search_progress import SearchProgress
from daskml_lab.model_selection._shared_paths import search_results
from daskml_lab.monitoring import fit_span, start_run

__all__ = ["GridSearchCV", "RandomizedSearchCV"]


def _check_candidates(estimator: Any, candidates: list[dict[str, Any]], source: str) -> None:
    if not candidates:
        msg = f"{source} gives no candidate to try; give at least one value for at least one parameter."
        raise ValueError(msg)
    valid = estimator.get_params(deep=True)
    for candidate in candidates:
        unknown = sorted(name for name in candidate if name not in valid)
        if unknown:
            msg = (
                f"Invalid parameter(s) {unknown} for estimator {type(estimator).__name__} in {source}. Valid "
                f"parameters are: {sorted(valid)}."
            )
            raise ValueError(msg)


def _estimator_has(method: str) -> Callable[[Any], bool]:
    def check(search: Any) -> bool:
        target = search.best_estimator_ if hasattr(search, "best_estimator_") else search.estimator
        return hasattr(target, method)

    return check


class _BaseSearch(MetaEstimatorMixin, BaseEstimator):
    """What the two searches share: running the candidates, ``cv_results_``, refit and delegation."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "estimator": [HasMethods(["fit"])],
        "scoring": [None, "str", "callable", list, tuple, set, dict],
        "refit": ["boolean", "str", "callable"],
        "cv": [Interval(numbers.Integral, 2, None, closed="left"), HasMethods(["split"]), Iterable, None],
        "return_train_score": ["boolean"],
        "error_score": [Options({"raise"}), numbers.Real],
        "checkpoint": [None, "str", os.PathLike],
    }

    def _candidates(self) -> tuple[list[dict[str, Any]], str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def fit(self, X: Any, y: Any = None, *, groups: Any = None) -> _BaseSearch:
        """Run every candidate on every fold, then refit the best one on all the data.

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)
            Dask arrays stay on the workers (each fold's rows are taken inside every block).
        y : {array-like, dask array} of shape (n_samples,), default=None
        groups : array-like, default=None
            Passed to a scikit-learn splitter given as ``cv``.

        Returns
        -------
        self
        """
        check_params(self)
        candidates, source = self._candidates()
        _check_candidates(self.estimator, candidates, source)
        scorers, multimetric = check_scoring(self.scoring)
        for scorer in scorers.values():
            # before any fit: e.g. ROC AUC of a regressor, log loss of a model without probabilities
            check_scorer_fits(
                scorer.function,
                self.estimator,
                classification=is_classifier(self.estimator),
                name=f"scoring={scorer.name!r}",
            )
        refit_metric = self._refit_metric(scorers, multimetric)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        if isinstance(cv, list):
            n_splits = len(cv)
        else:
            n_splits = cv.get_n_splits(X, y, groups)
        if is_classifier(self.estimator):
            check_fold_classes(cv, X, y, groups)
        key = refit_metric if refit_metric is not None else next(iter(scorers))
        with (
            search_checkpoint(
                self, X, y, groups, candidates=candidates, cv=cv, n_splits=n_splits
            ) as checkpoint,
            fit_span(type(self).__name__),
        ):
            finished = {} if checkpoint is None else checkpoint.finished()
            run = start_run(
                "search",
                n_fits=len(candidates) * n_splits,
                info={
                    "estimator": type(self.estimator).__name__,
                    "candidates": len(candidates),
                    "folds": n_splits,
                    "resumed fits": len(finished),
                },
            )
            progress = SearchProgress(run, candidates, n_splits, key, finished)
            # the best candidate so far refitted on a worker left without fits (a fixed refit metric only)
            early_refit = None if callable(self.refit) or self.refit is False else EarlyRefit(n_splits, key)

            def on_result(candidate: int, fold: int, result: dict[str, Any]) -> None:
                if checkpoint is not None:
                    checkpoint.save(candidate, fold, result)
                progress(candidate, fold, result)

            # a grid over the penalty of our linear models on dask data: one shared-pass path for all the pairs
            results = search_results(
                self.estimator,
                X,
                y,
                cv,
                scorers,
                candidates,
                groups=groups,
                return_train_score=self.return_train_score,
                error_score=self.error_score,
                finished=finished,
                on_result=on_result,
                early_refit=early_refit,
            )
        self.cv_results_ = _cv_results(
            candidates, results, list(scorers), multimetric, self.return_train_score
        )
        self.multimetric_ = multimetric
        self.n_splits_ = n_splits
        if callable(self.refit):
            self.best_index_ = int(self.refit(self.cv_results_))
        elif self.refit is not False:
            key = refit_metric if multimetric else "score"
            self.best_index_ = int(np.argmin(self.cv_results_[f"rank_test_{key}"]))
            self.best_score_ = float(self.cv_results_[f"mean_test_{key}"][self.best_index_])
        if self.refit is not False:
            refitted = None if early_refit is None else early_refit.take(self.best_index_)
            self._refit_best(candidates[self.best_index_], X, y, refitted)
        return self

    def _refit_best(
        self, best_params: dict[str, Any], X: Any, y: Any, refitted: tuple[Any, float] | None = None
    ) -> None:
        """Set ``best_params_``, fit ``best_estimator_`` on all the data, and time it (``refit_time_``).

        ``refitted``: the model and fit time of a refit already done (:class:`EarlyRefit`), else ``None``.
        """
        self.best_params_ = best_params
        if refitted is None:
            refitted = refit_candidate(self.estimator, X, y, best_params)
        model, self.refit_time_ = refitted
        self.best_estimator_ = model
        if hasattr(model, "classes_"):
            self.classes_ = model.classes_
        if hasattr(model, "n_features_in_"):
            self.n_features_in_ = model.n_features_in_

    @property
    def scorer_(self) -> Any:
        """The scorer (a dict of them for several) of the fitted search, from ``scoring``.

        Derived from the parameters rather than stored, so that a saved search holds no function.
        """
        check_is_fitted(self, "cv_results_")
        scorers, multimetric = check_scoring(self.scoring)
        if multimetric:
            return {name: scorer.function for name, scorer in scorers.items()}
        return scorers["score"].function

    def _refit_metric(self, scorers: Mapping[str, Any], multimetric: bool) -> str | None:
        if not multimetric or self.refit is False or callable(self.refit):
            return None
        if not isinstance(self.refit, str) or self.refit not in scorers:
            msg = (
                f"With several scorers {sorted(scorers)}, refit must be the name of the one that chooses the best "
                f"candidate, False, or a callable of cv_results_; got refit={self.refit!r}."
            )
            raise ValueError(msg)
        return self.refit

    def _check_refitted(self, method: str) -> None:
        check_is_fitted(self)
        if not hasattr(self, "best_estimator_"):
            msg = f"This search was fitted with refit=False: {method} needs refit=True (or a scorer name)."
            raise AttributeError(msg)

    @available_if(_estimator_has("predict"))
    def predict(self, X: Any) -> Any:
        """Predict with the best estimator (lazy for dask input when the estimator's predict is).

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)

        Returns
        -------
        ndarray or dask.array.Array of shape (n_samples,)
        """
        self._check_refitted("predict")
        return self.best_estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities of the best estimator (lazy for dask input when its method is).

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)

        Returns
        -------
        ndarray or dask.array.Array of shape (n_samples, n_classes)
        """
        self._check_refitted("predict_proba")
        return self.best_estimator_.predict_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """Decision function of the best estimator (lazy for dask input when its method is).

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)

        Returns
        -------
        ndarray or dask.array.Array
        """
        self._check_refitted("decision_function")
        return self.best_estimator_.decision_function(X)

    @available_if(_estimator_has("transform"))
    def transform(self, X: Any) -> Any:
        """Transform with the best estimator (lazy for dask input when its method is).

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)

        Returns
        -------
        ndarray or dask.array.Array
        """
        self._check_refitted("transform")
        return self.best_estimator_.transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """The refit scorer's score of the best estimator on (X, y), as scikit-learn's searches give.

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)
        y : {array-like, dask array} of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        self._check_refitted("score")
        scorer = self.scorer_[self.refit] if self.multimetric_ else self.scorer_
        return float(scorer(self.best_estimator_, X, y))

    def __sklearn_tags__(self) -> Any:
        # a search is what its estimator is (a classifier, a regressor), as scikit-learn's searches say: so that
        # is_classifier(search) is true for a classifier's search and cross-validation around it stratifies
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = copy.deepcopy(inner.classifier_tags)
        tags.regressor_tags = copy.deepcopy(inner.regressor_tags)
        tags.input_tags.pairwise = inner.input_tags.pairwise
        tags.input_tags.sparse = inner.input_tags.sparse
        return tags


def _cv_results(
    candidates: list[dict[str, Any]],
    results: list[list[dict[str, Any]]],
    names: list[str],
    multimetric: bool,
    return_train_score: bool,
) -> dict[str, Any]:
    n_splits = len(results[0])
    out: dict[str, Any] = {}

    def store(key: str, values: np.ndarray, *, splits: bool, rank: bool = False) -> None:
        # values: (n_candidates, n_splits), as scikit-learn's _format_results lays them out
        if splits:
            for split in range(n_splits):
                out[f"split{split}_{key}"] = values[:, split]
        means = values.mean(axis=1)
        out[f"mean_{key}"] = means
        out[f"std_{key}"] = np.sqrt(((values - means[:, None]) ** 2).mean(axis=1))
        if rank:
            if np.isnan(means).all():
                out[f"rank_{key}"] = np.ones(len(means), dtype=np.int32)
            else:
                filled = np.nan_to_num(means, nan=np.nanmin(means) - 1)
                out[f"rank_{key}"] = rankdata(-filled, method="min").astype(np.int32)

    for timing in ("fit_time", "score_time"):
        store(timing, np.array([[r[timing] for r in row] for row in results]), splits=False)
    names_in = sorted({name for candidate in candidates for name in candidate})
    for name in names_in:
        column = np.ma.MaskedArray(np.empty(len(candidates), dtype=object), mask=True)
        for i, candidate in enumerate(candidates):
            if name in candidate:
                column[i] = candidate[name]
        out[f"param_{name}"] = column
    out["params"] = candidates
    for name in names:
        key = name if multimetric else "score"
        tests = np.array([[r["test_scores"][name] for r in row] for row in results], dtype=float)
        store(f"test_{key}", tests, splits=True, rank=True)
        if return_train_score:
            trains = np.array([[r["train_scores"][name] for r in row] for row in results], dtype=float)
            store(f"train_{key}", trains, splits=True)
    return out


_SEARCH_PARAMETERS = """scoring : None, str, callable, list or dict, default=None
        scikit-learn's scorer names or callables (see :func:`cross_validate`); several scorers need ``refit``
        to name the one that chooses the best candidate.
    refit : bool, str or callable, default=True
        Refit the best candidate on all the data (``best_estimator_``); with several scorers the name of the
        one that decides; a callable takes ``cv_results_`` and returns the best index.
    cv : int, splitter or iterable, default=None
        Folds, as in :func:`cross_validate`; every candidate sees the same folds.
    return_train_score : bool, default=False
        Also score every fit on its training rows.
    error_score : 'raise' or float, default=np.nan
        Score of a fit that fails (with a :class:`~sklearn.exceptions.FitFailedWarning`).
    checkpoint : str, path-like or None, default=None
        Directory where the result of every (candidate, fold) fit is saved as soon as it finishes (its scores,
        times and error text, one small JSON file each; no model). Fitting the same search again on the same
        data with the same directory (after an interruption) fits only the pairs without a saved result and
        gives the ``cv_results_`` of an uninterrupted search (fit and score times apart). The directory is
        created if missing and checked in ``fit`` before any work; one written by another search, other
        candidates or other data is refused with a clear error (delete it to start afresh). Needs folds and
        candidates that a second run draws again identically: an int ``random_state`` for a shuffling ``cv``
        and for :class:`RandomizedSearchCV`. See :doc:`/model_selection`."""

_SEARCH_ATTRIBUTES = """cv_results_ : dict of str to ndarray
        scikit-learn's table: ``params``, ``param_<name>``, ``split<i>_test_<score>``, ``mean_test_<score>``,
        ``std_test_<score>``, ``rank_test_<score>``, the fit and score times (and train scores).
    best_estimator_ : estimator
        The best candidate refitted on all the data (``refit`` only).
    best_score_ : float
        Mean cross-validated score of the best candidate (not with a callable ``refit``).
    best_params_ : dict
        The best candidate's parameters.
    best_index_ : int
        Its row in ``cv_results_``.
    scorer_ : callable or dict
        The scorer(s) used.
    n_splits_ : int
        Number of folds.
    refit_time_ : float
        Seconds spent refitting the best candidate.
    multimetric_ : bool
        Whether several scorers were given."""


class GridSearchCV(_BaseSearch):
    __doc__ = f"""Exhaustive search over a parameter grid: :class:`sklearn.model_selection.GridSearchCV` on the cluster.

    Every (candidate, fold) pair runs as :func:`cross_validate` runs a fold: on in-memory data as concurrent
    tasks on the cluster (the data placed once); on dask data as distributed fits on each fold's lazy rows.
    On the same folds the scores, ``best_params_`` and ``cv_results_`` are scikit-learn's.

    Parameters
    ----------
    estimator : estimator
        Cloned for every fit.
    param_grid : dict or list of dicts
        Parameter names (``get_params`` names, ``step__name`` in pipelines) to lists of values.
    {_SEARCH_PARAMETERS}

    Attributes
    ----------
    {_SEARCH_ATTRIBUTES}

    Raises
    ------
    ValueError
        From ``fit``: an empty grid, a parameter the estimator does not have (the valid ones are listed), an
        unknown scorer name, a scorer that cannot score the estimator (ROC AUC of a regressor), folds whose
        training rows lack a class (in-memory labels).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from daskml_lab.model_selection import GridSearchCV
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> search = GridSearchCV(DecisionTreeClassifier(random_state=0), {{"max_depth": [1, 3]}}, cv=3).fit(X, y)
    >>> search.best_params_
    {{'max_depth': 1}}
    >>> search.cv_results_["mean_test_score"].round(3)
    array([0.93, 0.92])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_BaseSearch._parameter_constraints,
        "param_grid": [dict, list],
    }

    def __init__(
        self,
        estimator: Any,
        param_grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]],
        *,
        scoring: Any = None,
        refit: Any = True,
        cv: Any = None,
        return_train_score: bool = False,
        error_score: Any = np.nan,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> None:
        self.estimator = estimator
        self.param_grid = param_grid
        self.scoring = scoring
        self.refit = refit
        self.cv = cv
        self.return_train_score = return_train_score
        self.error_score = error_score
        self.checkpoint = checkpoint

    def _candidates(self) -> tuple[list[dict[str, Any]], str]:
        grid = self.param_grid
        if isinstance(grid, Mapping) and not grid:
            return [], "param_grid {}"
        return list(ParameterGrid(grid)), "param_grid"


class RandomizedSearchCV(_BaseSearch):
    __doc__ = f"""Search over sampled parameters: :class:`sklearn.model_selection.RandomizedSearchCV` on the cluster.

    The candidates are scikit-learn's (:class:`~sklearn.model_selection.ParameterSampler` with the same
    ``random_state``); they run as in :class:`GridSearchCV`.

    Parameters
    ----------
    estimator : estimator
        Cloned for every fit.
    param_distributions : dict or list of dicts
        Parameter names to lists of values or distributions with an ``rvs`` method.
    n_iter : int, default=10
        Number of candidates sampled.
    {_SEARCH_PARAMETERS}
    random_state : int, numpy.random.RandomState or None, default=None
        Seed of the sampling (an int with ``checkpoint``).

    Attributes
    ----------
    {_SEARCH_ATTRIBUTES}

    Examples
    --------
    >>> from scipy.stats import loguniform
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from daskml_lab.model_selection import RandomizedSearchCV
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> search = RandomizedSearchCV(LogisticRegression(), {{"C": loguniform(1e-3, 1e2)}}, n_iter=4,
    ...                             cv=3, random_state=0).fit(X, y)
    >>> len(search.cv_results_["params"])
    4
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_BaseSearch._parameter_constraints,
        "param_distributions": [dict, list],
        "n_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator: Any,
        param_distributions: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        n_iter: int = 10,
        scoring: Any = None,
        refit: Any = True,
        cv: Any = None,
        return_train_score: bool = False,
        error_score: Any = np.nan,
        random_state: Any = None,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> None:
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_iter = n_iter
        self.scoring = scoring
        self.refit = refit
        self.cv = cv
        self.return_train_score = return_train_score
        self.error_score = error_score
        self.random_state = random_state
        self.checkpoint = checkpoint

    def _candidates(self) -> tuple[list[dict[str, Any]], str]:
        distributions = self.param_distributions
        if isinstance(distributions, Mapping) and not distributions:
            return [], "param_distributions {}"
        sampler = ParameterSampler(distributions, self.n_iter, random_state=self.random_state)
        return list(sampler), "param_distributions"
