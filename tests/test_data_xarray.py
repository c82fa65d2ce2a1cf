"""xarray inputs: sample dimensions stacked into rows, masks, and results back on the original coordinates."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from daskml_lab.data import check_array, check_X_y, from_xarray
from daskml_lab.data._convert import wrap_output
from daskml_lab.data._xarray import XarraySamples, wrap_xarray_output, xarray_to_dask
from daskml_lab.testing import raise_if_computes

BANDS = ["red", "green", "nir"]


def assert_contract(X, y=None):
    assert isinstance(X, da.Array)
    assert X.ndim == 2
    assert X.numblocks[1] == 1
    assert not any(math.isnan(c) for c in X.chunks[0])
    assert X.dtype in (np.float32, np.float64)
    if y is not None:
        assert y.ndim == 1
        assert y.chunks[0] == X.chunks[0]


def make_cube(*, masked=True, seed=0):
    """A (time, lat, lon, band) reflectance cube with a land/sea mask and a partly cloudy pixel."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(size=(3, 4, 5, 3))
    if masked:
        values[:, 0, :2, :] = np.nan  # sea: all bands missing at every time
        values[1, 2, 3, 0] = np.nan  # one band missing once (cloud)
    return xr.DataArray(
        values,
        dims=("time", "lat", "lon", "band"),
        coords={
            "time": pd.date_range("2021-06-01", periods=3),
            "lat": np.linspace(50.0, 51.5, 4),
            "lon": np.linspace(4.0, 6.0, 5),
            "band": BANDS,
            "sensor": "S2",  # a scalar coordinate is kept
        },
        name="reflectance",
    )


def rows_of(cube):
    """numpy reference: samples in C order of (time, lat, lon), bands as columns."""
    return cube.transpose("time", "lat", "lon", "band").values.reshape(-1, cube.sizes["band"])


def linear_block(block, weights):
    """A stand-in for a fitted model's per-block predict."""
    return block @ weights


# ---------------------------------------------------------------------------------------------------------
# from_xarray: 2-D and N-D


def test_two_dimensional_dataarray():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(30, 4))
    arr = xr.DataArray(values, dims=("sample", "feature"), coords={"feature": ["a", "b", "c", "d"]})
    with raise_if_computes():
        X, origin = from_xarray(arr, skipna=False, chunks=8, return_origin=True)
    assert_contract(X)
    assert X.chunks[0] == (8, 8, 8, 6)
    np.testing.assert_array_equal(X.compute(), values)
    assert origin.kind == "xarray"
    assert origin.feature_names.tolist() == ["a", "b", "c", "d"]
    assert origin.xarray.sample_dims == ("sample",)


def test_stacking_several_sample_dims_numpy_backed():
    cube = make_cube(masked=False)
    X, y = from_xarray(cube, "nir", sample_dims=("time", "lat", "lon"), feature_dim="band")
    assert_contract(X, y)
    assert X.shape == (60, 2)
    np.testing.assert_array_equal(X.compute(), rows_of(cube)[:, :2])
    np.testing.assert_array_equal(y.compute(), rows_of(cube)[:, 2])


def test_sample_dims_in_another_order_and_default_feature_dim():
    cube = make_cube(masked=False)
    X, origin = from_xarray(cube, sample_dims=("lon", "time", "lat"), return_origin=True)  # band is left
    expected = cube.transpose("lon", "time", "lat", "band").values.reshape(-1, 3)
    np.testing.assert_array_equal(X.compute(), expected)
    assert origin.xarray.sample_dims == ("lon", "time", "lat")
    back = wrap_output(X[:, 1], origin, name="green")
    xr.testing.assert_equal(
        back.compute(), cube.sel(band="green", drop=True).transpose("lon", "time", "lat").rename("green")
    )


