"""The graph of a Cascade SVM (Graf et al., 2004): kernels run on the workers and the delayed tree.

The whole cascade, every feedback pass included, is one dask graph and runs in one ``dask.compute``:

- ``("daskml-cascade-moments-<token>", i)`` and ``"daskml-cascade-prepare-<token>"``: the settings every SVC
  of the cascade shares, from all the data (the variance of ``X`` for ``gamma="scale"``, the class counts
  for ``class_weight="balanced"``, the classes), so that every SVC solves a sub-problem of one global problem;
- ``("daskml-cascade-fit-<token>", p, i)``: :func:`_fit_shard_block`, layer 0 of pass ``p`` on the worker
  that holds shard ``i`` (pinned there when the shards were placed on a cluster). In the first pass it
  trains an SVC on the shard and returns only its support vectors: their rows, labels, weights and global
  row ids. In a feedback pass it checks the shard's rows against the previous pass's SVC (Graf et al.'s
  test): a row that is not a support vector and lies inside the margin (``y f(x) < 1 - tol``) violates the
  optimality conditions. A shard without violators has nothing to add (``kind="optimal"``); otherwise it
  returns its violators;
- ``("daskml-cascade-merge-<token>", p, k, j)``: :func:`_merge_block`, node ``j`` of layer ``k``: the rows of
  ``fan_in`` neighbours merged (deduplicated by row id), up to one node, the root. In the first pass every
  merge retrains on the support vectors of its children. In a feedback pass the violators are collected on
  the way up and trained together with the previous pass's support vectors: at the root, or earlier when
  more violators than the largest shard have arrived (which bounds the size of every SVC). libsvm cannot
  start from the previous solution, so retraining every shard on the support vectors plus its own rows
  (Graf et al.'s warm-started feedback) would solve nearly the same large problem once per node;
- ``("daskml-cascade-pass-<token>", p)``: :func:`_close_pass_block`, the global SVC and support vectors after
  pass ``p``; the cascade has converged when no shard had a violator or the support vectors (by row id) did
  not change, and the later passes are then skipped (their tasks return at once);
- with ``probability=True``, ``("daskml-cascade-calibrate-<token>", i)``: :func:`_calibrate_block`, the
  final SVC's decision values on the rows of shard ``i`` held out from training for calibration (a seeded,
  per-class share, see :mod:`daskml_lab.ensemble._cascade_calibration`), pinned like the fits;
- ``("daskml-cascade-stats-<token>", ...)`` and ``"daskml-cascade-final-<token>"``: what reaches the client,
  a few numbers per node and the final SVC (with ``probability=True`` also the sigmoid, fitted in the final
  task on the decision values).

Every node result is a dict ``{"status", "X", "y", "ids", "sw", "model", "stats"}``; the rows are support
vectors (or candidates), never a shard.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import dask
import numpy as np
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.svm import SVC

from daskml_lab._runtime.client import pinned_to, worker_address
from daskml_lab.base import class_weight_vector
from daskml_lab.data.validation import check_classes
from daskml_lab.ensemble._cascade_calibration import (
    CALIBRATION_FRACTION,
    calibration_split,
    fit_calibrator,
    ovr_values,
)
from daskml_lab.monitoring import task_prefix

__all__ = [
    "ONE_CLASS_CANDIDATE_FRACTION",
    "SVC_PARAMETERS",
    "build_cascade_graph",
    "build_shard_svc_graph",
    "dual_objective",
    "join_block",
    "node_from_payload",
    "node_payload",
    "ovo_decision",
]

#: Share of a single-class shard's rows passed up as support-vector candidates in the first pass.
ONE_CLASS_CANDIDATE_FRACTION = 0.1
#: Kernel-matrix entries computed at a time (bounds the memory of decision values and dual objectives).
_KERNEL_CHUNK_ENTRIES = 2_000_000

#: SVC parameters passed through unchanged.
SVC_PARAMETERS = (
    "C",
    "kernel",
    "degree",
    "coef0",
    "shrinking",
    "tol",
    "cache_size",
    "max_iter",
    "decision_function_shape",
    "break_ties",
)

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


# ---------------------------------------------------------------------------------------------------------
# kernels (run on the workers)


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


def _prepare_block(
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


def _make_svc(spec: dict[str, Any], prepared: dict[str, Any]) -> SVC:
    """The cascade's SVC: the user's parameters with the global gamma and class weights."""
    params = {name: spec[name] for name in SVC_PARAMETERS}
    return SVC(gamma=prepared["gamma"], class_weight=prepared["class_weight"], **params)


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
    model = _make_svc(spec, prepared)
    start = time.perf_counter()
    try:
        model.fit(X, y, sample_weight=sw)
    except Exception as err:
        err.add_note(f"daskml_lab: raised while fitting the SVC of cascade node {position} ({n_rows} rows).")
        raise
    stats["fit_time_s"] = time.perf_counter() - start
    support = model.support_
    node.update(X=X[support], y=y[support], ids=ids[support], sw=None if sw is None else sw[support])
    stats["n_sv"] = int(support.size)
    stats["n_bounded_sv"] = _n_bounded(model, node["sw"])
    if is_root:
        node["model"] = model
        stats["dual_objective"] = dual_objective(model, node["X"])
    return node


def ovo_decision(model: SVC, X_sv: np.ndarray, X: np.ndarray) -> np.ndarray:
    """One-vs-one decision values of a fitted SVC, from kernel matrices computed with BLAS.

    Equal (to rounding) to ``decision_function`` with ``decision_function_shape="ovo"``, but computes the
    kernel between row chunks and all support vectors at once, several times faster than libsvm's
    row-by-row loop for more than a few features.

    Parameters
    ----------
    model : sklearn.svm.SVC
        Fitted, with a numeric ``gamma``.
    X_sv : ndarray of shape (n_SV, n_features)
        Its support vectors, in the order of ``model.support_``.
    X : ndarray of shape (n_rows, n_features)
        Rows to score.

    Returns
    -------
    ndarray of shape (n_rows,) for two classes, else (n_rows, n_classes * (n_classes - 1) // 2)
        A positive value votes for the first class of the pair (for two classes: for ``classes_[1]``).
    """
    starts = np.concatenate([[0], np.cumsum(model.n_support_)])
    n_classes = len(model.classes_)
    step = max(1, _KERNEL_CHUNK_ENTRIES // max(1, X_sv.shape[0]))
    parts = []
    for k in range(0, X.shape[0], step):
        K = _kernel(model, X[k : k + step], X_sv)
        if n_classes == 2:
            parts.append(K @ model.dual_coef_[0] + model.intercept_[0])
            continue
        columns = []
        pair = 0
        for i in range(n_classes):
            for j in range(i + 1, n_classes):
                first, second = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
                columns.append(
                    K[:, first] @ model.dual_coef_[j - 1, first]
                    + K[:, second] @ model.dual_coef_[i, second]
                    + model.intercept_[pair]
                )
                pair += 1
        parts.append(np.column_stack(columns))
    return np.concatenate(parts) if parts else np.empty((0,) if n_classes == 2 else (0, n_classes))


def _margins(model: SVC, X_sv: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smallest ``y f(x)`` of every row over the one-vs-one problems its class takes part in."""
    values = ovo_decision(model, X_sv, X)
    classes = model.classes_
    if len(classes) == 2:
        return np.where(y == classes[1], values, -values)
    position = np.searchsorted(classes, y)
    margins = np.full(len(y), np.inf)
    column = 0
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            # a positive value votes for class i
            margins = np.where(position == i, np.minimum(margins, values[:, column]), margins)
            margins = np.where(position == j, np.minimum(margins, -values[:, column]), margins)
            column += 1
    return margins


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


def _fit_shard_block(
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
        rows = rows[_margins(previous["model"], previous["X"], X[rows], y[rows]) < 1 - spec["tol"]]
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


def _n_bounded(model: SVC, sw: np.ndarray | None) -> int:
    """Support vectors whose dual coefficient sits at its upper bound ``C * class_weight * sample_weight``."""
    class_index = np.repeat(np.arange(len(model.classes_)), model.n_support_)
    bound = model.C * model.class_weight_[class_index] * (1.0 if sw is None else sw)
    return int(np.sum(np.abs(model.dual_coef_).max(axis=0) >= bound * (1 - 1e-8)))


def _kernel(model: SVC, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    if callable(model.kernel):
        return np.asarray(model.kernel(A, B))
    return pairwise_kernels(
        A,
        B,
        metric=model.kernel,
        filter_params=True,
        gamma=model.gamma,
        degree=model.degree,
        coef0=model.coef0,
    )


def dual_objective(model: SVC, X_sv: np.ndarray | None = None) -> float:
    """The dual objective ``sum(alpha) - alpha' Q alpha / 2`` of a fitted SVC, summed over its class pairs.

    For classes ``i < j`` the coefficients ``y_k alpha_k`` of the pair's support vectors are
    ``dual_coef_[j - 1]`` over the support vectors of class ``i`` and ``dual_coef_[i]`` over those of class
    ``j`` (scikit-learn's one-vs-one layout). The kernel matrix is computed in row chunks.

    Parameters
    ----------
    model : sklearn.svm.SVC
        Fitted, with a numeric ``gamma``.
    X_sv : ndarray of shape (n_SV, n_features), default=None
        The support vectors, in the order of ``model.support_``; default ``model.support_vectors_`` (which is
        empty for a callable kernel).

    Returns
    -------
    float
    """
    X_sv = model.support_vectors_ if X_sv is None else X_sv
    starts = np.concatenate([[0], np.cumsum(model.n_support_)])
    total = 0.0
    for i in range(len(model.classes_)):
        for j in range(i + 1, len(model.classes_)):
            coef = np.concatenate(
                [
                    model.dual_coef_[j - 1, starts[i] : starts[i + 1]],
                    model.dual_coef_[i, starts[j] : starts[j + 1]],
                ]
            )
            rows = np.concatenate([np.arange(starts[i], starts[i + 1]), np.arange(starts[j], starts[j + 1])])
            X_pair = X_sv[rows]
            step = max(1, _KERNEL_CHUNK_ENTRIES // max(1, len(rows)))
            quadratic = sum(
                float(coef[k : k + step] @ (_kernel(model, X_pair[k : k + step], X_pair) @ coef))
                for k in range(0, len(rows), step)
            )
            total += float(np.abs(coef).sum()) - 0.5 * quadratic
    return total


# ---------------------------------------------------------------------------------------------------------
# graph


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
    prepared = dask.delayed(_prepare_block, pure=True)(
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
    """Layer 0 of a pass: one :func:`_fit_shard_block` task per shard (of ``shards``), pinned like its block."""
    layer = []
    for index in range(len(joined_blocks)) if shards is None else shards:
        with pinned_to(placement[index]):
            layer.append(
                dask.delayed(_fit_shard_block, pure=True)(
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
