"""Huber regression with a jointly estimated scale (as scikit-learn's HuberRegressor) by alternation.

scikit-learn minimises, over the coefficients ``w``, the intercept ``b`` and the scale ``sigma > 0``,

    g(w, b, sigma) = sum_i s_i * (sigma + sigma * H((y_i - x_i w - b) / sigma)) + alpha * ||w||^2,

with ``H(z) = z^2`` for ``|z| <= epsilon`` and ``2 * epsilon * |z| - epsilon^2`` otherwise. ``g`` is jointly
convex, so minimising alternately over ``(w, b)`` and over ``sigma`` converges to the joint minimum:

- for a fixed ``sigma``, ``g`` is ``(2 / sigma) * sum_i s_i * huber_delta(r_i) + alpha * ||w||^2 + const``
  with the solvers' ``"huber"`` loss of threshold ``delta = epsilon * sigma``: one solver run (warm-started);
- for fixed ``(w, b)``, ``g`` is a convex, continuously differentiable function of ``sigma`` whose
  derivative ``S - A(sigma) / sigma^2 - epsilon^2 * C(sigma)`` (``S`` the total weight, ``A`` the weighted sum
  of squared residuals of the inliers ``|r| <= epsilon * sigma``, ``C`` the weight of the outliers) is
  evaluated on a grid of candidate scales in one pass over the data; three passes bracket its root to 1e-6
  relative, and the closed form ``sigma = sqrt(A / (S - epsilon^2 C))`` finishes it.

A few alternations (typically 3 to 6) reach scikit-learn's solution; the data are persisted once for all.
"""

from __future__ import annotations

import numbers
import os
import warnings
from typing import Any, ClassVar

import dask.array as da
import numpy as np

from daskml_lab._compat import unique_fused_keys
from daskml_lab._runtime.watched_compute import watched_compute, watched_persist
from daskml_lab.base import Interval
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model._base import (
    COMMON_CONSTRAINTS,
    LinearRegressorBase,
    Objective,
    _check_weight_sum,
    _target,
    history_frame,
)
from daskml_lab.linear_model._blocks import _decision_function_block, block_statistics, params_in_graph
from daskml_lab.linear_model._docs import fill_doc
from daskml_lab.monitoring import fit_span
from daskml_lab.solvers import BlockedProblem

__all__ = ["HuberRegressor"]

#: Largest number of alternations between the coefficients and the scale.
_MAX_SCALE_UPDATES = 100
#: Candidate scales per pass of the scale update, and passes per update.
_GRID_SIZE = 256
_SCALE_PASSES = 3
#: Width (as a factor) of the first bracket of candidate scales around the current scale, and its shift.
_FIRST_SPAN = 16.0
#: Smallest scale, as scikit-learn's lower bound.
_MIN_SCALE = 10 * np.finfo(np.float64).eps


