"""Building blocks shared by sharding, splitting and the synthetic generators.

- **Random streams.** The stream constants of the data layer; the seeding rule itself (root entropy from
  ``random_state``, one generator per stream and block) is :mod:`daskml_lab._runtime.seeding`, re-exported
  here for the callers that import it from this module. :func:`counter_uniform` draws values indexed by a
  global position (row, feature) rather than by block, for results that do not depend on the chunking.
- **Count plans.** Exact counts (rows per shard, test rows per block) are split over blocks on the client with
  multivariate hypergeometric draws. They use chunk sizes or small count matrices only, never data.
- **Graph helpers.** Arrays built from hand-written task layers, named with ``daskml-`` prefixes.
- **Class counts per block**, the one small computation that stratified sharding and splitting need.
- **Row-block size** of in-memory inputs, from dask's ``array.chunk-size`` (:func:`default_row_chunks`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from daskml_lab._compat import unique_fused_keys
from daskml_lab._runtime.seeding import block_rng, root_entropy
from daskml_lab._runtime.watched_compute import watched_compute

__all__ = [
    "STREAM_CLASSIFICATION",
    "STREAM_REGRESSION",
    "STREAM_SHARD_ASSIGN",
    "STREAM_SHARD_PERMUTE",
    "STREAM_SPARSE_CLASSIFICATION",
    "STREAM_SPLIT",
    "array_from_tasks",
    "balanced_sizes",
    "block_key",
    "block_rng",
    "compute_block_class_counts",
    "counter_uniform",
    "default_row_chunks",
    "empty_rows",
    "multivariate_hypergeometric",
    "permuted_positions",
    "root_entropy",
]

# Independent random streams: the first element of every spawn key.
STREAM_SHARD_ASSIGN = 1
STREAM_SHARD_PERMUTE = 2
STREAM_SPLIT = 3
STREAM_CLASSIFICATION = 4
STREAM_REGRESSION = 5
STREAM_SPARSE_CLASSIFICATION = 6

# numpy's hypergeometric samplers accept populations below this size.
_NUMPY_HYPERGEOMETRIC_LIMIT = 10**9

# Rounds of the Feistel network of permuted_positions (4 already give a pseudorandom permutation; 6 for margin),
# and the multipliers of the splitmix64 finaliser used as its round function.
_FEISTEL_ROUNDS = 6
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
# splitmix64's increment (2**64 divided by the golden ratio)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise (uint64 arithmetic wraps, as the hash needs)."""
    values = (values ^ (values >> np.uint64(30))) * _MIX_1
    values = (values ^ (values >> np.uint64(27))) * _MIX_2
    return values ^ (values >> np.uint64(31))


def permuted_positions(positions: Any, n: int, entropy: int, *key: int) -> np.ndarray:
    """Where a seeded random permutation of ``range(n)`` sends each of ``positions``.

    The permutation is a balanced Feistel network on ``2 * h`` bits (``4**h >= n``) keyed by the seed and
    ``key``, walked again on the values that fall outside ``range(n)`` (cycle walking keeps it a permutation of
    ``range(n)``; at most four walks are expected). Each position is mapped on its own, so any subset of
    ``range(n)`` -- one row block, whatever the chunking -- is mapped without the rest: this is what makes the
    random sharding of a row depend only on its global position and the seed, not on the input chunks.

    Parameters
    ----------
    positions : array-like of int
        Values in ``range(n)``.
    n : int
        Size of the permuted range.
    entropy : int
        Root entropy from :func:`root_entropy`.
    *key : int
        Stream constant and indices, as for :func:`block_rng`.

    Returns
    -------
    numpy.ndarray of int64
        The images of ``positions``: distinct positions have distinct images, all in ``range(n)``.

    Examples
    --------
    >>> images = permuted_positions(np.arange(10), 10, 42, 1)
    >>> sorted(images.tolist()) == list(range(10))
    True
    >>> np.array_equal(permuted_positions(np.arange(3, 7), 10, 42, 1), images[3:7])
    True
    """
    values = np.asarray(positions, dtype=np.uint64)
    if n <= 1:
        return values.astype(np.int64)
    half_bits = 1
    while 4**half_bits < n:
        half_bits += 1
    mask = np.uint64((1 << half_bits) - 1)
    shift = np.uint64(half_bits)
    round_keys = np.random.SeedSequence(entropy, spawn_key=tuple(int(k) for k in key)).generate_state(
        _FEISTEL_ROUNDS, np.uint64
    )

    def encrypt(x: np.ndarray) -> np.ndarray:
        left, right = x >> shift, x & mask
        for round_key in round_keys:
            left, right = right, left ^ (_mix64(right ^ round_key) & mask)
        return (left << shift) | right

    images = encrypt(values)
    outside = np.flatnonzero(images >= np.uint64(n))
    while outside.size:
        images[outside] = encrypt(images[outside])
        outside = outside[images[outside] >= np.uint64(n)]
    return images.astype(np.int64)


