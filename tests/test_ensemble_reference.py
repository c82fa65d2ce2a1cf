"""ShardEnsemble* against references built by hand with scikit-learn on numpy: same shards, same models."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.metrics import accuracy_score
from sklearn.tree import DecisionTreeClassifier

from daskml_lab._runtime.seeding import root_entropy, shard_seeds
from daskml_lab.ensemble import ShardEnsembleClassifier, ShardEnsembleRegressor
from daskml_lab.ensemble._training import split_rows
from daskml_lab.fusion import ParameterAveraging, Stacking, WeightedAveraging

CHUNKS = (150, 250, 200, 100)


@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(sum(CHUNKS), 5))
    y = np.digitize(X[:, 0] + X[:, 1] - 0.5 * X[:, 2] + 0.3 * rng.normal(size=len(X)), [-0.7, 0.7])
    X_test = rng.normal(size=(120, 5))
    return X, y, X_test


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(sum(CHUNKS), 4))
    y = X @ np.array([1.5, -2.0, 0.0, 0.7]) + 3.0 + 0.2 * rng.normal(size=len(X))
    return X, y, rng.normal(size=(80, 4))


def _shards(n_rows_per_shard):
    bounds = np.cumsum((0, *n_rows_per_shard))
    return [np.arange(bounds[i], bounds[i + 1]) for i in range(len(n_rows_per_shard))]


def _hand_models(model, base, X, y):
    """Shard models refitted by hand on the same rows, with the random_state each shard model got."""
    hand = []
    for rows, fitted in zip(_shards(CHUNKS), model.estimators_, strict=True):
        params = {"random_state": fitted.random_state} if "random_state" in base.get_params() else {}
        hand.append(clone(base).set_params(**params).fit(X[rows], y[rows]))
    return hand


def _aligned(member, X, classes):
    out = np.zeros((X.shape[0], len(classes)))
    out[:, np.searchsorted(classes, member.classes_)] = member.predict_proba(X)
    return out


@pytest.mark.parametrize("fusion", ["soft-voting", "hard-voting", "weighted"])
def test_voting_and_size_weights_match_hand_reference(classification, fusion):
    X, y, X_test = classification
    base = LogisticRegression()
    model = ShardEnsembleClassifier(base, fusion=fusion).fit(da.from_array(X, chunks=(CHUNKS, 5)), y)
    hand = _hand_models(model, base, X, y)
    for mine, theirs in zip(model.estimators_, hand, strict=True):
        np.testing.assert_array_equal(mine.coef_, theirs.coef_)
    classes = np.array([0, 1, 2])
    if fusion == "hard-voting":
        votes = np.zeros((len(X_test), 3))
        for member in hand:
            votes[np.arange(len(X_test)), member.predict(X_test)] += 1
        np.testing.assert_array_equal(model.predict(X_test), np.argmax(votes, axis=1))
        return
    weights = np.full(4, 0.25) if fusion == "soft-voting" else np.asarray(CHUNKS) / sum(CHUNKS)
    expected = sum(w * _aligned(m, X_test, classes) for w, m in zip(weights, hand, strict=True))
    np.testing.assert_allclose(model.predict_proba(X_test), expected, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X_test), np.argmax(expected, axis=1))
    np.testing.assert_allclose(model.shard_report_.to_frame()["weight"], weights)
    expected_decision = sum(w * m.decision_function(X_test) for w, m in zip(weights, hand, strict=True))
    np.testing.assert_allclose(model.decision_function(X_test), expected_decision, rtol=1e-12)


def _held_out_split(random_state, base, n_shards=4, fraction=0.2):
    seeds = shard_seeds(root_entropy(random_state, base), n_shards)
    return [split_rows(n, fraction, seeds.shards[i][1]) for i, n in enumerate(CHUNKS)]


def test_validation_weights_match_hand_reference(classification):
    X, y, X_test = classification
    base = DecisionTreeClassifier(max_depth=3)
    fusion = WeightedAveraging(weights="validation")
    model = ShardEnsembleClassifier(base, fusion=fusion, validation_fraction=0.2, random_state=3)
    model.fit(da.from_array(X, chunks=(CHUNKS, 5)), y)
    splits = _held_out_split(3, base)
    hand, held_X, held_y = [], [], []
    for rows, (train, held_out), fitted in zip(_shards(CHUNKS), splits, model.estimators_, strict=True):
        hand.append(
            clone(base).set_params(random_state=fitted.random_state).fit(X[rows][train], y[rows][train])
        )
        held_X.append(X[rows][held_out])
        held_y.append(y[rows][held_out])
    X_val, y_val = np.vstack(held_X), np.concatenate(held_y)
    scores = np.array([accuracy_score(y_val, m.predict(X_val)) for m in hand])
    baseline = np.bincount(y_val).max() / len(y_val)
    skill = np.clip(scores - baseline, 0, None)
    np.testing.assert_allclose(model.fusion_.weights_, skill / skill.sum(), rtol=1e-12)
    report = model.shard_report_.to_frame()
    np.testing.assert_allclose(report["validation_score"], scores, rtol=1e-12)
    np.testing.assert_array_equal(report["n_held_out"], [len(h) for _, h in splits])
    expected = sum(
        w * _aligned(m, X_test, np.arange(3)) for w, m in zip(skill / skill.sum(), hand, strict=True)
    )
    np.testing.assert_allclose(model.predict_proba(X_test), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("passthrough", "weighted", "refit"),
    [(False, False, True), (False, False, False), (True, False, True), (False, True, True)],
)
def test_stacking_matches_hand_reference(classification, passthrough, weighted, refit):
    X, y, X_test = classification
    base = LogisticRegression()
    weight = np.random.default_rng(9).uniform(0.2, 3.0, size=len(y)) if weighted else None
    fusion = Stacking(LogisticRegression(), passthrough=passthrough, refit_members=refit)
    model = ShardEnsembleClassifier(base, fusion=fusion, validation_fraction=0.2, random_state=5).fit(
        da.from_array(X, chunks=(CHUNKS, 5)), y, sample_weight=weight
    )
    splits = _held_out_split(5, base)
    pairs = list(zip(_shards(CHUNKS), splits, strict=True))
    # the models of the training rows give the held-out meta-features ...
    held_out_models = [
        clone(base).fit(X[r][t], y[r][t], sample_weight=None if weight is None else weight[r][t])
        for r, (t, _) in pairs
    ]
    # ... and, with refit_members, the members refitted on their whole shard predict
    hand = (
        [clone(base).fit(X[r], y[r], sample_weight=None if weight is None else weight[r]) for r, _ in pairs]
        if refit
        else held_out_models
    )
    for member, expected in zip(model.estimators_, hand, strict=True):
        np.testing.assert_allclose(member.coef_, expected.coef_, rtol=1e-10)
    expected_rows = [len(r) if refit else len(t) for r, (t, _) in pairs]
    np.testing.assert_array_equal(model.shard_report_.to_frame()["n_train"], expected_rows)
    held_rows = [(X[r][h], y[r][h], None if weight is None else weight[r][h]) for r, (_, h) in pairs]
    y_val = np.concatenate([target for _, target, _ in held_rows])
    w_val = None if weight is None else np.concatenate([w for _, _, w in held_rows])

    def meta(members, rows):
        features = np.hstack([_aligned(m, rows, np.arange(3)) for m in members])
        return np.hstack([features, rows]) if passthrough else features

    def evaluators(shard):
        # the held-out rows of shard s: its own member through the model of its training rows, every other
        # member (which never saw them) as the fused model uses it
        return [held_out_models[t] if t == shard else hand[t] for t in range(len(hand))]

    meta_val = np.vstack([meta(evaluators(s), rows) for s, (rows, _, _) in enumerate(held_rows)])
    final = LogisticRegression().fit(meta_val, y_val, sample_weight=w_val)
    expected_proba = final.predict_proba(meta(hand, X_test))
    np.testing.assert_allclose(model.predict_proba(X_test), expected_proba, rtol=1e-8)
    np.testing.assert_array_equal(model.predict(X_test), final.predict(meta(hand, X_test)))
    if weighted:  # validation scores are weighted accuracies, of models that never saw the rows
        expected = [
            np.average(
                np.concatenate([evaluators(s)[t].predict(rows) for s, (rows, _, _) in enumerate(held_rows)])
                == y_val,
                weights=w_val,
            )
            for t in range(len(hand))
        ]
        np.testing.assert_allclose(model.shard_report_.to_frame()["validation_score"], expected, rtol=1e-12)


def test_parameter_averaging_matches_hand_reference(classification):
    X, y, X_test = classification
    base = LogisticRegression(C=0.5)
    model = ShardEnsembleClassifier(base, fusion="parameter-averaging").fit(
        da.from_array(X, chunks=(CHUNKS, 5)), y
    )
    hand = _hand_models(model, base, X, y)
    weights = np.asarray(CHUNKS) / sum(CHUNKS)
    averaged = model.fusion_.fused_estimator_
    assert type(averaged) is LogisticRegression
    np.testing.assert_allclose(
        averaged.coef_, sum(w * m.coef_ for w, m in zip(weights, hand, strict=True)), rtol=1e-12
    )
    np.testing.assert_allclose(
        averaged.intercept_, sum(w * m.intercept_ for w, m in zip(weights, hand, strict=True)), rtol=1e-12
    )
    np.testing.assert_array_equal(model.predict(X_test), averaged.predict(X_test))
    np.testing.assert_allclose(model.predict_proba(X_test), averaged.predict_proba(X_test))


def test_forest_union_matches_hand_reference(classification):
    X, y, X_test = classification
    base = RandomForestClassifier(n_estimators=5, max_depth=4)
    model = ShardEnsembleClassifier(base, fusion="forest-union", random_state=7)
    model.fit(da.from_array(X, chunks=(CHUNKS, 5)), y)
    hand = _hand_models(model, base, X, y)
    trees = [tree for member in hand for tree in member.estimators_]
    expected = np.mean([tree.predict_proba(X_test.astype(np.float32)) for tree in trees], axis=0)
    np.testing.assert_allclose(model.predict_proba(X_test), expected, rtol=1e-12)
    forest = model.fusion_.fused_estimator_
    assert isinstance(forest, RandomForestClassifier)
    assert len(forest.estimators_) == 20
    np.testing.assert_array_equal(forest.predict(X_test), model.predict(X_test))
    # every shard got its own seed
    assert len({m.random_state for m in model.estimators_}) == 4


@pytest.mark.parametrize(
    "fusion", ["soft-voting", "weighted", "parameter-averaging", "stacking", "forest-union"]
)
def test_regression_fusions_match_hand_reference(regression, fusion):
    X, y, X_test = regression
    base = (
        RandomForestRegressor(n_estimators=4, max_depth=3) if fusion == "forest-union" else Ridge(alpha=0.5)
    )
    model = ShardEnsembleRegressor(base, fusion=fusion, random_state=11)
    model.fit(da.from_array(X, chunks=(CHUNKS, 4)), y)
    weights = np.asarray(CHUNKS) / sum(CHUNKS)
    if fusion == "stacking":  # default: 0.2 held out, members refitted on their whole shard, RidgeCV
        pairs = list(zip(_shards(CHUNKS), _held_out_split(11, base), strict=True))
        held_out_models = [clone(base).fit(X[r][t], y[r][t]) for r, (t, _) in pairs]
        hand = [clone(base).fit(X[r], y[r]) for r, _ in pairs]
        y_val = np.concatenate([y[r][h] for r, (_, h) in pairs])
        # held-out rows of shard s: its own member's model of the training rows, the others refitted
        meta_val = np.vstack(
            [
                np.column_stack(
                    [(held_out_models[t] if t == s else m).predict(X[r][h]) for t, m in enumerate(hand)]
                )
                for s, (r, (_, h)) in enumerate(pairs)
            ]
        )
        final = RidgeCV(alphas=np.logspace(-3, 3, 7))
        final.fit(meta_val, y_val)
        expected = final.predict(np.column_stack([m.predict(X_test) for m in hand]))
    else:
        hand = _hand_models(model, base, X, y)
        if fusion == "forest-union":
            trees = [t for m in hand for t in m.estimators_]
            expected = np.mean([t.predict(X_test.astype(np.float32)) for t in trees], axis=0)
        elif fusion == "soft-voting":
            expected = np.mean([m.predict(X_test) for m in hand], axis=0)
        else:  # size-weighted mean; for a linear model also the prediction of the averaged parameters
            expected = sum(w * m.predict(X_test) for w, m in zip(weights, hand, strict=True))
    np.testing.assert_allclose(model.predict(X_test), expected, rtol=1e-9)


def test_one_shard_reproduces_the_base_estimator(classification):
    X, y, X_test = classification
    model = ShardEnsembleClassifier(LogisticRegression()).fit(X, y)
    reference = LogisticRegression().fit(X, y)
    assert model.n_shards_ == 1
    np.testing.assert_allclose(model.predict_proba(X_test), reference.predict_proba(X_test), rtol=1e-12)


def test_sample_weight_is_passed_to_every_shard(regression):
    X, y, X_test = regression
    weight = np.random.default_rng(2).uniform(0.1, 3.0, size=len(y))
    model = ShardEnsembleRegressor(Ridge(), fusion="soft-voting").fit(
        da.from_array(X, chunks=(CHUNKS, 4)), y, sample_weight=weight
    )
    hand = [Ridge().fit(X[r], y[r], sample_weight=weight[r]) for r in _shards(CHUNKS)]
    np.testing.assert_allclose(
        model.predict(X_test), np.mean([m.predict(X_test) for m in hand], axis=0), rtol=1e-10
    )


# ---------------------------------------------------------------------------------------------------------
# sorted labels: contiguous shards miss classes


@pytest.fixture(scope="module")
def sorted_by_label(classification):
    X, y, _ = classification
    order = np.argsort(y, kind="stable")
    return X[order], y[order]


def test_sorted_contiguous_shards_miss_classes_and_still_work(sorted_by_label, classification):
    X, y = sorted_by_label
    _, _, X_test = classification
    model = ShardEnsembleClassifier(LogisticRegression(), n_shards=4).fit(X, y)
    report = model.shard_report_.to_frame()
    assert (report["model"] == "constant").any()  # a shard holding one class only
    shard_classes = [np.unique(block) for block in np.split(y, np.cumsum(report["n_rows"])[:-1])]
    assert any(len(c) < 3 for c in shard_classes)
    expected = np.mean([_aligned(m, X_test, np.arange(3)) for m in model.estimators_], axis=0)
    proba = model.predict_proba(X_test)
    np.testing.assert_allclose(proba, expected, rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    for member, classes in zip(model.estimators_, shard_classes, strict=True):
        np.testing.assert_array_equal(member.classes_, classes)
    with pytest.raises(AttributeError, match="has no attribute 'decision_function'"):
        model.decision_function(X_test)
    with pytest.raises(
        ValueError, match="ParameterAveraging needs every member to have been trained on all classes"
    ):
        ShardEnsembleClassifier(LogisticRegression(), n_shards=4, fusion="parameter-averaging").fit(X, y)


def test_shuffle_and_stratified_sharding_recover_the_accuracy(sorted_by_label, classification):
    X, y = sorted_by_label
    X_full, y_full, _ = classification
    rng = np.random.default_rng(3)
    X_eval = rng.normal(size=(2000, 5))
    y_eval = np.digitize(X_eval[:, 0] + X_eval[:, 1] - 0.5 * X_eval[:, 2], [-0.7, 0.7])
    reference = LogisticRegression().fit(X_full, y_full).score(X_eval, y_eval)
    scores = {
        sharding: ShardEnsembleClassifier(LogisticRegression(), n_shards=4, sharding=sharding, random_state=0)
        .fit(da.from_array(X, chunks=100), y)
        .score(X_eval, y_eval)
        for sharding in ("contiguous", "shuffle", "stratified")
    }
    assert scores["contiguous"] < reference - 0.05
    assert scores["shuffle"] > reference - 0.02
    assert scores["stratified"] > reference - 0.02
    stratified = ShardEnsembleClassifier(
        LogisticRegression(), n_shards=4, sharding="stratified", fusion="parameter-averaging", random_state=0
    ).fit(X, y)
    counts = stratified.shard_report_.to_frame()[[0, 1, 2]].to_numpy()
    np.testing.assert_array_less(np.abs(counts - np.bincount(y) / 4), 1)


def test_validation_weights_silence_one_class_shards(sorted_by_label):
    X, y = sorted_by_label
    fusion = WeightedAveraging(weights="validation")
    model = ShardEnsembleClassifier(
        LogisticRegression(), n_shards=4, fusion=fusion, validation_fraction=0.2, random_state=0
    )
    model.fit(X, y)
    report = model.shard_report_.to_frame()
    np.testing.assert_allclose(report.loc[report["model"] == "constant", "weight"], 0.0)
    np.testing.assert_allclose(report["weight"].sum(), 1.0)


def test_parameter_averaging_user_weights_per_shard(regression):
    X, y, _X_test = regression
    model = ShardEnsembleRegressor(Ridge(), fusion=ParameterAveraging(weights=[1, 0, 0, 1]))
    model.fit(da.from_array(X, chunks=(CHUNKS, 4)), y)
    hand = [Ridge().fit(X[r], y[r]) for r in _shards(CHUNKS)]
    np.testing.assert_allclose(
        model.fusion_.fused_estimator_.coef_, (hand[0].coef_ + hand[3].coef_) / 2, rtol=1e-10
    )
