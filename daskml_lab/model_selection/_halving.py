"""Successive halving: ``HalvingGridSearchCV`` and ``HalvingRandomSearchCV``, scikit-learn's, on the cluster.

Every round evaluates the remaining candidates with a budget of a *resource* (rows, or an estimator parameter
such as ``max_iter`` or ``n_estimators``) and keeps the best ``1 / factor`` of them for the next round, whose
budget is ``factor`` times larger. The schedule (``n_resources_``, ``n_candidates_``, ``min_resources_``,
``n_iterations_`` ...) and the choice of the survivors follow scikit-learn's
:class:`~sklearn.model_selection.HalvingGridSearchCV` line by line; the candidates of one round run through
``run_folds`` exactly as those of :class:`GridSearchCV` do (concurrent tasks on in-memory data, distributed fits
on dask data), or, for a round over the penalty of our linear models on dask data with an estimator parameter
as the resource, through the same shared passes (``search_results`` chooses).

With ``resource="n_samples"`` each round sees a subsample of every fold's train and test rows:

- on in-memory data, scikit-learn's: :func:`sklearn.utils.resample` of each fold's indices with the same
  ``random_state``, so the rows, scores and survivors are scikit-learn's;
- on dask data, chosen inside each block of the fold's rows, next to the block: the fold's row count is shared
  among its blocks in proportion to their sizes, and each block keeps a seeded random subset of its rows
  (a prefix of one permutation per block, so that the rows of a round include those of the rounds before).

Around the rounds, as for :class:`GridSearchCV`: ``checkpoint=`` saves every (round, candidate, fold) result as
it finishes (:meth:`SearchCheckpoint.round`), and a resumed search reads them back, reaches the same rounds and
fits only the missing pairs; :class:`SearchProgress` reports each round to the training page and the bar.
"""

from __future__ import annotations

import numbers
import os
from functools import partial
from math import ceil, floor, log
from typing import Any, ClassVar

import dask.array as da
import numpy as np
from dask.base import is_dask_collection
from sklearn.base import is_classifier
from sklearn.model_selection import ParameterGrid, ParameterSampler
from sklearn.utils import indexable, resample
from sklearn.utils.multiclass import check_classification_targets

from daskml_lab._runtime.seeding import block_rng, root_entropy
from daskml_lab.base import Interval, Options, check_params
from daskml_lab.model_selection._execution import check_cv, dask_folds
from daskml_lab.model_selection._folds import TRAIN, apportion
from daskml_lab.model_selection._scoring import check_scoring
from daskml_lab.model_selection._search import (
    _SEARCH_ATTRIBUTES,
    _BaseSearch,
    _check_candidates,
    _cv_results,
)
from daskml_lab.model_selection._search_checkpoint import RoundCheckpoint, search_checkpoint
from daskml_lab.model_selection._search_progress import SearchProgress
from daskml_lab.model_selection._shared_paths import search_results
from daskml_lab.monitoring import fit_span, start_run

__all__ = ["HalvingGridSearchCV", "HalvingRandomSearchCV"]

#: Spawn-key constant of the per-block subsampling stream (distinct from the splitters' 41 to 43).
_HALVING_STREAM = 47
#: scikit-learn's rows per class and fold in the smallest round (``min_resources='smallest'``).
_MAGIC_FACTOR = 2


def _subsample_block(
    block: Any, keep: tuple[int, ...], entropy: int, fold: int, role: int, block_info: Any = None
) -> Any:
    # a prefix of one seeded permutation of the block's rows, in their original order: the same rows for X and
    # y (same key), and a larger ``keep`` takes a superset of a smaller one
    b = int(block_info[0]["chunk-location"][0])
    order = block_rng(entropy, _HALVING_STREAM, fold, role, b).permutation(block.shape[0])
    return block[np.sort(order[: keep[b]])]


