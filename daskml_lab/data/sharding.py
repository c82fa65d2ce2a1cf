"""Sharding: re-chunk ``X`` (and ``y``) so that each row block is one shard.

A *shard* is the unit of shard-wise training: one row block, held by one worker, that a base estimator fits on
its own. :func:`shard` moves rows between blocks without bringing any data to the client:

- ``contiguous`` re-chunks consecutive rows into balanced blocks (a plain :meth:`dask.array.Array.rechunk`);
- ``shuffle``, ``stratified`` and ``hash`` give every row a target shard inside its own block (a
  ``daskml-shard-assign`` task), then move the rows (``X`` and ``y`` together) to their shards in a staged
  exchange whose task count grows as ``n log n`` in the number of blocks, not as its square
  (:mod:`daskml_lab.data._exchange`: ``daskml-shard-split``, ``daskml-shard-exchange``,
  ``daskml-shard-concat``), shuffling the rows within the shard for the two random strategies. The random
  strategies send each row where a seeded permutation of the row positions (``shuffle``) or of the ranks of
  the rows within their class (``stratified``) cut into the shard sizes puts it, so a row's shard depends on
  its global position and the seed only, not on the input chunks; ``hash`` counts beforehand how many rows
  go to each shard. The output chunk sizes are always known.
"""

from __future__ import annotations

import logging
import math
import numbers
import operator
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp
from dask.base import tokenize
from scipy.sparse.csgraph import maximum_flow

from daskml_lab._runtime.watched_compute import watched_compute
from daskml_lab.data import _blocks
from daskml_lab.data._convert import to_dask_array
from daskml_lab.data._exchange import redistribute
from daskml_lab.data.validation import check_array, check_X_y

logger = logging.getLogger(__name__)

__all__ = ["STRATEGIES", "shard", "shard_summary"]

#: The sharding strategies understood by :func:`shard`.
STRATEGIES = ("contiguous", "shuffle", "stratified", "hash")


