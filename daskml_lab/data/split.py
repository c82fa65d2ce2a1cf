"""A lazy, blockwise ``train_test_split`` with scikit-learn's exact set sizes.

The client decides how many train and test rows every row block contributes (multivariate hypergeometric draws
over the block sizes, or over the per-block class counts when stratifying), so the totals equal
scikit-learn's and the output chunk sizes are known. Each block then picks its rows with its own random stream
(a ``daskml-split-assign`` task) and every array is cut by the same assignment (``daskml-split-train`` and
``daskml-split-test`` tasks). No data reach the client.
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize

from daskml_lab.data import _blocks
from daskml_lab.data._convert import InputOrigin, to_dask_array

logger = logging.getLogger(__name__)

__all__ = ["train_test_split"]

# In the assignment array: -1 for rows in neither set, 2 * rank for train rows and 2 * rank + 1 for test rows,
# where rank is the row's random position within its block's part of the set.
_TRAIN, _TEST = 0, 1


def train_test_split(
    *arrays: Any,
    test_size: float | int | None = None,
    train_size: float | int | None = None,
    random_state: Any = None,
    shuffle: bool = True,
    stratify: Any = None,
) -> list[da.Array]:
    """Split arrays into random train and test subsets, lazily and block by block.

    A drop-in for :func:`sklearn.model_selection.train_test_split` on row-chunked data: the same parameters
    and the same set sizes, but each row block chooses its own rows, so nothing is gathered on the client.

    Parameters
    ----------
    *arrays : sequence of {array-like, dask array, DataFrame, Series, xarray.DataArray}
        Arrays of the same length (first dimension), of any dtype and number of dimensions. In-memory arrays
        are converted to dask arrays with the row chunks of the first dask array given (or default chunks).
    test_size : float or int, default=None
        A float in (0, 1) is the fraction of rows in the test set (``ceil(test_size * n_samples)`` rows); an
        int is the number of test rows. ``None`` gives the complement of ``train_size``, or 0.25 if both
        are None.
    train_size : float or int, default=None
        A float in (0, 1) is the fraction of rows in the train set (``floor(train_size * n_samples)`` rows);
        an int is the number of train rows. ``None`` gives the complement of ``test_size``.
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None, default=None
        Seed of the split. Every block draws from its own stream derived from this seed and the block index.
    shuffle : bool, default=True
        Whether to pick the rows at random. ``False`` takes the first ``n_train`` rows as the train set and
        the following ``n_test`` rows as the test set, as scikit-learn does.
    stratify : array-like of shape (n_samples,), default=None
        Class labels whose proportions both sets keep (scikit-learn's per-class counts rule).

    Returns
    -------
    splitting : list of dask.array.Array, length 2 * len(arrays)
        ``[a_train, a_test, b_train, b_test, ...]``, lazy, with known chunk sizes (one train and one test
        block per input row block). Within a block the selected rows come in random order.

    Raises
    ------
    ValueError
        If no array is given, the lengths differ, an array has unknown chunk sizes, the sizes are invalid
        (same rules and messages as scikit-learn), ``stratify`` is used with ``shuffle=False`` or has a class
        with fewer than 2 members, or either set would hold fewer rows than there are classes.
    TypeError
        If ``test_size`` or ``train_size`` is neither a number nor None.

    See Also
    --------
    shard : Re-chunk rows into shards.

    Notes
    -----
    Without ``stratify`` nothing is computed: the per-block train and test counts come from the chunk sizes
    and the seed. With ``stratify``, one computation brings back the label counts of every block (an
    ``n_blocks x n_classes`` matrix). The split is reproducible for a fixed ``random_state`` and chunking,
    whatever the number of workers; it differs from scikit-learn's for the same seed (only the sizes, and with
    ``stratify`` the per-class counts, are the same).

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.data import train_test_split
    >>> X = np.arange(20).reshape(10, 2)
    >>> y = np.arange(10)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    >>> X_train.shape, X_test.shape
    ((7, 2), (3, 2))
    >>> sorted(np.concatenate([y_train.compute(), y_test.compute()]).tolist()) == list(range(10))
    True
    """
    if not arrays:
        msg = "At least one array required as input. Call train_test_split(X, y, ...) with your data."
        raise ValueError(msg)
    dask_arrays, labels_arr = _as_aligned(arrays, stratify)
    n_samples = int(dask_arrays[0].shape[0])
    n_train, n_test = _validate_sizes(n_samples, test_size, train_size)
    logger.debug("splitting %d rows into %d train and %d test rows", n_samples, n_train, n_test)
    if not shuffle:
        if stratify is not None:
            msg = (
                "Stratified train/test split is not implemented for shuffle=False. Pass shuffle=True (the "
                "default) to stratify, or drop stratify to take the last rows as the test set."
            )
            raise ValueError(msg)
        return [
            part for array in dask_arrays for part in (array[:n_train], array[n_train : n_train + n_test])
        ]

    entropy = _blocks.root_entropy(random_state)
    row_chunks = dask_arrays[0].chunks[0]
    if labels_arr is None:
        assignment, train_counts, test_counts = _random_assignment(row_chunks, n_train, n_test, entropy)
    else:
        assignment, train_counts, test_counts = _stratified_assignment(labels_arr, n_train, n_test, entropy)
    out = []
    for array in dask_arrays:
        out.append(_select(array, assignment, _TRAIN, train_counts))
        out.append(_select(array, assignment, _TEST, test_counts))
    return out


# ---------------------------------------------------------------------------------------------------------
# inputs


def _as_aligned(arrays: tuple[Any, ...], stratify: Any) -> tuple[list[da.Array], da.Array | None]:
    """Convert every input to a dask array with the same row chunks (those of the first lazy input)."""
    inputs = [*arrays, *([] if stratify is None else [stratify])]
    names = [f"arrays[{position}]" for position in range(len(arrays))] + (
        ["stratify"] if stratify is not None else []
    )
    converted = [_as_array(obj, name) for obj, name in zip(inputs, names, strict=True)]
    lengths = [int(array.shape[0]) for array, _ in converted[: len(arrays)]]
    if len(set(lengths)) > 1:
        msg = (
            f"Found input variables with inconsistent numbers of samples: {lengths}. Every array must have "
            "one row per sample, in the same order."
        )
        raise ValueError(msg)
    if stratify is not None:
        labels = converted[-1][0]
        if labels.ndim != 1:
            msg = (
                f"stratify must be 1-D of shape (n_samples,), got shape {labels.shape}. Pass one class label "
                "per row (y.ravel() for a column vector)."
            )
            raise ValueError(msg)
        if labels.shape[0] != lengths[0]:
            msg = (
                f"stratify has {labels.shape[0]} labels but the arrays have {lengths[0]} rows. Pass one "
                "label per row, usually stratify=y."
            )
            raise ValueError(msg)
    reference = next((array for array, origin in converted if not origin.is_eager), converted[0][0])
    row_chunks = reference.chunks[0]
    aligned = []
    for obj, name, (array, origin) in zip(inputs, names, converted, strict=True):
        if array.chunks[0] != row_chunks:
            if origin.is_eager:
                array, _ = to_dask_array(obj, name=name, chunks=row_chunks)
            else:
                array = array.rechunk({0: row_chunks})
        aligned.append(array)
    if stratify is not None:
        return aligned[:-1], aligned[-1]
    return aligned, None


def _as_array(obj: Any, name: str) -> tuple[da.Array, InputOrigin]:
    if obj is None:
        msg = f"{name} is None. Pass only arrays to split (one row per sample)."
        raise ValueError(msg)
    array, origin = to_dask_array(obj, name=name)
    if array.ndim == 0:
        msg = f"{name} is a scalar; expected an array with one row per sample."
        raise ValueError(msg)
    if any(math.isnan(c) for c in array.chunks[0]):
        msg = (
            f"{name} has unknown chunk sizes (shape {array.shape}), so its rows cannot be split. Call "
            f"{name}.compute_chunk_sizes() first, or build it with df.to_dask_array(lengths=True)."
        )
        raise ValueError(msg)
    return array, origin


def _size_kind(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        kind = "b"
    elif isinstance(value, numbers.Integral):
        kind = "i"
    elif isinstance(value, numbers.Real):
        kind = "f"
    else:
        kind = "other"
    if kind not in ("i", "f"):
        msg = (
            f"{name} must be a float in (0, 1), an int number of rows or None; got {type(value).__name__} "
            f"{value!r}."
        )
        raise TypeError(msg)
    return kind


def _validate_sizes(n_samples: int, test_size: Any, train_size: Any) -> tuple[int, int]:
    """Number of train and test rows, by scikit-learn's rules (``_validate_shuffle_split``)."""
    if test_size is None and train_size is None:
        test_size = 0.25
    test_kind = _size_kind(test_size, "test_size")
    train_kind = _size_kind(train_size, "train_size")
    for name, value, kind in (("test_size", test_size, test_kind), ("train_size", train_size, train_kind)):
        if (kind == "i" and (value >= n_samples or value <= 0)) or (
            kind == "f" and (value <= 0 or value >= 1)
        ):
            msg = (
                f"{name}={value} should be either positive and smaller than the number of samples "
                f"{n_samples} or a float in the (0, 1) range."
            )
            raise ValueError(msg)
    if test_kind == "f" and train_kind == "f" and train_size + test_size > 1:
        msg = (
            f"The sum of test_size and train_size = {train_size + test_size}, should be in the (0, 1) range. "
            "Reduce test_size and/or train_size."
        )
        raise ValueError(msg)
    n_test = math.ceil(test_size * n_samples) if test_kind == "f" else test_size
    n_train = math.floor(train_size * n_samples) if train_kind == "f" else train_size
    if train_size is None:
        n_train = n_samples - n_test
    elif test_size is None:
        n_test = n_samples - n_train
    if n_train + n_test > n_samples:
        msg = (
            f"The sum of train_size and test_size = {n_train + n_test}, should be smaller than the number of "
            f"samples {n_samples}. Reduce test_size and/or train_size."
        )
        raise ValueError(msg)
    if n_train == 0:
        msg = (
            f"With n_samples={n_samples}, test_size={test_size} and train_size={train_size}, the resulting "
            "train set will be empty. Adjust any of the aforementioned parameters."
        )
        raise ValueError(msg)
    return int(n_train), int(n_test)


