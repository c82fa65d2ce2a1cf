"""The result every solver returns, and the shared convergence warning."""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daskml_lab.exceptions import ConvergenceWarning

__all__ = ["SolverResult", "warn_not_converged"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class SolverResult:
    """What a solver returns.

    Attributes
    ----------
    W : ndarray of shape (n_params, n_outputs)
        Final parameters (feature rows, then the intercept row when the problem fits one), in the problem's
        dtype (float32 input gives float32 parameters).
    n_iter : int
        Iterations run.
    converged : bool
        Whether the stopping criterion was met before ``max_iter``.
    history : list of dict
        One record per iteration: ``iteration``, ``objective``, ``grad_norm``, ``step_size`` (None when the
        solver has no step), ``time_s`` (wall time since the solver started), plus solver-specific keys
        (``n_evals``; ``staleness`` for asynchronous solvers).
    message : str
        Why the solver stopped.
    """

    W: np.ndarray
    n_iter: int
    converged: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


def _user_stacklevel() -> int:
    """Stack level of the first frame outside daskml_lab (and outside sklearn's wrappers), for warnings."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR) and "sklearn" not in filename:
            return level
        frame = frame.f_back
        level += 1
    return 2


def warn_not_converged(solver: str, message: str) -> None:
    """Issue a :class:`~daskml_lab.exceptions.ConvergenceWarning` pointing at the user's call.

    Parameters
    ----------
    solver : str
        Solver name, quoted in the warning.
    message : str
        What happened and how to fix it.
    """
    warnings.warn(
        f"{solver} failed to converge: {message}", ConvergenceWarning, stacklevel=_user_stacklevel()
    )
