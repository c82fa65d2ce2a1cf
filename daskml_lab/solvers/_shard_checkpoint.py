"""Checkpoints of a partitioned parameter store: every shard writes and reads its own state where it lives.

A partitioned model can be larger than the client may hold, so its state never travels: each parameter shard
(a Dask actor, see :mod:`daskml_lab.solvers._sharded_store`) writes its arrays and scalars to its own ``.npz``
file in the checkpoint directory, and returns only the file's SHA-256 and size to the client; on resume each
new shard reads its own file back on its worker, after checking the SHA-256. The directory must therefore be
reachable by the workers under the same path: true on a LocalCluster, and on a cluster whose workers share a
filesystem with the client (NFS, a mounted volume).

The files follow the conventions of :mod:`daskml_lab.solvers._checkpoint`: ``<stage>.shard-<s>.<epoch>.npz``
for shard ``s`` (read with ``allow_pickle=False``; written to a temporary file in the directory, then renamed
over with :func:`os.replace`), then ``<stage>.json`` last (the fingerprint, the data digest, the layout of the
store, the history, the solver's scalar state and every shard file's SHA-256). A process killed at any moment
leaves the previous consistent checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import numbers
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

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
    read_json,
    require_lock,
    update_digest,
)
from daskml_lab.solvers._checkpoint import SolverCheckpoint, check_checkpoint_argument, lock_checkpoint

__all__ = [
    "SavedStore",
    "ShardState",
    "StoreCheckpoint",
    "holding_checkpoint",
    "open_store_checkpoint",
    "resume_store",
    "store_data_digest",
    "store_fingerprint",
]

logger = logging.getLogger(__name__)

#: Bytes read at a time when a shard file's SHA-256 is computed (bounds the memory of the check).
_HASH_CHUNK = 16 * 2**20
#: Name, inside a shard file, of the JSON of the shard's class and scalars (stored as uint8 bytes).
_SCALARS = "scalars"


def _plain(value: Any) -> Any:
    """``value`` as a JSON scalar (numpy scalars unwrapped), or ``NotImplemented`` when it is not one."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return NotImplemented


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ShardState:
    """Writes a parameter shard's full state to a file and reads it back (a mixin of ``ParameterShard``).

    Generic over the instance's attributes: every numpy array (the values, a step rule's state such as
    AdaGrad's accumulator and ``last_tick`` or FTRL's ``z`` and ``n``, a full-batch solver's vectors and
    history) and every scalar or dict of scalars (``scale``, ``clock``, the rate, the counters). Attributes
    listed in :attr:`CHECKPOINT_SKIP` (the bookkeeping of one round) and other objects are not state.
    """

    #: Attributes that :meth:`start_round` sets afresh: not part of a checkpoint.
    CHECKPOINT_SKIP: ClassVar[frozenset[str]] = frozenset({"worker_clocks"})

    def _checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {}
        scalars: dict[str, Any] = {}
        for name, value in vars(self).items():
            if name in self.CHECKPOINT_SKIP:
                continue
            if isinstance(value, np.ndarray):
                arrays[name] = value
            elif isinstance(value, dict):
                plain = {str(k): _plain(v) for k, v in value.items()}
                if all(isinstance(k, str) for k in value) and NotImplemented not in plain.values():
                    scalars[name] = plain
            elif _plain(value) is not NotImplemented:
                scalars[name] = _plain(value)
        return arrays, scalars

    def save_state(self, path: str) -> dict[str, Any]:
        """Write the shard's state to ``path`` (atomically); return its ``sha256`` and ``n_bytes``.

        Runs on the shard's worker; only the checksum travels. The arrays are streamed to a temporary file
        in the same directory (no in-memory copy of the state), which is then renamed over ``path``.
        """
        target = Path(path)
        arrays, scalars = self._checkpoint_state()
        text = json.dumps({"class": type(self).__name__, "scalars": scalars}).encode("utf-8")
        members = {f"array.{name}": value for name, value in arrays.items()}
        members[_SCALARS] = np.frombuffer(text, dtype=np.uint8)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
        )
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, **members)
                stream.flush()
                os.fsync(stream.fileno())
            checksum = _file_sha256(Path(temporary))
            n_bytes = os.path.getsize(temporary)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return {"sha256": checksum, "n_bytes": int(n_bytes)}

    def restore_state(self, path: str, sha256: str) -> None:
        """Set the shard's state from the file ``path`` of :meth:`save_state`, after checking its SHA-256.

        Raises
        ------
        CheckpointError
            When the file is missing, corrupt (another SHA-256), or was written by another kind of shard or
            for another shape of shard.
        """
        source = Path(path)
        what = f"parameter shard file {os.fspath(source)!r}"
        try:
            if _file_sha256(source) != sha256:
                msg = (
                    f"The {what} is corrupt: its SHA-256 checksum does not match the recorded one. "
                    f"{fix_advice(source.parent)}"
                )
                raise CheckpointError(msg)
            # never unpickles: object arrays are refused
            with np.load(source, allow_pickle=False) as stored:
                header = json.loads(bytes(stored[_SCALARS]).decode("utf-8"))
                arrays = {
                    key.removeprefix("array."): np.array(stored[key])
                    for key in stored.files
                    if key.startswith("array.")
                }
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            if isinstance(err, CheckpointError):
                raise
            msg = f"The {what} is missing or unreadable ({err}). {fix_advice(source.parent)}"
            raise CheckpointError(msg) from err
        if header.get("class") != type(self).__name__:
            msg = (
                f"The {what} holds a {header.get('class')} but this fit's shards are {type(self).__name__}s. "
                f"{fix_advice(source.parent)}"
            )
            raise CheckpointError(msg)
        for name, array in arrays.items():
            current = getattr(self, name, None)
            if isinstance(current, np.ndarray) and current.shape != array.shape:
                msg = (
                    f"The {what} holds {name} of shape {array.shape} but this shard's has {current.shape}: "
                    f"the store is split differently. {fix_advice(source.parent)}"
                )
                raise CheckpointError(msg)
        for name, value in {**header.get("scalars", {}), **arrays}.items():
            setattr(self, name, value)