# ---------------------------------------------------------------------------------------------------------
# assignment: which rows of each block are train, test or neither


def _mark_ranked(labels: np.ndarray, rows: np.ndarray, part: int, rng: np.random.Generator) -> None:
    """Give ``rows`` the codes of ``part`` with random ranks (their order in the output block)."""
    labels[rows] = 2 * rng.permutation(rows.size) + part


def _split_assign_block(n_rows: int, n_train: int, n_test: int, entropy: int, block_index: int) -> np.ndarray:
    """Assignment of one block: ``n_test`` random rows to test, ``n_train`` others to train."""
    rng = _blocks.block_rng(entropy, _blocks.STREAM_SPLIT, 1, block_index)
    permutation = rng.permutation(n_rows)
    labels = np.full(n_rows, -1, dtype=np.int64)
    _mark_ranked(labels, permutation[:n_test], _TEST, rng)
    _mark_ranked(labels, permutation[n_test : n_test + n_train], _TRAIN, rng)
    return labels


def _stratified_split_assign_block(
    y_block: np.ndarray,
    classes: np.ndarray,
    n_train: np.ndarray,
    n_test: np.ndarray,
    entropy: int,
    block_index: int,
) -> np.ndarray:
    """Assignment of one block: per class ``c``, ``n_test[c]`` rows to test and ``n_train[c]`` to train."""
    codes = np.minimum(np.searchsorted(classes, y_block), max(classes.size - 1, 0))
    if y_block.size and not np.array_equal(classes[codes], y_block):
        msg = (
            f"Row block {block_index} of stratify holds labels that were not there when the class counts "
            "were computed. stratify must give the same values every time it is computed; persist it first."
        )
        raise RuntimeError(msg)
    rng = _blocks.block_rng(entropy, _blocks.STREAM_SPLIT, 1, block_index)
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=classes.size))])
    train_rows, test_rows = [], []
    for c in range(classes.size):
        rows = order[bounds[c] : bounds[c + 1]]
        if rows.size < n_train[c] + n_test[c]:
            msg = (
                f"Row block {block_index} of stratify changed between the class count and the split "
                f"({rows.size} rows of class {classes[c]!r}); persist stratify first."
            )
            raise RuntimeError(msg)
        rows = rows[rng.permutation(rows.size)]
        test_rows.append(rows[: n_test[c]])
        train_rows.append(rows[n_test[c] : n_test[c] + n_train[c]])
    labels = np.full(y_block.shape[0], -1, dtype=np.int64)
    _mark_ranked(labels, np.concatenate([np.zeros(0, dtype=np.intp), *test_rows]), _TEST, rng)
    _mark_ranked(labels, np.concatenate([np.zeros(0, dtype=np.intp), *train_rows]), _TRAIN, rng)
    return labels


