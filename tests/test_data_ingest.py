"""Ingestion of tables and files into validated row blocks: values, chunks, dtypes, laziness and messages."""

from __future__ import annotations

import gzip
import importlib.util
import math
import warnings

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import daskml_lab.data.formats._svmlight as svmlight_module
from daskml_lab.data import from_dataframe, read, read_csv, read_netcdf, read_parquet, read_zarr
from daskml_lab.data.ingest import FrameOrigin
from daskml_lab.exceptions import DaskMLLabDeprecationWarning
from daskml_lab.testing import raise_if_computes

HAS_H5PY = importlib.util.find_spec("h5py") is not None


def shared_file(shared_data, *parts):
    """Path of a shared dataset file, skipping the test when it is absent (as conftest.shared_file)."""
    path = shared_data.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset file {path} is absent")
    return path


def assert_contract(X, y=None, *, n_features=None):
    """The data contract: 2-D row-chunked float X with one column chunk and known chunks; y aligned."""
    assert isinstance(X, da.Array)
    assert X.ndim == 2
    assert X.numblocks[1] == 1
    assert not any(math.isnan(c) for c in X.chunks[0])
    assert X.dtype in (np.float64, np.float32)
    if n_features is not None:
        assert X.shape[1] == n_features
    if y is not None:
        assert isinstance(y, da.Array)
        assert y.ndim == 1
        assert y.chunks[0] == X.chunks[0]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, size=60)
    return X, y


@pytest.fixture
def frame(data):
    X, y = data
    return pd.DataFrame(X, columns=["f0", "f1", "f2", "f3"]).assign(target=y)


@pytest.fixture
def mixed():
    """A table with numeric, boolean, nullable, text and categorical columns and string labels."""
    rng = np.random.default_rng(1)
    n = 40
    return pd.DataFrame(
        {
            "num": rng.normal(size=n),
            "count": rng.integers(0, 10, size=n),
            "flag": rng.integers(0, 2, size=n).astype(bool),
            "nullable": pd.array(rng.integers(0, 5, size=n), dtype="Int64"),
            "color": rng.choice(["red", "green", "blue"], size=n),
            "size": pd.Categorical(rng.choice(["S", "M", "L"], size=n), categories=["S", "M", "L"]),
            "label": rng.choice(["cat", "dog"], size=n),
        }
    )


def expected_mixed(df, size_order=("S", "M", "L")):
    """Hand-built numpy reference of the encoding of the `mixed` table."""
    color = {"blue": 0.0, "green": 1.0, "red": 2.0}  # sorted distinct values
    size = {label: float(code) for code, label in enumerate(size_order)}  # declared category order
    return np.column_stack(
        [
            df["num"].to_numpy(),
            df["count"].to_numpy(float),
            df["flag"].to_numpy(float),
            df["nullable"].to_numpy(float),
            df["color"].map(color).to_numpy(float),
            df["size"].astype(object).map(size).to_numpy(float),
        ]
    )


# ---------------------------------------------------------------------------------------------------------
# from_dataframe


def test_pandas_numeric_round_trip(frame, data):
    X_np, y_np = data
    with raise_if_computes():
        X, y, origin = from_dataframe(frame, "target", chunks=25, return_origin=True)
    assert_contract(X, y, n_features=4)
    assert X.chunks[0] == (25, 25, 10)
    np.testing.assert_array_equal(X.compute(), X_np)
    np.testing.assert_array_equal(y.compute(), y_np)
    assert isinstance(origin, FrameOrigin)
    assert origin.kind == "pandas"
    assert origin.feature_names.tolist() == ["f0", "f1", "f2", "f3"]
    assert origin.index.equals(frame.index)
    assert origin.categories is None


def test_features_select_and_order(frame, data):
    X_np, _ = data
    X = from_dataframe(frame, features=["f3", "f0"])
    assert_contract(X, n_features=2)
    np.testing.assert_array_equal(X.compute(), X_np[:, [3, 0]])


def test_float32_frame_stays_float32(frame):
    X, _ = from_dataframe(frame.astype({c: np.float32 for c in ["f0", "f1", "f2", "f3"]}), "target")
    assert X.dtype == np.float32