def counter_uniform(counters: Any, entropy: int, *key: int) -> np.ndarray:
    """Uniform floats in ``[0, 1)``, one per counter, each a function of the seed, ``key`` and its counter only.

    A counter-based stream (splitmix64 of the stream's 64-bit key plus the counter times the golden ratio):
    the value drawn for a counter does not depend on which other counters are drawn, so values indexed by
    global row (or by feature) are the same whatever the chunking. The key comes from
    :class:`numpy.random.SeedSequence` of ``entropy`` and ``key``, like every other stream.

    Parameters
    ----------
    counters : array-like of int
        Non-negative counters (any shape); distinct counters give independent values.
    entropy : int
        Root entropy from :func:`root_entropy`.
    *key : int
        Stream constant and indices, as for :func:`block_rng`.

    Returns
    -------
    numpy.ndarray of float64
        Same shape as ``counters``, multiples of ``2**-53``.

    Examples
    --------
    >>> u = counter_uniform(np.arange(5), 0, 6)
    >>> bool(np.all((u >= 0) & (u < 1))), np.array_equal(counter_uniform([3, 4], 0, 6), u[3:])
    (True, True)
    """
    stream_key = np.random.SeedSequence(entropy, spawn_key=tuple(int(k) for k in key)).generate_state(
        1, np.uint64
    )[0]
    values = np.asarray(counters, dtype=np.uint64) * _GOLDEN + stream_key
    return (_mix64(values) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def balanced_sizes(n_samples: int, n_parts: int) -> tuple[int, ...]:
    """Split ``n_samples`` rows into ``n_parts`` consecutive parts whose sizes differ by at most one.

    The larger parts come first, as in :func:`numpy.array_split`.

    Parameters
    ----------
    n_samples, n_parts : int

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> balanced_sizes(10, 4)
    (3, 3, 2, 2)
    """
    base, extra = divmod(int(n_samples), int(n_parts))
    return tuple(base + (1 if j < extra else 0) for j in range(int(n_parts)))


def _hypergeometric(rng: np.random.Generator, n_good: int, n_bad: int, n_sample: int) -> int:
    """Good items among ``n_sample`` drawn without replacement (normal approximation for huge urns)."""
    if n_sample == 0 or n_good == 0:
        return 0
    if n_bad == 0:
        return n_sample
    if n_good < _NUMPY_HYPERGEOMETRIC_LIMIT and n_bad < _NUMPY_HYPERGEOMETRIC_LIMIT:
        return int(rng.hypergeometric(n_good, n_bad, n_sample))
    total = n_good + n_bad
    p = n_good / total
    variance = n_sample * p * (1 - p) * (total - n_sample) / max(total - 1, 1)
    draw = round(n_sample * p + math.sqrt(variance) * float(rng.standard_normal()))
    return int(min(max(draw, max(0, n_sample - n_bad)), min(n_good, n_sample)))


def multivariate_hypergeometric(rng: np.random.Generator, colors: Sequence[int], n_sample: int) -> np.ndarray:
    """Draw ``n_sample`` items without replacement from an urn with ``colors[c]`` items of colour ``c``.

    Used to split an exact total over blocks or shards: the counts always sum to ``n_sample`` and never exceed
    ``colors``. Beyond numpy's population limit (10**9 items) the marginals use a normal approximation, still
    with exact totals.

    Parameters
    ----------
    rng : numpy.random.Generator
    colors : sequence of int
        Items per colour.
    n_sample : int
        Items drawn, at most ``sum(colors)``.

    Returns
    -------
    ndarray of int64 of shape (len(colors),)
    """
    colors = np.asarray(colors, dtype=np.int64)
    total = int(colors.sum())
    if n_sample == 0 or colors.size == 0:
        return np.zeros(colors.size, dtype=np.int64)
    if n_sample == total:
        return colors.copy()
    if total < _NUMPY_HYPERGEOMETRIC_LIMIT:
        return rng.multivariate_hypergeometric(colors, n_sample, method="marginals").astype(np.int64)
    out = np.zeros(colors.size, dtype=np.int64)
    remaining_total, remaining_sample = total, int(n_sample)
    for index, count in enumerate(colors.tolist()):
        drawn = _hypergeometric(rng, count, remaining_total - count, remaining_sample)
        out[index] = drawn
        remaining_total -= count
        remaining_sample -= drawn
    return out


def block_key(array: da.Array, index: int) -> tuple:
    """Graph key of row block ``index`` of an array chunked by rows only."""
    return (array.name, int(index)) + (0,) * (array.ndim - 1)


def empty_rows(meta: Any, shape_tail: tuple[int, ...], dtype: Any) -> Any:
    """A block with zero rows of the given trailing shape: dense or CSR, following ``meta``."""
    if sp.issparse(meta):
        return sp.csr_matrix((0, *shape_tail), dtype=dtype)
    return np.empty((0, *shape_tail), dtype=dtype)


def array_from_tasks(
    name: str,
    tasks: Mapping[tuple, Any],
    chunks: tuple[tuple[int, ...], ...],
    *,
    meta: Any,
    dependencies: Sequence[Any],
) -> da.Array:
    """A dask array whose blocks are the given tasks (one per block key ``(name, i, 0, ...)``).

    Parameters
    ----------
    name : str
        Key name of the output blocks, starting with a ``daskml-`` prefix.
    tasks : mapping
        Graph layer: output block keys plus any helper keys, each mapped to a task tuple.
    chunks : tuple of tuple of int
        Known chunk sizes of the result.
    meta : array
        Zero-size array of the block type and dtype.
    dependencies : sequence of dask collections
        Collections whose keys the tasks reference.

    Returns
    -------
    dask.array.Array
        Lazy.
    """
    graph = HighLevelGraph.from_collections(name, dict(tasks), dependencies=list(dependencies))
    return da.Array(graph, name, chunks, meta=meta)


def _count_classes_block(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique labels of one block and how often each occurs."""
    return np.unique(np.asarray(labels), return_counts=True)


def compute_block_class_counts(y: da.Array) -> tuple[np.ndarray, np.ndarray]:
    """Count the labels of every row block of ``y`` (one small computation).

    Parameters
    ----------
    y : dask.array.Array of shape (n_samples,)
        Class labels of any sortable dtype, with known row chunks.

    Returns
    -------
    classes : ndarray of shape (n_classes,)
        Sorted unique labels.
    counts : ndarray of int64 of shape (n_blocks, n_classes)
        Rows of each class in each row block.
    """
    prefix = f"daskml-class-counts-{tokenize(y.name)}"
    count = dask.delayed(_count_classes_block, pure=True)
    tasks = [
        count(block, dask_key_name=(prefix, index)) for index, block in enumerate(y.to_delayed().ravel())
    ]
    # compute: per-block unique labels and counts, n_blocks x n_classes values (the data stay on the workers)
    with unique_fused_keys():
        results = watched_compute(*tasks, what="the class counts of the row blocks")
    uniques = [values for values, _ in results]
    classes = np.unique(np.concatenate(uniques)) if uniques else np.asarray([])
    counts = np.zeros((len(results), classes.size), dtype=np.int64)
    for index, (values, value_counts) in enumerate(results):
        counts[index, np.searchsorted(classes, values)] = value_counts
    return classes, counts


def default_row_chunks(n_rows: int, n_features: int, itemsize: int) -> int:
    """Rows per block so that one block holds about ``array.chunk-size`` bytes (dask's own setting).

    Parameters
    ----------
    n_rows, n_features, itemsize : int
        Shape and bytes per element of the array to be split.

    Returns
    -------
    int
        A row-block length of at least one row.
    """
    limit = dask.utils.parse_bytes(dask.config.get("array.chunk-size"))
    row_bytes = max(1, n_features * itemsize)
    return int(max(1, min(max(n_rows, 1), limit // row_bytes)))