def _random_assignment(
    row_chunks: tuple[int, ...], n_train: int, n_test: int, entropy: int
) -> tuple[da.Array, tuple[int, ...], tuple[int, ...]]:
    rng = _blocks.block_rng(entropy, _blocks.STREAM_SPLIT, 0)
    sizes = np.asarray(row_chunks, dtype=np.int64)
    test_counts = _blocks.multivariate_hypergeometric(rng, sizes, n_test)
    train_counts = _blocks.multivariate_hypergeometric(rng, sizes - test_counts, n_train)
    name = f"daskml-split-assign-{tokenize(row_chunks, n_train, n_test, entropy)}"
    tasks = {
        (name, i): (_split_assign_block, int(sizes[i]), int(train_counts[i]), int(test_counts[i]), entropy, i)
        for i in range(sizes.size)
    }
    assignment = _blocks.array_from_tasks(
        name, tasks, (tuple(row_chunks),), meta=np.empty(0, np.int64), dependencies=[]
    )
    return assignment, tuple(train_counts.tolist()), tuple(test_counts.tolist())


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Most likely per-class counts of ``n_draws`` rows drawn without replacement (scikit-learn's rule).

    Floor the proportional shares, then hand the missing rows to the classes with the largest remainders,
    breaking ties at random.
    """
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (indices,) = np.where(remainder == value)
            add_now = min(indices.size, need_to_add)
            floored[rng.choice(indices, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(np.int64)


def _stratified_assignment(
    labels: da.Array, n_train: int, n_test: int, entropy: int
) -> tuple[da.Array, tuple[int, ...], tuple[int, ...]]:
    classes, block_counts = _blocks.compute_block_class_counts(labels)
    class_counts = block_counts.sum(axis=0)
    if class_counts.min() < 2:
        too_few = classes[class_counts < 2].tolist()
        msg = (
            "The least populated classes in y have only 1 member, which is too few. The minimum number of "
            f"groups for any class cannot be less than 2. Classes with too few members are: {too_few}. Merge "
            "or drop these classes, or split without stratify."
        )
        raise ValueError(msg)
    for name, count in (("train_size", n_train), ("test_size", n_test)):
        if count < classes.size:
            msg = (
                f"The {name} = {count} should be greater or equal to the number of classes = {classes.size}. "
                f"Increase {name} so that every class can appear in the set."
            )
            raise ValueError(msg)
    rng = _blocks.block_rng(entropy, _blocks.STREAM_SPLIT, 0)
    train_per_class = _approximate_mode(class_counts, n_train, rng)
    test_per_class = _approximate_mode(class_counts - train_per_class, n_test, rng)
    n_blocks, n_classes = block_counts.shape
    train_plan = np.zeros((n_blocks, n_classes), dtype=np.int64)
    test_plan = np.zeros((n_blocks, n_classes), dtype=np.int64)
    for c in range(n_classes):
        test_plan[:, c] = _blocks.multivariate_hypergeometric(rng, block_counts[:, c], int(test_per_class[c]))
        train_plan[:, c] = _blocks.multivariate_hypergeometric(
            rng, block_counts[:, c] - test_plan[:, c], int(train_per_class[c])
        )
    classes_key = f"daskml-split-classes-{tokenize(classes)}"
    classes_obj = dask.delayed(classes, name=classes_key, traverse=False)
    name = f"daskml-split-assign-{tokenize(labels.name, n_train, n_test, entropy)}"
    tasks = {
        (name, i): (
            _stratified_split_assign_block,
            (labels.name, i),
            classes_key,
            train_plan[i],
            test_plan[i],
            entropy,
            i,
        )
        for i in range(n_blocks)
    }
    assignment = _blocks.array_from_tasks(
        name, tasks, (labels.chunks[0],), meta=np.empty(0, np.int64), dependencies=[labels, classes_obj]
    )
    return assignment, tuple(train_plan.sum(axis=1).tolist()), tuple(test_plan.sum(axis=1).tolist())


def _select_rows_block(block: Any, assignment: np.ndarray, part: int) -> Any:
    """Rows of one block that belong to ``part`` (train or test), in their random order."""
    rows = np.flatnonzero((assignment >= 0) & (assignment % 2 == part))
    rows = rows[np.argsort(assignment[rows], kind="stable")]
    return block[rows]


def _select(array: da.Array, assignment: da.Array, part: int, counts: tuple[int, ...]) -> da.Array:
    index = "".join(chr(ord("i") + axis) for axis in range(array.ndim))
    return da.blockwise(
        _select_rows_block,
        index,
        array,
        index,
        assignment,
        "i",
        part,
        None,
        adjust_chunks={"i": counts},
        dtype=array.dtype,
        meta=array._meta,
        token="daskml-split-train" if part == _TRAIN else "daskml-split-test",
    )