def store_data_digest(client: Any, groups: Mapping[str, list[int]], block_futures: list[list[Any]]) -> str:
    """A digest of the fit's row blocks, each hashed on the worker holding it (one small task per worker)."""
    calls = []
    for address, indices in groups.items():
        blocks = [block_futures[c][i] for i in indices for c in range(len(block_futures))]
        calls.append(
            client.submit(
                _digest_blocks,
                list(indices),
                len(block_futures),
                *blocks,
                workers=[address],
                allow_other_workers=False,
                pure=False,
            )
        )
    # gather: one (index, 32-character digest) pair per block
    parts = sorted(item for found in client.gather(calls) for item in found)
    digest = hashlib.sha256()
    for index, block_digest in parts:
        digest.update(f"{index}:{block_digest};".encode())
    return digest.hexdigest()


def _digest_blocks(indices: list[int], n_parts: int, *blocks: Any) -> list[tuple[int, str]]:
    """Per block: its index and a BLAKE2 digest of its rows, targets (and weights)."""
    found = []
    for position, index in enumerate(indices):
        digest = hashlib.blake2b(digest_size=16)
        for part in blocks[position * n_parts : (position + 1) * n_parts]:
            update_digest(digest, part)
        found.append((int(index), digest.hexdigest()))
    return found


@dataclasses.dataclass
class SavedStore:
    """What a stage's files hold for a partitioned fit.

    Attributes
    ----------
    iteration : int
        Epochs (iterations) completed when the state was saved.
    history : list of dict
        The history records up to then.
    state : dict
        The solver's scalar state (random entropy, last objective, ...).
    complete : bool
        Whether the run had finished (``state`` then holds ``converged``, ``message`` and ``warning``).
    shards : list of dict
        Each shard file's ``name``, ``sha256`` and ``n_bytes``.
    """

    iteration: int
    history: list[dict[str, Any]]
    state: dict[str, Any]
    complete: bool
    shards: list[dict[str, Any]]


