"""daskml_lab.compose: the same numbers as scikit-learn's ColumnTransformer on pandas, one pass of statistics and
a lazy transform on dask, column selection without data, clear errors, lazy pipelines and saved pipelines.

The transformers of :mod:`daskml_lab.preprocessing` follow the statistics protocol (``_fit_plan`` returns lazy
statistics, ``_fit_finish`` sets the fitted attributes); the two small ones defined here follow it too, so that
the ColumnTransformer's side of the protocol is tested on its own.
"""

from __future__ import annotations

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.compose import ColumnTransformer as SklearnColumnTransformer
from sklearn.compose import make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from daskml_lab import load, save
from daskml_lab.compose import ColumnTransformer, DateTimeFeatures, make_column_transformer
from daskml_lab.data import is_dask_dataframe
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.testing import raise_if_computes
from tests.conftest import shared_file

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country", "income",
]  # fmt: skip


# ---- two transformers following the statistics protocol ---------------------------------------------------


def _values(X):
    """A DataFrame's values as a float array: lazy for dask input, numpy otherwise."""
    if is_dask_dataframe(X):
        return X.to_dask_array(lengths=None).astype(float)
    return X.astype(float) if isinstance(X, da.Array) else np.asarray(X, dtype=float)


class MeanCenter(TransformerMixin, BaseEstimator):
    """Subtracts the column means (NaN ignored), fitted from lazy sums and counts; takes frames or arrays."""

    def _fit_plan(self, X):
        values = _values(X)
        return {"sum": np.nansum(values, axis=0), "count": (~np.isnan(values)).sum(axis=0)}

    def _fit_finish(self, X, statistics):
        self.mean_ = np.asarray(statistics["sum"]) / np.asarray(statistics["count"])
        self.n_features_in_ = X.shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def fit(self, X, y=None):
        (statistics,) = dask.compute(self._fit_plan(X))
        return self._fit_finish(X, statistics)

    def transform(self, X):
        return _values(X) - self.mean_

    def get_feature_names_out(self, input_features=None):
        if input_features is None:
            input_features = getattr(self, "feature_names_in_", [f"x{i}" for i in range(self.n_features_in_)])
        return np.asarray(input_features, dtype=object)


def _one_hot_block(frame, categories):
    parts = []
    for column, known in zip(frame.columns, categories, strict=True):
        codes = pd.Categorical(frame[column], categories=known).codes
        rows = np.flatnonzero(codes >= 0)
        parts.append(sp.csr_matrix((np.ones(len(rows)), (rows, codes[rows])), shape=(len(frame), len(known))))
    return sp.hstack(parts, format="csr")


class Categories(TransformerMixin, BaseEstimator):
    """One-hot encoding in CSR blocks (unknown values: all zeros), fitted from lazy unique values."""

    def _fit_plan(self, X):
        return {"unique": [X[column].dropna().unique() for column in X.columns]}

    def _fit_finish(self, X, statistics):
        self.categories_ = [np.sort(np.asarray(values)) for values in statistics["unique"]]
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def fit(self, X, y=None):
        (statistics,) = dask.compute(self._fit_plan(X))
        return self._fit_finish(X, statistics)

    def transform(self, X):
        width = sum(len(c) for c in self.categories_)
        if not is_dask_dataframe(X):
            return _one_hot_block(X, self.categories_)
        blocks = [
            da.from_delayed(
                dask.delayed(_one_hot_block)(part, self.categories_),
                shape=(np.nan, width),
                dtype=float,
                meta=sp.csr_matrix((0, width)),
            )
            for part in X.to_delayed()
        ]
        return da.concatenate(blocks, axis=0)

    def get_feature_names_out(self, input_features=None):
        names = self.feature_names_in_ if input_features is None else input_features
        return np.asarray([f"{n}_{c}" for n, cats in zip(names, self.categories_, strict=True) for c in cats])


