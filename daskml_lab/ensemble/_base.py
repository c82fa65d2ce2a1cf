"""The machinery shared by the shard ensembles: fit, models trained elsewhere, lazy prediction, score."""

from __future__ import annotations

import logging
import numbers
import os
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

import dask.array as da
import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from daskml_lab._runtime.client import current_client
from daskml_lab._runtime.cluster_health import explain_cluster_failures
from daskml_lab._runtime.watched_compute import watched_compute
from daskml_lab.base import ArrayLike, DaskMLEstimator, HasMethods, Interval, Options
from daskml_lab.data.sharding import STRATEGIES, shard
from daskml_lab.data.validation import ValidatedData, check_classes, check_n_features, check_X_y
from daskml_lab.ensemble._checkpoint import ShardCheckpoint
from daskml_lab.ensemble._placement import place_shards_for_fit
from daskml_lab.ensemble._predict import map_model_method, prediction_place
from daskml_lab.ensemble._prologue import ShardFitStart, coalesced_row_chunks, start_shard_fit
from daskml_lab.ensemble._report import build_report
from daskml_lab.ensemble._training import KIND_FITTED, build_held_out_graph, compute_shard_fits
from daskml_lab.fusion import (
    FUSION_NAMES,
    Fusion,
    FusionData,
    check_members,
    combine_score_stats,
    resolve_fusion,
    scores_from_stats,
)
from daskml_lab.metrics import accuracy_score, r2_score
from daskml_lab.monitoring import fit_span, start_run, task_prefix

__all__ = ["BaseShardEnsemble"]

logger = logging.getLogger(__name__)


def _ensemble_has(method: str) -> Any:
    """``available_if`` check: the fitted fusion has ``method`` (or raises why not).

    Before fit: the fusion strategy provides ``method`` (its ``prediction_methods``) and so does the base
    estimator. An invalid ``fusion`` leaves the decision to the base estimator; ``fit`` says what is wrong.
    """

    def check(self: BaseShardEnsemble) -> bool:
        if hasattr(self, "fusion_"):
            getattr(self.fusion_, method)  # raises AttributeError saying why the method is unavailable
            return True
        try:
            provided = resolve_fusion(self.fusion).prediction_methods
        except (TypeError, ValueError):
            provided = frozenset({method})
        return method in provided and hasattr(self.estimator, method)

    return check


