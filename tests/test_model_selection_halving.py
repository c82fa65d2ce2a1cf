"""Successive halving, compared with scikit-learn's HalvingGridSearchCV / HalvingRandomSearchCV on the same folds.

In-memory data: the schedule (``n_resources_``, ``n_candidates_``, ...), the candidates of every round (in
order), the scores and ``best_params_`` are scikit-learn's, with rows or an estimator parameter as the resource.
On a real LocalCluster: the fits of every round are concurrent tasks (MAGIC from ../shared/data, skipped when
absent), and daskml_lab's LogisticRegression searched on dask data, with ``max_iter`` as the resource (the same
scores as scikit-learn's search around it in memory) and with rows (each round's rows taken inside the blocks).
"""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
from distributed import get_task_stream
from scipy.stats import randint
from sklearn import model_selection as sk
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.experimental import enable_halving_search_cv  # noqa: F401 -- scikit-learn's reference
from sklearn.tree import DecisionTreeClassifier

import daskml_lab
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV, KFold, StratifiedKFold
from daskml_lab.model_selection._folds import TEST, TRAIN
from daskml_lab.model_selection._halving import _SubsampleSplitter
from daskml_lab.testing import raise_if_computes
from tests.conftest import shared_file

GRID = {"max_depth": [1, 2, 3, 4, 5, None], "min_samples_leaf": [1, 5, 10]}
SCHEDULE = [
    "n_resources_",
    "n_candidates_",
    "n_remaining_candidates_",
    "max_resources_",
    "min_resources_",
    "n_iterations_",
    "n_possible_iterations_",
    "n_required_iterations_",
    "best_index_",
    "best_params_",
]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=600, n_features=8, n_informative=4, random_state=0)


def _assert_same_search(ours, reference, atol=1e-12):
    for name in SCHEDULE:
        assert getattr(ours, name) == getattr(reference, name), name
    # the candidates of every round, in scikit-learn's order, and their scores
    assert ours.cv_results_["params"] == list(reference.cv_results_["params"])
    for key in ("iter", "n_resources", "rank_test_score"):
        np.testing.assert_array_equal(ours.cv_results_[key], reference.cv_results_[key])
    for key in reference.cv_results_:
        if key.startswith(("split", "mean_t", "std_t")):
            np.testing.assert_allclose(ours.cv_results_[key], reference.cv_results_[key], rtol=0, atol=atol)
    assert abs(ours.best_score_ - reference.best_score_) <= atol


@pytest.mark.parametrize(
    "options",
    [
        {"cv": KFold(4), "random_state": 0},  # min_resources='exhaust'
        {"cv": 3, "random_state": 0, "factor": 2, "min_resources": "smallest"},
        {"cv": 3, "random_state": 0, "min_resources": 100, "aggressive_elimination": True},
        {"cv": 3, "random_state": 0, "min_resources": 100},  # too few rounds: more than `factor` remain
    ],
)
def test_halving_over_rows_in_memory_is_scikit_learns(data, options):
    X, y = data
    model = DecisionTreeClassifier(random_state=0)
    ours = HalvingGridSearchCV(model, GRID, **options).fit(X, y)
    reference = sk.HalvingGridSearchCV(model, GRID, **options).fit(X, y)
    _assert_same_search(ours, reference)
    assert ours.predict(X).tolist() == reference.predict(X).tolist()


def test_without_refit_the_best_candidate_is_still_chosen(data):
    X, y = data
    options = {"cv": 3, "random_state": 0, "refit": False}
    model = DecisionTreeClassifier(random_state=0)
    ours = HalvingGridSearchCV(model, GRID, **options).fit(X, y)
    reference = sk.HalvingGridSearchCV(model, GRID, **options).fit(X, y)
    _assert_same_search(ours, reference)
    assert not hasattr(ours, "best_estimator_")
    with pytest.raises(AttributeError, match="refit=False: predict needs refit=True"):
        ours.predict(X)


