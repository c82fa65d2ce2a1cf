"""Shard ensembles: any scikit-learn estimator trained once per shard, where the shard lives, then fused."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if

from daskml_lab.base import Options
from daskml_lab.data.sharding import STRATEGIES
from daskml_lab.ensemble._base import BaseShardEnsemble, _ensemble_has
from daskml_lab.fusion import Fusion

__all__ = ["ShardEnsembleClassifier", "ShardEnsembleRegressor"]

_SHARED_PARAMETERS = """\
    estimator : estimator instance
        The base estimator, cloned once per shard (never modified). Any scikit-learn estimator with ``fit``
        and ``predict``: SVMs, trees and forests, linear models, naive Bayes, k-NN, pipelines, ...
    fusion : str or Fusion, default="soft-voting"
        How the shard models become one predictor: ``"hard-voting"``, ``"soft-voting"``, ``"weighted"``,
        ``"stacking"``, ``"parameter-averaging"``, ``"forest-union"``, ``"best-model"`` (the one shard model
        with the best held-out score; ``BestModel(scoring=...)`` for another scorer), or a fusion object from
        :mod:`daskml_lab.fusion` carrying its options (cloned before use). See :doc:`/ensembles` and
        :doc:`/fusion/index`.
    n_shards : int, default=None
        Number of shards. ``None`` keeps the existing row blocks of the input, one shard per block (after
        ``sharding`` when that is not ``"contiguous"``); blocks of fewer than 50 rows (``dask.config``
        ``daskml_lab.ensemble.min_shard_rows``) are first merged with their neighbours.
    sharding : str, default="contiguous"
        How rows are assigned to shards, a strategy of :func:`daskml_lab.data.shard`: ``"contiguous"``,
        ``"shuffle"``, ``"hash"`` (with ``shard_key``) and, for classifiers, ``"stratified"``. Data sorted by
        label gives contiguous shards that miss classes; ``"shuffle"`` or ``"stratified"`` avoid that.
    shard_key : int or array-like of shape (n_samples,), default=None
        For ``sharding="hash"``: a column index of ``X`` or one key per row.
    validation_fraction : float, default=None
        Share of every shard's rows held out (at random, seeded) from its model's training. Held-out rows
        give each model's validation score and feed the ``"validation"`` weights, stacking and best-model
        selection. ``None``:
        the fusion's :meth:`~daskml_lab.fusion.Fusion.held_out_fraction` when it needs held-out rows (0.1;
        0.2 for stacking, whose members are then refitted on their whole shard), otherwise 0 (all rows
        train, scores are ``NaN``).
    random_state : int, RandomState instance or None, default=None
        Root of every random stream: each shard's model gets ``random_state`` (and any nested
        ``*__random_state``) derived from it with :class:`numpy.random.SeedSequence`, as does the split into
        held-out rows and the sharding. ``None`` uses the base estimator's ``random_state`` when it is an int,
        otherwise fresh entropy.
    checkpoint : str, path-like or None, default=None
        Directory where each shard model is saved, in the safe format of :func:`daskml_lab.save`, as soon as
        it is trained. Fitting again with the same directory (after an interruption) trains only the shards
        without a saved model and gives the model an uninterrupted fit gives; a directory holding every shard
        trains none. A saved model is reused only if its shard's rows are unchanged (a digest of each shard is
        computed where it lives). The directory is created if missing and checked in ``fit`` before any
        computation; one written by another estimator, other parameters or differently shaped data is refused
        with a clear error (delete it to start afresh). With ``random_state=None`` the resumed fit reuses the
        seed recorded in the directory. See :doc:`/checkpoints`."""

_SHARED_ATTRIBUTES = """\
    estimators_ : list of estimators
        The fitted shard models, one per non-empty shard, in shard order.
    fusion_ : Fusion
        The fitted fusion (see :mod:`daskml_lab.fusion`); it is what the workers receive for prediction.
    validation_scores_ : ndarray of shape (n_members,)
        Each shard model's score on held-out rows it never trained on: accuracy (classifiers) or R²
        (regressors), or the fusion's own scorer (``BestModel(scoring=...)``); ``NaN`` without held-out rows.
    n_shards_ : int
        Number of shards, empty ones included.
    shard_report_ : ShardReport
        One row per shard: rows, held-out rows, class counts, model, validation score and fusion weight;
        ``shard_report_.to_frame()`` is a DataFrame and notebooks show it as an HTML table.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names."""


def _fill_docstring(cls: type) -> type:
    """Put the shared parameter and attribute descriptions in place of their placeholders."""
    doc = (cls.__doc__ or "").replace("%(parameters)s", _SHARED_PARAMETERS.lstrip())
    cls.__doc__ = doc.replace("%(attributes)s", _SHARED_ATTRIBUTES.lstrip())
    return cls


@_fill_docstring
class ShardEnsembleClassifier(ClassifierMixin, BaseShardEnsemble):
    """A scikit-learn classifier trained once per shard, in parallel where each shard lives, then fused.

    ``fit`` trains a clone of ``estimator`` on every shard (a row block of a dask array) as one task on
    the worker holding that shard; no rows reach the client. The shard models are then fused into one
    predictor by ``fusion`` (voting, weighted averaging, stacking, parameter averaging or forest union).
    The classes are those of all of ``y``: a shard missing some classes still yields a model whose
    probabilities are aligned to ``classes_`` (zero for the classes it never saw); a shard whose training
    rows hold a single class gets a constant predictor (:class:`~sklearn.dummy.DummyClassifier` with
    ``strategy="constant"``), and an empty shard gets no model (weight 0). Prediction is lazy, one task
    per row block, with the fitted fusion sent to the workers once.

    Parameters
    ----------
    %(parameters)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The sorted labels of all of ``y``.
    %(attributes)s

    See Also
    --------
    ShardEnsembleRegressor : The regression counterpart.
    daskml_lab.fusion.fuse : Fuse numpy models trained elsewhere.

    Notes
    -----
    Each shard model is fitted on the labels as given (not encoded), so ``estimators_[i].predict`` returns
    labels and a ``class_weight`` dict of the base estimator keeps working.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from sklearn.naive_bayes import GaussianNB
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3))
    >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> model = ShardEnsembleClassifier(GaussianNB()).fit(da.from_array(X, chunks=100), y)
    >>> len(model.estimators_), model.classes_.tolist()
    (3, [0, 1])
    >>> model.predict(X[2:4]).tolist()
    [1, 0]
    >>> model.shard_report_.to_frame()["n_rows"].tolist()
    [100, 100, 100]
    """

    _classification = True

    @classmethod
    def from_estimators(
        cls,
        estimators: Sequence[Any],
        *,
        fusion: str | Fusion = "soft-voting",
        X_val: Any = None,
        y_val: Any = None,
        sample_weight: Any = None,
        classes: Any = None,
        n_samples: Any = None,
    ) -> ShardEnsembleClassifier:
        """A fitted ensemble from classifiers trained elsewhere (for example one per data partition).

        Parameters
        ----------
        estimators : list of fitted classifiers
            The members; they are used as given (not copied or refitted).
        fusion : str or Fusion, default="soft-voting"
            The fusion strategy.
        X_val : {array-like, dask array, xarray.DataArray} of shape (n_held_out, n_features), default=None
            Held-out rows, needed by stacking and validation weights; rows the estimators were not trained
            on. Dask input is evaluated where it lives (one compute).
        y_val : array-like of shape (n_held_out,), default=None
            Their labels.
        sample_weight : array-like of shape (n_held_out,), default=None
            Weights of the held-out rows.
        classes : array-like, default=None
            Global labels; default the union of the estimators' ``classes_``.
        n_samples : array-like of shape (n_estimators,), default=None
            Training rows of each estimator, needed by size weights.

        Returns
        -------
        ShardEnsembleClassifier
            Fitted; ``estimator`` is an unfitted clone of the first member.

        Raises
        ------
        ValueError
            If the fusion needs held-out rows that were not given, or the inputs disagree.
        """
        return cls._from_estimators(
            estimators,
            fusion=fusion,
            X_val=X_val,
            y_val=y_val,
            sample_weight=sample_weight,
            classes=classes,
            n_samples=n_samples,
        )

    @available_if(_ensemble_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """Fused class probabilities, one column per class of ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples, n_classes)
            numpy for in-memory input, lazy for dask input (``daskml-fuse-predict-proba`` tasks), xarray on
            the original coordinates for xarray input.
        """
        X_arr, origin = self._validate_predict_data(X)
        n_classes = len(self.classes_)
        with self._placed(X_arr, origin):
            result = self._fused_map(
                X_arr, "predict_proba", out_dtype=np.dtype(np.float64), n_columns=n_classes
            )
            return self._wrap_output(result, origin, columns=self.classes_, name="probability")

    @available_if(_ensemble_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """Fused decision function (see the fusion for its definition).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        {ndarray, dask array, xarray.DataArray} of shape (n_samples,) or (n_samples, n_classes)
            One column for two classes, one per class otherwise; lazy for dask input.
        """
        X_arr, origin = self._validate_predict_data(X)
        n_classes = len(self.classes_)
        n_columns = None if n_classes == 2 else n_classes
        with self._placed(X_arr, origin):
            result = self._fused_map(
                X_arr, "decision_function", out_dtype=np.dtype(np.float64), n_columns=n_columns
            )
            return self._wrap_output(
                result, origin, columns=None if n_columns is None else self.classes_, name="decision"
            )

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of ``predict`` on ``X`` against ``y`` (weighted by ``sample_weight``).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array, xarray.DataArray} of shape (n_samples, n_features)
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
        return self._score(X, y, sample_weight)


@_fill_docstring
class ShardEnsembleRegressor(RegressorMixin, BaseShardEnsemble):
    """A scikit-learn regressor trained once per shard, in parallel where each shard lives, then fused.

    ``fit`` trains a clone of ``estimator`` on every shard (a row block of a dask array) as one task on
    the worker holding that shard; no rows reach the client. The shard models are fused by ``fusion``: the
    mean prediction (``"soft-voting"``), a weighted mean (``"weighted"``), a stacked meta-regressor
    (``"stacking"``), averaged linear coefficients (``"parameter-averaging"``) or one pooled forest
    (``"forest-union"``). ``"hard-voting"`` is for classifiers only. Empty shards get no model (weight 0).
    Prediction is lazy, one task per row block, with the fitted fusion sent to the workers once.

    Parameters
    ----------
    %(parameters)s

    Attributes
    ----------
    %(attributes)s

    See Also
    --------
    ShardEnsembleClassifier : The classification counterpart.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from sklearn.linear_model import Ridge
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5])
    >>> model = ShardEnsembleRegressor(Ridge(alpha=1e-6), fusion="parameter-averaging")
    >>> model = model.fit(da.from_array(X, chunks=100), y)
    >>> model.fusion_.fused_estimator_.coef_.round(3).tolist()
    [1.0, -2.0, 0.5]
    """

    _classification = False
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseShardEnsemble._parameter_constraints,
        "sharding": [Options(set(STRATEGIES) - {"stratified"})],
    }

    @classmethod
    def from_estimators(
        cls,
        estimators: Sequence[Any],
        *,
        fusion: str | Fusion = "soft-voting",
        X_val: Any = None,
        y_val: Any = None,
        sample_weight: Any = None,
        n_samples: Any = None,
    ) -> ShardEnsembleRegressor:
        """A fitted ensemble from regressors trained elsewhere (for example one per data partition).

        Parameters
        ----------
        estimators : list of fitted regressors
            The members; they are used as given (not copied or refitted).
        fusion : str or Fusion, default="soft-voting"
            The fusion strategy.
        X_val : {array-like, dask array, xarray.DataArray} of shape (n_held_out, n_features), default=None
            Held-out rows, needed by stacking and validation weights.
        y_val : array-like of shape (n_held_out,), default=None
            Their targets.
        sample_weight : array-like of shape (n_held_out,), default=None
            Weights of the held-out rows.
        n_samples : array-like of shape (n_estimators,), default=None
            Training rows of each estimator, needed by size weights.

        Returns
        -------
        ShardEnsembleRegressor
            Fitted; ``estimator`` is an unfitted clone of the first member.

        Raises
        ------
        ValueError
            If the fusion needs held-out rows that were not given, or the inputs disagree.
        """
        return cls._from_estimators(
            estimators,
            fusion=fusion,
            X_val=X_val,
            y_val=y_val,
            sample_weight=sample_weight,
            classes=None,
            n_samples=n_samples,
        )

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Coefficient of determination R² of ``predict`` on ``X`` against ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Rows.
        y : {array-like, dask array, Series} of shape (n_samples,)
            True targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights.

        Returns
        -------
        float
            Computed once (one ``dask.compute`` of a few values per row block), by
            :func:`daskml_lab.metrics.r2_score`; as :func:`sklearn.metrics.r2_score`, 1.0 for a perfect fit of a
            constant target and 0.0 for an imperfect one.

        Raises
        ------
        ValueError
            If the sample weights sum to zero (the rule of :mod:`daskml_lab.metrics`).
        """
        return self._score(X, y, sample_weight)
