"""Shard ensembles in searches: one task per (candidate, fold, shard), all submitted at once.

On a real LocalCluster (worker processes on 127.0.0.1) a GridSearchCV over a ShardEnsembleClassifier gives the
scores of the sequential path (``daskml_lab.model_selection.joint_shard_fits=False``) to the last bit, and every
(candidate, fold) ensemble has the shard models of the same ensemble fitted alone on the fold's training rows. A
scheduler plugin counts how many (candidate, fold) fits had shard-fit tasks waiting or running on the scheduler
at once: all of them on the joint path, one on the sequential path (a count, not a timing). Without a cluster:
fit_shard_ensembles against fits one by one (held-out fusions included), its errors, and a failing candidate
that falls back to the sequential path and gets error_score.
"""

from __future__ import annotations

import threading

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import get_task_stream
from distributed.diagnostics.plugin import SchedulerPlugin
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier

from daskml_lab.ensemble import ShardEnsembleClassifier, ShardEnsembleRegressor, fit_shard_ensembles
from daskml_lab.model_selection import GridSearchCV, KFold, cross_validate
from daskml_lab.model_selection._execution import dask_folds
from daskml_lab.model_selection._folds import TRAIN
from daskml_lab.model_selection._shard_fits import CONFIG_KEY

SCORING = ["accuracy", "neg_log_loss"]
N_SHARDS = (
    3  # row blocks of the data: each shuffled fold takes 80 training rows of every block, one shard each
)
CV = KFold(3, shuffle=True, random_state=0)


@pytest.fixture(scope="module")
def data() -> tuple[da.Array, da.Array]:
    X, y = make_classification(n_samples=360, n_features=5, n_informative=3, random_state=0)
    return da.from_array(X, chunks=120), da.from_array(y, chunks=120)


class _PendingFits(SchedulerPlugin):
    """Counts the (candidate, fold) fits whose shard-fit tasks the scheduler holds unfinished at once."""

    name = "daskml-test-pending-shard-fits"

    def __init__(self, scheduler) -> None:
        self.scheduler = scheduler  # added in this process (the LocalCluster's scheduler runs here)
        self.most = 0
        self.lock = threading.Lock()

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if finish != "processing" or not _is_shard_fit(key):
            return
        pending = {
            task.key[0]
            for task in self.scheduler.tasks.values()
            if _is_shard_fit(task.key) and task.state in ("waiting", "queued", "no-worker", "processing")
        }
        with self.lock:
            self.most = max(self.most, len(pending))


def _is_shard_fit(key) -> bool:
    return isinstance(key, tuple) and str(key[0]).startswith("daskml-shard-fit-")


def _search(base, grid, X, y, *, joint: bool):
    model = ShardEnsembleClassifier(base, random_state=0)
    with dask.config.set({CONFIG_KEY: joint}):
        return GridSearchCV(model, grid, cv=CV, scoring=SCORING, refit=False).fit(X, y)


@pytest.mark.cluster
@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("base", "grid"),
    [
        (
            LogisticRegression(),
            {"estimator__C": [0.05, 1.0], "fusion": ["soft-voting", "parameter-averaging"]},
        ),
        (DecisionTreeClassifier(random_state=0), {"estimator__max_depth": [2, 4], "fusion": ["best-model"]}),
    ],
    ids=["logistic", "tree-best-model"],
)
def test_grid_search_runs_every_shard_fit_at_once_with_the_sequential_scores(
    local_cluster, client, data, base, grid
):
    X, y = data
    n_fits = 3 * int(np.prod([len(v) for v in grid.values()]))
    scheduler = local_cluster.scheduler
    plugin = _PendingFits(scheduler)
    scheduler.add_plugin(plugin)
    try:
        with get_task_stream(client) as stream:
            joint = _search(base, grid, X, y, joint=True)
        most_joint = plugin.most
        plugin.most = 0
        sequential = _search(base, grid, X, y, joint=False)
        most_sequential = plugin.most
    finally:
        scheduler.remove_plugin(name=plugin.name)
    # one task per (candidate, fold, shard), each (candidate, fold) its own fit
    fits = [task["key"] for task in stream.data if _is_shard_fit(task["key"])]
    assert len(fits) == n_fits * N_SHARDS
    assert len({key[0] for key in fits}) == n_fits
    # all the (candidate, fold) fits were waiting or running together; the sequential path holds one at a time
    assert most_joint == n_fits
    assert most_sequential == 1
    for key, value in joint.cv_results_.items():
        if key.startswith(("split", "mean_test", "std_test", "rank_")):
            np.testing.assert_array_equal(value, sequential.cv_results_[key], err_msg=key)