def test_halving_over_an_estimator_parameter_is_scikit_learns(data):
    X, y = data
    options = {"cv": 3, "resource": "n_estimators", "max_resources": 9, "random_state": 0}
    grid = {"max_depth": [2, None], "min_samples_leaf": [1, 9]}
    model = RandomForestClassifier(random_state=0)
    ours = HalvingGridSearchCV(model, grid, **options).fit(X, y)
    reference = sk.HalvingGridSearchCV(model, grid, **options).fit(X, y)
    _assert_same_search(ours, reference)
    assert ours.n_resources_ == [3, 9]
    assert ours.best_params_["n_estimators"] == 9  # the resource is part of the best parameters, as refitted
    assert ours.best_estimator_.n_estimators == 9


def test_halving_random_search_is_scikit_learns(data):
    X, y = data
    options = {"cv": 3, "random_state": 0, "scoring": "accuracy", "return_train_score": False}
    options["max_resources"] = 120  # 120 rows of 600: few fits
    distributions = {"max_depth": randint(1, 12), "min_samples_leaf": randint(1, 20)}
    model = DecisionTreeClassifier(random_state=0)
    ours = HalvingRandomSearchCV(model, distributions, **options).fit(X, y)
    reference = sk.HalvingRandomSearchCV(model, distributions, **options).fit(X, y)
    _assert_same_search(ours, reference)
    # n_candidates='exhaust': max_resources_ // min_resources_, with min_resources_ = 3 folds x 2 x 2 classes
    assert ours.n_candidates_ == [10, 4, 2]
    assert ours.n_resources_ == [12, 36, 108]
    assert "mean_train_score" not in ours.cv_results_