class MeanImputer(TransformerMixin, BaseEstimator):
    """Replaces NaN by the column means, fitted from lazy sums and counts; takes frames or arrays."""

    def _fit_plan(self, X):
        values = _values(X)
        return {"sum": np.nansum(values, axis=0), "count": (~np.isnan(values)).sum(axis=0)}

    def _fit_finish(self, X, statistics):
        self.mean_ = np.asarray(statistics["sum"]) / np.asarray(statistics["count"])
        self.n_features_in_ = X.shape[1]
        return self

    def fit(self, X, y=None):
        (statistics,) = dask.compute(self._fit_plan(X))
        return self._fit_finish(X, statistics)

    def transform(self, X):
        values = _values(X)
        return (
            da.where(da.isnan(values), self.mean_, values)
            if isinstance(values, da.Array)
            else np.where(np.isnan(values), self.mean_, values)
        )


# ---- data ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adult(shared_data):
    path = shared_file(shared_data, "adult", "adult.data.gz")
    frame = pd.read_csv(path, header=None, names=ADULT_COLUMNS, skipinitialspace=True, na_values="?")
    return frame.iloc[:6000].reset_index(drop=True)


@pytest.fixture(scope="module")
def flights(shared_data):
    path = shared_file(shared_data, "nycflights13_flights", "flights.csv.gz")
    frame = pd.read_csv(path, nrows=20000)
    frame["when"] = pd.to_datetime(frame[["year", "month", "day", "hour"]])
    return frame[["when", "distance", "dep_delay", "carrier", "origin", "arr_delay"]]


def _table(n_rows=4000, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x0": rng.normal(size=n_rows),
            "x1": rng.normal(3.0, 2.0, size=n_rows),
            "x2": rng.integers(0, 10, size=n_rows).astype(float),
            "colour": rng.choice(["red", "green", "blue", "grey"], size=n_rows),
        }
    )
    logit = frame.x0 - 0.5 * (frame.x1 - 3) + (frame.colour == "red") * 1.5
    target = (logit + rng.logistic(size=n_rows) > 0).astype(int)
    return frame, pd.Series(target, name="target")


# ---- the same numbers as scikit-learn on pandas --------------------------------------------------------------


def _adult_transformers():
    text = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore"))
    return [
        ("num", StandardScaler(), make_column_selector(dtype_include=np.number)),
        ("text", text, make_column_selector(dtype_include=["object", "str"], pattern="^(?!income)")),
    ]


@pytest.mark.parametrize(
    ("remainder", "sparse_threshold", "verbose_feature_names_out"),
    [
        ("drop", 0.3, True),
        ("passthrough", 0.0, False),
        ("drop", 1.0, "{feature_name}@{transformer_name}"),
    ],
)
def test_adult_matches_sklearn(adult, remainder, sparse_threshold, verbose_feature_names_out):
    X = adult.drop(columns=["income", "education-num"]).assign(education_num=adult["education-num"])
    transformers = [
        *_adult_transformers()[:1],
        (
            "text",
            _adult_transformers()[1][1],
            ["workclass", "education", "occupation", "native-country", "sex"],
        ),
    ]
    options = {
        "remainder": remainder if remainder == "drop" else "passthrough",
        "sparse_threshold": sparse_threshold,
        "verbose_feature_names_out": verbose_feature_names_out,
    }
    if remainder == "passthrough":  # text columns left over pass through: keep only numeric ones over
        X = X.drop(columns=["marital-status", "relationship", "race"])
        transformers = [("num", StandardScaler(), ["age", "fnlwgt"]), transformers[1]]
    ours = ColumnTransformer(transformers, **options)
    theirs = SklearnColumnTransformer(transformers, **options)
    got, expected = ours.fit_transform(X), theirs.fit_transform(X)
    assert sp.issparse(got) == sp.issparse(expected)
    dense = (lambda a: a.toarray()) if sp.issparse(got) else np.asarray
    np.testing.assert_array_equal(dense(got), dense(expected))
    np.testing.assert_array_equal(dense(ours.transform(X.iloc[::-1])), dense(theirs.transform(X.iloc[::-1])))
    assert ours.get_feature_names_out().tolist() == theirs.get_feature_names_out().tolist()
    assert ours.output_indices_ == theirs.output_indices_
    assert ours.sparse_output_ == theirs.sparse_output_
    assert [(n, c) for n, _, c in ours.transformers_] == [(n, c) for n, _, c in theirs.transformers_]
    assert ours.feature_names_in_.tolist() == theirs.feature_names_in_.tolist()
    assert ours.named_transformers_["num"].mean_.tolist() == theirs.named_transformers_["num"].mean_.tolist()


