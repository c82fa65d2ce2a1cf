"""fusion="best-model": the member chosen on held-out rows equals the one scikit-learn scores choose by hand."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from distributed import wait
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, get_scorer, r2_score, roc_auc_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from daskml_lab import load, save
from daskml_lab._runtime.seeding import root_entropy, shard_seeds
from daskml_lab.ensemble import ShardEnsembleClassifier, ShardEnsembleRegressor
from daskml_lab.ensemble._training import split_rows
from daskml_lab.fusion import BestModel, FusionData, fuse
from daskml_lab.testing import raise_if_computes

CHUNKS = (200, 300, 250, 250)
NOISE = (0.45, 0.05, 0.25, 0.35)  # label noise per shard: the members differ in quality


@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(sum(CHUNKS), 4))
    y = (X[:, 0] + 0.7 * X[:, 1] - 0.4 * X[:, 2] > 0).astype(int)
    for rows, noise in zip(_shards(), NOISE, strict=True):
        flip = rows[rng.random(len(rows)) < noise]
        y[flip] = 1 - y[flip]
    return X, y, rng.normal(size=(60, 4))


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(sum(CHUNKS), 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=len(X)) * np.repeat(NOISE, CHUNKS) * 8
    return X, y, rng.normal(size=(40, 3))


def _shards():
    bounds = np.cumsum((0, *CHUNKS))
    return [np.arange(bounds[i], bounds[i + 1]) for i in range(len(CHUNKS))]


def _hand(model, base, X, y, random_state, fraction):
    """Members refitted by hand on each shard's training rows, and each shard's held-out rows."""
    seeds = shard_seeds(root_entropy(random_state, base), len(CHUNKS))
    members, held = [], []
    for index, (rows, fitted) in enumerate(zip(_shards(), model.estimators_, strict=True)):
        train, held_out = split_rows(len(rows), fraction, seeds.shards[index][1])
        params = {"random_state": fitted.random_state} if "random_state" in base.get_params() else {}
        members.append(clone(base).set_params(**params).fit(X[rows][train], y[rows][train]))
        held.append((X[rows][held_out], y[rows][held_out]))
    return members, held


def _placed(client, X, y):
    arrays = client.persist([da.from_array(X, chunks=(CHUNKS, X.shape[1])), da.from_array(y, chunks=CHUNKS)])
    wait(arrays)
    return arrays


def _unique_argmax(scores):
    best = int(np.argmax(scores))
    assert np.sum(scores == scores[best]) == 1, scores  # the test data make the choice unambiguous
    return best


@pytest.mark.cluster
def test_classifier_selects_the_member_with_the_best_held_out_accuracy(client, classification):
    X, y, X_test = classification
    base = DecisionTreeClassifier(max_depth=3)
    Xd, yd = _placed(client, X, y)
    model = ShardEnsembleClassifier(base, fusion="best-model", validation_fraction=0.2, random_state=7)
    model.fit(Xd, yd)
    members, held = _hand(model, base, X, y, 7, 0.2)
    X_val, y_val = np.vstack([h[0] for h in held]), np.concatenate([h[1] for h in held])
    scores = np.array([accuracy_score(y_val, m.predict(X_val)) for m in members])
    best = _unique_argmax(scores)
    np.testing.assert_allclose(model.validation_scores_, scores, rtol=1e-12)
    np.testing.assert_allclose(model.fusion_.scores_, scores, rtol=1e-12)
    assert model.fusion_.best_index_ == best
    assert model.fusion_.best_score_ == pytest.approx(scores[best], rel=1e-12)
    np.testing.assert_array_equal(model.fusion_.weights_, np.eye(len(CHUNKS))[best])
    np.testing.assert_array_equal(model.shard_report_.to_frame()["weight"], np.eye(len(CHUNKS))[best])
    np.testing.assert_array_equal(model.predict(X_test), members[best].predict(X_test))
    np.testing.assert_allclose(model.predict_proba(X_test), members[best].predict_proba(X_test))
    with raise_if_computes(max_computes=0):
        lazy = model.predict_proba(da.from_array(X_test, chunks=20))
    np.testing.assert_allclose(lazy.compute(), members[best].predict_proba(X_test))


@pytest.mark.cluster
def test_user_scorer_is_the_row_weighted_mean_of_its_scores_on_each_shard(client, classification):
    X, y, X_test = classification
    base = LogisticRegression()
    Xd, yd = _placed(client, X, y)
    model = ShardEnsembleClassifier(base, fusion=BestModel(scoring="roc_auc"), validation_fraction=0.25)
    model.set_params(random_state=2).fit(Xd, yd)
    members, held = _hand(model, base, X, y, 2, 0.25)
    n_rows = np.array([len(h[1]) for h in held])
    per_shard = np.array([[roc_auc_score(yh, m.decision_function(Xh)) for Xh, yh in held] for m in members])
    scores = per_shard @ n_rows / n_rows.sum()
    best = _unique_argmax(scores)
    np.testing.assert_allclose(model.validation_scores_, scores, rtol=1e-12)
    assert model.fusion_.best_index_ == best
    np.testing.assert_allclose(model.decision_function(X_test), members[best].decision_function(X_test))


@pytest.mark.cluster
def test_regressor_selects_the_member_with_the_best_held_out_r2(client, regression):
    X, y, X_test = regression
    base = DecisionTreeRegressor(max_depth=4)
    Xd, yd = _placed(client, X, y)
    model = ShardEnsembleRegressor(base, fusion="best-model", random_state=4).fit(Xd, yd)
    members, held = _hand(model, base, X, y, 4, 0.1)  # 0.1: the documented default share
    X_val, y_val = np.vstack([h[0] for h in held]), np.concatenate([h[1] for h in held])
    scores = np.array([r2_score(y_val, m.predict(X_val)) for m in members])
    best = _unique_argmax(scores)
    np.testing.assert_allclose(model.validation_scores_, scores, rtol=1e-10)
    assert model.fusion_.best_index_ == best
    np.testing.assert_allclose(model.predict(X_test), members[best].predict(X_test))
    assert not hasattr(model, "predict_proba")


@pytest.mark.cluster
@pytest.mark.parametrize("scoring", [None, "neg_mean_absolute_error"])
def test_from_estimators_selects_by_scikit_learn_scores_on_x_val(client, regression, scoring):
    X, y, X_test = regression
    members = [
        LinearRegression().fit(X[rows][:: 1 + i], y[rows][:: 1 + i]) for i, rows in enumerate(_shards())
    ]
    members.append(Ridge(alpha=1e4).fit(X[:200], y[:200]))  # a poor member
    X_val, y_val = X[-150:], y[-150:]
    fusion = "best-model" if scoring is None else BestModel(scoring=scoring)
    model = ShardEnsembleRegressor.from_estimators(
        members, fusion=fusion, X_val=da.from_array(X_val, chunks=150), y_val=y_val
    )
    scorer = get_scorer("r2" if scoring is None else scoring)
    scores = np.array([scorer(m, X_val, y_val) for m in members])
    best = _unique_argmax(scores)
    np.testing.assert_allclose(model.validation_scores_, scores, rtol=1e-10)
    assert model.fusion_.best_estimator_ is members[best]
    np.testing.assert_allclose(model.predict(X_test), members[best].predict(X_test))
    fused = fuse(members, fusion, X_val=X_val, y_val=y_val)  # in memory: the same choice
    assert fused.best_index_ == best


def test_fuse_best_model_classifier_aligns_probabilities_of_a_member_missing_a_class(classification):
    X, y, X_test = classification
    y3 = np.where(X[:, 3] > 1.0, 2, y)
    two_classes = y3 < 2
    partial = LogisticRegression().fit(X[two_classes][:500], y3[two_classes][:500])
    full = LogisticRegression().fit(X[500:], y3[500:])
    fused = fuse([full, partial], "best-model", X_val=X[two_classes][500:], y_val=y3[two_classes][500:])
    best = fused.best_estimator_
    assert fused.best_index_ == 1  # on rows of two classes the two-class model wins
    assert best is partial
    proba = fused.predict_proba(X_test)
    np.testing.assert_allclose(proba[:, :2], partial.predict_proba(X_test))
    np.testing.assert_array_equal(proba[:, 2], 0.0)
    assert not hasattr(fused, "decision_function")  # it has no column for class 2


def test_ties_go_to_the_first_member_and_nan_scores_are_never_chosen():
    X = np.arange(8.0).reshape(-1, 1)
    members = [LinearRegression().fit(X, X.ravel()) for _ in range(3)]
    fused = BestModel().fit(members, FusionData(validation_scores=np.array([np.nan, 0.5, 0.5])))
    assert fused.best_index_ == 1
    with pytest.raises(ValueError, match=r"among 3 members .* no score was computed \(no rows were held out"):
        BestModel().fit(members, FusionData(validation_scores=np.full(3, np.nan)))
    assert BestModel().fit(members[:1], FusionData(validation_scores=np.full(1, np.nan))).best_index_ == 0


def test_errors_name_the_problem_before_any_computation(classification):
    X, y, _ = classification
    Xd, yd = da.from_array(X, chunks=250), da.from_array(y.astype(float), chunks=250)
    with (
        raise_if_computes(max_computes=0),
        pytest.raises(ValueError, match=r"scoring='roc_auc'\) scores decision_function or predict_proba"),
    ):
        ShardEnsembleRegressor(Ridge(), fusion=BestModel(scoring="roc_auc")).fit(Xd, yd)
    with raise_if_computes(max_computes=0), pytest.raises(ValueError, match=r"Did you mean 'roc_auc'"):
        ShardEnsembleClassifier(LogisticRegression(), fusion=BestModel(scoring="roc-auc")).fit(Xd, y)
    with pytest.raises(ValueError, match="BestModel learns from held-out rows, but validation_fraction=0"):
        ShardEnsembleClassifier(LogisticRegression(), fusion="best-model", validation_fraction=0).fit(Xd, y)
    members = [LinearRegression().fit(X, y)]
    with pytest.raises(ValueError, match=r"BestModel learns from held-out rows: pass X_val and y_val"):
        ShardEnsembleRegressor.from_estimators(members, fusion="best-model")
    with pytest.raises(
        ValueError, match=r"scores decision_function or predict_proba outputs of a classifier"
    ):
        fuse(members, BestModel(scoring="average_precision"), X_val=X, y_val=y.astype(float))


@pytest.mark.filterwarnings("ignore:Only one class is present:sklearn.exceptions.UndefinedMetricWarning")
def test_a_scorer_failing_on_a_block_says_how_to_fix_it(classification):
    X, y, _ = classification
    order = np.argsort(y, kind="stable")  # sorted labels: blocks of held-out rows of one class
    members = [LogisticRegression().fit(X, y)]
    with pytest.raises(
        ValueError, match=r"block of 250 held-out rows \(labels \[0\]\).*score is nan.*stratified"
    ):
        ShardEnsembleClassifier.from_estimators(
            members,
            fusion=BestModel(scoring="roc_auc"),
            X_val=da.from_array(X[order], chunks=250),
            y_val=y[order],
        )


def test_best_model_ensemble_survives_save_and_load(tmp_path, classification):
    X, y, X_test = classification
    model = ShardEnsembleClassifier(DecisionTreeClassifier(max_depth=2), fusion="best-model", random_state=0)
    model.fit(da.from_array(X, chunks=(CHUNKS, 4)), y)
    save(model, tmp_path / "best.daskml")
    loaded = load(tmp_path / "best.daskml")
    assert loaded.fusion_.best_index_ == model.fusion_.best_index_
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    np.testing.assert_array_equal(loaded.validation_scores_, model.validation_scores_)


_WEIGHTS = "the held-out rows are a random share of the rows: repeating rows changes which are held out"


@parametrize_with_checks(
    [
        ShardEnsembleClassifier(LogisticRegression(), fusion="best-model", random_state=0),
        ShardEnsembleRegressor(Ridge(), fusion="best-model", random_state=0),
    ],
    expected_failed_checks=lambda estimator: {
        "check_sample_weight_equivalence_on_dense_data": _WEIGHTS,
        "check_sample_weight_equivalence_on_sparse_data": _WEIGHTS,
    },
)
def test_best_model_ensembles_pass_scikit_learn_checks(estimator, check):
    check(estimator)
