"""Local steps for the SGD over the store: a worker pulls once, takes several mini-batch steps, pushes once.

With ``local_steps=k`` (:func:`~daskml_lab.solvers.partitioned_sgd`), a worker takes the next ``k``
mini-batches of its rows together: it pulls the keys they touch once, with the step rule's state (the
AdaGrad sums), takes the ``k`` steps on its own copy with the shards' own rule (:func:`local_step`), and
pushes what they changed once (:meth:`~daskml_lab.solvers._parameter_shard.ParameterShard.push_change`). Two
round trips per ``k`` steps instead of per step: the parameter server's flexible consistency (Li et al.,
OSDI 2014), where a worker's own steps are never stale to it and the other workers' are at most ``k`` steps
plus ``max_staleness`` old.

With one worker running the steps the result equals ``k`` separate steps (the rule is applied to every row of
the copy at every step, as the shards apply it lazily; the tests check 1e-10); with several, the only
difference is that staleness.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from daskml_lab._runtime.seeding import block_rng
from daskml_lab.solvers._partitioned_fit import as_csr, compact, loss_and_residual
from daskml_lab.solvers._sharded_store import ADAGRAD_EPS
from daskml_lab.solvers._store_view import StoreView

__all__ = ["finish_epoch", "local_rows", "local_sgd_epoch_task", "local_step", "wait_within_bound"]


def local_rows(
    blocks: tuple, n_blocks: int, has_weight: bool
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """A worker's rows: ``X`` (CSR), ``y`` and the weights (ones when none) from its blocks, stacked."""
    X = sp.vstack([as_csr(b) for b in blocks[:n_blocks]], format="csr")
    y = np.concatenate([np.asarray(b) for b in blocks[n_blocks : 2 * n_blocks]]).astype(np.float64)
    if has_weight:
        weight = np.concatenate([np.asarray(b) for b in blocks[2 * n_blocks :]]).astype(np.float64)
    else:
        weight = np.ones(len(y))
    return X, y, weight


def wait_within_bound(
    view: StoreView, n_steps: int, slowest: float, bound: int | None
) -> tuple[float, float]:
    """Wait while this worker is more than ``bound`` steps ahead of the slowest running worker.

    Returns the slowest worker's clock (as the shards last told; asking shard 0 again costs no key traffic)
    and the seconds waited. ``bound`` None: no bound.
    """
    waited = 0.0
    while bound is not None and n_steps - slowest > bound:
        time.sleep(0.001)
        waited += 0.001
        slowest = view.shards[0].slowest().result(view.timeout_s)
    return slowest, waited


def finish_epoch(view: StoreView, worker: int, in_flight: list[Any], **counts: Any) -> dict[str, Any]:
    """End a worker's epoch: wait for its last pushes, tell every shard it no longer runs; its ``counts``."""
    for call in in_flight:
        call.result(view.timeout_s)
    for call in [shard.finish(worker) for shard in view.shards]:
        call.result(view.timeout_s)
    return counts


def local_step(
    values: np.ndarray, sums: np.ndarray | None, grads: np.ndarray, rate: float, l2: float
) -> None:
    """One step of the shards' rule on a worker's copy of some rows, in place (the last row: the intercept).

    ``sums`` None is the ``"sgd"`` rule (``w -= rate g``, then the L2 step ``w /= 1 + rate l2`` on every
    penalised row); otherwise AdaGrad (``G += g**2``, ``w = (w - r g) / (1 + r l2)`` with
    ``r = rate / (sqrt(G) + eps)``, on every row: a row the batch does not touch has ``g = 0`` and takes the
    L2 step the shards apply to it lazily).
    """
    if sums is None:
        values -= rate * grads
        if l2:
            values[:-1] /= 1.0 + rate * l2
        return
    sums += grads**2
    rates = rate / (np.sqrt(sums) + ADAGRAD_EPS)
    values -= rates * grads
    if l2:
        values[:-1] /= 1.0 + rates[:-1] * l2


def local_sgd_epoch_task(
    view: StoreView,
    worker: int,
    rng_key: tuple[int, ...],
    config: dict[str, Any],
    n_blocks: int,
    has_weight: bool,
    *blocks: Any,
) -> dict[str, Any]:
    """One epoch on this worker's rows, ``config["local_steps"]`` mini-batch steps per pull and push.

    The rows' order and the mini-batches are those of the one-step epoch (the same seed).
    """
    X, y, weight = local_rows(blocks, n_blocks, has_weight)
    n_features, batch_size = config["n_features"], config["batch_size"]
    fit_intercept, scale, loss = config["fit_intercept"], config["gradient_scale"], config["loss"]
    segment_rows = batch_size * config["local_steps"]
    # the bound counts the steps of the other workers this worker may not have seen: its own k are local
    bound = None if config["max_staleness"] is None else config["max_staleness"] + config["local_steps"] - 1
    order = block_rng(*rng_key).permutation(X.shape[0])
    in_flight: list[Any] = []
    keys_pulled = n_steps = 0
    waited_s = slowest = loss_sum = 0.0
    for start in range(0, len(order), segment_rows):
        segment = order[start : start + segment_rows]
        columns, X_segment = compact(X[segment])
        keys = np.append(columns, n_features)
        slowest, waited = wait_within_bound(view, n_steps, slowest, bound)
        waited_s += waited
        # the previous push applied before this pull (one wait per k steps): a pull sent at once could overtake
        # it at a remote shard, and a worker's own steps are never stale to it (the one-step epoch keeps the overlap)
        if in_flight:
            slowest = min(call.result(view.timeout_s)[1] for call in in_flight)
        pulled, sums, clocks, rate = view.pull_state(keys)
        values = pulled.copy()
        pulled_sums = None if sums is None else sums.copy()
        steps = 0
        for offset in range(0, len(segment), batch_size):
            batch = segment[offset : offset + batch_size]
            X_batch = X_segment[offset : offset + batch_size]
            scores = X_batch @ values[:-1] + (values[-1] if fit_intercept else 0.0)
            batch_loss, residual = loss_and_residual(scores, y[batch], weight[batch], loss)
            loss_sum += batch_loss  # before the batch's step: progressive validation
            residual *= scale / len(batch)
            grads = np.vstack([X_batch.T @ residual, residual.sum(axis=0, keepdims=True)])
            if not fit_intercept:
                grads[-1] = 0.0
            local_step(values, sums, grads, rate, config["l2"])
            steps += 1
        n_steps += steps
        sums_change = None if sums is None else sums - pulled_sums
        in_flight = view.push_change_async(keys, values - pulled, sums_change, steps, clocks, worker, n_steps)
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