class StoreCheckpoint:
    """One partitioned solver run's view of its stage files: check, restore the shards, save every k epochs.

    Parameters
    ----------
    spec : SolverCheckpoint
        Directory, ``every`` and stage.
    solver : str
        The solver's name.
    fingerprint : dict
        What determines the solution besides the data and the store's layout: options and problem.
    data_digest : callable
        Returns the digest of the data (computed once, when first needed).
    unit : str, default="epoch"
        What the solver counts (``"iteration"`` for the full-batch solvers), in the messages.
    """

    def __init__(
        self,
        spec: SolverCheckpoint,
        solver: str,
        fingerprint: Mapping[str, Any],
        data_digest: Any,
        unit: str = "epoch",
    ) -> None:
        self.spec = spec
        self.solver = solver
        self.unit = unit
        self.directory = check_directory(spec.directory)
        require_lock(self.directory)  # the run's writes assume no other fit writes the directory
        self.metadata_path = self.directory / f"{spec.stage}.json"
        self.fingerprint = canonical({"solver": solver, **fingerprint})
        self._data_digest = data_digest
        self._digest: str | None = None
        self.last_saved = 0

    def digest(self) -> str:
        """The data digest (one pass over the blocks where they live, the first time)."""
        if self._digest is None:
            self._digest = self._data_digest()
        return self._digest

    def load(self, layout: Mapping[str, Any]) -> SavedStore | None:
        """The saved state of this stage, checked against the problem, the store's ``layout`` and the data.

        Raises
        ------
        CheckpointError
            Naming what differs and the fix.
        """
        if not self.metadata_path.exists():
            return None
        where = os.fspath(self.metadata_path)
        info = read_json(self.metadata_path, "file", self.directory)
        found = differences(info.get("fingerprint"), self.fingerprint)
        if found:
            msg = (
                f"The checkpoint {where!r} was written for another problem or solver settings; what differs: "
                f"{describe_differences(found)}. {fix_advice(self.directory)}"
            )
            raise CheckpointError(msg)
        found = differences(info.get("layout"), canonical(dict(layout)))
        if found:
            msg = (
                f"The checkpoint {where!r} holds a model split into other parameter shards; what differs: "
                f"{describe_differences(found)}. Fit with the same model_partitions (an int: "
                "model_partitions='auto' and None give one shard per worker, so the same number of workers), "
                f"or start afresh. {fix_advice(self.directory)}"
            )
            raise CheckpointError(msg)
        if info.get("data_digest") != self.digest():
            msg = (
                f"The checkpoint {where!r} was written for other data: the shapes and chunks agree, but the "
                f"content of the row blocks differs. {fix_advice(self.directory)}"
            )
            raise CheckpointError(msg)
        try:
            saved = SavedStore(
                iteration=int(info["iteration"]),
                history=[dict(record) for record in info["history"]],
                state=dict(info["state"]),
                complete=info["status"] == "complete",
                shards=[dict(entry) for entry in info["shards"]],
            )
        except (KeyError, TypeError, ValueError) as err:
            msg = f"The checkpoint {where!r} lacks {err}. {fix_advice(self.directory)}"
            raise CheckpointError(msg) from err
        for entry in saved.shards:
            name = entry.get("name")
            if not isinstance(name, str) or "/" in name or os.sep in name:
                msg = f"The checkpoint {where!r} names no valid shard file. {fix_advice(self.directory)}"
                raise CheckpointError(msg)
        self.last_saved = saved.iteration
        return saved

    def restore(self, store: Any, saved: SavedStore) -> None:
        """Each shard reads its own file, on its worker (nothing of the model passes through the client)."""
        view = store.view
        calls = [
            shard.restore_state(os.fspath(self.directory / entry["name"]), entry["sha256"])
            for shard, entry in zip(view.shards, saved.shards, strict=True)
        ]
        for call in calls:
            call.result(view.timeout_s)
        logger.info(
            "%s: %s the parameter shards of %s %d from the checkpoint in %s",
            self.solver,
            "restored the completed fit's" if saved.complete else "resuming from",
            self.unit,
            saved.iteration,
            os.fspath(self.directory),
        )

    def save(
        self,
        store: Any,
        layout: Mapping[str, Any],
        iteration: int,
        history: list[dict[str, Any]],
        **state: Any,
    ) -> None:
        """Save after ``iteration`` epochs if ``iteration`` is a multiple of ``every``."""
        if iteration % self.spec.every == 0:
            self._write(store, layout, iteration, history, state, status="running")

    def complete(
        self,
        store: Any,
        layout: Mapping[str, Any],
        iteration: int,
        history: list[dict[str, Any]],
        **state: Any,
    ) -> None:
        """Save the final state and mark the run complete."""
        self._write(store, layout, iteration, history, state, status="complete")

    def resume_advice(self) -> str:
        """What a refit with the same checkpoint does (for the lost-worker error)."""
        unit = self.unit
        if self.last_saved == 0:
            return (
                f"No {unit} was checkpointed yet in {os.fspath(self.directory)!r}: a refit with the same "
                "checkpoint starts afresh."
            )
        return (
            f"The checkpoint {os.fspath(self.directory)!r} holds every shard as of {unit} {self.last_saved}: fit "
            f"again with the same checkpoint (and model_partitions) to resume from {unit} {self.last_saved + 1}."
        )

    def _write(
        self,
        store: Any,
        layout: Mapping[str, Any],
        iteration: int,
        history: list[dict[str, Any]],
        state: Mapping[str, Any],
        *,
        status: str,
    ) -> None:
        view = store.view
        names = [f"{self.spec.stage}.shard-{s}.{iteration}.npz" for s in range(len(view.shards))]
        # shard files first (each written by its shard, concurrently), the metadata naming them last
        calls = [
            shard.save_state(os.fspath(self.directory / name))
            for shard, name in zip(view.shards, names, strict=True)
        ]
        shards = [
            {"name": name, **call.result(view.timeout_s)} for name, call in zip(names, calls, strict=True)
        ]
        info = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "stage": self.spec.stage,
            "status": status,
            "iteration": int(iteration),
            "fingerprint": self.fingerprint,
            "layout": canonical(dict(layout)),
            "data_digest": self.digest(),
            "shards": shards,
            "state": dict(state),
            "history": list(history),
        }
        atomic_write(self.metadata_path, dump_json(info))
        self.last_saved = int(iteration)
        # the metadata now names the new shard files: drop the older ones of this stage
        for old in self.directory.glob(f"{self.spec.stage}.shard-*.npz"):
            if old.name not in names:
                with contextlib.suppress(OSError):
                    old.unlink()
        logger.debug("checkpoint %s: %s after %d %ss", self.metadata_path, status, iteration, self.unit)