def test_dask_frame_matches_pandas_with_one_compute(frame, data):
    X_np, y_np = data
    ddf = dd.from_pandas(frame, npartitions=3)
    with raise_if_computes(max_computes=1) as counter:
        X, y = from_dataframe(ddf, "target")
    assert counter.n_computes == 1  # partition lengths only
    assert_contract(X, y, n_features=4)
    assert X.numblocks[0] == 3
    assert sum(X.chunks[0]) == 60
    with raise_if_computes(max_computes=2):
        np.testing.assert_array_equal(X.compute(), X_np)
        np.testing.assert_array_equal(y.compute(), y_np)


def test_dask_frame_rechunk(frame):
    X, y = from_dataframe(dd.from_pandas(frame, npartitions=2), "target", chunks=16)
    assert X.chunks[0] == (16, 16, 16, 12)
    assert y.chunks[0] == X.chunks[0]


def test_categorical_error_names_columns_and_fix(mixed):
    with pytest.raises(
        TypeError, match=r"'color' \(str\w*\), 'size' \(category\) are not.*categorical='encode'"
    ):
        from_dataframe(mixed, "label")
    with pytest.raises(TypeError, match=r"'color'.*categorical='encode'"):
        from_dataframe(dd.from_pandas(mixed, npartitions=2), "label")


def test_encode_pandas(mixed):
    with raise_if_computes():
        X, y, origin = from_dataframe(mixed, "label", categorical="encode", return_origin=True)
    assert_contract(X, y, n_features=6)
    np.testing.assert_array_equal(X.compute(), expected_mixed(mixed))
    assert y.compute().tolist() == mixed["label"].tolist()  # labels kept as labels
    assert origin.categories["color"].tolist() == ["blue", "green", "red"]
    assert origin.categories["size"].tolist() == ["S", "M", "L"]
    assert origin.feature_names.tolist() == ["num", "count", "flag", "nullable", "color", "size"]


def test_encode_dask_consistent_with_pandas(mixed):
    ddf = dd.from_pandas(mixed, npartitions=4)
    with raise_if_computes(max_computes=1):
        X, y, origin = from_dataframe(ddf, "label", categorical="encode", return_origin=True)
    assert_contract(X, y, n_features=6)
    assert origin.kind == "dask-dataframe"
    np.testing.assert_array_equal(X.compute(), expected_mixed(mixed))
    assert y.dtype == object
    assert y.compute().tolist() == mixed["label"].tolist()
    assert origin.categories["color"].tolist() == ["blue", "green", "red"]


def test_encode_dask_unknown_categories(mixed):
    ddf = dd.from_pandas(mixed.astype({"color": "category"}), npartitions=3)
    ddf = ddf.assign(color=ddf["color"].cat.as_unknown())
    assert not ddf["color"].cat.known
    X, _, origin = from_dataframe(ddf, "label", categorical="encode", return_origin=True)
    assert origin.categories["color"].tolist() == ["blue", "green", "red"]
    np.testing.assert_array_equal(X.compute(), expected_mixed(mixed))


def test_explicit_categories_reused_and_unknown_value_raises(mixed):
    _, _, origin = from_dataframe(mixed, "label", categorical="encode", return_origin=True)
    test = mixed.iloc[:10]
    X, _ = from_dataframe(test, "label", categorical=dict(origin.categories))
    np.testing.assert_array_equal(X.compute(), expected_mixed(mixed)[:10])
    X, _ = from_dataframe(
        dd.from_pandas(mixed, npartitions=2),
        "label",
        categorical={"color": ["red", "blue"], "size": ["S", "M", "L"]},
    )
    with pytest.raises(ValueError, match=r"Column 'color' has value\(s\) \['green'\] that are not among"):
        X.compute()
    with pytest.raises(TypeError, match=r"'size' \(category\) are not"):
        from_dataframe(mixed, "label", categorical={"color": ["red", "blue", "green"]})


def test_missing_category_becomes_nan_and_is_reported(mixed):
    df = mixed.copy()
    df.loc[3, "color"] = None
    X = from_dataframe(dd.from_pandas(df, npartitions=2), features=["color"], categorical="encode")
    with pytest.raises(ValueError, match="Input X contains NaN"):
        X.compute()