class _SubsampledFold:
    """A fold of dask data whose rows are a fraction of another fold's, chosen inside each of its blocks."""

    def __init__(self, base: Any, fraction: float, entropy: int, index: int) -> None:
        self.base, self.fraction, self.entropy, self.index = base, fraction, entropy, index

    def take(self, array: da.Array, role: int) -> da.Array:
        rows = self.base.take(array, role)
        counts = np.asarray(rows.chunks[0], dtype=np.int64)
        # scikit-learn's count, int(fraction * fold rows), shared among the blocks in proportion to their rows
        keep = tuple(int(k) for k in apportion(int(self.fraction * counts.sum()), counts))
        return rows.map_blocks(
            _subsample_block,
            keep=keep,
            entropy=self.entropy,
            fold=self.index,
            role=role,
            chunks=(keep, *rows.chunks[1:]),
            dtype=rows.dtype,
            meta=rows._meta,
            token=f"daskml-halving-{'train' if role == TRAIN else 'test'}",
        )


class _SubsampleSplitter:
    """The folds of ``base_cv`` with ``fraction`` of each fold's train and test rows (one round's rows).

    In memory, scikit-learn's subsample (``resample`` of each fold's indices with ``random_state``); on dask
    data, :class:`_SubsampledFold` with the root ``entropy``, over the folds of ``base_cv`` kept in
    ``base_folds`` (shared by the rounds: stratified folds count the classes once per search, not per round).
    """

    def __init__(
        self,
        base_cv: Any,
        fraction: float,
        random_state: Any,
        entropy: int,
        groups: Any,
        base_folds: dict[tuple[str, str | None], list[Any]],
    ) -> None:
        self.base_cv, self.fraction, self.random_state = base_cv, fraction, random_state
        self.entropy, self.groups, self.base_folds = entropy, groups, base_folds

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        if isinstance(self.base_cv, list):
            return len(self.base_cv)
        return int(self.base_cv.get_n_splits(X, y, groups))

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Any:
        pairs = self.base_cv.split(X, y, groups) if hasattr(self.base_cv, "split") else self.base_cv
        for train, test in pairs:
            rows = []
            for index in (np.asarray(train), np.asarray(test)):
                n_samples = int(self.fraction * len(index))
                rows.append(
                    resample(index, replace=False, random_state=self.random_state, n_samples=n_samples)
                )
            yield rows[0], rows[1]

    def _dask_folds(self, X: da.Array, y: Any = None) -> list[_SubsampledFold]:
        # keyed by the data's names: run_folds hands every round the same normalised arrays
        key = (X.name, None if y is None else y.name)
        if key not in self.base_folds:
            self.base_folds[key] = dask_folds(self.base_cv, X, y, self.groups)
        folds = self.base_folds[key]
        return [_SubsampledFold(fold, self.fraction, self.entropy, i) for i, fold in enumerate(folds)]


def _yields_constant_splits(cv: Any) -> bool:
    # scikit-learn's rule: every round must see the same folds, so a shuffling splitter needs an int seed
    if isinstance(cv, list):
        return True
    shuffle = getattr(cv, "shuffle", True)
    random_state = getattr(cv, "random_state", 0)
    return isinstance(random_state, numbers.Integral) or not shuffle


def _n_samples(X: Any) -> int:
    n_samples = X.shape[0] if hasattr(X, "shape") else len(X)
    if n_samples != n_samples:  # NaN: a dask array with unknown chunk sizes
        msg = (
            "X has an unknown number of rows; successive halving over rows needs it. Call "
            "X.compute_chunk_sizes() (or read the data with daskml_lab.data.read) first."
        )
        raise ValueError(msg)
    if n_samples == 0:
        msg = "X has 0 rows: successive halving needs rows to share among its rounds; pass a non-empty X."
        raise ValueError(msg)
    return int(n_samples)


def _n_classes(y: Any) -> int:
    if is_dask_collection(y):
        # compute: the distinct labels of y, one small array (n_classes values), as scikit-learn counts them
        return int(da.unique(da.asarray(y)).compute().shape[0])
    check_classification_targets(y)
    return int(np.unique(y).shape[0])


def _top_k(means: np.ndarray, k: int) -> list[int]:
    # scikit-learn's _top_k: ascending scores with the NaNs moved first, the last k kept (in that order)
    order = np.roll(np.argsort(means), np.count_nonzero(np.isnan(means)))
    return [int(i) for i in order[-k:]]


