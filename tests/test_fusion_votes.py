"""Vote counting of hard voting: the stacked linear path and the member-by-member path give the same votes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, Perceptron, RidgeClassifier, SGDClassifier
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from daskml_lab.fusion import HardVoting, WeightedAveraging
from daskml_lab.fusion._base import class_index, label_index
from daskml_lab.fusion._votes import _is_plain_linear, vote_totals


def _loop_totals(members, weights, classes, X):
    """The member-by-member count: every member's predict, its weight added to its label's column."""
    total = np.zeros((X.shape[0], len(classes)))
    for member, weight in zip(members, weights, strict=True):
        total[np.arange(X.shape[0]), label_index(member.predict(X), classes)] += weight
    return total


@pytest.fixture(scope="module")
def shards():
    """Six shards of a 4-class problem; shards 4 and 5 see only classes {0, 1} and {1, 3}."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3_000, 6))
    y = np.argmax(X[:, :4] + 0.5 * rng.standard_normal((3_000, 4)), axis=1)
    parts = [(X[i::6], y[i::6]) for i in range(4)]
    for keep in ({0, 1}, {1, 3}):
        rows = np.isin(y, list(keep))
        parts.append((X[rows][:400], y[rows][:400]))
    X_test = rng.standard_normal((2_500, 6))
    return parts, X_test


def _members(parts, make):
    return [make(seed).fit(Xs, ys) for seed, (Xs, ys) in enumerate(parts)]


LINEAR_BASES = {
    "logistic": lambda seed: LogisticRegression(max_iter=500),
    "sgd-hinge": lambda seed: SGDClassifier(loss="hinge", random_state=seed),
    "linear-svc": lambda seed: LinearSVC(),
    "perceptron": lambda seed: Perceptron(random_state=seed),
}


@pytest.mark.parametrize("base", sorted(LINEAR_BASES))
def test_stacked_linear_votes_equal_the_members_own_predictions(shards, base):
    parts, X_test = shards
    members = _members(parts, LINEAR_BASES[base])
    assert all(_is_plain_linear(m) for m in members)
    classes = np.arange(4)
    index = [class_index(m, classes) for m in members]
    weights = np.array([0.3, 0.1, 0.2, 0.15, 0.15, 0.1])
    for X in (X_test, X_test.astype(np.float32), np.asfortranarray(X_test), sp.csr_matrix(X_test)):
        expected = _loop_totals(members, weights, classes, X)
        np.testing.assert_array_equal(vote_totals(members, index, weights, classes, X), expected)


def test_two_class_members_missing_a_global_class_vote_for_their_own_classes(shards):
    parts, X_test = shards
    members = _members(parts[4:], LINEAR_BASES["sgd-hinge"])  # binary members with classes {0,1} and {1,3}
    classes = np.arange(4)
    index = [class_index(m, classes) for m in members]
    totals = vote_totals(members, index, np.array([0.5, 0.5]), classes, X_test)
    np.testing.assert_array_equal(totals, _loop_totals(members, [0.5, 0.5], classes, X_test))
    assert totals[:, 2].sum() == 0
    assert totals[:, 3].sum() > 0


def test_members_that_are_not_plain_linear_use_their_own_predict(shards):
    parts, X_test = shards
    trees = _members(parts[:3], lambda seed: DecisionTreeClassifier(max_depth=3, random_state=seed))
    ridge = _members(parts[:2], lambda seed: RidgeClassifier())  # predict overridden (multi-label support)
    linear = _members(parts[:2], LINEAR_BASES["logistic"])
    assert not any(_is_plain_linear(m) for m in trees + ridge)
    members = trees + ridge + linear
    classes = np.arange(4)
    weights = np.full(len(members), 1 / len(members))
    index = [class_index(m, classes) for m in members]
    np.testing.assert_array_equal(
        vote_totals(members, index, weights, classes, X_test), _loop_totals(members, weights, classes, X_test)
    )


