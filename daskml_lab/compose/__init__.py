"""Transformers of table columns on row-chunked dask data: :class:`ColumnTransformer`,
:func:`make_column_transformer` and :class:`DateTimeFeatures`.

:class:`ColumnTransformer` has scikit-learn's parameters, fitted attributes and results on in-memory data;
on a dask DataFrame (or a dask array, by position) it selects columns without reading data (a
:class:`sklearn.compose.make_column_selector` sees an empty frame with the input's dtypes), fits all its
transformers from one pass over the data, and transforms lazily, one row block per partition. Use it
inside :class:`sklearn.pipeline.Pipeline` with the estimators of daskml_lab: the pipeline stays lazy and
distributed, and :func:`daskml_lab.save` keeps it whole.
"""

from sklearn.compose import make_column_selector

from daskml_lab.compose._column_transformer import ColumnTransformer
from daskml_lab.compose._datetime import DATE_PARTS, DateTimeFeatures
from daskml_lab.compose._make import make_column_transformer

__all__ = [
    "DATE_PARTS",
    "ColumnTransformer",
    "DateTimeFeatures",
    "make_column_selector",
    "make_column_transformer",
]
