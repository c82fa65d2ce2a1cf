"""Generalised linear models of the Tweedie family: Poisson, gamma and Tweedie regression with an L2 penalty."""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Callable
from typing import Any, ClassVar

import dask.array as da
import numpy as np

from daskml_lab._runtime.watched_compute import watched_compute
from daskml_lab.base import Interval, Options
from daskml_lab.linear_model._base import (
    COMMON_CONSTRAINTS,
    LinearRegressorBase,
    Objective,
    _check_weight_sum,
    _target,
)
from daskml_lab.linear_model._blocks import _decision_function_block, block_statistics
from daskml_lab.linear_model._docs import fill_doc
from daskml_lab.monitoring import task_prefix
from daskml_lab.solvers import TweedieFamily

__all__ = ["GammaRegressor", "PoissonRegressor", "TweedieRegressor"]

logger = logging.getLogger(__name__)

_GLM_CONSTRAINTS: dict[str, list[Any]] = {
    "alpha": [Interval(numbers.Real, 0, None, closed="left")],
    "verbose": [Interval(numbers.Integral, 0, None, closed="left")],
    **COMMON_CONSTRAINTS,
}


class _GLMRegressorBase(LinearRegressorBase):
    """Fit, prediction and D^2 score of a Tweedie GLM (not public); subclasses choose the family.

    The objective is scikit-learn's,

        1 / (2 * sum_i s_i) * sum_i s_i * deviance(y_i, mu_i) + alpha / 2 * ||w||^2,   mu_i = h(x_i @ w + b),

    handed to the solver as ``data_scale = 1 / sum_i s_i`` times the half deviances plus ``l2 = alpha``: the
    same function, so ``tol`` means what it means in scikit-learn.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = dict(_GLM_CONSTRAINTS)

    # the parameters of the fixed-family regressors (Poisson, gamma); TweedieRegressor adds power and link
    def __init__(
        self,
        *,
        alpha: float = 1.0,
        fit_intercept: bool = True,
        solver: str = "lbfgs",
        max_iter: int = 100,
        tol: float = 1e-4,
        warm_start: bool = False,
        verbose: int = 0,
        random_state: Any = None,
        solver_options: dict[str, Any] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.solver_options = solver_options
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every

    def _family(self) -> TweedieFamily:  # pragma: no cover - abstract
        raise NotImplementedError

    def _objective(self, weight_sum: float) -> Objective:
        family = self._family()
        return Objective(
            loss=family.loss,
            data_scale=1.0 / weight_sum,
            l2=float(self.alpha),
            loss_options=family.loss_options,
        )

    def _fit_setup(self, data: Any) -> tuple[float, np.ndarray | None]:
        """Check ``y`` against the family's range and start the intercept at ``link(weighted mean of y)``.

        One computation of four scalars: the total weight, the weighted sum of ``y``, the number of targets
        outside the range and the smallest target.
        """
        family = self._family()
        y = _target(data)
        weights = data.sample_weight
        total = weights.sum(dtype=np.float64) if weights is not None else float(y.shape[0])
        weighted_y = (y * weights if weights is not None else y).sum(dtype=np.float64)
        n_outside = (~y.map_blocks(family.in_range, dtype=bool)).sum()
        # compute: four scalars (total weight, weighted sum of y, count outside the range, smallest y)
        weight_sum, y_sum, outside, smallest = watched_compute(
            total, weighted_y, n_outside, y.min(), what="the checks of the target"
        )
        if outside:
            values = f"{int(outside)} value(s) outside it (the smallest y is {float(smallest):g})"
            msg = (
                f"The {family.describe()} of {type(self).__name__} needs {family.target_range}, but y has "
                f"{values}. Use a model whose range covers the target (PoissonRegressor for counts >= 0; "
                "GammaRegressor, or TweedieRegressor with power >= 2, only for y > 0), or transform y."
            )
            raise ValueError(msg)
        weight_sum = float(weight_sum)
        _check_weight_sum(weight_sum)
        start = None
        if self.fit_intercept:
            with np.errstate(divide="ignore", invalid="ignore"):
                intercept = float(family.link_function(float(y_sum) / weight_sum))
            if np.isfinite(intercept):
                # scikit-learn starts there too: the best constant model, from which few steps remain
                start = np.zeros((data.n_features + 1, 1))
                start[-1, 0] = intercept
        return weight_sum, start

    def _solver_callback(self) -> Callable[..., Any] | None:
        if not self.verbose:
            return None
        name = type(self).__name__

        def log_iteration(record: dict[str, Any], W: np.ndarray) -> bool:
            logger.info(
                "%s iteration %d: objective %.10g, gradient sup-norm %.3g, step %s",
                name,
                record["iteration"],
                record["objective"],
                record["grad_norm"],
                record["step_size"],
            )
            return False

        return log_iteration

    def predict(self, X: Any) -> Any:
        """Predict the mean of the target, ``h(X @ coef_ + intercept_)`` with the inverse link ``h``.

        Parameters
        ----------
        %(predict_X)s

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples,)
            Predicted means; lazy for dask and xarray input, numpy for in-memory input.
        """
        X_arr, origin = self._validate_predict_data(X)
        dtype = np.result_type(X_arr.dtype, self._coef_dtype())
        mean = da.map_blocks(
            _predict_mean_block,
            X_arr,
            self._params_in_graph(),
            self._family(),
            chunks=(X_arr.chunks[0],),
            drop_axis=1,
            dtype=dtype,
            meta=np.empty((0,), dtype=dtype),
            token=task_prefix("predict"),
        )
        return self._wrap_output(mean, origin, name="prediction")

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """D^2, the fraction of the deviance explained, computed in one pass.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Samples.
        y : {array-like, dask array} of shape (n_samples,)
            True values, in the family's range.
        sample_weight : {array-like, dask array} of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        float
            ``1 - D(y, predict(X)) / D(y, weighted mean of y)`` with the unit deviance ``D`` of the model's
            family, as scikit-learn's GLMs' ``score``: 1.0 for a perfect prediction, and negative for a
            prediction worse than the constant. When ``y`` is constant (no deviance to explain), 1.0 for a
            perfect prediction and 0.0 otherwise.

        Raises
        ------
        ValueError
            If ``y`` has values outside the family's range (when the blocks are computed), or if the sample
            weights sum to zero.
        """
        data = self._validate_score_data(X, y, sample_weight, y_numeric=True)
        statistics = block_statistics(
            _deviance_statistics_block,
            data.X,
            _target(data),
            data.sample_weight,
            self._params_in_graph(),
            4,
            family=self._family(),
        )
        # compute: 4 float64 sums (weight, weighted y, weighted c(y), weighted model deviance)
        ((weight_sum, y_sum, constant_sum, deviance),) = watched_compute(
            statistics.sum(axis=0), what="the deviance statistics"
        )
        _check_weight_sum(float(weight_sum))
        g1, g2 = self._family().mean_terms(y_sum / weight_sum)
        null_deviance = constant_sum - g1 * y_sum + g2 * weight_sum
        if not null_deviance > 0:
            return 1.0 if deviance <= 0 else 0.0
        return float(1.0 - deviance / null_deviance)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        try:
            tags.target_tags.positive_only = not bool(self._family().in_range(np.array([-1.0]))[0])
        except (TypeError, ValueError):  # an invalid power or link: fit will say so
            pass
        return tags


fill_doc(_GLMRegressorBase.predict)


def _predict_mean_block(X: Any, params: np.ndarray, family: TweedieFamily) -> np.ndarray:
    return family.inverse_link(_decision_function_block(X, params, ravel=True))


def _deviance_statistics_block(
    X: Any, y: np.ndarray, sample_weight: np.ndarray | None, params: np.ndarray, family: TweedieFamily
) -> np.ndarray:
    """``[sum w, sum w y, sum w c(y), sum w half_deviance(y, mu)]`` of one row block, as a (1, 4) row."""
    family.check_target(y)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    mu = family.inverse_link(_decision_function_block(X, params, ravel=True).astype(np.float64))
    return np.array([[w.sum(), w @ y, w @ family.deviance_constant(y), w @ family.half_deviance(y, mu)]])


_SHARED_PARAMETERS = """
    alpha : float, default=1.0
        Strength of the L2 penalty on the coefficients (never on the intercept), >= 0; ``alpha=0`` fits the
        unpenalised GLM, which needs ``X`` of full column rank.
    %(fit_intercept)s
    solver : str, default="lbfgs"
        Optimiser of :data:`daskml_lab.solvers.SOLVERS`: ``"lbfgs"`` (scikit-learn's default),
        ``"newton-cholesky"`` (a few Newton steps with the Hessian assembled from the blocks: the fastest
        choice for up to a few hundred features, whatever their scaling) or ``"newton-cg"`` (Newton steps
        from Hessian-vector products, for wider data), ``"gd"``, or ``"auto"`` (``"lbfgs"``).
    max_iter : int, default=100
        Largest number of solver iterations; reaching it warns with
        :class:`~daskml_lab.exceptions.ConvergenceWarning`.
    tol : float, default=1e-4
        Stop when the largest entry of the objective's gradient is at most ``tol`` (scikit-learn's criterion,
        on the same objective).
    %(warm_start)s
    verbose : int, default=0
        When positive, each solver iteration (objective, gradient sup-norm, step) is logged at ``INFO``
        level by the logger ``daskml_lab.linear_model._glm`` (configure :mod:`logging` to see it).
    %(random_state)s
    %(solver_options)s
    %(checkpoint)s
    %(checkpoint_every)s
