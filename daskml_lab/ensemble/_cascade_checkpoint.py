"""Checkpoints of a Cascade SVM: the support vectors of every shard's SVC, saved as each shard finishes.

The shard SVCs (layer 0 of the first pass) are the cascade's largest and only embarrassingly parallel part:
each solves a problem of a whole shard, the merges above them solve problems of support vectors. A fit with
``checkpoint`` therefore runs in two computations:

1. the SVCs of the shards without saved support vectors, each result saved on the client as it arrives
   (with a digest of the shard's rows, computed where the shard lives, for every shard);
2. the rest of the cascade (merges, feedback passes, calibration), from the saved support vectors, as the
   fit without checkpoint runs it.

A fit interrupted at any point resumes with the shards already trained: only the missing shard SVCs, then
the merges and the feedback passes, run again. The result equals the uninterrupted fit's: the same shards,
seeds and settings give the same SVCs.

Files per shard ``i`` (besides the manifest of
:func:`~daskml_lab.ensemble._checkpoint.open_ensemble_checkpoint`): ``shard-<i>.svs.npz`` (the support
vector rows, their labels as positions among the classes, row ids and weights; read with
``allow_pickle=False``) and ``shard-<i>.json`` (the digest of the shard, the array file's checksum and the
node's statistics), written last: a shard is done when its JSON exists.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import dask

from daskml_lab._runtime.checkpoint_files import (
    CheckpointError,
    atomic_write,
    dump_json,
    load_arrays,
    save_arrays,
)
from daskml_lab.ensemble._cascade_graph import build_shard_svc_graph
from daskml_lab.ensemble._cascade_nodes import node_payload
from daskml_lab.ensemble._checkpoint import ShardFiles
from daskml_lab.ensemble._placement import PlacedShards
from daskml_lab.monitoring import task_prefix

__all__ = ["CascadeCheckpoint"]

logger = logging.getLogger(__name__)

#: Arrays of a saved node (``sw`` only with sample weights).
_ARRAYS = ("X", "y_index", "ids", "sw")


class CascadeCheckpoint(ShardFiles):
    """The shard files of a Cascade SVM's checkpoint directory, and the computation that fills them in."""

    def save_node(self, shard: int, payload: dict[str, Any], digest: str) -> None:
        """Save one shard's support vectors, then its JSON (which marks the shard as done)."""
        arrays = {name: payload[name] for name in _ARRAYS if payload.get(name) is not None}
        entry = None
        if arrays:
            checksum, n_bytes = save_arrays(self._file(shard, ".svs.npz"), arrays)
            entry = {"name": self._file(shard, ".svs.npz").name, "sha256": checksum, "n_bytes": n_bytes}
        info = {
            **self._header(shard, digest),
            "status": payload["status"],
            "stats": payload["stats"],
            "arrays": entry,
        }
        json_path = self._file(shard, ".json")
        atomic_write(json_path, dump_json(info))
        logger.debug("checkpoint: saved the support vectors of shard %d to %s", shard, json_path)

    def load_node(self, shard: int, info: dict[str, Any]) -> dict[str, Any]:
        """The payload of a saved shard (see :func:`~daskml_lab.ensemble._cascade_nodes.node_payload`)."""
        try:
            payload: dict[str, Any] = {"status": str(info["status"]), "stats": dict(info["stats"])}
        except (KeyError, TypeError, ValueError) as err:
            msg = f"The checkpoint file of shard {shard} lacks or garbles {err}. {self._fix()}"
            raise CheckpointError(msg) from err
        entry = info.get("arrays")
        if entry is not None:
            path = self._file(shard, ".svs.npz")
            if not isinstance(entry, dict) or entry.get("name") != path.name:
                msg = f"The checkpoint file of shard {shard} names no valid array file. {self._fix()}"
                raise CheckpointError(msg)
            arrays = load_arrays(path, entry.get("sha256"), what="support-vector file of the checkpoint")
            payload.update({name: arrays.get(name) for name in _ARRAYS})
        return payload

    def first_layer(
        self,
        placed: PlacedShards,
        spec: dict[str, Any],
        *,
        n_features: int,
        has_weight: bool,
        seeds: Sequence[int],
        token: str,
    ) -> list[dict[str, Any]]:
        """Train the shard SVCs without saved support vectors (saving each), and load the saved ones.

        Returns
        -------
        list of dict
            Per shard, the payload of its first-pass node, for ``build_cascade_graph(first_layer=...)``.

        Raises
        ------
        CheckpointError
            If a saved shard's rows changed, or a saved file is damaged.
        """
        saved = self.saved_shards()
        missing = [index for index in range(self.n_shards) if index not in saved]
        nodes, prepared = build_shard_svc_graph(
            placed.X_blocks,
            placed.y_blocks,
            spec,
            n_features=n_features,
            has_weight=has_weight,
            seeds=seeds,
            token=token,
            shards=missing,
        )
        work = {
            index: dask.delayed(node_payload, pure=True)(
                node, prepared, dask_key_name=(f"{task_prefix('cascade payload')}-{token}", index)
            )
            for index, node in zip(missing, nodes, strict=True)
        }
        payloads = self.train_missing(
            placed,
            work,
            saved,
            token=token,
            what="shard SVC(s)",
            source="support vectors come from",
            save=self.save_node,
        )
        for index, info in saved.items():
            payloads[index] = self.load_node(index, info)
        return [payloads[index] for index in range(self.n_shards)]