@pytest.mark.parametrize("as_dask", [False, True])
def test_unknown_columns_are_named(frame, as_dask):
    df = dd.from_pandas(frame, npartitions=2) if as_dask else frame
    columns = r"Available columns: \['f0', 'f1', 'f2', 'f3', 'target'\]"
    with pytest.raises(ValueError, match=rf"Target column 'label' not found in the DataFrame. {columns}"):
        from_dataframe(df, "label")
    with pytest.raises(
        ValueError, match=rf"Feature column\(s\) \['f9'\] not found in the DataFrame. {columns}"
    ):
        from_dataframe(df, "target", features=["f0", "f9"])
    with pytest.raises(ValueError, match="target column 'target' is also listed in features"):
        from_dataframe(df, "target", features=["f0", "target"])


def test_bad_arguments(frame):
    with pytest.raises(ValueError, match=r"categorical must be 'error', 'encode' or a dict.*got 'onehot'"):
        from_dataframe(frame, "target", categorical="onehot")
    with pytest.raises(TypeError, match=r"df must be a pandas or dask DataFrame; got pandas.*Series"):
        from_dataframe(frame["f0"])
    with pytest.raises(ValueError, match=r"categorical names column\(s\) \['nope'\] that are not feature"):
        from_dataframe(frame, "target", categorical={"nope": [1, 2]})
    dated = frame.assign(when=pd.date_range("2020-01-01", periods=len(frame)))
    with pytest.raises(TypeError, match=r"\['when \(datetime64.*neither numeric nor categorical.*dt.year"):
        from_dataframe(dated, "target", categorical="encode")


# ---------------------------------------------------------------------------------------------------------
# CSV


def test_csv_round_trip_in_several_partitions(tmp_path, frame, data):
    X_np, y_np = data
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    X, y = read_csv(path, "target", blocksize=1000)
    assert_contract(X, y, n_features=4)
    assert X.numblocks[0] > 1
    np.testing.assert_allclose(X.compute(), X_np, rtol=1e-15)
    np.testing.assert_array_equal(y.compute(), y_np)


def test_gzipped_tsv_is_one_partition_per_file(tmp_path, frame, data):
    X_np, y_np = data
    for index, rows in enumerate([slice(0, 35), slice(35, 60)]):
        with gzip.open(tmp_path / f"part-{index}.tsv.gz", "wt") as handle:
            frame.iloc[rows].to_csv(handle, sep="\t", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "cannot split gzip" warning from dask
        X, y = read(str(tmp_path / "part-*.tsv.gz"), "target")
    assert_contract(X, y, n_features=4)
    assert X.chunks[0] == (35, 25)  # one block per compressed file
    np.testing.assert_allclose(X.compute(), X_np, rtol=1e-15)
    np.testing.assert_array_equal(y.compute(), y_np)


def test_csv_options_pass_through(tmp_path, data):
    X_np, y_np = data
    path = tmp_path / "noheader.csv"
    pd.DataFrame(X_np).assign(y=y_np).to_csv(path, index=False, header=False)
    X, y = read(path, "label", header=None, names=["a", "b", "c", "d", "label"])
    np.testing.assert_allclose(X.compute(), X_np, rtol=1e-15)
    np.testing.assert_array_equal(y.compute(), y_np)


def test_csv_columns_typed_after_dasks_sample_are_read_again(tmp_path):
    # dask types the columns from the first rows (its sample); a code column turning to text further down
    # and an integer column with a later missing value used to fail with dask's "Mismatched dtypes"
    n = 400
    frame = pd.DataFrame(
        {
            "code": [str(i) for i in range(n - 1)] + ["V57"],
            "count": [str(i) for i in range(n - 1)] + [""],
            "x": np.arange(n, dtype=float),
            "target": np.arange(n) % 2,
        }
    )
    path = tmp_path / "late.csv"
    frame.to_csv(path, index=False)
    with pytest.warns(
        UserWarning, match=r"Columns \['code', 'count'\] of .*late.csv hold values of other types"
    ):
        X, y, origin = read_csv(
            path, "target", categorical="encode", allow_nan=True, return_origin=True, sample=500
        )
    assert "V57" in list(origin.categories["code"])
    assert origin.column_types == {"code": "str", "count": "float64"}
    codes = X.compute()
    assert np.isnan(codes[-1, 1])  # the late missing count is NaN
    assert codes[-2, 1] == n - 2
    np.testing.assert_array_equal(y.compute(), frame["target"].to_numpy())
    for chosen in ("float64", {"code": "float64"}):  # types chosen by the caller are kept
        with pytest.raises(ValueError, match="V57"):
            read_csv(path, "target", categorical="encode", allow_nan=True, sample=500, dtype=chosen)


def test_csv_nan_features_pass_with_allow_nan(tmp_path):
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "target": [0, 1, 0, 1]})
    path = tmp_path / "nan.csv"
    frame.to_csv(path, index=False)
    X, _ = read_csv(path, "target", allow_nan=True)
    np.testing.assert_array_equal(np.isnan(X.compute()[:, 0]), [False, True, False, False])
    X, _ = read_csv(path, "target")
    with pytest.raises(ValueError, match="contains NaN"):
        X.compute()


