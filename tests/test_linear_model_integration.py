"""Linear models on clusters, across chunkings, inside scikit-learn meta-estimators, and on real datasets."""

from __future__ import annotations

import itertools
import pickle

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, get_task_stream
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import linear_model as sk
from sklearn.base import is_classifier
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from daskml_lab.linear_model import ElasticNet, Lasso, LinearRegression, LinearSVC, LogisticRegression, Ridge
from daskml_lab.testing import raise_if_computes


def shared_file(shared_data, *parts):
    """Path of a shared dataset file, skipping the test when it is absent (as conftest.shared_file)."""
    path = shared_data.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset file {path} is absent")
    return path


# Different chunkings and worker counts change only the order of floating-point sums.
REPRODUCIBLE = {"rtol": 1e-5, "atol": 1e-7}
RTOL, ATOL = 1e-3, 1e-4


@pytest.fixture(scope="module")
def multiclass():
    X, y = make_classification(
        n_samples=420, n_features=6, n_informative=4, n_classes=3, flip_y=0.05, random_state=7
    )
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=420, n_features=6, n_informative=3, noise=2.0, random_state=7)
    return X, y / 20


def models():
    return [
        LogisticRegression(C=0.5, tol=1e-8, max_iter=500),
        LinearSVC(C=0.5, tol=1e-8),
        Lasso(alpha=0.1, tol=1e-10),
    ]


def data_for(model, multiclass, regression):
    return regression if isinstance(model, Lasso) else multiclass


@pytest.mark.parametrize("model", models(), ids=lambda m: type(m).__name__)
def test_results_do_not_depend_on_chunking(model, multiclass, regression):
    X, y = data_for(model, multiclass, regression)
    one_block = model.fit(da.from_array(X, chunks=(-1, -1)), da.from_array(y, chunks=-1)).coef_.copy()
    uneven = (50, 130, 7, 100, 133)
    model.fit(da.from_array(X, chunks=(uneven, -1)), da.from_array(y, chunks=(uneven,)))
    np.testing.assert_allclose(model.coef_, one_block, **REPRODUCIBLE)


@pytest.mark.property
@settings(max_examples=6, deadline=None)
@given(cuts=st.lists(st.integers(1, 419), min_size=0, max_size=6, unique=True))
def test_multinomial_fit_is_invariant_to_row_chunks(multiclass, cuts):
    X, y = multiclass
    bounds = [0, *sorted(cuts), len(y)]
    rows = tuple(b - a for a, b in itertools.pairwise(bounds))
    model = LogisticRegression(tol=1e-8, max_iter=500)
    model.fit(da.from_array(X, chunks=(rows, -1)), da.from_array(y, chunks=(rows,)))
    np.testing.assert_allclose(model.coef_, multinomial_reference(multiclass), **REPRODUCIBLE)


_REFERENCE: dict[str, np.ndarray] = {}


def multinomial_reference(multiclass):
    if "coef" not in _REFERENCE:
        X, y = multiclass
        _REFERENCE["coef"] = LogisticRegression(tol=1e-8, max_iter=500).fit(X, y).coef_
    return _REFERENCE["coef"]


@pytest.fixture(scope="module")
def local_results(multiclass, regression):
    """Coefficients and predictions of each model fitted without any distributed client (module scope, so that
    it runs before the ``client`` fixture of the cluster test starts one)."""
    results = {}
    for model in models():
        X, y = data_for(model, multiclass, regression)
        model.fit(X, y)
        results[type(model).__name__] = (model.coef_.copy(), model.predict(X))
    return results


@pytest.mark.cluster
@pytest.mark.parametrize("model", models(), ids=lambda m: type(m).__name__)
def test_cluster_gives_the_local_result(local_results, client, model, multiclass, regression):
    X, y = data_for(model, multiclass, regression)
    Xd, yd = da.from_array(X, chunks=(60, -1)), da.from_array(y, chunks=60)
    with get_task_stream(client) as tasks:
        model.fit(Xd, yd)
    assert len({task["worker"] for task in tasks.data}) >= 1, "the fit ran on the cluster's workers"
    coef, prediction = local_results[type(model).__name__]
    np.testing.assert_allclose(model.coef_, coef, **REPRODUCIBLE)
    if is_classifier(model):
        np.testing.assert_array_equal(model.predict(Xd).compute(), prediction)
    else:
        np.testing.assert_allclose(model.predict(Xd).compute(), prediction, **REPRODUCIBLE)


