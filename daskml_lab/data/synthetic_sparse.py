"""Wide sparse classification data like click logs and text, generated lazily block by block.

:func:`make_sparse_classification` draws, for every row, ``nnz_per_row`` feature indices whose frequencies
follow a Zipf law (a few features in most rows, a long tail of rare ones, as hashed categorical and text
features are), and a label from a known linear model of those features (logistic for two classes, softmax
for more). Every random number is a function of the seed and of a global position (row and slot, or feature
and class), drawn from counter-based streams (:func:`daskml_lab.data._blocks.counter_uniform`): a block is
generated from its row range alone, so the data are the same for any chunking and any number of workers, and
the model (one coefficient per feature and class) is never materialised unless it is asked for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from dask.base import tokenize

from daskml_lab.data import _blocks
from daskml_lab.data.synthetic import _check_dtype, _check_int, _check_real, _row_chunks

__all__ = ["feature_of_rank", "make_sparse_classification", "zipf_rank_probabilities"]

logger = logging.getLogger(__name__)

# Sub-streams of STREAM_SPARSE_CLASSIFICATION.
_FEATURES = 0  # the uniforms of the feature draws and the label of each row
_ORDER = 1  # the permutation from Zipf rank to feature index
_COEF = 2  # the coefficients


@dataclass(frozen=True)
class _SparseModel:
    """Everything a block needs (a few numbers: the model itself is a function of the seed)."""

    n_features: int
    nnz_per_row: int
    n_classes: int
    zipf_exponent: float
    coef_scale: float
    entropy: int


def make_sparse_classification(
    n_samples: int = 1000,
    n_features: int = 2**20,
    *,
    nnz_per_row: int = 20,
    n_classes: int = 2,
    zipf_exponent: float = 1.1,
    coef_scale: float = 1.0,
    chunks: Any = None,
    random_state: Any = None,
    dtype: Any = np.float64,
    return_coef: bool = False,
) -> tuple[Any, ...]:
    """Generate a wide sparse classification problem with Zipf-distributed features, as lazy CSR row blocks.

    Each row draws ``nnz_per_row`` feature indices independently: the ``r``-th most frequent feature
    (``r = 1, 2, ...``) is drawn with probability close to ``r ** -zipf_exponent / H`` (a power law truncated to
    ``n_features``), and the ranks are spread over the feature indices by a seeded random permutation. A
    feature drawn twice in a row is stored once; every stored value is 1. The label then follows a linear
    model with Gaussian coefficients ``coef`` (standard deviation ``coef_scale``) and no intercept:
    ``P(y=1 | x) = 1 / (1 + exp(-x @ coef))`` for two classes, ``P(y=k | x)`` proportional to
    ``exp(x @ coef[k])`` for more.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of rows.
    n_features : int, default=2**20
        Number of columns, at most ``2**31 - 1``.
    nnz_per_row : int, default=20
        Features drawn per row (fewer are stored when a row draws one feature twice, which happens mostly for
        the most frequent features).
    n_classes : int, default=2
        Number of classes, at least 2.
    zipf_exponent : float, default=1.1
        Exponent ``a > 0`` of the power law of the feature frequencies: larger values concentrate the draws on
        fewer features. Word frequencies have ``a`` close to 1.
    coef_scale : float, default=1.0
        Standard deviation of the coefficients: larger values make the labels less noisy.
    chunks : int or tuple of int, default=None
        Rows per block (an int), or the size of every block (a tuple summing to ``n_samples``). ``None``
        gives blocks of 100,000 rows.
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None, default=None
        Root seed of the features, the labels and the model.
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        Data type of the values of ``X``.
    return_coef : bool, default=False
        Also return the coefficients of the generating model (an ``n_features x n_classes``-sized array on the
        client: leave it off for very wide problems).

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        Lazy, chunked by rows (``chunks``) with one column chunk; its blocks are ``scipy.sparse.csr_matrix``
        with sorted indices.
    y : dask.array.Array of int64 of shape (n_samples,)
        Lazy class labels in ``0 .. n_classes - 1``, with the row chunks of ``X``.
    coef : numpy.ndarray of shape (n_features,) for two classes, else (n_classes, n_features)
        The generating coefficients; only when ``return_coef`` is true.

    Raises
    ------
    ValueError
        For out-of-range parameters or ``chunks``, or a ``dtype`` other than float32/float64.
    TypeError
        If an integer parameter is not an int or a real parameter is not a number.

    See Also
    --------
    make_classification : Dense Gaussian clusters.
    hash_features : Wide sparse features from the columns of a table.

    Notes
    -----
    Nothing is computed. Row ``i`` depends only on the seed and ``i``: the same ``random_state`` gives the same
    rows and labels for any ``chunks`` and any number of workers. The frequency of rank ``r`` (0-based) is
    exactly ``F(r + 2) - F(r + 1)`` with ``F`` the distribution function of the continuous power law of density
    proportional to ``x ** -zipf_exponent`` on ``[1, n_features + 1)``, which is within a few percent of
    ``r ** -a`` past the first ranks.

    Examples
    --------
    >>> from daskml_lab.data import make_sparse_classification
    >>> X, y, coef = make_sparse_classification(
    ...     1000, 2**16, nnz_per_row=10, chunks=250, random_state=0, return_coef=True)
    >>> X.shape, X.chunks[0], type(X._meta).__name__, coef.shape
    ((1000, 65536), (250, 250, 250, 250), 'csr_matrix', (65536,))
    >>> int(X.compute().getnnz(axis=1).max()) <= 10
    True
    """
    function = "make_sparse_classification"
    _check_int("n_samples", n_samples, 1, function)
    _check_int("n_features", n_features, 1, function)
    if n_features > np.iinfo(np.int32).max:
        msg = f"n_features must be at most 2**31 - 1 (32-bit column indices), got {n_features}."
        raise ValueError(msg)
    _check_int("nnz_per_row", nnz_per_row, 1, function)
    _check_int("n_classes", n_classes, 2, function)
    _check_real("zipf_exponent", zipf_exponent, function, low=0.0, low_closed=False)
    _check_real("coef_scale", coef_scale, function, low=0.0)
    if not isinstance(return_coef, bool | np.bool_):
        msg = f"return_coef must be a bool, got {return_coef!r}."
        raise TypeError(msg)
    out_dtype = _check_dtype(dtype)
    row_chunks = _row_chunks(chunks, n_samples)
    entropy = _blocks.root_entropy(random_state)
    model = _SparseModel(
        n_features=int(n_features),
        nnz_per_row=int(nnz_per_row),
        n_classes=int(n_classes),
        zipf_exponent=float(zipf_exponent),
        coef_scale=float(coef_scale),
        entropy=entropy,
    )
    starts = np.concatenate([[0], np.cumsum(row_chunks)[:-1]]).astype(int).tolist()
    token = tokenize("make-sparse-classification", model, row_chunks, out_dtype)
    gen = f"daskml-make-sparse-classification-{token}"
    X_name, y_name = f"daskml-make-sparse-X-{token}", f"daskml-make-sparse-y-{token}"
    gen_tasks = {
        (gen, i): (_make_sparse_block, model, start, int(size), out_dtype)
        for i, (start, size) in enumerate(zip(starts, row_chunks, strict=True))
    }
    X_tasks = {(X_name, i, 0): (_first, (gen, i)) for i in range(len(row_chunks))}
    y_tasks = {(y_name, i): (_second, (gen, i)) for i in range(len(row_chunks))}
    X = _blocks.array_from_tasks(
        X_name,
        {**gen_tasks, **X_tasks},
        (row_chunks, (n_features,)),
        meta=sp.csr_matrix((0, n_features), dtype=out_dtype),
        dependencies=[],
    )
    y = _blocks.array_from_tasks(
        y_name, y_tasks, (row_chunks,), meta=np.empty((0,), dtype=np.int64), dependencies=[X]
    )
    logger.debug("make_sparse_classification: %d rows in %d blocks", n_samples, len(row_chunks))
    if return_coef:
        coef = _coefficients(np.arange(n_features), model)
        return X, y, (coef[:, 0].copy() if n_classes == 2 else np.ascontiguousarray(coef.T))
    return X, y


def zipf_rank_probabilities(n_features: int, zipf_exponent: float) -> np.ndarray:
    """Probability of each Zipf rank (0-based) in :func:`make_sparse_classification`, for checks and plots.

    Parameters
    ----------
    n_features : int
        Number of ranks.
    zipf_exponent : float
        Exponent of the power law.

    Returns
    -------
    numpy.ndarray of shape (n_features,)
        Sums to 1, decreasing.
    """
    edges = _power_law_cdf(np.arange(1, n_features + 2, dtype=np.float64), n_features, zipf_exponent)
    return np.diff(edges)


def feature_of_rank(ranks: Any, n_features: int, random_state: int) -> np.ndarray:
    """The feature index of Zipf ranks (0-based) in :func:`make_sparse_classification` with an int seed.

    Parameters
    ----------
    ranks : array-like of int
        Ranks in ``range(n_features)``.
    n_features : int
        Number of features.
    random_state : int
        The seed given to :func:`make_sparse_classification`.

    Returns
    -------
    numpy.ndarray of int64
        Column index of each rank.
    """
    entropy = _blocks.root_entropy(random_state)
    return _blocks.permuted_positions(
        ranks, n_features, entropy, _blocks.STREAM_SPARSE_CLASSIFICATION, _ORDER
    )


# ---------------------------------------------------------------------------------------------------------
# block kernels


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _second(pair: tuple[Any, Any]) -> Any:
    return pair[1]


def _make_sparse_block(
    model: _SparseModel, start: int, n_rows: int, dtype: np.dtype
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows ``start .. start + n_rows``: the features of each row, then its label from the model."""
    k = model.nnz_per_row
    stream = _blocks.STREAM_SPARSE_CLASSIFICATION
    rows = np.arange(start, start + n_rows, dtype=np.uint64)
    # slots 0 .. k-1 of a row draw its features, slot k its label
    counters = rows[:, None] * np.uint64(k + 1) + np.arange(k + 1, dtype=np.uint64)[None, :]
    uniform = _blocks.counter_uniform(counters, model.entropy, stream, _FEATURES)
    ranks = _zipf_ranks(uniform[:, :k], model.n_features, model.zipf_exponent)
    features = _blocks.permuted_positions(ranks.ravel(), model.n_features, model.entropy, stream, _ORDER)
    indptr = np.arange(0, n_rows * k + 1, k, dtype=np.int64)
    X = sp.csr_matrix(
        (np.ones(n_rows * k), features, indptr), shape=(n_rows, model.n_features), dtype=np.float64
    )
    X.sum_duplicates()
    X.data[:] = 1.0  # a feature drawn twice is present, not counted twice
    # the model on this block's features only: one row of coefficients per distinct feature
    seen, local = np.unique(X.indices, return_inverse=True)
    coef = _coefficients(seen, model)
    local_X = sp.csr_matrix((X.data, local.astype(np.int64), X.indptr), shape=(n_rows, max(len(seen), 1)))
    logits = local_X @ coef if len(seen) else np.zeros((n_rows, coef.shape[1]))
    y = _draw_labels(np.asarray(logits), uniform[:, k], model.n_classes)
    return X.astype(dtype, copy=False), y