def test_adult_selected_by_dtype_matches_sklearn(adult):
    X = adult.drop(columns="income")
    ours = ColumnTransformer(_adult_transformers()).fit(X)
    theirs = SklearnColumnTransformer(_adult_transformers()).fit(X)
    assert (ours.transform(X) != theirs.transform(X)).nnz == 0
    assert [(n, c) for n, _, c in ours.transformers_] == [(n, c) for n, _, c in theirs.transformers_]


def test_flights_date_parts_match_pandas(flights):
    parts = ["year", "month", "day", "weekday", "hour", "dayofyear", "is_weekend"]
    ct = make_column_transformer(
        (DateTimeFeatures(features=parts), ["when"]),
        (StandardScaler(), ["distance"]),
        verbose_feature_names_out=False,
    )
    got = ct.fit_transform(flights)
    when = flights["when"].dt
    expected = np.column_stack(
        [
            when.year,
            when.month,
            when.day,
            when.day_of_week,
            when.hour,
            when.day_of_year,
            when.day_of_week >= 5,
        ]
    ).astype(float)
    np.testing.assert_array_equal(got[:, :7], expected)
    assert ct.get_feature_names_out().tolist()[:3] == ["when_year", "when_month", "when_day"]
    # the same parts from the dask DataFrame, lazily, block by block
    dask_flights = dd.from_pandas(flights, npartitions=4)
    parts_only = ColumnTransformer([("date", DateTimeFeatures(features=parts), ["when"])]).fit(dask_flights)
    with raise_if_computes(max_computes=0):
        lazy = parts_only.transform(dask_flights)
    assert lazy.numblocks == (4, 1)
    np.testing.assert_array_equal(lazy.compute(), expected)


def test_date_parts_of_missing_dates_and_time_zones():
    when = pd.Series(pd.to_datetime(["2021-03-06 23:30", None]).tz_localize("Europe/Paris"), name="t")
    parts = DateTimeFeatures(features=["day", "hour", "is_weekend", "timestamp"]).fit_transform(
        when.to_frame()
    )
    np.testing.assert_array_equal(parts[0], [6.0, 23.0, 1.0, pd.Timestamp("2021-03-06 22:30").timestamp()])
    assert np.isnan(parts[1]).all()
    unix = DateTimeFeatures(features=["year", "hour"], unit="s").fit_transform(
        np.array([[0.0], [86400 * 365.0]])
    )
    np.testing.assert_array_equal(unix, [[1970.0, 0.0], [1971.0, 0.0]])


# ---- dask input: one pass of statistics, lazy transform ------------------------------------------------------


def _protocol_transformer(**options):
    return ColumnTransformer(
        [
            ("num", MeanCenter(), make_column_selector(dtype_include=np.number)),
            ("cat", Categories(), ["colour"]),
        ],
        **options,
    )


