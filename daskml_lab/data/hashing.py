"""The hashing trick for tables: categorical columns and their crosses as wide sparse row blocks.

:func:`hash_features` turns the columns of a pandas or dask DataFrame into a dask array of
``scipy.sparse.csr_matrix`` row blocks, one per partition, with a fixed number of columns whatever the number
of distinct values: each *token* (``"col=value"`` for a categorical column, ``"a=x^b=y"`` for a cross, the column
name for a numeric column) goes to column ``abs(h) % n_features`` with sign ``+1`` if ``h >= 0`` else ``-1``,
where ``h`` is the signed 32-bit MurmurHash3 of the token's UTF-8 bytes (seed 0,
:func:`sklearn.utils.murmurhash3_32`). That is exactly scikit-learn's
:class:`~sklearn.feature_extraction.FeatureHasher`, so the features are the same in every process, on every
machine and in every Python session (Python's own ``hash`` of strings changes with ``PYTHONHASHSEED`` and is
never used).

Each distinct value of a column (or pair of values of a cross) is hashed once per partition, not once per row:
this is where the speed over hashing row by row comes from.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp
from dask.base import tokenize
from sklearn.utils import murmurhash3_32

from daskml_lab._compat import unique_fused_keys
from daskml_lab._runtime.watched_compute import watched_compute
from daskml_lab.data import _blocks
from daskml_lab.data._convert import is_dask_dataframe
from daskml_lab.data._frames import _describe_partition_block, _target_block, _target_column

__all__ = ["MISSING_TOKEN", "HashingSpec", "hash_features"]

logger = logging.getLogger(__name__)

#: The value text of a missing value with ``missing="token"``: the token of column ``c`` is ``"c=<missing>"``.
MISSING_TOKEN = "<missing>"
#: Joins the two tokens of a cross: ``("site", "app")`` gives ``"site=a^app=b"``.
CROSS_SEPARATOR = "^"
#: scikit-learn's FeatureHasher bound: column indices are 32-bit signed integers.
MAX_N_FEATURES = int(np.iinfo(np.int32).max)
#: Rows per block for a pandas DataFrame when ``chunks`` is None.
DEFAULT_CHUNK_ROWS = 100_000
_MISSING_RULES = ("skip", "token")
_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


@dataclass(frozen=True)
class HashingSpec:
    """How a table was hashed: everything needed to hash new rows (a test set, predict-time data) alike.

    Returned by :func:`hash_features` with ``return_spec=True``; its columns are the resolved ones (when
    ``columns=None`` picked the non-numeric columns of the training table, they are listed here), so a table
    with other columns is hashed the same way or refused.

    Attributes
    ----------
    n_features : int
        Width of the hashed matrix.
    columns : tuple of hashable
        Columns hashed as categories, one token ``"col=value"`` per row.
    numeric : tuple of hashable
        Columns whose value is the weight of the token ``"col"``.
    crosses : tuple of (hashable, hashable)
        Pairs of columns hashed together, one token ``"a=x^b=y"`` per row.
    alternate_sign : bool
        Whether each token's value is multiplied by the sign of its hash.
    missing : {"skip", "token"}
        What a missing value of a categorical or crossed column gives.
    dtype : numpy.dtype
        Data type of the values.
    """

    n_features: int
    columns: tuple[Hashable, ...]
    numeric: tuple[Hashable, ...]
    crosses: tuple[tuple[Hashable, Hashable], ...]
    alternate_sign: bool
    missing: str
    dtype: np.dtype

    @classmethod
    def for_table(
        cls,
        table: Any,
        target: Hashable | None = None,
        *,
        n_features: int = 2**20,
        columns: Sequence[Hashable] | None = None,
        numeric: Sequence[Hashable] = (),
        crosses: Sequence[tuple[Hashable, Hashable]] = (),
        alternate_sign: bool = True,
        missing: str = "skip",
        dtype: Any = np.float64,
    ) -> HashingSpec:
        """The spec :func:`hash_features` would use for a table, from its columns and dtypes only.

        Parameters
        ----------
        table : pandas.DataFrame or dask.dataframe.DataFrame
            The table (its metadata is enough: nothing is computed).
        target, n_features, columns, numeric, crosses, alternate_sign, missing, dtype
            As in :func:`hash_features`.

        Returns
        -------
        HashingSpec
            With ``columns=None`` resolved to the table's non-numeric columns.

        Raises
        ------
        TypeError, ValueError
            As :func:`hash_features`, for the same arguments.
        """
        return _make_spec(
            table, target, n_features, columns, numeric, crosses, alternate_sign, missing, dtype
        )

    @property
    def input_columns(self) -> list[Hashable]:
        """Every column the hashing reads, each once, in first-use order."""
        names = [*self.columns, *self.numeric, *(c for pair in self.crosses for c in pair)]
        return list(dict.fromkeys(names))

    def transform(
        self,
        data: Any,
        target: Hashable | None = None,
        *,
        chunks: int | None = None,
        lengths: bool | Sequence[int] = True,
    ) -> Any:
        """Hash another table exactly as the one this spec came from (see :func:`hash_features`).

        Parameters
        ----------
        data : pandas.DataFrame or dask.dataframe.DataFrame
            The table; it must have every column of :attr:`input_columns`.
        target : hashable, default=None
            Name of a target column to return as ``y``.
        chunks : int, default=None
            Rows per block of a pandas DataFrame.
        lengths : bool or sequence of int, default=True
            Partition lengths of a dask DataFrame (see :func:`hash_features`).

        Returns
        -------
        X : dask.array.Array of shape (n_samples, n_features)
            Lazy CSR row blocks.
        y : dask.array.Array of shape (n_samples,)
            Only when ``target`` is given.
        """
        return hash_features(
            data,
            target,
            n_features=self.n_features,
            columns=self.columns,
            numeric=self.numeric,
            crosses=self.crosses,
            alternate_sign=self.alternate_sign,
            missing=self.missing,
            dtype=self.dtype,
            chunks=chunks,
            lengths=lengths,
        )

    def transform_block(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """Hash one in-memory table (one partition) now.

        Parameters
        ----------
        frame : pandas.DataFrame
            Rows to hash; it must have every column of :attr:`input_columns`.

        Returns
        -------
        scipy.sparse.csr_matrix of shape (len(frame), n_features)
            Duplicates summed, indices sorted (as :class:`~sklearn.feature_extraction.FeatureHasher` gives).

        Raises
        ------
        ValueError
            If a column is missing, or a numeric column holds NaN or infinity.
        """
        _check_columns(list(frame.columns), self.input_columns, "the table")
        return _hash_block(frame, self)


def hash_features(
    data: Any,
    target: Hashable | None = None,
    *,
    n_features: int = 2**20,
    columns: Sequence[Hashable] | None = None,
    numeric: Sequence[Hashable] = (),
    crosses: Sequence[tuple[Hashable, Hashable]] = (),
    alternate_sign: bool = True,
    missing: str = "skip",
    dtype: Any = np.float64,
    chunks: int | None = None,
    lengths: bool | Sequence[int] = True,
    return_spec: bool = False,
) -> Any:
    """Hash the columns of a table into a row-chunked dask array of sparse CSR blocks.

    Every row gives one token per hashed column and per cross; token ``t`` adds ``sign(t) * value`` to column
    ``index(t)`` of the row, where ``index`` and ``sign`` come from the signed 32-bit MurmurHash3 of ``t``
    exactly as in :class:`sklearn.feature_extraction.FeatureHasher` (tokens of one row that collide are
    summed). The result is the same in every process and Python session.

    Parameters
    ----------
    data : pandas.DataFrame or dask.dataframe.DataFrame
        The table, for instance read with :func:`dask.dataframe.read_csv` or :func:`dask.dataframe.read_parquet`.
    target : hashable, default=None
        Name of the target column, returned as ``y`` (never hashed). ``None`` returns ``X`` only.
    n_features : int, default=2**20
        Number of columns of the result, in ``[1, 2**31 - 1]``. Collisions become rare once it is much larger
        than the number of distinct tokens.
    columns : sequence of hashable, default=None
        Columns hashed as categories: the token of value ``v`` of column ``c`` is ``f"{c}={v}"`` with value 1.
        ``None`` takes every non-numeric column (object, string, category and bool dtypes) other than the
        target and those in ``numeric``. The text of a value is ``str(v)``, except that a float with an integral
        value is written as an int (``3.0`` gives ``"3"``), so that an integer column with missing values
        (float in pandas) hashes like one without.
    numeric : sequence of hashable, default=()
        Numeric columns hashed by name: the token is ``str(c)`` and the value is the column's value (zero
        values are left out), as FeatureHasher does with ``input_type="dict"`` and numeric values.
    crosses : sequence of (hashable, hashable), default=()
        Pairs of columns crossed: one token ``f"{a}={x}^{b}={y}"`` per row, i.e. one feature per pair of values
        that occurs. The columns of a cross need not be in ``columns``; their values are written as there.
    alternate_sign : bool, default=True
        Multiply each value by the sign of its token's hash, so that collisions cancel in expectation and inner
        products are preserved (FeatureHasher's ``alternate_sign``).
    missing : {"skip", "token"}, default="skip"
        What a missing value (None, NaN, NA, NaT) of a categorical or crossed column gives: no token
        (``"skip"``: the row has no feature for that column, or that cross), or the value text ``"<missing>"``
        (``"token"``: a feature of its own, like a category). A missing value of a ``numeric`` column is always
        an error.
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        Data type of the values.
    chunks : int, default=None
        Rows per block for a pandas DataFrame (``None``: 100,000). A dask DataFrame gives one block per
        partition.
    lengths : bool or sequence of int, default=True
        The partition lengths of a dask DataFrame, which are the row chunks of the result: ``True`` computes
        them (one integer per partition, in one pass over the partitions), a sequence gives them, and
        ``False`` leaves the chunk sizes unknown (NaN) so that nothing is computed; estimators need known
        chunk sizes (:meth:`dask.array.Array.compute_chunk_sizes`). A pandas DataFrame's lengths are always
        known (its blocks have ``chunks`` rows).
    return_spec : bool, default=False
        Also return the :class:`HashingSpec`, to hash other tables the same way.

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        Lazy; its blocks are ``scipy.sparse.csr_matrix`` with sorted indices and summed duplicates, one per
        partition (dask) or per ``chunks`` rows (pandas), one column chunk.
    y : dask.array.Array of shape (n_samples,)
        Lazy target values with the row chunks of ``X`` (labels as objects); only when ``target`` is given.
    spec : HashingSpec
        Only when ``return_spec`` is true.

    Raises
    ------
    TypeError
        If ``data`` is not a DataFrame, a parameter has the wrong type, or a ``numeric`` column is not
        numeric.
    ValueError
        If ``n_features`` is out of range, a named column does not exist (the message lists those that do), a
        column is both categorical and numeric, there is nothing to hash, or a ``numeric`` column holds NaN
        or infinity (for a dask DataFrame this is found, and raised, when the block is computed).

    See Also
    --------
    sklearn.feature_extraction.FeatureHasher : The same hashing for in-memory lists of tokens.
    daskml_lab.preprocessing.HashingEncoder : The same as a transformer, for pipelines.

    Notes
    -----
    Comparing with FeatureHasher: for a table with categorical columns only,
    ``FeatureHasher(n_features, input_type="string").transform([[f"{c}={v}" for c in columns] for each row])``
    (or ``input_type="dict"`` with ``{c: str(v)}``) gives the same matrix. Nothing is computed for a pandas
    DataFrame, nor for a dask DataFrame with ``lengths`` not ``True``.

    Examples
    --------
    >>> import pandas as pd
    >>> from daskml_lab.data import hash_features
    >>> df = pd.DataFrame({"site": ["a", "b", "a"], "app": ["x", "x", None], "clicked": [1, 0, 1]})
    >>> X, y = hash_features(df, "clicked", n_features=16, crosses=[("site", "app")])
    >>> X.shape, type(X._meta).__name__
    ((3, 16), 'csr_matrix')
    >>> X.compute().getnnz(axis=1)  # site, app and the cross; the missing app gives neither
    array([3, 3, 1], dtype=int32)
    """
    is_dask = is_dask_dataframe(data)
    if not (is_dask or isinstance(data, pd.DataFrame)):
        got = f"{type(data).__module__}.{type(data).__qualname__}"
        msg = (
            f"hash_features expects a pandas or dask DataFrame, got {got}. Build one first (e.g. "
            "pandas.DataFrame(...) or dask.dataframe.read_csv(...))."
        )
        raise TypeError(msg)
    spec = _make_spec(data, target, n_features, columns, numeric, crosses, alternate_sign, missing, dtype)
    if not is_dask:
        _check_finite_numeric(data, spec.numeric, where="")
    read = spec.input_columns + ([] if target is None else [target])
    name = f"daskml-hash-{tokenize(data, spec, target, chunks, lengths)}"
    if is_dask:
        X, y = _dask_frame_blocks(data[read], spec, target, lengths, name)
    else:
        X, y = _pandas_blocks(data[read], spec, target, chunks, name)
    logger.debug(
        "hash_features: %d columns, %d numeric, %d crosses into %d features, %d blocks",
        len(spec.columns),
        len(spec.numeric),
        len(spec.crosses),
        spec.n_features,
        X.numblocks[0],
    )
    result = (X,) if y is None else (X, y)
    if return_spec:
        result = (*result, spec)
    return result[0] if len(result) == 1 else result


# ---------------------------------------------------------------------------------------------------------
# checks


def _make_spec(
    data: Any,
    target: Hashable | None,
    n_features: Any,
    columns: Any,
    numeric: Any,
    crosses: Any,
    alternate_sign: Any,
    missing: Any,
    dtype: Any,
) -> HashingSpec:
    """Check every argument against the table's columns (metadata only) and resolve ``columns=None``."""
    if not isinstance(n_features, numbers.Integral) or isinstance(n_features, bool | np.bool_):
        msg = f"n_features must be an int, got {type(n_features).__name__} {n_features!r}."
        raise TypeError(msg)
    if not 1 <= n_features <= MAX_N_FEATURES:
        msg = (
            f"n_features must be in [1, {MAX_N_FEATURES}] (2**31 - 1, column indices are 32-bit), got "
            f"{n_features}. Pass a positive number such as 2**20."
        )
        raise ValueError(msg)
    if not isinstance(alternate_sign, bool | np.bool_):
        msg = f"alternate_sign must be a bool, got {alternate_sign!r}."
        raise TypeError(msg)
    if missing not in _MISSING_RULES:
        msg = f"missing must be one of {list(_MISSING_RULES)}, got {missing!r}."
        raise ValueError(msg)
    try:
        out_dtype = np.dtype(dtype)
    except TypeError as err:
        msg = f"dtype must be numpy.float64 or numpy.float32, got {dtype!r}."
        raise TypeError(msg) from err
    if out_dtype not in _FLOAT_DTYPES:
        msg = f"dtype must be numpy.float64 or numpy.float32, got {out_dtype}."
        raise ValueError(msg)

    available = list(data.columns)
    numeric = _names("numeric", numeric)
    pairs = _pairs(crosses)
    if target is not None:
        _check_columns(available, [target], "the table", what="target")
    _check_columns(available, numeric, "the table", what="numeric column")
    for col in numeric:
        dtype_of = data[col].dtype
        if not pd.api.types.is_numeric_dtype(dtype_of) or pd.api.types.is_bool_dtype(dtype_of):
            msg = (
                f"numeric column {col!r} has dtype {dtype_of}, not a number. Hash it as a category "
                "(columns=[...]) or convert it first."
            )
            raise TypeError(msg)
    if columns is None:
        columns = [
            c for c in available if c != target and c not in numeric and _is_categorical(data[c].dtype)
        ]
    else:
        columns = _names("columns", columns)
        _check_columns(available, columns, "the table")
    _check_columns(available, [c for pair in pairs for c in pair], "the table", what="crossed column")
    both = [c for c in columns if c in numeric]
    if both:
        msg = f"Column(s) {both} are in both columns= and numeric=; hash each column one way only."
        raise ValueError(msg)
    if target is not None and (target in columns or target in numeric or any(target in p for p in pairs)):
        msg = f"The target {target!r} is also a hashed column; leave it out of columns, numeric and crosses."
        raise ValueError(msg)
    if not (columns or numeric or pairs):
        msg = (
            "There is nothing to hash: no non-numeric columns in the table and no numeric= or crosses= given "
            f"(columns: {available[:20]}). Name the columns to hash with columns=[...]."
        )
        raise ValueError(msg)
    return HashingSpec(
        n_features=int(n_features),
        columns=tuple(columns),
        numeric=tuple(numeric),
        crosses=pairs,
        alternate_sign=bool(alternate_sign),
        missing=str(missing),
        dtype=out_dtype,
    )


def _is_categorical(dtype: Any) -> bool:
    return pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype)


