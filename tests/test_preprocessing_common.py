"""What every blocked transformer shares: scikit-learn's estimator checks, save/load, pipelines, clusters."""

from __future__ import annotations

import doctest

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import sklearn.impute as ski
import sklearn.linear_model as sklm
import sklearn.preprocessing as skp
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import daskml_lab
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    SimpleImputer,
    StandardScaler,
)
from daskml_lab.testing import raise_if_computes
from tests.conftest import REPO_ROOT, shared_file

TRANSFORMERS = [
    StandardScaler(),
    StandardScaler(with_mean=False),
    MinMaxScaler(),
    RobustScaler(),
    SimpleImputer(),
    SimpleImputer(strategy="median", add_indicator=True),
    OneHotEncoder(handle_unknown="ignore"),
    OneHotEncoder(sparse_output=False, min_frequency=2, handle_unknown="infrequent_if_exist"),
    OrdinalEncoder(),
    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
]


@parametrize_with_checks(TRANSFORMERS)
def test_sklearn_compatible_transformer(estimator, check):
    check(estimator)


def _classification(n_samples=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 5)) * [1, 10, 100, 0.1, 5] + [0, 50, -20, 3, 0]
    standardized = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (standardized @ np.array([1.0, -0.5, 0.3, 2.0, -1.0]) + rng.normal(size=n_samples) > 0).astype(int)
    return X, y


def test_pipeline_of_scaler_and_logistic_regression_matches_sklearn():
    X, y = _classification()
    dX, dy = da.from_array(X, chunks=(150, -1)), da.from_array(y, chunks=150)
    ours = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-10)).fit(dX, dy)
    theirs = make_pipeline(skp.StandardScaler(), sklm.LogisticRegression(tol=1e-10)).fit(X, y)
    assert_allclose(ours[-1].coef_, theirs[-1].coef_, rtol=1e-4, atol=1e-5)
    with raise_if_computes(max_computes=0):
        predictions = ours.predict(dX)
    assert isinstance(predictions, da.Array)
    assert predictions.chunks == dy.chunks
    assert_allclose(predictions.compute(), theirs.predict(X))


def test_the_scaler_adds_one_computation_to_the_pipeline_fit():
    X, y = _classification()
    dX, dy = da.from_array(X, chunks=(150, -1)), da.from_array(y, chunks=150)
    scaled = da.from_array(skp.StandardScaler().fit_transform(X), chunks=(150, -1))
    with raise_if_computes(max_computes=None) as alone:
        LogisticRegression().fit(scaled, dy)
    with raise_if_computes(max_computes=None) as piped:
        make_pipeline(StandardScaler(), LogisticRegression()).fit(dX, dy)
    assert piped.n_computes == alone.n_computes + 1


def test_fit_computes_only_statistics():
    # the single compute of fit brings back per-feature vectors, never rows
    X = da.from_array(np.random.default_rng(0).normal(size=(10_000, 3)), chunks=1000)
    plan = StandardScaler()._fit_plan(X)
    (statistics,) = dask.compute(plan)
    sizes = {key: np.asarray(value).size for key, value in statistics["moments"].items()}
    assert max(sizes.values()) == 3


@pytest.mark.parametrize(
    ("transformer", "data"),
    [
        (StandardScaler(), "numbers"),
        (RobustScaler(), "numbers"),
        (MinMaxScaler(clip=True), "numbers"),
        (SimpleImputer(strategy="most_frequent", add_indicator=True), "numbers"),
        (OneHotEncoder(min_frequency=5, handle_unknown="infrequent_if_exist"), "table"),
        (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), "table"),
    ],
)
def test_save_and_load_give_the_same_transform(tmp_path, transformer, data):
    rng = np.random.default_rng(0)
    if data == "numbers":
        X = rng.normal(size=(200, 3))
        X[rng.random(X.shape) < 0.1] = np.nan
        X = pd.DataFrame(X, columns=["a", "b", "c"])
    else:
        X = pd.DataFrame({"a": rng.choice(["x", "y", "z", None], 200), "b": rng.integers(0, 30, 200)})
    transformer.fit(X)
    path = tmp_path / "model.daskml"
    daskml_lab.save(transformer, path)
    loaded = daskml_lab.load(path)
    expected, result = transformer.transform(X), loaded.transform(X)
    if hasattr(expected, "toarray"):
        expected, result = expected.toarray(), result.toarray()
    assert_allclose(result, expected)
    assert loaded.get_feature_names_out().tolist() == transformer.get_feature_names_out().tolist()


