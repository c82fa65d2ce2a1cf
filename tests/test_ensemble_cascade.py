"""CascadeSVC: one shard is one SVC, the cascade against one SVC, feedback, laziness, cluster, sklearn API."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from distributed import get_task_stream, wait
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_blobs, make_classification, make_moons
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import log_loss
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from daskml_lab._runtime.seeding import shard_seeds
from daskml_lab.base import InvalidParameterError
from daskml_lab.ensemble import CascadeSVC
from daskml_lab.ensemble._cascade_calibration import DecisionValues, calibration_split
from daskml_lab.ensemble._cascade_svc import dual_objective, ovo_decision
from daskml_lab.testing import raise_if_computes
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def moons():
    """A nonlinear 2-D problem with overlapping classes: 3,000 training and 2,000 test rows."""
    X, y = make_moons(5000, noise=0.3, random_state=0)
    return X[:3000], y[:3000], X[3000:], y[3000:]


@pytest.fixture(scope="module")
def three_classes():
    X, y = make_classification(
        3000, 8, n_informative=5, n_classes=3, n_clusters_per_class=2, class_sep=1.5, random_state=1
    )
    labels = np.array(["ant", "bee", "cat"])[y]
    return X[:2000], labels[:2000], X[2000:], labels[2000:]


def _cubic_kernel(A, B):
    return (A @ B.T + 1.0) ** 3


def _assert_same_svc(model, reference, X):
    np.testing.assert_array_equal(model.support_, reference.support_)
    np.testing.assert_array_equal(model.final_estimator_.dual_coef_, reference.dual_coef_)
    np.testing.assert_array_equal(model.final_estimator_.intercept_, reference.intercept_)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))
    np.testing.assert_array_equal(model.decision_function(X), reference.decision_function(X))


# ---------------------------------------------------------------------------------------------------------
# one shard is one SVC, exactly


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"kernel": "poly", "degree": 2, "gamma": "auto", "coef0": 1.0, "C": 3.0},
        {"kernel": "linear", "class_weight": "balanced"},
        {"gamma": 0.7, "class_weight": {0: 2.0}},
    ],
)
def test_one_shard_is_exactly_one_svc(moons, params):
    X, y, X_test, _ = moons
    X, y = X[:800], y[:800]
    reference = SVC(**params).fit(X, y)
    model = CascadeSVC(**params, n_shards=1).fit(da.from_array(X, chunks=300), y)
    _assert_same_svc(model, reference, X_test)
    assert model.n_shards_ == 1
    assert model.n_passes_ == 1
    assert model.converged_
    assert model.cascade_report_["n_sv"].tolist() == [len(reference.support_)]


def test_one_shard_with_weights_and_string_labels_is_one_svc(three_classes):
    X, y, X_test, _ = three_classes
    X, y = X[:600], y[:600]
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    reference = SVC(decision_function_shape="ovo").fit(X, y, sample_weight=weights)
    model = CascadeSVC(decision_function_shape="ovo").fit(X, y, sample_weight=weights)  # numpy: one block
    _assert_same_svc(model, reference, X_test)
    assert model.predict(X_test).dtype == y.dtype
    assert model.decision_function(X_test).shape == (len(X_test), 3)


def test_one_shard_probabilities_are_a_held_out_platt_scaling(moons):
    X, y, X_test, _ = moons
    X, y = X[:500], y[:500]
    model = CascadeSVC(probability=True, random_state=7).fit(X, y)
    gamma = model.final_estimator_.gamma
    assert gamma == pytest.approx(1.0 / (X.shape[1] * X.var()), rel=1e-15)  # SVC's "scale" over all rows
    train, held_out = calibration_split(y, 0.1, shard_seeds(7, 1).shards[0][1])
    assert len(held_out) == 50
    svc = SVC(gamma=gamma).fit(X[train], y[train])
    np.testing.assert_array_equal(model.decision_function(X_test), svc.decision_function(X_test))
    values = svc.decision_function(X[held_out])[:, None]
    identity = FrozenEstimator(DecisionValues([0, 1]).fit(values, y[held_out]))
    calibrator = CalibratedClassifierCV(identity, method="sigmoid").fit(values, y[held_out])  # 5 folds
    expected = calibrator.predict_proba(svc.decision_function(X_test)[:, None])
    np.testing.assert_allclose(model.predict_proba(X_test), expected, rtol=1e-12)


def test_cascade_probabilities_are_as_good_as_a_calibrated_svc(moons):
    X, y, X_test, y_test = moons
    reference = CalibratedClassifierCV(SVC(), ensemble=False).fit(X, y).predict_proba(X_test)
    model = CascadeSVC(n_shards=4, probability=True, random_state=0).fit(X, y)
    proba = model.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert log_loss(y_test, proba) == pytest.approx(log_loss(y_test, reference), abs=0.02)
    assert np.mean(np.abs(proba - reference)) < 0.03
    multiclass = CascadeSVC(n_shards=3, probability=True, random_state=0)
    X3, y3 = make_classification(900, 6, n_informative=4, n_classes=3, random_state=2)
    assert multiclass.fit(X3, y3).predict_proba(X3).shape == (900, 3)


def test_dual_objective_matches_the_kernel_formula(three_classes):
    X, y, _, _ = three_classes
    for labels in (y == "bee", y):  # binary and one-vs-one
        model = SVC(gamma=0.2).fit(X[:400], labels[:400])
        expected = 0.0
        starts = np.concatenate([[0], np.cumsum(model.n_support_)])
        for i in range(len(model.classes_)):
            for j in range(i + 1, len(model.classes_)):
                rows = np.r_[starts[i] : starts[i + 1], starts[j] : starts[j + 1]]
                coef = np.r_[
                    model.dual_coef_[j - 1, starts[i] : starts[i + 1]],
                    model.dual_coef_[i, starts[j] : starts[j + 1]],
                ]
                K = rbf_kernel(model.support_vectors_[rows], gamma=0.2)
                expected += np.abs(coef).sum() - 0.5 * coef @ K @ coef
        assert dual_objective(model) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("kernel", ["rbf", "poly", "sigmoid", "linear", _cubic_kernel])
def test_ovo_decision_matches_libsvm(three_classes, kernel):
    X, y, X_test, _ = three_classes
    for labels in (y == "bee", y):  # binary and one-vs-one
        model = SVC(kernel=kernel, gamma=0.1, coef0=0.5, decision_function_shape="ovo").fit(
            X[:300], labels[:300]
        )
        expected = model.decision_function(X_test)
        np.testing.assert_allclose(ovo_decision(model, X[:300][model.support_], X_test), expected, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------
# the cascade against one SVC on all the data


@pytest.mark.parametrize(("n_shards", "fan_in"), [(4, 2), (8, 2), (7, 3)])
def test_cascade_is_within_one_point_of_one_svc(moons, n_shards, fan_in):
    X, y, X_test, y_test = moons
    reference = SVC().fit(X, y).score(X_test, y_test)
    model = CascadeSVC(n_shards=n_shards, fan_in=fan_in, random_state=0).fit(X, y)
    assert model.score(X_test, y_test) == pytest.approx(reference, abs=0.01)
    report = model.cascade_report_
    first = report[report["pass"] == 0]
    assert (first["layer"] == 0).sum() == n_shards
    assert first.loc[first["layer"] == 0, "n_train"].sum() == len(y)  # every row in exactly one shard
    trained = report[report["kind"] == "svc"]
    assert (trained["n_sv"] <= trained["n_train"]).all()
    assert model.n_shards_ == n_shards


def test_cascade_multiclass_within_one_point(three_classes):
    X, y, X_test, y_test = three_classes
    reference = SVC().fit(X, y)
    model = CascadeSVC(n_shards=4, sharding="shuffle", random_state=0).fit(X, y)
    assert model.score(X_test, y_test) == pytest.approx(reference.score(X_test, y_test), abs=0.01)
    np.testing.assert_array_equal(model.classes_, ["ant", "bee", "cat"])
    assert model.decision_function(X_test).shape == (len(X_test), 3)
    report = model.cascade_report_
    assert (report.loc[report["kind"] == "svc", "n_classes"] == 3).all()


def test_magic_gamma_telescope_within_one_point(shared_data):
    path = shared_file(shared_data, "magic_gamma_telescope", "magic.tsv.gz")
    frame = pd.read_csv(path, sep="\t").sample(n=9000, random_state=0)
    y = frame.pop("target").to_numpy()
    X = StandardScaler().fit_transform(frame.to_numpy())
    X_train, y_train, X_test, y_test = X[:6000], y[:6000], X[6000:], y[6000:]
    model = CascadeSVC(n_shards=4, random_state=0).fit(da.from_array(X_train, chunks=1500), y_train)
    reference = SVC(gamma=model.final_estimator_.gamma).fit(X_train, y_train)
    assert model.score(X_test, y_test) == pytest.approx(reference.score(X_test, y_test), abs=0.01)
    # the cascade finds nearly the same support vectors
    overlap = len(np.intersect1d(model.support_, reference.support_)) / len(reference.support_)
    assert overlap > 0.95
    report = model.cascade_report_
    roots = report.loc[report.groupby("pass")["layer"].idxmax()]
    assert roots["dual_objective"].is_monotonic_increasing
    assert roots["dual_objective"].iloc[-1] == pytest.approx(dual_objective(reference), rel=2e-3)


def test_feedback_moves_towards_the_svc_and_never_hurts_much(moons):
    X, y, X_test, y_test = moons
    reference = SVC().fit(X, y)
    results = {}
    for n_feedback in (0, 2):
        model = CascadeSVC(n_shards=6, n_feedback=n_feedback, random_state=3).fit(X, y)
        results[n_feedback] = (
            model.score(X_test, y_test),
            np.mean(model.predict(X_test) != reference.predict(X_test)),
            model.cascade_report_,
        )
    assert results[2][0] >= results[0][0] - 0.005
    assert results[2][1] <= results[0][1]  # fewer disagreements with the SVC of all the data
    report = results[2][2]
    roots = report.loc[report.groupby("pass")["layer"].idxmax()]
    assert roots["dual_objective"].is_monotonic_increasing
    feedback = report[(report["pass"] > 0) & (report["layer"] == 0)]
    assert feedback["n_violators"].notna().all()
    assert report.loc[report["pass"] == 0, "n_violators"].isna().all()


def test_converged_cascade_stops_and_equals_the_svc():
    X, y = make_blobs(1200, centers=[[-2, 0], [2, 0]], cluster_std=1.0, random_state=0)
    reference = SVC(kernel="linear").fit(X, y)
    model = CascadeSVC(kernel="linear", n_shards=4, n_feedback=6, random_state=0).fit(X, y)
    assert model.converged_
    assert model.n_passes_ < 7
    assert model.cascade_report_["pass"].max() == model.n_passes_ - 1  # skipped passes are not reported
    assert set(model.support_) == set(reference.support_)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))


def test_callable_kernel_cascade_matches_the_svc(moons):
    X, y, X_test, y_test = moons
    reference = SVC(kernel=_cubic_kernel).fit(X, y)
    model = CascadeSVC(kernel=_cubic_kernel, n_shards=4, n_feedback=2, random_state=0).fit(X, y)
    assert model.score(X_test, y_test) == pytest.approx(reference.score(X_test, y_test), abs=0.01)
    roots = model.cascade_report_.loc[model.cascade_report_.groupby("pass")["layer"].idxmax()]
    assert roots["dual_objective"].is_monotonic_increasing
    assert roots["dual_objective"].iloc[-1] == pytest.approx(
        dual_objective(reference, X[reference.support_]), rel=1e-3
    )


def test_single_class_shards_pass_up_candidates_and_feedback_repairs_them(moons):
    X, y, X_test, y_test = moons
    rows = np.concatenate([np.flatnonzero(y == 0)[:1400], np.flatnonzero(y == 1)[:1400]])  # sorted by label
    X_sorted, y_sorted = X[rows], y[rows]
    reference = SVC().fit(X_sorted, y_sorted).score(X_test, y_test)
    model = CascadeSVC(n_shards=4, sharding="contiguous", n_feedback=3, random_state=0)
    model.fit(X_sorted, y_sorted)
    report = model.cascade_report_
    first = report[(report["pass"] == 0) & (report["layer"] == 0)]
    assert (first["kind"] == "one-class").all()
    assert first["n_sv"].tolist() == [70, 70, 70, 70]  # a tenth of each shard's 700 rows
    assert model.score(X_test, y_test) == pytest.approx(reference, abs=0.01)


def test_sample_weights_travel_with_their_rows(moons):
    X, y, X_test, _ = moons
    weights = np.where(y == 1, 5.0, 1.0)
    reference = SVC().fit(X, y, sample_weight=weights)
    model = CascadeSVC(n_shards=3, random_state=0).fit(
        da.from_array(X, chunks=1000), y, sample_weight=weights
    )
    unweighted = CascadeSVC(n_shards=3, random_state=0).fit(X, y)
    agreement = np.mean(model.predict(X_test) == reference.predict(X_test))
    assert agreement > 0.99
    assert np.mean(unweighted.predict(X_test) != model.predict(X_test)) > 0.02  # the weights matter
    assert np.mean(model.predict(X_test) == 1) > np.mean(unweighted.predict(X_test) == 1)


def test_support_ids_are_rows_of_the_input(moons):
    X, y, _, _ = moons
    model = CascadeSVC(n_shards=4, sharding="shuffle", random_state=0).fit(X.astype(np.float32), y)
    np.testing.assert_array_equal(
        X.astype(np.float32)[model.support_], model.final_estimator_.support_vectors_
    )
    np.testing.assert_array_equal(y[model.support_], np.repeat([0, 1], model.final_estimator_.n_support_))


def test_results_depend_on_the_seed_only(moons):
    X, y, X_test, _ = moons
    Xd = da.from_array(X, chunks=1000)
    first = CascadeSVC(n_shards=4, random_state=5).fit(Xd, y)
    second = CascadeSVC(n_shards=4, random_state=5).fit(Xd, y)
    np.testing.assert_array_equal(first.support_, second.support_)
    np.testing.assert_array_equal(first.decision_function(X_test), second.decision_function(X_test))


# ---------------------------------------------------------------------------------------------------------
# laziness and the cluster


def test_prediction_is_lazy_with_the_model_in_the_graph_once(moons):
    X, y, X_test, _ = moons
    model = CascadeSVC(n_shards=2, probability=True, random_state=0).fit(X, y)
    X_dask = da.from_array(X_test, chunks=500)
    with raise_if_computes(max_computes=0):
        labels = model.predict(X_dask)
        decision = model.decision_function(X_dask)
        proba = model.predict_proba(X_dask)
    for result, expected in (
        (labels, model.predict(X_test)),
        (decision, model.decision_function(X_test)),
        (proba, model.predict_proba(X_test)),
    ):
        assert isinstance(result, da.Array)
        assert result.chunks[0] == (500, 500, 500, 500)
        graph = dict(result.__dask_graph__())
        assert sum(1 for key in graph if str(key).startswith("daskml-cascade-model")) == 1
        np.testing.assert_array_equal(result.compute(), expected)
    assert labels.dtype == model.classes_.dtype
    assert proba.shape == (len(X_test), 2)


def test_fit_is_one_compute(moons):
    X, y, _, _ = moons
    Xd, yd = da.from_array(X, chunks=750), da.from_array(y, chunks=750)
    with raise_if_computes(max_computes=1):
        CascadeSVC(sharding="contiguous", random_state=0).fit(Xd, yd)  # the 4 row blocks are the shards
    with raise_if_computes(max_computes=2):  # + the label counts of the stratified sharding
        model = CascadeSVC(n_shards=4, random_state=0).fit(Xd, yd)
    assert model.n_shards_ == 4


@pytest.mark.cluster
def test_shard_fits_run_where_the_shards_live(client, moons):
    X, y, X_test, y_test = moons
    Xy = client.persist(da.from_array(np.column_stack([X, y]), chunks=(750, -1)))
    wait(Xy)
    who_has = client.who_has(Xy)
    holders = {index: next(iter(who_has[key])) for index, (key,) in enumerate(Xy.__dask_keys__())}
    X_dask, y_dask = Xy[:, :2], Xy[:, 2].astype(np.int64)
    with get_task_stream(client) as stream:
        model = CascadeSVC(sharding="contiguous", n_feedback=1, random_state=0).fit(X_dask, y_dask)
    fits = [r for r in stream.data if str(r["key"][0]).startswith("daskml-cascade-fit-")]
    assert len(fits) == 8  # one task per shard and pass
    for record in fits:
        assert record["worker"] == holders[record["key"][2]]
    merges = [r for r in stream.data if str(r["key"][0]).startswith("daskml-cascade-merge-")]
    assert len(merges) == 6
    report = model.cascade_report_
    assert set(report["worker"]) <= set(client.scheduler_info()["workers"])
    with raise_if_computes(max_computes=0):
        lazy = model.predict(da.from_array(X_test, chunks=500))
    np.testing.assert_array_equal(lazy.compute(), model.predict(X_test))
    with dask.config.set(scheduler="sync"):
        local = CascadeSVC(sharding="contiguous", n_feedback=1, random_state=0)
        local.fit(da.from_array(X, chunks=750), da.from_array(y, chunks=750))
    np.testing.assert_array_equal(local.support_, model.support_)
    assert model.score(X_test, y_test) > 0.88


# ---------------------------------------------------------------------------------------------------------
# scikit-learn API


#: Checks that fail by design, with the reason.
EXPECTED_FAILURES = {
    # As for sklearn.svm.SVC (listed in scikit-learn's own expected failures): libsvm's sample weights
    # rescale C per row, which is not the same as repeating or removing rows.
    "check_sample_weight_equivalence_on_dense_data": "sample_weight is not equivalent to repeating rows (SVC)",
}
#: With probability=True, as with SVC(probability=True): the sigmoid's intercept moves the 0.5 threshold away
#: from the decision boundary, so argmax(predict_proba) may differ from predict for rows near the boundary.
EXPECTED_FAILURES_PROBABILITY = {
    **EXPECTED_FAILURES,
    "check_classifiers_train": "Platt-scaled probabilities may disagree with predict near the boundary",
}


@parametrize_with_checks(
    [CascadeSVC(), CascadeSVC(probability=True, kernel="linear")],
    expected_failed_checks=lambda estimator: (
        EXPECTED_FAILURES_PROBABILITY if estimator.probability else EXPECTED_FAILURES
    ),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_pipeline_and_grid_search(moons):
    X, y, X_test, y_test = moons
    X, y = X[:1200], y[:1200]
    grid = {"cascadesvc__C": [0.3, 3.0]}
    one_shard = GridSearchCV(make_pipeline(StandardScaler(), CascadeSVC()), grid, cv=3).fit(X, y)
    plain = GridSearchCV(make_pipeline(StandardScaler(), SVC()), {"svc__C": [0.3, 3.0]}, cv=3).fit(X, y)
    np.testing.assert_array_equal(
        one_shard.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )
    sharded = GridSearchCV(
        make_pipeline(StandardScaler(), CascadeSVC(n_shards=3, random_state=0)), grid, cv=3
    ).fit(X, y)
    np.testing.assert_allclose(
        sharded.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"], atol=0.01
    )
    assert sharded.score(X_test, y_test) == pytest.approx(plain.score(X_test, y_test), abs=0.01)


def test_dataframe_input_keeps_feature_names(moons):
    X, y, X_test, _ = moons
    frame = pd.DataFrame(X, columns=["a", "b"])
    model = CascadeSVC(n_shards=2, random_state=0).fit(frame, y)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b"])
    assert model.predict(pd.DataFrame(X_test, columns=["a", "b"])).shape == (len(X_test),)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"kernel": "precomputed"},
            r"'kernel' parameter of CascadeSVC must be a str among .*Got 'precomputed'",
        ),
        ({"fan_in": 1}, r"'fan_in' parameter of CascadeSVC must be an int in the range \[2, inf\)\. Got 1"),
        ({"n_feedback": -1}, r"'n_feedback' parameter of CascadeSVC must be an int in the range \[0, inf\)"),
        ({"C": 0.0}, r"'C' parameter of CascadeSVC must be a float in the range \(0, inf\)\. Got 0\.0"),
        ({"sharding": "hash"}, r"'sharding' parameter of CascadeSVC must be a str among .*Got 'hash'"),
        (
            {"gamma": "big"},
            r"'gamma' parameter of CascadeSVC must be a str among \{'auto', 'scale'\} or a float",
        ),
        (
            {"n_shards": 0},
            r"'n_shards' parameter of CascadeSVC must be an int in the range \[1, inf\) or None",
        ),
    ],
)
def test_invalid_parameters_are_rejected_before_any_work(moons, params, match):
    X, y, _, _ = moons
    with raise_if_computes(max_computes=0), pytest.raises(InvalidParameterError, match=match):
        CascadeSVC(**params).fit(da.from_array(X, chunks=1000), y)


def test_error_messages(moons):
    X, y, _, _ = moons
    with pytest.raises(ValueError, match="break_ties must be False when decision_function_shape is 'ovo'"):
        CascadeSVC(break_ties=True, decision_function_shape="ovo").fit(X, y)
    with pytest.raises(ValueError, match=r"n_shards=20 is larger than the number of samples \(10\)"):
        CascadeSVC(n_shards=20).fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="The target y has only one class"):
        CascadeSVC(n_shards=2).fit(X[:50], np.zeros(50))
    with pytest.raises(ValueError, match="All sample weights are zero"):
        CascadeSVC(n_shards=2).fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match=r"no row of the classes \[1\] was held out"):
        CascadeSVC(probability=True).fit(X[:7], [0, 0, 0, 0, 0, 0, 1])
    with pytest.raises(NotFittedError, match="This CascadeSVC instance is not fitted yet"):
        CascadeSVC().predict(X)
    model = CascadeSVC(n_shards=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but CascadeSVC is expecting 2 features"):
        model.predict(np.ones((4, 3)))
    with pytest.raises(AttributeError, match="has no attribute 'predict_proba'") as info:
        model.predict_proba(X)
    assert "predict_proba is not available when probability=False" in str(info.value.__cause__)
    assert not hasattr(model, "predict_proba")
    with pytest.raises(TypeError, match="sparse matrix, which this estimator does not accept"):
        CascadeSVC().fit(sp.csr_matrix(X), y)