def test_dask_backed_stays_lazy_and_drops_masked_samples():
    cube = make_cube().chunk({"time": 1, "lat": 2, "lon": 5, "band": 1})
    labels = (cube.sel(band="nir", drop=True).fillna(0) > 0.5).astype(int).rename("label")
    with raise_if_computes(max_computes=1) as counter:  # the number of kept samples per block
        X, y, origin = from_xarray(cube, labels, return_origin=True)
    assert counter.n_computes == 1
    assert_contract(X, y)
    expected = rows_of(cube.compute())
    keep = ~np.isnan(expected).any(axis=1)
    assert X.shape == (int(keep.sum()), 3) == (53, 3)  # 2 sea pixels x 3 times and one cloud
    np.testing.assert_array_equal(X.compute(), expected[keep])
    np.testing.assert_array_equal(y.compute(), labels.values.ravel()[keep])
    assert origin.xarray.kept_chunks == X.chunks[0]


def test_skipna_false_keeps_samples_and_validation_reports_nan():
    X = from_xarray(make_cube().chunk({"time": 1}), skipna=False)
    assert X.shape == (60, 3)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        X.compute()


def test_single_feature_when_sample_dims_cover_everything():
    cube = make_cube(masked=False).sel(band="red", drop=True)
    X, origin = from_xarray(cube, sample_dims=("time", "lat", "lon"), return_origin=True)
    assert X.shape == (60, 1)
    assert origin.feature_names.tolist() == ["reflectance"]
    np.testing.assert_array_equal(X.compute()[:, 0], cube.values.ravel())


def test_features_and_target_along_the_feature_dimension():
    cube = make_cube(masked=False)
    X, y, origin = from_xarray(cube, "green", features=["nir", "red"], return_origin=True)
    np.testing.assert_array_equal(X.compute(), rows_of(cube)[:, [2, 0]])
    np.testing.assert_array_equal(y.compute(), rows_of(cube)[:, 1])
    assert origin.feature_names.tolist() == ["nir", "red"]


def test_target_as_coordinate():
    cube = make_cube(masked=False)
    cube = cube.assign_coords(crop=(("lat", "lon"), np.arange(20).reshape(4, 5) % 3))
    X, y = from_xarray(cube, "crop")
    np.testing.assert_array_equal(
        y.compute(), np.broadcast_to(np.arange(20).reshape(4, 5) % 3, (3, 4, 5)).ravel()
    )
    assert X.shape == (60, 3)


# ---------------------------------------------------------------------------------------------------------
# Datasets


def make_dataset():
    cube = make_cube()
    ds = cube.to_dataset(dim="band")
    return ds.assign(
        elevation=(("lat", "lon"), np.arange(20.0).reshape(4, 5)),  # static: broadcast over time
        irrigated=(("lat", "lon"), np.arange(20).reshape(4, 5) % 2 == 0),  # bool feature
        cover=(("time", "lat", "lon"), np.arange(60).reshape(3, 4, 5) % 4),  # integer class labels
    )


def test_dataset_with_target_variable():
    ds = make_dataset()
    with raise_if_computes():  # in-memory data: the kept samples are counted with the synchronous scheduler
        X, y, origin = from_xarray(ds, "cover", return_origin=True)
    assert_contract(X, y)
    assert origin.feature_names.tolist() == [*BANDS, "elevation", "irrigated"]
    expected = np.column_stack(
        [
            rows_of(make_cube()),
            np.broadcast_to(ds.elevation.values, (3, 4, 5)).ravel(),
            np.broadcast_to(ds.irrigated.values, (3, 4, 5)).ravel().astype(float),
        ]
    )
    keep = ~np.isnan(expected).any(axis=1)
    np.testing.assert_array_equal(X.compute(), expected[keep])
    np.testing.assert_array_equal(y.compute(), ds.cover.values.ravel()[keep])
    assert X.dtype == np.float64


def test_dataset_feature_selection_and_dask_backing():
    ds = make_dataset().chunk({"time": 1})
    X, y = from_xarray(ds, "cover", features=["elevation", "nir"])
    assert_contract(X, y)
    expected = np.column_stack(
        [np.broadcast_to(ds.elevation.values, (3, 4, 5)).ravel(), rows_of(make_cube())[:, 2]]
    )
    keep = ~np.isnan(expected).any(axis=1)
    np.testing.assert_array_equal(X.compute(), expected[keep])