def test_diabetes_csv_with_late_text_codes_is_read(shared_data):
    path = shared_file(shared_data, "diabetes_130_us_hospitals", "diabetic_data.csv.gz")
    with pytest.warns(UserWarning, match=r"\['A1Cresult', 'diag_1', 'max_glu_serum'\]"):
        X, _, origin = read_csv(path, "readmitted", categorical="encode", allow_nan=True, return_origin=True)
    assert X.shape == (101_766, 49)
    assert {"V57", "250.83"} <= set(origin.categories["diag_1"])
    assert set(origin.categories["A1Cresult"]) >= {">7", ">8", "Norm"}


# ---------------------------------------------------------------------------------------------------------
# parquet


def test_parquet_file_and_columns(tmp_path, frame, data):
    X_np, y_np = data
    path = tmp_path / "table.parquet"
    frame.to_parquet(path)
    X, y = read_parquet(path, "target", features=["f2", "f0"])
    assert_contract(X, y, n_features=2)
    np.testing.assert_array_equal(X.compute(), X_np[:, [2, 0]])
    np.testing.assert_array_equal(y.compute(), y_np)


def test_parquet_columns_keyword_is_a_deprecated_alias_of_features(tmp_path, frame, data):
    X_np, _ = data
    path = tmp_path / "table.parquet"
    frame.to_parquet(path)
    with pytest.warns(
        DaskMLLabDeprecationWarning, match=r"read_parquet\(columns=\.\.\.\) is deprecated.*features="
    ):
        X_old, y_old = read_parquet(path, "target", columns=["f2", "f0"])
    with pytest.warns(FutureWarning, match="deprecated"):  # also a FutureWarning, shown by default
        read(path, "target", columns=["f2"])
    X_new, y_new = read_parquet(path, "target", features=["f2", "f0"])
    np.testing.assert_array_equal(X_old.compute(), X_new.compute())
    np.testing.assert_array_equal(X_old.compute(), X_np[:, [2, 0]])
    np.testing.assert_array_equal(y_old.compute(), y_new.compute())
    with pytest.raises(TypeError, match=r"both features= and its deprecated alias columns="):
        read_parquet(path, "target", features=["f0"], columns=["f0"])


def test_parquet_dataset_directory(tmp_path, mixed):
    dd.from_pandas(mixed, npartitions=3).to_parquet(tmp_path / "dataset")
    with raise_if_computes(max_computes=1):
        X, y, origin = read(tmp_path / "dataset", "label", categorical="encode", return_origin=True)
    assert_contract(X, y, n_features=6)
    assert X.numblocks[0] == 3
    # dask reads a parquet category column with unknown categories: they are computed, hence sorted
    assert origin.categories["size"].tolist() == ["L", "M", "S"]
    np.testing.assert_array_equal(X.compute(), expected_mixed(mixed, size_order=("L", "M", "S")))
    assert y.compute().tolist() == mixed["label"].tolist()
    with pytest.raises(TypeError, match=r"'color' \(str(ing)?\)"):
        read_parquet(tmp_path / "dataset", "label")


# ---------------------------------------------------------------------------------------------------------
# zarr


def test_zarr_array_is_X(tmp_path, data):
    X_np, _ = data
    store = tmp_path / "X.zarr"
    array = zarr.open_array(store, mode="w", shape=X_np.shape, chunks=(16, 2), dtype="f8")
    array[:] = X_np
    with raise_if_computes():
        X = read(store)
    assert_contract(X, n_features=4)
    assert X.chunks[0] == (16, 16, 16, 12)
    np.testing.assert_array_equal(X.compute(), X_np)
    with pytest.raises(ValueError, match="is a single array, which holds X only, so target='y'"):
        read_zarr(store, "y")


