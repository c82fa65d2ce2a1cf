"""Vector-free L-BFGS over a partitioned parameter store: no vector of the model's width leaves its shards.

Chen, Wang and Zhou (NIPS 2014, "Large-scale L-BFGS using MapReduce") observe that the two-loop recursion of
L-BFGS needs only the dot products of its ``2m + 1`` basis vectors (the last ``m`` steps ``s_i``, gradient
changes ``y_i``, and the gradient ``g``) and yields the direction as a linear combination of them. Here each
parameter shard (:class:`~daskml_lab.solvers._vector_shards.LBFGSShard`) holds its slots of all these vectors;
the client keeps only the ``(2m + 1)^2`` matrix of dot products and runs the recursion on it.

One iteration, with the row blocks persisted once and every task pinned to the worker holding its blocks:

1. the client computes the direction's coefficients; each shard forms its part of ``d`` and returns its parts
   of ``w.d``, ``d.d`` and ``g.d``;
2. each worker pulls the direction's rows of its blocks' columns only and computes the scores ``X d``, kept
   next to the blocks (the scores ``X w`` already are);
3. the line search (strong Wolfe, scipy's) evaluates ``f(w + t d)`` and its slope from those scores and the
   shards' dot products: a trial costs one tiny task per worker and no traffic to the shards;
4. each worker computes its blocks' gradient rows at the new scores ``X w + t X d`` and adds them to the shards
   holding their keys (a reduce-scatter: no gradient is gathered whole);
5. each shard takes the step ``w += t d``, finishes the gradient (data term plus L2) and returns its parts of
   the new dot products.

The stopping rules are those of :func:`~daskml_lab.solvers.lbfgs` (scipy's L-BFGS-B, scikit-learn's): the
largest absolute entry of the gradient of ``F / (data_scale * sum of weights)`` at most ``tol``, or a relative
decrease of that objective at most ``ftol``.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import line_search

from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._options import check_int, check_positive
from daskml_lab.solvers._partitioned_fit import FitReport, in_fit_span
from daskml_lab.solvers._result import warn_not_converged
from daskml_lab.solvers._shard_checkpoint import holding_checkpoint
from daskml_lab.solvers._store_rounds import StoreRounds, counted_traffic, run_over_store
from daskml_lab.solvers._vector_shards import LBFGSShard
from daskml_lab.solvers.partitioned_sgd import PartitionedResult

logger = logging.getLogger(__name__)

__all__ = ["partitioned_lbfgs"]

_SOLVER = "partitioned lbfgs"
_EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------------------------- the client
def _two_loop(gram: np.ndarray, pairs: list[int], memory: int) -> np.ndarray:
    """The direction ``-H g`` as coefficients of the basis (steps, changes, gradient), from dot products only.

    ``gram`` is the ``(2m + 1)^2`` matrix of the basis vectors' dot products; ``pairs`` the history slots in
    use, oldest first. With no pair the direction is ``-g / ||g||`` (a first step of unit length, as
    L-BFGS-B's).
    """
    coefficients = np.zeros(2 * memory + 1)
    coefficients[-1] = -1.0
    if not pairs:
        return coefficients / max(np.sqrt(gram[-1, -1]), _EPS)
    alphas = {}
    for slot in reversed(pairs):
        rho = 1.0 / gram[slot, memory + slot]
        alphas[slot] = rho * (coefficients @ gram[:, slot])
        coefficients[memory + slot] -= alphas[slot]
    newest = pairs[-1]
    coefficients *= gram[newest, memory + newest] / gram[memory + newest, memory + newest]
    for slot in pairs:
        rho = 1.0 / gram[slot, memory + slot]
        beta = rho * (coefficients @ gram[:, memory + slot])
        coefficients[slot] += alphas[slot] - beta
    return coefficients


class _LBFGSRounds(StoreRounds):
    """The rounds of one partitioned L-BFGS fit, with the client's matrix of dot products."""

    def __init__(self, *args: Any, memory: int) -> None:
        super().__init__(*args)

        self.memory = memory
        self.gram = np.zeros((2 * memory + 1, 2 * memory + 1))
        self.z_w: dict[str, Any] = {}
        self.z_d: dict[str, Any] = {}

    def start(self, data_scale: float, l2: float) -> tuple[float, dict[str, Any], float]:
        """The first round at ``w0``: the scores kept, the gradient in the shards, the gradient's dot products.

        Returns the objective's scale (``data_scale`` times the summed weights), the round's state (see
        :meth:`gradient`) and the objective.
        """
        self.z_w = self.scores("pull")
        loss_sum, _, weight_sum = self.line_values(0.0, with_direction=False)
        state = self.gradient(0.0, with_direction=False)
        self.update_gram(state["dots"], None)
        return data_scale * weight_sum, state, data_scale * loss_sum + l2 / 2 * state["w_sq"]

    def line_values(self, step: float, with_direction: bool) -> tuple[float, float, float]:
        """Summed loss, slope and weight over the workers at ``w + step * d``."""
        return self.losses(self.z_w, self.z_d if with_direction else None, step)

    def gradient(self, step: float, with_direction: bool) -> dict[str, Any]:
        """The gradient at ``w`` (after the step) in the shards; the new scores kept; the shards' dot products."""
        self.z_w = self.push_gradient(self.z_w, self.z_d if with_direction else None, step)
        parts = self.shard_calls("finish_gradient", step if with_direction else 0.0)
        return {
            "dots": sum(part["dots"] for part in parts),
            "w_sq": float(sum(part["w_sq"] for part in parts)),
            "g_max": float(max(part["g_max"] for part in parts)),
            "stats": [part["stats"] for part in parts],
        }

    def update_gram(self, dots: np.ndarray, keep_at: int | None) -> None:
        """The dot products after a round: the gradient's row always, the new pair's when it is kept."""
        m = self.memory
        g = 2 * m
        if keep_at is not None:
            s, y = keep_at, m + keep_at
            for row, index in ((0, s), (1, y)):
                self.gram[index, : 2 * m] = dots[row, : 2 * m]
                self.gram[: 2 * m, index] = dots[row, : 2 * m]
            self.gram[s, s], self.gram[s, y], self.gram[y, s] = dots[0, g], dots[0, g + 1], dots[0, g + 1]
            self.gram[y, y] = dots[1, g + 1]
        self.gram[g, : 2 * m] = dots[2, : 2 * m]
        self.gram[: 2 * m, g] = dots[2, : 2 * m]
        if keep_at is not None:
            self.gram[g, keep_at] = self.gram[keep_at, g] = dots[2, g]
            self.gram[g, m + keep_at] = self.gram[m + keep_at, g] = dots[2, g + 1]
        self.gram[g, g] = dots[2, g + 2]


@in_fit_span(_SOLVER)
@holding_checkpoint
def partitioned_lbfgs(
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
    memory: int = 10,
    max_line_search: int = 20,
    ftol: float = 64 * _EPS,
    class_partitions: int | str = "auto",
    gather: bool = True,
    checkpoint: SolverCheckpoint | None = None,
) -> PartitionedResult:
    """Minimise ``data_scale * sum_i s_i loss_i + l2 / 2 * ||w||^2`` by vector-free L-BFGS over a partitioned store.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features)
        Row blocks (``scipy.sparse`` CSR, or dense, converted per block), one column chunk.
    y : dask array of shape (n_samples,)
        ``0``/``1`` for ``loss="logistic"``, class codes ``0 .. n_outputs - 1`` for ``"multinomial"``, the
        target for ``"squared"`` (least squares, ``n_outputs=1``).
    sample_weight : dask array of shape (n_samples,) or None
        ``s_i`` (ones when None).
    client : distributed.Client
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
        Stop when ``max |gradient|`` of ``F / (data_scale * sum of weights)`` is at most ``tol``.
    max_iter : int, default=100
        Iterations.
    random_state : None
        Unused (a deterministic solver; accepted for a uniform signature).
    callback : callable, default=None
        Called with each iteration's history record.
    memory : int, default=10
        History pairs kept (each shard holds ``2 * memory + 4`` vectors of its slots).
    max_line_search : int, default=20
        Trials per line search.
    ftol : float, default=64 * machine epsilon
        Also stop when the relative decrease of the scaled objective is at most ``ftol``.
    class_partitions : int or "auto", default="auto"
        Split the classes over the shards too (a grid of key parts by ranges of classes; the blocks' scores and
        gradient rows are computed one range at a time). ``"auto"``: one range per shard from 256 classes on,
        else 1. Must divide the number of shards.
    gather : bool, default=True
        Bring the parameters to the client at the end (refused above ``max_gather_bytes``); False keeps them
        in the store, returned open.
    checkpoint : SolverCheckpoint, default=None
        Save every shard's state (its values, gradient, direction and history pairs, each shard to its own
        file, written on its worker: the directory must be reachable by the workers), the history and the
        client's state (the ring of pairs, the matrix of dot products, the objective) every
        ``checkpoint.every`` iterations and at the end. A run given the checkpoint of the same problem,
        settings, shards and data resumes at the next iteration (to the uninterrupted run's result), or
        returns at once when that run had completed; any other checkpoint is refused with a
        :class:`~daskml_lab.solvers.CheckpointError` before an iteration runs (see :doc:`/checkpoints`).

    Returns
    -------
    PartitionedResult
        ``history`` records: ``iteration``, ``objective`` (unscaled), ``grad_norm`` (the quantity compared with
        ``tol``), ``step_size`` (length of the step), ``time_s``, ``n_evals`` (line-search trials),
        ``keys_pulled``, ``bytes_pulled``, ``bytes_pushed``, ``n_pushes`` (the iteration's traffic, all shards).
    """
    check_int(_SOLVER, "memory", memory)
    check_int(_SOLVER, "max_line_search", max_line_search)
    check_positive(_SOLVER, "ftol", ftol)

    def iterate(rounds: _LBFGSRounds, report: FitReport) -> PartitionedResult:
        return _iterate(rounds, float(data_scale), float(l2), tol, ftol, max_iter, max_line_search, report)

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
        shard_options={"memory": int(memory), "data_scale": float(data_scale)},
        iterate=iterate,
        rounds_class=_LBFGSRounds,
        rounds_options={"memory": int(memory)},
        checkpoint=checkpoint,
        options={
            "data_scale": float(data_scale),
            "tol": tol,
            "max_iter": max_iter,
            "memory": int(memory),
            "max_line_search": int(max_line_search),
            "ftol": float(ftol),
        },
    )


