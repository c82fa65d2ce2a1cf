"""The parameter shards: one part of a partitioned model's rows, its step rule, clock and counters.

A :class:`ParameterShard` runs as a Dask actor on one worker (:class:`~daskml_lab.solvers._sharded_store.ShardedStore`
creates them and routes the keys). It applies plain SGD or AdaGrad per coordinate, with the L2 penalty applied
lazily (a row pays the steps it missed when it is next touched), and can keep the average of its rows over a
round beside them; :class:`FTRLShard` applies FTRL-proximal with L1 and L2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daskml_lab.solvers._shard_checkpoint import ShardState

__all__ = ["ADAGRAD_EPS", "FTRLShard", "ParameterShard"]

#: AdaGrad's ``eps``: a row's rate is ``eta / (sqrt(G) + eps)``.
ADAGRAD_EPS = 1e-8


class ParameterShard(ShardState):
    """One parameter shard: its rows of the model, the step rule's state, a clock and traffic counters.

    Runs as a Dask actor (one thread: calls are applied one at a time, in arrival order). Its state is
    written to a checkpoint file and read back on its own worker (``save_state``/``restore_state``, see
    :mod:`daskml_lab.solvers._shard_checkpoint`).

    Parameters
    ----------
    n_slots : int
        Rows held.
    n_outputs : int
        Values per row.
    n_penalised : int
        Slots ``< n_penalised`` carry the L2 penalty (the intercept row does not).
    step_rule : {"sgd", "adagrad"}
        ``"sgd"``: ``w -= eta * g``. ``"adagrad"``: ``G += g**2; w -= eta * g / (sqrt(G) + 1e-8)``, per
        coordinate.
    learning_rate : float
        ``eta``.
    l2 : float
        L2 strength ``l2 / 2 * ||w||^2``, applied as one proximal step ``w /= 1 + rate * l2`` on every
        penalised row per tick of the clock, so that a step costs only the keys it touches:

        - ``"sgd"`` (one rate for all the rows): the penalised rows are stored as ``v`` with ``w = scale * v``
          and a tick divides the one float ``scale`` (the trick of Bottou's SGD and scikit-learn's
          ``SGDClassifier``; ``v`` is rescaled in place when ``scale`` gets small). The shard holds nothing
          per key but the values, so a model its worker can barely hold still trains.
        - ``"adagrad"`` (a rate per coordinate): applied *lazily*, a row paying the ticks it missed when it is
          next pulled, pushed or gathered (``w /= (1 + rate * l2) ** missed``, with the row's current rate,
          which is constant between its pushes), from the tick of its last update (an int64 per key).
    initial : ndarray of shape (n_slots, n_outputs), default=None
        Starting values (zeros by default).
    average : bool, default=False
        Keep the average of the rows over each round's clock ticks beside them (``"adagrad"`` only): a row's
        sum is brought up to date when the row is (the ticks it missed form a geometric series under the lazy
        L2 step), so a step still costs only its keys. :meth:`finish_average` swaps the average in at the end
        of a round and :meth:`start_round` swaps the last iterate back, so the next round continues from it
        while the objective, checkpoints and the fitted model see the average.
    """

    #: Below this, the ``"sgd"`` rule folds ``scale`` into the stored values (keeps ``v`` from overflowing).
    MIN_SCALE = 1e-9
    #: Rows per slice when a shard sweeps all its rows (norms, catch-up, rescaling): bounds the temporaries.
    SWEEP_SLOTS = 2**20

    def __init__(
        self,
        n_slots: int,
        n_outputs: int,
        n_penalised: int,
        step_rule: str,
        learning_rate: float,
        l2: float,
        initial: np.ndarray | None = None,
        average: bool = False,
    ) -> None:
        if average and step_rule != "adagrad":
            msg = f"Averaging the iterates needs the 'adagrad' step rule, got {step_rule!r}."
            raise ValueError(msg)
        if initial is None:
            self.values = np.zeros((n_slots, n_outputs), dtype=np.float64)
        else:
            self.values = np.array(initial, dtype=np.float64, copy=True).reshape(n_slots, n_outputs)
        self.accumulator = np.zeros_like(self.values) if step_rule == "adagrad" else None
        self.n_penalised = min(int(n_penalised), n_slots)
        self.step_rule, self.learning_rate, self.l2 = step_rule, float(learning_rate), float(l2)
        #: ``w = scale * values`` on the penalised rows (the "sgd" rule's L2; 1.0 for the other rules).
        self.scale = 1.0
        lazy_l2 = step_rule == "adagrad" and self.l2 > 0
        self.last_tick = np.zeros(n_slots, dtype=np.int64) if lazy_l2 or average else None
        #: Sum of the rows over the round's ticks up to each row's ``last_tick`` (None: no averaging, or the
        #: average is swapped in and the last iterate kept in :attr:`iterate`).
        self.average_sum = np.zeros_like(self.values) if average else None
        self.iterate: np.ndarray | None = None
        #: The clock when the round's average started.
        self.average_since = 0
        #: Steps applied (every push is one step of the solver, even with no key of this shard).
        self.clock = 0
        self.worker_clocks: dict[int, float] = {}
        self.counters = dict.fromkeys(
            (
                "n_pulls",
                "keys_pulled",
                "bytes_pulled",
                "n_pushes",
                "keys_pushed",
                "bytes_pushed",
                "n_gathers",
                "bytes_gathered",
                "staleness_max",
                "staleness_sum",
            ),
            0,
        )

    @classmethod
    def planned_nbytes(cls, n_slots: int, n_outputs: int, step_rule: str, l2: float, **options: Any) -> int:
        """Bytes of the arrays a shard of this class allocates (what :meth:`state_nbytes` will report).

        Known before the shard exists, so that the store refuses a shard its worker cannot hold
        (:func:`~daskml_lab.solvers._shard_placement.check_shard_room`). Subclasses add their own arrays.
        """
        values = n_slots * n_outputs * 8
        adagrad = step_rule == "adagrad"
        average = bool(options.get("average"))
        ticks = n_slots * 8 if adagrad and (l2 > 0 or average) else 0
        return values * (2 if adagrad else 1) + (values if average else 0) + ticks

    # -- the step rule ----------------------------------------------------------------------------------------
    def _penalised(self, slots: np.ndarray) -> np.ndarray:
        return slots < self.n_penalised

    def _rates(self, slots: np.ndarray) -> np.ndarray:
        if self.accumulator is None:
            return np.full((len(slots), self.values.shape[1]), self.learning_rate)
        return self.learning_rate / (np.sqrt(self.accumulator[slots]) + ADAGRAD_EPS)

    def _scales(self, slots: np.ndarray) -> np.ndarray:
        """``w / values`` of the rows of ``slots``, as a column."""
        return np.where(self._penalised(slots), self.scale, 1.0)[:, None]

    def _catch_up(self, slots: np.ndarray) -> None:
        """Apply the L2 steps ``slots`` missed since they were last updated (the lazy penalty only)."""
        if self.last_tick is None or len(slots) == 0:
            return
        missed = (self.clock - self.last_tick[slots]).astype(np.float64)
        decay = np.where(self._penalised(slots)[:, None], self._rates(slots) * self.l2, 0.0)
        if self.average_sum is not None:
            # the missed ticks' rows: w, w q, ..., w q^(n-1) with q = 1 / (1 + decay)
            self.average_sum[slots] += self.values[slots] * _geometric_sum(decay, missed[:, None])
        self.values[slots] *= (1.0 + decay) ** -missed[:, None]
        self.last_tick[slots] = self.clock

    def _sweeps(self) -> Any:
        """All the slots, caught up, in slices of :attr:`SWEEP_SLOTS` (yields ``slice`` objects)."""
        for start in range(0, len(self.values), self.SWEEP_SLOTS):
            part = slice(start, min(start + self.SWEEP_SLOTS, len(self.values)))
            self._catch_up(np.arange(part.start, part.stop))
            yield part

    def _weights(self, part: slice) -> np.ndarray:
        """The model's rows of ``part`` (a new array)."""
        return self.values[part] * self._scales(np.arange(part.start, part.stop))

    def _tick(self) -> None:
        """The L2 step every row takes at every push (the "sgd" rule's, on ``scale``; lazy otherwise)."""
        if self.step_rule != "sgd" or self.l2 == 0:
            return
        self.scale /= 1.0 + self.learning_rate * self.l2
        if self.scale < self.MIN_SCALE:
            for part in self._sweeps():
                penalised = slice(part.start, min(part.stop, self.n_penalised))
                self.values[penalised] *= self.scale
            self.scale = 1.0

    # -- the actor's methods -----------------------------------------------------------------------------------
    def pull(self, slots: np.ndarray) -> tuple[np.ndarray, int, float]:
        """The rows of ``slots``, the shard's clock and the slowest running worker's clock."""
        slots = np.asarray(slots, dtype=np.int64)
        self._catch_up(slots)
        rows = self.values[slots] * self._scales(slots)
        self.counters["n_pulls"] += 1
        self.counters["keys_pulled"] += len(slots)
        self.counters["bytes_pulled"] += slots.nbytes + rows.nbytes
        return rows, self.clock, self.slowest()

    def push(
        self, slots: np.ndarray, grads: np.ndarray, pulled_at: int, worker: int, worker_clock: int
    ) -> int:
        """Apply one step with the gradient rows ``grads`` of ``slots`` (pulled at clock ``pulled_at``)."""
        slots = np.asarray(slots, dtype=np.int64)
        grads = np.asarray(grads, dtype=np.float64).reshape(len(slots), self.values.shape[1])
        self._catch_up(slots)
        if len(slots):
            self._step(slots, grads)
        self._tick()
        self.clock += 1
        return self._pushed(slots, grads.nbytes, 1, pulled_at, worker, worker_clock)

    def _pushed(
        self, slots: np.ndarray, nbytes: int, n_steps: int, pulled_at: int, worker: int, worker_clock: int
    ) -> tuple[int, float]:
        """Count a push of ``n_steps`` steps; the new clock and the slowest running worker's clock."""
        self.worker_clocks[worker] = float(worker_clock)
        staleness = max(self.clock - n_steps - int(pulled_at), 0)
        self.counters["n_pushes"] += 1
        self.counters["keys_pushed"] += len(slots)
        self.counters["bytes_pushed"] += slots.nbytes + nbytes
        self.counters["staleness_max"] = max(self.counters["staleness_max"], staleness)
        self.counters["staleness_sum"] += staleness
        return self.clock, self.slowest()

    def pull_state(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, int, float, float]:
        """:meth:`pull` with what a worker needs to take steps on its own copy of the rows.

        The rows, their AdaGrad sums of squared gradients (None for the ``"sgd"`` rule), the clock, the
        slowest running worker's clock and the base rate (see :func:`~daskml_lab.solvers._local_steps.local_step`).
        """
        rows, clock, slowest = self.pull(slots)
        sums = None if self.accumulator is None else self.accumulator[np.asarray(slots, dtype=np.int64)]
        self.counters["bytes_pulled"] += 0 if sums is None else sums.nbytes
        return rows, sums, clock, slowest, self.learning_rate

    def push_change(
        self,
        slots: np.ndarray,
        change: np.ndarray,
        sums_change: np.ndarray | None,
        n_steps: int,
        pulled_at: int,
        worker: int,
        worker_clock: int,
    ) -> tuple[int, float]:
        """Add what ``n_steps`` steps on a worker's copy changed in the rows of ``slots`` (from :meth:`pull_state`).

        The change holds those steps' L2 penalty on the rows of ``slots``; the clock advances by ``n_steps``,
        so every other row pays it too (with one worker, the same rows as ``n_steps`` pushes).
        """
        slots = np.asarray(slots, dtype=np.int64)
        change = np.asarray(change, dtype=np.float64).reshape(len(slots), self.values.shape[1])
        self._catch_up(slots)
        if self.average_sum is not None and n_steps > 0:
            # the worker's own n steps went from w to w + change: counted as a straight path
            self.average_sum[slots] += n_steps * self.values[slots] + (n_steps - 1) / 2 * change
        target = self.values[slots] * self._scales(slots) + change
        for _ in range(int(n_steps)):
            self._tick()
        self.clock += int(n_steps)
        if sums_change is not None and self.accumulator is not None:
            self.accumulator[slots] += sums_change
        self.values[slots] = target / self._scales(slots)
        if self.last_tick is not None:
            self.last_tick[slots] = self.clock
        nbytes = change.nbytes + (0 if sums_change is None else np.asarray(sums_change).nbytes)
        return self._pushed(slots, nbytes, int(n_steps), pulled_at, worker, worker_clock)

    def _step(self, slots: np.ndarray, grads: np.ndarray) -> None:
        """The step rule on the rows of ``slots`` (unique within a push: np.unique of the batch's columns)."""
        if self.accumulator is None:
            # "sgd": w - eta g, stored as v = w / scale; the L2 step is the tick that follows
            self.values[slots] -= self.learning_rate * grads / self._scales(slots)
            return
        if self.average_sum is not None:  # this tick's rows, before the step (caught up)
            self.average_sum[slots] += self.values[slots]
        self.accumulator[slots] += grads**2
        rates = self._rates(slots)
        updated = self.values[slots] - rates * grads
        shrink = np.where(self._penalised(slots)[:, None], 1.0 + rates * self.l2, 1.0)
        self.values[slots] = updated / shrink
        if self.last_tick is not None:
            self.last_tick[slots] = self.clock + 1

    def load_rows(self, slots: np.ndarray, rows: np.ndarray) -> None:
        """Set the rows of ``slots`` (seeding a store from another one; not a solver step, not counted)."""
        slots = np.asarray(slots, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.float64).reshape(len(slots), self.values.shape[1])
        self._catch_up(slots)
        self.values[slots] = rows / self._scales(slots)
        if self.last_tick is not None:
            self.last_tick[slots] = self.clock

    def slowest(self) -> float:
        """The clock of the slowest worker still running its round (the shard's clock when none is)."""
        return min(self.worker_clocks.values(), default=float(self.clock))

    def start_round(self, workers: list[int], learning_rate: float | None = None) -> None:
        """Start a round of solver tasks: ``workers`` are running, at clock 0 each; set the base rate.

        A new ``learning_rate`` is set after every row has paid its pending L2 steps at the old one, so the
        lazy penalty stays exact.
        """
        self.worker_clocks = dict.fromkeys(workers, 0.0)
        # the last round's average was swapped in: continue from its last iterate
        if self.iterate is not None:
            self.average_sum, self.values, self.iterate = self.values, self.iterate, None
        if learning_rate is not None and learning_rate != self.learning_rate:
            for _ in self._sweeps():
                pass
            self.learning_rate = float(learning_rate)
        if self.average_sum is not None:
            for part in self._sweeps():  # every row's sum restarts from this tick
                self.average_sum[part] = 0.0
            self.average_since = self.clock

    def finish_average(self) -> None:
        """End a round with its average: the rows become their average over the round's ticks.

        The last iterate is kept aside for :meth:`start_round`. Nothing happens without averaging, or before
        a tick of the round.
        """
        if self.average_sum is None or self.clock == self.average_since:
            return
        n_ticks = float(self.clock - self.average_since)
        for part in self._sweeps():  # brings every row's sum up to the clock
            self.average_sum[part] /= n_ticks
        self.iterate, self.values, self.average_sum = self.values, self.average_sum, None

    def finish(self, worker: int) -> None:
        """``worker`` has finished its round: it no longer holds the others back."""
        self.worker_clocks.pop(worker, None)

    def sq_norm(self) -> float:
        """``||w||^2`` over the penalised rows (after their pending L2 steps), slice by slice."""
        total = 0.0
        for part in self._sweeps():
            penalised = slice(part.start, min(part.stop, self.n_penalised))
            total += float(np.sum(self._weights(penalised) ** 2)) if penalised.stop > penalised.start else 0.0
        return total

    def abs_norm(self) -> float:
        """``||w||_1`` over the penalised rows (after their pending steps), slice by slice."""
        total = 0.0
        for part in self._sweeps():
            penalised = slice(part.start, min(part.stop, self.n_penalised))
            total += (
                float(np.sum(np.abs(self._weights(penalised)))) if penalised.stop > penalised.start else 0.0
            )
        return total

    def gather(self) -> np.ndarray:
        """All the shard's rows (for a small model only: :meth:`ShardedStore.gather` checks)."""
        out = np.empty_like(self.values)
        for part in self._sweeps():
            out[part] = self._weights(part)
        self.counters["n_gathers"] += 1
        self.counters["bytes_gathered"] += out.nbytes
        return out

    def state_nbytes(self) -> int:
        """Bytes of the shard's arrays: the values and the solver's state (history vectors included)."""
        total = 0
        for value in vars(self).values():
            parts = value if isinstance(value, list | tuple) else (value,)
            total += sum(part.nbytes for part in parts if isinstance(part, np.ndarray))
        return total

    def stats(self) -> dict[str, Any]:
        """The traffic counters, the clock, the number of rows held and the bytes of their state."""
        return {
            **self.counters,
            "clock": self.clock,
            "n_keys": len(self.values),
            "state_bytes": self.state_nbytes(),
        }


