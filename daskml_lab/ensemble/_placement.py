"""Whether the shard blocks of an ensemble fit are persisted on the workers or read from their source.

A shard model needs its whole shard in one worker's memory, but nothing needs all the shards in memory at
once: data larger than the workers' memory are fitted by letting every ``daskml-shard-fit`` task read its own
block from storage (zarr, parquet, ...), so that worker memory stays bounded by a few shards whatever the size
of the data. :func:`place_shards_for_fit` makes that choice (``dask.config`` key
``daskml_lab.ensemble.persist``: ``"auto"``, ``True`` or ``False``) and refuses, before anything is computed,
what would get workers killed by their nanny.
"""

from __future__ import annotations

import logging
import math

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

from daskml_lab._compat import unique_fused_keys
from daskml_lab.ensemble._training import PlacedShards, current_client, place_shards
from daskml_lab.solvers import _problem

__all__ = ["place_shards_for_fit"]

logger = logging.getLogger(__name__)

#: ``dask.config`` key of the override.
CONFIG_KEY = "daskml_lab.ensemble.persist"


def place_shards_for_fit(X: da.Array, y: da.Array, sample_weight: da.Array | None) -> PlacedShards:
    """Persist and pin the shard blocks when they fit in the workers' memory, else leave them at the source.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        The sharded features, one row block per shard.
    y : dask.array.Array of shape (n_samples,)
        Targets with the row chunks of ``X``.
    sample_weight : dask.array.Array of shape (n_samples,) or None
        Weights with the row chunks of ``X``.

    Returns
    -------
    PlacedShards
        From :func:`~daskml_lab.ensemble._training.place_shards` (persisted, fits pinned to the holders of
        their blocks) or, when streaming, the lazy blocks with ``workers=None``: every fit task then reads its
        shard from the source where the scheduler runs it, and drops it when done.

    Raises
    ------
    ValueError
        If ``daskml_lab.ensemble.persist`` is not ``"auto"``, True or False; and, on a cluster whose workers
        have a ``memory_limit`` (dense ``X`` only), if a shard exceeds the free memory of every worker, or if
        persisting is forced for data that exceed the free memory of all of them.

    Notes
    -----
    ``"auto"`` streams when the dense size of ``X`` (and ``y``, ``sample_weight``) exceeds half of the
    workers' free memory: the part of their ``memory_limit`` below dask's ``distributed.worker.memory.spill``
    fraction that their processes do not use yet (the rule of the linear models' solvers); otherwise
    :func:`~daskml_lab.ensemble._training.place_shards` decides. ``True`` persists whatever the size, ``False``
    always streams.
    """
    persist = dask.config.get(CONFIG_KEY, "auto")
    if not (persist is True or persist is False or (isinstance(persist, str) and persist == "auto")):
        msg = f"dask.config key {CONFIG_KEY!r} must be 'auto', True or False, got {persist!r}."
        raise ValueError(msg)
    client = current_client()
    if client is None:
        return place_shards(X, y, sample_weight, client)
    dense = not sp.issparse(X._meta)
    workers = _problem._worker_memory(client)
    itemsize = np.dtype(X.dtype).itemsize
    nbytes = float(np.prod(X.shape)) * itemsize + float(X.shape[0]) * 8 * (1 + (sample_weight is not None))
    if dense and workers:
        _check_memory(X, nbytes, workers, persist_forced=persist is True)
    if persist is False or (
        persist == "auto"
        and dense
        and workers
        and nbytes > _problem._PERSIST_FRACTION * _problem._free_memory(workers, "spill")
    ):
        logger.info(
            "Not persisting the shards (%.2f GB dense; %s): each shard fit reads its block from the source.",
            nbytes / 1e9,
            "persist=False" if persist is False else "more than half of the workers' free memory",
        )
        sw_blocks = None if sample_weight is None else list(sample_weight.to_delayed().ravel())
        return PlacedShards(list(X.to_delayed().ravel()), list(y.to_delayed().ravel()), sw_blocks, None)
    if persist is True:
        collections = [X, y] if sample_weight is None else [X, y, sample_weight]
        # persist: forced by dask.config daskml_lab.ensemble.persist=True (data-sized, on the workers for the
        # duration of the fit); place_shards only references these blocks again and pins the fits to them
        with unique_fused_keys():
            persisted = client.persist(collections)
        X, y = persisted[0], persisted[1]
        sample_weight = persisted[2] if sample_weight is not None else None
    return place_shards(X, y, sample_weight, client)


def _check_memory(
    X: da.Array, nbytes: float, workers: list[tuple[float, float]], *, persist_forced: bool
) -> None:
    """Refuse, before computing, shards that no worker can hold and forced persisting beyond all of them."""
    if persist_forced:
        room = _problem._free_memory(workers, "terminate")
        if nbytes > room:
            msg = (
                f"dask.config {CONFIG_KEY}=True, but the data ({nbytes / 1e9:.2f} GB dense) exceed the free "
                f"memory of the {len(workers)} workers ({room / 1e9:.2f} GB below their memory_limit): "
                "persisting them would get the workers killed. Set it to 'auto' or False to let each shard "
                "fit read its block from the source, or add workers or memory."
            )
            raise ValueError(msg)
    rows = max(X.chunks[0], default=0)
    shard = float(rows) * X.shape[1] * np.dtype(X.dtype).itemsize
    room = max(_problem._free_memory([worker], "terminate") for worker in workers)
    if shard > room:
        n_shards = math.ceil(4 * float(np.prod(X.shape)) * np.dtype(X.dtype).itemsize / max(room, 1.0))
        msg = (
            f"The largest shard ({rows} rows, {shard / 1e6:.0f} MB dense) does not fit in the free memory of "
            f"any worker (at most {room / 1e6:.0f} MB below its memory_limit), and each shard model is trained "
            f"on its whole shard in one worker. Use more, smaller shards (e.g. n_shards={n_shards}, or "
            "n_shards=None with smaller row blocks), or workers with more memory."
        )
        raise ValueError(msg)