@pytest.mark.cluster
def test_fit_and_transform_on_a_cluster(client):
    X, y = _classification(n_samples=2000)
    X[::17, 1] = np.nan
    dX = da.from_array(X, chunks=(250, -1))
    imputer = SimpleImputer(strategy="median").fit(dX)
    expected = np.nanmedian(X, axis=0)
    assert_allclose(imputer.statistics_, expected)
    dy = da.from_array(y, chunks=250)
    pipe = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()).fit(dX, dy)
    reference = make_pipeline(ski.SimpleImputer(), skp.StandardScaler(), sklm.LogisticRegression()).fit(X, y)
    assert_allclose(pipe[-1].coef_, reference[-1].coef_, rtol=1e-3, atol=1e-4)
    assert pipe.score(dX, dy) == pytest.approx(reference.score(X, y), abs=1e-3)


def test_the_documentation_page_runs_as_written(shared_data, monkeypatch):
    # the page reads ../shared/data/adult relative to the repository root
    shared_file(shared_data, "adult", "adult.data.gz")
    monkeypatch.chdir(REPO_ROOT)
    result = doctest.testfile(
        str(REPO_ROOT / "docs" / "preprocessing.rst"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.attempted > 10
    assert result.failed == 0


def test_plans_of_several_transformers_compute_together():
    # the protocol a column transformer relies on: every plan lazy, one compute for all, the same fit as alone
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    dX = da.from_array(X, chunks=200)
    table = pd.DataFrame({"a": rng.choice(["x", "y", None], 1000), "b": rng.integers(0, 4, 1000)})
    inputs = [dX, dX, dX, table, table]
    transformers = [StandardScaler(), SimpleImputer(), RobustScaler(), OneHotEncoder(), OrdinalEncoder()]
    with raise_if_computes(max_computes=0):
        plans = [t._fit_plan(x) for t, x in zip(transformers, inputs, strict=True)]
    with raise_if_computes(max_computes=1):
        (statistics,) = dask.compute(plans)
    for transformer, x, stats in zip(transformers, inputs, statistics, strict=True):
        transformer._fit_finish(x, stats)
        alone = clone(transformer).fit(x)
        expected, result = alone.transform(x), transformer.transform(x)
        if hasattr(expected, "compute"):
            expected, result = expected.compute(), result.compute()
        if hasattr(expected, "toarray"):
            expected, result = expected.toarray(), result.toarray()
        assert_allclose(result, expected)


def test_imputer_and_scaler_share_their_moments():
    dX = da.from_array(np.random.default_rng(0).normal(size=(100, 3)), chunks=25)
    plans = [SimpleImputer()._fit_plan(dX), StandardScaler()._fit_plan(dX)]
    # same key: one set of tasks when they are computed together
    assert plans[0]["moments"].key == plans[1]["moments"].key


def test_pipeline_on_a_dask_dataframe_with_text_columns():
    # unknown partition lengths and one-hot CSR blocks all the way into the solver
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"city": rng.choice(["Oslo", "Lima", "Pune"], 800), "stars": rng.integers(1, 6, 800)}
    )
    y = pd.Series(((frame.city == "Oslo") ^ (frame.stars > 3)).astype(int))
    lazy, lazy_y = dd.from_pandas(frame, npartitions=4), dd.from_pandas(y, npartitions=4)
    ours = make_pipeline(OneHotEncoder(), LogisticRegression(tol=1e-10)).fit(lazy, lazy_y)
    theirs = make_pipeline(skp.OneHotEncoder(), sklm.LogisticRegression(tol=1e-10)).fit(frame, y)
    assert_allclose(ours[-1].coef_, theirs[-1].coef_, rtol=1e-4, atol=1e-5)
    predictions = ours.predict(lazy)
    assert isinstance(predictions, da.Array)
    assert_allclose(predictions.compute(), theirs.predict(frame))
