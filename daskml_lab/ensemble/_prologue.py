"""The fit prologue every shard-wise trainer shares: from ``fit``'s arguments to seeded shards.

:class:`~daskml_lab.ensemble.ShardEnsembleClassifier`, :class:`~daskml_lab.ensemble.ShardEnsembleRegressor`
and :class:`~daskml_lab.ensemble.CascadeSVC` run the same steps, in the style guide's order, before each
builds its own graph: check the parameters (and the settings that depend on several of them), check the data
through :mod:`daskml_lab.data.validation`, draw the root seed (:mod:`daskml_lab._runtime.seeding`), open the
checkpoint directory (which may supply the root seed of the fit it resumes) and hold its lock, shard the
validated data through the data layer, and derive the seeds of every shard. :func:`start_shard_fit` runs
them; the fit then runs inside ``with start.held_checkpoint``, which releases the lock.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import dask
import dask.array as da

from daskml_lab._runtime.checkpoint_files import lock_checkpoint_directory
from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.cluster_health import explain_cluster_failures
from daskml_lab._runtime.seeding import ShardSeeds, root_entropy, shard_seeds
from daskml_lab.data.validation import ValidatedData
from daskml_lab.ensemble._checkpoint import open_ensemble_checkpoint

logger = logging.getLogger(__name__)

__all__ = ["MIN_SHARD_ROWS", "ShardFitStart", "ShardTrainer", "coalesced_row_chunks", "start_shard_fit"]

#: Fewest rows of a shard made from the input's row blocks (``n_shards=None``): smaller blocks are merged with
#: their neighbours. ``dask.config`` key :data:`MIN_SHARD_ROWS_KEY` overrides it.
MIN_SHARD_ROWS = 50
MIN_SHARD_ROWS_KEY = "daskml_lab.ensemble.min_shard_rows"


class ShardTrainer(Protocol):
    """What :func:`start_shard_fit` needs of an estimator (the shard ensembles and the Cascade SVM)."""

    random_state: Any
    checkpoint: Any

    def _validate_params(self) -> None: ...

    def _fit_settings(self, sample_weight: Any) -> Any:
        """Check the settings that depend on several parameters (or on the weights); return what fit needs."""

    def _validate_fit_data(self, X: Any, y: Any, *, sample_weight: Any, y_numeric: bool) -> ValidatedData: ...

    def _shard(self, data: ValidatedData, seed: int) -> tuple[da.Array | None, ...]:
        """The validated data cut into shards (one row block each), first array the rows."""


@dataclass(frozen=True)
class ShardFitStart:
    """What the prologue hands to the rest of ``fit``.

    Attributes
    ----------
    settings : object
        What the estimator's ``_fit_settings`` returned.
    data : ValidatedData
        The validated inputs.
    arrays : tuple of dask.array.Array or None
        The estimator's ``_shard`` result: one row block per shard.
    n_shards : int
        Number of shards (row blocks of ``arrays[0]``), empty ones included.
    seeds : ShardSeeds
        The seeds of every shard, from the root seed.
    checkpoint : dict or None
        The opened checkpoint directory (see :func:`~daskml_lab.ensemble._checkpoint.open_ensemble_checkpoint`).
    token : str
        Unique suffix of the fit's task keys.
    held_checkpoint : contextlib.ExitStack
        The checkpoint directory's lock, taken by :func:`start_shard_fit` (empty without a checkpoint): the
        fit runs inside ``with start.held_checkpoint``, which releases it however the fit ends.
    """

    settings: Any
    data: ValidatedData
    arrays: tuple[da.Array | None, ...]
    n_shards: int
    seeds: ShardSeeds
    checkpoint: dict[str, Any] | None
    token: str
    held_checkpoint: contextlib.ExitStack


def start_shard_fit(
    estimator: ShardTrainer,
    X: Any,
    y: Any,
    sample_weight: Any,
    *,
    y_numeric: bool,
    seed_estimator: Any = None,
) -> ShardFitStart:
    """Run the steps before a shard-wise fit builds its graph; compute nothing but what sharding needs.

    Parameters
    ----------
    estimator : ShardTrainer
        The estimator being fitted.
    X, y, sample_weight
        The arguments of ``fit``.
    y_numeric : bool
        Whether ``y`` is a regression target.
    seed_estimator : estimator instance, default=None
        The base estimator whose int ``random_state`` seeds the fit when ``estimator.random_state`` is None.

    Returns
    -------
    ShardFitStart

    Raises
    ------
    InvalidParameterError, ValueError, CheckpointError
        From the checks of the parameters, the settings, the data and the checkpoint directory, in that
        order: nothing is computed before they pass (sharding by ``"stratified"`` or ``"hash"`` then counts
        labels or keys per block).
    """
    estimator._validate_params()
    settings = estimator._fit_settings(sample_weight)
    data = estimator._validate_fit_data(X, y, sample_weight=sample_weight, y_numeric=y_numeric)
    root = root_entropy(estimator.random_state, seed_estimator)
    checkpoint = None
    held = contextlib.ExitStack()
    with held:  # releases the checkpoint's lock if anything below fails; the fit releases it otherwise
        if estimator.checkpoint is not None:
            # before any computation: a locked, unwritable or foreign directory fails at once; a resumed fit
            # reuses the root seed of the fit it continues (the same shards, splits and model seeds)
            held.enter_context(lock_checkpoint_directory(estimator.checkpoint))
            checkpoint = open_ensemble_checkpoint(estimator, data, root)
            root = int(checkpoint["state"]["root"])
        with explain_cluster_failures(  # sharding counts labels or keys on the cluster
            current_client(),
            doing=f"sharding the data of {type(estimator).__name__}",
            checkpoint=estimator.checkpoint,
        ):
            arrays = estimator._shard(data, shard_seeds(root, 0).sharding)
        first = arrays[0]
        assert first is not None  # the rows are always sharded
        n_shards = int(first.numblocks[0])
        return ShardFitStart(
            settings=settings,
            data=data,
            arrays=arrays,
            n_shards=n_shards,
            seeds=shard_seeds(root, n_shards),
            checkpoint=checkpoint,
            token=uuid.uuid4().hex,
            held_checkpoint=held.pop_all(),
        )


def coalesced_row_chunks(chunks: Sequence[int], min_rows: int | None = None) -> tuple[int, ...] | None:
    """Row blocks merged with their neighbours into shards of at least ``min_rows`` rows, or None if none is small.

    A shard model trained on a handful of rows is of little use, and each shard costs a task (several in the
    cascade), so thousands of tiny blocks (a file read in one-row pieces) would cost far more in scheduling
    than in fitting. Consecutive blocks are merged, in order, until each group has ``min_rows`` rows; a short
    last group joins the one before. Blocks that are all empty or at least ``min_rows`` rows long are left
    as they are (``None``).

    Parameters
    ----------
    chunks : sequence of int
        Rows of every block.
    min_rows : int, default=None
        Fewest rows per shard; default ``dask.config`` ``daskml_lab.ensemble.min_shard_rows``
        (:data:`MIN_SHARD_ROWS`).

    Returns
    -------
    tuple of int or None
        The rows of every shard (their sum is ``sum(chunks)``).

    Examples
    --------
    >>> coalesced_row_chunks([1] * 7, min_rows=3)
    (3, 4)
    >>> coalesced_row_chunks([100, 0, 100], min_rows=50) is None
    True
    """
    min_rows = int(dask.config.get(MIN_SHARD_ROWS_KEY, MIN_SHARD_ROWS)) if min_rows is None else int(min_rows)
    if all(size == 0 or size >= min_rows for size in chunks):
        return None
    groups: list[int] = []
    current = 0
    for size in chunks:
        current += int(size)
        if current >= min_rows:
            groups.append(current)
            current = 0
    if current and groups:
        groups[-1] += current
    elif current:
        groups.append(current)
    logger.info(
        "%d row blocks of fewer than %d rows merged into %d shard(s) (dask.config %s)",
        sum(1 for size in chunks if 0 < size < min_rows),
        min_rows,
        len(groups),
        MIN_SHARD_ROWS_KEY,
    )
    return tuple(groups)