"""

_ATTRIBUTES = """
    coef_ : ndarray of shape (n_features,)
        Coefficients of the linear predictor ``X @ coef_ + intercept_``, in the dtype of ``X``.
    intercept_ : float
        Intercept of the linear predictor (0.0 when ``fit_intercept=False``).
    %(linear_attributes)s
"""

_NOTES = """
    The objective is scikit-learn's, ``1 / (2 sum_i s_i) sum_i s_i deviance(y_i, mu_i) + alpha / 2 ||w||^2``
    (``s`` the sample weights): the same minimiser and the same meaning of ``tol``. Like scikit-learn, the
    solver starts from the intercept of the best constant model, ``link(weighted mean of y)``.

    %(fit_notes)s

    Before the solver starts, ``fit`` computes four scalars in one pass over ``y``: the total weight, the
    weighted sum of ``y``, and the count and smallest value of the targets outside the family's range (any
    raises a ``ValueError`` naming them).
"""


def _glm_doc(cls: type) -> type:
    """Put the parameter, attribute and notes fragments shared by the GLMs into ``cls``'s docstring."""
    doc = cls.__doc__ or ""
    doc = doc.replace("    %(glm_parameters)s\n", _SHARED_PARAMETERS.lstrip("\n"))
    doc = doc.replace("    %(glm_attributes)s\n", _ATTRIBUTES.lstrip("\n"))
    cls.__doc__ = doc.replace("    %(glm_notes)s\n", _NOTES.lstrip("\n"))
    return fill_doc(cls)


