"""Fusion strategies on numpy members: each one against a hand-built numpy/scikit-learn reference."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeCV
from sklearn.naive_bayes import GaussianNB
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

from daskml_lab.base import InvalidParameterError
from daskml_lab.fusion import (
    ForestUnion,
    FusionData,
    HardVoting,
    ParameterAveraging,
    SoftVoting,
    Stacking,
    WeightedAveraging,
)
from daskml_lab.fusion._base import (
    aligned_proba,
    class_index,
    combine_score_stats,
    label_index,
    member_score_stats,
    scores_from_stats,
)

from .conftest import default_final_classifier

CLASSES = np.array([0, 1, 2])


@pytest.fixture(scope="module")
def multiclass():
    """Three members: one trained on all classes, one on {0, 1}, one on {1, 2}; plus test rows."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.5, 0.5])
    parts = [np.arange(0, 100), np.flatnonzero(y[100:200] < 2) + 100, np.flatnonzero(y[200:] > 0) + 200]
    members = [LogisticRegression().fit(X[p], y[p]) for p in parts]
    X_test = rng.normal(size=(50, 4))
    return members, X_test, [len(p) for p in parts]


def _hand_proba(members, X, weights):
    total = np.zeros((X.shape[0], 3))
    for member, weight in zip(members, weights, strict=True):
        proba = np.zeros((X.shape[0], 3))
        proba[:, member.classes_] = member.predict_proba(X)  # classes are 0..2, so labels are columns
        total += weight * proba
    return total


# ---------------------------------------------------------------------------------------------------------
# voting


def test_soft_voting_is_the_mean_of_aligned_probabilities(multiclass):
    members, X_test, _ = multiclass
    fused = SoftVoting().fit(members)
    expected = _hand_proba(members, X_test, [1 / 3] * 3)
    np.testing.assert_allclose(fused.predict_proba(X_test), expected, rtol=1e-12)
    np.testing.assert_array_equal(fused.predict(X_test), np.argmax(expected, axis=1))
    np.testing.assert_array_equal(fused.classes_, CLASSES)
    np.testing.assert_allclose(fused.weights_, [1 / 3] * 3)


def test_soft_voting_decision_function_needs_members_with_all_classes(multiclass):
    members, X_test, _ = multiclass
    with pytest.raises(AttributeError) as info:
        SoftVoting().fit(members).decision_function(X_test)
    assert "members [1, 2] were trained on fewer" in str(info.value.__cause__)
    full = [members[0], clone(members[0]).fit(X_test, np.arange(50) % 3)]
    fused = SoftVoting().fit(full)
    expected = (full[0].decision_function(X_test) + full[1].decision_function(X_test)) / 2
    np.testing.assert_allclose(fused.decision_function(X_test), expected, rtol=1e-12)


def test_soft_voting_of_regressors_is_the_mean_prediction():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    members = [LinearRegression().fit(X[i::3], X[i::3] @ [1.0, 2.0, 3.0] + i) for i in range(3)]
    fused = SoftVoting().fit(members)
    expected = np.mean([m.predict(X) for m in members], axis=0)
    np.testing.assert_allclose(fused.predict(X), expected, rtol=1e-12)
    assert not hasattr(fused, "predict_proba")
    assert not hasattr(fused, "classes_")


def test_hard_voting_majority_and_tie_rule():
    X = np.arange(6, dtype=float).reshape(-1, 1)
    votes = [[0, 0, 1, 2, 2, 1], [0, 1, 1, 2, 1, 0], [1, 2, 1, 0, 0, 2]]
    members = [DecisionTreeClassifier().fit(X, v) for v in votes]
    fused = HardVoting().fit(members)
    # rows: (0,0,1)->0; (0,1,2) tie->0; (1,1,1)->1; (2,2,0)->2; (2,1,0) tie->0; (1,0,2) tie->0
    np.testing.assert_array_equal(fused.predict(X), [0, 0, 1, 2, 0, 0])
    assert not hasattr(fused, "predict_proba")
    assert not hasattr(fused, "decision_function")


def test_hard_voting_works_without_predict_proba_and_with_string_labels():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(90, 2))
    y = np.where(X[:, 0] > 0, "yes", "no")
    members = [LinearSVC().fit(X[i::3], y[i::3]) for i in range(3)]
    fused = HardVoting().fit(members)
    predictions = np.array([m.predict(X) for m in members])
    expected = np.where((predictions == "yes").sum(axis=0) >= 2, "yes", "no")
    np.testing.assert_array_equal(fused.predict(X), expected)


