"""Shard-wise training: one clone of the base estimator per row block, fitted where the block lives.

The graph built by :func:`build_shard_fit_graph` has, for every shard ``i``:

- ``("daskml-shard-fit-<token>", i)``: :func:`_fit_shard_model_block` splits the block into training and held-out
  rows (seeded), fits a clone of the base estimator on the training rows and keeps the held-out rows, on the
  worker that holds the block;
- ``("daskml-shard-summary-<token>", i)``: :func:`_summarize_shard_block`, the fitted model and a few counts
  (what reaches the client);

and, when rows are held out, a second pass that needs every model:

- ``"daskml-shard-members-<token>"``: :func:`_collect_members_block`, the list of fitted models and the global
  classes (one key, fetched once by every worker that needs it);
- ``("daskml-held-out-<token>", i)``: :func:`_held_out_from_fit_block`, every member's score statistics and
  the fusion's meta-features on the held-out rows of shard ``i``: small arrays.

One ``dask.compute`` runs both passes: the data blocks are read once and no row crosses the network, except
as meta-features. :func:`build_held_out_graph` evaluates models trained elsewhere (``from_estimators``) or
restored from a checkpoint the same way. The Cascade SVM has its own graph (:mod:`~daskml_lab.ensemble._cascade_graph`).

Where the shards are fitted (persisted and pinned, or read from their source) is decided in
:mod:`daskml_lab.ensemble._placement`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from typing import Any

import dask
import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.utils.multiclass import check_classification_targets

from daskml_lab._runtime.client import pinned_to, worker_address
from daskml_lab._runtime.seeding import ShardSeeds, seeded_clone
from daskml_lab.ensemble._placement import PlacedShards, compute_pinned
from daskml_lab.fusion import Fusion, member_score_stats
from daskml_lab.monitoring import publish_shard_event, task_prefix

__all__ = [
    "build_held_out_graph",
    "build_shard_fit_graph",
    "compute_shard_fits",
    "split_rows",
]

logger = logging.getLogger(__name__)

#: What a shard model is, in the shard report.
KIND_FITTED = "fitted"
KIND_CONSTANT = "constant"
KIND_EMPTY = "empty"


def split_rows(n_rows: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out row positions of one shard: ``floor(fraction * n_rows)`` rows held out at random.

    Parameters
    ----------
    n_rows : int
        Rows of the shard.
    fraction : float
        In ``[0, 1)``; at least one row is always left for training.
    seed : int
        The shard's split seed.

    Returns
    -------
    train, held_out : ndarray of int64
        Sorted positions.

    Examples
    --------
    >>> train, held_out = split_rows(10, 0.2, seed=1)
    >>> len(train), len(held_out), sorted(train.tolist() + held_out.tolist()) == list(range(10))
    (8, 2, True)
    """
    n_held_out = int(np.floor(fraction * n_rows))
    if n_held_out == 0:
        return np.arange(n_rows, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(order[n_held_out:]).astype(np.int64), np.sort(order[:n_held_out]).astype(np.int64)


# ---------------------------------------------------------------------------------------------------------
# kernels (run on the workers)


def _fit_shard_model_block(
    X: Any,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    estimator: Any,
    *,
    shard: int,
    seeds: tuple[int, int],
    validation_fraction: float,
    classification: bool,
    run_id: str | None = None,
    refit: bool = False,
) -> dict[str, Any]:
    """Fit a seeded clone of ``estimator`` on the training rows of one shard; keep the held-out rows.

    A classification shard whose training rows hold a single class gets a constant predictor
    (``DummyClassifier(strategy="constant")``); an empty shard gets no model. With a ``run_id``, the shard's
    start and end are reported to the training monitor from the worker. With ``refit`` and held-out rows,
    a second clone is fitted on the whole shard: it becomes ``model`` (the member), and the model of the
    training rows, which never saw the held-out rows, is kept as ``held_out_model`` to evaluate them.
    """
    n_rows = int(X.shape[0])
    publish_shard_event(run_id, shard, "started", n_rows=n_rows)
    started = time.perf_counter()
    model_seed, split_seed = seeds
    result: dict[str, Any] = {
        "shard": shard,
        "n_rows": n_rows,
        "model": None,
        "kind": KIND_EMPTY,
        "labels": None,
        "counts": None,
        "worker": worker_address(),
    }
    if n_rows == 0:
        result.update(n_train=0, n_held_out=0, X_held_out=X[:0], y_held_out=y[:0], sw_held_out=None)
        if classification:
            result.update(labels=y[:0], counts=np.zeros(0, dtype=np.int64))
        publish_shard_event(run_id, shard, "finished", n_rows=0, n_train=0, n_held_out=0, model="empty")
        return result
    if classification:
        check_classification_targets(y)
    train, held_out = split_rows(n_rows, validation_fraction, split_seed)
    if held_out.size:
        X_train, y_train = X[train], y[train]
        sw_train = None if sample_weight is None else sample_weight[train]
    else:
        X_train, y_train, sw_train = X, y, sample_weight
    member = functools.partial(
        _fit_member, estimator, seed=model_seed, classification=classification, shard=shard, run_id=run_id
    )
    model, kind = member(X_train, y_train, sw_train)
    held_out_model = None
    n_member_rows = int(train.size)
    if refit and held_out.size:
        held_out_model = model
        model, kind = member(X, y, sample_weight)
        n_member_rows = n_rows
    publish_shard_event(
        run_id,
        shard,
        "finished",
        n_rows=n_rows,
        n_train=n_member_rows,
        n_held_out=int(held_out.size),
        fit_time_s=time.perf_counter() - started,
        model=kind if kind != KIND_FITTED else type(model).__name__,
    )
    result.update(
        model=model,
        held_out_model=held_out_model,
        kind=kind,
        n_train=n_member_rows,
        n_held_out=int(held_out.size),
        X_held_out=X[held_out],
        y_held_out=y[held_out],
        sw_held_out=None if sample_weight is None else sample_weight[held_out],
    )
    if classification:
        labels, counts = np.unique(y, return_counts=True)
        result.update(labels=labels, counts=counts.astype(np.int64))
    return result


def _fit_member(
    estimator: Any,
    X: Any,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    seed: int,
    classification: bool,
    shard: int,
    run_id: str | None,
) -> tuple[Any, str]:
    """One fitted member and its kind: a seeded clone, or a constant predictor for a single class."""
    fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
    labels = np.unique(y) if classification else None
    if labels is not None and labels.size == 1:
        model, kind = DummyClassifier(strategy="constant", constant=labels[:1]), KIND_CONSTANT
    else:
        model, kind = seeded_clone(estimator, seed), KIND_FITTED
    try:
        model.fit(X, y, **fit_params)
    except Exception as err:
        publish_shard_event(run_id, shard, "failed", error=f"{type(err).__name__}: {err}"[:200])
        err.add_note(
            f"daskml_lab: raised while fitting {type(model).__name__} on shard {shard} ({len(y)} rows)."
        )
        raise
    return model, kind


def _summarize_shard_block(fitted: dict[str, Any]) -> dict[str, Any]:
    """The part of a shard's result that goes to the client: model and counts, no rows."""
    return {
        key: value for key, value in fitted.items() if not key.endswith("_held_out") or key == "n_held_out"
    }


def _collect_members_block(summaries: Sequence[dict[str, Any]], classification: bool) -> dict[str, Any]:
    """The fitted members (non-empty shards, in shard order), what evaluates the held-out rows, and the classes.

    ``estimators`` are the models of the training rows (with refitted members, their ``held_out_model``);
    ``refitted`` the members as the fused model uses them (``None`` without refitting), and ``shards`` the
    shard of each member. See :func:`_members_for_shard`.
    """
    present = [(index, s) for index, s in enumerate(summaries) if s["model"] is not None]
    refit = any(s.get("held_out_model") is not None for _, s in present)
    classes = None
    if classification:
        classes = np.unique(np.concatenate([s["labels"] for s in summaries]))
    return {
        "estimators": [
            s["model"] if s.get("held_out_model") is None else s["held_out_model"] for _, s in present
        ],
        "refitted": [s["model"] for _, s in present] if refit else None,
        "shards": [index for index, _ in present],
        "classes": classes,
    }


def _members_for_shard(members: dict[str, Any], shard_index: int | None) -> list[Any]:
    """The models that evaluate the held-out rows of shard ``shard_index``.

    A refitted member trained on its whole shard, held-out rows included, so it evaluates its own shard's
    held-out rows through the model of its training rows; the held-out rows of the other shards it never saw,
    so it evaluates them as the fused model will use it: refitted. The meta-features then differ from what
    the fused model sees at prediction time only in one member out of ``n_shards``.
    """
    refitted = members.get("refitted")
    if refitted is None or shard_index is None:
        return list(members["estimators"])
    return [
        own if shard == shard_index else full
        for own, full, shard in zip(members["estimators"], refitted, members["shards"], strict=True)
    ]


def _held_out_block(
    X: Any,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    members: dict[str, Any],
    fusion: Fusion,
    shard_index: int | None = None,
) -> dict[str, Any]:
    """Every member's score statistics and the fusion's meta-features on held-out rows ``X`` of a shard."""
    n_rows = int(X.shape[0])
    if n_rows == 0:
        return {"n_rows": 0, "stats": None, "features": None, "target": None, "sample_weight": None}
    estimators, classes = _members_for_shard(members, shard_index), members["classes"]
    features = fusion.held_out_features(estimators, X, classes=classes)
    return {
        "n_rows": n_rows,
        "stats": member_score_stats(
            estimators, X, y, sample_weight, classes=classes, scorer=fusion.member_scorer()
        ),
        "features": features,
        "target": None if features is None else y,
        "sample_weight": None if features is None else sample_weight,
    }


def _held_out_from_fit_block(
    fitted: dict[str, Any], members: dict[str, Any], fusion: Fusion, shard_index: int
) -> dict[str, Any]:
    return _held_out_block(
        fitted["X_held_out"], fitted["y_held_out"], fitted["sw_held_out"], members, fusion, shard_index
    )


# ---------------------------------------------------------------------------------------------------------
# graphs


def build_shard_fit_graph(
    X_blocks: Sequence[Any],
    y_blocks: Sequence[Any],
    sw_blocks: Sequence[Any] | None,
    estimator: Any,
    *,
    seeds: ShardSeeds,
    validation_fraction: float,
    classification: bool,
    fusion: Fusion | None,
    token: str,
    workers: Sequence[str | None] | None = None,
    run_id: str | None = None,
    shard_tokens: Sequence[str] | None = None,
) -> tuple[list[Any], list[Any] | None]:
    """Delayed shard fits (and held-out evaluations) over matching row blocks; nothing is computed.

    Parameters
    ----------
    X_blocks, y_blocks : list of dask.delayed.Delayed
        One delayed block per shard (``X.to_delayed().ravel()``, ``y.to_delayed().ravel()``).
    sw_blocks : list of dask.delayed.Delayed or None
        Sample-weight blocks.
    estimator : estimator instance
        The base estimator; it enters the graph once.
    seeds : ShardSeeds
        From :func:`~daskml_lab._runtime.seeding.shard_seeds`.
    validation_fraction : float
        Share of each shard held out; ``0`` builds no held-out pass.
    classification : bool
        Whether labels are classes.
    fusion : Fusion or None
        Unfitted fusion whose :meth:`~daskml_lab.fusion.Fusion.held_out_features` runs on the held-out rows;
        when its :meth:`~daskml_lab.fusion.Fusion.refits_members` is true, each member is refitted on its
        whole shard after its held-out model is kept.
    token : str
        Unique suffix of the task keys.
    workers : list of str or None, default=None
        Per shard, the worker its fit, summary and held-out tasks are pinned to (from :func:`place_shards`;
        ``None`` leaves the placement to the scheduler).
    run_id : str, default=None
        Training-monitor run the shard fits report to (from the workers); ``None`` reports nothing.
    shard_tokens : list of str, default=None
        Per shard, the suffix of the keys of its fit and summary (default ``token``): a shard moved off a
        straggler gets new keys, the others keep theirs (see :func:`compute_pinned`).

    Returns
    -------
    summaries : list of dask.delayed.Delayed
        Per shard: ``model``, ``kind``, ``n_rows``, ``n_train``, ``n_held_out``, ``labels``, ``counts`` and
        ``worker`` (the address of the worker that fitted it, ``None`` under a local scheduler).
    held_out : list of dask.delayed.Delayed or None
        Per shard: ``stats``, ``features``, ``target``, ``sample_weight`` of its held-out rows.
    """
    tokens = list(shard_tokens) if shard_tokens is not None else [token] * len(X_blocks)
    # one base-estimator key per shard token: a shard that keeps its keys keeps its dependencies too
    bases = {
        t: dask.delayed(estimator, name=f"{task_prefix('base estimator')}-{t}", pure=True, traverse=False)
        for t in dict.fromkeys(tokens)
    }
    placement = list(workers) if workers is not None else [None] * len(X_blocks)
    refit = fusion is not None and validation_fraction > 0 and fusion.refits_members()
    fits = []
    summaries = []
    for index, X_block in enumerate(X_blocks):
        with pinned_to(placement[index]):
            fit = dask.delayed(_fit_shard_model_block, pure=True)(
                X_block,
                y_blocks[index],
                None if sw_blocks is None else sw_blocks[index],
                bases[tokens[index]],
                shard=index,
                seeds=seeds.shards[index],
                validation_fraction=validation_fraction,
                classification=classification,
                run_id=run_id,
                refit=refit,
                dask_key_name=(f"{task_prefix('shard fit')}-{tokens[index]}", index),
            )
            summaries.append(
                dask.delayed(_summarize_shard_block, pure=True)(
                    fit, dask_key_name=(f"{task_prefix('shard summary')}-{tokens[index]}", index)
                )
            )
        fits.append(fit)
    if validation_fraction <= 0:
        return summaries, None
    members = dask.delayed(_collect_members_block, pure=True)(
        summaries, classification, dask_key_name=f"{task_prefix('shard members')}-{token}"
    )
    fusion_node = dask.delayed(fusion, name=f"{task_prefix('fusion')}-{token}", pure=True, traverse=False)
    held_out = []
    for index, fit in enumerate(fits):
        # The held-out rows stay in the fit's result, on the shard's worker: evaluate them there.
        with pinned_to(placement[index]):
            held_out.append(
                dask.delayed(_held_out_from_fit_block, pure=True)(
                    fit,
                    members,
                    fusion_node,
                    index,
                    dask_key_name=(f"{task_prefix('held out')}-{token}", index),
                )
            )
    return summaries, held_out


def compute_shard_fits(
    placed: PlacedShards,
    estimator: Any,
    *,
    seeds: ShardSeeds,
    validation_fraction: float,
    classification: bool,
    fusion: Fusion | None,
    token: str,
    run_id: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Build the shard-fit graph over ``placed`` (:func:`build_shard_fit_graph`) and compute it.

    Computed by :func:`compute_pinned`: a lost worker makes the shards move to the new holders of their
    blocks instead of waiting for ever, and a straggler's shards move to the other workers (the shards
    fitted elsewhere are kept). The keyword arguments are those of :func:`build_shard_fit_graph`.

    Returns
    -------
    summaries : list of dict
        Per shard.
    held_out : list of dict
        Per shard; empty when no rows are held out.
    """

    def build(now: PlacedShards, suffix: str, shard_suffixes: list[str]) -> tuple[list[Any], list[Any]]:
        summaries, held_out = build_shard_fit_graph(
            now.X_blocks,
            now.y_blocks,
            now.sw_blocks,
            estimator,
            seeds=seeds,
            validation_fraction=validation_fraction,
            classification=classification,
            fusion=fusion,
            token=token + suffix,
            workers=now.workers,
            run_id=run_id,
            shard_tokens=[token + shard_suffix for shard_suffix in shard_suffixes],
        )
        return summaries, held_out or []

    # compute: one fitted model and a few counts per shard; with held-out rows also per-model score sums
    # and, for stacking, the meta-features of the held-out rows (the summaries mark each shard's fit done)
    summaries, held_out = compute_pinned(build, placed, first_tasks=lambda parts: parts[0])
    return list(summaries), list(held_out)


def build_held_out_graph(
    X_blocks: Sequence[Any],
    y_blocks: Sequence[Any],
    sw_blocks: Sequence[Any] | None,
    members: dict[str, Any],
    fusion: Fusion,
    *,
    token: str,
) -> list[Any]:
    """Delayed held-out evaluations of given members over row blocks (``from_estimators``, checkpoints).

    Parameters
    ----------
    X_blocks, y_blocks, sw_blocks : list of dask.delayed.Delayed
        Row blocks of the held-out data: user-given, or (resumed from a checkpoint) block ``i`` holds the
        held-out rows of shard ``i``.
    members : dict
        ``{"estimators": [...], "classes": ndarray or None}``, or :func:`_collect_members_block`'s result;
        enters the graph once.
    fusion : Fusion
        Unfitted fusion.
    token : str
        Unique suffix of the task keys.

    Returns
    -------
    list of dask.delayed.Delayed
    """
    members_node = dask.delayed(
        members, name=f"{task_prefix('shard members')}-{token}", pure=True, traverse=False
    )
    fusion_node = dask.delayed(fusion, name=f"{task_prefix('fusion')}-{token}", pure=True, traverse=False)
    return [
        dask.delayed(_held_out_block, pure=True)(
            X_block,
            y_blocks[index],
            None if sw_blocks is None else sw_blocks[index],
            members_node,
            fusion_node,
            index,
            dask_key_name=(f"{task_prefix('held out')}-{token}", index),
        )
        for index, X_block in enumerate(X_blocks)
    ]
