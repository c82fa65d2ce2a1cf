"""Partitioned coefficients in model files: written and read slice by slice, never whole on the client.

A linear model fitted with ``model_partitions`` may keep ``coef_`` in its parameter shards on the workers
(:class:`~daskml_lab.linear_model.PartitionedCoefficients`), larger than the client may hold. Saving it:

- in a copy of the model (the model is not changed), each such ``coef_`` becomes a :class:`_StoredColumns`
  stand-in (its shape, dtype, number of shards and intercept key: a few numbers in the skops payload);
- its columns are pulled from the shards :data:`SLICE_BYTES` (16 MiB) at a time and written as ``.npy`` members
  ``columns/<i>/<start>.npy`` of the model file, before the metadata, which lists every slice with its
  feature range, size and SHA-256 (``"streamed"``; such files have format version 3). The metadata is covered
  by the file's checksum or signature, so every slice is too, through its SHA-256.

Loading puts each stand-in back: a numpy array when it is at most ``daskml_lab.solvers.store.max_gather_bytes``
(or no distributed client is connected), else new parameter shards on the connected cluster filled slice by
slice. Each slice is read under the file's caps, its header checked against its bytes and its declared range,
and its SHA-256 against the metadata before it is used.
"""

from __future__ import annotations

import copy
import hashlib
import io
import math
import numbers
import os
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from daskml_lab.exceptions import ClusterRequiredError
from daskml_lab.persistence._limits import (
    MAX_MEMBER_BYTES_KEY,
    NPY_HEADER_BYTES,
    RATIO_FLOOR_BYTES,
    Limits,
    npy_header,
    read_member,
)
from daskml_lab.persistence._pandas import has_state
from daskml_lab.persistence._trusted import register_trusted_type

__all__ = ["SLICE_BYTES", "restore_columns", "with_columns_stored", "write_columns"]

#: Bytes of coefficients per slice member (the most the client holds at a time while saving or loading). At
#: the ratio cap's floor: the coefficients of keys no row touched are zeros, which deflate about 1000 to 1, like
#: a zip bomb; members this small are never refused for their ratio, and their total is capped instead.
SLICE_BYTES = RATIO_FLOOR_BYTES
_PREFIX = "columns/"


@register_trusted_type
class _StoredColumns:
    """What a saved model holds in place of partitioned coefficients: their description, not their values.

    Attributes
    ----------
    index : int
        Position of the coefficients in the metadata's ``"streamed"`` list (where their slices are listed).
    shape : tuple of int
        ``(n_outputs, n_features)``.
    dtype : numpy.dtype
    n_partitions : int
        Shards the model had when saved (a large model is loaded into as many).
    intercept_row : list of float
        The store's intercept key (where a warm start from the model begins).
    """

    def __init__(
        self, index: int, shape: list[int], dtype: str, n_partitions: int, intercept_row: list[float]
    ) -> None:
        self.index = index
        self.stored_shape = shape
        self.stored_dtype = dtype
        self.n_partitions = n_partitions
        self.intercept_row = intercept_row

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.stored_shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.stored_dtype)

    @property
    def ndim(self) -> int:
        return len(self.stored_shape)


def with_columns_stored(model: Any) -> tuple[Any, list[Any]]:
    """``model`` and ``[]`` when it holds no partitioned coefficients, else a copy with each one a stand-in
    and the list of them (in the stand-ins' ``index`` order)."""
    from daskml_lab.linear_model import PartitionedCoefficients

    found: dict[int, Any] = {}
    _find(model, PartitionedCoefficients, found, set())
    if not found:
        return model, []
    sources = list(found.values())
    memo: dict[int, Any] = {}
    for index, coef in enumerate(sources):
        memo[id(coef)] = _StoredColumns(
            index,
            list(coef.shape),
            coef.dtype.str,
            int(coef.n_partitions),
            [float(v) for v in coef.intercept_row()],
        )
    # deepcopy substitutes every memo entry for the object of that id, as for the pandas stand-ins
    return copy.deepcopy(model, memo), sources


