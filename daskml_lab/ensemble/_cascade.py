"""Cascade SVM (Graf et al., 2004): kernel SVCs trained shard by shard, support vectors merged up to one SVC.

The estimator: parameters, sharding through the data layer, the report and lazy prediction. The graph is built
in :mod:`daskml_lab.ensemble._cascade_graph`, from the kernels of :mod:`~daskml_lab.ensemble._cascade_nodes`
that run on the workers and the SVC maths of :mod:`~daskml_lab.ensemble._cascade_svc`.
"""

from __future__ import annotations

import logging
import numbers
import os
from typing import Any, ClassVar

import dask.array as da
import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.cluster_health import explain_cluster_failures
from daskml_lab._runtime.memory import measure_workers
from daskml_lab.base import DaskMLEstimator, Interval, Options
from daskml_lab.data.sharding import shard
from daskml_lab.data.validation import ValidatedData, check_X_y
from daskml_lab.ensemble._cascade_calibration import CalibratedSVC
from daskml_lab.ensemble._cascade_checkpoint import CascadeCheckpoint
from daskml_lab.ensemble._cascade_graph import build_cascade_graph
from daskml_lab.ensemble._cascade_memory import plan_cascade_memory
from daskml_lab.ensemble._cascade_nodes import join_block
from daskml_lab.ensemble._cascade_svc import SVC_PARAMETERS
from daskml_lab.ensemble._placement import PlacedShards, compute_pinned, place_shards_for_fit
from daskml_lab.ensemble._predict import map_model_method, prediction_place
from daskml_lab.ensemble._prologue import coalesced_row_chunks, start_shard_fit
from daskml_lab.ensemble._report import build_cascade_report
from daskml_lab.metrics import accuracy_score
from daskml_lab.monitoring import fit_span, task_prefix

