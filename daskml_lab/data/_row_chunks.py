"""Row chunk sizes that dask does not know yet, and block types the algorithms cannot read as they are.

Dask users most often build arrays from DataFrames (``ddf.values``, ``ddf.to_dask_array()``), whose row chunk
sizes are unknown (``nan``) until the partitions are computed. The blocked algorithms need them to align ``X``
with ``y`` and to cut shards, so :func:`resolve_row_chunks` computes the lengths of every input that lacks them
in **one** pass (the inputs share their source, so dask reads it once for all of them) and logs that it did.
The user's arrays are not modified: new arrays with the same graph and known chunks are returned.

:func:`as_scipy_blocks` turns blocks of `pydata/sparse <https://sparse.pydata.org>`_ (``sparse.COO`` and friends)
into the SciPy CSR blocks every sparse code path here reads, so they are accepted at the input gate instead of
failing late in a worker.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

from daskml_lab._runtime.watched_compute import watched_compute

__all__ = ["as_scipy_blocks", "has_pydata_sparse_blocks", "has_unknown_rows", "resolve_row_chunks"]

logger = logging.getLogger("daskml_lab.data")


def has_unknown_rows(array: da.Array | None) -> bool:
    """Whether ``array`` is a dask array whose row chunk sizes are unknown."""
    return isinstance(array, da.Array) and any(math.isnan(c) for c in array.chunks[0])


def _block_rows(block: Any) -> int:
    return int(block.shape[0])


def resolve_row_chunks(arrays: Mapping[str, da.Array | None]) -> dict[str, da.Array | None]:
    """Return the arrays with known row chunk sizes, computing the unknown ones together in one pass.

    Parameters
    ----------
    arrays : mapping of str to dask.array.Array or None
        The inputs by name (``"X"``, ``"y"``, ...). Arrays with known chunks and ``None`` pass through.

    Returns
    -------
    dict
        The same names; arrays that had unknown row chunks are replaced by arrays with the same graph and the
        computed chunk sizes (the originals are left as they were).
    """
    unknown = {name: array for name, array in arrays.items() if has_unknown_rows(array)}
    if not unknown:
        return dict(arrays)
    # One delayed length per row block (first column block: all column blocks of a row have its length).
    lengths_tasks = {
        name: [
            dask.delayed(_block_rows)(block)
            for block in np.asarray(array.to_delayed()).reshape(array.numblocks[0], -1)[:, 0]
        ]
        for name, array in unknown.items()
    }
    # compute: one integer per row block of each input, in one pass so shared sources are read once
    (lengths,) = watched_compute(lengths_tasks, what="the row chunk lengths")
    resolved = dict(arrays)
    for name, array in unknown.items():
        row_chunks = tuple(int(n) for n in lengths[name])
        resolved[name] = da.Array(array.dask, array.name, (row_chunks, *array.chunks[1:]), meta=array._meta)
    names = ", ".join(unknown)
    total = sum(sum(lengths[name]) for name in unknown) // len(unknown)
    logger.info(
        "%s had unknown chunk sizes: computed them in one pass over the data (%d row blocks, %d rows). Build "
        "arrays with known lengths (ddf.to_dask_array(lengths=True), or pass the DataFrame itself) to skip it.",
        names,
        next(iter(unknown.values())).numblocks[0],
        total,
    )
    return resolved


def has_pydata_sparse_blocks(array: da.Array) -> bool:
    """Whether the blocks of ``array`` are pydata/sparse arrays (module ``sparse``), not SciPy matrices."""
    meta = getattr(array, "_meta", None)
    return type(meta).__module__.split(".")[0] == "sparse"


def _to_csr(block: Any) -> sp.csr_matrix:
    return sp.csr_matrix(block.tocsr())


def as_scipy_blocks(array: da.Array, name: str) -> da.Array:
    """Convert a 2-D dask array of pydata/sparse blocks to SciPy CSR blocks (lazily, block by block).

    Raises
    ------
    TypeError
        If the array is not 2-D (pydata/sparse arrays of other dimensions have no CSR form).
    """
    if array.ndim != 2:
        msg = (
            f"{name} is a {array.ndim}-D dask array of pydata/sparse blocks; only 2-D sparse input "
            "(n_samples, n_features) is supported. Reshape it to 2-D first."
        )
        raise TypeError(msg)
    return array.map_blocks(_to_csr, dtype=array.dtype, meta=sp.csr_matrix((0, 0), dtype=array.dtype))
