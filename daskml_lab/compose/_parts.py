"""The transformers of a ColumnTransformer, by kind: what each needs to be fitted and stacked.

- transformers following the statistics protocol of :mod:`daskml_lab.preprocessing` (``_fit_plan``,
  ``_fit_finish``) fit from lazy statistics and transform dask input themselves;
- stateless ones (``"passthrough"``, a ``FunctionTransformer``: scikit-learn's ``requires_fit=False`` tag)
  need no data;
- any other scikit-learn transformer learns from the data: fitted on in-memory input only, applied block by
  block to dask input once fitted.
"""

from __future__ import annotations

import numbers
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import get_tags

from daskml_lab.compose._columns import is_scalar_spec, select_columns
from daskml_lab.compose._rounds import has_protocol, steps_of

__all__ = [
    "checked_output",
    "density_says_sparse",
    "empty_selection",
    "is_dask_aware",
    "is_passthrough",
    "is_passthrough_fitted",
    "is_sparse_output",
    "is_stateless",
    "lazy_density_says_sparse",
    "numeric_dtype",
    "passthrough",
    "passthrough_dtype",
    "prefixed_names",
    "refusal",
    "remainder_columns",
]

#: scikit-learn transformers that learn from the data, and the daskml_lab class to use on dask input.
_DASK_ALTERNATIVES = {
    "StandardScaler": "StandardScaler",
    "MinMaxScaler": "MinMaxScaler",
    "RobustScaler": "RobustScaler",
    "SimpleImputer": "SimpleImputer",
    "OneHotEncoder": "OneHotEncoder",
    "OrdinalEncoder": "OrdinalEncoder",
}


def is_dask_aware(transformer: Any) -> bool:
    """Whether ``transformer`` fits from lazy statistics (the protocol of :mod:`daskml_lab.preprocessing`).

    A Pipeline is when one of its steps is and the others are stateless: it is fitted step by step, and it
    transforms dask input itself.
    """
    steps = steps_of(transformer)
    if not isinstance(transformer, Pipeline):
        return has_protocol(transformer)
    return any(has_protocol(s) for s in steps) and all(has_protocol(s) or is_stateless(s) for s in steps)


def is_stateless(transformer: Any) -> bool:
    """Whether fitting ``transformer`` needs no data (scikit-learn's ``requires_fit=False`` tag)."""
    try:
        return not get_tags(transformer).requires_fit
    except Exception:  # a third-party object without tags: assume it learns from the data
        return False


def passthrough() -> FunctionTransformer:
    """What ``"passthrough"`` stands for once fitted, as in scikit-learn (names kept one to one)."""
    return FunctionTransformer(accept_sparse=True, check_inverse=False, feature_names_out="one-to-one")


def _key_type(spec: Any) -> str | None:
    """``"str"``, ``"int"`` or ``"bool"``: how a column specification names columns (None: a callable)."""
    if callable(spec):
        return None
    values = (
        [spec]
        if isinstance(spec, str | numbers.Integral | slice)
        else list(np.asarray(spec, dtype=object).ravel())
    )
    kinds = set()
    for value in values:
        if isinstance(value, slice):
            value = value.start if value.start is not None else value.stop
        if isinstance(value, bool | np.bool_):
            kinds.add("bool")
        elif isinstance(value, str):
            kinds.add("str")
        elif isinstance(value, numbers.Integral) or value is None:
            kinds.add("int")
    return kinds.pop() if len(kinds) == 1 else None


def remainder_columns(transformers: Any, remaining: list[int], feature_names: np.ndarray | None) -> Any:
    """The remainder's columns written as the other specifications are (names, mask or positions)."""
    kinds = {_key_type(spec) for _, _, spec in transformers}
    if kinds == {"str"} and feature_names is not None:
        return [feature_names[i] for i in remaining]
    if kinds == {"bool"} and feature_names is not None:
        return [i in set(remaining) for i in range(len(feature_names))]
    return remaining


def empty_selection(selector_input: Any, kind: str, indices: list[int], columns: Any, n_features: int) -> Any:
    """The selected columns of an input with no rows: what stateless transformers are fitted on."""
    if kind == "dask-dataframe":
        return select_columns(selector_input, "pandas", indices, scalar=is_scalar_spec(columns))
    dtype = getattr(selector_input, "dtype", np.float64)
    return select_columns(
        np.empty((0, n_features), dtype=dtype), "numpy", indices, scalar=is_scalar_spec(columns)
    )


