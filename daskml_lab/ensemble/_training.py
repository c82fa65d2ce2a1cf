"""Shard-wise training: one clone of the base estimator per row block, fitted where the block lives.

The graph built by :func:`build_shard_fit_graph` has, for every shard ``i``:

- ``("daskml-shard-fit-<token>", i)``: :func:`_fit_shard_block` splits the block into training and held-out
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
as meta-features. The same functions serve a Cascade SVM or any other shard-wise trainer that needs
"fit a clone per block, keep held-out rows local" (see :func:`build_shard_fit_graph`).

**Locality.** On a distributed cluster, :func:`place_shards` persists the shard blocks once and asks the
scheduler which worker holds each block (matched by key); :func:`build_shard_fit_graph` then pins every
shard's tasks to that worker (``dask.annotate(workers=[...], allow_other_workers=False)``), so that neither
the scheduler's placement heuristics nor work stealing can move a shard's rows to another worker. Without a
distributed client (local schedulers) the blocks are used as they are.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.utils.multiclass import check_classification_targets

from daskml_lab.fusion import Fusion
from daskml_lab.fusion._base import member_score_stats
from daskml_lab.monitoring import task_prefix
from daskml_lab.monitoring._events import publish_shard_event

__all__ = [
    "PlacedShards",
    "ShardSeeds",
    "build_held_out_graph",
    "build_shard_fit_graph",
    "current_client",
    "place_shards",
    "root_entropy",
    "seeded_clone",
    "shard_seeds",
    "split_rows",
]

logger = logging.getLogger(__name__)

#: Persist the shards for pinned fits only when their dense size is at most this share of the workers' memory.
PERSIST_MEMORY_FRACTION = 0.5

#: What a shard model is, in the shard report.
KIND_FITTED = "fitted"
KIND_CONSTANT = "constant"
KIND_EMPTY = "empty"


@dataclass(frozen=True)
class ShardSeeds:
    """Seeds derived from one root: one for the data layer's sharding, two per shard (model, row split)."""

    sharding: int
    shards: tuple[tuple[int, int], ...]


def root_entropy(random_state: Any, estimator: Any = None) -> int | None:
    """The root seed of an ensemble: its ``random_state``, else the base estimator's integer ``random_state``.

    Parameters
    ----------
    random_state : int, numpy.random.RandomState, numpy.random.Generator or None
        The ensemble's ``random_state``. A RandomState or Generator is drawn from once.
    estimator : estimator instance, default=None
        The base estimator; its ``random_state`` is used when it is an int and ``random_state`` is None.

    Returns
    -------
    int or None
        ``None`` means fresh operating-system entropy (a different result at every fit).
    """
    if random_state is None and estimator is not None:
        own = (
            estimator.get_params(deep=False).get("random_state") if hasattr(estimator, "get_params") else None
        )
        if isinstance(own, numbers.Integral) and not isinstance(own, bool):
            return int(own)
        return None
    if random_state is None:
        return None
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**32))
    return int(random_state)


def shard_seeds(root: int | None, n_shards: int) -> ShardSeeds:
    """Independent seeds from ``numpy.random.SeedSequence(root)``: child 0 shards the data, 1+i is shard i.

    Parameters
    ----------
    root : int or None
        From :func:`root_entropy`.
    n_shards : int
        Number of shards.

    Returns
    -------
    ShardSeeds

    Examples
    --------
    >>> seeds = shard_seeds(0, 2)
    >>> len(seeds.shards), seeds.shards == shard_seeds(0, 2).shards
    (2, True)
    """
    children = np.random.SeedSequence(root).spawn(n_shards + 1)
    sharding = int(children[0].generate_state(1)[0])
    shards = tuple(tuple(int(v) for v in child.generate_state(2)) for child in children[1:])
    return ShardSeeds(sharding, shards)  # type: ignore[arg-type]


def seeded_clone(estimator: Any, seed: int) -> Any:
    """A clone of ``estimator`` whose ``random_state`` parameters (nested ones too) derive from ``seed``.

    Parameters
    ----------
    estimator : estimator instance
    seed : int

    Returns
    -------
    estimator instance
        Unfitted.
    """
    model = clone(estimator)
    names = sorted(
        name
        for name in model.get_params(deep=True)
        if name == "random_state" or name.endswith("__random_state")
    )
    if names:
        values = np.random.SeedSequence(seed).generate_state(len(names))
        model.set_params(**{name: int(value) for name, value in zip(names, values, strict=True)})
    return model


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
# placement (client side)


