"""Shared machinery of the linear models: the fit flow around a solver, lazy prediction, ``history_``.

Every model minimises the objective of :mod:`daskml_lab.solvers`,

    F(W) = data_scale * sum_i sw_i * loss(y_i, x_i @ W[:d] + b) + (l2 / 2) * ||W[:d]||^2 + l1 * ||W[:d]||_1,

and chooses ``data_scale``, ``l2`` and ``l1`` (an :class:`Objective`) so that ``F`` is proportional to
scikit-learn's objective for the same model, hence has the same minimiser. The estimator classes only
describe their objective; running the solver, warm starts, the coefficients' entry into prediction graphs and
the per-block kernels live here.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import numbers
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import dask
import dask.array as da
import numpy as np
import pandas as pd
from dask.base import tokenize
from dask.delayed import Delayed
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from daskml_lab import solvers
from daskml_lab._runtime.checkpoint_files import lock_checkpoint_directory, open_checkpoint_directory
from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.cluster_health import explain_cluster_failures
from daskml_lab._runtime.watched_compute import watched_compute
from daskml_lab.base import DaskMLEstimator, Interval, class_weight_vector, encode_labels
from daskml_lab.data.validation import ValidatedData, check_X_y
from daskml_lab.linear_model._blocks import (
    _class_weight_sums_block,
    _class_weight_sums_combine,
    _decision_function_block,
    _predict_labels_block,
    params_in_graph,
)
from daskml_lab.linear_model._docs import fill_doc
from daskml_lab.linear_model._partitioned import PartitionedFit
from daskml_lab.linear_model._partitioned_model import PartitionedCoefficients
from daskml_lab.metrics import accuracy_score, r2_score
from daskml_lab.monitoring import fit_span, task_prefix

__all__ = [
    "LinearClassifierBase",
    "LinearModelBase",
    "LinearRegressorBase",
    "Objective",
    "history_frame",
]

logger = logging.getLogger(__name__)

#: Order in which ``solver="auto"`` picks among the solvers that support a loss and penalty.
_AUTO_ORDER = ("lbfgs", "proximal", "smoothed-newton", "admm", "sgd", "gd", "async-sgd")
#: Keywords every solver takes from the estimator's own parameters (never from ``solver_options``).
_RESERVED_SOLVER_KEYWORDS = frozenset(
    {"problem", "w0", "tol", "max_iter", "random_state", "callback", "checkpoint"}
)
#: Parameters that do not change the solution, left out of a checkpoint's fingerprint.
_CHECKPOINT_NEUTRAL = frozenset({"checkpoint", "checkpoint_every", "warm_start"})
_HISTORY_COLUMNS = ("iteration", "objective", "grad_norm", "step_size", "time_s")


class _SolverName:
    """Constraint: ``"auto"`` or a solver of :data:`daskml_lab.solvers.SOLVERS`, read at check time.

    Solvers registered later (sgd, async-sgd, admm) are accepted without touching the estimators.
    """

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and (value == "auto" or value in solvers.SOLVERS)

    def describe(self) -> str:
        names = sorted({"auto", *solvers.SOLVERS})
        return "a str among {" + ", ".join(repr(name) for name in names) + "}"


#: Constraints shared by every linear model.
COMMON_CONSTRAINTS: dict[str, list[Any]] = {
    "fit_intercept": ["boolean"],
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "warm_start": ["boolean"],
    "random_state": ["random_state"],
    "solver": [_SolverName()],
    "solver_options": [None, "dict"],
    "checkpoint": [None, "str", os.PathLike],
    "checkpoint_every": [Interval(numbers.Integral, 1, None, closed="left")],
}


@dataclass(frozen=True)
class Objective:
    """The solver-side description of a model's objective.

    Attributes
    ----------
    loss : str
        Loss name of :mod:`daskml_lab.solvers` (``"squared"``, ``"logistic"``, ``"multinomial"``, ...).
    data_scale : float
        Factor of the weighted sum of the losses.
    l2, l1 : float
        Penalty strengths (``l2 / 2 * ||w||^2 + l1 * ||w||_1``); the intercept is never penalised.
    penalty : str
        How the user asked for the penalty, for error messages (e.g. ``"l1_ratio=0.5"``).
    loss_options : dict or None
        Extra parameters of the loss.
    """

    loss: str
    data_scale: float
    l2: float = 0.0
    l1: float = 0.0
    penalty: str = ""
    loss_options: dict[str, Any] | None = None


class LinearModelBase(PartitionedFit, DaskMLEstimator):
    """Fit and predict machinery shared by every linear model (not a public estimator)."""

    _accepts_sparse: ClassVar[bool] = True

    def _validate_fit_data(
        self, X: Any, y: Any = None, *, sample_weight: Any = None, y_numeric: bool = False
    ) -> ValidatedData:
        if y is None:
            msg = (
                f"{type(self).__name__} requires y to be passed, but the target y is None. Pass the target "
                "values (or class labels) as the second argument of fit."
            )
            raise ValueError(msg)
        return super()._validate_fit_data(X, y, sample_weight=sample_weight, y_numeric=y_numeric)

    # ----------------------------------------------------------------------------------------------- solving
    def _check_solver_options(self) -> None:
        """Check ``solver_options`` against the chosen solver's signature (before any graph is built)."""
        if not self.solver_options:
            return
        if self.solver == "auto":
            msg = (
                f"solver_options={self.solver_options!r} needs an explicit solver, but solver='auto'. Choose "
                f"the solver the options belong to, e.g. solver='lbfgs', or drop solver_options."
            )
            raise ValueError(msg)
        accepted = _solver_keywords(solvers.get_solver(self.solver))
        reserved = sorted(set(self.solver_options) & _RESERVED_SOLVER_KEYWORDS)
        if reserved:
            msg = (
                f"solver_options may not set {reserved}: they come from the estimator's own parameters "
                f"(tol, max_iter, random_state, warm_start, checkpoint). Set those on {type(self).__name__} "
                "instead."
            )
            raise ValueError(msg)
        unknown = sorted(set(self.solver_options) - set(accepted))
        if unknown:
            msg = (
                f"solver_options has keys {unknown} that solver={self.solver!r} does not take. Its options "
                f"are {sorted(accepted)}."
            )
            raise ValueError(msg)

    @contextlib.contextmanager
    def _open_checkpoint(self) -> Iterator[None]:
        """Hold the checkpoint directory for the fit and check it (writable, and this fit's); no-op without one.

        Entered before any computation. The directory's lock is held until the block ends (however it ends):
        a second fit on the same directory gets a :class:`~daskml_lab.solvers.CheckpointError` naming the
        fit holding it. The directory's manifest records the estimator's class and parameters (all but
        ``checkpoint``, ``checkpoint_every`` and ``warm_start``): another estimator, or other parameters, are
        refused with a :class:`~daskml_lab.solvers.CheckpointError`. Each solver run then checks its own stage
        against the problem and the data. On a cluster, an error raised because the scheduler or every worker
        was lost becomes :class:`~daskml_lab.exceptions.SchedulerLostError` or
        :class:`~daskml_lab.exceptions.NoWorkersLeftError` (naming ``checkpoint``, to resume).
        """
        # A lost scheduler or the loss of every worker ends the fit with one clear error, whatever surfaced.
        with explain_cluster_failures(
            current_client(), doing=f"fitting {type(self).__name__}", checkpoint=self.checkpoint
        ):
            if self.checkpoint is None:
                yield
                return

            if self.solver != "auto":
                self._check_solver_checkpoints(str(self.solver))

            params = {k: v for k, v in self.get_params(deep=False).items() if k not in _CHECKPOINT_NEUTRAL}
            with lock_checkpoint_directory(self.checkpoint):
                open_checkpoint_directory(self.checkpoint, owner=type(self).__name__, fingerprint=params)
                yield

    def _check_solver_checkpoints(self, name: str) -> None:
        """Refuse ``checkpoint`` with a registered solver that does not take a ``checkpoint`` argument."""
        if "checkpoint" not in inspect.signature(solvers.get_solver(name)).parameters:
            msg = (
                f"solver={name!r} does not support checkpoints (it takes no 'checkpoint' argument), but "
                f"checkpoint={self.checkpoint!r} was given. Use one of the built-in solvers, or checkpoint=None."
            )
            raise ValueError(msg)

    def _checkpoint_keywords(self, name: str, stage: str) -> dict[str, Any]:
        """``{"checkpoint": SolverCheckpoint}`` for the solver run ``stage``, or nothing without a checkpoint.

        Nothing is passed without a checkpoint, so that solvers registered without checkpoint support work.
        """
        if self.checkpoint is None:
            return {}
        self._check_solver_checkpoints(name)
        return {
            "checkpoint": solvers.SolverCheckpoint(self.checkpoint, every=self.checkpoint_every, stage=stage)
        }

    def _resolve_solver(self, objective: Objective) -> str:
        """The solver for ``objective``: ``self.solver`` checked against the registry, or the auto choice."""
        supported = list(solvers.supported_solvers(objective.loss, objective.l1))
        what = f"loss={objective.loss!r}" + (f" with {objective.penalty}" if objective.penalty else "")
        if self.solver == "auto":
            if not supported:
                msg = (
                    f"No registered solver supports {what}; the registered solvers are "
                    f"{sorted(solvers.SOLVERS)}. Change the loss or penalty of {type(self).__name__}."
                )
                raise ValueError(msg)
            return next((name for name in _AUTO_ORDER if name in supported), supported[0])
        if self.solver not in supported:
            hint = (
                f"Use solver={supported[0]!r} (or 'auto')"
                if supported
                else "No registered solver supports it"
            )
            msg = (
                f"solver={self.solver!r} does not support {what} in {type(self).__name__}. Solvers that do: "
                f"{supported}. {hint}."
            )
            raise ValueError(msg)
        return str(self.solver)

    def _run_solver(
        self,
        X: da.Array,
        y: da.Array,
        sample_weight: da.Array | None,
        objective: Objective,
        *,
        n_outputs: int,
        w0: np.ndarray | None,
        stage: str = "solver",
    ) -> tuple[Any, np.ndarray, np.ndarray]:
        """Build the blocked problem, run the solver; return the result, coef (K, d) and intercept (K,).

        ``stage`` names this solver run in the checkpoint directory (fits with several runs give each its own).
        """
        name = self._resolve_solver(objective)
        solver = solvers.get_solver(name)
        options = dict(self.solver_options or {})
        logger.debug(
            "%s: solver=%s loss=%s data_scale=%g l2=%g l1=%g n_outputs=%d",
            type(self).__name__,
            name,
            objective.loss,
            objective.data_scale,
            objective.l2,
            objective.l1,
            n_outputs,
        )
        problem = solvers.BlockedProblem(
            X,
            y,
            sample_weight,
            loss=objective.loss,
            n_outputs=n_outputs,
            fit_intercept=self.fit_intercept,
            data_scale=objective.data_scale,
            l2=objective.l2,
            l1=objective.l1,
            loss_options=objective.loss_options,
        )
        with problem:
            result = solver(
                problem,
                w0=w0,
                tol=self.tol,
                max_iter=self.max_iter,
                random_state=self.random_state,
                callback=self._solver_callback(),
                **self._checkpoint_keywords(name, stage),
                **options,
            )
            coef, intercept = problem.unpack(result.W)
        coef = np.asarray(coef, dtype=X.dtype).reshape(n_outputs, X.shape[1])
        intercept = np.asarray(intercept, dtype=X.dtype).reshape(n_outputs)
        if not self.fit_intercept:
            intercept = np.zeros(n_outputs, dtype=X.dtype)
        return result, coef, intercept

    def _solver_callback(self) -> Callable[..., Any] | None:
        """The callback the solver calls after each iteration (none by default)."""
        return None

    def _warm_start_params(self, n_outputs: int, n_features: int) -> np.ndarray | None:
        """Packed previous coefficients ``(n_params, n_outputs)`` if ``warm_start`` applies, else ``None``."""
        if not self.warm_start or not hasattr(self, "coef_"):
            return None
        coef = np.atleast_2d(np.asarray(self.coef_, dtype=np.float64))
        if coef.shape != (n_outputs, n_features):
            logger.info(
                "%s: warm_start ignored, the previous coefficients have shape %s but the data need %s.",
                type(self).__name__,
                coef.shape,
                (n_outputs, n_features),
            )
            return None
        if not self.fit_intercept:
            return np.ascontiguousarray(coef.T)
        intercept = np.broadcast_to(
            np.atleast_1d(np.asarray(self.intercept_, dtype=np.float64)), (n_outputs,)
        )
        return np.vstack([coef.T, intercept[None, :]])

    # -------------------------------------------------------------------------------------------- prediction
    def _coef_dtype(self) -> np.dtype:
        coef = self.coef_
        return coef.dtype if isinstance(coef, PartitionedCoefficients) else np.asarray(coef).dtype

    def _n_outputs(self) -> int:
        """Rows of ``coef_`` (read from its shape: a partitioned ``coef_`` is never gathered for it)."""
        shape = self.coef_.shape if isinstance(self.coef_, PartitionedCoefficients) else np.shape(self.coef_)
        return int(shape[0]) if len(shape) == 2 else 1

    def _params_in_graph(self) -> Delayed:
        """Coefficients and intercepts, one ``(n_features + 1, n_outputs)`` array entering the graph once.

        For a partitioned ``coef_``, the shards' handles instead (each task pulls its block's keys).
        """
        if isinstance(self.coef_, PartitionedCoefficients):
            return self.coef_.params_in_graph(self.intercept_)
        return params_in_graph(self.coef_, self.intercept_)

    def _lazy_decision_function(self, X: da.Array, *, ravel: bool) -> da.Array:
        """Lazy ``X @ coef_.T + intercept_``: shape (n_samples,) if ``ravel``, else (n_samples, n_outputs)."""
        n_outputs = self._n_outputs()
        dtype = np.result_type(X.dtype, self._coef_dtype())
        if ravel:
            return da.map_blocks(
                _decision_function_block,
                X,
                self._params_in_graph(),
                ravel=True,
                chunks=(X.chunks[0],),
                drop_axis=1,
                dtype=dtype,
                meta=np.empty((0,), dtype=dtype),
                token=task_prefix("decision function"),
            )
        return da.map_blocks(
            _decision_function_block,
            X,
            self._params_in_graph(),
            ravel=False,
            chunks=(X.chunks[0], (n_outputs,)),
            dtype=dtype,
            meta=np.empty((0, 0), dtype=dtype),
            token=task_prefix("decision function"),
        )

    def _validate_score_data(self, X: Any, y: Any, sample_weight: Any, *, y_numeric: bool) -> ValidatedData:
        check_is_fitted(self)
        data = check_X_y(
            X,
            y,
            sample_weight=sample_weight,
            y_numeric=y_numeric,
            accept_sparse=self._accepts_sparse,
            allow_nan=self._allows_nan(),
        )
        self._check_features(data.X, data.origin)
        return data


