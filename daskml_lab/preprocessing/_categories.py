"""What both categorical encoders share: category counts, ``categories_``, infrequent categories, codes.

Both encoders are fitted by one tree reduction of per-column category counts (missing values counted apart).
Columns may be numeric, text (object or pandas string) or pandas ``category``; a column's missing values
(``None``, ``NaN``, ``pd.NA``) are one category, ``NaN``, placed last in ``categories_``, as in scikit-learn.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import dask
import numpy as np
import pandas as pd

from daskml_lab.base import Interval, Options
from daskml_lab.preprocessing._base import BlockedTransformer, row_blocks, tree_reduce
from daskml_lab.preprocessing._statistics import _counts_agg, _counts_chunk, _counts_combine, _is_missing

__all__ = ["INFREQUENT_NAME", "codes_block", "has_missing", "shared_tables", "unknown_error"]

#: Output name of the column (or code) that collects a feature's infrequent categories.
INFREQUENT_NAME = "infrequent_sklearn"


def codes_block(block: np.ndarray, lookups: list[tuple[Any, int]]) -> list[np.ndarray]:
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


def shared_tables(*tables: Any) -> Any:
    """The encoding tables as one delayed object: they enter the graph once, not once per block."""
    return dask.delayed(tables, pure=True, traverse=False)


def unknown_error(block: np.ndarray, code: np.ndarray, j: int) -> ValueError:
    values = pd.unique(np.asarray(block)[code < 0, j])[:5].tolist()
    msg = (
        f"Found unknown categories {values} in column {j} during transform. Pass handle_unknown='ignore' (or "
        "'infrequent_if_exist'; for OrdinalEncoder handle_unknown='use_encoded_value' with unknown_value=...) "
        "to encode unseen categories instead of refusing them."
    )
    return ValueError(msg)


class _BaseEncoder(BlockedTransformer):
    """Category counting, ``categories_`` and infrequent categories shared by both encoders."""

    #: Whether missing values take part in the infrequent-category rule (one-hot: yes; ordinal: no).
    _missing_can_be_infrequent: ClassVar[bool] = True

    def _fit_plan(self, X: Any) -> dict[str, Any]:
        array, _, dtypes = self._table_input(X, fitting=True)
        self._check_encoder_params()
        # plain strings: saved models hold no dtype objects
        self._column_dtypes = [np.dtype(d).str for d in dtypes]
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
                    np.any(index < 0) or (n_missing and not has_missing(categories))
                ):
                    unknown = values[index < 0].tolist() + (
                        [np.nan] if n_missing and not has_missing(categories) else []
                    )
                    msg = (
                        f"Found unknown categories {unknown[:5]} in column {j} during fit. Add them to "
                        "categories, or pass handle_unknown='ignore'."
                    )
                    raise ValueError(msg)
                counts = np.zeros(len(categories), dtype=np.int64)
                np.add.at(counts, index[index >= 0], frequencies[index >= 0])
                if has_missing(categories):
                    counts[-1] = n_missing
            self.categories_.append(categories)
            self._category_counts.append(counts)
        self._n_rows = counted["n_rows"]
        self._fit_infrequent()

    def _lookups(self) -> list[tuple[pd.Index, int]]:
        """Per feature: an index of the known non-missing categories, and the position of the missing one."""
        return [
            (pd.Index(_without_missing(c)), len(c) - 1 if has_missing(c) else -1) for c in self.categories_
        ]

    def _infrequent_enabled(self) -> bool:
        return self.min_frequency is not None or self.max_categories is not None

    def _fit_infrequent(self) -> None:
        """scikit-learn's rule: below ``min_frequency``, then the least frequent beyond ``max_categories - 1``."""
        self._infrequent_indices = []
        for categories, counts in zip(self.categories_, self._category_counts, strict=True):
            candidates = np.arange(len(categories))
            if not self._missing_can_be_infrequent and has_missing(categories):
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
        infrequent output (which comes after the frequent ones).

        When missing values cannot be infrequent (ordinal codes), the missing category is left out of the
        numbering (its entry is -1): it has a code of its own, ``encoded_missing_value``.
        """
        categories = self.categories_[j]
        n = len(categories)
        infrequent = self._infrequent_indices[j]
        if infrequent is None:
            return np.arange(n), False
        numbered = n - 1 if not self._missing_can_be_infrequent and has_missing(categories) else n
        frequent = np.setdiff1d(np.arange(numbered), infrequent)
        layout = np.full(n, -1, dtype=np.int64)
        layout[frequent] = np.arange(len(frequent))
        layout[infrequent] = len(frequent)
        return layout, True


def _without_missing(categories: np.ndarray) -> np.ndarray:
    return categories[:-1] if has_missing(categories) else categories


def has_missing(categories: np.ndarray) -> bool:
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
