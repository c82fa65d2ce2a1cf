"""Second-order kernels of the blocked objective: Hessian-vector products and Hessian matrices, per block.

For a linear model the Hessian of the data term ``D(W) = sum_i sw_i loss(t_i, z_i)``, ``z_i = x_i @ W + b``,
is ``A^T C A`` with ``A = [X, 1]`` (the ones column when there is an intercept) and ``C`` the per-row
*curvature*: ``diag(sw_i d2loss/dz2)`` for one output, and for the multinomial loss the per-row softmax
Jacobian ``sw_i (diag(p_i) - p_i p_i^T)``. So

- a Hessian-vector product ``H v = A^T (C (A v))`` costs one pass over a block and returns a d-vector
  (Newton-CG: one pass per conjugate-gradient step);
- its diagonal costs one pass and returns a d-vector (Newton-CG's preconditioner), and keeps the curvature;
- the Hessian matrix ``A^T C A`` costs one pass and returns a ``(n_params * n_outputs)^2`` matrix
  (Newton-Cholesky, for narrow data).

The curvature depends on the current parameters only; it is computed in the first product at new parameters
and kept on the worker (``LocalBlocks.state``) for the following conjugate-gradient steps, keyed by a hash of
the parameters. Where the state does not survive between calls (the ``"stream"`` and ``"tasks"`` engines) it
is computed again, in the same sweep over the block as the product.

Losses with a kink have a *generalised* Hessian here: 0 or 1 for the Huber loss, 0 or 2 for the squared hinge
(as LIBLINEAR's Newton method for the L2-loss SVM). The Tweedie curvature is clipped at 0 where the loss is not
convex (see :func:`~daskml_lab.solvers._glm_losses.glm_curvature`). Dense blocks are swept in row
sub-blocks of about :data:`~daskml_lab.solvers._objectives.SUBBLOCK_BYTES` bytes, so that a block is read
from memory once per product.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from daskml_lab.solvers._engine import EngineSpec, LocalBlocks
from daskml_lab.solvers._glm_losses import GLM_LOSSES, family_of, glm_curvature
from daskml_lab.solvers._objectives import SUBBLOCK_BYTES, PreparedBlock, _split_params

__all__ = [
    "HessianDiagonal",
    "HessianMatrix",
    "HessianProduct",
    "_hessian_block",
    "_hessian_product_block",
    "curvature_rows",
    "params_token",
]


class HessianProduct(NamedTuple):
    """One worker's share of a Hessian-vector product of the data term.

    Attributes
    ----------
    product : ndarray of float64 of shape (n_params, n_outputs)
    recomputed : bool
        Whether the curvature had to be computed in this call (not found in the worker's state).
    """

    product: np.ndarray
    recomputed: bool


class HessianDiagonal(NamedTuple):
    """One worker's share of the diagonal of the Hessian of the data term.

    Attributes
    ----------
    diagonal : ndarray of float64 of shape (n_params, n_outputs)
    """

    diagonal: np.ndarray


class HessianMatrix(NamedTuple):
    """One worker's share of the Hessian of the data term.

    Attributes
    ----------
    hessian : ndarray of float64 of shape (n_params * n_outputs, n_params * n_outputs)
        In the order of ``W.ravel()`` for ``W`` of shape ``(n_params, n_outputs)``.
    """

    hessian: np.ndarray


def params_token(W: np.ndarray) -> str:
    """A short hash of the parameters, naming the curvature computed at them."""
    return hashlib.sha1(np.ascontiguousarray(W, dtype=np.float64).tobytes()).hexdigest()[:16]


def curvature_rows(z: np.ndarray, target: np.ndarray, spec: EngineSpec) -> np.ndarray:
    """Unweighted per-row second derivative of the loss in the score ``z`` (softmax probabilities, multinomial).

    Parameters
    ----------
    z : ndarray of shape (n_rows,) or (n_rows, n_outputs)
        Linear scores (owned scratch: may be overwritten).
    target : ndarray of shape (n_rows,)
        The encoded target of :class:`~daskml_lab.solvers._objectives.PreparedBlock`.
    spec : EngineSpec
        The loss and its options.

    Returns
    -------
    ndarray of shape (n_rows,), or (n_rows, n_outputs) for ``"multinomial"``

    Raises
    ------
    ValueError
        For a loss without a second derivative (the hinge loss).

    Examples
    --------
    >>> import numpy as np
    >>> spec = EngineSpec("logistic", 1, True)
    >>> curvature_rows(np.zeros(2), np.array([1.0, -1.0]), spec).tolist()
    [0.25, 0.25]
    """
    loss = spec.loss
    if loss == "logistic":
        # sigmoid(z) sigmoid(-z) = (1 - tanh(z / 2)^2) / 4, without overflow
        t = np.tanh(np.multiply(z, 0.5, out=z), out=z)
        return np.multiply(np.subtract(1, t * t, out=t), 0.25, out=t)
    if loss == "squared":
        return np.ones_like(z)
    if loss == "huber":
        epsilon = float((spec.loss_options or {}).get("epsilon", 1.35))
        return (np.abs(z - target) <= epsilon).astype(z.dtype)
    if loss == "squared_hinge":
        return 2 * (z * target < 1).astype(z.dtype)
    if loss == "multinomial":
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z
    if loss in GLM_LOSSES:
        return glm_curvature(z, target, family_of(loss, spec.loss_options))
    msg = (
        f"The {loss!r} loss has no second derivative, so Newton solvers cannot minimise it; use "
        "solver='lbfgs', 'admm' or 'sgd'."
    )
    raise ValueError(msg)


def _scores(X: Any, coef: np.ndarray, intercept: Any) -> np.ndarray:
    z = np.asarray(X @ coef)
    if intercept is not None:
        z = z + intercept
    return z


def _rows(n_rows: int, n_features: int, itemsize: int) -> int:
    return max(16, int(SUBBLOCK_BYTES // max(1, n_features * itemsize)))


def _weighted(h: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    if weight is None:
        return h
    return h * (weight[:, None] if h.ndim == 2 else weight)


def _apply_curvature(c: np.ndarray, u: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    """``C u`` per row: ``c u`` (one output, ``c`` already weighted) or the weighted softmax Jacobian."""
    if c.ndim == 1:
        return c * u
    t = c * u
    t -= c * t.sum(axis=1, keepdims=True)
    if weight is not None:
        t *= weight[:, None]
    return t


def _hessian_product_block(
    block: PreparedBlock,
    V: np.ndarray,
    spec: EngineSpec,
    *,
    W: np.ndarray | None = None,
    curvature: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Hessian of the data term on one block times ``V``, and the curvature used.

    Parameters
    ----------
    block : PreparedBlock
    V : ndarray of shape (n_params, n_outputs)
        Direction.
    spec : EngineSpec
    W : ndarray of shape (n_params, n_outputs) or None, default=None
        Parameters at which the Hessian is taken; needed when ``curvature`` is None.
    curvature : ndarray or None, default=None
        The block's curvature at ``W`` from an earlier call (weighted for one output; softmax
        probabilities for the multinomial loss).

    Returns
    -------
    product : ndarray of float64 of shape (n_params, n_outputs)
    curvature : ndarray
        To pass back in the next call at the same ``W``.

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.solvers._objectives import _prepare_block
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> block = _prepare_block(X, np.array([0.5, 1.0]), None, loss="squared")
    >>> product, _ = _hessian_product_block(block, np.ones((3, 1)), EngineSpec("squared", 1, True),
    ...                                     W=np.zeros((3, 1)))
    >>> product.ravel().tolist()     # [X, 1]^T [X, 1] @ [1, 1, 1]
    [2.0, 6.0, 5.0]
    """
    X, target, weight, _ = block
    n_rows, n_features = X.shape
    V = np.asarray(V).reshape(n_features + int(spec.fit_intercept), -1)
    n_outputs = V.shape[1]
    v_coef, v_intercept = _split_params(V, n_features, spec.fit_intercept, X.dtype)
    if curvature is None:
        coef, intercept = _split_params(W, n_features, spec.fit_intercept, X.dtype)
    out = np.zeros((n_features + int(spec.fit_intercept), n_outputs))
    if n_rows == 0:
        return out, np.zeros((0,) if n_outputs == 1 else (0, n_outputs), dtype=X.dtype)
    if sp.issparse(X):
        step = n_rows
    else:
        step = _rows(n_rows, n_features, X.dtype.itemsize)
    parts = []
    grad_coef = np.zeros(v_coef.shape, dtype=X.dtype)
    grad_intercept = np.zeros(n_outputs)
    for start in range(0, n_rows, step):
        rows = slice(start, min(start + step, n_rows))
        part = X[rows]
        w = None if weight is None else weight[rows]
        if curvature is None:
            c = curvature_rows(_scores(part, coef, intercept), target[rows], spec)
            if c.ndim == 1:
                c = _weighted(c, w)
            parts.append(c)
        else:
            c = curvature[rows]
        t = _apply_curvature(c, _scores(part, v_coef, v_intercept), w)
        if sp.issparse(part):
            grad_coef += np.asarray(part.T @ t).reshape(grad_coef.shape)
        elif t.ndim == 1:
            grad_coef += t @ part
        else:
            grad_coef += part.T @ t
        if spec.fit_intercept:
            grad_intercept += np.atleast_1d(t.sum(axis=0, dtype=np.float64))
    out[:n_features] += grad_coef.reshape(n_features, n_outputs)
    if spec.fit_intercept:
        out[n_features] += grad_intercept
    if curvature is None:
        curvature = np.concatenate(parts)
    return out, curvature


def _hessian_diagonal_block(
    block: PreparedBlock, W: np.ndarray, spec: EngineSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal of the data term's Hessian on one block (float64, shaped like ``W``), and the curvature.

    The diagonal ``sum_i c_i A_ij^2`` (``c_i = sw_i p_ik (1 - p_ik)`` for the multinomial loss) is the Jacobi
    preconditioner of Newton-CG; the curvature is returned for the products that follow at the same ``W``.

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.solvers._objectives import _prepare_block
    >>> block = _prepare_block(np.array([[1.0], [2.0]]), np.zeros(2), None, loss="squared")
    >>> _hessian_diagonal_block(block, np.zeros((2, 1)), EngineSpec("squared", 1, True))[0].tolist()
    [[5.0], [2.0]]
    """
    X, target, weight, _ = block
    n_rows, n_features = X.shape
    W = np.asarray(W).reshape(n_features + int(spec.fit_intercept), -1)
    n_outputs = W.shape[1]
    coef, intercept = _split_params(W, n_features, spec.fit_intercept, X.dtype)
    out = np.zeros(W.shape)
    if n_rows == 0:
        return out, np.zeros((0,) if n_outputs == 1 else (0, n_outputs), dtype=X.dtype)
    step = n_rows if sp.issparse(X) else _rows(n_rows, n_features, X.dtype.itemsize)
    parts = []
    for start in range(0, n_rows, step):
        rows = slice(start, min(start + step, n_rows))
        part = X[rows]
        w = None if weight is None else weight[rows]
        c = curvature_rows(_scores(part, coef, intercept), target[rows], spec)
        if c.ndim == 1:
            c = _weighted(c, w)
            parts.append(c)
            diagonal_weight = c[:, None]
        else:
            parts.append(c)
            diagonal_weight = _weighted(c * (1 - c), w)
        squares = part.multiply(part) if sp.issparse(part) else part * part
        out[:n_features] += np.asarray(squares.T @ diagonal_weight).reshape(n_features, n_outputs)
        if spec.fit_intercept:
            out[n_features] += diagonal_weight.sum(axis=0, dtype=np.float64)
    return out, np.concatenate(parts)


def _gram(part: Any, c: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``[X, 1]^T diag(c) [X, 1]`` of a row sub-block, float64."""
    n_features = part.shape[1]
    size = n_features + int(fit_intercept)
    G = np.empty((size, size))
    if sp.issparse(part):
        G[:n_features, :n_features] = (part.T @ sp.diags(c) @ part).toarray()
        weighted_sum = np.asarray(part.T @ c).ravel()
    else:
        scaled = part * c[:, None]
        G[:n_features, :n_features] = part.T @ scaled
        weighted_sum = scaled.sum(axis=0, dtype=np.float64)
    if fit_intercept:
        G[n_features, :n_features] = weighted_sum
        G[:n_features, n_features] = weighted_sum
        G[n_features, n_features] = float(np.sum(c, dtype=np.float64))
    return G


def _hessian_block(block: PreparedBlock, W: np.ndarray, spec: EngineSpec) -> np.ndarray:
    """Hessian of the data term on one block, ``(n_params * n_outputs)`` square, float64.

    For the multinomial loss its entry ``(a * K + k, b * K + l)`` is
    ``sum_i sw_i A_ia A_ib p_ik (delta_kl - p_il)``, in the order of ``W.ravel()``.

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.solvers._objectives import _prepare_block
    >>> block = _prepare_block(np.array([[1.0], [2.0]]), np.zeros(2), None, loss="squared")
    >>> _hessian_block(block, np.zeros((2, 1)), EngineSpec("squared", 1, True)).tolist()
    [[5.0, 3.0], [3.0, 2.0]]
    """
    X, target, weight, _ = block
    n_rows, n_features = X.shape
    W = np.asarray(W).reshape(n_features + int(spec.fit_intercept), -1)
    n_params, n_outputs = W.shape
    coef, intercept = _split_params(W, n_features, spec.fit_intercept, X.dtype)
    H = np.zeros((n_params, n_outputs, n_params, n_outputs))
    step = n_rows if sp.issparse(X) else _rows(n_rows, n_features, X.dtype.itemsize)
    for start in range(0, n_rows, step):
        rows = slice(start, min(start + step, n_rows))
        part = X[rows]
        w = None if weight is None else weight[rows]
        c = curvature_rows(_scores(part, coef, intercept), target[rows], spec)
        if c.ndim == 1:
            H[:, 0, :, 0] += _gram(part, _weighted(c, w), spec.fit_intercept)
            continue
        for k in range(n_outputs):
            for m in range(k, n_outputs):
                jac = c[:, k] * ((k == m) - c[:, m])
                G = _gram(part, _weighted(jac, w), spec.fit_intercept)
                H[:, k, :, m] += G
                if m != k:
                    H[:, m, :, k] += G
    return H.reshape(n_params * n_outputs, n_params * n_outputs)


# ---------------------------------------------------------------------------------------------------------
# per-worker functions for BlockedProblem.map_workers


def _hessian_product_local(local: LocalBlocks, W: np.ndarray, token: str, V: np.ndarray) -> HessianProduct:
    """The Hessian-vector product over a worker's blocks, reusing the curvature kept at ``token``."""
    cached = local.state.get("curvature")
    curvatures = cached[1] if cached is not None and cached[0] == token else [None] * len(local.blocks)
    recomputed = any(c is None for c in curvatures)
    total = np.zeros(np.shape(V))
    kept = []
    for block, curvature in zip(local.blocks, curvatures, strict=True):
        product, curvature = _hessian_product_block(block, V, local.spec, W=W, curvature=curvature)
        total += product.reshape(total.shape)
        kept.append(curvature)
    local.state["curvature"] = (token, kept)
    return HessianProduct(total, recomputed)


def _hessian_diagonal_local(local: LocalBlocks, W: np.ndarray, token: str) -> HessianDiagonal:
    """The Hessian's diagonal over a worker's blocks; keeps the curvature at ``token`` for the products."""
    total = np.zeros(np.shape(W))
    kept = []
    for block in local.blocks:
        diagonal, curvature = _hessian_diagonal_block(block, W, local.spec)
        total += diagonal
        kept.append(curvature)
    local.state["curvature"] = (token, kept)
    return HessianDiagonal(total)


def _hessian_local(local: LocalBlocks, W: np.ndarray) -> HessianMatrix:
    """The Hessian over a worker's blocks."""
    size = int(np.size(W))
    total = np.zeros((size, size))
    for block in local.blocks:
        total += _hessian_block(block, W, local.spec)
    return HessianMatrix(total)
