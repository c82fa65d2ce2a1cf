"""Blocked categorical encoders: :class:`OneHotEncoder` and :class:`OrdinalEncoder`.

Both are fitted by one tree reduction of per-column category counts (missing values counted apart) and
encode block by block. Columns may be numeric, text (object or pandas string) or pandas ``category``; a
column's missing values (``None``, ``NaN``, ``pd.NA``) are one category, ``NaN``, placed last in
``categories_``, as in scikit-learn.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from daskml_lab.base import Interval, Options
from daskml_lab.data import check_array
from daskml_lab.preprocessing._base import BlockedTransformer, row_blocks, tree_reduce
from daskml_lab.preprocessing._statistics import _counts_agg, _counts_chunk, _counts_combine, _is_missing

__all__ = ["OneHotEncoder", "OrdinalEncoder"]

#: Output name of the column (or code) that collects a feature's infrequent categories.
INFREQUENT_NAME = "infrequent_sklearn"


def _codes_block(
    block: np.ndarray, lookups: list[tuple[Any, int]], column_offset: int = 0
) -> list[np.ndarray]:
    """Per column: the index of each value in ``categories_`` (the missing category included); -1 if unknown.

    ``lookups[j]`` is ``(pandas Index of the known non-missing categories, index of the missing category or -1)``.
    """
    block = np.asarray(block)
    codes = []
    for j, (index, missing_code) in enumerate(lookups):
        column = block[:, j]
        missing = _is_missing(column)
        code = np.full(len(column), -1, dtype=np.int64)
        if np.any(~missing):
            code[~missing] = index.get_indexer(column[~missing])
        code[missing] = missing_code
        codes.append(code)
    return codes


def _unknown_error(block: np.ndarray, code: np.ndarray, j: int) -> ValueError:
    values = pd.unique(np.asarray(block)[code < 0, j])[:5].tolist()
    msg = (
        f"Found unknown categories {values} in column {j} during transform. Pass handle_unknown='ignore' (or "
        "'infrequent_if_exist'; for OrdinalEncoder handle_unknown='use_encoded_value' with unknown_value=...) "
        "to encode unseen categories instead of refusing them."
    )
    return ValueError(msg)


def _one_hot_block(
    block: np.ndarray,
    lookups: list[tuple[Any, int]],
    positions: list[np.ndarray],
    unknown_positions: list[int],
    n_out: int,
    raise_unknown: bool,
    sparse_output: bool,
    dtype: Any,
) -> Any:
    n_rows = block.shape[0]
    rows, cols = [], []
    for j, code in enumerate(_codes_block(block, lookups)):
        if raise_unknown and np.any(code < 0):
            raise _unknown_error(block, code, j)
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


def _ordinal_block(
    block: np.ndarray,
    lookups: list[tuple[Any, int]],
    values: list[np.ndarray],
    raise_unknown: bool,
    unknown_value: float,
    dtype: Any,
) -> np.ndarray:
    result = np.empty((block.shape[0], len(lookups)), dtype=dtype)
    for j, code in enumerate(_codes_block(block, lookups)):
        if raise_unknown and np.any(code < 0):
            raise _unknown_error(block, code, j)
        result[:, j] = np.append(values[j], unknown_value)[code]
    return result


def _ordinal_inverse_block(
    block: np.ndarray, categories: list[np.ndarray], codes: list[np.ndarray]
) -> np.ndarray:
    result = np.empty(block.shape, dtype=object)
    for j in range(block.shape[1]):
        column = block[:, j]
        out = np.full(len(column), None, dtype=object)
        for value, category in zip(codes[j], categories[j], strict=True):
            match = np.isnan(column) if np.isnan(value) else column == value
            out[match] = category
        result[:, j] = out
    return result


class _BaseEncoder(BlockedTransformer):
    """Category counting, ``categories_`` and infrequent categories shared by both encoders."""

    #: Whether missing values take part in the infrequent-category rule (one-hot: yes; ordinal: no).
    _missing_can_be_infrequent: ClassVar[bool] = True

    def _fit_plan(self, X: Any) -> dict[str, Any]:
        array, _, dtypes = self._table_input(X, fitting=True)
        self._check_encoder_params()
        self._column_dtypes = [
            np.dtype(d).str for d in dtypes
        ]  # plain strings: saved models hold no dtype objects
        counts = tree_reduce(
            row_blocks(array), _counts_chunk, _counts_combine, _counts_agg, name="encoder-counts"
        )
        return {"counts": counts}

    def _check_encoder_params(self) -> None:
        if self.categories != "auto" and len(self.categories) != self.n_features_in_:
            msg = (
                f"Shape mismatch: if categories is an array, it has to be of shape (n_features,) = "
                f"({self.n_features_in_},); got {len(self.categories)} lists of categories."
            )
            raise ValueError(msg)

    def _fit_categories(self, statistics: dict[str, Any]) -> None:
        counted = statistics["counts"]
        self.categories_, self._category_counts = [], []
        for j, (values, frequencies, n_missing) in enumerate(counted["columns"]):
            dtype = np.dtype(self._column_dtypes[j])
            if self.categories == "auto":
                categories = values if dtype.kind == "O" else np.asarray(values.tolist(), dtype=dtype)
                counts = frequencies
                if n_missing:
                    categories = np.append(
                        categories.astype(object if dtype.kind in "OUSb" else float), np.nan
                    )
                    counts = np.append(counts, n_missing)
            else:
                categories = np.asarray(self.categories[j])
                known = pd.Index(_without_missing(categories))
                index = known.get_indexer(values)
                if self.handle_unknown == "error" and (
                    np.any(index < 0) or (n_missing and not _has_missing(categories))
                ):
                    unknown = values[index < 0].tolist() + (
                        [np.nan] if n_missing and not _has_missing(categories) else []
                    )
                    msg = (
                        f"Found unknown categories {unknown[:5]} in column {j} during fit. Add them to "
                        "categories, or pass handle_unknown='ignore'."
                    )
                    raise ValueError(msg)
                counts = np.zeros(len(categories), dtype=np.int64)
                np.add.at(counts, index[index >= 0], frequencies[index >= 0])
                if _has_missing(categories):
                    counts[-1] = n_missing
            self.categories_.append(categories)
            self._category_counts.append(counts)
        self._n_rows = counted["n_rows"]
        self._fit_infrequent()

    def _lookups(self) -> list[tuple[pd.Index, int]]:
        """Per feature: an index of the known non-missing categories, and the position of the missing one."""
        return [
            (pd.Index(_without_missing(c)), len(c) - 1 if _has_missing(c) else -1) for c in self.categories_
        ]

    def _infrequent_enabled(self) -> bool:
        return self.min_frequency is not None or self.max_categories is not None

    def _fit_infrequent(self) -> None:
        """scikit-learn's rule: below ``min_frequency``, then the least frequent beyond ``max_categories - 1``."""
        self._infrequent_indices = []
        for categories, counts in zip(self.categories_, self._category_counts, strict=True):
            candidates = np.arange(len(categories))
            if not self._missing_can_be_infrequent and _has_missing(categories):
                candidates = candidates[:-1]
            self._infrequent_indices.append(
                self._infrequent_of(counts[candidates]) if self._infrequent_enabled() else None
            )
        self.infrequent_categories_ = (
            [
                None if idx is None else c[idx]
                for c, idx in zip(self.categories_, self._infrequent_indices, strict=True)
            ]
            if self._infrequent_enabled()
            else None
        )
        if self.infrequent_categories_ is None:
            del self.infrequent_categories_

    def _infrequent_of(self, counts: np.ndarray) -> np.ndarray | None:
        if isinstance(self.min_frequency, numbers.Integral):
            mask = counts < self.min_frequency
        elif isinstance(self.min_frequency, numbers.Real):
            mask = counts < self.min_frequency * self._n_rows
        else:
            mask = np.zeros(len(counts), dtype=bool)
        n_current = len(counts) - mask.sum() + 1
        if self.max_categories is not None and self.max_categories < n_current:
            n_frequent = self.max_categories - 1
            if n_frequent == 0:
                mask[:] = True
            else:
                mask[np.argsort(counts, kind="mergesort")[:-n_frequent]] = True
        found = np.flatnonzero(mask)
        return found if found.size else None

    def _frequent_layout(self, j: int) -> tuple[np.ndarray, bool]:
        """Per category of column ``j``: its index among the column's outputs; and whether there is an
        infrequent output (which comes after the frequent ones)."""
        n = len(self.categories_[j])
        infrequent = self._infrequent_indices[j]
        layout = np.arange(n)
        if infrequent is None:
            return layout, False
        frequent = np.setdiff1d(np.arange(n), infrequent)
        layout = np.empty(n, dtype=np.int64)
        layout[frequent] = np.arange(len(frequent))
        layout[infrequent] = len(frequent)
        return layout, True


