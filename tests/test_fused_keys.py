"""Regression tests for dask/dask#9964: colliding names of fused task chains (see ``unique_fused_keys``)."""

from __future__ import annotations

import dask
import numpy as np
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file

from daskml_lab._compat import unique_fused_keys
from daskml_lab.data import read_svmlight
from daskml_lab.monitoring import compute_with_progress


def _many_block_labels(tmp_path):
    """Labels read in 880 byte ranges: 880 fused chains with the same 115-character name prefix."""
    X = sp.random(2000, 20, density=0.2, random_state=0, format="csr")
    y = (np.arange(2000) % 4).astype(np.float64)
    path = tmp_path / "many.svm"
    dump_svmlight_file(X, y, str(path))
    _, y_dask = read_svmlight(path, blocksize=200)
    assert y_dask.numblocks[0] > 800
    return y, y_dask


def test_blocks_computed_together_are_each_their_own(tmp_path):
    y, y_dask = _many_block_labels(tmp_path)
    blocks = [y_dask.blocks[i] for i in range(y_dask.numblocks[0])]
    # the package's compute helper computes every block right (about 30 of 880 were swapped without the guard)
    computed = compute_with_progress(*blocks, verbose=False, scheduler="sync")
    assert [b.shape[0] for b in computed] == list(y_dask.chunks[0])
    np.testing.assert_array_equal(np.concatenate(computed), y)


def test_guard_turns_off_linear_fusion_only_inside():
    before = dask.config.get("optimization.fuse.active", None)
    with unique_fused_keys():
        assert dask.config.get("optimization.fuse.active") is False
    assert dask.config.get("optimization.fuse.active", None) == before