class LinearRegressorBase(RegressorMixin, LinearModelBase):
    """Regression flow: one output, ``predict`` is the linear function, ``score`` is R^2 (not public)."""

    def _objective(self, weight_sum: float) -> Objective:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_setup(self, data: ValidatedData) -> tuple[float, np.ndarray | None]:
        """The total sample weight and the solver's default starting parameters (``None``: zeros).

        Checks of the target that need its values belong here too: this is the first computation of ``fit``.
        """
        if data.sample_weight is None:
            return float(data.X.shape[0]), None
        # compute: one scalar, the total sample weight (it normalises the objective)
        (weight_sum,) = watched_compute(
            data.sample_weight.sum(dtype=np.float64), what="the total sample weight"
        )
        weight_sum = float(weight_sum)
        _check_weight_sum(weight_sum)
        return weight_sum, None

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearRegressorBase:
        """Fit the model with the chosen solver.

        Parameters
        ----------
        %(fit_parameters)s

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        data = self._validate_fit_data(X, y, sample_weight=sample_weight, y_numeric=True)
        client = self._partition_client()  # least squares have model_partitions; the GLMs and Huber not
        n_features = data.n_features
        with self._open_checkpoint(), fit_span(type(self).__name__):
            weight_sum, start = self._fit_setup(data)
            objective = self._objective(weight_sum)
            w0 = self._start_params(1, n_features)
            if w0 is None:
                w0 = start
            result, coef, intercept = self._fit_linear(
                client, data.X, _target(data), data.sample_weight, objective, n_outputs=1, w0=w0
            )
        # a partitioned coef_ kept in its shards keeps its (1, n_features) shape
        self.coef_ = coef if isinstance(coef, PartitionedCoefficients) else coef[0]
        self.intercept_ = intercept.dtype.type(intercept[0])
        self.n_iter_ = int(result.n_iter)
        self.history_ = history_frame([result])
        return self

    def predict(self, X: Any) -> Any:
        """Predict with the linear model.

        Parameters
        ----------
        %(predict_X)s

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples,)
            ``X @ coef_ + intercept_``; lazy for dask and xarray input, numpy for in-memory input.
        """
        X_arr, origin = self._validate_predict_data(X)
        return self._wrap_output(self._lazy_decision_function(X_arr, ravel=True), origin, name="prediction")

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Coefficient of determination R^2 of the prediction, computed in one pass.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Samples.
        y : {array-like, dask array} of shape (n_samples,)
            True values.
        sample_weight : {array-like, dask array} of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        float
            R^2 as :func:`sklearn.metrics.r2_score` defines it (1.0 for a perfect fit; when ``y`` is constant,
            1.0 for a perfect prediction and 0.0 otherwise), from :func:`daskml_lab.metrics.r2_score`.

        Raises
        ------
        ValueError
            If the sample weights sum to zero (the rule of :mod:`daskml_lab.metrics`).
        """
        data = self._validate_score_data(X, y, sample_weight, y_numeric=True)
        prediction = self._lazy_decision_function(data.X, ravel=True)
        # r2_score computes once: a float from a few float64 statistics per row block
        return float(r2_score(_target(data), prediction, sample_weight=data.sample_weight))


