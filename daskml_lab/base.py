"""Shared estimator machinery: parameter constraints, fitted checks, input and output handling.

Every estimator of the package derives from :class:`DaskMLEstimator` and declares a
``_parameter_constraints`` table; ``fit`` starts with :meth:`DaskMLEstimator._validate_params`, then
:meth:`DaskMLEstimator._validate_fit_data`; ``predict``-like methods start with
:meth:`DaskMLEstimator._validate_predict_data` and finish with :meth:`DaskMLEstimator._wrap_output`.

Only public scikit-learn APIs are used here (``BaseEstimator``, ``check_is_fitted``, the tags dataclasses).
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import dask.array as da
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from daskml_lab._runtime.client import current_client, seceded_in_task
from daskml_lab._runtime.memory import check_client_data, measure_workers
from daskml_lab.data import InputOrigin, wrap_output
from daskml_lab.data.validation import (
    ValidatedData,
    check_array,
    check_classes,
    check_feature_names,
    check_n_features,
    check_X_y,
    fitted_feature_names,
)
from daskml_lab.monitoring import task_prefix

__all__ = [
    "ArrayLike",
    "DaskMLEstimator",
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "Options",
    "check_params",
    "class_weight_vector",
    "effective_weights",
    "encode_labels",
]


class InvalidParameterError(ValueError, TypeError):
    """A parameter of an estimator has a value or type its constraints table does not allow.

    It derives from both ``ValueError`` and ``TypeError``, as scikit-learn's exception of the same name does.
    """


@dataclass(frozen=True)
class Interval:
    """A numeric range constraint, e.g. ``Interval(numbers.Real, 0, None, closed="neither")`` for ``C > 0``.

    Parameters
    ----------
    kind : type
        ``numbers.Integral`` or ``numbers.Real``.
    left, right : float or None
        Bounds; ``None`` is unbounded.
    closed : {"left", "right", "both", "neither"}, default="both"
        Which bounds belong to the range.
    """

    kind: type
    left: float | None
    right: float | None
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` lies in the range and has the right type."""
        if isinstance(value, bool | np.bool_) or not isinstance(value, self.kind):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def describe(self) -> str:
        """Human-readable form, e.g. ``a float in the range (0, inf)``."""
        kind = "an int" if self.kind is numbers.Integral else "a float"
        left_bracket = "[" if self.closed in ("left", "both") else "("
        right_bracket = "]" if self.closed in ("right", "both") else ")"
        left = "-inf" if self.left is None else f"{self.left:g}"
        right = "inf" if self.right is None else f"{self.right:g}"
        return f"{kind} in the range {left_bracket}{left}, {right}{right_bracket}"


@dataclass(frozen=True)
class Options:
    """A constraint to a fixed set of values, e.g. ``Options({"lbfgs", "gd"})``."""

    values: frozenset[Any]

    def __init__(self, values: Iterable[Any]) -> None:
        object.__setattr__(self, "values", frozenset(values))

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is one of the options."""
        try:
            return value in self.values
        except TypeError:  # unhashable values are never options
            return False

    def describe(self) -> str:
        """Human-readable form."""
        return "a str among " + "{" + ", ".join(repr(v) for v in sorted(self.values, key=str)) + "}"


@dataclass(frozen=True)
class ArrayLike:
    """Parameter constraint: a list, tuple or array of numbers (never a string, unlike ``"array-like"``)."""

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is a non-string sequence or array."""
        return isinstance(value, list | tuple | np.ndarray) or (
            hasattr(value, "__array__") and not isinstance(value, str | bytes)
        )

    def describe(self) -> str:
        """Human-readable form."""
        return "an array-like"