def _zipf_ranks(uniform: np.ndarray, n_features: int, exponent: float) -> np.ndarray:
    """0-based ranks from uniforms: the inverse of the power law's distribution function, rounded down."""
    top = float(n_features) + 1.0
    if exponent == 1.0:
        x = np.exp(uniform * np.log(top))
    else:
        power = 1.0 - exponent
        x = (1.0 + uniform * (top**power - 1.0)) ** (1.0 / power)
    return np.clip(np.floor(x).astype(np.int64) - 1, 0, n_features - 1)


def _power_law_cdf(x: np.ndarray, n_features: int, exponent: float) -> np.ndarray:
    top = float(n_features) + 1.0
    if exponent == 1.0:
        return np.log(x) / np.log(top)
    power = 1.0 - exponent
    return (x**power - 1.0) / (top**power - 1.0)


def _coefficients(features: np.ndarray, model: _SparseModel) -> np.ndarray:
    """The coefficients of some features, shape ``(len(features), n_columns)``: Box-Muller on counter uniforms.

    Two classes have one column (the logit of class 1), more have one per class.
    """
    n_columns = 1 if model.n_classes == 2 else model.n_classes
    base = np.asarray(features, dtype=np.uint64)[:, None] * np.uint64(n_columns) + np.arange(
        n_columns, dtype=np.uint64
    )
    stream = _blocks.STREAM_SPARSE_CLASSIFICATION
    radius = np.sqrt(-2.0 * np.log1p(-_blocks.counter_uniform(base, model.entropy, stream, _COEF, 0)))
    angle = 2.0 * np.pi * _blocks.counter_uniform(base, model.entropy, stream, _COEF, 1)
    return model.coef_scale * radius * np.cos(angle)


def _draw_labels(logits: np.ndarray, uniform: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels drawn from the logistic (one logit column) or softmax (one per class) probabilities."""
    if n_classes == 2:
        probability = 0.5 * (1.0 + np.tanh(0.5 * logits[:, 0]))  # the logistic function, without overflow
        return (uniform < probability).astype(np.int64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    cumulative = np.cumsum(shifted, axis=1)
    cumulative /= cumulative[:, -1:]
    return np.minimum((uniform[:, None] >= cumulative).sum(axis=1), n_classes - 1).astype(np.int64)
