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
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.utils.multiclass import check_classification_targets

from daskml_lab.fusion import Fusion
from daskml_lab.fusion._base import member_score_stats
from daskml_lab.monitoring import task_prefix

__all__ = [
    "ShardSeeds",
    "build_held_out_graph",
    "build_shard_fit_graph",
    "root_entropy",
    "seeded_clone",
    "shard_seeds",
    "split_rows",
]

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
) -> dict[str, Any]:
    """Fit a seeded clone of ``estimator`` on the training rows of one shard; keep the held-out rows.

    A classification shard whose training rows hold a single class gets a constant predictor
    (``DummyClassifier(strategy="constant")``); an empty shard gets no model.
    """
    n_rows = int(X.shape[0])
    model_seed, split_seed = seeds
    result: dict[str, Any] = {
        "shard": shard,
        "n_rows": n_rows,
        "model": None,
        "kind": KIND_EMPTY,
        "labels": None,
        "counts": None,
    }
    if n_rows == 0:
        result.update(n_train=0, n_held_out=0, X_held_out=X[:0], y_held_out=y[:0], sw_held_out=None)
        if classification:
            result.update(labels=y[:0], counts=np.zeros(0, dtype=np.int64))
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
        err.add_note(
            f"daskml_lab: raised while fitting {type(model).__name__} on shard {shard} ({len(train)} rows)."
        )
        raise
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

    Returns
    -------
    summaries : list of dask.delayed.Delayed
        Per shard: ``model``, ``kind``, ``n_rows``, ``n_train``, ``n_held_out``, ``labels``, ``counts``.
    held_out : list of dask.delayed.Delayed or None
        Per shard: ``stats``, ``features``, ``target``, ``sample_weight`` of its held-out rows.
    """
    base = dask.delayed(estimator, name=f"{task_prefix('base estimator')}-{token}", pure=True, traverse=False)
    fits = []
    for index, X_block in enumerate(X_blocks):
        fits.append(
            dask.delayed(_fit_shard_block, pure=True)(
                X_block,
                y_blocks[index],
                None if sw_blocks is None else sw_blocks[index],
                base,
                shard=index,
                seeds=seeds.shards[index],
                validation_fraction=validation_fraction,
                classification=classification,
                dask_key_name=(f"{task_prefix('shard fit')}-{token}", index),
            )
        )
    summaries = [
        dask.delayed(_summarize_shard_block, pure=True)(
            fit, dask_key_name=(f"{task_prefix('shard summary')}-{token}", index)
        )
        for index, fit in enumerate(fits)
    ]
    if validation_fraction <= 0:
        return summaries, None
    members = dask.delayed(_collect_members_block, pure=True)(
        summaries, classification, dask_key_name=f"{task_prefix('shard members')}-{token}"
    )
    fusion_node = dask.delayed(fusion, name=f"{task_prefix('fusion')}-{token}", pure=True, traverse=False)
    held_out = [
        dask.delayed(_held_out_from_fit_block, pure=True)(
            fit, members, fusion_node, dask_key_name=(f"{task_prefix('held out')}-{token}", index)
        )
        for index, fit in enumerate(fits)
    ]
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
