"""The fusion protocol: how fitted member models become one predictor.

A *fusion* turns a list of fitted scikit-learn estimators (the *members*: one model per shard, or models the
user trained elsewhere) into a single predictor. Fusion objects are scikit-learn style parameter holders:
``__init__`` stores options, ``get_params``/``set_params``/``clone`` work, and learned state ends in ``_``.

The lifecycle of a fusion is documented on :class:`Fusion` (public as :class:`daskml_lab.fusion.Fusion`).

Fitted attributes shared by every fusion: ``classes_`` (classification only), ``n_members_`` and
``weights_`` (each member's share of the fused output, ``NaN`` where the fusion has no such notion, as for
stacking).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from daskml_lab.base import check_params
from daskml_lab.fusion._scorer import scorer_block_stats
from daskml_lab.metrics.kernels import (
    accuracy_agg,
    accuracy_chunk,
    accuracy_combine,
    r2_agg,
    regression_chunk,
    regression_combine,
)

__all__ = [
    "Fusion",
    "FusionData",
    "aligned_proba",
    "check_members",
    "class_index",
    "combine_score_stats",
    "label_index",
    "member_score_stats",
    "scores_from_stats",
]


@dataclass(frozen=True)
class FusionData:
    """Small, client-side inputs of :meth:`Fusion.fit`.

    Every field is optional; a fusion that needs a missing one raises a ``ValueError`` saying how to give it.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,) or None
        Sorted global class labels. ``None`` infers them: the union of the members' ``classes_`` when every
        member has that attribute (classification), otherwise regression.
    n_samples : ndarray of shape (n_members,) or None
        Number of rows each member was trained on (for size weights).
    shard_index : ndarray of shape (n_members,) or None
        Shard each member comes from, for messages and for user weights given per shard. Default
        ``arange(n_members)``.
    n_shards : int or None
        Number of shards, empty ones included (the length of user weights). Default ``n_members``.
    validation_scores : ndarray of shape (n_members,) or None
        Each member's score (accuracy, or R² for regression) on held-out rows it never trained on.
    baseline_score : float or None
        Score of a constant prediction on the same held-out rows (the majority-class accuracy; 0 for R²).
    meta_features : ndarray or sparse matrix of shape (n_held_out, n_meta_features) or None
        :meth:`Fusion.held_out_features` of the held-out rows, stacked in row-block order.
    meta_target : ndarray of shape (n_held_out,) or None
        Targets of those rows.
    meta_sample_weight : ndarray of shape (n_held_out,) or None
        Sample weights of those rows.
    """

    classes: np.ndarray | None = None
    n_samples: np.ndarray | None = None
    shard_index: np.ndarray | None = None
    n_shards: int | None = None
    validation_scores: np.ndarray | None = None
    baseline_score: float | None = None
    meta_features: Any = None
    meta_target: np.ndarray | None = None
    meta_sample_weight: np.ndarray | None = None


class Fusion(BaseEstimator):
    """Base class of fusion strategies: a parameter holder that fuses fitted members into one predictor.

    Subclasses implement :meth:`fit` and the prediction methods (``predict``; ``predict_proba`` and
    ``decision_function`` guarded by :func:`sklearn.utils.metaestimators.available_if`), list them in
    :attr:`prediction_methods`, and override :meth:`requires_held_out`, :meth:`held_out_features` and
    :meth:`check_base_estimator` when they need to.

    Notes
    -----
    Lifecycle, as :class:`~daskml_lab.ensemble.ShardEnsembleClassifier` and :func:`~daskml_lab.fusion.fuse`
    drive it:

    1. ``fusion = clone(user_fusion)``; :meth:`Fusion.check_base_estimator` rejects impossible combinations
       before any training (for example hard voting for a regressor).
    2. If :meth:`Fusion.requires_held_out` is true, the caller evaluates the members on *held-out rows* that no
       member was trained on, block by block and where the rows live: :func:`member_score_stats` (summed over
       blocks with :func:`combine_score_stats`) and :meth:`Fusion.held_out_features` (stacked in block order).
       Both are pure numpy functions of the members and one block; only their small results travel.
    3. ``fusion.fit(members, FusionData(...))`` learns the fused state on the client from those small inputs
       (weights, a meta-estimator, averaged parameters, a pooled forest).
    4. The fitted fusion is a self-contained numpy predictor: ``predict``, and where available ``predict_proba``
       and ``decision_function``, all taking one block of rows. The ensemble sends it to the workers once, as a
       single graph key, and calls it on every row block. ``hasattr`` tells which methods are available.

    Classification outputs are always aligned to the global ``classes_`` (the sorted labels of all members and
    data): a member trained on a subset of the classes contributes zero probability to the classes it never saw.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    #: The prediction methods this strategy can provide, before any fit: an ensemble offers no method
    #: outside it (``hasattr`` stays truthful). Whether a fitted fusion has one may further depend on its
    #: members, which its ``available_if`` checks say.
    prediction_methods: ClassVar[frozenset[str]] = frozenset(
        {"predict", "predict_proba", "decision_function"}
    )

    def requires_held_out(self) -> bool:
        """Whether :meth:`fit` needs validation scores or meta-features computed on held-out rows.

        Returns
        -------
        bool
        """
        return False

    def held_out_fraction(self) -> float:
        """Share of every shard to hold out when the ensemble's ``validation_fraction`` is ``None``.

        Only read when :meth:`requires_held_out` is true.

        Returns
        -------
        float
        """
        return 0.1

    def refits_members(self) -> bool:
        """Whether each shard model is fitted again on its whole shard once the held-out rows were used.

        When true, the held-out scores and meta-features come from models that never saw those rows, and the
        members that :meth:`fit` receives and that predict are refitted on all the rows of their shard (as
        :class:`sklearn.ensemble.StackingClassifier` refits its estimators on all data after computing
        out-of-fold predictions). Costs a second fit per shard.

        Returns
        -------
        bool
        """
        return False

    def member_scorer(self) -> Any:
        """The scorer of the members' held-out scores; ``None`` (the default) means accuracy or R².

        A scorer ``scorer(estimator, X, y)`` is evaluated on every block of held-out rows where it lives
        and averaged over blocks weighted by their rows; ``None`` gives scores exact over all held-out rows.

        Returns
        -------
        callable or None
        """
        return None

    def check_base_estimator(self, estimator: Any, *, classification: bool) -> None:
        """Reject, before training, a base estimator or task this fusion cannot fuse.

        Parameters
        ----------
        estimator : estimator instance
            The unfitted base estimator that will be cloned for every shard.
        classification : bool
            Whether the task is classification.

        Raises
        ------
        ValueError
            If the combination cannot work; the default accepts everything.
        """

    def held_out_features(self, estimators: Sequence[Any], X: Any, *, classes: np.ndarray | None) -> Any:
        """Features this fusion learns from, for held-out rows ``X`` (``None`` when it learns from none).

        A pure function of the members and one block of rows; it must not depend on fitted state, because it
        runs before :meth:`fit`.

        Parameters
        ----------
        estimators : list of fitted estimators
            The members.
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)
            Held-out rows.
        classes : ndarray of shape (n_classes,) or None
            Global classes (``None`` for regression).

        Returns
        -------
        ndarray or None
        """
        return None

    def fit(self, estimators: Sequence[Any], data: FusionData | None = None) -> Fusion:
        """Learn the fused predictor from fitted members (on the client, from small inputs only).

        Parameters
        ----------
        estimators : list of fitted estimators
            The members, in shard order.
        data : FusionData, default=None
            Sizes, held-out scores and meta-features, as the fusion needs them.

        Returns
        -------
        self : Fusion
        """
        msg = f"{type(self).__name__} does not implement fit."
        raise NotImplementedError(msg)

    # -----------------------------------------------------------------------------------------------------
    # helpers for subclasses

    def _start_fit(self, estimators: Sequence[Any], data: FusionData | None) -> tuple[list[Any], FusionData]:
        """Check parameters and members; infer the classes; set ``n_members_`` and ``classes_``."""
        check_params(self)
        members = check_members(estimators, type(self).__name__)
        data = FusionData() if data is None else data
        classes = data.classes
        if classes is None and all(hasattr(m, "classes_") for m in members):
            classes = np.unique(np.concatenate([np.asarray(m.classes_) for m in members]))
        shard_index = data.shard_index if data.shard_index is not None else np.arange(len(members))
        n_shards = data.n_shards if data.n_shards is not None else len(members)
        data = FusionData(
            classes=None if classes is None else np.asarray(classes),
            n_samples=data.n_samples,
            shard_index=np.asarray(shard_index),
            n_shards=int(n_shards),
            validation_scores=data.validation_scores,
            baseline_score=data.baseline_score,
            meta_features=data.meta_features,
            meta_target=data.meta_target,
            meta_sample_weight=data.meta_sample_weight,
        )
        self.n_members_ = len(members)
        if data.classes is not None:
            self.classes_ = data.classes
        elif hasattr(self, "classes_"):
            del self.classes_
        return members, data

    def _is_classifier(self) -> bool:
        return hasattr(self, "classes_")

    def _member_names(self, positions: Sequence[int], data: FusionData | None = None) -> str:
        shards = data.shard_index if data is not None and data.shard_index is not None else None
        names = [
            f"{p}" if shards is None or int(shards[p]) == p else f"{p} (shard {int(shards[p])})"
            for p in positions
        ]
        return ", ".join(names)