def test_zarr_group_X_and_y(tmp_path, data):
    X_np, y_np = data
    store = tmp_path / "train.zarr"
    group = zarr.open_group(store, mode="w")
    group.create_array("X", data=X_np, chunks=(25, 4))
    group.create_array("y", data=y_np, chunks=(7,))  # other chunks than X: rechunked to X's rows
    X, y = read_zarr(store, "y", features=[1, 3])
    assert_contract(X, y, n_features=2)
    assert X.chunks[0] == (25, 25, 10)
    np.testing.assert_array_equal(X.compute(), X_np[:, [1, 3]])
    np.testing.assert_array_equal(y.compute(), y_np)
    with pytest.raises(
        ValueError, match=r"Target array 'label' not found in .*Available arrays: \['X', 'y'\]"
    ):
        read_zarr(store, "label")
    with pytest.raises(
        ValueError, match=r"features picks columns of the zarr array X by position in \[0, 4\)"
    ):
        read_zarr(store, "y", features=["a"])


def test_zarr_group_of_columns_and_component(tmp_path, data):
    X_np, y_np = data
    store = tmp_path / "columns.zarr"
    group = zarr.open_group(store, mode="w").require_group("train")
    for j in range(4):
        group.create_array(f"f{j}", data=X_np[:, j], chunks=(10 + j,))
    group.create_array("target", data=y_np, chunks=(60,))
    X, y, origin = read_zarr(
        store, "target", component="train", features=["f2", "f1"], chunks=20, return_origin=True
    )
    assert_contract(X, y, n_features=2)
    assert X.chunks[0] == (20, 20, 20)
    np.testing.assert_array_equal(X.compute(), X_np[:, [2, 1]])
    np.testing.assert_array_equal(y.compute(), y_np)
    assert origin.feature_names.tolist() == ["f2", "f1"]
    X = read_zarr(store, component="train", features=None)  # every 1-D array: four features and the target
    assert X.shape == (60, 5)