def _find(obj: Any, kind: type, found: dict[int, Any], seen: set[int]) -> None:
    if id(obj) in seen or obj is None or isinstance(obj, str | bytes | numbers.Number | np.ndarray | type):
        return
    seen.add(id(obj))
    if isinstance(obj, kind):
        found[id(obj)] = obj  # not entered: it holds the client
    elif isinstance(obj, dict):
        for value in obj.values():
            _find(value, kind, found, seen)
    elif isinstance(obj, list | tuple | set | frozenset):
        for value in obj:
            _find(value, kind, found, seen)
    elif has_state(obj):
        for value in vars(obj).values():
            _find(value, kind, found, seen)


def write_columns(archive: zipfile.ZipFile, sources: list[Any]) -> list[dict[str, Any]]:
    """Write every source's columns as slice members of ``archive``; the metadata's ``"streamed"`` list."""
    entries = []
    for index, coef in enumerate(sources):
        n_outputs, n_features = coef.shape
        width = max(1, SLICE_BYTES // max(1, n_outputs * coef.dtype.itemsize))
        slices = []
        for start in range(0, n_features, width):
            stop = min(start + width, n_features)
            buffer = io.BytesIO()
            np.save(buffer, coef.columns(start, stop), allow_pickle=False)
            data = buffer.getvalue()
            name = f"{_PREFIX}{index}/{start}.npy"
            archive.writestr(name, data)
            slices.append(
                {
                    "name": name,
                    "start": start,
                    "stop": stop,
                    "n_bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
        entries.append({"shape": [n_outputs, n_features], "dtype": coef.dtype.str, "slices": slices})
    return entries


def restore_columns(model: Any, info: dict[str, Any], path: Any, limits: Limits) -> Any:
    """Put back, in place, the coefficients of every stand-in reachable from ``model`` (see the module)."""
    found: dict[int, Any] = {}
    _find(model, _StoredColumns, found, set())
    where = os.fspath(path)
    entries = info.get("streamed")
    if not found and entries is None:
        return model
    if not isinstance(entries, list) or len(entries) != len(found):
        msg = (
            f"The model in {where!r} holds {len(found)} partitioned coefficient arrays but its metadata lists "
            f"{len(entries) if isinstance(entries, list) else 'no'} streamed ones; the file was modified."
        )
        raise ValueError(msg)
    restored = {}
    for key, stand_in in found.items():
        entry = entries[stand_in.index] if 0 <= stand_in.index < len(entries) else None
        slices = _checked_slices(entry, stand_in, where)
        n_bytes = math.prod(stand_in.shape) * stand_in.dtype.itemsize
        if n_bytes > limits.max_member_bytes:
            # the coefficients together are capped like one member: checked before anything is allocated
            msg = (
                f"The partitioned coefficients {stand_in.shape} of {where!r} take {n_bytes} bytes, more than the "
                f"cap of {limits.max_member_bytes} bytes (max_member_bytes); nothing was allocated. If you trust "
                f"the file, raise the cap: load(path, max_member_bytes=...) or dask config {MAX_MEMBER_BYTES_KEY}."
            )
            raise ValueError(msg)
        restored[key] = _rebuild(stand_in, _read_slices(where, slices, stand_in, limits))
    _replace(model, restored, set())
    return model


def _checked_slices(entry: Any, stand_in: _StoredColumns, where: str) -> list[dict[str, Any]]:
    """The slices of one streamed array, checked: contiguous ranges covering the features once, in order."""
    try:
        shape, dtype, slices = entry["shape"], entry["dtype"], entry["slices"]
        valid = (
            [int(n) for n in shape] == list(stand_in.shape)
            and dtype == stand_in.dtype.str
            and stand_in.dtype.kind == "f"
            and isinstance(slices, list)
        )
        position = 0
        for piece in slices if valid else ():
            valid = valid and piece["start"] == position and piece["stop"] > position
            valid = valid and str(piece["name"]).startswith(_PREFIX) and isinstance(piece["sha256"], str)
            position = piece["stop"]
        valid = valid and position == stand_in.shape[1]
    except (KeyError, TypeError, ValueError):
        valid = False
    if not valid:
        msg = (
            f"The streamed coefficients of {where!r} are not described consistently with the model "
            f"(shape {stand_in.shape}); the file was modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    return slices


def _read_slices(
    where: str, slices: list[dict[str, Any]], stand_in: _StoredColumns, limits: Limits
) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, columns)`` of each slice, read, checked and converted one at a time."""
    n_outputs = stand_in.shape[0]
    with zipfile.ZipFile(where) as archive:
        names = set(archive.namelist())
        for piece in slices:
            name = piece["name"]
            if name not in names:
                msg = f"{where!r} lacks the coefficient slice {name!r} its metadata lists; the file was modified."
                raise ValueError(msg)
            data = read_member(archive, name, limits, where)
            if hashlib.sha256(data).hexdigest() != piece["sha256"]:
                msg = (
                    f"The coefficient slice {name!r} of {where!r} does not match the checksum recorded when it "
                    "was saved: the file is corrupt or was modified. Nothing was loaded."
                )
                raise ValueError(msg)
            # the header is checked against the bytes behind it and the expected shape before numpy allocates
            header = npy_header(bytes(data[: NPY_HEADER_BYTES + 16]), len(data), name, where)
            expected = (n_outputs, piece["stop"] - piece["start"])
            if header.shape != expected or header.dtype != stand_in.dtype:
                msg = (
                    f"The coefficient slice {name!r} of {where!r} holds {header.shape} {header.dtype}, not "
                    f"{expected} {stand_in.dtype}; the file was modified."
                )
                raise ValueError(msg)
            yield piece["start"], np.load(io.BytesIO(bytes(data)), allow_pickle=False)


def _rebuild(stand_in: _StoredColumns, blocks: Iterator[tuple[int, np.ndarray]]) -> Any:
    """A numpy array when it may be gathered (or no client is connected), else new parameter shards."""
    from daskml_lab._runtime.client import current_client
    from daskml_lab.linear_model import PartitionedCoefficients
    from daskml_lab.solvers import max_gather_bytes

    n_bytes = int(np.prod(stand_in.shape)) * stand_in.dtype.itemsize
    client = current_client()
    if n_bytes <= max_gather_bytes():
        out = np.empty(stand_in.shape, dtype=stand_in.dtype)
        for start, block in blocks:
            out[:, start : start + block.shape[1]] = block
        return out
    if client is None:
        msg = (
            f"The model's coefficients {stand_in.shape} take {n_bytes} bytes, more than the "
            f"{max_gather_bytes()} bytes the client may hold (dask config "
            "daskml_lab.solvers.store.max_gather_bytes), so they are loaded into parameter shards on a "
            "cluster: connect to one first (daskml_lab.connect() or a distributed.Client), or raise the limit "
            "if this process has the memory."
        )
        raise ClusterRequiredError(msg)
    return PartitionedCoefficients.from_columns(
        client,
        stand_in.shape,
        stand_in.dtype,
        blocks,
        n_partitions=stand_in.n_partitions,
        intercept_row=stand_in.intercept_row,
    )


def _replace(obj: Any, restored: dict[int, Any], seen: set[int]) -> None:
    """Set each attribute (or container item) holding a stand-in to its restored value, in place."""
    if id(obj) in seen or obj is None or isinstance(obj, str | bytes | numbers.Number | np.ndarray | type):
        return
    seen.add(id(obj))
    if isinstance(obj, dict):
        items = list(obj.items())
    elif isinstance(obj, list):
        items = list(enumerate(obj))
    elif isinstance(obj, tuple):
        for value in obj:
            _replace(value, restored, seen)
        return
    elif has_state(obj):
        obj = vars(obj)
        items = list(obj.items())
    else:
        return
    for key, value in items:
        if id(value) in restored:
            obj[key] = restored[id(value)]
        else:
            _replace(value, restored, seen)
