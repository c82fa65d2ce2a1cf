"""Folds over row blocks and cross-validation without a cluster: compared with scikit-learn on the same data.

The splitters run on the synchronous (counting) scheduler: folds of dask arrays must be scikit-learn's where the
docs say so, partition the rows, have scikit-learn's sizes, and be built without computing anything (stratified
folds: exactly one blocked pass for the class counts).
"""

from __future__ import annotations

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from dask.array.utils import assert_eq
from scipy.stats import loguniform
from sklearn import model_selection as sk
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import get_scorer
from sklearn.tree import DecisionTreeClassifier

import daskml_lab
import daskml_lab.linear_model
from daskml_lab.model_selection import (
    GridSearchCV,
    KFold,
    RandomizedSearchCV,
    ShuffleSplit,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
)
from daskml_lab.model_selection._cluster_fits import EarlyRefit, LongestFirst
from daskml_lab.testing import raise_if_computes

N_ROWS = 103
#: Uneven blocks, one of them empty: the fold arithmetic must not assume equal or non-empty blocks.
CHUNKS = [(17,) * 6 + (1,), (40, 0, 30, 33), (N_ROWS,)]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, 3))
    y = rng.choice(np.array(["b", "a", "c"]), size=N_ROWS, p=[0.5, 0.3, 0.2])
    return X, y


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="sync"):
        yield


def _dask(X, y, chunks):
    return da.from_array(X, chunks=(chunks, 3)), da.from_array(y, chunks=(chunks,))


def _test_rows(splitter, Xd, yd):
    return [np.flatnonzero(test.compute()) for _, test in splitter.split(Xd, yd)]


@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize(
    ("ours", "reference"),
    [(KFold(5), sk.KFold(5)), (KFold(2), sk.KFold(2)), (StratifiedKFold(4), sk.StratifiedKFold(4))],
)
def test_unshuffled_folds_on_dask_are_scikit_learns(data, chunks, ours, reference):
    X, y = data
    Xd, yd = _dask(X, y, chunks)
    expected = list(reference.split(X, y))
    got = list(ours.split(Xd, yd))
    assert len(got) == len(expected)
    for (train, test), (train_mask, test_mask) in zip(expected, got, strict=True):
        assert train_mask.chunks == test_mask.chunks == (tuple(chunks),)
        np.testing.assert_array_equal(np.flatnonzero(test_mask.compute()), test)
        np.testing.assert_array_equal(np.flatnonzero(train_mask.compute()), train)


@pytest.mark.parametrize(
    ("ours", "reference"),
    [
        (KFold(5, shuffle=True, random_state=3), sk.KFold(5, shuffle=True, random_state=3)),
        (
            StratifiedKFold(3, shuffle=True, random_state=3),
            sk.StratifiedKFold(3, shuffle=True, random_state=3),
        ),
        (ShuffleSplit(4, test_size=0.3, random_state=0), sk.ShuffleSplit(4, test_size=0.3, random_state=0)),
    ],
)
def test_on_numpy_the_splits_are_scikit_learns(data, ours, reference):
    X, y = data
    for (train, test), (ref_train, ref_test) in zip(ours.split(X, y), reference.split(X, y), strict=True):
        np.testing.assert_array_equal(train, ref_train)
        np.testing.assert_array_equal(test, ref_test)


@pytest.mark.parametrize("chunks", CHUNKS[:2])
@pytest.mark.parametrize(
    ("ours", "reference"),
    [
        (KFold(5, shuffle=True, random_state=0), sk.KFold(5)),
        (StratifiedKFold(4, shuffle=True, random_state=1), sk.StratifiedKFold(4)),
    ],
)
def test_shuffled_folds_partition_the_rows_with_scikit_learns_sizes(data, chunks, ours, reference):
    X, y = data
    Xd, yd = _dask(X, y, chunks)
    tests = _test_rows(ours, Xd, yd)
    # every row in exactly one test fold
    np.testing.assert_array_equal(np.sort(np.concatenate(tests)), np.arange(N_ROWS))
    for rows, (_, ref_test) in zip(tests, reference.split(X, y), strict=True):
        assert len(rows) == len(ref_test)
        # stratified: each fold holds scikit-learn's number of rows of every class
        assert not isinstance(ours, StratifiedKFold) or dict(
            zip(*np.unique(y[rows], return_counts=True), strict=True)
        ) == dict(zip(*np.unique(y[ref_test], return_counts=True), strict=True))
    # shuffled: not the consecutive folds, and reproducible from random_state
    assert any(not np.array_equal(a, b) for a, (_, b) in zip(tests, reference.split(X, y), strict=True))
    for a, b in zip(tests, _test_rows(ours, Xd, yd), strict=True):
        np.testing.assert_array_equal(a, b)


