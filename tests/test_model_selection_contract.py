"""Issue 14's test list, the parts the other model-selection modules leave open.

- scikit-learn's estimator checks on the searches and on ``LogisticRegressionCV`` (as scikit-learn's own
  ``test_search_cv`` runs them on its searches), on numpy input;
- a9a (sparse, from ../shared/data; skipped when absent): the same ``best_params_`` and mean scores as
  scikit-learn's ``GridSearchCV`` on the same folds, our side a grid over ``C`` of our ``LogisticRegression``
  on row blocks of sparse matrices (the shared passes) on a real multi-process cluster;
- a worker killed in the middle of a search of our own estimator on dask data, between two of its shared passes
  (the blocks it held are computed again from their lineage): the same results as without the fault;
- a search of our own estimator on dask data resumed from its checkpoint fits only the missing pairs.

The in-memory cases (scikit-learn estimators, MAGIC, checkpoints, a killed worker) are in
``test_model_selection_cluster.py`` and ``test_model_selection_checkpoint.py``.
"""

from __future__ import annotations

import os
import signal
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from _fault_injection import three_worker_cluster
from distributed import Client
from sklearn import linear_model as sk
from sklearn.base import clone
from sklearn.datasets import load_svmlight_file, make_classification
from sklearn.experimental import enable_halving_search_cv  # noqa: F401 -- scikit-learn's reference
from sklearn.model_selection import GridSearchCV as SkGridSearchCV
from sklearn.model_selection import HalvingGridSearchCV as SkHalvingGridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from daskml_lab.data import read_svmlight
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression, Ridge
from daskml_lab.model_selection import GridSearchCV, HalvingGridSearchCV, LogisticRegressionCV
from daskml_lab.solvers import FoldedProblem
from tests.conftest import shared_file

pytestmark = [
    pytest.mark.timeout(240),
    # scikit-learn 1.9's transition warnings about its own defaults (we pass its current ones explicitly)
    pytest.mark.filterwarnings("ignore:'l1_ratios=None' was deprecated:FutureWarning"),
]

# -- scikit-learn's estimator checks -------------------------------------------------------------------------

# One of each kind: a lockstep path, a grid search (the in-memory route: one fit per (candidate, fold)) and a
# successive-halving search; RandomizedSearchCV and HalvingRandomSearchCV share their fit with these.
SEARCHES = [
    LogisticRegressionCV(Cs=2, cv=2, tol=1e-2),  # a loose tol: half the lockstep rounds of the default
    GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2),
    HalvingGridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, cv=2, min_resources="smallest"),
]


@parametrize_with_checks(SEARCHES)
def test_searches_pass_scikit_learn_checks(estimator, check):
    # in this process: the contract does not depend on the scheduler, and the lockstep rounds on tiny data are
    # cheaper without a thread pool
    with dask.config.set(scheduler="sync"):
        check(estimator)


# -- a9a: the same choice as scikit-learn on the same folds ----------------------------------------------------


@pytest.fixture(scope="module")
def a9a(shared_data):
    """a9a's test file (16,281 rows, 123 binary features): in memory, and as 2 row blocks of sparse matrices."""
    path = shared_file(shared_data, "a9a_libsvm", "a9a.t.gz")
    X, y = load_svmlight_file(str(path), n_features=123)
    Xd, yd = read_svmlight(str(path), n_features=123, zero_based=False, chunks=8192)
    return X, y, Xd, yd


@pytest.mark.cluster
def test_a9a_grid_search_is_scikit_learns_on_the_same_folds(client, a9a):
    X, y, Xd, yd = a9a
    assert Xd.numblocks[0] == 2
    Cs = [0.001, 0.01, 0.1]
    # cv=3 for a classifier: unshuffled stratified folds, scikit-learn's rows on both sides
    ours = GridSearchCV(LogisticRegression(), {"C": Cs}, cv=3).fit(Xd, yd)
    reference = SkGridSearchCV(sk.LogisticRegression(), {"C": Cs}, cv=3).fit(X, y)
    assert ours.best_params_ == reference.best_params_
    np.testing.assert_allclose(
        ours.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"], rtol=0, atol=1e-6
    )


# -- our own estimator on dask data: a killed worker, and a resumed search ------------------------------------

GRID = {"C": [0.01, 0.1, 1.0]}


@pytest.fixture(scope="module")
def blocks():
    X, y = make_classification(n_samples=3000, n_features=8, n_informative=5, random_state=0)
    return da.from_array(X, chunks=(375, 8)), da.from_array(y, chunks=375)


@pytest.mark.cluster
@pytest.mark.slow
def test_a_worker_killed_between_shared_passes_does_not_change_the_search(blocks, monkeypatch):
    X, y = blocks
    search = GridSearchCV(LogisticRegression(tol=1e-6), GRID, cv=3)
    with dask.config.set(scheduler="sync"):
        reference = clone(search).fit(X, y)
    with three_worker_cluster() as cluster, Client(cluster) as client:
        client.wait_for_workers(3, timeout=60)
        pids = client.run(os.getpid)
        evaluate = FoldedProblem.loss_grad
        killed: list[str] = []
        calls: list[int] = []

        def loss_grad(self, params):
            calls.append(len(params))
            if len(calls) == 3:  # the blocks and the fold roles are on the workers by now
                held = client.has_what()
                worker = max(held, key=lambda address: len(held[address]))
                os.kill(pids[worker], signal.SIGKILL)
                killed.append(worker)
            return evaluate(self, params)

        monkeypatch.setattr(FoldedProblem, "loss_grad", loss_grad)
        ours = clone(search).fit(X, y)
    assert killed, "the search ended before the fault"
    assert calls[0] == 3 * 3  # the shared passes ran: all (candidate, fold) problems in each
    assert ours.best_params_ == reference.best_params_
    for key in ("mean_test_score", "split0_test_score", "split2_test_score"):
        np.testing.assert_allclose(ours.cv_results_[key], reference.cv_results_[key], rtol=0, atol=1e-12)