def test_hard_voting_rejects_regression():
    members = [LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])]
    with pytest.raises(
        ValueError, match="HardVoting counts votes for class labels, so it cannot fuse regressors"
    ):
        HardVoting().fit(members)


def test_soft_voting_needs_predict_proba():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    members = [LinearSVC().fit(X, [0, 0, 1, 1])]
    with pytest.raises(ValueError, match=r"SoftVoting averages predict_proba, which members 0 \(LinearSVC\)"):
        SoftVoting().fit(members)
    with pytest.raises(
        ValueError, match="SoftVoting averages class probabilities, but LinearSVC has no predict_proba"
    ):
        SoftVoting().check_base_estimator(LinearSVC(), classification=True)


@pytest.mark.property
@settings(max_examples=15, deadline=None)
@given(st.permutations([0, 1, 2]))
def test_voting_ignores_member_order(multiclass, order):
    members, X_test, _ = multiclass
    shuffled = [members[i] for i in order]
    np.testing.assert_allclose(
        SoftVoting().fit(shuffled).predict_proba(X_test),
        SoftVoting().fit(members).predict_proba(X_test),
        rtol=1e-12,
    )
    np.testing.assert_array_equal(
        HardVoting().fit(shuffled).predict(X_test), HardVoting().fit(members).predict(X_test)
    )


# ---------------------------------------------------------------------------------------------------------
# weighted averaging


@pytest.mark.property
@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(0.1, 10.0), min_size=3, max_size=3))
def test_uniform_weights_give_the_plain_mean_and_user_weights_are_normalised(multiclass, raw):
    members, X_test, _ = multiclass
    uniform = WeightedAveraging(weights="uniform").fit(members)
    np.testing.assert_allclose(uniform.predict_proba(X_test), SoftVoting().fit(members).predict_proba(X_test))
    given_weights = WeightedAveraging(weights=raw).fit(members)
    expected = np.asarray(raw) / np.sum(raw)
    np.testing.assert_allclose(given_weights.weights_, expected)
    np.testing.assert_allclose(
        given_weights.predict_proba(X_test), _hand_proba(members, X_test, expected), rtol=1e-10
    )


def test_size_weights(multiclass):
    members, X_test, sizes = multiclass
    fused = WeightedAveraging().fit(members, FusionData(n_samples=np.array(sizes)))
    expected = np.asarray(sizes) / np.sum(sizes)
    np.testing.assert_allclose(fused.weights_, expected)
    np.testing.assert_allclose(
        fused.predict_proba(X_test), _hand_proba(members, X_test, expected), rtol=1e-12
    )
    with pytest.raises(ValueError, match="weights='size' needs the number of training rows of every member"):
        WeightedAveraging().fit(members)


def test_weighted_vote_with_method_predict(multiclass):
    members, X_test, _ = multiclass
    fused = WeightedAveraging(weights=[0.5, 0.3, 0.2], method="predict").fit(members)
    votes = np.zeros((50, 3))
    for member, weight in zip(members, [0.5, 0.3, 0.2], strict=True):
        votes[np.arange(50), member.predict(X_test)] += weight
    np.testing.assert_array_equal(fused.predict(X_test), np.argmax(votes, axis=1))
    with pytest.raises(AttributeError):
        fused.predict_proba(X_test)


def test_validation_weights_follow_the_documented_rule(multiclass):
    members, _X_test, _ = multiclass
    scores = np.array([0.9, 0.6, 0.5])
    data = FusionData(validation_scores=scores, baseline_score=0.4)
    fused = WeightedAveraging(weights="validation").fit(members, data)
    np.testing.assert_allclose(fused.weights_, (scores - 0.4) / np.sum(scores - 0.4))
    squared = WeightedAveraging(weights="validation", power=2.0).fit(members, data)
    np.testing.assert_allclose(squared.weights_, (scores - 0.4) ** 2 / np.sum((scores - 0.4) ** 2))
    below = FusionData(validation_scores=np.array([0.9, 0.3, 0.5]), baseline_score=0.5)
    np.testing.assert_allclose(
        WeightedAveraging(weights="validation").fit(members, below).weights_, [1, 0, 0]
    )


