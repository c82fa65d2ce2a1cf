"""Blocked ordinal encoding: :class:`OrdinalEncoder`."""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from daskml_lab.base import Options
from daskml_lab.data import check_array
from daskml_lab.preprocessing._categories import (
    _ENCODER_CONSTRAINTS,
    INFREQUENT_NAME,
    _BaseEncoder,
    codes_block,
    has_missing,
    shared_tables,
    unknown_error,
)
from daskml_lab.preprocessing._docs import fill_doc

__all__ = ["OrdinalEncoder"]


def _ordinal_block(
    block: np.ndarray,
    tables: tuple[list[tuple[Any, int]], list[np.ndarray]],
    raise_unknown: bool,
    unknown_value: float,
    dtype: Any,
) -> np.ndarray:
    lookups, values = tables
    result = np.empty((block.shape[0], len(lookups)), dtype=dtype)
    for j, code in enumerate(codes_block(block, lookups)):
        if raise_unknown and np.any(code < 0):
            raise unknown_error(block, code, j)
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


@fill_doc
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
    %(fitted_features)s

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
            if has_missing(categories):
                values[-1] = self.encoded_missing_value
            n_codes = len(np.unique(layout[:-1] if has_missing(categories) else layout))
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
            if isinstance(self.encoded_missing_value, numbers.Integral) and has_missing(categories):
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
            shared_tables(self._lookups(), self._values),
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
