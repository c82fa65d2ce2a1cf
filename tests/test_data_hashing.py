"""Wide sparse data: hash_features against FeatureHasher, across processes and on a cluster; the sparse generator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn.linear_model as sk
from distributed import wait
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction import FeatureHasher

from daskml_lab.data import HashingSpec, hash_features, make_sparse_classification
from daskml_lab.data.synthetic_sparse import feature_of_rank, zipf_rank_probabilities
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.testing import raise_if_computes
from tests.conftest import REPO_ROOT, shared_file

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]


def clicks(n_rows=300, seed=0):
    """A small click-log-like table: categorical columns of different dtypes, a count, a label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "site": rng.choice(["news", "shop", "blog", "wiki"], size=n_rows),
            "app": pd.Categorical(rng.choice(["a1", "a2", "a3"], size=n_rows)),
            "hour": rng.integers(0, 24, size=n_rows),
            "device": rng.choice(["ios", "android", "web"], size=n_rows).astype(object),
            "views": rng.poisson(2.0, size=n_rows).astype(np.float64),
            "clicked": rng.integers(0, 2, size=n_rows),
        }
    )


def assert_same_csr(ours, theirs):
    ours, theirs = sp.csr_matrix(ours), sp.csr_matrix(theirs)
    ours.sort_indices()
    theirs.sort_indices()
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    np.testing.assert_array_equal(ours.data, theirs.data)


# ----------------------------------------------------------------------------------------- FeatureHasher


@pytest.mark.parametrize("alternate_sign", [True, False])
@pytest.mark.parametrize("n_features", [7, 2**18])
def test_categorical_columns_match_feature_hasher_string_tokens(alternate_sign, n_features):
    df = clicks()
    columns = ["site", "app", "hour", "device"]
    X = hash_features(df, n_features=n_features, columns=columns, alternate_sign=alternate_sign, chunks=128)
    assert X.chunks == ((128, 128, 44), (n_features,))
    tokens = [[f"{c}={row[c]}" for c in columns] for _, row in df.iterrows()]
    expected = FeatureHasher(n_features, input_type="string", alternate_sign=alternate_sign).transform(tokens)
    assert_same_csr(X.compute(), expected)


def test_numeric_columns_and_crosses_match_feature_hasher_dicts():
    df = clicks()
    X = hash_features(df, n_features=2**10, columns=["site"], numeric=["views"], crosses=[("site", "hour")])
    rows = [
        {"site": row.site, "views": row.views, "site=" + row.site + "^hour": str(row.hour)}
        for row in df.itertuples()
    ]
    # the cross token "site=x^hour=y" is FeatureHasher's "name=value" of the pair {"site=x^hour": "y"}
    assert_same_csr(X.compute(), FeatureHasher(2**10, input_type="dict").transform(rows))


def test_a_cross_gives_one_feature_per_pair_of_values():
    df = clicks(2000)
    X = hash_features(df, n_features=2**24, columns=[], crosses=[("site", "device")], alternate_sign=False)
    block = X.compute()
    assert (block.getnnz(axis=1) == 1).all()
    n_pairs = len(df[["site", "device"]].drop_duplicates())
    assert n_pairs == 12
    assert len(np.unique(block.indices)) == n_pairs


def test_missing_values_are_skipped_or_become_a_token():
    df = pd.DataFrame({"site": ["a", None, "b", np.nan], "app": ["x", "y", None, "x"]})
    skipped = hash_features(df, n_features=2**20, crosses=[("site", "app")]).compute()
    np.testing.assert_array_equal(skipped.getnnz(axis=1), [3, 1, 1, 1])
    tokens = hash_features(df, n_features=2**20, crosses=[("site", "app")], missing="token").compute()
    np.testing.assert_array_equal(tokens.getnnz(axis=1), [3, 3, 3, 3])
    filled = df.fillna("<missing>")
    same = hash_features(filled, n_features=2**20, crosses=[("site", "app")]).compute()
    assert_same_csr(tokens, same)  # "<missing>" is the documented value text of a missing value


def test_integral_floats_hash_like_ints():
    ints = pd.DataFrame({"hour": [3, 4, 5]})
    with_missing = pd.DataFrame({"hour": [3.0, 4.0, 5.0, np.nan]})  # pandas makes the column float
    a = hash_features(ints, n_features=2**20, columns=["hour"]).compute()
    b = hash_features(with_missing, n_features=2**20, columns=["hour"]).compute()
    assert_same_csr(a, b[:3])
    assert b[3].nnz == 0