def test_zarr_written_by_xarray(tmp_path):
    rng = np.random.default_rng(2)
    temp = rng.normal(size=(4, 5))
    temp[1, 2] = np.nan  # a masked sample
    ds = xr.Dataset(
        {
            "temp": (("lat", "lon"), temp),
            "elev": (("lat", "lon"), rng.normal(size=(4, 5))),
            "cover": (("lat", "lon"), rng.integers(0, 2, size=(4, 5))),
        },
        coords={"lat": np.arange(4.0), "lon": np.arange(5.0)},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note on consolidated metadata in format 3
        ds.chunk({"lat": 2}).to_zarr(tmp_path / "grid.zarr")
    X, y, origin = read(tmp_path / "grid.zarr", "cover", features=["elev", "temp"], return_origin=True)
    assert_contract(X, y, n_features=2)
    keep = ~np.isnan(temp).ravel()
    np.testing.assert_array_equal(X.compute(), np.column_stack([ds.elev.values.ravel(), temp.ravel()])[keep])
    np.testing.assert_array_equal(y.compute(), ds.cover.values.ravel()[keep])
    assert origin.xarray.sample_dims == ("lat", "lon")
    store = tmp_path / "plain.zarr"
    zarr.open_group(store, mode="w").create_array("X", data=np.ones((3, 2)))
    with pytest.raises(
        ValueError, match="sample_dims and feature_dim apply to zarr stores written by xarray"
    ):
        read_zarr(store, sample_dims=("a",))


# ---------------------------------------------------------------------------------------------------------
# netCDF / HDF5


def grid_dataset():
    rng = np.random.default_rng(3)
    precip = rng.gamma(2.0, size=(3, 4, 5))
    precip[:, 0, 0] = np.nan  # a pixel off the grid (a land/sea mask)
    return xr.Dataset(
        {
            "precip": (("time", "lat", "lon"), precip),
            "temp": (("time", "lat", "lon"), rng.normal(size=(3, 4, 5)).astype(np.float32)),
            "elevation": (("lat", "lon"), rng.normal(size=(4, 5))),  # static: broadcast over time
            "rain": (("time", "lat", "lon"), rng.integers(0, 2, size=(3, 4, 5))),
        },
        coords={
            "time": pd.date_range("2000-01-01", periods=3),
            "lat": np.linspace(40, 43, 4),
            "lon": np.arange(5.0),
        },
    )


@pytest.mark.parametrize(
    "engine",
    [
        "netcdf4",
        pytest.param("h5netcdf", marks=pytest.mark.skipif(not HAS_H5PY, reason="h5netcdf needs h5py")),
    ],
)
def test_netcdf_round_trip(tmp_path, engine):
    ds = grid_dataset()
    path = tmp_path / "grid.nc"
    ds.to_netcdf(path, engine=engine)
    with raise_if_computes(max_computes=1):  # the per-block counts of kept samples
        X, y, origin = read_netcdf(path, "rain", engine=engine, return_origin=True)
    assert_contract(X, y, n_features=3)
    expected = np.column_stack(
        [
            ds.precip.values.ravel(),
            ds.temp.values.ravel(),
            np.broadcast_to(ds.elevation.values, (3, 4, 5)).ravel(),
        ]
    )
    keep = ~np.isnan(expected).any(axis=1)
    assert keep.sum() == 57
    np.testing.assert_allclose(X.compute(), expected[keep], rtol=1e-7)  # temp was float32 on disk
    np.testing.assert_array_equal(y.compute(), ds.rain.values.ravel()[keep])
    assert origin.feature_names.tolist() == ["precip", "temp", "elevation"]
    assert origin.xarray.sample_dims == ("time", "lat", "lon")


@pytest.mark.skipif(not HAS_H5PY, reason="plain HDF5 files are written with h5py")
def test_plain_hdf5_datasets(tmp_path, data):
    import h5py

    X_np, y_np = data
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as handle:
        handle["X"] = X_np
        handle["y"] = y_np
        handle["test/X"] = X_np[:10]
        handle["test/y"] = y_np[:10]
    X, y = read(path, "y", dataset="X")
    assert_contract(X, y, n_features=4)
    np.testing.assert_array_equal(X.compute(), X_np)
    np.testing.assert_array_equal(y.compute(), y_np)
    X, y = read(path, "y", dataset="test/X")
    np.testing.assert_array_equal(X.compute(), X_np[:10])
    np.testing.assert_array_equal(y.compute(), y_np[:10])
    with pytest.raises(ValueError, match=r"Dataset 'Z' not found in .*Available: \['X', 'y'\]"):
        read(path, "y", dataset="Z")
    with pytest.raises(ValueError, match=r"Target 'w' not found in .*Available: \['X', 'y'\]"):
        read(path, "w", dataset="X")


# ---------------------------------------------------------------------------------------------------------
# svmlight dispatch


def test_svmlight_is_dispatched(tmp_path, monkeypatch, data):
    calls = []

    def fake_read_svmlight(path, **options):
        calls.append((str(path), options))
        return "X", "y"

    monkeypatch.setattr(svmlight_module, "read_svmlight", fake_read_svmlight)
    path = tmp_path / "train.libsvm"
    path.write_text("1 1:0.5\n")
    assert read(path, n_features=3) == ("X", "y")
    assert calls == [(str(path), {"n_features": 3})]
    with pytest.raises(
        ValueError, match=r"svmlight files hold their labels .* target='label' cannot be chosen"
    ):
        read(path, "label")


def test_svmlight_round_trip(tmp_path, data):
    from sklearn.datasets import dump_svmlight_file

    X_np, y_np = data
    path = tmp_path / "train.svm"
    dump_svmlight_file(X_np, y_np, str(path))
    try:
        X, y = read(path, n_features=4)
    except NotImplementedError:
        pytest.skip("read_svmlight is not written yet")
    X = X.compute()
    X = X.toarray() if hasattr(X, "toarray") else X
    np.testing.assert_allclose(X, X_np, rtol=1e-12)
    np.testing.assert_array_equal(y.compute(), y_np)


# ---------------------------------------------------------------------------------------------------------
# read(): errors


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "nowhere.csv"
    for reader in (read, read_csv, read_parquet, read_zarr, read_netcdf):
        with pytest.raises(FileNotFoundError, match=r"No such file or directory: '.*nowhere.csv'"):
            reader(missing)
    with pytest.raises(FileNotFoundError, match=r"No file matches the pattern '.*part-\*.csv'"):
        read(str(tmp_path / "part-*.csv"))


def test_unknown_extension_lists_supported(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(
        ValueError, match=r"Cannot tell the format of .*data.xlsx.*Supported: .zarr, .nc.*\.csv, \.tsv"
    ):
        read(path)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"is neither a zarr store .* nor a parquet dataset"):
        read(folder)


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("broken.nc", b"CDF\x01 this is not netCDF", "netCDF/HDF5"),
        ("broken.h5", b"\x89HDF\r\n\x1a\n truncated", "netCDF/HDF5"),
        ("broken.parquet", b"PAR1 not really parquet", "parquet"),
        ("broken.csv.gz", b"\x1f\x8b\x08 not gzip data at all", "a delimited text"),
    ],
)
def test_corrupt_files_give_clear_errors(tmp_path, name, content, fmt):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(
        ValueError, match=rf"(?s)Could not read '.*{name}' as {fmt}.*truncated, corrupt"
    ) as info:
        read(path)
    assert info.value.__cause__ is not None


