"""Shard ensembles in searches and cross-validation: one task per (candidate, fold, shard), all at once.

A daskml_lab estimator spreads each fit over the cluster itself, so :func:`~daskml_lab.model_selection.
_execution.run_folds` fits it one (candidate, fold) after the other. For a shard ensemble that leaves the workers
idle while a fit waits for its slowest shard. Here every (candidate, fold) ensemble is planned first and all their
shard fits run in one computation (:func:`daskml_lab.ensemble.fit_shard_ensembles`): the fold's training rows
are taken inside each block by the fold's role mask, next to the block, each shard fit runs where its block
lives, and every (candidate, fold) fuses its own shard models with its candidate's fusion. Then the candidates
of each fold are scored together, in one blocked pass over the fold's rows.

The results equal those of the pairs fitted one after the other (same shard models, same scores, for a fixed
``random_state``); ``dask.config`` key :data:`CONFIG_KEY` set to ``False`` selects that sequential path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import dask
from sklearn.base import clone

from daskml_lab.ensemble import ShardEnsembleClassifier, ShardEnsembleRegressor, fit_shard_ensembles
from daskml_lab.exceptions import NoWorkersLeftError
from daskml_lab.model_selection._folds import TEST, TRAIN
from daskml_lab.model_selection._scoring import Scorer, score_models

__all__ = ["CONFIG_KEY", "candidate_model", "fits_jointly", "run_joint_shard_fits"]

logger = logging.getLogger(__name__)

#: ``dask.config`` key: ``True`` (default) fits the shard ensembles of every (candidate, fold) together,
#: ``False`` one after the other.
CONFIG_KEY = "daskml_lab.model_selection.joint_shard_fits"


def candidate_model(estimator: Any, parameters: dict[str, Any] | None) -> Any:
    """A clone of ``estimator`` with a candidate's ``parameters`` set (cloned too: the grid stays the user's)."""
    model = clone(estimator)
    if parameters:
        model.set_params(**clone(parameters, safe=False))
    return model


def fits_jointly(estimator: Any) -> bool:
    """Whether the (candidate, fold) fits of ``estimator`` on dask data run as one computation of shard fits.

    True for :class:`~daskml_lab.ensemble.ShardEnsembleClassifier` and
    :class:`~daskml_lab.ensemble.ShardEnsembleRegressor` (whatever their fusion) unless ``dask.config``
    :data:`CONFIG_KEY` is ``False``. A pipeline around an ensemble, and :class:`~daskml_lab.ensemble.CascadeSVC`
    (whose levels of merges follow each other), are fitted one (candidate, fold) after the other.
    """
    joint = isinstance(estimator, ShardEnsembleClassifier | ShardEnsembleRegressor)
    return joint and bool(dask.config.get(CONFIG_KEY, True))


def run_joint_shard_fits(
    estimator: Any,
    X: Any,
    y: Any,
    folds: list[Any],
    scorers: dict[str, Scorer],
    candidates: list[dict[str, Any]],
    todo: list[tuple[int, int]],
    record: Callable[[int, int, dict[str, Any]], None],
    *,
    return_train_score: bool,
    return_estimator: bool,
    error_score: Any,
) -> bool:
    """Fit the shard ensembles of every (candidate, fold) of ``todo`` together, then score them fold by fold.

    Parameters
    ----------
    estimator : ShardEnsembleClassifier or ShardEnsembleRegressor
    X, y : dask.array.Array
        The normalised data (all columns in one chunk, ``y`` with the row chunks of ``X``).
    folds : list
        From :func:`~daskml_lab.model_selection._execution.dask_folds`: ``take(array, role)`` per fold.
    scorers : dict of str to Scorer
    candidates : list of dict
        Parameter settings.
    todo : list of (int, int)
        The (candidate, fold) pairs to fit.
    record : callable
        ``record(candidate, fold, result)``, called fold by fold once the fold's scores are known.
    return_train_score, return_estimator : bool
    error_score : 'raise' or float

    Returns
    -------
    bool
        ``False`` when a fit raised and ``error_score`` is not ``"raise"``: nothing was recorded, and the caller
        fits the pairs one after the other so that each failing pair alone gets ``error_score`` (with its
        :class:`~sklearn.exceptions.FitFailedWarning`). ``True`` once every pair is recorded.

    Notes
    -----
    ``fit_time`` of every pair is the wall time of the one computation that fitted all of them, and
    ``score_time`` that of its fold's scoring pass (the pairs share them).
    """
    if not todo:
        return True
    models = [candidate_model(estimator, candidates[c]) for c, _ in todo]
    train = {f: folds[f].take(X, TRAIN) for f in {f for _, f in todo}}
    y_train = {f: None if y is None else folds[f].take(y, TRAIN) for f in train}
    start = time.perf_counter()
    try:
        fit_shard_ensembles(models, [train[f] for _, f in todo], [y_train[f] for _, f in todo])
    except (ConnectionError, TimeoutError, NoWorkersLeftError):
        raise  # the cluster failed: fitting the pairs again one by one would fail the same way
    except Exception as err:
        if isinstance(error_score, str) and error_score == "raise":
            raise
        logger.warning(
            "fitting the %d (candidate, fold) shard ensembles together failed (%s: %s); fitting them one after "
            "the other so that each failing fit gets error_score=%r",
            len(todo),
            type(err).__name__,
            err,
            error_score,
        )
        return False
    fit_time = time.perf_counter() - start
    fitted = dict(zip(todo, models, strict=True))
    for f in sorted(train):
        pairs = [pair for pair in todo if pair[1] == f]
        fold_models = [fitted[pair] for pair in pairs]
        scores, score_time = score_models(
            fold_models,
            folds[f].take(X, TEST),
            None if y is None else folds[f].take(y, TEST),
            scorers,
            train=(train[f], y_train[f]) if return_train_score else None,
        )
        for (c, _), model, score in zip(pairs, fold_models, scores, strict=True):
            record(
                c,
                f,
                {
                    "fit_time": fit_time,
                    "score_time": score_time,
                    "test_scores": score["test_scores"],
                    "train_scores": score.get("train_scores", {}),
                    "estimator": model if return_estimator else None,
                    "fit_error": None,
                },
            )
    return True