def _iterate(
    fit: _LBFGSRounds,
    data_scale: float,
    l2: float,
    tol: float,
    ftol: float,
    max_iter: int,
    max_line_search: int,
    report: FitReport,
) -> PartitionedResult:
    """The L-BFGS iterations (see the module's docstring).

    With a checkpoint (``fit.saved``), the run continues after the saved iteration: the shards hold their
    vectors and history pairs, the client's ring of pairs, matrix of dot products and scalars come from the
    saved state, and the scores ``X w`` are computed again from the restored shards.
    """
    started = time.perf_counter()
    saved = fit.saved
    status: str | None = None
    if saved is None:
        scale, state, value = fit.start(data_scale, l2)
        history: list[dict[str, Any]] = []
        pairs: list[int] = []
        keep_at: int | None = None
        after = state["stats"]
    elif saved.complete:
        return _result(saved.history, saved.state["status"], tol, max_iter)
    else:
        history, scalars = saved.history, saved.state
        scale, value, status = float(scalars["scale"]), float(scalars["value"]), scalars["stop"]
        pairs, keep_at = [int(slot) for slot in scalars["pairs"]], scalars["keep_at"]
        fit.gram = np.array(scalars["gram"], dtype=np.float64)
        fit.z_w = fit.scores("pull")  # the scores stayed on the workers: not in the checkpoint
        after = fit.store.view.stats()
        state = {"w_sq": float(scalars["w_sq"]), "g_max": float(scalars["g_max"]), "stats": after}
    while status is None and len(history) < max_iter:
        iteration = len(history)
        if state["g_max"] / scale <= tol:
            status = "tol"
            break
        before = after
        coefficients = _two_loop(fit.gram, pairs, fit.memory)
        parts = fit.shard_calls("set_direction", coefficients, keep_at)
        w_d, d_sq, g_d = (float(sum(part[name] for part in parts)) for name in ("w_d", "d_sq", "g_d"))
        if g_d >= 0:  # not a descent direction (rounding in a flat region): restart from the gradient
            pairs, keep_at = [], None
            parts = fit.shard_calls("set_direction", _two_loop(fit.gram, [], fit.memory), None)
            w_d, d_sq, g_d = (float(sum(part[name] for part in parts)) for name in ("w_d", "d_sq", "g_d"))
        fit.z_d = fit.scores("pull_direction", wait_for=False)
        trials: dict[float, tuple[float, float]] = {}

        def phi(
            step: float,
            w_d: float = w_d,
            d_sq: float = d_sq,
            w_sq: float = state["w_sq"],
            trials: dict = trials,
        ) -> tuple[float, float]:
            if step not in trials:
                loss_at, slope, _ = fit.line_values(step, with_direction=True)
                penalty = l2 / 2 * (w_sq + 2 * step * w_d + step**2 * d_sq)
                trials[step] = (
                    (data_scale * loss_at + penalty) / scale,
                    (data_scale * slope + l2 * (w_d + step * d_sq)) / scale,
                )
            return trials[step]

        with warnings.catch_warnings():  # a failed search is reported by the result (and our warning)
            warnings.simplefilter("ignore", RuntimeWarning)  # scipy's LineSearchWarning (not public)
            found = line_search(
                lambda x: phi(float(x[0]))[0],
                lambda x: np.array([phi(float(x[0]))[1]]),
                np.zeros(1),
                np.ones(1),
                gfk=np.array([g_d / scale]),
                old_fval=value / scale,
                maxiter=max_line_search,
            )
        step = found[0]
        if step is None:
            status = "line search"
            break
        step = float(step)
        new_value = phi(step)[0] * scale
        state = fit.gradient(step, with_direction=True)
        sy = float(state["dots"][0, 2 * fit.memory + 1])
        yy = float(state["dots"][1, 2 * fit.memory + 1])
        if sy > _EPS * yy:  # curvature condition: keep the pair (L-BFGS-B's test)
            keep_at = (pairs[-1] + 1) % fit.memory if pairs else 0
            pairs = [slot for slot in pairs if slot != keep_at] + [keep_at]
        else:
            keep_at = None
        fit.update_gram(state["dots"], keep_at)
        after = state["stats"]
        record = {
            "iteration": iteration + 1,
            "objective": new_value,
            "grad_norm": state["g_max"] / scale,
            "step_size": step * float(np.sqrt(d_sq)),
            "time_s": time.perf_counter() - started,
            "n_evals": len(trials),
            **counted_traffic(before, after),
        }
        history.append(record)
        logger.debug("%s: %s", _SOLVER, record)
        decrease = (value - new_value) / max(abs(value), abs(new_value), scale)
        value = new_value
        if decrease <= ftol:
            status = "ftol"
        scalars = {
            "scale": scale,
            "value": value,
            "w_sq": state["w_sq"],
            "g_max": state["g_max"],
            "pairs": pairs,
            "keep_at": keep_at,
            "gram": fit.gram.tolist(),
            "stop": status,
        }
        fit.save(history, **scalars)  # before the report: a callback that raises loses no iteration
        report(record, after)
    if status is None:
        status = "tol" if state["g_max"] / scale <= tol else "max_iter"
    fit.complete(history, status=status)
    return _result(history, status, tol, max_iter)


