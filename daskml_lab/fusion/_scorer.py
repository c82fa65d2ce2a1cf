"""User-given scorers of the members on held-out rows: resolution, checks before training, one block's sums.

The default held-out scores (accuracy, R²) are exact over all held-out rows because their statistics add up
across row blocks (:func:`~daskml_lab.fusion.member_score_stats`). A scikit-learn scorer in general does not
(ROC AUC, F1): it is evaluated on each block of held-out rows where the block lives, and a member's score is
the mean of its block scores weighted by the blocks' rows (or sample weights). On one block, as with in-memory
``X_val``, that is scikit-learn's score itself.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import get_scorer, get_scorer_names

from daskml_lab import metrics

__all__ = ["check_scorer_fits", "resolve_scorer", "scorer_block_stats"]


def resolve_scorer(scoring: Any, fusion_name: str) -> Callable[..., Any] | None:
    """``scoring`` as a scorer ``scorer(estimator, X, y)``; ``None`` stays ``None`` (accuracy or R²).

    Parameters
    ----------
    scoring : str, callable or None
        A name of :func:`sklearn.metrics.get_scorer_names` or a scorer callable.
    fusion_name : str
        For messages.

    Returns
    -------
    callable or None

    Raises
    ------
    ValueError
        For an unknown name (with the closest valid ones).
    """
    if scoring is None or callable(scoring):
        return scoring
    try:
        return get_scorer(scoring)
    except ValueError as err:
        close = difflib.get_close_matches(str(scoring), sorted(get_scorer_names()), n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        msg = (
            f"{fusion_name}(scoring={scoring!r}): not a scikit-learn scorer name.{hint} "
            "sklearn.metrics.get_scorer_names() lists the valid names; a callable scorer(estimator, X, y) is "
            "accepted too."
        )
        raise ValueError(msg) from err


def check_scorer_fits(scoring: Any, estimator: Any, *, classification: bool, fusion_name: str) -> None:
    """Reject, before training, a scorer that cannot score ``estimator`` (e.g. ROC AUC of a regressor).

    Parameters
    ----------
    scoring : str, callable or None
    estimator : estimator instance
        The base estimator (or a member).
    classification : bool
        Whether the task is classification.
    fusion_name : str
        For messages.

    Raises
    ------
    ValueError
        As :func:`daskml_lab.metrics.check_scorer_fits`, or for an unknown scorer name.
    """
    scorer = resolve_scorer(scoring, fusion_name)
    if scorer is not None:
        metrics.check_scorer_fits(
            scorer, estimator, classification=classification, name=f"{fusion_name}(scoring={scoring!r})"
        )


def scorer_block_stats(
    estimators: Sequence[Any],
    X: Any,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    scorer: Callable[..., Any],
) -> dict[str, Any] | None:
    """Each member's score on one block of held-out rows, times the block's weight, and that weight.

    Parameters
    ----------
    estimators : list of fitted estimators
    X : {ndarray, sparse matrix} of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,)
    sample_weight : ndarray of shape (n_rows,) or None
        Passed to the scorer; its sum is the block's weight (else the number of rows).
    scorer : callable
        ``scorer(estimator, X, y[, sample_weight=...])``.

    Returns
    -------
    dict or None
        ``{"scorer": {"sum": ndarray of shape (n_members,), "weight": float}}``; ``None`` for a block that
        weighs nothing.

    Raises
    ------
    ValueError
        When the scorer fails on the block (for example ROC AUC on rows of one class), saying how to fix it.
    """
    y = np.asarray(y)
    weight = float(y.shape[0] if sample_weight is None else np.sum(sample_weight))
    if weight <= 0:
        return None
    extra = {} if sample_weight is None else {"sample_weight": sample_weight}
    sums = np.empty(len(estimators), dtype=np.float64)
    for position, member in enumerate(estimators):
        try:
            score = float(scorer(member, X, y, **extra))
        except Exception as err:
            raise ValueError(
                _block_failure(scorer, y, position, member, f"{type(err).__name__}: {err}")
            ) from err
        if not np.isfinite(score):  # e.g. ROC AUC of rows of one class: undefined (scikit-learn warns)
            raise ValueError(_block_failure(scorer, y, position, member, f"the score is {score}"))
        sums[position] = score * weight
    return {"scorer": {"sum": sums, "weight": weight}}


def _block_failure(scorer: Any, y: np.ndarray, position: int, member: Any, what: str) -> str:
    return (
        f"The selection scorer {scorer!r} failed on a block of {y.shape[0]} held-out rows (labels "
        f"{np.unique(y)[:5].tolist()}) for member {position} ({type(member).__name__}): {what}. Each block of "
        "held-out rows is scored on its own: hold out more rows (validation_fraction), shard with "
        "sharding='stratified', pass X_val in fewer, larger blocks, or use scoring=None (accuracy or R², exact "
        "over all held-out rows)."
    )