@pytest.mark.cluster
def test_fit_on_an_external_scheduler(external_scheduler, multiclass):
    X, y = multiclass
    with Client(external_scheduler) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        model = LogisticRegression(tol=1e-8, max_iter=500).fit(
            da.from_array(X, chunks=(100, -1)), da.from_array(y, chunks=100)
        )
    reference = sk.LogisticRegression(tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=RTOL, atol=ATOL)


@pytest.mark.cluster
@pytest.mark.parametrize("as_arrays", [False, True], ids=["dataframe-and-series", "unknown-chunk-arrays"])
def test_dask_dataframe_with_series_target_on_a_cluster(client, multiclass, as_arrays):
    # What dask users pass every day: fit(ddf, ddf["label"]), or ddf.to_dask_array() with unknown chunk sizes.
    X, y = multiclass
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]).assign(label=y)
    ddf = dd.from_pandas(frame, npartitions=4)
    features, target = ddf[[f"f{i}" for i in range(X.shape[1])]], ddf["label"]
    if as_arrays:
        features, target = features.to_dask_array(), target.to_dask_array()
    model = LogisticRegression(tol=1e-8, max_iter=500).fit(features, target)
    reference = sk.LogisticRegression(tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=RTOL, atol=ATOL)
    assert model.score(features, target) == pytest.approx(reference.score(X, y), abs=1e-3)


def test_pipeline_and_grid_search(multiclass):
    X, y = multiclass
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-8, max_iter=500)).fit(X, y)
    reference = make_pipeline(StandardScaler(), sk.LogisticRegression(tol=1e-10, max_iter=10_000)).fit(X, y)
    np.testing.assert_allclose(pipeline[-1].coef_, reference[-1].coef_, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(pipeline.predict(X), reference.predict(X))

    grid = {"C": [0.01, 1.0]}
    ours = GridSearchCV(LogisticRegression(tol=1e-8, max_iter=500), grid, cv=3).fit(X, y)
    theirs = GridSearchCV(sk.LogisticRegression(tol=1e-10, max_iter=10_000), grid, cv=3).fit(X, y)
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_allclose(
        ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"], atol=1e-2
    )


@pytest.mark.parametrize(
    "model", [LinearRegression(), Ridge(), ElasticNet(alpha=0.01)], ids=lambda m: type(m).__name__
)
def test_pandas_input_records_feature_names_and_pickles(model, regression):
    X, y = regression
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model.fit(frame, pd.Series(y))
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(frame), model.predict(frame))
    # A dask DataFrame: partition lengths unknown, prediction stays lazy and row-aligned.
    lazy_frame = dd.from_pandas(frame, npartitions=3)
    with raise_if_computes():
        prediction = model.predict(lazy_frame)
    assert isinstance(prediction, da.Array)
    np.testing.assert_allclose(prediction.compute(), model.predict(frame), rtol=1e-12)


def test_magic_gamma_telescope_logistic_matches_sklearn(shared_data):
    frame = pd.read_csv(shared_file(shared_data, "magic_gamma_telescope", "magic.tsv.gz"), sep="\t")
    y = frame.pop("target").to_numpy()
    X = StandardScaler().fit_transform(frame.to_numpy())
    ours = LogisticRegression(tol=1e-8, max_iter=500)
    ours.fit(da.from_array(X, chunks=(2500, -1)), da.from_array(y, chunks=2500))
    theirs = sk.LogisticRegression(tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=RTOL, atol=ATOL)


def test_california_housing_ridge_matches_sklearn(shared_data):
    frame = pd.read_csv(shared_file(shared_data, "california_housing", "537_houses_pmlb.tsv.gz"), sep="\t")
    y = np.log(frame.pop("target").to_numpy())
    X = StandardScaler().fit_transform(frame.to_numpy())
    ours = Ridge(alpha=10.0, tol=1e-10, max_iter=500)
    ours.fit(da.from_array(X, chunks=(3000, -1)), da.from_array(y, chunks=3000))
    theirs = sk.Ridge(alpha=10.0).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=RTOL, atol=ATOL)
