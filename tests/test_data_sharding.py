"""shard() and shard_summary(): every row in exactly one shard, balanced sizes, stratification, laziness.

Rows are tracked through a row-id column (column 0 of X), so that every test can check that the output is a
permutation of the input rows with y still aligned to X.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from daskml_lab._compat import unique_fused_keys
from daskml_lab.data import _blocks, _exchange, shard, shard_summary
from daskml_lab.data._exchange import _concat_shard_block, _split_rows_block
from daskml_lab.data.sharding import _stratified_quota
from daskml_lab.testing import raise_if_computes

from .conftest import shared_file

N_KEYS = 7


def make_data(n_samples: int, n_classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X = [row id, integer key in 0..6, noise]; y = random class labels."""
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [np.arange(n_samples, dtype=float), rng.integers(0, N_KEYS, n_samples), rng.normal(size=n_samples)]
    )
    y = rng.integers(0, n_classes, size=n_samples)
    return X, y


def compute_blocks(*arrays: da.Array, scheduler: str | None = "sync") -> list[list[np.ndarray]]:
    """All row blocks of all arrays, in one computation."""
    blocks = [[array.blocks[j] for j in range(array.numblocks[0])] for array in arrays]
    kwargs = {"scheduler": scheduler} if scheduler else {}
    with unique_fused_keys():  # many similar collections at once: see daskml_lab._compat.unique_fused_keys
        computed = dask.compute(*blocks, **kwargs)
    return [list(c) for c in computed]


def check_partition(X_sharded, y_sharded, X, y):
    """Every input row in exactly one shard, rows intact, y aligned, chunk metadata true; returns blocks."""
    X_blocks, y_blocks = compute_blocks(X_sharded, y_sharded)
    assert [b.shape[0] for b in X_blocks] == list(X_sharded.chunks[0])
    assert [b.shape[0] for b in y_blocks] == list(y_sharded.chunks[0]) == list(X_sharded.chunks[0])
    X_out, y_out = np.concatenate(X_blocks), np.concatenate(y_blocks)
    ids = X_out[:, 0].astype(int)
    np.testing.assert_array_equal(np.sort(ids), np.arange(X.shape[0]))
    np.testing.assert_array_equal(X_out, X[ids])
    np.testing.assert_array_equal(y_out, y[ids])
    return X_blocks, y_blocks


def assert_balanced(chunks: tuple[int, ...], n_samples: int, n_shards: int) -> None:
    assert len(chunks) == n_shards
    assert sum(chunks) == n_samples
    assert max(chunks) - min(chunks) <= 1


def assert_stratified(y_blocks: list[np.ndarray], y: np.ndarray) -> None:
    classes, totals = np.unique(y, return_counts=True)
    n_samples = y.shape[0]
    for block in y_blocks:
        for label, total in zip(classes, totals, strict=True):
            expected = total * block.shape[0] / n_samples
            assert abs(np.sum(block == label) - expected) < 1, (label, np.sum(block == label), expected)


# ---------------------------------------------------------------------------------------------------------
# properties


