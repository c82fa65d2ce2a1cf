"""Checkpoints: a solver's state saved every few iterations, so that an interrupted fit can resume.

A checkpoint directory holds:

- ``checkpoint.json``, written by the estimator that owns the directory: the format, the estimator's class and
  its parameters. A fit whose class or parameters differ refuses the directory.
- for every solver run of the fit (a *stage*: ``"solver"``, or ``"class-2"`` for one-vs-rest, ``"scale-3"``
  for the Huber alternation), ``<stage>.json`` (readable metadata: the problem's fingerprint, the iteration,
  the history records, the solver's scalar state and whether the run completed) and
  ``<stage>.<iteration>.npz`` (the parameters and the solver's state arrays, read with
  ``allow_pickle=False``; the metadata records its SHA-256).

Every file is written to a temporary file in the same directory and renamed over the old one
(:func:`os.replace`), arrays first, metadata last: a process killed at any moment leaves the previous
consistent checkpoint (or none), never a partial one. Nothing is ever unpickled.

The fingerprint of a stage records what determines its solution: the solver and its options, the loss, the
penalties, the shapes, the dtype and the row chunks, and a digest of the data (a hash of every prepared row
block, computed where the blocks live: one extra pass over the data in memory, no data moves). A checkpoint
whose fingerprint differs is refused with a :class:`CheckpointError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import math
import numbers
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = [
    "CheckpointError",
    "SolverCheckpoint",
    "atomic_write",
    "canonical",
    "dump_json",
    "open_checkpoint",
    "open_checkpoint_directory",
    "read_json",
    "update_digest",
]

logger = logging.getLogger(__name__)

#: Format name and version written in every metadata file of a checkpoint.
FORMAT_NAME = "daskml-lab-checkpoint"
FORMAT_VERSION = 1
#: Name of the directory's manifest.
MANIFEST_NAME = "checkpoint.json"
#: Floats of two fingerprints agree when within this relative tolerance (sums may be reordered).
_FLOAT_RTOL = 1e-9
_STAGE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TEMPORARY_SUFFIX = ".tmp"


class CheckpointError(ValueError):
    """A checkpoint cannot be used: unwritable directory, another problem's checkpoint, or a damaged file.

    The message names the file and the fix (delete the directory or pass another path).
    """


def _fix(path: Path) -> str:
    return f"Delete the directory {os.fspath(path)!r} to start afresh, or pass another checkpoint path."


# ---------------------------------------------------------------------------------------------------------
# files


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same directory, then :func:`os.replace`.

    Parameters
    ----------
    path : pathlib.Path
        Destination (replaced if it exists).
    data : bytes
        Content.
    """
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMPORARY_SUFFIX, dir=path.parent)
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
            f"{_fix(path.parent)}"
        )
        raise CheckpointError(msg) from err
    if hashlib.sha256(data).hexdigest() != sha256:
        msg = (
            f"The {what} {os.fspath(path)!r} is corrupt: its SHA-256 checksum does not match the recorded one. "
            f"{_fix(path.parent)}"
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
        msg = f"The {what} {os.fspath(path)!r} cannot be read ({err}). {_fix(path.parent)}"
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
        msg = f"The checkpoint {what} {os.fspath(path)!r} is unreadable or corrupt ({err}). {_fix(directory)}"
        raise CheckpointError(msg) from err
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        msg = (
            f"The file {os.fspath(path)!r} is not a daskml_lab checkpoint {what} (no format "
            f"{FORMAT_NAME!r} in it). {_fix(directory)}"
        )
        raise CheckpointError(msg)
    if info.get("format_version") != FORMAT_VERSION:
        msg = (
            f"The checkpoint {what} {os.fspath(path)!r} has format version {info.get('format_version')!r}; this "
            f"version of daskml_lab reads version {FORMAT_VERSION}. {_fix(directory)}"
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
            or math.isclose(saved, current, rel_tol=_FLOAT_RTOL, abs_tol=0.0)
            or (math.isnan(saved) and math.isnan(current))
        )
        return [] if same else [f"{where} (saved {saved!r}, now {current!r})"]
    if saved != current:
        text_saved, text_current = repr(saved), repr(current)
        if len(text_saved) > 120 or len(text_current) > 120:
            return [f"{where} (differs)"]
        return [f"{where} (saved {text_saved}, now {text_current})"]
    return []


def _describe_differences(found: list[str]) -> str:
    shown = "; ".join(found[:5])
    return shown + (f"; and {len(found) - 5} more" if len(found) > 5 else "")


def check_directory(path: Any) -> Path:
    """Create the checkpoint directory if needed, make sure this process can write in it, drop stale temporaries.

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
        handle, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=_TEMPORARY_SUFFIX, dir=directory)
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        msg = (
            f"The checkpoint directory {os.fspath(path)!r} cannot be created or written to ({err.strerror or err})."
            " Pass a checkpoint path in a writable location, or fix its permissions."
        )
        raise CheckpointError(msg) from err
    for stale in directory.glob(f".*{_TEMPORARY_SUFFIX}"):  # left by a process killed while writing
        with contextlib.suppress(OSError):
            stale.unlink()
    return directory


def open_checkpoint_directory(
    path: Any, *, owner: str, fingerprint: Mapping[str, Any], state: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check the directory is writable, then create its manifest or check that it belongs to this fit.

    Call it at the start of ``fit``, before any computation: an unwritable directory, or a directory used by
    another estimator or other parameters, fails at once.

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
    """
    directory = check_directory(path)
    manifest = directory / MANIFEST_NAME
    current = {"owner": owner, "fingerprint": canonical(fingerprint)}
    if manifest.exists():
        info = read_json(manifest, "manifest", directory)
        found = differences({"owner": info.get("owner"), "fingerprint": info.get("fingerprint")}, current)
        if found:
            msg = (
                f"The checkpoint directory {os.fspath(directory)!r} belongs to another fit ({info.get('owner')}); "
                f"what differs: {_describe_differences(found)}. {_fix(directory)}"
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


# ---------------------------------------------------------------------------------------------------------
# solver runs


class SolverCheckpoint:
    """Where and how often a solver saves its state; pass it to a solver as ``checkpoint=``.

    Parameters
    ----------
    directory : str or path-like
        Directory of the checkpoint files (created if missing).
    every : int, default=1
        Save after every ``every`` iterations (and always at the end of the run).
    stage : str, default="solver"
        Name of this solver run inside the directory (letters, digits, ``-`` and ``_``); fits that run the
        solver several times give each run its own stage.

    Notes
    -----
    A solver given a checkpoint whose stage already holds a saved state resumes from it: it restarts from the
    saved parameters, iteration count, history and solver state, and stops at the same ``max_iter``. When
    the saved run had completed, the solver returns its result at once (after checking the data). See
    :doc:`/checkpoints`.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from daskml_lab.solvers import BlockedProblem, SolverCheckpoint, get_solver
    >>> X = da.from_array(np.array([[0.0], [1.0], [2.0], [3.0]]), chunks=2)
    >>> y = da.from_array(np.array([0, 0, 1, 1]), chunks=2)
    >>> with BlockedProblem(X, y, loss="logistic") as problem:  # doctest: +SKIP
    ...     result = get_solver("gd")(problem, checkpoint=SolverCheckpoint("fit.ckpt", every=5))
    """

    def __init__(self, directory: Any, *, every: int = 1, stage: str = "solver") -> None:
        if not isinstance(directory, str | os.PathLike):
            msg = f"directory must be a str or path-like, got {type(directory).__name__}."
            raise TypeError(msg)
        if not isinstance(every, numbers.Integral) or isinstance(every, bool) or every < 1:
            msg = f"every must be an int >= 1, got {every!r}."
            raise ValueError(msg)
        if not isinstance(stage, str) or not _STAGE_PATTERN.match(stage):
            msg = f"stage must be 1 to 64 letters, digits, '-' or '_', got {stage!r}."
            raise ValueError(msg)
        self.directory = Path(os.fspath(directory))
        self.every = int(every)
        self.stage = stage

    def __repr__(self) -> str:
        return f"SolverCheckpoint({os.fspath(self.directory)!r}, every={self.every}, stage={self.stage!r})"


@dataclasses.dataclass
class SavedState:
    """What a stage's files hold.

    Attributes
    ----------
    iteration : int
        Iterations completed when the state was saved.
    history : list of dict
        The history records up to then.
    arrays : dict of ndarray
        Parameters and state arrays.
    state : dict
        Scalar solver state.
    complete : bool
        Whether the run had finished (``state`` then holds ``n_iter``, ``converged``, ``message`` and
        ``warning``; ``arrays["W"]`` the final parameters).
    """

    iteration: int
    history: list[dict[str, Any]]
    arrays: dict[str, np.ndarray]
    state: dict[str, Any]
    complete: bool


class _NoCheckpoint:
    """Stand-in used when a solver runs without a checkpoint: every method does nothing."""

    def load(self) -> SavedState | None:
        return None

    def save(
        self, iteration: int, history: list[dict[str, Any]], arrays: Mapping[str, Any], **state: Any
    ) -> None:
        return None

    def complete(self, result: Any, warning: str | None) -> None:
        return None


class _CheckpointRun:
    """One solver run's view of its stage files: load the saved state, save every k iterations, complete."""

    def __init__(self, spec: SolverCheckpoint, problem: Any, solver: str, options: Mapping[str, Any]) -> None:
        self.spec = spec
        self.problem = problem
        self.solver = solver
        self.directory = check_directory(spec.directory)
        self.metadata_path = self.directory / f"{spec.stage}.json"
        self.fingerprint = canonical(
            {"solver": solver, "options": dict(options), "problem": _problem_fingerprint(problem)}
        )
        self._digest: str | None = None

    # -- reading -------------------------------------------------------------------------------------------
    def _data_digest(self) -> str:
        if self._digest is None:
            self._digest = data_digest(self.problem)
        return self._digest

    def load(self) -> SavedState | None:
        """The saved state of this stage, checked against the problem; ``None`` when there is none."""
        if not self.metadata_path.exists():
            return None
        info = read_json(self.metadata_path, "file", self.directory)
        found = differences(info.get("fingerprint"), self.fingerprint)
        if found:
            msg = (
                f"The checkpoint {os.fspath(self.metadata_path)!r} was written for another problem or solver "
                f"settings; what differs: {_describe_differences(found)}. {_fix(self.directory)}"
            )
            raise CheckpointError(msg)
        if info.get("data_digest") != self._data_digest():
            msg = (
                f"The checkpoint {os.fspath(self.metadata_path)!r} was written for other data: the shapes and "
                "chunks agree, but the content of the row blocks differs. "
                f"{_fix(self.directory)}"
            )
            raise CheckpointError(msg)
        arrays = self._read_arrays(info)
        try:
            saved = SavedState(
                iteration=int(info["iteration"]),
                history=[dict(record) for record in info["history"]],
                arrays=arrays,
                state=dict(info["state"]),
                complete=info["status"] == "complete",
            )
        except (KeyError, TypeError, ValueError) as err:
            msg = f"The checkpoint {os.fspath(self.metadata_path)!r} lacks {err}. {_fix(self.directory)}"
            raise CheckpointError(msg) from err
        if not saved.complete:
            logger.info(
                "%s: resuming stage %r from the checkpoint of iteration %d in %s",
                self.solver,
                self.spec.stage,
                saved.iteration,
                os.fspath(self.directory),
            )
        return saved

    def _read_arrays(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        entry = info.get("arrays") or {}
        name = entry.get("name")
        path = self.directory / str(name)
        if not isinstance(name, str) or "/" in name or os.sep in name:
            msg = f"The checkpoint {os.fspath(self.metadata_path)!r} names no valid array file. {_fix(self.directory)}"
            raise CheckpointError(msg)
        return load_arrays(
            path, entry.get("sha256"), what=f"array file of checkpoint {os.fspath(self.metadata_path)!r}"
        )

    # -- writing -------------------------------------------------------------------------------------------
    def save(
        self, iteration: int, history: list[dict[str, Any]], arrays: Mapping[str, Any], **state: Any
    ) -> None:
        """Save the state after ``iteration`` iterations if ``iteration`` is a multiple of ``every``."""
        if iteration % self.spec.every == 0:
            self._write(iteration, history, arrays, state, status="running")

    def complete(self, result: Any, warning: str | None) -> None:
        """Save the final result (``SolverResult``, ``W`` in float64) and mark the run complete."""
        state = {
            "n_iter": int(result.n_iter),
            "converged": bool(result.converged),
            "message": str(result.message),
            "warning": warning,
        }
        self._write(int(result.n_iter), list(result.history), {"W": result.W}, state, status="complete")

    def _write(
        self,
        iteration: int,
        history: list[dict[str, Any]],
        arrays: Mapping[str, Any],
        state: Mapping[str, Any],
        *,
        status: str,
    ) -> None:
        array_name = f"{self.spec.stage}.{iteration}.npz"
        checksum, n_bytes = save_arrays(self.directory / array_name, arrays)
        info = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "stage": self.spec.stage,
            "status": status,
            "iteration": int(iteration),
            "fingerprint": self.fingerprint,
            "data_digest": self._data_digest(),
            "arrays": {"name": array_name, "sha256": checksum, "n_bytes": n_bytes},
            "state": dict(state),
            "history": list(history),
        }
        atomic_write(self.metadata_path, dump_json(info))
        # the metadata now names the new array file: drop the older ones of this stage
        for old in self.directory.glob(f"{self.spec.stage}.*.npz"):
            if old.name != array_name:
                with contextlib.suppress(OSError):
                    old.unlink()
        logger.debug("checkpoint %s: %s after %d iterations", self.metadata_path, status, iteration)


def open_checkpoint(
    checkpoint: SolverCheckpoint | None, problem: Any, solver: str, options: Mapping[str, Any]
) -> _CheckpointRun | _NoCheckpoint:
    """The checkpoint of one solver run (a do-nothing stand-in when ``checkpoint`` is None).

    Parameters
    ----------
    checkpoint : SolverCheckpoint or None
        The solver's ``checkpoint`` argument.
    problem : BlockedProblem
        The problem, started.
    solver : str
        Registry name of the solver.
    options : dict
        Everything besides the problem that determines the solution: ``tol``, ``max_iter``, the tuning
        constants, ``random_state`` (see :func:`canonical`).

    Raises
    ------
    TypeError
        If ``checkpoint`` is neither None nor a :class:`SolverCheckpoint`.
    CheckpointError
        If the directory cannot be written to.
    """
    if checkpoint is None:
        return _NoCheckpoint()
    if not isinstance(checkpoint, SolverCheckpoint):
        msg = (
            f"{solver}: checkpoint must be a daskml_lab.solvers.SolverCheckpoint or None, got "
            f"{type(checkpoint).__name__}."
        )
        raise TypeError(msg)
    return _CheckpointRun(checkpoint, problem, solver, options)


def finished_result(saved: SavedState, problem: Any, solver: str) -> Any:
    """The :class:`SolverResult` of a completed run read back from its checkpoint (warning again if it did)."""
    from daskml_lab.solvers._result import SolverResult, warn_not_converged

    state = saved.state
    if state.get("warning"):
        warn_not_converged(solver, str(state["warning"]))
    W = np.asarray(saved.arrays["W"], dtype=np.float64).reshape(problem.n_params, problem.n_outputs)
    logger.info("%s: the checkpoint holds a completed run; returning its result", solver)
    return SolverResult(
        W=W.astype(problem.dtype),
        n_iter=int(state["n_iter"]),
        converged=bool(state["converged"]),
        history=saved.history,
        message=str(state["message"]),
    )


# ---------------------------------------------------------------------------------------------------------
# the problem's fingerprint and the digest of its data


def _problem_fingerprint(problem: Any) -> dict[str, Any]:
    X = problem.X
    return {
        "loss": problem.loss,
        "loss_options": problem.loss_options,
        "n_outputs": problem.n_outputs,
        "fit_intercept": problem.fit_intercept,
        "data_scale": problem.data_scale,
        "l2": problem.l2,
        "l1": problem.l1,
        "n_samples": problem.n_samples,
        "n_features": problem.n_features,
        "dtype": np.dtype(problem.dtype).str,
        "sparse": bool(sp.issparse(getattr(X, "_meta", None))),
        "row_chunks": [int(c) for c in X.chunks[0]],
        "sample_weight": problem.sample_weight is not None,
    }


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


def _digest_blocks_worker(local: Any) -> list[tuple[int, str]]:
    """Per prepared block held here: its global index and a BLAKE2 digest of its rows, targets and weights."""
    found = []
    for index, block in zip(local.indices, local.blocks, strict=True):
        digest = hashlib.blake2b(digest_size=16)
        for part in (block.X, block.target, block.weight):
            update_digest(digest, part)
        found.append((int(index), digest.hexdigest()))
    return found


def data_digest(problem: Any) -> str:
    """A digest of the problem's data, from per-block digests computed where the blocks live (one call)."""
    parts = sorted(item for worker in problem.map_workers(_digest_blocks_worker) for item in worker)
    digest = hashlib.sha256()
    for index, block_digest in parts:
        digest.update(f"{index}:{block_digest};".encode())
    return digest.hexdigest()