@pytest.mark.parametrize("sparse_threshold", [0.0, 0.9])
def test_dask_fit_is_one_pass_and_matches_pandas(sparse_threshold):
    frame, _ = _table()
    ddf = dd.from_pandas(frame, npartitions=5)
    with raise_if_computes(max_computes=1):
        ct = _protocol_transformer(sparse_threshold=sparse_threshold).fit(ddf)
    reference = _protocol_transformer(sparse_threshold=sparse_threshold).fit(frame)
    np.testing.assert_allclose(
        ct.named_transformers_["num"].mean_, reference.named_transformers_["num"].mean_
    )
    with raise_if_computes(max_computes=0):
        lazy = ct.transform(ddf)
    assert lazy.numblocks == (5, 1)
    # one non-zero per row in 4 one-hot columns and 3 dense columns: density 4/7
    assert ct.sparse_output_ is (sparse_threshold > 4 / 7)
    assert sp.issparse(lazy._meta) is ct.sparse_output_
    got = lazy.compute()
    expected = reference.transform(frame)
    dense = (lambda a: a.toarray()) if sp.issparse(got) else np.asarray
    np.testing.assert_allclose(dense(got), dense(expected))
    # the encoding is scikit-learn's
    sklearn_ct = SklearnColumnTransformer(
        [
            ("num", StandardScaler(with_std=False), ["x0", "x1", "x2"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
        ],
        sparse_threshold=sparse_threshold,
    )
    np.testing.assert_allclose(dense(got), dense(sklearn_ct.fit_transform(frame)))


def test_dask_fit_transform_keeps_the_partitions():
    frame, _ = _table(1000)
    ddf = dd.from_pandas(frame, npartitions=3)
    lengths = tuple(int(n) for n in ddf.map_partitions(len).compute())
    with raise_if_computes(max_computes=1):
        out = _protocol_transformer().fit_transform(ddf)
    assert out.numblocks == (3, 1)
    assert (
        tuple(out.map_blocks(lambda b: np.array([b.shape[0]]), chunks=(1,), drop_axis=1).compute()) == lengths
    )


def test_pipeline_children_are_fitted_step_by_step_in_shared_passes():
    frame, _ = _table(3000)
    frame.loc[::7, "x1"] = np.nan
    ddf = dd.from_pandas(frame, npartitions=3)
    spec = [
        ("num", make_pipeline(MeanImputer(), MeanCenter()), ["x0", "x1"]),
        ("cat", Categories(), ["colour"]),
    ]
    # two passes: the imputer's and the encoder's statistics, then the centring on the imputed data
    with raise_if_computes(max_computes=2):
        ct = ColumnTransformer(spec, sparse_threshold=0).fit(ddf)
    expected = SklearnColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler(with_std=False)), ["x0", "x1"]),
            ("cat", OneHotEncoder(), ["colour"]),
        ],
        sparse_threshold=0,
    ).fit_transform(frame)
    with raise_if_computes(max_computes=0):
        lazy = ct.transform(ddf)
    np.testing.assert_allclose(lazy.compute(), expected, atol=1e-12)
    with pytest.raises(
        TypeError, match=r"The step StandardScaler of the 'num' Pipeline learns from the data"
    ):
        ColumnTransformer([("num", make_pipeline(MeanImputer(), StandardScaler()), ["x0"])]).fit(ddf)


def test_dask_array_input_by_position():
    frame, _ = _table(600)
    values = frame[["x0", "x1", "x2"]].to_numpy()
    X = da.from_array(values, chunks=(200, 3))
    ct = ColumnTransformer(
        [("log", FunctionTransformer(np.log1p), [2]), ("keep", "passthrough", slice(0, 2))], remainder="drop"
    )
    with raise_if_computes(max_computes=0):
        out = ct.fit_transform(X)
    assert out.chunks == ((200, 200, 200), (3,))
    np.testing.assert_allclose(out.compute(), np.column_stack([np.log1p(values[:, 2]), values[:, :2]]))
    np.testing.assert_allclose(ct.transform(values), out.compute())


def test_selectors_see_an_empty_frame_with_the_dtypes():
    frame, _ = _table(300)
    ddf = dd.from_pandas(frame.assign(when=pd.Timestamp("2020-01-01")), npartitions=3)
    seen = []

    def numeric(table):
        seen.append(table)
        return make_column_selector(dtype_include=np.number)(table)

    ct = ColumnTransformer(
        [
            ("num", "passthrough", numeric),
            ("date", "passthrough", make_column_selector(dtype_include="datetime")),
        ]
    )
    with pytest.raises(TypeError, match=r"passed through by 'date' \(\['when'\]\) are not all numeric"):
        ct.fit(ddf)
    assert len(seen) == 1
    assert seen[0].shape == (0, 5)
    assert seen[0].dtypes.astype(str).tolist() == ddf.dtypes.astype(str).tolist()
    ct.set_params(date="drop")
    with raise_if_computes(max_computes=0):  # choosing columns and passing them through reads no data
        ct.fit(ddf)
    assert ct.transformers_[0][2] == ["x0", "x1", "x2"]