def _geometric_sum(decay: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``1 + q + ... + q^(n-1)`` with ``q = 1 / (1 + decay)``: ``n`` where ``decay`` is 0."""
    # (1 - q^n) / (1 - q), with 1 - q^n = -expm1(-n log1p(decay)) exact for tiny decays
    safe = np.where(decay > 0, decay, 1.0)
    series = -np.expm1(-n * np.log1p(safe)) * (1.0 + safe) / safe
    return np.where(decay > 0, series, n)


class FTRLShard(ParameterShard):
    """A parameter shard whose step rule is FTRL-proximal (McMahan et al., KDD 2013), per coordinate.

    Each coordinate keeps ``z`` (the gradients summed, less the proximal centres) and ``n`` (the squared
    gradients summed), and its value is FTRL-proximal's closed form

    ``w = 0`` if ``|z| <= t l1``, else ``w = -(z - sign(z) t l1) / ((beta + sqrt(n)) / alpha + t l2)``

    with ``alpha`` the learning rate and ``t`` the shard's clock: every push is one step of the solver on the
    whole objective (its gradient an unbiased estimate of the data term's), so after ``t`` steps the penalty
    ``l1 ||w||_1 + l2 / 2 ||w||^2`` has been added ``t`` times. The value is computed when a row is pulled,
    pushed or gathered, so a step costs only the keys it touches, the L1 penalty gives exact zeros, and the
    intercept row (not penalised) has ``t l1 = t l2 = 0``. Its state is three arrays the size of the values.

    Parameters
    ----------
    *args
        Those of :class:`ParameterShard` (its ``step_rule`` is ``"ftrl"``, its ``learning_rate`` ``alpha``).
    l1 : float, default=0.0
        L1 strength of the objective.
    beta : float, default=1.0
        FTRL-proximal's ``beta`` (smooths the first steps of a coordinate).
    """

    @classmethod
    def planned_nbytes(cls, n_slots: int, n_outputs: int, step_rule: str, l2: float, **options: Any) -> int:
        """The values, ``z`` and ``n`` (see :meth:`ParameterShard.planned_nbytes`)."""
        return 3 * n_slots * n_outputs * 8

    def __init__(self, *args: Any, l1: float = 0.0, beta: float = 1.0, **options: Any) -> None:
        super().__init__(*args, **options)
        self.l1, self.beta = float(l1), float(beta)
        self.z = np.zeros_like(self.values)
        self.n = np.zeros_like(self.values)
        if np.any(self.values):
            self.load_rows(np.arange(len(self.values)), self.values)

    def _penalties(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``t l1`` and ``t l2`` of the rows of ``slots`` (zero for the intercept row), as columns."""
        t = float(max(self.clock, 1))
        penalised = self._penalised(slots)[:, None]
        return np.where(penalised, t * self.l1, 0.0), np.where(penalised, t * self.l2, 0.0)

    def _catch_up(self, slots: np.ndarray) -> None:
        """The closed form of the rows of ``slots`` at the current clock."""
        z = self.z[slots]
        l1, l2 = self._penalties(slots)
        shrunk = np.sign(z) * np.maximum(np.abs(z) - l1, 0.0)
        self.values[slots] = -shrunk / ((self.beta + np.sqrt(self.n[slots])) / self.learning_rate + l2)

    def _tick(self) -> None:
        """Nothing: the penalty of every step is in the closed form, through the clock."""

    def _step(self, slots: np.ndarray, grads: np.ndarray) -> None:
        n = self.n[slots]
        sigma = (np.sqrt(n + grads**2) - np.sqrt(n)) / self.learning_rate
        self.z[slots] += grads - sigma * self.values[slots]
        self.n[slots] = n + grads**2

    def load_rows(self, slots: np.ndarray, rows: np.ndarray) -> None:
        """Set ``z`` so that the rows of ``slots`` have the values ``rows`` now (a warm start)."""
        slots = np.asarray(slots, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.float64).reshape(len(slots), self.values.shape[1])
        l1, l2 = self._penalties(slots)
        denominator = (self.beta + np.sqrt(self.n[slots])) / self.learning_rate + l2
        self.z[slots] = -rows * denominator - np.sign(rows) * l1
        self._catch_up(slots)
