"""Several shard ensembles fitted together: every shard fit of every ensemble in one computation.

A search over a shard ensemble fits one ensemble per (candidate, fold). Fitted one after the other, each fit
waits for its slowest shard before the next one starts, so the cluster idles between fits.
:func:`fit_shard_ensembles` runs the three steps of :meth:`BaseShardEnsemble.fit` for many ensembles at once:

1. **plan**: each ensemble's prologue (parameters, data, seeds, shards), as its own ``fit`` runs it;
2. **fit**: the shard blocks of every ensemble are placed once (:func:`~daskml_lab.ensemble._placement.
   place_shards_for_fit`; ensembles sharing their shards, such as the candidates of one fold, share the
   persisted blocks), and every ensemble's shard-fit graph (:func:`~daskml_lab.ensemble._training.
   build_shard_fit_graph`, pinned to the holders of the blocks, with its held-out pass) is computed in one
   watched computation (:func:`~daskml_lab.ensemble._placement.compute_pinned`: lost workers and stragglers
   are handled as in one fit);
3. **fuse**: each ensemble fuses its own shard models on the client.

Every task is the one its ensemble's own ``fit`` would run (same data blocks, seeds and base estimator), so each
ensemble ends up with the models, fusion and report of a fit of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import dask.array as da

from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.cluster_health import explain_cluster_failures
from daskml_lab.ensemble._base import BaseShardEnsemble
from daskml_lab.ensemble._placement import PlacedShards, compute_pinned, place_shards_for_fit
from daskml_lab.ensemble._prologue import ShardFitStart
from daskml_lab.ensemble._training import build_shard_fit_graph
from daskml_lab.monitoring import fit_span

__all__ = ["fit_shard_ensembles"]


def fit_shard_ensembles(ensembles: Sequence[Any], X: Sequence[Any], y: Sequence[Any]) -> list[Any]:
    """Fit several shard ensembles, each on its own data, with all their shard fits in one computation.

    Each ensemble ends up as its own ``fit(X[i], y[i])`` leaves it (same shard models for a fixed
    ``random_state``); the cluster runs every ensemble's shard fits as soon as a worker is free instead of one
    ensemble after the other. This is what :class:`daskml_lab.model_selection.GridSearchCV` and
    :func:`daskml_lab.model_selection.cross_validate` run for a shard ensemble on dask data: one task per
    (candidate, fold, shard).

    Parameters
    ----------
    ensembles : list of ShardEnsembleClassifier or ShardEnsembleRegressor
        Unfitted (or to be refitted) ensembles; they are fitted in place. An ensemble with a ``checkpoint``
        is fitted on its own, by its ``fit`` (its directory is written as its shards finish).
    X : list of {array-like, sparse matrix, dask array, xarray.DataArray}
        The training rows of each ensemble. Ensembles whose data are the same dask arrays (same keys) share
        their persisted shard blocks.
    y : list of {array-like, dask array, Series, xarray.DataArray}
        The targets of each ensemble.

    Returns
    -------
    list of estimators
        ``ensembles``, fitted.

    Raises
    ------
    TypeError
        If an element of ``ensembles`` is not a shard ensemble.
    ValueError
        If the lists differ in length, if the ensembles' data differ in column count or dtypes (their shards
        are placed as one array), or what an ensemble's ``fit`` raises for its parameters or data (before
        anything is computed). An error in a shard fit ends the whole computation: no ensemble is fitted.

    Notes
    -----
    The memory plan (dask.config ``daskml_lab.ensemble.persist``) decides for the shards of all the
    ensembles together: persisted when they fit, read from their source by each shard fit otherwise. Sharding
    by ``"stratified"`` or ``"hash"`` computes its per-block counts ensemble by ensemble, before the joint
    computation, as each ``fit`` does.
    """
    if not len(ensembles) == len(X) == len(y):
        msg = (
            f"fit_shard_ensembles needs one X and one y per ensemble; got {len(ensembles)} ensemble(s), "
            f"{len(X)} X and {len(y)} y."
        )
        raise ValueError(msg)
    for ensemble in ensembles:
        if not isinstance(ensemble, BaseShardEnsemble):
            msg = (
                "fit_shard_ensembles fits ShardEnsembleClassifier and ShardEnsembleRegressor; got "
                f"{type(ensemble).__name__}. Fit other estimators with their own fit."
            )
            raise TypeError(msg)
    joint = [i for i, ensemble in enumerate(ensembles) if ensemble.checkpoint is None]
    for i, ensemble in enumerate(ensembles):
        if ensemble.checkpoint is not None:
            ensemble.fit(X[i], y[i])  # its checkpoint directory is written (and locked) by its own fit
    if joint:
        _fit_jointly([ensembles[i] for i in joint], [X[i] for i in joint], [y[i] for i in joint])
    return list(ensembles)


def _fit_jointly(ensembles: list[Any], X: list[Any], y: list[Any]) -> None:
    # plan: every prologue first, so that an invalid parameter or input fails before anything runs
    starts: list[ShardFitStart] = [
        e._start_shard_fit(Xi, yi, None) for e, Xi, yi in zip(ensembles, X, y, strict=True)
    ]
    client = current_client()
    with (
        contextlib.ExitStack() as held,
        fit_span("shard ensembles", f"{len(ensembles)} fits"),
        explain_cluster_failures(client, doing=f"fitting {len(ensembles)} shard ensembles together"),
    ):
        for start in starts:
            held.enter_context(start.held_checkpoint)  # empty: no checkpoints here, closed all the same
        runs = [e._start_shard_run(s) for e, s in zip(ensembles, starts, strict=True)]
        X_all, y_all, first_block = _distinct_shards(starts)
        placed = place_shards_for_fit(X_all, y_all, None)
        options = [e._shard_fit_options(s, r) for e, s, r in zip(ensembles, starts, runs, strict=True)]
        spans = [(first_block[i], starts[i].n_shards) for i in range(len(starts))]
        # per distinct block, the summary of the first ensemble fitted on it: its completion marks the block's
        # first task done (compute_pinned's relative straggler rule)
        firsts: dict[int, int] = {}
        position = 0
        for begin, n_shards in spans:
            for shard in range(n_shards):
                firsts.setdefault(begin + shard, position + shard)
            position += n_shards

        def build(now: PlacedShards, suffix: str, shard_suffixes: list[str]) -> tuple[list[Any], list[Any]]:
            summaries: list[Any] = []
            held_out: list[Any] = []
            for (begin, n_shards), kwargs in zip(spans, options, strict=True):
                end = begin + n_shards
                token = kwargs["token"]
                parts = build_shard_fit_graph(
                    now.X_blocks[begin:end],
                    now.y_blocks[begin:end],
                    None,
                    **{**kwargs, "token": token + suffix},
                    workers=None if now.workers is None else now.workers[begin:end],
                    shard_tokens=[token + shard_suffix for shard_suffix in shard_suffixes[begin:end]],
                )
                summaries += parts[0]
                held_out += parts[1] or []
            return summaries, held_out

        # compute: one fitted model and a few counts per shard of every ensemble; with held-out rows also
        # per-model score sums and, for stacking, the meta-features of the held-out rows
        summaries, held_out = compute_pinned(
            build, placed, first_tasks=lambda parts: [parts[0][firsts[b]] for b in sorted(firsts)]
        )
        del placed  # releases the blocks persisted for the fits
    position = held_position = 0
    for ensemble, start, run, kwargs in zip(ensembles, starts, runs, options, strict=True):
        n_shards = start.n_shards
        n_held = n_shards if kwargs["validation_fraction"] > 0 else 0
        ensemble._fuse_shard_fits(
            start,
            summaries[position : position + n_shards],
            held_out[held_position : held_position + n_held],
            run,
        )
        position += n_shards
        held_position += n_held


def _distinct_shards(starts: list[ShardFitStart]) -> tuple[da.Array, da.Array, list[int]]:
    """The distinct sharded arrays of the fits, one after the other, and where each fit's shards begin.

    Fits on the same shards (the candidates of one fold) share them: their blocks are persisted once.
    """
    seen: dict[tuple[str, str], int] = {}
    X_parts: list[da.Array] = []
    y_parts: list[da.Array] = []
    first_block: list[int] = []
    n_blocks = 0
    for start in starts:
        X_arr, y_arr = start.arrays[0], start.arrays[1]
        assert X_arr is not None  # fit always shards X and y
        assert y_arr is not None
        key = (X_arr.name, y_arr.name)
        if key not in seen:
            _check_same_kind(X_parts, y_parts, X_arr, y_arr)
            seen[key] = n_blocks
            X_parts.append(X_arr)
            y_parts.append(y_arr)
            n_blocks += X_arr.numblocks[0]
        first_block.append(seen[key])
    if len(X_parts) == 1:
        return X_parts[0], y_parts[0], first_block
    # lazy: the blocks keep their tasks (each sharded array's blocks, one after the other)
    return da.concatenate(X_parts, axis=0), da.concatenate(y_parts, axis=0), first_block


def _check_same_kind(X_parts: list[da.Array], y_parts: list[da.Array], X: da.Array, y: da.Array) -> None:
    if not X_parts:
        return
    if X.shape[1:] != X_parts[0].shape[1:] or X.dtype != X_parts[0].dtype or y.dtype != y_parts[0].dtype:
        msg = (
            "fit_shard_ensembles places the shards of every ensemble together, so their data must have the same "
            f"columns and dtypes; got X {X_parts[0].shape[1:]} {X_parts[0].dtype} and y {y_parts[0].dtype}, "
            f"then X {X.shape[1:]} {X.dtype} and y {y.dtype}. Fit ensembles on different data one by one."
        )
        raise ValueError(msg)
