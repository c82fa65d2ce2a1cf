"""HashingEncoder: scikit-learn's checks, the same features as hash_features, laziness, pipelines, errors."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn.linear_model as sk
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import daskml_lab
from daskml_lab.base import InvalidParameterError
from daskml_lab.compose import make_column_transformer
from daskml_lab.data import hash_features
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.preprocessing import HashingEncoder, StandardScaler
from daskml_lab.testing import raise_if_computes


@parametrize_with_checks([HashingEncoder(n_features=64), HashingEncoder(n_features=16, alternate_sign=False)])
def test_sklearn_compatible_hashing_encoder(estimator, check):
    check(estimator)


def table(n_rows=400, seed=0):
    rng = np.random.default_rng(seed)
    site = rng.choice(["news", "shop", "blog"], size=n_rows)
    device = rng.choice(["ios", "android", None], size=n_rows)
    views = rng.poisson(2.0, size=n_rows).astype(float)
    score = (site == "shop") * 1.5 - (device == "ios") + 0.3 * views + rng.normal(size=n_rows)
    return pd.DataFrame({"site": site, "device": device, "views": views}), (score > 0.8).astype(int)


OPTIONS = {"n_features": 2**10, "numeric": ["views"], "crosses": [("site", "device")], "missing": "token"}


def test_hashing_encoder_gives_hash_features_output_lazily_for_dask():
    df, _ = table()
    expected = hash_features(df, **OPTIONS).compute()
    encoder = HashingEncoder(**OPTIONS).fit(df)
    assert encoder.spec_.columns == ("site", "device")  # every column but the numeric one
    out = encoder.transform(df)
    assert isinstance(out, sp.csr_matrix)
    assert (out != expected).nnz == 0
    ddf = dd.from_pandas(df, npartitions=3)
    with raise_if_computes():
        lazy = HashingEncoder(**OPTIONS).fit(ddf).transform(ddf)
    assert type(lazy._meta) is sp.csr_matrix
    assert (lazy.compute() != expected).nnz == 0


def test_hashing_encoder_in_a_pipeline_matches_sklearn_on_the_same_features():
    df, y = table()
    pipeline = make_pipeline(HashingEncoder(**OPTIONS), LogisticRegression(C=1.0, tol=1e-8, max_iter=500))
    pipeline.fit(df, y)
    hashed = hash_features(df, **OPTIONS).compute()
    reference = sk.LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(hashed, y)
    np.testing.assert_allclose(pipeline[-1].coef_, reference.coef_, rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(pipeline.predict(df), reference.predict(hashed))


def test_hashing_encoder_refuses_other_columns_and_bad_parameters():
    df, _ = table(20)
    encoder = HashingEncoder(**OPTIONS).fit(df)
    with pytest.raises(ValueError, match=r"Feature names seen at fit time, yet now missing: \['device'\]"):
        encoder.transform(df.drop(columns="device"))
    with pytest.raises(
        InvalidParameterError, match=r"'n_features' parameter of HashingEncoder must be an int"
    ):
        HashingEncoder(n_features=0).fit(df)
    with pytest.raises(ValueError, match=r"Unknown crossed column\(s\) \['app'\]"):
        HashingEncoder(crosses=[("site", "app")]).fit(df)
    with pytest.raises(TypeError, match=r"numeric column 'site' has dtype object, not a number"):
        HashingEncoder(numeric=["site"]).fit(df)


def test_hashing_encoder_pipeline_survives_save_and_load(tmp_path):
    df, y = table(100)
    model = make_pipeline(HashingEncoder(**OPTIONS), LogisticRegression()).fit(df, y)
    daskml_lab.save(model, tmp_path / "model.daskml")
    loaded = daskml_lab.load(tmp_path / "model.daskml")
    assert loaded[0].columns_ == ["site", "device"]
    assert loaded[0].spec_ == model[0].spec_
    np.testing.assert_array_equal(loaded.predict(df), model.predict(df))


def test_hashing_encoder_in_the_column_transformer_next_to_a_scaler():
    df, _ = table(60)
    transformer = make_column_transformer(
        (HashingEncoder(n_features=64, crosses=[("site", "device")]), ["site", "device"]),
        (StandardScaler(), ["views"]),
    )
    expected = hash_features(df, n_features=64, columns=["site", "device"], crosses=[("site", "device")])
    scaled = (df[["views"]] - df["views"].mean()) / df["views"].std(ddof=0)
    out = transformer.fit_transform(dd.from_pandas(df, npartitions=3))
    assert type(out._meta) is sp.csr_matrix
    np.testing.assert_allclose(out.compute().toarray(), np.hstack([expected.compute().toarray(), scaled]))
