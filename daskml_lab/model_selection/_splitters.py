"""Cross-validation splitters that work on row-chunked dask arrays without gathering them.

Each class *is* its scikit-learn namesake (same parameters, same validation, same ``repr``); on in-memory input
``split`` is scikit-learn's own, so the folds are identical. On a dask array, ``split`` yields lazy boolean row
masks chunked like the data, and the cross-validation functions take each fold's rows inside every block, with
the resulting chunk sizes known in advance (see :mod:`daskml_lab.model_selection._folds`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from typing import Any

import dask.array as da
import numpy as np
from dask.base import is_dask_collection
from sklearn import model_selection as sk

from daskml_lab._runtime.seeding import block_rng, root_entropy
from daskml_lab.model_selection._folds import (
    TEST,
    TRAIN,
    UNUSED,
    Fold,
    apportion,
    block_class_counts,
    contiguous_counts,
    residue_counts,
)
from daskml_lab.persistence import register_trusted_type

__all__ = ["KFold", "ShuffleSplit", "StratifiedKFold"]

# Spawn-key constants of the random streams (one per splitter, so that they never share draws).
_KFOLD_STREAM, _STRATIFIED_STREAM, _SHUFFLE_SPLIT_STREAM = 41, 42, 43
#: scikit-learn's ShuffleSplit test fraction when neither size is given.
_DEFAULT_TEST_SIZE = 0.1


def _row_chunks(X: Any) -> tuple[int, ...]:
    chunks = X.chunks[0]
    if any(math.isnan(c) for c in chunks):
        msg = (
            f"X has unknown row chunk sizes {chunks}; folds over row blocks need them. Call "
            "X.compute_chunk_sizes() (or read the data with daskml_lab.data.read) before cross-validating."
        )
        raise ValueError(msg)
    return tuple(int(c) for c in chunks)


def _row_index(chunks: tuple[int, ...]) -> da.Array:
    # global row numbers, block by block: the only input of the plain and shuffled kernels
    return da.arange(sum(chunks), chunks=(chunks,), dtype=np.int64)


def _check_enough_rows(n_splits: int, n_samples: int) -> None:
    if n_splits > n_samples:
        msg = (
            f"Cannot have number of splits n_splits={n_splits} greater than the number of samples: "
            f"n_samples={n_samples}. Use at most {n_samples} splits, or more rows."
        )
        raise ValueError(msg)


def _block_index(block_info: dict[Any, Any]) -> int:
    return int(block_info[0]["chunk-location"][0])


# -- KFold ---------------------------------------------------------------------------------------------------


def _kfold_roles_block(rows: np.ndarray, fold: int, n_splits: int, stops: Any, entropy: Any) -> np.ndarray:
    if entropy is None:
        # scikit-learn's folds: consecutive ranges of rows
        labels = np.searchsorted(stops, rows, side="right")
    else:
        # row p goes to fold p % n_splits, shuffled within the block (keyed by its first row, so the key does
        # not depend on the number of blocks before it): every block gives every fold its share of rows
        labels = rows % n_splits
        if len(rows):
            labels = block_rng(entropy, _KFOLD_STREAM, int(rows[0])).permutation(labels)
    return np.where(labels == fold, TEST, TRAIN).astype(np.int8)


@register_trusted_type  # a saved search holds its cv: plain parameters, no code runs when it is rebuilt
class KFold(sk.KFold):
    """K-fold cross-validation over row blocks: :class:`sklearn.model_selection.KFold` for dask arrays.

    On in-memory input the folds are scikit-learn's. On a dask array they are computed where the blocks live:
    without ``shuffle`` they are scikit-learn's folds (consecutive ranges of rows, the same rows as on the
    same data in memory); with ``shuffle`` row ``p`` belongs to fold ``p % n_splits`` and the labels are
    shuffled within each block, so that every block gives every fold its share and the fold sizes are those
    of scikit-learn (its rows differ: a global permutation would move every row).

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2 and at most the number of rows.
    shuffle : bool, default=False
        Whether to shuffle the rows before splitting them into folds.
    random_state : int, numpy.random.RandomState or None, default=None
        Seed of the shuffle (``shuffle=True`` only).

    See Also
    --------
    StratifiedKFold : folds that keep the class proportions.
    daskml_lab.model_selection.cross_validate : uses these folds without gathering the data.

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.model_selection import KFold
    >>> [test.tolist() for _, test in KFold(n_splits=3).split(np.zeros((5, 1)))]
    [[0, 1], [2, 3], [4]]
    """

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[Any, Any]]:
        """Generate the (train, test) split of every fold.

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)
        y : {array-like, dask array} of shape (n_samples,), default=None
            Not used to choose the folds; accepted for compatibility with the other splitters.
        groups : None
            Accepted for compatibility with scikit-learn; must be ``None``.

        Yields
        ------
        train, test : ndarray of int or dask.array.Array of bool
            In-memory input: scikit-learn's row indices. Dask input: lazy boolean row masks chunked like
            ``X``'s rows.
        """
        if not is_dask_collection(X):
            yield from super().split(X, y, groups)
            return
        for fold in self._dask_folds(X, y):
            yield fold.masks()

    def _dask_folds(self, X: Any, y: Any = None) -> list[Fold]:
        chunks = _row_chunks(X)
        n = sum(chunks)
        _check_enough_rows(self.n_splits, n)
        k = self.n_splits
        starts = np.concatenate([[0], np.cumsum(chunks)[:-1]]).astype(np.int64)
        sizes = np.asarray(chunks, dtype=np.int64)
        if self.shuffle:
            entropy = root_entropy(self.random_state, self)
            test = residue_counts(starts, sizes, k)
            stops = None
        else:
            entropy = None
            fold_sizes = np.full(k, n // k, dtype=np.int64)
            fold_sizes[: n % k] += 1
            stops = np.cumsum(fold_sizes)
            test = contiguous_counts(starts, sizes, stops)
        rows = _row_index(chunks)
        folds = []
        for fold in range(k):
            roles = rows.map_blocks(
                _kfold_roles_block, fold, k, stops, entropy, dtype=np.int8, token=f"daskml-cv-fold-{fold}"
            )
            folds.append(Fold(roles, tuple((sizes - test[:, fold]).tolist()), tuple(test[:, fold].tolist())))
        return folds


# -- StratifiedKFold -----------------------------------------------------------------------------------------


def _stratified_roles_block(
    y: np.ndarray,
    fold: int,
    n_splits: int,
    classes: np.ndarray,
    offsets: np.ndarray,
    class_starts: np.ndarray,
    stops: np.ndarray | None,
    entropy: Any,
    block_info: Any = None,
) -> np.ndarray:
    b = _block_index(block_info)
    y = np.asarray(y).ravel()
    labels = np.empty(len(y), dtype=np.int64)
    for c, label in enumerate(classes.tolist()):
        where = np.flatnonzero(y == label)
        # g: the rank of each row among all rows of its class, in row order
        g = offsets[b, c] + np.arange(len(where))
        if stops is None:
            # position in scikit-learn's sorted label order decides the fold, shuffled within block and class
            folds = (class_starts[c] + g) % n_splits
            if len(where):
                folds = block_rng(entropy, _STRATIFIED_STREAM, b, c).permutation(folds)
        else:
            folds = np.searchsorted(stops[c], g, side="right")
        labels[where] = folds
    return np.where(labels == fold, TEST, TRAIN).astype(np.int8)


@register_trusted_type  # a saved search holds its cv: plain parameters, no code runs when it is rebuilt
class StratifiedKFold(sk.StratifiedKFold):
    """Stratified K-fold over row blocks: :class:`sklearn.model_selection.StratifiedKFold` for dask arrays.

    On in-memory input the folds are scikit-learn's. On a dask array, one blocked pass counts the classes of
    every block (an ``n_blocks x n_classes`` table comes back, nothing else); every row's fold then follows
    from that table and the row's rank within its class, computed next to the block. Each fold receives
    exactly scikit-learn's number of rows of every class. Without ``shuffle`` the folds are scikit-learn's
    rows too; with ``shuffle`` the fold labels are shuffled within each block and class.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2; every class needs at least ``n_splits`` rows.
    shuffle : bool, default=False
        Whether to shuffle each class's rows before splitting them into folds.
    random_state : int, numpy.random.RandomState or None, default=None
        Seed of the shuffle (``shuffle=True`` only).

    Raises
    ------
    ValueError
        When a class has fewer rows than ``n_splits`` (some test fold would lack it; scikit-learn only warns
        unless every class is that small).

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.model_selection import StratifiedKFold
    >>> y = np.array([0, 0, 1, 1, 0, 1])
    >>> [test.tolist() for _, test in StratifiedKFold(n_splits=3).split(np.zeros((6, 1)), y)]
    [[0, 2], [1, 3], [4, 5]]
    """

    def split(self, X: Any, y: Any, groups: Any = None) -> Iterator[tuple[Any, Any]]:
        """Generate the (train, test) split of every fold.

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)
        y : {array-like, dask array} of shape (n_samples,)
            The classes to stratify by.
        groups : None
            Accepted for compatibility with scikit-learn; must be ``None``.

        Yields
        ------
        train, test : ndarray of int or dask.array.Array of bool
            In-memory input: scikit-learn's row indices. Dask input: lazy boolean row masks chunked like
            ``X``'s rows.
        """
        if not is_dask_collection(X) and not is_dask_collection(y):
            y_array = np.asarray(y)
            # too few rows first, as scikit-learn checks: with one row, "one class of 1 member" hides the cause
            _check_enough_rows(self.n_splits, len(y_array))
            _, counts = np.unique(y_array.ravel(), return_counts=True)
            _check_class_counts(self.n_splits, np.unique(y_array.ravel()), counts)
            yield from super().split(X, y, groups)
            return
        for fold in self._dask_folds(X, y):
            yield fold.masks()

    def _dask_folds(self, X: Any, y: Any) -> list[Fold]:
        # the labels decide the folds: with in-memory X they alone give the row blocks
        chunks = _row_chunks(X if is_dask_collection(X) else y)
        n = sum(chunks)
        _check_enough_rows(self.n_splits, n)
        if not is_dask_collection(y):
            y = da.from_array(np.asarray(y), chunks=(chunks,))
        if y.ndim != 1 or tuple(y.chunks[0]) != chunks:
            msg = (
                f"y must be a vector with X's row chunks {chunks}; got shape {y.shape} with chunks {y.chunks}. "
                "Rechunk y like X (y.rechunk(X.chunks[0]))."
            )
            raise ValueError(msg)
        k = self.n_splits
        classes, counts = block_class_counts(y)
        totals = counts.sum(axis=0)
        _check_class_counts(k, classes, totals)
        offsets = np.cumsum(counts, axis=0) - counts  # rows of each class in the blocks before
        class_starts = np.cumsum(totals) - totals  # where each class begins in scikit-learn's sorted order
        allocation = residue_counts(class_starts, totals, k)  # (n_classes, k): rows of each class per fold
        sizes = np.asarray(chunks, dtype=np.int64)
        test = np.zeros((len(chunks), k), dtype=np.int64)
        if self.shuffle:
            entropy = root_entropy(self.random_state, self)
            stops = None
            for c in range(len(classes)):
                test += residue_counts(class_starts[c] + offsets[:, c], counts[:, c], k)
        else:
            entropy = None
            stops = np.cumsum(allocation, axis=1)
            for c in range(len(classes)):
                test += contiguous_counts(offsets[:, c], counts[:, c], stops[c])
        folds = []
        for fold in range(k):
            roles = y.map_blocks(
                _stratified_roles_block,
                fold,
                k,
                classes,
                offsets,
                class_starts,
                stops,
                entropy,
                dtype=np.int8,
                token=f"daskml-cv-stratified-fold-{fold}",
            )
            folds.append(Fold(roles, tuple((sizes - test[:, fold]).tolist()), tuple(test[:, fold].tolist())))
        return folds


def _check_class_counts(n_splits: int, classes: np.ndarray, counts: np.ndarray) -> None:
    small = [(label, int(count)) for label, count in zip(classes.tolist(), counts.tolist(), strict=True)]
    small = [(label, count) for label, count in small if count < n_splits]
    if small:
        listed = ", ".join(f"{label!r}: {count}" for label, count in small)
        msg = (
            f"n_splits={n_splits} cannot be greater than the number of members in each class: some test folds "
            f"would lack class(es) {{{listed}}} (rows per class). Use n_splits <= {min(c for _, c in small)}, "
            "or merge or drop the rare classes."
        )
        raise ValueError(msg)


# -- ShuffleSplit --------------------------------------------------------------------------------------------


def _shuffle_split_roles_block(
    rows: np.ndarray,
    split: int,
    n_test: np.ndarray,
    n_train: np.ndarray,
    entropy: Any,
    block_info: Any = None,
) -> np.ndarray:
    b = _block_index(block_info)
    roles = np.full(len(rows), UNUSED, dtype=np.int8)
    if len(rows):
        order = block_rng(entropy, _SHUFFLE_SPLIT_STREAM, split, int(rows[0])).permutation(len(rows))
        roles[order[: n_test[b]]] = TEST
        roles[order[n_test[b] : n_test[b] + n_train[b]]] = TRAIN
    return roles


def _split_sizes(n: int, test_size: Any, train_size: Any, default_test_size: float) -> tuple[int, int]:
    """scikit-learn's rule for the train and test sizes of a random split of ``n`` rows."""
    if test_size is None and train_size is None:
        test_size = default_test_size
    for name, value in (("test_size", test_size), ("train_size", train_size)):
        if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and not 0 < value < 1:
            msg = f"{name}={value} should be a float in the (0, 1) range or an int in [1, {n - 1}]."
            raise ValueError(msg)
        if isinstance(value, numbers.Integral) and not 0 < value < n:
            msg = f"{name}={value} should be in the range [1, {n - 1}] for {n} rows, or a float in (0, 1)."
            raise ValueError(msg)
    n_test = math.ceil(test_size * n) if isinstance(test_size, float) else test_size
    n_train = math.floor(train_size * n) if isinstance(train_size, float) else train_size
    if train_size is None:
        n_train = n - n_test
    elif test_size is None:
        n_test = n - n_train
    if n_train + n_test > n:
        msg = (
            f"The sum of train_size and test_size ({n_train} + {n_test} rows) is more than the {n} rows. "
            "Reduce test_size and/or train_size."
        )
        raise ValueError(msg)
    if n_train == 0:
        msg = f"With n_samples={n}, test_size={test_size} and train_size={train_size} the train set is empty."
        raise ValueError(msg)
    return int(n_train), int(n_test)