class BaseShardEnsemble(DaskMLEstimator):
    """Shared fit, prediction and report of the shard ensembles."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "estimator": [HasMethods(["fit", "predict"])],
        "fusion": [Options(FUSION_NAMES), Fusion],
        "n_shards": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "sharding": [Options(STRATEGIES)],
        "shard_key": [Interval(numbers.Integral, None, None), ArrayLike(), None],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left"), None],
        "random_state": ["random_state"],
        "checkpoint": [None, "str", os.PathLike],
    }
    _accepts_sparse: ClassVar[bool] = True
    _classification: ClassVar[bool] = True

    def __init__(
        self,
        estimator: Any,
        *,
        fusion: str | Fusion = "soft-voting",
        n_shards: int | None = None,
        sharding: str = "contiguous",
        shard_key: Any = None,
        validation_fraction: float | None = None,
        random_state: Any = None,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> None:
        self.estimator = estimator
        self.fusion = fusion
        self.n_shards = n_shards
        self.sharding = sharding
        self.shard_key = shard_key
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.checkpoint = checkpoint

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # NaN passes the input gate when the shard models take it: the base estimator's own tag, and with a
        # stacking passthrough of the features also the final estimator's (it sees X)
        takes_nan = [self.estimator]
        if getattr(self.fusion, "passthrough", False):
            takes_nan.append(getattr(self.fusion, "final_estimator", None))
        tags.input_tags.allow_nan = all(
            model is not None and hasattr(model, "fit") and get_tags(model).input_tags.allow_nan
            for model in takes_nan
        )
        return tags

    # -----------------------------------------------------------------------------------------------------
    # fit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BaseShardEnsemble:
        """Train a clone of ``estimator`` on every shard, where the shard lives, and fuse the shard models.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Training data; its row blocks are the shards unless ``n_shards`` or ``sharding`` re-shard it.
        y : {array-like, dask array, Series, xarray.DataArray} of shape (n_samples,)
            Class labels (any dtype) or regression targets.
        sample_weight : {array-like, dask array} of shape (n_samples,), default=None
            Passed to every shard model's ``fit`` (the base estimator must accept it), and used for the
            validation scores and the stacking meta-estimator.

        Returns
        -------
        self
            The fitted object.

        Raises
        ------
        InvalidParameterError
            If a parameter has a value its constraints do not allow.
        ValueError
            For invalid data, a fusion that cannot work with the base estimator, or (classifiers) fewer than
            two classes in ``y``.
        CheckpointError
            (a ``ValueError``) If ``checkpoint`` cannot be written to, belongs to another fit or data, or
            holds a damaged file.

        Notes
        -----
        One ``dask.compute`` (plus what :func:`daskml_lab.data.shard` computes for ``"stratified"`` or
        ``"hash"`` sharding) runs one ``daskml-shard-fit`` task per shard on the worker holding it, and, with
        held-out rows, one ``daskml-held-out`` task per shard evaluating every model on its held-out rows. The
        client receives the fitted models, per-shard counts, per-model score sums and, for stacking, the
        meta-features of the held-out rows; no rows of ``X`` otherwise. The fusion is then fitted on the
        client.

        On a distributed cluster the shard blocks are first persisted (blocks already in memory stay where
        they are), and each shard's tasks are pinned to the worker holding its block, so that no rows of
        ``X`` cross the network; a ``y`` or weight block persisted on another worker than its ``X`` block is
        fetched (``n_rows`` values). Data whose dense size exceeds half of the workers' memory are not
        persisted: each fit then runs where the scheduler computes its block.

        With ``checkpoint``, the shard fits of the shards without a saved model run in one computation that
        also computes a digest of every shard; each model is saved on the client as it arrives. The held-out
        rows are then selected again from the shards (same seeds) in a second computation, so the blocks
        are read twice when the fusion needs held-out rows (from memory on a cluster, where they are
        persisted).
        """
        start = self._start_shard_fit(X, y, sample_weight)
        with (
            start.held_checkpoint,  # held: released however the fit ends
            fit_span(type(self).__name__),
            # a lost scheduler or the loss of every worker: one clear error, whatever surfaced first
            explain_cluster_failures(
                current_client(), doing=f"fitting {type(self).__name__}", checkpoint=self.checkpoint
            ),
        ):
            run = self._start_shard_run(start)
            placed = place_shards_for_fit(*start.arrays)
            # compute: one fitted model and a few counts per shard; with held-out rows also per-model score
            # sums and, for stacking, the meta-features of the held-out rows (a lost worker makes the shards
            # move to the new holders of their blocks, see compute_pinned; with a checkpoint, each shard model
            # is saved as it arrives and the saved ones are not trained again)
            fit_shards = (
                compute_shard_fits
                if start.checkpoint is None
                else ShardCheckpoint(start.checkpoint, start.n_shards).fit
            )
            summaries, held_out = fit_shards(placed, **self._shard_fit_options(start, run))
            del placed  # releases the blocks persisted for the fit
        return self._fuse_shard_fits(start, summaries, held_out, run)

    # The three steps of ``fit`` (plan the shards, fit every shard, fuse), also run for several ensembles at
    # once by :func:`~daskml_lab.ensemble._joint.fit_shard_ensembles` (all their shard fits in one computation).

    def _start_shard_fit(self, X: Any, y: Any, sample_weight: Any) -> ShardFitStart:
        """Check the parameters and the data, draw the seeds and shard the data (the fit's prologue)."""
        return start_shard_fit(
            self, X, y, sample_weight, y_numeric=not self._classification, seed_estimator=self.estimator
        )

    def _start_shard_run(self, start: ShardFitStart) -> Any:
        """Log the fit and open its run on the training monitor (inside the fit's span)."""
        fusion, _ = start.settings
        logger.info(
            "fitting %s on %d shards (rows per shard %s), fusion %s",
            type(self.estimator).__name__,
            start.n_shards,
            _short(start.arrays[0].chunks[0]),
            type(fusion).__name__,
        )
        return start_run(
            "ensemble",
            run_id=start.token,
            n_shards=start.n_shards,
            info={"estimator": type(self.estimator).__name__, "fusion": type(fusion).__name__},
        )

    def _shard_fit_options(self, start: ShardFitStart, run: Any) -> dict[str, Any]:
        """The keyword arguments of :func:`~daskml_lab.ensemble._training.build_shard_fit_graph` for this fit."""
        fusion, fraction = start.settings
        return {
            "estimator": self.estimator,
            "seeds": start.seeds,
            "validation_fraction": fraction,
            "classification": self._classification,
            "fusion": fusion,
            "token": start.token,
            "run_id": run.reporting_id,
        }

    def _fuse_shard_fits(
        self, start: ShardFitStart, summaries: Sequence[Any], held_out: Sequence[Any], run: Any
    ) -> BaseShardEnsemble:
        """Fuse the computed shard models and set the fitted attributes: the end of ``fit``."""
        fusion, _ = start.settings
        classes = None
        if self._classification:
            classes = check_classes(np.unique(np.concatenate([s["labels"] for s in summaries])))
        self._finish_fit(
            fusion,
            list(summaries),
            list(held_out),
            classes=classes,
            member_rows=[s["n_train"] for s in summaries if s["model"] is not None],
            n_shards=start.n_shards,
            token=start.token,
        )
        run.shards(self.shard_report_.to_frame().reset_index().to_dict("records"))
        return self

    def _fit_settings(self, sample_weight: Any) -> tuple[Fusion, float]:
        """The fusion (fresh) and the share of rows held out, checked against the base estimator."""
        fusion = resolve_fusion(self.fusion)
        fusion.check_base_estimator(self.estimator, classification=self._classification)
        if sample_weight is not None and not has_fit_parameter(self.estimator, "sample_weight"):
            msg = (
                f"sample_weight was given, but the base estimator {type(self.estimator).__name__} does not "
                "accept sample_weight in fit. Choose a base estimator that does, or drop the weights."
            )
            raise ValueError(msg)
        return fusion, self._resolve_validation_fraction(fusion)

    def _resolve_validation_fraction(self, fusion: Fusion) -> float:
        if self.validation_fraction is None:
            return fusion.held_out_fraction() if fusion.requires_held_out() else 0.0
        if self.validation_fraction == 0 and fusion.requires_held_out():
            msg = (
                f"{type(fusion).__name__} learns from held-out rows, but validation_fraction=0 holds none "
                "out. Set validation_fraction > 0 (e.g. 0.1), or None for the default."
            )
            raise ValueError(msg)
        return float(self.validation_fraction)

    def _shard(self, data: ValidatedData, seed: int) -> tuple[da.Array, da.Array, da.Array | None]:
        """Re-chunk the validated data into shards through the data layer (or keep the row blocks).

        With ``n_shards=None`` the shards are the row blocks, blocks of fewer than
        :data:`~daskml_lab.ensemble._prologue.MIN_SHARD_ROWS` rows merged with their neighbours.

        The data are validated already: the data layer does not check them again (``check_input=False``).
        """
        X, y, sw = data.X, data.y, data.sample_weight
        assert y is not None  # fit always validates y
        n_shards = self.n_shards
        merged = coalesced_row_chunks(X.chunks[0]) if n_shards is None else None
        if self.n_shards is None and self.sharding == "contiguous" and self.shard_key is None:
            if merged is None:
                return X, y, sw
            return (
                X.rechunk({0: merged}),
                y.rechunk({0: merged}),
                None if sw is None else sw.rechunk({0: merged}),
            )
        if merged is not None:
            n_shards = len(merged)
        key = self.shard_key
        if isinstance(key, numbers.Integral) and not isinstance(key, bool) and key < 0:
            key = int(key) + X.shape[1]  # so that the weight column appended below is never the key
        options = {
            "n_shards": n_shards,
            "strategy": self.sharding,
            "key": key,
            "random_state": seed,
            "check_input": False,
        }
        if sw is None:
            X_sharded, y_sharded = shard(X, y, **options)
            return X_sharded, y_sharded, None
        if sp.issparse(X._meta):
            msg = (
                f"sample_weight with sparse X and sharding={self.sharding!r} is not supported. Shard the "
                "data beforehand with daskml_lab.data.shard (n_shards=None keeps its row blocks), or use "
                "dense X."
            )
            raise ValueError(msg)
        # The weights travel with their rows as one extra column.
        joined = da.concatenate([X, sw[:, None].astype(X.dtype)], axis=1)
        joined_sharded, y_sharded = shard(joined, y, **options)
        return joined_sharded[:, :-1], y_sharded, joined_sharded[:, -1]

    def _finish_fit(
        self,
        fusion: Fusion,
        summaries: list[dict[str, Any]],
        held_out: list[dict[str, Any]],
        *,
        classes: np.ndarray | None,
        member_rows: Any,
        n_shards: int,
        token: str,
    ) -> None:
        """Fit the fusion on the client from the small results, then set the fitted attributes."""
        members = [s["model"] for s in summaries if s["model"] is not None]
        member_shards = np.array([s["shard"] for s in summaries if s["model"] is not None], dtype=np.int64)
        scores, baseline = scores_from_stats(
            combine_score_stats([h["stats"] for h in held_out]), len(members)
        )
        with_features = [h for h in held_out if h["features"] is not None]
        features = target = meta_weight = None
        if with_features:
            parts = [h["features"] for h in with_features]
            features = sp.vstack(parts, format="csr") if sp.issparse(parts[0]) else np.vstack(parts)
            target = np.concatenate([h["target"] for h in with_features])
            if with_features[0]["sample_weight"] is not None:
                meta_weight = np.concatenate([h["sample_weight"] for h in with_features])
        fusion_data = FusionData(
            classes=classes,
            n_samples=None if member_rows is None else np.asarray(member_rows, dtype=np.float64),
            shard_index=member_shards,
            n_shards=n_shards,
            validation_scores=scores,
            baseline_score=baseline,
            meta_features=features,
            meta_target=target,
            meta_sample_weight=meta_weight,
        )
        fitted_fusion = fusion.fit(members, fusion_data)
        self.fusion_ = fitted_fusion
        self.estimators_ = members
        self.validation_scores_ = scores
        if classes is not None:
            self.classes_ = classes
        self.n_shards_ = n_shards
        n_constant = sum(
            1 for s in summaries if s["model"] is not None and s.get("kind", KIND_FITTED) != KIND_FITTED
        )
        if n_constant:
            logger.info("%d shard(s) held a single class and got a constant predictor", n_constant)
        self.shard_report_ = build_report(
            summaries,
            classes=classes,
            scores=scores,
            weights=np.asarray(fitted_fusion.weights_, dtype=np.float64),
            title=(
                f"{type(self).__name__}: {n_shards} shard(s), {len(members)} model(s) of "
                f"{type(self.estimator).__name__}, fused by {type(fitted_fusion).__name__}"
            ),
        )
        self._fusion_key = f"{task_prefix('fused model')}-{token}"

    # -----------------------------------------------------------------------------------------------------
    # models trained elsewhere

    @classmethod
    def _from_estimators(
        cls,
        estimators: Sequence[Any],
        *,
        fusion: str | Fusion,
        X_val: Any,
        y_val: Any,
        sample_weight: Any,
        classes: Any,
        n_samples: Any,
    ) -> Any:
        fusion_ = resolve_fusion(fusion)
        members = check_members(estimators, type(fusion_).__name__)
        ensemble = cls(clone(members[0]), fusion=fusion)
        ensemble._validate_params()
        classification = cls._classification
        if classification:
            if classes is not None:
                classes = check_classes(np.unique(np.asarray(classes)), name="classes")
            elif all(hasattr(m, "classes_") for m in members):
                classes = check_classes(np.unique(np.concatenate([np.asarray(m.classes_) for m in members])))
            else:
                msg = "Pass classes=[...]: some estimators have no classes_ to take the labels from."
                raise ValueError(msg)
        if (X_val is None) != (y_val is None):
            msg = "Pass both X_val and y_val (held-out rows and their targets), or neither."
            raise ValueError(msg)
        n_features = {int(m.n_features_in_) for m in members if hasattr(m, "n_features_in_")}
        if len(n_features) > 1:
            msg = f"The estimators were trained on different numbers of features: {sorted(n_features)}."
            raise ValueError(msg)
        # before any held-out pass: e.g. a selection scorer of probabilities for regressors
        fusion_.check_base_estimator(members[0], classification=classification)
        held_out: list[dict[str, Any]] = []
        token = uuid.uuid4().hex
        if X_val is not None:
            data = ensemble._validate_fit_data(
                X_val, y_val, sample_weight=sample_weight, y_numeric=not classification
            )
            if n_features:
                check_n_features(data.X, n_features.pop(), estimator_name=cls.__name__)
            assert data.y is not None
            graph = build_held_out_graph(
                list(data.X.to_delayed().ravel()),
                list(data.y.to_delayed().ravel()),
                None if data.sample_weight is None else list(data.sample_weight.to_delayed().ravel()),
                {"estimators": members, "classes": classes},
                fusion_,
                token=token,
            )
            with fit_span(cls.__name__, "from_estimators"):
                # compute: per-model score sums and, for stacking, the meta-features of the held-out rows
                # (watched: a worker paused before the call must not hang it)
                (held_out,) = watched_compute(graph, what="the held-out scores of the estimators")
        elif fusion_.requires_held_out():
            msg = (
                f"{type(fusion_).__name__} learns from held-out rows: pass X_val and y_val (rows the "
                "estimators were not trained on)."
            )
            raise ValueError(msg)
        elif n_features:
            ensemble.n_features_in_ = n_features.pop()
            names = [getattr(m, "feature_names_in_", None) for m in members]
            # the members' shared column names become the ensemble's contract, as a fit on them would
            if names[0] is not None and all(n is not None and list(n) == list(names[0]) for n in names):
                ensemble.feature_names_in_ = np.asarray(names[0], dtype=object)
        else:
            msg = "The estimators have no n_features_in_; pass X_val and y_val so that it can be checked."
            raise ValueError(msg)
        sizes = None if n_samples is None else np.asarray(n_samples)
        if sizes is not None and sizes.shape != (len(members),):
            msg = f"n_samples must hold one count per estimator ({len(members)}); got shape {sizes.shape}."
            raise ValueError(msg)
        summaries = [
            {
                "shard": position,
                "model": member,
                "kind": KIND_FITTED,
                "n_rows": None if sizes is None else int(sizes[position]),
                "n_train": None if sizes is None else int(sizes[position]),
                "n_held_out": None,
                "labels": None,
                "counts": None,
            }
            for position, member in enumerate(members)
        ]
        ensemble._finish_fit(
            fusion_,
            summaries,
            list(held_out),
            classes=classes,
            member_rows=sizes,
            n_shards=len(members),
            token=token,
        )
        return ensemble

    # -----------------------------------------------------------------------------------------------------
    # prediction

    def _fused_map(self, X: da.Array, method_name: str, *, out_dtype: Any, n_columns: int | None) -> da.Array:
        """Lazy ``fusion_.<method_name>`` over the row blocks; the fitted fusion enters the graph once."""
        return map_model_method(
            self.fusion_,
            self._fusion_key,
            X,
            method_name,
            out_dtype=out_dtype,
            n_columns=n_columns,
            action=f"fuse {method_name}",
        )

    def _placed(self, X: da.Array, origin: Any) -> Any:
        """Context deciding where a prediction runs (see :func:`~daskml_lab.ensemble._predict.prediction_place`)."""
        return prediction_place(self.fusion_, X, origin, what=f"The fused model of {type(self).__name__}")

    def _predict_dask(self, X: da.Array) -> da.Array:
        out_dtype = self.classes_.dtype if self._classification else np.dtype(np.float64)
        return self._fused_map(X, "predict", out_dtype=out_dtype, n_columns=None)

    def predict(self, X: Any) -> Any:
        """Fused prediction: a class label per row (classifiers) or a value (regressors).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples,)
            numpy for in-memory input; lazy (one ``daskml-fuse-predict`` task per row block) for dask input;
            an xarray object on the original sample coordinates for xarray input. Classifier labels have the
            dtype of ``classes_``.
        """
        X_arr, origin = self._validate_predict_data(X)
        with self._placed(X_arr, origin):
            return self._wrap_output(self._predict_dask(X_arr), origin, name="prediction")

    def _score(self, X: Any, y: Any, sample_weight: Any) -> float:
        check_is_fitted(self)
        data = check_X_y(
            X,
            y,
            sample_weight=sample_weight,
            y_numeric=not self._classification,
            accept_sparse=True,
            allow_nan=self._allows_nan(),
        )
        self._check_features(data.X, data.origin)
        assert data.y is not None
        score = accuracy_score if self._classification else r2_score
        with self._placed(data.X, data.origin):
            prediction = self._predict_dask(data.X)
            # the metric computes once: a float from a few float64 statistics per row block
            return float(score(data.y, prediction, sample_weight=data.sample_weight))


def _short(chunks: tuple[Any, ...]) -> str:
    return str(chunks) if len(chunks) <= 6 else f"({', '.join(map(str, chunks[:3]))}, ..., {chunks[-1]})"
