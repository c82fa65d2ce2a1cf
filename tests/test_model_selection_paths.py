"""Regularisation paths (LogisticRegressionCV, RidgeCV, LassoCV, ElasticNetCV) compared with scikit-learn.

The folds share each pass over the data: the logistic path makes one dask computation per lockstep round for
all the folds (counted), and the least-squares paths read the data once. Same folds, same answers as
scikit-learn: the chosen C or alpha identical, the scores within 1e-6 (tight solver tolerances on both sides).
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from distributed import get_task_stream
from sklearn import linear_model as sk
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import GridSearchCV as SkGridSearchCV
from sklearn.model_selection import KFold as SkKFold
from sklearn.model_selection import StratifiedKFold as SkStratifiedKFold
from sklearn.preprocessing import StandardScaler

import daskml_lab
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression, Ridge
from daskml_lab.model_selection import (
    ElasticNetCV,
    GridSearchCV,
    KFold,
    LassoCV,
    LogisticRegressionCV,
    RidgeCV,
)
from daskml_lab.solvers import FoldedProblem, lockstep_lbfgs_paths, lockstep_proximal_paths
from daskml_lab.solvers._folded import _folds_loss_grad_block, _signed_logistic_block, _signed_train_block
from daskml_lab.solvers._objectives import _loss_grad_block
from daskml_lab.testing import raise_if_computes
from tests.conftest import shared_file

pytestmark = [
    pytest.mark.timeout(240),
    # scikit-learn 1.9's transition warnings about its own defaults (we pass its current ones explicitly)
    pytest.mark.filterwarnings("ignore:'l1_ratios=None' was deprecated:FutureWarning"),
]


def _sk_logistic_cv(**kwargs):
    return sk.LogisticRegressionCV(l1_ratios=None, scoring=None, use_legacy_attributes=True, **kwargs)


@pytest.fixture(scope="module")
def magic(shared_data):
    path = shared_file(shared_data, "magic_gamma_telescope", "magic.tsv.gz")
    frame = pd.read_csv(path, sep="\t")
    y = frame.pop("target").to_numpy()
    return StandardScaler().fit_transform(frame.to_numpy()), y


@pytest.fixture(scope="module")
def cpu_act(shared_data):
    path = shared_file(shared_data, "cpu_act", "197_cpu_act.tsv.gz")
    frame = pd.read_csv(path, sep="\t")
    y = frame.pop("target").to_numpy(dtype=np.float64)
    return frame.to_numpy(dtype=np.float64), y


# -- level 1: the kernel against the single-problem kernel on each fold's rows -----------------------------


@pytest.mark.parametrize(("loss", "n_outputs"), [("logistic", 1), ("multinomial", 3)])
def test_folded_kernel_is_each_folds_kernel_on_its_train_rows(loss, n_outputs):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    y = rng.integers(0, max(2, n_outputs), size=50)
    roles = rng.integers(0, 3, size=(50, 3)).astype(np.int8)
    W = rng.normal(size=(5, 3 * n_outputs))
    out = _folds_loss_grad_block(
        X, y, roles, W, [0, 1, 2], loss=loss, n_outputs=n_outputs, fit_intercept=True
    )
    for f in range(3):
        rows = roles[:, f] == 0
        value, grad = _loss_grad_block(
            X[rows], y[rows], None, W[:, f * n_outputs : (f + 1) * n_outputs], loss=loss, fit_intercept=True
        )
        assert out["loss"][f] == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(out["grad"][:, f * n_outputs : (f + 1) * n_outputs], grad, rtol=1e-10)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("columns", [[0, 1, 2], [2, 0], [1, 1, 0, 2]])
def test_binary_signed_kernel_is_each_folds_kernel_on_its_train_rows(sparse, columns):
    # the shared pass's binary kernel (signs made once per block, sub-block buffers) against the single-problem
    # kernel on each fold's train rows, margins from tiny to far beyond the clipping at 36
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 4)) * np.array([0.1, 1.0, 10.0, 100.0])
    y = rng.integers(0, 2, size=5000)
    roles = rng.integers(0, 3, size=(5000, 3)).astype(np.int8)
    W = rng.normal(size=(5, len(columns)))
    block = scipy.sparse.csr_matrix(X) if sparse else X
    signs = _signed_train_block(block, y, roles)
    n_train = (roles == 0).sum(axis=0)[columns]
    out = _signed_logistic_block(block, signs, W, columns, n_train, True)
    for i, f in enumerate(columns):
        rows = roles[:, f] == 0
        value, grad = _loss_grad_block(X[rows], y[rows], None, W[:, [i]], loss="logistic", fit_intercept=True)
        assert out["loss"][i] == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(out["grad"][:, [i]], grad, rtol=1e-10, atol=1e-9 * np.abs(grad).max())


# -- LogisticRegressionCV -----------------------------------------------------------------------------------


def test_logistic_cv_matches_scikit_learn_on_magic(magic):
    X, y = magic
    Cs = np.logspace(-4, 2, 7)
    with dask.config.set(scheduler="sync"):
        ours = LogisticRegressionCV(Cs=Cs, cv=5, tol=1e-8, max_iter=1000).fit(
            da.from_array(X, chunks=4000), y
        )
    reference = _sk_logistic_cv(Cs=Cs, cv=5, tol=1e-8, max_iter=1000).fit(X, y)
    np.testing.assert_array_equal(ours.C_, reference.C_)
    np.testing.assert_array_equal(ours.Cs_, reference.Cs_)
    key = reference.classes_[1]
    np.testing.assert_allclose(ours.scores_[key], reference.scores_[key], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.coefs_paths_[key], reference.coefs_paths_[key], rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=0, atol=1e-4)
    # lockstep: one round per evaluation of the fold that needed the most, not one pass per fold evaluation
    assert ours.n_rounds_ == ours.n_evaluations_.max() < ours.n_evaluations_.sum()


def test_logistic_cv_multinomial_and_log_loss_match_scikit_learn():
    X, y = make_classification(n_samples=600, n_features=6, n_informative=4, n_classes=3, random_state=0)
    cv = SkStratifiedKFold(3, shuffle=True, random_state=0)  # a scikit-learn splitter: roles from its indices
    with dask.config.set(scheduler="sync"):
        ours = LogisticRegressionCV(Cs=5, cv=cv, scoring="neg_log_loss", tol=1e-10, max_iter=1000)
        ours.fit(da.from_array(X, chunks=150), y)
    reference = _sk_logistic_cv(Cs=5, cv=cv, tol=1e-10, max_iter=1000)
    reference.set_params(scoring="neg_log_loss").fit(X, y)
    np.testing.assert_array_equal(ours.C_, reference.C_)
    np.testing.assert_allclose(ours.scores_[0], reference.scores_[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("n_classes", "scoring"), [(2, None), (2, "neg_log_loss"), (3, None)])
def test_logistic_cv_with_sample_weight_matches_scikit_learn(n_classes, scoring):
    # weighted losses (each fold's sample count its sum of train weights), weighted test scores, weighted refit
    X, y = make_classification(
        n_samples=600, n_features=6, n_informative=4, n_classes=n_classes, random_state=2
    )
    weights = np.random.default_rng(2).uniform(0.1, 4.0, size=len(y))
    cv = SkStratifiedKFold(3, shuffle=True, random_state=0)
    options = {"Cs": 6, "cv": cv, "scoring": scoring, "tol": 1e-10, "max_iter": 1000}
    with dask.config.set(scheduler="sync"):
        ours = LogisticRegressionCV(**options).fit(
            da.from_array(X, chunks=150), da.from_array(y, chunks=150), da.from_array(weights, chunks=150)
        )
        unweighted = LogisticRegressionCV(**options).fit(da.from_array(X, chunks=150), y)
    reference = _sk_logistic_cv(**{k: v for k, v in options.items() if k != "scoring"}).set_params(
        scoring=scoring
    )
    reference.fit(X, y, sample_weight=weights)
    key = reference.classes_[-1]
    np.testing.assert_array_equal(ours.C_, reference.C_)
    np.testing.assert_allclose(ours.scores_[key], reference.scores_[key], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, reference.intercept_, rtol=0, atol=1e-4)
    # the weights made a difference the comparison can see
    assert np.abs(unweighted.scores_[key] - ours.scores_[key]).max() > 1e-3


@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 2: 0.5}])
@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_logistic_cv_with_class_weight_matches_scikit_learn(class_weight, with_sample_weight):
    # class weights in the losses and the refit, the test scores weighted by sample_weight only
    X, y = make_classification(
        n_samples=600, n_features=6, n_informative=4, n_classes=3, weights=[0.6, 0.3, 0.1], random_state=4
    )
    if not isinstance(class_weight, dict):
        y = (y > 0).astype(int)  # binary, imbalanced (the signed kernel)
    weights = np.random.default_rng(4).uniform(0.1, 4.0, size=len(y)) if with_sample_weight else None
    cv = SkStratifiedKFold(3, shuffle=True, random_state=0)
    options = {"Cs": 6, "cv": cv, "tol": 1e-10, "max_iter": 1000, "class_weight": class_weight}
    with dask.config.set(scheduler="sync"):
        ours = LogisticRegressionCV(**options).fit(
            da.from_array(X, chunks=150),
            da.from_array(y, chunks=150),
            None if weights is None else da.from_array(weights, chunks=150),
        )
    reference = _sk_logistic_cv(**options).fit(X, y, sample_weight=weights)
    key = reference.classes_[-1]
    np.testing.assert_array_equal(ours.C_, reference.C_)
    np.testing.assert_allclose(ours.scores_[key], reference.scores_[key], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, reference.intercept_, rtol=0, atol=1e-4)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_elastic_net_logistic_cv_matches_scikit_learn_saga(magic, n_classes):
    # every (l1_ratio, fold) path by FISTA in the shared passes against scikit-learn's saga path, both near
    # their optimum: the same scores, paths, zeros, best (C, l1_ratio) and refitted model
    if n_classes == 2:
        rows = np.random.default_rng(0).choice(
            len(magic[1]), 3000, replace=False
        )  # the file is sorted by class
        X, y = magic[0][rows], magic[1][rows]
    else:
        X, y = make_classification(n_samples=900, n_features=8, n_informative=4, n_classes=3, random_state=5)
        X = StandardScaler().fit_transform(X)
    folds = list(SkStratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    # three classes: weaker penalties make FISTA's multinomial paths slow, so a shorter grid
    Cs = np.logspace(-2, 1, 4) if n_classes == 2 else np.logspace(-2, 0, 3)
    options = {"Cs": Cs, "l1_ratios": [0.0, 0.5, 1.0], "cv": folds}
    with dask.config.set(scheduler="sync"):
        ours = LogisticRegressionCV(**options, scoring="neg_log_loss", tol=1e-7, max_iter=5000)
        ours.fit(da.from_array(X, chunks=500), da.from_array(y, chunks=500))
    reference = sk.LogisticRegressionCV(
        **options, solver="saga", tol=1e-10, max_iter=20_000, use_legacy_attributes=True
    )
    reference.set_params(scoring="neg_log_loss").fit(X, y)
    key = reference.classes_[-1]
    assert ours.scores_[key].shape == reference.scores_[key].shape == (3, len(Cs), 3)
    assert ours.coefs_paths_[key].shape == reference.coefs_paths_[key].shape
    assert ours.n_iter_.shape == reference.n_iter_.shape == (1, 3, len(Cs), 3)
    np.testing.assert_array_equal(ours.l1_ratios_, reference.l1_ratios_)
    np.testing.assert_array_equal(ours.C_, reference.C_)
    np.testing.assert_array_equal(ours.l1_ratio_, reference.l1_ratio_)
    np.testing.assert_allclose(ours.scores_[key], reference.scores_[key], rtol=0, atol=1e-6)
    ours_paths, sk_paths = ours.coefs_paths_[key], reference.coefs_paths_[key]
    np.testing.assert_allclose(ours_paths, sk_paths, rtol=0, atol=1e-4)
    # the L1 steps give exact zeros where saga's do, and only there (up to the solvers' precision)
    assert np.all(np.abs(ours_paths[sk_paths == 0]) < 1e-4)
    assert np.all(ours_paths[np.abs(sk_paths) > 1e-4] != 0)
    assert np.sum(ours_paths[:, :, 1:, :-1] == 0) > 10  # the l1 penalties did zero out coefficients
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=0, atol=1e-4)


def test_logistic_cv_l1_ratios_zero_is_the_l2_path_and_refit_false_averages():
    X, y = make_classification(n_samples=600, n_features=6, n_informative=4, random_state=3)
    Xd, yd = da.from_array(X, chunks=150), da.from_array(y, chunks=150)
    options = {"Cs": 4, "cv": 3, "tol": 1e-6, "max_iter": 1000}
    with dask.config.set(scheduler="sync"):
        l2 = LogisticRegressionCV(**options).fit(Xd, yd)
        zero = LogisticRegressionCV(**options, l1_ratios=[0.0]).fit(Xd, yd)
        averaged = LogisticRegressionCV(**options, l1_ratios=[0.2, 0.8], refit=False).fit(Xd, yd)
    # a list of zeros: the same L2 path, with scikit-learn's l1_ratio axis
    np.testing.assert_array_equal(zero.scores_[1][:, :, 0], l2.scores_[1])
    np.testing.assert_array_equal(zero.coefs_paths_[1][:, :, 0], l2.coefs_paths_[1])
    np.testing.assert_array_equal(zero.coef_, l2.coef_)
    assert l2.l1_ratio_.tolist() == zero.l1_ratio_.tolist() == [0.0]
    # refit=False: the mean of each fold's best (C, l1_ratio) and of its coefficients, as scikit-learn
    scores = averaged.scores_[1].reshape(3, -1)
    best = np.argmax(scores, axis=1)
    c_index, r_index = np.unravel_index(best, (4, 2))
    np.testing.assert_allclose(averaged.C_, [averaged.Cs_[c_index].mean()])
    np.testing.assert_allclose(averaged.l1_ratio_, [averaged.l1_ratios_[r_index].mean()])
    paths = averaged.coefs_paths_[1]
    expected = np.mean(
        [paths[f, c, r] for f, (c, r) in enumerate(zip(c_index, r_index, strict=True))], axis=0
    )
    np.testing.assert_allclose(averaged.coef_[0], expected[:-1])
    np.testing.assert_allclose(averaged.intercept_, expected[-1:])


def test_logistic_cv_one_computation_per_round_for_all_folds():
    X, y = make_classification(n_samples=400, n_features=5, random_state=1)
    model = LogisticRegressionCV(Cs=4, cv=KFold(4), refit=False, tol=1e-6)
    with raise_if_computes(max_computes=None) as counter:
        model.fit(da.from_array(X, chunks=100), da.from_array(y, chunks=100))
    # class counts, keeping the blocks (persist), fold row counts, the rounds, the scoring pass: none per fold
    assert counter.n_computes == 1 + 1 + 1 + model.n_rounds_ + 1
    assert model.n_passes_ == model.n_rounds_ + 1
    assert model.n_rounds_ == model.n_evaluations_.max() < model.n_evaluations_.sum()


@pytest.mark.cluster
@pytest.mark.parametrize("l1_ratios", [None, [0.5]], ids=["l2-lbfgs", "elastic-net-fista"])
def test_logistic_cv_on_a_cluster_reads_each_block_once_per_round(client, l1_ratios):
    X, y = make_classification(n_samples=2000, n_features=6, random_state=2)
    Xd, yd = da.from_array(X, chunks=250), da.from_array(y, chunks=250)
    tol = 1e-6 if l1_ratios is None else 1e-8
    with get_task_stream(client) as stream:
        model = LogisticRegressionCV(Cs=3, l1_ratios=l1_ratios, cv=4, refit=False, tol=tol, max_iter=2000)
        model.fit(Xd, yd)
    grads = [task["key"] for task in stream.data if str(task["key"]).startswith("daskml-cv-path-grad-")]
    rounds = {key.rsplit("-", 1)[0] for key in grads}
    assert len(rounds) == model.n_rounds_
    assert len(grads) == model.n_rounds_ * Xd.numblocks[0]  # every block once per round, for all 4 folds
    if l1_ratios is None:
        reference = _sk_logistic_cv(Cs=3, cv=4, tol=1e-6, refit=False).fit(X, y)
    else:
        # refit=True: scikit-learn 1.9.1's refit=False fails on an l1_ratio axis (a TypeError); the scores come
        # before the refit either way
        reference = sk.LogisticRegressionCV(
            Cs=3,
            l1_ratios=l1_ratios,
            cv=4,
            solver="saga",
            tol=1e-10,
            max_iter=20_000,
            scoring=None,
            use_legacy_attributes=True,
        ).fit(X, y)
    np.testing.assert_allclose(model.scores_[1], reference.scores_[1], rtol=0, atol=1e-6)


def test_logistic_cv_errors_before_work():
    X, y = make_classification(n_samples=100, random_state=0)
    with pytest.raises(ValueError, match="Cs must be a positive int or a non-empty list"):
        LogisticRegressionCV(Cs=[1.0, -1.0]).fit(X, y)
    with pytest.raises(ValueError, match="'scoring' parameter of LogisticRegressionCV"):
        LogisticRegressionCV(scoring="roc_auc").fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticRegressionCV().fit(X, np.zeros(100))
    for l1_ratios in ([], [0.5, 1.5], [np.nan]):
        with pytest.raises(
            ValueError, match="l1_ratios must be None or a non-empty list of floats between 0"
        ):
            LogisticRegressionCV(l1_ratios=l1_ratios).fit(X, y)


# -- RidgeCV, LassoCV, ElasticNetCV ---------------------------------------------------------------------------


def test_ridge_cv_is_scikit_learns_and_reads_the_data_once(cpu_act):
    X, y = cpu_act
    alphas = np.logspace(-3, 5, 17)
    with raise_if_computes(max_computes=1):  # the fold statistics: one pass for every fold and alpha
        ours = RidgeCV(alphas=alphas, cv=KFold(5)).fit(
            da.from_array(X, chunks=2000), da.from_array(y, chunks=2000)
        )
    search = SkGridSearchCV(sk.Ridge(), {"alpha": alphas}, cv=SkKFold(5)).fit(X, y)
    reference = sk.RidgeCV(alphas=alphas, cv=SkKFold(5)).fit(X, y)
    assert ours.alpha_ == reference.alpha_
    assert ours.best_score_ == pytest.approx(reference.best_score_, abs=1e-9)
    np.testing.assert_allclose(ours.cv_scores_.mean(axis=1), search.cv_results_["mean_test_score"], atol=1e-9)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=1e-8, atol=1e-8)
    assert ours.intercept_ == pytest.approx(reference.intercept_, rel=1e-8)


def test_ridge_cv_with_unused_rows_and_mse_scoring():
    X, y = make_regression(n_samples=300, n_features=5, noise=30.0, random_state=0)
    rng = np.random.default_rng(0)
    splits = []
    for _ in range(3):
        order = rng.permutation(300)
        splits.append((order[:150], order[150:220]))  # 80 rows in neither set
    alphas = [0.1, 10.0, 100.0, 1000.0]
    with dask.config.set(scheduler="sync"):
        ours = RidgeCV(alphas=alphas, cv=splits, scoring="neg_mean_squared_error").fit(
            da.from_array(X, chunks=70), y
        )
    search = SkGridSearchCV(sk.Ridge(), {"alpha": alphas}, cv=splits, scoring="neg_mean_squared_error").fit(
        X, y
    )
    assert ours.alpha_ == search.best_params_["alpha"]
    np.testing.assert_allclose(ours.cv_scores_.mean(axis=1), search.cv_results_["mean_test_score"], rtol=1e-9)


def test_lasso_cv_is_scikit_learns(cpu_act):
    X, y = cpu_act
    X = StandardScaler().fit_transform(X)
    with raise_if_computes(max_computes=1):
        ours = LassoCV(cv=KFold(5), tol=1e-10, max_iter=100_000, alphas=30).fit(
            da.from_array(X, chunks=2000), y
        )
    reference = sk.LassoCV(cv=SkKFold(5), tol=1e-10, max_iter=100_000, alphas=30).fit(X, y)
    assert ours.alpha_ == pytest.approx(reference.alpha_, rel=1e-12)
    assert np.argmin(ours.mse_path_.mean(axis=1)) == np.argmin(reference.mse_path_.mean(axis=1))
    np.testing.assert_allclose(ours.alphas_, reference.alphas_, rtol=1e-12)
    np.testing.assert_allclose(ours.mse_path_, reference.mse_path_, rtol=1e-6)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=1e-6, atol=1e-6)


@pytest.mark.cluster
def test_elastic_net_cv_on_a_cluster_is_scikit_learns(client):
    X, y = make_regression(n_samples=1200, n_features=12, n_informative=4, noise=15.0, random_state=3)
    ours = ElasticNetCV(l1_ratio=[0.2, 0.7, 1.0], alphas=25, cv=KFold(4), tol=1e-10, max_iter=100_000)
    ours.fit(da.from_array(X, chunks=300), da.from_array(y, chunks=300))
    reference = sk.ElasticNetCV(
        l1_ratio=[0.2, 0.7, 1.0], alphas=25, cv=SkKFold(4), tol=1e-10, max_iter=100_000
    )
    reference.fit(X, y)
    assert (ours.alpha_, ours.l1_ratio_) == pytest.approx((reference.alpha_, reference.l1_ratio_), rel=1e-12)
    np.testing.assert_allclose(ours.mse_path_, reference.mse_path_, rtol=1e-6)
    np.testing.assert_allclose(ours.predict(X), reference.predict(X), rtol=1e-6, atol=1e-6)


# -- GridSearchCV over the penalty of our linear models: routed through the shared passes ---------------------


class _NotRouted(LogisticRegression):
    """The same model, but not the exact class the search recognises: it runs one fit per (candidate, fold)."""


def test_grid_search_over_C_of_our_logistic_regression_shares_the_passes(monkeypatch):
    X, y = make_classification(n_samples=600, n_features=6, random_state=4)
    Xd, yd = da.from_array(X, chunks=150), da.from_array(y, chunks=150)
    grid = {"C": [10.0, 0.01, 1.0, 0.1, 100.0]}
    options = {"cv": 3, "scoring": ["accuracy", "neg_log_loss"], "refit": False}
    batches = []
    evaluate = FoldedProblem.loss_grad

    def recording(self, params):
        batches.append(len(params))
        return evaluate(self, params)

    monkeypatch.setattr(FoldedProblem, "loss_grad", recording)
    with raise_if_computes(max_computes=None) as counter:
        ours = GridSearchCV(LogisticRegression(tol=1e-8), grid, **options).fit(Xd, yd).cv_results_
    # one computation per round, each round for every (candidate, fold) still running: 15 in the first
    assert batches[0] == 5 * 3
    # classes, the stratified folds' class counts, persist, fold rows, the rounds, two scoring passes
    assert counter.n_computes == 1 + 1 + 1 + 1 + len(batches) + 2
    separate = GridSearchCV(_NotRouted(tol=1e-8), grid, **options).fit(Xd, yd).cv_results_
    reference = SkGridSearchCV(sk.LogisticRegression(tol=1e-8), grid, **options).fit(X, y).cv_results_
    for key in ("mean_test_accuracy", "mean_test_neg_log_loss", "split2_test_neg_log_loss"):
        np.testing.assert_allclose(ours[key], reference[key], rtol=0, atol=1e-6)
        np.testing.assert_allclose(ours[key], separate[key], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours["rank_test_accuracy"], reference["rank_test_accuracy"])


def test_grid_search_over_alpha_of_our_ridge_is_one_pass():
    X, y = make_regression(n_samples=800, n_features=10, noise=40.0, random_state=5)
    grid = {"alpha": [0.1, 10.0, 100.0, 1000.0]}
    with raise_if_computes(max_computes=1):
        ours = GridSearchCV(Ridge(), grid, cv=KFold(4), refit=False).fit(da.from_array(X, chunks=200), y)
    reference = SkGridSearchCV(sk.Ridge(), grid, cv=SkKFold(4)).fit(X, y)
    np.testing.assert_array_equal(
        ours.cv_results_["rank_test_score"], reference.cv_results_["rank_test_score"]
    )
    np.testing.assert_allclose(
        ours.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"], atol=1e-9
    )


def test_paths_take_sparse_blocks_clone_and_survive_save_load(tmp_path):
    X, y = make_classification(n_samples=400, n_features=10, random_state=0)
    X[np.abs(X) < 0.8] = 0  # mostly zeros: CSR blocks through the same kernels
    with dask.config.set(scheduler="sync"):
        sparse = LogisticRegressionCV(Cs=4, cv=3, tol=1e-8).fit(scipy.sparse.csr_matrix(X), y)
        dense = clone(sparse).fit(X, y)
    np.testing.assert_array_equal(sparse.scores_[1], dense.scores_[1])
    np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-8)
    for model in (dense, RidgeCV(cv=3).fit(X, y.astype(float))):
        daskml_lab.save(model, tmp_path / f"{type(model).__name__}.daskml")
        loaded = daskml_lab.load(tmp_path / f"{type(model).__name__}.daskml")
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_lockstep_raises_a_failed_pass_and_warns_at_max_iter():
    def failing(batch):
        raise OSError("worker lost")

    with pytest.raises(OSError, match="worker lost"):  # every fold's thread ends; nothing hangs
        lockstep_lbfgs_paths(
            failing,
            n_folds=3,
            n_params=2,
            n_outputs=1,
            n_features=1,
            data_scales=[1.0] * 3,
            l2_path=[[1.0]] * 3,
        )

    def quadratic(batch):  # D_f(W) = ||W - f||^2 / 2 for fold f
        return {f: (0.5 * float(np.sum((W - f) ** 2)), W - f) for f, W in batch.items()}

    result = lockstep_lbfgs_paths(
        quadratic,
        n_folds=3,
        n_params=2,
        n_outputs=1,
        n_features=1,
        data_scales=[1.0] * 3,
        l2_path=[[0.0]] * 3,
    )
    np.testing.assert_allclose(result.coefs[:, 0, :, 0], [[0, 0], [1, 1], [2, 2]], atol=1e-8)
    assert result.n_rounds == result.n_evaluations.max()
    X, y = make_classification(n_samples=200, random_state=0)
    with pytest.warns(ConvergenceWarning, match="did not converge for"):
        LogisticRegressionCV(Cs=2, cv=3, max_iter=1, refit=False).fit(X, y)


def test_lockstep_proximal_paths_soft_threshold_each_fold_and_raise_a_failed_pass():
    targets = np.array([[3.0, 1.0], [-2.0, 0.5], [0.2, -1.0]])  # fold f: D_f(W) = ||W - targets[f]||^2 / 2

    def quadratic(batch):
        return {
            f: (0.5 * float(np.sum((W[:, 0] - targets[f]) ** 2)), (W[:, 0] - targets[f])[:, None])
            for f, W in batch.items()
        }

    l1_path = [[2.0, 0.5, 0.0]] * 3  # strongest first; the second parameter is an unpenalised intercept
    result = lockstep_proximal_paths(
        quadratic,
        n_folds=3,
        n_params=2,
        n_outputs=1,
        n_features=1,
        data_scales=[1.0] * 3,
        l2_path=[[0.0] * 3] * 3,
        l1_path=l1_path,
        tol=1e-10,
    )
    for point, l1 in enumerate(l1_path[0]):
        shrunk = np.sign(targets[:, 0]) * np.maximum(np.abs(targets[:, 0]) - l1, 0.0)
        np.testing.assert_allclose(result.coefs[:, point, 0, 0], shrunk, atol=1e-8)
        np.testing.assert_allclose(result.coefs[:, point, 1, 0], targets[:, 1], atol=1e-8)
    assert result.coefs[2, 0, 0, 0] == 0.0  # |0.2| < 2: exactly zero, not merely small
    assert result.n_rounds == result.n_evaluations.max()

    def failing(batch):
        raise OSError("worker lost")

    with pytest.raises(OSError, match="worker lost"):
        lockstep_proximal_paths(
            failing,
            n_folds=2,
            n_params=2,
            n_outputs=1,
            n_features=1,
            data_scales=[1.0] * 2,
            l2_path=[[0.0]] * 2,
            l1_path=[[1.0]] * 2,
        )