def shard(
    X: Any,
    y: Any = None,
    *,
    n_shards: int | None = None,
    shard_size: int | None = None,
    strategy: str = "contiguous",
    key: Any = None,
    random_state: Any = None,
    check_input: bool = True,
) -> Any:
    """Re-chunk ``X`` (and ``y``) so that each row block is one shard.

    Rows move between blocks on the workers; nothing but chunk sizes and, for some strategies, a small count
    matrix reaches the client.

    Parameters
    ----------
    X : {array-like, sparse matrix, dask array, DataFrame, xarray.DataArray} of shape (n_samples, n_features)
        The features, validated by :func:`~daskml_lab.data.check_array`.
    y : {array-like, dask array, Series} of shape (n_samples,), default=None
        Targets or class labels of any dtype, moved together with the rows of ``X``.
    n_shards : int, default=None
        Number of shards. Default: the number of non-empty row blocks of ``X`` (after conversion).
        Mutually exclusive with ``shard_size``.
    shard_size : int, default=None
        Largest number of rows per shard; ``n_shards = ceil(n_samples / shard_size)``.
    strategy : {"contiguous", "shuffle", "stratified", "hash"}, default="contiguous"
        How rows are assigned to shards:

        - ``"contiguous"``: consecutive rows; shard sizes differ by at most one row.
        - ``"shuffle"``: a uniformly random assignment with the same balanced sizes, rows shuffled within
          each shard.
        - ``"stratified"``: balanced sizes, and every shard holds each class ``c`` in the global proportion:
          ``|count(shard j, c) - n_c * size_j / n_samples| < 1``. Needs ``y``.
        - ``"hash"``: a row goes to shard ``hash(key) % n_shards``, so equal keys always share a shard, in
          every run and process. Shard sizes are what the hash gives (not balanced; a shard may be empty).
          Needs ``key``.
    key : int or array-like of shape (n_samples,), default=None
        For ``strategy="hash"`` only: a column index of ``X`` or a 1-D array of keys (any dtype) aligned with
        the rows of ``X``.
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None, default=None
        Seed of the ``shuffle`` and ``stratified`` strategies (the others are deterministic). Every block
        draws from its own stream derived from this seed and the block index.
    check_input : bool, default=True
        Whether to validate ``X`` and ``y`` (dims, chunks, dtype, finiteness). Pass ``False`` only for arrays
        that already went through :func:`~daskml_lab.data.check_X_y` (dask arrays with one column chunk,
        known row chunks and aligned ``y``), as the ensembles do: it saves a second finiteness pass over the
        data.

    Returns
    -------
    X_sharded : dask.array.Array of shape (n_samples, n_features)
        Lazy; one row block per shard, chunk sizes known. Returned alone when ``y`` is None.
    y_sharded : dask.array.Array of shape (n_samples,)
        Lazy, with the row chunks of ``X_sharded``; only when ``y`` is given.

    Raises
    ------
    ValueError
        If both ``n_shards`` and ``shard_size`` are given, if either is below 1, if ``n_shards`` exceeds
        ``n_samples``, if ``strategy`` is unknown, if ``stratified`` lacks ``y`` or ``hash`` lacks ``key`` (or
        ``key`` is given for another strategy), if ``y`` or ``key`` is not 1-D, and for every invalid input
        that :func:`~daskml_lab.data.check_X_y` rejects.
    TypeError
        If ``n_shards``, ``shard_size`` or ``key`` has the wrong type.

    See Also
    --------
    shard_summary : Rows and class counts per shard.
    train_test_split : Split rows into train and test sets, block by block.

    Notes
    -----
    What is computed before the lazy result is returned:

    - ``contiguous`` and ``shuffle``: nothing (a row's shard follows from its position and the seed);
    - ``stratified``: the label counts of every block (an ``n_blocks x n_classes`` matrix; reads ``y`` once);
    - ``hash``: the number of rows of every shard (``n_shards`` integers summed on the workers; reads the key
      column once more when the result is computed).

    No result depends on how the input is chunked or on the number of workers (for ``shuffle`` and
    ``stratified``, given a ``random_state``). Shards of ``hash`` keep the original row order.

    The stratified quota matrix ``Q[j, c]`` (rows of class ``c`` in shard ``j``) rounds
    ``n_c * size_j / n_samples`` up or down while keeping the exact shard sizes and class totals (a matrix
    rounding solved as a small max-flow problem); the rows of class ``c``, ranked in their global order, are
    then permuted at random (seeded) and cut into the quotas ``Q[:, c]``.

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.data import shard
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    >>> Xs = shard(X, n_shards=3)
    >>> Xs.chunks[0]
    (4, 3, 3)
    >>> Xs, ys = shard(X, y, n_shards=2, strategy="stratified", random_state=0)
    >>> [int(np.sum(block == 1)) for block in ys.compute().reshape(2, 5)]
    [2, 3]
    """
    _check_options(strategy, y, key, n_shards, shard_size)
    if not check_input:
        X_arr, y_arr = X, y
    elif y is not None:
        _check_target_ndim(y)
        data = check_X_y(X, y)
        X_arr, y_arr = data.X, data.y
    else:
        X_arr, _ = check_array(X)
        y_arr = None
    n_samples = int(X_arr.shape[0])
    n_shards = _resolve_n_shards(n_samples, X_arr.chunks[0], n_shards, shard_size)
    sizes = _blocks.balanced_sizes(n_samples, n_shards)
    logger.debug("sharding %d rows into %d shards (strategy=%s)", n_samples, n_shards, strategy)

    if strategy == "contiguous":
        X_out = X_arr.rechunk({0: sizes})
        y_out = None if y_arr is None else y_arr.rechunk({0: sizes})
    else:
        permute_entropy: int | None = None
        if strategy == "hash":
            key_arr = _check_key(key, X_arr)
            labels = _hash_labels(X_arr, key_arr, n_shards)
            sizes = _compute_shard_sizes(labels, n_shards)  # hash shards are as large as their keys make them
        else:
            entropy = _blocks.root_entropy(random_state)
            permute_entropy = entropy
            if y_arr is not None and strategy == "stratified":
                labels = _stratified_plan(y_arr, sizes, entropy)
            else:
                labels = _shuffle_plan(X_arr.chunks[0], sizes, entropy)
        moved = redistribute(
            [X_arr] if y_arr is None else [X_arr, y_arr], labels, sizes=sizes, permute_entropy=permute_entropy
        )
        X_out, y_out = moved[0], (moved[1] if y_arr is not None else None)
    if y_out is None:
        return X_out
    return X_out, y_out