def _names(name: str, value: Any) -> list[Hashable]:
    if isinstance(value, str) or not isinstance(value, Sequence | pd.Index | np.ndarray):
        msg = f"{name} must be a list of column names, got {value!r}. Wrap a single name in a list."
        raise TypeError(msg)
    return list(value)


def _pairs(crosses: Any) -> tuple[tuple[Hashable, Hashable], ...]:
    if isinstance(crosses, str) or not isinstance(crosses, Sequence):
        msg = f"crosses must be a list of column pairs such as [('site', 'app')], got {crosses!r}."
        raise TypeError(msg)
    pairs = []
    for pair in crosses:
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            msg = f"Each cross must be a pair of column names such as ('site', 'app'), got {pair!r}."
            raise ValueError(msg)
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def _check_columns(
    available: list[Hashable], wanted: Sequence[Hashable], where: str, *, what: str = "column"
) -> None:
    unknown = [c for c in wanted if c not in available]
    if unknown:
        shown = available[:40]
        more = f" (and {len(available) - 40} more)" if len(available) > 40 else ""
        msg = (
            f"Unknown {what}(s) {unknown}: not in {where}, whose columns are {shown}{more}. Check the spelling, "
            "or hash a table that has them (predict-time data need the training table's columns)."
        )
        raise ValueError(msg)