def passthrough_dtype(
    name: str, columns: Any, selector_input: Any, subset: Any, kind: str, indices: list[int]
) -> Any:
    """The dtype of passed-through columns of dask input, which must be numeric."""
    dtypes = [selector_input.dtypes.iloc[i] for i in indices] if kind == "dask-dataframe" else [subset.dtype]
    if not all(isinstance(t, np.dtype) and t.kind in "biuf" for t in dtypes):
        msg = (
            f"The columns passed through by {name!r} ({columns!r}) are not all numeric "
            f"({[str(t) for t in dtypes]}); the output of a ColumnTransformer on dask input is a numeric array. "
            "Encode them (daskml_lab.preprocessing.OneHotEncoder or OrdinalEncoder) or drop them."
        )
        raise TypeError(msg)
    return np.result_type(*dtypes)


def is_passthrough(transformer: Any) -> bool:
    return isinstance(transformer, str) and transformer == "passthrough"


def is_passthrough_fitted(estimator: Any) -> bool:
    return (
        isinstance(estimator, FunctionTransformer)
        and estimator.func is None
        and estimator.feature_names_out == "one-to-one"
    )


def is_sparse_output(output: Any) -> bool:
    return sp.issparse(getattr(output, "_meta", None))


def numeric_dtype(output: Any) -> Any:
    dtype = getattr(output, "dtype", None)
    return None if dtype is not None and np.dtype(dtype).kind in "biuf" else np.float64


def checked_output(output: Any, name: str) -> Any:
    if getattr(output, "ndim", 0) != 2 and not isinstance(output, pd.DataFrame):
        msg = f"The output of the {name!r} transformer should be 2D (numpy array, scipy sparse array, dataframe)."
        raise ValueError(msg)
    return output.to_numpy() if isinstance(output, pd.DataFrame) else output


def refusal(name: str, estimator: Any) -> str:
    """Why ``estimator`` cannot be fitted on dask input, and what to use instead."""
    culprit, where = estimator, f"The {name!r} transformer ({type(estimator).__name__})"
    if isinstance(estimator, Pipeline):
        learning = [s for s in steps_of(estimator) if not (has_protocol(s) or is_stateless(s))]
        if learning:
            culprit = learning[0]
            where = f"The step {type(culprit).__name__} of the {name!r} Pipeline"
    alternative = _DASK_ALTERNATIVES.get(type(culprit).__name__)
    instead = (
        f"use daskml_lab.preprocessing.{alternative}, which fits from one blocked pass"
        if alternative
        else "use a daskml_lab.preprocessing transformer, or fit on a pandas DataFrame (ddf.compute()) if it "
        "fits in memory"
    )
    return (
        f"{where} learns from the data, but it cannot be fitted on dask input without bringing all of it to "
        f"the client; {instead}."
    )


def density_says_sparse(outputs: list[Any], sparse_threshold: float) -> bool:
    """scikit-learn's rule on in-memory outputs: sparse when some are and the density is below the threshold."""
    if not any(sp.issparse(o) for o in outputs):
        return False
    nnz = sum(o.nnz if sp.issparse(o) else o.shape[0] * o.shape[1] for o in outputs)
    total = sum(o.shape[0] * o.shape[1] for o in outputs)
    return bool(total and nnz / total < sparse_threshold)


def lazy_density_says_sparse(n_inputs: list[int], outputs: list[Any], sparse_threshold: float) -> bool:
    """The same rule on lazy outputs, with one non-zero per input column and row for sparse outputs.

    Counting the non-zeros would take a second pass over the data; the count is exact for one-hot encoding.
    """
    sparse = [is_sparse_output(o) for o in outputs]
    if not any(sparse):
        return False
    nnz = sum(
        min(n, int(o.shape[1])) if s else int(o.shape[1])
        for n, o, s in zip(n_inputs, outputs, sparse, strict=True)
    )
    total = sum(int(o.shape[1]) for o in outputs)
    return bool(total and nnz / total < sparse_threshold)


def prefixed_names(per_transformer: list[tuple[str, Any]], verbose: Any) -> np.ndarray:
    """The output names of a ColumnTransformer: each transformer's, prefixed as ``verbose_feature_names_out`` says."""
    if verbose is True or isinstance(verbose, str) or callable(verbose):
        if verbose is True:
            verbose = "{transformer_name}__{feature_name}"
        if isinstance(verbose, str):
            template = verbose

            def verbose(transformer_name: str, feature_name: str) -> str:
                return template.format(transformer_name=transformer_name, feature_name=feature_name)

        return np.asarray(
            [verbose(name, f) for name, features in per_transformer for f in features], dtype=object
        )
    counts = Counter(f for _, features in per_transformer for f in features)
    overlap = sorted(n for n, count in counts.most_common(6) if count > 1)
    if overlap:
        shown = str(overlap[:5])[:-1] + ", ...]" if len(overlap) == 6 else str(overlap)
        msg = (
            f"Output feature names: {shown} are not unique. Please set verbose_feature_names_out=True to "
            "add prefixes to feature names"
        )
        raise ValueError(msg)
    return np.concatenate([np.asarray(features, dtype=object) for _, features in per_transformer])
