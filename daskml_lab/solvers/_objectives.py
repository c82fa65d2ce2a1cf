"""Per-block loss and gradient kernels: the data term of every objective, fused into one pass over the block.

The data term of a linear model with parameters ``W`` of shape ``(n_params, n_outputs)`` (feature rows, then
one intercept row when ``fit_intercept``) is

    D(W) = sum_i sw_i * loss(t_i, x_i @ W[:d] + b)

and :func:`_loss_grad_block` returns ``D`` restricted to one row block together with its gradient. The kernels
never read the block twice: dense blocks are swept in row sub-blocks small enough to stay in the CPU cache
(about :data:`SUBBLOCK_BYTES` bytes), and for each sub-block ``z = Xs @ W``, the per-row loss,
``r = dloss/dz`` and ``g += r @ Xs`` are computed while ``Xs`` is still cached. Sparse (``scipy.sparse``
CSR) blocks are used as they are, never densified. float32 blocks stay float32 (the parameters are cast to
the block's dtype), while the losses are summed in float64 and gradients accumulated block by block in
float64.

The functions here are pure (no input is modified), take numpy/scipy objects and return numpy objects, so that
they can run inside tasks, actors or tests alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from daskml_lab.solvers._glm_losses import GLM_LOSSES, family_of, glm_loss_grad

__all__ = [
    "LOSSES",
    "SUBBLOCK_BYTES",
    "LossInfo",
    "PreparedBlock",
    "_aligned_block",
    "_loss_grad_block",
    "_loss_grad_prepared",
    "_prepare_block",
    "get_loss",
]

#: Bytes of a dense row sub-block swept at once by the fused kernels (about the size of a core's L2 cache).
SUBBLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class LossInfo:
    """What a loss needs and allows.

    Attributes
    ----------
    name : str
        Registry name.
    smooth : bool
        Whether the loss has a Lipschitz-continuous gradient (lbfgs, gd and the proximal method need it).
    target : {"binary", "codes", "real"}
        The encoding of ``y``: 0/1 labels, class codes ``0 .. n_outputs - 1``, or real values.
    multi_output : bool
        Whether ``n_outputs`` is the number of classes (otherwise it must be 1).
    """

    name: str
    smooth: bool
    target: str
    multi_output: bool = False


LOSSES: dict[str, LossInfo] = {
    "squared": LossInfo("squared", smooth=True, target="real"),
    "logistic": LossInfo("logistic", smooth=True, target="binary"),
    "multinomial": LossInfo("multinomial", smooth=True, target="codes", multi_output=True),
    "squared_hinge": LossInfo("squared_hinge", smooth=True, target="binary"),
    "hinge": LossInfo("hinge", smooth=False, target="binary"),
    "huber": LossInfo("huber", smooth=True, target="real"),
    # Tweedie GLMs (loss_options {"power", "link"} for "tweedie"): scikit-learn's half deviances
    "poisson": LossInfo("poisson", smooth=True, target="real"),
    "gamma": LossInfo("gamma", smooth=True, target="real"),
    "tweedie": LossInfo("tweedie", smooth=True, target="real"),
}


def get_loss(loss: str) -> LossInfo:
    """Return the description of a loss, with a clear error for unknown names.

    Parameters
    ----------
    loss : str
        One of :data:`LOSSES`.

    Returns
    -------
    LossInfo

    Raises
    ------
    ValueError
        If ``loss`` is not a known loss.
    """
    try:
        return LOSSES[loss]
    except (KeyError, TypeError):
        msg = f"loss must be one of {sorted(LOSSES)}, got {loss!r}."
        raise ValueError(msg) from None


class PreparedBlock(NamedTuple):
    """A row block in the form the kernels use, derived once and reused at every evaluation.

    Attributes
    ----------
    X : ndarray or scipy.sparse.csr_matrix of shape (n_rows, n_features)
        The block itself (float32 or float64, not copied).
    target : ndarray of shape (n_rows,)
        ``2 y - 1`` in X's dtype for binary losses, ``intp`` codes for multinomial, ``y`` in X's dtype
        otherwise.
    weight : ndarray of shape (n_rows,) or None
        Sample weights in X's dtype; ``None`` means all ones.
    sum_weight : float
        Sum of the weights (the number of rows when unweighted).
    """

    X: Any
    target: np.ndarray
    weight: np.ndarray | None
    sum_weight: float


def _prepare_block(
    X: Any,
    y: Any,
    sample_weight: Any,
    *,
    loss: str,
    n_outputs: int = 1,
    block_index: int | None = None,
    loss_options: dict | None = None,
) -> PreparedBlock:
    """Check one row block and derive the encoded target the kernels use.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_rows, n_features)
        Dense or sparse block; other sparse formats are converted to CSR.
    y : ndarray of shape (n_rows,)
        Target as encoded by the estimator (0/1, class codes or real values).
    sample_weight : ndarray of shape (n_rows,) or None
        Non-negative weights.
    loss : str
        Loss name, one of :data:`LOSSES`.
    n_outputs : int, default=1
        Number of classes for ``"multinomial"``.
    block_index : int or None, default=None
        Index of the block, for error messages.
    loss_options : dict or None, default=None
        Loss parameters (the Tweedie power decides which targets are valid).

    Returns
    -------
    PreparedBlock

    Raises
    ------
    ValueError
        If the labels do not match the loss (e.g. a label 2 for the binary logistic loss, a negative count
        for the Poisson loss) or lengths differ.
    """
    info = get_loss(loss)
    X = _aligned_block(X)
    dtype = X.dtype
    if dtype not in (np.float32, np.float64):
        msg = f"X blocks must be float32 or float64, got {dtype}. Validate X with daskml_lab.data.check_X_y."
        raise TypeError(msg)
    y = np.asarray(y).ravel()
    where = "" if block_index is None else f" (row block {block_index})"
    if y.shape[0] != X.shape[0]:
        msg = f"y has {y.shape[0]} rows but X has {X.shape[0]}{where}; X and y must share their row chunks."
        raise ValueError(msg)
    if info.target == "binary":
        if y.size and not np.all((y == 0) | (y == 1)):
            bad = np.unique(y[(y != 0) & (y != 1)])[:5].tolist()
            msg = (
                f"The {loss!r} loss needs y encoded as 0/1, found labels {bad}{where}. Encode the two "
                "classes as 0 and 1 (the estimator does this with its classes_)."
            )
            raise ValueError(msg)
        target = (2 * y - 1).astype(dtype)
    elif info.target == "codes":
        codes = y.astype(np.intp)
        if y.size and (np.any(codes != y) or codes.min() < 0 or codes.max() >= n_outputs):
            bad = np.unique(y[(codes != y) | (codes < 0) | (codes >= n_outputs)])[:5].tolist()
            msg = (
                f"The 'multinomial' loss needs y as class codes 0 .. {n_outputs - 1} "
                f"(n_outputs={n_outputs}), found {bad}{where}. Encode the classes as 0 .. n_classes - 1 and "
                "pass n_outputs=n_classes."
            )
            raise ValueError(msg)
        target = codes
    else:
        target = np.require(y, dtype=dtype, requirements=["A", "C"])
        if loss in GLM_LOSSES:
            family_of(loss, loss_options).check_target(target, where)
    weight = None
    sum_weight = float(X.shape[0])
    if sample_weight is not None:
        weight = np.require(np.asarray(sample_weight).ravel(), dtype=dtype, requirements=["A", "C"])
        if weight.shape[0] != X.shape[0]:
            msg = (
                f"sample_weight has {weight.shape[0]} rows but X has {X.shape[0]}{where}; they must share "
                "their row chunks."
            )
            raise ValueError(msg)
        sum_weight = float(np.sum(weight, dtype=np.float64))
    return PreparedBlock(X, target, weight, sum_weight)


def _aligned_block(X: Any) -> Any:
    """The block as a C-contiguous, memory-aligned numpy array or CSR matrix (copied only when it is not).

    Arrays rebuilt from network buffers (a block sent from the client or moved between workers) can start at
    an address that is not a multiple of the item size; BLAS and numpy's vectorised loops then fall back to
    code paths up to ten times slower, so such blocks are copied once.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.ones((3, 2))
    >>> _aligned_block(X) is X
    True
    """
    if sp.issparse(X):
        X = X.tocsr() if X.format != "csr" else X
        parts = (X.data, X.indices, X.indptr)
        if all(part.flags.aligned and part.flags.c_contiguous for part in parts):
            return X
        data, indices, indptr = (np.require(part, requirements=["A", "C"]) for part in parts)
        return sp.csr_matrix((data, indices, indptr), shape=X.shape)
    X = np.asarray(X)
    if X.flags.aligned and (X.flags.c_contiguous or X.flags.f_contiguous):
        return X
    return np.require(X, requirements=["A", "C"])


# ---------------------------------------------------------------------------------------------------------
# pointwise losses: given scores z (owned scratch, may be overwritten), return (weighted loss sum, dloss/dz *
# sw)


def _sum64(values: np.ndarray, weight: np.ndarray | None) -> float:
    if weight is None:
        return float(np.sum(values, dtype=np.float64))
    return float(np.dot(weight.astype(np.float64, copy=False), values.astype(np.float64, copy=False)))


def _pointwise_logistic(z: np.ndarray, sign: np.ndarray, weight: np.ndarray | None, options: dict) -> tuple:
    # margin m = s z; loss = log(1 + exp(-m)) = log1p(exp(-|m|)) + max(-m, 0): stable, one exp and one log1p.
    # dloss/dz = -s sigmoid(-m) = s (tanh(m / 2) - 1) / 2: one tanh and no branch; its absolute error (~1e-16
    # where sigmoid(-m) is tiny) is far below what the gradient sums can resolve.
    margin = np.multiply(z, sign, out=z)
    per_row = np.abs(margin)
    np.negative(per_row, out=per_row)
    np.exp(per_row, out=per_row)
    np.log1p(per_row, out=per_row)
    per_row -= np.minimum(margin, 0)
    total = _sum64(per_row, weight)
    dz = np.multiply(margin, 0.5, out=margin)
    np.tanh(dz, out=dz)
    dz -= 1
    dz *= sign
    dz *= 0.5
    if weight is not None:
        dz *= weight
    return total, dz


def _pointwise_squared(z: np.ndarray, y: np.ndarray, weight: np.ndarray | None, options: dict) -> tuple:
    residual = np.subtract(z, y, out=z)
    if weight is None:
        total = 0.5 * float(np.dot(residual, residual))
        return total, residual
    dz = residual * weight
    total = 0.5 * float(np.dot(dz.astype(np.float64, copy=False), residual.astype(np.float64, copy=False)))
    return total, dz


def _pointwise_huber(z: np.ndarray, y: np.ndarray, weight: np.ndarray | None, options: dict) -> tuple:
    epsilon = float(options.get("epsilon", 1.35))
    residual = np.subtract(z, y, out=z)
    magnitude = np.abs(residual)
    per_row = np.where(
        magnitude <= epsilon, 0.5 * residual * residual, epsilon * magnitude - 0.5 * epsilon**2
    )
    total = _sum64(per_row, weight)
    dz = np.clip(residual, -epsilon, epsilon, out=residual)
    if weight is not None:
        dz *= weight
    return total, dz


def _pointwise_squared_hinge(
    z: np.ndarray, sign: np.ndarray, weight: np.ndarray | None, options: dict
) -> tuple:
    slack = np.multiply(z, sign, out=z)
    np.subtract(1, slack, out=slack)
    np.maximum(slack, 0, out=slack)
    total = _sum64(slack * slack, weight)
    dz = np.multiply(slack, sign, out=slack)
    dz *= -2
    if weight is not None:
        dz *= weight
    return total, dz


def _pointwise_hinge(z: np.ndarray, sign: np.ndarray, weight: np.ndarray | None, options: dict) -> tuple:
    slack = np.multiply(z, sign, out=z)
    np.subtract(1, slack, out=slack)
    active = slack > 0
    np.maximum(slack, 0, out=slack)
    total = _sum64(slack, weight)
    # a subgradient: -s where the margin is violated, 0 elsewhere
    dz = np.negative(sign) * active
    if weight is not None:
        dz *= weight
    return total, dz


def _pointwise_multinomial(
    z: np.ndarray, codes: np.ndarray, weight: np.ndarray | None, options: dict
) -> tuple:
    # z: (m, K). loss = logsumexp(z) - z_y ; dloss/dz = softmax(z) - onehot(y)
    rows = np.arange(z.shape[0])
    z -= z.max(axis=1, keepdims=True)
    picked = z[rows, codes]
    np.exp(z, out=z)
    norm = z.sum(axis=1)
    per_row = np.log(norm)
    per_row -= picked
    total = _sum64(per_row, weight)
    z /= norm[:, None]
    z[rows, codes] -= 1
    if weight is not None:
        z *= weight[:, None]
    return total, z


def _pointwise_glm(
    z: np.ndarray, y: np.ndarray, weight: np.ndarray | None, loss: str, options: dict
) -> tuple:
    per_row, dz = glm_loss_grad(z, y, family_of(loss, options or None))
    total = _sum64(per_row, weight)
    if weight is not None:
        dz *= weight
    return total, dz


def _pointwise_poisson(z: np.ndarray, y: np.ndarray, weight: np.ndarray | None, options: dict) -> tuple:
    return _pointwise_glm(z, y, weight, "poisson", options)


def _pointwise_gamma(z: np.ndarray, y: np.ndarray, weight: np.ndarray | None, options: dict) -> tuple:
    return _pointwise_glm(z, y, weight, "gamma", options)


def _pointwise_tweedie(z: np.ndarray, y: np.ndarray, weight: np.ndarray | None, options: dict) -> tuple:
    return _pointwise_glm(z, y, weight, "tweedie", options)


_POINTWISE = {
    "logistic": _pointwise_logistic,
    "squared": _pointwise_squared,
    "huber": _pointwise_huber,
    "squared_hinge": _pointwise_squared_hinge,
    "hinge": _pointwise_hinge,
    "multinomial": _pointwise_multinomial,
    "poisson": _pointwise_poisson,
    "gamma": _pointwise_gamma,
    "tweedie": _pointwise_tweedie,
}


# ---------------------------------------------------------------------------------------------------------
# fused kernels


def _split_params(W: np.ndarray, n_features: int, fit_intercept: bool, dtype: np.dtype) -> tuple:
    """Coefficients (1-D when there is one output) in the block dtype and the intercept (or None)."""
    W = np.asarray(W)
    if W.ndim == 1:
        W = W[:, None]
    expected = n_features + int(fit_intercept)
    if W.shape[0] != expected:
        msg = (
            f"W must have {expected} rows (n_features={n_features}"
            f"{' + 1 intercept' if fit_intercept else ''}), got shape {W.shape}."
        )
        raise ValueError(msg)
    coef = np.ascontiguousarray(W[:n_features], dtype=dtype)
    intercept = W[n_features].astype(dtype) if fit_intercept else None
    if coef.shape[1] == 1:
        coef = coef[:, 0]
        intercept = None if intercept is None else intercept[0]
    return coef, intercept


def _loss_grad_prepared(
    block: PreparedBlock,
    W: np.ndarray,
    *,
    loss: str,
    fit_intercept: bool,
    loss_options: dict | None = None,
    out: np.ndarray | None = None,
    subblock_bytes: int = SUBBLOCK_BYTES,
) -> tuple[float, np.ndarray]:
    """Data term and its gradient on one prepared block, adding the gradient into ``out``.

    Parameters
    ----------
    block : PreparedBlock
        From :func:`_prepare_block`.
    W : ndarray of shape (n_params, n_outputs)
        Parameters; the intercept row last when ``fit_intercept``.
    loss : str
        Loss name.
    fit_intercept : bool
        Whether the last row of ``W`` is the intercept.
    loss_options : dict or None, default=None
        Loss parameters (``{"epsilon": 1.35}`` for ``"huber"``).
    out : ndarray of float64 of shape (n_params, n_outputs) or None, default=None
        Gradient accumulator; a new zero array when None.
    subblock_bytes : int, default=SUBBLOCK_BYTES
        Size of the dense row sub-blocks swept at once.

    Returns
    -------
    loss : float
        ``sum_i sw_i loss_i`` over the block (float64).
    grad : ndarray of float64 of shape (n_params, n_outputs)
        ``out`` with this block's gradient added.
    """
    pointwise = _POINTWISE[loss]
    options = loss_options or {}
    X, target, weight, _ = block
    n_rows, n_features = X.shape
    W = np.asarray(W)
    n_outputs = 1 if W.ndim == 1 else W.shape[1]
    if out is None:
        out = np.zeros((n_features + int(fit_intercept), n_outputs))
    coef, intercept = _split_params(W, n_features, fit_intercept, X.dtype)
    if n_rows == 0:
        return 0.0, out
    total = 0.0
    if sp.issparse(X):
        z = np.asarray(X @ coef)
        if intercept is not None:
            z += intercept
        total, dz = pointwise(z, target, weight, options)
        grad_coef = np.asarray(X.T @ dz).reshape(n_features, n_outputs)
        out[:n_features] += grad_coef
        if fit_intercept:
            out[n_features] += dz.sum(axis=0, dtype=np.float64)
        return total, out
    rows = max(16, int(subblock_bytes // max(1, n_features * X.dtype.itemsize)))
    grad_coef = np.zeros(coef.shape, dtype=X.dtype)
    grad_intercept = np.zeros(n_outputs, dtype=np.float64)
    for start in range(0, n_rows, rows):
        stop = min(start + rows, n_rows)
        part = X[start:stop]
        z = part @ coef
        if intercept is not None:
            z += intercept
        part_total, dz = pointwise(
            z, target[start:stop], None if weight is None else weight[start:stop], options
        )
        total += part_total
        # dz @ part == part.T @ dz, with the layout numpy's gemv/gemm handles best for C-ordered blocks
        if dz.ndim == 1:
            grad_coef += dz @ part
        else:
            grad_coef += part.T @ dz
        if fit_intercept:
            grad_intercept += dz.sum(axis=0, dtype=np.float64)
    out[:n_features] += grad_coef.reshape(n_features, n_outputs)
    if fit_intercept:
        out[n_features] += grad_intercept
    return total, out


def _loss_grad_block(
    X: Any,
    y: Any,
    sample_weight: Any,
    W: np.ndarray,
    *,
    loss: str,
    fit_intercept: bool,
    loss_options: dict | None = None,
) -> tuple[float, np.ndarray]:
    """Fused data term ``sum_i sw_i loss(y_i, x_i @ W)`` and its gradient over one row block.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_rows, n_features)
        Row block, float32 or float64 (float32 stays float32 inside the kernel).
    y : ndarray of shape (n_rows,)
        Target encoded for the loss (see :data:`LOSSES`).
    sample_weight : ndarray of shape (n_rows,) or None
        Weights.
    W : ndarray of shape (n_params, n_outputs)
        Parameters; intercept in the last row when ``fit_intercept``.
    loss : str
        Loss name.
    fit_intercept : bool
        Whether the last row of ``W`` is the intercept.
    loss_options : dict or None, default=None
        Loss parameters.

    Returns
    -------
    loss : float
        Weighted sum of the per-row losses (float64).
    grad : ndarray of float64 of shape (n_params, n_outputs)
        Its gradient with respect to ``W``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> loss, grad = _loss_grad_block(X, np.array([1.0, 2.0]), None, np.zeros((3, 1)),
    ...                               loss="squared", fit_intercept=True)
    >>> loss, grad.ravel().tolist()
    (2.5, [-7.0, -10.0, -3.0])
    """
    W = np.asarray(W)
    n_outputs = 1 if W.ndim == 1 else W.shape[1]
    block = _prepare_block(X, y, sample_weight, loss=loss, n_outputs=n_outputs, loss_options=loss_options)
    total, grad = _loss_grad_prepared(
        block, W, loss=loss, fit_intercept=fit_intercept, loss_options=loss_options
    )
    return total, grad
