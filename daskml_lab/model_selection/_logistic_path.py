"""``LogisticRegressionCV``: the path over ``Cs`` of every fold, all the folds sharing each pass over the data.

Each fold walks the grid ``C`` by ``C``, warm-started, exactly as scikit-learn's path does (the same
iterations), and the folds' evaluations are batched into one pass per round. The rounds are therefore
scikit-learn's number; what was made cheaper is each round (see "What a round costs" in
``docs/model_selection.rst``): no pass for a fold's warm start, which is the point it evaluated last
(:mod:`daskml_lab.solvers._lockstep`), one BLAS thread on the client, the parameters inside the blocks' tasks
and their results straight back to the client (:mod:`daskml_lab.solvers._folded`). Running several ``C``
side by side from zeros was not chosen: from zeros a point takes 20 or more iterations, warm-started 0 to 3.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np

from daskml_lab import solvers
from daskml_lab.base import (
    HasMethods,
    Interval,
    Options,
    class_weight_vector,
    effective_weights,
    encode_labels,
)
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.model_selection._execution import check_cv
from daskml_lab.model_selection._fold_roles import fold_role_matrix
from daskml_lab.monitoring import fit_span

__all__ = ["LogisticRegressionCV", "logistic_path"]

#: Scorers the shared scoring pass computes: scikit-learn's name -> (blocked metric, sign).
_PATH_SCORERS = {None: ("accuracy", 1.0), "accuracy": ("accuracy", 1.0), "neg_log_loss": ("log_loss", -1.0)}


class LogisticRegressionCV(LogisticRegression):
    """Logistic regression with ``C`` (and ``l1_ratio``) chosen by cross-validation, all folds in shared passes.

    :class:`sklearn.linear_model.LogisticRegressionCV` for row-chunked data (L2 penalty by ``lbfgs``; elastic
    net by FISTA when ``l1_ratios`` has a positive value). Each fold
    fits the path over ``Cs`` in the given order (scikit-learn's ``logspace(-4, 4, Cs)`` is from the strongest
    penalty to the weakest), each point warm-started from the previous one, with scipy's L-BFGS-B, scikit-learn's
    solver. All the folds advance in lockstep: in every round, one blocked pass over the data computes the
    loss and gradient of every fold's current iterate on that fold's training rows (``X_block @ W`` with ``W``
    holding all the folds' parameters, each fold's rows picked by its role in the block), so the data are
    read once per round for the whole cross-validation instead of once per fold. A last pass scores every
    (fold, C) on its test rows; the best ``C`` is refitted on all the data. With ``l1_ratios``, every
    (l1_ratio, fold) walks its own path over ``Cs`` by FISTA (the solver of ``solver="proximal"``), all of
    them in the same lockstep passes, and the best (C, l1_ratio) pair is refitted.

    Parameters
    ----------
    Cs : int or array-like of float, default=10
        The values of ``C`` (inverse regularisation strength) to try, or how many of them, on a logarithmic
        grid between 1e-4 and 1e4 (scikit-learn's grid).
    l1_ratios : array-like of float in [0, 1] or None, default=None
        Elastic-net mixings to try, scikit-learn's penalty ``(1 - r) / 2 ||w||^2 + r ||w||_1`` (0 is L2, 1 is
        L1). ``None``: the L2 path by L-BFGS, and the attributes without an l1_ratio axis (scikit-learn's
        layout for ``l1_ratios=None``). A list adds the l1_ratio axis after the C axis of ``scores_``,
        ``coefs_paths_`` and ``n_iter_``; if one of its values is positive, every path runs by FISTA.
    fit_intercept : bool, default=True
        Whether to fit an (unpenalised) intercept.
    cv : int, splitter or iterable, default=None
        Folds: ``None`` or an int gives :class:`~daskml_lab.model_selection.StratifiedKFold` (5 folds for
        ``None``), as scikit-learn does; splitters and lists of (train, test) are accepted too.
    scoring : {None, "accuracy", "neg_log_loss"}, default=None
        Score of each (fold, C) on the test rows (``None`` is accuracy, scikit-learn's current default).
    tol : float, default=1e-4
        Stopping tolerance of L-BFGS (scipy's ``gtol`` on the per-sample objective, as in scikit-learn); for
        FISTA the sup-norm of the smallest subgradient of that objective.
    max_iter : int, default=100
        Iterations per point of each fold's path (FISTA needs more than L-BFGS: 1000 is a usual value).
    refit : bool, default=True
        Refit the best ``C`` (and ``l1_ratio``) on all the data (with
        :class:`~daskml_lab.linear_model.LogisticRegression`, warm-started from the folds' mean); ``False``
        averages the folds' best coefficients (and their ``C`` and ``l1_ratio``) as scikit-learn does.
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes in every fold's loss and in the refit, as scikit-learn's: a dict maps labels to
        weights (missing labels weigh 1); ``'balanced'`` is ``n_samples / (n_classes * count)`` from the
        (sample-weighted) class counts of all the rows. The test scores are weighted by ``sample_weight`` only.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    Cs_ : ndarray of shape (n_cs,)
        The values of ``C`` tried.
    C_ : ndarray of shape (1,) or (n_classes,)
        The best ``C`` (repeated per class for several classes), scikit-learn's legacy layout.
    l1_ratio_ : ndarray
        The best ``l1_ratio``, shaped like ``C_`` (zeros for ``l1_ratios=None``).
    l1_ratios_ : ndarray of shape (n_l1_ratios,)
        The values of ``l1_ratio`` tried (``[0.0]`` for ``l1_ratios=None``).
    scores_ : dict
        ``{class: ndarray of shape (n_folds, n_cs) or (n_folds, n_cs, n_l1_ratios)}``: the test score of every
        (fold, C[, l1_ratio]), the same array for every key (``classes_[1]`` only for two classes).
    coefs_paths_ : dict
        ``{class: ndarray of shape (n_folds, n_cs[, n_l1_ratios], n_features + fit_intercept)}``, the
        intercept last.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_ : ndarray of shape (1, n_folds, n_cs) or (1, n_folds, n_cs, n_l1_ratios)
        Solver iterations of every path point.
    n_passes_ : int
        Passes over the data of the path and its scoring (each one dask computation for all the folds).
    n_rounds_ : int
        Lockstep rounds of the path: one pass each, ``max(n_evaluations_)``.
    n_evaluations_ : ndarray of shape (n_folds,)
        Function evaluations every fold asked for (a pass per fold per evaluation without the lockstep); the
        first evaluation of each ``C`` after the first is the previous solution's, reused without a pass.
    n_features_in_ : int

    See Also
    --------
    sklearn.linear_model.LogisticRegressionCV : the in-memory estimator this one reproduces.
    daskml_lab.model_selection.GridSearchCV : any estimator, any grid.

    Notes
    -----
    ``fit`` computes: the class counts (one small pass), the train and test counts of the folds (one small
    pass), one pass per L-BFGS round of the lockstep path (each bringing back ``n_folds`` losses and
    gradients of ``n_features + 1`` values per class), one scoring pass, and the refit. The blocks and the
    fold roles are persisted for the path when they fit in the workers' memory (the solvers' memory plan).

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import make_classification
    >>> from daskml_lab.model_selection import LogisticRegressionCV
    >>> X, y = make_classification(n_samples=300, n_features=5, random_state=0)
    >>> model = LogisticRegressionCV(Cs=4, cv=3).fit(da.from_array(X, chunks=100), da.from_array(y, chunks=100))
    >>> model.Cs_.round(2).tolist(), model.scores_[1].shape
    ([0.0, 0.05, 21.54, 10000.0], (3, 4))
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "Cs": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "l1_ratios": ["array-like", None],
        "fit_intercept": ["boolean"],
        "cv": [Interval(numbers.Integral, 2, None, closed="left"), HasMethods(["split"]), "array-like", None],
        "scoring": [None, Options({"accuracy", "neg_log_loss"})],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "refit": ["boolean"],
        "class_weight": ["dict", Options({"balanced"}), None],
    }

    def __init__(
        self,
        *,
        Cs: Any = 10,
        l1_ratios: Any = None,
        fit_intercept: bool = True,
        cv: Any = None,
        scoring: str | None = None,
        tol: float = 1e-4,
        max_iter: int = 100,
        refit: bool = True,
        class_weight: Any = None,
    ) -> None:
        self.Cs = Cs
        self.l1_ratios = l1_ratios
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.scoring = scoring
        self.tol = tol
        self.max_iter = max_iter
        self.refit = refit
        self.class_weight = class_weight

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegressionCV:
        """Fit every fold's path, score it, choose ``C`` and refit.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
        y : {array-like, dask array} of shape (n_samples,)
        sample_weight : {array-like, dask array} of shape (n_samples,), default=None
            Row weights, as scikit-learn's: they weight every fold's loss (its sample count in the objective is
            its sum of train weights), its test scores and the refit.

        Returns
        -------
        self : LogisticRegressionCV

        Raises
        ------
        ValueError
            For fewer than two classes, non-positive ``Cs``, ``l1_ratios`` outside [0, 1], a fold without
            train or test rows.

        Warns
        -----
        ConvergenceWarning
            When some (fold, C) stops at ``max_iter``.
        """
        self._validate_params()
        Cs = _check_cs(self.Cs)
        l1_ratios = _check_l1_ratios(self.l1_ratios)
        data = self._validate_fit_data(X, y, sample_weight=sample_weight)
        metric, sign = _PATH_SCORERS[self.scoring]
        with fit_span(type(self).__name__):
            classes, weight_sums = self._class_statistics(data)
            if len(classes) < 2:
                msg = f"LogisticRegressionCV needs at least 2 classes; y has only {classes.tolist()}."
                raise ValueError(msg)
            multinomial = len(classes) > 2
            cv = check_cv(self.cv, data.y, classifier=True)
            roles = fold_role_matrix(cv, data.X, data.y)
            codes = encode_labels(data.y, classes)
            # the losses weigh each row by its sample weight times its class's weight ("balanced": from the
            # weighted class counts of all the rows, as scikit-learn's); the test scores by its sample weight
            class_weights = class_weight_vector(self.class_weight, classes, weight_sums)
            path, (scores,), n_passes = logistic_path(
                data.X,
                codes,
                roles,
                Cs,
                [metric],
                n_classes=len(classes),
                fit_intercept=self.fit_intercept,
                tol=self.tol,
                max_iter=self.max_iter,
                l1_ratios=l1_ratios if l1_ratios is not None and np.any(l1_ratios > 0) else None,
                sample_weight=effective_weights(codes, data.sample_weight, class_weights, data.X.dtype),
                score_weight=data.sample_weight,
            )
            scores = sign * scores
        ratios = np.zeros(1) if l1_ratios is None else l1_ratios
        if l1_ratios is not None and scores.ndim == 2:
            # an all-L2 list ran the L2 path once: the same path for every (zero) l1_ratio
            scores = np.repeat(scores[:, :, None], len(ratios), axis=2)
            path = solvers.PathResult(
                coefs=np.repeat(path.coefs[:, :, None], len(ratios), axis=2),
                n_iter=np.repeat(path.n_iter[:, :, None], len(ratios), axis=2),
                n_evaluations=path.n_evaluations,
                n_rounds=path.n_rounds,
            )
        self._set_path_attributes(classes, Cs, path, scores)
        self.l1_ratios_ = ratios.copy()
        self.n_passes_ = n_passes
        self.n_rounds_ = path.n_rounds
        self.n_evaluations_ = path.n_evaluations
        # one axis of (C, l1_ratio) candidates: scores (n_folds, n_candidates), coefs (n_folds, n_candidates, ...)
        n_folds = scores.shape[0]
        flat_scores = scores.reshape(n_folds, -1)
        flat_coefs = path.coefs.reshape(n_folds, flat_scores.shape[1], *path.coefs.shape[-2:])
        C_grid, ratio_grid = (grid.ravel() for grid in np.meshgrid(Cs, ratios, indexing="ij"))
        n_keys = len(classes) if multinomial else 1
        if self.refit:
            best = int(np.argmax(flat_scores.sum(axis=0)))  # the first of ties, as scikit-learn's argmax
            self._refit(data, classes, C_grid[best], ratio_grid[best], flat_coefs[:, best].mean(axis=0))
            self.C_ = np.full(n_keys, C_grid[best])
            self.l1_ratio_ = np.full(n_keys, ratio_grid[best])
        else:
            best_per_fold = np.argmax(flat_scores, axis=1)
            W = np.mean([flat_coefs[f, b] for f, b in enumerate(best_per_fold)], axis=0)
            self._set_coefficients(W)
            self.C_ = np.full(n_keys, float(np.mean(C_grid[best_per_fold])))
            self.l1_ratio_ = np.full(n_keys, float(np.mean(ratio_grid[best_per_fold])))
        return self

    def _set_path_attributes(
        self, classes: np.ndarray, Cs: np.ndarray, path: Any, scores: np.ndarray
    ) -> None:
        self.classes_ = classes
        self.Cs_ = Cs
        keys = classes[1:] if len(classes) == 2 else classes
        self.scores_ = {key: scores.copy() for key in keys}
        # (n_folds, n_cs[, n_l1], n_params, n_outputs) -> one (n_folds, n_cs[, n_l1], n_params) array per output
        self.coefs_paths_ = {key: path.coefs[..., k].copy() for k, key in enumerate(keys)}
        self.n_iter_ = path.n_iter[None]

    def _set_coefficients(self, W: np.ndarray) -> None:
        n_features = self.n_features_in_
        self.coef_ = np.ascontiguousarray(W[:n_features].T)
        self.intercept_ = W[n_features].copy() if self.fit_intercept else np.zeros(W.shape[1])

    def _refit(self, data: Any, classes: np.ndarray, C: float, l1_ratio: float, W0: np.ndarray) -> None:
        model = LogisticRegression(
            C=float(C),
            l1_ratio=float(l1_ratio),
            fit_intercept=self.fit_intercept,
            tol=self.tol,
            max_iter=self.max_iter,
            solver="proximal" if l1_ratio > 0 else "lbfgs",
            warm_start=True,
            class_weight=self.class_weight,
        )
        # warm start from the folds' mean at the best C, as scikit-learn does (the same optimum, fewer passes)
        model.classes_ = classes
        model.coef_ = np.ascontiguousarray(W0[: self.n_features_in_].T)
        model.intercept_ = W0[self.n_features_in_] if self.fit_intercept else np.zeros(W0.shape[1])
        model.fit(data.X, data.y, sample_weight=data.sample_weight)
        self.coef_, self.intercept_ = model.coef_, model.intercept_
        self.history_ = model.history_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def logistic_path(
    X: Any,
    codes: Any,
    roles: Any,
    Cs: np.ndarray,
    metrics: list[str],
    *,
    n_classes: int,
    fit_intercept: bool,
    tol: float,
    max_iter: int,
    cold_start: bool = False,
    l1_ratios: np.ndarray | None = None,
    sample_weight: Any = None,
    score_weight: Any = None,
    train_metrics: bool = False,
) -> tuple[solvers.PathResult, list[np.ndarray], int]:
    """Every fold's logistic path over ``Cs`` in lockstep, then its test ``metrics``: the shared-pass engine.

    Parameters
    ----------
    X : dask.array.Array
        Validated features.
    codes : dask.array.Array
        Class codes ``0 .. n_classes - 1``.
    roles : dask.array.Array of shape (n_samples, n_folds)
        From :func:`~daskml_lab.model_selection._fold_roles.fold_role_matrix`.
    Cs : ndarray
        In the order of the path (warm starts follow it).
    metrics : list of {"accuracy", "log_loss"}
        Test metrics (one scoring pass each).
    n_classes : int
    fit_intercept : bool
    tol, max_iter
        Of L-BFGS, per path point.
    cold_start : bool, default=False
        Start every (C, fold) from zeros, as separate fits do (a grid search's candidates), all of them still
        in lockstep; otherwise each fold warm-starts every C from the previous one (a path).
    l1_ratios : ndarray or None, default=None
        Elastic-net mixings: one path over ``Cs`` per (l1_ratio, fold), all in lockstep, by FISTA
        (scikit-learn's penalty ``(1 - r) / 2 ||w||^2 + r ||w||_1``); None is the L2 path by L-BFGS. Not with
        ``cold_start``.
    sample_weight : dask.array.Array or None, default=None
        Row weights in the losses (scikit-learn's ``sample_weight`` times the class weights), X's row chunks;
        every fold's sample count in the objective is its sum of train weights, as in scikit-learn.
    score_weight : dask.array.Array or None, default=None
        Row weights in the test scores (scikit-learn's ``sample_weight`` only).
    train_metrics : bool, default=False
        Also score every metric on each fold's train rows (a search's ``return_train_score``; no weights):
        ``scores`` then holds the test scores of all metrics, then their train scores.

    Returns
    -------
    path : PathResult
        With ``l1_ratios``, ``coefs`` and ``n_iter`` have an l1_ratio axis after the C axis.
    scores : list of ndarray of shape (n_folds, n_cs) or (n_folds, n_cs, n_l1_ratios)
        One per metric: accuracy or mean log-loss on each fold's test rows (then on its train rows).
    n_passes : int
        Passes over the data (one dask computation each).
    """
    multinomial = n_classes > 2
    n_outputs = n_classes if multinomial else 1
    n_folds, n_cs = int(roles.shape[1]), len(Cs)
    if cold_start and l1_ratios is not None:
        msg = "logistic_path: cold_start and l1_ratios cannot be combined."
        raise ValueError(msg)
    # cold starts: one problem per (C, fold), problem c * n_folds + f; elastic net: one path per (l1_ratio,
    # fold), problem r * n_folds + f; otherwise one path per fold
    if cold_start:
        problem_folds = [f for _ in range(n_cs) for f in range(n_folds)]
    elif l1_ratios is not None:
        problem_folds = [f for _ in l1_ratios for f in range(n_folds)]
    else:
        problem_folds = None
    with solvers.FoldedProblem(
        X,
        codes,
        roles,
        loss="multinomial" if multinomial else "logistic",
        n_outputs=n_outputs,
        fit_intercept=fit_intercept,
        problem_folds=problem_folds,
        sample_weight=sample_weight,
        score_weight=score_weight,
    ) as problem:
        n_train = problem.n_train.astype(np.float64)[problem.problem_folds]
        # scikit-learn's objective per sample: mean loss + ||w||^2 / (2 C n_train)
        shape = {
            "n_folds": problem.n_problems,
            "n_params": problem.n_params,
            "n_outputs": n_outputs,
            "n_features": problem.n_features,
            "data_scales": 1.0 / n_train,
        }
        if cold_start:
            l2_path = [[1.0 / (Cs[i // n_folds] * n)] for i, n in enumerate(n_train)]
        elif l1_ratios is not None:
            # scikit-learn's elastic net per sample: mean loss + ((1 - r) / 2 ||w||^2 + r ||w||_1) / (C n_train)
            ratios = [float(l1_ratios[i // n_folds]) for i in range(len(n_train))]
            l2_path = [[(1.0 - r) / (C * n) for C in Cs] for r, n in zip(ratios, n_train, strict=True)]
            l1_path = [[r / (C * n) for C in Cs] for r, n in zip(ratios, n_train, strict=True)]
        else:
            l2_path = [[1.0 / (C * n) for C in Cs] for n in n_train]
        if l1_ratios is None:
            path = solvers.lockstep_lbfgs_paths(
                problem.loss_grad, **shape, l2_path=l2_path, tol=tol, max_iter=max_iter
            )
        else:
            path = solvers.lockstep_proximal_paths(
                problem.loss_grad, **shape, l2_path=l2_path, l1_path=l1_path, tol=tol, max_iter=max_iter
            )
        scores = [problem.test_scores(path.coefs, metric) for metric in metrics]
        if train_metrics:
            scores += [problem.train_scores(path.coefs, metric) for metric in metrics]
        n_passes = problem.n_passes
    if cold_start:
        # (C, fold) problems back to the (fold, C) layout of a path
        scores = [values.reshape(n_cs, n_folds).T for values in scores]
        path = solvers.PathResult(
            coefs=path.coefs.reshape(n_cs, n_folds, *path.coefs.shape[2:]).swapaxes(0, 1),
            n_iter=path.n_iter.reshape(n_cs, n_folds).T,
            n_evaluations=path.n_evaluations.reshape(n_cs, n_folds).sum(axis=0),
            n_rounds=path.n_rounds,
        )
    elif l1_ratios is not None:
        # (l1_ratio, fold) problems to (fold, C, l1_ratio), scikit-learn's layout
        n_l1 = len(l1_ratios)
        scores = [np.moveaxis(values.reshape(n_l1, n_folds, n_cs), 0, 2) for values in scores]
        path = solvers.PathResult(
            coefs=np.moveaxis(path.coefs.reshape(n_l1, n_folds, n_cs, *path.coefs.shape[2:]), 0, 2),
            n_iter=np.moveaxis(path.n_iter.reshape(n_l1, n_folds, n_cs), 0, 2),
            n_evaluations=path.n_evaluations.reshape(n_l1, n_folds).sum(axis=0),
            n_rounds=path.n_rounds,
        )
    return path, scores, n_passes


def _check_l1_ratios(l1_ratios: Any) -> np.ndarray | None:
    if l1_ratios is None:
        return None
    values = np.asarray(l1_ratios, dtype=np.float64).ravel()
    if values.size == 0 or not np.all((values >= 0) & (values <= 1)):
        msg = (
            "l1_ratios must be None or a non-empty list of floats between 0 (L2) and 1 (L1); "
            f"got l1_ratios={l1_ratios!r}."
        )
        raise ValueError(msg)
    return values


def _check_cs(Cs: Any) -> np.ndarray:
    if isinstance(Cs, numbers.Integral):
        return np.logspace(-4, 4, int(Cs))
    values = np.asarray(Cs, dtype=np.float64).ravel()
    if values.size == 0 or not np.all(values > 0) or not np.all(np.isfinite(values)):
        msg = f"Cs must be a positive int or a non-empty list of positive finite floats; got Cs={Cs!r}."
        raise ValueError(msg)
    return values
