"""Full-batch rounds over a partitioned store: blocks kept next to their scores, gradients reduce-scattered.

What the full-batch solvers over a parameter store (:func:`~daskml_lab.solvers.partitioned_lbfgs`,
:func:`~daskml_lab.solvers.partitioned_proximal`) share:

- :func:`run_over_store` persists the row blocks once, groups them by worker, creates the store with the
  solver's shard class, compacts each worker's blocks next to them (their columns present, CSR rows renumbered),
  runs the solver's iterations and ends with the parameters gathered or the store kept open; with a
  ``checkpoint`` it checks and restores the saved shards first (:mod:`~daskml_lab.solvers._shard_checkpoint`),
  and the solver saves its own client-side scalars through :meth:`StoreRounds.save`;
- :class:`StoreRounds` runs one task per worker, pinned to it: the **scores** ``X v`` of its blocks for a
  vector ``v`` of the shards (each block pulls only its keys; the scores stay on the worker as the task's
  result), the **losses** at scores ``z + t z_d`` (a trial of a line search: nothing pulled), and the
  **gradient** at such scores, whose rows each block adds to the shards holding its keys.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from daskml_lab._runtime.waiting import wait_briefly
from daskml_lab.monitoring import task_prefix
from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._partitioned_fit import (
    WATCH_S,
    FitReport,
    ShardsLostError,
    as_csr,
    class_parts,
    compact,
    gather_watched,
    loss_and_residual,
    lost_error,
    place_blocks,
    run_and_keep,
)
from daskml_lab.solvers._shard_checkpoint import (
    SavedStore,
    StoreCheckpoint,
    open_store_checkpoint,
    resume_store,
    store_data_digest,
    store_fingerprint,
)
from daskml_lab.solvers._sharded_store import ParameterShard, ShardedStore, StoreView
from daskml_lab.solvers.partitioned_sgd import PartitionedResult

__all__ = ["StoreRounds", "counted_traffic", "run_over_store"]


# ------------------------------------------------------------------------------------------- worker tasks
def _prepare_task(n_blocks: int, has_weight: bool, *blocks: Any) -> list[dict[str, Any]]:
    """This worker's blocks, each as its columns present, compacted CSR rows, labels and weights."""
    prepared = []
    for index in range(n_blocks):
        columns, X = compact(as_csr(blocks[index]))
        y = np.asarray(blocks[n_blocks + index]).astype(np.float64)
        weight = np.asarray(blocks[2 * n_blocks + index], dtype=np.float64) if has_weight else np.ones(len(y))
        prepared.append({"columns": columns, "X": X, "y": y, "weight": weight})
    return prepared


def _keys(block: dict[str, Any], n_features: int) -> np.ndarray:
    return np.append(block["columns"], n_features)


def _scores_task(
    view: StoreView, prepared: list[dict[str, Any]], method: str, config: dict[str, Any]
) -> list[np.ndarray]:
    """``X v + v_intercept`` of every block, pulling only each block's rows of ``v`` (``w`` or ``d``).

    One class part at a time: a block's keys are never held for all the classes at once.
    """
    scores = []
    for block in prepared:
        keys = _keys(block, config["n_features"])
        z = np.empty((block["X"].shape[0], view.n_outputs))
        for part in view.class_parts:
            rows = view.pull(keys, part=part, method=method)[0]
            intercept = rows[-1] if config["fit_intercept"] else 0.0
            z[:, view.rule.class_bounds(part)] = block["X"] @ rows[:-1] + intercept
        scores.append(z)
    return scores


def _line_task(
    prepared: list[dict[str, Any]],
    z_w: list[np.ndarray],
    z_d: list[np.ndarray] | None,
    step: float,
    loss: str,
) -> tuple[float, float, float]:
    """Weighted loss sum at scores ``z_w + step * z_d``, its derivative in ``step``, and the weight sum."""
    loss_sum = slope = weight_sum = 0.0
    for index, block in enumerate(prepared):
        z = z_w[index] if z_d is None else z_w[index] + step * z_d[index]
        value, residual = loss_and_residual(z, block["y"], block["weight"], loss)
        loss_sum += value
        if z_d is not None:
            slope += float(np.sum(residual * z_d[index]))
        weight_sum += float(block["weight"].sum())
    return loss_sum, slope, weight_sum


