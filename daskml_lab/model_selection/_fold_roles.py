"""All the folds of a splitter as one lazy role matrix, for the estimators that evaluate every fold in one pass.

The regularisation paths (:class:`LogisticRegressionCV`, :class:`RidgeCV`, ...) read the data once per pass for
all the folds, so they need every row's role in every fold side by side: an int8 matrix of shape
``(n_samples, n_folds)`` chunked like the rows (``0`` train, ``1`` test, ``2`` neither).
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
from dask.base import is_dask_collection

from daskml_lab.model_selection._execution import dask_folds
from daskml_lab.model_selection._folds import TEST, TRAIN, UNUSED, Fold

__all__ = ["fold_role_matrix"]


def _roles_of(fold: Any, chunks: tuple[int, ...]) -> da.Array:
    if isinstance(fold, Fold):
        return fold.roles
    train, test = fold.rows[TRAIN], fold.rows[TEST]
    if is_dask_collection(train) or is_dask_collection(test):
        # lazy boolean masks from another splitter: roles computed next to the blocks
        train = da.asarray(train).rechunk({0: chunks})
        test = da.asarray(test).rechunk({0: chunks})
        return da.where(train, TRAIN, da.where(test, TEST, UNUSED)).astype(np.int8)
    # row indices (or masks) of a scikit-learn splitter or a list: a small int8 vector made here
    roles = np.full(sum(chunks), UNUSED, dtype=np.int8)
    roles[np.asarray(train)] = TRAIN
    roles[np.asarray(test)] = TEST
    return da.from_array(roles, chunks=(chunks,))


def fold_role_matrix(cv: Any, X: da.Array, y: Any, groups: Any = None) -> da.Array:
    """The role of every row in every fold of ``cv``: lazy int8 of shape (n_samples, n_folds).

    Parameters
    ----------
    cv : splitter or list of (train, test)
        From :func:`~daskml_lab.model_selection._execution.check_cv`.
    X : dask.array.Array
        Row-chunked data with known chunk sizes.
    y : dask.array.Array or None
        The target (stratified splitters read it).
    groups : array-like or None, default=None

    Returns
    -------
    dask.array.Array
        Chunked like ``X``'s rows, one column chunk.

    Raises
    ------
    ValueError
        When ``cv`` gives fewer than two folds.
    """
    chunks = tuple(int(c) for c in X.chunks[0])
    folds = dask_folds(cv, X, y, groups)
    if len(folds) < 2:
        msg = f"cv gives {len(folds)} fold(s); a cross-validated path needs at least 2 (e.g. cv=5)."
        raise ValueError(msg)
    columns = [_roles_of(fold, chunks).rechunk({0: chunks}) for fold in folds]
    return da.stack(columns, axis=1).rechunk({1: -1})