fill_doc(LinearRegressorBase.fit)
fill_doc(LinearRegressorBase.predict)


class LinearClassifierBase(ClassifierMixin, LinearModelBase):
    """Classification flow: classes, class weights, lazy decision function and labels (not public)."""

    def _class_statistics(self, data: ValidatedData) -> tuple[np.ndarray, np.ndarray]:
        """Sorted labels and the total sample weight of each (one small compute)."""
        y, weights = _target(data), data.sample_weight
        token = tokenize(y, weights)
        y_blocks = y.to_delayed().ravel()
        w_blocks = weights.to_delayed().ravel() if weights is not None else [None] * len(y_blocks)
        prefix = task_prefix("class counts")
        parts = [
            dask.delayed(_class_weight_sums_block)(
                y_block, w_block, dask_key_name=f"{prefix}-{token}-{index}"
            )
            for index, (y_block, w_block) in enumerate(zip(y_blocks, w_blocks, strict=True))
        ]
        total = dask.delayed(_class_weight_sums_combine)(parts, dask_key_name=f"{prefix}-combine-{token}")
        # compute: the sorted class labels and their weighted counts (2 x n_classes values)
        # watched: a worker paused before the fit must not hang it (the pass is computed again elsewhere)
        ((classes, weight_sums),) = watched_compute(total, what="the class counts")
        return self._check_classes(classes), weight_sums

    def _prepare_labels(self, data: ValidatedData) -> tuple[np.ndarray, np.ndarray, np.ndarray, da.Array]:
        """Classes, class weights, weighted class counts and the lazily encoded labels."""
        classes, weight_sums = self._class_statistics(data)
        class_weights = class_weight_vector(self.class_weight, classes, weight_sums)
        _check_weight_sum(float(weight_sums.sum()))
        positive = classes[(weight_sums * class_weights) > 0]
        if len(positive) < 2:
            msg = (
                f"Only the class {positive.tolist()} of {classes.tolist()} has positive total weight "
                "(sample_weight times class_weight). A classifier needs at least 2 classes with positive "
                "weight; check sample_weight and class_weight."
            )
            raise ValueError(msg)
        codes = encode_labels(_target(data), classes)
        return classes, class_weights, weight_sums, codes

    def decision_function(self, X: Any) -> Any:
        """Confidence scores: the signed distance of each sample to the decision hyperplane(s).

        Parameters
        ----------
        %(predict_X)s

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples,) or (n_samples, n_classes)
            One column per class, or a vector for two classes (positive means ``classes_[1]``). Lazy for
            dask and xarray input.
        """
        X_arr, origin = self._validate_predict_data(X)
        binary = self._n_outputs() == 1
        scores = self._lazy_decision_function(X_arr, ravel=binary)
        return self._wrap_output(
            scores, origin, columns=None if binary else self.classes_, name="decision_function"
        )

    def predict(self, X: Any) -> Any:
        """Predict class labels.

        Parameters
        ----------
        %(predict_X)s

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples,)
            Labels from ``classes_`` (same dtype); lazy for dask and xarray input.
        """
        X_arr, origin = self._validate_predict_data(X)
        return self._wrap_output(self._lazy_predict(X_arr), origin, name="prediction")

    def _lazy_predict(self, X: da.Array) -> da.Array:
        """Lazy labels of validated ``X`` (one ``daskml-predict`` task per row block)."""
        return da.map_blocks(
            _predict_labels_block,
            X,
            self._params_in_graph(),
            self.classes_,
            chunks=(X.chunks[0],),
            drop_axis=1,
            dtype=self.classes_.dtype,
            meta=np.empty((0,), dtype=self.classes_.dtype),
            token=task_prefix("predict"),
        )

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean (weighted) accuracy, computed in one pass.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Samples.
        y : {array-like, dask array} of shape (n_samples,)
            True labels.
        sample_weight : {array-like, dask array} of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        float
            The fraction (or weighted fraction) of correctly classified samples, from
            :func:`daskml_lab.metrics.accuracy_score`.

        Raises
        ------
        ValueError
            If the sample weights sum to zero (the rule of :mod:`daskml_lab.metrics`).
        """
        data = self._validate_score_data(X, y, sample_weight, y_numeric=False)
        # accuracy_score computes once: a float from two float64 values per row block
        return float(
            accuracy_score(_target(data), self._lazy_predict(data.X), sample_weight=data.sample_weight)
        )


fill_doc(LinearClassifierBase.decision_function)
fill_doc(LinearClassifierBase.predict)


# ------------------------------------------------------------------------------------------------------------
# helpers


def _solver_keywords(solver: Callable[..., Any]) -> list[str]:
    """The tuning keywords of a solver function (its keyword parameters besides the reserved ones)."""
    parameters = inspect.signature(solver).parameters.values()
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in kinds and p.name not in _RESERVED_SOLVER_KEYWORDS]


def _target(data: ValidatedData) -> da.Array:
    """``data.y``, which ``check_X_y`` always sets (``None`` only for unsupervised data)."""
    if data.y is None:  # pragma: no cover - _validate_fit_data rejects y=None first
        msg = "This estimator requires y to be passed, but the target y is None."
        raise ValueError(msg)
    return data.y


def _check_weight_sum(weight_sum: float) -> None:
    if not weight_sum > 0:
        msg = (
            f"The sample weights sum to zero ({weight_sum}), so no sample counts in the fit. Give at least "
            "one sample a positive weight."
        )
        raise ValueError(msg)


def history_frame(results: Sequence[Any], labels: Sequence[Any] | None = None) -> pd.DataFrame:
    """The solver histories as one DataFrame (a ``class`` column first when there are several fits).

    Parameters
    ----------
    results : sequence of SolverResult
        One result per fitted problem.
    labels : sequence, default=None
        The class of each problem (one-vs-rest).

    Returns
    -------
    pandas.DataFrame
        One row per iteration.
    """
    frames = []
    for index, result in enumerate(results):
        frame = pd.DataFrame.from_records(list(result.history))
        for column in _HISTORY_COLUMNS:
            if column not in frame.columns:
                frame[column] = pd.Series(dtype=np.float64 if column != "iteration" else np.int64)
        if labels is not None:
            frame.insert(0, "class", labels[index])
        frames.append(frame)
    history = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return history.reset_index(drop=True)
