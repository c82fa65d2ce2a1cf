"""The SVC maths of the Cascade SVM: its SVCs, kernels in chunks, decision values, margins, dual objectives.

Pure numpy/scikit-learn functions of fitted :class:`~sklearn.svm.SVC` objects, used by the node kernels of
:mod:`daskml_lab.ensemble._cascade_nodes` on the workers and by the tests. Kernel matrices are computed in
row chunks of at most :data:`_KERNEL_CHUNK_ENTRIES` entries, which bounds their memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.svm import SVC

__all__ = ["SVC_PARAMETERS", "dual_objective", "make_svc", "margins", "n_bounded", "ovo_decision"]

#: Kernel-matrix entries computed at a time (bounds the memory of decision values and dual objectives).
_KERNEL_CHUNK_ENTRIES = 2_000_000

#: SVC parameters passed through unchanged.
SVC_PARAMETERS = (
    "C",
    "kernel",
    "degree",
    "coef0",
    "shrinking",
    "tol",
    "cache_size",
    "max_iter",
    "decision_function_shape",
    "break_ties",
)


def make_svc(spec: dict[str, Any], prepared: dict[str, Any]) -> SVC:
    """The cascade's SVC: the user's parameters with the global gamma and class weights."""
    params = {name: spec[name] for name in SVC_PARAMETERS}
    return SVC(gamma=prepared["gamma"], class_weight=prepared["class_weight"], **params)


def ovo_decision(model: SVC, X_sv: np.ndarray, X: np.ndarray) -> np.ndarray:
    """One-vs-one decision values of a fitted SVC, from kernel matrices computed with BLAS.

    Equal (to rounding) to ``decision_function`` with ``decision_function_shape="ovo"``, but computes the
    kernel between row chunks and all support vectors at once, several times faster than libsvm's
    row-by-row loop for more than a few features.

    Parameters
    ----------
    model : sklearn.svm.SVC
        Fitted, with a numeric ``gamma``.
    X_sv : ndarray of shape (n_SV, n_features)
        Its support vectors, in the order of ``model.support_``.
    X : ndarray of shape (n_rows, n_features)
        Rows to score.

    Returns
    -------
    ndarray of shape (n_rows,) for two classes, else (n_rows, n_classes * (n_classes - 1) // 2)
        A positive value votes for the first class of the pair (for two classes: for ``classes_[1]``).
    """
    starts = np.concatenate([[0], np.cumsum(model.n_support_)])
    n_classes = len(model.classes_)
    step = max(1, _KERNEL_CHUNK_ENTRIES // max(1, X_sv.shape[0]))
    parts = []
    for k in range(0, X.shape[0], step):
        K = _kernel(model, X[k : k + step], X_sv)
        if n_classes == 2:
            parts.append(K @ model.dual_coef_[0] + model.intercept_[0])
            continue
        columns = []
        pair = 0
        for i in range(n_classes):
            for j in range(i + 1, n_classes):
                first, second = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
                columns.append(
                    K[:, first] @ model.dual_coef_[j - 1, first]
                    + K[:, second] @ model.dual_coef_[i, second]
                    + model.intercept_[pair]
                )
                pair += 1
        parts.append(np.column_stack(columns))
    return np.concatenate(parts) if parts else np.empty((0,) if n_classes == 2 else (0, n_classes))


def margins(model: SVC, X_sv: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smallest ``y f(x)`` of every row over the one-vs-one problems its class takes part in."""
    values = ovo_decision(model, X_sv, X)
    classes = model.classes_
    if len(classes) == 2:
        return np.where(y == classes[1], values, -values)
    position = np.searchsorted(classes, y)
    margins = np.full(len(y), np.inf)
    column = 0
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            # a positive value votes for class i
            margins = np.where(position == i, np.minimum(margins, values[:, column]), margins)
            margins = np.where(position == j, np.minimum(margins, -values[:, column]), margins)
            column += 1
    return margins


def n_bounded(model: SVC, sw: np.ndarray | None) -> int:
    """Support vectors whose dual coefficient sits at its upper bound ``C * class_weight * sample_weight``."""
    class_index = np.repeat(np.arange(len(model.classes_)), model.n_support_)
    bound = model.C * model.class_weight_[class_index] * (1.0 if sw is None else sw)
    return int(np.sum(np.abs(model.dual_coef_).max(axis=0) >= bound * (1 - 1e-8)))


def _kernel(model: SVC, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    if callable(model.kernel):
        return np.asarray(model.kernel(A, B))
    return pairwise_kernels(
        A,
        B,
        metric=model.kernel,
        filter_params=True,
        gamma=model.gamma,
        degree=model.degree,
        coef0=model.coef0,
    )


def dual_objective(model: SVC, X_sv: np.ndarray | None = None) -> float:
    """The dual objective ``sum(alpha) - alpha' Q alpha / 2`` of a fitted SVC, summed over its class pairs.

    For classes ``i < j`` the coefficients ``y_k alpha_k`` of the pair's support vectors are
    ``dual_coef_[j - 1]`` over the support vectors of class ``i`` and ``dual_coef_[i]`` over those of class
    ``j`` (scikit-learn's one-vs-one layout). The kernel matrix is computed in row chunks.

    Parameters
    ----------
    model : sklearn.svm.SVC
        Fitted, with a numeric ``gamma``.
    X_sv : ndarray of shape (n_SV, n_features), default=None
        The support vectors, in the order of ``model.support_``; default ``model.support_vectors_`` (which is
        empty for a callable kernel).

    Returns
    -------
    float
    """
    X_sv = model.support_vectors_ if X_sv is None else X_sv
    starts = np.concatenate([[0], np.cumsum(model.n_support_)])
    total = 0.0
    for i in range(len(model.classes_)):
        for j in range(i + 1, len(model.classes_)):
            coef = np.concatenate(
                [
                    model.dual_coef_[j - 1, starts[i] : starts[i + 1]],
                    model.dual_coef_[i, starts[j] : starts[j + 1]],
                ]
            )
            rows = np.concatenate([np.arange(starts[i], starts[i + 1]), np.arange(starts[j], starts[j + 1])])
            X_pair = X_sv[rows]
            step = max(1, _KERNEL_CHUNK_ENTRIES // max(1, len(rows)))
            quadratic = sum(
                float(coef[k : k + step] @ (_kernel(model, X_pair[k : k + step], X_pair) @ coef))
                for k in range(0, len(rows), step)
            )
            total += float(np.abs(coef).sum()) - 0.5 * quadratic
    return total
