"""Blocked scalers: :class:`StandardScaler`, :class:`MinMaxScaler` and :class:`RobustScaler`.

Each is fitted by one tree reduction of per-column statistics (moments, extremes or a quantile sketch) and
transforms block by block: dask in, dask out with the same row chunks; numpy or pandas in, numpy out.
Missing values (NaN) are skipped in ``fit`` and kept in ``transform``, as scikit-learn does.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np
from scipy import stats
from sklearn.base import OneToOneFeatureMixin

from daskml_lab.base import Interval
from daskml_lab.preprocessing._base import BlockedTransformer, row_blocks, tree_reduce
from daskml_lab.preprocessing._docs import fill_doc
from daskml_lab.preprocessing._statistics import (
    _minmax_agg,
    _minmax_chunk,
    _minmax_combine,
    _moments_agg,
    _moments_chunk,
    _moments_combine,
    _sketch_chunk,
    _sketch_combine,
    sketch_quantiles,
)

__all__ = ["MinMaxScaler", "RobustScaler", "StandardScaler"]


def _affine_block(block: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(block - offset) / scale`` in the block's own float dtype (one new array: the division is in place)."""
    result = np.subtract(block, offset)
    result /= scale
    return result.astype(block.dtype, copy=False)


def _inverse_affine_block(block: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (block * scale + offset).astype(block.dtype, copy=False)


def _handle_zeros(scale: np.ndarray) -> np.ndarray:
    """Scales that are (almost) zero become 1, as in scikit-learn: a constant feature is left unscaled."""
    scale = np.array(scale, dtype=np.float64, copy=True)
    eps = 10 * np.finfo(scale.dtype).eps
    scale[~np.isfinite(scale) | (np.abs(scale) < eps)] = 1.0
    return scale


class _AffineScaler(OneToOneFeatureMixin, BlockedTransformer):
    """A scaler whose transform is ``(X - offset) / scale`` with per-column ``offset`` and ``scale``."""

    _token: ClassVar[str] = "daskml-scale"

    def _offset_scale(self) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - subclasses override
        raise NotImplementedError

    def _apply(self, X: Any, kernel: Any, token: str, *, check_names: bool = True) -> Any:
        array, origin = self._numeric_input(X, fitting=False, check_names=check_names)
        offset, scale = self._offset_scale()
        result = array.map_blocks(kernel, offset, scale, dtype=array.dtype, token=token)
        return self._wrap_output(result, origin)

    def transform(self, X: Any) -> Any:
        """Scale ``X`` block by block.

        Parameters
        ----------
        X : {array-like, dask array, DataFrame, dask DataFrame} of shape (n_samples, n_features)
            The data; NaN stays NaN.

        Returns
        -------
        ndarray or dask array of shape (n_samples, n_features)
            Lazy (same row chunks) for dask input, numpy for in-memory input.
        """
        return self._apply(X, _affine_block, self._token)

    def inverse_transform(self, X: Any) -> Any:
        """Undo the scaling, block by block.

        Parameters
        ----------
        X : {array-like, dask array, DataFrame, dask DataFrame} of shape (n_samples, n_features)
            Scaled data.

        Returns
        -------
        ndarray or dask array of shape (n_samples, n_features)
            Lazy for dask input, numpy for in-memory input.
        """
        return self._apply(X, _inverse_affine_block, self._token + "-inverse", check_names=False)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


@fill_doc
class StandardScaler(_AffineScaler):
    """Standardize features by removing the mean and scaling to unit variance, on row blocks.

    scikit-learn's :class:`sklearn.preprocessing.StandardScaler` for dask arrays and DataFrames: the mean and
    variance of every column come from one blocked pass (per-block moments merged pairwise, numerically stable),
    and the transform is lazy.

    Parameters
    ----------
    %(copy)s
    with_mean : bool, default=True
        Whether to centre the data.
    with_std : bool, default=True
        Whether to scale to unit variance.

    Attributes
    ----------
    scale_ : ndarray of shape (n_features,) or None
        Per-feature scale (the standard deviation, 1 for constant features); ``None`` when ``with_std=False``.
    mean_ : ndarray of shape (n_features,) or None
        Per-feature mean; ``None`` when both ``with_mean`` and ``with_std`` are False.
    var_ : ndarray of shape (n_features,) or None
        Per-feature variance; ``None`` when ``with_std=False``.
    n_samples_seen_ : int or ndarray of shape (n_features,)
        Number of non-missing values per feature (an int when no value is missing).
    %(fitted_features)s

    See Also
    --------
    MinMaxScaler, RobustScaler

    Examples
    --------
    >>> import dask.array as da
    >>> from daskml_lab.preprocessing import StandardScaler
    >>> X = da.from_array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]], chunks=2)
    >>> scaler = StandardScaler().fit(X)
    >>> scaler.mean_
    array([3., 4.])
    >>> scaler.transform(X).chunks
    ((2, 2), (2,))
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "copy": ["boolean"],
        "with_mean": ["boolean"],
        "with_std": ["boolean"],
    }
    _token = "daskml-standard-scale"

    def __init__(self, *, copy: bool = True, with_mean: bool = True, with_std: bool = True) -> None:
        self.copy = copy
        self.with_mean = with_mean
        self.with_std = with_std

    def _fit_plan(self, X: Any) -> dict[str, Any]:
        array, _ = self._numeric_input(X, fitting=True)
        moments = tree_reduce(
            row_blocks(array), _moments_chunk, _moments_combine, _moments_agg, name="column-moments"
        )
        return {"moments": moments}

    def _fit_finish(self, X: Any, statistics: dict[str, Any]) -> StandardScaler:
        moments = statistics["moments"]
        count = moments["count"]
        self.n_samples_seen_ = int(count[0]) if np.all(count == count[0]) else count
        fit_any = self.with_mean or self.with_std
        self.mean_ = moments["mean"] if fit_any else None
        self.var_ = moments["var"] if self.with_std else None
        self.scale_ = _handle_zeros(np.sqrt(moments["var"])) if self.with_std else None
        return self

    def _offset_scale(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.n_features_in_
        offset = self.mean_ if self.with_mean else np.zeros(n)
        scale = self.scale_ if self.with_std else np.ones(n)
        return offset, scale


@fill_doc
class MinMaxScaler(_AffineScaler):
    """Scale each feature to a given range, on row blocks.

    scikit-learn's :class:`sklearn.preprocessing.MinMaxScaler`: the extremes of every column come from one
    blocked pass, and the transform is lazy.

    Parameters
    ----------
    feature_range : tuple (min, max), default=(0, 1)
        Desired range of the transformed data.
    %(copy)s
    clip : bool, default=False
        Whether to clip transformed values of held-out data to ``feature_range``.

    Attributes
    ----------
    min_ : ndarray of shape (n_features,)
        Per-feature adjustment for the minimum (``X * scale_ + min_``).
    scale_ : ndarray of shape (n_features,)
        Per-feature relative scaling.
    data_min_, data_max_, data_range_ : ndarray of shape (n_features,)
        Per-feature minimum, maximum and range seen in the data (NaN skipped).
    n_samples_seen_ : int
        Number of rows seen.
    %(fitted_features)s

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.preprocessing import MinMaxScaler
    >>> MinMaxScaler().fit_transform(np.array([[1.0], [3.0], [5.0]])).ravel()
    array([0. , 0.5, 1. ])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "feature_range": [tuple],
        "copy": ["boolean"],
        "clip": ["boolean"],
    }
    _token = "daskml-minmax-scale"

    def __init__(self, feature_range: tuple[float, float] = (0, 1), *, copy: bool = True, clip: bool = False):
        self.feature_range = feature_range
        self.copy = copy
        self.clip = clip

    def _fit_plan(self, X: Any) -> dict[str, Any]:
        low, high = self.feature_range
        if low >= high:
            msg = (
                "Minimum of desired feature range must be smaller than maximum. Got "
                f"{self.feature_range!r}; pass feature_range=(low, high) with low < high."
            )
            raise ValueError(msg)
        array, _ = self._numeric_input(X, fitting=True)
        extremes = tree_reduce(
            row_blocks(array), _minmax_chunk, _minmax_combine, _minmax_agg, name="minmax-scaler-extremes"
        )
        return {"extremes": extremes}

    def _fit_finish(self, X: Any, statistics: dict[str, Any]) -> MinMaxScaler:
        extremes = statistics["extremes"]
        low, high = self.feature_range
        self.data_min_ = extremes["min"]
        self.data_max_ = extremes["max"]
        self.data_range_ = self.data_max_ - self.data_min_
        self.scale_ = (high - low) / _handle_zeros(self.data_range_)
        self.min_ = low - self.data_min_ * self.scale_
        self.n_samples_seen_ = extremes["n_rows"]
        return self

    def _offset_scale(self) -> tuple[np.ndarray, np.ndarray]:
        # X * scale_ + min_ == (X - (-min_ / scale_)) / (1 / scale_)
        return -self.min_ / self.scale_, 1.0 / self.scale_

    def transform(self, X: Any) -> Any:
        """Scale ``X`` to ``feature_range`` block by block (see :meth:`_AffineScaler.transform`).

        Parameters
        ----------
        X : {array-like, dask array, DataFrame, dask DataFrame} of shape (n_samples, n_features)
            The data; NaN stays NaN.

        Returns
        -------
        ndarray or dask array of shape (n_samples, n_features)
            Lazy (same row chunks) for dask input, numpy for in-memory input.
        """
        array, origin = self._numeric_input(X, fitting=False)
        low, high = self.feature_range if self.clip else (None, None)
        result = array.map_blocks(
            _minmax_block, self.scale_, self.min_, low, high, dtype=array.dtype, token=self._token
        )
        return self._wrap_output(result, origin)


