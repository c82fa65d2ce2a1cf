"""Moving rows to their shards: a staged exchange whose task count grows as ``n log n`` in the blocks.

:func:`redistribute` sends row ``r`` of every input block to shard ``labels[r]``. Linking every block to every
shard directly takes one task per (block, shard) pair: with as many shards as blocks, the scheduler's per-task
cost grows with the square of the number of blocks (issue 17: 92 s for 200 blocks of 50 rows). So the rows
move in ``n_steps`` steps of a radix exchange instead, where no task receives more than
:data:`MAX_FAN_IN` pieces:

- write every shard index in base ``radix`` with ``n_steps`` digits (``radix ** n_steps >= max(blocks,
  shards)``); a node of step 0 is an input block, a node of the last step is a shard;
- step ``s`` routes on digit ``s`` (least significant first): each node cuts its rows by that digit of their
  target shard into ``radix`` pieces (``daskml-shard-split`` for the input blocks, ``daskml-shard-exchange``
  after), and the node of the next step whose digit ``s`` is ``t`` gathers the pieces ``t`` of the ``radix``
  nodes that differ from it in that digit only.

Consecutive input blocks smaller than :data:`MIN_NODE_BYTES` are stacked into one node of step 0
(:func:`block_groups`): a node costs the scheduler ``radix + 1`` tasks per step whatever its size.
Up to :data:`MAX_FAN_IN` nodes and shards this is the direct exchange (one step). Beyond, every step
adds about ``(radix + 1)`` tasks per node and moves the rows once more: for 400 blocks, 3 steps of 8-way
exchanges instead of 160,000 pieces. With pieces no larger than what a shard needs, ``n log n`` tasks is
the least any exchange of an arbitrary assignment needs (a counting argument, as for sorting networks);
linking each shard to whole blocks instead would be linear but would bring every block to every worker.

Rows travel with their target shard (``labels``), and ``X``, ``y`` and ``sample_weight`` travel together.
Every cut is stable and every gather is in the order of the digit it routes on, so a shard receives its rows
in the order of their global positions, as a direct exchange gives; the random strategies then shuffle them
with the shard's own seeded permutation. Results therefore do not depend on the number of steps.
"""

from __future__ import annotations

import operator
from typing import Any

import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from daskml_lab.data import _blocks

__all__ = ["MAX_FAN_IN", "MIN_NODE_BYTES", "block_groups", "exchange_plan", "redistribute"]

#: Most pieces one task of the exchange gathers (and cuts its rows into). Larger values mean fewer steps (the
#: rows move fewer times) but more tasks per step; up to this many blocks and shards the exchange is direct.
MAX_FAN_IN = 8
#: Consecutive input blocks smaller than this (bytes of their rows, dense estimate) are stacked into one node
#: of the exchange's first step (:func:`block_groups`).
MIN_NODE_BYTES = 2**20


def exchange_plan(n_nodes: int) -> tuple[int, int]:
    """Steps and fan-in (``radix``) of the exchange between ``n_nodes = max(blocks, shards)`` nodes.

    Parameters
    ----------
    n_nodes : int
        The larger of the number of input blocks and the number of shards.

    Returns
    -------
    n_steps : int
        ``ceil(log(n_nodes) / log(MAX_FAN_IN))``, at least 1.
    radix : int
        The smallest fan-in with ``radix ** n_steps >= n_nodes``.

    Examples
    --------
    >>> exchange_plan(8), exchange_plan(25), exchange_plan(400)
    ((1, 8), (2, 5), (3, 8))
    """
    n_nodes = max(int(n_nodes), 1)
    n_steps = 1
    while MAX_FAN_IN**n_steps < n_nodes:
        n_steps += 1
    radix = 1
    while radix**n_steps < n_nodes:
        radix += 1
    return n_steps, radix


