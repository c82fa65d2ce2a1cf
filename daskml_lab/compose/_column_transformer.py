"""scikit-learn's ColumnTransformer for row-chunked dask data: :class:`ColumnTransformer`.

On pandas, numpy and scipy input it behaves as scikit-learn's. On a dask DataFrame or dask array it fits
every transformer from **one** pass over the data: the transformers that follow the statistics protocol of
:mod:`daskml_lab.preprocessing` (``_fit_plan(X)`` returns lazy statistics, ``_fit_finish(X, statistics)``
sets the fitted attributes) hand over their plans, one ``dask.compute`` evaluates them all together, and
each finishes its fit from its own results. Stateless transformers (``"passthrough"``, a
``FunctionTransformer``, ...) need no data. Transforming is lazy: one row block per input partition.
"""

from __future__ import annotations

import logging
import numbers
from collections import Counter
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils import Bunch, get_tags
from sklearn.utils.validation import check_is_fitted

from daskml_lab.base import HasMethods, Interval, Options, check_params
from daskml_lab.compose._blocks import lazy_output, stack_outputs
from daskml_lab.compose._columns import (
    empty_frame,
    input_kind,
    is_empty_selection,
    is_scalar_spec,
    labels_of,
    resolve_columns,
    select_columns,
)
from daskml_lab.compose._parts import (
    checked_output,
    density_says_sparse,
    empty_selection,
    is_dask_aware,
    is_passthrough,
    is_passthrough_fitted,
    is_stateless,
    lazy_density_says_sparse,
    numeric_dtype,
    passthrough,
    passthrough_dtype,
    prefixed_names,
    refusal,
    remainder_columns,
)
from daskml_lab.compose._rounds import fit_in_rounds

__all__ = ["ColumnTransformer"]

logger = logging.getLogger(__name__)