def open_store_checkpoint(
    checkpoint: SolverCheckpoint | None,
    solver: str,
    fingerprint: Mapping[str, Any],
    data_digest: Any,
    unit: str = "epoch",
) -> StoreCheckpoint | None:
    """The checkpoint of one partitioned solver run, or None without one (see :class:`StoreCheckpoint`).

    Raises
    ------
    TypeError
        If ``checkpoint`` is neither None nor a :class:`SolverCheckpoint`.
    CheckpointError
        If the directory cannot be written to.
    """
    check_checkpoint_argument(checkpoint, solver)
    if checkpoint is None:
        return None
    return StoreCheckpoint(checkpoint, solver, fingerprint, data_digest, unit)


def holding_checkpoint(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run the decorated partitioned solver holding the lock of its ``checkpoint`` keyword's directory."""

    @functools.wraps(function)
    def locked(*args: Any, checkpoint: SolverCheckpoint | None = None, **kwargs: Any) -> Any:
        check_checkpoint_argument(checkpoint, function.__name__)
        # already held when an estimator's fit runs the solver (the lock is re-entrant in a thread)
        with lock_checkpoint(checkpoint):
            return function(*args, checkpoint=checkpoint, **kwargs)

    return locked


def resume_store(saver: StoreCheckpoint | None, store: Any) -> SavedStore | None:
    """The saved state of the run, its shards restored into ``store`` (checked first); None to start afresh.

    Raises
    ------
    CheckpointError
        When the checkpoint was written for another problem, settings, layout of the store or data, or a
        shard file is corrupt; before any epoch runs.
    """
    if saver is None:
        return None
    saved = saver.load(dataclasses.asdict(store.view.rule))
    if saved is not None:
        saver.restore(store, saved)
    return saved


def store_fingerprint(X: Any, sample_weight: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """What determines a partitioned run's solution besides the data's content and the store's layout.

    ``options`` are the solver's settings and the problem's factors (loss, penalties, ``n_outputs``, ...);
    the shapes, dtype, row chunks and kind of the data are added here.
    """
    meta = getattr(X, "_meta", None)
    return {
        "options": dict(options),
        "data": {
            "shape": [int(n) for n in X.shape],
            "dtype": np.dtype(X.dtype).str,
            "sparse": bool(meta is not None and hasattr(meta, "tocsr")),
            "row_chunks": [int(c) for c in X.chunks[0]],
            "sample_weight": sample_weight is not None,
        },
    }
