"""Which shard holds a key, and the view of a store that tasks use to pull rows and push gradients.

:class:`ShardRule` places key ``k`` on shard ``k % n_shards`` at slot ``k // n_shards``; :class:`StoreView`
holds the shards' actor handles and the rule, is picklable, and works on the client and in tasks on any worker
(see :mod:`daskml_lab.solvers._sharded_store` for the shards themselves).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["POLL_S", "ShardRule", "StoreView"]

#: Seconds between two checks that the shards asked are alive, while a pull with ``alive=`` waits.
POLL_S = 1.0


@dataclass(frozen=True)
class ShardRule:
    """Which shard holds a key: shard ``k % n_shards``, slot ``k // n_shards``.

    Parameters
    ----------
    n_keys : int
        Number of keys (rows of the model).
    n_shards : int
        Number of parameter shards, at least 1.

    Examples
    --------
    >>> rule = ShardRule(n_keys=10, n_shards=3)
    >>> [rule.size(s) for s in range(3)]
    [4, 3, 3]
    >>> [(int(s), slots.tolist()) for s, _, slots in rule.split(np.array([0, 4, 5, 9]))]
    [(0, [0, 3]), (1, [1]), (2, [1])]
    """

    n_keys: int
    n_shards: int

    def size(self, shard: int) -> int:
        """Number of keys of ``shard``."""
        return max(0, (self.n_keys - shard + self.n_shards - 1) // self.n_shards)

    def split(self, keys: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``(shard, positions in keys, slots)`` for every shard (in order; empty arrays where none)."""
        keys = np.asarray(keys, dtype=np.int64)
        shard_of = keys % self.n_shards
        slots = keys // self.n_shards
        parts = []
        for shard in range(self.n_shards):
            positions = np.flatnonzero(shard_of == shard)
            parts.append((shard, positions, slots[positions]))
        return parts

    def keys_of(self, shard: int) -> np.ndarray:
        """The keys of ``shard``, by slot."""
        return np.arange(shard, self.n_keys, self.n_shards, dtype=np.int64)


@dataclass(frozen=True)
class StoreView:
    """The handles of a store's shards and its rule: what a worker task needs to pull and push.

    Picklable (the actors travel as handles); usable on the client and in tasks on any worker.
    """

    shards: tuple[Any, ...]
    rule: ShardRule
    n_outputs: int
    #: Longest wait for one shard's answer (``daskml_lab.solvers.timeout_s``): a lost shard fails, never hangs.
    timeout_s: float = 600.0

    def pull(
        self, keys: np.ndarray, *, alive: Callable[[list[int]], None] | None = None
    ) -> tuple[np.ndarray, list[int], float]:
        """Rows of ``keys`` (in the order given), the clock of each shard and the slowest worker's clock.

        Only the shards holding some of ``keys`` are asked (all at once: the calls run concurrently).
        ``alive``, when given, is called with the shards asked every :data:`POLL_S` seconds of waiting, and
        raises when one is gone: a call to an actor whose worker died can otherwise wait for the whole
        ``timeout_s`` (from a task, distributed does not always fail it).
        """
        keys = np.asarray(keys, dtype=np.int64)
        out = np.empty((len(keys), self.n_outputs), dtype=np.float64)
        parts = [part for part in self.rule.split(keys) if len(part[1])]
        calls = [(positions, self.shards[shard].pull(slots)) for shard, positions, slots in parts]
        clocks = [0] * len(self.shards)
        slowest = float("inf")
        asked = [shard for shard, _, _ in parts]
        for (shard, _, _), (positions, call) in zip(parts, calls, strict=True):
            rows, clock, shard_slowest = self._wait(call, alive, asked)
            out[positions] = rows
            clocks[shard] = int(clock)
            slowest = min(slowest, shard_slowest)
        return out, clocks, slowest

    def _wait(self, call: Any, alive: Callable[[list[int]], None] | None, asked: list[int]) -> Any:
        """The result of an actor call, within ``timeout_s``; ``alive(asked)`` between slices of waiting."""
        if alive is None:
            return call.result(self.timeout_s)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                return call.result(max(min(POLL_S, deadline - time.monotonic()), 0.001))
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise
                alive(asked)

    def push_async(
        self, keys: np.ndarray, grads: np.ndarray, pulled_at: list[int], worker: int, worker_clock: int
    ) -> list[Any]:
        """Send one step's gradient rows to every shard (the calls are returned, not awaited).

        Every shard gets a call, even with no key of it, so that each shard's clock counts the solver's steps
        (the L2 penalty is applied once per step, see :class:`ParameterShard`).
        """
        grads = np.asarray(grads, dtype=np.float64)
        return [
            self.shards[shard].push(slots, grads[positions], pulled_at[shard], worker, worker_clock)
            for shard, positions, slots in self.rule.split(keys)
        ]

    def push(self, keys: np.ndarray, grads: np.ndarray, *, worker: int = -1) -> list[int]:
        """:meth:`push_async` from the latest clocks, waiting for every shard; returns the new clocks."""
        calls = self.push_async(keys, grads, self.clocks(), worker, 0)
        return [int(call.result(self.timeout_s)[0]) for call in calls]

    def clocks(self) -> list[int]:
        """Each shard's clock."""
        return [int(stats["clock"]) for stats in self.stats()]

    def stats(self) -> list[dict[str, Any]]:
        """Each shard's counters (see :meth:`ParameterShard.stats`)."""
        calls = [shard.stats() for shard in self.shards]
        return [call.result(self.timeout_s) for call in calls]