def shard_summary(X: Any, y: Any = None) -> pd.DataFrame:
    """Rows and class counts of every shard (row block).

    Parameters
    ----------
    X : {array-like, sparse matrix, dask array, DataFrame, xarray.DataArray} of shape (n_samples, n_features)
        Features; only their chunk sizes are read.
    y : {array-like, dask array, Series} of shape (n_samples,), default=None
        Class labels aligned with ``X``.

    Returns
    -------
    pandas.DataFrame
        One row per row block (index ``shard``), column ``n_rows`` and, when ``y`` is given, one column of
        counts per class, named by the class label.

    Raises
    ------
    ValueError
        As :func:`~daskml_lab.data.check_X_y`, and if ``y`` is not 1-D.

    Notes
    -----
    Without ``y`` nothing is computed. With ``y``, one computation brings back the per-block label counts
    (``n_blocks x n_classes`` integers).

    Examples
    --------
    >>> import dask.array as da
    >>> from daskml_lab.data import shard_summary
    >>> X = da.ones((5, 2), chunks=(3, 2))
    >>> summary = shard_summary(X, [0, 1, 1, 0, 1])
    >>> summary.columns.tolist()
    ['n_rows', 0, 1]
    >>> summary.to_numpy().tolist()
    [[3, 1, 2], [2, 1, 1]]
    """
    if y is not None:
        _check_target_ndim(y)
        data = check_X_y(X, y)
        X_arr, y_arr = data.X, data.y
    else:
        X_arr, _ = check_array(X)
        y_arr = None
    n_rows = np.asarray(X_arr.chunks[0], dtype=np.int64)
    frame = pd.DataFrame({"n_rows": n_rows}, index=pd.RangeIndex(n_rows.size, name="shard"))
    if y_arr is not None:
        classes, counts = _blocks.compute_block_class_counts(y_arr)
        for position, label in enumerate(classes.tolist()):
            frame[label] = counts[:, position]
    return frame


# ---------------------------------------------------------------------------------------------------------
# option checks


def _check_options(strategy: Any, y: Any, key: Any, n_shards: Any, shard_size: Any) -> None:
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        msg = (
            f"strategy must be one of {', '.join(repr(s) for s in STRATEGIES)}; got {strategy!r}. Use "
            "'contiguous' to keep the row order, 'shuffle' for random shards, 'stratified' (with y) to keep "
            "the class proportions or 'hash' (with key) to group rows by a key."
        )
        raise ValueError(msg)
    if strategy == "stratified" and y is None:
        msg = (
            "strategy='stratified' needs the class labels y to keep their proportions in every shard, but y "
            "is None. Pass y, or use strategy='shuffle'."
        )
        raise ValueError(msg)
    if strategy == "hash" and key is None:
        msg = (
            "strategy='hash' needs key: a column index of X or a 1-D array of keys, one per row; got "
            "key=None. Pass key=<column> or key=<array>."
        )
        raise ValueError(msg)
    if strategy != "hash" and key is not None:
        msg = (
            f"key is only used by strategy='hash', but strategy={strategy!r}. Drop key or use "
            "strategy='hash'."
        )
        raise ValueError(msg)
    if n_shards is not None and shard_size is not None:
        msg = (
            f"Pass either n_shards or shard_size, not both (got n_shards={n_shards}, "
            f"shard_size={shard_size}). shard_size=s means n_shards=ceil(n_samples / s)."
        )
        raise ValueError(msg)
    for name, value in (("n_shards", n_shards), ("shard_size", shard_size)):
        if value is None:
            continue
        if not isinstance(value, numbers.Integral) or isinstance(value, bool | np.bool_):
            msg = f"{name} must be an int, got {type(value).__name__} {value!r}."
            raise TypeError(msg)
        if value < 1:
            msg = f"{name} must be at least 1, got {value}. Pass a positive number of {_unit(name)}."
            raise ValueError(msg)


def _unit(name: str) -> str:
    return "shards" if name == "n_shards" else "rows per shard"


def _check_target_ndim(y: Any) -> None:
    shape = getattr(y, "shape", None)
    if shape is None:
        shape = np.shape(y)
    if len(shape) != 1:
        msg = (
            f"y must be 1-D of shape (n_samples,), got shape {tuple(shape)}. Pass one label per row of X "
            "(use y.ravel() for a column vector); multi-output targets can be sharded as extra columns of X."
        )
        raise ValueError(msg)