class HasMethods:
    """A constraint to objects providing methods, e.g. ``HasMethods(["fit", "predict"])``."""

    methods: tuple[str, ...]

    def __init__(self, methods: Iterable[str]) -> None:
        object.__setattr__(self, "methods", tuple(methods))

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has every method."""
        return all(callable(getattr(value, name, None)) for name in self.methods)

    def describe(self) -> str:
        """Human-readable form."""
        return f"an object implementing {', '.join(repr(m) for m in self.methods)}"


_NAMED_CONSTRAINTS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "boolean": (lambda v: isinstance(v, bool | np.bool_), "an instance of 'bool'"),
    "random_state": (
        lambda v: (
            v is None
            or isinstance(v, np.random.RandomState | np.random.Generator)
            or (isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= v < 2**32)
        ),
        "an int in the range [0, 4294967295], an instance of 'numpy.random.RandomState' or None",
    ),
    "array-like": (
        lambda v: not isinstance(v, str | bytes) and (hasattr(v, "__len__") or hasattr(v, "__array__")),
        "an array-like",
    ),
    "dict": (lambda v: isinstance(v, Mapping), "an instance of 'dict'"),
    "callable": (callable, "a callable"),
    "str": (lambda v: isinstance(v, str), "a str"),
}


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, str):
        return _NAMED_CONSTRAINTS[constraint][0](value)
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return bool(constraint.accepts(value))


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, str):
        return _NAMED_CONSTRAINTS[constraint][1]
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__!r}"
    return str(constraint.describe())


def check_params(estimator: BaseEstimator) -> None:
    """Check every parameter of ``estimator`` against its class's ``_parameter_constraints`` table.

    Parameters
    ----------
    estimator : BaseEstimator
        An estimator whose class defines ``_parameter_constraints``, a mapping from parameter name to a list of
        accepted constraints (:class:`Interval`, :class:`Options`, :class:`HasMethods`, a type, ``None``, or one of
        ``"boolean"``, ``"random_state"``, ``"array-like"``, ``"dict"``, ``"callable"``, ``"str"``).

    Raises
    ------
    InvalidParameterError
        Naming the parameter, the accepted values and the value given.
    """
    constraints = getattr(type(estimator), "_parameter_constraints", {})
    for name, value in estimator.get_params(deep=False).items():
        allowed = constraints.get(name)
        if allowed is None or any(_accepts(c, value) for c in allowed):
            continue
        descriptions = [_describe(c) for c in allowed]
        expected = (
            descriptions[0]
            if len(descriptions) == 1
            else ", ".join(descriptions[:-1]) + " or " + descriptions[-1]
        )
        msg = (
            f"The {name!r} parameter of {type(estimator).__name__} must be {expected}. Got {value!r} instead."
        )
        raise InvalidParameterError(msg)


def encode_labels(y: da.Array, classes: np.ndarray) -> da.Array:
    """Encode labels lazily as indices into ``classes`` (int64), block by block.

    Parameters
    ----------
    y : dask.array.Array of shape (n_samples,)
        Labels.
    classes : ndarray of shape (n_classes,)
        Sorted unique labels seen in ``fit``.

    Returns
    -------
    dask.array.Array of int64
        Lazy; an unknown label raises ``ValueError`` when its block is computed.
    """
    return y.map_blocks(_encode_labels_block, classes, dtype=np.int64, token="daskml-encode-labels")


def _encode_labels_block(block: np.ndarray, classes: np.ndarray) -> np.ndarray:
    codes = np.searchsorted(classes, block)
    codes = np.clip(codes, 0, len(classes) - 1)
    unknown = classes[codes] != block
    if np.any(unknown):
        msg = (
            f"y contains labels not seen in fit: {np.unique(block[unknown])[:5].tolist()}; "
            f"known classes are {classes.tolist()}."
        )
        raise ValueError(msg)
    return codes.astype(np.int64)


def class_weight_vector(class_weight: Any, classes: np.ndarray, class_counts: np.ndarray) -> np.ndarray:
    """Per-class weights as scikit-learn defines them, from the class counts computed in ``fit``.

    Parameters
    ----------
    class_weight : dict, "balanced" or None
        ``None`` gives ones; ``"balanced"`` gives ``n_samples / (n_classes * count)``; a dict maps labels to
        weights (missing labels weigh 1).
    classes : ndarray of shape (n_classes,)
        Sorted labels.
    class_counts : ndarray of shape (n_classes,)
        Number of samples of each class.

    Returns
    -------
    ndarray of shape (n_classes,)

    Raises
    ------
    ValueError
        If a dict names a label that is not a class.

    Examples
    --------
    >>> import numpy as np
    >>> class_weight_vector("balanced", np.array([0, 1]), np.array([30, 10]))
    array([0.66666667, 2.        ])
    """
    if class_weight is None:
        return np.ones(len(classes))
    if isinstance(class_weight, str) and class_weight == "balanced":
        counts = np.asarray(class_counts, dtype=np.float64)
        return counts.sum() / (len(classes) * np.maximum(counts, 1))
    weights = np.ones(len(classes))
    unknown = [label for label in class_weight if label not in set(classes.tolist())]
    if unknown:
        msg = (
            f"The classes {unknown} in class_weight are not present in the training labels "
            f"{classes.tolist()}. Use only labels that occur in y."
        )
        raise ValueError(msg)
    for index, label in enumerate(classes.tolist()):
        weights[index] = class_weight.get(label, 1.0)
    return weights


def effective_weights(
    codes: da.Array, sample_weight: da.Array | None, class_weights: np.ndarray, dtype: np.dtype
) -> da.Array | None:
    """Lazy per-sample weights ``sample_weight * class_weights[code]``; ``None`` when all are 1.

    Parameters
    ----------
    codes : dask.array.Array of int64
        Encoded labels.
    sample_weight : dask.array.Array or None
        User weights.
    class_weights : ndarray of shape (n_classes,)
        Weight of each class.
    dtype : numpy.dtype
        Floating dtype of the result (that of ``X``).

    Returns
    -------
    dask.array.Array or None
    """
    if sample_weight is None and np.all(class_weights == 1.0):
        return None
    return da.map_blocks(
        _sample_weights_block,
        codes,
        sample_weight,
        np.asarray(class_weights, dtype=np.float64),
        out_dtype=np.dtype(dtype),
        dtype=dtype,
        meta=np.empty((0,), dtype=dtype),
        token=task_prefix("sample weights"),
    )


def _sample_weights_block(
    codes: np.ndarray, sample_weight: np.ndarray | None, class_weights: np.ndarray, out_dtype: np.dtype
) -> np.ndarray:
    weights = class_weights[codes]
    if sample_weight is not None:
        weights = weights * sample_weight
    return weights.astype(out_dtype, copy=False)


def _in_memory_nbytes(obj: Any) -> float:
    """Bytes of a numpy array or pandas object (0 for anything else: dask, xarray, sparse, lists, None)."""
    if isinstance(obj, np.ndarray):
        return float(obj.nbytes)
    if isinstance(obj, pd.DataFrame):
        return float(obj.memory_usage(index=False, deep=False).sum())
    if isinstance(obj, pd.Series):
        return float(obj.memory_usage(index=False, deep=False))
    return 0.0


def _refuse_client_data_beyond_workers(X: Any, y: Any, sample_weight: Any) -> None:
    """Refuse dense in-memory training data larger than the free memory of the current cluster's workers.

    Such data can only reach the workers through the task graph, all of it (see
    :func:`daskml_lab._runtime.memory.check_client_data`); checked before anything is converted or sent.
    Only numpy and pandas input is measured: the dense size of sparse input says nothing of what is sent.
    """
    if not isinstance(X, np.ndarray | pd.DataFrame):
        return
    client = current_client()
    if client is None:
        return
    nbytes = sum(_in_memory_nbytes(part) for part in (X, y, sample_weight))
    check_client_data(nbytes, measure_workers(client), address=str(client.scheduler.address))


#: Public methods that compute on the cluster whatever the input (fits and scores).
_COMPUTING_METHODS = ("fit", "partial_fit", "fit_transform", "fit_predict", "score")


def _task_safe(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` run inside :func:`daskml_lab._runtime.client.seceded_in_task` (nothing changes outside tasks)."""

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        with seceded_in_task():
            return method(self, *args, **kwargs)

    return run


