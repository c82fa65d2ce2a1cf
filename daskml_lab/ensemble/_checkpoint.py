"""Checkpoints of the shard ensembles: every shard model saved as it arrives, a resumed fit trains the rest.

A checkpoint directory holds the manifest of :func:`daskml_lab._runtime.checkpoint_files.open_checkpoint_directory`
(the estimator's class, parameters and data layout, and the root seed) and, per shard, files written by
:class:`ShardCheckpoint` (shard ensembles) or :class:`~daskml_lab.ensemble._cascade_checkpoint.CascadeCheckpoint`
(the shard SVCs of a Cascade SVM). A shard is done when its JSON file exists; a resumed fit reuses a shard's
saved result only when the digest of the shard's rows, computed again where the shard lives, is unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable
from typing import Any

import dask
import numpy as np
import scipy.sparse as sp
from dask.callbacks import Callback
from distributed import wait

from daskml_lab._compat import unique_fused_keys
from daskml_lab._runtime.checkpoint_files import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CheckpointError,
    atomic_write,
    dump_json,
    open_checkpoint_directory,
    read_json,
    read_verified,
    require_lock,
    update_digest,
)
from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.cluster_health import CHECK_INTERVAL_S, NO_WORKER_GRACE_S, ClusterHealth
from daskml_lab._runtime.waiting import forget_traceback
from daskml_lab._runtime.watched_compute import watched_compute
from daskml_lab.data.validation import ValidatedData
from daskml_lab.ensemble._placement import PlacedShards
from daskml_lab.ensemble._training import (
    ShardSeeds,
    _collect_members_block,
    build_held_out_graph,
    build_shard_fit_graph,
    split_rows,
)
from daskml_lab.fusion import Fusion
from daskml_lab.monitoring import task_prefix
from daskml_lab.persistence import load, save

__all__ = [
    "ShardCheckpoint",
    "ShardFiles",
    "compute_as_completed",
    "open_ensemble_checkpoint",
    "shard_digest_block",
]

logger = logging.getLogger(__name__)


def open_ensemble_checkpoint(estimator: Any, data: ValidatedData, root: int) -> dict[str, Any]:
    """Open ``estimator.checkpoint``: its manifest names the class, the parameters and the data layout.

    Parameters
    ----------
    estimator : estimator instance
        A shard ensemble or ``CascadeSVC`` with a ``checkpoint`` parameter.
    data : ValidatedData
        The validated training data.
    root : int
        The root entropy of this fit, recorded in a new manifest.

    Returns
    -------
    dict
        As :func:`~daskml_lab._runtime.checkpoint_files.open_checkpoint_directory`; ``state["root"]`` is the root
        entropy of the fit the directory belongs to.
    """
    X = data.X
    fingerprint = {
        "params": {k: v for k, v in estimator.get_params(deep=False).items() if k != "checkpoint"},
        "data": {
            "n_samples": int(X.shape[0]),
            "n_features": int(X.shape[1]),
            "dtype": np.dtype(X.dtype).str,
            "sparse": bool(sp.issparse(X._meta)),
            "row_chunks": [int(c) for c in X.chunks[0]],
            "sample_weight": data.sample_weight is not None,
        },
    }
    return open_checkpoint_directory(
        estimator.checkpoint,
        owner=type(estimator).__name__,
        fingerprint=fingerprint,
        state={"root": int(root)},
    )


_SHARD_FILE = re.compile(r"^shard-(\d+)\.json$")
#: Model files of a shard, by summary key: the member, and (for members refitted on their whole shard, as
#: stacking does) the model of the training rows, which evaluates the held-out rows.
_MODEL_FILES = {"model": ".model", "held_out_model": ".held-out.model"}


class ShardFiles:
    """The per-shard files of a checkpoint directory: which shards are done, and the computation saving the rest.

    Every shard ``i`` has a ``shard-<i>.json`` file, written last, that starts with :meth:`_header` (the
    format, this fit's manifest digest, the shard and the digest of its rows): a shard is done when its JSON
    exists. :class:`ShardCheckpoint` (shard ensembles) and
    :class:`~daskml_lab.ensemble._cascade_checkpoint.CascadeCheckpoint` (the shard SVCs of a Cascade SVM) add
    what they save beside it.
    """

    def __init__(self, checkpoint: dict[str, Any], n_shards: int) -> None:
        self.directory = checkpoint["directory"]
        require_lock(self.directory)  # the shards' writes assume no other fit writes the directory
        self.fit_id = checkpoint["id"]
        self.n_shards = n_shards

    def _file(self, shard: int, suffix: str) -> Any:
        """The path of one of the shard's files: ``shard-<i><suffix>``."""
        return self.directory / f"shard-{shard:05d}{suffix}"

    def _header(self, shard: int, digest: str) -> dict[str, Any]:
        """The fields every shard JSON file starts with: the format, this fit, the shard and its digest."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "fit": self.fit_id,
            "shard": shard,
            "digest": digest,
        }

    def _fix(self) -> str:
        return (
            f"Delete the directory {os.fspath(self.directory)!r} to start afresh, or pass another checkpoint "
            "path."
        )

    # -- reading -------------------------------------------------------------------------------------------
    def saved_shards(self) -> dict[int, dict[str, Any]]:
        """The shards already done, ``{index: metadata}``, checked against this fit."""
        found: dict[int, dict[str, Any]] = {}
        for path in sorted(self.directory.glob("shard-*.json")):
            match = _SHARD_FILE.match(path.name)
            if match is None:
                continue
            info = read_json(path, "shard file", self.directory)
            shard = int(match.group(1))
            if info.get("fit") != self.fit_id or info.get("shard") != shard or shard >= self.n_shards:
                msg = (
                    f"The checkpoint file {os.fspath(path)!r} does not belong to this fit (another fit, "
                    f"parameters or number of shards wrote it). {self._fix()}"
                )
                raise CheckpointError(msg)
            found[shard] = info
        return found

    # -- training -------------------------------------------------------------------------------------------
    def train_missing(
        self,
        placed: PlacedShards,
        work: dict[int, Any],
        saved: dict[int, dict[str, Any]],
        *,
        token: str,
        what: str,
        source: str,
        save: Callable[[int, Any, str], None],
    ) -> dict[int, Any]:
        """Compute ``work`` and a digest of every shard at once, saving each result as it arrives.

        Parameters
        ----------
        placed : PlacedShards
            The shard blocks.
        work : dict of int to dask.delayed.Delayed
            Per shard without a saved result, the delayed result to save.
        saved : dict
            The saved shards (:meth:`saved_shards`), whose digests are checked against their blocks.
        token : str
            Unique suffix of the task keys.
        what : str
            What a shard's result is called in the log (``"shard(s)"``).
        source : str
            How a saved result relates to its rows, for the error when they changed.
        save : callable
            ``save(index, result, digest)``, called on the client as each result arrives.

        Returns
        -------
        dict of int to object
            The results of ``work``, by shard.

        Raises
        ------
        CheckpointError
            If the rows of a saved shard changed.
        """
        targets: dict[int, Any] = {}
        for index in range(self.n_shards):
            digest = dask.delayed(shard_digest_block, pure=True)(
                placed.X_blocks[index],
                placed.y_blocks[index],
                None if placed.sw_blocks is None else placed.sw_blocks[index],
                dask_key_name=(f"{task_prefix('shard digest')}-{token}", index),
            )
            targets[index] = (
                digest
                if index not in work
                else dask.delayed(_pair_block, pure=True)(
                    work[index], digest, dask_key_name=(f"{task_prefix('shard checkpoint')}-{token}", index)
                )
            )
        logger.info(
            "checkpoint %s: %d of %d %s already trained, training %d",
            self.directory,
            self.n_shards - len(work),
            self.n_shards,
            what,
            len(work),
        )
        results: dict[int, Any] = {}

        def arrived(index: int, value: Any) -> None:
            if index not in work:
                if value != saved[index].get("digest"):
                    msg = (
                        f"The rows of shard {index} differ from those its checkpointed {source} (the digest of "
                        f"the block changed). {self._fix()}"
                    )
                    raise CheckpointError(msg)
                return
            result, digest = value
            save(index, result, digest)
            results[index] = result

        # compute: the result of every missing shard and a digest per shard (saved as they come)
        compute_as_completed(targets, arrived)
        return results


class ShardCheckpoint(ShardFiles):
    """The shard models of a shard ensemble's checkpoint, and the fit that fills them in.

    Per shard ``i``: ``shard-<i>.model`` (the fitted model, saved with :func:`daskml_lab.persistence.save`,
    absent for an empty shard), ``shard-<i>.held-out.model`` (for members refitted on their whole shard, the
    model of the training rows) and ``shard-<i>.json`` (the counts of the shard, a digest of its rows, the
    model files' checksums and the digest of the manifest), written last: a shard is done when its JSON
    exists. A resumed fit trains only the shards without one, and reuses a saved shard model only when the
    digest of the shard's rows, computed again where the shard lives, is unchanged.
    """

    def _model_paths(self, shard: int) -> dict[str, Any]:
        """The shard's model files by summary key."""
        return {key: self._file(shard, suffix) for key, suffix in _MODEL_FILES.items()}

    def _load_model(self, path: Any, checksum: str) -> Any:
        """One saved model, checked against its checksum, through the safe loader."""
        read_verified(path, checksum, what="shard model of the checkpoint")
        try:
            return load(path)
        except (ValueError, TypeError, OSError) as err:
            msg = (
                f"The shard model {os.fspath(path)!r} of the checkpoint cannot be loaded safely ({err}). A "
                "checkpoint can only hold models made of types the safe loader trusts (scikit-learn and "
                f"daskml_lab estimators). {self._fix()}"
            )
            raise CheckpointError(msg) from err

    def load_summary(self, shard: int, info: dict[str, Any]) -> dict[str, Any]:
        """The summary of a saved shard, its models loaded with the safe loader."""
        paths = self._model_paths(shard)
        checksums = info.get("models") or {}
        models = {
            key: None if checksums.get(key) is None else self._load_model(path, checksums[key])
            for key, path in paths.items()
        }
        labels = info.get("labels")
        try:
            return {
                "shard": shard,
                "n_rows": int(info["n_rows"]),
                **models,
                "kind": info["kind"],
                "labels": (
                    None if labels is None else np.asarray(labels["values"], dtype=np.dtype(labels["dtype"]))
                ),
                "counts": None if info.get("counts") is None else np.asarray(info["counts"], dtype=np.int64),
                "worker": info.get("worker"),
                "n_train": int(info["n_train"]),
                "n_held_out": int(info["n_held_out"]),
            }
        except (KeyError, TypeError, ValueError) as err:
            msg = f"The checkpoint file of shard {shard} lacks or garbles {err}. {self._fix()}"
            raise CheckpointError(msg) from err

    # -- writing -------------------------------------------------------------------------------------------
    def save_shard(self, summary: dict[str, Any], digest: str) -> None:
        """Save one shard's models, then its JSON (which marks the shard as done)."""
        shard = int(summary["shard"])
        json_path, paths = self._file(shard, ".json"), self._model_paths(shard)
        checksums: dict[str, str | None] = {}
        for key, path in paths.items():
            checksums[key] = None
            if summary.get(key) is None:
                continue
            try:
                save(summary[key], path, metadata={"checkpoint_shard": shard})
            except TypeError as err:
                err.add_note(
                    f"daskml_lab: raised while saving the model of shard {shard} to the checkpoint; a checkpoint "
                    "holds only models the safe format can store. Fit with checkpoint=None instead."
                )
                raise
            checksums[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        labels = summary.get("labels")
        info = {
            **self._header(shard, digest),
            "kind": summary["kind"],
            "n_rows": int(summary["n_rows"]),
            "n_train": int(summary["n_train"]),
            "n_held_out": int(summary["n_held_out"]),
            "labels": None if labels is None else {"dtype": labels.dtype.str, "values": labels.tolist()},
            "counts": None if summary.get("counts") is None else np.asarray(summary["counts"]).tolist(),
            "worker": summary.get("worker"),
            "models": checksums,
        }
        atomic_write(json_path, dump_json(info))
        logger.debug("checkpoint: saved shard %d to %s", shard, json_path)

    def fit(
        self,
        placed: PlacedShards,
        estimator: Any,
        *,
        seeds: ShardSeeds,
        validation_fraction: float,
        classification: bool,
        fusion: Fusion,
        token: str,
        run_id: str | None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Train the missing shards (saving each model as it arrives), then evaluate the held-out rows.

        Returns the per-shard summaries and held-out results, as the fit without checkpoint computes them.
        The tasks are not pinned to workers: the scheduler runs each where its block lives, and elsewhere if
        that worker dies (saving the models as they arrive rules out
        :func:`~daskml_lab.ensemble._placement.compute_pinned`, which returns them all at the end).
        """
        saved = self.saved_shards()
        n_shards = self.n_shards
        fits, _ = build_shard_fit_graph(
            placed.X_blocks,
            placed.y_blocks,
            placed.sw_blocks,
            estimator,
            seeds=seeds,
            validation_fraction=validation_fraction,
            classification=classification,
            fusion=fusion,
            token=token,
            workers=None,
            run_id=run_id,
        )
        # only the summaries of the missing shards are computed: the saved ones are not refitted
        summaries = self.train_missing(
            placed,
            {index: fits[index] for index in range(n_shards) if index not in saved},
            saved,
            token=token,
            what="shard(s)",
            source="model was trained on",
            save=lambda _, summary, digest: self.save_shard(summary, digest),
        )
        for index in saved:
            summaries[index] = self.load_summary(index, saved[index])
        ordered = [summaries[index] for index in range(n_shards)]
        if validation_fraction <= 0:
            return ordered, []
        return ordered, self._held_out(
            placed, ordered, seeds, validation_fraction, classification, fusion, token
        )

    def _held_out(
        self,
        placed: PlacedShards,
        summaries: list[dict[str, Any]],
        seeds: ShardSeeds,
        validation_fraction: float,
        classification: bool,
        fusion: Fusion,
        token: str,
    ) -> list[dict[str, Any]]:
        """Every member's statistics on the held-out rows of every shard (the same split as the fits)."""
        # the models of the training rows (with refitted members, their held-out models) and the classes
        members = _collect_members_block(summaries, classification)
        X_parts, y_parts, sw_parts = [], [], []
        for index in range(len(summaries)):
            rows = dask.delayed(_held_out_rows_block, pure=True, nout=3)(
                placed.X_blocks[index],
                placed.y_blocks[index],
                None if placed.sw_blocks is None else placed.sw_blocks[index],
                validation_fraction,
                seeds.shards[index][1],
                dask_key_name=(f"{task_prefix('held out rows')}-{token}", index),
            )
            X_parts.append(rows[0])
            y_parts.append(rows[1])
            sw_parts.append(rows[2])
        graph = build_held_out_graph(
            X_parts, y_parts, None if placed.sw_blocks is None else sw_parts, members, fusion, token=token
        )
        # compute: per-model score sums and, for stacking, the meta-features of the held-out rows
        (held_out,) = watched_compute(graph, what="the held-out scores of the shard models")
        return list(held_out)


def compute_as_completed(targets: dict[int, Any], arrived: Callable[[int, Any], None]) -> None:
    """Compute the delayed ``targets`` at once and call ``arrived(index, value)`` as each one finishes.

    With a distributed client, through futures waited for until the first completes (every
    :data:`~daskml_lab._runtime.cluster_health.CHECK_INTERVAL_S` seconds the cluster is asked whether its
    scheduler and a worker are still there: a clear error then, not a wait for ever); with a local scheduler,
    through a :class:`dask.callbacks.Callback` called after each task (and, for a scheduler that does not run
    callbacks, once the compute returns).
    """
    index_of = {target.key: index for index, target in targets.items()}
    client = current_client()
    if client is not None:
        with unique_fused_keys():
            futures = client.compute(list(targets.values()))
        health = ClusterHealth.started(client)
        remaining = set(futures)
        try:
            while remaining:
                try:
                    done, _ = wait(list(remaining), timeout=CHECK_INTERVAL_S, return_when="FIRST_COMPLETED")
                except TimeoutError as err:
                    forget_traceback(err)
                    # a lost scheduler, or no worker left: a clear error now, not a wait for ever
                    health.check(doing="waiting for the shard fits", grace_s=NO_WORKER_GRACE_S)
                    continue
                for future in done:
                    remaining.discard(future)
                    arrived(index_of[future.key], future.result())
        except BaseException:
            # release, not cancel: cancelling futures that depend on each other can trip an assertion in
            # the scheduler and drop this client's connection
            for future in futures:
                future.release()
            raise
        return
    done: set[int] = set()

    def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if key in index_of and index_of[key] not in done:
            done.add(index_of[key])
            arrived(index_of[key], result)

    with Callback(posttask=posttask), unique_fused_keys():
        values = dask.compute(*targets.values())
    for index, value in zip(targets, values, strict=True):
        if index not in done:
            arrived(index, value)


def shard_digest_block(X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> str:
    """A BLAKE2 digest of one shard's rows, targets and weights (to recognise the data of a saved model)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (X, y, sample_weight):
        update_digest(digest, part)
    return digest.hexdigest()


def _pair_block(summary: dict[str, Any], digest: str) -> tuple[dict[str, Any], str]:
    return summary, digest


def _held_out_rows_block(
    X: Any, y: np.ndarray, sample_weight: np.ndarray | None, validation_fraction: float, split_seed: int
) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """The held-out rows of one shard: the split of :func:`~daskml_lab.ensemble._training.split_rows`."""
    _, held_out = split_rows(int(X.shape[0]), validation_fraction, split_seed)
    return X[held_out], y[held_out], None if sample_weight is None else sample_weight[held_out]