def _resolve_n_shards(
    n_samples: int, row_chunks: tuple[int, ...], n_shards: int | None, shard_size: int | None
) -> int:
    if shard_size is not None:
        return max(1, -(-n_samples // int(shard_size)))
    if n_shards is None:
        return max(1, sum(1 for size in row_chunks if size > 0))
    if n_shards > n_samples:
        msg = (
            f"n_shards={n_shards} is larger than the number of samples ({n_samples}): every shard needs at "
            f"least one row. Use n_shards <= {n_samples}."
        )
        raise ValueError(msg)
    return int(n_shards)


def _check_key(key: Any, X: da.Array) -> da.Array | int:
    """Return a column index of X, or the key as a 1-D dask array with the row chunks of X."""
    n_samples, n_features = X.shape
    if isinstance(key, numbers.Integral) and not isinstance(key, bool | np.bool_):
        if not -n_features <= key < n_features:
            msg = (
                f"key={key} is not a column of X, which has {n_features} feature(s). Pass a column index in "
                f"[{-n_features}, {n_features - 1}] or a 1-D array of keys, one per row."
            )
            raise ValueError(msg)
        return int(key) % n_features
    if isinstance(key, str | bytes) or not (hasattr(key, "shape") or isinstance(key, list | tuple)):
        msg = (
            f"key must be a column index of X (int) or a 1-D array-like of keys; got {type(key).__name__} "
            f"{key!r}. Select the column position of a named column first."
        )
        raise TypeError(msg)
    key_arr, origin = to_dask_array(key, name="key")
    if key_arr.ndim != 1:
        msg = f"key must be 1-D of shape (n_samples,), got shape {key_arr.shape}. Pass one key per row of X."
        raise ValueError(msg)
    if any(math.isnan(c) for c in key_arr.chunks[0]):
        msg = (
            "key has unknown chunk sizes, so its rows cannot be matched with the rows of X. Call "
            "key.compute_chunk_sizes() first, or build it with df.to_dask_array(lengths=True)."
        )
        raise ValueError(msg)
    if key_arr.shape[0] != n_samples:
        msg = (
            f"key has {key_arr.shape[0]} values but X has {n_samples} rows. Pass one key per row of X, "
            "in the same order."
        )
        raise ValueError(msg)
    if key_arr.chunks[0] != X.chunks[0]:
        if origin.is_eager:
            key_arr, _ = to_dask_array(key, name="key", chunks=X.chunks[0])
        else:
            key_arr = key_arr.rechunk((X.chunks[0],))
    return key_arr


# ---------------------------------------------------------------------------------------------------------
# plans: which rows of block i go to shard j


def _label_dtype(n_shards: int) -> np.dtype:
    return np.dtype(np.int16) if n_shards <= np.iinfo(np.int16).max else np.dtype(np.int32)


def _shard_of_images(images: np.ndarray, bounds: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Shard ``j`` takes the permuted positions in ``[bounds[j], bounds[j + 1])``."""
    return np.searchsorted(bounds[1:], images, side="right").astype(dtype)


def _shuffle_labels_block(start: int, stop: int, sizes: tuple[int, ...], entropy: int) -> np.ndarray:
    """Target shards of the rows ``start..stop-1``: a seeded permutation of all rows cut into ``sizes``."""
    images = _blocks.permuted_positions(
        np.arange(start, stop), sum(sizes), entropy, _blocks.STREAM_SHARD_ASSIGN
    )
    return _shard_of_images(images, np.cumsum((0, *sizes)), _label_dtype(len(sizes)))


def _shuffle_plan(row_chunks: tuple[int, ...], sizes: tuple[int, ...], entropy: int) -> da.Array:
    """Uniformly random balanced assignment: a seeded permutation of the row positions cut into ``sizes``.

    A row's shard depends only on its global position and the seed (see
    :func:`~daskml_lab.data._blocks.permuted_positions`), so the shards do not depend on the input chunks, and
    nothing needs computing: every shard receives exactly ``sizes[j]`` rows.
    """
    starts = np.cumsum((0, *row_chunks))
    name = f"daskml-shard-assign-{tokenize(row_chunks, sizes, entropy, 'shuffle')}"
    tasks = {
        (name, index): (_shuffle_labels_block, int(starts[index]), int(starts[index + 1]), sizes, entropy)
        for index in range(len(row_chunks))
    }
    dtype = _label_dtype(len(sizes))
    return _blocks.array_from_tasks(
        name, tasks, (tuple(row_chunks),), meta=np.empty(0, dtype), dependencies=[]
    )


def _stratified_quota(
    class_totals: np.ndarray, sizes: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Rows of each class per shard: ``Q[j, c]`` is ``n_c * size_j / n`` rounded down or up, margins exact.

    The expected table ``E[j, c] = n_c * size_j / n`` has integer row sums (the shard sizes) and column sums
    (the class totals); by the integrality of transportation polytopes it can be rounded entry by entry to a
    neighbouring integer without changing either. Starting from ``floor(E)``, the missing units form a 0/1
    matrix with known margins, supported where ``E`` is fractional: a bipartite max-flow problem. Shards and
    classes are visited in a seeded random order so that no shard always gets the larger share.
    """
    totals = np.asarray(class_totals, dtype=object)
    shard_sizes = np.asarray(sizes, dtype=object)
    n_samples = int(sum(sizes))
    product = np.outer(shard_sizes, totals)  # Python ints: no overflow for any n_samples
    quota = (product // n_samples).astype(np.int64)
    fractional = (product % n_samples).astype(bool)
    row_deficit = np.asarray(sizes, dtype=np.int64) - quota.sum(axis=1)
    col_deficit = np.asarray(class_totals, dtype=np.int64) - quota.sum(axis=0)
    n_missing = int(row_deficit.sum())
    if n_missing == 0:
        return quota
    n_shards, n_classes = quota.shape
    shard_order = rng.permutation(n_shards)
    class_order = rng.permutation(n_classes)
    # nodes: 0 source, 1..n_shards shards (permuted), then classes (permuted), then the sink
    sink = 1 + n_shards + n_classes
    rows, cols, caps = [], [], []
    for position, j in enumerate(shard_order):
        if row_deficit[j]:
            rows.append(0)
            cols.append(1 + position)
            caps.append(row_deficit[j])
    shard_position = np.empty(n_shards, dtype=np.int64)
    shard_position[shard_order] = np.arange(n_shards)
    class_position = np.empty(n_classes, dtype=np.int64)
    class_position[class_order] = np.arange(n_classes)
    js, cs = np.nonzero(fractional)
    rows.extend((1 + shard_position[js]).tolist())
    cols.extend((1 + n_shards + class_position[cs]).tolist())
    caps.extend([1] * js.size)
    for c in range(n_classes):
        if col_deficit[c]:
            rows.append(1 + n_shards + class_position[c])
            cols.append(sink)
            caps.append(col_deficit[c])
    graph = sp.csr_array(
        (np.asarray(caps, dtype=np.int32), (np.asarray(rows), np.asarray(cols))), shape=(sink + 1, sink + 1)
    )
    result = maximum_flow(graph, 0, sink)
    if result.flow_value != n_missing:  # pragma: no cover - impossible by the rounding theorem
        msg = f"Internal error: stratified quota rounding found {result.flow_value} of {n_missing} units."
        raise RuntimeError(msg)
    flow = result.flow.toarray()
    quota += np.maximum(flow[np.ix_(1 + shard_position, 1 + n_shards + class_position)], 0)
    return quota


def _stratified_labels_block(
    y_block: np.ndarray,
    classes: np.ndarray,
    quota: np.ndarray,
    offsets: np.ndarray,
    entropy: int,
    block_index: int,
) -> np.ndarray:
    """Target shards of one block: within each class, a seeded permutation of the class's rows cut by ``quota``.

    ``offsets[c]`` rows of class ``c`` come before this block, so a row's rank in its class -- hence its shard
    -- does not depend on the input chunks.
    """
    n_shards = quota.shape[0]
    codes = np.searchsorted(classes, y_block)
    codes = np.minimum(codes, classes.size - 1)
    if y_block.size and not np.array_equal(classes[codes], y_block):
        msg = (
            f"Row block {block_index} of y holds labels that were not there when the class counts were "
            "computed. y must give the same values every time it is computed; persist it first."
        )
        raise RuntimeError(msg)
    labels = np.empty(y_block.shape[0], dtype=_label_dtype(n_shards))
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=classes.size))])
    totals = quota.sum(axis=0)
    for c in range(classes.size):
        rows = order[bounds[c] : bounds[c + 1]]
        if rows.size == 0:
            continue
        ranks = offsets[c] + np.arange(rows.size)
        if ranks[-1] >= totals[c]:
            msg = (
                f"Row block {block_index} of y changed between the class count and the shard pass (more rows "
                f"of class {classes[c]!r} than counted); persist y first."
            )
            raise RuntimeError(msg)
        images = _blocks.permuted_positions(ranks, int(totals[c]), entropy, _blocks.STREAM_SHARD_ASSIGN, 1, c)
        labels[rows] = _shard_of_images(images, np.cumsum(np.concatenate([[0], quota[:, c]])), labels.dtype)
    return labels