def _check_finite_numeric(frame: pd.DataFrame, numeric: Sequence[Hashable], *, where: str) -> None:
    """Refuse NaN or infinity in a numeric hashed column: a missing weight has no meaning."""
    for col in numeric:
        values = frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            msg = (
                f"Numeric hashed column {col!r} has {int(bad.sum())} NaN or infinite value(s){where} (first at "
                f"row {first}: {values[first]}). Impute or drop them first, or hash the column as a category "
                "(columns=[...]), where missing values follow the missing= rule."
            )
            raise ValueError(msg)


# ---------------------------------------------------------------------------------------------------------
# graph


def _pandas_blocks(
    frame: pd.DataFrame, spec: HashingSpec, target: Hashable | None, chunks: int | None, name: str
) -> tuple[da.Array, da.Array | None]:
    if chunks is None:
        chunks = DEFAULT_CHUNK_ROWS
    if not isinstance(chunks, numbers.Integral) or isinstance(chunks, bool) or chunks < 1:
        msg = f"chunks must be a positive number of rows per block, got {chunks!r}."
        raise ValueError(msg)
    n_rows = len(frame)
    starts = range(0, max(n_rows, 1), int(chunks))
    parts = [frame.iloc[start : start + int(chunks)] for start in starts]
    row_chunks = tuple(len(p) for p in parts)
    return _arrays(parts, row_chunks, spec, target, frame, name)


