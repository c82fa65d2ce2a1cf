"""Synchronous distributed mini-batch SGD: local steps on every worker, then parameter averaging.

Each round (one solver iteration), every worker starts from the current parameters ``W``, takes mini-batch
proximal gradient steps on its own rows only (by default one pass over them), and returns its parameters and
the weight of its rows; the client averages the workers' parameters weighted by their share of the total
sample weight ("local SGD", or model averaging). A round is one ``problem.map_workers`` call: the parameters
go out, one parameter matrix per worker comes back.

The module also holds what the asynchronous solver (:mod:`daskml_lab.solvers.async_sgd`) shares with this one:
the mini-batch cursor that remembers each worker's position in its endless sequence of epochs, the
learning-rate schedule, the elastic-net proximal step and the estimate of a safe first step size.
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from daskml_lab.monitoring import fit_span
from daskml_lab.solvers._checkpoint import SolverCheckpoint, finished_result, open_checkpoint
from daskml_lab.solvers._common import History, check_solver_args, require_problem, single_threaded_blas
from daskml_lab.solvers._regularizers import l1_norm, l1_optimality
from daskml_lab.solvers._result import SolverResult, warn_not_converged

logger = logging.getLogger(__name__)

__all__ = ["sgd"]

#: Upper bound of the second derivative of each loss with respect to the score (hinge: a step-size heuristic).
_LOSS_CURVATURE = {
    "squared": 1.0,
    "huber": 1.0,
    "logistic": 0.25,
    "multinomial": 0.5,
    "squared_hinge": 2.0,
    "hinge": 1.0,
}
_SCHEDULES = ("adaptive", "constant", "invscaling", "optimal")
#: Key of the mini-batch cursor in each worker's ``state``.
_CURSOR_KEY = "daskml-sgd-cursor"
#: Random stream of the power iteration in the step-size estimate (distinct from the mini-batch streams).
_STREAM_POWER = 7


# ---------------------------------------------------------------------------------------------------------
# shared pieces (also used by async_sgd)


@dataclass(frozen=True)
class Schedule:
    """Learning rate as a function of the number of local steps a worker has taken.

    ``eta(step) = eta0 / (1 + decay * epochs) ** power_t`` with ``epochs = step / steps_per_epoch`` (passes
    over the worker's own rows); ``"constant"`` and ``"adaptive"`` (whose decrease the solver drives) use
    ``eta0``. ``"optimal"`` uses ``decay = eta0 * l2 * steps_per_epoch`` and ``power_t = 1``,
    i.e. ``eta = 1 / (l2 * (step + 1 / (eta0 * l2)))``, the classic ``1 / (mu t)`` rate of strongly convex
    problems with strong convexity ``l2``.

    Attributes
    ----------
    kind : {"constant", "invscaling", "optimal"}
    eta0 : float
    decay : float
    power_t : float
    l2 : float
        Strength of the l2 penalty of the per-sample objective (for ``"optimal"``).

    Examples
    --------
    >>> Schedule("invscaling", eta0=1.0, decay=1.0, power_t=1.0, l2=0.0).rate(10, steps_per_epoch=10)
    0.5
    >>> Schedule("optimal", eta0=1.0, decay=1.0, power_t=1.0, l2=0.5).rate(2, steps_per_epoch=10)
    0.5
    """

    kind: str
    eta0: float
    decay: float
    power_t: float
    l2: float

    def rate(self, step: float, *, steps_per_epoch: float) -> float:
        """The learning rate of local step ``step`` (0-based) of a worker with ``steps_per_epoch`` batches."""
        if self.kind in ("constant", "adaptive"):
            return self.eta0
        if self.kind == "optimal":
            return self.eta0 / (1.0 + self.eta0 * self.l2 * step)
        epochs = step / max(steps_per_epoch, 1.0)
        return self.eta0 / (1.0 + self.decay * epochs) ** self.power_t

    def shrunk(self, factor: float) -> Schedule:
        """The same schedule with ``eta0`` multiplied by ``factor`` (the ``"adaptive"`` decrease)."""
        return Schedule(self.kind, self.eta0 * factor, self.decay, self.power_t, self.l2)


def n_local_batches(local: Any, batch_size: int) -> int:
    """Mini-batches in one pass over a worker's rows (``iter_minibatches`` splits each block separately)."""
    return int(sum(math.ceil(block.X.shape[0] / batch_size) for block in local.blocks))


def next_batches(
    local: Any, token: str, entropy: int, batch_size: int, start: int, count: int
) -> Iterator[Any]:
    """Mini-batches number ``start .. start + count - 1`` of this worker's endless sequence of epochs.

    The position is remembered in ``local.state`` so that consecutive calls continue where the previous one
    stopped; when the state was lost (another solver run, the ``"tasks"`` or ``"stream"`` engines, a rebuilt
    worker) the sequence is recreated and advanced to ``start``, so the batches do not depend on the engine.
    """
    n_batches = n_local_batches(local, batch_size)
    if n_batches == 0 or count <= 0:
        return
    cursor = local.state.get(_CURSOR_KEY)
    if cursor is None or cursor["token"] != token or cursor["next"] != start:
        epoch, offset = divmod(start, n_batches)
        iterator = _endless_batches(local, batch_size, entropy, epoch)
        iterator = itertools.islice(iterator, offset, None) if offset else iterator
        cursor = {"token": token, "next": start, "iter": iterator}
        local.state[_CURSOR_KEY] = cursor
    for _ in range(count):
        batch = next(cursor["iter"])
        cursor["next"] += 1
        yield batch


def _endless_batches(local: Any, batch_size: int, entropy: int, epoch: int) -> Iterator[Any]:
    for current in itertools.count(epoch):
        yield from local.iter_minibatches(batch_size, entropy=entropy, epoch=current)


def proximal_step(W: np.ndarray, grad: np.ndarray, eta: float, l2: float, l1: float, n_features: int) -> None:
    """In place: ``W <- prox(W - eta * grad)`` for the penalty ``l2/2 ||w||^2 + l1 ||w||_1`` (intercept free).

    The penalty is applied exactly (soft-thresholding, then the l2 shrinkage), which keeps the step stable
    for any ``eta`` and gives exact zeros.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0], [0.05], [2.0]])
    >>> proximal_step(W, np.zeros((3, 1)), 1.0, 1.0, 0.1, 2)
    >>> W.ravel().tolist()
    [0.45, 0.0, 2.0]
    """
    W -= eta * grad
    coef = W[:n_features]
    if l1 > 0:
        np.copyto(coef, np.sign(coef) * np.maximum(np.abs(coef) - eta * l1, 0.0))
    if l2 > 0:
        coef /= 1.0 + eta * l2


def worker_key(local: Any) -> tuple[int, ...]:
    """Identity of a worker's share of the data: the global indices of the blocks it holds."""
    return tuple(int(index) for index in local.indices)


def _step_size_stats_worker(
    local: Any, fit_intercept: bool, max_rows: int, n_power_iter: int, entropy: int
) -> tuple[tuple[int, ...], float, float, float]:
    """Weight share, largest squared row norm and largest eigenvalue of the weighted second moment matrix.

    The eigenvalue comes from a power iteration on a sample of at most ``max_rows`` rows (the first rows of
    every block, in proportion to its size). Rows are extended with a constant 1 when ``fit_intercept``.
    """
    key = worker_key(local)
    n_rows = max(local.n_rows, 1)
    max_sq_norm = 0.0
    sampled = []
    for block in local.blocks:
        X = block.X
        if X.shape[0] == 0:
            continue
        sq = (
            np.asarray(X.multiply(X).sum(axis=1)).ravel()
            if hasattr(X, "multiply")
            else np.einsum("ij,ij->i", X, X, dtype=np.float64)
        )
        max_sq_norm = max(max_sq_norm, float(sq.max()) + float(fit_intercept))
        take = min(X.shape[0], math.ceil(max_rows * X.shape[0] / n_rows))
        weight = None if block.weight is None else np.asarray(block.weight[:take], dtype=np.float64)
        sampled.append((X[:take], weight))
    lam = 0.0
    if sampled:
        n_features = sampled[0][0].shape[1]
        from daskml_lab.data._blocks import block_rng

        v = block_rng(entropy, _STREAM_POWER, *key[:1]).standard_normal(n_features + int(fit_intercept))
        total = sum(X.shape[0] if w is None else float(w.sum()) for X, w in sampled) or 1.0
        for _ in range(n_power_iter):
            v /= np.linalg.norm(v) or 1.0
            out = np.zeros_like(v)
            for X, w in sampled:
                z = np.asarray(X @ v[:n_features], dtype=np.float64).ravel()
                if fit_intercept:
                    z += v[n_features]
                if w is not None:
                    z *= w
                out[:n_features] += np.asarray(X.T @ z, dtype=np.float64).ravel()
                if fit_intercept:
                    out[n_features] += z.sum()
            out /= total
            lam = float(np.linalg.norm(out))
            v = out
    return key, float(local.sum_weight), max_sq_norm, lam


def estimate_eta0(
    problem: Any, batch_size: int, l2: float, entropy: int, *, max_rows: int = 20_000, n_power_iter: int = 20
) -> float:
    """A safe first step for mini-batch SGD on the per-sample objective: ``1 / (L_B + l2)`` (one engine call).

    ``L_B = c * (lambda_max + max_i ||x_i||^2 / batch_size)`` bounds the smoothness constant of a mini-batch
    gradient (Gower et al., 2019), with ``c`` the curvature bound of the loss, ``lambda_max`` the largest
    eigenvalue of the weighted second moment of the rows (a share-weighted average of the workers' estimates,
    which bounds the global one from above) and ``||x_i||`` the largest row norm.
    """
    stats = problem.map_workers(
        _step_size_stats_worker, problem.fit_intercept, max_rows, n_power_iter, entropy
    )
    total = sum(s[1] for s in stats) or 1.0
    lam = sum(s[1] / total * s[3] for s in stats)
    max_sq_norm = max(s[2] for s in stats)
    curvature = _LOSS_CURVATURE.get(problem.loss, 1.0)
    smoothness = curvature * (lam + max_sq_norm / batch_size) + l2
    eta0 = 1.0 / smoothness if smoothness > 0 else 1.0
    logger.debug("SGD step size estimate: lambda_max=%.3g max|x|^2=%.3g eta0=%.3g", lam, max_sq_norm, eta0)
    return eta0


def resolve_batch_size(batch_size: int | str, n_samples: int) -> int:
    """``batch_size``, or for ``"auto"`` ``min(128, max(8, n_samples // 64))`` (at least 64 steps per epoch
    on small data, where larger batches leave too few steps per round to converge).

    Examples
    --------
    >>> resolve_batch_size("auto", 400), resolve_batch_size("auto", 4000), resolve_batch_size(32, 10)
    (8, 62, 32)
    """
    if isinstance(batch_size, str) and batch_size == "auto":
        return int(min(128, max(8, n_samples // 64)))
    return int(batch_size)


def check_stochastic_args(
    solver: str,
    *,
    learning_rate: Any,
    eta0: Any,
    decay: Any,
    power_t: Any,
    batch_size: Any,
    local_steps: Any,
    n_iter_no_change: Any,
    l2: float,
    local_steps_optional: bool = True,
) -> None:
    """Raise ``ValueError`` for bad schedule or batch arguments of the stochastic solvers."""
    if learning_rate not in _SCHEDULES:
        msg = f"{solver}: learning_rate must be one of {list(_SCHEDULES)}, got {learning_rate!r}."
        raise ValueError(msg)
    if learning_rate == "optimal" and l2 <= 0:
        msg = (
            f"{solver}: learning_rate='optimal' needs an l2 penalty (its rate is 1 / (l2 * t)), but the "
            "problem has l2=0. Use learning_rate='invscaling' instead."
        )
        raise ValueError(msg)
    if not (isinstance(eta0, str) and eta0 == "auto"):
        check_solver_args(solver, 0.0, 0, eta0=eta0)
    for name, value in (("decay", decay), ("power_t", power_t)):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
        if not ok or value < 0:
            msg = f"{solver}: {name} must be a finite number >= 0, got {value!r}."
            raise ValueError(msg)
    if isinstance(batch_size, str) and batch_size == "auto":
        batch_size = 1
    for name, value, allow_none in (
        ("batch_size", batch_size, False),
        ("local_steps", local_steps, local_steps_optional),
        ("n_iter_no_change", n_iter_no_change, False),
    ):
        if value is None and allow_none:
            continue
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            msg = f"{solver}: {name} must be an int >= 1{' or None' if allow_none else ''}, got {value!r}."
            raise ValueError(msg)


def evaluate(problem: Any, W: np.ndarray, scale: float) -> tuple[float, float]:
    """Per-sample objective ``F / scale`` at ``W`` and its optimality measure (one engine call).

    The measure is the sup-norm of the smallest subgradient (of the gradient without l1); for the
    non-differentiable hinge it uses the kernel's subgradient and does not vanish at the optimum.
    """
    value, grad = problem.loss_grad(W)
    objective = (value + problem.l1 * l1_norm(W, problem.n_features)) / scale
    optimality = l1_optimality(W, grad / scale, problem.n_features, problem.l1 / scale)
    return float(objective), float(optimality.max()) if optimality.size else 0.0


class NoChange:
    """Counts consecutive evaluations improving on the best objective so far by less than ``tol`` (relative).

    Examples
    --------
    >>> counter = NoChange(tol=0.01, patience=2)
    >>> [round(counter.update(value), 3) for value in (1.0, 0.5, 0.499, 0.6)], counter.done
    ([inf, 0.5, 0.002, -0.202], True)
    """

    def __init__(self, tol: float, patience: int) -> None:
        self.tol, self.patience = tol, patience
        self.best = math.inf
        self.count = 0

    def update(self, objective: float) -> float:
        """Record an objective; return its relative improvement on the best so far (inf the first time)."""
        change = math.inf
        if math.isfinite(self.best):
            change = (self.best - objective) / max(abs(self.best), 1e-300)
        self.count = self.count + 1 if change < self.tol else 0
        self.best = min(self.best, objective)
        return change

    @property
    def done(self) -> bool:
        """Whether the last ``patience`` evaluations all improved by less than ``tol``."""
        return self.count >= self.patience


def diverged_error(eta0: float, *, solver: str) -> ValueError:
    """The error raised when the iterates stop being finite."""
    msg = (
        f"{solver} diverged: the objective became infinite or NaN with eta0={eta0:.3g}. Pass a smaller eta0 "
        "(e.g. a tenth of it) in solver_options, scale the features (e.g. StandardScaler), or use "
        "learning_rate='invscaling' with a larger decay."
    )
    return ValueError(msg)


# ---------------------------------------------------------------------------------------------------------
# the synchronous solver


def _sgd_round_worker(
    local: Any,
    token: str,
    W: np.ndarray,
    round_index: int,
    local_steps: int | None,
    batch_size: int,
    entropy: int,
    schedule: Schedule,
    l2: float,
    l1: float,
    n_features: int,
) -> tuple[tuple[int, ...], np.ndarray, float, float, int]:
    """One round on one worker: ``local_steps`` proximal mini-batch steps from ``W`` on the local rows.

    Returns the worker key, its final parameters, its total sample weight, the last learning rate and the
    number of steps taken. Gradients are those of the worker's per-sample objective (the mini-batch data
    gradient divided by the batch size times the local mean weight).
    """
    key = worker_key(local)
    W = np.array(W, dtype=np.float64, copy=True)
    steps_per_epoch = n_local_batches(local, batch_size)
    if local.sum_weight <= 0 or steps_per_epoch == 0:
        return key, W, 0.0, schedule.eta0, 0
    n_steps = steps_per_epoch if local_steps is None else local_steps
    start = round_index * n_steps
    mean_weight = local.sum_weight / local.n_rows
    eta = schedule.eta0
    for j, batch in enumerate(next_batches(local, token, entropy, batch_size, start, n_steps)):
        eta = schedule.rate(start + j, steps_per_epoch=steps_per_epoch)
        _, grad = local.loss_grad_batch(batch, W)
        grad /= batch.X.shape[0] * mean_weight
        proximal_step(W, grad, eta, l2, l1, n_features)
    return key, W, float(local.sum_weight), float(eta), n_steps


def sgd(
    problem: Any,
    *,
    w0: Any = None,
    tol: float = 1e-4,
    max_iter: int = 100,
    random_state: Any = None,
    callback: Callable[..., Any] | None = None,
    learning_rate: str = "adaptive",
    eta0: float | str = "auto",
    shrink: float = 0.5,
    decay: float = 1.0,
    power_t: float = 1.0,
    batch_size: int | str = "auto",
    local_steps: int | None = None,
    eval_every: int = 1,
    n_iter_no_change: int = 5,
    checkpoint: SolverCheckpoint | None = None,
) -> SolverResult:
    """Minimise a :class:`~daskml_lab.solvers.BlockedProblem` with synchronous distributed mini-batch SGD.

    Every round, each worker starts from the current parameters and takes ``local_steps`` mini-batch steps on
    its own rows (a proximal gradient step on the per-sample objective: gradient of the data term and of the
    l2 penalty, then soft-thresholding for l1; the intercept is never penalised); the client then averages the
    workers' parameters weighted by their share of the sample weight. One round is one round trip
    (``problem.map_workers``). Works for every loss, including the non-differentiable ``"hinge"`` (its
    subgradient), and for l1/elastic-net penalties.

    Parameters
    ----------
    problem : BlockedProblem
        Any loss, any ``l1 >= 0`` and ``l2 >= 0``.
    w0 : ndarray of shape (n_params, n_outputs) or None, default=None
        Starting parameters; zeros when None.
    tol : float, default=1e-4
        Stop when ``n_iter_no_change`` consecutive evaluations improve the best objective so far by less than
        ``tol`` (relative), or when the optimality measure of the per-sample objective (as for lbfgs: the
        sup-norm of the smallest subgradient) is at most ``tol``. SGD stops near the optimum, not at it: on
        standardised data the default settings end within about ``1e-3`` (relative) of the optimal objective,
        usually much closer on large data.
    max_iter : int, default=100
        Largest number of rounds (with ``local_steps=None``, passes over the data).
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the order of the mini-batches (combined with each block's index and the epoch, so the order does
        not depend on which worker holds a block). Equal seeds give equal results on the same placement.
    callback : callable or None, default=None
        ``callback(record, W)`` after each round; returning True stops the solver.
    learning_rate : {"adaptive", "invscaling", "constant", "optimal"}, default="adaptive"
        ``"adaptive"``: ``eta0``, multiplied by ``shrink`` after every evaluation whose objective is worse
        than the best so far, the next round restarting from the best parameters;
        ``"invscaling"``: ``eta0 / (1 + decay * epochs) ** power_t``, epochs counted in passes over a
        worker's rows; ``"constant"``: ``eta0``; ``"optimal"``: ``eta0 / (1 + eta0 * l2 * t)`` with ``t`` the
        local step count and ``l2`` the strong convexity of the penalty (needs ``l2 > 0``; slow when ``l2`` is
        small).
    eta0 : float or "auto", default="auto"
        First learning rate, on the per-sample objective. ``"auto"`` estimates ``1 / L_B``, the inverse
        smoothness of a mini-batch gradient, from the largest row norm and a power iteration on a sample of
        each worker's rows (one extra round trip before the first round).
    shrink : float, default=0.5
        Factor of the ``"adaptive"`` decrease, in (0, 1).
    decay : float, default=1.0
        Decay of ``"invscaling"`` per epoch.
    power_t : float, default=1.0
        Exponent of ``"invscaling"``.
    batch_size : int or "auto", default="auto"
        Rows per mini-batch (mini-batches never span two blocks); ``"auto"`` is
        ``min(128, max(8, n_samples // 64))``.
    local_steps : int or None, default=None
        Steps per worker per round; None means one pass over the worker's rows.
    eval_every : int, default=1
        Evaluate the objective and its gradient (one extra round trip, one pass over the data) every
        ``eval_every`` rounds; the stopping test runs on these evaluations.
    n_iter_no_change : int, default=5
        Consecutive evaluations that improve the best objective by less than ``tol`` (relative) needed to
        stop.
    checkpoint : SolverCheckpoint or None, default=None
        Save the parameters, the best parameters so far, the round, the learning-rate schedule's position,
        the stopping test's counters, the random streams' root entropy and the history every
        ``checkpoint.every`` rounds. A run given a checkpoint of the same problem resumes at the next round
        with the same mini-batches and rates, so on the same placement of the blocks it reaches the result of
        an uninterrupted run (see :doc:`/checkpoints`).

    Returns
    -------
    SolverResult
        ``W`` is the evaluated parameters with the lowest objective. History records (one per round):
        ``objective`` (``F``, NaN for rounds without evaluation), ``grad_norm`` (the optimality measure; for
        the hinge, of the kernel's subgradient, which does not vanish at the optimum), ``step_size`` (the
        workers' last learning rate), ``time_s``, ``n_evals``, ``relative_change`` (improvement on
        the best objective so far) and ``n_steps`` (local steps per worker).

    Raises
    ------
    ValueError
        For invalid arguments, or when the iterates diverge (the message suggests a smaller ``eta0``).

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` rounds are reached before the stopping test is met.

    Notes
    -----
    With one worker this is plain proximal mini-batch SGD. With several, each round is "local SGD": workers
    whose rows differ in distribution drift apart during long rounds, which the averaging only partly
    corrects; shuffle the rows across blocks, or lower ``local_steps``, when blocks are sorted (e.g. by
    class). The decaying learning rate removes this bias in the limit.

    References
    ----------
    L. Bottou, F. E. Curtis and J. Nocedal, "Optimization methods for large-scale machine learning", SIAM
    Review 60(2), 2018. S. U. Stich, "Local SGD converges fast and communicates little", ICLR 2019.
    R. M. Gower et al., "SGD: general analysis and improved rates", ICML 2019.
    """
    check_solver_args("sgd", tol, max_iter, eval_every=eval_every, shrink=shrink)
    if not 0 < shrink < 1:
        msg = f"sgd: shrink must be in (0, 1), got {shrink!r}."
        raise ValueError(msg)
    if not isinstance(eval_every, numbers.Integral) or isinstance(eval_every, bool):
        msg = f"sgd: eval_every must be an int >= 1, got {eval_every!r}."
        raise ValueError(msg)
    require_problem(problem, "sgd", smooth=False, allow_l1=True)
    with fit_span("sgd"), single_threaded_blas():
        problem.start()
        scale = problem.objective_scale
        l2, l1 = problem.l2 / scale, problem.l1 / scale
        check_stochastic_args(
            "sgd",
            learning_rate=learning_rate,
            eta0=eta0,
            decay=decay,
            power_t=power_t,
            batch_size=batch_size,
            local_steps=local_steps,
            n_iter_no_change=n_iter_no_change,
            l2=l2,
        )
        from daskml_lab.data._blocks import root_entropy

        run = open_checkpoint(
            checkpoint,
            problem,
            "sgd",
            {
                "tol": tol,
                "max_iter": max_iter,
                "random_state": random_state,
                "learning_rate": learning_rate,
                "eta0": eta0,
                "shrink": shrink,
                "decay": decay,
                "power_t": power_t,
                "batch_size": batch_size,
                "local_steps": local_steps,
                "eval_every": eval_every,
                "n_iter_no_change": n_iter_no_change,
            },
        )
        saved = run.load()
        if saved is not None and saved.complete:
            return finished_result(saved, problem, "sgd")
        batch_size = resolve_batch_size(batch_size, problem.n_samples)
        token = uuid.uuid4().hex
        shape = (problem.n_params, problem.n_outputs)
        history = History(scale, callback, shape)
        no_change = NoChange(tol, n_iter_no_change)
        converged, message, n_iter, change = False, "", 0, math.nan
        if saved is None:
            entropy = root_entropy(random_state)
            W = problem.initial_params(w0)
            first_eta = estimate_eta0(problem, batch_size, l2, entropy) if eta0 == "auto" else float(eta0)
            schedule = Schedule(learning_rate, first_eta, float(decay), float(power_t), l2)
            best_W, best_objective = W.copy(), math.inf
        else:  # resume: the same random streams, schedule position and stopping counters
            state = saved.state
            entropy, first_eta = int(state["entropy"]), float(state["first_eta"])
            schedule = Schedule(learning_rate, float(state["eta0"]), float(decay), float(power_t), l2)
            W = saved.arrays["W"]
            best_W, best_objective = saved.arrays.get("best_W", W.copy()), float(state["best_objective"])
            no_change.best, no_change.count = float(state["no_change_best"]), int(state["no_change_count"])
            n_iter, change = saved.iteration, float(state["change"])
            history.restore(saved.history)
        for round_index in range(n_iter, max_iter):
            results = problem.map_workers(
                _sgd_round_worker,
                token,
                W,
                round_index,
                local_steps,
                batch_size,
                entropy,
                schedule,
                l2,
                l1,
                problem.n_features,
            )
            n_iter = round_index + 1
            total = sum(r[2] for r in results)
            if total > 0:
                W = sum((r[2] / total) * r[1] for r in results)
            eta = max(r[3] for r in results)
            objective, optimality, change = math.nan, math.nan, math.nan
            evaluated = n_iter % eval_every == 0 or n_iter == max_iter
            round_W = W
            if evaluated:
                objective, optimality = evaluate(problem, W, scale)
                if not math.isfinite(objective) or not np.all(np.isfinite(W)):
                    if learning_rate != "adaptive" or schedule.eta0 < 1e-8 * first_eta:
                        raise diverged_error(first_eta, solver="sgd")
                    # adaptive: restart from the best point with a smaller rate
                    schedule = schedule.shrunk(shrink)
                    W = best_W
                else:
                    change = no_change.update(objective)
                    if objective < best_objective:
                        best_W, best_objective = W, objective
                    elif learning_rate == "adaptive":
                        # worse than the best point: restart from it with a smaller rate
                        W = best_W
                        schedule = schedule.shrunk(shrink)
            stop = history.add(
                objective_scaled=objective,
                grad_norm=optimality,
                step_size=eta,
                n_evals=problem.n_evaluations,
                x=round_W,
                relative_change=change,
                n_steps=max(r[4] for r in results),
            )
            if evaluated and optimality <= tol:
                converged, message = True, f"optimality {optimality:.3g} <= tol={tol:g}"
                break
            if evaluated and no_change.done:
                converged = True
                message = (
                    f"the objective decreased by less than tol={tol:g} (relative) in {n_iter_no_change} "
                    "consecutive evaluations"
                )
                break
            if stop:
                message = "stopped by the callback"
                break
            run.save(
                n_iter,
                history.records,
                {"W": W, "best_W": best_W},
                entropy=entropy,
                first_eta=first_eta,
                eta0=schedule.eta0,
                best_objective=best_objective,
                no_change_best=no_change.best,
                no_change_count=no_change.count,
                change=change,
            )
        else:
            message = f"reached max_iter={max_iter} rounds (last relative objective change {change:.3g})"
        if math.isfinite(best_objective):
            W = best_W
        warning = None
        if not converged and message != "stopped by the callback":
            warning = f"{message}. Increase max_iter, or loosen tol."
        W = np.asarray(W, dtype=np.float64).reshape(shape)
        run.complete(SolverResult(W, n_iter, converged, history.records, message), warning)
    if warning is not None:
        warn_not_converged("sgd", warning)
    logger.debug("sgd: %d rounds, eta0=%.3g: %s", n_iter, first_eta, message)
    W = W.astype(problem.dtype)
    return SolverResult(W=W, n_iter=n_iter, converged=converged, history=history.records, message=message)