def _stratified_plan(y: da.Array, sizes: tuple[int, ...], entropy: int) -> da.Array:
    classes, block_counts = _blocks.compute_block_class_counts(y)
    if classes.dtype.kind == "f" and not np.all(np.mod(classes, 1) == 0):
        msg = (
            f"strategy='stratified' needs class labels, but y has {classes.size} distinct non-integer float "
            f"values (for example {classes[:3].tolist()}), which looks like a regression target. Use "
            "strategy='shuffle', or bin y into classes first."
        )
        raise ValueError(msg)
    # The quota depends on the class totals and shard sizes only (not on the chunks), like the rows' ranks.
    rng = _blocks.block_rng(entropy, _blocks.STREAM_SHARD_ASSIGN, 0)
    quota = _stratified_quota(block_counts.sum(axis=0), sizes, rng)
    offsets = np.cumsum(block_counts, axis=0) - block_counts  # rows of each class before each block
    shared_key = f"daskml-shard-classes-{tokenize(classes, quota)}"
    shared = dask.delayed((classes, quota), name=shared_key, traverse=False)
    name = f"daskml-shard-assign-{tokenize(y.name, sizes, entropy, 'stratified')}"
    tasks = {
        (name, index): (
            _stratified_labels_block,
            _blocks.block_key(y, index),
            (operator.getitem, shared_key, 0),
            (operator.getitem, shared_key, 1),
            offsets[index],
            entropy,
            index,
        )
        for index in range(block_counts.shape[0])
    }
    dtype = _label_dtype(len(sizes))
    return _blocks.array_from_tasks(
        name, tasks, (y.chunks[0],), meta=np.empty(0, dtype), dependencies=[y, shared]
    )


