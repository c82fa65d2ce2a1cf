"""The machinery shared by the shard ensembles: fit, models trained elsewhere, lazy prediction, score."""

from __future__ import annotations

import hashlib
import logging
import numbers
import os
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from daskml_lab._compat import unique_fused_keys
from daskml_lab.base import DaskMLEstimator, HasMethods, Interval, Options
from daskml_lab.data.sharding import STRATEGIES, shard
from daskml_lab.data.validation import ValidatedData, check_classes, check_n_features, check_X_y
from daskml_lab.ensemble._placement import PlacedShards, current_client, place_shards_for_fit
from daskml_lab.ensemble._predict import map_model_method
from daskml_lab.ensemble._report import build_report
from daskml_lab.ensemble._training import (
    KIND_FITTED,
    ShardSeeds,
    _collect_members_block,
    build_held_out_graph,
    build_shard_fit_graph,
    compute_shard_fits,
    root_entropy,
    shard_seeds,
    split_rows,
)
from daskml_lab.fusion import FUSION_NAMES, Fusion, FusionData, HardVoting, resolve_fusion
from daskml_lab.fusion._base import ArrayLike, _check_members, combine_score_stats, scores_from_stats
from daskml_lab.monitoring import fit_span, task_prefix
from daskml_lab.monitoring._events import start_run
from daskml_lab.persistence import load, save
from daskml_lab.solvers._checkpoint import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CheckpointError,
    atomic_write,
    dump_json,
    open_checkpoint_directory,
    read_json,
    update_digest,
)

__all__ = ["BaseShardEnsemble"]

logger = logging.getLogger(__name__)