def _dask_frame_blocks(
    df: Any, spec: HashingSpec, target: Hashable | None, lengths: Any, name: str
) -> tuple[da.Array, da.Array | None]:
    # X, y and the lengths are all cut from the same delayed partitions (see _frames._frame_blocks: other column
    # projections may give other partitions)
    parts = df.to_delayed()
    if lengths is True:
        counts = [
            dask.delayed(_describe_partition_block, pure=True)(
                part, [], None, dask_key_name=(f"{name}-len", i)
            )
            for i, part in enumerate(parts)
        ]
        logger.info("Computing the lengths of %d partitions", len(parts))
        # compute: one integer per partition (the row chunks of X and y)
        with unique_fused_keys():
            described = watched_compute(*counts, what="the partition lengths")
        row_chunks = tuple(int(n) for n, _, _ in described)
    elif lengths is False:
        row_chunks = (np.nan,) * len(parts)
    else:
        if isinstance(lengths, str) or not isinstance(lengths, Sequence | np.ndarray):
            msg = f"lengths must be True, False or one length per partition, got {lengths!r}."
            raise TypeError(msg)
        row_chunks = tuple(int(n) for n in lengths)
        if len(row_chunks) != len(parts) or any(n < 0 for n in row_chunks):
            msg = (
                f"lengths must give one non-negative length per partition: the table has {len(parts)} "
                f"partitions, got {len(row_chunks)} lengths."
            )
            raise ValueError(msg)
    return _arrays(parts, row_chunks, spec, target, df._meta, name)


