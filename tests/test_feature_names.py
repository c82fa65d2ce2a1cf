"""Column names are a contract (issue 12): checked at every method after ``fit`` exactly as scikit-learn does.

The issue's example: breast cancer as a DataFrame, ``LogisticRegression().fit(df, y).predict(df[df.columns[::-1]])``
gave accuracy 0.373 instead of 0.958 with no error; scikit-learn raises ``ValueError``. Each family is checked
on pandas and dask DataFrames, and the check on a dask DataFrame computes nothing.
"""

from __future__ import annotations

import warnings

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import daskml_lab
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier, ShardEnsembleRegressor
from daskml_lab.linear_model import LinearSVC, LogisticRegression, PoissonRegressor, Ridge
from daskml_lab.testing import raise_if_computes

ORDER = "Feature names must be in the same order as they were in fit"
UNSEEN = "Feature names unseen at fit time"
NO_NAMES = "X does not have valid feature names"


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    data = load_breast_cancer(as_frame=True)
    # scaled so that every model converges quickly; the names are what matters here
    X = pd.DataFrame(StandardScaler().fit_transform(data.data), columns=data.data.columns)
    return X, data.target


def _classifiers() -> dict[str, object]:
    return {
        "logistic-lbfgs": LogisticRegression(max_iter=200),
        "linear-svc": LinearSVC(max_iter=200),
        "shard-ensemble-soft-voting": ShardEnsembleClassifier(
            SkLogisticRegression(max_iter=500), n_shards=2, random_state=0
        ),
        "shard-ensemble-stacking": ShardEnsembleClassifier(
            SkLogisticRegression(max_iter=500), n_shards=2, fusion="stacking", random_state=0
        ),
        "shard-ensemble-forest-union": ShardEnsembleClassifier(
            DecisionTreeClassifier(random_state=0), n_shards=2, fusion="forest-union", random_state=0
        ),
        "cascade-svc": CascadeSVC(n_shards=2, random_state=0),
    }


@pytest.fixture(scope="module", params=list(_classifiers()))
def fitted(request: pytest.FixtureRequest, cancer: tuple[pd.DataFrame, pd.Series]) -> object:
    X, y = cancer
    model = _classifiers()[request.param]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is not the subject
        return model.fit(X, y)


def test_names_are_recorded(fitted: object, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = cancer
    np.testing.assert_array_equal(fitted.feature_names_in_, np.asarray(X.columns, dtype=object))


def test_same_columns_predict_as_before(fitted: object, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no names warning for the right columns
        assert fitted.score(X, y) > 0.9


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function", "score"])
def test_reversed_columns_raise(fitted: object, cancer: tuple[pd.DataFrame, pd.Series], method: str) -> None:
    X, y = cancer
    if not hasattr(fitted, method):
        pytest.skip(f"{type(fitted).__name__} has no {method}")
    reversed_X = X[X.columns[::-1]]
    args = (reversed_X, y) if method == "score" else (reversed_X,)
    with pytest.raises(ValueError, match=ORDER):
        getattr(fitted, method)(*args)


def test_renamed_and_missing_columns_raise(fitted: object, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = cancer
    renamed = X.rename(columns={X.columns[0]: "something else"})
    with pytest.raises(ValueError, match=UNSEEN):
        fitted.predict(renamed)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X.iloc[:, 1:])


def test_array_after_frame_warns(fitted: object, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = cancer
    with pytest.warns(UserWarning, match=NO_NAMES):
        fitted.predict(X.to_numpy())
    with pytest.warns(UserWarning, match=NO_NAMES):
        fitted.predict(da.from_array(X.to_numpy(), chunks=(200, -1)))


def test_dask_frame_checked_from_metadata(fitted: object, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = cancer
    frame = dd.from_pandas(X, npartitions=3)
    with raise_if_computes(max_computes=0):
        with pytest.raises(ValueError, match=ORDER):
            fitted.predict(frame[list(X.columns[::-1])])
        lazy = fitted.predict(frame)
    np.testing.assert_array_equal(np.asarray(lazy.compute()), fitted.predict(X))


def test_frame_after_array_warns(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    model = LogisticRegression(max_iter=200).fit(X.to_numpy(), y.to_numpy())
    assert not hasattr(model, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but LogisticRegression was fitted without"):
        model.predict(X)


def test_refit_on_array_forgets_names(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    model = LogisticRegression(max_iter=200).fit(X, y)
    model.fit(X.to_numpy(), y.to_numpy())
    assert not hasattr(model, "feature_names_in_")


@pytest.mark.parametrize(
    "model",
    [
        Ridge(alpha=1.0),
        PoissonRegressor(max_iter=100),
        ShardEnsembleRegressor(HistGradientBoostingRegressor(max_iter=20), n_shards=2),
    ],
    ids=["ridge", "poisson", "shard-ensemble-regressor"],
)
def test_regressors_check_names(model: object, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = cancer
    target = pd.Series(np.exp(X.iloc[:, 0].to_numpy() / 4), name="target")
    model.fit(X, target)
    np.testing.assert_array_equal(model.feature_names_in_, np.asarray(X.columns, dtype=object))
    with pytest.raises(ValueError, match=ORDER):
        model.predict(X[X.columns[::-1]])
    with pytest.raises(ValueError, match=ORDER):
        model.score(X[X.columns[::-1]], target)


def test_xarray_feature_coordinates_are_names(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    arr = xr.DataArray(X.to_numpy(), dims=("sample", "feature"), coords={"feature": list(X.columns)})
    model = LogisticRegression(max_iter=200).fit(arr, y.to_numpy())
    np.testing.assert_array_equal(model.feature_names_in_, np.asarray(X.columns, dtype=object))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.predict(arr)
    with pytest.raises(ValueError, match=ORDER):
        model.predict(arr.isel(feature=slice(None, None, -1)))


def test_models_trained_elsewhere_keep_their_names(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    members = [SkLogisticRegression(max_iter=500).fit(X.iloc[part::2], y.iloc[part::2]) for part in (0, 1)]
    ensemble = ShardEnsembleClassifier.from_estimators(members)
    np.testing.assert_array_equal(ensemble.feature_names_in_, np.asarray(X.columns, dtype=object))
    assert ensemble.score(X, y) > 0.9
    with pytest.raises(ValueError, match=ORDER):
        ensemble.predict(X[X.columns[::-1]])


def test_saved_model_keeps_the_contract(
    fitted: object, cancer: tuple[pd.DataFrame, pd.Series], tmp_path: object
) -> None:
    X, _ = cancer
    path = tmp_path / "model.daskml"
    daskml_lab.save(fitted, path)
    loaded = daskml_lab.load(path)
    np.testing.assert_array_equal(loaded.feature_names_in_, fitted.feature_names_in_)
    with pytest.raises(ValueError, match=ORDER):
        loaded.predict(X[X.columns[::-1]])