def _result(history: list[dict[str, Any]], status: str, tol: float, max_iter: int) -> PartitionedResult:
    return line_search_result(
        _SOLVER, history, status, tol, max_iter, advice="Raise max_iter, scale the features, or loosen tol."
    )


def line_search_result(
    solver: str, history: list[dict[str, Any]], status: str, tol: float, max_iter: int, *, advice: str
) -> PartitionedResult:
    """The result of a line-search solver over the store, warning when it stopped short of ``tol``.

    ``status``: ``"tol"`` or ``"ftol"`` (converged), ``"line search"`` or ``"max_iter"``; ``advice`` ends the
    warning.
    """
    n_iter = len(history)
    messages = {
        "tol": f"the gradient's largest entry fell to tol={tol:g} after {n_iter} iteration(s)",
        "ftol": f"the relative decrease of the objective fell below ftol after {n_iter} iteration(s)",
        "line search": f"the line search found no acceptable step after {n_iter} iteration(s)",
        "max_iter": f"max_iter={max_iter} iterations reached",
    }
    converged = status in ("tol", "ftol")
    if not converged:
        warn_not_converged(solver, f"{messages[status]}; the gradient is still above tol={tol:g}. {advice}")
    return PartitionedResult(None, None, n_iter, converged, history, message=messages[status])
