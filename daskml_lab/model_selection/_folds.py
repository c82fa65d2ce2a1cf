"""Fold plans over row blocks: which rows of each block are train or test rows, decided where the blocks live.

A fold of a row-chunked dask array is described by one small *role* array per block (``0`` train, ``1`` test,
``2`` neither), built by a pure kernel from the block's global row indices (and, for stratified folds, the
block's labels). The number of train and test rows of every block is known on the client *before* anything
runs: it follows from the block sizes (plain and shuffled folds) or from per-block class counts computed in one
blocked pass (stratified folds). The rows of a fold are therefore taken from each block in place, with the
resulting chunk sizes declared, so that the estimators see ordinary row-chunked dask arrays and nothing is
gathered on the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np

__all__ = [
    "TEST",
    "TRAIN",
    "Fold",
    "apportion",
    "block_class_counts",
    "contiguous_counts",
    "residue_counts",
    "take_rows",
]

#: Role codes of a row in one fold.
TRAIN, TEST, UNUSED = 0, 1, 2


@dataclass(frozen=True)
class Fold:
    """One (train, test) split of a row-chunked array.

    Attributes
    ----------
    roles : dask.array.Array of int8, shape (n_samples,)
        ``0`` train, ``1`` test, ``2`` in neither; chunked like the data's rows.
    train_counts, test_counts : tuple of int
        Rows of each block in the train and the test set (the chunks of the taken arrays).
    """

    roles: da.Array
    train_counts: tuple[int, ...]
    test_counts: tuple[int, ...]

    def masks(self) -> tuple[da.Array, da.Array]:
        """Lazy boolean row masks ``(train, test)``, chunked like the data's rows."""
        return self.roles == TRAIN, self.roles == TEST

    def take(self, array: da.Array, role: int) -> da.Array:
        """The rows of ``array`` with ``role``, lazily, with their chunk sizes declared."""
        counts = self.train_counts if role == TRAIN else self.test_counts
        return take_rows(array, self.roles, role, counts)


def _take_rows_block(block: Any, roles: np.ndarray, role: int) -> Any:
    # works for numpy and scipy.sparse blocks alike (boolean row indexing)
    return block[roles == role]


def take_rows(array: da.Array, roles: da.Array, role: int, counts: tuple[int, ...]) -> da.Array:
    """The rows of ``array`` whose role is ``role``, taken inside each block, with chunks ``counts``.

    Parameters
    ----------
    array : dask.array.Array
        Row-chunked data (1-D or 2-D, all columns in one chunk).
    roles : dask.array.Array
        Role of every row, with the same row chunks.
    role : int
        The role to keep.
    counts : tuple of int
        How many rows of each block have that role (known beforehand, declared as the result's chunks).

    Returns
    -------
    dask.array.Array
        Lazy; one task per block, next to the block.
    """
    index = "ij"[: array.ndim]
    return da.blockwise(
        _take_rows_block,
        index,
        array,
        index,
        roles,
        "i",
        role=role,
        adjust_chunks={"i": tuple(int(c) for c in counts)},
        dtype=array.dtype,
        meta=array._meta,
        token=f"daskml-cv-take-{'train' if role == TRAIN else 'test'}",
    )


def residue_counts(start: np.ndarray, length: np.ndarray, n_splits: int) -> np.ndarray:
    """How many ``p`` in ``[start, start + length)`` have ``p % n_splits == i``, for every ``i``.

    Parameters
    ----------
    start, length : ndarray of int, same shape
        Ranges of integers.
    n_splits : int

    Returns
    -------
    ndarray of int, shape ``start.shape + (n_splits,)``
    """
    start = np.asarray(start, dtype=np.int64)[..., None]
    stop = start + np.asarray(length, dtype=np.int64)[..., None]
    residues = np.arange(n_splits, dtype=np.int64)

    # integers below x with residue i: ceil((x - i) / k) when x > i, else 0
    def below(x: np.ndarray) -> np.ndarray:
        return np.maximum(0, (x - residues + n_splits - 1) // n_splits)

    return below(stop) - below(start)


def contiguous_counts(start: np.ndarray, length: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """How many ``p`` in ``[start, start + length)`` fall in each of the consecutive ranges ending at ``stops``.

    Parameters
    ----------
    start, length : ndarray of int, same shape
    stops : ndarray of int, shape (n_splits,)
        Exclusive ends of consecutive ranges starting at 0 (cumulative fold sizes).

    Returns
    -------
    ndarray of int, shape ``start.shape + (n_splits,)``
    """
    start = np.asarray(start, dtype=np.int64)[..., None]
    stop = start + np.asarray(length, dtype=np.int64)[..., None]
    stops = np.asarray(stops, dtype=np.int64)
    starts = np.concatenate([[0], stops[:-1]])
    return np.maximum(0, np.minimum(stop, stops) - np.maximum(start, starts))


def apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainders, ties to the first).

    Parameters
    ----------
    total : int
    weights : ndarray of int
        Non-negative, with ``weights.sum() >= total``.

    Returns
    -------
    ndarray of int, summing to ``total``, each at most its weight
    """
    weights = np.asarray(weights, dtype=np.int64)
    whole = weights.sum()
    if whole == 0:
        return np.zeros_like(weights)
    exact = total * weights / whole
    shares = np.floor(exact).astype(np.int64)
    remainder = int(total - shares.sum())
    # a stable sort keeps the rule deterministic: largest fractional parts first, ties to the earlier block
    order = np.argsort(-(exact - shares), kind="stable")
    shares[order[:remainder]] += 1
    return np.minimum(shares, weights)


def _class_counts_block(y: np.ndarray) -> dict[str, np.ndarray]:
    # classes in order of first appearance within the block, their counts and first positions
    classes, first, counts = np.unique(np.asarray(y).ravel(), return_index=True, return_counts=True)
    return {"classes": classes, "first": first, "counts": counts}


def block_class_counts(y: da.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per-block class counts of a row-chunked label vector, from one blocked pass.

    Parameters
    ----------
    y : dask.array.Array of shape (n_samples,)

    Returns
    -------
    classes : ndarray
        The classes in order of first appearance in ``y`` (as :class:`sklearn.model_selection.StratifiedKFold`
        encodes them).
    counts : ndarray of int, shape (n_blocks, n_classes)
    """
    parts = [dask.delayed(_class_counts_block, pure=True)(block) for block in y.to_delayed().ravel()]
    # compute: per block, its classes with their counts and first positions (n_blocks x n_classes numbers)
    (parts,) = dask.compute(parts)
    offsets = np.concatenate([[0], np.cumsum(y.chunks[0])[:-1]])
    labels = np.concatenate([p["classes"] for p in parts])
    first = np.concatenate([p["first"] + offset for p, offset in zip(parts, offsets, strict=True)])
    sorted_classes, inverse = np.unique(labels, return_inverse=True)
    first_seen = np.full(len(sorted_classes), np.iinfo(np.int64).max)
    np.minimum.at(first_seen, inverse, first)
    classes = sorted_classes[np.argsort(first_seen, kind="stable")]
    position = {label: i for i, label in enumerate(classes.tolist())}
    counts = np.zeros((len(parts), len(classes)), dtype=np.int64)
    for b, part in enumerate(parts):
        for label, count in zip(part["classes"].tolist(), part["counts"].tolist(), strict=True):
            counts[b, position[label]] = count
    return classes, counts