class DaskMLEstimator(BaseEstimator):
    """Base class of the package's estimators: the shared steps of ``fit`` and ``predict``.

    Subclasses declare ``_parameter_constraints`` and call, in order, :meth:`_validate_params`,
    :meth:`_validate_fit_data`, their computation, then set fitted attributes; prediction methods call
    :meth:`_validate_predict_data` and :meth:`_wrap_output`.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}
    #: Whether scipy sparse input (and dask arrays of CSR blocks) is supported.
    _accepts_sparse: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Methods that compute may be called inside a dask task (client.submit, joblib's dask backend, a
        # dask-ml search): there they must not hold the worker's thread while their own tasks wait for one.
        # Prediction methods compute only for in-memory input, in ``wrap_output``, which handles it itself.
        for name in _COMPUTING_METHODS:
            method = cls.__dict__.get(name)
            if inspect.isfunction(method):
                setattr(cls, name, _task_safe(method))

    def _validate_params(self) -> None:
        check_params(self)

    def _validate_fit_data(
        self,
        X: Any,
        y: Any = None,
        *,
        sample_weight: Any = None,
        y_numeric: bool = False,
        requires_y: bool = True,
    ) -> ValidatedData:
        """Validate training data and record ``n_features_in_`` (and ``feature_names_in_`` for frames).

        ``requires_y=False`` is for unsupervised estimators, which accept ``y=None``; otherwise a missing ``y``
        raises the "requires y" error.
        """
        # first: converting in-memory input hashes all of it, and it could never reach the workers anyway
        _refuse_client_data_beyond_workers(X, y, sample_weight)
        allow_nan = self._allows_nan()
        if y is None and not requires_y:
            X_arr, origin = check_array(X, accept_sparse=self._accepts_sparse, allow_nan=allow_nan)
            data = ValidatedData(X_arr, None, None, origin)
        else:
            data = check_X_y(
                X,
                y,
                sample_weight=sample_weight,
                y_numeric=y_numeric,
                accept_sparse=self._accepts_sparse,
                allow_nan=allow_nan,
            )
        self.n_features_in_ = data.n_features
        names = fitted_feature_names(data.origin.feature_names)
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return data

    def _validate_predict_data(self, X: Any) -> tuple[da.Array, InputOrigin]:
        """Check the estimator is fitted and ``X`` has the features seen in ``fit``; return X lazily."""
        check_is_fitted(self)
        X_arr, origin = check_array(
            X, accept_sparse=self._accepts_sparse, allow_nan=self._allows_nan(), known_chunks=False
        )
        self._check_features(X_arr, origin)
        return X_arr, origin

    def _allows_nan(self) -> bool:
        """Whether NaN may pass the input gate: the ``allow_nan`` input tag (infinity never passes)."""
        return bool(get_tags(self).input_tags.allow_nan)

    def _check_features(self, X: da.Array, origin: InputOrigin) -> None:
        """The columns of validated ``X`` against ``fit``: their number, then their names and order.

        Names are checked as scikit-learn checks them (``ValueError`` when renamed, reordered or missing; a
        ``UserWarning`` for an unnamed array after a fit on names), from the input's metadata only.
        """
        check_n_features(X, self.n_features_in_, estimator_name=type(self).__name__)
        check_feature_names(self, origin.feature_names, int(X.shape[1]))

    @staticmethod
    def _wrap_output(
        result: da.Array, origin: InputOrigin, *, columns: Any = None, name: str | None = None
    ) -> Any:
        """Return ``result`` in the user's type: numpy for in-memory input, dask or xarray otherwise."""
        return wrap_output(result, origin, columns=columns, name=name)

    @staticmethod
    def _check_classes(classes: np.ndarray) -> np.ndarray:
        return check_classes(classes)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self._accepts_sparse
        return tags