def _ensemble_has(method: str) -> Any:
    """``available_if`` check: the fitted fusion has ``method`` (or raises why not); before fit, the base."""

    def check(self: BaseShardEnsemble) -> bool:
        if hasattr(self, "fusion_"):
            getattr(self.fusion_, method)  # raises AttributeError saying why the method is unavailable
            return True
        if method == "predict_proba" and (
            self.fusion == "hard-voting" or isinstance(self.fusion, HardVoting)
        ):
            return False
        return hasattr(self.estimator, method)

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
        self._validate_params()
        classification = self._classification
        fusion = resolve_fusion(self.fusion)
        fusion.check_base_estimator(self.estimator, classification=classification)
        if sample_weight is not None and not has_fit_parameter(self.estimator, "sample_weight"):
            msg = (
                f"sample_weight was given, but the base estimator {type(self.estimator).__name__} does not "
                "accept sample_weight in fit. Choose a base estimator that does, or drop the weights."
            )
            raise ValueError(msg)
        fraction = self._resolve_validation_fraction(fusion)
        data = self._validate_fit_data(X, y, sample_weight=sample_weight, y_numeric=not classification)
        root = root_entropy(self.random_state, self.estimator)
        if root is None:
            root = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
        checkpoint = None
        if self.checkpoint is not None:
            # before any computation: an unwritable or foreign directory fails at once; a resumed fit reuses
            # the root seed of the fit it continues (the same shards, splits and model seeds)
            checkpoint = self._open_checkpoint(data, root)
            root = int(checkpoint["state"]["root"])
        X_arr, y_arr, sw_arr = self._shard(data, shard_seeds(root, 0).sharding)
        n_shards = int(X_arr.numblocks[0])
        token = uuid.uuid4().hex
        logger.info(
            "fitting %s on %d shards (rows per shard %s), fusion %s",
            type(self.estimator).__name__,
            n_shards,
            _short(X_arr.chunks[0]),
            type(fusion).__name__,
        )
        with fit_span(type(self).__name__):
            run = start_run(
                "ensemble",
                run_id=token,
                n_shards=n_shards,
                info={"estimator": type(self.estimator).__name__, "fusion": type(fusion).__name__},
            )
            placed = place_shards_for_fit(X_arr, y_arr, sw_arr)
            # compute: one fitted model and a few counts per shard; with held-out rows also per-model score
            # sums and, for stacking, the meta-features of the held-out rows (a lost worker makes the shards
            # move to the new holders of their blocks, see compute_pinned; with a checkpoint, each shard model
            # is saved as it arrives and the saved ones are not trained again)
            fit_shards = (
                compute_shard_fits if checkpoint is None else _ShardCheckpoint(checkpoint, n_shards).fit
            )
            summaries, held_out = fit_shards(
                placed,
                self.estimator,
                seeds=shard_seeds(root, n_shards),
                validation_fraction=fraction,
                classification=classification,
                fusion=fusion,
                token=token,
                run_id=run.reporting_id,
            )
            del placed  # releases the blocks persisted for the fit
        classes = None
        if classification:
            classes = check_classes(np.unique(np.concatenate([s["labels"] for s in summaries])))
        self._finish_fit(
            fusion,
            list(summaries),
            list(held_out),
            classes=classes,
            member_rows=[s["n_train"] for s in summaries if s["model"] is not None],
            n_shards=n_shards,
            token=token,
        )
        run.shards(self.shard_report_.to_frame().reset_index().to_dict("records"))
        return self

    def _open_checkpoint(self, data: ValidatedData, root: int) -> dict[str, Any]:
        """Check the checkpoint directory and its manifest (this class, these parameters, data of this layout)."""
        X = data.X
        fingerprint = {
            "params": {k: v for k, v in self.get_params(deep=False).items() if k != "checkpoint"},
            "data": {
                "n_samples": int(X.shape[0]),
                "n_features": int(X.shape[1]),
                "dtype": np.dtype(X.dtype).str,
                "sparse": bool(sp.issparse(X._meta)),
                "row_chunks": [int(c) for c in X.chunks[0]],
                "sample_weight": data.sample_weight is not None,
            },
        }
        return open_checkpoint_directory(
            self.checkpoint, owner=type(self).__name__, fingerprint=fingerprint, state={"root": int(root)}
        )

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
        """Re-chunk the validated data into shards through the data layer (or keep the row blocks)."""
        X, y, sw = data.X, data.y, data.sample_weight
        assert y is not None  # fit always validates y
        if self.n_shards is None and self.sharding == "contiguous" and self.shard_key is None:
            return X, y, sw
        key = self.shard_key
        if isinstance(key, numbers.Integral) and not isinstance(key, bool) and key < 0:
            key = int(key) + X.shape[1]  # so that the weight column appended below is never the key
        options = {"n_shards": self.n_shards, "strategy": self.sharding, "key": key, "random_state": seed}
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
        members = _check_members(estimators, type(fusion_).__name__)
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
                (held_out,) = dask.compute(graph)
        elif fusion_.requires_held_out():
            msg = (
                f"{type(fusion_).__name__} learns from held-out rows: pass X_val and y_val (rows the "
                "estimators were not trained on)."
            )
            raise ValueError(msg)
        elif n_features:
            ensemble.n_features_in_ = n_features.pop()
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
        return self._wrap_output(self._predict_dask(X_arr), origin, name="prediction")

    def _score(self, X: Any, y: Any, sample_weight: Any) -> float:
        check_is_fitted(self)
        data = check_X_y(
            X, y, sample_weight=sample_weight, y_numeric=not self._classification, accept_sparse=True
        )
        check_n_features(data.X, self.n_features_in_, estimator_name=type(self).__name__)
        prediction = self._predict_dask(data.X)
        assert data.y is not None
        weight = (
            data.sample_weight if data.sample_weight is not None else da.ones_like(data.y, dtype=np.float64)
        )
        if self._classification:
            # compute: two scalars (weight of correct rows, total weight)
            with unique_fused_keys():
                correct, total = dask.compute((weight * (prediction == data.y)).sum(), weight.sum())
            return float(correct / total)
        y_true = data.y.astype(np.float64)
        mean = (weight * y_true).sum() / weight.sum()
        # compute: two scalars (residual and total sums of squares)
        with unique_fused_keys():
            residual, spread = dask.compute(
                (weight * (y_true - prediction) ** 2).sum(), (weight * (y_true - mean) ** 2).sum()
            )
        if spread == 0:
            return 1.0 if residual == 0 else 0.0
        return float(1.0 - residual / spread)


# ---------------------------------------------------------------------------------------------------------
# checkpoints: every shard model saved as it arrives, a resumed fit trains only the missing shards