@register_trusted_type  # a saved search holds its cv: plain parameters, no code runs when it is rebuilt
class ShuffleSplit(sk.ShuffleSplit):
    """Random train/test splits over row blocks: :class:`sklearn.model_selection.ShuffleSplit` for dask arrays.

    On in-memory input the splits are scikit-learn's. On a dask array the train and test rows are shared out
    among the blocks in proportion to their sizes (largest remainders) and drawn at random within each block,
    next to it; the set sizes are scikit-learn's.

    Parameters
    ----------
    n_splits : int, default=10
        Number of splits.
    test_size : float or int, default=None
        Fraction (float) or number (int) of test rows; ``None`` is the complement of ``train_size``, or 0.1
        when both are ``None``.
    train_size : float or int, default=None
        Fraction or number of train rows; ``None`` is the complement of the test rows.
    random_state : int, numpy.random.RandomState or None, default=None
        Seed of the draws.

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.model_selection import ShuffleSplit
    >>> [len(test) for _, test in ShuffleSplit(n_splits=2, test_size=0.3, random_state=0).split(np.zeros((10, 1)))]
    [3, 3]
    """

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[Any, Any]]:
        """Generate the (train, test) rows of every split.

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)
        y : {array-like, dask array} of shape (n_samples,), default=None
            Not used to choose the rows.
        groups : None
            Accepted for compatibility with scikit-learn; must be ``None``.

        Yields
        ------
        train, test : ndarray of int or dask.array.Array of bool
            In-memory input: scikit-learn's row indices. Dask input: lazy boolean row masks chunked like
            ``X``'s rows (rows in neither set are ``False`` in both).
        """
        if not is_dask_collection(X):
            yield from super().split(X, y, groups)
            return
        for fold in self._dask_folds(X, y):
            yield fold.masks()

    def _dask_folds(self, X: Any, y: Any = None) -> list[Fold]:
        chunks = _row_chunks(X)
        sizes = np.asarray(chunks, dtype=np.int64)
        n_train, n_test = _split_sizes(int(sizes.sum()), self.test_size, self.train_size, _DEFAULT_TEST_SIZE)
        test = apportion(n_test, sizes)
        train = apportion(n_train, sizes - test)
        entropy = root_entropy(self.random_state, self)
        rows = _row_index(chunks)
        return [
            Fold(
                rows.map_blocks(
                    _shuffle_split_roles_block,
                    split,
                    test,
                    train,
                    entropy,
                    dtype=np.int8,
                    token=f"daskml-cv-shuffle-split-{split}",
                ),
                tuple(train.tolist()),
                tuple(test.tolist()),
            )
            for split in range(self.n_splits)
        ]
