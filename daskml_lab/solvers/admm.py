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

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import Bounds, minimize

from daskml_lab.monitoring import fit_span
from daskml_lab.solvers._checkpoint import SolverCheckpoint, finished_result, open_checkpoint
from daskml_lab.solvers._common import History, check_solver_args, require_problem, single_threaded_blas
from daskml_lab.solvers._regularizers import l1_norm, l1_optimality
from daskml_lab.solvers._result import SolverResult, warn_not_converged
from daskml_lab.solvers.sgd import worker_key

logger = logging.getLogger(__name__)

__all__ = ["admm"]

_EPS = float(np.finfo(np.float64).eps)


# ---------------------------------------------------------------------------------------------------------
# worker side


def _margins(block: Any, x: np.ndarray, n_features: int, fit_intercept: bool) -> np.ndarray:
    """Margins ``s_j x_j . x`` (``x_j`` extended by 1 with an intercept) of one block's rows, in float64."""
    scores = np.asarray(block.X @ x[:n_features].astype(block.X.dtype), dtype=np.float64).ravel()
    if fit_intercept:
        scores += x[n_features]
    return block.target.astype(np.float64) * scores


def _signed_sum(
    block: Any, beta: np.ndarray, n_params: int, n_features: int, fit_intercept: bool
) -> np.ndarray:
    """``sum_j beta_j s_j x_j`` over one block's rows (``x_j`` extended by 1 with an intercept)."""
    signed = beta * block.target
    out = np.zeros(n_params)
    out[:n_features] = np.asarray(block.X.T @ signed.astype(block.X.dtype), dtype=np.float64).ravel()
    if fit_intercept:
        out[n_features] = signed.sum()
    return out


