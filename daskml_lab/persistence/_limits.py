"""Resource caps of model files: how large a member may be once decompressed, checked before and while reading.

A model file is a zip archive whose payload is itself a zip archive (the skops format) of ``.npy`` arrays and
``.npz`` sparse matrices (zip archives again). Each level can be a zip bomb: a few kilobytes that decompress
to gigabytes, or an array header declaring a shape whose allocation alone exhausts memory. Nothing here trusts
a size it has not bounded:

- before decompressing a member, its declared size (the zip header) is checked against the cap and its
  compression ratio against the ratio cap; a member compressed by a method :func:`~daskml_lab.persistence.save`
  never uses (bzip2, lzma, encryption) is refused;
- while reading, the bytes go into a buffer of the declared size and the read stops one byte past it, so a
  lying header cannot make it read more than the cap;
- an ``.npy`` header (parsed with :mod:`numpy.lib.format`) must declare a plain dtype and exactly as many bytes
  as the member holds, so that no array is allocated larger than the data behind it;
- the members of the payload together, and the arrays of each ``.npz``, share one budget of the same cap.

The cap is ``max_member_bytes`` (default 2 GiB) and the ratio cap ``max_compression_ratio`` (default 1000,
applied to members above 16 MiB only), given to :func:`~daskml_lab.persistence.load` or set in
``dask.config`` (``daskml_lab.persistence.max_member_bytes``, also read from the environment variable
``DASK_DASKML_LAB__PERSISTENCE__MAX_MEMBER_BYTES``).
"""

from __future__ import annotations

import io
import math
import numbers
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
from dask.utils import format_bytes, parse_bytes

__all__ = [
    "DEFAULT_MAX_COMPRESSION_RATIO",
    "DEFAULT_MAX_MEMBER_BYTES",
    "DIRECTORY_FRACTION",
    "MAX_COMPRESSION_RATIO_KEY",
    "MAX_MEMBER_BYTES_KEY",
    "MIN_DIRECTORY_BYTES",
    "NPY_HEADER_BYTES",
    "RATIO_FLOOR_BYTES",
    "SCHEMA_FRACTION",
    "ArrayHeader",
    "Limits",
    "check_directory",
    "npy_header",
    "read_member",
    "resolve_limits",
    "scan_payload",
]

MAX_MEMBER_BYTES_KEY = "daskml_lab.persistence.max_member_bytes"
MAX_COMPRESSION_RATIO_KEY = "daskml_lab.persistence.max_compression_ratio"
#: Default cap on the decompressed size of one member of a model file (and of the payload's members together).
DEFAULT_MAX_MEMBER_BYTES = 2 * 2**30
#: Default cap on a member's decompressed size over its compressed size. Deflate reaches about 1030:1 on
#: constant bytes (the classic zip bomb); real model arrays stay far below, even mostly-zero coefficients.
DEFAULT_MAX_COMPRESSION_RATIO = 1000.0
#: Members declaring at most this many bytes are never refused for their ratio: they cannot hurt.
RATIO_FLOOR_BYTES = 16 * 2**20

#: The zip directory of an archive may take this fraction of the member cap (32 MiB, about half a million
#: members, by default): zipfile builds a few hundred bytes of objects per 46-byte entry on opening it.
DIRECTORY_FRACTION = 64
#: The skops description (schema.json, about 16 kB per decision tree) may take this fraction of the member cap
#: (512 MiB by default): it is parsed as JSON, which takes several times its size in memory.
SCHEMA_FRACTION = 4
#: Neither cap is ever below this, so that a small member cap does not refuse the directory of a small model.
MIN_DIRECTORY_BYTES = 64 * 2**10
#: save() deflates the model file and skops stores its members; scipy's npz members are deflated too.
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_CHUNK_BYTES = 1 << 20
NPY_HEADER_BYTES = 10_000
#: The raise-the-cap advice every refusal ends with.
_HOW_TO_RAISE = (
    "If you trust the file and the model is genuinely this large, raise the cap: load(path, "
    "max_member_bytes=...), dask.config.set({{'{key}': '8GiB'}}) or the environment variable "
    "DASK_DASKML_LAB__PERSISTENCE__MAX_MEMBER_BYTES=8GiB."
)