def test_shuffle_split_on_dask_has_scikit_learns_sizes_and_spreads_over_blocks(data):
    X, y = data
    Xd, yd = _dask(X, y, CHUNKS[0])
    ours = ShuffleSplit(3, test_size=0.25, train_size=0.5, random_state=0)
    reference = sk.ShuffleSplit(3, test_size=0.25, train_size=0.5, random_state=0)
    splits = [(np.flatnonzero(a.compute()), np.flatnonzero(b.compute())) for a, b in ours.split(Xd, yd)]
    for (train, test), (ref_train, ref_test) in zip(splits, reference.split(X), strict=True):
        assert (len(train), len(test)) == (len(ref_train), len(ref_test)) == (51, 26)
        assert not set(train) & set(test)
        # every block of 17 rows gives about a quarter of its rows to the test set
        per_block = np.bincount(test // 17, minlength=7)[:6]
        assert per_block.min() >= 4
        assert per_block.max() <= 5
    assert not np.array_equal(splits[0][1], splits[1][1])


@pytest.mark.parametrize("splitter", [KFold(3), KFold(3, shuffle=True, random_state=0), ShuffleSplit(2)])
def test_fold_rows_are_taken_lazily_with_known_chunks(data, splitter):
    X, y = data
    Xd, yd = _dask(X, y, CHUNKS[1])
    with raise_if_computes(max_computes=0):
        folds = splitter._dask_folds(Xd, yd)
        taken = [(fold.take(Xd, 0), fold.take(yd, 1)) for fold in folds]
    for fold, (X_train, y_test) in zip(folds, taken, strict=True):
        roles = fold.roles.compute()
        assert not any(np.isnan(c) for c in X_train.chunks[0])
        assert_eq(X_train, X[roles == 0])
        assert_eq(y_test, y[roles == 1])


def test_stratified_folds_read_the_labels_once(data):
    X, y = data
    Xd, yd = _dask(X, y, CHUNKS[0])
    with raise_if_computes(max_computes=1) as counter:
        StratifiedKFold(4)._dask_folds(Xd, yd)
    assert counter.n_computes == 1


def test_splitter_errors_name_the_problem_and_the_fix(data):
    X, y = data
    Xd, _ = _dask(X[:4], y[:4], (2, 2))
    with pytest.raises(
        ValueError, match=r"n_splits=5 greater than the number of samples: n_samples=4\. Use at"
    ):
        list(KFold(5).split(Xd))
    rare = np.array(["a", "a", "a", "b", "b", "a"])
    Xr, yr = _dask(X[:6], rare, (3, 3))
    message = r"n_splits=3 cannot be greater .* lack class\(es\) \{'b': 2\} .* Use n_splits <= 2"
    with pytest.raises(ValueError, match=message):
        list(StratifiedKFold(3).split(Xr, yr))
    with pytest.raises(ValueError, match=message):
        list(StratifiedKFold(3).split(X[:6], rare))
    unknown = da.from_array(X, chunks=(50, 3))
    unknown = unknown[unknown[:, 0] > 0]
    with pytest.raises(ValueError, match=r"unknown row chunk sizes .* X\.compute_chunk_sizes\(\)"):
        list(KFold(2).split(unknown))
    with pytest.raises(ValueError, match=r"sum of train_size and test_size \(80 \+ 52 rows\) is more than"):
        list(ShuffleSplit(train_size=80, test_size=0.5).split(_dask(X, y, CHUNKS[0])[0]))


def test_cross_validate_in_memory_is_scikit_learns():
    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    scoring = ["accuracy", "neg_log_loss", "roc_auc"]
    ours = cross_validate(LogisticRegression(), X, y, cv=4, scoring=scoring, return_train_score=True)
    reference = sk.cross_validate(LogisticRegression(), X, y, cv=4, scoring=scoring, return_train_score=True)
    assert sorted(ours) == sorted(reference)
    for key in reference:
        if key.startswith(("test_", "train_")):
            np.testing.assert_allclose(ours[key], reference[key], rtol=0, atol=1e-12)
    X, y = make_regression(n_samples=120, noise=1.0, random_state=0)
    np.testing.assert_allclose(
        cross_val_score(Ridge(), X, y, cv=KFold(3, shuffle=True, random_state=0)),
        sk.cross_val_score(Ridge(), X, y, cv=sk.KFold(3, shuffle=True, random_state=0)),
        rtol=0,
        atol=1e-12,
    )


def test_cross_validate_errors():
    X, y = make_classification(n_samples=60, random_state=0)
    with pytest.raises(
        ValueError, match=r"'acuracy' is not a scikit-learn scorer name\. Did you mean 'accuracy'"
    ):
        cross_validate(LogisticRegression(), X, y, scoring="acuracy")
    with pytest.raises(ValueError, match=r"cross_val_score takes one scorer .* Use cross_validate"):
        cross_val_score(LogisticRegression(), X, y, scoring=["accuracy", "r2"])
    with pytest.raises(ValueError, match=r"non-empty list of distinct scorer names"):
        cross_validate(LogisticRegression(), X, y, scoring=[])
    with pytest.raises(ValueError, match=r"cv must be an int .* got 2\.5"):
        cross_validate(LogisticRegression(), X, y, cv=2.5)
    Xd = da.from_array(X, chunks=(20, 20))
    with pytest.raises(ValueError, match=r"X has 60 rows but y has 59; give one target per row"):
        cross_validate(LogisticRegression(), Xd, y[:59])


def test_a_failing_fit_gets_error_score_with_a_warning():
    X, y = make_classification(n_samples=60, random_state=0)
    bad = LogisticRegression(C=-1.0)
    with pytest.warns(match=r"A fit failed and its scores were set to error_score=nan"):
        scores = cross_validate(bad, X, y, cv=3)
    assert np.isnan(scores["test_score"]).all()
    with pytest.raises(ValueError, match="C"):
        cross_validate(bad, X, y, cv=3, error_score="raise")


def test_search_errors_name_the_problem_and_the_fix():
    X, y = make_classification(n_samples=60, random_state=0)
    with pytest.raises(ValueError, match=r"param_grid \{\} gives no candidate to try"):
        GridSearchCV(LogisticRegression(), {}).fit(X, y)
    with pytest.raises(ValueError, match=r"param_distributions \{\} gives no candidate"):
        RandomizedSearchCV(LogisticRegression(), {}).fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"Invalid parameter\(s\) \['c'\] for estimator LogisticRegression in param_grid\. "
        r"Valid parameters are: \['C', 'class_weight'",
    ):
        GridSearchCV(LogisticRegression(), {"c": [1.0]}).fit(X, y)
    with pytest.raises(ValueError, match=r"refit must be the name of the one that chooses .* got refit=True"):
        GridSearchCV(LogisticRegression(), {"C": [1.0]}, scoring=["accuracy", "f1"]).fit(X, y)
    with pytest.raises(ValueError, match=r"'f_1' is not a scikit-learn scorer name\. Did you mean 'f1'"):
        GridSearchCV(LogisticRegression(), {"C": [1.0]}, scoring="f_1").fit(X, y)


