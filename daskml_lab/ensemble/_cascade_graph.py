"""The graph of a Cascade SVM (Graf et al., 2004): the delayed tree of node tasks, built on the client.

The whole cascade, every feedback pass included, is one dask graph and runs in one ``dask.compute``:

- ``("daskml-cascade-moments-<token>", i)`` and ``"daskml-cascade-prepare-<token>"``: the settings every SVC
  of the cascade shares, from all the data (the variance of ``X`` for ``gamma="scale"``, the class counts
  for ``class_weight="balanced"``, the classes), so that every SVC solves a sub-problem of one global problem;
- ``("daskml-cascade-fit-<token>", p, i)``: ``_fit_shard_svc_block``, layer 0 of pass ``p`` on the worker
  that holds shard ``i`` (pinned there when the shards were placed on a cluster). In the first pass it
  trains an SVC on the shard and returns only its support vectors: their rows, labels, weights and global
  row ids. In a feedback pass it checks the shard's rows against the previous pass's SVC (Graf et al.'s
  test): a row that is not a support vector and lies inside the margin (``y f(x) < 1 - tol``) violates the
  optimality conditions. A shard without violators has nothing to add (``kind="optimal"``); otherwise it
  returns its violators;
- ``("daskml-cascade-merge-<token>", p, k, j)``: ``_merge_block``, node ``j`` of layer ``k``: the rows of
  ``fan_in`` neighbours merged (deduplicated by row id), up to one node, the root. In the first pass every
  merge retrains on the support vectors of its children. In a feedback pass the violators are collected on
  the way up and trained together with the previous pass's support vectors: at the root, or earlier when
  more violators than the largest shard have arrived (which bounds the size of every SVC). libsvm cannot
  start from the previous solution, so retraining every shard on the support vectors plus its own rows
  (Graf et al.'s warm-started feedback) would solve nearly the same large problem once per node;
- ``("daskml-cascade-pass-<token>", p)``: ``_close_pass_block``, the global SVC and support vectors after
  pass ``p``; the cascade has converged when no shard had a violator or the support vectors (by row id) did
  not change, and the later passes are then skipped (their tasks return at once);
- with ``probability=True``, ``("daskml-cascade-calibrate-<token>", i)``: ``_calibrate_block``, the
  final SVC's decision values on the rows of shard ``i`` held out from training for calibration (a seeded,
  per-class share, see :mod:`daskml_lab.ensemble._cascade_calibration`), pinned like the fits;
- ``("daskml-cascade-stats-<token>", ...)`` and ``"daskml-cascade-final-<token>"``: what reaches the client,
  a few numbers per node and the final SVC (with ``probability=True`` also the sigmoid, fitted in the final
  task on the decision values).

The node kernels are in :mod:`daskml_lab.ensemble._cascade_nodes` and the SVC maths in
:mod:`daskml_lab.ensemble._cascade_svc`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask

from daskml_lab._runtime.client import pinned_to
from daskml_lab.ensemble._cascade_nodes import (
    _calibrate_block,
    _close_pass_block,
    _final_block,
    _fit_shard_svc_block,
    _merge_block,
    _moments_block,
    _node_stats_block,
    _settings_block,
    node_from_payload,
)
from daskml_lab.monitoring import task_prefix

__all__ = ["build_cascade_graph", "build_shard_svc_graph"]


def _settings_graph(
    joined_blocks: Sequence[Any],
    y_blocks: Sequence[Any],
    spec: dict[str, Any],
    *,
    n_features: int,
    has_weight: bool,
    placement: Sequence[str | None],
    key: Any,
) -> tuple[Any, Any]:
    """The delayed SVC parameters and the settings computed from all the data (one moments task per shard)."""
    spec_node = dask.delayed(spec, name=key("cascade spec"), pure=True, traverse=False)
    moments = []
    for index, joined in enumerate(joined_blocks):
        with pinned_to(placement[index]):
            moments.append(
                dask.delayed(_moments_block, pure=True)(
                    joined,
                    y_blocks[index],
                    n_features=n_features,
                    has_weight=has_weight,
                    dask_key_name=(key("cascade moments"), index),
                )
            )
    prepared = dask.delayed(_settings_block, pure=True)(
        moments, spec_node, n_features=n_features, dask_key_name=key("cascade prepare")
    )
    return spec_node, prepared


def _shard_layer(
    joined_blocks: Sequence[Any],
    y_blocks: Sequence[Any],
    previous: Any,
    spec_node: Any,
    prepared: Any,
    *,
    n_features: int,
    has_weight: bool,
    pass_index: int,
    seeds: Sequence[int],
    placement: Sequence[str | None],
    key: Any,
    shards: Sequence[int] | None = None,
) -> list[Any]:
    """Layer 0 of a pass: one :func:`_fit_shard_svc_block` task per shard (of ``shards``), pinned like its block."""
    layer = []
    for index in range(len(joined_blocks)) if shards is None else shards:
        with pinned_to(placement[index]):
            layer.append(
                dask.delayed(_fit_shard_svc_block, pure=True)(
                    joined_blocks[index],
                    y_blocks[index],
                    previous,
                    spec_node,
                    prepared,
                    n_features=n_features,
                    has_weight=has_weight,
                    position=(pass_index, 0, index),
                    is_root=len(joined_blocks) == 1,
                    seed=seeds[index],
                    dask_key_name=(key("cascade fit"), pass_index, index),
                )
            )
    return layer


def build_shard_svc_graph(
    joined_blocks: Sequence[Any],
    y_blocks: Sequence[Any],
    spec: dict[str, Any],
    *,
    n_features: int,
    has_weight: bool,
    seeds: Sequence[int],
    token: str,
    shards: Sequence[int],
) -> tuple[list[Any], Any]:
    """The first pass's shard SVCs of ``shards`` alone, and the shared settings; nothing is computed.

    The tasks are those of :func:`build_cascade_graph` (same functions, settings from all the data), not
    pinned: a checkpointed fit saves each result as it arrives.

    Returns
    -------
    nodes : list of dask.delayed.Delayed
        Per shard of ``shards``, its node: the support vectors of its SVC (see :func:`_fit_node`).
    prepared : dask.delayed.Delayed
        The shared settings (``classes`` among them).
    """

    def key(action: str) -> str:
        return f"{task_prefix(action)}-{token}"

    placement = [None] * len(joined_blocks)
    spec_node, prepared = _settings_graph(
        joined_blocks,
        y_blocks,
        spec,
        n_features=n_features,
        has_weight=has_weight,
        placement=placement,
        key=key,
    )
    nodes = _shard_layer(
        joined_blocks,
        y_blocks,
        None,
        spec_node,
        prepared,
        n_features=n_features,
        has_weight=has_weight,
        pass_index=0,
        seeds=seeds,
        placement=placement,
        key=key,
        shards=shards,
    )
    return nodes, prepared


def build_cascade_graph(
    joined_blocks: Sequence[Any],
    y_blocks: Sequence[Any],
    spec: dict[str, Any],
    *,
    n_features: int,
    has_weight: bool,
    n_passes: int,
    fan_in: int,
    seeds: Sequence[int],
    token: str,
    max_candidates: int,
    workers: Sequence[str | None] | None = None,
    first_layer: Sequence[Any] | None = None,
) -> tuple[list[Any], Any, Any]:
    """The delayed cascade over shard blocks; nothing is computed.

    Parameters
    ----------
    joined_blocks : list of dask.delayed.Delayed
        One block per shard from :func:`join_block` (features, row id, optional weight).
    y_blocks : list of dask.delayed.Delayed
        The labels of each shard.
    spec : dict
        The SVC parameters (:data:`SVC_PARAMETERS`) plus ``gamma`` and ``class_weight`` as the user gave them
        and ``probability``; enters the graph once.
    n_features : int
        Number of feature columns of the joined blocks.
    has_weight : bool
        Whether the joined blocks end with a weight column.
    n_passes : int
        Passes of the cascade: 1 plus the largest number of feedback passes.
    fan_in : int
        Nodes merged into one at each layer.
    seeds : list of int
        One per shard: its calibration rows and the candidates of a single-class shard.
    token : str
        Unique suffix of the task keys.
    max_candidates : int
        Largest number of violators a merge of a feedback pass passes up without training (the largest shard).
    workers : list of str or None, default=None
        Per shard, the worker holding its block, to which its layer-0 tasks of every pass are pinned (from
        :func:`daskml_lab.ensemble._placement.place_shards`); ``None`` leaves the placement to the scheduler.
    first_layer : list of dict, default=None
        The layer-0 nodes of the first pass (the shard SVCs' support vectors), computed before by
        :func:`build_shard_svc_graph` and turned into payloads by :func:`node_payload` (a checkpointed fit);
        default: their tasks are built here.

    Returns
    -------
    stats : list of dask.delayed.Delayed
        A small dict per node (``pass``, ``layer``, ``node``, ``kind``, counts, objective, time, worker).
    prepared : dask.delayed.Delayed
        The shared settings: ``classes``, ``class_counts``, ``gamma``, ``class_weight``.
    final : dask.delayed.Delayed
        ``model``, ``calibrator``, ``support`` (row ids), ``n_passes``, ``converged``, ``sv_changes``.
    """

    def key(action: str) -> str:
        return f"{task_prefix(action)}-{token}"

    placement = list(workers) if workers is not None else [None] * len(joined_blocks)
    spec_node, prepared = _settings_graph(
        joined_blocks,
        y_blocks,
        spec,
        n_features=n_features,
        has_weight=has_weight,
        placement=placement,
        key=key,
    )
    stats: list[Any] = []
    passes: list[Any] = []
    previous = None
    for pass_index in range(n_passes):
        if pass_index == 0 and first_layer is not None:
            layer = [
                dask.delayed(node_from_payload, pure=True)(
                    dask.delayed(payload, pure=True, traverse=False),
                    prepared,
                    dask_key_name=(key("cascade saved fit"), index),
                )
                for index, payload in enumerate(first_layer)
            ]
        else:
            layer = _shard_layer(
                joined_blocks,
                y_blocks,
                previous,
                spec_node,
                prepared,
                n_features=n_features,
                has_weight=has_weight,
                pass_index=pass_index,
                seeds=seeds,
                placement=placement,
                key=key,
            )
        stats.extend(
            dask.delayed(_node_stats_block, pure=True)(
                node, dask_key_name=(key("cascade stats"), pass_index, 0, index)
            )
            for index, node in enumerate(layer)
        )
        depth = 0
        while len(layer) > 1:
            depth += 1
            is_root = len(layer) <= fan_in
            merged = []
            for index, start in enumerate(range(0, len(layer), fan_in)):
                group = layer[start : start + fan_in]
                if len(group) == 1:  # an odd node out moves up unchanged
                    merged.append(group[0])
                    continue
                node = dask.delayed(_merge_block, pure=True)(
                    group,
                    previous,
                    spec_node,
                    prepared,
                    position=(pass_index, depth, index),
                    is_root=is_root,
                    max_candidates=max_candidates,
                    dask_key_name=(key("cascade merge"), pass_index, depth, index),
                )
                stats.append(
                    dask.delayed(_node_stats_block, pure=True)(
                        node, dask_key_name=(key("cascade stats"), pass_index, depth, index)
                    )
                )
                merged.append(node)
            layer = merged
        previous = dask.delayed(_close_pass_block, pure=True)(
            layer[0], previous, pass_index=pass_index, dask_key_name=(key("cascade pass"), pass_index)
        )
        passes.append(previous)
    calibration = []
    if spec["probability"]:
        for index, joined in enumerate(joined_blocks):
            with pinned_to(placement[index]):
                calibration.append(
                    dask.delayed(_calibrate_block, pure=True)(
                        joined,
                        y_blocks[index],
                        previous,
                        spec_node,
                        n_features=n_features,
                        has_weight=has_weight,
                        seed=seeds[index],
                        dask_key_name=(key("cascade calibrate"), index),
                    )
                )
    final = dask.delayed(_final_block, pure=True)(passes, calibration, dask_key_name=key("cascade final"))
    return stats, prepared, final
