"""Full-batch gradient descent over a partitioned parameter store: Armijo steps, no vector gathered.

The steps of :func:`~daskml_lab.solvers.gd` (the largest of ``step, step * shrink, ...`` that decreases the
objective enough, the next first trial ``grow`` times the accepted step) over the shards of the vector-free
L-BFGS (:func:`~daskml_lab.solvers.partitioned_lbfgs`) with no history pair kept, so one iteration is:

1. each shard sets its slots of the direction ``d = -g / ||g||`` and returns its parts of ``w.d``, ``d.d``
   and ``g.d``;
2. each worker pulls the direction's rows of its blocks' columns only and keeps the scores ``X d`` next to
   its blocks (the scores ``X w`` already are);
3. each trial step evaluates ``f(w + t d)`` from those scores and the shards' dot products: one tiny task per
   worker and no traffic to the shards;
4. the gradient at the accepted point is reduce-scattered to the shards holding its keys, which take the step.

The stopping rule is :func:`~daskml_lab.solvers.gd`'s: the largest absolute entry of the gradient of
``F / (data_scale * sum of weights)`` at most ``tol``. The shards hold six vectors of their slots (the
L-BFGS shard with a memory of one pair, which gradient descent leaves unused).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._partitioned_fit import FitReport, in_fit_span
from daskml_lab.solvers._shard_checkpoint import holding_checkpoint
from daskml_lab.solvers._store_rounds import counted_traffic, run_over_store
from daskml_lab.solvers._vector_shards import LBFGSShard
from daskml_lab.solvers.gd import GDOptions
from daskml_lab.solvers.partitioned_lbfgs import _LBFGSRounds, _two_loop, line_search_result
from daskml_lab.solvers.partitioned_sgd import PartitionedResult

logger = logging.getLogger(__name__)

__all__ = ["partitioned_gd"]

_SOLVER = "partitioned gd"
#: The L-BFGS shards' history length: one pair's slots, never filled.
_MEMORY = 1


@in_fit_span(_SOLVER)
@holding_checkpoint
def partitioned_gd(
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
    max_iter: int = 100,
    random_state: Any = None,
    callback: Callable[..., Any] | None = None,
    step_size: float = 1.0,
    shrink: float = 0.5,
    grow: float = 2.0,
    c1: float = 1e-4,
    max_line_search: int = 50,
    class_partitions: int | str = "auto",
    gather: bool = True,
    checkpoint: SolverCheckpoint | None = None,
) -> PartitionedResult:
    """Minimise ``data_scale * sum_i s_i loss_i + l2 / 2 * ||w||^2`` by gradient descent over a partitioned store.

    Parameters
    ----------
    X, y, sample_weight, client, loss, n_outputs, fit_intercept, data_scale, l2, n_partitions, w0, gather :
        As :func:`~daskml_lab.solvers.partitioned_lbfgs`.
    class_partitions : int or "auto", default="auto"
        As :func:`~daskml_lab.solvers.partitioned_lbfgs`.
    tol : float, default=1e-4
        Stop when ``max |gradient|`` of ``F / (data_scale * sum of weights)`` is at most ``tol``.
    max_iter : int, default=100
        Iterations (accepted steps).
    random_state : None
        Unused (a deterministic solver; accepted for a uniform signature).
    callback : callable, default=None
        Called with each iteration's history record.
    step_size, shrink, grow, c1, max_line_search
        The line search of :func:`~daskml_lab.solvers.gd`: the first trial step on the per-sample objective,
        the factor after a rejected trial, the factor from an accepted step to the next first trial, Armijo's
        constant and the trials allowed per iteration.
    checkpoint : SolverCheckpoint, default=None
        As :func:`~daskml_lab.solvers.partitioned_lbfgs`: every shard's values and gradient saved on its
        worker, the history, the objective and the next first trial step on the client, every
        ``checkpoint.every`` iterations and at the end; a refit with the same checkpoint resumes at the next
        iteration, or returns at once after a completed run.

    Returns
    -------
    PartitionedResult
        ``history`` records: ``iteration``, ``objective`` (unscaled), ``grad_norm`` (the quantity compared with
        ``tol``), ``step_size`` (the accepted step on the per-sample objective), ``time_s``, ``n_evals``
        (trial steps), ``keys_pulled``, ``bytes_pulled``, ``bytes_pushed``, ``n_pushes``.

    Raises
    ------
    ValueError
        For line-search constants out of range (as :func:`~daskml_lab.solvers.gd`).
    """
    options = GDOptions(step_size=step_size, shrink=shrink, grow=grow, c1=c1, max_line_search=max_line_search)

    def iterate(rounds: _LBFGSRounds, report: FitReport) -> PartitionedResult:
        return _iterate(rounds, float(data_scale), float(l2), tol, max_iter, options, report)

    return run_over_store(
        X,
        y,
        sample_weight,
        client=client,
        solver=_SOLVER,
        loss=loss,
        n_outputs=n_outputs,
        fit_intercept=fit_intercept,
        l2=l2,
        n_partitions=n_partitions,
        class_partitions=class_partitions,
        w0=w0,
        gather=gather,
        callback=callback,
        shard_class=LBFGSShard,
        shard_options={"memory": _MEMORY, "data_scale": float(data_scale)},
        iterate=iterate,
        rounds_class=_LBFGSRounds,
        rounds_options={"memory": _MEMORY},
        checkpoint=checkpoint,
        options={
            "data_scale": float(data_scale),
            "tol": tol,
            "max_iter": max_iter,
            **dataclasses.asdict(options),
        },
    )


def _iterate(
    fit: _LBFGSRounds,
    data_scale: float,
    l2: float,
    tol: float,
    max_iter: int,
    options: GDOptions,
    report: FitReport,
) -> PartitionedResult:
    """The Armijo steps (see the module's docstring).

    With a checkpoint (``fit.saved``), the run continues after the saved iteration, with the saved
    objective, gradient's norm and next trial step; the scores ``X w`` are computed again from the shards.
    """
    started = time.perf_counter()
    saved = fit.saved
    status = "max_iter"
    if saved is None:
        scale, state, value = fit.start(data_scale, l2)
        history: list[dict[str, Any]] = []
        after = state["stats"]
        step = float(options.step_size)
    elif saved.complete:
        return _result(saved.history, saved.state["status"], tol, max_iter)
    else:
        history, scalars = saved.history, saved.state
        scale, value, step = float(scalars["scale"]), float(scalars["value"]), float(scalars["step"])
        fit.gram = np.array(scalars["gram"], dtype=np.float64)
        fit.z_w = fit.scores("pull")  # the scores stayed on the workers: not in the checkpoint
        after = fit.store.view.stats()
        state = {"w_sq": float(scalars["w_sq"]), "g_max": float(scalars["g_max"]), "stats": after}
    for iteration in range(len(history), max_iter):
        if state["g_max"] / scale <= tol:
            status = "tol"
            break
        before = after
        parts = fit.shard_calls("set_direction", _two_loop(fit.gram, [], fit.memory), None)
        w_d, d_sq, g_d = (float(sum(part[name] for part in parts)) for name in ("w_d", "d_sq", "g_d"))
        fit.z_d = fit.scores("pull_direction", wait_for=False)
        # d = -g / ||g|| (all slots; d_sq covers the penalised ones only): the step ``step`` along the
        # per-sample gradient g / scale is t = step * ||g|| / scale along d; Armijo: f(t) <= f(0) + c1 t g.d
        g_norm = float(np.sqrt(fit.gram[-1, -1]))
        accepted = None
        for trial in range(1, options.max_line_search + 1):
            t = step * g_norm / scale
            loss_at, _, _ = fit.line_values(t, with_direction=True)
            penalty = l2 / 2 * (state["w_sq"] + 2 * t * w_d + t**2 * d_sq)
            trial_value = data_scale * loss_at + penalty
            if trial_value <= value + options.c1 * t * g_d:
                accepted = (t, trial_value, trial)
                break
            step *= options.shrink
        if accepted is None:
            status = "line search"
            break
        t, new_value, n_evals = accepted
        state = fit.gradient(t, with_direction=True)
        fit.update_gram(state["dots"], None)
        after = state["stats"]
        record = {
            "iteration": iteration + 1,
            "objective": new_value,
            "grad_norm": state["g_max"] / scale,
            "step_size": step,
            "time_s": time.perf_counter() - started,
            "n_evals": n_evals,
            **counted_traffic(before, after),
        }
        history.append(record)
        logger.debug("%s: %s", _SOLVER, record)
        value = new_value
        step *= options.grow
        fit.save(  # before the report: a callback that raises loses no iteration
            history,
            scale=scale,
            value=value,
            step=step,
            w_sq=state["w_sq"],
            g_max=state["g_max"],
            gram=fit.gram.tolist(),
        )
        report(record, after)
    else:
        if state["g_max"] / scale <= tol:
            status = "tol"
    fit.complete(history, status=status)
    return _result(history, status, tol, max_iter)


def _result(history: list[dict[str, Any]], status: str, tol: float, max_iter: int) -> PartitionedResult:
    return line_search_result(
        _SOLVER,
        history,
        status,
        tol,
        max_iter,
        advice="Raise max_iter, scale the features, or use solver='lbfgs'.",
    )
