"""ShardEnsemble*: laziness, I/O types, empty shards, seeds, from_estimators, errors, sklearn tools."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr
from dask._task_spec import DataNode
from dask.array.utils import assert_eq
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC, OneClassSVM
from sklearn.utils.estimator_checks import parametrize_with_checks

from daskml_lab._runtime.seeding import root_entropy, shard_seeds
from daskml_lab.base import InvalidParameterError
from daskml_lab.ensemble import ShardEnsembleClassifier, ShardEnsembleRegressor, ShardReport
from daskml_lab.fusion import Stacking, WeightedAveraging, fuse
from daskml_lab.testing import raise_if_computes


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = np.digitize(X[:, 0] + X[:, 1], [-0.6, 0.6])
    return X, y, da.from_array(X, chunks=100), da.from_array(y, chunks=100)


@pytest.fixture(scope="module")
def fitted(data):
    _, _, Xd, yd = data
    return ShardEnsembleClassifier(LogisticRegression()).fit(Xd, yd)


# ---------------------------------------------------------------------------------------------------------
# scikit-learn's estimator checks on numpy input (no expected failures)


@parametrize_with_checks([ShardEnsembleClassifier(LogisticRegression()), ShardEnsembleRegressor(Ridge())])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_pipeline_and_grid_search(data):
    X, y, _, _ = data
    pipeline = make_pipeline(StandardScaler(), ShardEnsembleClassifier(LogisticRegression(), n_shards=2))
    assert pipeline.fit(X, y).score(X, y) > 0.8
    search = GridSearchCV(
        ShardEnsembleClassifier(LogisticRegression(), n_shards=2),
        {"fusion": ["soft-voting", "hard-voting"], "estimator__C": [1e-4, 1.0]},
        cv=2,
    ).fit(X, y)
    assert search.best_params_["estimator__C"] == 1.0
    assert isinstance(search.best_estimator_, ShardEnsembleClassifier)
    regression = GridSearchCV(
        ShardEnsembleRegressor(Ridge(), n_shards=2), {"fusion": ["weighted", "stacking"]}, cv=2
    )
    regression.fit(X, X @ [1.0, 2.0, 0.0, 0.0])
    assert regression.best_score_ > 0.99


# ---------------------------------------------------------------------------------------------------------
# laziness and output types


def test_fit_is_one_compute_and_prediction_is_lazy(data):
    X, _y, Xd, yd = data
    for fusion in ("soft-voting", "stacking"):
        model = ShardEnsembleClassifier(LogisticRegression(), fusion=fusion, random_state=0)
        with raise_if_computes(max_computes=1):
            model.fit(Xd, yd)
        with raise_if_computes(max_computes=0):
            labels = model.predict(Xd)
            proba = model.predict_proba(Xd)
            decision = model.decision_function(Xd)
        assert isinstance(labels, da.Array)
        assert labels.chunks == (Xd.chunks[0],)
        assert proba.chunks == (Xd.chunks[0], (3,))
        assert_eq(labels, model.predict(X))
        assert_eq(proba, model.predict_proba(X))
        assert_eq(decision, model.decision_function(X))
        assert isinstance(model.predict(X), np.ndarray)


def test_predict_graph_ships_the_fitted_models_once(fitted, data):
    _, _, Xd, _ = data
    graph = dict(fitted.predict_proba(Xd).__dask_graph__())
    nodes = [
        key for key, task in graph.items() if isinstance(task, DataNode) and task.value is fitted.fusion_
    ]
    assert nodes == [fitted._fusion_key]
    predict_keys = [
        key for key in graph if isinstance(key, tuple) and key[0].startswith("daskml-fuse-predict-proba")
    ]
    assert len(predict_keys) == Xd.numblocks[0]
    assert all(fitted._fusion_key in graph[key].dependencies for key in predict_keys)


def test_fit_graph_task_names(data):
    from daskml_lab.ensemble._training import build_shard_fit_graph

    _, _, Xd, yd = data
    _summaries, held_out = build_shard_fit_graph(
        list(Xd.to_delayed().ravel()),
        list(yd.to_delayed().ravel()),
        None,
        LogisticRegression(),
        seeds=shard_seeds(0, 4),
        validation_fraction=0.1,
        classification=True,
        fusion=Stacking(),
        token="t",
    )
    keys = set(dict(dask.delayed(held_out).__dask_graph__()))
    prefixes = {k[0] if isinstance(k, tuple) else k for k in keys}
    for name in (
        "daskml-shard-fit-t",
        "daskml-shard-summary-t",
        "daskml-shard-members-t",
        "daskml-held-out-t",
    ):
        assert name in prefixes


def test_xarray_in_xarray_out(fitted, data):
    X, _, _, _ = data
    cube = xr.DataArray(
        X.reshape(20, 20, 4),
        dims=("lat", "lon", "band"),
        coords={"lat": np.arange(20), "lon": np.arange(20) * 2},
    ).chunk({"lat": 5})
    with raise_if_computes(max_computes=0):
        labels = fitted.predict(cube)
        proba = fitted.predict_proba(cube)
    assert isinstance(labels, xr.DataArray)
    assert labels.dims == ("lat", "lon")
    np.testing.assert_array_equal(labels["lon"], np.arange(20) * 2)
    np.testing.assert_array_equal(labels.values.ravel(), fitted.predict(X))
    assert proba.dims == ("lat", "lon", "column")
    np.testing.assert_allclose(proba.values.reshape(-1, 3), fitted.predict_proba(X))


def test_pandas_and_string_labels():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(120, 2)), columns=["a", "b"])
    labels = np.where(frame["a"] > 0, "pos", "neg")
    model = ShardEnsembleClassifier(LogisticRegression(class_weight={"pos": 2.0}), n_shards=3).fit(
        frame, labels
    )
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b"])
    prediction = model.predict(frame)
    assert prediction.dtype == model.classes_.dtype
    assert set(prediction) <= {"neg", "pos"}
    assert model.estimators_[0].class_weight == {"pos": 2.0}
    assert model.score(frame, labels) > 0.9


def test_sparse_input_matches_dense(data):
    X, y, _, _ = data
    sparse = sp.csr_matrix(np.where(np.abs(X) > 1, X, 0.0))
    dense = sparse.toarray()
    mine = ShardEnsembleClassifier(LogisticRegression(), n_shards=2).fit(sparse, y)
    theirs = ShardEnsembleClassifier(LogisticRegression(), n_shards=2).fit(dense, y)
    np.testing.assert_allclose(mine.predict_proba(sparse), theirs.predict_proba(dense), rtol=1e-6)


def test_score_matches_sklearn_metrics(data):
    X, y, Xd, yd = data
    model = ShardEnsembleClassifier(GaussianNB()).fit(Xd, yd)
    weight = np.linspace(0.1, 1.0, len(y))
    expected = np.average(model.predict(X) == y, weights=weight)
    with raise_if_computes(max_computes=1):
        score = model.score(Xd, yd, sample_weight=da.from_array(weight, chunks=100))
    assert score == pytest.approx(expected, rel=1e-12)
    from sklearn.metrics import r2_score

    target = X @ [1.0, -1.0, 0.5, 0.0]
    regressor = ShardEnsembleRegressor(Ridge()).fit(Xd, target)
    assert regressor.score(Xd, target) == pytest.approx(r2_score(target, regressor.predict(X)), rel=1e-12)
    constant = np.ones(len(y))
    assert ShardEnsembleRegressor(Ridge()).fit(X, constant).score(X, constant) == 1.0


# ---------------------------------------------------------------------------------------------------------
# empty blocks and shards


def test_empty_shards_never_break_fit_or_predict(data):
    X, y, _, _ = data
    Xd = da.from_array(X, chunks=((150, 0, 250, 0), 4))
    yd = da.from_array(y, chunks=((150, 0, 250, 0),))
    for fusion in ("soft-voting", "stacking", WeightedAveraging(weights=[1.0, 9.0, 1.0, 9.0])):
        model = ShardEnsembleClassifier(LogisticRegression(), fusion=fusion, random_state=0).fit(Xd, yd)
        report = model.shard_report_.to_frame()
        assert report["model"].tolist() == ["LogisticRegression", "empty", "LogisticRegression", "empty"]
        assert report["member"].tolist() == [0, -1, 1, -1]
        assert report.loc[[1, 3], "weight"].tolist() == [0.0, 0.0]
        assert len(model.estimators_) == 2
        result = model.predict(Xd)
        assert result.chunks == ((150, 0, 250, 0),)
        np.testing.assert_array_equal(result.compute(), model.predict(X))
    regressor = ShardEnsembleRegressor(Ridge(), fusion="weighted").fit(Xd, X[:, 0])
    np.testing.assert_allclose(regressor.fusion_.weights_, [150 / 400, 250 / 400])


def test_predict_on_unknown_chunk_sizes(fitted, data):
    X, _, Xd, _ = data
    filtered = Xd[Xd[:, 0] > 0]
    assert np.isnan(filtered.chunks[0][0])
    with raise_if_computes(max_computes=0):
        proba = fitted.predict_proba(filtered)
    np.testing.assert_allclose(proba.compute(), fitted.predict_proba(X[X[:, 0] > 0]))


# ---------------------------------------------------------------------------------------------------------
# seeds


def test_random_state_reproducible_and_derived_per_shard(data):
    _, _, Xd, yd = data
    base = RandomForestClassifier(n_estimators=3)
    first = ShardEnsembleClassifier(base, random_state=0).fit(Xd, yd)
    again = ShardEnsembleClassifier(base, random_state=0).fit(Xd, yd)
    other = ShardEnsembleClassifier(base, random_state=1).fit(Xd, yd)
    np.testing.assert_array_equal(first.predict_proba(Xd).compute(), again.predict_proba(Xd).compute())
    assert [m.random_state for m in first.estimators_] != [m.random_state for m in other.estimators_]
    seeds = shard_seeds(root_entropy(0, base), 4)
    from daskml_lab._runtime.seeding import seeded_clone

    assert [m.random_state for m in first.estimators_] == [
        seeded_clone(base, s[0]).random_state for s in seeds.shards
    ]
    # ensemble random_state None: the base estimator's int random_state is the root
    from_base = ShardEnsembleClassifier(clone(base).set_params(random_state=0)).fit(Xd, yd)
    assert [m.random_state for m in from_base.estimators_] == [m.random_state for m in first.estimators_]
    with_rng = ShardEnsembleClassifier(base, random_state=np.random.RandomState(0)).fit(Xd, yd)
    assert len({m.random_state for m in with_rng.estimators_}) == 4


def test_nested_random_states_are_seeded(data):
    X, y, _, _ = data
    base = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=2))
    model = ShardEnsembleClassifier(base, n_shards=2, random_state=0).fit(X, y)
    states = [m.get_params()["randomforestclassifier__random_state"] for m in model.estimators_]
    assert all(isinstance(s, int) for s in states)
    assert states[0] != states[1]
    assert base.get_params()["randomforestclassifier__random_state"] is None  # the user's object is untouched


# ---------------------------------------------------------------------------------------------------------
# models trained elsewhere


def test_from_estimators_classifier(data):
    X, y, _, _ = data
    members = [GaussianNB().fit(X[i * 100 : (i + 1) * 100], y[i * 100 : (i + 1) * 100]) for i in range(3)]
    X_val, y_val = X[300:], y[300:]
    soft = ShardEnsembleClassifier.from_estimators(members)
    np.testing.assert_allclose(soft.predict_proba(X), fuse(members).predict_proba(X))
    stacked = ShardEnsembleClassifier.from_estimators(
        members,
        fusion="stacking",
        X_val=da.from_array(X_val, chunks=30),
        y_val=da.from_array(y_val, chunks=30),
    )
    reference = fuse(members, "stacking", X_val=X_val, y_val=y_val)
    np.testing.assert_allclose(stacked.predict_proba(X), reference.predict_proba(X), rtol=1e-10)
    report = stacked.shard_report_.to_frame()
    expected_scores = [np.mean(m.predict(X_val) == y_val) for m in members]
    np.testing.assert_allclose(report["validation_score"], expected_scores)
    assert stacked.n_features_in_ == 4
    assert stacked.estimators_[0] is members[0]
    sized = ShardEnsembleClassifier.from_estimators(members, fusion="weighted", n_samples=[100, 100, 200])
    np.testing.assert_allclose(sized.fusion_.weights_, [0.25, 0.25, 0.5])
    assert sized.shard_report_.to_frame()["n_rows"].tolist() == [100, 100, 200]


def test_from_estimators_regressor(data):
    X, _, Xd, _ = data
    target = X @ [1.0, 0.0, 2.0, 0.0]
    members = [LinearRegression().fit(X[:200], target[:200]), Ridge(alpha=50).fit(X[200:], target[200:])]
    model = ShardEnsembleRegressor.from_estimators(
        members, fusion=WeightedAveraging(weights="validation"), X_val=X, y_val=target
    )
    with raise_if_computes(max_computes=0):
        lazy = model.predict(Xd)
    weights = model.fusion_.weights_
    np.testing.assert_allclose(
        lazy.compute(), weights[0] * members[0].predict(X) + weights[1] * members[1].predict(X)
    )


def test_from_estimators_errors(data):
    X, y, _, _ = data
    members = [GaussianNB().fit(X, y)]
    with pytest.raises(ValueError, match="Stacking learns from held-out rows: pass X_val and y_val"):
        ShardEnsembleClassifier.from_estimators(members, fusion="stacking")
    with pytest.raises(ValueError, match="Pass both X_val and y_val"):
        ShardEnsembleClassifier.from_estimators(members, X_val=X)
    with pytest.raises(
        ValueError, match="X has 2 features, but ShardEnsembleClassifier is expecting 4 features"
    ):
        ShardEnsembleClassifier.from_estimators(members, X_val=X[:, :2], y_val=y)
    with pytest.raises(
        ValueError, match=r"n_samples must hold one count per estimator \(1\); got shape \(2,\)"
    ):
        ShardEnsembleClassifier.from_estimators(members, n_samples=[1, 2])
    wide = GaussianNB().fit(np.hstack([X, X]), y)
    with pytest.raises(ValueError, match=r"trained on different numbers of features: \[4, 8\]"):
        ShardEnsembleClassifier.from_estimators([members[0], wide])
    with pytest.raises(ValueError, match="The target classes has only one class"):
        ShardEnsembleClassifier.from_estimators(members, classes=[0])


# ---------------------------------------------------------------------------------------------------------
# report


def test_shard_report(fitted):
    report = fitted.shard_report_
    assert isinstance(report, ShardReport)
    assert len(report) == 4
    frame = report.to_frame()
    assert frame.index.name == "shard"
    assert list(frame.columns) == [
        "n_rows",
        "n_train",
        "n_held_out",
        "model",
        "member",
        "validation_score",
        "weight",
        0,
        1,
        2,
    ]
    assert frame[[0, 1, 2]].to_numpy().sum() == 400
    html = report._repr_html_()
    assert "<table" in html
    assert "fused by SoftVoting" in html
    assert "4 shard(s), 4 model(s) of LogisticRegression" in repr(report)
    frame.loc[0, "weight"] = 99.0
    assert report.to_frame().loc[0, "weight"] == 0.25  # to_frame returns a copy


# ---------------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fusion": "mean"}, "The 'fusion' parameter of ShardEnsembleClassifier must be a str among"),
        (
            {"n_shards": 0},
            r"The 'n_shards' parameter of ShardEnsembleClassifier must be an int in the range \[1, inf\)",
        ),
        ({"sharding": "random"}, "The 'sharding' parameter of ShardEnsembleClassifier must be a str among"),
        ({"validation_fraction": 1.0}, r"must be a float in the range \[0, 1\) or None. Got 1.0"),
        ({"random_state": "seed"}, "The 'random_state' parameter of ShardEnsembleClassifier must be an int"),
        ({"shard_key": "column"}, "The 'shard_key' parameter of ShardEnsembleClassifier must be"),
        ({"estimator": "model"}, "must be an object implementing 'fit', 'predict'. Got 'model' instead"),
    ],
)
def test_invalid_parameters(data, params, message):
    X, y, _, _ = data
    options = {"estimator": LogisticRegression(), **params}
    with pytest.raises(InvalidParameterError, match=message):
        ShardEnsembleClassifier(**options).fit(X, y)


def test_fusion_and_base_mismatches(data):
    X, y, _, _ = data
    with pytest.raises(InvalidParameterError, match="The 'sharding' parameter of ShardEnsembleRegressor"):
        ShardEnsembleRegressor(Ridge(), sharding="stratified").fit(X, X[:, 0])
    with pytest.raises(
        ValueError, match="HardVoting counts votes for class labels, so it cannot fuse regressors"
    ):
        ShardEnsembleRegressor(Ridge(), fusion="hard-voting").fit(X, X[:, 0])
    with pytest.raises(
        ValueError, match="SoftVoting averages class probabilities, but LinearSVC has no predict_proba"
    ):
        ShardEnsembleClassifier(LinearSVC()).fit(X, y)
    with pytest.raises(ValueError, match=r"ForestUnion pools the trees of .* got LogisticRegression"):
        ShardEnsembleClassifier(LogisticRegression(), fusion="forest-union").fit(X, y)
    with pytest.raises(
        ValueError, match="Stacking learns from held-out rows, but validation_fraction=0 holds none"
    ):
        ShardEnsembleClassifier(LogisticRegression(), fusion="stacking", validation_fraction=0.0).fit(X, y)
    with pytest.raises(
        ValueError, match="the base estimator KNeighborsClassifier does not accept sample_weight"
    ):
        ShardEnsembleClassifier(KNeighborsClassifier()).fit(X, y, sample_weight=np.ones(len(y)))


def test_data_errors(data, fitted):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="The target y has only one class"):
        ShardEnsembleClassifier(LogisticRegression(), n_shards=2).fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        ShardEnsembleClassifier(LogisticRegression()).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        ShardEnsembleClassifier(LogisticRegression()).fit(X, None)
    with pytest.raises(
        ValueError, match="X has 3 features, but ShardEnsembleClassifier is expecting 4 features"
    ):
        fitted.predict(X[:, :3])
    with pytest.raises(NotFittedError):
        ShardEnsembleClassifier(LogisticRegression()).predict(X)
    with pytest.raises(
        ValueError, match="sample_weight with sparse X and sharding='shuffle' is not supported"
    ):
        ShardEnsembleClassifier(LogisticRegression(), sharding="shuffle").fit(
            sp.csr_matrix(X), y, sample_weight=np.ones(len(y))
        )


def test_shard_fit_errors_name_the_shard(data):
    _X, _y, Xd, yd = data
    with pytest.raises(ValueError, match="Number of priors must match number of classes") as info:
        ShardEnsembleClassifier(GaussianNB(priors=[0.5, 0.5])).fit(Xd, yd)
    assert any("while fitting GaussianNB on shard" in note for note in info.value.__notes__)


def test_method_availability(data):
    X, y, _, _ = data
    hard = ShardEnsembleClassifier(LogisticRegression(), fusion="hard-voting")
    assert not hasattr(hard, "predict_proba")
    hard.fit(X, y)
    assert not hasattr(hard, "predict_proba")
    assert not hasattr(hard, "decision_function")
    forest = ShardEnsembleClassifier(RandomForestClassifier(n_estimators=2), fusion="forest-union")
    assert hasattr(forest, "predict_proba")
    assert not hasattr(forest, "decision_function")
    assert not hasattr(ShardEnsembleRegressor(Ridge()), "predict_proba")


class _MeanModel(RegressorMixin, BaseEstimator):
    """A fitted model without n_features_in_, as models from other libraries may be."""

    def fit(self, X, y):
        self.value_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.value_)


def test_from_estimators_without_classes_or_feature_counts(data):
    X, _, _, _ = data
    outlier = OneClassSVM().fit(X)
    with pytest.raises(ValueError, match=r"Pass classes=\[\.\.\.\]: some estimators have no classes_"):
        ShardEnsembleClassifier.from_estimators([outlier])
    members = [_MeanModel().fit(X, X[:, 0]), _MeanModel().fit(X, X[:, 1])]
    with pytest.raises(ValueError, match="The estimators have no n_features_in_; pass X_val and y_val"):
        ShardEnsembleRegressor.from_estimators(members)
    model = ShardEnsembleRegressor.from_estimators(members, X_val=X, y_val=X[:, 0])
    assert model.n_features_in_ == 4
    np.testing.assert_allclose(model.predict(X[:3]), np.mean([m.value_ for m in members]))