class ColumnTransformer(TransformerMixin, BaseEstimator):
    """Apply transformers to columns of a table (pandas or dask DataFrame) or array, and stack the results.

    The parameters, fitted attributes and methods are scikit-learn's
    (:class:`sklearn.compose.ColumnTransformer`); on in-memory input the results are identical. On dask
    input (a dask DataFrame, or a dask array with columns chosen by position) the data never come to the
    client:

    - columns chosen by a callable such as :class:`sklearn.compose.make_column_selector` are chosen on an
      empty pandas DataFrame with the dask DataFrame's ``dtypes``: selecting by dtype reads no data;
    - ``fit`` computes the statistics of every transformer in **one** pass over the data (see Notes);
    - ``transform`` is lazy and returns a dask array with one row block per partition of the input, of
      dense blocks, or CSR blocks when the output is sparse.

    Parameters
    ----------
    transformers : list of tuples
        ``(name, transformer, columns)``. ``transformer`` is an estimator with ``fit`` and ``transform``,
        ``"drop"`` or ``"passthrough"``. ``columns`` is a name or list of names, a position or list of
        positions, a slice, a boolean mask, or a callable returning one of these; a single name or
        position hands a 1-D input to the transformer.
    remainder : {"drop", "passthrough"} or estimator, default="drop"
        What happens to the columns no transformer names: dropped, passed through, or given to this
        transformer.
    sparse_threshold : float, default=0.3
        When some outputs are sparse and the overall density is below this value, the result is sparse
        (CSR); ``0`` always gives a dense result.
    transformer_weights : dict, default=None
        Multiplies each transformer's output by ``transformer_weights[name]`` (1 when absent).
    verbose_feature_names_out : bool, str or callable, default=True
        How :meth:`get_feature_names_out` names the output columns: ``"<transformer>__<feature>"`` when
        True, the features' own names when False (they must then be unique), a format string with
        ``{transformer_name}`` and ``{feature_name}``, or a callable of both.

    Attributes
    ----------
    transformers_ : list of tuples
        The fitted ``(name, transformer, columns)``, the remainder last when it has columns; callables are
        replaced by the columns they chose.
    named_transformers_ : :class:`~sklearn.utils.Bunch`
        The fitted transformers by name.
    sparse_output_ : bool
        Whether the output is sparse.
    output_indices_ : dict of str to slice
        The output columns of each transformer.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of str
        Input column names, when fitted on a DataFrame with string column names.

    See Also
    --------
    make_column_transformer : The same, naming the transformers after their classes.
    DateTimeFeatures : Date parts of datetime columns.

    Notes
    -----
    **One pass on dask input.** ``fit`` collects the lazy statistics of every transformer following the
    protocol of :mod:`daskml_lab.preprocessing` (``_fit_plan``), computes all of them in one
    ``dask.compute``, then lets each transformer finish its fit from its results
    (``_fit_finish``). Statistics are model-sized (means, counts, categories): no data reach the client.
    A :class:`~sklearn.pipeline.Pipeline` of such transformers is fitted step by step: one pass per step,
    shared with the steps of the same rank of the other transformers.
    A scikit-learn transformer that learns from the data (``StandardScaler``, ``OneHotEncoder``, ...)
    cannot be fitted without bringing the data to the client, so it is refused on dask input, with the
    name of the :mod:`daskml_lab.preprocessing` class to use instead; it is applied block by block when it
    was fitted on pandas data and then transforms dask data.

    **Sparse output on dask input.** Counting the non-zeros of the outputs would take a second pass over
    the data, so the density that ``sparse_threshold`` is compared with counts, for each sparse output, one
    non-zero per input column and row (exact for one-hot encoding without ``drop``).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn.preprocessing import StandardScaler
    >>> from daskml_lab.compose import ColumnTransformer, DateTimeFeatures
    >>> X = pd.DataFrame({"distance": [100.0, 300.0, 200.0],
    ...                   "when": pd.to_datetime(["2013-01-01 05:00", "2013-01-02 17:00", "2013-01-05 09:00"])})
    >>> ct = ColumnTransformer([("scale", StandardScaler(), ["distance"]),
    ...                         ("date", DateTimeFeatures(features=["weekday", "hour"]), ["when"])])
    >>> ct.fit_transform(X).round(2)
    array([[-1.22,  1.  ,  5.  ],
           [ 1.22,  2.  , 17.  ],
           [ 0.  ,  5.  ,  9.  ]])
    >>> ct.get_feature_names_out().tolist()
    ['scale__distance', 'date__when_weekday', 'date__when_hour']
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "transformers": [list, tuple],
        "remainder": [
            Options({"drop", "passthrough"}),
            HasMethods(["fit", "transform"]),
            HasMethods(["fit_transform", "transform"]),
        ],
        "sparse_threshold": [Interval(numbers.Real, 0, 1, closed="both")],
        "transformer_weights": ["dict", None],
        "verbose_feature_names_out": ["boolean", "str", "callable"],
    }

    def __init__(
        self,
        transformers: list[tuple[str, Any, Any]],
        *,
        remainder: Any = "drop",
        sparse_threshold: float = 0.3,
        transformer_weights: dict[str, float] | None = None,
        verbose_feature_names_out: Any = True,
    ) -> None:
        self.transformers = transformers
        self.remainder = remainder
        self.sparse_threshold = sparse_threshold
        self.transformer_weights = transformer_weights
        self.verbose_feature_names_out = verbose_feature_names_out

    # ---- parameters of the transformers, as scikit-learn's compositions expose them -------------------------

    def _named(self) -> list[tuple[str, Any]]:
        try:
            return [(name, transformer) for name, transformer, _ in self.transformers]
        except (TypeError, ValueError):
            return []

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters, with each transformer by name and its parameters as ``<name>__<parameter>``.

        Parameters
        ----------
        deep : bool, default=True
            Include the transformers and their parameters.

        Returns
        -------
        dict
        """
        params = super().get_params(deep=deep)
        if not deep:
            return params
        for name, transformer in self._named():
            params[name] = transformer
            if hasattr(transformer, "get_params") and not isinstance(transformer, type):
                for key, value in transformer.get_params(deep=True).items():
                    params[f"{name}__{key}"] = value
        return params

    def set_params(self, **params: Any) -> ColumnTransformer:
        """Set parameters; a transformer is replaced by its name, its parameters set as ``<name>__<key>``.

        Returns
        -------
        self : ColumnTransformer
        """
        if "transformers" in params:
            self.transformers = params.pop("transformers")
        names = {name for name, _ in self._named()}
        replaced = {key: params.pop(key) for key in list(params) if key in names}
        if replaced:
            self.transformers = [
                (name, replaced.get(name, transformer), columns)
                for name, transformer, columns in self.transformers
            ]
        if params:
            super().set_params(**params)
        return self

    # ---- checks ------------------------------------------------------------------------------------------

    def _check_transformers(self) -> None:
        check_params(self)
        try:
            entries = [(name, transformer, columns) for name, transformer, columns in self.transformers]
        except (TypeError, ValueError) as err:
            msg = (
                "transformers must be a list of (name, transformer, columns) tuples, e.g. "
                f"[('scale', StandardScaler(), ['age'])]; got {self.transformers!r}."
            )
            raise ValueError(msg) from err
        names = [name for name, _, _ in entries]
        duplicated = sorted(n for n, count in Counter(names).items() if count > 1)
        own = set(self.get_params(deep=False))
        problems = [
            *(f"the name {n!r} is used twice" for n in duplicated),
            *(f"the name {n!r} is a parameter of ColumnTransformer" for n in names if n in own),
            *(f"the name {n!r} contains '__'" for n in names if isinstance(n, str) and "__" in n),
            *(f"the name {n!r} is not a str" for n in names if not isinstance(n, str)),
            *(f"the name {n!r} is reserved for the remainder" for n in names if n == "remainder"),
        ]
        if problems:
            msg = f"Invalid transformer names: {'; '.join(problems)}. Give each transformer a unique plain name."
            raise ValueError(msg)
        for name, transformer, _ in entries:
            if isinstance(transformer, str) and transformer in ("drop", "passthrough"):
                continue
            if isinstance(transformer, type) or not (
                (hasattr(transformer, "fit") or hasattr(transformer, "fit_transform"))
                and hasattr(transformer, "transform")
            ):
                msg = (
                    f"All transformers should implement fit and transform, or be 'drop' or 'passthrough'; "
                    f"{name!r} is {transformer!r} (type {type(transformer).__name__})."
                )
                raise TypeError(msg)

    def _check_input(self, X: Any) -> tuple[Any, str]:
        kind = input_kind(X)
        if kind == "numpy":
            X = np.asarray(X) if not hasattr(X, "shape") else X
            if X.ndim != 2:
                msg = (
                    f"Expected a 2D array, got an array of shape {X.shape}. Reshape your data with "
                    "X.reshape(-1, 1) if it holds one feature, or X.reshape(1, -1) if it is one sample."
                )
                raise ValueError(msg)
        return X, kind

    # ---- fitting -----------------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> ColumnTransformer:
        """Fit every transformer on its columns (one pass over the data for dask input).

        Parameters
        ----------
        X : {pandas or dask DataFrame, array-like, dask array} of shape (n_samples, n_features)
            The input table.
        y : array-like of shape (n_samples,), default=None
            Passed to the transformers' ``fit`` on in-memory input.

        Returns
        -------
        self : ColumnTransformer
            Fitted.

        Raises
        ------
        ValueError
            If a column named does not exist, a position is out of range, or a transformer's output is not
            2-D.
        TypeError
            If a transformer lacks ``fit``/``transform``, or learns from the data but cannot be fitted on
            dask input (the message names the :mod:`daskml_lab.preprocessing` class to use).
        """
        self._fit(X, y, keep_output=False)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit every transformer and return the stacked outputs.

        Parameters
        ----------
        X : {pandas or dask DataFrame, array-like, dask array} of shape (n_samples, n_features)
            The input table.
        y : array-like of shape (n_samples,), default=None
            Passed to the transformers' ``fit`` on in-memory input.
        **fit_params : dict
            Not supported (scikit-learn routes them only with metadata routing); must be empty.

        Returns
        -------
        {ndarray, sparse matrix, dask.array.Array} of shape (n_samples, n_output_features)
            numpy or CSR for in-memory input; for dask input a lazy dask array with one row block per
            partition or row block (row counts unknown for a dask DataFrame, as its partitions' are; the
            estimator that reads it next counts them together with ``y``).
        """
        if fit_params:
            msg = f"ColumnTransformer.fit_transform takes no fit parameters; got {sorted(fit_params)}."
            raise TypeError(msg)
        return self._fit(X, y, keep_output=True)

    def _fit(self, X: Any, y: Any, *, keep_output: bool) -> Any:
        self._check_transformers()
        X, kind = self._check_input(X)
        lazy = kind in ("dask", "dask-dataframe")
        n_features = int(X.shape[1])
        names = list(X.columns) if kind in ("pandas", "dask-dataframe") else None
        self.n_features_in_ = n_features
        if names is not None and all(isinstance(n, str) for n in names):
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        feature_names = np.asarray(names, dtype=object) if names is not None else None
        selector_input = empty_frame(X.dtypes) if kind == "dask-dataframe" else X

        entries, indices = [], {}
        for name, transformer, spec in self.transformers:
            columns, chosen = resolve_columns(
                spec,
                name=name,
                n_features=n_features,
                feature_names=feature_names,
                selector_input=selector_input,
            )
            entries.append((name, transformer, columns))
            indices[name] = chosen
        used = {i for chosen in indices.values() for i in chosen}
        remaining = [i for i in range(n_features) if i not in used]
        indices["remainder"] = remaining
        if remaining:
            entries.append(
                ("remainder", self.remainder, remainder_columns(self.transformers, remaining, feature_names))
            )
        self._input_indices = indices

        active = [
            (name, transformer, columns)
            for name, transformer, columns in entries
            if not (isinstance(transformer, str) and transformer == "drop")
            and not is_empty_selection(columns)
        ]
        fitted: dict[str, Any] = {}
        if lazy:
            outputs, row_chunks = self._fit_lazy(X, kind, active, fitted, selector_input, keep_output)
        else:
            outputs = self._fit_in_memory(X, kind, y, active, fitted)
        self.transformers_ = [
            (name, fitted.get(name, transformer), columns) for name, transformer, columns in entries
        ]
        widths = {name: int(output.shape[1]) for (name, _, _), output in zip(active, outputs, strict=True)}
        self._record_output_indices(widths)
        if lazy:
            n_inputs = [len(self._input_indices[name]) for name, _, _ in active]
            self.sparse_output_ = lazy_density_says_sparse(n_inputs, outputs, self.sparse_threshold)
        else:
            self.sparse_output_ = density_says_sparse(outputs, self.sparse_threshold)
        if not keep_output:
            return None
        if not outputs:
            return self._empty_output(X, kind)
        if lazy:
            return self._stack_lazy(outputs, row_chunks=row_chunks)
        return self._stack_in_memory(outputs)

    def _fit_in_memory(
        self, X: Any, kind: str, y: Any, active: list[Any], fitted: dict[str, Any]
    ) -> list[Any]:
        outputs = []
        for name, transformer, columns in active:
            subset = select_columns(X, kind, self._input_indices[name], scalar=is_scalar_spec(columns))
            estimator = passthrough() if is_passthrough(transformer) else clone(transformer)
            try:
                output = estimator.fit_transform(subset, y)
            except ValueError as err:
                if "Expected 2D array, got 1D array instead" in str(err):
                    msg = (
                        f"The {name!r} transformer expects 2-D input, but a single column was selected "
                        f"({columns!r}): select a list of columns ([{columns!r}]) to hand it a 2-D input."
                    )
                    raise ValueError(msg) from err
                raise
            fitted[name] = estimator
            outputs.append(self._weighted(name, checked_output(output, name)))
        return outputs

    def _fit_lazy(
        self,
        X: Any,
        kind: str,
        active: list[Any],
        fitted: dict[str, Any],
        selector_input: Any,
        keep_output: bool,
    ) -> tuple[list[Any], tuple[int, ...] | None]:
        subsets, learning = {}, {}
        for name, transformer, columns in active:
            scalar = is_scalar_spec(columns)
            subsets[name] = select_columns(X, kind, self._input_indices[name], scalar=scalar)
            if is_passthrough(transformer):
                fitted[name] = passthrough()
                continue
            estimator = clone(transformer)
            fitted[name] = estimator
            if is_dask_aware(estimator):
                learning[name] = estimator
            elif not is_stateless(estimator):
                raise TypeError(refusal(name, estimator))
        # one pass over the data for the statistics of all transformers (one per step of a Pipeline child),
        # (no row counts: dask 2026.8 mixes up the results of ``X.map_partitions(len)`` computed together with
        # array reductions; the next estimator counts them with y's anyway)
        fit_in_rounds(learning, subsets)
        partitions = X.to_delayed() if kind == "dask-dataframe" else None  # read once for all transformers
        outputs = []
        for name, _, columns in active:
            estimator, indices = fitted[name], self._input_indices[name]
            if name not in learning:
                # stateless: fitted on the empty selection (it reads column names and counts only)
                estimator.fit(empty_selection(selector_input, kind, indices, columns, self.n_features_in_))
            outputs.append(
                self._lazy_output(
                    name,
                    estimator,
                    subsets[name],
                    selector_input,
                    kind,
                    columns,
                    indices,
                    None,
                    partitions,
                    X,
                )
            )
        row_chunks = None
        return outputs, row_chunks

    def _lazy_output(
        self,
        name: str,
        estimator: Any,
        subset: Any,
        selector_input: Any,
        kind: str,
        columns: Any,
        indices: list[int],
        width: int | None,
        partitions: Any,
        X: Any,
    ) -> Any:
        """One fitted transformer's lazy output on dask input (``width`` known after fit, else None)."""
        dask_aware = is_dask_aware(estimator)
        passthrough = is_passthrough_fitted(estimator)
        sparse, dtype = False, np.dtype(np.float64)
        if passthrough:
            width, dtype = (
                len(indices),
                passthrough_dtype(name, columns, selector_input, subset, kind, indices),
            )
        elif not dask_aware:
            # A scikit-learn transformer: its output on an empty selection gives the layout.
            empty = empty_selection(selector_input, kind, indices, columns, self.n_features_in_)
            try:
                sample = estimator.transform(empty)
            except Exception:  # some transformers refuse 0 rows: the width recorded in fit is enough
                if width is None:
                    raise
            else:
                width, sparse = int(sample.shape[1]), sp.issparse(sample)
        output = lazy_output(
            "passthrough" if passthrough else estimator,
            subset,
            name=name,
            width=-1 if width is None else width,
            sparse=sparse,
            dtype=dtype,
            dask_aware=dask_aware,
            partitions=partitions,
            columns=labels_of(X, indices, columns) if partitions is not None else None,
        )
        return self._weighted(name, output)

    def _weighted(self, name: str, output: Any) -> Any:
        weight = (self.transformer_weights or {}).get(name)
        return output if weight is None or weight == 1 else output * weight

    def _record_output_indices(self, widths: dict[str, int]) -> None:
        start, self.output_indices_ = 0, {}
        for name, width in widths.items():
            self.output_indices_[name] = slice(start, start + width)
            start += width
        for name in [n for n, _, _ in self.transformers] + ["remainder"]:
            self.output_indices_.setdefault(name, slice(0, 0))

    # ---- transforming ------------------------------------------------------------------------------------

    def transform(self, X: Any) -> Any:
        """Transform each column subset with its fitted transformer and stack the outputs; lazy for dask.

        A DataFrame's columns are taken by name when the transformer was fitted on a DataFrame (their order
        may differ, and columns not used may be added); otherwise by position.

        Parameters
        ----------
        X : {pandas or dask DataFrame, array-like, dask array} of shape (n_samples, n_features)
            The input table.

        Returns
        -------
        {ndarray, sparse matrix, dask.array.Array} of shape (n_samples, n_output_features)
            numpy or CSR for in-memory input; a lazy dask array (one row block per partition or row block,
            row counts unknown for a dask DataFrame) for dask input.

        Raises
        ------
        ValueError
            If columns used in fit are missing, or an array has another number of columns than in fit.
        """
        check_is_fitted(self, "transformers_")
        X, kind = self._check_input(X)
        by_name = hasattr(self, "feature_names_in_") and kind in ("pandas", "dask-dataframe")
        if by_name:
            needed = {
                self.feature_names_in_[i]
                for name, transformer, _ in self.transformers_
                if not (isinstance(transformer, str) and transformer == "drop")
                for i in self._input_indices.get(name, [])
            }
            missing = sorted(needed - set(X.columns))
            if missing:
                msg = (
                    f"columns are missing: {missing}. The ColumnTransformer was fitted on a table with these "
                    "columns; pass a table that has them (extra columns are ignored)."
                )
                raise ValueError(msg)
            positions = {column: i for i, column in enumerate(X.columns)}
            mapping = [positions[n] for n in self.feature_names_in_] if not missing else []
        else:
            if int(X.shape[1]) != self.n_features_in_:
                msg = (
                    f"X has {int(X.shape[1])} features, but ColumnTransformer is expecting {self.n_features_in_} "
                    "features as input."
                )
                raise ValueError(msg)
            mapping = list(range(self.n_features_in_))
        outputs = []
        lazy = kind in ("dask", "dask-dataframe")
        selector_input = empty_frame(X.dtypes) if kind == "dask-dataframe" else X
        partitions = X.to_delayed() if kind == "dask-dataframe" else None  # read once for all transformers
        for name, transformer, columns in self.transformers_:
            if (isinstance(transformer, str) and transformer == "drop") or is_empty_selection(columns):
                continue
            chosen = [mapping[i] for i in self._input_indices[name]]
            subset = select_columns(X, kind, chosen, scalar=is_scalar_spec(columns))
            if lazy:
                width = self.output_indices_[name].stop - self.output_indices_[name].start
                outputs.append(
                    self._lazy_output(
                        name, transformer, subset, selector_input, kind, columns, chosen, width, partitions, X
                    )
                )
            else:
                outputs.append(self._weighted(name, checked_output(transformer.transform(subset), name)))
        if not outputs:
            return self._empty_output(X, kind)
        if lazy:
            return self._stack_lazy(outputs, row_chunks=None)
        return self._stack_in_memory(outputs)

    def _stack_in_memory(self, outputs: list[Any]) -> Any:
        if self.sparse_output_:
            try:
                return sp.hstack([sp.csr_matrix(o, dtype=numeric_dtype(o)) for o in outputs]).tocsr()
            except (TypeError, ValueError) as err:
                msg = "For a sparse output, all columns should be numeric or convertible to numeric."
                raise ValueError(msg) from err
        return np.hstack([o.toarray() if sp.issparse(o) else o for o in outputs])

    def _stack_lazy(self, outputs: list[Any], *, row_chunks: tuple[int, ...] | None) -> Any:
        dtype = np.result_type(*[o.dtype for o in outputs], np.float32)
        dtype = dtype if dtype in (np.dtype("float32"), np.dtype("float64")) else np.dtype("float64")
        return stack_outputs(outputs, sparse_output=self.sparse_output_, dtype=dtype, row_chunks=row_chunks)

    def _empty_output(self, X: Any, kind: str) -> Any:
        if kind in ("dask", "dask-dataframe"):
            msg = "The ColumnTransformer produces no columns (every transformer is 'drop' or selects none)."
            raise ValueError(msg)
        return np.zeros((X.shape[0], 0))

    # ---- names -------------------------------------------------------------------------------------------

    @property
    def named_transformers_(self) -> Bunch:
        """The fitted transformers by name (a :class:`~sklearn.utils.Bunch`)."""
        check_is_fitted(self, "transformers_")
        return Bunch(**{name: transformer for name, transformer, _ in self.transformers_})

    def __getitem__(self, key: str) -> Any:
        """The fitted transformer named ``key``."""
        try:
            return self.named_transformers_[key]
        except KeyError as err:
            msg = f"{key!r} is not a valid transformer name"
            raise KeyError(msg) from err

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns, prefixed as ``verbose_feature_names_out`` says.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input column names; ``feature_names_in_`` (or ``x0``, ``x1``, ...) when None. When given and
            ``feature_names_in_`` exists, they must be equal.

        Returns
        -------
        ndarray of str objects

        Raises
        ------
        ValueError
            If ``input_features`` differ from the names seen in fit, or names are not unique without prefix.
        AttributeError
            If a transformer does not provide ``get_feature_names_out``.
        """
        check_is_fitted(self, "transformers_")
        fitted_names = getattr(self, "feature_names_in_", None)
        if input_features is None:
            input_features = (
                fitted_names if fitted_names is not None else [f"x{i}" for i in range(self.n_features_in_)]
            )
        input_features = np.asarray(input_features, dtype=object)
        if fitted_names is not None and not np.array_equal(input_features, fitted_names):
            msg = "input_features is not equal to feature_names_in_"
            raise ValueError(msg)
        if len(input_features) != self.n_features_in_:
            msg = (
                f"input_features should have length equal to number of features ({self.n_features_in_}), got "
                f"{len(input_features)}"
            )
            raise ValueError(msg)
        per_transformer = []
        for name, transformer, columns in self.transformers_:
            if (isinstance(transformer, str) and transformer == "drop") or is_empty_selection(columns):
                continue
            names = input_features[self._input_indices[name]]
            if not hasattr(transformer, "get_feature_names_out"):
                msg = f"Transformer {name} (type {type(transformer).__name__}) does not provide get_feature_names_out."
                raise AttributeError(msg)
            per_transformer.append((name, transformer.get_feature_names_out(names)))
        if not per_transformer:
            return np.array([], dtype=object)
        return prefixed_names(per_transformer, self.verbose_feature_names_out)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        try:
            tags.input_tags.sparse = all(
                get_tags(t).input_tags.sparse
                for _, t, _ in self.transformers
                if t not in ("passthrough", "drop")
            )
        except Exception:  # transformers not given as scikit-learn expects: fit says what is wrong
            pass
        return tags