@pytest.mark.property
@settings(max_examples=30, deadline=None)
@given(
    n_samples=st.integers(1, 120),
    chunk=st.integers(1, 50),
    n_shards=st.integers(1, 10),
    strategy=st.sampled_from(["contiguous", "shuffle", "stratified", "hash"]),
    n_classes=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_every_row_lands_in_exactly_one_shard(n_samples, chunk, n_shards, strategy, n_classes, seed):
    X, y = make_data(n_samples, n_classes, seed)
    n_shards = min(n_shards, n_samples)
    Xd = da.from_array(X, chunks=(chunk, 3))
    key = 1 if strategy == "hash" else None
    Xs, ys = shard(Xd, y, n_shards=n_shards, strategy=strategy, key=key, random_state=seed)
    assert Xs.numblocks == (n_shards, 1)
    X_blocks, y_blocks = check_partition(Xs, ys, X, y)
    if strategy != "hash":
        assert_balanced(Xs.chunks[0], n_samples, n_shards)
    if strategy == "contiguous":
        np.testing.assert_array_equal(np.concatenate(X_blocks), X)
    if strategy == "stratified":
        assert_stratified(y_blocks, y)
    if strategy == "hash":
        for j, block in enumerate(X_blocks):
            expected = pd.util.hash_array(block[:, 1], categorize=False) % np.uint64(n_shards)
            assert np.all(expected == j)
            # rows keep their original order within a hash shard
            assert np.all(np.diff(block[:, 0]) > 0)


@pytest.mark.property
@settings(max_examples=20, deadline=None)
@given(
    n_samples=st.integers(1, 150),
    chunk_a=st.integers(1, 60),
    chunk_b=st.integers(1, 60),
    n_shards=st.integers(1, 8),
    strategy=st.sampled_from(["contiguous", "hash", "shuffle", "stratified"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_strategy_depends_on_input_chunks(n_samples, chunk_a, chunk_b, n_shards, strategy, seed):
    X, y = make_data(n_samples)
    n_shards = min(n_shards, n_samples)
    key = 1 if strategy == "hash" else None
    results = []
    for chunk in (chunk_a, chunk_b):
        Xd = da.from_array(X, chunks=(chunk, 3))
        Xs, ys = shard(Xd, y, n_shards=n_shards, strategy=strategy, key=key, random_state=seed)
        results.append((Xs.chunks, *dask.compute(Xs, ys, scheduler="sync")))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])


@pytest.mark.property
@settings(max_examples=25, deadline=None)
@given(
    totals=st.lists(st.integers(0, 60), min_size=1, max_size=6).filter(lambda t: sum(t) > 0),
    n_shards=st.integers(1, 12),
    seed=st.integers(0, 1000),
)
def test_stratified_quota_keeps_margins_and_rounds_each_cell(totals, n_shards, seed):
    totals = np.asarray(totals)
    n_samples = int(totals.sum())
    n_shards = min(n_shards, n_samples)
    sizes = _blocks.balanced_sizes(n_samples, n_shards)
    quota = _stratified_quota(totals, sizes, np.random.default_rng(seed))
    np.testing.assert_array_equal(quota.sum(axis=1), sizes)
    np.testing.assert_array_equal(quota.sum(axis=0), totals)
    expected = np.outer(sizes, totals) / n_samples
    assert np.all(np.abs(quota - expected) < 1)
    assert np.all(quota >= 0)


@pytest.mark.property
@settings(max_examples=20, deadline=None)
@given(n_samples=st.integers(1, 100), chunk=st.integers(1, 40), n_classes=st.integers(1, 5))
def test_shard_summary_counts_equal_numpy_counts(n_samples, chunk, n_classes):
    X, y = make_data(n_samples, n_classes)
    Xd, yd = da.from_array(X, chunks=(chunk, 3)), da.from_array(y, chunks=chunk)
    summary = shard_summary(Xd, yd)
    bounds = np.cumsum((0, *Xd.chunks[0]))
    assert summary.index.name == "shard"
    assert summary["n_rows"].tolist() == list(Xd.chunks[0])
    classes = np.unique(y)
    assert summary.columns.tolist() == ["n_rows", *classes.tolist()]
    for j in range(len(bounds) - 1):
        part = y[bounds[j] : bounds[j + 1]]
        assert summary.loc[j, classes].tolist() == [int(np.sum(part == c)) for c in classes]


# ---------------------------------------------------------------------------------------------------------
# examples


def test_contiguous_balances_blocks_and_keeps_order():
    X, y = make_data(10)
    Xs, _ = shard(da.from_array(X, chunks=(7, 3)), y)  # default: keep the number of blocks (2)
    assert Xs.chunks == ((5, 5), (3,))
    np.testing.assert_array_equal(Xs.compute(), X)
    assert shard(X, n_shards=3).chunks[0] == (4, 3, 3)
    assert shard(X, shard_size=4).chunks[0] == (4, 3, 3)
    assert shard(X, shard_size=100).chunks[0] == (10,)


def test_default_n_shards_ignores_empty_blocks():
    X, _ = make_data(6)
    Xd = da.from_array(X, chunks=((3, 0, 3), (3,)))
    assert shard(Xd, strategy="shuffle", random_state=0).chunks[0] == (3, 3)


def test_numpy_input_gives_dask_output():
    X, y = make_data(20)
    Xs, ys = shard(X, y, n_shards=4, strategy="shuffle", random_state=0)
    assert isinstance(Xs, da.Array)
    assert isinstance(ys, da.Array)
    assert Xs.dtype == np.float64
    assert ys.dtype == y.dtype


def test_shuffle_is_reproducible_and_depends_on_the_seed():
    X, y = make_data(300)
    Xd = da.from_array(X, chunks=(70, 3))
    first = shard(Xd, y, n_shards=5, strategy="shuffle", random_state=3)
    again = shard(Xd, y, n_shards=5, strategy="shuffle", random_state=3)
    other = shard(Xd, y, n_shards=5, strategy="shuffle", random_state=4)
    with unique_fused_keys():
        a, b, c = dask.compute(first[0], again[0], other[0], scheduler="sync")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # rows really move between blocks: shard 0 does not hold only the first 60 rows
    assert not np.array_equal(np.sort(a[:60, 0]), np.arange(60))


def test_shuffle_mixes_rows_from_every_block():
    X, y = make_data(4000)
    Xs, _ = shard(da.from_array(X, chunks=(1000, 3)), y, n_shards=4, strategy="shuffle", random_state=0)
    blocks = compute_blocks(Xs)[0]
    for block in blocks:
        source = np.bincount((block[:, 0] // 1000).astype(int), minlength=4)
        # hypergeometric share of 1000 rows from each of 4 source blocks: 250 +- about 24 (4 sd)
        assert np.all(np.abs(source - 250) < 60), source


def test_stratified_with_string_labels_and_imbalanced_classes():
    rng = np.random.default_rng(1)
    X, _ = make_data(503)
    y = rng.choice(np.array(["rare", "common", "middle"], dtype=object), size=503, p=[0.03, 0.77, 0.2])
    Xs, ys = shard(da.from_array(X, chunks=(97, 3)), y, n_shards=6, strategy="stratified", random_state=0)
    _, y_blocks = check_partition(Xs, ys, X, y)
    assert_balanced(Xs.chunks[0], 503, 6)
    assert_stratified(y_blocks, y)
    summary = shard_summary(Xs, ys)
    assert set(summary.columns) == {"n_rows", "rare", "common", "middle"}
    assert summary["rare"].sum() == np.sum(y == "rare")


def test_hash_with_a_key_array_groups_equal_keys():
    X, y = make_data(200)
    users = np.array([f"user-{i % 13}" for i in range(200)], dtype=object)
    Xs, ys = shard(da.from_array(X, chunks=(45, 3)), y, n_shards=4, strategy="hash", key=users)
    X_blocks, _ = check_partition(Xs, ys, X, y)
    shard_of_user = {}
    for j, block in enumerate(X_blocks):
        for row_id in block[:, 0].astype(int):
            assert shard_of_user.setdefault(users[row_id], j) == j


def test_hash_of_fixed_width_strings_equals_hash_of_objects():
    X, y = make_data(60)
    words = np.array([f"k{i % 5}" for i in range(60)])
    by_str = shard(X, y, n_shards=3, strategy="hash", key=words)
    by_obj = shard(X, y, n_shards=3, strategy="hash", key=words.astype(object))
    assert by_str[0].chunks == by_obj[0].chunks
    np.testing.assert_array_equal(by_str[0].compute(), by_obj[0].compute())
    check_partition(*by_str, X, y)


def test_hash_key_as_dask_array_with_other_chunks():
    X, y = make_data(90)
    keys = da.from_array(X[:, 1].astype(np.int64), chunks=11)
    Xs, ys = shard(da.from_array(X, chunks=(40, 3)), y, n_shards=3, strategy="hash", key=keys)
    check_partition(Xs, ys, X, y)


def test_hash_shards_may_be_empty():
    X = np.column_stack([np.arange(12.0), np.zeros(12)])  # one key only
    Xs = shard(X, n_shards=3, strategy="hash", key=1)
    assert sorted(Xs.chunks[0]) == [0, 0, 12]
    blocks = compute_blocks(Xs)[0]
    assert [b.shape for b in blocks] == [(c, 2) for c in Xs.chunks[0]]


def test_sparse_blocks_are_sharded():
    X = sp.random(60, 5, density=0.3, format="csr", random_state=0)
    X = sp.hstack([sp.csr_matrix(np.arange(1.0, 61.0)[:, None]), X], format="csr")  # id + 1 in column 0
    Xs = shard(X, n_shards=4, strategy="shuffle", random_state=0)
    blocks = compute_blocks(Xs)[0]
    assert all(sp.issparse(b) for b in blocks)
    out = sp.vstack(blocks).toarray()
    ids = out[:, 0].astype(int) - 1
    np.testing.assert_array_equal(np.sort(ids), np.arange(60))
    np.testing.assert_array_equal(out, X.toarray()[ids])


@pytest.mark.parametrize("strategy", ["shuffle", "stratified"])
def test_sparse_X_stays_aligned_with_dense_y(strategy):
    # The sparse and the dense code paths permute each shard separately: they must agree row for row.
    rng = np.random.default_rng(0)
    ids = np.arange(90.0)
    X = sp.hstack([sp.csr_matrix(ids[:, None]), sp.random(90, 4, density=0.3, random_state=1)], format="csr")
    y = rng.integers(0, 3, size=90)
    Xs, ys = shard(
        da.from_array(X, chunks=30),
        da.from_array(y, chunks=30),
        n_shards=3,
        strategy=strategy,
        random_state=0,
    )
    X_blocks, y_blocks = compute_blocks(Xs)[0], compute_blocks(ys)[0]
    for X_block, y_block in zip(X_blocks, y_blocks, strict=True):
        rows = X_block[:, [0]].toarray().ravel().astype(int)
        np.testing.assert_array_equal(y_block, y[rows])
        np.testing.assert_array_equal(X_block.toarray(), X.toarray()[rows])


def test_shard_builds_lazily_and_computes_only_small_counts():
    X, y = make_data(100)
    Xd, yd = da.from_array(X, chunks=(30, 3)), da.from_array(y, chunks=30)
    with raise_if_computes(max_computes=0):
        shard(Xd, yd, n_shards=3)
        shard(Xd, yd, n_shards=3, strategy="shuffle", random_state=0)
    with raise_if_computes(max_computes=1) as counter:
        shard(Xd, yd, n_shards=3, strategy="stratified", random_state=0)
    assert counter.n_computes == 1
    with raise_if_computes(max_computes=1) as counter:
        shard(Xd, yd, n_shards=3, strategy="hash", key=1)
    assert counter.n_computes == 1
    with raise_if_computes(max_computes=0):
        shard_summary(Xd)
    with raise_if_computes(max_computes=1):
        shard_summary(Xd, yd)


def test_tasks_carry_daskml_prefixes():
    X, y = make_data(50)
    Xd = da.from_array(X, chunks=(20, 3))
    Xs, _ = shard(Xd, y, n_shards=2, strategy="stratified", random_state=0)
    new_layers = set(Xs.dask.layers) - set(Xd.dask.layers)
    prefixes = {name.rsplit("-", 1)[0] for name in new_layers}
    expected = {"daskml-shard-concat", "daskml-shard-assign", "daskml-shard-classes", "daskml-check-finite"}
    assert expected <= prefixes
    assert all(name.startswith("daskml-") or name.startswith("array-") for name in new_layers), new_layers


def sharding_keys(n_blocks: int, strategy: str) -> int:
    """Tasks that sharding 12,000 rows in ``n_blocks`` blocks into ``n_blocks`` shards adds to the graph."""
    X, y = make_data(12_000)
    Xd, yd = da.from_array(X, chunks=(12_000 // n_blocks, 3)), da.from_array(y, chunks=12_000 // n_blocks)
    options = {"key": 0} if strategy == "hash" else {"random_state": 0}  # row ids: every shard gets rows
    with dask.config.set(scheduler="sync"):
        Xs, ys = shard(Xd, yd, strategy=strategy, check_input=False, **options)
    inputs = set(dict(Xd.__dask_graph__())) | set(dict(yd.__dask_graph__()))
    return len((set(dict(Xs.__dask_graph__())) | set(dict(ys.__dask_graph__()))) - inputs)


@pytest.mark.parametrize("strategy", ["shuffle", "stratified", "hash"])
def test_sharding_graph_grows_with_the_blocks_not_their_square(strategy, monkeypatch):
    # One task per (block, shard) pair made 100 blocks cost 15x the tasks of 25 (issue 17); the staged
    # exchange adds about (fan-in + 1) tasks per block and step, and the steps grow as log(blocks).
    monkeypatch.setattr(_exchange, "MIN_NODE_BYTES", 0)  # every block its own node, however small
    keys = {n_blocks: sharding_keys(n_blocks, strategy) for n_blocks in (25, 100, 400)}
    assert keys[100] < 6 * keys[25], keys
    assert keys[400] < 6 * keys[100], keys
    assert keys[400] < 40 * 400, keys  # pairs of blocks and shards alone would be 160,000


@pytest.mark.parametrize("strategy", ["shuffle", "stratified", "hash"])
def test_small_blocks_are_stacked_into_one_node_with_the_same_shards(strategy, monkeypatch):
    # 400 blocks of 30 rows (about 1 KB each): the first step cuts them as one node, not 400 (500 one-row
    # blocks took 13 s of scheduling for 500 rows); the shards get the same rows in the same order.
    stacked = sharding_keys(400, strategy)
    X, y = make_data(12_000)
    Xd, yd = da.from_array(X, chunks=(30, 3)), da.from_array(y, chunks=30)
    options = {"key": 0} if strategy == "hash" else {"random_state": 0}
    with dask.config.set(scheduler="sync"):
        shards = dask.compute(*shard(Xd, yd, n_shards=4, strategy=strategy, check_input=False, **options))
        monkeypatch.setattr(_exchange, "MIN_NODE_BYTES", 0)
        one_node_per_block = sharding_keys(400, strategy)
        reference = dask.compute(*shard(Xd, yd, n_shards=4, strategy=strategy, check_input=False, **options))
    assert stacked < one_node_per_block / 2, (stacked, one_node_per_block)
    for ours, theirs in zip(shards, reference, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_small_block_groups():
    assert _exchange.block_groups((1,) * 500, row_bytes=48) == [list(range(500))]
    assert _exchange.block_groups((30_000, 30_000), row_bytes=48) == [[0], [1]]  # 1.4 MB each: kept
    assert _exchange.block_groups((0, 0), row_bytes=48) == []


def test_concat_kernel_refuses_inputs_that_changed():
    empties = (np.empty((0, 1)), np.empty(0, dtype=np.int16))
    pieces = _split_rows_block([[np.zeros((3, 1))]], [np.array([0, 0, 1], dtype=np.int16)], empties, 2)
    assert _concat_shard_block([pieces[0]], empties, 2, None, 0)[0].shape == (2, 1)
    with pytest.raises(RuntimeError, match="must give the same values every time"):
        _concat_shard_block([pieces[0]], empties, 1, None, 0)


def test_multivariate_hypergeometric_beyond_numpy_limit_keeps_totals():
    rng = np.random.default_rng(0)
    colors = [3 * 10**9, 10**9, 5, 0]
    draw = _blocks.multivariate_hypergeometric(rng, colors, 2 * 10**9)
    assert draw.sum() == 2 * 10**9
    assert np.all(draw <= colors)
    # about half of the first colour is drawn (sd ~ 14,000)
    assert abs(draw[0] - 1.5 * 10**9) < 10**6


def test_real_data_stratified_shards_of_letter(shared_data):
    path = shared_file(shared_data, "letter", "letter.tsv.gz")
    frame = pd.read_csv(path, sep="\t")
    y = frame.pop("target").to_numpy()
    X = np.column_stack([np.arange(len(frame), dtype=float), frame.to_numpy(dtype=float)])
    Xs, ys = shard(da.from_array(X, chunks=(3000, -1)), y, n_shards=8, strategy="stratified", random_state=0)
    _, y_blocks = check_partition(Xs, ys, X, y)
    assert_balanced(Xs.chunks[0], len(y), 8)
    assert_stratified(y_blocks, y)
    summary = shard_summary(Xs, ys)
    totals = summary.drop(columns="n_rows").sum().to_numpy()
    np.testing.assert_array_equal(totals, np.unique(y, return_counts=True)[1])


# ---------------------------------------------------------------------------------------------------------
# a real cluster


@pytest.mark.cluster
@pytest.mark.parametrize("strategy", ["shuffle", "stratified", "hash"])
def test_results_on_a_cluster_equal_the_synchronous_ones(client, strategy):
    X, y = make_data(1000)
    Xd = da.from_array(X, chunks=(150, 3))
    key = 1 if strategy == "hash" else None
    Xs, ys = shard(Xd, y, n_shards=6, strategy=strategy, key=key, random_state=7)
    on_cluster = dask.compute(Xs, ys)  # the client fixture is the default scheduler
    local = dask.compute(Xs, ys, scheduler="sync")
    np.testing.assert_array_equal(on_cluster[0], local[0])
    np.testing.assert_array_equal(on_cluster[1], local[1])
    check_partition(Xs, ys, X, y)
    # the same call, built again on the cluster, gives the same shards
    Xs2, _ = shard(Xd, y, n_shards=6, strategy=strategy, key=key, random_state=7)
    np.testing.assert_array_equal(Xs2.compute(), on_cluster[0])


@pytest.mark.cluster
def test_shard_summary_on_a_cluster(client):
    X, y = make_data(500, n_classes=4)
    Xs, ys = shard(X, y, n_shards=5, strategy="stratified", random_state=0)
    summary = shard_summary(Xs, ys)
    assert summary["n_rows"].tolist() == [100] * 5
    np.testing.assert_array_equal(summary[[0, 1, 2, 3]].sum().to_numpy(), np.bincount(y))


# ---------------------------------------------------------------------------------------------------------
# errors


X_ERR, Y_ERR = make_data(10)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_shards": 2, "shard_size": 3}, ValueError, "Pass either n_shards or shard_size, not both"),
        ({"n_shards": 11}, ValueError, r"n_shards=11 is larger than the number of samples \(10\)"),
        ({"n_shards": 0}, ValueError, "n_shards must be at least 1, got 0"),
        ({"shard_size": 0}, ValueError, "shard_size must be at least 1, got 0"),
        ({"n_shards": 2.5}, TypeError, "n_shards must be an int, got float"),
        ({"n_shards": True}, TypeError, "n_shards must be an int"),
        ({"strategy": "random"}, ValueError, "strategy must be one of 'contiguous', 'shuffle'.*got 'random'"),
        ({"strategy": "hash"}, ValueError, "strategy='hash' needs key"),
        ({"key": 0}, ValueError, "key is only used by strategy='hash'"),
        ({"strategy": "hash", "key": 3}, ValueError, "key=3 is not a column of X, which has 3 feature"),
        ({"strategy": "hash", "key": "user"}, TypeError, "key must be a column index of X"),
        ({"strategy": "hash", "key": np.arange(5)}, ValueError, "key has 5 values but X has 10 rows"),
        ({"strategy": "hash", "key": np.zeros((10, 2))}, ValueError, "key must be 1-D"),
        ({"strategy": "shuffle", "random_state": -1}, ValueError, "must be a non-negative int"),
        ({"strategy": "shuffle", "random_state": "seed"}, ValueError, "cannot be used to seed"),
    ],
)
def test_invalid_options_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        shard(X_ERR, Y_ERR, **kwargs)


def test_stratified_without_y():
    with pytest.raises(ValueError, match="strategy='stratified' needs the class labels y"):
        shard(X_ERR, strategy="stratified")


@pytest.mark.parametrize("bad_y", [Y_ERR[:, None], np.zeros((10, 2)), np.int64(3)])
def test_y_must_be_one_dimensional(bad_y):
    with pytest.raises(ValueError, match=r"y must be 1-D of shape \(n_samples,\)"):
        shard(X_ERR, bad_y)
    with pytest.raises(ValueError, match=r"y must be 1-D of shape \(n_samples,\)"):
        shard_summary(X_ERR, bad_y)


def test_stratified_rejects_continuous_targets():
    y = np.linspace(0, 1, 10)
    with pytest.raises(ValueError, match="looks like a regression target"):
        shard(X_ERR, y, n_shards=2, strategy="stratified")


def test_data_errors_come_from_the_input_gate():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        shard(X_ERR, Y_ERR[:5])
    X_nan = X_ERR.copy()
    X_nan[0, 2] = np.nan
    with pytest.raises(ValueError, match="contains NaN"):
        shard(X_nan)