def test_features_are_the_same_in_another_python_process_with_another_hash_seed():
    """Python's own str hash changes with PYTHONHASHSEED; the hashed features must not."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "from tests.test_data_hashing import clicks; from daskml_lab.data import hash_features;"
        "X = hash_features(clicks(), n_features=2**16, crosses=[('site', 'hour')]).compute();"
        "print(json.dumps([hash('site=news'), X.indices.tolist(), X.data.tolist(), X.indptr.tolist()]))"
    )
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO_ROOT)], capture_output=True, text=True, env=env, check=True
    )
    their_hash, indices, data, indptr = json.loads(out.stdout)
    assert their_hash != hash("site=news")  # the two processes really hash strings differently
    here = hash_features(clicks(), n_features=2**16, crosses=[("site", "hour")]).compute()
    assert indices == here.indices.tolist()
    assert data == here.data.tolist()
    assert indptr == here.indptr.tolist()


@pytest.mark.property
@settings(max_examples=15, deadline=None)
@given(
    n_rows=st.integers(1, 80),
    chunk=st.integers(1, 40),
    n_partitions=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    missing=st.sampled_from(["skip", "token"]),
)
def test_hashing_does_not_depend_on_blocks_or_partitions(n_rows, chunk, n_partitions, seed, missing):
    df = clicks(n_rows, seed)
    df.loc[df.index[::3], "device"] = None
    options = {"n_features": 2**8, "numeric": ["views"], "crosses": [("site", "device")], "missing": missing}
    whole = hash_features(df, chunks=n_rows, **options).compute(scheduler="sync")
    in_blocks = hash_features(df, chunks=chunk, **options).compute(scheduler="sync")
    ddf = dd.from_pandas(df, npartitions=min(n_partitions, n_rows))
    in_partitions = hash_features(ddf, **options).compute(scheduler="sync")
    assert_same_csr(in_blocks, whole)
    assert_same_csr(in_partitions, whole)
    assert whole.shape == (n_rows, 2**8)


# ------------------------------------------------------------------------------------------- dask frames


def test_dask_dataframe_matches_pandas_and_computes_only_lengths():
    df = clicks()
    ddf = dd.from_pandas(df, npartitions=3)
    options = {"n_features": 2**12, "numeric": ["views"], "crosses": [("site", "app")]}
    expected, expected_y = (a.compute() for a in hash_features(df, "clicked", **options))
    with raise_if_computes(max_computes=1) as counter:
        X, y, spec = hash_features(ddf, "clicked", **options, return_spec=True)
    assert counter.n_computes == 1  # the partition lengths, one integer per partition
    assert X.chunks[0] == tuple(len(p) for p in ddf.partitions)
    assert X.chunks[0] == y.chunks[0]
    assert spec.columns == ("site", "app", "device")  # the non-numeric columns, "hour" being an int
    assert_same_csr(X.compute(), expected)
    np.testing.assert_array_equal(y.compute(), expected_y)
    with raise_if_computes():
        unknown = hash_features(ddf, **options, lengths=False)
        given = hash_features(ddf, **options, lengths=list(X.chunks[0]))
        spec.transform(ddf, lengths=False)
    assert np.isnan(unknown.shape[0])
    assert given.chunks == X.chunks
    assert_same_csr(unknown.compute(), expected)


def test_spec_hashes_new_data_alike_and_refuses_missing_columns():
    train, test = clicks(200, seed=1), clicks(50, seed=2)
    _, spec = hash_features(train, n_features=2**12, crosses=[("site", "hour")], return_spec=True)
    assert isinstance(spec, HashingSpec)
    assert spec.input_columns == ["site", "app", "device", "hour"]
    direct = hash_features(test, n_features=2**12, columns=list(spec.columns), crosses=[("site", "hour")])
    assert_same_csr(spec.transform(test).compute(), direct.compute())
    assert_same_csr(spec.transform_block(test), direct.compute())
    with pytest.raises(
        ValueError, match=r"Unknown column\(s\) \['device'\]: not in the table, whose columns"
    ):
        spec.transform(test.drop(columns="device"))
    with pytest.raises(ValueError, match=r"Unknown column\(s\) \['hour'\]"):
        spec.transform_block(test.drop(columns="hour"))


def test_hashing_on_a_process_cluster_keeps_the_rows_on_the_workers(client, tmp_path):
    df = clicks(600)
    for i in range(3):
        df.iloc[i * 200 : (i + 1) * 200].to_csv(tmp_path / f"part-{i}.csv", index=False)
    ddf = dd.read_csv(str(tmp_path / "part-*.csv"))  # the workers read the files
    X, y = hash_features(ddf, "clicked", n_features=2**14, columns=["site", "app"], crosses=[("site", "app")])
    assert X.chunks[0] == (200, 200, 200)
    X, y = client.persist([X, y])
    wait([X, y])
    placed = client.who_has(X)
    assert len(placed) == 3
    assert all(placed.values())
    expected = hash_features(
        df, "clicked", n_features=2**14, columns=["site", "app"], crosses=[("site", "app")]
    )
    with dask.config.set(scheduler="sync"):
        expected_X, expected_y = expected[0].compute(), expected[1].compute()
    assert_same_csr(X.compute(), expected_X)
    np.testing.assert_array_equal(y.compute(), expected_y)


def test_logistic_regression_on_hashed_adult_matches_sklearn(shared_data):
    path = shared_file(shared_data, "adult", "adult.data.gz")
    table = pd.read_csv(path, header=None, names=ADULT_COLUMNS, skipinitialspace=True, na_values="?")
    table = table.iloc[:12000]  # enough rows for a well-posed fit, quick on two cores
    ddf = dd.from_pandas(table, npartitions=4)
    X, y = hash_features(
        ddf, "income", n_features=2**12, crosses=[("education", "occupation")], missing="token"
    )
    assert X.shape == (12000, 2**12)
    assert len(X.chunks[0]) == 4
    with dask.config.set(scheduler="sync"):
        ours = LogisticRegression(C=1.0, solver="lbfgs", tol=1e-8, max_iter=1000).fit(X, y)
        X_mem, y_mem = X.compute(), y.compute()
    theirs = sk.LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(X_mem, y_mem)
    np.testing.assert_array_equal(ours.classes_, ["<=50K", ">50K"])
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-3, atol=1e-4)
    accuracy = (theirs.predict(X_mem) == y_mem).mean()
    assert 0.8 < accuracy < 0.95  # categorical columns alone: about 0.85
    # the same matrix as FeatureHasher on the documented tokens of the real table
    columns = [c for c in ADULT_COLUMNS if table[c].dtype == object or pd.api.types.is_string_dtype(table[c])]
    columns.remove("income")

    def text(row, column):
        return row[column] if pd.notna(row[column]) else "<missing>"

    tokens = [
        [f"{c}={text(row, c)}" for c in columns]
        + [f"education={text(row, 'education')}^occupation={text(row, 'occupation')}"]
        for row in table.to_dict("records")
    ]
    assert_same_csr(X_mem, FeatureHasher(2**12, input_type="string").transform(tokens))


# -------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"n_features": 0}, ValueError, r"n_features must be in \[1, 2147483647\].*got 0"),
        ({"n_features": -5}, ValueError, r"n_features must be in \[1, 2147483647\].*got -5"),
        ({"n_features": 2**31}, ValueError, r"n_features must be in \[1, 2147483647\]"),
        ({"n_features": 2.0**10}, TypeError, r"n_features must be an int, got float"),
        ({"columns": ["site", "sight"]}, ValueError, r"Unknown column\(s\) \['sight'\].*'site', 'app'"),
        ({"columns": "site"}, TypeError, r"columns must be a list of column names"),
        ({"numeric": ["site"]}, TypeError, r"numeric column 'site' has dtype .*, not a number"),
        ({"numeric": ["views"], "columns": ["views"]}, ValueError, r"in both columns= and numeric="),
        ({"crosses": [("site",)]}, ValueError, r"Each cross must be a pair of column names"),
        ({"crosses": [("site", "nope")]}, ValueError, r"Unknown crossed column\(s\) \['nope'\]"),
        ({"missing": "drop"}, ValueError, r"missing must be one of \['skip', 'token'\], got 'drop'"),
        ({"dtype": np.int64}, ValueError, r"dtype must be numpy.float64 or numpy.float32, got int64"),
        ({"columns": ["clicked"], "target": "clicked"}, ValueError, r"The target 'clicked' is also a hashed"),
        ({"target": "label"}, ValueError, r"Unknown target\(s\) \['label'\]"),
        (
            {"lengths": [150]},
            ValueError,
            r"one non-negative length per partition: the table has 2 partitions, got 1",
        ),
        ({"lengths": 300}, TypeError, r"lengths must be True, False or one length per partition, got 300"),
    ],
)
def test_bad_arguments_are_refused_before_any_graph(options, error, match):
    options = dict(options)
    target = options.pop("target", None)
    with raise_if_computes(), pytest.raises(error, match=match):
        hash_features(dd.from_pandas(clicks(), npartitions=2), target, **options)


def test_nothing_to_hash_and_wrong_input_types():
    with pytest.raises(ValueError, match="There is nothing to hash: no non-numeric columns"):
        hash_features(pd.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(
        TypeError, match=r"hash_features expects a pandas or dask DataFrame, got numpy\.ndarray"
    ):
        hash_features(np.ones((3, 2)))


def test_nan_in_a_numeric_column_names_the_column():
    df = clicks(20)
    df.loc[7, "views"] = np.nan
    match = r"Numeric hashed column 'views' has 1 NaN or infinite value\(s\)"
    with pytest.raises(ValueError, match=match + r" \(first at row 7"):
        hash_features(df, numeric=["views"])  # pandas: checked at once
    X = hash_features(dd.from_pandas(df, npartitions=2), numeric=["views"], lengths=[10, 10])
    with pytest.raises(ValueError, match=match + r" in partition 0"):
        X.compute(scheduler="sync")  # dask: found where the data are read


# ------------------------------------------------------------------------------------- sparse generator


def test_sparse_generator_does_not_depend_on_chunks_or_workers(client):
    options = {"nnz_per_row": 8, "n_classes": 3, "random_state": 7}
    with raise_if_computes():
        X, y = make_sparse_classification(900, 5000, chunks=300, **options)
        X2, y2 = make_sparse_classification(900, 5000, chunks=(1, 450, 449), **options)
    assert type(X._meta) is sp.csr_matrix
    assert X.chunks == ((300,) * 3, (5000,))
    on_cluster_X, on_cluster_y = dask.compute(X, y)
    with dask.config.set(scheduler="sync"):
        local_X, local_y = dask.compute(X2, y2)
    assert_same_csr(on_cluster_X, local_X)
    np.testing.assert_array_equal(on_cluster_y, local_y)
    assert on_cluster_X.getnnz(axis=1).max() <= 8
    assert set(np.unique(on_cluster_X.data)) == {1.0}
    other, _ = make_sparse_classification(900, 5000, chunks=300, **{**options, "random_state": 8})
    assert (other.compute(scheduler="sync") != local_X).nnz > 0


def test_sparse_generator_features_follow_its_zipf_law():
    n_samples, n_features, exponent = 40_000, 2000, 1.2
    X, _ = make_sparse_classification(
        n_samples, n_features, nnz_per_row=1, zipf_exponent=exponent, chunks=10_000, random_state=3
    )
    counts = np.asarray(X.compute(scheduler="sync").sum(axis=0)).ravel()
    probability = zipf_rank_probabilities(n_features, exponent)
    top = feature_of_rank(np.arange(20), n_features, 3)
    expected = n_samples * probability[:20]
    # each count within 4 standard deviations of its binomial expectation
    np.testing.assert_array_less(np.abs(counts[top] - expected), 4 * np.sqrt(expected) + 1)
    # and the power law itself: frequency ratio of ranks 1 and 10 is about 10 ** exponent
    assert probability[0] / probability[9] == pytest.approx(10**exponent, rel=0.35)
    assert counts.sum() == n_samples


def test_sparse_generator_model_is_recovered_by_logistic_regression():
    X, y, coef = make_sparse_classification(
        20_000, 300, nnz_per_row=10, zipf_exponent=0.8, chunks=5000, random_state=1, return_coef=True
    )
    assert coef.shape == (300,)
    with dask.config.set(scheduler="sync"):
        X_mem, y_mem = X.compute(), y.compute()
    fitted = sk.LogisticRegression(C=100.0, fit_intercept=False, max_iter=2000).fit(X_mem, y_mem)
    assert np.corrcoef(fitted.coef_.ravel(), coef)[0, 1] > 0.95
    # the labels follow the model: its own probabilities score them well
    logits = X_mem @ coef
    assert ((logits > 0) == (y_mem == 1)).mean() > 0.75


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (
            {"nnz_per_row": 0},
            ValueError,
            r"'nnz_per_row' parameter of make_sparse_classification.*\[1, inf\)",
        ),
        ({"n_classes": 1}, ValueError, r"'n_classes' parameter .* range \[2, inf\)"),
        ({"zipf_exponent": 0.0}, ValueError, r"'zipf_exponent' .* range \(0.0, inf\)"),
        ({"n_features": 2**31}, ValueError, r"n_features must be at most 2\*\*31 - 1"),
        ({"chunks": (10, 10)}, ValueError, r"sum to n_samples=100"),
        ({"nnz_per_row": 2.5}, TypeError, r"'nnz_per_row' parameter .* must be an int"),
    ],
)
def test_sparse_generator_bad_arguments(options, error, match):
    with pytest.raises(error, match=match):
        make_sparse_classification(100, **{"n_features": 50, **options})
