"""Blocked SimpleImputer against scikit-learn's on the same data."""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.impute import SimpleImputer as SkSimpleImputer

from daskml_lab.preprocessing import SimpleImputer
from daskml_lab.testing import raise_if_computes
from tests.conftest import shared_file
from tests.test_preprocessing_encoders import ADULT_COLUMNS


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(400, 4)) * 3) / 2  # repeated values, for most_frequent
    X[rng.random(X.shape) < 0.15] = np.nan
    X[:, 3] = np.where(np.arange(400) % 7 == 0, np.nan, 5.0)  # one column with a single value
    return X


def _inputs(X):
    frame = pd.DataFrame(X, columns=list("abcd"))
    return {
        "numpy": X,
        "dask": da.from_array(X, chunks=(64, -1)),
        "pandas": frame,
        "dask-dataframe": dd.from_pandas(frame, npartitions=3),
    }


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
@pytest.mark.parametrize("kind", ["numpy", "dask", "pandas", "dask-dataframe"])
@pytest.mark.parametrize("add_indicator", [False, True])
def test_same_numbers_as_sklearn(strategy, kind, add_indicator):
    X = _data()
    params = {"strategy": strategy, "add_indicator": add_indicator}
    if strategy == "constant":
        params["fill_value"] = -7.0
    expected = SkSimpleImputer(**params).fit(
        _inputs(X)["pandas" if "frame" in kind or kind == "pandas" else "numpy"]
    )
    imputer = SimpleImputer(**params).fit(_inputs(X)[kind])
    assert_allclose(imputer.statistics_, np.asarray(expected.statistics_, dtype=float), rtol=1e-12)
    result = imputer.transform(_inputs(X)[kind])
    assert isinstance(result, da.Array) == kind.startswith("dask")
    dense = result.compute() if isinstance(result, da.Array) else result
    assert_allclose(dense, expected.transform(X if kind in ("numpy", "dask") else _inputs(X)["pandas"]))
    assert imputer.get_feature_names_out().tolist() == expected.get_feature_names_out().tolist()


def test_a_placeholder_value_is_missing():
    X = np.array([[1.0, -1.0], [-1.0, 4.0], [3.0, 6.0], [5.0, -1.0]])
    imputer = SimpleImputer(missing_values=-1.0).fit(da.from_array(X, chunks=2))
    assert_allclose(imputer.statistics_, [3.0, 5.0])
    assert_allclose(imputer.transform(X), [[1, 5], [3, 4], [3, 6], [5, 5]])


def test_an_empty_feature_is_dropped_with_a_warning_or_kept():
    X = np.array([[1.0, np.nan], [3.0, np.nan]])
    with pytest.warns(UserWarning, match=r"Skipping features without any observed values: \[1\]"):
        imputer = SimpleImputer().fit(X)
    assert imputer.transform(X).shape == (2, 1)
    kept = SimpleImputer(keep_empty_features=True).fit(X)
    assert_allclose(kept.transform(X), [[1, 0], [3, 0]])


def test_fit_is_one_computation_for_every_statistic_and_transform_none():
    X = da.from_array(_data(), chunks=50)
    with raise_if_computes(max_computes=1):
        imputer = SimpleImputer(strategy="median", add_indicator=True).fit(X)
    with raise_if_computes(max_computes=0):
        result = imputer.transform(X)
    assert result.chunks[0] == X.chunks[0]
    assert result.shape[1] == 8


def test_invalid_strategy_names_the_choices():
    with pytest.raises(ValueError, match="The 'strategy' parameter of SimpleImputer must be a str among"):
        SimpleImputer(strategy="mode").fit(_data())


@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_inverse_transform_restores_the_missing_values(kind):
    X = _data()
    imputer = SimpleImputer(add_indicator=True).fit(_inputs(X)[kind])
    expected = SkSimpleImputer(add_indicator=True).fit(X)
    restored = imputer.inverse_transform(imputer.transform(_inputs(X)[kind]))
    restored = restored.compute() if isinstance(restored, da.Array) else restored
    assert_allclose(restored, expected.inverse_transform(expected.transform(X)))
    assert_allclose(restored, X)
    with pytest.raises(
        ValueError, match="works only when 'SimpleImputer' is instantiated with 'add_indicator=True'"
    ):
        SimpleImputer().fit(X).inverse_transform(X)


@pytest.mark.parametrize(
    "params",
    [
        {"strategy": "most_frequent"},
        {"strategy": "most_frequent", "add_indicator": True},
        {"strategy": "constant", "fill_value": "unknown"},
    ],
)
def test_text_columns_with_a_placeholder(params, shared_data):
    path = shared_file(shared_data, "adult", "adult.data.gz")
    frame = pd.read_csv(path, header=None, names=ADULT_COLUMNS, skipinitialspace=True)
    text = frame[["workclass", "occupation", "native_country"]]
    assert (text == "?").any().all()
    expected = SkSimpleImputer(missing_values="?", **params).fit(text)
    lazy = dd.from_pandas(text, npartitions=6)
    with raise_if_computes(max_computes=1):
        imputer = SimpleImputer(missing_values="?", **params).fit(lazy)
    assert imputer.statistics_.tolist() == expected.statistics_.tolist()
    assert imputer.transform(lazy).compute().tolist() == expected.transform(text).tolist()
    assert imputer.get_feature_names_out().tolist() == expected.get_feature_names_out().tolist()


def test_text_columns_refuse_the_mean_naming_the_strategies():
    frame = pd.DataFrame({"a": ["x", None, "y"]})
    with pytest.raises(
        ValueError, match=r"Cannot use the mean strategy with non-numeric data.*'most_frequent'"
    ):
        SimpleImputer().fit(frame)
    imputer = SimpleImputer(strategy="most_frequent").fit(frame)
    assert imputer.transform(frame).tolist() == [["x"], ["x"], ["y"]]