def test_corrupt_zarr_store(tmp_path):
    store = tmp_path / "broken.zarr"
    store.mkdir()
    (store / "zarr.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"Could not read '.*broken.zarr' as a zarr store") as info:
        read(store)
    assert info.value.__cause__ is not None


# ---------------------------------------------------------------------------------------------------------
# real datasets


def test_magic_gamma_telescope(shared_data):
    path = shared_file(shared_data, "magic_gamma_telescope", "magic.tsv.gz")
    with raise_if_computes(max_computes=1):
        X, y, origin = read(path, "target", return_origin=True)
    assert_contract(X, y, n_features=10)
    assert X.numblocks[0] == 1  # a gzip file cannot be split
    reference = pd.read_csv(path, sep="\t")
    y_ref = reference.pop("target")
    assert X.shape == (19020, 10)
    assert origin.feature_names.tolist() == reference.columns.tolist()
    np.testing.assert_array_equal(X.compute(), reference.to_numpy(float))
    np.testing.assert_array_equal(y.compute(), y_ref.to_numpy())
    assert set(np.unique(y.compute()).tolist()) == {0, 1}


ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship",
    "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country", "income",
]  # fmt: skip


def test_adult_needs_encoding(shared_data):
    path = shared_file(shared_data, "adult", "adult.data.gz")
    options = {"header": None, "names": ADULT_COLUMNS, "skipinitialspace": True}
    with pytest.raises(
        TypeError, match=r"'workclass' \(.*\), 'education' .*'native-country'.*categorical='encode'"
    ):
        read_csv(path, "income", **options)
    X, y, origin = read_csv(path, "income", categorical="encode", return_origin=True, **options)
    assert_contract(X, y, n_features=14)
    assert X.shape == (32561, 14)
    reference = pd.read_csv(path, **options)
    assert origin.categories["sex"].tolist() == ["Female", "Male"]
    assert "?" in origin.categories["workclass"].tolist()  # missing values coded '?' stay a category here
    X_np = X.compute()
    np.testing.assert_array_equal(X_np[:, 0], reference["age"].to_numpy(float))
    np.testing.assert_array_equal(X_np[:, 9], (reference["sex"] == "Male").to_numpy(float))
    education = np.searchsorted(np.sort(reference["education"].unique()), reference["education"])
    np.testing.assert_array_equal(X_np[:, 3], education)
    labels = y.compute()
    assert sorted(set(labels.tolist())) == ["<=50K", ">50K"]
    assert (labels == ">50K").sum() == 7841


# ---------------------------------------------------------------------------------------------------------
# on a real cluster


@pytest.mark.cluster
def test_reads_on_a_local_cluster(client, tmp_path, frame, data):
    X_np, y_np = data
    with gzip.open(tmp_path / "table.csv.gz", "wt") as handle:
        frame.to_csv(handle, index=False)
    X, y = read(tmp_path / "table.csv.gz", "target")
    X_out, y_out = dask.compute(X, y)  # runs on the cluster's workers
    np.testing.assert_allclose(X_out, X_np, rtol=1e-15)
    np.testing.assert_array_equal(y_out, y_np)
    grid = grid_dataset()
    grid.to_netcdf(tmp_path / "grid.nc", engine="netcdf4")
    X, y, origin = read(tmp_path / "grid.nc", "rain", engine="netcdf4", return_origin=True)
    assert X.shape == (57, 3)
    from daskml_lab.data._convert import wrap_output

    back = wrap_output(X[:, 0], origin, name="precip").compute()
    np.testing.assert_array_equal(back.values, grid.precip.values)  # NaN where masked, values elsewhere
    assert back.dims == ("time", "lat", "lon")
