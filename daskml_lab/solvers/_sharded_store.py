"""A partitioned parameter store: the model's rows split over parameter shards, each a Dask actor on a worker.

The store holds ``n_keys`` rows of ``n_outputs`` float64 values (for a linear model: one row per feature, then
the intercept row). Key ``k`` lives on shard ``k % n_shards`` at slot ``k // n_shards`` (:class:`ShardRule`):
modulo (strided) partitioning, which balances the shards whatever the order of the features, and keeps the
value of a key independent of the number of shards. A model of many classes may split its classes into
ranges too (``n_class_parts``): a shard then holds its keys' values for one range of classes, and workers pull
and push one class part at a time, so that none holds a mini-batch's keys for all the classes at once. Each
shard is a :class:`ParameterShard` created with
``client.submit(ParameterShard, ..., actor=True, workers=[address])``; the calls are Dask actor calls, the
package opens no connection of its own.

A worker (or the client) reads rows with :meth:`StoreView.pull` and sends gradients with
:meth:`StoreView.push`; each shard applies its own step rule per coordinate (plain SGD or AdaGrad, with the L2
penalty applied lazily, see :class:`ParameterShard`; or FTRL-proximal with L1 and L2, see :class:`FTRLShard`).
Shards count the keys and bytes pulled and pushed, and keep a clock for bounded staleness.
:meth:`ShardedStore.gather` brings the whole model to the client only when it is small (``max_gather_bytes``,
dask config ``daskml_lab.solvers.store.max_gather_bytes``, default 256 MiB).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import dask
import numpy as np

from daskml_lab._runtime.client import cluster_timeout_s
from daskml_lab.solvers._parameter_shard import ADAGRAD_EPS, FTRLShard, ParameterShard
from daskml_lab.solvers._shard_placement import actors_held, check_shard_room, created_watched
from daskml_lab.solvers._store_view import ShardRule, StoreView

logger = logging.getLogger(__name__)

__all__ = [
    "ADAGRAD_EPS",
    "STEP_RULES",
    "FTRLShard",
    "ParameterShard",
    "ShardRule",
    "ShardedStore",
    "StoreView",
    "max_gather_bytes",
]

#: Per-coordinate step rules a shard applies to pushed gradients.
STEP_RULES = ("sgd", "adagrad", "ftrl")
#: Default of ``daskml_lab.solvers.store.max_gather_bytes``: the largest model brought whole to the client.
DEFAULT_MAX_GATHER_BYTES = 256 * 2**20


def max_gather_bytes() -> int:
    """The configured size (bytes) above which :meth:`ShardedStore.gather` refuses to gather the model."""
    return int(dask.config.get("daskml_lab.solvers.store.max_gather_bytes", DEFAULT_MAX_GATHER_BYTES))


class ShardedStore:
    """The client's handle of a partitioned parameter store (create with :meth:`create`, end with :meth:`close`).

    Attributes
    ----------
    view : StoreView
        What tasks need to pull and push.
    workers : list of str
        The worker address of each shard.
    closed : bool
        Whether :meth:`close` released the shards.
    """

    def __init__(self, client: Any, view: StoreView, futures: list[Any], workers: list[str]) -> None:
        self.client, self.view, self._futures, self.workers = client, view, futures, workers
        self.closed = False

    @classmethod
    def create(
        cls,
        client: Any,
        n_keys: int,
        n_outputs: int,
        *,
        workers: list[str],
        n_shards: int | None = None,
        n_penalised: int | None = None,
        step_rule: str = "adagrad",
        learning_rate: float = 0.1,
        l2: float = 0.0,
        initial: np.ndarray | StoreView | None = None,
        key: str = "daskml-parameter-shard",
        shard_class: type[ParameterShard] | None = None,
        shard_options: dict[str, Any] | None = None,
        n_class_parts: int = 1,
    ) -> ShardedStore:
        """Create the shards: shard ``s`` on ``workers[s % len(workers)]`` (one per worker by default).

        Parameters
        ----------
        client : distributed.Client
        n_keys, n_outputs : int
            Shape of the model, ``(n_keys, n_outputs)``.
        workers : list of str
            Worker addresses, at least one.
        n_shards : int, default=None
            Number of shards (``len(workers)`` when None). More shards than workers put several on a worker.
        n_penalised : int, default=None
            Keys ``< n_penalised`` carry the L2 penalty (all when None).
        step_rule, learning_rate, l2 :
            See :class:`ParameterShard`.
        initial : ndarray of shape (n_keys, n_outputs) or StoreView, default=None
            Starting values: an array (small models only: it comes from the client), or the view of another
            store of the same shape (a warm start from a partitioned model: each new shard copies its keys'
            rows from the old shards, on its own worker, in slices; nothing passes through the client); zeros
            when None, allocated on the shards' workers.
        key : str
            Prefix of the actors' keys (a token unique to this store follows it).
        shard_class : type, default=None
            The actor class: :class:`ParameterShard` or a subclass taking its arguments (a solver's own state
            next to the values, e.g. the partitioned L-BFGS's vectors). :class:`ParameterShard` when None.
        shard_options : dict, default=None
            Keyword arguments of ``shard_class`` beyond :class:`ParameterShard`'s.
        n_class_parts : int, default=1
            Split the outputs (classes) into this many ranges too (:class:`ShardRule`): each shard holds
            ``n_keys / (n_shards / n_class_parts)`` keys of ``n_outputs / n_class_parts`` outputs. ``n_shards``
            must be a multiple of it.

        Returns
        -------
        ShardedStore

        Raises
        ------
        MemoryError
            Before anything is created, when a worker has less memory free (below its ``terminate`` fraction)
            than the values of its shards (:func:`~daskml_lab.solvers._shard_placement.check_shard_room`).
        RuntimeError
            When a shard's worker leaves the cluster before its shard exists (a worker killed above its memory
            limit, most often), instead of waiting for it for ever.
        """
        if step_rule not in STEP_RULES:
            msg = f"step_rule must be one of {STEP_RULES}, got {step_rule!r}."
            raise ValueError(msg)
        if not workers:
            msg = "A parameter store needs at least one worker; the cluster has none. Start workers first."
            raise ValueError(msg)
        n_shards = len(workers) if n_shards is None else int(n_shards)
        rule = ShardRule(int(n_keys), n_shards, int(n_outputs), int(n_class_parts))
        n_penalised = n_keys if n_penalised is None else n_penalised
        placed = [workers[s % len(workers)] for s in range(n_shards)]
        actor_class = shard_class or (FTRLShard if step_rule == "ftrl" else ParameterShard)
        planned = [
            actor_class.planned_nbytes(
                rule.size(s), rule.width(s), step_rule, float(l2), **(shard_options or {})
            )
            for s in range(n_shards)
        ]
        check_shard_room(client, planned, placed)
        token = uuid.uuid4().hex[:10]  # every store's actors have keys of their own
        futures = []
        penalised = ShardRule(int(n_penalised), n_shards, int(n_outputs), int(n_class_parts))
        source = initial if isinstance(initial, StoreView) else None
        if source is not None and (source.rule.n_keys, source.n_outputs) != (int(n_keys), int(n_outputs)):
            msg = (
                f"The store to start from has {source.rule.n_keys} keys x {source.n_outputs} outputs, but the new "
                f"one needs {n_keys} x {n_outputs}."
            )
            raise ValueError(msg)
        for shard, address in enumerate(placed):
            # sizes by arithmetic: no array of the shard's keys on the client (the model may be wide)
            start = None
            if initial is not None and source is None:
                start = np.asarray(initial, dtype=np.float64)[rule.keys_of(shard), rule.columns(shard)]
            futures.append(
                client.submit(
                    actor_class,
                    rule.size(shard),
                    rule.width(shard),
                    penalised.size(shard),
                    step_rule,
                    learning_rate,
                    l2,
                    start,
                    **(shard_options or {}),
                    workers=[address],
                    allow_other_workers=False,
                    actor=True,
                    pure=False,
                    key=f"{key}-{token}-{shard}",
                )
            )
        shards = created_watched(client, futures, placed, max(planned))
        view = StoreView(shards, rule, int(n_outputs), cluster_timeout_s())
        store = cls(client, view, futures, placed)
        if source is not None:
            try:
                copies = [
                    client.submit(
                        _copy_rows_task,
                        source,
                        view,
                        shard,
                        workers=[address],
                        allow_other_workers=False,
                        pure=False,
                    )
                    for shard, address in enumerate(placed)
                ]
                client.gather(copies)  # gather: None from each
            except BaseException:
                store.close()
                raise
        return store

    @property
    def n_shards(self) -> int:
        """Number of parameter shards."""
        return self.view.rule.n_shards

    @property
    def nbytes(self) -> int:
        """Size of the whole model in bytes (float64)."""
        return self.view.rule.n_keys * self.view.n_outputs * 8

    def pull(self, keys: np.ndarray) -> np.ndarray:
        """Rows of ``keys`` (see :meth:`StoreView.pull`)."""
        return self.view.pull(keys)[0]

    def push(self, keys: np.ndarray, grads: np.ndarray) -> list[int]:
        """Apply one step with gradient rows ``grads`` of unique ``keys`` (see :meth:`StoreView.push`)."""
        return self.view.push(keys, grads)

    def stats(self) -> list[dict[str, Any]]:
        """Each shard's counters: keys and bytes pulled and pushed, gathers, clock, staleness, keys held."""
        return self.view.stats()

    def sq_norm(self) -> float:
        """``||w||^2`` of the penalised keys, summed over the shards (one float from each)."""
        calls = [shard.sq_norm() for shard in self.view.shards]
        return float(sum(call.result(self.view.timeout_s) for call in calls))

    def abs_norm(self) -> float:
        """``||w||_1`` of the penalised keys, summed over the shards (one float from each)."""
        calls = [shard.abs_norm() for shard in self.view.shards]
        return float(sum(call.result(self.view.timeout_s) for call in calls))

    def gather(self, limit_bytes: int | None = None) -> np.ndarray:
        """The whole model on the client, shape ``(n_keys, n_outputs)``, if it is at most ``limit_bytes``.

        Raises
        ------
        ValueError
            When the model is larger than ``limit_bytes`` (default: :func:`max_gather_bytes`).
        """
        limit = max_gather_bytes() if limit_bytes is None else int(limit_bytes)
        if self.nbytes > limit:
            msg = (
                f"The model has {self.nbytes} bytes, more than the {limit} bytes a gather to the client may "
                "bring (dask config daskml_lab.solvers.store.max_gather_bytes). Keep it partitioned, or raise "
                "the limit if the client has the memory."
            )
            raise ValueError(msg)
        out = np.empty((self.view.rule.n_keys, self.view.n_outputs), dtype=np.float64)
        calls = [shard.gather() for shard in self.view.shards]
        for shard, call in enumerate(calls):
            out[self.view.rule.keys_of(shard), self.view.rule.columns(shard)] = call.result(
                self.view.timeout_s
            )
        return out

    def lost_shards(self) -> list[int]:
        """The shards whose actor is no longer available (its worker died or left), as Dask reports them."""
        return [shard for shard, future in enumerate(self._futures) if future.status != "finished"]

    def start_round(self, workers: list[int], learning_rate: float | None = None) -> None:
        """Tell every shard which workers run in the next round (for the staleness bound), and its base rate."""
        for call in [shard.start_round(workers, learning_rate) for shard in self.view.shards]:
            call.result(self.view.timeout_s)

    def finish_average(self) -> None:
        """End the round with every shard's rows at their average over it (shards that keep one)."""
        for call in [shard.finish_average() for shard in self.view.shards]:
            call.result(self.view.timeout_s)

    def close(self, wait: bool = False) -> None:
        """Release the shards (their memory on the workers).

        Parameters
        ----------
        wait : bool, default=False
            Return only once no worker holds a shard any more (at most ``cluster_timeout_s``), so that their
            memory is free for what comes next.
        """
        keys = [future.key for future in self._futures]
        self.client.cancel(self._futures)
        self._futures = []
        self.closed = True
        deadline = time.monotonic() + cluster_timeout_s()
        while wait and keys and time.monotonic() < deadline:
            held = self.client.run(actors_held, keys, on_error="ignore")
            if not any(isinstance(n, int) and n for n in held.values()):
                return
            time.sleep(0.05)

    def __enter__(self) -> ShardedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Values copied per slice when a store is seeded from another one (bounds the copy's memory on a worker).
COPY_SLICE_VALUES = 2**21


def _copy_rows_task(source: StoreView, target: StoreView, shard: int) -> None:
    """Copy the rows of ``target``'s shard ``shard`` from the store ``source`` (runs on that shard's worker)."""
    rule = target.rule
    keys = rule.keys_of(shard)
    step = max(1, COPY_SLICE_VALUES // max(source.n_outputs, 1))
    for start in range(0, len(keys), step):
        rows = source.pull(keys[start : start + step])[0][:, rule.columns(shard)]
        slots = np.arange(start, start + len(rows), dtype=np.int64)
        target.shards[shard].load_rows(slots, rows).result(target.timeout_s)
