"""Several cross-validation folds of one linear model, evaluated together in one pass over the row blocks.

A :class:`FoldedProblem` holds the data once and, per row, its *role* in every fold (a small int8 matrix of
shape ``(n_samples, n_folds)`` chunked like the rows: ``0`` train, ``1`` test, ``2`` neither). One evaluation
takes the current parameters of every active fold, stacked side by side as ``W`` of shape
``(n_params, n_folds * n_outputs)``, and computes in each block ``Z = X_block @ W`` once; each fold's loss
and ``dloss/dz`` come from its columns of ``Z`` with its train rows as weights, and the gradients of all the
folds are one product ``X_block.T @ dZ``. The block is read once per evaluation for all the folds, and the
whole evaluation is one dask computation bringing back ``n_folds`` scalars and ``n_folds`` gradients.

The kernels are pure functions of numpy/scipy blocks (see :mod:`daskml_lab.solvers._objectives` for the
per-row losses they reuse).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize

from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.memory import dense_nbytes, measure_workers, plan_memory, resolve_persist
from daskml_lab.solvers._objectives import _POINTWISE, SUBBLOCK_BYTES, _aligned_block

__all__ = ["FOLD_TEST", "FOLD_TRAIN", "FoldedProblem"]

logger = logging.getLogger(__name__)

#: Role codes of a row in one fold (those of :mod:`daskml_lab.model_selection`).
FOLD_TRAIN, FOLD_TEST = 0, 1
#: Losses a folded problem evaluates (their targets: 0/1 labels, class codes).
_FOLDED_LOSSES = ("logistic", "multinomial")
#: Fan-in of the tree that sums the blocks' results (when they are too big to gather, see ``_sum_blocks``).
_SPLIT_EVERY = 8
#: Parameters up to this size are written into every block's task instead of entering the graph as one key:
#: a key is first "computed" on one worker and then fetched by the others, two more hops in every round.
_EMBED_BYTES = 1 << 16
#: Blocks' results up to this size in total come straight back to the client, summed there in block order,
#: instead of through a tree of sum tasks (two more levels of scheduling and transfers in every round).
_GATHER_BYTES = 1 << 23
_PERSIST_KEY = "daskml_lab.solvers.persist"


def _fold_targets(y: np.ndarray, loss: str, dtype: np.dtype) -> np.ndarray:
    y = np.asarray(y).ravel()
    if loss == "multinomial":
        return y.astype(np.intp)
    return (2 * y - 1).astype(dtype)  # the binary kernels take the sign of the class


def _scores_of(X: Any, W: np.ndarray, fit_intercept: bool) -> np.ndarray:
    n_features = X.shape[1]
    coef = np.ascontiguousarray(W[:n_features], dtype=X.dtype)
    Z = np.asarray(X @ coef, dtype=X.dtype)
    if fit_intercept:
        Z += W[n_features].astype(X.dtype)
    return Z


def _column_sums(Z: np.ndarray) -> np.ndarray:
    """``Z.sum(axis=0)`` in float64; a BLAS product for float64 (numpy's sum over the rows of a narrow C-order
    array is an order of magnitude slower, and it ran once per sub-block)."""
    if Z.dtype == np.float64:
        return np.ones(Z.shape[0]) @ Z
    return Z.sum(axis=0, dtype=np.float64)


def _logistic_columns(
    Z: np.ndarray, sign: np.ndarray, train: np.ndarray, half_sign: np.ndarray
) -> np.ndarray:
    """Logistic losses of several folds' score columns at once; ``Z`` becomes ``dloss/dz`` (train rows only).

    The per-row formulas of :func:`~daskml_lab.solvers._objectives._pointwise_logistic` on a 2-D array:
    ``loss = log1p(exp(-|m|)) + max(-m, 0)`` with the margin ``m = s z``, and ``dloss/dz = s (tanh(m / 2) - 1)
    / 2``, weighted by each fold's train mask (``half_sign`` is ``train * s / 2``).

    Returns
    -------
    ndarray of float64 of shape (n_columns,)
        Each column's loss summed over its train rows.
    """
    margin = np.multiply(Z, sign[:, None], out=Z)
    per_row = np.abs(margin)
    np.negative(per_row, out=per_row)
    np.exp(per_row, out=per_row)
    np.log1p(per_row, out=per_row)
    per_row -= np.minimum(margin, 0)
    totals = np.einsum("ij,ij->j", per_row, train, dtype=np.float64)
    dz = np.multiply(margin, 0.5, out=margin)
    np.tanh(dz, out=dz)
    dz -= 1
    dz *= half_sign
    return totals


#: Margins above this are clipped in :func:`_signed_logistic_block`: ``log(1 + exp(-m)) < 2.4e-16`` there, and
#: ``exp`` of the clipped margin cannot overflow.
_MARGIN_CLIP = 36.0


def _signed_train_block(X: Any, y: np.ndarray, roles: np.ndarray) -> np.ndarray:
    """Each row's class sign (``+1``/``-1``) in the folds it trains, ``0`` in the others: shape (n_rows, n_folds).

    Computed once per block before the first round (the binary kernel's only per-row input besides ``X``).
    ``X`` is an argument only so that the task runs on the worker holding the block, where every round's
    task reads it.
    """
    sign = 2.0 * np.asarray(y, dtype=np.float64).ravel() - 1.0
    return np.where(roles == FOLD_TRAIN, sign[:, None], 0.0).astype(X.dtype, copy=False)


def _signed_logistic_block(
    X: Any,
    signs: np.ndarray,
    W: np.ndarray,
    columns: Sequence[int],
    n_train: np.ndarray,
    fit_intercept: bool,
    weights: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Binary logistic data terms and gradients of several folds on one float64 block: the shared pass's kernel.

    With ``t`` each row's entry of ``signs`` for a fold (its class sign on train rows, ``0`` elsewhere),
    ``m = t z`` and ``h = (1 + exp(m)) / 2``: ``loss = log 2 + log h - m`` and ``dloss/dz = -t / (2 h)``. A row
    outside the fold's train set has ``m = 0`` and ``h = 1``: it adds exactly nothing to either sum (summing
    ``log 2`` for it and subtracting later would bias the sums, the same rounding repeated thousands of
    times). Two transcendental functions per entry and no broadcasting over the folds: about two thirds of the
    time of :func:`_folds_loss_grad_block`, which rebuilt its train masks from the roles every round.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of float64 of shape (n_rows, n_features)
    signs : ndarray of shape (n_rows, n_folds)
        From :func:`_signed_train_block`.
    W : ndarray of shape (n_params, len(columns))
    columns : sequence of int
        The column of ``signs`` (fold) of each column of ``W``.
    n_train : ndarray of shape (len(columns),)
        The block's train rows of each column's fold (the sums of their ``weights``, when given).
    fit_intercept : bool
    weights : ndarray of shape (n_rows,) or None, default=None
        Sample weights of the rows: each row's loss and gradient are multiplied by its weight.

    Returns
    -------
    dict
        As :func:`_folds_loss_grad_block`.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0], [2.0], [3.0]])
    >>> signs = _signed_train_block(X, np.array([0, 1, 1]), np.array([[0, 1], [0, 0], [1, 0]], np.int8))
    >>> out = _signed_logistic_block(X, signs, np.zeros((2, 2)), [0, 1], np.array([2, 2]), True)
    >>> np.round(out["loss"] / np.log(2), 6).tolist()  # two train rows each, at W = 0
    [2.0, 2.0]
    """
    X = _aligned_block(X)
    n_rows, n_features = X.shape
    columns = list(columns)
    total = np.asarray(n_train, dtype=np.float64) * np.log(2.0)
    grad = np.zeros(W.shape)
    if n_rows == 0:
        return {"loss": total, "grad": grad}
    picked = signs if columns == list(range(signs.shape[1])) else signs[:, columns]
    step = n_rows if sp.issparse(X) else max(16, int(SUBBLOCK_BYTES // max(1, n_features * X.dtype.itemsize)))
    step = min(step, n_rows)
    # three sub-block buffers for the whole block: inside a Dask worker (whose nanny sets glibc's
    # MALLOC_TRIM_THRESHOLD_) every fresh temporary of this size costs page faults, about a third of the time
    ones = np.ones(step)
    weights = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    margins, halves, losses = (np.empty((step, W.shape[1])) for _ in range(3))
    coef = np.ascontiguousarray(W[:n_features])
    for start in range(0, n_rows, step):
        part = X[start : start + step]
        n = part.shape[0]
        t, margin, half, per_row = picked[start : start + n], margins[:n], halves[:n], losses[:n]
        if sp.issparse(part):
            margin[...] = part @ coef
        else:
            np.matmul(part, coef, out=margin)
        if fit_intercept:
            margin += W[n_features]
        margin *= t
        np.minimum(margin, _MARGIN_CLIP, out=margin)
        np.exp(margin, out=half)
        half *= 0.5
        half += 0.5
        np.log(half, out=per_row)
        per_row -= margin
        row_weights = ones[:n] if weights is None else weights[start : start + n]
        total += row_weights @ per_row
        dz = np.divide(t, half, out=margin)  # -2 dloss/dz: the sums below are scaled once at the end
        if weights is not None:
            dz *= row_weights[:, None]
        grad[:n_features] += np.asarray(part.T @ dz, dtype=np.float64)
        if fit_intercept:
            grad[n_features] += ones[:n] @ dz
    grad *= -0.5
    return {"loss": total, "grad": grad}


def _folds_loss_grad_block(
    X: Any,
    y: np.ndarray,
    roles: np.ndarray,
    W: np.ndarray,
    folds: Sequence[int],
    *,
    loss: str,
    n_outputs: int,
    fit_intercept: bool,
    weights: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Data terms and gradients of several folds on one row block, reading the block once.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,)
        0/1 labels (``"logistic"``) or class codes (``"multinomial"``).
    roles : ndarray of int8 of shape (n_rows, n_folds)
        Role of each row in each fold; only ``FOLD_TRAIN`` rows count.
    W : ndarray of shape (n_params, len(folds) * n_outputs)
        The parameters of the folds ``folds``, side by side.
    folds : sequence of int
        Which columns of ``roles`` the parameter columns belong to.
    loss : {"logistic", "multinomial"}
    n_outputs : int
    fit_intercept : bool

    Returns
    -------
    dict
        ``"loss"``: ndarray of shape (len(folds),), each fold's ``sum_i loss_i`` over its train rows
        (float64); ``"grad"``: ndarray of float64 of the shape of ``W``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0], [2.0], [3.0]])
    >>> roles = np.array([[0, 1], [0, 0], [1, 0]], dtype=np.int8)
    >>> out = _folds_loss_grad_block(X, np.array([0, 1, 1]), roles, np.zeros((2, 2)), [0, 1],
    ...                              loss="logistic", n_outputs=1, fit_intercept=True)
    >>> np.round(out["loss"] / np.log(2), 6).tolist()  # two train rows each, at W = 0
    [2.0, 2.0]
    """
    X = _aligned_block(X)
    pointwise = _POINTWISE[loss]
    target = _fold_targets(y, loss, X.dtype)
    n_rows, n_features = X.shape
    k = n_outputs
    total = np.zeros(len(folds))
    grad = np.zeros(W.shape)
    if n_rows == 0:
        return {"loss": total, "grad": grad}
    folds = list(folds)
    picked = roles if folds == list(range(roles.shape[1])) else roles[:, folds]  # no copy when all are active
    train = (picked == FOLD_TRAIN).astype(X.dtype)  # (n_rows, len(folds)) weights
    if weights is not None:
        train *= np.asarray(weights, dtype=X.dtype).ravel()[:, None]
    if k == 1:
        # all the folds' columns at once: a few numpy calls per sub-block instead of a dozen per fold (those
        # calls, not the arithmetic, were most of the kernel's time at 5 folds of 50 features)
        half_sign = train * (0.5 * target)[:, None]
    # dense blocks are swept in sub-blocks that stay in the CPU cache between X @ W and X.T @ dZ
    step = n_rows if sp.issparse(X) else max(16, int(SUBBLOCK_BYTES // max(1, n_features * X.dtype.itemsize)))
    for start in range(0, n_rows, step):
        rows = slice(start, start + step)
        part = X[rows]
        Z = _scores_of(part, W, fit_intercept)
        if k == 1:
            total += _logistic_columns(Z, target[rows], train[rows], half_sign[rows])
        else:
            for i in range(len(folds)):
                value, dz = pointwise(Z[:, i * k : (i + 1) * k].copy(), target[rows], train[rows, i], {})
                total[i] += value
                Z[:, i * k : (i + 1) * k] = dz
        grad[:n_features] += np.asarray(part.T @ Z, dtype=np.float64)
        if fit_intercept:
            grad[n_features] += _column_sums(Z)
    return {"loss": total, "grad": grad}


def _test_sums(
    z: np.ndarray, labels: np.ndarray, metric: str, weights: np.ndarray | None = None
) -> np.ndarray:
    """Correct labels or summed log-losses of every path point: ``z`` of shape (n_rows, n_points, n_outputs).

    With ``weights`` (one per row), the sums are weighted: scikit-learn's scores with ``sample_weight``.
    """
    if metric == "accuracy":
        predicted = z[:, :, 0] > 0 if z.shape[2] == 1 else np.argmax(z, axis=2)
        expected = (labels == 1)[:, None] if z.shape[2] == 1 else labels[:, None]
        per_row = (predicted == expected).astype(np.float64)
    elif z.shape[2] == 1:  # log-loss of the sigmoid: log(1 + exp(-s z)) with s the sign of the class
        margin = z[:, :, 0] * (2 * labels - 1)[:, None]
        per_row = np.logaddexp(0, -margin)
    else:
        shifted = z - z.max(axis=2, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=2))
        picked = np.take_along_axis(
            shifted, np.broadcast_to(labels[:, None, None], (len(labels), z.shape[1], 1)), 2
        )
        per_row = log_norm - picked[:, :, 0]
    return per_row.sum(axis=0) if weights is None else weights @ per_row


def _folds_score_block(
    X: Any,
    y: np.ndarray,
    roles: np.ndarray,
    W: np.ndarray,
    folds: Sequence[int],
    *,
    n_points: int,
    n_outputs: int,
    fit_intercept: bool,
    metric: str,
    weights: np.ndarray | None = None,
    role: int = FOLD_TEST,
) -> np.ndarray:
    """Sums of a metric of every (problem, path point) on one block: correct labels or log-losses.

    ``W`` holds the parameters problem-major: column block ``i * n_points + p`` (each ``n_outputs`` wide) is
    problem ``i`` at path point ``p``; only the rows of its fold ``folds[i]`` whose role is ``role`` (the test
    rows, or the train rows for train scores) count, weighted by ``weights`` (the rows' sample weights) when
    given.

    Returns
    -------
    ndarray of float64 of shape (len(folds), n_points)
    """
    n_folds = len(folds)
    X = _aligned_block(X)
    codes = np.asarray(y).ravel().astype(np.intp)
    weights = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    out = np.zeros((n_folds, n_points))
    if X.shape[0] == 0:
        return out
    Z = _scores_of(X, W, fit_intercept).astype(np.float64, copy=False)
    k = n_outputs
    for f in range(n_folds):
        rows = roles[:, folds[f]] == role
        if not rows.any():
            continue
        # the fold's rows once for all its path points: (n_rows, n_points, n_outputs)
        start = f * n_points * k
        out[f] = _test_sums(
            Z[rows, start : start + n_points * k].reshape(-1, n_points, k),
            codes[rows],
            metric,
            None if weights is None else weights[rows],
        )
    return out


def _sum_parts(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, dict):
        return {key: sum(part[key] for part in parts) for key in first}
    return sum(parts)


def _shared(W: np.ndarray, name: str) -> Any:
    """``W`` as the blocks' tasks take it: itself when small (copied into each task), else one graph key."""
    if W.nbytes <= _EMBED_BYTES:
        return W
    return dask.delayed(W, name=name)  # enters the graph once


def _role_counts_block(
    roles: np.ndarray, train_weights: np.ndarray | None = None, test_weights: np.ndarray | None = None
) -> np.ndarray:
    """Train and test rows of every fold in one block (shape (2, n_folds)), or their sums of weights."""

    def total(role: int, weights: np.ndarray | None) -> np.ndarray:
        if weights is None:
            return (roles == role).sum(axis=0).astype(np.float64)
        return np.asarray(weights, dtype=np.float64).ravel() @ (roles == role)

    return np.stack([total(FOLD_TRAIN, train_weights), total(FOLD_TEST, test_weights)])


class FoldedProblem:
    """The folds of one cross-validated linear classifier over row-chunked data, evaluated in shared passes.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Validated features: row chunks, one column chunk, float32 or float64 (dense or CSR blocks).
    y : dask.array.Array of shape (n_samples,)
        0/1 labels (``"logistic"``) or class codes ``0 .. n_outputs - 1`` (``"multinomial"``), X's row chunks.
    roles : dask.array.Array of int8 of shape (n_samples, n_folds)
        Role of every row in every fold (``0`` train, ``1`` test, ``2`` neither), X's row chunks, one column
        chunk.
    loss : {"logistic", "multinomial"}, default="logistic"
    n_outputs : int, default=1
        Number of classes for ``"multinomial"``, else 1.
    fit_intercept : bool, default=True
    persist : {"auto", True, False} or None, default=None
        Whether the blocks stay in (worker) memory for all the passes: the solvers' memory plan and its
        ``dask.config`` key ``daskml_lab.solvers.persist``.
    problem_folds : sequence of int or None, default=None
        The fold of each problem, when several problems share a fold (a grid of penalties x folds); ``None``
        is one problem per fold. :meth:`loss_grad` and :meth:`test_scores` are indexed by problem.
    sample_weight : dask.array.Array of shape (n_samples,) or None, default=None
        Weights of the rows in the losses, X's row chunks (scikit-learn's ``sample_weight`` times the class
        weights); ``n_train`` is then each fold's sum of train weights.
    score_weight : dask.array.Array of shape (n_samples,) or None, default=None
        Weights of the rows in the test scores (scikit-learn's ``sample_weight`` only); ``n_test`` is then each
        fold's sum of test weights.

    Attributes
    ----------
    n_folds, n_problems, n_features, n_params : int
    n_train, n_test : ndarray of float64 of shape (n_folds,)
        Rows of each fold, or their sums of weights (known after :meth:`start`).
    n_passes : int
        Passes over the data so far: each :meth:`loss_grad` and :meth:`test_scores` call is one dask
        computation.
    """

    def __init__(
        self,
        X: da.Array,
        y: da.Array,
        roles: da.Array,
        *,
        loss: str = "logistic",
        n_outputs: int = 1,
        fit_intercept: bool = True,
        persist: Any = None,
        problem_folds: Sequence[int] | None = None,
        sample_weight: da.Array | None = None,
        score_weight: da.Array | None = None,
    ) -> None:
        if loss not in _FOLDED_LOSSES:
            msg = f"FoldedProblem evaluates the losses {list(_FOLDED_LOSSES)}; got loss={loss!r}."
            raise ValueError(msg)
        if roles.ndim != 2 or roles.chunks[0] != X.chunks[0] or roles.numblocks[1] != 1:
            msg = (
                f"roles must be a (n_samples, n_folds) array with X's row chunks {X.chunks[0]} and one column "
                f"chunk; got shape {roles.shape} with chunks {roles.chunks}."
            )
            raise ValueError(msg)
        self.X, self.y, self.roles = X, y, roles
        self.sample_weight, self.score_weight = sample_weight, score_weight
        self.loss = loss
        self.n_outputs = int(n_outputs)
        self.fit_intercept = bool(fit_intercept)
        self.persist = persist
        self.n_folds = int(roles.shape[1])
        self.problem_folds = list(range(self.n_folds) if problem_folds is None else problem_folds)
        self.n_problems = len(self.problem_folds)
        self.n_features = int(X.shape[1])
        self.n_params = self.n_features + int(self.fit_intercept)
        self.n_passes = 0
        self._blocks: list[tuple[Any, Any, Any]] = []
        self._weights: list[Any] = []
        self._score_weights: list[Any] = []
        self._signs: list[Any] = []
        self._block_train: list[np.ndarray] = []
        self._kept: tuple[Any, ...] = ()

    def __enter__(self) -> FoldedProblem:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> None:
        """Keep the blocks in memory when the plan says so and count each fold's rows (one small compute)."""
        X, y, roles = self.X, self.y, self.roles
        weights, score_weights = self.sample_weight, self.score_weight
        signed = self.loss == "logistic" and X.dtype == np.float64
        plan = plan_memory(
            # the blocks, the int8 roles and, for the binary kernel, the rows' signs per fold
            nbytes=dense_nbytes(X, y)
            + float(np.prod(roles.shape)) * (9 if signed else 1)
            + 8.0 * X.shape[0] * sum(w is not None for w in (weights, score_weights)),
            sparse=X._meta is not None and sp.issparse(X._meta),
            persist=resolve_persist(self.persist, _PERSIST_KEY),
            config_key=_PERSIST_KEY,
            workers=measure_workers(current_client()),
            subject="the cross-validation data",
            streaming="reading the blocks from their source at every pass",
            logger=logger,
        )
        blocks = zip(X.to_delayed().ravel(), y.to_delayed().ravel(), roles.to_delayed().ravel(), strict=True)
        # the binary kernel's per-row input, made once next to each block (see _signed_train_block)
        make_signs = dask.delayed(_signed_train_block, pure=True)
        signs = [make_signs(Xb, yb, rb) for Xb, yb, rb in blocks] if signed else []
        if plan.persist:
            # persist: the data, the fold roles and the signs stay next to each other for all the passes
            X, y, roles, weights, score_weights, signs = dask.persist(
                X, y, roles, weights, score_weights, signs
            )
        # the persisted collections hold the blocks' futures: kept until close()
        self._kept = (X, y, roles, weights, score_weights, signs)
        self._signs = list(signs)
        self._blocks = list(
            zip(X.to_delayed().ravel(), y.to_delayed().ravel(), roles.to_delayed().ravel(), strict=True)
        )
        self._weights, self._score_weights = (
            [None] * len(self._blocks) if w is None else list(w.to_delayed().ravel())
            for w in (weights, score_weights)
        )
        count = dask.delayed(_role_counts_block, pure=True)
        parts = [
            count(block, wb, sb)
            for (_, _, block), wb, sb in zip(self._blocks, self._weights, self._score_weights, strict=True)
        ]
        # compute: the train and test rows (or weights) of every fold in every block (2 x n_folds numbers each)
        block_counts = dask.compute(*parts)
        self._block_train = [counts[0] for counts in block_counts]
        counts = _sum_parts(list(block_counts))
        self.n_train, self.n_test = counts[0], counts[1]
        empty = [f for f in range(self.n_folds) if self.n_train[f] == 0 or self.n_test[f] == 0]
        if empty:
            msg = (
                f"Fold(s) {empty} have no train or no test rows (train rows {self.n_train.astype(int).tolist()}, "
                f"test rows {self.n_test.astype(int).tolist()}). Use fewer folds or more rows."
                if self.sample_weight is None and self.score_weight is None
                else f"The sample weights of the train or the test rows of fold(s) {empty} sum to zero (train "
                f"{self.n_train.tolist()}, test {self.n_test.tolist()}). Give those rows positive weights, or "
                "use fewer folds."
            )
            raise ValueError(msg)

    def close(self) -> None:
        """Drop the references to the (persisted) blocks."""
        self._blocks = []
        self._weights = []
        self._score_weights = []
        self._signs = []
        self._kept = ()

    def _sum_blocks(self, parts: list[Any], token: str, part_nbytes: int) -> Any:
        """Compute the blocks' results and sum them: gathered to the client when small, else a tree of sums."""
        if len(parts) * part_nbytes <= _GATHER_BYTES:
            return _sum_parts(list(dask.compute(*parts)))
        level = 0
        while len(parts) > 1:
            parts = [
                dask.delayed(_sum_parts)(
                    parts[i : i + _SPLIT_EVERY], dask_key_name=f"daskml-cv-path-sum-{token}-{level}-{i}"
                )
                for i in range(0, len(parts), _SPLIT_EVERY)
            ]
            level += 1
        (total,) = dask.compute(parts[0])
        return total

    def _block_tasks(
        self, kernel: Any, name: str, weights: list[Any], *args: Any, **options: Any
    ) -> list[Any]:
        """``kernel(X_block, y_block, roles_block, *args, fit_intercept=..., weights=..., **options)`` for every
        block (``weights``: one entry per block), lazy; the tasks are named ``daskml-cv-path-{name}-{block}``."""
        task = dask.delayed(kernel, pure=True)
        return [
            task(
                Xb,
                yb,
                rb,
                *args,
                fit_intercept=self.fit_intercept,
                weights=wb,
                **options,
                dask_key_name=f"daskml-cv-path-{name}-{i}",
            )
            for i, ((Xb, yb, rb), wb) in enumerate(zip(self._blocks, weights, strict=True))
        ]

    def loss_grad(self, params: dict[int, np.ndarray]) -> dict[int, tuple[float, np.ndarray]]:
        """The data term ``sum_i loss_i`` over each fold's train rows and its gradient, all in one pass.

        Parameters
        ----------
        params : dict of int to ndarray of shape (n_params, n_outputs)
            The current parameters of each problem (fold, unless ``problem_folds`` says otherwise) to evaluate.

        Returns
        -------
        dict of int to (float, ndarray of shape (n_params, n_outputs))
        """
        problems = sorted(params)
        folds = [self.problem_folds[p] for p in problems]
        W = np.hstack([np.asarray(params[p], dtype=np.float64).reshape(self.n_params, -1) for p in problems])
        token = tokenize(W, folds, self.X.name, self.n_passes)  # a new key even at a repeated point
        W_key = _shared(W, f"daskml-cv-path-params-{token}")
        if self._signs:
            signed_kernel = dask.delayed(_signed_logistic_block, pure=True)
            parts = [
                signed_kernel(
                    Xb,
                    signs,
                    W_key,
                    folds,
                    self._block_train[i][folds],
                    self.fit_intercept,
                    self._weights[i],
                    dask_key_name=f"daskml-cv-path-grad-{token}-{i}",
                )
                for i, ((Xb, _, _), signs) in enumerate(zip(self._blocks, self._signs, strict=True))
            ]
        else:
            parts = self._block_tasks(
                _folds_loss_grad_block,
                f"grad-{token}",
                self._weights,
                W_key,
                folds,
                loss=self.loss,
                n_outputs=self.n_outputs,
            )
        # compute: one pass for all the folds; a loss and an (n_params x n_outputs) gradient per fold
        total = self._sum_blocks(parts, token, W.nbytes + 8 * len(problems))
        self.n_passes += 1
        k = self.n_outputs
        return {
            p: (float(total["loss"][i]), total["grad"][:, i * k : (i + 1) * k].copy())
            for i, p in enumerate(problems)
        }

    def test_scores(self, paths: np.ndarray, metric: str) -> np.ndarray:
        """Mean test ``metric`` of every fold at every point of its path, in one pass.

        Parameters
        ----------
        paths : ndarray of shape (n_problems, n_points, n_params, n_outputs)
        metric : {"accuracy", "log_loss"}

        Returns
        -------
        ndarray of shape (n_problems, n_points)
            Accuracy, or the mean log-loss, on the test rows of each problem's fold.
        """
        return self._scores(paths, metric, FOLD_TEST) / self.n_test[self.problem_folds][:, None]

    def train_scores(self, paths: np.ndarray, metric: str) -> np.ndarray:
        """Mean ``metric`` on each fold's train rows at every point of its path, in one pass (no weights).

        As :meth:`test_scores`; a search's ``return_train_score``. Refused with sample weights: the train
        rows' weight in the objective (``n_train``) is not their weight in a score.
        """
        if self.sample_weight is not None or self.score_weight is not None:
            msg = "train_scores: not available with sample weights."
            raise ValueError(msg)
        return self._scores(paths, metric, FOLD_TRAIN) / self.n_train[self.problem_folds][:, None]

    def _scores(self, paths: np.ndarray, metric: str, role: int) -> np.ndarray:
        """Sums of ``metric`` over the rows of ``role`` of every (problem, path point), in one pass."""
        n_problems, n_points = paths.shape[:2]
        W = np.concatenate([paths[i, p] for i in range(n_problems) for p in range(n_points)], axis=1)
        token = tokenize(W, metric, role, self.X.name, self.n_passes)
        W_key = _shared(W, f"daskml-cv-path-coefs-{token}")
        parts = self._block_tasks(
            _folds_score_block,
            f"score-{token}",
            self._score_weights,  # all None for train scores (see train_scores)
            W_key,
            self.problem_folds,
            n_points=n_points,
            n_outputs=self.n_outputs,
            metric=metric,
            role=role,
        )
        # compute: one pass scoring every (fold, path point); n_folds x n_points sums come back
        sums = self._sum_blocks(parts, token, 8 * n_problems * n_points)
        self.n_passes += 1
        return sums