def _hash_labels_block(keys: Any, n_shards: int, column: int | None = None) -> np.ndarray:
    """Target shard of every row: a process-independent 64-bit hash of its key, modulo ``n_shards``."""
    if column is not None:
        keys = keys[:, column]
        keys = keys.toarray().ravel() if sp.issparse(keys) else np.asarray(keys)
    keys = np.asarray(keys)
    if keys.dtype.kind in "US":
        keys = keys.astype(object)  # pandas hashes fixed-width strings as Python objects
    hashes = pd.util.hash_array(keys, categorize=False)
    return (hashes % np.uint64(n_shards)).astype(_label_dtype(n_shards))


def _hash_labels(X: da.Array, key: da.Array | int, n_shards: int) -> da.Array:
    source = X if isinstance(key, int) else key
    column = key if isinstance(key, int) else None
    name = f"daskml-shard-assign-{tokenize(source.name, column, n_shards, 'hash')}"
    tasks = {
        (name, index): (_hash_labels_block, _blocks.block_key(source, index), n_shards, column)
        for index in range(source.numblocks[0])
    }
    dtype = _label_dtype(n_shards)
    return _blocks.array_from_tasks(
        name, tasks, (X.chunks[0],), meta=np.empty(0, dtype), dependencies=[source]
    )


def _count_labels_block(labels: np.ndarray, n_shards: int) -> np.ndarray:
    return np.bincount(labels, minlength=n_shards).astype(np.int64)[None, :]


def _compute_shard_sizes(labels: da.Array, n_shards: int) -> tuple[int, ...]:
    counts = labels.map_blocks(
        _count_labels_block,
        n_shards,
        chunks=((1,) * labels.numblocks[0], (n_shards,)),
        new_axis=1,
        dtype=np.int64,
        token="daskml-shard-count",
    )
    # compute: rows of every shard, n_shards integers summed on the workers (keys are hashed there; no data
    # reach the client)
    (sizes,) = watched_compute(counts.sum(axis=0), what="the shard sizes")
    return tuple(int(size) for size in sizes)