@_glm_doc
class PoissonRegressor(_GLMRegressorBase):
    """Generalised linear model with a Poisson distribution and the log link, on row-chunked data.

    Models counts (or rates, with the exposure as ``sample_weight``): ``E[y | x] = exp(x @ w + b)``, fitted
    by penalised maximum likelihood as :class:`sklearn.linear_model.PoissonRegressor`. ``y`` must be >= 0.

    Parameters
    ----------
    %(glm_parameters)s

    Attributes
    ----------
    %(glm_attributes)s

    See Also
    --------
    sklearn.linear_model.PoissonRegressor : The in-memory estimator this one reproduces.
    GammaRegressor : Positive continuous targets.
    TweedieRegressor : The whole Tweedie family, of which this is ``power=1``.

    Notes
    -----
    %(glm_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import PoissonRegressor
    >>> X = np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 4.0], [4.0, 3.0]])
    >>> y = np.array([12.0, 17.0, 22.0, 21.0])
    >>> model = PoissonRegressor(tol=1e-8).fit(X, y)
    >>> np.round(model.coef_, 3), round(float(model.intercept_), 3)
    (array([0.121, 0.158]), 2.089)
    >>> round(model.score(X, y), 3)
    0.99
    """

    def _family(self) -> TweedieFamily:
        return TweedieFamily(power=1.0, link="log")