@dataclass(frozen=True)
class PlacedShards:
    """The row blocks of every shard, and the worker each shard is fitted on.

    Attributes
    ----------
    X_blocks, y_blocks : list of dask.delayed.Delayed
        One delayed block per shard.
    sw_blocks : list of dask.delayed.Delayed or None
        Sample-weight blocks.
    workers : list of str or None
        Address of the worker holding shard ``i`` (its tasks are pinned there), or ``None`` for every shard
        when no distributed client is in use or the blocks were not persisted.
    futures : list of distributed.Future
        The persisted blocks. The delayed blocks name their keys but do not hold them: keep this object
        until the fits have been computed, then drop it to free the workers' memory.
    """

    X_blocks: list[Any]
    y_blocks: list[Any]
    sw_blocks: list[Any] | None
    workers: list[str | None] | None
    futures: list[Any] = field(default_factory=list)


def current_client() -> Any:
    """The distributed client ``dask.compute`` uses now, or ``None`` when a local scheduler is in use.

    Returns
    -------
    distributed.Client or None
        ``None`` when ``dask.config`` names a local scheduler (``"sync"``, ``"threads"``, a counting
        scheduler, ...) or no default client exists.
    """
    scheduler = dask.config.get("scheduler", None)
    if scheduler is not None and scheduler not in ("dask.distributed", "distributed"):
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _unplaced(X: da.Array, y: da.Array, sample_weight: da.Array | None) -> PlacedShards:
    """The blocks as they are; the scheduler places the fits."""
    sw_blocks = None if sample_weight is None else list(sample_weight.to_delayed().ravel())
    return PlacedShards(list(X.to_delayed().ravel()), list(y.to_delayed().ravel()), sw_blocks, None)


def place_shards(
    X: da.Array, y: da.Array, sample_weight: da.Array | None, client: Any = None
) -> PlacedShards:
    """Persist the shard blocks on the cluster once and find the worker holding each (by key).

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        The sharded features, one row block per shard.
    y : dask.array.Array of shape (n_samples,)
        Targets with the row chunks of ``X``.
    sample_weight : dask.array.Array of shape (n_samples,) or None
        Weights with the row chunks of ``X``.
    client : distributed.Client, default=None
        The client; ``None`` uses :func:`current_client`.

    Returns
    -------
    PlacedShards
        Without a distributed client, or when the dense size of ``X`` exceeds ``PERSIST_MEMORY_FRACTION`` of
        the workers' memory, the blocks as they are and ``workers=None`` (the scheduler places the fits).
        Otherwise the persisted blocks and, per shard, a worker holding its ``X`` block, preferring one that
        also holds its ``y`` (and weight) block; among several such workers (replicated blocks), the one with
        the fewest rows assigned so far. Sparse ``X`` is always persisted. The fits follow the data: blocks
        persisted unevenly give some workers more fits than others.

    Raises
    ------
    ValueError
        What computing a block raised (for example the finiteness check of the data layer).
    """
    client = current_client() if client is None else client
    if client is None:
        return _unplaced(X, y, sample_weight)
    from distributed import futures_of, wait

    memory = sum(w.get("memory_limit", 0) or 0 for w in client.scheduler_info()["workers"].values())
    dense_nbytes = float(np.prod(X.shape)) * X.dtype.itemsize
    if memory and not sp.issparse(X._meta) and dense_nbytes > PERSIST_MEMORY_FRACTION * memory:
        logger.info(
            "The shards (%.1f GB dense) exceed %d%% of the workers' memory (%.1f GB): not persisting them; "
            "each shard is fitted where the scheduler computes its block.",
            dense_nbytes / 1e9,
            int(100 * PERSIST_MEMORY_FRACTION),
            memory / 1e9,
        )
        return _unplaced(X, y, sample_weight)
    collections = [X, y] if sample_weight is None else [X, y, sample_weight]
    # persist: the shard blocks, once, so that the scheduler can tell where each lives (data-sized, kept on
    # the workers for the duration of the fit; blocks already in memory are only referenced again)
    persisted = client.persist(collections)
    futures = futures_of(persisted)
    wait(futures)
    for future in futures:
        if future.status == "error":
            future.result()  # raises the task's own exception (e.g. NaN found by the finiteness check)
    blocks = [list(c.to_delayed().ravel()) for c in persisted]
    who_has = client.who_has(futures)
    workers: list[str | None] = []
    rows_per_worker: Counter[str] = Counter()
    for index, X_block in enumerate(blocks[0]):
        x_holders = sorted(who_has.get(X_block.key, ()))
        others = [set(who_has.get(b[index].key, ())) for b in blocks[1:]]
        candidates = [w for w in x_holders if all(w in o for o in others)] or x_holders
        if not candidates:
            workers.append(None)
            continue
        # A block held by several workers (replicas) goes to the one with the fewest rows to fit so far.
        chosen = min(candidates, key=lambda w: (rows_per_worker[w], w))
        rows_per_worker[chosen] += int(X.chunks[0][index])
        workers.append(chosen)
    logger.debug("shard fits pinned to the workers holding their blocks: %s", dict(Counter(workers)))
    return PlacedShards(blocks[0], blocks[1], blocks[2] if len(blocks) == 3 else None, workers, futures)


