"""Missing values (issue 12): NaN passes the input gate for estimators whose tags say ``allow_nan``.

Every other estimator refuses it with a message naming the imputer; infinity is refused everywhere.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import get_tags

from daskml_lab.data import from_dataframe
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier, ShardEnsembleRegressor
from daskml_lab.fusion import Stacking
from daskml_lab.linear_model import LogisticRegression, Ridge
from daskml_lab.testing import raise_if_computes

from .conftest import shared_file

REFUSED = r"Input X contains NaN.*daskml_lab\.preprocessing\.SimpleImputer"


def _data_with_nan(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    # missing at random in two features; the signal stays in the others' rows
    X[rng.random(600) < 0.2, 0] = np.nan
    X[rng.random(600) < 0.1, 3] = np.nan
    return X, y


def test_tags_follow_the_base_estimator() -> None:
    assert get_tags(ShardEnsembleClassifier(HistGradientBoostingClassifier())).input_tags.allow_nan
    assert not get_tags(ShardEnsembleClassifier(SkLogisticRegression())).input_tags.allow_nan
    # a stacking passthrough gives X to the final estimator, which must take NaN as well
    passthrough = Stacking(final_estimator=SkLogisticRegression(), passthrough=True)
    assert not get_tags(
        ShardEnsembleClassifier(HistGradientBoostingClassifier(), fusion=passthrough)
    ).input_tags.allow_nan
    assert not get_tags(LogisticRegression()).input_tags.allow_nan
    assert not get_tags(CascadeSVC()).input_tags.allow_nan


@pytest.mark.parametrize(
    ("estimator", "fusion"),
    [
        (HistGradientBoostingClassifier(max_iter=30, random_state=0), "soft-voting"),
        (HistGradientBoostingClassifier(max_iter=30, random_state=0), "stacking"),
        (DecisionTreeClassifier(max_depth=4, random_state=0), "forest-union"),
    ],
    ids=["hgb-soft-voting", "hgb-stacking", "tree-forest-union"],
)
def test_nan_passes_for_base_estimators_that_take_it(estimator: object, fusion: str) -> None:
    X, y = _data_with_nan()
    model = ShardEnsembleClassifier(estimator, fusion=fusion, n_shards=3, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.8
    assert np.isfinite(model.predict_proba(X)).all()
    # the same on dask input, whose NaN check runs inside the blocks: predict stays lazy
    X_dask, y_dask = da.from_array(X, chunks=(200, -1)), da.from_array(y, chunks=200)
    model.fit(X_dask, y_dask)
    with raise_if_computes(max_computes=0):
        lazy = model.predict(X_dask)
    assert np.mean(lazy.compute() == y) > 0.8


def test_nan_passes_for_a_regressor() -> None:
    X, y = _data_with_nan(1)
    target = np.nan_to_num(X[:, 1]) * 3.0 + y
    model = ShardEnsembleRegressor(HistGradientBoostingRegressor(max_iter=30), n_shards=2).fit(X, target)
    assert model.score(X, target) > 0.5


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(),
        Ridge(),
        ShardEnsembleClassifier(SkLogisticRegression(), n_shards=2),
        CascadeSVC(n_shards=2),
    ],
    ids=["logistic", "ridge", "ensemble-of-logistic", "cascade"],
)
def test_nan_refused_naming_the_imputer(model: object) -> None:
    X, y = _data_with_nan()
    with pytest.raises(ValueError, match=REFUSED):
        model.fit(X, y)
    with pytest.raises(ValueError, match=REFUSED):
        model.fit(da.from_array(X, chunks=(200, -1)), da.from_array(y, chunks=200))


def test_nan_refused_at_predict_for_models_that_cannot_take_it() -> None:
    X, y = _data_with_nan()
    model = LogisticRegression().fit(np.nan_to_num(X), y)
    with pytest.raises(ValueError, match=REFUSED):
        model.predict(X)


def test_infinity_stays_refused() -> None:
    X, y = _data_with_nan()
    X[5, 2] = np.inf
    model = ShardEnsembleClassifier(HistGradientBoostingClassifier(max_iter=10), n_shards=2)
    with pytest.raises(ValueError, match="Input X contains infinity"):
        model.fit(X, y)


def test_missing_target_stays_refused() -> None:
    X, y = _data_with_nan()
    target = y.astype(np.float64)
    target[3] = np.nan
    model = ShardEnsembleRegressor(HistGradientBoostingRegressor(max_iter=10), n_shards=2)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        model.fit(X, target)


_ADULT = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
    "income",
]  # fmt: skip


def test_adult_with_question_marks_as_missing(shared_data: object) -> None:
    path = shared_file(shared_data, "adult", "adult.data.gz")
    df = pd.read_csv(path, names=_ADULT, na_values="?", skipinitialspace=True)
    assert df.isna().any().any()  # '?' in workclass, occupation and native_country
    X, y = from_dataframe(df, "income", categorical="encode", allow_nan=True)
    with pytest.raises(ValueError, match=REFUSED):
        LogisticRegression().fit(X, y)
    model = ShardEnsembleClassifier(
        HistGradientBoostingClassifier(max_iter=50, random_state=0), n_shards=2, random_state=0
    ).fit(X, y)
    assert model.score(X, y) > 0.85


@pytest.mark.cluster
@pytest.mark.parametrize("sharding", ["contiguous", "shuffle"])
def test_nan_on_a_cluster(client: object, sharding: str) -> None:
    X, y = _data_with_nan(2)
    X_dask, y_dask = da.from_array(X, chunks=(150, -1)), da.from_array(y, chunks=150)
    model = ShardEnsembleClassifier(
        HistGradientBoostingClassifier(max_iter=30, random_state=0), sharding=sharding, random_state=0
    ).fit(X_dask, y_dask)
    assert model.score(X_dask, y_dask) > 0.8
