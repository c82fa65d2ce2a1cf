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
import logging
import numbers
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from daskml_lab._runtime.checkpoint_files import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CheckpointError,
    atomic_write,
    canonical,
    check_directory,
    describe_differences,
    differences,
    dump_json,
    fix_advice,
    load_arrays,
    lock_checkpoint_directory,
    read_json,
    require_lock,
    save_arrays,
    update_digest,
)
from daskml_lab.solvers._result import SolverResult, warn_not_converged

__all__ = [
    "CheckpointError",
    "SavedState",
    "SolverCheckpoint",
    "check_checkpoint_argument",
    "data_digest",
    "finished_result",
    "lock_checkpoint",
    "open_checkpoint",
]

logger = logging.getLogger(__name__)

_STAGE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

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
        require_lock(self.directory)  # the run's writes assume no other fit writes the directory
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
                f"settings; what differs: {describe_differences(found)}. {fix_advice(self.directory)}"
            )
            raise CheckpointError(msg)
        if info.get("data_digest") != self._data_digest():
            msg = (
                f"The checkpoint {os.fspath(self.metadata_path)!r} was written for other data: the shapes and "
                "chunks agree, but the content of the row blocks differs. "
                f"{fix_advice(self.directory)}"
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
            msg = (
                f"The checkpoint {os.fspath(self.metadata_path)!r} lacks {err}. {fix_advice(self.directory)}"
            )
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
            msg = (
                f"The checkpoint {os.fspath(self.metadata_path)!r} names no valid array file. "
                f"{fix_advice(self.directory)}"
            )
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
    check_checkpoint_argument(checkpoint, solver)
    if checkpoint is None:
        return _NoCheckpoint()
    return _CheckpointRun(checkpoint, problem, solver, options)


def lock_checkpoint(checkpoint: SolverCheckpoint | None) -> contextlib.AbstractContextManager[Any]:
    """Hold the lock of ``checkpoint``'s directory for a solver run (nothing without a checkpoint).

    Raises
    ------
    CheckpointError
        If another fit holds the directory (see
        :func:`~daskml_lab._runtime.checkpoint_files.lock_checkpoint_directory`).
    """
    if checkpoint is None:
        return contextlib.nullcontext()
    return lock_checkpoint_directory(checkpoint.directory)


def check_checkpoint_argument(checkpoint: Any, solver: str) -> None:
    """Raise ``TypeError`` unless ``checkpoint`` is None or a :class:`SolverCheckpoint`."""
    if checkpoint is not None and not isinstance(checkpoint, SolverCheckpoint):
        msg = (
            f"{solver}: checkpoint must be a daskml_lab.solvers.SolverCheckpoint or None, got "
            f"{type(checkpoint).__name__}."
        )
        raise TypeError(msg)


def finished_result(saved: SavedState, problem: Any, solver: str) -> SolverResult:
    """The :class:`SolverResult` of a completed run read back from its checkpoint (warning again if it did)."""
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
