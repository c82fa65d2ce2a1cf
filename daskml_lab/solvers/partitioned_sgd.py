"""Mini-batch SGD over a partitioned parameter store: each step moves only the keys its rows touch.

The row blocks are persisted once and grouped by the worker holding them. Every epoch runs one task per
worker (pinned to it): for each mini-batch of its rows, the task finds the columns present
(``np.unique`` of the CSR indices), pulls those keys (plus the intercept) from their shards, computes the
gradient of the batch's loss on them, and pushes the gradient rows back; the shards apply the step rule and
the L2 penalty (:mod:`daskml_lab.solvers._sharded_store`). Pushes are not awaited before the next pull (one
step in flight per worker); a worker more than ``max_staleness`` steps ahead of the slowest running worker
waits for it (bounded staleness, Li et al. 2014). After each epoch one more task per worker evaluates the
exact objective, again pulling only the keys of each block, and the shards return ``||w||^2``; with
``objective="progressive"`` the epoch tasks' own mini-batch losses stand for it instead (no extra pass).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from daskml_lab._runtime.seeding import block_rng, root_entropy
from daskml_lab.monitoring import task_prefix
from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._local_steps import (
    finish_epoch,
    local_rows,
    local_sgd_epoch_task,
    wait_within_bound,
)
from daskml_lab.solvers._options import check_int, check_non_negative, check_positive
from daskml_lab.solvers._partitioned_fit import (
    FitReport,
    ShardsLostError,
    class_parts,
    compact,
    gather_watched,
    in_fit_span,
    loss_and_residual,
    place_blocks,
    run_and_keep,
)
from daskml_lab.solvers._result import warn_not_converged
from daskml_lab.solvers._shard_checkpoint import (
    StoreCheckpoint,
    holding_checkpoint,
    open_store_checkpoint,
    resume_store,
    store_data_digest,
    store_fingerprint,
)
from daskml_lab.solvers._sharded_store import STEP_RULES, ShardedStore, StoreView

logger = logging.getLogger(__name__)

__all__ = ["PartitionedResult", "partitioned_sgd"]

_SOLVER = "partitioned sgd"
#: Stream constant of the row order (block_rng(entropy, _STREAM, epoch, first block index)).
_STREAM = 0x5D
#: What an epoch's objective measures: the exact value after the epoch, or the progressive estimate during it.
OBJECTIVES = ("exact", "progressive")


@dataclass
class PartitionedResult:
    """What :func:`partitioned_sgd` returns.

    Attributes
    ----------
    W : ndarray of shape (n_features + fit_intercept, n_outputs) or None
        The gathered parameters (feature rows, then the intercept row), or None when not gathered.
    store : ShardedStore or None
        The open store when the parameters were not gathered (the caller closes it), else None.
    n_iter : int
        Epochs run.
    converged : bool
        Whether the relative change of the objective fell below ``tol`` before ``max_iter``.
    history : list of dict
        One record per epoch: ``iteration``, ``objective``, ``grad_norm`` (None: not computed), ``step_size``,
        ``time_s``, ``epoch_s`` (the SGD pass alone), ``n_steps``, ``keys_pulled``, ``bytes_pulled``,
        ``bytes_pushed``, ``n_pushes`` (over the epoch's SGD steps, all shards; the objective's pulls are not
        counted), ``staleness_max`` (so far).
    shard_stats : list of dict
        Each shard's counters at the end (see ``ParameterShard.stats``).
    message : str
        Why the solver stopped.
    """

    W: np.ndarray | None
    store: ShardedStore | None
    n_iter: int
    converged: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    shard_stats: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


# ---------------------------------------------------------------------------------------------------- kernels
def _pulled_scores(
    view: StoreView, keys: np.ndarray, X: sp.csr_matrix, fit_intercept: bool
) -> tuple[np.ndarray, list[int]]:
    """Scores ``X @ W[keys]`` (the last key the intercept's) and the clock of every shard asked.

    ``X``'s columns are the feature keys' (compacted). One class part at a time, so that a worker never holds
    the keys' rows for all the classes of a model whose classes are split over the shards.
    """
    scores = np.empty((X.shape[0], view.n_outputs))
    clocks = [0] * len(view.shards)
    for part in view.class_parts:
        values, part_clocks, _ = view.pull(keys, part=part)
        if not fit_intercept:
            values[-1] = 0.0
        scores[:, view.rule.class_bounds(part)] = X @ values[:-1] + values[-1]
        clocks = [max(a, b) for a, b in zip(clocks, part_clocks, strict=True)]
    return scores, clocks


def _keys_of(columns: np.ndarray, intercept_key: int) -> np.ndarray:
    return np.append(columns, intercept_key)


def _sgd_epoch_task(
    view: StoreView,
    worker: int,
    rng_key: tuple[int, ...],
    config: dict[str, Any],
    n_blocks: int,
    has_weight: bool,
    *blocks: Any,
) -> dict[str, Any]:
    """One epoch of mini-batch steps on this worker's rows (the body of a ``daskml-partitioned-sgd`` task)."""
    X, y, weight = local_rows(blocks, n_blocks, has_weight)
    n_features, batch_size = config["n_features"], config["batch_size"]
    fit_intercept, scale = config["fit_intercept"], config["gradient_scale"]
    order = block_rng(*rng_key).permutation(X.shape[0])
    in_flight: list[Any] = []
    keys_pulled = n_steps = 0
    waited_s = slowest = loss_sum = 0.0
    for start in range(0, len(order), batch_size):
        rows = np.sort(order[start : start + batch_size])
        columns, X_batch = compact(X[rows])
        keys = _keys_of(columns, n_features)
        if in_flight and config["max_staleness"] == 0:
            # lockstep: this worker's previous step applied on every shard before its next pull (otherwise a
            # pull may overtake the previous push at a remote shard: one step of staleness)
            slowest = min(call.result(view.timeout_s)[1] for call in in_flight)
            in_flight = []
        slowest, waited = wait_within_bound(view, n_steps, slowest, config["max_staleness"])
        waited_s += waited
        scores, clocks = _pulled_scores(view, keys, X_batch, fit_intercept)
        batch_loss, residual = loss_and_residual(scores, y[rows], weight[rows], config["loss"])
        loss_sum += batch_loss  # with the parameters the step starts from: progressive validation
        # unbiased for the data term: (n_rows_total / batch rows) * data_scale * sum_batch s_i grad_i
        residual *= scale / len(rows)
        if in_flight:  # at most one step in flight: the previous push must have been applied
            slowest = min(call.result(view.timeout_s)[1] for call in in_flight)
        n_steps += 1
        in_flight = []
        for part in view.class_parts:  # every shard gets this step's push once
            part_residual = residual[:, view.rule.class_bounds(part)]
            grads = np.vstack([X_batch.T @ part_residual, part_residual.sum(axis=0, keepdims=True)])
            if not fit_intercept:
                grads[-1] = 0.0
            in_flight.extend(view.push_async(keys, grads, clocks, worker, n_steps, part=part))
        keys_pulled += len(keys)
    return finish_epoch(
        view,
        worker,
        in_flight,
        n_steps=n_steps,
        keys_pulled=keys_pulled,
        waited_s=waited_s,
        loss_sum=loss_sum,
    )


def _objective_task(
    view: StoreView, config: dict[str, Any], n_blocks: int, has_weight: bool, *blocks: Any
) -> float:
    """Weighted loss sum over this worker's blocks, pulling only each block's keys."""
    total = 0.0
    for index in range(n_blocks):
        sub = (blocks[index], blocks[n_blocks + index])
        if has_weight:
            sub = (*sub, blocks[2 * n_blocks + index])
        X, y, weight = local_rows(sub, 1, has_weight)
        columns, X_local = compact(X)
        scores, _ = _pulled_scores(
            view, _keys_of(columns, config["n_features"]), X_local, config["fit_intercept"]
        )
        total += loss_and_residual(scores, y, weight, config["loss"])[0]
    return total


# ----------------------------------------------------------------------------------------------------- solver
def _check_options(
    n_partitions: int | None,
    step_rule: str,
    learning_rate: float,
    batch_size: int,
    max_staleness: int | None,
    local_steps: int,
    objective: str,
    average: bool,
) -> None:
    check_int(_SOLVER, "n_partitions", n_partitions, allow_none=True)
    if average and step_rule != "adagrad":
        msg = (
            f"{_SOLVER}: average=True keeps the average of the iterates with the 'adagrad' step rule only, got "
            f"step_rule={step_rule!r}. Use step_rule='adagrad', or average=False."
        )
        raise ValueError(msg)
    if objective not in OBJECTIVES:
        msg = f"{_SOLVER}: objective must be one of {list(OBJECTIVES)}, got {objective!r}."
        raise ValueError(msg)
    if step_rule not in STEP_RULES:
        msg = f"{_SOLVER}: step_rule must be one of {list(STEP_RULES)}, got {step_rule!r}."
        raise ValueError(msg)
    check_positive(_SOLVER, "learning_rate", learning_rate)
    check_int(_SOLVER, "batch_size", batch_size)
    check_int(_SOLVER, "max_staleness", max_staleness, minimum=0, allow_none=True)
    check_int(_SOLVER, "local_steps", local_steps)
    if local_steps > 1 and step_rule == "ftrl":
        msg = (
            f"{_SOLVER}: local_steps={local_steps} takes the steps on the workers' copies of the rows with the "
            "'sgd' or 'adagrad' rule; FTRL-proximal's closed form lives in the shards. Use local_steps=1 with "
            "step_rule='ftrl', or another step_rule."
        )
        raise ValueError(msg)


def _shard_options(step_rule: str, l1: float, beta: float, average: bool) -> dict[str, Any] | None:
    """The shards' own keywords: FTRL-proximal's penalties, or the average of the iterates."""
    if step_rule == "ftrl":
        return {"l1": float(l1), "beta": float(beta)}
    return {"average": True} if average else None


def _check_local_class_parts(local_steps: int, n_class_parts: int) -> None:
    if local_steps > 1 and n_class_parts > 1:
        msg = (
            f"{_SOLVER}: local_steps={local_steps} keeps a copy of whole rows (all the classes) on a worker, but "
            f"the classes are split into {n_class_parts} class parts to keep them apart. Use local_steps=1, or "
            "class_partitions=1."
        )
        raise ValueError(msg)


@in_fit_span(_SOLVER)
@holding_checkpoint
def partitioned_sgd(
    X: Any,
    y: Any,
    sample_weight: Any,
    *,
    client: Any,
    loss: str,
    n_outputs: int,
    fit_intercept: bool,
    data_scale: float,
    l2: float,
    n_partitions: int | None = None,
    w0: np.ndarray | None = None,
    tol: float = 1e-4,
    max_iter: int = 20,
    random_state: Any = None,
    callback: Callable[..., Any] | None = None,
    step_rule: str = "adagrad",
    learning_rate: float = 1.0,
    rate_decay: float | None = None,
    batch_size: int = 512,
    max_staleness: int | None = 8,
    l1: float = 0.0,
    beta: float = 1.0,
    class_partitions: int | str = "auto",
    local_steps: int = 1,
    objective: str = "exact",
    average: bool = False,
    gather: bool = True,
    checkpoint: SolverCheckpoint | None = None,
) -> PartitionedResult:
    """Minimise ``data_scale * sum_i s_i loss_i + l1 ||w||_1 + l2 / 2 ||w||^2`` by SGD over a partitioned store.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features)
        Row blocks (``scipy.sparse`` CSR, or dense, which are converted per block), one column chunk.
    y : dask array of shape (n_samples,)
        ``0``/``1`` for ``loss="logistic"``, class codes ``0 .. n_outputs - 1`` for ``"multinomial"``, the
        target for ``"squared"`` (least squares, ``n_outputs=1``).
    sample_weight : dask array of shape (n_samples,) or None
        ``s_i`` (ones when None).
    client : distributed.Client
        The cluster the shards and the tasks run on.
    loss : {"logistic", "multinomial", "squared"}
    n_outputs : int
        1 for ``"logistic"``, the number of classes for ``"multinomial"``.
    fit_intercept : bool
        Whether to fit an (unpenalised) intercept row.
    data_scale, l2 : float
        The objective's factors.
    n_partitions : int, default=None
        Number of parameter shards (one per worker when None).
    w0 : ndarray of shape (n_features + 1, n_outputs), default=None
        Starting parameters (zeros, allocated on the shards, when None).
    tol : float, default=1e-4
        Stop when the objective changes by less than ``tol * max(1, |objective|)`` over an epoch.
    max_iter : int, default=20
        Epochs.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the order of the rows in each epoch (combined with the epoch and the worker's position).
    callback : callable, default=None
        Called with each epoch's history record.
    step_rule : {"adagrad", "sgd", "ftrl"}, default="adagrad"
        The shards' per-coordinate rule: plain SGD and AdaGrad (``ParameterShard``, L2 only), or
        FTRL-proximal (``FTRLShard``, L1 and L2: the model's zeros are exact).
    learning_rate : float, default=1.0
        Base rate ``eta`` (FTRL-proximal's ``alpha``).
    rate_decay : float, default=None
        The base rate of epoch ``e`` (from 0) is ``learning_rate / (1 + rate_decay * e)``, on top of the step
        rule's own per-coordinate decay; larger values lower the noise of the last epochs. None: 0.5, and 0
        for ``"ftrl"`` (whose closed form divides by the rate: a decaying rate would move every coordinate).
    batch_size : int, default=512
        Rows per step.
    max_staleness : int or None, default=8
        Bound on how many steps a worker may run ahead of the slowest running worker (None: no bound; 0: the
        workers' steps in lockstep).
    l1 : float, default=0.0
        L1 strength; ``step_rule="ftrl"`` only.
    beta : float, default=1.0
        FTRL-proximal's ``beta``; ``step_rule="ftrl"`` only.
    class_partitions : int or "auto", default="auto"
        Split the classes over the shards too: the shards form a grid of ``n_partitions / class_partitions``
        key parts by ``class_partitions`` ranges of classes, and each step pulls and pushes one range at a
        time, so that a worker never holds a mini-batch's keys for all the classes. ``"auto"``: one range per
        shard from 256 classes on, else 1. Must divide the number of shards.
    local_steps : int, default=1
        Mini-batch steps a worker takes per pull and push: with ``k > 1`` it pulls the keys of its next ``k``
        mini-batches at once (with their AdaGrad sums), takes the ``k`` steps on its own copy with the shards'
        rule, and pushes the change once (:mod:`~daskml_lab.solvers._local_steps`): ``k`` times fewer round
        trips, and the other workers' steps up to ``k + max_staleness`` old. With one worker the result is
        that of ``k`` separate steps. Not with ``step_rule="ftrl"`` or split classes.
    objective : {"exact", "progressive"}, default="exact"
        What each epoch's ``objective`` (and so ``tol``) measures. ``"exact"``: the objective at the epoch's
        end, one more task per worker after the epoch (a pass over its rows pulling each block's keys).
        ``"progressive"``: no such pass; each mini-batch's loss is taken with the parameters its step starts
        from, before the step (progressive validation, what scikit-learn's ``SGDClassifier`` sums for its
        ``tol``), summed over the epoch, plus the penalty at its end. It averages over the epoch's path, so it
        lies above the exact value while the fit still moves. It saves the pass (1.5 s of a 3-epoch fit of 8 s
        at 1,000,000 rows, :doc:`/model_partitioning`).
    average : bool, default=False
        Each epoch's model is the average of its iterates (a tail average, Polyak and Juditsky 1992) instead
        of its last iterate: the shards keep the running sum beside the rows (one more float per coefficient)
        and swap the average in at the epoch's end, for the objective, the checkpoint and the fitted model;
        the next epoch continues from the last iterate. It smooths the noise of asynchronous steps. With
        ``step_rule="adagrad"`` only.
    gather : bool, default=True
        Bring the parameters to the client at the end (refused above ``max_gather_bytes``); False keeps
        them in the store, returned open.
    checkpoint : SolverCheckpoint, default=None
        Save every shard's state (each to its own file, written on its worker; the directory must be
        reachable by the workers) and the history every ``checkpoint.every`` epochs and at the end. A run
        given the checkpoint of the same problem, settings, shards and data resumes at the next epoch (the
        epochs' row orders unchanged), or returns at once when that run had completed; any other checkpoint
        is refused with a :class:`~daskml_lab.solvers.CheckpointError` before an epoch runs (see
        :doc:`/checkpoints`).

    Returns
    -------
    PartitionedResult
    """
    _check_options(
        n_partitions, step_rule, learning_rate, batch_size, max_staleness, local_steps, objective, average
    )
    if rate_decay is None:
        rate_decay = 0.0 if step_rule == "ftrl" else 0.5
    check_non_negative(_SOLVER, "rate_decay", rate_decay)
    check_non_negative(_SOLVER, "l1", l1)
    check_positive(_SOLVER, "beta", beta)
    if l1 > 0 and step_rule != "ftrl":
        msg = (
            f"{_SOLVER}: an L1 penalty (l1={l1:g}) needs step_rule='ftrl' (FTRL-proximal, whose zeros are "
            f"exact); step_rule={step_rule!r} applies an L2 penalty only."
        )
        raise ValueError(msg)
    n_class_parts = class_parts(_SOLVER, class_partitions, n_partitions, client, n_outputs)
    _check_local_class_parts(local_steps, n_class_parts)
    placed = place_blocks(
        client, X, y, sample_weight, solver=_SOLVER, loss=loss, n_outputs=n_outputs, gather=gather
    )
    workers, groups, block_futures = placed.workers, placed.groups, placed.block_futures
    has_weight, n_features = placed.has_weight, placed.n_features
    n_keys = n_features + 1
    n_rows = int(X.shape[0])
    config = {
        "n_features": n_features,
        "batch_size": int(batch_size),
        "fit_intercept": bool(fit_intercept),
        "gradient_scale": float(data_scale) * n_rows,
        "max_staleness": max_staleness,
        "loss": loss,
        "data_scale": float(data_scale),
        "l2": float(l2),
        "l1": float(l1),
        "learning_rate": float(learning_rate),
        "rate_decay": float(rate_decay),
        "local_steps": int(local_steps),
        "objective": objective,
        "average": bool(average),
    }
    if n_partitions is not None and n_partitions > len(workers):
        logger.info(
            "%s: %d parameter shards on %d workers: some workers hold several",
            _SOLVER,
            n_partitions,
            len(workers),
        )
    saver = open_store_checkpoint(
        checkpoint,
        _SOLVER,
        store_fingerprint(
            X,
            sample_weight,
            {
                **config,
                "n_outputs": n_outputs,
                "tol": tol,
                "max_iter": max_iter,
                "random_state": random_state,
                "step_rule": step_rule,
                "beta": beta,
                "class_partitions": class_partitions,
            },
        ),
        lambda: store_data_digest(client, groups, block_futures),
    )
    entropy = root_entropy(random_state)
    store = ShardedStore.create(
        client,
        n_keys,
        n_outputs,
        workers=workers,
        n_shards=n_partitions,
        n_penalised=n_features,
        step_rule=step_rule,
        learning_rate=learning_rate,
        l2=l2,
        initial=w0,
        key=task_prefix("parameter shard"),
        shard_options=_shard_options(step_rule, l1, beta, average),
        n_class_parts=n_class_parts,
    )
    info = {
        "solver": _SOLVER,
        "n_shards": store.n_shards,
        "n_keys": n_keys,
        "n_outputs": n_outputs,
        "n_class_parts": n_class_parts,
    }
    report = FitReport(store, callback, info)
    try:
        return run_and_keep(
            client,
            store,
            groups,
            _SOLVER,
            gather,
            lambda: _run_epochs(
                client,
                store,
                groups,
                block_futures,
                has_weight,
                config,
                entropy,
                tol,
                max_iter,
                report,
                saver,
            ),
        )
    except ShardsLostError as err:
        if saver is None:
            raise
        msg = f"{err} {saver.resume_advice()}"
        raise ShardsLostError(msg) from err


def _run_epochs(
    client: Any,
    store: ShardedStore,
    groups: dict[str, list[int]],
    block_futures: list[list[Any]],
    has_weight: bool,
    config: dict[str, Any],
    entropy: int,
    tol: float,
    max_iter: int,
    report: FitReport,
    saver: StoreCheckpoint | None = None,
) -> PartitionedResult:
    """The epochs: SGD tasks on every worker, then the objective; stop on a small relative change.

    With a checkpoint: the saved shards are restored first and the epochs continue after the saved one (a
    completed run returns at once); the shards are saved every ``every`` epochs and at the end.
    """
    started = time.perf_counter()
    history: list[dict[str, Any]] = []
    previous = np.inf
    converged = False
    layout = dataclasses.asdict(store.view.rule)
    saved = resume_store(saver, store)
    if saved is not None:
        history, entropy = saved.history, int(saved.state["entropy"])
        previous = history[-1]["objective"] if history else np.inf
        # interrupted after the epoch that converged: nothing is left to run
        before_last = history[-2]["objective"] if len(history) > 1 else np.inf
        converged = abs(before_last - previous) <= tol * max(1.0, abs(previous))
        if saved.complete:
            if saved.state.get("warning"):
                warn_not_converged(_SOLVER, str(saved.state["warning"]))
            return PartitionedResult(
                None,
                None,
                len(history),
                bool(saved.state["converged"]),
                history,
                message=saved.state["message"],
            )
    positions = list(range(len(groups)))
    counted = ("keys_pulled", "bytes_pulled", "bytes_pushed", "n_pushes")
    # keys of this run's tasks (a refit must never find an earlier run's result)
    token = uuid.uuid4().hex[:10]
    for epoch in range(len(history), len(history) if converged else max_iter):
        rate = config["learning_rate"] / (1.0 + config["rate_decay"] * epoch)
        store.start_round(positions, rate)
        before = store.stats()
        epoch_start = time.perf_counter()
        calls = []
        for position, (address, indices) in enumerate(groups.items()):
            blocks = [block_futures[c][i] for c in range(len(block_futures)) for i in indices]
            calls.append(
                client.submit(
                    _sgd_epoch_task if config["local_steps"] == 1 else local_sgd_epoch_task,
                    store.view,
                    position,
                    (entropy, _STREAM, epoch, indices[0]),
                    config,
                    len(indices),
                    has_weight,
                    *blocks,
                    workers=[address],
                    allow_other_workers=False,
                    pure=False,
                    key=f"{task_prefix('partitioned sgd')}-{token}-{epoch}-{position}",
                )
            )
        # gather: one small dict per worker (step and key counts)
        answers = gather_watched(client, calls, store, groups, _SOLVER)
        if config["average"]:
            store.finish_average()
        epoch_s = time.perf_counter() - epoch_start
        # the epoch's own traffic, before the objective's pulls
        stats = store.stats()
        if config["objective"] == "exact":
            objective = _objective(client, store, groups, block_futures, has_weight, config)
        else:
            objective = _penalised(config, store, sum(a["loss_sum"] for a in answers))
        record = {
            "iteration": epoch + 1,
            "objective": objective,
            "grad_norm": None,
            "step_size": rate,
            "time_s": time.perf_counter() - started,
            "epoch_s": epoch_s,
            "n_steps": int(sum(a["n_steps"] for a in answers)),
            "staleness_max": int(max(s["staleness_max"] for s in stats)),
        }
        for name in counted:
            record[name] = int(sum(s[name] for s in stats) - sum(s[name] for s in before))
        history.append(record)
        logger.debug("%s: %s", _SOLVER, record)
        if saver is not None:  # after the objective's pulls: the saved shards are those epoch + 1 starts from
            saver.save(store, layout, epoch + 1, history, entropy=entropy)
        report(record, stats)
        if abs(previous - objective) <= tol * max(1.0, abs(objective)):
            converged = True
            break
        previous = objective
    n_iter = len(history)
    warning = None
    if converged:
        message = f"the objective changed by less than tol={tol:g} (relative) in epoch {n_iter}"
    else:
        message = f"max_iter={max_iter} epochs reached"
        warning = (
            f"the objective still changed by more than tol={tol:g} (relative) after {max_iter} epochs. "
            "Raise max_iter, or the learning rate."
        )
        warn_not_converged(_SOLVER, warning)
    if saver is not None:
        saver.complete(
            store,
            layout,
            n_iter,
            history,
            entropy=entropy,
            converged=converged,
            message=message,
            warning=warning,
        )
    return PartitionedResult(None, None, n_iter, converged, history, message=message)


def _objective(
    client: Any,
    store: ShardedStore,
    groups: dict[str, list[int]],
    block_futures: list[list[Any]],
    has_weight: bool,
    config: dict[str, Any],
) -> float:
    """The exact objective: each worker's loss sum (pulling each block's keys) plus the shards' norms."""
    calls = []
    for address, indices in groups.items():
        blocks = [block_futures[c][i] for c in range(len(block_futures)) for i in indices]
        calls.append(
            client.submit(
                _objective_task,
                store.view,
                config,
                len(indices),
                has_weight,
                *blocks,
                workers=[address],
                allow_other_workers=False,
                pure=False,
                key=f"{task_prefix('partitioned objective')}-{uuid.uuid4().hex[:10]}-{indices[0]}",
            )
        )
    # gather: one float per worker
    return _penalised(config, store, sum(gather_watched(client, calls, store, groups, _SOLVER)))


def _penalised(config: dict[str, Any], store: ShardedStore, loss_sum: float) -> float:
    """The objective from the rows' weighted loss sum and the shards' norms (one float from each shard)."""
    penalty = config["l2"] / 2 * store.sq_norm()
    if config["l1"] > 0:
        penalty += config["l1"] * store.abs_norm()
    return config["data_scale"] * float(loss_sum) + penalty