def _gradient_task(
    view: StoreView,
    prepared: list[dict[str, Any]],
    z_w: list[np.ndarray],
    z_d: list[np.ndarray] | None,
    step: float,
    config: dict[str, Any],
) -> list[np.ndarray]:
    """Add every block's gradient rows at ``z_w + step * z_d`` to the shards of its keys; return the scores."""
    scores, calls = [], []
    for index, block in enumerate(prepared):
        z = z_w[index] if z_d is None else z_w[index] + step * z_d[index]
        scores.append(z)
        _, residual = loss_and_residual(z, block["y"], block["weight"], config["loss"])
        keys = _keys(block, config["n_features"])
        for part in view.class_parts:  # one class part's rows at a time
            bounds = view.rule.class_bounds(part)
            intercept_row = residual[:, bounds].sum(axis=0, keepdims=True)
            if not config["fit_intercept"]:
                intercept_row[:] = 0.0
            rows = np.vstack([block["X"].T @ residual[:, bounds], intercept_row])
            calls.extend(view.add_rows(keys, rows, "add_gradient_rows", part=part))
    for call in calls:  # every row added before the task ends: the client then finishes the gradient
        call.result(view.timeout_s)
    return scores


def _combine_task(z: list[np.ndarray], other: list[np.ndarray], weight: float) -> list[np.ndarray]:
    """``(1 + weight) z - weight other``, block by block."""
    return [(1.0 + weight) * a - weight * b for a, b in zip(z, other, strict=True)]


