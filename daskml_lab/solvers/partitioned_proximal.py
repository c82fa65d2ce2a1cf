"""FISTA (accelerated proximal gradient) over a partitioned parameter store, for L1 and elastic-net penalties.

The algorithm of :func:`~daskml_lab.solvers.proximal` (Beck and Teboulle's backtracking, O'Donoghue and
Candès's adaptive restart), with every vector of the model's width split over the parameter shards
(:class:`~daskml_lab.solvers._vector_shards.ProximalShard`): the iterate ``x``, the previous one, the
extrapolated point ``y``, the gradients of the smooth part at ``x`` and ``y``, and the trial point. The
proximal operator of the L1 penalty is applied by each shard to its own slots; the client only sees sums.

One iteration, with the row blocks persisted once and every task pinned to the worker holding its blocks:

1. each shard forms its part of the trial point ``prox(y - s g_y, s)`` and of the sufficient-decrease test's
   sums; each worker pulls the trial point's rows of its blocks' columns and computes the loss there (the
   scores stay on the worker); the step ``s`` shrinks until Beck and Teboulle's condition holds;
2. the trial point becomes ``x``; each worker adds its blocks' gradient rows at the trial scores to the shards
   of their keys (reduce-scatter), and the shards return the optimality measure;
3. with momentum, the extrapolated point's scores are a combination of the last two iterates' (computed on
   the workers, nothing pulled) and one more reduce-scatter gives the gradient there.

The stopping rule is :func:`~daskml_lab.solvers.proximal`'s: the largest distance of 0 to the
subdifferential of ``F / (data_scale * sum of weights)`` at most ``tol``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._options import check_int, check_non_negative, check_positive
from daskml_lab.solvers._partitioned_fit import FitReport, in_fit_span
from daskml_lab.solvers._result import warn_not_converged
from daskml_lab.solvers._shard_checkpoint import holding_checkpoint
from daskml_lab.solvers._store_rounds import StoreRounds, counted_traffic, run_over_store
from daskml_lab.solvers._vector_shards import ProximalShard
from daskml_lab.solvers.partitioned_sgd import PartitionedResult

logger = logging.getLogger(__name__)

__all__ = ["partitioned_proximal"]

_SOLVER = "partitioned proximal"


@in_fit_span(_SOLVER)
@holding_checkpoint
def partitioned_proximal(
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
    l1: float = 0.0,
    n_partitions: int | None = None,
    w0: np.ndarray | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    random_state: Any = None,
    callback: Callable[..., Any] | None = None,
    step_size: float = 1.0,
    shrink: float = 0.5,
    grow: float = 1.25,
    restart: bool = True,
    max_line_search: int = 50,
    class_partitions: int | str = "auto",
    gather: bool = True,
    checkpoint: SolverCheckpoint | None = None,
) -> PartitionedResult:
    """Minimise ``data_scale * sum_i s_i loss_i + l2 / 2 * ||w||^2 + l1 * ||w||_1`` by FISTA over a store.

    Parameters
    ----------
    X, y, sample_weight, client, loss, n_outputs, fit_intercept, data_scale, l2, n_partitions, w0, gather :
        As :func:`~daskml_lab.solvers.partitioned_lbfgs`.
    class_partitions : int or "auto", default="auto"
        As :func:`~daskml_lab.solvers.partitioned_lbfgs`.
    l1 : float, default=0.0
        L1 strength (the intercept row is not penalised).
    tol : float, default=1e-4
        Stop when the largest distance of 0 to the subdifferential of ``F / (data_scale * sum of weights)``
        is at most ``tol``.
    max_iter : int, default=1000
        Iterations.
    random_state : None
        Unused (a deterministic solver; accepted for a uniform signature).
    callback : callable, default=None
        Called with each iteration's history record.
    step_size : float, default=1.0
        First step tried (on the scaled objective).
    shrink : float, default=0.5
        Factor applied to the step after a failed trial.
    grow : float, default=1.25
        Factor applied to the accepted step for the next iteration's first trial.
    restart : bool, default=True
        Reset the momentum when the objective increases.
    max_line_search : int, default=50
        Trials per backtracking search.
    checkpoint : SolverCheckpoint, default=None
        As :func:`~daskml_lab.solvers.partitioned_lbfgs`: every shard's FISTA vectors (the iterate, the
        previous one, the extrapolated point, the gradients and the trial point) saved on its worker, the
        history, the momentum ``theta``, the next trial step and the objectives on the client, every
        ``checkpoint.every`` iterations and at the end; a refit with the same checkpoint resumes at the next
        iteration, or returns at once after a completed run.

    Returns
    -------
    PartitionedResult
        ``history`` records: ``iteration``, ``objective`` (unscaled, with the L1 term), ``grad_norm`` (the
        optimality compared with ``tol``), ``step_size``, ``restart``, ``time_s``, ``n_evals`` (trials),
        ``keys_pulled``, ``bytes_pulled``, ``bytes_pushed``, ``n_pushes``.
    """
    for name, value in (("step_size", step_size), ("shrink", shrink), ("grow", grow)):
        check_positive(_SOLVER, name, value)
    check_non_negative(_SOLVER, "l1", l1)
    if not (0 < shrink < 1 and grow >= 1):
        msg = f"{_SOLVER}: need 0 < shrink < 1 and grow >= 1; got shrink={shrink}, grow={grow}."
        raise ValueError(msg)
    check_int(_SOLVER, "max_line_search", max_line_search)
    options = {"step_size": float(step_size), "shrink": float(shrink), "grow": float(grow)}
    options.update(restart=bool(restart), max_line_search=int(max_line_search))

    def iterate(rounds: StoreRounds, report: FitReport) -> PartitionedResult:
        return _iterate(rounds, float(data_scale), float(l2), float(l1), tol, max_iter, options, report)

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
        shard_class=ProximalShard,
        shard_options={"data_scale": float(data_scale), "l1": float(l1)},
        iterate=iterate,
        checkpoint=checkpoint,
        options={
            "data_scale": float(data_scale),
            "l1": float(l1),
            "tol": tol,
            "max_iter": max_iter,
            **options,
        },
    )


def _iterate(
    rounds: StoreRounds,
    data_scale: float,
    l2: float,
    l1: float,
    tol: float,
    max_iter: int,
    options: dict[str, Any],
    report: FitReport,
) -> PartitionedResult:
    """The FISTA iterations (see the module's docstring); everything on the client is a sum or a scalar.

    With a checkpoint (``rounds.saved``), the run continues after the saved iteration with the saved momentum,
    step and objectives; the scores of ``x`` and ``y`` (kept on the workers) are computed again from the shards.
    """
    started = time.perf_counter()
    saved = rounds.saved
    if saved is not None and saved.complete:
        return _result(saved.history, saved.state["status"], tol, max_iter, saved.state["optimality"])
    z_x = rounds.scores("pull")
    if saved is None:
        loss_sum, _, weight_sum = rounds.losses(z_x, None, 0.0)
        scale = data_scale * weight_sum
        # the smooth part f and the total objective, scaled as the replicated solver's
        state = _gradient_at_x(rounds, z_x, None, 0.0)
        f_x = (data_scale * loss_sum + l2 / 2 * state["x_sq"]) / scale
        obj_x = f_x + l1 / scale * state["x_l1"]
        rounds.shard_calls("restart")  # y = x, with the gradient at x
        z_y, f_y = z_x, f_x
        theta, step = 1.0, options["step_size"]
        history: list[dict[str, Any]] = []
        after = state["stats"]
        optimality = state["optimality"] / scale
    else:
        history, scalars = saved.history, saved.state
        scale, f_x, obj_x, f_y = (float(scalars[name]) for name in ("scale", "f_x", "obj_x", "f_y"))
        theta, step, optimality = (float(scalars[name]) for name in ("theta", "step", "optimality"))
        z_y = z_x if scalars["y_is_x"] else rounds.scores("pull_point")
        after = rounds.store.view.stats()
    status = "max_iter"
    while True:
        if optimality <= tol:
            status = "tol"
            break
        if len(history) >= max_iter:
            break
        before = after
        # backtracking on the step: the trial point lives in the shards, its loss is computed where the rows are
        n_trials = 0
        while n_trials < options["max_line_search"]:
            n_trials += 1
            # the shards hold the unscaled gradient and l1: a step s on the scaled objective is s / scale there
            parts = rounds.shard_calls("propose", step / scale)
            sums = {name: float(sum(part[name] for part in parts)) for name in parts[0]}
            z_trial = rounds.scores("pull_trial", wait_for=False)
            loss_trial = rounds.losses(z_trial, None, 0.0)[0]
            f_trial = (data_scale * loss_trial + l2 / 2 * sums["trial_sq"]) / scale
            bound = f_y + sums["g_dot"] / scale + sums["diff_sq"] / (2 * step)
            if np.isfinite(f_trial) and f_trial <= bound + 1e-12 * abs(f_y):
                break
            step *= options["shrink"]
        else:
            status = "line search"  # no step met the condition: the objective is flat at working precision
            break
        obj_trial = f_trial + l1 / scale * sums["trial_l1"]
        restarted = options["restart"] and obj_trial > obj_x and z_y is not z_x
        accepted_step = step
        step *= options["grow"]
        if restarted:  # momentum overshot: drop it and take the next step from the current point
            rounds.shard_calls("restart")
            theta, z_y, f_y = 1.0, z_x, f_x
        else:
            theta_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * theta * theta))
            momentum = (theta - 1.0) / theta_next
            theta = theta_next
            rounds.shard_calls("accept", momentum)
            z_previous = z_x
            state = _gradient_at_x(rounds, z_trial, None, 0.0)
            z_x, f_x, obj_x = state["scores"], f_trial, obj_trial
            optimality = state["optimality"] / scale
            if momentum > 0:
                # the extrapolated point's scores from the last two iterates', on the workers: nothing pulled
                z_y = rounds.push_gradient(
                    rounds.combine(z_x, z_previous, momentum), None, 0.0, wait_for=False
                )
                # after the gradient tasks: all their rows are added
                loss_y = rounds.losses(z_y, None, 0.0)[0]
                y_sq = float(sum(part["y_sq"] for part in rounds.shard_calls("finish_gradient", "y")))
                f_y = (data_scale * loss_y + l2 / 2 * y_sq) / scale
            else:
                rounds.shard_calls("restart")
                z_y, f_y = z_x, f_x
        after = rounds.store.view.stats() if restarted else state["stats"]
        record = {
            "iteration": len(history) + 1,
            "objective": obj_x * scale,
            "grad_norm": optimality,
            "step_size": accepted_step,
            "restart": bool(restarted),
            "time_s": time.perf_counter() - started,
            "n_evals": n_trials,
            **counted_traffic(before, after),
        }
        history.append(record)
        logger.debug("%s: %s", _SOLVER, record)
        rounds.save(  # before the report: a callback that raises loses no iteration
            history,
            scale=scale,
            f_x=f_x,
            obj_x=obj_x,
            f_y=f_y,
            theta=theta,
            step=step,
            optimality=optimality,
            y_is_x=z_y is z_x,
        )
        report(record, after)
    rounds.complete(history, status=status, optimality=optimality)
    return _result(history, status, tol, max_iter, optimality)


def _gradient_at_x(rounds: StoreRounds, z: dict[str, Any], z_d: Any, step: float) -> dict[str, Any]:
    """The gradient at the iterate (whose scores are ``z``) in the shards; their optimality, norms and counters."""
    scores = rounds.push_gradient(z, z_d, step)
    parts = rounds.shard_calls("finish_gradient", "x")
    return {
        "scores": scores,
        "optimality": float(max(part["optimality"] for part in parts)),
        "x_sq": float(sum(part["x_sq"] for part in parts)),
        "x_l1": float(sum(part["x_l1"] for part in parts)),
        "stats": [part["stats"] for part in parts],
    }


def _result(
    history: list[dict[str, Any]], status: str, tol: float, max_iter: int, optimality: float
) -> PartitionedResult:
    n_iter = len(history)
    messages = {
        "tol": f"optimality {optimality:.3g} <= tol={tol:g} after {n_iter} iteration(s)",
        "line search": f"the backtracking search found no acceptable step after {n_iter} iteration(s)",
        "max_iter": f"max_iter={max_iter} iterations reached with optimality {optimality:.3g}",
    }
    converged = status == "tol"
    if not converged:
        warn_not_converged(
            _SOLVER,
            f"{messages[status]} > tol={tol:g}. Raise max_iter, scale the features, or loosen tol.",
        )
    return PartitionedResult(None, None, n_iter, converged, history, message=messages[status])
