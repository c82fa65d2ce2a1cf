"""Blocked scalers against scikit-learn on the same data (numpy, dask array, pandas, dask DataFrame)."""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import sklearn.preprocessing as skp
from numpy.testing import assert_allclose

from daskml_lab.preprocessing import MinMaxScaler, RobustScaler, StandardScaler
from daskml_lab.testing import raise_if_computes

PAIRS = [
    (StandardScaler, skp.StandardScaler, {}),
    (StandardScaler, skp.StandardScaler, {"with_mean": False}),
    (StandardScaler, skp.StandardScaler, {"with_std": False}),
    (MinMaxScaler, skp.MinMaxScaler, {"feature_range": (-2, 3)}),
    (RobustScaler, skp.RobustScaler, {}),
    (RobustScaler, skp.RobustScaler, {"quantile_range": (10.0, 90.0), "unit_variance": True}),
    (RobustScaler, skp.RobustScaler, {"with_centering": False}),
]
ATTRIBUTES = ["mean_", "var_", "scale_", "n_samples_seen_", "data_min_", "data_max_", "min_", "center_"]


def _data(n_samples=500, n_features=4, missing=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(
        loc=[0, 5, -3, 100][:n_features], scale=[1, 3, 0.5, 20][:n_features], size=(n_samples, n_features)
    )
    X[:, -1] = np.round(X[:, -1])  # ties in one column
    X[rng.random(X.shape) < missing] = np.nan
    return X


def _inputs(X):
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    return {
        "numpy": X,
        "dask": da.from_array(X, chunks=(97, -1)),
        "pandas": frame,
        "dask-dataframe": dd.from_pandas(frame, npartitions=4),
    }


def _dense(result):
    return result.compute() if hasattr(result, "compute") else np.asarray(result)


@pytest.mark.parametrize(("ours", "theirs", "params"), PAIRS)
@pytest.mark.parametrize("kind", ["numpy", "dask", "pandas", "dask-dataframe"])
def test_same_numbers_as_sklearn(ours, theirs, params, kind):
    X = _data()
    expected = theirs(**params).fit(X)
    scaler = ours(**params).fit(_inputs(X)[kind])
    for name in ATTRIBUTES:
        if hasattr(expected, name) and getattr(expected, name) is not None:
            assert_allclose(
                getattr(scaler, name), getattr(expected, name), rtol=1e-10, atol=1e-12, err_msg=name
            )
    result = scaler.transform(_inputs(X)[kind])
    assert isinstance(result, da.Array) == kind.startswith("dask")
    assert_allclose(_dense(result), expected.transform(X), rtol=1e-10, atol=1e-12)
    assert_allclose(_dense(scaler.inverse_transform(result)), X, rtol=1e-10, atol=1e-9)


def test_feature_names_follow_the_frame():
    X = _data()
    scaler = StandardScaler().fit(pd.DataFrame(X, columns=list("abcd")))
    assert scaler.feature_names_in_.tolist() == list("abcd")
    assert scaler.get_feature_names_out().tolist() == list("abcd")
    with pytest.raises(ValueError, match="feature names should match"):
        scaler.transform(pd.DataFrame(X, columns=list("dcba")))


def test_float32_stays_float32_and_chunks_are_kept():
    X = da.from_array(_data().astype(np.float32), chunks=(120, 2))
    result = StandardScaler().fit(X).transform(X)
    assert result.dtype == np.float32
    assert result.chunks == ((120, 120, 120, 120, 20), (4,))
    assert result.compute().dtype == np.float32


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler, RobustScaler])
def test_fit_is_one_computation_and_transform_none(cls):
    X = da.from_array(_data(), chunks=50)
    with raise_if_computes(max_computes=1) as counter:
        scaler = cls().fit(X)
    assert counter.n_computes == 1
    with raise_if_computes(max_computes=0):
        result = scaler.transform(X)
        back = scaler.inverse_transform(result)
    assert isinstance(back, da.Array)


def test_unknown_row_chunks_are_fine_for_fit_and_transform():
    # a dask DataFrame's array has unknown row chunks: statistics need no row counts, nothing is computed
    frame = dd.from_pandas(pd.DataFrame(_data(), columns=list("abcd")), npartitions=3)
    X = frame.to_dask_array()
    assert np.isnan(X.shape[0])
    with raise_if_computes(max_computes=1):
        scaler = StandardScaler().fit(X)
        result = scaler.transform(X)
    assert np.isnan(result.shape[0])
    assert_allclose(result.compute(), skp.StandardScaler().fit_transform(_data()), rtol=1e-10)


def test_wrong_number_of_features_names_both_counts():
    scaler = StandardScaler().fit(_data())
    with pytest.raises(ValueError, match="X has 3 features, but StandardScaler is expecting 4 features"):
        scaler.transform(da.from_array(_data()[:, :3], chunks=100))


def test_infinity_is_refused_with_the_fix():
    X = _data()
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match="contains infinity"):
        StandardScaler().fit(X)


def test_text_columns_are_refused_naming_the_encoder():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    with pytest.raises(TypeError, match=r"non-numeric columns: \['b'\].*OrdinalEncoder"):
        StandardScaler().fit(frame)


def test_robust_quantiles_respect_their_error_bound():
    # 200,000 values in 64 blocks with a sketch of 200 points: compressed at every level of the tree
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.standard_cauchy(200_000), rng.integers(0, 50, 200_000).astype(float)])
    sketch_size = 200
    scaler = RobustScaler(sketch_size=sketch_size).fit(da.from_array(X, chunks=(3125, -1)))
    n_levels = 2  # 64 blocks -> 8 -> 1 with a fan-in of 8
    documented = (n_levels + 1) / (2 * sketch_size) + 1 / sketch_size
    assert np.all(scaler.quantile_rank_error_ > 0)
    assert np.all(scaler.quantile_rank_error_ <= documented)
    for j in range(2):
        column = np.sort(X[:, j])
        bound = scaler.quantile_rank_error_[j]
        q25, q75 = 0.25, 0.75
        median = scaler.center_[j]
        # the estimate lies between the exact quantiles at q - bound and q + bound
        low, high = np.quantile(column, [0.5 - bound, 0.5 + bound], method="inverted_cdf")
        assert low <= median <= high
        low_iqr = np.quantile(column, [q75 - bound, q75 + bound], method="inverted_cdf") - np.quantile(
            column, [q25 + bound, q25 - bound], method="inverted_cdf"
        )
        assert low_iqr[0] <= scaler.scale_[j] <= low_iqr[1]


def test_robust_scaler_is_exact_when_columns_fit_in_the_sketch():
    X = _data(n_samples=1500, missing=0.0)
    scaler = RobustScaler(sketch_size=2000).fit(da.from_array(X, chunks=500))
    assert np.all(scaler.quantile_rank_error_ == 0)
    assert_allclose(scaler.center_, np.median(X, axis=0))


def test_constant_feature_is_left_unscaled():
    X = np.column_stack([np.ones(20), np.arange(20.0)])
    assert StandardScaler().fit(X).scale_[0] == 1.0
    assert RobustScaler().fit(X).scale_[0] == 1.0
    assert_allclose(MinMaxScaler().fit_transform(X)[:, 0], 0.0)
    assert_allclose(StandardScaler().fit_transform(X)[:, 0], 0.0)