def test_validation_weights_fall_back_to_uniform(multiclass, caplog):
    members, _, _ = multiclass
    data = FusionData(validation_scores=np.array([0.3, 0.3, 0.2]), baseline_score=0.5)
    with caplog.at_level(logging.WARNING, logger="daskml_lab.fusion._weighted"):
        fused = WeightedAveraging(weights="validation").fit(members, data)
    np.testing.assert_allclose(fused.weights_, [1 / 3] * 3)
    assert "No member scores above the constant-prediction baseline" in caplog.text


def test_validation_weights_need_scores(multiclass):
    members, _, _ = multiclass
    with pytest.raises(
        ValueError, match="needs each member's score on held-out rows, but none were computed"
    ):
        WeightedAveraging(weights="validation").fit(members)
    assert WeightedAveraging(weights="validation").requires_held_out()
    assert not WeightedAveraging().requires_held_out()


def test_user_weights_per_shard_skip_empty_shards(multiclass):
    members, _X_test, _ = multiclass
    data = FusionData(shard_index=np.array([0, 2, 3]), n_shards=4)
    fused = WeightedAveraging(weights=[1.0, 5.0, 2.0, 1.0]).fit(members, data)
    np.testing.assert_allclose(fused.weights_, [0.25, 0.5, 0.25])


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, 2.0], r"weights must be a 1-D array of length 3; got shape \(2,\)"),
        ([1.0, -1.0, 1.0], "weights must be finite and non-negative"),
        ([0.0, 0.0, 0.0], "The given weights sum to 0.0"),
    ],
)
def test_user_weight_errors(multiclass, weights, message):
    members, _, _ = multiclass
    with pytest.raises(ValueError, match=message):
        WeightedAveraging(weights=weights).fit(members)


def test_weighted_parameter_errors(multiclass):
    members, _, _ = multiclass
    with pytest.raises(InvalidParameterError, match="The 'weights' parameter of WeightedAveraging must be"):
        WeightedAveraging(weights="best").fit(members)
    with pytest.raises(InvalidParameterError, match="The 'power' parameter of WeightedAveraging must be"):
        WeightedAveraging(power=0).fit(members)


def test_weighted_regression_by_hand():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 2))
    members = [Ridge(alpha=a).fit(X, X @ [1.0, -1.0] + a) for a in (0.1, 1.0)]
    fused = WeightedAveraging(weights=[1, 3]).fit(members)
    np.testing.assert_allclose(fused.predict(X), 0.25 * members[0].predict(X) + 0.75 * members[1].predict(X))


# ---------------------------------------------------------------------------------------------------------
# stacking


def test_stacking_multiclass_by_hand(multiclass):
    members, X_test, _ = multiclass
    rng = np.random.default_rng(4)
    X_val = rng.normal(size=(120, 4))
    y_val = np.digitize(X_val[:, 0] + 0.5 * X_val[:, 1], [-0.5, 0.5])
    stacking = Stacking()
    meta = stacking.held_out_features(members, X_val, classes=CLASSES)
    hand_meta = np.hstack([_hand_proba([m], X_val, [1.0]) for m in members])
    np.testing.assert_allclose(meta, hand_meta)
    fused = stacking.fit(members, FusionData(meta_features=meta, meta_target=y_val))
    final = default_final_classifier().fit(hand_meta, y_val)
    hand_test = np.hstack([_hand_proba([m], X_test, [1.0]) for m in members])
    np.testing.assert_allclose(fused.predict_proba(X_test), final.predict_proba(hand_test), rtol=1e-10)
    np.testing.assert_array_equal(fused.predict(X_test), final.predict(hand_test))
    np.testing.assert_allclose(
        fused.decision_function(X_test), final.decision_function(hand_test), rtol=1e-10
    )
    assert np.all(np.isnan(fused.weights_))


def test_stacking_binary_keeps_one_column_per_member_and_passthrough():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    members = [GaussianNB().fit(X[:100], y[:100]), GaussianNB().fit(X[100:], y[100:])]
    stacking = Stacking(final_estimator=LogisticRegression(C=0.5), passthrough=True)
    meta = stacking.held_out_features(members, X, classes=np.array([0, 1]))
    hand = np.column_stack([members[0].predict_proba(X)[:, 1], members[1].predict_proba(X)[:, 1], X])
    np.testing.assert_allclose(meta, hand)
    fused = stacking.fit(members, FusionData(meta_features=meta, meta_target=y))
    np.testing.assert_allclose(
        fused.predict_proba(X), LogisticRegression(C=0.5).fit(hand, y).predict_proba(hand)
    )