def test_randomized_search_is_scikit_learns_without_a_cluster():
    X, y = make_classification(n_samples=150, n_features=5, random_state=0)
    distributions = {"C": loguniform(1e-3, 1e2), "fit_intercept": [True, False]}
    options = {"n_iter": 5, "cv": 3, "random_state": 0, "return_train_score": True}
    ours = RandomizedSearchCV(LogisticRegression(), distributions, **options).fit(X, y)
    reference = sk.RandomizedSearchCV(LogisticRegression(), distributions, **options).fit(X, y)
    assert ours.best_params_ == reference.best_params_
    assert ours.best_index_ == reference.best_index_
    assert ours.cv_results_["params"] == reference.cv_results_["params"]
    for key in reference.cv_results_:
        if key.startswith(("split", "mean_test", "std_test", "rank_test", "mean_train")):
            np.testing.assert_allclose(ours.cv_results_[key], reference.cv_results_[key], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), reference.predict(X))
    assert ours.score(X, y) == reference.score(X, y)
    assert hasattr(ours, "predict_proba")
    assert not hasattr(ours, "transform")


def test_search_parameters_are_checked_against_their_constraints():
    X, y = make_classification(n_samples=60, random_state=0)
    with pytest.raises(ValueError, match=r"The 'cv' parameter of GridSearchCV must be .* Got 1 instead"):
        GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=1).fit(X, y)
    with pytest.raises(
        ValueError, match=r"The 'n_iter' parameter of RandomizedSearchCV must be .* Got 0 instead"
    ):
        RandomizedSearchCV(LogisticRegression(), {"C": [1.0]}, n_iter=0).fit(X, y)
    frame = dd.from_pandas(pd.DataFrame(X), npartitions=2)
    with pytest.raises(
        TypeError, match=r"takes a dask array or in-memory data; got DataFrame\. .*from_dataframe"
    ):
        cross_validate(LogisticRegression(), frame, y)


