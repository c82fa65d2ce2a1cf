"""Blocked OneHotEncoder and OrdinalEncoder against scikit-learn's, on synthetic tables and real ones."""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn.preprocessing as skp
from numpy.testing import assert_array_equal

from daskml_lab.preprocessing import OneHotEncoder, OrdinalEncoder
from daskml_lab.testing import raise_if_computes
from tests.conftest import shared_file


def _table(n_samples=300, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "city": rng.choice(
                ["Oslo", "Lima", "Pune", "Kyiv", None], size=n_samples, p=[0.4, 0.3, 0.15, 0.1, 0.05]
            ),
            "stars": rng.integers(1, 6, n_samples),
            "kind": pd.Categorical(rng.choice(["a", "b", "c"], size=n_samples, p=[0.6, 0.35, 0.05])),
        }
    )


def _inputs(frame):
    return {"pandas": frame, "dask-dataframe": dd.from_pandas(frame, npartitions=4)}


def _dense(result):
    if isinstance(result, da.Array):
        result = result.compute()
    return result.toarray() if sp.issparse(result) else np.asarray(result)


def _same_categories(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert pd.Series(a).equals(pd.Series(b).astype(pd.Series(a).dtype)) or list(map(str, a)) == list(
            map(str, b)
        )


ONE_HOT_PARAMS = [
    {},
    {"handle_unknown": "ignore"},
    {"min_frequency": 40},
    {"min_frequency": 0.1, "handle_unknown": "infrequent_if_exist"},
    {"max_categories": 3, "handle_unknown": "infrequent_if_exist"},
    {"drop": "first"},
    {"drop": "if_binary", "sparse_output": False},
]


@pytest.mark.parametrize("params", ONE_HOT_PARAMS)
@pytest.mark.parametrize("kind", ["pandas", "dask-dataframe"])
def test_one_hot_same_numbers_as_sklearn(params, kind):
    frame = _table()
    expected = skp.OneHotEncoder(**params).fit(frame)
    encoder = OneHotEncoder(**params).fit(_inputs(frame)[kind])
    _same_categories(encoder.categories_, expected.categories_)
    assert encoder.get_feature_names_out().tolist() == expected.get_feature_names_out().tolist()
    if "min_frequency" in params or "max_categories" in params:
        for ours, theirs in zip(encoder.infrequent_categories_, expected.infrequent_categories_, strict=True):
            assert (ours is None) == (theirs is None)
    result = encoder.transform(_inputs(frame)[kind])
    if kind == "dask-dataframe":
        assert isinstance(result, da.Array)
        assert sp.issparse(result._meta) == params.get("sparse_output", True)
    else:
        assert sp.issparse(result) == params.get("sparse_output", True)
    assert_array_equal(_dense(result), _dense(expected.transform(frame)))


def test_one_hot_unknown_categories():
    frame = _table()
    new = pd.DataFrame({"city": ["Rome", "Oslo"], "stars": [9, 1], "kind": pd.Categorical(["z", "a"])})
    encoder = OneHotEncoder().fit(frame)
    with pytest.raises(ValueError, match=r"Found unknown categories \['Rome'\] in column 0 during transform"):
        encoder.transform(new)
    lazy = encoder.transform(dd.from_pandas(new, npartitions=1))  # the error waits for the block
    with pytest.raises(ValueError, match="handle_unknown='ignore'"):
        lazy.compute()
    ignored = OneHotEncoder(handle_unknown="ignore").fit(frame)
    expected = skp.OneHotEncoder(handle_unknown="ignore").fit(frame)
    assert_array_equal(_dense(ignored.transform(new)), _dense(expected.transform(new)))
    infrequent = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=3).fit(frame)
    expected = skp.OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=3).fit(frame)
    assert_array_equal(_dense(infrequent.transform(new)), _dense(expected.transform(new)))


ORDINAL_PARAMS = [
    {},
    {"handle_unknown": "use_encoded_value", "unknown_value": -1},
    {"handle_unknown": "use_encoded_value", "unknown_value": np.nan, "encoded_missing_value": -2},
    {"min_frequency": 40},
    {"max_categories": 2},
]


@pytest.mark.parametrize("params", ORDINAL_PARAMS)
@pytest.mark.parametrize("kind", ["pandas", "dask-dataframe"])
def test_ordinal_same_numbers_as_sklearn(params, kind):
    frame = _table()
    expected = skp.OrdinalEncoder(**params).fit(frame)
    encoder = OrdinalEncoder(**params).fit(_inputs(frame)[kind])
    _same_categories(encoder.categories_, expected.categories_)
    result = encoder.transform(_inputs(frame)[kind])
    assert isinstance(result, da.Array) == (kind == "dask-dataframe")
    assert_array_equal(_dense(result), expected.transform(frame))
    if params.get("handle_unknown") == "use_encoded_value":
        new = pd.DataFrame({"city": ["Rome", None], "stars": [9, 1], "kind": pd.Categorical(["z", "a"])})
        assert_array_equal(encoder.transform(new), expected.transform(new))
    if not params:
        assert_array_equal(
            encoder.inverse_transform(result).astype(str),
            expected.inverse_transform(expected.transform(frame)).astype(str),
        )


