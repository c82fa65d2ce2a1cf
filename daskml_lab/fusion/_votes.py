"""Label votes of many members on one block of rows, counted in one pass over the block.

Hard voting (and weighted averaging of labels) needs, for every row, the global class each member
predicts. Asking every member for ``predict`` reads the block once per member. When every member is a plain
linear classifier of scikit-learn (``LogisticRegression``, ``SGDClassifier``, ``LinearSVC``, ``Perceptron``,
...: ``predict`` is the ``argmax`` of ``X @ coef_.T + intercept_``, or its sign for two classes), one matrix
product with the members' coefficients stacked gives every member's scores at once. With two-class members
and equal weights (hard voting of a binary problem) the votes are then counted by a second small product
whose terms are integers (exact counts, ties stay ties). On 100,000 x 50 rows and 16 ``SGDClassifier``
members: 0.10 s per block through the members' ``predict``, 0.013-0.019 s here.

Otherwise the votes (a row-by-member matrix of class positions) are counted with :func:`numpy.bincount`,
which adds the weights of a row's voters in member order, as a member-by-member loop does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.utils import check_array
from sklearn.utils.extmath import safe_sparse_dot

from daskml_lab.fusion._base import label_index

__all__ = ["vote_totals"]

#: Row-by-member entries handled at a time (bounds the memory of the vote matrix for many members).
_CHUNK_ENTRIES = 4_000_000


def _is_plain_linear(member: Any) -> bool:
    """Whether ``member.predict`` is scikit-learn's linear ``argmax(X @ coef_.T + intercept_)``.

    The class must use the linear classifiers' own ``predict`` and ``decision_function`` (compared with
    those of ``LogisticRegression``, which inherits them unchanged), hold dense coefficients, and have been
    fitted without feature names (whose check ``predict`` would run).
    """
    cls = type(member)
    return (
        getattr(cls, "predict", None) is LogisticRegression.predict
        and getattr(cls, "decision_function", None) is LogisticRegression.decision_function
        and isinstance(getattr(member, "coef_", None), np.ndarray)
        and member.coef_.ndim == 2
        and not hasattr(member, "feature_names_in_")
    )


def _row_chunks(X: Any, step: int) -> Iterator[tuple[slice, Any]]:
    """``(rows, X[rows])`` in chunks of ``step`` rows; one chunk, ``X`` itself, for other containers."""
    n_rows = X.shape[0]
    if n_rows <= step or not (isinstance(X, np.ndarray) or sp.issparse(X)):
        yield slice(0, n_rows), X
        return
    for begin in range(0, n_rows, step):
        rows = slice(begin, min(begin + step, n_rows))
        yield rows, X[rows]


def _stacked_scores(members: Sequence[Any], X: Any) -> Iterator[tuple[slice, np.ndarray]]:
    """Every member's decision values per row chunk: one product with the stacked coefficients."""
    coef = np.concatenate([m.coef_ for m in members]).astype(np.float64, copy=False)
    intercept = np.concatenate([np.broadcast_to(m.intercept_, (m.coef_.shape[0],)) for m in members])
    for rows, part_X in _row_chunks(X, max(1, _CHUNK_ENTRIES // max(1, coef.shape[0]))):
        scores = safe_sparse_dot(part_X, coef.T, dense_output=True)
        scores += intercept
        yield rows, scores


def _stacked_labels(
    members: Sequence[Any], class_index: Sequence[np.ndarray], X: Any
) -> Iterator[tuple[slice, np.ndarray]]:
    """Every member's global class index per row, from the stacked decision values."""
    widths = np.array([m.coef_.shape[0] for m in members])
    starts = np.concatenate([[0], np.cumsum(widths)])
    # two-class members (one score column each) vote first + positive * (second - first): elementwise
    binary = np.flatnonzero(widths == 1)
    table = np.array([class_index[m][:2] for m in binary], dtype=np.int64).reshape(-1, 2)
    first, step_up = table[:, 0], table[:, 1] - table[:, 0]
    for rows, scores in _stacked_scores(members, X):
        votes = np.empty((scores.shape[0], len(members)), dtype=np.int64)
        votes[:, binary] = first + (scores[:, starts[binary]] > 0) * step_up
        for m in np.flatnonzero(widths > 1):
            votes[:, m] = class_index[m][np.argmax(scores[:, starts[m] : starts[m + 1]], axis=1)]
        yield rows, votes


def _two_class_counts(
    members: Sequence[Any], class_index: Sequence[np.ndarray], n_classes: int, X: Any
) -> np.ndarray:
    """Vote counts of two-class linear members, as exact integers in float64, shape (n_rows, n_classes).

    Member ``m`` votes for its second class where its score is positive, else for its first:
    ``counts = base + positive @ D`` with ``base[c]`` the members whose first class is ``c`` and
    ``D[m, c] = [second_m = c] - [first_m = c]``. Every term is a small integer, so the sums are exact
    whatever their order (and ties stay ties).
    """
    table = np.array([index[:2] for index in class_index], dtype=np.int64)
    members_axis = np.arange(len(members))
    step = np.zeros((len(members), n_classes))
    step[members_axis, table[:, 1]] += 1.0
    step[members_axis, table[:, 0]] -= 1.0
    base = np.bincount(table[:, 0], minlength=n_classes).astype(np.float64)
    counts = np.empty((X.shape[0], n_classes))
    for rows, scores in _stacked_scores(members, X):
        np.greater(scores, 0, out=scores, casting="unsafe")  # 1.0 where positive, in place
        counts[rows] = scores @ step
        counts[rows] += base
    return counts


def _member_labels(members: Sequence[Any], classes: np.ndarray, X: Any) -> Iterator[tuple[slice, np.ndarray]]:
    """Every member's global class index per row, from the members' own ``predict``."""
    for rows, part_X in _row_chunks(X, max(1, _CHUNK_ENTRIES // max(1, len(members)))):
        votes = np.empty((rows.stop - rows.start, len(members)), dtype=np.int64)
        for m, member in enumerate(members):
            votes[:, m] = label_index(member.predict(part_X), classes)
        yield rows, votes


def vote_totals(
    members: Sequence[Any],
    class_index: Sequence[np.ndarray],
    weights: np.ndarray,
    classes: np.ndarray,
    X: Any,
) -> np.ndarray:
    """Weighted label votes of the members for every class, shape (n_rows, n_classes).

    Parameters
    ----------
    members : list of fitted classifiers
        Members with a non-zero weight.
    class_index : list of ndarray
        Positions of each member's classes among ``classes``.
    weights : ndarray of shape (n_members,)
        The members' weights.
    classes : ndarray of shape (n_classes,)
        The global classes, sorted.
    X : {array-like, sparse matrix} of shape (n_rows, n_features)
        One block of rows.

    Returns
    -------
    ndarray of float64 of shape (n_rows, n_classes)
        ``out[i, c]`` is the sum of the weights of the members predicting ``classes[c]`` for row ``i``.
    """
    n_classes = len(classes)
    weights = np.asarray(weights, dtype=np.float64)
    if members and all(_is_plain_linear(m) for m in members):
        X = check_array(X, accept_sparse="csr", dtype=(np.float64, np.float32))
        n_features = {int(m.coef_.shape[1]) for m in members}
        if n_features != {X.shape[1]}:
            msg = (
                f"X has {X.shape[1]} features, but the members were fitted with {sorted(n_features)} features. "
                "Pass rows with the features the members were trained on."
            )
            raise ValueError(msg)
        if all(m.coef_.shape[0] == 1 for m in members) and np.all(weights == weights[0]):
            # the common case of hard voting: counted with one small product per chunk
            return float(weights[0]) * _two_class_counts(members, class_index, n_classes, X)
        chunks = _stacked_labels(members, class_index, X)
    else:
        chunks = _member_labels(members, classes, X)
    n_rows = X.shape[0]
    total = np.zeros((n_rows, n_classes), dtype=np.float64)
    for rows, votes in chunks:
        n = votes.shape[0]
        cells = (np.arange(n, dtype=np.int64)[:, None] * n_classes + votes).ravel()
        counted = np.bincount(
            cells, weights=np.broadcast_to(weights, votes.shape).ravel(), minlength=n * n_classes
        )
        total[rows] = counted.reshape(n, n_classes)
    return total