@dataclass(frozen=True)
class Limits:
    """The caps a model file is read under.

    Attributes
    ----------
    max_member_bytes : int
        Largest decompressed size of one member of the model file, and of the payload's members together.
    max_compression_ratio : float
        Largest decompressed-to-compressed size ratio of a member above :data:`RATIO_FLOOR_BYTES`.
    """

    max_member_bytes: int
    max_compression_ratio: float

    @property
    def max_directory_bytes(self) -> int:
        """The cap on an archive's zip directory."""
        return max(self.max_member_bytes // DIRECTORY_FRACTION, MIN_DIRECTORY_BYTES)

    @property
    def max_schema_bytes(self) -> int:
        """The cap on the skops description (``schema.json``)."""
        return max(self.max_member_bytes // SCHEMA_FRACTION, MIN_DIRECTORY_BYTES)


@dataclass(frozen=True)
class ArrayHeader:
    """What an ``.npy`` member declares: its shape and dtype (read from the header, nothing allocated)."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]


def resolve_limits(max_member_bytes: Any = None, max_compression_ratio: Any = None) -> Limits:
    """The caps to read under: the arguments, else ``dask.config``, else the defaults; checked.

    Parameters
    ----------
    max_member_bytes : int or str, default=None
        A byte count, or a string such as ``"8GiB"`` (:func:`dask.utils.parse_bytes`).
    max_compression_ratio : float, default=None
        A ratio above 1.

    Raises
    ------
    TypeError
        If a value is neither a number nor (for bytes) a string.
    ValueError
        If a value is not positive, cannot be parsed, or the ratio is not above 1.
    """
    if max_member_bytes is None:
        max_member_bytes = dask.config.get(MAX_MEMBER_BYTES_KEY, DEFAULT_MAX_MEMBER_BYTES)
    if max_compression_ratio is None:
        max_compression_ratio = dask.config.get(MAX_COMPRESSION_RATIO_KEY, DEFAULT_MAX_COMPRESSION_RATIO)
    if isinstance(max_member_bytes, str):
        try:
            max_member_bytes = parse_bytes(max_member_bytes)
        except ValueError as err:
            msg = f"max_member_bytes must be a byte count such as 2147483648 or '2GiB'; got {max_member_bytes!r}."
            raise ValueError(msg) from err
    if not isinstance(max_member_bytes, numbers.Integral) or isinstance(max_member_bytes, bool):
        msg = f"max_member_bytes must be an int or a string such as '2GiB'; got {max_member_bytes!r}."
        raise TypeError(msg)
    if max_member_bytes < 1:
        msg = f"max_member_bytes must be positive; got {max_member_bytes}."
        raise ValueError(msg)
    if not isinstance(max_compression_ratio, numbers.Real) or isinstance(max_compression_ratio, bool):
        msg = f"max_compression_ratio must be a number; got {max_compression_ratio!r}."
        raise TypeError(msg)
    if not max_compression_ratio > 1:
        msg = f"max_compression_ratio must be above 1 (decompressed over compressed size); got {max_compression_ratio}."
        raise ValueError(msg)
    return Limits(int(max_member_bytes), float(max_compression_ratio))


def read_member(
    archive: zipfile.ZipFile, name: str, limits: Limits, where: str, *, cap: int | None = None
) -> bytearray:
    """The decompressed bytes of one member, never more than ``cap`` (default: the member cap) of them.

    The header is checked first (:func:`_check_header`); the bytes then go into one buffer of the declared
    size, and the read stops at the first byte past it: a member holding more, or fewer, bytes than its
    header declares is refused (a lying header is how a zip bomb gets past a size check).
    """
    cap = limits.max_member_bytes if cap is None else cap
    info = archive.getinfo(name)
    _check_header(info, limits, where, cap)
    declared = info.file_size
    buffer = bytearray(declared)  # at most the cap, checked above
    view, total = memoryview(buffer), 0
    with archive.open(info) as stream:
        while chunk := stream.read(min(_CHUNK_BYTES, declared + 1 - total)):
            if total + len(chunk) > declared:
                msg = (
                    f"Member {name!r} of {where!r} decompresses to more than the {declared} bytes its header "
                    f"declares; the file is corrupt or crafted (a zip bomb), and reading stopped there (the cap "
                    f"is {format_bytes(cap)}, max_member_bytes). Save the model again with daskml_lab.save()."
                )
                raise ValueError(msg)
            view[total : total + len(chunk)] = chunk
            total += len(chunk)
    if total != declared:
        msg = (
            f"Member {name!r} of {where!r} holds {total} bytes but its header declares {declared}; the file is "
            "truncated, corrupt or was modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    return buffer


_END = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")


def check_directory(read_at: Any, size: int, limits: Limits, where: str, label: str) -> None:
    """Refuse an archive whose zip directory is larger than the cap, before :mod:`zipfile` parses it.

    ``zipfile`` builds one object per directory entry (a few hundred bytes for each 46-byte entry) as soon as
    it opens an archive, so a directory of millions of tiny members is a memory bomb of its own. The size is
    read from the end-of-directory record (or its zip64 form); ``read_at(offset, n)`` returns ``n`` bytes of
    the archive from ``offset``. An archive without a readable record is left to ``zipfile`` to refuse.
    """
    tail_size = min(size, _END.size + 65535)
    tail = read_at(size - tail_size, tail_size)
    position = tail.rfind(b"PK\x05\x06")
    if position < 0 or position + _END.size > len(tail):
        return
    directory = _END.unpack_from(tail, position)[5]
    locator_at = size - tail_size + position - _ZIP64_LOCATOR.size
    if locator_at >= 0:
        signature, _, zip64_at, _ = _ZIP64_LOCATOR.unpack(read_at(locator_at, _ZIP64_LOCATOR.size))
        record = read_at(zip64_at, _ZIP64_END.size) if signature == b"PK\x06\x07" and zip64_at < size else b""
        if len(record) == _ZIP64_END.size and record[:4] == b"PK\x06\x06":
            directory = max(directory, _ZIP64_END.unpack(record)[8])
    if directory > limits.max_directory_bytes:
        msg = (
            f"The zip directory of {label} of {where!r} takes {format_bytes(directory)} ({directory} bytes), more "
            f"than the cap of {format_bytes(limits.max_directory_bytes)} (max_member_bytes / "
            f"{DIRECTORY_FRACTION}): it lists more members than any model holds; nothing was read. "
            f"{_how_to_raise()}"
        )
        raise ValueError(msg)


def _bytes_reader(data: bytes) -> Any:
    return lambda offset, n: bytes(data[offset : offset + n])


def scan_payload(payload: bytes, limits: Limits, where: str) -> dict[str, ArrayHeader]:
    """Check every member of the skops payload against the caps; the headers of its arrays, by member name.

    Each member's zip header is checked against the caps, and the header of each ``.npy`` member is read
    (never its data): zipfile, which skops reads the members with later, never returns more than a member's
    declared size. ``.npz`` members are read under the caps and scanned as archives in turn, their arrays named
    ``"<member>/<array>"``. The members of the payload together, and the arrays of all its
    ``.npz`` members together, each stay within ``max_member_bytes``.

    Raises
    ------
    ValueError
        If the payload is not a zip archive, a member is too large, compressed too well or by a foreign method,
        or an array header is invalid or declares more bytes than its member holds.
    """
    budget = [limits.max_member_bytes]
    try:
        return _scan_archive(payload, limits, where, label="the model payload", budget=budget, depth=0)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as err:
        msg = (
            f"The model payload of {where!r} could not be read ({type(err).__name__}: {err}); it is corrupt."
        )
        raise ValueError(msg) from err


def _scan_archive(
    data: bytes, limits: Limits, where: str, *, label: str, budget: list[int], depth: int
) -> dict[str, ArrayHeader]:
    check_directory(_bytes_reader(data), len(data), limits, where, label)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        msg = (
            f"{label.capitalize()} of {where!r} has an invalid structure (not a zip archive: "
            f"{type(err).__name__}: {err}); the file is corrupt or was modified."
        )
        raise ValueError(msg) from err
    headers: dict[str, ArrayHeader] = {}
    with archive:
        infos = archive.infolist()
        declared = sum(info.file_size for info in infos)
        # The payload's members share one budget, and so do the arrays of all its sparse matrices.
        own_budget = limits.max_member_bytes if depth == 0 else budget[0]
        if declared > own_budget:
            msg = (
                f"The members of {label} of {where!r} declare {format_bytes(declared)} ({declared} bytes) "
                f"together, more than the cap of {format_bytes(limits.max_member_bytes)} "
                f"({limits.max_member_bytes} bytes, max_member_bytes) on them all; nothing was decompressed. "
                f"{_how_to_raise()}"
            )
            raise ValueError(msg)
        if depth > 0:
            budget[0] -= declared
        for info in infos:
            # The description is parsed as JSON (several times its size in memory): a smaller cap.
            cap = (
                limits.max_schema_bytes
                if info.filename == "schema.json" and depth == 0
                else limits.max_member_bytes
            )
            _check_header(info, limits, where, cap)
            # zipfile never returns more than a member's declared size (checked just above), so skops' own
            # reads are bounded too; arrays need only their header read here, sparse matrices their arrays.
            if info.filename.endswith(".npy"):
                with archive.open(info) as stream:
                    start = stream.read(min(info.file_size, NPY_HEADER_BYTES + 16))
                headers[info.filename] = npy_header(start, info.file_size, info.filename, where)
            elif info.filename.endswith(".npz") and depth == 0:
                content = read_member(archive, info.filename, limits, where)
                nested = _scan_archive(
                    content, limits, where, label=f"member {info.filename!r}", budget=budget, depth=1
                )
                headers.update({f"{info.filename}/{name}": header for name, header in nested.items()})
            elif depth > 0:
                msg = (
                    f"Member {info.filename!r} of a sparse matrix in {where!r} is not an array; the file was "
                    "modified."
                )
                raise ValueError(msg)
    return headers


def _check_header(info: zipfile.ZipInfo, limits: Limits, where: str, cap: int) -> None:
    """Refuse a member by its zip header alone: foreign method, encryption, declared size or ratio."""
    if info.compress_type not in _METHODS or info.flag_bits & 0x1:
        msg = (
            f"Member {info.filename!r} of {where!r} is encrypted or compressed by a method (zip method "
            f"{info.compress_type}) that daskml_lab.save() never uses; the file was not written by it or was "
            "modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    if info.file_size > cap:
        msg = (
            f"Member {info.filename!r} of {where!r} declares {format_bytes(info.file_size)} ({info.file_size} "
            f"bytes) decompressed, more than the cap of {format_bytes(cap)} ({cap} bytes, max_member_bytes); "
            f"nothing was decompressed. {_how_to_raise()}"
        )
        raise ValueError(msg)
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_compression_ratio:
        msg = (
            f"Member {info.filename!r} of {where!r} declares {format_bytes(info.file_size)} ({info.file_size} "
            f"bytes) from {info.compress_size} compressed bytes, a compression ratio of {ratio:.0f}, above the "
            f"cap of {limits.max_compression_ratio:g} (max_compression_ratio): it looks like a zip bomb, and "
            "nothing was decompressed. If you trust the file, load(path, max_compression_ratio=...) or "
            f"dask.config.set({{'{MAX_COMPRESSION_RATIO_KEY}': ...}}) raises the cap."
        )
        raise ValueError(msg)


def npy_header(start: bytes, size: int, name: str, where: str) -> ArrayHeader:
    """The shape and dtype an ``.npy`` member of ``size`` bytes declares (read from its ``start``), checked."""
    stream = io.BytesIO(start)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream, max_header_size=NPY_HEADER_BYTES)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream, max_header_size=NPY_HEADER_BYTES)
        else:
            msg = f"unsupported .npy format version {version}"
            raise ValueError(msg)
    except (ValueError, EOFError, SyntaxError, TypeError, zlib.error) as err:
        msg = f"Array {name!r} of {where!r} has an invalid .npy header ({err}); the file is corrupt or was modified."
        raise ValueError(msg) from err
    if dtype.hasobject:
        msg = f"Array {name!r} of {where!r} declares Python objects (dtype {dtype}); model files never hold them."
        raise ValueError(msg)
    n_items = math.prod(shape)
    n_bytes = n_items * dtype.itemsize
    held = size - stream.tell()
    if n_bytes != held or (dtype.itemsize == 0 and n_items > 0):
        msg = (
            f"Array {name!r} of {where!r} declares shape {shape} of dtype {dtype} ({n_bytes} bytes) but holds "
            f"{held} bytes of data; it was refused before anything was allocated. The file is corrupt or was "
            "modified; save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    return ArrayHeader(tuple(int(n) for n in shape), dtype)


def _how_to_raise() -> str:
    return _HOW_TO_RAISE.format(key=MAX_MEMBER_BYTES_KEY)
