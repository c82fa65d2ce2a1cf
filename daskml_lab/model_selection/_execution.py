"""Where each (candidate, fold) fit runs, chosen by the data and the estimator; shared by the CV functions and searches.

- **dask arrays**: each fold's rows are taken inside every block (no gathering, chunk sizes known). The
  estimators of daskml_lab are fitted on them as distributed fits, one fold after the other, and all the
  blocked scores of a fold are computed together, in one pass over its rows; the shard ensembles' fits of every
  (candidate, fold) run together instead, one task per shard (:mod:`~daskml_lab.model_selection._shard_fits`).
  Other (in-memory) estimators get one task per (candidate, fold), fed with the fold's rows assembled on the
  worker from the blocks.
- **in-memory data**: ``X`` and ``y`` are placed on the cluster once, and every (candidate, fold) is one task
  that fits a clone and scores it (the joblib model of scikit-learn's ``n_jobs``, on the cluster): two tasks
  in flight per worker thread, each candidate's first fold first and then the longest candidates' folds
  (:mod:`~daskml_lab.model_selection._cluster_fits`), the search's refit started early on an idle worker.
  Without a distributed client, or for daskml_lab's own estimators (which spread each fit over the cluster
  themselves), the pairs run one after the other from this process.
"""

from __future__ import annotations

import numbers
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import is_dask_collection
from sklearn.utils import indexable
from sklearn.utils.multiclass import type_of_target

from daskml_lab._runtime.client import current_client
from daskml_lab.base import DaskMLEstimator
from daskml_lab.model_selection._cluster_fits import EarlyRefit, OnResult, each_as_done, run_on_cluster
from daskml_lab.model_selection._fold_fit import fit_and_score, fit_and_score_rows, timed_fit
from daskml_lab.model_selection._folds import TEST, TRAIN
from daskml_lab.model_selection._scoring import Scorer, score_models
from daskml_lab.model_selection._shard_fits import fits_jointly, run_joint_shard_fits
from daskml_lab.model_selection._splitters import KFold, StratifiedKFold
from daskml_lab.monitoring import fit_span, task_prefix

__all__ = ["check_cv", "check_fold_classes", "dask_folds", "fit_and_score", "run_folds"]


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


