"""Logistic regression: binary (logistic loss) and multinomial (softmax); L2, L1 or elastic-net penalty."""

from __future__ import annotations

import numbers
import os
from typing import Any, ClassVar

import dask.array as da
import numpy as np
from scipy.special import expit, log_expit

from daskml_lab.base import Interval, Options, effective_weights
from daskml_lab.linear_model._base import (
    COMMON_CONSTRAINTS,
    LinearClassifierBase,
    Objective,
    history_frame,
)
from daskml_lab.linear_model._blocks import _decision_function_block
from daskml_lab.linear_model._docs import fill_doc
from daskml_lab.monitoring import fit_span, task_prefix

__all__ = ["LogisticRegression"]


@fill_doc
class LogisticRegression(LinearClassifierBase):
    """Logistic regression on row-chunked data: binary, and multinomial for more than two classes.

    Minimises scikit-learn's objective (the same one as :class:`sklearn.linear_model.LogisticRegression`),

        C * sum_i s_i * loss_i + (1 - l1_ratio) / 2 * ||w||^2 + l1_ratio * ||w||_1,

    with ``s_i`` the sample weight times the class weight, the logistic loss for two classes and the
    multinomial (softmax) loss, with one coefficient row per class, for more. The intercept is not penalised.

    Parameters
    ----------
    C : float, default=1.0
        Inverse of the regularisation strength, > 0; ``numpy.inf`` fits without penalty.
    l1_ratio : float, default=0.0
        Elastic-net mixing in [0, 1]: 0 is the L2 penalty, 1 the L1 penalty (scikit-learn 1.8+ spelling; the
        deprecated ``penalty`` parameter is not offered).
    %(fit_intercept)s
    %(class_weight)s
    %(tol)s
    %(max_iter)s
    %(warm_start)s
    %(random_state)s
    %(solver)s
    %(solver_options)s
    %(checkpoint)s
    %(checkpoint_every)s
    model_partitions : None, "auto" or int, default=None
        Where the coefficients live during ``fit``. ``None``: the replicated solvers (``solver``). An int
        ``S >= 1``: a partitioned parameter store of ``S`` shards on the workers (Dask actors; ``S`` larger
        than the number of workers puts several shards on a worker), trained by the partitioned ``"sgd"``
        (``solver="auto"``, ``"sgd"`` or ``"async-sgd"``: asynchronous with bounded staleness;
        ``solver_options`` then takes ``step_rule`` (``"adagrad"``, ``"sgd"``, or ``"ftrl"``: FTRL-proximal,
        which also takes ``l1_ratio > 0``), ``learning_rate``, ``rate_decay``, ``batch_size``,
        ``max_staleness`` and ``beta``; ``max_iter`` counts epochs and ``tol`` the relative change of the
        objective over one), each step pulling and pushing only the keys its rows touch, by the vector-free
        ``"lbfgs"`` (``solver="lbfgs"``; ``solver_options`` takes ``memory``, ``max_line_search`` and
        ``ftol``; ``tol`` as the replicated ``lbfgs``), by gradient descent (``solver="gd"``; the options and
        ``tol`` of the replicated ``gd``), or by FISTA (``solver="proximal"``, for ``l1_ratio > 0``; options
        and ``tol`` as the replicated ``proximal``). Needs a distributed client. With ``checkpoint``, every
        partitioned solver saves each shard on its own worker every ``checkpoint_every`` epochs (iterations
        for ``"lbfgs"``, ``"gd"`` and ``"proximal"``), a refit resumes from the next one, and a worker lost
        during the fit is recovered from it (the directory must be reachable by the workers). A model larger than
        ``daskml_lab.solvers.store.max_gather_bytes`` (dask config, 256 MiB) stays in the shards after the fit
        (``coef_`` is then a :class:`PartitionedCoefficients`). ``"auto"``: partitioned, with one shard per
        worker, when ``coef_`` would be larger than ``daskml_lab.model_partitions.auto_min_bytes`` (dask
        config, 32 MiB) and the settings allow it; otherwise ``None``. See :doc:`/model_partitioning`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Sorted class labels.
    coef_ : ndarray or PartitionedCoefficients of shape (1, n_features) or (n_classes, n_features)
        Coefficients (one row for two classes, pointing towards ``classes_[1]``), in the dtype of ``X``. A
        :class:`PartitionedCoefficients` (kept in the parameter shards on the workers) when
        ``model_partitions`` is used and the model is too large to gather to the client.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts (zero when ``fit_intercept=False``). For several classes they sum to zero, as the
        multinomial loss does not change when one constant is added to all of them.
    %(linear_attributes)s

    See Also
    --------
    sklearn.linear_model.LogisticRegression : The in-memory estimator this one reproduces.
    LinearSVC : Linear support vector classification.

    Notes
    -----
    The solver minimises the objective above divided by ``C`` times the total weight ``sum_i s_i``, which has
    the same minimiser and keeps the objective of order one.

    %(fit_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> model = LogisticRegression(C=10.0).fit(X, y)
    >>> model.predict(np.array([[0.2], [2.8]]))
    array([0, 1])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "C": [Interval(numbers.Real, 0, None, closed="neither")],
        "l1_ratio": [Interval(numbers.Real, 0, 1, closed="both")],
        "class_weight": ["dict", Options({"balanced"}), None],
        **COMMON_CONSTRAINTS,
        "model_partitions": [None, Options({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        C: float = 1.0,
        *,
        l1_ratio: float = 0.0,
        fit_intercept: bool = True,
        class_weight: Any = None,
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
        self.C = C
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.random_state = random_state
        self.solver = solver
        self.solver_options = solver_options
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.model_partitions = model_partitions

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fit the model.

        Parameters
        ----------
        %(fit_parameters)s

        Returns
        -------
        self : LogisticRegression
            The fitted estimator.

        Raises
        ------
        ValueError
            For fewer than two classes (with positive weight), a solver that does not support the penalty,
            or invalid data (see :func:`daskml_lab.data.check_X_y`).

        Warns
        -----
        ConvergenceWarning
            When the solver reaches ``max_iter``.
        """
        self._validate_params()
        data = self._validate_fit_data(X, y, sample_weight=sample_weight)
        client = self._partition_client()
        n_features = data.n_features
        with self._open_checkpoint(), fit_span(type(self).__name__):
            classes, class_weights, weight_sums, codes = self._prepare_labels(data)
            weights = effective_weights(codes, data.sample_weight, class_weights, data.X.dtype)
            total_weight = float(class_weights @ weight_sums)
            multinomial = len(classes) > 2
            n_outputs = len(classes) if multinomial else 1
            objective = self._objective(total_weight, multinomial)
            # a previous model kept in its shards seeds the new shards where they are
            w0 = self._start_params(n_outputs, n_features) if self._same_classes(classes) else None
            result, coef, intercept = self._fit_linear(
                client, data.X, codes, weights, objective, n_outputs=n_outputs, w0=w0
            )
        if multinomial and self.fit_intercept:
            # The softmax is invariant to a common shift of the intercepts: report the centred ones.
            intercept = intercept - intercept.mean()
        if multinomial and objective.l1 == 0 and objective.l2 == 0 and isinstance(coef, np.ndarray):
            # (a partitioned coef_ stays as fitted: centring it would move the whole model once more)
            coef = coef - coef.mean(axis=0, keepdims=True)
        self.classes_ = classes
        self.coef_ = coef
        self.intercept_ = intercept
        self.n_iter_ = int(result.n_iter)
        self.history_ = history_frame([result])
        return self

    def _objective(self, total_weight: float, multinomial: bool) -> Objective:
        # sklearn: C * sum s_i loss_i + (1 - r)/2 ||w||^2 + r ||w||_1, divided here by C * total_weight.
        penalty_scale = 1.0 / (self.C * total_weight)
        return Objective(
            loss="multinomial" if multinomial else "logistic",
            data_scale=1.0 / total_weight,
            l2=(1.0 - self.l1_ratio) * penalty_scale,
            l1=self.l1_ratio * penalty_scale,
            penalty=f"l1_ratio={self.l1_ratio}" if self.l1_ratio > 0 else "",
        )

    def _same_classes(self, classes: np.ndarray) -> bool:
        previous = getattr(self, "classes_", None)
        return previous is not None and len(previous) == len(classes) and bool(np.all(previous == classes))

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities.

        Parameters
        ----------
        %(predict_X)s

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples, n_classes)
            Probability of each class of ``classes_`` (sigmoid for two classes, softmax otherwise), in the
            dtype of the decision function. Lazy for dask and xarray input.
        """
        return self._probabilities(X, log=False)

    def predict_log_proba(self, X: Any) -> Any:
        """Logarithm of the class probabilities, computed stably.

        Parameters
        ----------
        %(predict_X)s

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples, n_classes)
            Lazy for dask and xarray input.
        """
        return self._probabilities(X, log=True)

    def _probabilities(self, X: Any, *, log: bool) -> Any:
        X_arr, origin = self._validate_predict_data(X)
        dtype = np.result_type(X_arr.dtype, self._coef_dtype())
        probabilities = da.map_blocks(
            _predict_proba_block,
            X_arr,
            self._params_in_graph(),
            log=log,
            chunks=(X_arr.chunks[0], (len(self.classes_),)),
            dtype=dtype,
            meta=np.empty((0, 0), dtype=dtype),
            token=task_prefix("predict log proba" if log else "predict proba"),
        )
        name = "predict_log_proba" if log else "predict_proba"
        return self._wrap_output(probabilities, origin, columns=self.classes_, name=name)


fill_doc(LogisticRegression.fit)
fill_doc(LogisticRegression.predict_proba)
fill_doc(LogisticRegression.predict_log_proba)


def _predict_proba_block(X: Any, params: np.ndarray, log: bool = False) -> np.ndarray:
    """Sigmoid (one score column) or softmax probabilities of a block, or their logarithms."""
    scores = _decision_function_block(X, params)
    if scores.shape[1] == 1:
        if log:
            return np.column_stack([log_expit(-scores[:, 0]), log_expit(scores[:, 0])])
        positive = expit(scores[:, 0])
        return np.column_stack([1 - positive, positive])
    shifted = scores - scores.max(axis=1, keepdims=True)
    if log:
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=1, keepdims=True)