_SHARD_FILE = re.compile(r"^shard-(\d+)\.json$")
#: Model files of a shard, by summary key: the member, and (for members refitted on their whole shard, as
#: stacking does) the model of the training rows, which evaluates the held-out rows.
_MODEL_FILES = {"model": ".model", "held_out_model": ".held-out.model"}


class _ShardCheckpoint:
    """The shard files of a checkpoint directory, and the fit that fills them in.

    Per shard ``i``: ``shard-<i>.model`` (the fitted model, saved with :func:`daskml_lab.persistence.save`,
    absent for an empty shard), ``shard-<i>.held-out.model`` (for members refitted on their whole shard, the
    model of the training rows) and ``shard-<i>.json`` (the counts of the shard, a digest of its rows, the
    model files' checksums and the digest of the manifest), written last: a shard is done when its JSON
    exists. A resumed fit trains only the shards without one, and reuses a saved shard model only when the
    digest of the shard's rows, computed again where the shard lives, is unchanged.
    """

    def __init__(self, checkpoint: dict[str, Any], n_shards: int) -> None:
        self.directory = checkpoint["directory"]
        self.fit_id = checkpoint["id"]
        self.n_shards = n_shards

    def _paths(self, shard: int) -> tuple[Any, dict[str, Any]]:
        """The shard's JSON file, and its model files by summary key."""
        name = f"shard-{shard:05d}"
        models = {key: self.directory / f"{name}{suffix}" for key, suffix in _MODEL_FILES.items()}
        return self.directory / f"{name}.json", models

    def _fix(self) -> str:
        return (
            f"Delete the directory {os.fspath(self.directory)!r} to start afresh, or pass another checkpoint "
            "path."
        )

    # -- reading -------------------------------------------------------------------------------------------
    def saved_shards(self) -> dict[int, dict[str, Any]]:
        """The shards already done, ``{index: metadata}``, checked against this fit."""
        found: dict[int, dict[str, Any]] = {}
        for path in sorted(self.directory.glob("shard-*.json")):
            match = _SHARD_FILE.match(path.name)
            if match is None:
                continue
            info = read_json(path, "shard file", self.directory)
            shard = int(match.group(1))
            if info.get("fit") != self.fit_id or info.get("shard") != shard or shard >= self.n_shards:
                msg = (
                    f"The checkpoint file {os.fspath(path)!r} does not belong to this fit (another fit, "
                    f"parameters or number of shards wrote it). {self._fix()}"
                )
                raise CheckpointError(msg)
            found[shard] = info
        return found

    def _load_model(self, path: Any, checksum: str) -> Any:
        """One saved model, checked against its checksum, through the safe loader."""
        try:
            payload = path.read_bytes()
        except OSError as err:
            msg = (
                f"The shard model {os.fspath(path)!r} of the checkpoint is missing or unreadable "
                f"({err.strerror or err}). {self._fix()}"
            )
            raise CheckpointError(msg) from err
        if hashlib.sha256(payload).hexdigest() != checksum:
            msg = (
                f"The shard model {os.fspath(path)!r} is corrupt: its SHA-256 checksum does not match the one "
                f"recorded in its JSON file. {self._fix()}"
            )
            raise CheckpointError(msg)
        try:
            return load(path)
        except (ValueError, TypeError, OSError) as err:
            msg = (
                f"The shard model {os.fspath(path)!r} of the checkpoint cannot be loaded safely ({err}). A "
                "checkpoint can only hold models made of types the safe loader trusts (scikit-learn and "
                f"daskml_lab estimators). {self._fix()}"
            )
            raise CheckpointError(msg) from err

    def load_summary(self, shard: int, info: dict[str, Any]) -> dict[str, Any]:
        """The summary of a saved shard, its models loaded with the safe loader."""
        _, paths = self._paths(shard)
        checksums = info.get("models") or {}
        models = {
            key: None if checksums.get(key) is None else self._load_model(path, checksums[key])
            for key, path in paths.items()
        }
        labels = info.get("labels")
        try:
            return {
                "shard": shard,
                "n_rows": int(info["n_rows"]),
                **models,
                "kind": info["kind"],
                "labels": (
                    None if labels is None else np.asarray(labels["values"], dtype=np.dtype(labels["dtype"]))
                ),
                "counts": None if info.get("counts") is None else np.asarray(info["counts"], dtype=np.int64),
                "worker": info.get("worker"),
                "n_train": int(info["n_train"]),
                "n_held_out": int(info["n_held_out"]),
            }
        except (KeyError, TypeError, ValueError) as err:
            msg = f"The checkpoint file of shard {shard} lacks or garbles {err}. {self._fix()}"
            raise CheckpointError(msg) from err

    # -- writing -------------------------------------------------------------------------------------------
    def save_shard(self, summary: dict[str, Any], digest: str) -> None:
        """Save one shard's models, then its JSON (which marks the shard as done)."""
        shard = int(summary["shard"])
        json_path, paths = self._paths(shard)
        checksums: dict[str, str | None] = {}
        for key, path in paths.items():
            checksums[key] = None
            if summary.get(key) is None:
                continue
            try:
                save(summary[key], path, metadata={"checkpoint_shard": shard})
            except TypeError as err:
                err.add_note(
                    f"daskml_lab: raised while saving the model of shard {shard} to the checkpoint; a checkpoint "
                    "holds only models the safe format can store. Fit with checkpoint=None instead."
                )
                raise
            checksums[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        labels = summary.get("labels")
        info = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "fit": self.fit_id,
            "shard": shard,
            "digest": digest,
            "kind": summary["kind"],
            "n_rows": int(summary["n_rows"]),
            "n_train": int(summary["n_train"]),
            "n_held_out": int(summary["n_held_out"]),
            "labels": None if labels is None else {"dtype": labels.dtype.str, "values": labels.tolist()},
            "counts": None if summary.get("counts") is None else np.asarray(summary["counts"]).tolist(),
            "worker": summary.get("worker"),
            "models": checksums,
        }
        atomic_write(json_path, dump_json(info))
        logger.debug("checkpoint: saved shard %d to %s", shard, json_path)

    # -- the fit -------------------------------------------------------------------------------------------
    def fit(
        self,
        placed: PlacedShards,
        estimator: Any,
        *,
        seeds: ShardSeeds,
        validation_fraction: float,
        classification: bool,
        fusion: Fusion,
        token: str,
        run_id: str | None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Train the missing shards (saving each model as it arrives), then evaluate the held-out rows.

        Returns the per-shard summaries and held-out results, as the fit without checkpoint computes them.
        The tasks are not pinned to workers: the scheduler runs each where its block lives, and elsewhere if
        that worker dies (saving the models as they arrive rules out
        :func:`~daskml_lab.ensemble._placement.compute_pinned`, which returns them all at the end).
        """
        saved = self.saved_shards()
        n_shards = self.n_shards
        fits, _ = build_shard_fit_graph(
            placed.X_blocks,
            placed.y_blocks,
            placed.sw_blocks,
            estimator,
            seeds=seeds,
            validation_fraction=validation_fraction,
            classification=classification,
            fusion=fusion,
            token=token,
            workers=None,
            run_id=run_id,
        )
        targets: dict[int, Any] = {}
        for index in range(n_shards):
            digest = dask.delayed(_shard_digest_block, pure=True)(
                placed.X_blocks[index],
                placed.y_blocks[index],
                None if placed.sw_blocks is None else placed.sw_blocks[index],
                dask_key_name=(f"{task_prefix('shard digest')}-{token}", index),
            )
            # only the summaries of the missing shards are computed: the saved ones are not refitted
            targets[index] = (
                digest
                if index in saved
                else dask.delayed(_pair_block, pure=True)(
                    fits[index], digest, dask_key_name=(f"{task_prefix('shard checkpoint')}-{token}", index)
                )
            )
        logger.info(
            "checkpoint %s: %d of %d shard(s) already trained, training %d",
            self.directory,
            len(saved),
            n_shards,
            n_shards - len(saved),
        )
        summaries: dict[int, dict[str, Any]] = {}

        def arrived(index: int, value: Any) -> None:
            if index in saved:
                if value != saved[index].get("digest"):
                    msg = (
                        f"The rows of shard {index} differ from those its checkpointed model was trained on "
                        f"(the digest of the block changed). {self._fix()}"
                    )
                    raise CheckpointError(msg)
                return
            summary, digest = value
            self.save_shard(summary, digest)
            summaries[index] = summary

        # compute: one fitted model and a few counts per missing shard, a digest per shard (saved as they come)
        _compute_as_completed(targets, arrived)
        for index in saved:
            summaries[index] = self.load_summary(index, saved[index])
        ordered = [summaries[index] for index in range(n_shards)]
        if validation_fraction <= 0:
            return ordered, []
        return ordered, self._held_out(
            placed, ordered, seeds, validation_fraction, classification, fusion, token
        )

    def _held_out(
        self,
        placed: PlacedShards,
        summaries: list[dict[str, Any]],
        seeds: ShardSeeds,
        validation_fraction: float,
        classification: bool,
        fusion: Fusion,
        token: str,
    ) -> list[dict[str, Any]]:
        """Every member's statistics on the held-out rows of every shard (the same split as the fits)."""
        # the models of the training rows (with refitted members, their held-out models) and the classes
        members = _collect_members_block(summaries, classification)
        X_parts, y_parts, sw_parts = [], [], []
        for index in range(len(summaries)):
            rows = dask.delayed(_held_out_rows_block, pure=True, nout=3)(
                placed.X_blocks[index],
                placed.y_blocks[index],
                None if placed.sw_blocks is None else placed.sw_blocks[index],
                validation_fraction,
                seeds.shards[index][1],
                dask_key_name=(f"{task_prefix('held out rows')}-{token}", index),
            )
            X_parts.append(rows[0])
            y_parts.append(rows[1])
            sw_parts.append(rows[2])
        graph = build_held_out_graph(
            X_parts, y_parts, None if placed.sw_blocks is None else sw_parts, members, fusion, token=token
        )
        # compute: per-model score sums and, for stacking, the meta-features of the held-out rows
        (held_out,) = dask.compute(graph)
        return list(held_out)


def _compute_as_completed(targets: dict[int, Any], arrived: Callable[[int, Any], None]) -> None:
    """Compute the delayed ``targets`` at once and call ``arrived(index, value)`` as each one finishes.

    With a distributed client, through futures and :func:`distributed.as_completed`; with a local scheduler,
    through a :class:`dask.callbacks.Callback` called after each task (and, for a scheduler that does not run
    callbacks, once the compute returns).
    """
    index_of = {target.key: index for index, target in targets.items()}
    client = current_client()
    if client is not None:
        from distributed import as_completed

        with unique_fused_keys():
            futures = client.compute(list(targets.values()))
        try:
            for future in as_completed(futures):
                arrived(index_of[future.key], future.result())
        except BaseException:
            # release, not cancel: cancelling futures that depend on each other can trip an assertion in
            # the scheduler and drop this client's connection
            for future in futures:
                future.release()
            raise
        return
    from dask.callbacks import Callback

    done: set[int] = set()

    def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if key in index_of and index_of[key] not in done:
            done.add(index_of[key])
            arrived(index_of[key], result)

    with Callback(posttask=posttask), unique_fused_keys():
        values = dask.compute(*targets.values())
    for index, value in zip(targets, values, strict=True):
        if index not in done:
            arrived(index, value)


def _shard_digest_block(X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> str:
    """A BLAKE2 digest of one shard's rows, targets and weights (to recognise the data of a saved model)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (X, y, sample_weight):
        update_digest(digest, part)
    return digest.hexdigest()


def _pair_block(summary: dict[str, Any], digest: str) -> tuple[dict[str, Any], str]:
    return summary, digest


def _held_out_rows_block(
    X: Any, y: np.ndarray, sample_weight: np.ndarray | None, validation_fraction: float, split_seed: int
) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """The held-out rows of one shard: the split of :func:`~daskml_lab.ensemble._training.split_rows`."""
    _, held_out = split_rows(int(X.shape[0]), validation_fraction, split_seed)
    return X[held_out], y[held_out], None if sample_weight is None else sample_weight[held_out]


def _short(chunks: tuple[Any, ...]) -> str:
    return str(chunks) if len(chunks) <= 6 else f"({', '.join(map(str, chunks[:3]))}, ..., {chunks[-1]})"
