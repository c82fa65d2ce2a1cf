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
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import dask.array as da

from daskml_lab._runtime.checkpoint_files import lock_checkpoint_directory
from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.cluster_health import explain_cluster_failures
from daskml_lab._runtime.seeding import ShardSeeds, root_entropy, shard_seeds
from daskml_lab.data.validation import ValidatedData
from daskml_lab.ensemble._checkpoint import open_ensemble_checkpoint

__all__ = ["ShardFitStart", "ShardTrainer", "start_shard_fit"]


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
