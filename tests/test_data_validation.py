"""The single input gate: every validation error has a message that names the problem and the fix."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from daskml_lab.data import check_array, check_classes, check_n_features, check_X_y
from daskml_lab.exceptions import DataConversionWarning
from daskml_lab.testing import ComputeCounter, raise_if_computes

rng = np.random.default_rng(0)
X_NP = rng.normal(size=(100, 4))
Y_NP = rng.integers(0, 2, size=100)


def test_numpy_becomes_row_blocks_with_one_column_chunk():
    X, origin = check_array(X_NP, chunks=30)
    assert X.chunks == ((30, 30, 30, 10), (4,))
    assert origin.kind == "numpy"
    np.testing.assert_array_equal(X.compute(), X_NP)


def test_dask_columns_are_merged_into_one_chunk_lazily():
    Xd = da.from_array(X_NP, chunks=(25, 2))
    with raise_if_computes():
        X, origin = check_array(Xd)
    assert X.chunks == ((25,) * 4, (4,))
    assert origin.kind == "dask"
    np.testing.assert_array_equal(X.compute(), X_NP)


@pytest.mark.parametrize(
    ("dtype", "expected"), [(np.int32, np.float64), (bool, np.float64), (np.float32, np.float32)]
)
def test_dtypes_are_converted_to_float(dtype, expected):
    X, _ = check_array(X_NP.astype(dtype))
    assert X.dtype == expected


def test_y_aligned_to_x_chunks_and_validated_together():
    data = check_X_y(X_NP, Y_NP, sample_weight=np.ones(100), chunks=40)
    assert data.y.chunks == data.X.chunks[:1] == data.sample_weight.chunks
    np.testing.assert_array_equal(data.y.compute(), Y_NP)


def test_string_labels_are_kept_for_classification():
    labels = np.where(Y_NP == 1, "yes", "no")
    data = check_X_y(X_NP, labels)
    assert data.y.dtype.kind == "U"


def test_sparse_input_keeps_sparse_blocks():
    Xs = sp.random(50, 6, density=0.2, format="csr", random_state=0)
    X, origin = check_array(Xs, chunks=20)
    assert origin.kind == "sparse"
    block = X.blocks[0].compute()
    assert sp.issparse(block)
    np.testing.assert_allclose(X.compute().toarray(), Xs.toarray())


def test_wide_sparse_input_is_split_by_the_bytes_it_stores():
    # 2**18 columns: split by the dense width, a block would hold 64 rows (128 MiB / 2 MiB per dense row)
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 2**18, size=20_000 * 20)
    Xs = sp.csr_matrix(
        (rng.random(indices.size), indices, np.arange(0, indices.size + 1, 20)), (20_000, 2**18)
    )
    X, _ = check_array(Xs)
    assert X.numblocks[0] == 1
    with dask.config.set({"array.chunk-size": "100kB"}):  # about 320 bytes stored per row: 312 rows a block
        X, _ = check_array(Xs)
    assert 250 <= X.chunks[0][0] <= 400
    np.testing.assert_array_equal(X.compute()[:5].toarray(), Xs[:5].toarray())


def test_sparse_refused_when_not_accepted():
    Xs = sp.random(10, 3, density=0.5, format="csr", random_state=0)
    with pytest.raises(
        TypeError, match=r"X is a sparse matrix, which this estimator does not accept.*toarray"
    ):
        check_array(Xs, accept_sparse=False)


def test_pandas_frame_keeps_feature_names():
    frame = pd.DataFrame(X_NP, columns=["a", "b", "c", "d"])
    X, origin = check_array(frame)
    assert list(origin.feature_names) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(X.compute(), X_NP)


# --- errors --------------------------------------------------------------------------------------------------


def test_one_dimensional_x():
    with pytest.raises(
        ValueError, match=r"Expected a 2-D array .* got a 1-D array of shape \(100,\)\. Reshape"
    ):
        check_array(X_NP[:, 0])


def test_three_dimensional_x():
    with pytest.raises(ValueError, match=r"got a 3-D array of shape \(2, 2, 100\)\. Flatten"):
        check_array(X_NP.reshape(2, 2, 100))


def test_empty_x():
    with pytest.raises(
        ValueError, match=r"Found array with 0 sample\(s\) \(shape=\(0, 4\)\) while a minimum of 1"
    ):
        check_array(np.empty((0, 4)))


def test_no_features():
    with pytest.raises(ValueError, match=r"Found array with 0 feature\(s\)"):
        check_array(np.empty((5, 0)))


def test_nan_in_memory_raises_at_once():
    X = X_NP.copy()
    X[3, 1] = np.nan
    with pytest.raises(
        ValueError, match=r"Input X contains NaN\. This estimator does not take missing values: impute"
    ):
        check_array(X)


def test_inf_in_memory_raises_at_once():
    X = X_NP.copy()
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"Input X contains infinity or a value too large"):
        check_array(X)


def test_nan_in_dask_raises_in_first_pass_naming_the_block():
    X = X_NP.copy()
    X[57, 2] = np.nan
    with raise_if_computes():
        checked, _ = check_array(da.from_array(X, chunks=(25, 4)))
    with pytest.raises(ValueError, match=r"Input X contains NaN \(row block 2, rows 50 to 74\)"):
        checked.sum().compute()


def test_nan_allowed_on_request():
    X = X_NP.copy()
    X[0, 0] = np.nan
    checked, _ = check_array(X, allow_nan=True)
    assert np.isnan(checked.compute()[0, 0])


def test_object_strings_rejected_with_encoding_hint():
    X = X_NP.astype(object)
    X[0, 0] = "red"
    with pytest.raises(
        TypeError, match=r"X has dtype object and could not be converted to float.*OrdinalEncoder"
    ):
        check_array(X)


def test_string_dtype_names_columns_of_a_frame():
    frame = pd.DataFrame({"a": [1.0, 2.0], "colour": ["red", "blue"]})
    with pytest.raises(TypeError, match=r"non-numeric columns: \['colour'\]"):
        check_array(frame)


def test_dask_object_dtype_rejected_before_compute():
    Xd = da.from_array(X_NP.astype(object), chunks=(50, 4))
    with raise_if_computes(), pytest.raises(TypeError, match=r"X must be numeric, but it has dtype object"):
        check_array(Xd)


def test_complex_rejected():
    with pytest.raises(ValueError, match="Complex data not supported"):
        check_array(X_NP.astype(complex))


def _frame(n_rows: int = 200, npartitions: int = 4):
    import dask.dataframe as dd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(n_rows, 4)), columns=list("abcd"))
    frame["label"] = (frame["a"] + frame["b"] > 0).astype(int)
    return frame, dd.from_pandas(frame, npartitions=npartitions)


def test_unknown_chunk_sizes_are_computed_in_one_pass(caplog):
    frame, ddf = _frame()
    X_unknown = ddf[list("abcd")].to_dask_array()
    y_unknown = ddf["label"].to_dask_array()
    assert np.isnan(X_unknown.shape[0])
    counter = ComputeCounter(max_computes=None)
    with dask.config.set(scheduler=counter), caplog.at_level("INFO", logger="daskml_lab.data"):
        data = check_X_y(X_unknown, y_unknown)
    # One pass for X and y together, logged; the chunks are the partitions' lengths.
    assert counter.n_computes == 1
    assert "unknown chunk sizes: computed them in one pass" in caplog.text
    lengths = tuple(ddf.map_partitions(len).compute())
    assert data.X.chunks[0] == lengths == data.y.chunks[0]
    np.testing.assert_array_equal(data.X.compute(), frame[list("abcd")].to_numpy())
    np.testing.assert_array_equal(data.y.compute(), frame["label"].to_numpy())
    # The user's arrays are not modified.
    assert np.isnan(X_unknown.shape[0])
    assert np.isnan(y_unknown.shape[0])


def test_unknown_chunk_sizes_of_a_filtered_array():
    Xd = da.from_array(X_NP, chunks=(25, 4))
    Xd = Xd[Xd[:, 0] > 0]
    checked, _ = check_array(Xd)
    np.testing.assert_array_equal(checked.compute(), X_NP[X_NP[:, 0] > 0])
    assert sum(checked.chunks[0]) == int((X_NP[:, 0] > 0).sum())


def test_dask_series_as_y():
    # y.shape[0] of a dask Series is a lazy scalar: comparing it used to raise "convert ... to a boolean".
    frame, ddf = _frame()
    counter = ComputeCounter(max_computes=None)
    with dask.config.set(scheduler=counter):
        data = check_X_y(ddf[list("abcd")], ddf["label"], sample_weight=ddf["a"].abs())
    assert counter.n_computes == 1  # the partition lengths of X, y and the weights, together
    assert data.X.chunks[0] == data.y.chunks[0] == data.sample_weight.chunks[0]
    np.testing.assert_array_equal(data.y.compute(), frame["label"].to_numpy())
    assert list(data.origin.feature_names) == list("abcd")


class _PydataLikeCOO:
    """A stand-in for a ``sparse.COO`` block (the module name is what identifies pydata/sparse)."""

    __module__ = "sparse._coo.core"

    def __init__(self, dense: np.ndarray) -> None:
        self.dense = dense
        self.shape = dense.shape
        self.ndim = dense.ndim
        self.dtype = dense.dtype

    def tocsr(self) -> sp.csr_matrix:
        return sp.csr_matrix(self.dense)

    def __getitem__(self, index):
        return _PydataLikeCOO(self.dense[index])


def _pydata_blocks(dense: np.ndarray) -> da.Array:
    return da.from_array(dense, chunks=(50, -1)).map_blocks(_PydataLikeCOO, meta=_PydataLikeCOO(dense[:0]))


def test_pydata_sparse_blocks_become_csr_blocks():
    X = np.where(X_NP > 0.5, X_NP, 0.0)
    checked, _ = check_array(_pydata_blocks(X))
    assert sp.issparse(checked._meta)
    block = checked.blocks[0].compute()
    assert sp.issparse(block)
    np.testing.assert_array_equal(checked.compute().toarray(), X)


def test_real_pydata_sparse_blocks_fit_like_dense():
    sparse = pytest.importorskip("sparse")
    from daskml_lab.linear_model import LogisticRegression

    X = np.where(X_NP > 0.5, X_NP, 0.0)
    y = (X_NP[:, 0] + X_NP[:, 1] > 0).astype(int)
    Xs = da.from_array(sparse.COO.from_numpy(X), chunks=(50, 4), asarray=False)
    with dask.config.set(scheduler="sync"):
        sparse_model = LogisticRegression().fit(Xs, y)
        dense_model = LogisticRegression().fit(X, y)
    np.testing.assert_allclose(sparse_model.coef_, dense_model.coef_, rtol=1e-6, atol=1e-8)


def test_unknown_chunk_sizes_allowed_for_prediction():
    Xd = da.from_array(X_NP, chunks=(25, 4))
    Xd = Xd[Xd[:, 0] > 0]
    checked, _ = check_array(Xd, known_chunks=False)
    assert checked.shape[1] == 4


def test_mismatched_lengths():
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[100, 99\]"):
        check_X_y(X_NP, Y_NP[:99])


def test_mismatched_dask_chunks():
    Xd = da.from_array(X_NP, chunks=(50, 4))
    yd = da.from_array(Y_NP, chunks=30)
    with pytest.raises(
        ValueError, match=r"X and y have different row chunks.*y = y.rechunk\(X.chunks\[0\]\)"
    ):
        check_X_y(Xd, yd)


def test_y_none():
    with pytest.raises(ValueError, match="requires y to be passed"):
        check_X_y(X_NP, None)


def test_column_vector_y_warns_and_is_raveled():
    with pytest.warns(
        DataConversionWarning, match="A column-vector y was passed when a 1d array was expected"
    ):
        data = check_X_y(X_NP, Y_NP.reshape(-1, 1))
    assert data.y.ndim == 1


def test_two_dimensional_y_rejected():
    with pytest.raises(
        ValueError, match=r"y must be 1-D of shape \(n_samples,\), got an array of shape \(100, 2\)"
    ):
        check_X_y(X_NP, np.c_[Y_NP, Y_NP])


def test_negative_sample_weight_in_memory():
    weights = np.ones(100)
    weights[5] = -1
    with pytest.raises(ValueError, match=r"sample_weight must be finite and non-negative, found \[-1.0\]"):
        check_X_y(X_NP, Y_NP, sample_weight=weights)


def test_negative_sample_weight_dask_raises_on_compute():
    weights = da.from_array(np.r_[np.ones(99), -2.0], chunks=25)
    data = check_X_y(
        da.from_array(X_NP, chunks=(25, 4)), da.from_array(Y_NP, chunks=25), sample_weight=weights
    )
    with pytest.raises(ValueError, match="sample_weight must be finite and non-negative"):
        data.sample_weight.sum().compute()


def test_regression_target_must_be_numeric():
    with pytest.raises(TypeError, match="y must be numeric for this estimator"):
        check_X_y(X_NP, np.array(["a"] * 100), y_numeric=True)


def test_unsupported_type():
    with pytest.raises(TypeError, match=r"X must be array-like .* got an object of type builtins.object"):
        check_array(object())


def test_single_class():
    with pytest.raises(
        ValueError, match=r"The target y has only one class: \[1\]. A classifier needs .* 2 classes"
    ):
        check_classes(np.array([1]))


def test_continuous_target_for_classifier():
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        check_classes(np.array([0.5, 1.0, 2.25]))


def test_feature_count_mismatch_names_both_counts():
    X, _ = check_array(X_NP)
    with pytest.raises(ValueError, match=r"X has 4 features, but Model is expecting 5 features as input"):
        check_n_features(X, 5, estimator_name="Model")


def test_user_input_is_not_modified():
    X = X_NP.copy()
    check_X_y(X, Y_NP, sample_weight=np.ones(100))
    np.testing.assert_array_equal(X, X_NP)