@pytest.mark.parametrize("chunks", [(40, 0, 30, 33), (103,)])
def test_dask_rows_of_a_round_are_taken_inside_the_blocks(chunks):
    # column 0 of X is the row number and y the same number: X and y must keep the same rows
    n_rows = sum(chunks)
    X = da.from_array(np.arange(2.0 * n_rows).reshape(n_rows, 2) // 2, chunks=(chunks, 2))
    y = da.from_array(np.arange(n_rows), chunks=(chunks,))
    base = KFold(3)
    rounds, subsampled, base_folds = [], [], {}
    with dask.config.set(scheduler="sync"):
        for fraction in (0.3, 0.9):
            taken = []
            folds = _SubsampleSplitter(base, fraction, 0, 7, None, base_folds)._dask_folds(X, y)
            subsampled += folds
            for fold in folds:
                for role in (TRAIN, TEST):
                    with raise_if_computes(max_computes=0):  # lazy, chunk sizes known without computing
                        X_rows, y_rows = fold.take(X, role), fold.take(y, role)
                    assert X_rows.chunks[0] == y_rows.chunks[0]
                    base_rows = fold.base.take(y, role).compute()
                    assert len(X_rows.chunks[0]) == len(chunks)  # one piece of every block
                    assert sum(X_rows.chunks[0]) == int(fraction * len(base_rows))  # scikit-learn's count
                    X_rows, y_rows = X_rows.compute(), y_rows.compute()
                    np.testing.assert_array_equal(X_rows[:, 0], y_rows)
                    assert set(y_rows) <= set(base_rows)
                    taken.append(set(y_rows))
            rounds.append(taken)
    # the rounds share the base folds (stratified ones count the classes once per search, not per round)
    (shared,) = base_folds.values()
    assert all(fold.base is shared[i % 3] for i, fold in enumerate(subsampled))
    # a later round's rows include the earlier round's (one permutation per block, a longer prefix)
    for small, large in zip(*rounds, strict=True):
        assert small < large


def test_an_in_memory_estimator_on_dask_data_has_scikit_learns_schedule(data):
    # the schedule depends on the rows, folds and classes only (counted on the blocks for a dask y)
    X, y = data
    Xd, yd = da.from_array(X, chunks=(150, 8)), da.from_array(y, chunks=150)
    model = DecisionTreeClassifier(random_state=0)
    options = {"cv": 3, "random_state": 0, "min_resources": "smallest"}
    with dask.config.set(scheduler="sync"):
        ours = HalvingGridSearchCV(model, GRID, **options).fit(Xd, yd)
    reference = sk.HalvingGridSearchCV(model, GRID, **options).fit(X, y)
    for name in SCHEDULE[:-2]:
        assert getattr(ours, name) == getattr(reference, name), name
    assert ours.min_resources_ == 3 * 2 * 2  # folds x 2 x classes
    assert not np.isnan(ours.cv_results_["mean_test_score"]).any()
    assert ours.best_params_ in ours.cv_results_["params"][-ours.n_candidates_[-1] :]


def test_search_errors_name_the_problem_and_the_fix(data):
    X, y = data
    model = DecisionTreeClassifier(random_state=0)
    with pytest.raises(
        ValueError, match=r"The 'factor' parameter of HalvingGridSearchCV must be .*\(1, inf\)"
    ):
        HalvingGridSearchCV(model, GRID, factor=1).fit(X, y)
    with pytest.raises(
        ValueError, match=r"resource='max_iter'.* not a parameter of .*DecisionTreeClassifier"
    ):
        HalvingGridSearchCV(model, GRID, resource="max_iter", max_resources=10).fit(X, y)
    with pytest.raises(ValueError, match=r"'max_depth' as the resource since it is part of the searched"):
        HalvingGridSearchCV(model, GRID, resource="max_depth", max_resources=10).fit(X, y)
    with pytest.raises(
        ValueError, match=r"max_resources='auto' means all the rows.*give max_resources as an int"
    ):
        HalvingGridSearchCV(model, {"max_depth": [1, 2]}, resource="min_samples_split").fit(X, y)
    with pytest.raises(ValueError, match=r"min_resources_=700 is greater than max_resources_=600\. Lower"):
        HalvingGridSearchCV(model, GRID, min_resources=700).fit(X, y)
    with pytest.raises(ValueError, match=r"X has 0 rows: .*pass a non-empty X"):
        HalvingGridSearchCV(model, GRID).fit(X[:0], y[:0])
    with pytest.raises(ValueError, match=r"param_grid \{\} gives no candidate to try"):
        HalvingGridSearchCV(model, {}).fit(X, y)
    with pytest.raises(ValueError, match=r"Invalid parameter\(s\) \['depth'\]"):
        HalvingGridSearchCV(model, {"depth": [1, 2]}).fit(X, y)
    with pytest.raises(
        ValueError, match=r"The 'scoring' parameter of HalvingGridSearchCV must be None, a str or a callable"
    ):
        HalvingGridSearchCV(model, GRID, scoring=["accuracy", "f1"]).fit(X, y)
    with pytest.raises(ValueError, match=r"consistent folds.*Set its random_state to an int"):
        HalvingGridSearchCV(model, GRID, cv=StratifiedKFold(3, shuffle=True)).fit(X, y)
    with pytest.raises(ValueError, match=r"cannot be both set to 'exhaust'"):
        HalvingRandomSearchCV(model, GRID, min_resources="exhaust").fit(X, y)


def test_a_halving_search_is_an_estimator_and_survives_save_and_load(data, tmp_path):
    X, y = data
    search = HalvingGridSearchCV(
        DecisionTreeClassifier(random_state=0), GRID, cv=StratifiedKFold(3), random_state=0
    )
    assert repr(clone(search)) == repr(search)  # __init__ stores its arguments, untouched
    search.fit(X, y)
    daskml_lab.save(search, tmp_path / "halving.zip")
    loaded = daskml_lab.load(tmp_path / "halving.zip")
    assert loaded.best_params_ == search.best_params_
    assert loaded.n_resources_ == search.n_resources_
    np.testing.assert_array_equal(loaded.predict(X), search.predict(X))


# -- on a real LocalCluster ------------------------------------------------------------------------------------


@pytest.mark.cluster
@pytest.mark.timeout(180)
def test_halving_on_magic_runs_each_round_as_tasks_and_is_scikit_learns(client, shared_data):
    path = shared_file(shared_data, "magic_gamma_telescope", "magic.tsv.gz")
    table = pd.read_csv(path, sep="\t")
    y = table.pop("target").to_numpy()
    X = table.to_numpy(dtype=float)
    grid = {"max_depth": [2, 4, 8], "min_samples_leaf": [1, 20, 50]}
    options = {"cv": 3, "random_state": 0, "scoring": "accuracy"}
    model = DecisionTreeClassifier(random_state=0)
    with get_task_stream(client) as stream:
        ours = HalvingGridSearchCV(model, grid, **options).fit(X, y)
    reference = sk.HalvingGridSearchCV(model, grid, **options).fit(X, y)
    _assert_same_search(ours, reference, atol=1e-6)
    fits = [task for task in stream.data if str(task["key"]).startswith("daskml-cv-fit-")]
    assert ours.n_candidates_ == [9, 3, 1]
    assert len(fits) == sum(ours.n_candidates_) * 3  # every (candidate, fold) of every round, as a task


class _RecordingLogisticRegression(LogisticRegression):
    """Records the rows each fit receives (the fits of dask folds run in this process)."""

    received: list = []  # noqa: RUF012 -- shared on purpose: the clones record into it

    def fit(self, X, y, sample_weight=None):
        type(self).received.append((type(X), X.chunks[0], type(y)))
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.mark.cluster
@pytest.mark.timeout(180)
def test_our_estimator_on_dask_data_with_max_iter_as_the_resource(client):
    X, y = make_classification(n_samples=400, n_features=5, n_informative=3, random_state=0)
    Xd, yd = da.from_array(X, chunks=(100, 5)), da.from_array(y, chunks=100)
    grid = {"C": [0.001, 0.1, 10.0]}
    options = {"resource": "max_iter", "max_resources": 9, "cv": 3, "scoring": "neg_log_loss"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few iterations on purpose: ConvergenceWarning
        ours = HalvingGridSearchCV(LogisticRegression(), grid, **options).fit(Xd, yd)
        # scikit-learn's halving around the same estimator on the same (unshuffled, stratified) folds in
        # memory, each fit in this process (the same scores; 13 fits over the cluster cost 9 s more)
        with dask.config.set(scheduler="sync"):
            reference = sk.HalvingGridSearchCV(LogisticRegression(), grid, **options).fit(X, y)
    _assert_same_search(ours, reference, atol=1e-6)
    assert ours.n_resources_ == [3, 9]
    with raise_if_computes(max_computes=0):
        predictions = ours.predict(Xd)
    np.testing.assert_array_equal(predictions.compute(), reference.predict(X))


@pytest.mark.cluster
@pytest.mark.timeout(180)
def test_our_estimator_on_dask_data_with_rows_as_the_resource(client):
    X, y = make_classification(n_samples=400, n_features=5, n_informative=3, random_state=0)
    Xd, yd = da.from_array(X, chunks=(100, 5)), da.from_array(y, chunks=100)
    _RecordingLogisticRegression.received = []
    grid = {"C": [0.001, 0.1, 10.0]}
    search = HalvingGridSearchCV(_RecordingLogisticRegression(), grid, cv=3, random_state=0)
    search.fit(Xd, yd)
    # scikit-learn's schedule: 3 candidates on 133 rows, 1 on 399 (for 3 folds of 400 rows)
    assert search.n_resources_ == [133, 399]
    assert search.n_candidates_ == [3, 1]
    received = _RecordingLogisticRegression.received
    assert len(received) == 3 * 3 + 1 * 3 + 1  # every (candidate, fold) of the two rounds, then the refit
    for i, (X_type, chunks, y_type) in enumerate(received[:-1]):
        assert X_type is da.Array  # lazy rows, nothing gathered
        assert y_type is da.Array
        assert len(chunks) == 4  # one piece of each block
        fraction = search.n_resources_[0 if i < 9 else 1] / 400
        assert sum(chunks) in {int(fraction * n_train) for n_train in (266, 267)}
    assert received[-1][1] == (100, 100, 100, 100)  # the refit sees all the rows
    assert set(search.cv_results_["iter"]) == {0, 1}
    assert search.best_params_ == search.cv_results_["params"][3]  # the best of the last round
