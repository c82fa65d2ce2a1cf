"""Tiny or uneven row blocks: the shard ensembles and the Cascade SVM merge blocks below a minimum into shards.

``CascadeSVC`` on 500 one-row blocks used to wait for 500 persisted one-row shards and time out; each shard
model would also have been trained on a single row. With ``n_shards=None`` blocks of fewer than
``MIN_SHARD_ROWS`` rows are now merged with their neighbours, and the fit equals the fit on the merged blocks.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.naive_bayes import GaussianNB

from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier
from daskml_lab.ensemble._prologue import MIN_SHARD_ROWS, coalesced_row_chunks

pytestmark = pytest.mark.cluster


def test_coalesced_row_chunks():
    assert coalesced_row_chunks([1] * 500, min_rows=50) == (50,) * 10
    assert coalesced_row_chunks([60, 10, 10, 45, 5], min_rows=50) == (60, 70)
    assert coalesced_row_chunks([10, 0, 3], min_rows=50) == (13,)
    assert coalesced_row_chunks([50, 0, 80], min_rows=50) is None  # nothing small: blocks kept
    with dask.config.set({"daskml_lab.ensemble.min_shard_rows": 2}):
        assert coalesced_row_chunks([1, 1, 1]) == (3,)
    assert MIN_SHARD_ROWS == 50


@pytest.fixture(scope="module")
def tiny():
    """500 rows, two overlapping classes, in 500 one-row blocks; the same rows in the merged blocks."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4))
    y = (X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=500) > 0).astype(np.int64)
    merged = coalesced_row_chunks([1] * 500)
    return (
        (da.from_array(X, chunks=(1, 4)), da.from_array(y, chunks=1)),
        (da.from_array(X, chunks=(merged, 4)), da.from_array(y, chunks=(merged,))),
        X,
    )


def test_cascade_on_one_row_blocks_matches_the_merged_blocks(client, tiny):
    (X_tiny, y_tiny), (X_merged, y_merged), X = tiny
    model = CascadeSVC(C=1.0, sharding="contiguous", random_state=0).fit(X_tiny, y_tiny)
    reference = CascadeSVC(C=1.0, sharding="contiguous", random_state=0).fit(X_merged, y_merged)
    assert model.n_shards_ == reference.n_shards_ == 10
    np.testing.assert_array_equal(model.support_, reference.support_)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))


def test_cascade_on_one_row_blocks_stratified(client, tiny):
    (X_tiny, y_tiny), (X_merged, y_merged), X = tiny
    model = CascadeSVC(C=1.0, random_state=0).fit(X_tiny, y_tiny)
    reference = CascadeSVC(C=1.0, random_state=0).fit(X_merged, y_merged)
    assert model.n_shards_ == 10
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))


@pytest.mark.parametrize("sharding", ["contiguous", "shuffle"])
def test_shard_ensemble_on_one_row_blocks_matches_the_merged_blocks(client, tiny, sharding):
    (X_tiny, y_tiny), (X_merged, y_merged), X = tiny
    model = ShardEnsembleClassifier(GaussianNB(), sharding=sharding, random_state=0).fit(X_tiny, y_tiny)
    reference = ShardEnsembleClassifier(GaussianNB(), sharding=sharding, random_state=0).fit(
        X_merged, y_merged
    )
    assert model.n_shards_ == reference.n_shards_ == 10
    assert model.shard_report_.to_frame()["n_rows"].tolist() == [50] * 10
    np.testing.assert_array_equal(model.predict_proba(X), reference.predict_proba(X))


def test_explicit_n_shards_is_respected(client, tiny):
    (X_tiny, y_tiny), _, _ = tiny
    model = ShardEnsembleClassifier(GaussianNB(), n_shards=4, random_state=0).fit(X_tiny, y_tiny)
    assert model.n_shards_ == 4
