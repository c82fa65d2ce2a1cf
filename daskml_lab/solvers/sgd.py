"""Synchronous distributed mini-batch SGD: local steps on every worker, then parameter averaging.

Each round (one solver iteration), every worker starts from the current parameters ``W``, takes mini-batch
proximal gradient steps on its own rows only (by default one pass over them), and returns its parameters and
the weight of its rows; the client averages the workers' parameters weighted by their share of the total
sample weight ("local SGD", or model averaging). A round is one ``problem.map_workers`` call: the parameters
go out, one parameter matrix per worker comes back; each evaluation of the full objective (every
``eval_every`` rounds) is one more, and anchors the variance-reduced steps of the next rounds. What this solver
shares with the asynchronous one (the schedules, the mini-batch cursor, the variance-reduced proximal step, the
step-size estimate) is in :mod:`daskml_lab.solvers._stochastic`; the evaluations and the stopping rule are in
:mod:`daskml_lab.solvers._stochastic_progress`.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from daskml_lab._runtime.seeding import root_entropy
from daskml_lab.solvers._checkpoint import SolverCheckpoint
from daskml_lab.solvers._options import check_int, check_positive
from daskml_lab.solvers._result import SolverResult
from daskml_lab.solvers._scaffold import Outcome, SolverRun, Status, run_solver
from daskml_lab.solvers._stochastic import (
    Anchor,
    Schedule,
    StochasticOptions,
    estimate_eta0,
    n_local_batches,
    next_batches,
    proximal_step,
    resolve_batch_size,
    stochastic_step,
)
from daskml_lab.solvers._stochastic_progress import NoChange, Progress, evaluate

__all__ = ["NoChange", "SGDOptions", "SGDRound", "Schedule", "next_batches", "proximal_step", "sgd"]


@dataclasses.dataclass(frozen=True)
class SGDOptions(StochasticOptions):
    """Tuning constants of :func:`sgd` (see its parameters), validated when created.

    Examples
    --------
    >>> SGDOptions(eval_every=0)
    Traceback (most recent call last):
    ...
    ValueError: sgd: eval_every must be a finite number > 0, got 0.
    """

    solver = "sgd"
    eval_every: int = 1

    def __post_init__(self) -> None:
        check_positive(self.solver, "eval_every", self.eval_every)
        check_int(self.solver, "eval_every", self.eval_every)
        super().__post_init__()


class SGDRound(NamedTuple):
    """What one worker returns from a round of :func:`sgd`."""

    #: The worker's share of the data (global block indices).
    key: tuple[int, ...]
    #: Its parameters after the local steps.
    W: np.ndarray
    #: Total sample weight of its rows (0 when it holds none).
    sum_weight: float
    #: The last learning rate it used.
    eta: float
    #: Local steps taken.
    n_steps: int


def _sgd_round_worker(
    local: Any,
    token: str,
    W: np.ndarray,
    anchor: Anchor | None,
    round_index: int,
    local_steps: int | None,
    batch_size: int,
    entropy: int,
    schedule: Schedule,
    l2: float,
    l1: float,
    n_features: int,
) -> SGDRound:
    """One round on one worker: ``local_steps`` proximal mini-batch steps from ``W`` on the local rows.

    The steps follow the gradient of the worker's per-sample objective (the mini-batch data gradient divided by
    the batch size times the local mean weight), variance-reduced with ``anchor`` (SVRG) when it is given.
    """
    key = local.key
    W = np.array(W, dtype=np.float64, copy=True)
    steps_per_epoch = n_local_batches(local, batch_size)
    if local.sum_weight <= 0 or steps_per_epoch == 0:
        return SGDRound(key, W, 0.0, schedule.eta0, 0)
    n_steps = steps_per_epoch if local_steps is None else local_steps
    start = round_index * n_steps
    mean_weight = local.sum_weight / local.n_rows
    eta = schedule.eta0
    for j, batch in enumerate(next_batches(local, token, entropy, batch_size, start, n_steps)):
        eta = schedule.rate(start + j, steps_per_epoch=steps_per_epoch)
        stochastic_step(local, batch, W, anchor, eta, l2, l1, n_features, mean_weight)
    return SGDRound(key, W, float(local.sum_weight), float(eta), n_steps)


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
    variance_reduction: str = "auto",
    checkpoint: SolverCheckpoint | None = None,
) -> SolverResult:
    """Minimise a :class:`~daskml_lab.solvers.BlockedProblem` with synchronous distributed mini-batch SGD.

    Every round, each worker starts from the current parameters and takes ``local_steps`` mini-batch steps on
    its own rows (a proximal gradient step on the per-sample objective: gradient of the data term, then the
    exact proximal step of the l2 and l1 penalties; the intercept is never penalised); the client then
    averages the workers' parameters weighted by their share of the sample weight. One round is one round
    trip (``problem.map_workers``), and each evaluation of the full objective one more. Works for every loss,
    including the non-differentiable ``"hinge"`` (its subgradient), and for l1/elastic-net penalties.

    For differentiable losses the steps are variance-reduced (SVRG): each evaluation at a point ``W~`` also
    returns the per-sample gradient ``g~`` of the data term there, and until the next one a step uses
    ``grad_B(W) - grad_B(W~) + g~`` instead of the mini-batch gradient ``grad_B(W)``. The noise of this
    direction vanishes at the optimum, so a constant learning rate converges to the exact optimum (linearly on
    strongly convex problems), and ``g~``, a global gradient, also corrects the drift of workers whose rows
    differ from the others'.

    Parameters
    ----------
    problem : BlockedProblem
        Any loss, any ``l1 >= 0`` and ``l2 >= 0``.
    w0 : ndarray of shape (n_params, n_outputs) or None, default=None
        Starting parameters; zeros when None.
    tol : float, default=1e-4
        The stopping criterion, tested at every evaluation: the optimality measure of the per-sample objective
        ``F / (data_scale * sum(sample_weight))`` at the evaluated point (the sup-norm of its smallest
        subgradient; exactly the criterion of lbfgs) is at most ``tol``. So equal ``tol`` values give sgd and
        lbfgs equally accurate solutions. For the non-differentiable ``"hinge"``, whose measure does not
        vanish at the optimum, the solver also stops on a plateau: ``n_iter_no_change`` consecutive
        evaluations that improve the best objective so far by less than ``tol`` (relative); this says the
        solver stopped making progress, not how far the optimum is (use ``"admm"`` for a certified hinge fit).
        When neither holds within ``max_iter`` rounds, a ``ConvergenceWarning`` is raised.
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
        ``eval_every`` rounds; the stopping test runs on these evaluations, and each one becomes the anchor of
        the variance-reduced steps that follow. The starting point is evaluated too (not recorded).
    n_iter_no_change : int, default=5
        For the hinge loss only: consecutive evaluations that improve the best objective by less than ``tol``
        (relative) needed to stop.
    variance_reduction : {"auto", "svrg", "none"}, default="auto"
        ``"svrg"``: variance-reduced steps (above; each step evaluates the mini-batch gradient twice);
        ``"none"``: plain mini-batch gradients, whose noise keeps the iterates at a distance from the optimum
        set by the learning rate (they rarely meet a small ``tol``); ``"auto"``: ``"svrg"`` for
        differentiable losses, ``"none"`` for the hinge (whose subgradient jumps at the margin, where the
        variance reduction does not hold).
    checkpoint : SolverCheckpoint or None, default=None
        Save the parameters, the best parameters so far, the anchors, the round, the learning-rate schedule's
        position,
        the stopping test's counters, the random streams' root entropy and the history every
        ``checkpoint.every`` rounds. A run given a checkpoint of the same problem resumes at the next round
        with the same mini-batches and rates, so on the same placement of the blocks it reaches the result of
        an uninterrupted run (see :doc:`/checkpoints`).

    Returns
    -------
    SolverResult
        ``W`` is the evaluated point that met the optimality criterion, or else the evaluated parameters with
        the lowest objective. History records (one per round):
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
    With one worker this is proximal mini-batch SVRG (plain proximal mini-batch SGD without variance
    reduction). With several, each round is "local SGD": with plain steps, workers whose rows differ in
    distribution drift apart during long rounds, which the averaging only partly corrects; the anchor's global
    gradient removes that drift at the optimum, so blocks sorted by class still converge to it (more slowly
    than shuffled ones). Averaged SGD (Polyak-Ruppert averaging with a decaying rate) was measured as the
    alternative and rejected: it converges as ``1 / t`` and stalls about ``1e-3`` from the optimum where SVRG
    converges linearly (see :doc:`/solvers`).

    References
    ----------
    L. Bottou, F. E. Curtis and J. Nocedal, "Optimization methods for large-scale machine learning", SIAM
    Review 60(2), 2018. S. U. Stich, "Local SGD converges fast and communicates little", ICLR 2019.
    R. M. Gower et al., "SGD: general analysis and improved rates", ICML 2019. R. Johnson and T. Zhang,
    "Accelerating stochastic gradient descent using predictive variance reduction", NeurIPS 2013. L. Xiao and
    T. Zhang, "A proximal stochastic gradient method with progressive variance reduction", SIAM J. Optim.
    24(4), 2014.
    """
    options = SGDOptions(
        learning_rate=learning_rate,
        eta0=eta0,
        shrink=shrink,
        decay=decay,
        power_t=power_t,
        batch_size=batch_size,
        local_steps=local_steps,
        n_iter_no_change=n_iter_no_change,
        eval_every=eval_every,
        variance_reduction=variance_reduction,
    )
    return run_solver(
        "sgd",
        problem,
        options,
        _run_sgd,
        w0=w0,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        callback=callback,
        checkpoint=checkpoint,
        advice="Increase max_iter, loosen tol, or scale the features (e.g. StandardScaler).",
    )


def _run_sgd(run: SolverRun) -> Outcome:
    """Rounds of local steps and averaging, evaluated every ``eval_every`` rounds."""
    options: SGDOptions = run.options  # type: ignore[assignment]
    problem, tol, max_iter = run.problem, run.tol, run.max_iter
    scale = problem.objective_scale
    l2, l1 = problem.l2 / scale, problem.l1 / scale
    svrg, smooth = options.uses_svrg(problem), bool(problem.loss_info.smooth)
    batch_size = resolve_batch_size(options.batch_size, problem.n_samples)
    token = uuid.uuid4().hex
    n_iter, change = 0, math.nan
    if run.saved is None:
        entropy = root_entropy(run.random_state)
        W = run.initial_params()
        eta0 = options.eta0
        first_eta = estimate_eta0(problem, batch_size, l2, entropy) if eta0 == "auto" else float(eta0)
        schedule = options.schedule(first_eta, l2)
        progress = Progress("sgd", options, tol, first_eta, schedule, W.copy(), smooth=smooth)
        # the starting point is evaluated (not recorded as an iteration): it anchors the first round, and a
        # first round that makes the objective worse is caught by the "adaptive" rule
        progress.observe(evaluate(problem, W, scale))
    else:  # resume: the same random streams, anchors, schedule position and stopping counters
        state, arrays = run.saved.state, run.saved.arrays
        entropy = int(state["entropy"])
        W = arrays["W"]
        progress = Progress.resumed("sgd", options, tol, l2, state, arrays, smooth=smooth)
        n_iter, change = run.start_iteration, float(state["change"])
    for round_index in range(n_iter, max_iter):
        results: list[SGDRound] = problem.map_workers(
            _sgd_round_worker,
            token,
            W,
            progress.anchor if svrg else None,
            round_index,
            options.local_steps,
            batch_size,
            entropy,
            progress.schedule,
            l2,
            l1,
            problem.n_features,
        )
        n_iter = round_index + 1
        total = sum(r.sum_weight for r in results)
        if total > 0:
            W = sum((r.sum_weight / total) * r.W for r in results)
        objective, optimality, change = math.nan, math.nan, math.nan
        evaluation = None
        round_W = W
        if n_iter % options.eval_every == 0 or n_iter == max_iter:
            evaluation = evaluate(problem, W, scale)
            objective, optimality = evaluation.objective, evaluation.optimality
            change, restart = progress.observe(evaluation)
            if restart is not None:
                W = restart
        stop = run.record(
            objective_scaled=objective,
            grad_norm=optimality,
            step_size=max(r.eta for r in results),
            n_evals=problem.n_evaluations,
            x=round_W,
            relative_change=change,
            n_steps=max(r.n_steps for r in results),
        )
        stopping = None if evaluation is None else progress.stopping(evaluation)
        if stopping is not None:
            return Outcome(stopping.W, n_iter, Status.CONVERGED, stopping.message)
        if stop:
            return Outcome(_best(progress, W), n_iter, Status.STOPPED, "stopped by the callback")
        run.save(n_iter, {"W": W, **progress.arrays()}, entropy=entropy, change=change, **progress.state())
    message = f"reached max_iter={max_iter} rounds (last optimality {optimality:.3g}, tol={tol:g})"
    return Outcome(_best(progress, W), n_iter, Status.MAX_ITER, message)


def _best(progress: Progress, W: np.ndarray) -> np.ndarray:
    """The best evaluated parameters (``W`` when no evaluation was finite)."""
    return progress.best_W if math.isfinite(progress.best_objective) else W