class StoreRounds:
    """The client's side of a full-batch fit over a store: tasks pinned to the workers, calls to the shards.

    Parameters
    ----------
    client : distributed.Client
    store : ShardedStore
    groups : dict
        Worker address -> the indices of the row blocks it holds.
    prepared : dict
        Worker address -> the future of its compacted blocks.
    config : dict
        ``n_features``, ``fit_intercept``, ``loss``.
    solver : str
        The solver's name (in errors).

    Attributes
    ----------
    saver : StoreCheckpoint or None
        The run's checkpoint (None without one), set by :func:`run_over_store`.
    saved : SavedStore or None
        What the checkpoint held, its shards already restored into the store; None for a fresh start. The
        solver then sets its scalars from ``saved.state`` and recomputes the scores kept on the workers.
    """

    saver: StoreCheckpoint | None = None
    saved: SavedStore | None = None

    def __init__(
        self,
        client: Any,
        store: ShardedStore,
        groups: dict[str, list[int]],
        prepared: dict[str, Any],
        config: dict[str, Any],
        solver: str,
    ) -> None:
        self.client, self.store, self.groups, self.prepared = client, store, groups, prepared
        self.config, self.solver = config, solver
        self.token = uuid.uuid4().hex[:10]  # keys of this fit's tasks (a refit never finds an earlier result)
        self.n_tasks = 0

    def each_worker(self, name: str, function: Callable[..., Any], *args: Any, **per_worker: dict) -> list:
        """Submit ``function(*per-worker values, *args)`` on every worker of the fit, pinned to it."""
        calls = []
        for address in self.groups:
            self.n_tasks += 1
            calls.append(
                self.client.submit(
                    function,
                    *(values[address] for values in per_worker.values()),
                    *args,
                    workers=[address],
                    allow_other_workers=False,
                    pure=False,
                    key=f"{task_prefix(name)}-{self.token}-{self.n_tasks}",
                )
            )
        return calls

    def results(self, calls: list[Any]) -> list[Any]:
        """The (small) results of ``calls``; the lost-worker error as soon as a worker of the fit left."""
        return gather_watched(self.client, calls, self.store, self.groups, self.solver)

    def watch(self, calls: list[Any]) -> None:
        """Wait for ``calls`` whose results stay on the workers; the lost-worker error as soon as one left."""
        while True:
            wait_briefly(calls, WATCH_S)
            lost = lost_error(self.client, self.store, self.groups, self.solver)
            if lost is not None:
                self.client.cancel(calls)
                raise lost
            if all(call.done() for call in calls):
                break
        for call in calls:
            if call.status == "error":
                call.result()  # raises the task's own error

    def shard_calls(self, method: str, *args: Any) -> list[Any]:
        """``method(*args)`` on every shard (all at once); their answers, by shard."""
        calls = [getattr(shard, method)(*args) for shard in self.store.view.shards]
        return [call.result(self.store.view.timeout_s) for call in calls]

    def _views(self) -> dict[str, StoreView]:
        return dict.fromkeys(self.groups, self.store.view)

    def scores(self, method: str, *, wait_for: bool = True) -> dict[str, Any]:
        """Futures of every worker's block scores ``X v``, pulled through the shards' ``method``, left there.

        With ``wait_for=False`` the futures are returned at once: the next tasks depend on them, so the
        client saves a round trip, and a failure surfaces in those tasks.
        """
        calls = self.each_worker(
            "partitioned scores", _scores_task, method, self.config, view=self._views(), data=self.prepared
        )
        if wait_for:
            self.watch(calls)
        return dict(zip(self.groups, calls, strict=True))

    def losses(
        self, z: dict[str, Any], z_d: dict[str, Any] | None, step: float
    ) -> tuple[float, float, float]:
        """Summed loss, its slope in ``step`` and the weight, over the workers, at scores ``z + step * z_d``."""
        directions = z_d if z_d is not None else dict.fromkeys(self.groups)
        calls = self.each_worker(
            "partitioned losses",
            _line_task,
            step,
            self.config["loss"],
            data=self.prepared,
            z=z,
            z_d=directions,
        )
        answers = self.results(calls)  # gather: three floats per worker
        return tuple(float(sum(values)) for values in zip(*answers, strict=True))  # type: ignore[return-value]

    def push_gradient(
        self, z: dict[str, Any], z_d: dict[str, Any] | None, step: float, *, wait_for: bool = True
    ) -> dict[str, Any]:
        """Add the gradient rows at scores ``z + step * z_d`` to the shards; the futures of those scores.

        With ``wait_for=False`` the futures are returned at once; a task that depends on them (the losses at
        the same scores) then also tells that every row was added.
        """
        directions = z_d if z_d is not None else dict.fromkeys(self.groups)
        calls = self.each_worker(
            "partitioned gradient",
            _gradient_task,
            step,
            self.config,
            view=self._views(),
            data=self.prepared,
            z=z,
            z_d=directions,
        )
        if wait_for:
            self.watch(calls)  # every row added before the shards finish the gradient; the scores stay there
        return dict(zip(self.groups, calls, strict=True))

    def combine(self, z: dict[str, Any], z_other: dict[str, Any], weight: float) -> dict[str, Any]:
        """Futures of the scores ``(1 + weight) z - weight z_other`` (an extrapolated point's), on the workers."""
        calls = self.each_worker("partitioned scores", _combine_task, weight, z=z, other=z_other)
        return dict(zip(self.groups, calls, strict=True))

    def save(self, history: list[dict[str, Any]], **state: Any) -> None:
        """With a checkpoint, every ``every`` iterations: the shards (on their workers), ``history``, ``state``.

        ``state`` is the solver's client-side state between iterations (JSON scalars and lists).
        """
        if self.saver is not None:
            self.saver.save(self.store, self._layout(), len(history), history, **state)

    def complete(self, history: list[dict[str, Any]], **state: Any) -> None:
        """With a checkpoint: the final shards and ``state`` (with the stopping ``status``), marked complete."""
        if self.saver is not None:
            self.saver.complete(self.store, self._layout(), len(history), history, **state)

    def _layout(self) -> dict[str, Any]:
        return dataclasses.asdict(self.store.view.rule)