# ---------------------------------------------------------------------------------------------------------
# kernels shared by the strategies (pure numpy, one block of rows)


def class_index(estimator: Any, classes: np.ndarray) -> np.ndarray:
    """Positions of ``estimator.classes_`` among the global ``classes``.

    Parameters
    ----------
    estimator : fitted classifier
        Has ``classes_``.
    classes : ndarray of shape (n_classes,)
        Sorted global labels.

    Returns
    -------
    ndarray of int64 of shape (n_estimator_classes,)

    Raises
    ------
    ValueError
        If the estimator knows a label that is not a global class.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> model = DummyClassifier().fit(np.zeros((3, 1)), ["b", "c", "b"])
    >>> class_index(model, np.array(["a", "b", "c"])).tolist()
    [1, 2]
    """
    own = np.asarray(estimator.classes_)
    try:
        return label_index(own, classes)
    except ValueError as err:
        msg = (
            f"{type(estimator).__name__} was trained on the classes {own.tolist()}, which are not all among "
            f"the global classes {np.asarray(classes).tolist()}. Pass classes= listing every label the "
            "estimators know."
        )
        raise ValueError(msg) from err


def label_index(labels: Any, classes: np.ndarray) -> np.ndarray:
    """Positions of ``labels`` in the sorted ``classes``; raises ``ValueError`` for unknown labels.

    Parameters
    ----------
    labels : array-like of shape (n,)
        Labels.
    classes : ndarray of shape (n_classes,)
        Sorted labels.

    Returns
    -------
    ndarray of int64 of shape (n,)

    Raises
    ------
    ValueError
        Naming the unknown labels.
    """
    labels = np.asarray(labels)
    classes = np.asarray(classes)
    try:
        index = np.searchsorted(classes, labels)
    except TypeError as err:
        msg = (
            f"Labels of type {labels.dtype} cannot be compared with the classes {classes.tolist()} "
            f"(dtype {classes.dtype}). Use labels of one type."
        )
        raise ValueError(msg) from err
    index = np.clip(index, 0, len(classes) - 1)
    unknown = classes[index] != labels
    if np.any(unknown):
        msg = (
            f"Found labels {np.unique(labels[unknown])[:5].tolist()} that are not among the classes "
            f"{classes.tolist()}. Pass classes= with every label."
        )
        raise ValueError(msg)
    return index.astype(np.int64)


