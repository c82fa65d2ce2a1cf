"""What the solvers share: the problem check, history records, the scaled objective, BLAS threads."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from daskml_lab.monitoring import start_run

__all__ = ["History", "ScaledObjective", "require_problem", "single_threaded_blas"]


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit this process's BLAS to one thread while a solver loop runs.

    The client-side work of a solver is on d-vectors, where BLAS threads bring nothing; but OpenBLAS threads
    keep spinning for a while after each call, and on a small machine that spinning takes the cores the
    workers need: measured on 2 cores, it made each distributed evaluation 4-6 times slower. With the local
    engine the evaluations themselves run here, and they are memory-bound, so a second thread would not help
    them either.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def require_problem(problem: Any, solver: str, *, smooth: bool = True, allow_l1: bool = False) -> None:
    """Refuse problems a solver cannot handle, with the fix in the message."""
    if smooth and not problem.loss_info.smooth:
        msg = (
            f"solver={solver!r} needs a smooth loss, but the {problem.loss!r} loss is not differentiable. "
            "Use solver='admm' or 'sgd' for it (or loss='squared_hinge')."
        )
        raise ValueError(msg)
    if not allow_l1 and problem.l1 > 0:
        msg = (
            f"solver={solver!r} does not support an l1 penalty (got l1={problem.l1:g}); use "
            "solver='proximal' or 'admm' for l1/elastic-net penalties."
        )
        raise ValueError(msg)


class ScaledObjective:
    """``F / scale`` and its gradient on flat float64 vectors, remembering the last evaluation.

    Dividing by ``scale = data_scale * sum_weights`` turns the objective into a per-sample mean (as
    scikit-learn's), which makes ``tol`` independent of the data size and of the regularisation constants.
    """

    def __init__(self, problem: Any) -> None:
        self.problem = problem
        self.scale = problem.objective_scale
        self.shape = (problem.n_params, problem.n_outputs)
        self.n_evals = 0
        self.last_x: np.ndarray | None = None
        self.last_f = np.nan
        self.last_g: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = self.problem.loss_grad(np.asarray(x, dtype=np.float64).reshape(self.shape))
        self.n_evals += 1
        self.last_x = np.array(x, dtype=np.float64, copy=True)
        self.last_f = f / self.scale
        self.last_g = g.ravel() / self.scale
        return self.last_f, self.last_g.copy()


class History:
    """Per-iteration records (objective, gradient norm, step size, wall time) and the user callback.

    Each record is also reported to the training monitor (the dashboard's training page, through the current
    distributed client, and the progress bar); the run ends with the enclosing ``fit_span``.
    """

    def __init__(self, scale: float, callback: Callable[..., Any] | None, shape: tuple[int, int]) -> None:
        self.scale, self.callback, self.shape = scale, callback, shape
        self.records: list[dict[str, Any]] = []
        self.start = time.perf_counter()
        self._last_evals = 0
        self.run = start_run("solver")

    def restore(self, records: list[dict[str, Any]]) -> None:
        """Start from the records of a checkpoint: iterations and ``time_s`` continue from the last one."""
        self.records = [dict(record) for record in records]
        if self.records:
            self.start -= float(self.records[-1].get("time_s") or 0.0)

    def add(
        self,
        *,
        objective_scaled: float,
        grad_norm: float,
        step_size: float | None,
        n_evals: int,
        x: np.ndarray,
        **extra: Any,
    ) -> bool:
        """Append a record; return True when the user callback asks to stop."""
        record = {
            "iteration": len(self.records) + 1,
            "objective": float(objective_scaled * self.scale),
            "grad_norm": float(grad_norm),
            "step_size": None if step_size is None else float(step_size),
            "time_s": time.perf_counter() - self.start,
            "n_evals": int(n_evals - self._last_evals),
            **extra,
        }
        self._last_evals = n_evals
        self.records.append(record)
        self.run.iteration(record)
        if self.callback is not None:
            return bool(self.callback(record, np.asarray(x).reshape(self.shape)))
        return False
