"""A parameter shard that also holds the partitioned L-BFGS's vectors: gradient, direction, history pairs.

Vector-free L-BFGS (Chen, Wang and Zhou, "Large-scale L-BFGS using MapReduce", NIPS 2014): the two-loop
recursion only needs the dot products of the ``2m + 1`` basis vectors (the ``m`` steps ``s_i``, the ``m``
gradient changes ``y_i`` and the gradient ``g``), and the direction is a linear combination of them. Each shard
holds its slots of every vector; it returns its part of the dot products and forms its part of the direction
from the coefficients the client computes. No vector of the model's width leaves a shard.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daskml_lab.solvers._sharded_store import ParameterShard

__all__ = ["LBFGSShard"]


class LBFGSShard(ParameterShard):
    """The values ``w`` of a shard's slots plus its slots of ``g``, ``d``, the history pairs and a gradient sum.

    Runs as a Dask actor. The values, ``pull``, ``gather``, ``stats`` and the counters are
    :class:`~daskml_lab.solvers._sharded_store.ParameterShard`'s (no step rule is applied: ``w`` changes only
    by :meth:`finish_gradient`), so a fitted model kept in its shards predicts as any partitioned model.

    Parameters
    ----------
    n_slots, n_outputs, n_penalised, step_rule, learning_rate, initial :
        As :class:`~daskml_lab.solvers._sharded_store.ParameterShard` (``step_rule`` and ``learning_rate``
        are not used).
    l2 : float
        L2 strength of the objective, ``l2 / 2 * ||w||^2`` over the penalised slots.
    memory : int, default=10
        History pairs kept (``m``).
    data_scale : float, default=1.0
        Factor of the data term: the gradient is ``data_scale * sum(pushed rows) + l2 * w``.
    """

    def __init__(
        self,
        n_slots: int,
        n_outputs: int,
        n_penalised: int,
        step_rule: str,
        learning_rate: float,
        l2: float,
        initial: np.ndarray | None = None,
        *,
        memory: int = 10,
        data_scale: float = 1.0,
    ) -> None:
        super().__init__(n_slots, n_outputs, n_penalised, "sgd", 0.0, 0.0, initial)
        self.objective_l2, self.data_scale = float(l2), float(data_scale)
        shape = self.values.shape
        self.gradient = np.zeros(shape)
        self.summed = np.zeros(shape)
        self.direction = np.zeros(shape)
        self.new_step = np.zeros(shape)
        self.new_change = np.zeros(shape)
        # the basis: m steps, m gradient changes, then the gradient (as a view, row 2m)
        self.pairs = np.zeros((2 * memory, *shape))
        self.memory = int(memory)

    # -- the data term's gradient, reduce-scattered: each worker adds the rows of its keys -----------------
    def add_gradient_rows(self, slots: np.ndarray, rows: np.ndarray) -> None:
        """Add a block's gradient rows (unique ``slots``) to this round's sum."""
        slots = np.asarray(slots, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.float64).reshape(len(slots), self.values.shape[1])
        self.summed[slots] += rows
        self.counters["n_pushes"] += 1
        self.counters["keys_pushed"] += len(slots)
        self.counters["bytes_pushed"] += slots.nbytes + rows.nbytes

    def pull_direction(self, slots: np.ndarray) -> np.ndarray:
        """The direction's rows of ``slots``."""
        slots = np.asarray(slots, dtype=np.int64)
        rows = self.direction[slots]
        self.counters["n_pulls"] += 1
        self.counters["keys_pulled"] += len(slots)
        self.counters["bytes_pulled"] += slots.nbytes + rows.nbytes
        return rows

    def finish_gradient(self, step: float) -> dict[str, Any]:
        """End the round: the step ``w += step * d`` (the line search's), the gradient there; their dot products.

        The step is taken here rather than in a call of its own: the workers' gradient rows (added while the
        round runs) depend on the scores only, not on ``w``. ``step=0`` (the first round) keeps ``w``.

        Returns this shard's parts of: ``dots`` (3, 2m + 3), the dot products of (new step, new gradient
        change, new gradient) with (the m steps, the m changes, new step, new change, new gradient);
        ``w_sq`` (``||w||^2``, penalised slots), ``g_max`` (``max |g|``) and ``stats`` (the counters, so that
        the client needs no call of its own to read the round's traffic).
        """
        self.new_step = step * self.direction
        self.values += self.new_step
        gradient = self.data_scale * self.summed
        gradient[self.penalised] += self.objective_l2 * self.values[self.penalised]
        self.new_change = gradient - self.gradient
        self.gradient = gradient
        self.summed = np.zeros_like(self.summed)
        new = np.stack([self.new_step, self.new_change, self.gradient]).reshape(3, -1)
        # the history's dot products, then the new vectors' own (no copy of the history)
        dots = np.hstack([new @ self.pairs.reshape(2 * self.memory, -1).T, new @ new.T])
        return {
            "dots": dots,
            "w_sq": float(np.sum(self.values[self.penalised] ** 2)),
            "g_max": float(np.max(np.abs(self.gradient), initial=0.0)),
            "stats": self.stats(),
        }

    def set_direction(self, coefficients: np.ndarray, keep_pair_at: int | None) -> dict[str, float]:
        """Keep the new pair in history slot ``keep_pair_at`` (None: drop it); ``d = basis @ coefficients``.

        ``coefficients`` has ``2m + 1`` entries (steps, changes, gradient). Returns this shard's parts of
        ``w . d`` and ``d . d`` over the penalised slots and ``g . d`` over all.
        """
        if keep_pair_at is not None:
            self.pairs[keep_pair_at] = self.new_step
            self.pairs[self.memory + keep_pair_at] = self.new_change
        coefficients = np.asarray(coefficients, dtype=np.float64)
        direction = np.tensordot(coefficients[:-1], self.pairs, axes=1)
        direction += coefficients[-1] * self.gradient
        self.direction = direction
        penalised = self.penalised
        return {
            "w_d": float(np.sum(self.values[penalised] * direction[penalised])),
            "d_sq": float(np.sum(direction[penalised] ** 2)),
            "g_d": float(np.sum(self.gradient * direction)),
        }