def _minmax_block(block: np.ndarray, scale: np.ndarray, shift: np.ndarray, low: Any, high: Any) -> np.ndarray:
    result = block * scale + shift
    if low is not None:
        result = np.clip(result, low, high)
    return result.astype(block.dtype, copy=False)


@fill_doc
class RobustScaler(_AffineScaler):
    """Scale features with statistics robust to outliers (median and interquantile range), on row blocks.

    scikit-learn's :class:`sklearn.preprocessing.RobustScaler`, with *approximate* quantiles from one blocked
    pass: every block summarises each column in a sketch of at most ``sketch_size`` weighted points, and the
    sketches are merged in a tree.

    Parameters
    ----------
    with_centering : bool, default=True
        Whether to subtract the median.
    with_scaling : bool, default=True
        Whether to divide by the interquantile range.
    quantile_range : tuple (q_min, q_max), 0.0 < q_min < q_max < 100.0, default=(25.0, 75.0)
        Quantile range used to compute ``scale_``, in percent.
    %(copy)s
    unit_variance : bool, default=False
        Whether to scale so that normally distributed features have a variance of 1.
    sketch_size : int, default=2000
        Points each column's quantile sketch keeps. Columns with at most this many values are summarised
        exactly (and give scikit-learn's numbers); longer ones give quantiles whose rank error is bounded by
        ``quantile_rank_error_``.

    Attributes
    ----------
    center_ : ndarray of shape (n_features,) or None
        Per-feature median; ``None`` without centering.
    scale_ : ndarray of shape (n_features,) or None
        Per-feature interquantile range (1 for constant features); ``None`` without scaling.
    quantile_rank_error_ : ndarray of shape (n_features,)
        A guaranteed bound, per feature, on the error of the quantiles used, as a fraction of the number of
        values: the returned value ranks within ``q +- quantile_rank_error_`` among the column's values (0 when
        the quantiles are exact).
    %(fitted_features)s

    Notes
    -----
    The rank error bound: compressing a sketch of total weight ``W`` to ``k = sketch_size`` points moves any
    estimated rank by at most ``W / (2k)``, and merging adds errors. Each block is compressed once and each of
    the ``L`` levels of the merge tree (fan-in 8) once more, so the bound is at most ``(L + 1) / (2k) + 1/k``:
    with the default ``k = 2000`` and up to 512 blocks (``L = 3``), 0.15 % of the rows.

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.preprocessing import RobustScaler
    >>> scaler = RobustScaler().fit(np.array([[1.0], [2.0], [3.0], [4.0], [100.0]]))
    >>> scaler.center_, scaler.scale_
    (array([3.]), array([2.]))
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "with_centering": ["boolean"],
        "with_scaling": ["boolean"],
        "quantile_range": [tuple],
        "copy": ["boolean"],
        "unit_variance": ["boolean"],
        "sketch_size": [Interval(numbers.Integral, 16, None, closed="left")],
    }
    _token = "daskml-robust-scale"

    def __init__(
        self,
        *,
        with_centering: bool = True,
        with_scaling: bool = True,
        quantile_range: tuple[float, float] = (25.0, 75.0),
        copy: bool = True,
        unit_variance: bool = False,
        sketch_size: int = 2000,
    ) -> None:
        self.with_centering = with_centering
        self.with_scaling = with_scaling
        self.quantile_range = quantile_range
        self.copy = copy
        self.unit_variance = unit_variance
        self.sketch_size = sketch_size

    def _fit_plan(self, X: Any) -> dict[str, Any]:
        q_min, q_max = self.quantile_range
        if not 0 <= q_min <= q_max <= 100:
            msg = f"Invalid quantile range: {self.quantile_range}; pass (q_min, q_max) with 0 <= q_min <= q_max <= 100."
            raise ValueError(msg)
        array, _ = self._numeric_input(X, fitting=True)
        sketch = tree_reduce(
            row_blocks(array),
            _sketch_chunk,
            _sketch_combine,
            _identity,
            name="robust-scaler-sketch",
            sketch_size=int(self.sketch_size),
        )
        return {"sketch": sketch}

    def _fit_finish(self, X: Any, statistics: dict[str, Any]) -> RobustScaler:
        q_min, q_max = self.quantile_range
        quantiles, bound = sketch_quantiles(statistics["sketch"], np.array([q_min, 50.0, q_max]) / 100.0)
        self.quantile_rank_error_ = bound
        self.center_ = quantiles[1] if self.with_centering else None
        if self.with_scaling:
            scale = _handle_zeros(quantiles[2] - quantiles[0])
            if self.unit_variance:
                scale = scale / (stats.norm.ppf(q_max / 100.0) - stats.norm.ppf(q_min / 100.0))
            self.scale_ = scale
        else:
            self.scale_ = None
        return self

    def _offset_scale(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.n_features_in_
        offset = self.center_ if self.with_centering else np.zeros(n)
        scale = self.scale_ if self.with_scaling else np.ones(n)
        return offset, scale


def _identity(part: Any) -> Any:
    return part