def test_stacking_with_predicted_labels():
    X = np.linspace(-1, 1, 40).reshape(-1, 1)
    y = (X[:, 0] > 0).astype(int)
    members = [LinearSVC().fit(X, y), LinearSVC().fit(X[::2], y[::2])]
    stacking = Stacking()
    meta = stacking.held_out_features(members, X, classes=np.array([0, 1]))
    np.testing.assert_array_equal(meta, np.column_stack([m.predict(X) for m in members]))
    fused = stacking.fit(members, FusionData(meta_features=meta, meta_target=y))
    assert fused.method_ == "predict"
    with pytest.raises(ValueError, match="Stacking\\(method='predict_proba'\\) needs predict_proba"):
        Stacking(method="predict_proba").check_base_estimator(LinearSVC(), classification=True)


def test_stacking_regression_by_hand():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(80, 2))
    y = X @ [2.0, 1.0]
    members = [LinearRegression().fit(X[:40], y[:40] + 1), Ridge(alpha=10).fit(X[40:], y[40:])]
    stacking = Stacking()
    meta = stacking.held_out_features(members, X, classes=None)
    fused = stacking.fit(members, FusionData(meta_features=meta, meta_target=y))
    hand = RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(np.column_stack([m.predict(X) for m in members]), y)
    np.testing.assert_allclose(
        fused.predict(X), hand.predict(np.column_stack([m.predict(X) for m in members]))
    )
    assert not hasattr(fused, "predict_proba")


def test_stacking_needs_held_out_rows(multiclass):
    members, _, _ = multiclass
    with pytest.raises(ValueError, match="Stacking trains its final estimator on held-out rows"):
        Stacking().fit(members)
    with pytest.raises(ValueError, match="meta_features has 2 rows but meta_target has 3"):
        Stacking().fit(members, FusionData(meta_features=np.zeros((2, 6)), meta_target=np.zeros(3)))


def test_stacking_sample_weight_needs_a_final_estimator_accepting_it(multiclass):
    from sklearn.neighbors import KNeighborsClassifier

    members, _X_test, _ = multiclass
    data = FusionData(
        meta_features=np.zeros((6, 9)), meta_target=np.arange(6) % 3, meta_sample_weight=np.ones(6)
    )
    with pytest.raises(
        ValueError, match="the final estimator KNeighborsClassifier does not accept sample_weight"
    ):
        Stacking(final_estimator=KNeighborsClassifier(1)).fit(members, data)


# ---------------------------------------------------------------------------------------------------------
# parameter averaging


def test_parameter_averaging_logistic_by_hand():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 3))
    y = np.digitize(X[:, 0], [-0.4, 0.4])
    members = [LogisticRegression().fit(X[i::3], y[i::3]) for i in range(3)]
    sizes = np.array([100, 100, 100])
    fused = ParameterAveraging().fit(members, FusionData(n_samples=sizes))
    model = fused.fused_estimator_
    assert type(model) is LogisticRegression
    np.testing.assert_allclose(model.coef_, np.mean([m.coef_ for m in members], axis=0))
    np.testing.assert_allclose(model.intercept_, np.mean([m.intercept_ for m in members], axis=0))
    hand = clone(members[0])
    hand.coef_, hand.intercept_, hand.classes_ = model.coef_, model.intercept_, members[0].classes_
    np.testing.assert_array_equal(fused.predict(X), hand.predict(X))
    np.testing.assert_allclose(fused.predict_proba(X), hand.predict_proba(X))
    np.testing.assert_allclose(fused.decision_function(X), hand.decision_function(X))
    # the members are left untouched
    assert not np.allclose(members[0].coef_, model.coef_)