def _cut_payload(payload: tuple[Any, ...], stride: int, radix: int) -> tuple[tuple[Any, ...], ...]:
    """Cut ``(arrays..., labels)`` into ``radix`` payloads by the digit ``labels // stride % radix``.

    The cut is stable: every piece keeps the rows in their order.
    """
    labels = payload[-1]
    digits = (labels.astype(np.int64) // stride) % radix
    found = np.bincount(digits, minlength=radix)
    order = np.argsort(digits, kind="stable")
    ordered = [part[order] for part in payload]
    bounds = np.concatenate([[0], np.cumsum(found)])
    return tuple(tuple(part[bounds[t] : bounds[t + 1]] for part in ordered) for t in range(radix))


def _concat_payloads(pieces: list[tuple[Any, ...]], empties: tuple[Any, ...]) -> tuple[Any, ...]:
    """Stack the pieces' arrays position by position (CSR for sparse blocks)."""
    if not pieces:
        return empties
    out = []
    for position in range(len(empties)):
        parts = [piece[position] for piece in pieces]
        if len(parts) == 1:
            out.append(parts[0])
        elif sp.issparse(parts[0]):
            out.append(sp.vstack(parts, format="csr"))
        else:
            out.append(np.concatenate(parts, axis=0))
    return tuple(out)


def _split_rows_block(
    blocks: list[list[Any]], labels: list[np.ndarray], empties: tuple[Any, ...], radix: int
) -> tuple[tuple[Any, ...], ...]:
    """Step 0: cut consecutive input blocks (for each, its ``X``, ``y``, ... blocks; and its target shards),
    stacked in order, by the lowest digit."""
    payloads = [(*arrays, block_labels) for arrays, block_labels in zip(blocks, labels, strict=True)]
    return _cut_payload(_concat_payloads(payloads, empties), 1, radix)


def block_groups(chunks: tuple[int, ...], row_bytes: int, min_bytes: int | None = None) -> list[list[int]]:
    """Consecutive non-empty row blocks grouped until each group holds ``min_bytes`` (a last short group joins
    the one before): the nodes of the exchange's first step.

    Each node costs ``radix + 1`` tasks per step; a block of a few rows costs the scheduler far more than its
    rows cost the network, so small blocks are stacked first (500 one-row blocks: one node instead of 500).
    Blocks of ``min_bytes`` or more stay nodes of their own. Grouping keeps the rows in their global order, so
    the shards receive the same rows in the same order.

    Examples
    --------
    >>> block_groups((1, 1, 0, 1, 5), row_bytes=8, min_bytes=16)
    [[0, 1], [3, 4]]
    >>> block_groups((4, 4, 1), row_bytes=8, min_bytes=16)
    [[0], [1, 2]]
    """
    min_bytes = MIN_NODE_BYTES if min_bytes is None else int(min_bytes)
    groups: list[list[int]] = []
    current: list[int] = []
    rows = 0
    for index, size in enumerate(chunks):
        if not size:
            continue
        current.append(index)
        rows += int(size)
        if rows * row_bytes >= min_bytes:
            groups.append(current)
            current, rows = [], 0
    if current and groups:
        groups[-1].extend(current)
    elif current:
        groups.append(current)
    return groups


def _exchange_rows_block(
    pieces: list[tuple[Any, ...]], empties: tuple[Any, ...], stride: int, radix: int
) -> tuple[tuple[Any, ...], ...]:
    """An inner step: gather the pieces sent to this node, in order, and cut them by the next digit."""
    return _cut_payload(_concat_payloads(pieces, empties), stride, radix)


def _concat_shard_block(
    pieces: list[tuple[Any, ...]],
    empties: tuple[Any, ...],
    planned: int,
    entropy: int | None,
    shard_index: int,
) -> tuple[Any, ...]:
    """The last step: gather a shard's rows, check their count, and shuffle them if ``entropy`` is given.

    Returns the shard's arrays (without the target shards). Every array gets the same permutation, so ``X``,
    ``y`` and the weights stay aligned whatever their block types.
    """
    n_rows = sum(piece[0].shape[0] for piece in pieces)
    if n_rows != planned:
        msg = (
            f"Shard {shard_index} received {n_rows} rows, but {planned} were planned. The input (or the hash "
            "key) must give the same values every time it is computed; persist it first."
        )
        raise RuntimeError(msg)
    parts = [piece[:-1] for piece in pieces]
    if entropy is None:
        return tuple(
            part.copy() if len(parts) == 1 else part for part in _concat_payloads(parts, empties[:-1])
        )
    rng = _blocks.block_rng(entropy, _blocks.STREAM_SHARD_PERMUTE, shard_index)
    permutation = rng.permutation(n_rows)
    out = []
    for position, empty in enumerate(empties[:-1]):
        arrays = [part[position] for part in parts]
        if not arrays:
            out.append(empty)
        elif sp.issparse(arrays[0]):
            # Row k goes to permutation[k], as in the dense scatter below.
            out.append(sp.vstack(arrays, format="csr")[np.argsort(permutation)])
        else:
            # Scatter every piece straight to its shuffled rows: one copy instead of concatenate-then-gather.
            dense = np.empty((n_rows, *arrays[0].shape[1:]), dtype=arrays[0].dtype)
            start = 0
            for array in arrays:
                dense[permutation[start : start + array.shape[0]]] = array
                start += array.shape[0]
            out.append(dense)
    return tuple(out)


def redistribute(
    arrays: list[da.Array], labels: da.Array, *, sizes: tuple[int, ...], permute_entropy: int | None
) -> list[da.Array]:
    """Move row ``r`` of block ``i`` of every array to shard ``labels[r]``; shard ``j`` gets ``sizes[j]`` rows.

    Parameters
    ----------
    arrays : list of dask.array.Array
        Arrays with the same row chunks (``X``, then ``y``), chunked by rows only.
    labels : dask.array.Array of int
        Target shard of every row, with the same row chunks.
    sizes : tuple of int
        Rows of every shard (checked when the shards are computed).
    permute_entropy : int or None
        Seed of the within-shard shuffle of the random strategies; None keeps the rows in their order.

    Returns
    -------
    list of dask.array.Array
        One per input array, one row block per shard, lazy.
    """
    first = arrays[0]
    row_bytes = sum(a.dtype.itemsize * int(np.prod(a.shape[1:])) for a in (*arrays, labels))
    groups = block_groups(first.chunks[0], row_bytes)
    n_blocks, n_shards = len(groups), len(sizes)
    n_steps, radix = exchange_plan(max(n_blocks, n_shards))
    token = tokenize([a.name for a in arrays], labels.name, sizes, permute_entropy, n_steps, radix)
    split_name = f"daskml-shard-split-{token}"
    piece_name = f"daskml-shard-piece-{token}"
    exchange_name = f"daskml-shard-exchange-{token}"
    concat_name = f"daskml-shard-concat-{token}"
    empties = (
        *(_blocks.empty_rows(a._meta, a.shape[1:], a.dtype) for a in arrays),
        np.empty(0, dtype=labels.dtype),
    )
    tasks: dict[tuple, Any] = {}
    nodes: dict[int, tuple] = {}  # node index -> key of its tuple of pieces
    for i, group in enumerate(groups):
        blocks = [[_blocks.block_key(a, b) for a in arrays] for b in group]
        tasks[(split_name, i)] = (
            _split_rows_block,
            blocks,
            [(labels.name, b) for b in group],
            empties,
            radix,
        )
        nodes[i] = (split_name, i)
    for step in range(1, n_steps + 1):
        scale = radix ** (step - 1)  # place value of the digit this step routes on
        modulus = scale * radix  # the digits routed so far: node % modulus is a shard's index % modulus
        inputs: dict[int, list[tuple]] = {}
        for source in sorted(nodes):  # ascending: each node gathers its pieces in the order of the digit
            base = source - (source // scale) % radix * scale
            for digit in range(radix):
                target = base + digit * scale
                if target % modulus >= n_shards:
                    continue  # no shard has these low digits: the piece is empty
                tasks[(piece_name, step, source, digit)] = (operator.getitem, nodes[source], digit)
                inputs.setdefault(target, []).append((piece_name, step, source, digit))
        if step < n_steps:
            nodes = {}
            for target, pieces in inputs.items():
                tasks[(exchange_name, step, target)] = (_exchange_rows_block, pieces, empties, modulus, radix)
                nodes[target] = (exchange_name, step, target)
    for j in range(n_shards):
        tasks[(concat_name, j)] = (
            _concat_shard_block,
            inputs.get(j, []),
            empties,
            sizes[j],
            permute_entropy,
            j,
        )
    graph = HighLevelGraph.from_collections(concat_name, tasks, dependencies=[*arrays, labels])
    shards = Delayed((concat_name, 0), graph, layer=concat_name)
    out = []
    for position, array in enumerate(arrays):
        name = f"daskml-shard-rows-{tokenize(token, position)}"
        tail = (0,) * (array.ndim - 1)
        layer = {(name, j, *tail): (operator.getitem, (concat_name, j), position) for j in range(n_shards)}
        chunks = (tuple(sizes), *((size,) for size in array.shape[1:]))
        out.append(_blocks.array_from_tasks(name, layer, chunks, meta=array._meta, dependencies=[shards]))
    return out