def test_a_fitted_search_survives_save_and_load(tmp_path):
    X, y = make_classification(n_samples=100, random_state=0)
    search = GridSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": [1, 3]},
        cv=StratifiedKFold(3),
        scoring="accuracy",
    ).fit(X, y)
    daskml_lab.save(search, tmp_path / "search.zip")
    loaded = daskml_lab.load(
        tmp_path / "search.zip"
    )  # no trusted=: the splitters are registered, no function stored
    assert loaded.best_params_ == search.best_params_
    np.testing.assert_array_equal(
        loaded.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"]
    )
    np.testing.assert_array_equal(loaded.predict(X), search.predict(X))
    assert loaded.score(X, y) == search.score(X, y)


def test_blocked_scores_on_dask_folds_are_scikit_learns_scorers():
    # every blocked scorer (and its sign) against scikit-learn's scorer on the same fold rows and fitted model
    X, y = make_regression(n_samples=240, n_features=4, noise=5.0, random_state=0)
    Xd, yd = da.from_array(X, chunks=(60, 4)), da.from_array(y, chunks=60)
    names = ["r2", "neg_mean_squared_error", "neg_mean_absolute_error", "explained_variance"]
    splitter = ShuffleSplit(3, test_size=0.25, train_size=0.5, random_state=0)
    scores = cross_validate(
        daskml_lab.linear_model.Ridge(alpha=1.0), Xd, yd, cv=splitter, scoring=names, return_estimator=True
    )
    for fold, (model, roles) in enumerate(
        zip(scores["estimator"], splitter._dask_folds(Xd, yd), strict=True)
    ):
        assert model.coef_.shape == (4,)
        test = roles.roles.compute() == 1
        for name in names:
            expected = get_scorer(name)(model, X[test], y[test])
            assert scores[f"test_{name}"][fold] == pytest.approx(expected, rel=1e-9)
    X, y = make_classification(n_samples=240, random_state=0)
    Xd, yd = da.from_array(X, chunks=(60, 20)), da.from_array(y, chunks=60)
    names = ["accuracy", "neg_log_loss", "balanced_accuracy"]
    scores = cross_validate(
        daskml_lab.linear_model.LogisticRegression(),
        Xd,
        yd,
        cv=3,
        scoring=names,
        return_estimator=True,
        return_train_score=True,
    )
    for fold, (model, (train, test)) in enumerate(
        zip(scores["estimator"], sk.StratifiedKFold(3).split(X, y), strict=True)
    ):
        for name in names:
            assert scores[f"test_{name}"][fold] == pytest.approx(
                get_scorer(name)(model, X[test], y[test]), rel=1e-9
            )
            assert scores[f"train_{name}"][fold] == pytest.approx(
                get_scorer(name)(model, X[train], y[train]), rel=1e-9
            )