def test_parameter_averaging_ridge_weighted_by_size():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(100, 2))
    members = [Ridge().fit(X[:70], X[:70] @ [1.0, 2.0] + 1), Ridge().fit(X[70:], X[70:] @ [3.0, 0.0] - 1)]
    fused = ParameterAveraging().fit(members, FusionData(n_samples=np.array([70, 30])))
    np.testing.assert_allclose(fused.fused_estimator_.coef_, 0.7 * members[0].coef_ + 0.3 * members[1].coef_)
    np.testing.assert_allclose(
        fused.fused_estimator_.intercept_, 0.7 * members[0].intercept_ + 0.3 * members[1].intercept_
    )
    # linear in the parameters: the averaged model predicts the weighted mean of the predictions
    np.testing.assert_allclose(fused.predict(X), 0.7 * members[0].predict(X) + 0.3 * members[1].predict(X))
    uniform = ParameterAveraging(weights="uniform").fit(members)
    np.testing.assert_allclose(uniform.weights_, [0.5, 0.5])
    assert not hasattr(uniform, "predict_proba")


def test_parameter_averaging_errors(multiclass):
    members, _, _ = multiclass
    with pytest.raises(ValueError, match=r"members 1, 2 saw only \[0, 1\]"):
        ParameterAveraging(weights="uniform").fit(members)
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = [0, 0, 1, 1]
    with pytest.raises(
        TypeError, match="ParameterAveraging needs linear models exposing coef_ and intercept_"
    ):
        ParameterAveraging(weights="uniform").fit([DecisionTreeClassifier().fit(X, y)])
    with pytest.raises(TypeError, match="member 0 is a LogisticRegression but member 1 is a LinearSVC"):
        ParameterAveraging(weights="uniform").fit([LogisticRegression().fit(X, y), LinearSVC().fit(X, y)])
    wide = LogisticRegression().fit(np.hstack([X, X]), y)
    with pytest.raises(ValueError, match="The members' coef_/intercept_ shapes differ"):
        ParameterAveraging(weights="uniform").fit([LogisticRegression().fit(X, y), wide])


# ---------------------------------------------------------------------------------------------------------
# forest union


def test_forest_union_predicts_the_mean_of_all_tree_probabilities():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(240, 4))
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])
    members = [
        RandomForestClassifier(n_estimators=4 + i, random_state=i).fit(X[i::3], y[i::3]) for i in range(3)
    ]
    fused = ForestUnion().fit(members)
    forest = fused.fused_estimator_
    assert type(forest) is RandomForestClassifier
    assert forest.n_estimators == len(forest.estimators_) == 15
    trees = [tree for m in members for tree in m.estimators_]
    hand = np.mean([tree.predict_proba(X.astype(np.float32)) for tree in trees], axis=0)
    np.testing.assert_allclose(fused.predict_proba(X), hand, rtol=1e-12)
    np.testing.assert_array_equal(fused.predict(X), np.argmax(hand, axis=1))
    np.testing.assert_allclose(fused.weights_, [4 / 15, 5 / 15, 6 / 15])
    assert forest.n_features_in_ == 4
    assert forest.n_outputs_ == 1
    assert forest.n_classes_ == 3


def test_forest_union_of_single_trees_and_regressors():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int)
    trees = [ExtraTreeClassifier(random_state=i).fit(X[i::2], y[i::2]) for i in range(2)]
    forest = ForestUnion().fit(trees).fused_estimator_
    assert type(forest) is ExtraTreesClassifier
    hand = np.mean([t.predict_proba(X) for t in trees], axis=0)
    np.testing.assert_allclose(forest.predict_proba(X), hand)
    regressors = [
        RandomForestRegressor(n_estimators=3, random_state=i).fit(X[i::2], X[i::2, 0]) for i in range(2)
    ]
    fused = ForestUnion().fit(regressors)
    hand = np.mean([t.predict(X.astype(np.float32)) for m in regressors for t in m.estimators_], axis=0)
    np.testing.assert_allclose(fused.predict(X), hand, rtol=1e-12)
    assert not hasattr(fused, "predict_proba")


def test_forest_union_errors(multiclass):
    members, _, _ = multiclass
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    with pytest.raises(TypeError, match="member 0 is a LogisticRegression"):
        ForestUnion().fit(members[:1])
    partial = [RandomForestClassifier(2).fit(X, [0, 1, 2, 2]), RandomForestClassifier(2).fit(X, [0, 0, 1, 1])]
    with pytest.raises(ValueError, match=r"members 1 saw only \[0, 1\]"):
        ForestUnion().fit(partial)
    with pytest.raises(ValueError, match="ForestUnion pools the trees of RandomForest"):
        ForestUnion().check_base_estimator(GaussianNB(), classification=True)
    wide = RandomForestClassifier(2).fit(np.hstack([X, X]), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="different numbers of features"):
        ForestUnion().fit([RandomForestClassifier(2).fit(X, [0, 0, 1, 1]), wide])