# ---------------------------------------------------------------------------------------------------------
# results back on coordinates


def test_wrap_output_puts_training_results_back_lazily():
    cube = make_cube().chunk({"time": 1, "lat": 2})
    X, origin = from_xarray(cube, return_origin=True)
    weights = np.array([1.0, -2.0, 0.5])
    with raise_if_computes():
        prediction = X.map_blocks(linear_block, weights, drop_axis=1, dtype=float)
        back = wrap_output(prediction, origin, name="prediction")
    assert isinstance(back, xr.DataArray)
    assert isinstance(back.data, da.Array)
    assert back.dims == ("time", "lat", "lon")
    assert back.name == "prediction"
    assert back.coords["sensor"].item() == "S2"
    xr.testing.assert_identical(back.coords.to_dataset(), cube.isel(band=0, drop=True).coords.to_dataset())
    reference = (cube.values @ weights).astype(float)  # NaN wherever a band is NaN
    np.testing.assert_allclose(back.values, reference)
    assert np.isnan(back.values).sum() == 7


def test_wrap_output_of_class_probabilities_and_integer_labels():
    cube = make_cube()
    X, origin = from_xarray(cube, return_origin=True)
    n_rows = X.shape[0]
    proba = da.from_array(np.tile([0.2, 0.8], (n_rows, 1)), chunks=(X.chunks[0], 2))
    back = wrap_output(proba, origin, columns=np.array(["cat", "dog"]), name="probability")
    assert back.dims == ("time", "lat", "lon", "column")
    assert back.coords["column"].values.tolist() == ["cat", "dog"]
    assert np.isnan(back.sel(column="dog").values).sum() == 7
    assert np.nanmax(back.sel(column="dog").values) == 0.8
    labels = wrap_output(da.ones(n_rows, chunks=X.chunks[0], dtype=np.int64), origin)
    assert labels.dtype == np.float64  # NaN needs floats
    assert np.nansum(labels.values) == n_rows
    strings = wrap_output(da.from_array(np.full(n_rows, "dog"), chunks=X.chunks[0]), origin).values
    assert strings.dtype == object
    assert (strings[~pd.isna(strings)] == "dog").all()
    assert pd.isna(strings).sum() == 7


def test_transform_like_output_goes_back_on_the_feature_dim():
    cube = make_cube()
    X, origin = from_xarray(cube, return_origin=True)
    back = wrap_output(X * 2, origin)
    assert back.dims == ("time", "lat", "lon", "band")
    assert back.coords["band"].values.tolist() == BANDS
    masked = np.isnan(cube.values).any(axis=-1, keepdims=True)
    np.testing.assert_allclose(back.values, np.where(masked, np.nan, cube.values * 2))


# ---------------------------------------------------------------------------------------------------------
# the prediction path: check_array(DataArray) -> predict -> wrap_output


def test_prediction_path_fills_masked_samples_and_masks_them_back():
    cube = make_cube().chunk({"time": 1, "lat": 2})
    weights = np.array([0.5, 1.0, -1.0])
    with raise_if_computes():
        X, origin = check_array(cube, known_chunks=False)  # what estimators' predict does
        prediction = X.map_blocks(linear_block, weights, drop_axis=1, dtype=float)
        back = wrap_output(prediction, origin, name="prediction")
    assert X.shape == (60, 3)
    assert back.dims == ("time", "lat", "lon")
    np.testing.assert_allclose(back.values, cube.values @ weights)  # NaN at every sample with a NaN band


def test_prediction_path_on_numpy_backed_two_dimensional_input():
    values = np.arange(12.0).reshape(6, 2)
    values[4, 1] = np.nan
    arr = xr.DataArray(values, dims=("pixel", "band"), coords={"pixel": np.arange(10, 16)})
    X, origin = check_array(arr, known_chunks=False)
    assert X.chunks == ((6,), (2,))
    back = wrap_output(X.sum(axis=1), origin)
    assert back.coords["pixel"].values.tolist() == list(range(10, 16))
    np.testing.assert_array_equal(back.values, [1.0, 5.0, 9.0, 13.0, np.nan, 21.0])