@pytest.mark.cluster
@pytest.mark.timeout(180)
def test_each_fold_ensemble_equals_the_ensemble_fitted_alone(client, data):
    X, y = data
    model = ShardEnsembleClassifier(
        LogisticRegression(C=0.3), fusion="parameter-averaging", validation_fraction=0.2, random_state=3
    )
    result = cross_validate(model, X, y, cv=CV, scoring=SCORING, return_estimator=True)
    for fitted, fold in zip(result["estimator"], dask_folds(CV, X, y), strict=True):
        alone = clone(model).fit(fold.take(X, TRAIN), fold.take(y, TRAIN))
        assert len(fitted.estimators_) == len(alone.estimators_) == N_SHARDS
        for ours, theirs in zip(fitted.estimators_, alone.estimators_, strict=True):
            np.testing.assert_array_equal(ours.coef_, theirs.coef_)
            np.testing.assert_array_equal(ours.intercept_, theirs.intercept_)
        np.testing.assert_array_equal(fitted.validation_scores_, alone.validation_scores_)
        np.testing.assert_array_equal(
            fitted.fusion_.fused_estimator_.coef_, alone.fusion_.fused_estimator_.coef_
        )
        # the shard fits ran next to their blocks, like the fit alone
        assert fitted.shard_report_.to_frame()["worker"].notna().all()


def _ensembles():
    return [
        ShardEnsembleClassifier(LogisticRegression(C=0.1), fusion="stacking", random_state=0),
        ShardEnsembleClassifier(DecisionTreeClassifier(), fusion="best-model", random_state=1),
        ShardEnsembleClassifier(LogisticRegression(), fusion="soft-voting", n_shards=2, sharding="shuffle"),
    ]


def test_fit_shard_ensembles_equals_fitting_one_by_one(data):
    X, y = data
    Xs, ys = [X, X[:240], X[120:]], [y, y[:240], y[120:]]
    together = fit_shard_ensembles(_ensembles(), Xs, ys)
    seeds = [e.random_state for e in together]
    alone = [
        e.set_params(random_state=seed).fit(a, b)
        for e, seed, a, b in zip(_ensembles(), seeds, Xs, ys, strict=True)
    ]
    X_np = X.compute()
    # the third ensemble has random_state=None: its seed is fresh each time, so only its shape is compared
    for ours, theirs in zip(together[:2], alone[:2], strict=True):
        np.testing.assert_array_equal(ours.predict_proba(X_np), theirs.predict_proba(X_np))
        np.testing.assert_array_equal(ours.validation_scores_, theirs.validation_scores_)
    assert together[2].n_shards_ == 2
    assert len(together[2].estimators_) == 2


def test_fit_shard_ensembles_refuses_what_it_cannot_place_together(data):
    X, y = data
    with pytest.raises(ValueError, match=r"one X and one y per ensemble; got 2 ensemble\(s\), 1 X"):
        fit_shard_ensembles(_ensembles()[:2], [X], [y])
    with pytest.raises(TypeError, match="got LogisticRegression"):
        fit_shard_ensembles([LogisticRegression()], [X], [y])
    with pytest.raises(ValueError, match="same columns and dtypes"):
        fit_shard_ensembles(_ensembles()[:2], [X, X[:, :3]], [y, y])
    regressors = [ShardEnsembleRegressor(LogisticRegression(), fusion="hard-voting")]
    with pytest.raises(ValueError, match="HardVoting counts votes for class labels"):
        fit_shard_ensembles(regressors, [X], [y.astype(float)])


def test_a_failing_candidate_falls_back_to_one_by_one_and_gets_error_score(data, caplog):
    X, y = data
    grid = {"estimator__C": [1.0, -1.0]}  # C=-1 fails inside the shard fits (scikit-learn's check)
    search = GridSearchCV(ShardEnsembleClassifier(LogisticRegression(), random_state=0), grid, cv=3)
    with pytest.warns(FitFailedWarning, match="C"):
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores[0])
    assert np.isnan(scores[1])
    assert "fitting them one after the other" in caplog.text
    with pytest.raises(ValueError, match="C"):
        GridSearchCV(search.estimator, grid, cv=3, error_score="raise").fit(X, y)


def test_regressor_cross_validation_jointly_equals_one_by_one(data):
    X, _ = data
    y = X[:, 0] * 2.0 - X[:, 1] + 0.1 * X[:, 2] ** 2
    model = ShardEnsembleRegressor(Ridge(alpha=1.0), fusion="stacking", random_state=0)
    scores = {}
    for joint in (True, False):
        with dask.config.set({CONFIG_KEY: joint}):
            scores[joint] = cross_validate(model, X, y, cv=CV, scoring=["r2", "neg_mean_squared_error"])
    for key in ("test_r2", "test_neg_mean_squared_error"):
        np.testing.assert_array_equal(scores[True][key], scores[False][key])
    assert np.all(scores[True]["test_r2"] > 0.9)