def run_over_store(
    X: Any,
    y: Any,
    sample_weight: Any,
    *,
    client: Any,
    solver: str,
    loss: str,
    n_outputs: int,
    fit_intercept: bool,
    l2: float,
    n_partitions: int | None,
    class_partitions: int | str,
    w0: np.ndarray | None,
    gather: bool,
    callback: Callable[..., Any] | None,
    shard_class: type[ParameterShard],
    shard_options: dict[str, Any],
    iterate: Callable[[Any, FitReport], PartitionedResult],
    rounds_class: type[StoreRounds] = StoreRounds,
    rounds_options: dict[str, Any] | None = None,
    checkpoint: SolverCheckpoint | None = None,
    options: Mapping[str, Any] | None = None,
) -> PartitionedResult:
    """Set up the blocks and the store, run ``iterate(rounds, report)``, gather or keep the parameters.

    ``shard_options`` go to ``shard_class`` (beyond :class:`ParameterShard`'s arguments), ``rounds_options``
    to ``rounds_class``; ``class_partitions`` is checked by :func:`class_parts` before the data are placed.

    With a ``checkpoint``, its fingerprint is the problem's factors and the solver's ``options`` (what else
    determines the solution); the data digest is taken from the placed blocks, and before the first
    iteration the saved shards are restored (``rounds.saved``, see :class:`StoreRounds`): ``iterate``
    restores its own scalars from it and saves them with ``rounds.save`` and ``rounds.complete``. A lost
    worker's error then says from which iteration a refit resumes.
    """
    n_class_parts = class_parts(solver, class_partitions, n_partitions, client, n_outputs)
    placed = place_blocks(
        client, X, y, sample_weight, solver=solver, loss=loss, n_outputs=n_outputs, gather=gather
    )
    workers, groups, block_futures = placed.workers, placed.groups, placed.block_futures
    has_weight, n_features = placed.has_weight, placed.n_features
    n_keys = n_features + 1
    config = {"n_features": n_features, "fit_intercept": bool(fit_intercept), "loss": loss}
    problem = {"loss": loss, "n_outputs": n_outputs, "fit_intercept": bool(fit_intercept), "l2": float(l2)}
    saver = open_store_checkpoint(
        checkpoint,
        solver,
        store_fingerprint(
            X, sample_weight, {**problem, "class_partitions": class_partitions, **(options or {})}
        ),
        lambda: digest,
        unit="iteration",
    )
    # the digest now, from the placed blocks: they are dropped once compacted
    digest = store_data_digest(client, groups, block_futures) if saver is not None else ""
    store = ShardedStore.create(
        client,
        n_keys,
        n_outputs,
        workers=workers,
        n_shards=n_partitions,
        n_penalised=n_features,
        l2=l2,
        initial=w0,
        key=task_prefix("parameter shard"),
        shard_class=shard_class,
        shard_options=shard_options,
        n_class_parts=n_class_parts,
    )
    try:
        prepared = {}
        for address, indices in groups.items():
            blocks = [block_futures[c][i] for c in range(len(block_futures)) for i in indices]
            prepared[address] = client.submit(
                _prepare_task,
                len(indices),
                has_weight,
                *blocks,
                workers=[address],
                allow_other_workers=False,
                pure=False,
                key=f"{task_prefix('partitioned blocks')}-{uuid.uuid4().hex[:10]}-{indices[0]}",
            )
        del placed, block_futures  # the compacted blocks replace them on the workers
        rounds = rounds_class(client, store, groups, prepared, config, solver, **(rounds_options or {}))
        info = {
            "solver": solver,
            "n_shards": store.n_shards,
            "n_keys": n_keys,
            "n_outputs": n_outputs,
            "n_class_parts": n_class_parts,
        }
        report = FitReport(store, callback, info)
        rounds.saver = saver
    except BaseException:
        store.close()
        raise

    def run() -> PartitionedResult:
        # a checkpoint of another problem, layout or data is refused here, before any iteration
        rounds.saved = resume_store(saver, store)
        return iterate(rounds, report)

    try:
        return run_and_keep(client, store, groups, solver, gather, run)
    except ShardsLostError as err:
        if saver is None:
            raise
        msg = f"{err} {saver.resume_advice()}"
        raise ShardsLostError(msg) from err


def counted_traffic(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, int]:
    """The keys and bytes moved between two readings of the shards' counters (all shards)."""
    names = ("keys_pulled", "bytes_pulled", "bytes_pushed", "n_pushes")
    return {name: int(sum(s[name] for s in after) - sum(s[name] for s in before)) for name in names}
