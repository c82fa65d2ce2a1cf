"""Fusion by name, and :func:`fuse` for models trained elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask
import numpy as np
from sklearn.base import clone

from daskml_lab._compat import unique_fused_keys
from daskml_lab.data.validation import check_classes, check_n_features, check_X_y
from daskml_lab.fusion._base import (
    Fusion,
    FusionData,
    check_members,
    member_score_stats,
    scores_from_stats,
)
from daskml_lab.fusion._best_model import BestModel
from daskml_lab.fusion._forest_union import ForestUnion
from daskml_lab.fusion._parameter_averaging import ParameterAveraging
from daskml_lab.fusion._stacking import Stacking
from daskml_lab.fusion._voting import HardVoting, SoftVoting
from daskml_lab.fusion._weighted import WeightedAveraging

__all__ = ["FUSION_NAMES", "fuse", "resolve_fusion"]

_BY_NAME: dict[str, type[Fusion]] = {
    "hard-voting": HardVoting,
    "soft-voting": SoftVoting,
    "weighted": WeightedAveraging,
    "stacking": Stacking,
    "parameter-averaging": ParameterAveraging,
    "forest-union": ForestUnion,
    "best-model": BestModel,
}

#: The names :func:`resolve_fusion` understands, each mapped to its strategy with default options.
FUSION_NAMES: tuple[str, ...] = tuple(_BY_NAME)


def resolve_fusion(fusion: str | Fusion) -> Fusion:
    """A fresh, unfitted fusion object from a name or a fusion object (which is cloned, never modified).

    Parameters
    ----------
    fusion : str or Fusion
        One of :data:`FUSION_NAMES` (``"hard-voting"``, ``"soft-voting"``, ``"weighted"``, ``"stacking"``,
        ``"parameter-averaging"``, ``"forest-union"``, ``"best-model"``), or a fusion object carrying its
        options.

    Returns
    -------
    Fusion
        Unfitted, ready for :meth:`Fusion.fit`.

    Raises
    ------
    ValueError
        For an unknown name.
    TypeError
        For anything else.

    Examples
    --------
    >>> resolve_fusion("weighted")
    WeightedAveraging()
    """
    if isinstance(fusion, str):
        if fusion not in _BY_NAME:
            msg = (
                f"Unknown fusion {fusion!r}. Use one of {', '.join(repr(n) for n in FUSION_NAMES)}, or a "
                "fusion object such as daskml_lab.fusion.WeightedAveraging(weights='validation')."
            )
            raise ValueError(msg)
        return _BY_NAME[fusion]()
    if isinstance(fusion, Fusion):
        return clone(fusion)
    msg = (
        f"fusion must be a name ({', '.join(repr(n) for n in FUSION_NAMES)}) or a daskml_lab.fusion.Fusion "
        f"object; got {type(fusion).__name__}."
    )
    raise TypeError(msg)


def fuse(
    estimators: Sequence[Any],
    fusion: str | Fusion = "soft-voting",
    *,
    X_val: Any = None,
    y_val: Any = None,
    sample_weight: Any = None,
    classes: Any = None,
    n_samples: Any = None,
) -> Fusion:
    """Fuse models trained elsewhere (for example one per data partition) into one predictor.

    Parameters
    ----------
    estimators : list of fitted estimators
        The members, all classifiers or all regressors, trained on the same features.
    fusion : str or Fusion, default="soft-voting"
        The strategy, by name or as an object carrying its options (it is cloned).
    X_val : {array-like, sparse matrix} of shape (n_held_out, n_features), default=None
        In-memory held-out rows, needed by stacking, validation weights and best-model selection. They
        should be rows the members were not trained on, or the fusion will trust over-fitted members.
    y_val : array-like of shape (n_held_out,), default=None
        Their targets.
    sample_weight : array-like of shape (n_held_out,), default=None
        Weights of the held-out rows.
    classes : array-like of shape (n_classes,), default=None
        Global class labels. Default: the union of the members' ``classes_`` (classification), or none when
        the members are regressors.
    n_samples : array-like of shape (n_members,), default=None
        Training rows of each member, needed by size weights (``WeightedAveraging()``,
        ``ParameterAveraging()``).

    Returns
    -------
    Fusion
        The fitted fusion: a numpy predictor with ``predict`` and, where available, ``predict_proba`` and
        ``decision_function``. For dask or xarray data, and a shard report, use
        :meth:`daskml_lab.ensemble.ShardEnsembleClassifier.from_estimators` instead.

    Raises
    ------
    ValueError
        If the fusion needs held-out data that was not given, if only one of ``X_val``/``y_val`` is given, or
        if they do not match the members.
    TypeError
        If ``X_val`` is a dask or xarray collection.

    See Also
    --------
    daskml_lab.ensemble.ShardEnsembleClassifier.from_estimators : The same, as a lazy dask-aware estimator.

    Notes
    -----
    The held-out rows are evaluated in memory, in one pass over every member.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.naive_bayes import GaussianNB
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 2))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> members = [GaussianNB().fit(X[:20], y[:20]), GaussianNB().fit(X[20:], y[20:])]
    >>> fused = fuse(members, "soft-voting")
    >>> fused.predict_proba(X[:2]).shape
    (2, 2)
    """
    fusion_ = resolve_fusion(fusion)
    members = check_members(estimators, type(fusion_).__name__)
    if classes is not None:
        classes = check_classes(np.unique(np.asarray(classes)), name="classes")
    elif all(hasattr(m, "classes_") for m in members):
        classes = np.unique(np.concatenate([np.asarray(m.classes_) for m in members]))
    # before any scoring: e.g. a selection scorer of probabilities for regressors
    fusion_.check_base_estimator(members[0], classification=classes is not None)
    if (X_val is None) != (y_val is None):
        msg = "Pass both X_val and y_val (held-out rows and their targets), or neither."
        raise ValueError(msg)
    scores = baseline = features = target = weights = None
    if X_val is not None:
        held_out = check_X_y(X_val, y_val, sample_weight=sample_weight, y_numeric=classes is None)
        if not held_out.origin.is_eager:
            msg = (
                f"fuse() evaluates held-out rows in memory, but X_val is a {held_out.origin.kind} "
                "collection. Use daskml_lab.ensemble.ShardEnsembleClassifier.from_estimators (or "
                "...Regressor) for dask or xarray data, or pass numpy arrays."
            )
            raise TypeError(msg)
        n_features = getattr(members[0], "n_features_in_", None)
        if n_features is not None:
            check_n_features(held_out.X, int(n_features), estimator_name=type(fusion_).__name__)
        # compute: the user's held-out rows are already in memory; this only unwraps them from dask
        with unique_fused_keys():
            X, target, weights = dask.compute(
                held_out.X, held_out.y, held_out.sample_weight, scheduler="sync"
            )
        stats = member_score_stats(
            members, X, target, weights, classes=classes, scorer=fusion_.member_scorer()
        )
        scores, baseline = scores_from_stats(stats, len(members))
        features = fusion_.held_out_features(members, X, classes=classes)
    elif fusion_.requires_held_out():
        msg = (
            f"{type(fusion_).__name__} learns from held-out rows: pass X_val and y_val (rows the estimators "
            "were not trained on)."
        )
        raise ValueError(msg)
    data = FusionData(
        classes=classes,
        n_samples=None if n_samples is None else np.asarray(n_samples),
        validation_scores=scores,
        baseline_score=baseline,
        meta_features=features,
        meta_target=None if features is None else target,
        meta_sample_weight=None if features is None else weights,
    )
    return fusion_.fit(members, data)