def _arrays(
    parts: list[Any],
    row_chunks: tuple[float, ...],
    spec: HashingSpec,
    target: Hashable | None,
    meta_frame: pd.DataFrame,
    name: str,
) -> tuple[da.Array, da.Array | None]:
    """One hashing task per part (a pandas slice or a delayed partition), and one target task per part."""
    inputs = {}
    deps = []
    for i, part in enumerate(parts):
        if isinstance(part, pd.DataFrame):
            inputs[i] = part
        else:
            inputs[i] = part.key
            deps.append(part)
    X_tasks = {(name, i, 0): (_hash_block, part, spec, i) for i, part in inputs.items()}
    X = _blocks.array_from_tasks(
        name,
        X_tasks,
        (row_chunks, (spec.n_features,)),
        meta=sp.csr_matrix((0, spec.n_features), dtype=spec.dtype),
        dependencies=deps,
    )
    if target is None:
        return X, None
    y_name = name.replace("daskml-hash-", "daskml-hash-y-", 1)
    y_dtype = _target_column(meta_frame[target].iloc[:0]).dtype
    y_tasks = {(y_name, i): (_target_block, part, target) for i, part in inputs.items()}
    y = _blocks.array_from_tasks(
        y_name, y_tasks, (row_chunks,), meta=np.empty((0,), dtype=y_dtype), dependencies=deps
    )
    return X, y


