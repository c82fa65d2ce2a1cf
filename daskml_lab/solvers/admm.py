"""Consensus ADMM: every worker solves a local problem on its own rows, the client keeps the consensus.

Write the per-sample objective as ``F(W) / scale = sum_i f_i(W) + g(W)``, with ``f_i`` the data term of the
rows held by worker ``i`` (divided by ``scale = data_scale * sum_weights``) and ``g`` the penalty. Consensus
ADMM (Boyd et al., 2011, section 7.1) gives each worker its own copy ``x_i`` and iterates

    x_i <- argmin_x f_i(x) + (rho_i / 2) ||x - z + u_i||^2          (on the worker, scipy L-BFGS-B)
    z   <- prox_{g / rho}(sum_i (rho_i / rho) (x_i + u_i))           (on the client, closed form)
    u_i <- u_i + x_i - z                                             (on the client)

with ``rho_i = rho * share_i`` (``share_i``: the worker's fraction of the sample weight), so that the method,
and its fixed point, do not depend on how the rows are spread over the workers. One iteration is one round
trip: ``z``, ``x_i`` and ``u_i`` go out (all small), ``x_i`` and the loss and gradient of ``f_i`` at ``z``
come back. The duals ``u_i`` and the local solutions ``x_i`` live on the client, so nothing is lost when a
worker's state is (the engine then places the blocks anew and the duals restart from zero).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import minimize

from daskml_lab.solvers._admm_hinge import hinge_local_solve
from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._options import (
    SolverOptions,
    check_in_range,
    check_int,
    check_positive,
    option_error,
)
from daskml_lab.solvers._regularizers import l1_norm, l1_optimality
from daskml_lab.solvers._result import SolverResult
from daskml_lab.solvers._scaffold import Outcome, SolverRun, Status, run_solver

logger = logging.getLogger(__name__)

__all__ = ["ADMMOptions", "ADMMReply", "admm"]

_EPS = float(np.finfo(np.float64).eps)
#: Hinge local solves stop at margin errors of ``local_tol * _HINGE_TOL_FACTOR * tol``: the exact polish is
#: cheap, and looser local solutions leave the residuals of several workers oscillating above ``tol``.
_HINGE_TOL_FACTOR = 1e-2
#: rho stays within this factor of its starting value.
_RHO_RANGE = 1e6
#: What ``tol`` is compared with, for smooth losses and for the hinge.
_MEASURE = {True: "optimality", False: "ADMM residuals"}


@dataclasses.dataclass(frozen=True)
class ADMMOptions(SolverOptions):
    """Tuning constants of :func:`admm` (see its parameters), validated when created.

    Examples
    --------
    >>> ADMMOptions(relaxation=2.5)
    Traceback (most recent call last):
    ...
    ValueError: admm: relaxation must be in (0, 2), got 2.5.
    """

    solver = "admm"
    rho: float = 1.0
    adaptive_rho: bool = True
    rho_mu: float = 10.0
    rho_tau: float = 2.0
    relaxation: float = 1.0
    local_tol: float = 0.1
    local_max_iter: int = 200
    memory: int = 10
    hinge_smoothing: float = 1e-3
    max_working_set: int = 20_000

    def __post_init__(self) -> None:
        for name in (
            "rho",
            "rho_mu",
            "rho_tau",
            "relaxation",
            "local_tol",
            "hinge_smoothing",
            "max_working_set",
        ):
            check_positive(self.solver, name, getattr(self, name))
        check_in_range(self.solver, "relaxation", self.relaxation, 0, 2)
        if self.rho_mu <= 1 or self.rho_tau <= 1:
            raise option_error(
                self.solver,
                f"rho_mu and rho_tau must be > 1, got rho_mu={self.rho_mu!r}, rho_tau={self.rho_tau!r}.",
            )
        for name in ("local_max_iter", "memory"):
            check_int(self.solver, name, getattr(self, name))


class ADMMReply(NamedTuple):
    """What one worker returns from an iteration of :func:`admm`."""

    #: The worker's share of the data (global block indices).
    key: tuple[int, ...]
    #: Its local solution ``x_i``.
    x: np.ndarray
    #: Its fraction ``share_i`` of the sample weight.
    share: float
    #: ``f_i(z)``, its data term at the consensus it received.
    value: float
    #: The (sub)gradient of ``f_i`` at ``z``.
    grad: np.ndarray
    #: Passes over its rows in the local solve.
    n_passes: int


# ---------------------------------------------------------------------------------------------------------
# worker side


def _admm_worker(
    local: Any,
    z: np.ndarray,
    rho: float,
    per_worker: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]],
    total_weight: float,
    data_factor: float,
    local_gtol: float,
    local_max_iter: int,
    memory: int,
    hinge_smoothing: float,
    max_working_set: int,
) -> ADMMReply:
    """Evaluate ``f_i`` at ``z``, then solve ``min_x f_i(x) + (rho_i / 2) ||x - z + u_i||^2`` locally.

    ``per_worker[key] = (x_i, u_i)`` from the previous iteration (absent at the start): ``x_i`` warm-starts
    L-BFGS-B. ``data_factor`` turns the unscaled data term into ``f_i`` (``data_scale / scale``). For the
    hinge the local problem is solved exactly by :func:`~daskml_lab.solvers._admm_hinge.hinge_local_solve`.
    """
    key = local.key
    shape = z.shape
    share = local.sum_weight / total_weight if total_weight > 0 else 0.0
    value, grad = local.loss_grad(z)
    previous = per_worker.get(key)
    u = previous[1] if previous is not None else np.zeros(shape)
    x0 = previous[0] if previous is not None else z
    v = (z - u).ravel()
    rho_i = rho * share
    if rho_i <= 0:  # no weight here: f_i is zero and the local minimiser is the centre
        return ADMMReply(key, v.reshape(shape), share, data_factor * value, data_factor * grad, 1)
    if local.spec.loss == "hinge":
        x, n_passes = hinge_local_solve(
            local,
            v,
            np.asarray(x0, dtype=np.float64).ravel(),
            rho_i,
            data_factor,
            local_gtol,
            local_max_iter,
            memory,
            hinge_smoothing,
            max_working_set,
        )
        return ADMMReply(key, x.reshape(shape), share, data_factor * value, data_factor * grad, 1 + n_passes)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        data_value, data_grad = local.loss_grad(x.reshape(shape))
        diff = x - v
        return (
            data_factor * data_value + 0.5 * rho_i * float(diff @ diff),
            data_factor * data_grad.ravel() + rho_i * diff,
        )

    options = {"maxiter": local_max_iter, "maxcor": memory, "gtol": local_gtol * share, "ftol": 10 * _EPS}
    start = np.asarray(x0, dtype=np.float64).ravel()
    result = minimize(fun, start, jac=True, method="L-BFGS-B", options=options)
    return ADMMReply(
        key, result.x.reshape(shape), share, data_factor * value, data_factor * grad, 1 + int(result.nfev)
    )


# ---------------------------------------------------------------------------------------------------------
# client side


def _prox_penalty(a: np.ndarray, n_features: int, l2: float, l1: float, rho: float) -> np.ndarray:
    """``argmin_z l2/2 ||z_coef||^2 + l1 ||z_coef||_1 + rho/2 ||z - a||^2`` (intercept rows: ``z = a``).

    Examples
    --------
    >>> import numpy as np
    >>> _prox_penalty(np.array([[3.0], [0.5], [2.0]]), 2, l2=1.0, l1=1.0, rho=1.0).ravel().tolist()
    [1.0, 0.0, 2.0]
    """
    z = np.array(a, dtype=np.float64, copy=True)
    coef = z[:n_features]
    if l1 > 0:
        np.copyto(coef, np.sign(coef) * np.maximum(np.abs(coef) - l1 / rho, 0.0))
    if l2 > 0:
        coef /= 1.0 + l2 / rho
    return z


def admm(
    problem: Any,
    *,
    w0: Any = None,
    tol: float = 1e-4,
    max_iter: int = 500,
    random_state: Any = None,
    callback: Callable[..., Any] | None = None,
    rho: float = 1.0,
    adaptive_rho: bool = True,
    rho_mu: float = 10.0,
    rho_tau: float = 2.0,
    relaxation: float = 1.0,
    local_tol: float = 0.1,
    local_max_iter: int = 200,
    memory: int = 10,
    hinge_smoothing: float = 1e-3,
    max_working_set: int = 20_000,
    checkpoint: SolverCheckpoint | None = None,
) -> SolverResult:
    """Minimise a :class:`~daskml_lab.solvers.BlockedProblem` with consensus ADMM.

    Each iteration, every worker minimises its own data term plus a quadratic pull towards the consensus
    (scipy's L-BFGS-B on its local blocks, warm-started from its previous solution), and the client updates
    the consensus ``z`` with the proximal operator of the penalty (l2 shrinkage and l1 soft-thresholding;
    the intercept is not penalised, so l1 gives exact zeros) and the scaled duals ``u_i``. In the same call,
    each worker also evaluates its data term and gradient at the ``z`` it received, which gives the exact
    objective and optimality of ``z`` without another round trip. Handles every loss, l1 and elastic-net
    penalties, and the non-differentiable ``"hinge"``, whose local problems are solved exactly: a smoothed
    version first (L-BFGS-B), then the dual quadratic program restricted to the rows near the margin.

    Parameters
    ----------
    problem : BlockedProblem
        Any loss, any ``l1 >= 0`` and ``l2 >= 0``.
    w0 : ndarray of shape (n_params, n_outputs) or None, default=None
        Starting consensus; zeros when None.
    tol : float, default=1e-4
        For differentiable losses, stop when the optimality measure of the consensus ``z`` is at most
        ``tol``: the sup-norm of the smallest subgradient of the per-sample objective
        ``F / (data_scale * sum_weights)``, exactly the criterion of lbfgs and proximal, so equal ``tol``
        means equally accurate. For the hinge, whose subgradient does not vanish at the optimum, stop when
        both ADMM residuals, expressed in the same gradient units, are at most ``tol``: the dual residual
        ``rho ||z - z_previous||`` and the primal residual ``rho max_i ||x_i - z||`` (sup-norms; the change
        of the workers' gradient estimates).
    max_iter : int, default=500
        Largest number of iterations (round trips).
    random_state : None
        Unused by this deterministic solver.
    callback : callable or None, default=None
        ``callback(record, W)`` after each iteration (``W`` is the consensus evaluated in it); returning True
        stops the solver.
    rho : float, default=1.0
        Starting penalty parameter, on the per-sample objective (worker ``i`` uses ``rho * share_i``).
    adaptive_rho : bool, default=True
        Residual balancing (Boyd et al., section 3.4.1): multiply ``rho`` by ``rho_tau`` when the primal
        residual (share-weighted RMS of ``x_i - z``) exceeds ``rho_mu`` times the dual one
        (``rho ||z - z_previous||``, Euclidean norms), divide it when the dual residual exceeds ``rho_mu``
        times the primal one (the scaled duals are rescaled accordingly). After its ``k``-th change of
        direction, ``rho`` waits ``2 ** k`` iterations before it may change again, since a ``rho`` that keeps
        going back and forth can make the iterates cycle.
    rho_mu : float, default=10.0
        Imbalance that triggers a change of ``rho`` (> 1).
    rho_tau : float, default=2.0
        Factor of a change of ``rho`` (> 1).
    relaxation : float, default=1.0
        Over-relaxation ``alpha`` in (0, 2): the z- and u-updates use ``alpha * x_i + (1 - alpha) * z``.
    local_tol : float, default=0.1
        Accuracy of the local solves. For differentiable losses it is relative to the current optimality:
        L-BFGS-B on worker ``i`` stops at a projected-gradient sup-norm of
        ``local_tol * share_i * max(tol, min(optimality, 1))``, so the local problems are solved more precisely
        as the iterates converge. For the hinge, the local solutions are exact up to margin errors of
        ``local_tol * 1e-2 * tol``.
    local_max_iter : int, default=200
        L-BFGS-B iterations allowed per local solve.
    memory : int, default=10
        L-BFGS-B correction pairs in the local solves.
    hinge_smoothing : float, default=1e-3
        Hinge only: width (in margin units) of the Huber-type smoothing used to find, cheaply, which rows lie
        near the margin; the final local solutions are those of the exact hinge, whatever this value.
    max_working_set : int, default=20000
        Hinge only: largest number of rows near the margin handled by the exact polish of a local solution;
        beyond it the smoothed solution is kept (its error is of the order of ``hinge_smoothing``).
    checkpoint : SolverCheckpoint or None, default=None
        Save the consensus ``z``, the workers' local solutions ``x_i`` and scaled duals ``u_i``, ``rho`` and
        its balancing counters, the iteration and the history every ``checkpoint.every`` iterations; a run
        given a checkpoint of the same problem resumes from it and, on the same placement of the blocks,
        reaches the solution of an uninterrupted run (with another placement the duals restart at zero, as
        after a lost worker; see :doc:`/checkpoints`).

    Returns
    -------
    SolverResult
        History records: ``objective`` (exact ``F`` of the consensus evaluated in the iteration, the one the
        workers received), ``grad_norm`` (the measure compared with ``tol``), ``step_size`` (``rho``),
        ``time_s``, ``n_evals`` (largest number of local passes over a worker's rows in the iteration),
        ``primal_residual`` and ``dual_residual`` (in gradient units, as above) and ``rho``.

    Raises
    ------
    ValueError
        For invalid arguments.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` is reached before ``tol`` is met.

    Notes
    -----
    With one worker (or the local engine) the method is a Douglas-Rachford splitting between the data term
    and the penalty; with several, the workers' problems are coupled only through ``z``. Each iteration costs
    one round trip and several local passes over the data (the L-BFGS-B evaluations), so ADMM pays off when
    the round trip is expensive compared with a pass over a worker's rows. The per-worker copies ``x_i`` and
    duals ``u_i`` are sent with every call (``2 * n_workers`` parameter matrices); no per-worker state is
    needed, so every engine works and a lost worker costs nothing but a restart of the duals.

    References
    ----------
    S. Boyd, N. Parikh, E. Chu, B. Peleato and J. Eckstein, "Distributed optimization and statistical learning
    via the alternating direction method of multipliers", Foundations and Trends in Machine Learning 3(1),
    2011.
    """
    options = ADMMOptions(
        rho=rho,
        adaptive_rho=adaptive_rho,
        rho_mu=rho_mu,
        rho_tau=rho_tau,
        relaxation=relaxation,
        local_tol=local_tol,
        local_max_iter=local_max_iter,
        memory=memory,
        hinge_smoothing=hinge_smoothing,
        max_working_set=max_working_set,
    )
    return run_solver(
        "admm",
        problem,
        options,
        _run_admm,
        w0=w0,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        callback=callback,
        checkpoint=checkpoint,
        advice="Increase max_iter, scale the features, or try another starting rho.",
    )


class _Rho:
    """The penalty parameter and its residual balancing (Boyd et al., 3.4.1) with back-off.

    After its ``k``-th change of direction, rho waits ``2 ** k`` iterations before it may change again: a rho
    that keeps going back and forth can make the iterates cycle instead of converging.
    """

    def __init__(self, options: ADMMOptions, state: dict[str, Any] | None = None) -> None:
        self.options = options
        self.value = float(options.rho)
        self.reversals, self.last_direction, self.next_change = 0, 0, 0
        if state is not None:
            self.value = float(state["rho"])
            self.reversals, self.last_direction = int(state["reversals"]), int(state["last_direction"])
            self.next_change = int(state["next_change"])

    def balance(self, n_iter: int, primal: float, dual: float) -> float:
        """Change rho if the residuals are out of balance; return the factor the scaled duals are divided by.

        No change when a residual is exactly zero (the iterates stalled at working precision).
        """
        options = self.options
        direction = 0
        if options.adaptive_rho and primal > 0 and dual > 0 and n_iter >= self.next_change:
            if primal > options.rho_mu * dual and self.value < options.rho * _RHO_RANGE:
                direction = 1
            elif dual > options.rho_mu * primal and self.value > options.rho / _RHO_RANGE:
                direction = -1
        if not direction:
            return 1.0
        self.reversals += int(direction == -self.last_direction)
        self.last_direction = direction
        self.next_change = n_iter + 2**self.reversals
        factor = options.rho_tau if direction > 0 else 1.0 / options.rho_tau
        self.value *= factor
        return factor

    def state(self) -> dict[str, Any]:
        """The scalar state, for a checkpoint."""
        return {
            "rho": self.value,
            "reversals": self.reversals,
            "last_direction": self.last_direction,
            "next_change": self.next_change,
        }


def _run_admm(run: SolverRun) -> Outcome:
    """Consensus iterations: one round trip each, then the z- and u-updates on the client."""
    options: ADMMOptions = run.options  # type: ignore[assignment]
    problem, tol, max_iter, saved = run.problem, run.tol, run.max_iter, run.saved
    smooth = problem.loss_info.smooth
    scale = problem.objective_scale
    n_features = problem.n_features
    l2, l1 = problem.l2 / scale, problem.l1 / scale
    data_factor = problem.data_scale / scale
    shape = run.shape
    z = run.initial_params()
    x: dict[tuple[int, ...], np.ndarray] = {}
    u: dict[tuple[int, ...], np.ndarray] = {}
    rho = _Rho(options, None if saved is None else saved.state)
    measure = math.inf
    n_iter, n_passes = run.start_iteration, 0
    if saved is not None:  # resume: consensus, local solutions, duals, rho and its counters
        z = saved.arrays["z"]
        for position, key in enumerate(saved.state["keys"]):
            x[tuple(int(i) for i in key)] = saved.arrays[f"x_{position}"]
            u[tuple(int(i) for i in key)] = saved.arrays[f"u_{position}"]
        measure, n_passes = float(saved.state["measure"]), int(saved.state["n_passes"])
    while True:
        if n_iter >= max_iter:
            message = f"reached max_iter={max_iter} with {_MEASURE[smooth]} {measure:.3g} > tol={tol:g}"
            return Outcome(z, n_iter, Status.MAX_ITER, message)
        results: list[ADMMReply] = problem.map_workers(
            _admm_worker,
            z,
            rho.value,
            {key: (x[key], u[key]) for key in x},
            problem.sum_weights,
            data_factor,
            options.local_tol * (max(tol, min(measure, 1.0)) if smooth else _HINGE_TOL_FACTOR * tol),
            int(options.local_max_iter),
            int(options.memory),
            float(options.hinge_smoothing),
            int(options.max_working_set),
        )
        n_iter += 1
        keys = [r.key for r in results]
        if x and set(keys) != set(x):
            logger.info("admm: the blocks were placed anew (lost worker?); restarting the duals at zero")
            x, u = {}, {}
        n_passes += max(r.n_passes for r in results)
        # the consensus z the workers received: its exact objective and optimality
        grad = sum(r.grad for r in results).reshape(shape)
        grad[:n_features] += l2 * z[:n_features]
        objective = sum(r.value for r in results) + 0.5 * l2 * float(np.vdot(z[:n_features], z[:n_features]))
        objective += l1 * l1_norm(z, n_features)
        optimality = float(l1_optimality(z, grad, n_features, l1).max()) if grad.size else 0.0
        record = {"objective_scaled": objective, "step_size": rho.value, "x": z, "rho": rho.value}
        if smooth and optimality <= tol:
            run.record(
                grad_norm=optimality,
                n_evals=n_passes,
                primal_residual=math.nan,
                dual_residual=math.nan,
                **record,
            )
            return Outcome(z, n_iter, Status.CONVERGED, f"optimality {optimality:.3g} <= tol={tol:g}")
        # z- and u-updates
        shares = {r.key: r.share for r in results}
        total_share = sum(shares.values()) or 1.0
        relaxed = {r.key: options.relaxation * r.x + (1.0 - options.relaxation) * z for r in results}
        average = sum((shares[key] / total_share) * (relaxed[key] + u.get(key, 0.0)) for key in keys)
        z_new = _prox_penalty(average, n_features, l2, l1, rho.value * total_share)
        for result in results:
            u[result.key] = u.get(result.key, np.zeros(shape)) + relaxed[result.key] - z_new
            x[result.key] = result.x
        # stopping residuals, in the gradient units of tol (sup-norms)
        primal = rho.value * max(float(np.max(np.abs(x[key] - z_new), initial=0.0)) for key in keys)
        dual = rho.value * float(np.max(np.abs(z_new - z), initial=0.0))
        measure = optimality if smooth else max(primal, dual)
        # balancing residuals (Boyd et al., 3.4.1): primal in parameter units, dual in gradient units
        balance_primal = math.sqrt(
            sum((shares[key] / total_share) * float(np.sum((x[key] - z_new) ** 2)) for key in keys)
        )
        balance_dual = rho.value * float(np.linalg.norm(z_new - z))
        stop = run.record(
            grad_norm=measure, n_evals=n_passes, primal_residual=primal, dual_residual=dual, **record
        )
        z = z_new
        if not smooth and measure <= tol:
            return Outcome(z, n_iter, Status.CONVERGED, f"ADMM residuals {measure:.3g} <= tol={tol:g}")
        if stop:
            return Outcome(z, n_iter, Status.STOPPED, "stopped by the callback")
        factor = rho.balance(n_iter, balance_primal, balance_dual)
        if factor != 1.0:
            u = {key: value / factor for key, value in u.items()}
        keys_saved = sorted(x)
        run.save(
            n_iter,
            {
                "z": z,
                **{f"x_{i}": x[key] for i, key in enumerate(keys_saved)},
                **{f"u_{i}": u[key] for i, key in enumerate(keys_saved)},
            },
            keys=[list(key) for key in keys_saved],
            measure=measure,
            n_passes=n_passes,
            **rho.state(),
        )
