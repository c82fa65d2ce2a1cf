"""What the stochastic solvers (``sgd`` and ``async-sgd``) share.

Their options (:class:`StochasticOptions`), the learning-rate schedule, the mini-batch cursor that remembers
each worker's position in its endless sequence of epochs, the (variance-reduced) elastic-net proximal step, the
estimate of a safe first step size. The evaluations and the stopping rule are in
:mod:`daskml_lab.solvers._stochastic_progress`.

Variance reduction (SVRG, Johnson and Zhang, 2013; its proximal form, Xiao and Zhang, 2014): each evaluation
of the full objective at a point ``W~`` also gives its per-sample data gradient ``g~``; until the next one,
every mini-batch step uses ``grad_B(W) - grad_B(W~) + g~`` instead of ``grad_B(W)``. This direction is
unbiased, its variance vanishes as ``W`` and ``W~`` approach the optimum, and ``g~`` is the *global* gradient,
which also corrects the drift of a worker whose rows differ from the others' (rows sorted by class). So a
constant step converges to the exact optimum, linearly on strongly convex problems, and the solvers can stop
on the optimality criterion of lbfgs instead of a plateau of the objective.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from daskml_lab._runtime.seeding import block_rng
from daskml_lab.solvers._options import (
    SolverOptions,
    check_in_range,
    check_int,
    check_non_negative,
    check_positive,
    option_error,
)

logger = logging.getLogger(__name__)

__all__ = [
    "Anchor",
    "Schedule",
    "StochasticOptions",
    "estimate_eta0",
    "n_local_batches",
    "next_batches",
    "proximal_step",
    "resolve_batch_size",
    "stochastic_step",
]

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
_VARIANCE_REDUCTION = ("auto", "svrg", "none")
#: Key of the mini-batch cursor in each worker's ``state``.
_CURSOR_KEY = "daskml-sgd-cursor"
#: Random stream of the power iteration in the step-size estimate (distinct from the mini-batch streams).
_STREAM_POWER = 7


@dataclasses.dataclass(frozen=True)
class StochasticOptions(SolverOptions):
    """Options shared by the stochastic solvers (see :func:`~daskml_lab.solvers.sgd.sgd`), validated.

    Examples
    --------
    >>> from daskml_lab.solvers.sgd import SGDOptions
    >>> SGDOptions(learning_rate="fast")
    Traceback (most recent call last):
    ...
    ValueError: sgd: learning_rate must be one of ['adaptive', 'constant', 'invscaling', 'optimal'], got 'fast'.
    """

    learning_rate: str = "adaptive"
    eta0: float | str = "auto"
    shrink: float = 0.5
    decay: float = 1.0
    power_t: float = 1.0
    batch_size: int | str = "auto"
    local_steps: int | None = None
    n_iter_no_change: int = 5
    variance_reduction: str = "auto"

    #: Whether ``local_steps=None`` (one pass over a worker's rows per call) is allowed.
    _local_steps_optional = True

    def __post_init__(self) -> None:
        solver = self.solver
        check_positive(solver, "shrink", self.shrink)
        check_in_range(solver, "shrink", self.shrink, 0, 1)
        if self.learning_rate not in _SCHEDULES:
            raise option_error(
                solver, f"learning_rate must be one of {list(_SCHEDULES)}, got {self.learning_rate!r}."
            )
        if not (isinstance(self.eta0, str) and self.eta0 == "auto"):
            check_positive(solver, "eta0", self.eta0)
        check_non_negative(solver, "decay", self.decay)
        check_non_negative(solver, "power_t", self.power_t)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_int(solver, "batch_size", self.batch_size)
        check_int(solver, "local_steps", self.local_steps, allow_none=self._local_steps_optional)
        check_int(solver, "n_iter_no_change", self.n_iter_no_change)
        if self.variance_reduction not in _VARIANCE_REDUCTION:
            raise option_error(
                solver,
                f"variance_reduction must be one of {list(_VARIANCE_REDUCTION)}, got "
                f"{self.variance_reduction!r}.",
            )

    def uses_svrg(self, problem: Any) -> bool:
        """Whether the steps are variance-reduced: ``"svrg"``, or ``"auto"`` with a differentiable loss."""
        if self.variance_reduction == "auto":
            return bool(problem.loss_info.smooth)
        return self.variance_reduction == "svrg"

    def check_problem(self, problem: Any) -> None:
        """Refuse ``learning_rate="optimal"`` without an l2 penalty (its rate is ``1 / (l2 t)``)."""
        if self.learning_rate == "optimal" and problem.l2 <= 0:
            raise option_error(
                self.solver,
                "learning_rate='optimal' needs an l2 penalty (its rate is 1 / (l2 * t)), but the problem has "
                "l2=0. Use learning_rate='invscaling' instead.",
            )

    def schedule(self, eta0: float, l2: float) -> Schedule:
        """The learning-rate schedule starting at ``eta0``, for the per-sample l2 strength ``l2``."""
        return Schedule(self.learning_rate, float(eta0), float(self.decay), float(self.power_t), l2)


@dataclasses.dataclass(frozen=True)
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


class Anchor(NamedTuple):
    """The point of the last evaluation and its per-sample data gradient: the SVRG control variate."""

    #: Parameters ``W~`` of shape (n_params, n_outputs).
    W: np.ndarray
    #: Gradient of the data term of the per-sample objective at ``W~`` (no penalty), same shape.
    grad: np.ndarray


def stochastic_step(
    local: Any,
    batch: Any,
    W: np.ndarray,
    anchor: Anchor | None,
    eta: float,
    l2: float,
    l1: float,
    n_features: int,
    mean_weight: float,
) -> None:
    """In place: one proximal mini-batch step on ``W``, variance-reduced when ``anchor`` is given.

    The direction estimates the gradient of the data term of the per-sample objective: the mini-batch gradient
    divided by the batch's expected weight (``rows * mean_weight``), or with an anchor
    ``(grad_B(W) - grad_B(W~)) / (rows * mean_weight) + g~`` (SVRG). The penalties are applied by
    :func:`proximal_step`.
    """
    _, grad = local.loss_grad_batch(batch, W)
    if anchor is not None:
        _, at_anchor = local.loss_grad_batch(batch, anchor.W)
        grad -= at_anchor
    grad /= batch.X.shape[0] * mean_weight
    if anchor is not None:
        grad += anchor.grad
    proximal_step(W, grad, eta, l2, l1, n_features)


class StepSizeStats(NamedTuple):
    """One worker's contribution to the step-size estimate."""

    key: tuple[int, ...]
    sum_weight: float
    max_sq_norm: float
    lambda_max: float


def _step_size_stats_worker(
    local: Any, fit_intercept: bool, max_rows: int, n_power_iter: int, entropy: int
) -> StepSizeStats:
    """Weight share, largest squared row norm and largest eigenvalue of the weighted second moment matrix.

    The eigenvalue comes from a power iteration on a sample of at most ``max_rows`` rows (the first rows of
    every block, in proportion to its size). Rows are extended with a constant 1 when ``fit_intercept``.
    """
    key = local.key
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
    return StepSizeStats(key, float(local.sum_weight), max_sq_norm, lam)


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
    total = sum(s.sum_weight for s in stats) or 1.0
    lam = sum(s.sum_weight / total * s.lambda_max for s in stats)
    max_sq_norm = max(s.max_sq_norm for s in stats)
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