def test_sklearn_transformer_fitted_on_pandas_transforms_dask_blockwise():
    frame, _ = _table(900)
    ct = ColumnTransformer(
        [("num", StandardScaler(), ["x0", "x1"]), ("cat", OneHotEncoder(), ["colour"])], sparse_threshold=0.9
    ).fit(frame)
    ddf = dd.from_pandas(frame, npartitions=3)
    with raise_if_computes(max_computes=0):
        lazy = ct.transform(
            ddf[["colour", "x2", "x1", "x0"]]
        )  # columns by name: order and extras do not matter
    assert sp.issparse(lazy._meta)
    np.testing.assert_allclose(lazy.compute().toarray(), ct.transform(frame).toarray())


# ---- errors --------------------------------------------------------------------------------------------------


def test_errors_name_the_problem_and_the_fix():
    frame, _ = _table(50)
    ddf = dd.from_pandas(frame, npartitions=2)
    with pytest.raises(ValueError, match=r"selects columns \['colur'\] that are not in the input"):
        ColumnTransformer([("cat", OneHotEncoder(), ["colur"])]).fit(frame)
    fitted = ColumnTransformer([("cat", OneHotEncoder(), ["colour"]), ("n", "passthrough", ["x0"])]).fit(
        frame
    )
    with pytest.raises(ValueError, match=r"columns are missing: \['colour'\]"):
        fitted.transform(frame.drop(columns="colour"))
    with pytest.raises(ValueError, match=r"columns are missing: \['colour'\]"):
        fitted.transform(ddf.drop(columns="colour"))
    with pytest.raises(ValueError, match="X has 2 features, but ColumnTransformer is expecting 4"):
        ColumnTransformer([("n", "passthrough", [0])]).fit(frame.to_numpy()).transform(np.zeros((3, 2)))
    with pytest.raises(
        ValueError, match=r"selects columns by name \(\['x0'\]\), but the input has no column names"
    ):
        ColumnTransformer([("n", "passthrough", ["x0"])]).fit(frame[["x0"]].to_numpy())
    with pytest.raises(ValueError, match="position 7, but the input has only 4 columns"):
        ColumnTransformer([("n", "passthrough", [7])]).fit(frame)
    with pytest.raises(
        TypeError, match=r"DateTimeFeatures takes datetime columns.*\{'colour': '(object|str)'\}"
    ):
        ColumnTransformer([("d", DateTimeFeatures(), ["colour"])]).fit(frame)
    with pytest.raises(TypeError, match=r"use daskml_lab\.preprocessing\.StandardScaler"):
        ColumnTransformer([("s", StandardScaler(), ["x0"])]).fit(ddf)
    with pytest.raises(ValueError, match="the name 'a' is used twice"):
        ColumnTransformer([("a", "passthrough", ["x0"]), ("a", "drop", ["x1"])]).fit(frame)
    with pytest.raises(TypeError, match="should implement fit and transform"):
        ColumnTransformer([("a", np.log, ["x0"])]).fit(frame)
    with pytest.raises(ValueError, match="parts among"):
        DateTimeFeatures(features=["fortnight"]).fit(frame.assign(t=pd.Timestamp(0))[["t"]])


# ---- pipelines -----------------------------------------------------------------------------------------------


class _Results:
    """A dask scheduler that records how many bytes each computation brought back to the client."""

    def __init__(self):
        self.n_bytes = []

    def __call__(self, dsk, keys, **kwargs):
        result = dask.get(dsk, keys, **kwargs)
        self.n_bytes.append(_n_bytes(result))
        return result


def _n_bytes(obj):
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if sp.issparse(obj):
        return obj.data.nbytes
    if isinstance(obj, pd.DataFrame | pd.Series):
        return int(obj.memory_usage(deep=True).sum()) if isinstance(obj, pd.DataFrame) else obj.nbytes
    if isinstance(obj, dict):
        return sum(_n_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_n_bytes(v) for v in obj)
    return 8


def _pipeline():
    return Pipeline(
        [("columns", _protocol_transformer()), ("model", LogisticRegression(C=1.0, max_iter=500))]
    )