def _without_missing(categories: np.ndarray) -> np.ndarray:
    return categories[:-1] if _has_missing(categories) else categories


def _has_missing(categories: np.ndarray) -> bool:
    return len(categories) > 0 and bool(_is_missing(categories[-1:])[0])


_ENCODER_CONSTRAINTS: dict[str, list[Any]] = {
    "categories": [Options({"auto"}), list],
    "dtype": [type, np.dtype, str],
    "min_frequency": [
        Interval(numbers.Integral, 1, None, closed="left"),
        Interval(numbers.Real, 0, 1, closed="neither"),
        None,
    ],
    "max_categories": [Interval(numbers.Integral, 1, None, closed="left"), None],
}


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
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen in ``fit``, when they are all strings.

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
            self._lookups(),
            self._positions,
            self._unknown_positions,
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


class OrdinalEncoder(_BaseEncoder):
    """Encode categorical features as integer codes (in a float array), on row blocks.

    scikit-learn's :class:`sklearn.preprocessing.OrdinalEncoder` for dask arrays and pandas or dask
    DataFrames: the categories come from one blocked pass of counts; the transform is lazy. Unknown and
    missing values can be mapped to codes of their own instead of being refused.

    Parameters
    ----------
    categories : "auto" or list of array-like, default="auto"
        Categories per feature: found in the data, or given (each list sorted).
    dtype : numpy dtype, default=np.float64
        Output dtype.
    handle_unknown : {"error", "use_encoded_value"}, default="error"
        Refuse categories unseen in ``fit`` (when their block is computed), or encode them as ``unknown_value``.
    unknown_value : int or np.nan, default=None
        Code of unknown categories with ``handle_unknown="use_encoded_value"`` (required then).
    encoded_missing_value : int or np.nan, default=np.nan
        Code of missing values.
    min_frequency : int or float, default=None
        Categories seen fewer times (int) or in a smaller fraction of the rows (float) share one code,
        the last one.
    max_categories : int, default=None
        Most codes per feature, the infrequent code included.

    Attributes
    ----------
    categories_ : list of ndarray
        Categories of each feature (sorted; the missing category, NaN, last).
    infrequent_categories_ : list of ndarray or None
        Infrequent categories of each feature (only with ``min_frequency`` or ``max_categories``).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen in ``fit``, when they are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.preprocessing import OrdinalEncoder
    >>> X = np.array([["b"], ["a"], ["c"]], dtype=object)
    >>> enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(X)
    >>> enc.transform(np.array([["c"], ["z"]], dtype=object)).ravel()
    array([ 2., -1.])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_ENCODER_CONSTRAINTS,
        "handle_unknown": [Options({"error", "use_encoded_value"})],
        "unknown_value": [numbers.Integral, numbers.Real, None],
        "encoded_missing_value": [numbers.Integral, numbers.Real],
    }
    _missing_can_be_infrequent = False

    def __init__(
        self,
        *,
        categories: Any = "auto",
        dtype: Any = np.float64,
        handle_unknown: str = "error",
        unknown_value: float | None = None,
        encoded_missing_value: float = np.nan,
        min_frequency: float | None = None,
        max_categories: int | None = None,
    ) -> None:
        self.categories = categories
        self.dtype = dtype
        self.handle_unknown = handle_unknown
        self.unknown_value = unknown_value
        self.encoded_missing_value = encoded_missing_value
        self.min_frequency = min_frequency
        self.max_categories = max_categories

    def _check_encoder_params(self) -> None:
        super()._check_encoder_params()
        if self.handle_unknown == "use_encoded_value":
            value = self.unknown_value
            if (
                value is None
                or isinstance(value, bool)
                or not (isinstance(value, numbers.Integral) or np.isnan(value))
            ):
                msg = (
                    "unknown_value should be an integer or np.nan when handle_unknown is 'use_encoded_value', "
                    f"got {value!r}. Pass e.g. unknown_value=-1."
                )
                raise TypeError(msg)
        elif self.unknown_value is not None:
            msg = (
                "unknown_value should only be set when handle_unknown is 'use_encoded_value', got "
                f"{self.unknown_value!r}. Remove it, or pass handle_unknown='use_encoded_value'."
            )
            raise TypeError(msg)

    def _fit_finish(self, X: Any, statistics: dict[str, Any]) -> OrdinalEncoder:
        self._fit_categories(statistics)
        self._values = []
        for j, categories in enumerate(self.categories_):
            layout, _ = self._frequent_layout(j)
            values = layout.astype(np.float64)
            if _has_missing(categories):
                values[-1] = self.encoded_missing_value
            n_codes = len(np.unique(layout[:-1] if _has_missing(categories) else layout))
            if self.handle_unknown == "use_encoded_value" and isinstance(
                self.unknown_value, numbers.Integral
            ):
                if 0 <= self.unknown_value < n_codes:
                    msg = (
                        f"The used value for unknown_value {self.unknown_value} is one of the values already used "
                        f"for encoding the seen categories (0 to {n_codes - 1}). Pass a negative value or one "
                        "above the number of categories."
                    )
                    raise ValueError(msg)
            if isinstance(self.encoded_missing_value, numbers.Integral) and _has_missing(categories):
                if 0 <= self.encoded_missing_value < n_codes:
                    msg = (
                        f"encoded_missing_value ({self.encoded_missing_value}) is already used to encode a known "
                        f"category in feature {j}. Pass a negative value, np.nan, or one above {n_codes - 1}."
                    )
                    raise ValueError(msg)
            self._values.append(values)
        return self

    def transform(self, X: Any) -> Any:
        """Encode ``X`` block by block.

        Parameters
        ----------
        X : {array-like, dask array, DataFrame, dask DataFrame} of shape (n_samples, n_features)
            The data.

        Returns
        -------
        ndarray or dask array of shape (n_samples, n_features)
            Lazy (same row chunks) for dask input, numpy for in-memory input.

        Raises
        ------
        ValueError
            With ``handle_unknown="error"``, when a computed block holds a category unseen in ``fit``.
        """
        array, origin, _ = self._table_input(X, fitting=False)
        dtype = np.dtype(self.dtype)
        unknown = np.nan if self.unknown_value is None else self.unknown_value
        result = array.map_blocks(
            _ordinal_block,
            self._lookups(),
            self._values,
            self.handle_unknown == "error",
            unknown,
            dtype,
            dtype=dtype,
            chunks=(array.chunks[0], (self.n_features_in_,)),
            meta=np.empty((0, self.n_features_in_), dtype),
            token="daskml-ordinal",
        )
        return self._wrap_output(result, origin)

    def inverse_transform(self, X: Any) -> Any:
        """Codes back to categories (``None`` for unknown codes, ``"infrequent_sklearn"`` for infrequent ones).

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)
            Codes.

        Returns
        -------
        ndarray or dask array of object dtype and shape (n_samples, n_features)
            Lazy for dask input, numpy for in-memory input.
        """
        check_is_fitted(self)
        self._check_names(X)
        array, origin = _codes_input(self, X)
        categories, codes = [], []
        for j, cats in enumerate(self.categories_):
            labels = cats.astype(object).copy()
            if self._infrequent_indices[j] is not None:
                labels[self._infrequent_indices[j]] = INFREQUENT_NAME
            categories.append(labels)
            codes.append(self._values[j])
        result = array.map_blocks(
            _ordinal_inverse_block,
            categories,
            codes,
            dtype=object,
            meta=np.empty((0, 0), dtype=object),
            token="daskml-ordinal-inverse",
        )
        return self._wrap_output(result, origin)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output column names: the input names.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input names; ``feature_names_in_`` or ``x0, x1, ...`` when ``None``.

        Returns
        -------
        ndarray of str objects
        """
        return self._input_names(input_features)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags


def _codes_input(encoder: OrdinalEncoder, X: Any) -> tuple[Any, Any]:
    array, origin = check_array(X, allow_nan=True, accept_sparse=False, known_chunks=False)
    encoder._check_n_features(array.shape[1])
    return array, origin