@_glm_doc
class GammaRegressor(_GLMRegressorBase):
    """Generalised linear model with a gamma distribution and the log link, on row-chunked data.

    Models positive, right-skewed targets (claim amounts, prices, durations) whose spread grows with their
    mean: ``E[y | x] = exp(x @ w + b)``, as :class:`sklearn.linear_model.GammaRegressor`. ``y`` must be > 0.

    Parameters
    ----------
    %(glm_parameters)s

    Attributes
    ----------
    %(glm_attributes)s

    See Also
    --------
    sklearn.linear_model.GammaRegressor : The in-memory estimator this one reproduces.
    PoissonRegressor : Counts.
    TweedieRegressor : The whole Tweedie family, of which this is ``power=2``.

    Notes
    -----
    %(glm_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import GammaRegressor
    >>> X = np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 4.0], [4.0, 3.0]])
    >>> y = np.array([19.0, 26.0, 33.0, 30.0])
    >>> model = GammaRegressor(tol=1e-8).fit(X, y)
    >>> np.round(model.coef_, 3), round(float(model.intercept_), 3)
    (array([0.073, 0.067]), 2.897)
    """

    def _family(self) -> TweedieFamily:
        return TweedieFamily(power=2.0, link="log")


@_glm_doc
class TweedieRegressor(_GLMRegressorBase):
    """Generalised linear model with a Tweedie distribution, on row-chunked data.

    The ``power`` chooses the distribution (0 normal, 1 Poisson, between 1 and 2 compound Poisson-gamma,
    which models totals with exact zeros such as insurance claims, 2 gamma, 3 inverse Gaussian) and
    ``link`` how the mean depends on ``x @ w + b``, as :class:`sklearn.linear_model.TweedieRegressor`.

    Parameters
    ----------
    power : float, default=0.0
        Tweedie power. ``y`` may be any real for ``power <= 0``, must be >= 0 for ``0 < power < 2`` and
        > 0 for ``power >= 2`` (no distribution exists for ``0 < power < 1``, but the deviance is still a
        consistent loss for the mean).
    %(glm_parameters)s
    link : {"auto", "identity", "log"}, default="auto"
        Link between the mean and the linear predictor: ``"auto"`` is ``"identity"`` for ``power <= 0`` and
        ``"log"`` otherwise. With the identity link and ``power > 0`` the mean must stay positive: steps that
        leave that domain are rejected by the solver's line search (as with scikit-learn, start from a
        positive intercept, i.e. keep ``fit_intercept=True``).

    Attributes
    ----------
    %(glm_attributes)s

    See Also
    --------
    sklearn.linear_model.TweedieRegressor : The in-memory estimator this one reproduces.
    PoissonRegressor : ``power=1``, log link.
    GammaRegressor : ``power=2``, log link.

    Notes
    -----
    %(glm_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import TweedieRegressor
    >>> X = np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 4.0], [4.0, 3.0]])
    >>> y = np.array([2.0, 3.5, 5.0, 5.5])
    >>> model = TweedieRegressor(tol=1e-8).fit(X, y)
    >>> np.round(model.coef_, 3), round(float(model.intercept_), 3)
    (array([0.6, 0.3]), 1.6)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "power": [Interval(numbers.Real, None, None, closed="neither")],
        "link": [Options({"auto", "identity", "log"})],
        **_GLM_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        power: float = 0.0,
        alpha: float = 1.0,
        fit_intercept: bool = True,
        link: str = "auto",
        solver: str = "lbfgs",
        max_iter: int = 100,
        tol: float = 1e-4,
        warm_start: bool = False,
        verbose: int = 0,
        random_state: Any = None,
        solver_options: dict[str, Any] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
    ) -> None:
        self.power = power
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.link = link
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.solver_options = solver_options
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every

    def _family(self) -> TweedieFamily:
        link = self.link
        if link == "auto":
            link = "identity" if self.power <= 0 else "log"
        return TweedieFamily(power=self.power, link=link)