def test_pipeline_on_a_dask_frame_is_one_pass_then_the_fit():
    frame, target = _table(20000)
    ddf = dd.from_pandas(frame, npartitions=4)
    y = dd.from_pandas(target, npartitions=4)
    pipeline = _pipeline()
    results = _Results()
    with dask.config.set(scheduler=results):
        pipeline.fit(ddf, y)
    # the same fit alone, on the transformed data: the pipeline adds exactly one pass (the statistics)
    transformer, alone = _protocol_transformer(), _Results()
    with raise_if_computes(max_computes=1):
        transformed = transformer.fit_transform(ddf)
    with dask.config.set(scheduler=alone):
        model = LogisticRegression(C=1.0, max_iter=500).fit(transformed, y)
    # the pipeline's computations: the statistics (a few numbers), then exactly those of the model's fit
    assert len(results.n_bytes) == 1 + len(alone.n_bytes)
    assert results.n_bytes[0] < 1000
    assert results.n_bytes[1:] == alone.n_bytes
    np.testing.assert_allclose(pipeline[-1].coef_, model.coef_, rtol=1e-6)
    with raise_if_computes(max_computes=0):
        predictions = pipeline.predict(ddf)
        probabilities = pipeline.predict_proba(ddf)
    assert isinstance(predictions, da.Array)
    assert predictions.numblocks == (4,)
    assert probabilities.shape[1] == 2
    # the same pipeline fitted on pandas predicts the same
    in_memory = _pipeline().fit(frame, target)
    np.testing.assert_allclose(in_memory[-1].coef_, pipeline[-1].coef_, rtol=1e-4, atol=1e-6)
    assert (in_memory.predict(frame) == predictions.compute()).mean() > 0.999


@pytest.mark.cluster
def test_pipeline_on_a_cluster(client):
    frame, target = _table(8000, seed=1)
    ddf = dd.from_pandas(frame, npartitions=4)
    y = dd.from_pandas(target, npartitions=4)
    pipeline = _pipeline().fit(ddf, y)
    predictions = pipeline.predict(ddf)
    assert isinstance(predictions, da.Array)
    reference = _pipeline().fit(frame, target)
    np.testing.assert_allclose(pipeline[-1].coef_, reference[-1].coef_, rtol=1e-4, atol=1e-6)
    assert (predictions.compute() == reference.predict(frame)).mean() > 0.999


# ---- saving --------------------------------------------------------------------------------------------------


def test_saved_pipeline_predicts_raw_tables(adult, tmp_path):
    X = adult.drop(columns="income").assign(
        interviewed=pd.Timestamp("1994-01-01") + pd.to_timedelta(adult["age"] * 7, unit="D")
    )
    y = adult["income"]
    columns = ColumnTransformer(
        [
            *_adult_transformers(),
            (
                "date",
                make_pipeline(DateTimeFeatures(features=["month", "weekday"]), StandardScaler()),
                ["interviewed"],
            ),
        ],
        verbose_feature_names_out="{transformer_name}:{feature_name}",
    )
    pipeline = Pipeline([("columns", columns), ("model", LogisticRegression(C=0.1, max_iter=1000))]).fit(X, y)
    path = save(pipeline, tmp_path / "adult.model")
    loaded = load(path)  # every type is trusted by default: no trusted= needed
    np.testing.assert_array_equal(loaded.predict(X), pipeline.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), pipeline.predict_proba(X))
    assert loaded[0].get_feature_names_out().tolist() == pipeline[0].get_feature_names_out().tolist()
    assert loaded[0].output_indices_ == pipeline[0].output_indices_
    # and an unfitted one keeps its parameters, selectors included
    unfitted = load(save(clone(columns), tmp_path / "unfitted.model"))
    assert unfitted.transformers[0][2].dtype_include is np.number


def test_saved_dask_fitted_transformer_stays_lazy(tmp_path):
    frame, _ = _table(900)
    frame = frame.assign(when=pd.date_range("2020-01-01", periods=900, freq="7h"))
    ddf = dd.from_pandas(frame, npartitions=3)
    ct = ColumnTransformer(
        [
            ("date", DateTimeFeatures(), ["when"]),
            ("num", "passthrough", make_column_selector(dtype_include=float)),
        ]
    ).fit(ddf)
    loaded = load(save(ct, tmp_path / "ct.model"))
    with raise_if_computes(max_computes=0):
        lazy = loaded.transform(ddf)
    np.testing.assert_array_equal(lazy.compute(), ct.transform(frame))


