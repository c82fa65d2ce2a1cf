"""The evaluations of a stochastic run (``sgd`` and ``async-sgd``) and what they decide.

An evaluation of the full objective at a point certifies it (its optimality measure, that of lbfgs) and
anchors the variance-reduced steps that follow (its per-sample data gradient). :class:`Progress` keeps the
best point and the current anchor, applies the ``"adaptive"`` decrease of the rate, and holds the stopping
rule both solvers share.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from daskml_lab.solvers._regularizers import l1_norm, l1_optimality
from daskml_lab.solvers._stochastic import Anchor, Schedule, StochasticOptions

__all__ = ["Evaluation", "NoChange", "Progress", "Stop", "diverged_error", "evaluate"]


class Evaluation(NamedTuple):
    """The full objective at a point, its optimality measure and the SVRG anchor it provides."""

    #: Per-sample objective ``F / scale`` (the l1 term included).
    objective: float
    #: Sup-norm of the smallest subgradient of the per-sample objective (as for lbfgs).
    optimality: float
    #: The point and the per-sample gradient of its data term.
    anchor: Anchor


def evaluate(problem: Any, W: np.ndarray, scale: float) -> Evaluation:
    """Per-sample objective ``F / scale`` at ``W``, its optimality measure and its anchor (one engine call).

    The measure is the sup-norm of the smallest subgradient (of the gradient without l1); for the
    non-differentiable hinge it uses the kernel's subgradient and does not vanish at the optimum.
    """
    W = np.array(W, dtype=np.float64, copy=True)
    value, grad = problem.loss_grad(W)
    objective = (value + problem.l1 * l1_norm(W, problem.n_features)) / scale
    grad = np.asarray(grad, dtype=np.float64) / scale
    optimality = l1_optimality(W, grad, problem.n_features, problem.l1 / scale)
    # the anchor holds the data term's gradient alone: the steps apply the penalties exactly
    data_grad = grad.copy()
    data_grad[: problem.n_features] -= (problem.l2 / scale) * W[: problem.n_features]
    measure = float(optimality.max()) if optimality.size else 0.0
    return Evaluation(float(objective), measure, Anchor(W, data_grad))


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


class Stop(NamedTuple):
    """Why a stochastic solver stops, and the point it returns."""

    message: str
    W: np.ndarray


class Progress:
    """The evaluated objectives of a stochastic run: best point, current anchor, stopping rule, learning rate.

    With ``learning_rate="adaptive"``, an evaluation worse than the best so far (or not finite) multiplies the
    rate by ``shrink`` and sends the solver back to the best point; with the other schedules a non-finite
    evaluation is an error.

    The stopping rule (:meth:`stopping`), the same for both stochastic solvers: the optimality measure of
    an evaluated point is at most ``tol`` (the criterion of lbfgs); for a non-differentiable loss (the hinge,
    whose measure does not vanish at the optimum) also a plateau: ``n_iter_no_change`` consecutive evaluations
    improving the best objective by less than ``tol`` (relative).

    Parameters
    ----------
    solver : str
        Solver name, for the divergence error.
    options : StochasticOptions
    tol : float
        The stopping tolerance.
    first_eta : float
        The first learning rate (of the whole run, also after a resume).
    schedule : Schedule
        The current schedule.
    best_W : ndarray
        The best point so far (the starting point before any evaluation).
    smooth : bool
        Whether the loss is differentiable (then only the optimality measure stops the solver).
    """

    def __init__(
        self,
        solver: str,
        options: StochasticOptions,
        tol: float,
        first_eta: float,
        schedule: Schedule,
        best_W: np.ndarray,
        *,
        smooth: bool,
    ) -> None:
        self.solver, self.options, self.tol, self.smooth = solver, options, tol, smooth
        self.first_eta, self.schedule = first_eta, schedule
        self.best_W, self.best_objective = best_W, math.inf
        #: The anchor of the best evaluation, and the one the next steps use (None before any evaluation).
        self.best_anchor: Anchor | None = None
        self.anchor: Anchor | None = None
        self.no_change = NoChange(tol, options.n_iter_no_change)

    def observe(
        self, evaluation: Evaluation, fallback: Callable[[], np.ndarray] | None = None
    ) -> tuple[float, np.ndarray | None]:
        """Record an evaluation, and set :attr:`anchor` for the next steps.

        Returns
        -------
        change : float
            Relative improvement on the best objective so far (NaN when not finite).
        restart : ndarray or None
            The point to continue from (the best one, or ``fallback()`` when no evaluation was finite yet and
            a fallback is given), or None to continue from the evaluated point.
        """
        objective, W = evaluation.objective, evaluation.anchor.W
        adaptive = self.options.learning_rate == "adaptive"
        if not math.isfinite(objective) or not np.all(np.isfinite(W)):
            if not adaptive or self.schedule.eta0 < 1e-8 * self.first_eta:
                raise diverged_error(self.first_eta, solver=self.solver)
            self.schedule = self.schedule.shrunk(self.options.shrink)
            self.anchor = self.best_anchor
            if fallback is not None and not math.isfinite(self.best_objective):
                return math.nan, fallback()
            return math.nan, self.best_W
        change = self.no_change.update(objective)
        if objective < self.best_objective:
            self.best_W, self.best_objective = evaluation.anchor.W, objective
            self.best_anchor = evaluation.anchor
        elif adaptive:
            # worse than the best point: restart from it with a smaller rate
            self.schedule = self.schedule.shrunk(self.options.shrink)
            self.anchor = self.best_anchor
            return change, self.best_W
        self.anchor = evaluation.anchor
        return change, None

    def stopping(self, evaluation: Evaluation) -> Stop | None:
        """Whether the solver stops after ``evaluation`` (the stopping rule above): why, and with which point.

        The optimality test certifies the evaluated point, which is returned; the plateau test keeps the best
        point so far. None means go on.
        """
        if evaluation.optimality <= self.tol:
            return Stop(f"optimality {evaluation.optimality:.3g} <= tol={self.tol:g}", evaluation.anchor.W)
        if not self.smooth and self.no_change.done:
            message = (
                f"the objective decreased by less than tol={self.tol:g} (relative) in "
                f"{self.options.n_iter_no_change} consecutive evaluations (the plateau test of the "
                "non-differentiable loss)"
            )
            return Stop(message, self.best_W)
        return None

    def state(self) -> dict[str, float]:
        """The scalar state, for a checkpoint."""
        return {
            "first_eta": self.first_eta,
            "eta0": self.schedule.eta0,
            "best_objective": self.best_objective,
            "no_change_best": self.no_change.best,
            "no_change_count": self.no_change.count,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The array state (best point, anchors), for a checkpoint."""
        arrays = {"best_W": self.best_W}
        for name, anchor in (("best", self.best_anchor), ("anchor", self.anchor)):
            if anchor is not None:
                arrays[f"{name}_anchor_W"], arrays[f"{name}_anchor_grad"] = anchor.W, anchor.grad
        return arrays

    @classmethod
    def resumed(
        cls,
        solver: str,
        options: StochasticOptions,
        tol: float,
        l2: float,
        state: dict[str, Any],
        arrays: dict[str, np.ndarray],
        *,
        smooth: bool,
    ) -> Progress:
        """The progress saved by :meth:`state` and :meth:`arrays`."""
        progress = cls(
            solver,
            options,
            tol,
            float(state["first_eta"]),
            options.schedule(float(state["eta0"]), l2),
            arrays["best_W"],
            smooth=smooth,
        )
        progress.best_objective = float(state["best_objective"])
        progress.no_change.best = float(state["no_change_best"])
        progress.no_change.count = int(state["no_change_count"])
        for name in ("best", "anchor"):
            if f"{name}_anchor_W" in arrays:
                anchor = Anchor(arrays[f"{name}_anchor_W"], arrays[f"{name}_anchor_grad"])
                setattr(progress, "best_anchor" if name == "best" else "anchor", anchor)
        return progress
