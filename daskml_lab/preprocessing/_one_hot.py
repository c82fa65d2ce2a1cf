"""Blocked one-hot encoding: :class:`OneHotEncoder`."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from daskml_lab.base import Options
from daskml_lab.data import check_array
from daskml_lab.preprocessing._categories import (
    _ENCODER_CONSTRAINTS,
    INFREQUENT_NAME,
    _BaseEncoder,
    codes_block,
    shared_tables,
    unknown_error,
)
from daskml_lab.preprocessing._docs import fill_doc

__all__ = ["OneHotEncoder"]


def _one_hot_block(
    block: np.ndarray,
    tables: tuple[list[tuple[Any, int]], list[np.ndarray], list[int]],
    n_out: int,
    raise_unknown: bool,
    sparse_output: bool,
    dtype: Any,
) -> Any:
    lookups, positions, unknown_positions = tables
    n_rows = block.shape[0]
    rows, cols = [], []
    for j, code in enumerate(codes_block(block, lookups)):
        if raise_unknown and np.any(code < 0):
            raise unknown_error(block, code, j)
        table = np.append(positions[j], unknown_positions[j])  # code -1 reads the last entry
        column = table[code]
        hit = column >= 0
        rows.append(np.flatnonzero(hit))
        cols.append(column[hit])
    row_index = np.concatenate(rows) if rows else np.array([], dtype=np.int64)
    col_index = np.concatenate(cols) if cols else np.array([], dtype=np.int64)
    data = np.ones(len(row_index), dtype=dtype)
    result = sp.csr_matrix((data, (row_index, col_index)), shape=(n_rows, n_out), dtype=dtype)
    result.sort_indices()
    return result if sparse_output else result.toarray()


@fill_doc
def _one_hot_inverse_block(
    block: Any, labels: list[np.ndarray], zero_labels: list[Any], allow_zero: bool, dtype: Any
) -> np.ndarray:
    result = np.empty((block.shape[0], len(labels)), dtype=dtype)
    start = 0
    for j, feature_labels in enumerate(labels):
        stop = start + len(feature_labels)
        part = block[:, start:stop]
        part = part.toarray() if sp.issparse(part) else np.asarray(part)
        hot = part.any(axis=1) if part.shape[1] else np.zeros(len(part), dtype=bool)
        column = np.empty(len(part), dtype=object)
        if part.shape[1]:
            column[hot] = feature_labels[np.argmax(part[hot], axis=1)]
        if zero_labels[j] is not None:
            column[~hot] = zero_labels[j]
        elif not allow_zero and not hot.all():
            msg = (
                f"Samples {np.flatnonzero(~hot)[:5].tolist()} can not be inverted when drop=None and "
                "handle_unknown='error' because they contain all zeros"
            )
            raise ValueError(msg)
        result[:, j] = column
        start = stop
    return result


class OneHotEncoder(_BaseEncoder):
    """Encode categorical features as a one-hot numeric array, on row blocks.

    scikit-learn's :class:`sklearn.preprocessing.OneHotEncoder` for dask arrays and pandas or dask
    DataFrames (numeric, text and ``category`` columns): the categories come from one blocked pass of counts;
    the transform is lazy and gives sparse CSR row blocks by default.

    Parameters
    ----------
    categories : "auto" or list of array-like, default="auto"
        Categories per feature: found in the data, or given (each list sorted, numeric values for numeric
        features).
    drop : {"first", "if_binary"} or None, default=None
        Drop one category per feature (``"first"``), or only of features with two categories.
    sparse_output : bool, default=True
        Whether the blocks are :class:`scipy.sparse.csr_matrix` (dense numpy otherwise).
    dtype : numpy dtype, default=np.float64
        Output dtype.
    handle_unknown : {"error", "ignore", "infrequent_if_exist"}, default="error"
        What a category unseen in ``fit`` becomes: an error when its block is computed, all zeros, or the
        feature's infrequent column (zeros when it has none).
    min_frequency : int or float, default=None
        Categories seen fewer times (int) or in a smaller fraction of the rows (float) are infrequent.
    max_categories : int, default=None
        Most output columns per feature, the infrequent column included.

    Attributes
    ----------
    categories_ : list of ndarray
        Categories of each feature in ``fit`` order (sorted; the missing category, NaN, last).
    drop_idx_ : ndarray of shape (n_features,) or None
        Index in ``categories_[i]`` of the dropped category of each feature (None: nothing dropped).
    infrequent_categories_ : list of ndarray or None
        Infrequent categories of each feature (only with ``min_frequency`` or ``max_categories``).
    %(fitted_features)s

    Examples
    --------
    >>> import pandas as pd
    >>> from daskml_lab.preprocessing import OneHotEncoder
    >>> enc = OneHotEncoder(sparse_output=False).fit(pd.DataFrame({"city": ["Oslo", "Lima", "Oslo"]}))
    >>> enc.get_feature_names_out().tolist()
    ['city_Lima', 'city_Oslo']
    >>> enc.transform(pd.DataFrame({"city": ["Oslo"]}))
    array([[0., 1.]])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_ENCODER_CONSTRAINTS,
        "drop": [Options({"first", "if_binary"}), None],
        "sparse_output": ["boolean"],
        "handle_unknown": [Options({"error", "ignore", "infrequent_if_exist"})],
    }

    def __init__(
        self,
        *,
        categories: Any = "auto",
        drop: str | None = None,
        sparse_output: bool = True,
        dtype: Any = np.float64,
        handle_unknown: str = "error",
        min_frequency: float | None = None,
        max_categories: int | None = None,
    ) -> None:
        self.categories = categories
        self.drop = drop
        self.sparse_output = sparse_output
        self.dtype = dtype
        self.handle_unknown = handle_unknown
        self.min_frequency = min_frequency
        self.max_categories = max_categories

    def _fit_finish(self, X: Any, statistics: dict[str, Any]) -> OneHotEncoder:
        self._fit_categories(statistics)
        self._positions, self._unknown_positions, self._names = [], [], []
        drop_idx = []
        offset = 0
        for j, categories in enumerate(self.categories_):
            layout, has_infrequent = self._frequent_layout(j)
            n_out = int(layout.max()) + 1 if len(layout) else 0
            dropped = None
            if self.drop == "first" or (self.drop == "if_binary" and len(categories) == 2):
                if has_infrequent:
                    msg = "drop= together with infrequent categories (min_frequency/max_categories) is not supported."
                    raise ValueError(msg)
                dropped = 0
            positions = layout.copy()
            if dropped is not None:
                positions = np.where(layout == dropped, -1, layout - (layout > dropped))
                n_out -= 1
            unknown = (
                offset + n_out - 1 if has_infrequent and self.handle_unknown == "infrequent_if_exist" else -1
            )
            self._positions.append(np.where(positions >= 0, positions + offset, -1))
            self._unknown_positions.append(unknown)
            names = [
                str(c)
                for i, c in enumerate(categories)
                if self._infrequent_indices[j] is None or i not in self._infrequent_indices[j]
            ]
            if has_infrequent:
                names.append(INFREQUENT_NAME)
            if dropped is not None:
                names.pop(dropped)
            self._names.append(names)
            drop_idx.append(dropped)
            offset += n_out
        self._n_out = offset
        self.drop_idx_ = None if self.drop is None else np.asarray(drop_idx, dtype=object)
        return self

    def transform(self, X: Any) -> Any:
        """One-hot encode ``X`` block by block.

        Parameters
        ----------
        X : {array-like, dask array, DataFrame, dask DataFrame} of shape (n_samples, n_features)
            The data.

        Returns
        -------
        {sparse matrix, ndarray, dask array} of shape (n_samples, n_encoded_features)
            CSR (``sparse_output=True``) or numpy for in-memory input; for dask input a lazy dask array of CSR
            (or numpy) row blocks with the input's row chunks.

        Raises
        ------
        ValueError
            With ``handle_unknown="error"``, when a computed block holds a category unseen in ``fit``.
        """
        array, origin, _ = self._table_input(X, fitting=False)
        dtype = np.dtype(self.dtype)
        meta = (
            sp.csr_matrix((0, self._n_out), dtype=dtype)
            if self.sparse_output
            else np.empty((0, self._n_out), dtype)
        )
        result = array.map_blocks(
            _one_hot_block,
            shared_tables(self._lookups(), self._positions, self._unknown_positions),
            self._n_out,
            self.handle_unknown == "error",
            self.sparse_output,
            dtype,
            dtype=dtype,
            chunks=(array.chunks[0], (self._n_out,)),
            meta=meta,
            token="daskml-one-hot",
        )
        output = self._wrap_output(result, origin)
        return sp.csr_matrix(output) if origin.is_eager and self.sparse_output else output

    def inverse_transform(self, X: Any) -> Any:
        """One-hot columns back to categories, block by block.

        A feature whose columns are all zero gives its dropped category (with ``drop``), or ``None`` (unknown
        categories with ``handle_unknown="ignore"`` or ``"infrequent_if_exist"``); its infrequent column gives
        ``"infrequent_sklearn"``.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_encoded_features)
            One-hot encoded data (dense or CSR blocks).

        Returns
        -------
        ndarray or dask array of shape (n_samples, n_features)
            Lazy for dask input, numpy for in-memory input; object dtype when ``None`` may appear.

        Raises
        ------
        ValueError
            When a computed block has a feature with all zeros that cannot be inverted (no ``drop`` and
            ``handle_unknown="error"``).
        """
        check_is_fitted(self)
        array, origin = check_array(X, accept_sparse=True, known_chunks=False)
        if array.shape[1] != self._n_out:
            msg = (
                f"X has {array.shape[1]} columns, but {type(self).__name__} encodes {self._n_out}. Pass the "
                "output of transform."
            )
            raise ValueError(msg)
        labels, zero_labels, allow_zero = self._output_labels()
        dtype = np.result_type(*[c.dtype for c in self.categories_])
        if (allow_zero and self.drop is None) or any(
            self._infrequent_indices[j] is not None for j in range(len(labels))
        ):
            dtype = np.dtype(object)
        result = array.map_blocks(
            _one_hot_inverse_block,
            labels,
            zero_labels,
            allow_zero,
            dtype,
            dtype=dtype,
            chunks=(array.chunks[0], (self.n_features_in_,)),
            meta=np.empty((0, self.n_features_in_), dtype=dtype),
            token="daskml-one-hot-inverse",
        )
        return self._wrap_output(result, origin)

    def _output_labels(self) -> tuple[list[np.ndarray], list[Any], bool]:
        """Per feature: the category of each output column, the category of an all-zero row, and whether an
        all-zero row is allowed."""
        labels, zero_labels = [], []
        for j, categories in enumerate(self.categories_):
            infrequent = self._infrequent_indices[j]
            frequent = [c for i, c in enumerate(categories) if infrequent is None or i not in infrequent]
            if infrequent is not None:
                frequent.append(INFREQUENT_NAME)
            dropped = None if self.drop_idx_ is None else self.drop_idx_[j]
            zero_labels.append(None if dropped is None else frequent.pop(dropped))
            labels.append(np.asarray(frequent, dtype=object))
        return labels, zero_labels, self.handle_unknown != "error"

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output column names, ``<feature>_<category>`` (``<feature>_infrequent_sklearn`` for infrequent).

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input names; ``feature_names_in_`` or ``x0, x1, ...`` when ``None``.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self)
        names = self._input_names(input_features)
        return np.asarray(
            [f"{name}_{c}" for name, cats in zip(names, self._names, strict=True) for c in cats], dtype=object
        )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags
