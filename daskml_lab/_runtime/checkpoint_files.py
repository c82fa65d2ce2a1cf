"""Checkpoint files: written atomically, read back verified, never unpickled.

The layer every checkpoint of the package is written with (solver states, shard models, cascade support
vectors): a file is written to a temporary file in the same directory and renamed over the old one
(:func:`os.replace`), so a process killed at any moment leaves the previous file or none, never a partial one;
arrays go to ``.npz`` files read with ``allow_pickle=False``; metadata go to JSON files that carry the format's
name and version; every file that other files refer to is recorded with its SHA-256 and checked when read.

A checkpoint directory has a manifest (``checkpoint.json``) naming the estimator that owns it and a
fingerprint of what determines the fit: :func:`open_checkpoint_directory` creates it, or refuses a directory
that belongs to another fit with a :class:`CheckpointError` that names what differs.

One fit at a time writes a directory: :func:`lock_checkpoint_directory` holds an operating-system lock on its
``checkpoint.lock`` file for the whole fit (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows). The
operating system drops the lock when the process ends, however it ends, so a killed fit never leaves the
directory locked; a second fit, in another process or another thread, gets a :class:`CheckpointError` naming
the directory, the holder (process, host, start time) and the fix. Temporary files carry the writer's process
id and a random part, and are created exclusively: a writer never replaces or deletes another's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import numbers
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CheckpointError",
    "atomic_write",
    "canonical",
    "check_directory",
    "describe_differences",
    "differences",
    "dump_json",
    "fix_advice",
    "load_arrays",
    "lock_checkpoint_directory",
    "open_checkpoint_directory",
    "read_json",
    "read_verified",
    "require_lock",
    "save_arrays",
    "update_digest",
]

#: Format name and version written in every metadata file of a checkpoint.
FORMAT_NAME = "daskml-lab-checkpoint"
FORMAT_VERSION = 1
#: Name of the directory's manifest.
MANIFEST_NAME = "checkpoint.json"
#: Name of the file whose operating-system lock makes a fit the directory's only writer.
LOCK_NAME = "checkpoint.lock"
#: Floats of two fingerprints agree when within this relative tolerance (sums may be reordered).
FLOAT_RTOL = 1e-9
_TEMPORARY_SUFFIX = ".tmp"


class CheckpointError(ValueError):
    """A checkpoint cannot be used: unwritable directory, another problem's checkpoint, or a damaged file.

    The message names the file and the fix (delete the directory or pass another path).
    """


def fix_advice(path: Path) -> str:
    """The advice every checkpoint error ends with: start afresh or use another directory."""
    return f"Delete the directory {os.fspath(path)!r} to start afresh, or pass another checkpoint path."


# ---------------------------------------------------------------------------------------------------------
# files


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same directory, then :func:`os.replace`.

    The temporary file's name holds this process's id and a random part, and it is created exclusively; on
    failure only that file is removed.

    Parameters
    ----------
    path : pathlib.Path
        Destination (replaced if it exists).
    data : bytes
        Content.
    """
    # ".<name>.<pid>.<random>.tmp", created with O_EXCL: never the name of another writer's temporary file
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=_TEMPORARY_SUFFIX, dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_arrays(path: Path, arrays: Mapping[str, Any]) -> tuple[str, int]:
    """Write arrays of plain dtypes to an ``.npz`` file atomically; return its SHA-256 and size.

    Parameters
    ----------
    path : pathlib.Path
        Destination.
    arrays : dict of str to array-like
        The arrays (no object dtype: :func:`load_arrays` reads with ``allow_pickle=False``).

    Returns
    -------
    sha256 : str
    n_bytes : int
    """
    buffer = io.BytesIO()
    np.savez(buffer, **{key: np.asarray(value) for key, value in arrays.items()})
    data = buffer.getvalue()
    atomic_write(path, data)
    return hashlib.sha256(data).hexdigest(), len(data)


def read_verified(path: Path, sha256: Any, *, what: str) -> bytes:
    """The bytes of a checkpoint file, after checking them against their recorded SHA-256.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    sha256 : str
        Its recorded SHA-256.
    what : str
        What the file is, for messages.

    Returns
    -------
    bytes

    Raises
    ------
    CheckpointError
        If the file is missing, unreadable or does not match its checksum.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        msg = (
            f"The {what} {os.fspath(path)!r} is missing or unreadable ({err.strerror or err}). "
            f"{fix_advice(path.parent)}"
        )
        raise CheckpointError(msg) from err
    if hashlib.sha256(data).hexdigest() != sha256:
        msg = (
            f"The {what} {os.fspath(path)!r} is corrupt: its SHA-256 checksum does not match the recorded one. "
            f"{fix_advice(path.parent)}"
        )
        raise CheckpointError(msg)
    return data


def load_arrays(path: Path, sha256: Any, *, what: str) -> dict[str, np.ndarray]:
    """Read an ``.npz`` file of :func:`save_arrays` after checking its checksum; never unpickles.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    sha256 : str
        Its recorded SHA-256.
    what : str
        What the file is, for messages.

    Returns
    -------
    dict of str to ndarray

    Raises
    ------
    CheckpointError
        If the file is missing, unreadable or does not match its checksum.
    """
    data = read_verified(path, sha256, what=what)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            return {key: np.array(stored[key]) for key in stored.files}
    except (OSError, ValueError) as err:  # pragma: no cover - the checksum catches damage first
        msg = f"The {what} {os.fspath(path)!r} cannot be read ({err}). {fix_advice(path.parent)}"
        raise CheckpointError(msg) from err


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    msg = f"cannot store an object of type {type(value).__name__} in checkpoint metadata"
    raise TypeError(msg)


def dump_json(info: Mapping[str, Any]) -> bytes:
    """Metadata as JSON bytes (NaN and infinity are kept, as Python's :mod:`json` writes them)."""
    return json.dumps(info, indent=1, default=_json_default).encode("utf-8")


def read_json(path: Path, what: str, directory: Path) -> dict[str, Any]:
    """Read a metadata file of the checkpoint format, or raise :class:`CheckpointError` naming the file."""
    try:
        info = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        msg = f"The checkpoint {what} {os.fspath(path)!r} is unreadable or corrupt ({err}). {fix_advice(directory)}"
        raise CheckpointError(msg) from err
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        msg = (
            f"The file {os.fspath(path)!r} is not a daskml_lab checkpoint {what} (no format "
            f"{FORMAT_NAME!r} in it). {fix_advice(directory)}"
        )
        raise CheckpointError(msg)
    if info.get("format_version") != FORMAT_VERSION:
        msg = (
            f"The checkpoint {what} {os.fspath(path)!r} has format version {info.get('format_version')!r}; this "
            f"version of daskml_lab reads version {FORMAT_VERSION}. {fix_advice(directory)}"
        )
        raise CheckpointError(msg)
    return info


def canonical(value: Any, depth: int = 0) -> Any:
    """A JSON-able description of a parameter value, stable across processes (for fingerprints).

    Estimators become their class and parameters, arrays their shape, dtype and a hash of their bytes,
    random generators their type, and anything else its type and ``repr``.

    Examples
    --------
    >>> canonical({"C": 1.0, "solver": "lbfgs", "class_weight": None})
    {'C': 1.0, 'class_weight': None, 'solver': 'lbfgs'}
    """
    if depth > 20:
        return "<nested too deep>"
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): canonical(v, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(v, depth + 1) for v in value]
    if isinstance(value, np.random.RandomState | np.random.Generator):
        return f"<{type(value).__module__}.{type(value).__name__}>"
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        digest = hashlib.sha256(
            data.view(np.uint8).tobytes() if data.dtype != object else repr(data).encode()
        )
        return {"array": list(data.shape), "dtype": data.dtype.str, "sha256": digest.hexdigest()}
    if callable(getattr(value, "get_params", None)) and not isinstance(value, type):
        return {
            "class": f"{type(value).__module__}.{type(value).__qualname__}",
            "params": canonical(value.get_params(deep=False), depth + 1),
        }
    if isinstance(value, type) or callable(value):
        return f"<{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}>"
    return f"<{type(value).__name__} {value!r}>"


def differences(saved: Any, current: Any, where: str = "") -> list[str]:
    """Where two fingerprints differ (floats compared with a relative tolerance of 1e-9)."""
    if isinstance(saved, dict) and isinstance(current, dict):
        found = []
        for key in sorted(set(saved) | set(current)):
            name = f"{where}.{key}" if where else str(key)
            if key not in saved or key not in current:
                found.append(
                    f"{name} (saved {saved.get(key, '<absent>')!r}, now {current.get(key, '<absent>')!r})"
                )
            else:
                found.extend(differences(saved[key], current[key], name))
        return found
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        return [
            d
            for i, (a, b) in enumerate(zip(saved, current, strict=True))
            for d in differences(a, b, f"{where}[{i}]")
        ]
    if (
        isinstance(saved, float | int)
        and isinstance(current, float | int)
        and not isinstance(saved, bool)
        and not isinstance(current, bool)
    ):
        same = (
            saved == current
            or math.isclose(saved, current, rel_tol=FLOAT_RTOL, abs_tol=0.0)
            or (math.isnan(saved) and math.isnan(current))
        )
        return [] if same else [f"{where} (saved {saved!r}, now {current!r})"]
    if saved != current:
        text_saved, text_current = repr(saved), repr(current)
        if len(text_saved) > 120 or len(text_current) > 120:
            return [f"{where} (differs)"]
        return [f"{where} (saved {text_saved}, now {text_current})"]
    return []


def describe_differences(found: list[str]) -> str:
    """The first five differences found by :func:`differences`, and how many more."""
    shown = "; ".join(found[:5])
    return shown + (f"; and {len(found) - 5} more" if len(found) > 5 else "")


def check_directory(path: Any) -> Path:
    """Create the checkpoint directory if needed and make sure this process can write in it.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    pathlib.Path

    Raises
    ------
    CheckpointError
        If the path is a file, or the directory cannot be created or written to.
    """
    directory = Path(os.fspath(path))
    if directory.exists() and not directory.is_dir():
        msg = (
            f"checkpoint={os.fspath(path)!r} exists and is not a directory. Pass the path of a directory "
            "(it is created if missing)."
        )
        raise CheckpointError(msg)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # not named like a temporary file: a fit holding the lock removes those (see _remove_stale_temporaries)
        handle, probe = tempfile.mkstemp(
            prefix=f".write-probe.{os.getpid()}.", suffix=".probe", dir=directory
        )
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise _unwritable(path, err) from err
    return directory


def _unwritable(path: Any, err: OSError) -> CheckpointError:
    msg = (
        f"The checkpoint directory {os.fspath(path)!r} cannot be created or written to ({err.strerror or err})."
        " Pass a checkpoint path in a writable location, or fix its permissions."
    )
    return CheckpointError(msg)


# ---------------------------------------------------------------------------------------------------------
# one writer per directory

if sys.platform == "win32":  # pragma: no cover - tested on POSIX only
    import msvcrt

    #: Windows locks are mandatory: the holder's description (from offset 0) stays readable because the
    #: locked byte lies beyond it.
    _LOCKED_BYTE = 1 << 20

    def _try_lock(handle: int) -> bool:
        os.lseek(handle, _LOCKED_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: int) -> None:
        os.lseek(handle, _LOCKED_BYTE, os.SEEK_SET)
        msvcrt.locking(handle, msvcrt.LK_UNLCK, 1)

else:
    import errno
    import fcntl

    def _try_lock(handle: int) -> bool:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                return False
            raise
        return True

    def _unlock(handle: int) -> None:
        fcntl.flock(handle, fcntl.LOCK_UN)


#: Bytes of the holder's description at the start of the lock file (padded with spaces, never truncated).
_HOLDER_BYTES = 512


@dataclasses.dataclass
class _Held:
    """A lock this process holds: the thread that took it, how many times it re-entered, the open file."""

    thread: int
    handle: int
    depth: int = 1


# The operating system's lock belongs to the process (flock) or the file handle, so a process must remember
# which directories it holds to tell a fit's own nested use (the estimator, then each solver run) from another
# thread's fit: state inherent to locking, guarded by _HELD_GUARD.
_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def _write_holder(handle: int, holder: Mapping[str, Any]) -> None:
    text = json.dumps(dict(holder)).encode("utf-8")[:_HOLDER_BYTES]
    os.lseek(handle, 0, os.SEEK_SET)
    os.write(handle, text.ljust(_HOLDER_BYTES))


def _read_holder(path: Path) -> dict[str, Any]:
    """What the holder wrote in the lock file (empty when unreadable: it may be releasing it right now)."""
    try:
        with path.open("rb") as stream:
            info = json.loads(stream.read(_HOLDER_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _describe_holder(holder: Mapping[str, Any]) -> str:
    if not holder.get("pid"):
        return "holder unknown"
    text = f"process {holder['pid']} on host {holder.get('host')!r}, started {holder.get('started')}"
    same_host = holder.get("host") == socket.gethostname()
    if same_host and holder["pid"] != os.getpid() and not _process_exists(int(holder["pid"])):
        # flock locks die with the last handle: a child forked by the holder may keep the file open
        text += "; that process has ended, but a process it started still holds the lock file open"
    return text


def _process_exists(pid: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _in_use(directory: Path, holder: Mapping[str, Any], *, thread: bool) -> CheckpointError:
    who = f"another thread of this process (pid {os.getpid()})" if thread else _describe_holder(holder)
    msg = (
        f"The checkpoint directory {os.fspath(directory)!r} is in use by another fit ({who}): one fit at a "
        "time may write a checkpoint directory, or each would overwrite the other's files. Wait for that fit "
        "to finish (or stop it), or give this fit another checkpoint path."
    )
    return CheckpointError(msg)


def _remove_stale_temporaries(directory: Path) -> None:
    """Remove the temporary files of writers that died while writing (called with the directory locked)."""
    for stale in directory.glob(f".*{_TEMPORARY_SUFFIX}"):
        with contextlib.suppress(OSError):
            stale.unlink()


@contextlib.contextmanager
def lock_checkpoint_directory(path: Any) -> Iterator[Path]:
    """Hold the directory's lock for the duration of the ``with`` block: this fit is its only writer.

    The lock is an operating-system lock on the file ``checkpoint.lock`` of the directory (``fcntl.flock``
    on POSIX, ``msvcrt.locking`` on Windows): it is released when the block ends, normally, by an exception or
    by ``KeyboardInterrupt``, and by the operating system when the process dies. The same thread may enter it
    again (an estimator's fit holds it, then each of its solver runs); another thread or process gets a
    :class:`CheckpointError`. Once held, the temporary files of writers that died are removed.

    Parameters
    ----------
    path : str or path-like
        The checkpoint directory (created if missing).

    Yields
    ------
    pathlib.Path
        The directory.

    Raises
    ------
    CheckpointError
        If the directory cannot be created or written to, or another fit holds its lock (the message names
        the holder's process, host and start time).

    Notes
    -----
    The lock file stays in the directory; its content only describes the last holder, the lock itself is
    the operating system's. On network file systems the lock is as reliable as their ``flock`` (NFS emulates
    it with byte-range locks).
    """
    directory = check_directory(path)
    key = os.path.realpath(directory)
    lock_path = directory / LOCK_NAME
    with _HELD_GUARD:  # never blocks for long: nothing below waits for the lock
        held = _HELD.get(key)
        if held is not None:
            if held.thread != threading.get_ident():
                raise _in_use(directory, {}, thread=True)
            held.depth += 1
        else:
            try:
                handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise _unwritable(path, err) from err
            try:
                locked = _try_lock(handle)
            except OSError as err:
                os.close(handle)
                msg = (
                    f"The checkpoint directory {os.fspath(directory)!r} cannot be locked ({err.strerror or err}): "
                    "its file system does not support file locks. Pass a checkpoint path on a local disk."
                )
                raise CheckpointError(msg) from err
            if not locked:
                os.close(handle)
                raise _in_use(directory, _read_holder(lock_path), thread=False)
            held = _HELD[key] = _Held(thread=threading.get_ident(), handle=handle)
    if held.depth > 1:
        try:
            yield directory
        finally:
            with _HELD_GUARD:
                held.depth -= 1
        return
    try:
        started = datetime.now(UTC).isoformat(timespec="seconds")
        _write_holder(held.handle, {"pid": os.getpid(), "host": socket.gethostname(), "started": started})
        _remove_stale_temporaries(directory)
        yield directory
    finally:
        with _HELD_GUARD:
            del _HELD[key]
            try:
                _write_holder(held.handle, {})
                _unlock(held.handle)
            finally:
                os.close(held.handle)


def require_lock(directory: Path) -> None:
    """Raise ``RuntimeError`` unless this thread holds the lock of ``directory`` (a programming error).

    Every writer of a checkpoint directory calls it first, so that no code path writes one unlocked.
    """
    with _HELD_GUARD:
        held = _HELD.get(os.path.realpath(directory))
    if held is None or held.thread != threading.get_ident():
        msg = (
            f"The checkpoint directory {os.fspath(directory)!r} is written without holding its lock: call "
            "daskml_lab._runtime.checkpoint_files.lock_checkpoint_directory around the fit."
        )
        raise RuntimeError(msg)


def open_checkpoint_directory(
    path: Any, *, owner: str, fingerprint: Mapping[str, Any], state: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check the directory is writable, then create its manifest or check that it belongs to this fit.

    Call it at the start of ``fit``, before any computation, inside :func:`lock_checkpoint_directory` (held
    for the whole fit): an unwritable or locked directory, or a directory used by another estimator or other
    parameters, fails at once.

    Parameters
    ----------
    path : str or path-like
        The checkpoint directory (created if missing).
    owner : str
        Class name of the estimator.
    fingerprint : dict
        JSON-able description of what determines the fit (see :func:`canonical`).
    state : dict, default=None
        Values to record when the manifest is created (for example the root entropy of a random stream);
        an existing manifest's values are returned instead, so that a resumed fit uses the same ones.

    Returns
    -------
    dict
        ``directory`` (the path), ``resumed`` (whether the manifest existed), ``state`` and ``id`` (a digest
        of the manifest that the other files of the directory can record).

    Raises
    ------
    CheckpointError
        If the directory is not writable, or holds another fit's checkpoint or a damaged manifest.
    RuntimeError
        If this thread does not hold the directory's lock.
    """
    directory = check_directory(path)
    require_lock(directory)
    manifest = directory / MANIFEST_NAME
    current = {"owner": owner, "fingerprint": canonical(fingerprint)}
    if manifest.exists():
        info = read_json(manifest, "manifest", directory)
        found = differences({"owner": info.get("owner"), "fingerprint": info.get("fingerprint")}, current)
        if found:
            msg = (
                f"The checkpoint directory {os.fspath(directory)!r} belongs to another fit ({info.get('owner')}); "
                f"what differs: {describe_differences(found)}. {fix_advice(directory)}"
            )
            raise CheckpointError(msg)
        saved_state = dict(info.get("state") or {})
        return {
            "directory": directory,
            "resumed": True,
            "state": saved_state,
            "id": _fit_id(current, saved_state),
        }
    info = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        **current,
        "state": canonical(dict(state or {})),
    }
    atomic_write(manifest, dump_json(info))
    return {
        "directory": directory,
        "resumed": False,
        "state": info["state"],
        "id": _fit_id(current, info["state"]),
    }


def _fit_id(current: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    """A digest of the manifest's content: files of the directory record it, to prove they belong to it."""
    text = json.dumps({"current": current, "state": state}, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def update_digest(digest: Any, value: Any) -> None:
    """Feed an array (dense, CSR, object dtype) or None into a :mod:`hashlib` digest, shape and dtype included."""
    if value is None:
        digest.update(b"none;")
        return
    if sp.issparse(value):
        value = sp.csr_matrix(value)
        digest.update(f"csr{value.shape};".encode())
        for part in (value.data, value.indices, value.indptr):
            update_digest(digest, np.asarray(part))
        return
    array = np.ascontiguousarray(value)
    digest.update(f"{array.dtype.str}{array.shape};".encode())
    if array.dtype.hasobject:
        digest.update(repr(array.tolist()).encode())
    elif array.size:
        digest.update(array.view(np.uint8).data)