def _record(
    saving: RoundCheckpoint | None,
    progress: SearchProgress,
    candidate: int,
    fold: int,
    result: dict[str, Any],
) -> None:
    # one finished fit of a round: saved (under its candidate's number in round 0), then reported
    if saving is not None:
        saving.save(candidate, fold, result)
    progress(candidate, fold, result)


class _BaseHalving(_BaseSearch):
    """Successive halving over the candidates of :meth:`_candidates`, with scikit-learn's schedule."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_BaseSearch._parameter_constraints,
        # one score decides who goes on (scikit-learn's halving takes a single metric) and the best candidate
        # is the best of the last round, so refit is a flag
        "scoring": [None, "str", "callable"],
        "refit": ["boolean"],
        "factor": [Interval(numbers.Real, 1, None, closed="neither")],
        "resource": ["str"],
        "max_resources": [Interval(numbers.Integral, 1, None, closed="left"), Options({"auto"})],
        "min_resources": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Options({"exhaust", "smallest"}),
        ],
        "aggressive_elimination": ["boolean"],
        "random_state": ["random_state"],
    }

    def _sampled_candidates(self, max_resources: int, min_resources: int) -> tuple[list[dict[str, Any]], str]:
        return self._candidates()

    def _seed_use(self) -> str | None:
        """What ``random_state`` draws (a checkpoint needs it to be an int then), ``None`` when nothing."""
        return "subsamples the rows of every round at random" if self.resource == "n_samples" else None

    def fit(self, X: Any, y: Any = None, *, groups: Any = None) -> _BaseHalving:
        """Run the rounds of successive halving, then refit the best candidate of the last one on all the data.

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)
            Dask arrays stay on the workers (each round's rows are taken inside every block).
        y : {array-like, dask array} of shape (n_samples,), default=None
        groups : array-like, default=None
            Passed to a scikit-learn splitter given as ``cv``.

        Returns
        -------
        self

        Notes
        -----
        Every round computes what :class:`GridSearchCV` computes for its candidates (one float per score and
        fold come back). With ``resource="n_samples"`` and ``min_resources`` 'smallest' or 'exhaust', a
        classifier's labels are counted first (for dask ``y``, one pass bringing back the distinct labels).
        """
        check_params(self)
        scorers, _ = check_scoring(self.scoring)  # one scorer: the constraints refuse a list or a dict
        if not (is_dask_collection(X) or is_dask_collection(y)):
            X, y, groups = indexable(X, y, groups)  # as scikit-learn's searches (lists, sparse formats)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        if not _yields_constant_splits(cv):
            msg = (
                "The cv parameter must yield consistent folds across calls to split(), since every round uses "
                f"the same folds; got {cv!r}. Set its random_state to an int, or set shuffle=False."
            )
            raise ValueError(msg)
        if self.resource != "n_samples" and self.resource not in self.estimator.get_params():
            msg = (
                f"Cannot use resource={self.resource!r}: it is not a parameter of estimator "
                f"{type(self.estimator).__name__}. Use 'n_samples' (rows) or one of its parameters, such as "
                "'max_iter' or 'n_estimators'."
            )
            raise ValueError(msg)
        if getattr(self, "n_candidates", None) == "exhaust" and self.min_resources == "exhaust":
            msg = "n_candidates and min_resources cannot be both set to 'exhaust'; give one of them a value."
            raise ValueError(msg)
        n_splits = len(cv) if isinstance(cv, list) else cv.get_n_splits(X, y, groups)
        n_samples = _n_samples(X)
        min_resources, max_resources = self._resource_bounds(y, n_samples, n_splits)

        candidates, source = self._sampled_candidates(max_resources, min_resources)
        _check_candidates(self.estimator, candidates, source)
        if self.resource != "n_samples" and any(self.resource in candidate for candidate in candidates):
            msg = (
                f"Cannot use parameter {self.resource!r} as the resource since it is part of the searched "
                f"parameters; remove it from {source} or choose another resource."
            )
            raise ValueError(msg)

        # scikit-learn's schedule: enough rounds to leave fewer than `factor` candidates ...
        n_required = 1 + floor(log(len(candidates), self.factor))
        if self.min_resources == "exhaust":
            # ... starting as high as possible, so that the last required round uses up to max_resources
            min_resources = max(min_resources, max_resources // self.factor ** (n_required - 1))
        # ... and the rounds that fit between min_resources and max_resources
        n_possible = 1 + floor(log(max_resources // min_resources, self.factor))
        n_iterations = n_required if self.aggressive_elimination else min(n_possible, n_required)

        # candidates per round, known before any fit: the progress counts the fits of the whole search
        schedule = [len(candidates)]
        while len(schedule) < n_iterations:
            schedule.append(ceil(schedule[-1] / self.factor))
        rows_seeded = self.resource == "n_samples"
        with (
            search_checkpoint(
                self,
                X,
                y,
                groups,
                candidates=candidates,
                cv=cv,
                n_splits=n_splits,
                seed_use=self._seed_use(),
                # the rows of every round are drawn with random_state (not in the candidates)
                extra={"random_state": self.random_state if rows_seeded else None},
            ) as checkpoint,
            fit_span(type(self).__name__),
        ):
            run = start_run(
                "search",
                n_fits=sum(schedule) * n_splits,
                info={
                    "estimator": type(self.estimator).__name__,
                    "candidates": len(candidates),
                    "folds": n_splits,
                    "rounds": n_iterations,
                },
            )
            # on dask data one root for every round, so that each round's rows include the previous round's
            entropy = root_entropy(self.random_state) if is_dask_collection(X) or is_dask_collection(y) else 0
            base_folds: dict[tuple[str, str | None], list[Any]] = {}
            all_params: list[dict[str, Any]] = []
            all_results: list[list[dict[str, Any]]] = []
            self.n_resources_: list[int] = []
            self.n_candidates_: list[int] = []
            ids = list(range(len(candidates)))  # the round's candidates, numbered as in round 0 (checkpoint)
            for itr in range(n_iterations):
                power = itr
                if self.aggressive_elimination:
                    # the first budget again while candidates are being eliminated, then as usual
                    power = max(0, itr - n_required + n_possible)
                n_resources = min(int(self.factor**power * min_resources), max_resources)
                self.n_resources_.append(n_resources)
                self.n_candidates_.append(len(candidates))
                if rows_seeded:
                    fraction = n_resources / n_samples
                    round_cv: Any = _SubsampleSplitter(
                        cv, fraction, self.random_state, entropy, groups, base_folds
                    )
                else:
                    candidates = [{**candidate, self.resource: n_resources} for candidate in candidates]
                    round_cv = cv
                saving = None if checkpoint is None else checkpoint.round(itr, ids)
                saved = {} if saving is None else saving.finished()
                progress = SearchProgress(
                    run,
                    candidates,
                    n_splits,
                    "score",
                    saved,
                    round_index=itr,
                    n_rounds=n_iterations,
                    fits_before=sum(schedule[:itr]) * n_splits,
                    n_fits=sum(schedule) * n_splits,
                )
                # a round over the penalty of our linear models on dask data (the budget, e.g. max_iter, the
                # same for all) runs in the shared passes, as in GridSearchCV; not a round of subsampled rows
                all_results += search_results(
                    self.estimator,
                    X,
                    y,
                    round_cv,
                    scorers,
                    candidates,
                    groups=groups,
                    return_train_score=self.return_train_score,
                    error_score=self.error_score,
                    finished=saved,
                    on_result=partial(_record, saving, progress),
                    shared=not rows_seeded,
                )
                all_params += candidates
                scores = [[r["test_scores"]["score"] for r in row] for row in all_results[-len(candidates) :]]
                means = np.array([np.mean(row) for row in scores])
                kept = _top_k(means, ceil(len(candidates) / self.factor))
                candidates, ids = [candidates[i] for i in kept], [ids[i] for i in kept]
        rounds = np.repeat(np.arange(n_iterations), schedule)
        table = _cv_results(all_params, all_results, list(scorers), False, self.return_train_score)
        counts = np.repeat(self.n_resources_, self.n_candidates_)
        self.cv_results_ = {"iter": np.asarray(rounds), "n_resources": counts, **table}
        self.multimetric_ = False
        self.n_splits_ = n_splits
        self.min_resources_, self.max_resources_ = min_resources, max_resources
        self.n_remaining_candidates_ = len(candidates)
        self.n_required_iterations_, self.n_possible_iterations_ = n_required, n_possible
        self.n_iterations_ = n_iterations
        # the best candidate of the last round (scikit-learn's rule: the first one when all scores are NaN)
        last = np.flatnonzero(self.cv_results_["iter"] == n_iterations - 1)
        scores = self.cv_results_["mean_test_score"][last]
        self.best_index_ = int(last[0 if np.isnan(scores).all() else np.nanargmax(scores)])
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.best_params_ = all_params[self.best_index_]
        if self.refit:
            self._refit_best(self.best_params_, X, y)
        return self

    def _resource_bounds(self, y: Any, n_samples: int, n_splits: int) -> tuple[int, int]:
        """``min_resources_`` before 'exhaust' raises it, and ``max_resources_``, as scikit-learn sets them."""
        min_resources = self.min_resources
        if min_resources in ("smallest", "exhaust"):
            min_resources = 1
            if self.resource == "n_samples":
                # enough rows for every fold to see every class a couple of times
                min_resources = n_splits * _MAGIC_FACTOR
                if is_classifier(self.estimator) and y is not None:
                    min_resources *= _n_classes(y)
        max_resources = self.max_resources
        if max_resources == "auto":
            if self.resource != "n_samples":
                msg = (
                    f"max_resources='auto' means all the rows, so it needs resource='n_samples'; with "
                    f"resource={self.resource!r} give max_resources as an int (the largest {self.resource})."
                )
                raise ValueError(msg)
            max_resources = n_samples
        if min_resources > max_resources:
            msg = (
                f"min_resources_={min_resources} is greater than max_resources_={max_resources}. Lower "
                "min_resources or raise max_resources (for resource='n_samples', at most the number of rows, "
                f"n_samples={n_samples})."
            )
            raise ValueError(msg)
        return int(min_resources), int(max_resources)


_HALVING_PARAMETERS = """factor : int or float, default=3
        Each round keeps ``ceil(n_candidates / factor)`` candidates and multiplies the budget by ``factor``
        (greater than 1).
    resource : 'n_samples' or str, default='n_samples'
        What the budget counts: rows (each round's rows are a subsample of every fold's train and test rows)
        or the name of an integer parameter of the estimator, such as ``'max_iter'`` or ``'n_estimators'``,
        which must not be searched.
    max_resources : int or 'auto', default='auto'
        Largest budget of a candidate; 'auto' (rows only) is the number of rows.
    min_resources : {{'exhaust', 'smallest'}} or int, default={min_default!r}
        Budget of the first round. 'smallest': ``2 * n_splits`` rows (times the number of classes for a
        classifier), or 1 for a parameter; 'exhaust': as large as possible so that the last round uses up
        to ``max_resources``.
    aggressive_elimination : bool, default=False
        When ``max_resources`` does not allow enough rounds, repeat the first budget until fewer than
        ``factor`` candidates are left (otherwise the last round may keep more).
    cv : int, splitter or iterable, default=5
        Folds, as in :func:`cross_validate`; every round uses the same folds (a shuffling splitter needs an
        int ``random_state``).
    scoring : None, str or callable, default=None
        One scorer name or callable (it decides who goes on).
    refit : bool, default=True
        Refit the best candidate of the last round on all the data (``best_estimator_``).
    error_score : 'raise' or float, default=np.nan
        Score of a fit that fails (with a :class:`~sklearn.exceptions.FitFailedWarning`).
    return_train_score : bool, default=True
        Also score every fit on its training rows.
    random_state : int, numpy.random.RandomState or None, default=None
        Seed of the row subsamples (``resource='n_samples'``){sampling}; an int with ``checkpoint``.
    checkpoint : str, path-like or None, default=None
        Directory where the result of every (round, candidate, fold) fit is saved as soon as it finishes (its
        scores, times and error text, one small JSON file each; no model). Fitting the same search again on
        the same data with the same directory (after an interruption) reads the saved results back, reaches
        the same rounds (the survivors follow from the saved scores) and fits only the missing pairs: the
        ``cv_results_`` and ``best_params_`` of an uninterrupted search (fit and score times apart). Checked in
        ``fit`` before any work; a directory written by another search (other parameters, candidates, folds,
        seed or data) is refused with a clear error. See :doc:`/model_selection`."""

_HALVING_ATTRIBUTES = """n_resources_ : list of int
        Budget of each round.
    n_candidates_ : list of int
        Candidates evaluated in each round.
    n_remaining_candidates_ : int
        Candidates kept after the last round, ``ceil(n_candidates_[-1] / factor)``.
    max_resources_, min_resources_ : int
        Largest budget, and the budget of the first round.
    n_iterations_ : int
        Rounds run.
    n_possible_iterations_ : int
        Rounds that fit between ``min_resources_`` and ``max_resources_``.
    n_required_iterations_ : int
        Rounds needed to leave fewer than ``factor`` candidates in the last one."""

_HALVING_NOTES = """The ``cv_results_`` table has one row per (round, candidate), with the columns ``iter`` (the round)
    and ``n_resources`` (its budget) besides those of :class:`GridSearchCV`; with a parameter as resource,
    ``params`` include it. ``best_index_`` is the best row of the last round, and ``best_params_`` its
    parameters (the resource too). Unlike scikit-learn, ``factor`` must exceed 1 and ``refit`` is a flag.

    With ``resource='n_samples'`` on dask data, each round takes ``int(fraction * rows)`` of every fold's train
    and test rows, shared among the blocks in proportion to their sizes and chosen inside each block by a
    seeded permutation: nothing is gathered, and the rows of a round include those of earlier rounds. On
    in-memory data the rows are scikit-learn's."""


class HalvingGridSearchCV(_BaseHalving):
    __doc__ = f"""Successive halving over a parameter grid: :class:`sklearn.model_selection.HalvingGridSearchCV`.

    All the candidates of the grid start with a small budget of ``resource``; every round keeps the best
    ``1 / factor`` and gives them ``factor`` times more. The candidates of each round run as those of
    :class:`GridSearchCV` do (concurrent tasks on in-memory data, distributed fits on dask data). On in-memory
    data and the same folds, the rounds, survivors, scores and ``best_params_`` are scikit-learn's.

    Parameters
    ----------
    estimator : estimator
        Cloned for every fit.
    param_grid : dict or list of dicts
        Parameter names (``get_params`` names, ``step__name`` in pipelines) to lists of values.
    {_HALVING_PARAMETERS.format(min_default="exhaust", sampling="")}

    Attributes
    ----------
    {_HALVING_ATTRIBUTES}
    {_SEARCH_ATTRIBUTES}

    Raises
    ------
    ValueError
        From ``fit``: an empty grid, a parameter the estimator does not have, a resource that is not one of
        its parameters (or is searched), ``min_resources`` above ``max_resources``, several scorers, folds
        that change between calls.

    See Also
    --------
    HalvingRandomSearchCV : the same rounds over sampled candidates.
    GridSearchCV : every candidate with the whole budget.

    Notes
    -----
    {_HALVING_NOTES}

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from daskml_lab.model_selection import HalvingGridSearchCV
    >>> X, y = make_classification(n_samples=400, random_state=0)
    >>> search = HalvingGridSearchCV(DecisionTreeClassifier(random_state=0), {{"max_depth": [1, 2, 3, 4, 5, 6]}},
    ...                              cv=3, random_state=0).fit(X, y)
    >>> search.n_candidates_, search.n_resources_
    ([6, 2], [133, 399])
    >>> search.best_params_
    {{'max_depth': 6}}
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_BaseHalving._parameter_constraints,
        "param_grid": [dict, list],
    }

    def __init__(
        self,
        estimator: Any,
        param_grid: Any,
        *,
        factor: float = 3,
        resource: str = "n_samples",
        max_resources: Any = "auto",
        min_resources: Any = "exhaust",
        aggressive_elimination: bool = False,
        cv: Any = 5,
        scoring: Any = None,
        refit: bool = True,
        error_score: Any = np.nan,
        return_train_score: bool = True,
        random_state: Any = None,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> None:
        self.estimator = estimator
        self.param_grid = param_grid
        self.factor = factor
        self.resource = resource
        self.max_resources = max_resources
        self.min_resources = min_resources
        self.aggressive_elimination = aggressive_elimination
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.random_state = random_state
        self.checkpoint = checkpoint

    def _candidates(self) -> tuple[list[dict[str, Any]], str]:
        grid = self.param_grid
        if isinstance(grid, dict) and not grid:
            return [], "param_grid {}"
        return list(ParameterGrid(grid)), "param_grid"


class HalvingRandomSearchCV(_BaseHalving):
    __doc__ = f"""Successive halving over sampled candidates: :class:`sklearn.model_selection.HalvingRandomSearchCV`.

    The candidates are scikit-learn's (:class:`~sklearn.model_selection.ParameterSampler` with the same
    ``random_state``); the rounds run as in :class:`HalvingGridSearchCV`.

    Parameters
    ----------
    estimator : estimator
        Cloned for every fit.
    param_distributions : dict or list of dicts
        Parameter names to lists of values or distributions with an ``rvs`` method.
    n_candidates : int or 'exhaust', default='exhaust'
        Candidates of the first round; 'exhaust' samples ``max_resources_ // min_resources_`` of them, so that
        the last round uses up to ``max_resources`` (not together with ``min_resources='exhaust'``).
    {_HALVING_PARAMETERS.format(min_default="smallest", sampling=" and of the candidates")}

    Attributes
    ----------
    {_HALVING_ATTRIBUTES}
    {_SEARCH_ATTRIBUTES}

    See Also
    --------
    HalvingGridSearchCV : the same rounds over a grid.
    RandomizedSearchCV : every sampled candidate with the whole budget.

    Notes
    -----
    {_HALVING_NOTES}

    Examples
    --------
    >>> from scipy.stats import loguniform
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from daskml_lab.model_selection import HalvingRandomSearchCV
    >>> X, y = make_classification(n_samples=400, random_state=0)
    >>> search = HalvingRandomSearchCV(LogisticRegression(), {{"C": loguniform(1e-3, 1e2)}}, n_candidates=9,
    ...                                cv=3, random_state=0).fit(X, y)
    >>> search.n_candidates_
    [9, 3, 1]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_BaseHalving._parameter_constraints,
        "param_distributions": [dict, list],
        "n_candidates": [Interval(numbers.Integral, 1, None, closed="left"), Options({"exhaust"})],
    }

    def __init__(
        self,
        estimator: Any,
        param_distributions: Any,
        *,
        n_candidates: Any = "exhaust",
        factor: float = 3,
        resource: str = "n_samples",
        max_resources: Any = "auto",
        min_resources: Any = "smallest",
        aggressive_elimination: bool = False,
        cv: Any = 5,
        scoring: Any = None,
        refit: bool = True,
        error_score: Any = np.nan,
        return_train_score: bool = True,
        random_state: Any = None,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> None:
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_candidates = n_candidates
        self.factor = factor
        self.resource = resource
        self.max_resources = max_resources
        self.min_resources = min_resources
        self.aggressive_elimination = aggressive_elimination
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.random_state = random_state
        self.checkpoint = checkpoint

    def _sampled_candidates(self, max_resources: int, min_resources: int) -> tuple[list[dict[str, Any]], str]:
        distributions = self.param_distributions
        if isinstance(distributions, dict) and not distributions:
            return [], "param_distributions {}"
        n_candidates = self.n_candidates
        if n_candidates == "exhaust":
            # enough candidates for the last round to use up to max_resources
            n_candidates = max_resources // min_resources
        sampler = ParameterSampler(distributions, n_candidates, random_state=self.random_state)
        return list(sampler), "param_distributions"

    def _seed_use(self) -> str | None:
        rows = " and the rows of every round" if self.resource == "n_samples" else ""
        return f"samples its candidates{rows} at random"
