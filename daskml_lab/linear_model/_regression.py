"""Least-squares regression: ordinary, ridge (L2), lasso (L1) and elastic-net penalties."""

from __future__ import annotations

import numbers
import os
from typing import Any, ClassVar

from daskml_lab.base import Interval, Options
from daskml_lab.linear_model._base import COMMON_CONSTRAINTS, LinearRegressorBase, Objective
from daskml_lab.linear_model._docs import fill_doc

__all__ = ["ElasticNet", "Lasso", "LinearRegression", "Ridge"]

#: The constraint of ``model_partitions`` (as :class:`~daskml_lab.linear_model.LogisticRegression`'s).
_PARTITIONS = {
    "model_partitions": [None, Options({"auto"}), Interval(numbers.Integral, 1, None, closed="left")]
}


@fill_doc
class LinearRegression(LinearRegressorBase):
    """Ordinary least squares on row-chunked data.

    Minimises ``sum_i s_i * (y_i - x_i @ w - b)^2`` (``s`` the sample weights), the objective of
    :class:`sklearn.linear_model.LinearRegression`, iteratively.

    Parameters
    ----------
    %(fit_intercept)s
    tol : float, default=1e-6
        Stopping tolerance, passed unchanged to the solver; each solver documents what it measures. The
        default is tighter than for the penalised models because the unpenalised problem is only as well
        conditioned as ``X``.
    %(max_iter)s
    %(warm_start)s
    %(random_state)s
    %(solver)s
    %(solver_options)s
    %(checkpoint)s
    %(checkpoint_every)s
    %(model_partitions)s

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients, in the dtype of ``X``.
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    %(linear_attributes)s

    See Also
    --------
    sklearn.linear_model.LinearRegression : The in-memory estimator this one reproduces.
    Ridge : Least squares with an L2 penalty, better conditioned.

    Notes
    -----
    The solver minimises the objective divided by twice the total sample weight. Unlike scikit-learn's
    direct solve, the result is an iterative approximation: for ill-conditioned ``X`` prefer :class:`Ridge`
    or a smaller ``tol``.

    %(fit_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import LinearRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> model = LinearRegression().fit(X, 2 * X[:, 0] + 1)
    >>> print(np.round(model.coef_, 4), np.round(model.intercept_, 4))
    [2.] 1.0
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {**COMMON_CONSTRAINTS, **_PARTITIONS}

    def __init__(
        self,
        *,
        fit_intercept: bool = True,
        tol: float = 1e-6,
        max_iter: int = 100,
        warm_start: bool = False,
        random_state: Any = None,
        solver: str = "auto",
        solver_options: dict[str, Any] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        model_partitions: int | str | None = None,
    ) -> None:
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.random_state = random_state
        self.solver = solver
        self.solver_options = solver_options
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.model_partitions = model_partitions

    def _objective(self, weight_sum: float) -> Objective:
        return Objective(loss="squared", data_scale=1.0 / weight_sum)


@fill_doc
class Ridge(LinearRegressorBase):
    """Least squares with an L2 penalty on row-chunked data.

    Minimises ``sum_i s_i * (y_i - x_i @ w - b)^2 + alpha * ||w||^2``, the objective of
    :class:`sklearn.linear_model.Ridge`; the intercept is not penalised.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the L2 penalty, >= 0.
    %(fit_intercept)s
    %(tol)s
    %(max_iter)s
    %(warm_start)s
    %(random_state)s
    %(solver)s
    %(solver_options)s
    %(checkpoint)s
    %(checkpoint_every)s
    %(model_partitions)s

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients, in the dtype of ``X``.
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    %(linear_attributes)s

    See Also
    --------
    sklearn.linear_model.Ridge : The in-memory estimator this one reproduces.
    ElasticNet : L1 and L2 penalties together.

    Notes
    -----
    The solver minimises the objective divided by twice the total sample weight.

    %(fit_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import Ridge
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> model = Ridge(alpha=1.0, tol=1e-8).fit(X, 2 * X[:, 0] + 1)
    >>> print(np.round(model.coef_, 4))
    [1.6667]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        **COMMON_CONSTRAINTS,
        **_PARTITIONS,
    }

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        tol: float = 1e-4,
        max_iter: int = 100,
        warm_start: bool = False,
        random_state: Any = None,
        solver: str = "auto",
        solver_options: dict[str, Any] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        model_partitions: int | str | None = None,
    ) -> None:
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
        self.model_partitions = model_partitions

    def _objective(self, weight_sum: float) -> Objective:
        # sklearn: sum s_i r_i^2 + alpha ||w||^2 = 2 * [sum s_i r_i^2 / 2 + alpha / 2 ||w||^2], divided by 2n.
        return Objective(loss="squared", data_scale=1.0 / weight_sum, l2=self.alpha / weight_sum)