def _pinned(worker: str | None) -> Any:
    """Annotation context pinning the tasks created inside it to ``worker`` (nothing for ``None``)."""
    if worker is None:
        return contextlib.nullcontext()
    return dask.annotate(workers=[worker], allow_other_workers=False)


def _worker_address() -> str | None:
    """Address of the dask worker running the current task, or ``None`` under a local scheduler."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------------
# kernels (run on the workers)


def _fit_shard_block(
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
) -> dict[str, Any]:
    """Fit a seeded clone of ``estimator`` on the training rows of one shard; keep the held-out rows.

    A classification shard whose training rows hold a single class gets a constant predictor
    (``DummyClassifier(strategy="constant")``); an empty shard gets no model. With a ``run_id``, the shard's
    start and end are reported to the training monitor from the worker.
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
        "worker": _worker_address(),
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
    fit_params = {} if sw_train is None else {"sample_weight": sw_train}
    train_labels = np.unique(y_train) if classification else None
    if train_labels is not None and train_labels.size == 1:
        model = DummyClassifier(strategy="constant", constant=train_labels[:1])
        kind = KIND_CONSTANT
    else:
        model = seeded_clone(estimator, model_seed)
        kind = KIND_FITTED
    try:
        model.fit(X_train, y_train, **fit_params)
    except Exception as err:
        publish_shard_event(run_id, shard, "failed", error=f"{type(err).__name__}: {err}"[:200])
        err.add_note(
            f"daskml_lab: raised while fitting {type(model).__name__} on shard {shard} ({len(train)} rows)."
        )
        raise
    publish_shard_event(
        run_id,
        shard,
        "finished",
        n_rows=n_rows,
        n_train=int(train.size),
        n_held_out=int(held_out.size),
        fit_time_s=time.perf_counter() - started,
        model=kind if kind != KIND_FITTED else type(model).__name__,
    )
    result.update(
        model=model,
        kind=kind,
        n_train=int(train.size),
        n_held_out=int(held_out.size),
        X_held_out=X[held_out],
        y_held_out=y[held_out],
        sw_held_out=None if sample_weight is None else sample_weight[held_out],
    )
    if classification:
        labels, counts = np.unique(y, return_counts=True)
        result.update(labels=labels, counts=counts.astype(np.int64))
    return result


def _summarize_shard_block(fitted: dict[str, Any]) -> dict[str, Any]:
    """The part of a shard's result that goes to the client: model and counts, no rows."""
    return {
        key: value for key, value in fitted.items() if not key.endswith("_held_out") or key == "n_held_out"
    }


def _collect_members_block(summaries: Sequence[dict[str, Any]], classification: bool) -> dict[str, Any]:
    """The fitted models (non-empty shards, in shard order) and the global classes."""
    models = [s["model"] for s in summaries if s["model"] is not None]
    classes = None
    if classification:
        classes = np.unique(np.concatenate([s["labels"] for s in summaries]))
    return {"estimators": models, "classes": classes}


