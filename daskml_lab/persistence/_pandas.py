"""pandas objects inside a model (``history_``, the shard report): stored as plain values, rebuilt on load.

skops stores pandas objects only through pickle, which :func:`~daskml_lab.persistence.load` never runs.
Before saving, every DataFrame, Series and Index reachable from the model is replaced (in a deep copy, the
model is not changed) by a :class:`_StoredPandas` of numpy arrays and lists; after loading, each stand-in is
replaced by the object it stands for.
"""

from __future__ import annotations

import copy
import math
import numbers
import types
from typing import Any

import numpy as np
import pandas as pd

from daskml_lab.persistence._trusted import register_trusted_type

__all__ = ["has_state", "restore_pandas", "with_pandas_stored"]


def with_pandas_stored(model: Any) -> Any:
    """``model`` itself when it holds no pandas object, else a deep copy with each one a :class:`_StoredPandas`."""
    found: dict[int, Any] = {}
    _find_pandas(model, found, set())
    if not found:
        return model
    # deepcopy substitutes every memo entry for the object of that id: the frames become _StoredPandas.
    memo: dict[int, Any] = {key: _pack_pandas(obj) for key, obj in found.items()}
    return copy.deepcopy(model, memo)


def restore_pandas(obj: Any, seen: set[int]) -> Any:
    """Replace every _StoredPandas reachable from ``obj`` by the pandas object it stands for, in place."""
    if isinstance(obj, _StoredPandas):
        return _unpack_pandas(obj)
    if id(obj) in seen or obj is None or isinstance(obj, str | bytes | numbers.Number | np.ndarray | type):
        return obj
    seen.add(id(obj))
    if isinstance(obj, dict):
        for key, value in list(obj.items()):
            obj[key] = restore_pandas(value, seen)
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            obj[index] = restore_pandas(value, seen)
    elif isinstance(obj, tuple):
        restored = tuple(restore_pandas(value, seen) for value in obj)
        if any(new is not old for new, old in zip(restored, obj, strict=True)):
            return type(obj)(restored) if type(obj) is tuple else type(obj)(*restored)
    elif has_state(obj):
        attributes = vars(obj)
        for key, value in list(attributes.items()):
            new = restore_pandas(value, seen)
            if new is not value:
                attributes[key] = new
    return obj


def _find_pandas(obj: Any, found: dict[int, Any], seen: set[int]) -> None:
    """Record every pandas object reachable through containers and instance attributes."""
    if id(obj) in seen or obj is None or isinstance(obj, str | bytes | numbers.Number | np.ndarray | type):
        return
    seen.add(id(obj))
    if isinstance(obj, pd.DataFrame | pd.Series | pd.Index):
        found[id(obj)] = obj
    elif isinstance(obj, dict):
        for value in obj.values():
            _find_pandas(value, found, seen)
    elif isinstance(obj, list | tuple | set | frozenset):
        for value in obj:
            _find_pandas(value, found, seen)
    elif has_state(obj):
        for value in vars(obj).values():
            _find_pandas(value, found, seen)


def has_state(obj: Any) -> bool:
    """Whether ``obj`` is an instance whose attributes may hold model state (not a function or module)."""
    return hasattr(obj, "__dict__") and not isinstance(obj, _STATELESS)


_STATELESS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type,
)


@register_trusted_type
class _StoredPandas:
    """A pandas object as plain values: what a saved model holds in place of a DataFrame, Series or Index.

    Model files name this class ``daskml_lab.persistence._StoredPandas`` (where it was defined before
    ``persistence`` became a package), so its ``__module__`` says so and the package re-exports it: files
    saved before and after load alike.

    Attributes
    ----------
    kind : {"frame", "series", "index", "range-index"}
        What it stands for.
    fields : dict
        ``values`` (numpy array, or a list for non-numpy dtypes), ``dtype`` (its string), ``name``,
        ``index`` and ``columns`` (nested stand-ins), or ``start``/``stop``/``step`` of a RangeIndex.
    """

    __module__ = "daskml_lab.persistence"  # the name model files record (see above)

    def __init__(self, kind: str, fields: dict[str, Any]) -> None:
        self.kind = kind
        self.fields = fields


def _pack_pandas(obj: Any) -> _StoredPandas:
    if isinstance(obj, pd.DataFrame):
        columns = [_pack_values(obj.iloc[:, i]) for i in range(obj.shape[1])]
        return _StoredPandas(
            "frame", {"columns": _pack_pandas(obj.columns), "index": _pack_pandas(obj.index), "data": columns}
        )
    if isinstance(obj, pd.Series):
        return _StoredPandas(
            "series", {**_pack_values(obj), "name": _label(obj.name), "index": _pack_pandas(obj.index)}
        )
    if isinstance(obj, pd.MultiIndex):
        msg = "A model attribute holds a pandas MultiIndex, which save() cannot store; reset the index first."
        raise TypeError(msg)
    if isinstance(obj, pd.RangeIndex):
        return _StoredPandas(
            "range-index", {"start": obj.start, "stop": obj.stop, "step": obj.step, "name": _label(obj.name)}
        )
    return _StoredPandas("index", {**_pack_values(obj), "name": _label(obj.name)})


def _pack_values(values: Any) -> dict[str, Any]:
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        return {"values": np.array(values.to_numpy(), copy=True), "dtype": dtype.str}
    items = [_python_value(v) for v in values.to_numpy(dtype=object).tolist()]
    return {"values": items, "dtype": str(dtype)}


def _python_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _label(name: Any) -> Any:
    return name.item() if isinstance(name, np.generic) else name


def _unpack_pandas(stored: _StoredPandas) -> Any:
    fields = stored.fields
    try:
        if stored.kind == "frame":
            columns = _unpack_pandas(fields["columns"])
            index = _unpack_pandas(fields["index"])
            data = {position: _unpack_values(column) for position, column in enumerate(fields["data"])}
            frame = pd.DataFrame(data, index=index)
            frame.columns = columns
            return frame
        if stored.kind == "series":
            index = _unpack_pandas(fields["index"])
            return pd.Series(_unpack_values(fields), index=index, name=fields["name"])
        if stored.kind == "range-index":
            return pd.RangeIndex(fields["start"], fields["stop"], fields["step"], name=fields["name"])
        if stored.kind == "index":
            return pd.Index(_unpack_values(fields), name=fields["name"])
    except (KeyError, TypeError, ValueError) as err:
        msg = (
            f"A stored pandas object of the model is malformed ({type(err).__name__}: {err}); the file is "
            "corrupt."
        )
        raise ValueError(msg) from err
    msg = f"A stored pandas object of the model has an unknown kind {stored.kind!r}; the file is corrupt."
    raise ValueError(msg)


def _unpack_values(fields: dict[str, Any]) -> Any:
    values, dtype = fields["values"], fields["dtype"]
    if isinstance(values, np.ndarray):
        return values.astype(np.dtype(dtype), copy=False)
    if dtype == "object":
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    return pd.array(values, dtype=pd.api.types.pandas_dtype(dtype))