def check_fold_classes(cv: Any, X: Any, y: Any, groups: Any = None) -> None:
    """Refuse, before any fit, folds whose training rows lack a class of in-memory class labels ``y``.

    A model trained without a class can never predict it, and scorers of probabilities fail on its test rows;
    scikit-learn would fit and score such folds anyway. Dask targets are not read here (:class:`StratifiedKFold`
    checks its own class counts).

    Parameters
    ----------
    cv : splitter or list of (train, test)
        From :func:`check_cv`.
    X, y : array-like
        The data; nothing is checked unless ``y`` holds class labels in memory.
    groups : array-like or None, default=None

    Raises
    ------
    ValueError
        Naming the fold, the missing classes and the fix.
    """
    if y is None or is_dask_collection(y) or is_dask_collection(X):
        return
    labels = np.asarray(y)
    if labels.ndim != 1 or type_of_target(labels) not in ("binary", "multiclass"):
        return
    classes = np.unique(labels)
    pairs = cv.split(X, labels, groups) if hasattr(cv, "split") else cv
    for fold, (train, _) in enumerate(pairs):
        missing = np.setdiff1d(classes, np.unique(labels[np.asarray(train)]))
        if missing.size:
            msg = (
                f"The training rows of fold {fold} hold no row of class(es) {missing[:5].tolist()} (classes "
                f"{classes[:10].tolist()}): its model could never predict them. Use stratified folds (cv=<int> "
                "or StratifiedKFold for a classifier), shuffle the rows (KFold(shuffle=True, random_state=0)), "
                "or fewer folds."
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
    X_train, X_test = fold.take(X, TRAIN), fold.take(X, TEST)
    y_train = None if y is None else fold.take(y, TRAIN)
    y_test = None if y is None else fold.take(y, TEST)
    model, fit_time, failed = timed_fit(
        estimator, parameters, X_train, y_train, scorers, error_score, return_estimator
    )
    if failed is not None:
        return failed
    (scores,), score_time = score_models(
        [model], X_test, y_test, scorers, train=(X_train, y_train) if return_train_score else None
    )
    return {
        "fit_time": fit_time,
        "score_time": score_time,
        "test_scores": scores["test_scores"],
        "train_scores": scores.get("train_scores", {}),
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
    finished: Mapping[tuple[int, int], dict[str, Any]] | None = None,
    on_result: OnResult | None = None,
    early_refit: EarlyRefit | None = None,
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
    finished : dict of (int, int) to dict, default=None
        Results already known, by (candidate, fold) (a resumed search): those pairs are not fitted again.
    on_result : callable, default=None
        Called on this process with ``(candidate, fold, result)`` as each other pair finishes (in the order
        they finish on a cluster).
    early_refit : EarlyRefit or None, default=None
        A search's refit, started on the cluster as soon as a worker thread has no fit left (in-memory data
        on a cluster only; otherwise it is never started).

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
    results: dict[tuple[int, int], dict[str, Any]] = dict(finished or {})

    def record(candidate: int, fold: int, result: dict[str, Any]) -> None:
        results[candidate, fold] = result
        if on_result is not None:
            on_result(candidate, fold, result)

    with fit_span("cross-validation", type(estimator).__name__):
        if is_dask_collection(X) or is_dask_collection(y):
            X, y = _check_dask_data(X, y)
            folds = dask_folds(cv, X, y, groups)
            todo = _todo(len(candidates), len(folds), results)
            if not _distributes_itself(estimator):
                _fold_tasks(estimator, X, y, folds, scorers, candidates, options, todo, record)
            elif not (
                fits_jointly(estimator)
                and run_joint_shard_fits(estimator, X, y, folds, scorers, candidates, todo, record, **options)
            ):
                # distributed fits: one after the other, each lazy over its fold's blocks (shard ensembles
                # too when their joint fit is switched off or a fit failed: each failure gets error_score)
                for c, f in todo:
                    record(
                        c,
                        f,
                        _fit_and_score_dask(
                            estimator, X, y, folds[f], scorers, parameters=candidates[c], **options
                        ),
                    )
            return _table(results, len(candidates), len(folds))
        # as scikit-learn's searches: lists stay lists, sparse formats without row indexing become CSR, and
        # other array-likes arrays
        X, y, groups = indexable(X, y, groups)
        splits = [
            (np.asarray(train), np.asarray(test))
            for train, test in (cv.split(X, y, groups) if hasattr(cv, "split") else cv)
        ]
        todo = _todo(len(candidates), len(splits), results)
        client = current_client()
        if client is None or _distributes_itself(estimator):
            for c, f in todo:
                train, test = splits[f]
                record(
                    c,
                    f,
                    fit_and_score(estimator, X, y, train, test, scorers, parameters=candidates[c], **options),
                )
        elif todo:
            run_on_cluster(
                client,
                estimator,
                X,
                y,
                splits,
                scorers,
                candidates,
                options,
                todo,
                record,
                results,
                early_refit,
            )
        return _table(results, len(candidates), len(splits))


def _todo(n_candidates: int, n_folds: int, results: Mapping[tuple[int, int], Any]) -> list[tuple[int, int]]:
    """The (candidate, fold) pairs without a result yet, candidate by candidate."""
    return [(c, f) for c in range(n_candidates) for f in range(n_folds) if (c, f) not in results]


def _table(
    results: Mapping[tuple[int, int], dict[str, Any]], n_candidates: int, n_folds: int
) -> list[list[dict[str, Any]]]:
    return [[results[c, f] for f in range(n_folds)] for c in range(n_candidates)]


def _fold_tasks(
    estimator: Any,
    X: da.Array,
    y: Any,
    folds: list[Any],
    scorers: dict[str, Scorer],
    candidates: list[dict[str, Any]],
    options: dict[str, Any],
    todo: list[tuple[int, int]],
    record: OnResult,
) -> None:
    """In-memory estimators on dask data: one task per (candidate, fold) of ``todo``, fed by the fold's blocks.

    Each task receives its fold's train and test rows as numpy arrays assembled on the worker from the blocks
    (nothing passes through the client), and the rows of a fold are computed once for all the candidates.
    """
    if not todo:
        return
    run = uuid.uuid4().hex[:12]
    prefix = task_prefix("cv fit")
    fit = dask.delayed(fit_and_score_rows, pure=False)
    tasks = []
    for c, f in todo:
        fold = folds[f]
        tasks.append(
            fit(
                estimator,
                fold.take(X, TRAIN),
                None if y is None else fold.take(y, TRAIN),
                fold.take(X, TEST),
                None if y is None else fold.take(y, TEST),
                scorers,
                parameters=candidates[c],
                dask_key_name=f"{prefix}-{run}-{c}-{f}",
                **options,
            )
        )
    client = current_client()
    if client is None:
        # compute: every (candidate, fold) fit at once; each brings back its scores (and estimator, if asked)
        (results,) = dask.compute(tasks)
        for (c, f), result in zip(todo, results, strict=True):
            record(c, f, result)
        return
    # compute: the same fits as futures, each result recorded (and checkpointed) as soon as it is done
    futures = client.compute(tasks)
    each_as_done(client, dict(zip(futures, todo, strict=True)), record, what="the cross-validation fits")


def _distributes_itself(estimator: Any) -> bool:
    """Whether ``estimator`` (or one of its parts, such as a pipeline step) is one of daskml_lab's (a subclass too).

    Those fits spread their own work over the cluster, so they run from here one after the other instead of
    inside a task each (nested cluster work inside tasks would only compete for the same worker threads).
    """
    parts = [estimator]
    if hasattr(estimator, "get_params"):
        parts += [value for value in estimator.get_params(deep=True).values() if hasattr(value, "fit")]
    return any(
        isinstance(part, DaskMLEstimator) or type(part).__module__.startswith("daskml_lab.") for part in parts
    )