def test_protocol_transformers_are_refused_unless_trusted(tmp_path):
    frame, _ = _table(100)
    path = save(_protocol_transformer().fit(frame), tmp_path / "protocol.model")
    with pytest.raises(ValueError, match=r"not trusted by default: \['tests\.test_compose\.Categories'"):
        load(path)
    loaded = load(path, trusted=["tests.test_compose.Categories", "tests.test_compose.MeanCenter"])
    np.testing.assert_array_equal(
        loaded.transform(frame), _protocol_transformer().fit(frame).transform(frame)
    )


# ---- parameters ----------------------------------------------------------------------------------------------


def test_nested_parameters_and_clone():
    ct = _protocol_transformer(remainder=StandardScaler())
    params = ct.get_params()
    assert params["num"] is ct.transformers[0][1]
    assert "remainder__with_mean" in params
    ct.set_params(cat="drop", remainder__with_mean=False)
    assert ct.transformers[1][1] == "drop"
    assert ct.remainder.with_mean is False
    copy = clone(ct)
    assert copy.transformers[0][1] is not ct.transformers[0][1]
    assert [
        n
        for n, _, _ in make_column_transformer((StandardScaler(), [0]), (StandardScaler(), [1])).transformers
    ] == [
        "standardscaler-1",
        "standardscaler-2",
    ]


def test_sklearn_column_transformer_with_dtype_selectors_round_trips(adult, tmp_path):
    X, y = adult.drop(columns="income"), adult["income"]
    selectors = SklearnColumnTransformer(
        [
            ("num", StandardScaler(), make_column_selector(dtype_include=[np.floating, np.integer])),
            ("text", OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_exclude=np.number)),
        ]
    )
    pipeline = make_pipeline(selectors, LogisticRegression(C=0.1, max_iter=1000)).fit(X.fillna("missing"), y)
    loaded = load(save(pipeline, tmp_path / "sklearn.model"))
    np.testing.assert_array_equal(loaded.predict(X.fillna("missing")), pipeline.predict(X.fillna("missing")))
    assert loaded[0].transformers[0][2].dtype_include == [np.floating, np.integer]


def test_every_transformer_reads_the_same_partitions():
    frame, _ = _table(300)
    loads = []

    def load_part(index):
        loads.append(index)
        return frame.iloc[index * 100 : (index + 1) * 100]

    ddf = dd.from_delayed([dask.delayed(load_part)(i) for i in range(3)], meta=frame.iloc[:0])
    ct = ColumnTransformer(
        [
            ("a", StandardScaler(), ["x0"]),
            ("b", StandardScaler(), ["x1"]),
            ("c", OneHotEncoder(), ["colour"]),
            ("d", "passthrough", ["x2"]),
        ]
    ).fit(frame)
    out = ct.transform(ddf).compute(scheduler="sync")
    assert sorted(loads) == [0, 1, 2]  # each partition read once, not once per transformer
    np.testing.assert_allclose(out, ct.transform(frame))
    loads.clear()
    with dask.config.set(scheduler="sync"):
        ColumnTransformer([("c", Categories(), ["colour"]), ("d", Categories(), ["x2"])]).fit(ddf)
    assert sorted(loads) == [0, 1, 2]  # the statistics of both: one pass


def test_weights_and_a_remainder_transformer_on_dask_match_pandas():
    frame, _ = _table(900)
    ddf = dd.from_pandas(frame, npartitions=3)

    def make():
        return ColumnTransformer(
            [("cat", Categories(), ["colour"]), ("x0", MeanCenter(), ["x0"])],
            remainder=MeanCenter(),
            transformer_weights={"cat": 2.0, "remainder": 0.5},
            sparse_threshold=0,
        )

    with raise_if_computes(max_computes=1):
        lazy = make().fit_transform(ddf)
    expected = make().fit_transform(frame)
    np.testing.assert_allclose(lazy.compute(), expected)
    one_hot = pd.get_dummies(frame["colour"]).to_numpy(dtype=float)
    np.testing.assert_array_equal(expected[:, :4], 2.0 * one_hot)
    remainder = frame[["x1", "x2"]].to_numpy()
    np.testing.assert_allclose(expected[:, 5:], 0.5 * (remainder - remainder.mean(axis=0)))
