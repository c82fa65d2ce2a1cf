"""The node kernels of the Cascade SVM: what runs on the workers, one task per node of the cascade.

Every node result is a dict ``{"status", "X", "y", "ids", "sw", "model", "stats"}``; the rows are support
vectors (or candidates, or violators), never a shard. The graph that wires these kernels together is built
in :mod:`daskml_lab.ensemble._cascade_graph`, and the SVC maths they use is in
:mod:`daskml_lab.ensemble._cascade_svc`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from daskml_lab._runtime.client import worker_address
from daskml_lab.base import class_weight_vector
from daskml_lab.data.validation import check_classes
from daskml_lab.ensemble._cascade_calibration import (
    CALIBRATION_FRACTION,
    calibration_split,
    fit_calibrator,
    ovr_values,
)
from daskml_lab.ensemble._cascade_memory import node_cache_size
from daskml_lab.ensemble._cascade_svc import dual_objective, make_svc, margins, n_bounded

__all__ = [
    "KIND_SKIPPED",
    "ONE_CLASS_CANDIDATE_FRACTION",
    "join_block",
    "node_from_payload",
    "node_payload",
]

#: Share of a single-class shard's rows passed up as support-vector candidates in the first pass.
ONE_CLASS_CANDIDATE_FRACTION = 0.1

#: What a node did (``cascade_report_["kind"]``): trained an SVC; passed up the rows of a single class;
#: had no rows; found no violators (feedback); moved the rows of its only live child up unchanged; passed up
#: its shard's violators (feedback, layer 0); collected its children's violators without training (feedback);
#: was not run because an earlier pass converged.
KIND_SVC = "svc"
KIND_PASS_THROUGH = "pass-through"
KIND_VIOLATORS = "violators"
KIND_COLLECT = "collect"
KIND_ONE_CLASS = "one-class"
KIND_EMPTY = "empty"
KIND_OPTIMAL = "optimal"
KIND_SKIPPED = "skipped"

#: Node statuses: rows to pass up; nothing new (the previous support vectors stand); not run.
_LIVE = "live"
_UNCHANGED = "unchanged"
_SKIPPED = "skipped"


def join_block(X: np.ndarray, *weights: np.ndarray, block_info: Any = None) -> np.ndarray:
    """Rows of one block as float64 with their global row ids (and weights) appended as columns.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        One row block.
    *weights : ndarray of shape (n_rows, 1)
        The block's sample weights, if any.
    block_info : dict
        Given by :func:`dask.array.map_blocks`; the block's first row is its ``array-location``.

    Returns
    -------
    ndarray of shape (n_rows, n_features + 1 + len(weights))
    """
    start = int(block_info[0]["array-location"][0][0])
    n_rows = X.shape[0]
    columns = [np.asarray(X, dtype=np.float64), np.arange(start, start + n_rows, dtype=np.float64)[:, None]]
    columns.extend(np.asarray(w, dtype=np.float64).reshape(n_rows, 1) for w in weights)
    return np.concatenate(columns, axis=1)


def _split_block(joined: np.ndarray, n_features: int, has_weight: bool) -> tuple[Any, ...]:
    """Features (C-contiguous float64, as SVC wants them), row ids and weights of a joined block."""
    X = np.ascontiguousarray(joined[:, :n_features])
    ids = joined[:, n_features].astype(np.int64)
    weights = joined[:, n_features + 1].copy() if has_weight else None
    return X, ids, weights


def _moments_block(joined: np.ndarray, y: np.ndarray, *, n_features: int, has_weight: bool) -> dict[str, Any]:
    """Element count, mean and variance of the features of one shard, its label counts and weight total."""
    X = np.ascontiguousarray(joined[:, :n_features])
    labels, counts = np.unique(y, return_counts=True)
    weight = float(joined[:, n_features + 1].sum()) if has_weight else float(len(y))
    if X.size == 0:
        return {"size": 0, "mean": 0.0, "var": 0.0, "labels": labels, "counts": counts, "weight": weight}
    return {
        "size": int(X.size),
        "mean": float(X.mean()),
        "var": float(X.var()),
        "labels": labels,
        "counts": counts,
        "weight": weight,
    }


def _combined_variance(moments: Sequence[dict[str, Any]]) -> float:
    """Variance of all feature values from per-shard moments (Chan et al.'s pairwise update)."""
    parts = [m for m in moments if m["size"] > 0]
    if len(parts) == 1:
        return float(parts[0]["var"])  # exactly the single-shard value, as SVC computes it
    sizes = np.array([m["size"] for m in parts], dtype=np.float64)
    means = np.array([m["mean"] for m in parts])
    total = sizes.sum()
    mean = float(np.dot(sizes, means) / total)
    m2 = float(np.dot(sizes, np.array([m["var"] for m in parts])) + np.dot(sizes, (means - mean) ** 2))
    return m2 / total


def _settings_block(
    moments: Sequence[dict[str, Any]], spec: dict[str, Any], *, n_features: int
) -> dict[str, Any]:
    """The settings every SVC of the cascade shares: classes, numeric gamma, class weights of all the data."""
    classes = check_classes(np.unique(np.concatenate([m["labels"] for m in moments])))
    if sum(m["weight"] for m in moments) <= 0:
        msg = (
            "All sample weights are zero: an SVC needs rows of positive weight. Check the sample_weight "
            "passed to fit."
        )
        raise ValueError(msg)
    counts = np.zeros(len(classes), dtype=np.int64)
    for m in moments:
        np.add.at(counts, np.searchsorted(classes, m["labels"]), m["counts"])
    gamma = spec["gamma"]
    if gamma == "scale":
        variance = _combined_variance(moments)
        gamma = 1.0 / (n_features * variance) if variance != 0 else 1.0
    elif gamma == "auto":
        gamma = 1.0 / n_features
    class_weight = None
    if spec["class_weight"] is not None:
        weights = class_weight_vector(spec["class_weight"], classes, counts)
        class_weight = dict(zip(classes.tolist(), weights.tolist(), strict=True))
    return {"classes": classes, "class_counts": counts, "gamma": float(gamma), "class_weight": class_weight}


def _node(position: tuple[int, int, int], kind: str, status: str, n_train: int = 0) -> dict[str, Any]:
    """A node result without rows."""
    pass_index, layer, index = position
    return {
        "status": status,
        "X": None,
        "y": None,
        "ids": None,
        "sw": None,
        "model": None,
        "stats": {
            "pass": pass_index,
            "layer": layer,
            "node": index,
            "kind": kind,
            "n_train": n_train,
            "n_violators": math.nan,
            "n_classes": 0,
            "n_sv": 0,
            "n_bounded_sv": 0,
            "dual_objective": math.nan,
            "fit_time_s": 0.0,
            "worker": worker_address(),
        },
    }


def _fit_node(
    X: np.ndarray,
    y: np.ndarray,
    ids: np.ndarray,
    sw: np.ndarray | None,
    spec: dict[str, Any],
    prepared: dict[str, Any],
    *,
    position: tuple[int, int, int],
    is_root: bool,
    candidate_seed: int | None,
) -> dict[str, Any]:
    """Train one SVC of the cascade and return its support vectors (and, at the root, the model).

    Rows of fewer than two classes (counting rows of positive weight) cannot train an SVC: a seeded random
    share :data:`ONE_CLASS_CANDIDATE_FRACTION` of them (at least one) is passed up as candidates when
    ``candidate_seed`` is given (layer 0 of the first pass), all of them otherwise.
    """
    n_rows = int(X.shape[0])
    if n_rows == 0:
        return _node(position, KIND_EMPTY, _LIVE)
    node = _node(position, KIND_SVC, _LIVE, n_rows)
    stats = node["stats"]
    present = np.unique(y if sw is None else y[sw > 0])
    stats["n_classes"] = int(present.size)
    if present.size < 2:
        stats["kind"] = KIND_ONE_CLASS
        keep = np.arange(n_rows) if sw is None else np.flatnonzero(sw > 0)
        if candidate_seed is not None and keep.size:
            n_keep = max(1, math.ceil(ONE_CLASS_CANDIDATE_FRACTION * keep.size))
            keep = np.sort(np.random.default_rng([candidate_seed, 1]).choice(keep, n_keep, replace=False))
        node.update(X=X[keep], y=y[keep], ids=ids[keep], sw=None if sw is None else sw[keep])
        stats["n_sv"] = int(keep.size)
        return node
    model = make_svc(spec, prepared)
    # the kernel cache this node's SVC may fill within the fit's memory plan (a clear error if its rows alone
    # exceed it); the fitted model keeps the user's cache_size
    model.set_params(
        cache_size=node_cache_size(
            n_rows,
            int(X.shape[1]),
            float(spec.get("cache_plan", spec["cache_size"])),
            float(spec.get("memory_budget", math.inf)),
            position=position,
        )
    )
    start = time.perf_counter()
    try:
        model.fit(X, y, sample_weight=sw)
    except Exception as err:
        err.add_note(f"daskml_lab: raised while fitting the SVC of cascade node {position} ({n_rows} rows).")
        raise
    model.set_params(cache_size=spec["cache_size"])
    stats["fit_time_s"] = time.perf_counter() - start
    support = model.support_
    node.update(X=X[support], y=y[support], ids=ids[support], sw=None if sw is None else sw[support])
    stats["n_sv"] = int(support.size)
    stats["n_bounded_sv"] = n_bounded(model, node["sw"])
    if is_root:
        node["model"] = model
        stats["dual_objective"] = dual_objective(model, node["X"])
    return node


def _shard_rows(
    joined: np.ndarray, y: np.ndarray, spec: dict[str, Any], *, n_features: int, has_weight: bool, seed: int
) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    """The training rows of a shard and, with ``probability``, its calibration rows: (X, y, ids, sw) each."""
    X, ids, sw = _split_block(joined, n_features, has_weight)
    if not spec["probability"]:
        return (X, y, ids, sw), None
    train, held = calibration_split(y, CALIBRATION_FRACTION, seed)

    def take(rows: np.ndarray) -> tuple[Any, ...]:
        return X[rows], y[rows], ids[rows], None if sw is None else sw[rows]

    return take(train), take(held)


def _calibrate_block(
    joined: np.ndarray,
    y: np.ndarray,
    last: dict[str, Any],
    spec: dict[str, Any],
    *,
    n_features: int,
    has_weight: bool,
    seed: int,
) -> dict[str, Any]:
    """The final SVC's decision values on the calibration rows of one shard (small arrays)."""
    _, held = _shard_rows(joined, y, spec, n_features=n_features, has_weight=has_weight, seed=seed)
    assert held is not None  # only built with probability=True
    X, y_held, _, sw = held
    if last["model"] is None or len(y_held) == 0:
        return {"values": None, "y": y_held, "sw": sw}
    return {"values": ovr_values(last["model"], X), "y": y_held, "sw": sw}


def _fit_shard_svc_block(
    joined: np.ndarray,
    y: np.ndarray,
    previous: dict[str, Any] | None,
    spec: dict[str, Any],
    prepared: dict[str, Any],
    *,
    n_features: int,
    has_weight: bool,
    position: tuple[int, int, int],
    is_root: bool,
    seed: int,
) -> dict[str, Any]:
    """Layer 0: an SVC on one shard or, in a feedback pass, the shard's rows that violate the global SVC."""
    if previous is not None and previous["converged"]:
        return _node(position, KIND_SKIPPED, _SKIPPED)
    (X, y, ids, sw), _ = _shard_rows(joined, y, spec, n_features=n_features, has_weight=has_weight, seed=seed)
    if previous is None or previous["model"] is None:
        return _fit_node(
            X, y, ids, sw, spec, prepared, position=position, is_root=is_root, candidate_seed=seed
        )
    candidates = ~np.isin(ids, previous["ids"])
    if sw is not None:
        candidates &= sw > 0
    rows = np.flatnonzero(candidates)
    if rows.size:
        rows = rows[margins(previous["model"], previous["X"], X[rows], y[rows]) < 1 - spec["tol"]]
    if rows.size == 0:
        node = _node(position, KIND_OPTIMAL, _UNCHANGED)
        node["stats"]["n_violators"] = 0
        return node
    node = _node(position, KIND_VIOLATORS, _LIVE)
    node.update(X=X[rows], y=y[rows], ids=ids[rows], sw=None if sw is None else sw[rows])
    node["stats"].update(n_violators=int(rows.size), n_sv=int(rows.size))
    return node


def _union(parts: Sequence[dict[str, Any]]) -> tuple[Any, ...]:
    """Rows of several node results (or pass results), deduplicated by row id, first occurrence kept."""
    ids = np.concatenate([p["ids"] for p in parts])
    _, first = np.unique(ids, return_index=True)
    keep = np.sort(first)
    X = np.concatenate([p["X"] for p in parts])[keep]
    y = np.concatenate([p["y"] for p in parts])[keep]
    sw = None if parts[0]["sw"] is None else np.concatenate([p["sw"] for p in parts])[keep]
    return X, y, ids[keep], sw


def _merge_block(
    children: Sequence[dict[str, Any]],
    previous: dict[str, Any] | None,
    spec: dict[str, Any],
    prepared: dict[str, Any],
    *,
    position: tuple[int, int, int],
    is_root: bool,
    max_candidates: int,
) -> dict[str, Any]:
    """Layer k > 0: the rows of neighbouring nodes, deduplicated by row id, retrained.

    In the first pass the rows are support vectors, merged and retrained. In a feedback pass they are
    violators of the previous pass's SVC (or support vectors of a lower merge): they are collected and passed
    up untrained while at most ``max_candidates`` (the largest shard) have arrived, and trained together with
    the previous pass's support vectors otherwise, and always at the root.
    """
    if all(c["status"] == _SKIPPED for c in children):
        return _node(position, KIND_SKIPPED, _SKIPPED)
    live = [c for c in children if c["status"] == _LIVE and c["ids"] is not None and len(c["ids"])]
    if not live:
        unchanged = any(c["status"] == _UNCHANGED for c in children)
        return _node(position, KIND_OPTIMAL if unchanged else KIND_EMPTY, _UNCHANGED if unchanged else _LIVE)
    feedback = previous is not None and previous["model"] is not None
    if not feedback and len(live) == 1 and not is_root:
        # One child brought rows: they are already the support vectors of their union, so they move up.
        node = {**live[0], "stats": _node(position, KIND_PASS_THROUGH, _LIVE)["stats"]}
        node["stats"]["n_sv"] = len(live[0]["ids"])
        return node
    X, y, ids, sw = _union(live)
    if feedback:
        new = ~np.isin(ids, previous["ids"])
        if not is_root and int(new.sum()) <= max_candidates:
            node = _node(position, KIND_COLLECT, _LIVE)
            node.update(X=X[new], y=y[new], ids=ids[new], sw=None if sw is None else sw[new])
            node["stats"]["n_sv"] = int(new.sum())
            return node
        X, y, ids, sw = _union([previous, {"X": X, "y": y, "ids": ids, "sw": sw}])
    return _fit_node(X, y, ids, sw, spec, prepared, position=position, is_root=is_root, candidate_seed=None)


def _close_pass_block(
    root: dict[str, Any], previous: dict[str, Any] | None, *, pass_index: int
) -> dict[str, Any]:
    """The global SVC and support vectors after a pass, and whether the cascade has converged."""
    if root["status"] == _SKIPPED:
        assert previous is not None  # the first pass always runs
        return {**previous, "ran": False}
    if root["status"] == _UNCHANGED:
        assert previous is not None  # only feedback passes find no violators
        return {**previous, "pass": pass_index, "ran": True, "converged": True, "sv_changes": 0}
    changes = None
    converged = False
    if previous is not None and previous["ids"] is not None and root["ids"] is not None:
        changes = int(np.setxor1d(previous["ids"], root["ids"]).size)
        converged = changes == 0
    return {
        "pass": pass_index,
        "model_pass": pass_index,
        "ran": True,
        "converged": converged,
        "sv_changes": changes,
        "model": root["model"],
        "X": root["X"],
        "y": root["y"],
        "ids": root["ids"],
        "sw": root["sw"],
    }


def node_payload(node: dict[str, Any], prepared: dict[str, Any]) -> dict[str, Any]:
    """A layer-0 node as arrays of plain dtypes (labels as positions among the classes), to save it.

    Parameters
    ----------
    node : dict
        A node result of the first pass's layer 0 (no model unless it is the root).
    prepared : dict
        The shared settings (``classes``).

    Returns
    -------
    dict
        ``status``, ``stats`` and, when the node has rows, ``X``, ``y_index`` (int64), ``ids`` and ``sw``.
    """
    payload: dict[str, Any] = {"status": node["status"], "stats": dict(node["stats"])}
    if node["ids"] is not None:
        payload.update(
            X=node["X"],
            y_index=np.searchsorted(prepared["classes"], node["y"]).astype(np.int64),
            ids=node["ids"],
            sw=node["sw"],
        )
    return payload


def node_from_payload(payload: dict[str, Any], prepared: dict[str, Any]) -> dict[str, Any]:
    """The node a :func:`node_payload` describes (labels taken back from the classes)."""
    node = _node((0, 0, int(payload["stats"]["node"])), payload["stats"]["kind"], payload["status"])
    node["stats"] = dict(payload["stats"])
    if payload.get("ids") is not None:
        node.update(
            X=payload["X"],
            y=prepared["classes"][payload["y_index"]],
            ids=payload["ids"],
            sw=payload.get("sw"),
        )
    return node


def _node_stats_block(node: dict[str, Any]) -> dict[str, Any]:
    """The part of a node's result that goes to the client: counts and timings, no rows."""
    return dict(node["stats"])


def _final_block(passes: Sequence[dict[str, Any]], calibration: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The global SVC after the last pass and, with calibration rows, its sigmoid calibration."""
    last = passes[-1]
    model = last["model"]
    calibrator = fit_calibrator(model, calibration) if calibration and model is not None else None
    return {
        "model": model,
        "calibrator": calibrator,
        "support": last["ids"],
        "n_passes": sum(1 for p in passes if p["ran"]),
        "converged": bool(last["converged"]),
        "sv_changes": [p["sv_changes"] if p["ran"] else None for p in passes],
        "root_classes": None if last["y"] is None else np.unique(last["y"]),
    }