@fill_doc
class ElasticNet(LinearRegressorBase):
    """Least squares with combined L1 and L2 penalties on row-chunked data.

    Minimises the objective of :class:`sklearn.linear_model.ElasticNet`,

        1 / (2 * sum_i s_i) * sum_i s_i * (y_i - x_i @ w - b)^2
        + alpha * l1_ratio * ||w||_1 + alpha * (1 - l1_ratio) / 2 * ||w||^2,

    where ``s`` are the sample weights (scikit-learn rescales them to sum to ``n_samples``: the same).
    The intercept is not penalised.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the penalty, >= 0.
    l1_ratio : float, default=0.5
        Mixing in [0, 1]: 1 is the lasso, 0 the ridge penalty (scaled as above).
    %(fit_intercept)s
    %(tol)s
    max_iter : int, default=1000
        Largest number of solver iterations; each iteration is about one pass over the data. Reaching it
        warns with :class:`~daskml_lab.exceptions.ConvergenceWarning`.
    %(warm_start)s
    %(random_state)s
    %(solver)s
    %(solver_options)s
    %(checkpoint)s
    %(checkpoint_every)s
    %(model_partitions)s

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients, in the dtype of ``X``; exact zeros where the L1 penalty removes a feature (with a
        proximal solver).
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    %(linear_attributes)s

    See Also
    --------
    sklearn.linear_model.ElasticNet : The in-memory estimator this one reproduces.
    Lasso : The pure L1 case.

    Notes
    -----
    %(fit_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import ElasticNet
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    >>> model = ElasticNet(alpha=0.1, l1_ratio=0.5, tol=1e-8).fit(X, 2 * X[:, 0] + 1)
    >>> round(float(model.coef_[0]), 3), bool(model.coef_[1] == 0)
    (1.885, True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "l1_ratio": [Interval(numbers.Real, 0, 1, closed="both")],
        **COMMON_CONSTRAINTS,
        **_PARTITIONS,
    }

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        l1_ratio: float = 0.5,
        fit_intercept: bool = True,
        tol: float = 1e-4,
        max_iter: int = 1000,
        warm_start: bool = False,
        random_state: Any = None,
        solver: str = "auto",
        solver_options: dict[str, Any] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        model_partitions: int | str | None = None,
    ) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.random_state = random_state
        self.solver = solver
        self.solver_options = solver_options
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.model_partitions = model_partitions

    def _objective(self, weight_sum: float) -> Objective:
        l1_ratio = self._l1_ratio()
        return Objective(
            loss="squared",
            data_scale=1.0 / weight_sum,
            l2=self.alpha * (1.0 - l1_ratio),
            l1=self.alpha * l1_ratio,
            penalty=f"an L1 penalty (alpha={self.alpha}, l1_ratio={l1_ratio})" if l1_ratio > 0 else "",
        )

    def _l1_ratio(self) -> float:
        return float(self.l1_ratio)


@fill_doc
class Lasso(ElasticNet):
    """Least squares with an L1 penalty on row-chunked data.

    Minimises the objective of :class:`sklearn.linear_model.Lasso`,

        1 / (2 * sum_i s_i) * sum_i s_i * (y_i - x_i @ w - b)^2 + alpha * ||w||_1,

    where ``s`` are the sample weights. The intercept is not penalised. The L1 penalty sets coefficients to
    exactly zero, so the default solver is a proximal method.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the L1 penalty, >= 0.
    %(fit_intercept)s
    %(tol)s
    max_iter : int, default=1000
        Largest number of solver iterations; each iteration is about one pass over the data. Reaching it
        warns with :class:`~daskml_lab.exceptions.ConvergenceWarning`.
    %(warm_start)s
    %(random_state)s
    %(solver)s
    %(solver_options)s
    %(checkpoint)s
    %(checkpoint_every)s
    %(model_partitions)s

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients, in the dtype of ``X``, with exact zeros for the features the penalty removes.
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    %(linear_attributes)s

    See Also
    --------
    sklearn.linear_model.Lasso : The in-memory estimator this one reproduces.
    ElasticNet : L1 and L2 penalties together.

    Notes
    -----
    %(fit_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import Lasso
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    >>> model = Lasso(alpha=0.1, tol=1e-8).fit(X, 2 * X[:, 0] + 1)
    >>> round(float(model.coef_[0]), 3), bool(model.coef_[1] == 0)
    (1.92, True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        **COMMON_CONSTRAINTS,
        **_PARTITIONS,
    }

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        tol: float = 1e-4,
        max_iter: int = 1000,
        warm_start: bool = False,
        random_state: Any = None,
        solver: str = "auto",
        solver_options: dict[str, Any] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        model_partitions: int | str | None = None,
    ) -> None:
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
        self.model_partitions = model_partitions

    def _l1_ratio(self) -> float:
        return 1.0
