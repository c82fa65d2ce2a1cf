"""Linear support vector classification (hinge and squared hinge losses), one-vs-rest for several classes."""

from __future__ import annotations

import numbers
import os
from typing import Any, ClassVar

import dask.array as da
import numpy as np

from daskml_lab.base import Interval, Options, effective_weights
from daskml_lab.linear_model._base import (
    COMMON_CONSTRAINTS,
    LinearClassifierBase,
    Objective,
    history_frame,
)
from daskml_lab.linear_model._docs import fill_doc
from daskml_lab.linear_model._partitioned import partitioned_client, run_partitioned
from daskml_lab.monitoring import fit_span, task_prefix

__all__ = ["LinearSVC"]


@fill_doc
class LinearSVC(LinearClassifierBase):
    """Linear support vector classification on row-chunked data.

    Minimises, for two classes, the primal objective of :class:`sklearn.svm.LinearSVC`,

        C * sum_i s_i * loss(y_i, x_i @ w + b) + 1/2 * ||w||^2    (penalty="l2")
        C * sum_i s_i * loss(y_i, x_i @ w + b) + ||w||_1          (penalty="l1")

    with the squared hinge ``max(0, 1 - y z)^2`` or the hinge ``max(0, 1 - y z)`` loss (``y`` in {-1, 1}) and
    ``s_i`` the sample weight times the class weight. For more classes it fits one such problem per class
    (one-vs-rest), as liblinear does.

    Parameters
    ----------
    penalty : {"l2", "l1"}, default="l2"
        The penalty; "l1" gives sparse coefficients and needs ``loss="squared_hinge"``.
    loss : {"squared_hinge", "hinge"}, default="squared_hinge"
        The loss. The hinge is not differentiable: ``solver="auto"`` picks ``"smoothed-newton"`` for it
        (Newton's method on a smoothed hinge, stopped when the relative duality gap is at most ``tol``);
        ``"admm"``, ``"sgd"`` and ``"async-sgd"`` also accept it.
    C : float, default=1.0
        Inverse of the regularisation strength, > 0.
    %(fit_intercept)s
    %(class_weight)s
    %(tol)s
    max_iter : int, default=1000
        Largest number of solver iterations per class; each iteration is about one pass over the data.
        Reaching it warns with :class:`~daskml_lab.exceptions.ConvergenceWarning`.
    %(warm_start)s
    %(random_state)s
    %(solver)s
    %(solver_options)s
    %(checkpoint)s
    %(checkpoint_every)s
    %(model_partitions)s
        For ``LinearSVC``: ``loss="squared_hinge"`` only, and with more than two classes the one-vs-rest
        problems share the store (one output each) and ``class_weight`` must be None.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Sorted class labels.
    coef_ : ndarray or PartitionedCoefficients of shape (1, n_features) or (n_classes, n_features)
        Coefficients (one row for two classes, pointing towards ``classes_[1]``), in the dtype of ``X``; a
        :class:`PartitionedCoefficients` when ``model_partitions`` is used and the model is too large to
        gather to the client.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts (zero when ``fit_intercept=False``).
    %(linear_attributes)s

    See Also
    --------
    sklearn.svm.LinearSVC : The in-memory (liblinear) estimator.
    LogisticRegression : Probabilistic linear classification.

    Notes
    -----
    Unlike liblinear, the intercept is **not** penalised: liblinear appends a constant feature
    ``intercept_scaling`` to ``X`` and penalises its weight like the others. The two agree when
    ``fit_intercept=False``, and approach each other as scikit-learn's ``intercept_scaling`` grows. The
    parameters ``dual``, ``intercept_scaling``, ``multi_class`` (only one-vs-rest) and ``verbose`` are
    therefore not offered.

    With several classes and ``class_weight``, the problem of class ``k`` weighs its positive samples by the
    weight of ``k`` and its negative samples by 1, exactly as liblinear does.

    The solver minimises the objective above divided by ``C`` times the total weight.

    %(fit_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import LinearSVC
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> LinearSVC().fit(X, y).predict(np.array([[0.2], [2.8]]))
    array([0, 1])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "penalty": [Options({"l1", "l2"})],
        "loss": [Options({"hinge", "squared_hinge"})],
        "C": [Interval(numbers.Real, 0, None, closed="neither")],
        "class_weight": ["dict", Options({"balanced"}), None],
        **COMMON_CONSTRAINTS,
        "model_partitions": [None, Options({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        penalty: str = "l2",
        loss: str = "squared_hinge",
        *,
        C: float = 1.0,
        fit_intercept: bool = True,
        class_weight: Any = None,
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
        self.penalty = penalty
        self.loss = loss
        self.C = C
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

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearSVC:
        """Fit the model (one problem for two classes, one per class otherwise).

        Parameters
        ----------
        %(fit_parameters)s

        Returns
        -------
        self : LinearSVC
            The fitted estimator.

        Raises
        ------
        ValueError
            For ``penalty="l1"`` with ``loss="hinge"``, fewer than two classes (with positive weight), a
            solver that does not support the loss or penalty, or invalid data.

        Warns
        -----
        ConvergenceWarning
            When the solver reaches ``max_iter``.
        """
        self._validate_params()
        if self.penalty == "l1" and self.loss == "hinge":
            msg = (
                "The combination of penalty='l1' and loss='hinge' is not supported (as in scikit-learn). Use "
                "loss='squared_hinge' with penalty='l1', or penalty='l2' with loss='hinge'."
            )
            raise ValueError(msg)
        data = self._validate_fit_data(X, y, sample_weight=sample_weight)
        client = self._partition_client()
        n_features = data.n_features
        with self._open_checkpoint(), fit_span(type(self).__name__):
            classes, class_weights, weight_sums, codes = self._prepare_labels(data)
            binary = len(classes) == 2
            n_outputs = 1 if binary else len(classes)
            previous = self._start_params(n_outputs, n_features)
            if previous is not None and not np.array_equal(getattr(self, "classes_", classes), classes):
                previous = None
            if self.model_partitions is not None and not binary and self.class_weight is not None:
                self._refuse_class_weight(client)  # "auto": the replicated one-vs-rest fits below
                client = None
            elif self.model_partitions is not None:
                client = partitioned_client(self, client, n_features, n_outputs, previous)
            if client is not None:
                # one store: the one-vs-rest problems are its outputs (the same weights and scale for all)
                shares = class_weights if binary else np.ones(len(classes))
                weights = effective_weights(codes, data.sample_weight, shares, data.X.dtype)
                objective = self._objective(float(shares @ weight_sums))
                result, coef, intercept = run_partitioned(
                    self, client, data.X, codes, weights, objective, n_outputs=n_outputs, w0=previous
                )
                results = [result]
                binary = True  # one run: one history
            elif binary:
                weights = effective_weights(codes, data.sample_weight, class_weights, data.X.dtype)
                objective = self._objective(float(class_weights @ weight_sums))
                result, coef, intercept = self._run_solver(
                    data.X, codes, weights, objective, n_outputs=1, w0=previous
                )
                results = [result]
            else:
                results, coefs, intercepts = [], [], []
                for k in range(len(classes)):
                    # liblinear's one-vs-rest: positives weigh class_weight[k], negatives 1.
                    positive_weights = np.ones(len(classes))
                    positive_weights[k] = class_weights[k]
                    weights = effective_weights(codes, data.sample_weight, positive_weights, data.X.dtype)
                    objective = self._objective(float(positive_weights @ weight_sums))
                    w0 = None if previous is None else previous[:, k : k + 1]
                    result, coef_k, intercept_k = self._run_solver(
                        data.X,
                        _one_vs_rest_target(codes, k),
                        weights,
                        objective,
                        n_outputs=1,
                        w0=w0,
                        stage=f"class-{k}",
                    )
                    results.append(result)
                    coefs.append(coef_k)
                    intercepts.append(intercept_k)
                coef, intercept = np.vstack(coefs), np.concatenate(intercepts)
        self.classes_ = classes
        self.coef_ = coef
        self.intercept_ = intercept
        self.n_iter_ = max(int(result.n_iter) for result in results)
        self.history_ = history_frame(results, None if binary else list(classes))
        return self

    def _l1_ratio(self) -> float:
        """The share of the L1 penalty (what the partitioned store checks its solver against)."""
        return 1.0 if self.penalty == "l1" else 0.0

    def _partition_refusal(self) -> str | None:
        """Why these settings cannot use the partitioned store (checked with ``model_partitions``), or None."""
        if self.loss != "squared_hinge":
            return (
                f"model_partitions={self.model_partitions!r} fits LinearSVC with loss='squared_hinge' only, got "
                f"loss={self.loss!r} (the partitioned solvers need a differentiable loss). Use "
                "loss='squared_hinge', or model_partitions=None."
            )
        return None

    def _refuse_class_weight(self, client: Any) -> None:
        """Several classes with ``class_weight``: refused for an int ``model_partitions`` (``"auto"``: fitted
        replicated, one problem per class)."""
        if client is not None:
            msg = (
                f"model_partitions={self.model_partitions!r} fits the one-vs-rest problems of LinearSVC in one "
                "store, with the same sample weights for all of them, but class_weight weighs each problem "
                f"differently (class_weight={self.class_weight!r}). Use class_weight=None, or "
                "model_partitions=None."
            )
            raise ValueError(msg)

    def _objective(self, total_weight: float) -> Objective:
        penalty_scale = 1.0 / (self.C * total_weight)
        l1 = self.penalty == "l1"
        return Objective(
            loss=self.loss,
            data_scale=1.0 / total_weight,
            l2=0.0 if l1 else penalty_scale,
            l1=penalty_scale if l1 else 0.0,
            penalty="penalty='l1'" if l1 else "",
        )


fill_doc(LinearSVC.fit)


def _one_vs_rest_target(codes: da.Array, k: int) -> da.Array:
    """Lazy binary target of the problem of class ``k``: 1 for class ``k``, 0 for the others."""
    return da.map_blocks(
        _one_vs_rest_block,
        codes,
        k,
        dtype=np.int64,
        meta=np.empty((0,), dtype=np.int64),
        token=task_prefix("ovr target"),
    )


def _one_vs_rest_block(codes: np.ndarray, k: int) -> np.ndarray:
    return (codes == k).astype(np.int64)