def aligned_proba(estimator: Any, index: np.ndarray, X: Any, n_classes: int) -> np.ndarray:
    """``estimator.predict_proba(X)`` with its columns placed at ``index`` among ``n_classes`` columns.

    Classes the estimator never saw get probability 0.

    Parameters
    ----------
    estimator : fitted classifier
    index : ndarray of int of shape (n_estimator_classes,)
        From :func:`class_index`.
    X : {ndarray, sparse matrix} of shape (n_rows, n_features)
    n_classes : int

    Returns
    -------
    ndarray of float64 of shape (n_rows, n_classes)
    """
    proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    out = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    out[:, index] = proba
    return out


def member_score_stats(
    estimators: Sequence[Any],
    X: Any,
    y: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    classes: np.ndarray | None,
    scorer: Any = None,
) -> dict[str, Any] | None:
    """Additive statistics of every member's score on one block of held-out rows.

    The statistics are those of :mod:`daskml_lab.metrics`, one value per member where they depend on the
    prediction. Classification: the accuracy statistics (weight of correctly predicted rows per member, total
    weight) and the weight of each class (for the majority baseline). Regression: the R² statistics (weight,
    weighted mean and centred sum of squares of ``y``, merged exactly with Chan's formula; weighted squared
    error per member).

    Parameters
    ----------
    estimators : list of fitted estimators
    X : {ndarray, sparse matrix} of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,)
    sample_weight : ndarray of shape (n_rows,), default=None
    classes : ndarray of shape (n_classes,) or None
        Global classes; ``None`` for regression.
    scorer : callable, default=None
        A fusion's :meth:`Fusion.member_scorer`: each member's score on this block, weighted by the block's
        rows (or sample weights), instead of the accuracy or R² statistics.

    Returns
    -------
    dict or None
        Merge with :func:`combine_score_stats`, turn into scores with :func:`scores_from_stats`; ``None``
        for a block of zero weight under ``scorer``.
    """
    y = np.asarray(y)
    if scorer is not None:
        return scorer_block_stats(estimators, X, y, sample_weight, scorer)
    if classes is not None:
        predictions = _member_predictions(estimators, X, y.shape[0], None)
        weight = np.ones(y.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        class_weight = np.bincount(label_index(y, classes), weights=weight, minlength=len(classes))
        return {
            "accuracy": accuracy_chunk(y, predictions, sample_weight),
            "class_weight": class_weight.astype(np.float64),
        }
    predictions = _member_predictions(estimators, X, y.shape[0], np.float64)
    # A member predicting NaN gets a NaN score (and no weight), not an error.
    return {"regression": regression_chunk(y, predictions, sample_weight, check_finite=False)}


def combine_score_stats(stats: Sequence[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Merge the statistics of several blocks (``None`` entries, from empty blocks, are skipped).

    Parameters
    ----------
    stats : list of dict or None
        Outputs of :func:`member_score_stats`.

    Returns
    -------
    dict or None
        ``None`` when every entry is ``None``.
    """
    parts = [s for s in stats if s is not None]
    if not parts:
        return None
    if "scorer" in parts[0]:
        return {
            "scorer": {
                "sum": np.sum([p["scorer"]["sum"] for p in parts], axis=0),
                "weight": float(sum(p["scorer"]["weight"] for p in parts)),
            }
        }
    if "accuracy" in parts[0]:
        return {
            "accuracy": accuracy_combine([p["accuracy"] for p in parts]),
            "class_weight": np.sum([p["class_weight"] for p in parts], axis=0),
        }
    return {"regression": regression_combine([p["regression"] for p in parts])}


def scores_from_stats(stats: dict[str, Any] | None, n_members: int) -> tuple[np.ndarray, float | None]:
    """Scores of the members (accuracy or R²) and the constant-prediction baseline.

    Parameters
    ----------
    stats : dict or None
        From :func:`combine_score_stats`.
    n_members : int

    Returns
    -------
    scores : ndarray of shape (n_members,)
        ``NaN`` when the held-out rows weigh nothing (none at all, or all of weight zero): the fusion then has
        no evidence, which is not an error (unlike a score asked of :mod:`daskml_lab.metrics`).
    baseline : float or None
        Majority-class accuracy (classification) or 0 (R² of predicting the mean); ``None`` without rows,
        and for the scores of a user-given scorer (the row-weighted mean of its block scores).
    """
    if stats is None:
        return np.full(n_members, np.nan), None
    if "scorer" in stats:
        total = stats["scorer"]["weight"]
        if total <= 0:
            return np.full(n_members, np.nan), None
        return np.asarray(stats["scorer"]["sum"], dtype=np.float64).reshape(n_members) / total, None
    if "accuracy" in stats:
        total = float(stats["class_weight"].sum())
        if total <= 0:
            return np.full(n_members, np.nan), None
        scores = np.asarray(accuracy_agg(stats["accuracy"]), dtype=np.float64).reshape(n_members)
        return scores, float(stats["class_weight"].max() / total)
    if stats["regression"]["weight"] <= 0:
        return np.full(n_members, np.nan), None
    # As scikit-learn's r2_score: for a constant target, 1 for a perfect prediction and 0 otherwise.
    return np.asarray(r2_agg(stats["regression"]), dtype=np.float64).reshape(n_members), 0.0


def _member_predictions(estimators: Sequence[Any], X: Any, n_rows: int, dtype: Any) -> np.ndarray:
    """The members' predictions of one block, one column per member."""
    columns = [np.asarray(m.predict(X), dtype=dtype) for m in estimators]
    if not columns:
        return np.empty((n_rows, 0), dtype=dtype)
    return np.column_stack(columns)


# ---------------------------------------------------------------------------------------------------------
# validation of members


def check_members(estimators: Any, fusion_name: str) -> list[Any]:
    """The fitted members to fuse, as a list, after checking that each is a fitted estimator.

    Parameters
    ----------
    estimators : sequence of estimators
        The members (one per shard).
    fusion_name : str
        Name of the strategy, for messages.

    Returns
    -------
    list

    Raises
    ------
    TypeError
        If ``estimators`` is not a sequence, or a member has no ``predict`` method.
    ValueError
        If there is no member, or a member is not fitted.
    """
    if isinstance(estimators, BaseEstimator) or not isinstance(estimators, Sequence | np.ndarray):
        msg = (
            f"{fusion_name} fuses a list of fitted estimators; got {type(estimators).__name__}. Pass a list "
            "such as [model_a, model_b]."
        )
        raise TypeError(msg)
    members = list(estimators)
    if not members:
        msg = f"{fusion_name} needs at least one fitted estimator; got an empty list."
        raise ValueError(msg)
    for position, member in enumerate(members):
        if not callable(getattr(member, "predict", None)):
            msg = (
                f"Every member must be a fitted estimator with a predict method; member {position} is a "
                f"{type(member).__name__}."
            )
            raise TypeError(msg)
        try:
            check_is_fitted(member)
        except NotFittedError as err:
            msg = (
                f"Member {position} ({type(member).__name__}) is not fitted. Fusion combines fitted "
                "estimators: call fit on each one first."
            )
            raise NotFittedError(msg) from err
    return members


def _n_members(data: FusionData) -> int:
    """Number of members of prepared fusion data (``shard_index`` is set by :meth:`Fusion._start_fit`)."""
    if data.shard_index is None:
        msg = "FusionData.shard_index is not set; call Fusion._start_fit first."
        raise RuntimeError(msg)
    return len(data.shard_index)


def _normalise_weights(raw: np.ndarray, what: str) -> np.ndarray:
    raw = np.asarray(raw, dtype=np.float64)
    total = raw.sum()
    if not np.isfinite(total) or total <= 0:
        msg = f"The {what} weights sum to {total}; at least one member needs a positive weight."
        raise ValueError(msg)
    return raw / total


def _user_weights(weights: Any, data: FusionData, fusion_name: str) -> np.ndarray:
    """Weights given per shard (length ``n_shards``) or per member (length ``n_members``), normalised."""
    values = np.asarray(weights, dtype=np.float64)
    n_members = _n_members(data)
    if values.ndim != 1 or values.shape[0] not in (n_members, data.n_shards):
        expected = f"{data.n_shards}" if data.n_shards == n_members else f"{data.n_shards} (one per shard)"
        msg = (
            f"{fusion_name} weights must be a 1-D array of length {expected}; got shape {values.shape}. "
            "Give one non-negative weight per shard."
        )
        raise ValueError(msg)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        msg = f"{fusion_name} weights must be finite and non-negative; got {values.tolist()}."
        raise ValueError(msg)
    if values.shape[0] != n_members:
        values = values[data.shard_index]
    return _normalise_weights(values, "given")


def _size_weights(data: FusionData, fusion_name: str) -> np.ndarray:
    if data.n_samples is None:
        msg = (
            f"{fusion_name} with weights='size' needs the number of training rows of every member, but "
            "none were given. Pass n_samples=[...] (one count per estimator) or use weights='uniform'."
        )
        raise ValueError(msg)
    sizes = np.asarray(data.n_samples, dtype=np.float64)
    if sizes.shape != (_n_members(data),):
        msg = f"n_samples must hold one count per member ({_n_members(data)}); got shape {sizes.shape}."
        raise ValueError(msg)
    return _normalise_weights(sizes, "size")
