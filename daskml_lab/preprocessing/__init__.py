"""Preprocessing on row blocks: scalers, an imputer and categorical encoders.

scikit-learn's transformers, with its names, parameters and fitted attributes, for row-chunked dask arrays and
pandas or dask DataFrames (and numpy). Each is fitted by one blocked pass of per-column statistics (chunk,
combine, aggregate: no data reach the client) and transforms lazily, block by block: dask in, dask out with
the same row chunks; numpy or pandas in, numpy (or scipy sparse) out.

Every transformer follows the protocol of :class:`~daskml_lab.preprocessing._base.BlockedTransformer`
(``_fit_plan`` returns the lazy statistics, ``_fit_finish`` sets the fitted attributes), so that a column
transformer can fit all of its children in one :func:`dask.compute`.
"""

from daskml_lab.preprocessing._hashing import HashingEncoder
from daskml_lab.preprocessing._imputer import SimpleImputer
from daskml_lab.preprocessing._one_hot import OneHotEncoder
from daskml_lab.preprocessing._ordinal import OrdinalEncoder
from daskml_lab.preprocessing._scalers import MinMaxScaler, RobustScaler, StandardScaler

__all__ = [
    "HashingEncoder",
    "MinMaxScaler",
    "OneHotEncoder",
    "OrdinalEncoder",
    "RobustScaler",
    "SimpleImputer",
    "StandardScaler",
]
