"""Which shard holds a key, and the view of a store that tasks use to pull rows and push gradients.

:class:`ShardRule` places key ``k`` on key part ``k % n_key_parts`` at slot ``k // n_key_parts``; with
``n_class_parts > 1`` the outputs (classes) are split into contiguous ranges too, and a shard holds one key
part's rows for one range of classes. :class:`StoreView` holds the shards' actor handles and the rule, is
picklable, and works on the client and in tasks on any worker (see :mod:`daskml_lab.solvers._sharded_store`
for the shards themselves).
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
    """Which shard holds a key and which outputs: key part ``k % n_key_parts``, slot ``k // n_key_parts``.

    The ``n_shards`` shards form a grid of ``n_key_parts = n_shards // n_class_parts`` key parts by
    ``n_class_parts`` class parts: shard ``s`` holds the keys of key part ``s // n_class_parts`` and the
    outputs (classes) of class part ``s % n_class_parts``, a contiguous range (see :meth:`columns`). With one
    class part (the default) a shard holds whole rows.

    Parameters
    ----------
    n_keys : int
        Number of keys (rows of the model).
    n_shards : int
        Number of parameter shards, at least 1; a multiple of ``n_class_parts``.
    n_outputs : int, default=1
        Values per key (columns of the model: one per class of a multinomial model).
    n_class_parts : int, default=1
        Number of ranges the outputs are split into, at most ``n_outputs``.

    Examples
    --------
    >>> rule = ShardRule(n_keys=10, n_shards=3)
    >>> [rule.size(s) for s in range(3)]
    [4, 3, 3]
    >>> [(int(s), slots.tolist()) for s, _, slots in rule.split(np.array([0, 4, 5, 9]))]
    [(0, [0, 3]), (1, [1]), (2, [1])]
    >>> grid = ShardRule(n_keys=10, n_shards=4, n_outputs=5, n_class_parts=2)
    >>> [(grid.size(s), grid.columns(s)) for s in range(4)]
    [(5, slice(0, 2, None)), (5, slice(2, 5, None)), (5, slice(0, 2, None)), (5, slice(2, 5, None))]
    """

    n_keys: int
    n_shards: int
    n_outputs: int = 1
    n_class_parts: int = 1

    def __post_init__(self) -> None:
        if self.n_shards < 1 or self.n_class_parts < 1 or self.n_shards % self.n_class_parts:
            msg = (
                f"A store of {self.n_shards} shard(s) cannot split the classes into {self.n_class_parts} parts: "
                "the number of shards must be a positive multiple of the number of class parts."
            )
            raise ValueError(msg)
        if self.n_class_parts > max(self.n_outputs, 1):
            msg = (
                f"{self.n_class_parts} class parts for {self.n_outputs} output(s): each class part needs at least "
                "one class. Use at most as many class parts as classes."
            )
            raise ValueError(msg)

    @property
    def n_key_parts(self) -> int:
        """Number of key parts (shards holding the same classes)."""
        return self.n_shards // self.n_class_parts

    def size(self, shard: int) -> int:
        """Number of keys of ``shard``."""
        part, n_parts = shard // self.n_class_parts, self.n_key_parts
        return max(0, (self.n_keys - part + n_parts - 1) // n_parts)

    def class_bounds(self, part: int) -> slice:
        """The outputs of class part ``part``: a contiguous range, the parts' widths differ by one at most."""
        return slice(
            part * self.n_outputs // self.n_class_parts, (part + 1) * self.n_outputs // self.n_class_parts
        )

    def columns(self, shard: int) -> slice:
        """The outputs ``shard`` holds."""
        return self.class_bounds(shard % self.n_class_parts)

    def width(self, shard: int) -> int:
        """Number of outputs ``shard`` holds."""
        bounds = self.columns(shard)
        return bounds.stop - bounds.start

    def split(self, keys: np.ndarray, part: int | None = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``(shard, positions in keys, slots)`` for every shard, in order (empty arrays where none).

        With ``part`` given, only the shards of that class part.
        """
        keys = np.asarray(keys, dtype=np.int64)
        n_parts = self.n_key_parts
        key_part = keys % n_parts
        slots = keys // n_parts
        class_parts = range(self.n_class_parts) if part is None else (part,)
        parts = []
        for index in range(n_parts):
            positions = np.flatnonzero(key_part == index)
            for class_part in class_parts:
                parts.append((index * self.n_class_parts + class_part, positions, slots[positions]))
        return parts

    def keys_of(self, shard: int) -> np.ndarray:
        """The keys of ``shard``, by slot."""
        return np.arange(shard // self.n_class_parts, self.n_keys, self.n_key_parts, dtype=np.int64)


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

    @property
    def class_parts(self) -> range:
        """The class parts (``range(rule.n_class_parts)``): pull and push one at a time to bound the memory."""
        return range(self.rule.n_class_parts)

    def width(self, part: int | None) -> int:
        """Outputs of class part ``part`` (all of them for None)."""
        if part is None:
            return self.n_outputs
        bounds = self.rule.class_bounds(part)
        return bounds.stop - bounds.start

    def _placement(self, shard: int, part: int | None) -> slice:
        """Where ``shard``'s outputs go in an array of :meth:`width` ``(part)`` columns."""
        return self.rule.columns(shard) if part is None else slice(None)

    def pull(
        self,
        keys: np.ndarray,
        *,
        part: int | None = None,
        alive: Callable[[list[int]], None] | None = None,
        method: str = "pull",
    ) -> tuple[np.ndarray, list[int], float]:
        """Rows of ``keys`` (in the order given), the clock of each shard and the slowest worker's clock.

        Only the shards holding some of ``keys`` are asked (all at once: the calls run concurrently); with
        ``part``, only those of class part ``part``, and the rows have its outputs only. ``alive``, when given,
        is called with the shards asked every :data:`POLL_S` seconds of waiting, and raises when one is gone:
        a call to an actor whose worker died can otherwise wait for the whole ``timeout_s`` (from a task,
        distributed does not always fail it). ``method`` names another shard method that reads rows by slot
        (a solver's own vector, e.g. ``"pull_direction"``): its rows are returned, and the clocks are zeros.
        """
        keys = np.asarray(keys, dtype=np.int64)
        out = np.empty((len(keys), self.width(part)), dtype=np.float64)
        parts = [split for split in self.rule.split(keys, part) if len(split[1])]
        calls = [(positions, getattr(self.shards[shard], method)(slots)) for shard, positions, slots in parts]
        clocks = [0] * len(self.shards)
        slowest = float("inf")
        asked = [shard for shard, _, _ in parts]
        for (shard, _, _), (positions, call) in zip(parts, calls, strict=True):
            answer = self._wait(call, alive, asked)
            if method != "pull":
                out[positions, self._placement(shard, part)] = answer
                continue
            rows, clock, shard_slowest = answer
            out[positions, self._placement(shard, part)] = rows
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
        self,
        keys: np.ndarray,
        grads: np.ndarray,
        pulled_at: list[int],
        worker: int,
        worker_clock: int,
        *,
        part: int | None = None,
    ) -> list[Any]:
        """Send one step's gradient rows to every shard (the calls are returned, not awaited).

        Every shard gets a call, even with no key of it, so that each shard's clock counts the solver's steps
        (the L2 penalty is applied once per step, see :class:`ParameterShard`). With ``part``, ``grads`` has
        the outputs of that class part and only its shards are sent a call: a step pushes every class part
        once.
        """
        grads = np.asarray(grads, dtype=np.float64)
        return [
            self.shards[shard].push(
                slots, grads[positions, self._placement(shard, part)], pulled_at[shard], worker, worker_clock
            )
            for shard, positions, slots in self.rule.split(keys, part)
        ]

    def pull_state(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, list[int], float]:
        """Rows of ``keys``, their AdaGrad sums (None for the "sgd" rule), each shard's clock and the base rate.

        For a worker that takes several steps on its own copy of the rows before it pushes the change
        (:meth:`push_change_async`). Whole rows: a store with one class part only.
        """
        keys = np.asarray(keys, dtype=np.int64)
        rows = np.empty((len(keys), self.n_outputs), dtype=np.float64)
        sums = None
        clocks = [0] * len(self.shards)
        rate = 0.0
        parts = [split for split in self.rule.split(keys) if len(split[1])]
        calls = [(positions, self.shards[shard].pull_state(slots)) for shard, positions, slots in parts]
        for (shard, _, _), (positions, call) in zip(parts, calls, strict=True):
            shard_rows, shard_sums, clock, _, rate = call.result(self.timeout_s)
            rows[positions] = shard_rows
            if shard_sums is not None:
                sums = np.empty_like(rows) if sums is None else sums
                sums[positions] = shard_sums
            clocks[shard] = int(clock)
        return rows, sums, clocks, float(rate)

    def push_change_async(
        self,
        keys: np.ndarray,
        change: np.ndarray,
        sums_change: np.ndarray | None,
        n_steps: int,
        pulled_at: list[int],
        worker: int,
        worker_clock: int,
    ) -> list[Any]:
        """Send what ``n_steps`` steps changed in the rows of ``keys`` (and their sums) to every shard.

        Every shard gets a call, even with no key of it, so that each shard's clock advances by ``n_steps``
        (see :meth:`ParameterShard.push_change`); the calls are returned, not awaited.
        """
        return [
            self.shards[shard].push_change(
                slots,
                change[positions],
                None if sums_change is None else sums_change[positions],
                n_steps,
                pulled_at[shard],
                worker,
                worker_clock,
            )
            for shard, positions, slots in self.rule.split(keys)
        ]

    def add_rows(
        self, keys: np.ndarray, rows: np.ndarray, method: str, *, part: int | None = None
    ) -> list[Any]:
        """Call the shards' ``method(slots, rows)`` with the rows of their keys (and outputs); the calls.

        For methods that set or accumulate rows without a step (``"load_rows"``, ``"add_gradient_rows"``);
        only the shards holding some of ``keys`` are called.
        """
        return [
            getattr(self.shards[shard], method)(slots, rows[positions, self._placement(shard, part)])
            for shard, positions, slots in self.rule.split(keys, part)
            if len(positions)
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