def test_training_path_does_not_fill_nan():
    """check_array for fit (known chunks) keeps NaN so that it is reported, never silently learnt from."""
    X, _ = check_array(make_cube())
    with pytest.raises(ValueError, match="Input X contains NaN"):
        X.compute()


def test_check_array_of_a_dataset_and_of_a_1d_target():
    ds = make_dataset()
    X, origin = check_array(ds[["red", "elevation"]], known_chunks=False)
    assert origin.feature_names.tolist() == ["red", "elevation"]
    assert X.shape == (60, 2)
    data = check_X_y(make_cube(masked=False).isel(time=0, lat=0), xr.DataArray(np.arange(5), dims="lon"))
    assert data.X.shape == (5, 3)
    np.testing.assert_array_equal(data.y.compute(), np.arange(5))


def test_full_workflow_with_a_scikit_learn_model():
    """Train on the kept samples, predict on the whole grid, get a map with NaN over the sea."""
    from sklearn.linear_model import LinearRegression

    ds = make_dataset().chunk({"time": 1})
    target = ds.red * 2 + ds.nir - ds.elevation * 0.1
    ds = ds.assign(target=target)
    X, y = from_xarray(ds, "target", features=["red", "nir", "elevation"])
    model = LinearRegression().fit(X.compute(), y.compute())
    np.testing.assert_allclose(model.coef_, [2.0, 1.0, -0.1], atol=1e-10)

    with raise_if_computes():
        X_grid, origin = check_array(ds[["red", "nir", "elevation"]], known_chunks=False)
        prediction = X_grid.map_blocks(model.predict, drop_axis=1, dtype=float)
        grid = wrap_output(prediction, origin, name="prediction")
    np.testing.assert_allclose(grid.values, target.transpose("time", "lat", "lon").values, atol=1e-10)


# ---------------------------------------------------------------------------------------------------------
# property: stacking then unstacking gives the input back


@pytest.mark.property
@settings(max_examples=20, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 3)),
    chunk=st.integers(1, 4),
    n_masked=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(shape, chunk, n_masked, seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(*shape, 2))
    flat = values.reshape(-1, 2)
    masked = rng.choice(flat.shape[0], size=min(n_masked, flat.shape[0] - 1), replace=False)
    flat[masked, 0] = np.nan
    cube = xr.DataArray(values, dims=("a", "b", "c", "f")).chunk({"a": 1, "b": chunk})
    X, origin = from_xarray(cube, return_origin=True)
    assert X.shape[0] == flat.shape[0] - len(masked)
    back = wrap_output(X[:, 1], origin).values
    expected = values[..., 1].copy()
    expected[np.isnan(values[..., 0])] = np.nan
    np.testing.assert_array_equal(back, expected)


# ---------------------------------------------------------------------------------------------------------
# errors


def test_error_messages():
    cube = make_cube()
    with pytest.raises(
        ValueError, match=r"Dimension\(s\) \['depth'\] not found in the DataArray, whose dimensions"
    ):
        from_xarray(cube, sample_dims=("time", "depth"))
    with pytest.raises(
        ValueError, match=r"Cannot tell the feature dimension: \['lon', 'band'\] are not sample"
    ):
        from_xarray(cube, sample_dims=("time", "lat"))
    with pytest.raises(
        ValueError, match=r"\['lon'\] of the DataArray are neither sample dims .* nor the feature"
    ):
        from_xarray(cube, sample_dims=("time", "lat"), feature_dim="band")
    with pytest.raises(ValueError, match="is also among sample_dims"):
        from_xarray(cube, sample_dims=("time", "lat", "lon", "band"), feature_dim="band")
    with pytest.raises(
        ValueError, match=r"Feature\(s\) \['swir'\] not found along dimension 'band'. Available"
    ):
        from_xarray(cube, features=["red", "swir"])
    with pytest.raises(ValueError, match=r"Target 'ndvi' is neither a coordinate .* nor a label along"):
        from_xarray(cube, "ndvi")
    shifted = cube.isel(band=0, drop=True).assign_coords(lat=cube.lat + 1.0)
    with pytest.raises(ValueError, match="coordinates on the sample dims differ from those of the features"):
        from_xarray(cube, shifted)
    with pytest.raises(ValueError, match="A DataArray of features needs a sample and a feature dimension"):
        from_xarray(cube.isel(time=0, lat=0, band=0))
    with pytest.raises(
        TypeError, match=r"obj must be an xarray\.DataArray or xarray\.Dataset; got numpy\.ndarray"
    ):
        from_xarray(np.ones((3, 2)))
    with pytest.raises(ValueError, match="Every one of the 60 samples has NaN"):
        from_xarray(cube * np.nan)


