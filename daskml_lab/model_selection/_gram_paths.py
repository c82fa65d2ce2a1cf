"""``RidgeCV``, ``LassoCV`` and ``ElasticNetCV``: every fold's path from one pass over the data.

The squared loss needs only second moments: one blocked pass computes, for every fold, the centred Gram
statistics of its train rows and of its test rows (:func:`daskml_lab.solvers.fold_moments`). Every ridge
solution is then a small linear solve on the client, the lasso and elastic-net paths are coordinate descent
on the Gram matrices (all the folds side by side, warm-started along the grid), and every test error is a
quadratic form in the test statistics. The data are read once, whatever the number of folds and alphas;
the client holds ``n_folds`` matrices of ``(n_features + 1)^2`` values, which suits up to a few thousand
features.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, ClassVar

import numpy as np

from daskml_lab import solvers
from daskml_lab.base import HasMethods, Interval, Options
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import ElasticNet, Ridge
from daskml_lab.model_selection._execution import check_cv
from daskml_lab.model_selection._fold_roles import fold_role_matrix
from daskml_lab.monitoring import fit_span

__all__ = ["ElasticNetCV", "LassoCV", "RidgeCV", "r2_from_sse"]

_CV_CONSTRAINT = [
    Interval(numbers.Integral, 2, None, closed="left"),
    HasMethods(["split"]),
    "array-like",
    None,
]


def _moments(estimator: Any, X: Any, y: Any) -> tuple[Any, solvers.FoldMoments]:
    data = estimator._validate_fit_data(X, y, y_numeric=True)
    cv = check_cv(estimator.cv, data.y, classifier=False)
    roles = fold_role_matrix(cv, data.X, data.y)
    with fit_span(type(estimator).__name__):
        moments = solvers.fold_moments(data.X, data.y, roles)
    empty = [f for f, m in enumerate(moments.test) if m.n == 0 or moments.train[f].n == 0]
    if empty:
        msg = f"Fold(s) {empty} have no train or no test rows; use fewer folds or more rows."
        raise ValueError(msg)
    return data, moments


def r2_from_sse(sse: np.ndarray, moments: solvers.Moments) -> np.ndarray:
    # scikit-learn's r2_score: 1 - SSE / SST, and for a constant test target 1.0 (perfect) or 0.0
    sst = float(moments.scatter[-1, -1])
    if sst == 0:
        return np.where(sse == 0, 1.0, 0.0)
    return 1.0 - sse / sst


class RidgeCV(Ridge):
    """Ridge regression with ``alpha`` chosen by cross-validation, exactly, from one pass over the data.

    :class:`sklearn.linear_model.RidgeCV` with ``cv`` given, for row-chunked data. One blocked pass computes
    every fold's train and test Gram statistics; each (fold, alpha) is then a ``n_features x n_features``
    solve on the client, and its test score a quadratic form in the test statistics, so the result is exact
    (no iterative solver) and the data are read once for all the folds and alphas.

    Parameters
    ----------
    alphas : array-like of float, default=(0.1, 1.0, 10.0)
        Penalty strengths to try (``>= 0``).
    fit_intercept : bool, default=True
        Whether to fit an (unpenalised) intercept.
    scoring : {None, "r2", "neg_mean_squared_error"}, default=None
        Test score of each (fold, alpha); ``None`` is R², the estimator's ``score``.
    cv : int, splitter or iterable, default=None
        Folds; ``None`` is 5-fold :class:`~daskml_lab.model_selection.KFold` (scikit-learn's ``cv=None``,
        leave-one-out by the GCV formula, needs every row's leverage and is not offered).

    Attributes
    ----------
    alpha_ : float
        The best alpha (the first one on ties, as scikit-learn's grid search ranks them).
    best_score_ : float
        Its mean test score over the folds.
    cv_scores_ : ndarray of shape (n_alphas, n_folds)
        The test score of every (alpha, fold).
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_features_in_ : int

    See Also
    --------
    sklearn.linear_model.RidgeCV : the in-memory estimator.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import make_regression
    >>> from daskml_lab.model_selection import RidgeCV
    >>> X, y = make_regression(n_samples=60, n_features=30, n_informative=3, noise=100.0, random_state=0)
    >>> model = RidgeCV(alphas=[0.1, 10.0, 1000.0], cv=4).fit(da.from_array(X, chunks=20), y)
    >>> model.alpha_
    10.0
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alphas": ["array-like"],
        "fit_intercept": ["boolean"],
        "scoring": [None, Options({"r2", "neg_mean_squared_error"})],
        "cv": _CV_CONSTRAINT,
    }

    def __init__(
        self,
        alphas: Any = (0.1, 1.0, 10.0),
        *,
        fit_intercept: bool = True,
        scoring: str | None = None,
        cv: Any = None,
    ) -> None:
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.cv = cv

    def fit(self, X: Any, y: Any) -> RidgeCV:
        """Compute the folds' statistics in one pass, choose alpha, and solve on all the data.

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)
        y : {array-like, dask array} of shape (n_samples,)

        Returns
        -------
        self : RidgeCV
        """
        self._validate_params()
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or not np.all(alphas >= 0):
            msg = f"alphas must be a non-empty list of non-negative floats; got alphas={self.alphas!r}."
            raise ValueError(msg)
        data, moments = _moments(self, X, y)
        scores = np.empty((len(alphas), len(moments.test)))
        for f, (train, test) in enumerate(zip(moments.train, moments.test, strict=True)):
            coefs, intercepts = solvers.ridge_solve(train, alphas, fit_intercept=self.fit_intercept)
            sse = solvers.heldout_sse(test, coefs, intercepts)
            scores[:, f] = (
                -sse / test.n if self.scoring == "neg_mean_squared_error" else r2_from_sse(sse, test)
            )
        means = scores.mean(axis=1)
        best = int(np.argmax(means))  # the first of equal means, as rank "min" then argmin would give
        self.alpha_ = float(alphas[best])
        self.best_score_ = float(means[best])
        self.cv_scores_ = scores
        coef, intercept = solvers.ridge_solve(
            moments.full, alphas[best : best + 1], fit_intercept=self.fit_intercept
        )
        self.coef_ = coef[0].astype(data.X.dtype)
        self.intercept_ = float(intercept[0])
        return self


class ElasticNetCV(ElasticNet):
    """Elastic net with ``alpha`` (and ``l1_ratio``) chosen by cross-validation, from one pass over the data.

    :class:`sklearn.linear_model.ElasticNetCV` for row-chunked data. One blocked pass computes every fold's
    train and test Gram statistics; each fold's path over the alphas (largest first, warm-started, with
    scikit-learn's duality-gap stopping rule) is coordinate descent on its Gram matrix, all the folds updated
    side by side on the client, and every test mean squared error is a quadratic form in the test statistics.
    Suited to ``n_features`` up to a few thousand (the client holds ``n_folds`` Gram matrices).

    Parameters
    ----------
    l1_ratio : float or list of float, default=0.5
        Mixing of the L1 and L2 penalties, in (0, 1]; a list is searched too.
    eps : float, default=1e-3
        ``alpha_min / alpha_max`` of the automatic grid.
    alphas : int or array-like, default=100
        Number of alphas of the automatic grid (scikit-learn's, from ``alpha_max`` on all the data), or the
        alphas themselves (sorted from the largest).
    fit_intercept : bool, default=True
    max_iter : int, default=1000
        Coordinate-descent sweeps per alpha.
    tol : float, default=1e-4
        Duality-gap tolerance, relative to ``y^T y`` (scikit-learn's rule).
    cv : int, splitter or iterable, default=None
        Folds; ``None`` is 5-fold :class:`~daskml_lab.model_selection.KFold`.
    positive : bool, default=False
        Constrain the coefficients to be non-negative.

    Attributes
    ----------
    alpha_ : float
    l1_ratio_ : float
    alphas_ : ndarray of shape (n_alphas,) or (n_l1_ratio, n_alphas)
    mse_path_ : ndarray of shape (n_alphas, n_folds) or (n_l1_ratio, n_alphas, n_folds)
        Test mean squared error of every (alpha, fold).
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    dual_gap_ : float
        Duality gap of the refitted model.
    n_iter_ : int
        Sweeps of the refit.
    n_features_in_ : int

    See Also
    --------
    sklearn.linear_model.ElasticNetCV : the in-memory estimator.
    LassoCV : ``l1_ratio=1``.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import make_regression
    >>> from daskml_lab.model_selection import ElasticNetCV
    >>> X, y = make_regression(n_samples=200, n_features=6, n_informative=2, noise=5.0, random_state=0)
    >>> model = ElasticNetCV(l1_ratio=[0.5, 1.0], alphas=20, cv=3).fit(da.from_array(X, chunks=50), y)
    >>> model.mse_path_.shape
    (2, 20, 3)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "l1_ratio": [Interval(numbers.Real, 0, 1, closed="right"), "array-like"],
        "eps": [Interval(numbers.Real, 0, None, closed="neither")],
        "alphas": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "cv": _CV_CONSTRAINT,
        "positive": ["boolean"],
    }

    def __init__(
        self,
        *,
        l1_ratio: Any = 0.5,
        eps: float = 1e-3,
        alphas: Any = 100,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        cv: Any = None,
        positive: bool = False,
    ) -> None:
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.positive = positive

    def _l1_ratios(self) -> tuple[np.ndarray, bool]:
        ratios = np.atleast_1d(np.asarray(self.l1_ratio, dtype=np.float64))
        if ratios.size == 0 or not np.all((ratios > 0) & (ratios <= 1)):
            msg = f"l1_ratio must be in (0, 1] (a float or a list of them); got l1_ratio={self.l1_ratio!r}."
            raise ValueError(msg)
        return ratios, np.ndim(self.l1_ratio) == 0

    def fit(self, X: Any, y: Any) -> ElasticNetCV:
        """Compute the folds' statistics in one pass, fit every fold's path, choose, and refit.

        Parameters
        ----------
        X : {array-like, dask array} of shape (n_samples, n_features)
        y : {array-like, dask array} of shape (n_samples,)

        Returns
        -------
        self

        Warns
        -----
        ConvergenceWarning
            When coordinate descent stops at ``max_iter`` before meeting ``tol``.
        """
        self._validate_params()
        ratios, single = self._l1_ratios()
        data, moments = _moments(self, X, y)
        grids = np.stack([self._alpha_grid(moments.full, ratio) for ratio in ratios])
        mse = np.empty((len(ratios), grids.shape[1], len(moments.test)))
        for r, ratio in enumerate(ratios):
            coefs, intercepts, _, gaps = solvers.enet_gram_path(
                moments.train,
                grids[r],
                l1_ratio=float(ratio),
                fit_intercept=self.fit_intercept,
                tol=self.tol,
                max_iter=self.max_iter,
                positive=self.positive,
            )
            self._warn_unconverged(gaps, moments.train)
            for f, test in enumerate(moments.test):
                mse[r, :, f] = solvers.heldout_sse(test, coefs[f], intercepts[f]) / test.n
        best_mse, best = np.inf, (0, 0)
        for r in range(len(ratios)):
            mean = mse[r].mean(axis=1)
            i = int(np.argmin(mean))
            if mean[i] < best_mse:  # strictly: the first l1_ratio wins ties, as in scikit-learn
                best_mse, best = float(mean[i]), (r, i)
        self.l1_ratio_ = float(ratios[best[0]])
        self.alpha_ = float(grids[best])
        self.alphas_ = grids[0] if single else grids
        self.mse_path_ = mse[0] if single else mse
        coef, intercept, n_iter, gap = solvers.enet_gram_path(
            [moments.full],
            np.array([self.alpha_]),
            l1_ratio=self.l1_ratio_,
            fit_intercept=self.fit_intercept,
            tol=self.tol,
            max_iter=self.max_iter,
            positive=self.positive,
        )
        self._warn_unconverged(gap, [moments.full])
        self.coef_ = coef[0, 0].astype(data.X.dtype)
        self.intercept_ = float(intercept[0, 0])
        self.n_iter_ = int(n_iter[0, 0])
        self.dual_gap_ = float(gap[0, 0])
        return self

    def _alpha_grid(self, full: solvers.Moments, l1_ratio: float) -> np.ndarray:
        if not isinstance(self.alphas, numbers.Integral):
            alphas = np.sort(np.asarray(self.alphas, dtype=np.float64).ravel())[::-1]
            if alphas.size == 0 or not np.all(alphas >= 0):
                msg = (
                    f"alphas must be an int or a non-empty list of non-negative floats; got {self.alphas!r}."
                )
                raise ValueError(msg)
            return alphas
        # scikit-learn's grid: alpha_max makes every coefficient zero on all the data, then eps * alpha_max
        d = len(full.mean) - 1
        Xy = (
            full.scatter[:d, d]
            if self.fit_intercept
            else full.scatter[:d, d] + full.n * full.mean[:d] * full.mean[d]
        )
        top = max(0.0, float(np.max(Xy))) if self.positive else float(np.max(np.abs(Xy)))
        alpha_max = top / (full.n * l1_ratio)
        if alpha_max <= np.finfo(np.float64).resolution:
            return np.full(int(self.alphas), np.finfo(np.float64).resolution)
        return np.geomspace(alpha_max, alpha_max * self.eps, num=int(self.alphas))

    def _warn_unconverged(self, gaps: np.ndarray, moments: list[solvers.Moments]) -> None:
        yy = np.array([m.scatter[-1, -1] for m in moments])[:, None]
        if np.any(gaps > self.tol * yy):
            warnings.warn(
                f"Coordinate descent did not converge within max_iter={self.max_iter} sweeps for "
                f"{int(np.sum(gaps > self.tol * yy))} (fold, alpha) pair(s). Increase max_iter, loosen tol, or "
                "scale the features.",
                ConvergenceWarning,
                stacklevel=3,
            )


class LassoCV(ElasticNetCV):
    """Lasso with ``alpha`` chosen by cross-validation, from one pass over the data.

    :class:`sklearn.linear_model.LassoCV` for row-chunked data: :class:`ElasticNetCV` with ``l1_ratio=1``
    (one Gram pass, then coordinate descent on the folds' Gram matrices on the client).

    Parameters
    ----------
    eps : float, default=1e-3
        ``alpha_min / alpha_max`` of the automatic grid.
    alphas : int or array-like, default=100
        Number of alphas of scikit-learn's automatic grid, or the alphas themselves.
    fit_intercept : bool, default=True
    max_iter : int, default=1000
        Coordinate-descent sweeps per alpha.
    tol : float, default=1e-4
        Duality-gap tolerance relative to ``y^T y``.
    cv : int, splitter or iterable, default=None
        Folds; ``None`` is 5-fold :class:`~daskml_lab.model_selection.KFold`.
    positive : bool, default=False
        Constrain the coefficients to be non-negative.

    Attributes
    ----------
    alpha_ : float
    alphas_ : ndarray of shape (n_alphas,)
    mse_path_ : ndarray of shape (n_alphas, n_folds)
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    dual_gap_ : float
    n_iter_ : int
    n_features_in_ : int

    See Also
    --------
    sklearn.linear_model.LassoCV : the in-memory estimator.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import make_regression
    >>> from daskml_lab.model_selection import LassoCV
    >>> X, y = make_regression(n_samples=200, n_features=6, n_informative=2, noise=5.0, random_state=0)
    >>> model = LassoCV(alphas=20, cv=3).fit(da.from_array(X, chunks=50), y)
    >>> model.coef_.round(2)
    array([ 0.25, -0.  ,  6.55,  0.  , -0.  , 22.34])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        key: value for key, value in ElasticNetCV._parameter_constraints.items() if key != "l1_ratio"
    }

    def __init__(
        self,
        *,
        eps: float = 1e-3,
        alphas: Any = 100,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        cv: Any = None,
        positive: bool = False,
    ) -> None:
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.positive = positive

    def _l1_ratios(self) -> tuple[np.ndarray, bool]:
        return np.array([1.0]), True