__all__ = ["CascadeSVC"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------
# estimator


def _has_probability(self: CascadeSVC) -> bool:
    if not self.probability:
        msg = "predict_proba is not available when probability=False. Fit with probability=True."
        raise AttributeError(msg)
    return True


class CascadeSVC(ClassifierMixin, DaskMLEstimator):
    """Cascade SVM: kernel SVCs trained shard by shard, their support vectors merged up to one SVC.

    The Cascade SVM of Graf et al. (2004) for data too large for one kernel SVM. ``fit`` trains a
    :class:`sklearn.svm.SVC` on every shard, as one task on the worker holding the shard; each returns only
    its support vectors. The support vectors of ``fan_in`` neighbouring shards are merged and retrained,
    layer by layer, up to one SVC. In a feedback pass the final SVC goes back to every shard, which tests
    its rows against it (Graf et al.'s test): rows that are not support vectors but lie inside the margin
    violate the optimality conditions. The violators go up the tree and are trained together with the final
    support vectors (see Notes). It stops when no shard has a violator or the set of support vectors (by row
    id) no longer changes, or after ``n_feedback`` passes. At convergence the result is the SVM of all the
    data (Graf et al.'s theorem); one feedback pass usually brings it within a fraction of a point of it.

    Every SVC of the cascade solves part of the same global problem: ``gamma="scale"`` and
    ``class_weight="balanced"`` are resolved once from all the data (the variance of ``X``, the class counts),
    not per shard. The result, ``final_estimator_``, is one plain :class:`~sklearn.svm.SVC`; prediction is
    lazy, one task per row block, with the fitted model sent to the workers once.

    Parameters
    ----------
    C : float, default=1.0
        Regularization parameter, as in :class:`~sklearn.svm.SVC` (the penalty is squared l2). Must be
        strictly positive.
    kernel : {"linear", "poly", "rbf", "sigmoid"} or callable, default="rbf"
        Kernel of every SVC. A callable ``kernel(A, B)`` returns the kernel matrix between the rows of ``A``
        and ``B``. ``"precomputed"`` is not supported: shards hold rows, not kernel matrices.
    degree : int, default=3
        Degree of the ``"poly"`` kernel.
    gamma : {"scale", "auto"} or float, default="scale"
        Kernel coefficient of ``"rbf"``, ``"poly"`` and ``"sigmoid"``: ``"scale"`` is
        ``1 / (n_features * X.var())`` over all of ``X``, ``"auto"`` is ``1 / n_features``.
    coef0 : float, default=0.0
        Independent term of the ``"poly"`` and ``"sigmoid"`` kernels.
    shrinking : bool, default=True
        Whether libsvm uses the shrinking heuristic.
    probability : bool, default=False
        Whether to provide ``predict_proba``: the final SVC's decision values calibrated by a sigmoid (Platt
        scaling, as :class:`~sklearn.calibration.CalibratedClassifierCV` with ``method="sigmoid"``) on rows
        that no SVC trained on: a seeded tenth of every class of every shard is held out from training (at
        least one row of every class with two or more rows in the shard). The SVCs are therefore trained on
        the other nine tenths.
    tol : float, default=1e-3
        Tolerance of libsvm's stopping criterion, for every SVC.
    cache_size : float, default=200
        Kernel cache of every SVC, in MiB. On workers with a ``memory_limit``, an SVC gets less when a merge
        would not fit the smallest worker with it (the memory plan, logged as a warning; see the
        user guide's page on data larger than memory); the cache changes libsvm's speed, never its solution.
    class_weight : dict or "balanced", default=None
        Multiplies ``C`` by the weight of each sample's class. ``"balanced"`` uses
        ``n_samples / (n_classes * np.bincount(y))`` over all of ``y``.
    max_iter : int, default=-1
        Iteration limit of every SVC, or -1 for none.
    decision_function_shape : {"ovo", "ovr"}, default="ovr"
        Shape of ``decision_function`` for more than two classes, as in :class:`~sklearn.svm.SVC`.
    break_ties : bool, default=False
        With ``decision_function_shape="ovr"`` and more than two classes, break ties by the decision values,
        as in :class:`~sklearn.svm.SVC`.
    n_shards : int, default=None
        Number of shards (SVCs of layer 0). ``None`` makes one shard per row block of ``X`` (blocks of fewer
        than 50 rows, ``dask.config`` ``daskml_lab.ensemble.min_shard_rows``, merged with their neighbours);
        in-memory input is a single block unless it exceeds dask's ``array.chunk-size``. One shard trains one
        SVC on all rows.
    sharding : {"stratified", "shuffle", "contiguous"}, default="stratified"
        How rows are assigned to shards, a strategy of :func:`daskml_lab.data.shard`. ``"stratified"`` gives
        every shard the class proportions of ``y`` and ``"shuffle"`` a random sample; both move rows between
        workers once. ``"contiguous"`` with ``n_shards=None`` keeps the row blocks where they are.
    fan_in : int, default=2
        Number of nodes merged into one at each layer (2 is Graf et al.'s binary cascade). Must be at least 2.
        Reduced by the memory plan (logged as a warning) when a merge of ``fan_in`` whole shards cannot fit
        the smallest worker even with a small kernel cache.
    n_feedback : int, default=1
        Largest number of feedback passes. Passes stop early once the support vectors no longer change.
    random_state : int, RandomState instance or None, default=None
        Seed of the sharding and of the candidates a single-class shard passes up.
    checkpoint : str, path-like or None, default=None
        Directory where the support vectors of every shard's SVC (the first layer of the cascade) are saved
        as soon as the shard is trained (``.npz`` arrays read back without unpickling, and a JSON file per
        shard). Fitting again with the same directory (after an interruption) trains only the shards without
        saved support vectors, then runs the merges and feedback passes again, and gives the model an
        uninterrupted fit gives. Saved support vectors are reused only if their shard's rows are unchanged (a
        digest of each shard is computed where it lives). The directory is created if missing and checked in
        ``fit`` before any computation; one written by another estimator, other parameters or differently
        shaped data is refused with a clear error. With ``random_state=None`` the resumed fit reuses the seed
        recorded in the directory. Ignored (nothing is saved) with a single shard. See :doc:`/checkpoints`.

    Attributes
    ----------
    final_estimator_ : sklearn.svm.SVC
        The SVC at the top of the last pass: a plain fitted scikit-learn SVC (with a numeric ``gamma``).
    calibrator_ : sklearn.calibration.CalibratedClassifierCV
        With ``probability=True`` only: the sigmoid calibration of the final SVC's one-vs-rest decision
        values (its input is ``final_estimator_``'s decision values, not rows).
    support_ : ndarray of shape (n_SV,)
        Row numbers, in ``X`` as given to ``fit``, of ``final_estimator_.support_vectors_``.
    classes_ : ndarray of shape (n_classes,)
        The sorted labels of all of ``y``.
    cascade_report_ : pandas.DataFrame
        One row per node of the cascade that ran (columns ``pass``, ``layer``, ``node``, ``kind``,
        ``n_train``, ``n_violators``, ``n_classes``, ``n_sv``, ``n_bounded_sv``, ``dual_objective``,
        ``fit_time_s``, ``worker``, ``sv_changes``); see Notes.
    n_iter_ : ndarray of shape (n_classes * (n_classes - 1) // 2,)
        Iterations of libsvm in the final SVC, one per pair of classes (``final_estimator_.n_iter_``).
    n_shards_ : int
        Number of shards.
    n_passes_ : int
        Passes of the cascade that ran: 1 plus the feedback passes.
    converged_ : bool
        Whether the last pass left the support vectors unchanged (always true for one shard).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.

    See Also
    --------
    sklearn.svm.SVC : The SVM trained at every node, and the model this one approximates.
    ShardEnsembleClassifier : One model per shard, fused (no retraining on merged support vectors).

    Notes
    -----
    Feedback differs from Graf et al. in one point: their first layer re-optimizes every shard plus the
    support vectors starting from the previous solution, which is cheap. libsvm cannot start from a previous
    solution, so every shard would solve nearly the whole support-vector problem again. Instead the violators
    are collected on the way up (``kind="collect"``) and trained together with the previous support vectors
    at the root, or at a lower merge once more violators than the largest shard have arrived, which keeps
    every SVC no larger than ``fan_in`` shards plus the support vectors. Each feedback pass solves a problem
    containing the previous one, so the dual objective never decreases.

    The cascade report has a row per node of every pass that ran: ``kind`` is ``"svc"`` (an SVC was trained),
    ``"one-class"`` (see below), ``"violators"`` (a feedback shard passing up its violators),
    ``"optimal"`` (a feedback shard or merge without violators: nothing to add), ``"collect"`` (a feedback
    merge passing violators up untrained), ``"pass-through"`` (a first-pass merge with a single child
    bringing rows, moved up unchanged) or ``"empty"``. Layer 0 of every pass holds one row per shard, layer
    ``k`` the merges; the root of a pass is its row of highest ``layer``. ``n_sv`` counts the rows a node
    passes up: the support vectors of its SVC, or its candidates or violators. ``n_violators`` (layer 0 of
    feedback passes) counts the shard's rows inside the margin of the previous pass's SVC.
    ``dual_objective`` (only at the roots) is ``sum(alpha) - alpha' Q alpha / 2`` summed over the one-vs-one
    class pairs: it grows from pass to pass. ``sv_changes`` (roots of feedback passes) counts the
    rows that entered or left the support vectors. ``n_bounded_sv`` counts support vectors whose coefficient
    is at its bound ``C * class_weight * sample_weight``.

    A shard whose rows (of positive weight) hold a single class cannot train an SVC. In the first pass it
    passes up a seeded random tenth of its rows (at least one) as candidates (``kind="one-class"``); in a
    feedback pass its rows inside the margin of the global SVC are trained with the global support vectors,
    which hold the other classes. Keep ``n_feedback >= 1`` when shards can miss classes
    (``sharding="stratified"`` avoids it).

    Sample weights travel with their rows and rescale ``C`` per row, as in :class:`~sklearn.svm.SVC`.
    The rows are converted to float64 (as libsvm needs), so float32 input doubles in memory during ``fit``.
    Only dense input is supported.

    With ``probability=True`` the calibration rows stay on their workers: a ``daskml-cascade-calibrate``
    task per shard computes the final SVC's decision values on them, and only these values (one per row and
    class) reach the task that fits the sigmoid. Calibrating on the training rows instead would be badly
    biased: the rows that reach the top of the cascade are the support vectors, which lie inside the
    margin.

    References
    ----------
    .. [1] H. P. Graf, E. Cosatto, L. Bottou, I. Durdanovic and V. Vapnik, "Parallel Support Vector Machines:
       The Cascade SVM", Advances in Neural Information Processing Systems 17 (NIPS 2004).

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from daskml_lab.ensemble import CascadeSVC
    >>> X, y = make_moons(400, noise=0.2, random_state=0)
    >>> model = CascadeSVC(n_shards=4, random_state=0).fit(X, y)
    >>> model.n_shards_, type(model.final_estimator_).__name__
    (4, 'SVC')
    >>> report = model.cascade_report_
    >>> report[report["pass"] == 0][["layer", "n_train", "n_sv"]].to_numpy().T.tolist()
    [[0, 0, 0, 0, 1, 1, 2], [100, 100, 100, 100, 66, 69, 102], [37, 29, 41, 28, 51, 51, 85]]
    >>> from sklearn.svm import SVC
    >>> float((model.predict(X) == SVC().fit(X, y).predict(X)).mean())  # one SVC on all rows
    0.9975
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "C": [Interval(numbers.Real, 0, None, closed="neither")],
        "kernel": [Options({"linear", "poly", "rbf", "sigmoid"}), "callable"],
        "degree": [Interval(numbers.Integral, 0, None, closed="left")],
        "gamma": [Options({"scale", "auto"}), Interval(numbers.Real, 0, None, closed="left")],
        "coef0": [Interval(numbers.Real, None, None, closed="neither")],
        "shrinking": ["boolean"],
        "probability": ["boolean"],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "cache_size": [Interval(numbers.Real, 0, None, closed="neither")],
        "class_weight": ["dict", Options({"balanced"}), None],
        "max_iter": [Interval(numbers.Integral, -1, None, closed="left")],
        "decision_function_shape": [Options({"ovo", "ovr"})],
        "break_ties": ["boolean"],
        "n_shards": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "sharding": [Options({"stratified", "shuffle", "contiguous"})],
        "fan_in": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_feedback": [Interval(numbers.Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "checkpoint": [None, "str", os.PathLike],
    }
    _accepts_sparse: ClassVar[bool] = False

    def __init__(
        self,
        *,
        C: float = 1.0,
        kernel: Any = "rbf",
        degree: int = 3,
        gamma: Any = "scale",
        coef0: float = 0.0,
        shrinking: bool = True,
        probability: bool = False,
        tol: float = 1e-3,
        cache_size: float = 200,
        class_weight: Any = None,
        max_iter: int = -1,
        decision_function_shape: str = "ovr",
        break_ties: bool = False,
        n_shards: int | None = None,
        sharding: str = "stratified",
        fan_in: int = 2,
        n_feedback: int = 1,
        random_state: Any = None,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> None:
        self.C = C
        self.kernel = kernel
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.shrinking = shrinking
        self.probability = probability
        self.tol = tol
        self.cache_size = cache_size
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.decision_function_shape = decision_function_shape
        self.break_ties = break_ties
        self.n_shards = n_shards
        self.sharding = sharding
        self.fan_in = fan_in
        self.n_feedback = n_feedback
        self.random_state = random_state
        self.checkpoint = checkpoint

    # -----------------------------------------------------------------------------------------------------
    # fit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> CascadeSVC:
        """Train the cascade: an SVC per shard where the shard lives, support vectors merged up to one SVC.

        Parameters
        ----------
        X : {array-like, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Training rows (dense).
        y : {array-like, dask array, Series, xarray.DataArray} of shape (n_samples,)
            Class labels, of any dtype.
        sample_weight : {array-like, dask array} of shape (n_samples,), default=None
            Per-row weights; they rescale ``C`` per row.

        Returns
        -------
        self
            The fitted object.

        Raises
        ------
        InvalidParameterError
            If a parameter has a value its constraints do not allow.
        ValueError
            For invalid data, fewer than two classes in ``y``, ``n_shards`` larger than the number of rows,
            or ``break_ties=True`` with ``decision_function_shape="ovo"``; before any task runs, when the SVC
            of a shard cannot fit the smallest worker's free memory; from the task of a merge whose support
            vectors alone exceed it (instead of a killed worker).

        Notes
        -----
        One ``dask.compute`` runs the whole cascade, every feedback pass included (``sharding="stratified"``
        first computes the label counts of every row block, an ``n_blocks x n_classes`` matrix). The shard
        rows stay on the workers: a ``daskml-cascade-fit`` task per shard and pass runs where its shard is,
        and only support vectors (rows, labels, weights, row ids) move between the tasks of the tree. The
        client receives the final SVC, a few numbers per node and the row ids of the final support vectors.
        With ``probability=True`` a ``daskml-cascade-calibrate`` task per shard also computes the final SVC's
        decision values on the shard's calibration rows, and the sigmoid is fitted on them in the same
        compute.

        On a distributed cluster the shard blocks are first persisted and the layer-0 tasks of every pass are
        pinned to the worker holding their shard; data larger than half of the workers' free memory are not
        persisted, and the scheduler then places each task where its block is computed. The ``dask.config``
        key ``daskml_lab.ensemble.persist`` (``"auto"``, True, False) overrides that choice, as for the shard
        ensembles.
        """
        start = start_shard_fit(self, X, y, sample_weight, y_numeric=False)
        with (
            start.held_checkpoint,  # held: released however the fit ends
            fit_span(type(self).__name__),
            # a lost scheduler or the loss of every worker: one clear error, whatever surfaced first
            explain_cluster_failures(
                current_client(), doing=f"fitting {type(self).__name__}", checkpoint=self.checkpoint
            ),
        ):
            joined, y_sharded = start.arrays
            data, n_shards, token = start.data, start.n_shards, start.token
            n_passes = 1 if n_shards == 1 else 1 + int(self.n_feedback)
            spec = {name: getattr(self, name) for name in SVC_PARAMETERS}
            spec.update(gamma=self.gamma, class_weight=self.class_weight, probability=bool(self.probability))
            # before any task runs: every SVC of the cascade sized to the smallest worker (or refused)
            memory = plan_cascade_memory(
                shard_rows=max(int(size) for size in joined.chunks[0]),
                n_features=int(self.n_features_in_),
                fan_in=int(self.fan_in),
                cache_size=float(self.cache_size),
                workers=measure_workers(current_client()),
            )
            if memory.reason:
                logger.warning("CascadeSVC memory plan: %s.", memory.reason)
            spec.update(cache_plan=memory.cache_size, memory_budget=memory.budget)
            logger.info(
                "cascade SVM on %d shard(s), fan-in %d, up to %d pass(es)", n_shards, memory.fan_in, n_passes
            )
            placed = place_shards_for_fit(joined, y_sharded, None)
            seeds = [s[1] for s in start.seeds.shards]
            first_layer = None
            if start.checkpoint is not None and n_shards > 1:
                # compute: the SVCs of the shards without saved support vectors, each saved as it arrives
                first_layer = CascadeCheckpoint(start.checkpoint, n_shards).first_layer(
                    placed,
                    spec,
                    n_features=self.n_features_in_,
                    has_weight=data.sample_weight is not None,
                    seeds=seeds,
                    token=token + "-shards",
                )

            def build(now: PlacedShards, suffix: str, _: list[str]) -> tuple[Any, ...]:
                # every node depends on the settings of all the shards: a moved shard renames every key
                return build_cascade_graph(
                    now.X_blocks,
                    now.y_blocks,
                    spec,
                    n_features=self.n_features_in_,
                    has_weight=data.sample_weight is not None,
                    n_passes=n_passes,
                    fan_in=memory.fan_in,
                    seeds=seeds,
                    token=token + suffix,
                    max_candidates=max(int(size) for size in joined.chunks[0]),
                    workers=now.workers,
                    first_layer=first_layer,
                )

            # compute: the whole cascade; brings back a few numbers per node, the global settings (classes,
            # gamma, class weights) and the final SVC with the row ids of its support vectors (a lost worker
            # makes the shards move to the new holders of their blocks, a straggler's to the other workers,
            # see compute_pinned; the first n_shards stats are the shards' first SVCs)
            stats, prepared, final = compute_pinned(build, placed, first_tasks=lambda p: p[0][:n_shards])
            del placed  # releases the shard blocks persisted for the fit
        classes = prepared["classes"]
        if final["model"] is None:
            msg = (
                f"The support vectors reaching the top of the cascade hold only the classes "
                f"{[] if final['root_classes'] is None else final['root_classes'].tolist()} of "
                f"{classes.tolist()}: some classes have no rows of positive weight. Give every class a "
                "positive sample_weight on some rows."
            )
            raise ValueError(msg)
        model = final["model"]
        if not np.array_equal(model.classes_, classes):
            msg = (
                f"The final SVC saw the classes {model.classes_.tolist()}, but y has {classes.tolist()}: "
                "some classes have no rows of positive weight. Give every class a positive sample_weight."
            )
            raise ValueError(msg)
        self.final_estimator_ = model
        if final["calibrator"] is not None:
            self.calibrator_ = final["calibrator"]
        elif hasattr(self, "calibrator_"):
            del self.calibrator_
        self.classes_ = classes
        self.support_ = np.asarray(final["support"], dtype=np.int64)
        self.n_iter_ = model.n_iter_
        self.n_shards_ = n_shards
        self.n_passes_ = int(final["n_passes"])
        self.converged_ = bool(final["converged"]) or n_shards == 1
        self.cascade_report_ = build_cascade_report(stats, final["sv_changes"])
        self._model_key = f"{task_prefix('cascade model')}-{token}"
        logger.info(
            "cascade SVM: %d support vectors after %d pass(es)%s",
            self.support_.size,
            self.n_passes_,
            " (converged)" if self.converged_ else "",
        )
        return self

    def _fit_settings(self, sample_weight: Any) -> None:
        """Reject the combination of parameters that libsvm's options cannot express."""
        if self.break_ties and self.decision_function_shape == "ovo":
            msg = (
                "break_ties must be False when decision_function_shape is 'ovo': ties are broken by the "
                "one-vs-rest decision values. Set decision_function_shape='ovr' or break_ties=False."
            )
            raise ValueError(msg)

    def _shard(self, data: ValidatedData, seed: int) -> tuple[da.Array, da.Array]:
        """Rows joined with their ids (and weights) and, when asked for, re-sharded by the data layer.

        The data are validated already: the data layer does not check them again (``check_input=False``).
        """
        X, y, sw = data.X, data.y, data.sample_weight
        assert y is not None  # fit always validates y
        n_columns = X.shape[1] + 1 + (sw is not None)
        extra = [] if sw is None else [sw[:, None]]
        joined = da.map_blocks(
            join_block,
            X,
            *extra,
            chunks=(X.chunks[0], (n_columns,)),
            dtype=np.float64,
            meta=np.empty((0, 0), dtype=np.float64),
            token=task_prefix("cascade join"),
        )
        merged = coalesced_row_chunks(X.chunks[0]) if self.n_shards is None else None  # tiny blocks
        n_blocks = sum(1 for size in (merged or X.chunks[0]) if size > 0)
        n_shards = n_blocks if self.n_shards is None else int(self.n_shards)
        if n_shards == 1:
            # One shard holds every row, in the original order (any strategy gives the same set of rows).
            return joined.rechunk({0: -1}), y.rechunk({0: -1})
        if self.n_shards is None and self.sharding == "contiguous":
            return (joined, y) if merged is None else (joined.rechunk({0: merged}), y.rechunk({0: merged}))
        return shard(
            joined, y, n_shards=n_shards, strategy=self.sharding, random_state=seed, check_input=False
        )

    # -----------------------------------------------------------------------------------------------------
    # prediction

    def _map(
        self, model: Any, key: str, X: da.Array, method_name: str, *, out_dtype: Any, n_columns: int | None
    ) -> da.Array:
        """Lazy ``model.<method_name>`` over the row blocks of ``X``; the model enters the graph once."""
        return map_model_method(
            model,
            key,
            X,
            method_name,
            out_dtype=out_dtype,
            n_columns=n_columns,
            action=f"cascade {method_name}",
        )

    def _placed(self, X: da.Array, origin: Any) -> Any:
        """Context deciding where a prediction runs (see :func:`~daskml_lab.ensemble._predict.prediction_place`)."""
        return prediction_place(self.final_estimator_, X, origin, what="The final SVC of CascadeSVC")

    def _predict_dask(self, X: da.Array) -> da.Array:
        return self._map(
            self.final_estimator_,
            self._model_key,
            X,
            "predict",
            out_dtype=self.classes_.dtype,
            n_columns=None,
        )

    def predict(self, X: Any) -> Any:
        """Class labels of the final SVC.

        Parameters
        ----------
        X : {array-like, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples,)
            numpy for in-memory input; lazy for dask input (one ``daskml-cascade-predict`` task per row
            block); xarray on the original sample coordinates for xarray input. The dtype is that of
            ``classes_``.
        """
        X_arr, origin = self._validate_predict_data(X)
        with self._placed(X_arr, origin):
            return self._wrap_output(self._predict_dask(X_arr), origin, name="prediction")

    def decision_function(self, X: Any) -> Any:
        """Decision function of the final SVC.

        Parameters
        ----------
        X : {array-like, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples,) or (n_samples, n_columns)
            One value per row for two classes; otherwise ``n_classes`` columns
            (``decision_function_shape="ovr"``) or ``n_classes * (n_classes - 1) / 2`` (``"ovo"``). Lazy for
            dask input (``daskml-cascade-decision-function`` tasks).
        """
        X_arr, origin = self._validate_predict_data(X)
        n_classes = len(self.classes_)
        if n_classes == 2:
            n_columns = None
        elif self.final_estimator_.decision_function_shape == "ovr":
            n_columns = n_classes
        else:
            n_columns = n_classes * (n_classes - 1) // 2
        columns = self.classes_ if n_columns == n_classes else None
        with self._placed(X_arr, origin):
            result = self._map(
                self.final_estimator_,
                self._model_key,
                X_arr,
                "decision_function",
                out_dtype=np.dtype(np.float64),
                n_columns=n_columns,
            )
            return self._wrap_output(result, origin, columns=columns, name="decision")

    @available_if(_has_probability)
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities: the final SVC's decision values calibrated by a sigmoid (Platt scaling).

        Parameters
        ----------
        X : {array-like, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples, n_classes)
            One column per class of ``classes_``; lazy for dask input (``daskml-cascade-predict-proba``
            tasks). As with :class:`~sklearn.svm.SVC`, the most probable class may differ from ``predict``.
        """
        X_arr, origin = self._validate_predict_data(X)
        with self._placed(X_arr, origin):
            result = self._map(
                CalibratedSVC(self.final_estimator_, self.calibrator_),
                f"{self._model_key}-calibrated",
                X_arr,
                "predict_proba",
                out_dtype=np.dtype(np.float64),
                n_columns=len(self.classes_),
            )
            return self._wrap_output(result, origin, columns=self.classes_, name="probability")

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of ``predict`` on ``X`` against ``y`` (weighted by ``sample_weight``).

        Parameters
        ----------
        X : {array-like, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Rows.
        y : {array-like, dask array, Series} of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights.

        Returns
        -------
        float
            Computed once (one ``dask.compute`` of two values per row block), by
            :func:`daskml_lab.metrics.accuracy_score`.

        Raises
        ------
        ValueError
            If the sample weights sum to zero (the rule of :mod:`daskml_lab.metrics`).
        """
        check_is_fitted(self)
        data = check_X_y(X, y, sample_weight=sample_weight, accept_sparse=False, allow_nan=self._allows_nan())
        self._check_features(data.X, data.origin)
        assert data.y is not None
        with self._placed(data.X, data.origin):
            prediction = self._predict_dask(data.X)
            # accuracy_score computes once: a float from two float64 values per row block
            return float(accuracy_score(data.y, prediction, sample_weight=data.sample_weight))