def test_dataset_error_messages():
    ds = make_dataset()
    with pytest.raises(ValueError, match=r"Target variable 'yield' not found in the Dataset. Available data"):
        from_xarray(ds, "yield")
    with pytest.raises(ValueError, match=r"Feature variable\(s\) \['swir'\] not found in the Dataset"):
        from_xarray(ds, "cover", features=["red", "swir"])
    with pytest.raises(ValueError, match="target 'cover' is also listed in features"):
        from_xarray(ds, "cover", features=["red", "cover"])
    with pytest.raises(ValueError, match="feature_dim='band' applies to a DataArray"):
        from_xarray(ds, "cover", feature_dim="band")
    labelled = ds.assign(name=("lat", np.array(["a", "b", "c", "d"])))
    with pytest.raises(
        TypeError, match=r"X must be numeric, but the Dataset variables \['name \(<U1\)'\] are not"
    ):
        from_xarray(labelled, "cover")
    profile = ds.assign(depth=(("lat", "level"), np.ones((4, 2))))
    with pytest.raises(
        ValueError, match=r"Variable 'depth' has dimension\(s\) \['level'\] besides the sample dims"
    ):
        from_xarray(profile, "cover", sample_dims=("time", "lat", "lon"))


def test_vector_inputs_must_be_one_dimensional():
    cube = make_cube(masked=False)
    with pytest.raises(
        ValueError, match=r"y must be 1-D .* DataArray with dims \('time', 'lat', 'lon'\).*from_xarray"
    ):
        check_X_y(cube, cube.isel(band=0, drop=True))


def test_wrap_output_errors():
    X, origin = from_xarray(make_cube(), return_origin=True)
    with pytest.raises(
        ValueError, match=r"has shape \(60,\), but the xarray input had 53 kept \(non-masked\) samples"
    ):
        wrap_output(da.ones(60, chunks=30), origin)
    with pytest.raises(ValueError, match="columns has 3 labels, but the result has 2 columns"):
        wrap_output(da.ones((53, 2), chunks=(X.chunks[0], 2)), origin, columns=["a", "b", "c"])
    with pytest.raises(ValueError, match="must be 1-D or 2-D"):
        wrap_output(da.ones((53, 2, 2), chunks=(X.chunks[0], 2, 2)), origin)


def test_unknown_row_chunks_of_a_per_block_result_are_declared():
    cube = make_cube().chunk({"time": 1})
    X, origin = check_array(cube, known_chunks=False)
    unknown = X.map_blocks(lambda b: b[:, 0], drop_axis=1, dtype=float, chunks=((np.nan,) * X.numblocks[0],))
    back = wrap_output(unknown, origin)
    np.testing.assert_array_equal(
        back.values, np.where(np.isnan(cube.values).any(-1), np.nan, cube.values[..., 0])
    )
    assert isinstance(origin.xarray, XarraySamples)
    assert origin.xarray.n_rows == 60


def test_xarray_to_dask_doctest_layout():
    X, origin = xarray_to_dask(make_cube(masked=False))
    assert X.shape == (60, 3)
    assert origin.xarray.sample_dims == ("time", "lat", "lon")
    assert origin.xarray.valid is None  # no filling unless asked
    out = wrap_xarray_output(X[:, 0], origin, name="red")
    assert out.name == "red"