# ---------------------------------------------------------------------------------------------------------
# protocol helpers and member checks


def test_alignment_helpers():
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], ["b", "b", "d", "d"])
    classes = np.array(["a", "b", "c", "d"])
    np.testing.assert_array_equal(class_index(model, classes), [1, 3])
    proba = aligned_proba(model, class_index(model, classes), np.array([[1.5]]), 4)
    np.testing.assert_allclose(proba[0, [0, 2]], 0.0)
    np.testing.assert_allclose(proba.sum(), 1.0)
    with pytest.raises(ValueError, match=r"trained on the classes \['b', 'd'\], which are not all among"):
        class_index(model, np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"Found labels \['z'\] that are not among the classes"):
        label_index(np.array(["a", "z"]), classes)
    with pytest.raises(ValueError, match="cannot be compared with the classes"):
        label_index(np.array([1, 2], dtype=object), classes.astype(object))


def test_score_stats_merge_equals_direct_scores():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(90, 2))
    y = X @ [1.0, 1.0] + rng.normal(size=90)
    members = [LinearRegression().fit(X[:30], y[:30]), Ridge(alpha=100).fit(X, y)]
    weight = rng.uniform(0.5, 2, size=90)
    parts = [
        member_score_stats(members, X[s], y[s], weight[s], classes=None)
        for s in (slice(0, 20), slice(20, 90))
    ]
    scores, baseline = scores_from_stats(combine_score_stats([*parts, None]), 2)
    from sklearn.metrics import r2_score

    expected = [r2_score(y, m.predict(X), sample_weight=weight) for m in members]
    np.testing.assert_allclose(scores, expected, rtol=1e-10)
    assert baseline == 0.0
    assert scores_from_stats(None, 2)[1] is None


def test_member_checks():
    with pytest.raises(
        TypeError, match="SoftVoting fuses a list of fitted estimators; got LogisticRegression"
    ):
        SoftVoting().fit(LogisticRegression())
    with pytest.raises(ValueError, match="SoftVoting needs at least one fitted estimator; got an empty list"):
        SoftVoting().fit([])
    with pytest.raises(TypeError, match="member 0 is a str"):
        SoftVoting().fit(["model"])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match=r"Member 0 \(LogisticRegression\) is not fitted"):
        SoftVoting().fit([LogisticRegression()])


def test_fusions_are_parameter_holders():
    stacking = Stacking(final_estimator=Ridge(alpha=2.0), passthrough=True)
    params = stacking.get_params(deep=True)
    assert params["final_estimator__alpha"] == 2.0
    copy = clone(stacking).set_params(final_estimator__alpha=3.0)
    assert stacking.final_estimator.alpha == 2.0
    assert copy.final_estimator.alpha == 3.0
    assert repr(WeightedAveraging(weights="validation")) == "WeightedAveraging(weights='validation')"


def test_remaining_fusion_messages(multiclass):
    members, X_test, _ = multiclass
    with pytest.raises(ValueError, match=r"n_samples must hold one count per member \(3\); got shape \(2,\)"):
        WeightedAveraging().fit(members, FusionData(n_samples=np.array([1, 2])))
    # the held-out rows of the final estimator held two classes only: no decision_function
    meta = np.random.default_rng(0).uniform(size=(20, 9))
    fused = Stacking().fit(members, FusionData(meta_features=meta, meta_target=np.arange(20) % 2))
    with pytest.raises(AttributeError) as info:
        fused.decision_function(X_test)
    assert "the held-out rows held only [0, 1]" in str(info.value.__cause__)
    assert fused.predict_proba(X_test)[:, 2].max() == 0.0
    X = np.arange(8.0).reshape(-1, 1)
    two_outputs = RandomForestRegressor(n_estimators=2).fit(X, np.column_stack([X[:, 0], -X[:, 0]]))
    with pytest.raises(ValueError, match="ForestUnion supports single-output members only"):
        ForestUnion().fit([two_outputs])