def _held_out_block(
    X: Any, y: np.ndarray, sample_weight: np.ndarray | None, members: dict[str, Any], fusion: Fusion
) -> dict[str, Any]:
    """Every member's score statistics and the fusion's meta-features on held-out rows ``X``."""
    n_rows = int(X.shape[0])
    if n_rows == 0:
        return {"n_rows": 0, "stats": None, "features": None, "target": None, "sample_weight": None}
    estimators, classes = members["estimators"], members["classes"]
    features = fusion.held_out_features(estimators, X, classes=classes)
    return {
        "n_rows": n_rows,
        "stats": member_score_stats(estimators, X, y, sample_weight, classes=classes),
        "features": features,
        "target": None if features is None else y,
        "sample_weight": None if features is None else sample_weight,
    }


def _held_out_from_fit_block(
    fitted: dict[str, Any], members: dict[str, Any], fusion: Fusion
) -> dict[str, Any]:
    return _held_out_block(fitted["X_held_out"], fitted["y_held_out"], fitted["sw_held_out"], members, fusion)


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
        From :func:`shard_seeds`.
    validation_fraction : float
        Share of each shard held out; ``0`` builds no held-out pass.
    classification : bool
        Whether labels are classes.
    fusion : Fusion or None
        Unfitted fusion whose :meth:`~daskml_lab.fusion.Fusion.held_out_features` runs on the held-out rows.
    token : str
        Unique suffix of the task keys.
    workers : list of str or None, default=None
        Per shard, the worker its fit, summary and held-out tasks are pinned to (from :func:`place_shards`;
        ``None`` leaves the placement to the scheduler).
    run_id : str, default=None
        Training-monitor run the shard fits report to (from the workers); ``None`` reports nothing.

    Returns
    -------
    summaries : list of dask.delayed.Delayed
        Per shard: ``model``, ``kind``, ``n_rows``, ``n_train``, ``n_held_out``, ``labels``, ``counts`` and
        ``worker`` (the address of the worker that fitted it, ``None`` under a local scheduler).
    held_out : list of dask.delayed.Delayed or None
        Per shard: ``stats``, ``features``, ``target``, ``sample_weight`` of its held-out rows.
    """
    base = dask.delayed(estimator, name=f"{task_prefix('base estimator')}-{token}", pure=True, traverse=False)
    placement = list(workers) if workers is not None else [None] * len(X_blocks)
    fits = []
    summaries = []
    for index, X_block in enumerate(X_blocks):
        with _pinned(placement[index]):
            fit = dask.delayed(_fit_shard_block, pure=True)(
                X_block,
                y_blocks[index],
                None if sw_blocks is None else sw_blocks[index],
                base,
                shard=index,
                seeds=seeds.shards[index],
                validation_fraction=validation_fraction,
                classification=classification,
                run_id=run_id,
                dask_key_name=(f"{task_prefix('shard fit')}-{token}", index),
            )
            summaries.append(
                dask.delayed(_summarize_shard_block, pure=True)(
                    fit, dask_key_name=(f"{task_prefix('shard summary')}-{token}", index)
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
        with _pinned(placement[index]):
            held_out.append(
                dask.delayed(_held_out_from_fit_block, pure=True)(
                    fit, members, fusion_node, dask_key_name=(f"{task_prefix('held out')}-{token}", index)
                )
            )
    return summaries, held_out


def build_held_out_graph(
    X_blocks: Sequence[Any],
    y_blocks: Sequence[Any],
    sw_blocks: Sequence[Any] | None,
    members: dict[str, Any],
    fusion: Fusion,
    *,
    token: str,
) -> list[Any]:
    """Delayed held-out evaluations of given members over user-given rows (for ``from_estimators``).

    Parameters
    ----------
    X_blocks, y_blocks, sw_blocks : list of dask.delayed.Delayed
        Row blocks of the held-out data.
    members : dict
        ``{"estimators": [...], "classes": ndarray or None}``; enters the graph once.
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
            dask_key_name=(f"{task_prefix('held out')}-{token}", index),
        )
        for index, X_block in enumerate(X_blocks)
    ]
