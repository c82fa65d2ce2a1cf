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
  (:class:`_LongestFirst`).
  Without a distributed client, or for daskml_lab's own estimators (which spread each fit over the cluster
  themselves), the pairs run one after the other from this process.
"""

from __future__ import annotations

import numbers
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import CancelledError
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import is_dask_collection
from distributed import wait
from sklearn.exceptions import FitFailedWarning
from sklearn.utils import indexable
from sklearn.utils.multiclass import type_of_target

from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.cluster_health import CHECK_INTERVAL_S, NO_WORKER_GRACE_S, ClusterHealth
from daskml_lab._runtime.waiting import forget_traceback, result_within
from daskml_lab.base import DaskMLEstimator
from daskml_lab.model_selection._folds import TEST, TRAIN
from daskml_lab.model_selection._scoring import Scorer, score_models
from daskml_lab.model_selection._shard_fits import candidate_model, fits_jointly, run_joint_shard_fits
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
    return _fit_and_score_rows(
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


def _fit_and_score_rows(
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
    model, fit_time, failed = _timed_fit(
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


def _timed_fit(
    estimator: Any,
    parameters: dict[str, Any] | None,
    X_train: Any,
    y_train: Any,
    scorers: dict[str, Scorer],
    error_score: Any,
    return_estimator: bool,
) -> tuple[Any, float, dict[str, Any] | None]:
    """A clone of ``estimator`` with ``parameters``, fitted and timed; the third item is the failed-fit result
    (:func:`_failed_fit`) when the fit raised and ``error_score`` is not ``"raise"``, else ``None``."""
    model = candidate_model(estimator, parameters)
    start = time.perf_counter()
    try:
        model.fit(X_train, y_train)
    except Exception as err:
        if isinstance(error_score, str) and error_score == "raise":
            raise
        fit_time = time.perf_counter() - start
        return model, fit_time, _failed_fit(err, model, scorers, error_score, fit_time, return_estimator)
    return model, time.perf_counter() - start, None


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
    if isinstance(data, list):
        return [data[i] for i in index]
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
    X_train, X_test = fold.take(X, TRAIN), fold.take(X, TEST)
    y_train = None if y is None else fold.take(y, TRAIN)
    y_test = None if y is None else fold.take(y, TEST)
    model, fit_time, failed = _timed_fit(
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


#: Called with (candidate, fold, result) as each fit finishes (a search's checkpoint and progress).
OnResult = Callable[[int, int, dict[str, Any]], None]


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
            _run_on_cluster(
                client, estimator, X, y, splits, scorers, candidates, options, todo, record, results
            )
        return _table(results, len(candidates), len(splits))


def _todo(n_candidates: int, n_folds: int, results: Mapping[tuple[int, int], Any]) -> list[tuple[int, int]]:
    """The (candidate, fold) pairs without a result yet, candidate by candidate."""
    return [(c, f) for c in range(n_candidates) for f in range(n_folds) if (c, f) not in results]


def _table(
    results: Mapping[tuple[int, int], dict[str, Any]], n_candidates: int, n_folds: int
) -> list[list[dict[str, Any]]]:
    return [[results[c, f] for f in range(n_folds)] for c in range(n_candidates)]


def _each_as_done(
    client: Any,
    submitted: Mapping[Any, tuple[int, int]],
    record: OnResult,
    *,
    what: str,
    refill: Callable[[int], Mapping[Any, tuple[int, int]]] | None = None,
) -> None:
    """``record`` every future's value as soon as it is done, checking the cluster while none finishes.

    ``refill``, when given, is called with the number of futures just done and returns the futures submitted
    in their place (a search that keeps a bounded number of fits in flight). The first task error is raised
    (after the values of the futures done with it were recorded); a lost scheduler or the loss of every
    worker raises as in :func:`~daskml_lab._runtime.waiting.wait_for`.
    """
    health = ClusterHealth(client)
    submitted = dict(submitted)
    pending = list(submitted)
    try:
        while pending:
            try:
                done, _ = wait(pending, timeout=CHECK_INTERVAL_S, return_when="FIRST_COMPLETED")
            except TimeoutError as err:
                forget_traceback(err)
                health.check(doing=f"waiting for {what}", grace_s=NO_WORKER_GRACE_S)
                continue
            except CancelledError:
                done = {future for future in pending if future.done()}
            errors = []
            for future in pending:
                if future not in done:
                    continue
                try:
                    value = result_within(future, what=what, client=client, timeout_s=None, health=health)
                except Exception as err:
                    errors.append(err)
                    continue
                record(*submitted.pop(future), value)
            pending = [future for future in pending if future not in done]
            if errors:
                raise errors[0]
            if refill is not None and done:
                more = refill(len(done))
                submitted.update(more)
                pending.extend(more)
    except BaseException:
        # an error or an interruption ends the search: the fits not started yet must not run on
        client.cancel([future for future in pending if not future.done()])
        raise


class _LongestFirst:
    """The order of a search's (candidate, fold) fits that ends it soonest, learnt as the fits finish.

    Each candidate's first fold comes first, in grid order; once one fold of a candidate is measured, its
    other folds follow longest candidate first. Fits of one candidate on the folds of the same data cost
    about the same, so this is longest-processing-time-first scheduling: the long fits start early and the
    short ones fill the end. In grid order, the slowest candidates (an SVC's largest ``C``, a forest's deepest
    trees: often the last of a grid) ran last, alone, while the other workers had nothing left to do.

    Parameters
    ----------
    todo : list of (int, int)
        The (candidate, fold) pairs to run, in grid order.
    known : mapping of (int, int) to dict, default=None
        Results already known (a resumed search): their candidates' costs.
    """

    def __init__(
        self, todo: list[tuple[int, int]], known: Mapping[tuple[int, int], Any] | None = None
    ) -> None:
        self._pending = list(todo)
        self._started: set[int] = set()
        self._cost: dict[int, float] = {}
        for (candidate, _), result in (known or {}).items():
            self.measured(candidate, result)

    def __len__(self) -> int:
        return len(self._pending)

    def measured(self, candidate: int, result: Mapping[str, Any]) -> None:
        """Learn a candidate's cost from one of its fold's results (fit and score times, seconds)."""
        seconds = float(result.get("fit_time", 0.0)) + float(result.get("score_time", 0.0))
        self._cost[candidate] = max(seconds, self._cost.get(candidate, 0.0))
        self._started.add(candidate)

    def take(self) -> tuple[int, int]:
        """The next pair to submit (removed from the pending ones)."""
        index = next((i for i, (c, _) in enumerate(self._pending) if c not in self._started), None)
        if index is None:
            # a candidate without a measured fold (its first still running) counts as the longest: it may be
            index = max(
                range(len(self._pending)),
                key=lambda i: self._cost.get(self._pending[i][0], float("inf")),
            )
        pair = self._pending.pop(index)
        self._started.add(pair[0])
        return pair


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
    fit = dask.delayed(_fit_and_score_rows, pure=False)
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
    _each_as_done(client, dict(zip(futures, todo, strict=True)), record, what="the cross-validation fits")


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


def _run_on_cluster(
    client: Any,
    estimator: Any,
    X: Any,
    y: Any,
    splits: list[tuple[np.ndarray, np.ndarray]],
    scorers: dict[str, Scorer],
    candidates: list[dict[str, Any]],
    options: dict[str, Any],
    todo: list[tuple[int, int]],
    record: OnResult,
    known: Mapping[tuple[int, int], Any],
) -> None:
    # The data go to the cluster once, a copy on every worker: a lost worker loses no input (scattered data
    # have no lineage to compute them again from), and its running fits are rescheduled on the others. New
    # keys every time (hash=False): the same data scattered again while a previous search's keys are being
    # released would race with their removal ("Key lost during replication").
    X_future, y_future = client.scatter([X, y], broadcast=True, hash=False)
    estimator_future = client.scatter(estimator, broadcast=True, hash=False)
    run = uuid.uuid4().hex[:12]
    prefix = task_prefix("cv fit")
    order = _LongestFirst(todo, known)

    def submit(free: int) -> dict[Any, tuple[int, int]]:
        submitted = {}
        while order and len(submitted) < free:
            c, f = order.take()
            future = client.submit(
                fit_and_score,
                estimator_future,
                X_future,
                y_future,
                splits[f][0],
                splits[f][1],
                scorers,
                parameters=candidates[c],
                key=f"{prefix}-{run}-{c}-{f}",
                **options,
            )
            submitted[future] = (c, f)
        return submitted

    def measured_and_recorded(c: int, f: int, result: dict[str, Any]) -> None:
        order.measured(c, result)
        record(c, f, result)

    # two fits in flight per worker thread: a thread finishing one starts the next without waiting for this
    # process to choose it, and the choice of every other waits until the costs measured so far can order it
    in_flight = max(2, 2 * sum(client.nthreads().values()))
    _each_as_done(
        client, submit(in_flight), measured_and_recorded, what="the cross-validation fits", refill=submit
    )