# ---------------------------------------------------------------------------------------------------------
# block kernels


def _hash_block(frame: pd.DataFrame, spec: HashingSpec, block_index: int = 0) -> sp.csr_matrix:
    """Hash one partition: one token per row and hashed column or cross, summed into a CSR block."""
    n_rows = len(frame)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    values: list[np.ndarray] = []

    def add(codes: np.ndarray, tokens: list[str], weights: np.ndarray | None = None) -> None:
        # codes: per row, the position of its token in `tokens`, or -1 for no token
        index, sign = _hash_tokens(tokens, spec.n_features)
        kept = np.flatnonzero(codes >= 0)
        code = codes[kept]
        value = sign[code] if spec.alternate_sign else np.ones(len(kept))
        if weights is not None:
            value = value * weights[kept]
        rows.append(kept)
        cols.append(index[code])
        values.append(value)

    texts: dict[Hashable, tuple[np.ndarray, list[str]]] = {}

    def value_codes(col: Hashable) -> tuple[np.ndarray, list[str]]:
        if col not in texts:
            texts[col] = _value_codes(frame[col], spec.missing)
        return texts[col]

    for col in spec.columns:
        codes, text = value_codes(col)
        add(codes, [f"{col}={t}" for t in text])
    if spec.numeric:
        _check_finite_numeric(frame, spec.numeric, where=f" in partition {block_index}")
    for col in spec.numeric:
        weights = frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
        add(np.where(weights != 0, 0, -1), [str(col)], weights)
    for a, b in spec.crosses:
        codes_a, text_a = value_codes(a)
        codes_b, text_b = value_codes(b)
        both = (codes_a >= 0) & (codes_b >= 0)
        pair = np.where(both, codes_a * max(len(text_b), 1) + codes_b, -1)
        seen, inverse = np.unique(pair[both], return_inverse=True)
        codes = np.full(n_rows, -1, dtype=np.int64)
        codes[both] = inverse
        n_b = max(len(text_b), 1)
        tokens = [f"{a}={text_a[p // n_b]}{CROSS_SEPARATOR}{b}={text_b[p % n_b]}" for p in seen.tolist()]
        add(codes, tokens)
    row = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    col_index = np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)
    data = np.concatenate(values) if values else np.empty(0)
    # the COO -> CSR conversion sums duplicate (row, column) entries: colliding tokens of a row add up
    block = sp.csr_matrix((data, (row, col_index)), shape=(n_rows, spec.n_features), dtype=spec.dtype)
    block.sum_duplicates()
    return block


def _value_codes(series: pd.Series, missing: str) -> tuple[np.ndarray, list[str]]:
    """Per row the code of its distinct value (-1: no token), and the text of each distinct value."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    text = [_value_text(v) for v in uniques]
    if missing == "token":
        absent = codes < 0
        if absent.any():
            codes[absent] = len(text)
            text.append(MISSING_TOKEN)
    return codes, text


def _value_text(value: Any) -> str:
    """The text of a value in its token: ``str``, with integral floats written as ints."""
    if isinstance(value, str):
        return value
    if isinstance(value, float | np.floating) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _hash_tokens(tokens: list[str], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Column index and sign of each token: FeatureHasher's rule on the signed 32-bit MurmurHash3 (seed 0)."""
    hashes = np.fromiter((murmurhash3_32(t, seed=0) for t in tokens), dtype=np.int64, count=len(tokens))
    # in int64, abs(-2**31) is 2**31, whose remainder is what FeatureHasher computes for that hash
    index = np.abs(hashes) % n_features
    sign = np.where(hashes >= 0, 1.0, -1.0)
    return index, sign
