"""Seeding: the one rule turning ``random_state`` into random streams, for data, solvers and ensembles.

Every random draw of the package comes from a :class:`numpy.random.SeedSequence` rooted at one integer, the
*root entropy* of a call, drawn once on the client by :func:`root_entropy`:

- ``None`` gives fresh entropy from the operating system (128 bits, a different result at every call);
- a non-negative int of any size is the root itself (``SeedSequence`` accepts any non-negative int), so
  ``random_state=0`` gives the same streams in every process, on every machine;
- a negative int, a bool, a float or any other object is refused (``SeedSequence`` rejects negative
  entropy, and a bool or float seed is almost always a mistake);
- a :class:`numpy.random.Generator` is advanced once, to draw 63 bits; a :class:`numpy.random.RandomState`
  once, to draw 64 bits (two 32-bit words).

From the root, independent streams are derived by spawn keys, never by arithmetic on seeds:
:func:`block_rng` gives the generator of one stream and block, :func:`shard_seeds` the seeds of the shards of
an ensemble, and :func:`seeded_clone` an estimator whose ``random_state`` parameters derive from a seed.
Results therefore depend on the seed and the block layout, never on the number of workers or the order in
which tasks run, and no code touches numpy's global random state.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

__all__ = ["ShardSeeds", "block_rng", "root_entropy", "seeded_clone", "shard_seeds"]


def root_entropy(random_state: Any, estimator: Any = None, *, name: str = "random_state") -> int:
    """Turn ``random_state`` into the root entropy of all the random streams of one call.

    Parameters
    ----------
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None
        A non-negative int (of any size) is the root: reproducible streams in every process. A Generator or
        RandomState is advanced once to draw the root. ``None`` draws fresh entropy from the operating system
        (unless ``estimator`` supplies a seed).
    estimator : estimator instance, default=None
        For a meta-estimator, its base estimator: when ``random_state`` is None and the base estimator's own
        ``random_state`` is a non-negative int, that int is the root, so that seeding the base estimator seeds the whole
        ensemble.
    name : str, default="random_state"
        Name of the parameter in error messages.

    Returns
    -------
    int
        Non-negative entropy for :class:`numpy.random.SeedSequence`.

    Raises
    ------
    ValueError
        If ``random_state`` is a negative int, a bool or of another type.

    Examples
    --------
    >>> root_entropy(7), root_entropy(2**70) == 2**70
    (7, True)
    >>> root_entropy(np.random.default_rng(0)) == root_entropy(np.random.default_rng(0))
    True
    """
    if random_state is None and estimator is not None and hasattr(estimator, "get_params"):
        own = estimator.get_params(deep=False).get("random_state")
        if _is_int(own) and own >= 0:
            return int(own)
    if random_state is None:
        return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    if _is_int(random_state):
        if random_state < 0:
            msg = f"{name} must be a non-negative int, a numpy Generator or None; got {random_state}."
            raise ValueError(msg)
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63))
    if isinstance(random_state, np.random.RandomState):
        high, low = random_state.randint(0, 2**32, size=2, dtype=np.uint64)
        return int(high) << 32 | int(low)
    msg = (
        f"{random_state!r} cannot be used to seed the random streams: {name} must be a non-negative int, a "
        "numpy.random.Generator, a numpy.random.RandomState or None."
    )
    raise ValueError(msg)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def block_rng(entropy: int, *key: int) -> np.random.Generator:
    """The random generator of one stream (and block) of a call.

    Parameters
    ----------
    entropy : int
        Root entropy from :func:`root_entropy`.
    *key : int
        Spawn key: the stream constant, then indices (e.g. the block index).

    Returns
    -------
    numpy.random.Generator

    Examples
    --------
    >>> float(block_rng(0, 1, 2).random()) == float(block_rng(0, 1, 2).random())
    True
    """
    seed = np.random.SeedSequence(entropy, spawn_key=tuple(int(k) for k in key))
    return np.random.Generator(np.random.PCG64(seed))


@dataclass(frozen=True)
class ShardSeeds:
    """Seeds derived from one root: one for the data layer's sharding, two per shard (model, row split)."""

    sharding: int
    shards: tuple[tuple[int, int], ...]


def shard_seeds(root: int, n_shards: int) -> ShardSeeds:
    """Independent seeds from ``numpy.random.SeedSequence(root)``: child 0 shards the data, 1+i is shard i.

    Parameters
    ----------
    root : int
        From :func:`root_entropy`.
    n_shards : int
        Number of shards.

    Returns
    -------
    ShardSeeds

    Examples
    --------
    >>> seeds = shard_seeds(0, 2)
    >>> len(seeds.shards), seeds.shards == shard_seeds(0, 2).shards
    (2, True)
    >>> shard_seeds(0, 5).sharding == seeds.sharding  # the sharding seed does not depend on n_shards
    True
    """
    children = np.random.SeedSequence(root).spawn(n_shards + 1)
    sharding = int(children[0].generate_state(1)[0])
    shards = tuple(tuple(int(v) for v in child.generate_state(2)) for child in children[1:])
    return ShardSeeds(sharding, shards)  # type: ignore[arg-type]


def seeded_clone(estimator: Any, seed: int) -> Any:
    """A clone of ``estimator`` whose ``random_state`` parameters (nested ones too) derive from ``seed``.

    Parameters
    ----------
    estimator : estimator instance
        Not modified.
    seed : int
        Root of the clone's seeds: its ``random_state`` parameters, in sorted order of their names, get the
        words of ``SeedSequence(seed).generate_state``.

    Returns
    -------
    estimator instance
        Unfitted.
    """
    model = clone(estimator)
    names = sorted(
        name
        for name in model.get_params(deep=True)
        if name == "random_state" or name.endswith("__random_state")
    )
    if names:
        values = np.random.SeedSequence(seed).generate_state(len(names))
        model.set_params(**{name: int(value) for name, value in zip(names, values, strict=True)})
    return model
