"""train_test_split(): scikit-learn's exact set sizes, disjoint covering sets, stratification, laziness."""

from __future__ import annotations

import re

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split as sk_train_test_split

from daskml_lab._compat import unique_fused_keys
from daskml_lab.data import train_test_split
from daskml_lab.testing import raise_if_computes

from .conftest import shared_file


def ids_of(*parts: da.Array, scheduler: str | None = "sync") -> list[np.ndarray]:
    kwargs = {"scheduler": scheduler} if scheduler else {}
    with unique_fused_keys():  # several collections at once: see daskml_lab._compat.unique_fused_keys
        return list(dask.compute(*parts, **kwargs))


def sklearn_sizes(n_samples, test_size, train_size, stratify=None):
    train, test = sk_train_test_split(
        np.arange(n_samples), test_size=test_size, train_size=train_size, random_state=0, stratify=stratify
    )
    return len(train), len(test)


sizes = st.one_of(
    st.none(),
    st.floats(0.01, 0.99, allow_nan=False),
    st.integers(1, 200),
)


@pytest.mark.property
@settings(max_examples=40, deadline=None)
@given(
    n_samples=st.integers(2, 200),
    chunk=st.integers(1, 80),
    test_size=sizes,
    train_size=sizes,
    seed=st.integers(0, 99),
)
def test_sizes_equal_sklearn_and_sets_are_disjoint(n_samples, chunk, test_size, train_size, seed):
    X = np.column_stack([np.arange(n_samples), np.arange(n_samples) * 10])
    y = np.arange(n_samples) % 3
    try:
        expected = sklearn_sizes(n_samples, test_size, train_size)
    except ValueError as err:
        # scikit-learn rejects these sizes: so do we, with the same message
        with pytest.raises(ValueError, match=re.escape(str(err)[:60])):
            train_test_split(X, y, test_size=test_size, train_size=train_size)
        return
    parts = train_test_split(
        da.from_array(X, chunks=(chunk, 2)), y, test_size=test_size, train_size=train_size, random_state=seed
    )
    X_train, X_test, y_train, y_test = ids_of(*parts)
    assert (len(X_train), len(X_test)) == expected
    assert parts[0].shape[0] == expected[0]
    assert parts[1].shape[0] == expected[1]
    assert parts[0].chunks[0] == parts[2].chunks[0]
    assert len(parts[0].chunks[0]) == len(parts[1].chunks[0]) == -(-n_samples // chunk)
    # rows stay whole and aligned across arrays
    np.testing.assert_array_equal(X_train[:, 1], X_train[:, 0] * 10)
    np.testing.assert_array_equal(y_train, X_train[:, 0] % 3)
    np.testing.assert_array_equal(y_test, X_test[:, 0] % 3)
    # disjoint; covering when the sizes add up to n_samples
    train_ids, test_ids = set(X_train[:, 0]), set(X_test[:, 0])
    assert len(train_ids) == len(X_train)
    assert len(test_ids) == len(X_test)
    assert not train_ids & test_ids
    if sum(expected) == n_samples:
        assert train_ids | test_ids == set(range(n_samples))


@pytest.mark.property
@settings(max_examples=30, deadline=None)
@given(
    n_samples=st.integers(20, 300),
    chunk=st.integers(5, 120),
    test_size=st.floats(0.1, 0.6),
    n_classes=st.integers(2, 4),
    seed=st.integers(0, 99),
)
def test_stratified_split_keeps_class_proportions(n_samples, chunk, test_size, n_classes, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_samples)
    y[:n_classes] = np.arange(n_classes)
    y[n_classes : 2 * n_classes] = np.arange(n_classes)  # every class at least twice
    ids = np.arange(n_samples)
    try:
        expected = sklearn_sizes(n_samples, test_size, None, stratify=y)
    except ValueError:
        return  # too few rows per class for scikit-learn as well (tested with messages below)
    parts = train_test_split(ids, y, test_size=test_size, stratify=y, random_state=seed)
    id_train, id_test, y_train, y_test = ids_of(*[p.rechunk(chunk) for p in parts])
    assert (len(id_train), len(id_test)) == expected
    np.testing.assert_array_equal(y[id_train], y_train)
    assert set(id_train).isdisjoint(id_test)
    assert set(id_train) | set(id_test) == set(range(n_samples))
    totals = np.bincount(y, minlength=n_classes)
    for part, n_part in ((y_train, expected[0]), (y_test, expected[1])):
        counts = np.bincount(part, minlength=n_classes)
        # scikit-learn's rule: per-class counts within one row of the proportional share
        assert np.all(np.abs(counts - totals * n_part / n_samples) < 1 + 1e-9), (counts, totals)


# ---------------------------------------------------------------------------------------------------------
# examples


def test_default_split_is_a_quarter_and_converts_numpy_to_dask():
    X = np.arange(40).reshape(20, 2)
    parts = train_test_split(X, random_state=0)
    assert len(parts) == 2
    assert all(isinstance(p, da.Array) for p in parts)
    assert parts[0].shape == (15, 2)
    assert parts[1].shape == (5, 2)


def test_shuffle_false_equals_sklearn_exactly():
    X = np.arange(60).reshape(30, 2)
    y = np.arange(30)
    ours = train_test_split(da.from_array(X, chunks=(7, 2)), y, test_size=0.2, train_size=0.5, shuffle=False)
    theirs = sk_train_test_split(X, y, test_size=0.2, train_size=0.5, shuffle=False)
    for a, b in zip(ids_of(*ours), theirs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_split_is_reproducible_and_depends_on_the_seed():
    X = da.arange(1000, chunks=130)
    a = ids_of(*train_test_split(X, random_state=1))
    b = ids_of(*train_test_split(X, random_state=1))
    c = ids_of(*train_test_split(X, random_state=2))
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    # same seed as an int or a Generator seeded from it: both reproducible
    g1 = ids_of(*train_test_split(X, random_state=np.random.default_rng(5)))
    g2 = ids_of(*train_test_split(X, random_state=np.random.default_rng(5)))
    np.testing.assert_array_equal(g1[0], g2[0])


def test_test_rows_are_spread_over_all_blocks():
    X = da.arange(4000, chunks=1000)
    _, test = ids_of(*train_test_split(X, test_size=0.5, random_state=0))
    per_block = np.bincount(test // 1000, minlength=4)
    # a hypergeometric share: 500 +- about 16 (sd); a split that took whole blocks would fail
    assert np.all(np.abs(per_block - 500) < 80), per_block


def test_rows_within_a_block_come_in_random_order():
    X = da.arange(1000, chunks=1000)
    train, _ = ids_of(*train_test_split(X, random_state=0))
    assert not np.all(np.diff(train) > 0)


def test_many_arrays_of_different_kinds_stay_aligned():
    n = 50
    ids = np.arange(n)
    frame = pd.DataFrame({"id": ids, "double": 2 * ids})
    images = np.arange(n * 6).reshape(n, 2, 3)
    labels = np.array([f"label-{i}" for i in ids])
    dask_ids = da.from_array(ids, chunks=9)
    parts = train_test_split(frame, images, labels, dask_ids, test_size=10, random_state=0)
    assert [p.chunks[0] for p in parts[::2]] == [parts[0].chunks[0]] * 4  # all follow dask_ids' 6 blocks
    assert len(parts[0].chunks[0]) == 6
    f_tr, f_te, im_tr, im_te, _, lab_te, id_tr, id_te = ids_of(*parts)
    for train_part, test_part, key in ((f_tr, f_te, lambda r: r[0]), (im_tr, im_te, lambda r: r[0, 0] // 6)):
        np.testing.assert_array_equal([key(r) for r in train_part], id_tr)
        np.testing.assert_array_equal([key(r) for r in test_part], id_te)
    np.testing.assert_array_equal(lab_te, [f"label-{i}" for i in id_te])
    assert im_tr.shape == (40, 2, 3)


def test_chunked_feature_axis_is_kept():
    X = da.from_array(np.arange(200).reshape(50, 4), chunks=(10, 2))
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
    assert X_train.chunks[1] == (2, 2)
    a, b = ids_of(X_train, X_test)
    np.testing.assert_array_equal(np.sort(np.concatenate([a[:, 0], b[:, 0]])), np.arange(0, 200, 4))


def test_sparse_matrices_are_split_row_by_row():
    X = sp.random(40, 6, density=0.3, format="csr", random_state=0)
    X = sp.hstack([sp.csr_matrix(np.arange(40.0)[:, None]), X], format="csr")
    ids = np.arange(40)
    X_train, X_test, id_train, id_test = train_test_split(X, ids, test_size=0.25, random_state=0)
    a, b, c, d = ids_of(X_train, X_test, id_train, id_test)
    assert sp.issparse(a)
    assert a.shape == (30, 7)
    np.testing.assert_array_equal(a.toarray(), X.toarray()[c])
    np.testing.assert_array_equal(b.toarray(), X.toarray()[d])


def test_split_builds_lazily():
    X = da.random.default_rng(0).normal(size=(500, 3), chunks=(100, 3))
    y = da.from_array(np.arange(500) % 2, chunks=100)
    with raise_if_computes(max_computes=0):
        parts = train_test_split(X, y, test_size=0.3, random_state=0)
        train_test_split(X, y, shuffle=False)
    assert parts[0].chunks[0] != (None,)
    with raise_if_computes(max_computes=1) as counter:
        train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    assert counter.n_computes == 1


def test_tasks_carry_daskml_prefixes():
    X = da.arange(100, chunks=30)
    parts = train_test_split(X, X, random_state=0, stratify=X % 2)
    new_layers = set(parts[0].dask.layers) - set(X.dask.layers)
    prefixes = {name.rsplit("-", 1)[0] for name in new_layers}
    assert {"daskml-split-train", "daskml-split-assign", "daskml-split-classes"} <= prefixes


def test_real_data_stratified_split_of_covtype(shared_data):
    path = shared_file(shared_data, "covtype_20k", "covtype.20k.data.gz")
    frame = pd.read_csv(path, header=None)
    y = frame.pop(54).to_numpy()
    X = da.from_array(frame.to_numpy(dtype=float), chunks=(3000, -1))
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    ref_train, ref_test = sk_train_test_split(y, test_size=0.2, stratify=y, random_state=0)
    assert (X_train.shape[0], X_test.shape[0]) == (len(ref_train), len(ref_test))
    y_te = y_test.compute()
    classes = np.unique(y)
    ours = np.array([np.sum(y_te == c) for c in classes])
    theirs = np.array([np.sum(ref_test == c) for c in classes])
    assert np.all(np.abs(ours - theirs) <= 1)  # the same per-class rule; ties broken by different draws
    assert X_train.chunks[0] == y_train.chunks[0]


@pytest.mark.cluster
def test_split_on_a_cluster_equals_the_synchronous_one(client):
    X = da.from_array(np.arange(3000).reshape(1500, 2), chunks=(200, 2))
    y = np.arange(1500) % 4
    for stratify in (None, y):
        parts = train_test_split(X, y, test_size=0.25, random_state=11, stratify=stratify)
        with unique_fused_keys():
            on_cluster = dask.compute(*parts)
            local = dask.compute(*parts, scheduler="sync")
        for a, b in zip(on_cluster, local, strict=True):
            np.testing.assert_array_equal(a, b)
        assert on_cluster[1].shape[0] == 375


# ---------------------------------------------------------------------------------------------------------
# errors


X_ERR = np.arange(20).reshape(10, 2)
Y_ERR = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 2])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"test_size": 1.5},
            ValueError,
            r"test_size=1.5 should be either positive and smaller than the number",
        ),
        (
            {"test_size": 10},
            ValueError,
            "test_size=10 should be either positive and smaller than the number of",
        ),
        ({"train_size": 0}, ValueError, "train_size=0 should be either positive"),
        ({"test_size": 0.6, "train_size": 0.6}, ValueError, "The sum of test_size and train_size = 1.2"),
        (
            {"test_size": 6, "train_size": 5},
            ValueError,
            "The sum of train_size and test_size = 11, should be",
        ),
        ({"test_size": 0.99}, ValueError, "the resulting train set will be empty"),
        ({"test_size": "half"}, TypeError, "test_size must be a float in \\(0, 1\\), an int number of rows"),
        ({"train_size": True}, TypeError, "train_size must be a float"),
        ({"shuffle": False, "stratify": Y_ERR}, ValueError, "not implemented for shuffle=False"),
        ({"stratify": Y_ERR}, ValueError, r"least populated classes in y have only 1 member.*\[2\]"),
        ({"stratify": Y_ERR[:5]}, ValueError, "stratify has 5 labels but the arrays have 10 rows"),
        ({"stratify": np.zeros((10, 2))}, ValueError, "stratify must be 1-D"),
        ({"random_state": 1.5}, ValueError, "cannot be used to seed"),
    ],
)
def test_invalid_arguments_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        train_test_split(X_ERR, **kwargs)


def test_sets_too_small_for_the_classes():
    y = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 0])
    with pytest.raises(
        ValueError, match="The test_size = 2 should be greater or equal to the number of classes = 3"
    ):
        train_test_split(X_ERR, test_size=2, stratify=y)
    with pytest.raises(
        ValueError, match="The train_size = 2 should be greater or equal to the number of classes"
    ):
        train_test_split(X_ERR, train_size=2, stratify=y)


def test_input_errors():
    with pytest.raises(ValueError, match="At least one array required as input"):
        train_test_split()
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[10, 9\]"):
        train_test_split(X_ERR, Y_ERR[:9])
    with pytest.raises(ValueError, match=r"arrays\[1\] is None"):
        train_test_split(X_ERR, None)
    with pytest.raises(ValueError, match="is a scalar"):
        train_test_split(3)
    unknown = da.from_array(X_ERR, chunks=(5, 2))
    unknown = unknown[unknown[:, 0] > 4]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        train_test_split(unknown)