class _HingeLocalProblem:
    """The local hinge problem of one worker, ``min_x c sum_j w_j max(0, 1 - a_j . x) + (rho/2) ||x - v||^2``.

    ``a_j = s_j x_j`` (``x_j`` extended by 1 with an intercept, which is then also pulled towards ``v``),
    ``c = data_factor``. The solution is ``x = v + (c / rho) sum_j beta_j w_j a_j`` with ``beta_j = 1`` for
    rows inside the margin (``a_j . x < 1``), ``0`` outside, and ``beta_j`` in ``[0, 1]`` on the margin.
    """

    def __init__(self, local: Any, v: np.ndarray, rho: float, data_factor: float) -> None:
        self.blocks = [block for block in local.blocks if block.X.shape[0] > 0]
        self.fit_intercept = local.spec.fit_intercept
        self.n_params = v.shape[0]
        self.n_features = self.n_params - int(self.fit_intercept)
        self.v, self.rho, self.c = v, rho, data_factor
        self.step = data_factor / rho
        self.weights = [
            np.ones(block.X.shape[0]) if block.weight is None else block.weight.astype(np.float64)
            for block in self.blocks
        ]
        self.n_passes = 0

    def margins(self, x: np.ndarray) -> list[np.ndarray]:
        self.n_passes += 1
        return [_margins(block, x, self.n_features, self.fit_intercept) for block in self.blocks]

    def combine(self, betas: list[np.ndarray]) -> np.ndarray:
        """``sum_j beta_j w_j a_j`` (one pass)."""
        self.n_passes += 1
        total = np.zeros(self.n_params)
        for block, weight, beta in zip(self.blocks, self.weights, betas, strict=True):
            total += _signed_sum(block, beta * weight, self.n_params, self.n_features, self.fit_intercept)
        return total

    def smoothed(self, x: np.ndarray, mu: float) -> tuple[float, np.ndarray]:
        """The local objective with the hinge replaced by its Huber-type smoothing of width ``mu``."""
        value, slopes = 0.0, []
        for margin, weight in zip(self.margins(x), self.weights, strict=True):
            slack = 1.0 - margin
            slope = np.clip(slack / mu, 0.0, 1.0)
            per_row = np.where(slack >= mu, slack - 0.5 * mu, 0.5 * slope * np.maximum(slack, 0.0))
            value += float(weight @ per_row)
            slopes.append(slope)
        diff = x - self.v
        return (
            self.c * value + 0.5 * self.rho * float(diff @ diff),
            -self.c * self.combine(slopes) + self.rho * diff,
        )

    def rows(self, masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Dense ``a_j`` (one per row) and ``w_j`` of the selected rows."""
        parts, weights = [], []
        for block, weight, mask in zip(self.blocks, self.weights, masks, strict=True):
            if not mask.any():
                continue
            X = block.X[mask]
            X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
            rows = X.astype(np.float64) * block.target[mask].astype(np.float64)[:, None]
            if self.fit_intercept:
                rows = np.hstack([rows, block.target[mask].astype(np.float64)[:, None]])
            parts.append(rows)
            weights.append(weight[mask])
        if not parts:
            return np.zeros((0, self.n_params)), np.zeros(0)
        return np.vstack(parts), np.concatenate(weights)


def _restricted_dual(
    beta: np.ndarray,
    fixed: np.ndarray,
    signed: np.ndarray,
    rows: np.ndarray,
    q: np.ndarray,
    weights: np.ndarray,
    step: float,
) -> tuple[float, np.ndarray]:
    """Negative local hinge dual (divided by ``c``) over the working-set rows, the other rows fixed.

    ``fixed = sum_j beta_j w_j a_j`` over the fixed rows, ``signed`` the working rows ``w_j a_j``, ``rows``
    the ``a_j``, ``q = 1 - a_j . v``; the gradient is ``w_j`` times the margin error of each working row.
    """
    r = fixed + signed.T @ beta
    value = 0.5 * step * float(r @ r) - float(beta @ (q * weights))
    return value, weights * (step * (rows @ r) - q)


def _hinge_local_solve(
    local: Any,
    v: np.ndarray,
    x0: np.ndarray,
    rho_i: float,
    data_factor: float,
    pgtol: float,
    max_iter: int,
    memory: int,
    smoothing: float,
    max_working_set: int,
    max_rounds: int = 20,
) -> tuple[np.ndarray, int]:
    """Exact solution of a worker's local hinge problem (see :class:`_HingeLocalProblem`).

    1. Minimise the smoothed problem (hinge replaced by a Huber-type smoothing of width ``smoothing``) with
       L-BFGS-B over the ``n_params`` primal variables, warm-started at ``x0``: cheap, and its margins tell
       which rows are inside, on or outside the margin, up to ``O(smoothing)``.
    2. Polish: fix ``beta = 1`` inside and ``0`` outside, and solve the dual quadratic program over the rows
       near the margin only (the working set; box constraints, L-BFGS-B). Rows whose margins then contradict
       their fixed ``beta`` (by more than ``pgtol``) join the working set, and the polish repeats.

    The result satisfies the optimality conditions of the exact (non-smooth) problem to ``pgtol`` in margin
    units. If the working set outgrows ``max_working_set`` rows, the smoothed solution is returned.

    Returns
    -------
    x : ndarray of shape (n_params,)
    n_passes : int
        Passes over the local rows.
    """
    problem = _HingeLocalProblem(local, v, rho_i, data_factor)
    options = {"maxiter": max_iter, "maxcor": memory, "gtol": 0.1 * smoothing * rho_i, "ftol": 10 * _EPS}
    result = minimize(
        problem.smoothed,
        np.asarray(x0, dtype=np.float64),
        args=(smoothing,),
        jac=True,
        method="L-BFGS-B",
        options=options,
    )
    x_smooth = result.x
    margins = problem.margins(x_smooth)
    working = [(m > 1.0 - 2.0 * smoothing) & (m < 1.0 + smoothing) for m in margins]
    offsets = [1.0 - m for m in problem.margins(v)]
    for _ in range(max_rounds):
        inside = [(m <= 1.0 - 2.0 * smoothing) & ~w for m, w in zip(margins, working, strict=True)]
        if sum(int(w.sum()) for w in working) > max_working_set:
            logger.debug(
                "admm: hinge working set above %d rows; keeping the smoothed solution", max_working_set
            )
            return x_smooth, problem.n_passes
        fixed = problem.combine([mask.astype(np.float64) for mask in inside])
        rows, weights = problem.rows(working)
        q = (
            np.concatenate([o[w] for o, w in zip(offsets, working, strict=True)])
            if rows.size
            else np.zeros(0)
        )
        x = problem.v + problem.step * fixed
        if rows.shape[0]:
            signed = rows * weights[:, None]
            slack = np.concatenate([1.0 - m[w] for m, w in zip(margins, working, strict=True)])
            start = np.clip(slack / smoothing, 0.0, 1.0)
            polish = minimize(
                _restricted_dual,
                start,
                args=(fixed, signed, rows, q, weights, problem.step),
                jac=True,
                method="L-BFGS-B",
                bounds=Bounds(np.zeros_like(start), np.ones_like(start)),
                options={"maxiter": 10 * max_iter, "maxcor": memory, "gtol": pgtol, "ftol": 10 * _EPS},
            )
            x = problem.v + problem.step * (fixed + signed.T @ np.clip(polish.x, 0.0, 1.0))
        margins = problem.margins(x)
        violated = [
            (f & (m > 1.0 + pgtol)) | (~f & ~w & (m < 1.0 - pgtol))
            for m, f, w in zip(margins, inside, working, strict=True)
        ]
        if not any(mask.any() for mask in violated):
            return x, problem.n_passes
        working = [w | mask for w, mask in zip(working, violated, strict=True)]
    logger.debug("admm: hinge polish still inexact after %d rounds", max_rounds)
    return x, problem.n_passes


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
) -> tuple[tuple[int, ...], np.ndarray, float, float, np.ndarray, int]:
    """Evaluate ``f_i`` at ``z``, then solve ``min_x f_i(x) + (rho_i / 2) ||x - z + u_i||^2`` locally.

    ``per_worker[key] = (x_i, u_i)`` from the previous iteration (absent at the start): ``x_i`` warm-starts
    L-BFGS-B. ``data_factor`` turns the unscaled data term into ``f_i`` (``data_scale / scale``). For the
    hinge the local problem is solved exactly by :func:`_hinge_local_solve`.

    Returns
    -------
    (key, x_i, share_i, f_i(z), (sub)gradient of f_i at z, local data passes)
    """
    key = worker_key(local)
    shape = z.shape
    share = local.sum_weight / total_weight if total_weight > 0 else 0.0
    value, grad = local.loss_grad(z)
    previous = per_worker.get(key)
    u = previous[1] if previous is not None else np.zeros(shape)
    x0 = previous[0] if previous is not None else z
    v = (z - u).ravel()
    rho_i = rho * share
    if rho_i <= 0:  # no weight here: f_i is zero and the local minimiser is the centre
        return key, v.reshape(shape), share, data_factor * value, data_factor * grad, 1
    if local.spec.loss == "hinge":
        x, n_passes = _hinge_local_solve(
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
        return key, x.reshape(shape), share, data_factor * value, data_factor * grad, 1 + n_passes

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
    return key, result.x.reshape(shape), share, data_factor * value, data_factor * grad, 1 + int(result.nfev)


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
    check_solver_args(
        "admm",
        tol,
        max_iter,
        rho=rho,
        rho_mu=rho_mu,
        rho_tau=rho_tau,
        relaxation=relaxation,
        local_tol=local_tol,
        hinge_smoothing=hinge_smoothing,
        max_working_set=max_working_set,
    )
    check_solver_args("admm", tol, local_max_iter, memory=memory)
    if not 0 < relaxation < 2:
        msg = f"admm: relaxation must be in (0, 2), got {relaxation!r}."
        raise ValueError(msg)
    if rho_mu <= 1 or rho_tau <= 1:
        msg = f"admm: rho_mu and rho_tau must be > 1, got rho_mu={rho_mu!r}, rho_tau={rho_tau!r}."
        raise ValueError(msg)
    if local_max_iter < 1 or not isinstance(memory, int) or isinstance(memory, bool):
        msg = f"admm: local_max_iter and memory must be ints >= 1, got {local_max_iter!r} and {memory!r}."
        raise ValueError(msg)
    require_problem(problem, "admm", smooth=False, allow_l1=True)
    with fit_span("admm"), single_threaded_blas():
        problem.start()
        smooth = problem.loss_info.smooth
        scale = problem.objective_scale
        n_features = problem.n_features
        l2, l1 = problem.l2 / scale, problem.l1 / scale
        data_factor = problem.data_scale / scale
        shape = (problem.n_params, problem.n_outputs)
        run = open_checkpoint(
            checkpoint,
            problem,
            "admm",
            {
                "tol": tol,
                "max_iter": max_iter,
                "rho": rho,
                "adaptive_rho": adaptive_rho,
                "rho_mu": rho_mu,
                "rho_tau": rho_tau,
                "relaxation": relaxation,
                "local_tol": local_tol,
                "local_max_iter": local_max_iter,
                "memory": memory,
                "hinge_smoothing": hinge_smoothing,
                "max_working_set": max_working_set,
            },
        )
        saved = run.load()
        if saved is not None and saved.complete:
            return finished_result(saved, problem, "admm")
        z = problem.initial_params(w0)
        x: dict[tuple[int, ...], np.ndarray] = {}
        u: dict[tuple[int, ...], np.ndarray] = {}
        current_rho = float(rho)
        reversals, last_direction, next_change = 0, 0, 0
        measure = math.inf
        history = History(scale, callback, shape)
        converged, message, n_iter, n_passes = False, "", 0, 0
        if saved is not None:  # resume: consensus, local solutions, duals, rho and its counters
            state, arrays = saved.state, saved.arrays
            z = arrays["z"]
            for position, key in enumerate(state["keys"]):
                x[tuple(int(i) for i in key)] = arrays[f"x_{position}"]
                u[tuple(int(i) for i in key)] = arrays[f"u_{position}"]
            current_rho, measure = float(state["rho"]), float(state["measure"])
            reversals, last_direction = int(state["reversals"]), int(state["last_direction"])
            next_change, n_passes = int(state["next_change"]), int(state["n_passes"])
            n_iter = saved.iteration
            history.restore(saved.history)
        while True:
            if n_iter >= max_iter:
                message = f"reached max_iter={max_iter} with {_MEASURE[smooth]} {measure:.3g} > tol={tol:g}"
                break
            results = problem.map_workers(
                _admm_worker,
                z,
                current_rho,
                {key: (x[key], u[key]) for key in x},
                problem.sum_weights,
                data_factor,
                local_tol * (max(tol, min(measure, 1.0)) if smooth else _HINGE_TOL_FACTOR * tol),
                int(local_max_iter),
                int(memory),
                float(hinge_smoothing),
                int(max_working_set),
            )
            n_iter += 1
            keys = [r[0] for r in results]
            if x and set(keys) != set(x):
                logger.info("admm: the blocks were placed anew (lost worker?); restarting the duals at zero")
                x, u = {}, {}
            n_passes += max(r[5] for r in results)
            # the consensus z the workers received: its exact objective and optimality
            grad = sum(r[4] for r in results).reshape(shape)
            grad[:n_features] += l2 * z[:n_features]
            objective = sum(r[3] for r in results) + 0.5 * l2 * float(np.vdot(z[:n_features], z[:n_features]))
            objective += l1 * l1_norm(z, n_features)
            optimality = float(l1_optimality(z, grad, n_features, l1).max()) if grad.size else 0.0
            record = {"objective_scaled": objective, "step_size": current_rho, "x": z, "rho": current_rho}
            if smooth and optimality <= tol:
                history.add(
                    grad_norm=optimality,
                    n_evals=n_passes,
                    primal_residual=math.nan,
                    dual_residual=math.nan,
                    **record,
                )
                converged, message = True, f"optimality {optimality:.3g} <= tol={tol:g}"
                break
            # z- and u-updates
            shares = {r[0]: r[2] for r in results}
            total_share = sum(shares.values()) or 1.0
            relaxed = {r[0]: relaxation * r[1] + (1.0 - relaxation) * z for r in results}
            average = sum((shares[key] / total_share) * (relaxed[key] + u.get(key, 0.0)) for key in keys)
            z_new = _prox_penalty(average, n_features, l2, l1, current_rho * total_share)
            for result in results:
                key = result[0]
                u[key] = u.get(key, np.zeros(shape)) + relaxed[key] - z_new
                x[key] = result[1]
            # stopping residuals, in the gradient units of tol (sup-norms)
            primal = current_rho * max(float(np.max(np.abs(x[key] - z_new), initial=0.0)) for key in keys)
            dual = current_rho * float(np.max(np.abs(z_new - z), initial=0.0))
            measure = optimality if smooth else max(primal, dual)
            # balancing residuals (Boyd et al., 3.4.1): primal in parameter units, dual in gradient units
            balance_primal = math.sqrt(
                sum((shares[key] / total_share) * float(np.sum((x[key] - z_new) ** 2)) for key in keys)
            )
            balance_dual = current_rho * float(np.linalg.norm(z_new - z))
            stop = history.add(
                grad_norm=measure, n_evals=n_passes, primal_residual=primal, dual_residual=dual, **record
            )
            z = z_new
            if not smooth and measure <= tol:
                converged, message = True, f"ADMM residuals {measure:.3g} <= tol={tol:g}"
                break
            if stop:
                message = "stopped by the callback"
                break
            # No change when a residual is exactly zero (the iterates stalled at working precision). After the
            # k-th change of direction, rho waits 2 ** k iterations before it may change again: a rho that keeps
            # going back and forth can make the iterates cycle instead of converging.
            direction = 0
            if adaptive_rho and balance_primal > 0 and balance_dual > 0 and n_iter >= next_change:
                if balance_primal > rho_mu * balance_dual and current_rho < rho * _RHO_RANGE:
                    direction = 1
                elif balance_dual > rho_mu * balance_primal and current_rho > rho / _RHO_RANGE:
                    direction = -1
            if direction:
                reversals += int(direction == -last_direction)
                last_direction = direction
                next_change = n_iter + 2**reversals
                factor = rho_tau if direction > 0 else 1.0 / rho_tau
                current_rho *= factor
                u = {key: value / factor for key, value in u.items()}
            keys_saved = sorted(x)
            run.save(
                n_iter,
                history.records,
                {
                    "z": z,
                    **{f"x_{i}": x[key] for i, key in enumerate(keys_saved)},
                    **{f"u_{i}": u[key] for i, key in enumerate(keys_saved)},
                },
                keys=[list(key) for key in keys_saved],
                rho=current_rho,
                measure=measure,
                reversals=reversals,
                last_direction=last_direction,
                next_change=next_change,
                n_passes=n_passes,
            )
        warning = None
        if not converged and message != "stopped by the callback":
            warning = f"{message}. Increase max_iter, scale the features, or try another starting rho."
        W = np.asarray(z, dtype=np.float64).reshape(shape)
        run.complete(SolverResult(W, n_iter, converged, history.records, message), warning)
    if warning is not None:
        warn_not_converged("admm", warning)
    logger.debug("admm: %d iterations, final rho %.3g: %s", n_iter, current_rho, message)
    W = W.astype(problem.dtype)
    return SolverResult(W=W, n_iter=n_iter, converged=converged, history=history.records, message=message)


_MEASURE = {True: "optimality", False: "ADMM residuals"}
#: Hinge local solves stop at margin errors of ``local_tol * _HINGE_TOL_FACTOR * tol``: the exact polish is
#: cheap, and looser local solutions leave the residuals of several workers oscillating above ``tol``.
_HINGE_TOL_FACTOR = 1e-2
#: rho stays within this factor of its starting value.
_RHO_RANGE = 1e6
