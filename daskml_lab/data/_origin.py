"""The record of where an input came from: :class:`InputOrigin`.

It lives in a module of its own, which imports nothing of the package, so that the converters
(:mod:`daskml_lab.data._convert`) and the xarray layer (:mod:`daskml_lab.data._xarray`) can both use it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["InputOrigin", "Kind"]

Kind = Literal["numpy", "sparse", "dask", "pandas", "dask-dataframe", "xarray"]


@dataclass(frozen=True)
class InputOrigin:
    """Where an input came from, so that outputs can be returned in the same form.

    Attributes
    ----------
    kind : str
        One of ``"numpy"``, ``"sparse"``, ``"dask"``, ``"pandas"``, ``"dask-dataframe"``, ``"xarray"``.
    feature_names : ndarray of str or None
        Column names of a DataFrame (or the feature coordinate of an xarray object).
    index : pandas.Index or None
        The row index of a pandas input, used to label pandas outputs.
    xarray : object or None
        For xarray inputs, the :class:`daskml_lab.data._xarray_stack.XarraySamples` describing the sample
        dimensions, their coordinates and which samples were masked.
    """

    kind: Kind
    feature_names: np.ndarray | None = None
    index: Any = None
    xarray: Any = field(default=None, repr=False)

    @property
    def is_eager(self) -> bool:
        """Whether the user gave in-memory data (and therefore expects in-memory results)."""
        return self.kind in ("numpy", "sparse", "pandas")