@fill_doc
class HuberRegressor(LinearRegressorBase):
    """Linear regression robust to outliers, with the scale of the residuals estimated jointly.

    Minimises the objective of :class:`sklearn.linear_model.HuberRegressor`,

        sum_i s_i * (sigma + sigma * H((y_i - x_i @ w - b) / sigma)) + alpha * ||w||^2,

    over the coefficients, the intercept and the scale ``sigma``, where ``H(z)`` is ``z^2`` for
    ``|z| <= epsilon`` and ``2 * epsilon * |z| - epsilon^2`` beyond, and ``s`` are the sample weights. Samples
    whose residual exceeds ``epsilon * sigma`` count linearly, so that a few outliers do not pull the fit.

    Parameters
    ----------
    epsilon : float, default=1.35
        Threshold, in units of the scale, between the quadratic and the linear part; >= 1. Smaller is more
        robust.
    alpha : float, default=1e-4
        Strength of the L2 penalty ``alpha * ||w||^2``, >= 0.
    %(fit_intercept)s
    tol : float, default=1e-5
        Stopping tolerance of each coefficient fit (passed to the solver) and of the alternation: it stops
        when an update changes the scale by at most ``tol`` relative.
    max_iter : int, default=100
        Largest number of solver iterations of each coefficient fit; reaching it warns with
        :class:`~daskml_lab.exceptions.ConvergenceWarning`.
    %(warm_start)s
    %(random_state)s
    %(solver)s
    %(solver_options)s
    %(checkpoint)s
    %(checkpoint_every)s

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients, in the dtype of ``X``.
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    scale_ : float
        The estimated scale ``sigma`` of the residuals.
    n_iter_ : int
        Solver iterations, summed over the coefficient fits.
    history_ : pandas.DataFrame
        One row per solver iteration (columns as for the other linear models), with ``scale_update`` (the
        alternation) and ``scale`` (the scale held fixed during it).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of str of shape (n_features,)
        Names of the features seen during ``fit``; defined only when ``X`` had string column names.

    See Also
    --------
    sklearn.linear_model.HuberRegressor : The in-memory estimator this one reproduces.
    Ridge : Least squares with an L2 penalty.

    Notes
    -----
    scikit-learn minimises over all parameters at once with L-BFGS-B; this estimator alternates between one
    solver run for the coefficients at a fixed scale and a blocked one-dimensional minimisation over the
    scale (see the module documentation), which reaches the same minimum. scikit-learn's ``outliers_``
    (a per-sample mask) is not stored; it is ``abs(y - model.predict(X)) > model.scale_ * model.epsilon``.

    ``fit`` persists the data once, computes the total sample weight when ``sample_weight`` is given, and
    then alternates: each coefficient fit makes about one pass over the data per solver iteration, each
    scale update three passes bringing back 512 numbers per row block.

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import HuberRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 1))
    >>> y = 3 * X[:, 0] + rng.normal(scale=0.1, size=200)
    >>> y[:10] += 50  # outliers
    >>> model = HuberRegressor().fit(X, y)
    >>> round(float(model.coef_[0]), 1)
    3.0
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "epsilon": [Interval(numbers.Real, 1.0, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        **COMMON_CONSTRAINTS,
    }

    def __init__(
        self,
        epsilon: float = 1.35,
        *,
        alpha: float = 1e-4,
        fit_intercept: bool = True,
        tol: float = 1e-5,
        max_iter: int = 100,
        warm_start: bool = False,
        random_state: Any = None,
        solver: str = "auto",
        solver_options: dict[str, Any] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
    ) -> None:
        self.epsilon = epsilon
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.random_state = random_state
        self.solver = solver
        self.solver_options = solver_options
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> HuberRegressor:
        """Fit the coefficients and the scale.

        Parameters
        ----------
        %(fit_parameters)s

        Returns
        -------
        self : HuberRegressor
            The fitted estimator.

        Warns
        -----
        ConvergenceWarning
            When a coefficient fit reaches ``max_iter``, or the scale has not settled after 100 updates.
        """
        self._validate_params()
        data = self._validate_fit_data(X, y, sample_weight=sample_weight, y_numeric=True)
        self._check_solver_options()
        n_samples, n_features = data.X.shape
        X_rows, y_rows, weights = data.X, _target(data), data.sample_weight
        with self._open_checkpoint(), fit_span(type(self).__name__):
            # The rows are read by every coefficient fit and every scale update: kept in memory unless the
            # solvers' persist rule streams them (data larger than the workers' free memory, or the dask.config
            # key daskml_lab.solvers.persist=False), as each coefficient fit would.
            if BlockedProblem(X_rows, y_rows, weights, loss="huber").will_persist():
                # persist: data-sized, on the workers (or here) for the duration of the fit
                # (watched: a worker paused before the fit would otherwise hold its blocks, with no lineage)
                with unique_fused_keys():
                    rows = [c for c in (X_rows, y_rows, weights) if c is not None]
                    persisted = iter(watched_persist(*rows, what="the rows"))
                    X_rows, y_rows = next(persisted), next(persisted)
                    weights = None if weights is None else next(persisted)
            weight_sum = float(n_samples)
            if weights is not None:
                # compute: one scalar, the total sample weight
                (weight_sum,) = watched_compute(weights.sum(dtype=np.float64), what="the total sample weight")
                weight_sum = float(weight_sum)
                _check_weight_sum(weight_sum)
            w0 = self._warm_start_params(1, n_features)
            previous_scale = getattr(self, "scale_", None)
            scale = float(previous_scale) if w0 is not None and previous_scale is not None else 1.0
            results, scales = [], []
            for update in range(_MAX_SCALE_UPDATES):
                result, coef, intercept = self._run_solver(
                    X_rows,
                    y_rows,
                    weights,
                    self._objective_at(scale, weight_sum),
                    n_outputs=1,
                    w0=w0,
                    stage=f"scale-{update}",
                )
                results.append(result)
                scales.append(scale)
                w0 = np.asarray(result.W, dtype=np.float64)
                new_scale = _optimal_scale(
                    X_rows, y_rows, weights, params_in_graph(coef, intercept), self.epsilon, weight_sum, scale
                )
                change, scale = abs(new_scale - scale) / scale, new_scale
                if change <= self.tol:
                    break
            else:
                warnings.warn(
                    f"HuberRegressor: the scale still changed by {change:.3g} (relative) after "
                    f"{_MAX_SCALE_UPDATES} updates, more than tol={self.tol:g}. Increase tol, or scale the "
                    "target.",
                    ConvergenceWarning,
                    stacklevel=2,
                )
            del X_rows, y_rows, weights  # drop the persisted rows
        history = history_frame(results, scales)
        history = history.rename(columns={"class": "scale"})
        history.insert(
            0, "scale_update", np.repeat(np.arange(len(results)), [len(r.history) for r in results])
        )
        self.coef_ = coef[0]
        self.intercept_ = intercept.dtype.type(intercept[0])
        self.scale_ = float(scale)
        self.n_iter_ = int(sum(result.n_iter for result in results))
        self.history_ = history
        return self

    def _objective_at(self, scale: float, weight_sum: float) -> Objective:
        # (2 / sigma) sum s_i huber_(epsilon sigma)(r_i) + alpha ||w||^2, divided by the total weight.
        return Objective(
            loss="huber",
            data_scale=2.0 / (scale * weight_sum),
            l2=2.0 * self.alpha / weight_sum,
            loss_options={"epsilon": self.epsilon * scale},
        )

    def _objective(self, weight_sum: float) -> Objective:  # pragma: no cover - fit is overridden
        return self._objective_at(1.0, weight_sum)


fill_doc(HuberRegressor.fit)


def _optimal_scale(
    X: da.Array,
    y: da.Array,
    weights: da.Array | None,
    params: Any,
    epsilon: float,
    weight_sum: float,
    scale: float,
) -> float:
    """The scale minimising the objective for fixed coefficients: a root of its non-decreasing derivative."""
    low, high = scale / _FIRST_SPAN, scale * _FIRST_SPAN
    passes = 0
    while passes < _SCALE_PASSES:
        grid = np.geomspace(max(low, _MIN_SCALE), max(high, 2 * _MIN_SCALE), _GRID_SIZE)
        stats = block_statistics(
            _huber_scale_stats_block, X, y, weights, params, 2 * _GRID_SIZE, thresholds=epsilon * grid
        )
        # compute: 2 x 256 float64 per row block (inlier squared residuals, outlier weight, per candidate)
        (totals,) = watched_compute(stats, what="the scale statistics")
        totals = totals.sum(axis=0)
        inlier_squares, outlier_weight = totals[:_GRID_SIZE], totals[_GRID_SIZE:]
        slope = weight_sum - inlier_squares / grid**2 - epsilon**2 * outlier_weight
        if slope[0] > 0:  # the root lies below the grid
            if grid[0] <= _MIN_SCALE:
                return float(_MIN_SCALE)
            low, high = grid[0] / _FIRST_SPAN**2, grid[0]
            continue
        if slope[-1] < 0:  # the root lies above the grid
            low, high = grid[-1], grid[-1] * _FIRST_SPAN**2
            continue
        upper = int(np.argmax(slope >= 0))
        low, high = grid[max(upper - 1, 0)], grid[upper]
        passes += 1
    denominator = weight_sum - epsilon**2 * outlier_weight[upper]
    if denominator > 0 and inlier_squares[upper] > 0:
        return float(np.clip(np.sqrt(inlier_squares[upper] / denominator), low, high))
    return float(high)


def _huber_scale_stats_block(
    X: Any, y: np.ndarray, sample_weight: np.ndarray | None, params: np.ndarray, thresholds: np.ndarray
) -> np.ndarray:
    """Per threshold t: weighted sum of squared residuals with ``|r| <= t``, then weight with ``|r| > t``."""
    residuals = np.abs(np.asarray(y, dtype=np.float64) - _decision_function_block(X, params, ravel=True))
    weights = (
        np.ones_like(residuals) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    )
    order = np.argsort(residuals)
    sorted_residuals, sorted_weights = residuals[order], weights[order]
    cumulative_squares = np.concatenate([[0.0], np.cumsum(sorted_weights * sorted_residuals**2)])
    cumulative_weights = np.concatenate([[0.0], np.cumsum(sorted_weights)])
    n_inliers = np.searchsorted(sorted_residuals, thresholds, side="right")
    inlier_squares = cumulative_squares[n_inliers]
    outlier_weight = cumulative_weights[-1] - cumulative_weights[n_inliers]
    return np.concatenate([inlier_squares, outlier_weight])[None, :]
