"""The hashing trick as a transformer: :class:`HashingEncoder`, for pipelines and column transformers."""

from __future__ import annotations

import numbers
from collections.abc import Hashable
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from daskml_lab.base import Interval, Options
from daskml_lab.data import HashingSpec, is_dask_dataframe
from daskml_lab.preprocessing._base import BlockedTransformer
from daskml_lab.preprocessing._docs import fill_doc

__all__ = ["HashingEncoder"]


def _hash_rows_block(block: np.ndarray, names: list[Hashable], spec: HashingSpec) -> sp.csr_matrix:
    """Hash one row block of the validated input, its columns named as in ``fit``."""
    return spec.transform_block(pd.DataFrame(block, columns=names))


@fill_doc
class HashingEncoder(BlockedTransformer):
    """Encode categorical columns (and their crosses) with the hashing trick, block by block.

    The transformer form of :func:`daskml_lab.data.hash_features`, for a :class:`~sklearn.pipeline.Pipeline`
    or a column transformer: each value ``v`` of column ``c`` becomes the token ``"c=v"``, hashed with
    scikit-learn's :class:`~sklearn.feature_extraction.FeatureHasher` rule (signed 32-bit MurmurHash3) into
    one of ``n_features`` columns, so the output is the same in every process and session. ``fit`` learns
    nothing from the data: it records the columns (their names and number) and checks the options.

    Parameters
    ----------
    n_features : int, default=2**20
        Number of output columns, in ``[1, 2**31 - 1]``.
    columns : list of hashable, default=None
        Columns hashed as categories. ``None`` takes every input column that is not in ``numeric`` (as the
        other encoders encode every column they are given). Columns are named by the DataFrame's column names,
        or by position (0, 1, ...) for arrays.
    numeric : list of hashable, default=()
        Columns whose value is the weight of the token ``"c"`` (NaN is an error).
    crosses : list of (hashable, hashable), default=()
        Pairs of columns hashed together: one token ``"a=x^b=y"`` per row.
    alternate_sign : bool, default=True
        Multiply each value by the sign of its hash.
    missing : {"skip", "token"}, default="skip"
        A missing categorical value gives no token, or the token ``"c=<missing>"``.
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        Data type of the output.

    Attributes
    ----------
    columns_ : list of hashable
        The columns hashed as categories (``columns``, or every input column not in ``numeric``).
    %(fitted_features)s

    See Also
    --------
    daskml_lab.data.hash_features : The same hashing of a table, returning ``X`` (and ``y``).
    sklearn.feature_extraction.FeatureHasher : The hashing of in-memory token lists.

    Examples
    --------
    >>> import pandas as pd
    >>> from daskml_lab.preprocessing import HashingEncoder
    >>> df = pd.DataFrame({"site": ["a", "b", "a"], "app": ["x", "x", "y"]})
    >>> encoder = HashingEncoder(n_features=32, crosses=[("site", "app")]).fit(df)
    >>> X = encoder.transform(df)
    >>> X.shape, X.getnnz(axis=1).tolist()
    ((3, 32), [3, 3, 3])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_features": [Interval(numbers.Integral, 1, np.iinfo(np.int32).max, closed="both")],
        "columns": [None, "array-like"],
        "numeric": ["array-like"],
        "crosses": ["array-like"],
        "alternate_sign": ["boolean"],
        "missing": [Options({"skip", "token"})],
        "dtype": [type, np.dtype, str],
    }

    def __init__(
        self,
        *,
        n_features: int = 2**20,
        columns: Any = None,
        numeric: Any = (),
        crosses: Any = (),
        alternate_sign: bool = True,
        missing: str = "skip",
        dtype: Any = np.float64,
    ) -> None:
        self.n_features = n_features
        self.columns = columns
        self.numeric = numeric
        self.crosses = crosses
        self.alternate_sign = alternate_sign
        self.missing = missing
        self.dtype = dtype

    def _fit_plan(self, X: Any) -> dict[str, Any]:
        array, _, dtypes = self._table_input(X, fitting=True)
        names = list(X.columns) if _is_frame(X) else list(range(array.shape[1]))
        # the spec is checked against a zero-row table with the input's columns and dtypes (metadata only)
        empty = pd.DataFrame({name: pd.Series([], dtype=dt) for name, dt in zip(names, dtypes, strict=True)})
        numeric = list(self.numeric)
        columns = [c for c in names if c not in numeric] if self.columns is None else list(self.columns)
        spec = HashingSpec.for_table(
            empty,
            n_features=self.n_features,
            columns=columns,
            numeric=numeric,
            crosses=[tuple(pair) for pair in self.crosses],
            alternate_sign=self.alternate_sign,
            missing=self.missing,
            dtype=self.dtype,
        )
        # nothing to compute: hashing learns no statistics
        return {"spec": spec, "names": names}

    def _fit_finish(self, X: Any, statistics: dict[str, Any]) -> HashingEncoder:
        # plain lists, not the spec object: the fitted encoder saves and loads like any other
        self.columns_ = list(statistics["spec"].columns)
        self._input_names = statistics["names"]
        return self

    @property
    def spec_(self) -> HashingSpec:
        """The fitted hashing as a :class:`~daskml_lab.data.HashingSpec`, for :func:`~daskml_lab.data.hash_features`."""
        check_is_fitted(self, "columns_")
        return HashingSpec(
            n_features=int(self.n_features),
            columns=tuple(self.columns_),
            numeric=tuple(self.numeric),
            crosses=tuple((a, b) for a, b in self.crosses),
            alternate_sign=bool(self.alternate_sign),
            missing=str(self.missing),
            dtype=np.dtype(self.dtype),
        )

    def transform(self, X: Any) -> Any:
        """Hash ``X`` block by block.

        Parameters
        ----------
        X : {array-like, dask array, DataFrame, dask DataFrame} of shape (n_samples, n_features)
            The data, with the columns seen in ``fit`` (``n_features`` is their number, not the output width).

        Returns
        -------
        {scipy.sparse.csr_matrix, dask.array.Array} of shape (n_samples, n_features)
            CSR for in-memory input; for dask input a lazy dask array of CSR row blocks with the input's row
            chunks (unknown for a dask DataFrame, as for the other transformers).

        Raises
        ------
        ValueError
            If ``X`` does not have the columns of ``fit``, or (when its block is computed) a numeric column
            holds NaN or infinity.
        """
        check_is_fitted(self, "columns_")
        array, origin, _ = self._table_input(X, fitting=False)
        spec = self.spec_
        result = array.map_blocks(
            _hash_rows_block,
            self._input_names,
            spec,
            dtype=spec.dtype,
            chunks=(array.chunks[0], (spec.n_features,)),
            meta=sp.csr_matrix((0, spec.n_features), dtype=spec.dtype),
            token="daskml-hashing-encoder",
        )
        output = self._wrap_output(result, origin)
        return sp.csr_matrix(output) if origin.is_eager else output

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags


def _is_frame(X: Any) -> bool:
    return isinstance(X, pd.DataFrame) or is_dask_dataframe(X)