def test_a_search_is_what_its_estimator_is():
    # scikit-learn's searches take their estimator's type: cross-validation around a classifier's search
    # stratifies, and is_classifier/is_regressor answer as for the estimator
    from sklearn.base import is_classifier, is_regressor
    from sklearn.linear_model import LogisticRegression as SkLogistic
    from sklearn.linear_model import Ridge as SkRidge

    assert is_classifier(GridSearchCV(SkLogistic(), {"C": [1.0]}))
    assert is_regressor(RandomizedSearchCV(SkRidge(), {"alpha": [1.0]}, n_iter=1))
    assert not is_classifier(GridSearchCV(SkRidge(), {"alpha": [1.0]}))


def test_in_memory_fits_run_each_candidate_once_then_longest_first():
    order = LongestFirst([(c, f) for c in range(3) for f in range(3)])
    # each candidate's first fold, in grid order: their costs are unknown
    assert [order.take() for _ in range(3)] == [(0, 0), (1, 0), (2, 0)]
    order.measured(0, {"fit_time": 1.0, "score_time": 0.1})
    order.measured(2, {"fit_time": 5.0, "score_time": 0.0})
    # candidate 1 still running counts as the longest; then 2 (5 s) before 0 (1.1 s)
    assert [order.take() for _ in range(6)] == [(1, 1), (1, 2), (2, 1), (2, 2), (0, 1), (0, 2)]
    assert not order
    # a resumed search knows the costs of the candidates it finished before
    resumed = LongestFirst(
        [(0, 1), (1, 1)],
        known={(0, 0): {"fit_time": 0.1, "score_time": 0.0}, (1, 0): {"fit_time": 9.0, "score_time": 0.0}},
    )
    assert [resumed.take(), resumed.take()] == [(1, 1), (0, 1)]


class _FakeFuture:
    def __init__(self, value):
        self.value = value

    def done(self):
        return False


class _FakeClient:
    def __init__(self):
        self.cancelled = []

    def cancel(self, futures):
        self.cancelled.extend(futures)


def _result(score):
    return {"test_scores": {"accuracy": score}}


def test_early_refit_starts_the_best_complete_candidate_and_drops_it_if_overtaken():
    early = EarlyRefit(n_folds=2, key="accuracy")
    early.record(0, 0, _result(0.8))
    early.record(1, 0, _result(0.9))
    assert early.leader() is None  # no candidate has every fold scored yet
    early.record(0, 1, _result(0.8))
    early.record(2, 0, _result(float("nan")))
    early.record(2, 1, _result(0.99))
    assert early.leader() == 0  # candidate 2's mean is NaN (a failed fit): never the leader
    client, submitted = _FakeClient(), []

    def submit(candidate):
        submitted.append(candidate)
        return _FakeFuture(candidate)

    early.start(client, submit)
    early.start(client, submit)  # once per search
    assert submitted == [0]
    early.record(1, 1, _result(0.9))  # candidate 1 overtakes after the refit started
    assert early.leader() == 1
    assert early.take(1) is None  # the search refits candidate 1 itself...
    assert len(client.cancelled) == 1  # ...and the refit of candidate 0 is cancelled
    assert early.take(1) is None


def test_early_refit_breaks_ties_as_the_ranking_does():
    early = EarlyRefit(n_folds=1, key="score")
    for candidate, score in [(3, 0.5), (1, 0.7), (2, 0.7)]:
        early.record(candidate, 0, {"test_scores": {"score": score}})
    assert early.leader() == 1  # the first of the best, as argmin of rank_test_score picks