def test_feature_names_or_sparse_coefficients_leave_the_stacked_path():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(1).standard_normal((200, 3))
    y = (X[:, 0] > 0).astype(int)
    named = LogisticRegression().fit(pd.DataFrame(X, columns=["a", "b", "c"]), y)
    sparse = SGDClassifier(random_state=0).fit(X, y).sparsify()
    assert not _is_plain_linear(named)
    assert not _is_plain_linear(sparse)


def test_hard_voting_tie_rule_and_labels_with_stacked_members(shards):
    parts, X_test = shards
    members = _members(parts[:4], LINEAR_BASES["sgd-hinge"])
    fused = HardVoting().fit(members)
    totals = _loop_totals(members, np.full(4, 0.25), fused.classes_, X_test)
    # ties (2 votes against 2) go to the class that comes first
    assert np.any(np.sort(totals, axis=1)[:, -1] == np.sort(totals, axis=1)[:, -2])
    np.testing.assert_array_equal(fused.predict(X_test), fused.classes_[np.argmax(totals, axis=1)])
    labelled = HardVoting().fit(
        [
            SGDClassifier(random_state=s).fit(Xs, np.array(list("abcd"))[ys])
            for s, (Xs, ys) in enumerate(parts[:4])
        ]
    )
    assert set(np.unique(labelled.predict(X_test))) <= set("abcd")


def test_weighted_votes_keep_zero_weight_members_out(shards):
    parts, X_test = shards
    members = _members(parts[:4], LINEAR_BASES["logistic"])
    fused = WeightedAveraging(weights=[1, 0, 0, 0], method="predict").fit(members)
    np.testing.assert_array_equal(fused.predict(X_test), members[0].predict(X_test))


def test_wrong_feature_count_is_named(shards):
    parts, X_test = shards
    fused = HardVoting().fit(_members(parts[:2], LINEAR_BASES["logistic"]))
    with pytest.raises(ValueError, match="X has 5 features, but the members were fitted with \\[6\\]"):
        fused.predict(X_test[:, :5])


def test_many_members_are_counted_in_row_chunks(monkeypatch, shards):
    from daskml_lab.fusion import _votes

    parts, X_test = shards
    members = _members(parts, LINEAR_BASES["sgd-hinge"]) + _members(
        parts[:2], lambda s: DecisionTreeClassifier()
    )
    classes = np.arange(4)
    index = [class_index(m, classes) for m in members]
    weights = np.full(len(members), 1 / len(members))
    expected = vote_totals(members, index, weights, classes, X_test)
    monkeypatch.setattr(_votes, "_CHUNK_ENTRIES", 1_000)  # chunks of 125 rows (stacked) / 125 rows (loop)
    np.testing.assert_array_equal(vote_totals(members, index, weights, classes, X_test), expected)
    np.testing.assert_array_equal(
        vote_totals(members[:6], index[:6], weights[:6], classes, X_test)[:5],
        _loop_totals(members[:6], weights[:6], classes, X_test[:5]),
    )


def test_two_class_hard_vote_counts_exactly_and_breaks_ties_to_the_first_class():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4_000, 5))
    y = (X[:, 0] + X[:, 1] + rng.standard_normal(4_000) > 0).astype(int)
    members = [SGDClassifier(random_state=s).fit(X[s::4], y[s::4]) for s in range(4)]
    fused = HardVoting().fit(members)
    X_test = rng.standard_normal((3_000, 5))
    counts = _loop_totals(members, np.ones(4), fused.classes_, X_test)
    ties = counts[:, 0] == counts[:, 1]
    assert ties.sum() > 10  # 2 votes against 2
    np.testing.assert_array_equal(fused.predict(X_test), np.argmax(counts, axis=1))
    assert np.all(fused.predict(X_test)[ties] == 0)
    np.testing.assert_allclose(
        vote_totals(members, fused.class_index_, fused.weights_, fused.classes_, X_test),
        counts / 4,
        rtol=0,
        atol=0,
    )
