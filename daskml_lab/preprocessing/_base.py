"""The fitting protocol every transformer of :mod:`daskml_lab.preprocessing` follows, and its shared helpers.

A transformer's ``fit`` is three steps, so that a column transformer can fit the statistics of all its
children in one :func:`dask.compute`:

``_fit_plan(X) -> dict``
    Validate ``X`` and return the *lazy* statistics (dask objects, or plain values needing no computation).
    Nothing is computed.
``dask.compute(plan)``
    One computation: every statistic is a tree reduction (chunk, combine, aggregate) over the row blocks, so
    only model-sized results reach the client.
``_fit_finish(X, statistics) -> self``
    Set the fitted attributes from the computed statistics.

Every transformer of the package fits in a single stage (no statistic needs another one first), so a column
transformer may always merge their plans.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import dask
import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp
from dask.base import tokenize
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from daskml_lab._runtime.watched_compute import watched_compute
from daskml_lab.base import DaskMLEstimator
from daskml_lab.data import InputOrigin, check_array, is_dask_dataframe, to_dask_array
from daskml_lab.monitoring import fit_span

__all__ = ["BlockedTransformer", "feature_names_of", "is_numeric_column", "row_blocks", "tree_reduce"]

#: How many partial results one combine task merges (the fan-in of the reduction tree).
_SPLIT_EVERY = 8


def row_blocks(X: da.Array) -> list[Any]:
    """The row blocks of a row-chunked dask array (one column chunk) as delayed objects, in row order."""
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    return list(X.to_delayed(optimize_graph=False).ravel())


def tree_reduce(
    blocks: Sequence[Any],
    chunk: Callable[..., Any],
    combine: Callable[[list[Any]], Any],
    aggregate: Callable[[Any], Any],
    *,
    name: str,
    **kwargs: Any,
) -> Any:
    """A lazy tree reduction over row blocks: ``chunk`` per block, ``combine`` in groups, ``aggregate`` once.

    Parameters
    ----------
    blocks : sequence of Delayed
        The row blocks (see :func:`row_blocks`).
    chunk : callable
        ``chunk(block, **kwargs) -> partial`` (a small dict), run where the block lives.
    combine : callable
        ``combine(list_of_partials) -> partial``.
    aggregate : callable
        ``aggregate(partial) -> statistic``.
    name : str
        Task prefix: tasks appear as ``daskml-<name>-chunk``, ``-combine`` and ``-agg`` on the dashboard.
    **kwargs
        Small keyword arguments of ``chunk`` (never data).

    Returns
    -------
    Delayed
        The statistic, lazily.
    """
    token = tokenize(name, [getattr(b, "key", b) for b in blocks], kwargs)
    level = [
        dask.delayed(chunk, pure=True)(block, **kwargs, dask_key_name=f"daskml-{name}-chunk-{token}-{i}")
        for i, block in enumerate(blocks)
    ]
    depth = 0
    while len(level) > 1:
        depth += 1
        level = [
            dask.delayed(combine, pure=True)(
                level[i : i + _SPLIT_EVERY], dask_key_name=f"daskml-{name}-combine-{token}-{depth}-{i}"
            )
            for i in range(0, len(level), _SPLIT_EVERY)
        ]
    return dask.delayed(aggregate, pure=True)(level[0], dask_key_name=f"daskml-{name}-agg-{token}")


def feature_names_of(X: Any) -> np.ndarray | None:
    """Column names of a pandas or dask DataFrame when all are strings (scikit-learn's rule), else ``None``."""
    columns = getattr(X, "columns", None)
    if columns is None or getattr(X, "ndim", 2) != 2:
        return None
    names = list(columns)
    if names and all(isinstance(n, str) for n in names):
        return np.asarray(names, dtype=object)
    if any(isinstance(n, str) for n in names):
        msg = (
            "Feature names are only supported if all input features have string names, but your input has "
            f"{sorted({type(n).__name__ for n in names})} as feature name / column name types. Convert them "
            "all to strings, e.g. X.columns = X.columns.astype(str)."
        )
        raise TypeError(msg)
    return None


class BlockedTransformer(TransformerMixin, DaskMLEstimator):
    """Base class of the blocked transformers: ``fit`` = ``_fit_plan``, one ``dask.compute``, ``_fit_finish``.

    Subclasses implement ``_fit_plan``, ``_fit_finish`` and ``transform``.
    """

    #: Whether NaN may appear in the input (as missing values to skip or impute).
    _allow_nan: ClassVar[bool] = True

    def fit(self, X: Any, y: Any = None) -> BlockedTransformer:
        """Fit the transformer's statistics in one blocked pass over ``X``.

        Parameters
        ----------
        X : {array-like, dask array, DataFrame, dask DataFrame} of shape (n_samples, n_features)
            The data.
        y : None
            Accepted so that the transformer can stand in a :class:`sklearn.pipeline.Pipeline`; the statistics
            come from ``X`` alone.

        Returns
        -------
        self
            The fitted transformer.

        Notes
        -----
        One :func:`dask.compute` of per-feature statistics (a few vectors of length ``n_features``, or the
        categories of each column); the data stay on the workers.
        """
        plan = self._fit_plan(X)
        with fit_span(type(self).__name__):
            # compute: per-feature statistics only (vectors of n_features, category counts)
            (statistics,) = watched_compute(plan, what=f"the statistics of {type(self).__name__}")
        return self._fit_finish(X, statistics)

    def _fit_plan(self, X: Any) -> dict[str, Any]:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _fit_finish(self, X: Any, statistics: dict[str, Any]) -> BlockedTransformer:  # pragma: no cover
        raise NotImplementedError

    # ---- input ------------------------------------------------------------------------------------------

    def _numeric_input(
        self, X: Any, *, fitting: bool, check_names: bool = True
    ) -> tuple[da.Array, InputOrigin]:
        """``X`` as a row-chunked float dask array (NaN allowed when the class allows it); nothing computed.

        ``check_names=False`` is for ``inverse_transform``, whose input is our own output.
        """
        if fitting:
            self._validate_params()
        else:
            check_is_fitted(self)
            if check_names:
                self._check_names(X)
        array, origin = check_array(
            X, allow_nan=self._allow_nan, accept_sparse=False, known_chunks=False, ensure_min_samples=1
        )
        if fitting:
            self._record_features(X, array.shape[1])
        else:
            self._check_n_features(array.shape[1])
        return array, origin

    def _table_input(self, X: Any, *, fitting: bool) -> tuple[da.Array, InputOrigin, list[np.dtype]]:
        """``X`` as a row-chunked dask array of any dtype (object for text columns) and each column's dtype."""
        if fitting:
            self._validate_params()
        else:
            check_is_fitted(self)
            self._check_names(X)
        if sp.issparse(X) or (isinstance(X, da.Array) and sp.issparse(X._meta)):
            msg = (
                f"{type(self).__name__} does not accept sparse input: sparse data is not supported by the "
                "encoders. Pass a dense array or a DataFrame (e.g. X.toarray())."
            )
            raise TypeError(msg)
        if isinstance(X, list | tuple):
            X = np.asarray(X, dtype=object) if _mixed(X) else np.asarray(X)
        array, origin = to_dask_array(X, known_chunks=False)
        if array.ndim != 2:
            msg = (
                f"Expected a 2-D array of shape (n_samples, n_features), got {array.ndim}-D input of shape "
                f"{array.shape}. Reshape your data with X.reshape(-1, 1) if it has a single feature."
            )
            raise ValueError(msg)
        if not math.isnan(array.shape[0]) and array.shape[0] < 1:
            msg = (
                f"Found array with 0 sample(s) (shape={array.shape}) while a minimum of 1 is required. Check "
                "the filter or split that produced X."
            )
            raise ValueError(msg)
        if array.shape[1] < 1:
            msg = (
                f"Found array with 0 feature(s) (shape={array.shape}) while a minimum of 1 is required. Check "
                "the columns selected for this transformer."
            )
            raise ValueError(msg)
        if array.dtype.kind == "c":
            msg = f"Complex data not supported: X has dtype {array.dtype}. Use the real part or split it."
            raise ValueError(msg)
        if array.numblocks[1] != 1:
            array = array.rechunk({1: -1})
        if isinstance(X, pd.DataFrame) or is_dask_dataframe(X):
            dtypes = [np.dtype(object) if not is_numeric_column(dt) else np.dtype(dt) for dt in X.dtypes]
        else:
            dtypes = [array.dtype] * array.shape[1]
        if fitting:
            self._record_features(X, array.shape[1])
        else:
            self._check_n_features(array.shape[1])
        return array, origin, dtypes

    def _record_features(self, X: Any, n_features: int) -> None:
        self.n_features_in_ = int(n_features)
        names = feature_names_of(X)
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _check_n_features(self, n_features: int) -> None:
        if n_features != self.n_features_in_:
            msg = (
                f"X has {n_features} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                "features as input. Pass data with the same columns as in fit."
            )
            raise ValueError(msg)

    def _check_names(self, X: Any) -> None:
        """scikit-learn's feature-name rule: a warning when names appear or vanish, an error when they differ."""
        fitted = getattr(self, "feature_names_in_", None)
        given = feature_names_of(X)
        name = type(self).__name__
        if fitted is None and given is None:
            return
        if fitted is not None and given is None:
            warnings.warn(
                f"X does not have valid feature names, but {name} was fitted with feature names",
                UserWarning,
                stacklevel=3,
            )
            return
        if fitted is None:
            warnings.warn(
                f"X has feature names, but {name} was fitted without feature names", UserWarning, stacklevel=3
            )
            return
        if len(fitted) != len(given) or np.any(fitted != given):
            unexpected = sorted(set(given) - set(fitted))
            missing = sorted(set(fitted) - set(given))
            detail = ""
            if unexpected:
                detail += f"\nFeature names unseen at fit time: {unexpected[:10]}"
            if missing:
                detail += f"\nFeature names seen at fit time, yet now missing: {missing[:10]}"
            if not detail:
                detail = "\nFeature names must be in the same order as they were in fit."
            msg = "The feature names should match those that were passed during fit." + detail
            raise ValueError(msg)

    def _input_names(self, input_features: Any = None) -> np.ndarray:
        """scikit-learn's ``input_features`` rule for ``get_feature_names_out``."""
        check_is_fitted(self, "n_features_in_")
        fitted = getattr(self, "feature_names_in_", None)
        if input_features is None:
            if fitted is not None:
                return np.asarray(fitted, dtype=object)
            return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        names = np.asarray(input_features, dtype=object)
        if len(names) != self.n_features_in_:
            msg = (
                f"input_features should have length equal to number of features ({self.n_features_in_}), "
                f"got {len(names)}"
            )
            raise ValueError(msg)
        if fitted is not None and np.any(names != fitted):
            msg = "input_features is not equal to feature_names_in_"
            raise ValueError(msg)
        return names

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allow_nan
        tags.requires_fit = True
        return tags


def is_numeric_column(dtype: Any) -> bool:
    """Whether a DataFrame column of this dtype holds numbers (pandas ``category`` columns do not count)."""
    return pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)


def _mixed(rows: Any) -> bool:
    """Whether nested lists hold strings (they then become an object array, as scikit-learn reads them)."""
    return any(isinstance(v, str) for row in rows for v in (row if isinstance(row, list | tuple) else [row]))