def test_numpy_and_dask_arrays_of_text_and_numbers():
    X = np.array([["b", 1], ["a", 2], ["b", 3], ["c", 1]], dtype=object)
    for encoder, expected in (
        (OneHotEncoder(), skp.OneHotEncoder()),
        (OrdinalEncoder(), skp.OrdinalEncoder()),
    ):
        expected.fit(X)
        encoder.fit(da.from_array(X, chunks=2))
        _same_categories(encoder.categories_, expected.categories_)
        assert_array_equal(
            _dense(encoder.transform(da.from_array(X, chunks=3))), _dense(expected.transform(X))
        )
        assert_array_equal(_dense(encoder.transform(X)), _dense(expected.transform(X)))


def test_fit_is_one_computation_and_transform_none():
    frame = dd.from_pandas(_table(), npartitions=5)
    for encoder in (OneHotEncoder(min_frequency=10), OrdinalEncoder()):
        with raise_if_computes(max_computes=1) as counter:
            encoder.fit(frame)
        assert counter.n_computes == 1
        with raise_if_computes(max_computes=0):
            encoder.transform(frame)


def test_given_categories_must_cover_the_data():
    frame = pd.DataFrame({"a": ["x", "y", "z"]})
    with pytest.raises(ValueError, match=r"Found unknown categories \['z'\] in column 0 during fit"):
        OneHotEncoder(categories=[["x", "y"]]).fit(frame)
    encoder = OneHotEncoder(categories=[["x", "y", "w"]], handle_unknown="ignore").fit(frame)
    assert_array_equal(_dense(encoder.transform(frame)), [[1, 0, 0], [0, 1, 0], [0, 0, 0]])


def test_unknown_value_must_not_collide_with_a_code():
    frame = pd.DataFrame({"a": ["x", "y", "z"]})
    with pytest.raises(ValueError, match="unknown_value 1 is one of the values already used"):
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=1).fit(frame)
    with pytest.raises(TypeError, match=r"unknown_value should be an integer or np\.nan"):
        OrdinalEncoder(handle_unknown="use_encoded_value").fit(frame)


def test_sparse_input_is_refused():
    with pytest.raises(TypeError, match="does not accept sparse input"):
        OneHotEncoder().fit(sp.csr_matrix(np.eye(3)))


ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country", "income",
]  # fmt: skip


def test_adult_with_question_marks_as_missing(shared_data):
    path = shared_file(shared_data, "adult", "adult.data.gz")
    frame = pd.read_csv(path, header=None, names=ADULT_COLUMNS, skipinitialspace=True, na_values="?")
    text = frame.select_dtypes(exclude="number").drop(columns="income")
    assert text.isna().any().any()
    lazy = dd.from_pandas(text, npartitions=8)
    one_hot = {"min_frequency": 50, "handle_unknown": "infrequent_if_exist"}
    for ours, theirs in (
        (OneHotEncoder(**one_hot), skp.OneHotEncoder(**one_hot)),
        (OrdinalEncoder(), skp.OrdinalEncoder()),
    ):
        ours.fit(lazy)
        theirs.fit(text)
        _same_categories(ours.categories_, theirs.categories_)
        assert_array_equal(_dense(ours.transform(lazy)), _dense(theirs.transform(text)))


def test_diamonds_category_columns(shared_data):
    path = shared_file(shared_data, "diamonds", "diamonds.csv.gz")
    frame = pd.read_csv(path, dtype={"cut": "category", "color": "category", "clarity": "category"})
    columns = frame[["cut", "color", "clarity"]]
    ours = OneHotEncoder(sparse_output=False).fit(dd.from_pandas(columns, npartitions=6))
    theirs = skp.OneHotEncoder(sparse_output=False).fit(columns)
    assert ours.get_feature_names_out().tolist() == theirs.get_feature_names_out().tolist()
    assert_array_equal(ours.transform(columns), theirs.transform(columns))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"handle_unknown": "ignore"},
        {"drop": "first"},
        {"max_categories": 3, "handle_unknown": "infrequent_if_exist"},
        {"sparse_output": False, "handle_unknown": "ignore"},
    ],
)
@pytest.mark.parametrize("kind", ["pandas", "dask-dataframe"])
def test_one_hot_inverse_transform_matches_sklearn(params, kind):
    frame = _table()
    new = pd.concat(
        [frame.head(20), pd.DataFrame({"city": ["Rome"], "stars": [2], "kind": pd.Categorical(["a"])})],
        ignore_index=True,
    )
    known = params.get("handle_unknown", "error") != "error"
    data = new if known else frame.head(20)
    expected = skp.OneHotEncoder(**params).fit(frame)
    encoder = OneHotEncoder(**params).fit(_inputs(frame)[kind])
    encoded = encoder.transform(_inputs(data)[kind])
    with raise_if_computes(max_computes=0 if kind == "dask-dataframe" else 1):
        restored = encoder.inverse_transform(encoded)
    if kind == "dask-dataframe":
        restored = restored.compute()
    theirs = expected.inverse_transform(expected.transform(data))
    assert pd.DataFrame(restored).astype(str).equals(pd.DataFrame(theirs).astype(str))


def test_one_hot_inverse_of_all_zeros_needs_a_policy():
    encoder = OneHotEncoder().fit(pd.DataFrame({"a": ["x", "y"]}))
    with pytest.raises(ValueError, match=r"Samples \[0\] can not be inverted"):
        encoder.inverse_transform(np.zeros((1, 2)))


def test_the_encoding_tables_enter_the_graph_once():
    frame = dd.from_pandas(_table(), npartitions=6)
    for encoder in (OneHotEncoder().fit(frame), OrdinalEncoder().fit(frame)):
        graph = dict(encoder.transform(frame).__dask_graph__())
        tables = [key for key in graph if isinstance(key, str) and key.startswith("tuple-")]
        assert len(tables) == 1