def test_a_resumed_search_of_our_estimator_fits_only_the_missing_pairs(blocks, tmp_path, monkeypatch):
    X, y = blocks
    fitted: list[float] = []
    fit = LogisticRegression.fit

    def counted_fit(self, X, y, sample_weight=None):
        fitted.append(self.C)
        return fit(self, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(LogisticRegression, "fit", counted_fit)
    checkpoint = tmp_path / "ckpt"
    search = GridSearchCV(LogisticRegression(tol=1e-8), GRID, cv=3, checkpoint=checkpoint)
    with dask.config.set(scheduler="sync"):
        complete = search.fit(X, y)
        # the shared passes fitted every pair without a fit each; only the best candidate was refitted
        assert fitted == [complete.best_params_["C"]]
        saved = sorted(checkpoint.glob("fit-*.json"))
        assert len(saved) == 9
        for name in ("fit-0-1.json", "fit-1-0.json", "fit-1-2.json", "fit-2-2.json"):
            (checkpoint / name).unlink()  # as if interrupted before these four pairs were saved
        fitted.clear()
        resumed = GridSearchCV(LogisticRegression(tol=1e-8), GRID, cv=3, checkpoint=checkpoint).fit(X, y)
    # the four missing pairs, one fit each, then the refit of the best candidate
    assert sorted(fitted[:4]) == [0.01, 0.1, 0.1, 1.0]
    assert len(fitted) == 5
    assert len(list(checkpoint.glob("fit-*.json"))) == 9
    assert resumed.best_params_ == complete.best_params_
    # separate fits against the lockstep path: the same optimum within the solver's tolerance
    for key in ("mean_test_score", "split1_test_score"):
        np.testing.assert_allclose(resumed.cv_results_[key], complete.cv_results_[key], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("estimator", "grid", "scoring"),
    [
        (LogisticRegression(tol=1e-8), GRID, None),
        (LogisticRegression(tol=1e-8), GRID, "neg_log_loss"),
        (Ridge(tol=1e-10), {"alpha": [0.1, 10.0, 1000.0]}, None),
        (Ridge(tol=1e-10), {"alpha": [0.1, 10.0, 1000.0]}, "neg_mean_squared_error"),
    ],
    ids=["logistic-accuracy", "logistic-log-loss", "ridge-r2", "ridge-mse"],
)
def test_train_scores_come_from_the_shared_passes_and_are_scikit_learns(
    estimator, grid, scoring, blocks, monkeypatch
):
    X, y = blocks
    if isinstance(estimator, Ridge):
        y = X[:, 0] * 2.0 - X[:, 3] + 0.1 * y  # a numeric target on the same blocks
    fitted: list[dict] = []
    fit = type(estimator).fit

    def counted_fit(self, X, y, sample_weight=None):
        fitted.append(self.get_params())
        return fit(self, X, y, sample_weight=sample_weight)

    options = {"cv": 3, "scoring": scoring, "return_train_score": True}
    with dask.config.set(scheduler="sync"):
        reference = SkGridSearchCV(clone(estimator), grid, **options).fit(X.compute(), y.compute())
        monkeypatch.setattr(type(estimator), "fit", counted_fit)
        ours = GridSearchCV(clone(estimator), grid, **options).fit(X, y)
    assert len(fitted) == 1  # the refit: every (candidate, fold) and its train score came from shared passes
    assert ours.best_params_ == reference.best_params_
    for key in reference.cv_results_:
        if key.startswith(("split", "mean_t", "std_t")):
            np.testing.assert_allclose(ours.cv_results_[key], reference.cv_results_[key], rtol=0, atol=1e-6)


def test_halving_rounds_over_max_iter_run_in_shared_passes(blocks, monkeypatch):
    # scikit-learn's default return_train_score=True: the train scores come from the same passes
    X, y = blocks
    fitted: list[int] = []
    fit = LogisticRegression.fit

    def counted_fit(self, X, y, sample_weight=None):
        fitted.append(self.max_iter)
        return fit(self, X, y, sample_weight=sample_weight)

    options = {"resource": "max_iter", "max_resources": 12, "min_resources": 4, "factor": 3, "cv": 3}
    with dask.config.set(scheduler="sync"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few iterations on purpose
        reference = SkHalvingGridSearchCV(LogisticRegression(), GRID, **options).fit(X.compute(), y.compute())
        monkeypatch.setattr(LogisticRegression, "fit", counted_fit)
        ours = HalvingGridSearchCV(LogisticRegression(), GRID, **options).fit(X, y)
    assert fitted == [12]  # only the refit, at the last round's budget
    assert ours.n_resources_ == reference.n_resources_ == [4, 12]
    assert ours.cv_results_["params"] == list(reference.cv_results_["params"])
    for key in reference.cv_results_:
        if key.startswith(("split", "mean_t", "std_t")):
            np.testing.assert_allclose(ours.cv_results_[key], reference.cv_results_[key], rtol=0, atol=1e-6)
