"""Parameter shards that also hold a full-batch solver's vectors: the gradient, and the solver's own.

:class:`GradientShard` adds to a :class:`~daskml_lab.solvers._parameter_shard.ParameterShard` the sum of the
gradient rows the workers add for their keys (a reduce-scatter: the gradient of the data term is summed where
its keys live). :class:`LBFGSShard` keeps the partitioned L-BFGS's direction and history pairs,
:class:`ProximalShard` the partitioned FISTA's extrapolated point and trial point.


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

__all__ = ["GradientShard", "LBFGSShard", "ProximalShard"]


class GradientShard(ParameterShard):
    """A shard's values ``w`` and the sum of the gradient rows the workers add for its keys in a round.

    Runs as a Dask actor. The values, ``pull``, ``gather``, ``stats`` and the counters are
    :class:`~daskml_lab.solvers._parameter_shard.ParameterShard`'s (no step rule is applied: ``w`` changes only
    by the solver's own calls), so a fitted model kept in its shards predicts as any partitioned model.

    Parameters
    ----------
    n_slots, n_outputs, n_penalised, step_rule, learning_rate, initial :
        As :class:`~daskml_lab.solvers._parameter_shard.ParameterShard` (``step_rule`` and ``learning_rate``
        are not used).
    l2 : float
        L2 strength of the objective, ``l2 / 2 * ||w||^2`` over the penalised slots.
    data_scale : float, default=1.0
        Factor of the data term: the gradient is ``data_scale * sum(added rows) + l2 * w``.
    """

    #: Arrays the size of the values a shard of the class holds (the values and the summed gradient here).
    VALUE_COPIES = 2

    @classmethod
    def planned_nbytes(cls, n_slots: int, n_outputs: int, step_rule: str, l2: float, **options: Any) -> int:
        """:data:`VALUE_COPIES` arrays of the values' size (see ``ParameterShard.planned_nbytes``)."""
        return cls.VALUE_COPIES * n_slots * n_outputs * 8

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
        data_scale: float = 1.0,
    ) -> None:
        super().__init__(n_slots, n_outputs, n_penalised, "sgd", 0.0, 0.0, initial)
        self.objective_l2, self.data_scale = float(l2), float(data_scale)
        self.summed = np.zeros(self.values.shape)
        # the penalised slots are a prefix (every key but the intercept, which is the last key): a slice reads
        # them without copying, where a boolean mask would copy the shard's vectors
        self.pen = slice(0, self.n_penalised)

    def add_gradient_rows(self, slots: np.ndarray, rows: np.ndarray) -> None:
        """Add a block's gradient rows (unique ``slots``) to this round's sum."""
        slots = np.asarray(slots, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.float64).reshape(len(slots), self.values.shape[1])
        self.summed[slots] += rows
        self.counters["n_pushes"] += 1
        self.counters["keys_pushed"] += len(slots)
        self.counters["bytes_pushed"] += slots.nbytes + rows.nbytes

    def _pulled(self, vector: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Rows of ``vector`` for ``slots``, counted as a pull."""
        slots = np.asarray(slots, dtype=np.int64)
        rows = vector[slots]
        self.counters["n_pulls"] += 1
        self.counters["keys_pulled"] += len(slots)
        self.counters["bytes_pulled"] += slots.nbytes + rows.nbytes
        return rows

    def _take_gradient(self, point: np.ndarray) -> np.ndarray:
        """The round's gradient at ``point`` (whose scores the workers used): data term plus L2; sum reset."""
        gradient = self.summed
        gradient *= self.data_scale
        if self.objective_l2:
            gradient[self.pen] += self.objective_l2 * point[self.pen]
        self.summed = np.zeros_like(gradient)
        return gradient


class LBFGSShard(GradientShard):
    """A :class:`GradientShard` with its slots of the gradient, the direction and the history pairs of L-BFGS.

    ``w`` changes only by :meth:`finish_gradient`.

    Parameters
    ----------
    *args, data_scale :
        As :class:`GradientShard`.
    memory : int, default=10
        History pairs kept (``m``).
    """

    @classmethod
    def planned_nbytes(
        cls, n_slots: int, n_outputs: int, step_rule: str, l2: float, *, memory: int = 10, **options: Any
    ) -> int:
        """The values, the summed and the current gradient, the direction, the new pair and ``2 m`` vectors."""
        return (6 + 2 * int(memory)) * n_slots * n_outputs * 8

    def __init__(self, *args: Any, memory: int = 10, **options: Any) -> None:
        super().__init__(*args, **options)
        shape = self.values.shape
        self.gradient = np.zeros(shape)
        self.direction = np.zeros(shape)
        self.new_step = np.zeros(shape)
        self.new_change = np.zeros(shape)
        # the basis: m steps, m gradient changes, then the gradient (as a view, row 2m)
        self.pairs = np.zeros((2 * memory, *shape))
        self.memory = int(memory)

    def pull_direction(self, slots: np.ndarray) -> np.ndarray:
        """The direction's rows of ``slots``."""
        return self._pulled(self.direction, slots)

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
        gradient = self._take_gradient(self.values)
        self.new_change = gradient - self.gradient
        self.gradient = gradient
        new = np.stack([self.new_step, self.new_change, self.gradient]).reshape(3, -1)
        # the history's dot products, then the new vectors' own (no copy of the history)
        dots = np.hstack([new @ self.pairs.reshape(2 * self.memory, -1).T, new @ new.T])
        return {
            "dots": dots,
            "w_sq": float(np.vdot(self.values[self.pen], self.values[self.pen])),
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
        pen = self.pen
        return {
            "w_d": float(np.vdot(self.values[pen], direction[pen])),
            "d_sq": float(np.vdot(direction[pen], direction[pen])),
            "g_d": float(np.vdot(self.gradient, direction)),
        }


class ProximalShard(GradientShard):
    """A :class:`GradientShard` with FISTA's vectors: the iterate ``x`` (the values), the previous one, the
    extrapolated point ``y`` and the gradients of the smooth part at ``x`` and ``y``, and the trial point.

    The proximal operator of ``l1 * ||w||_1`` (penalised slots; the intercept is not) is applied here, on the
    shard's own slots: the trial point never leaves the shard whole, workers pull its rows.

    Parameters
    ----------
    *args, data_scale :
        As :class:`GradientShard`.
    l1 : float, default=0.0
        L1 strength.
    """

    #: The values, the summed gradient, the previous iterate, the point, two gradients and the trial point.
    VALUE_COPIES = 7

    def __init__(self, *args: Any, l1: float = 0.0, **options: Any) -> None:
        super().__init__(*args, **options)
        self.l1 = float(l1)
        self.previous = self.values.copy()
        self.point = self.values.copy()  # y
        self.gradient_x = np.zeros(self.values.shape)
        self.gradient_y = np.zeros(self.values.shape)
        self.trial = self.values.copy()

    def pull_point(self, slots: np.ndarray) -> np.ndarray:
        """The extrapolated point's rows of ``slots``."""
        return self._pulled(self.point, slots)

    def pull_trial(self, slots: np.ndarray) -> np.ndarray:
        """The trial point's rows of ``slots``."""
        return self._pulled(self.trial, slots)

    def finish_gradient(self, at: str) -> dict[str, float]:
        """End a gradient round at ``at`` (``"x"``, the iterate, or ``"y"``, the extrapolated point).

        At ``"y"`` returns this shard's part of ``||y||^2`` (penalised slots) and its counters. At ``"x"``
        returns this shard's parts of the optimality (the largest distance of 0 to the
        subdifferential, over its slots), ``||x||^2`` and ``||x||_1`` (penalised slots), and its counters.
        """
        if at == "y":
            self.gradient_y = self._take_gradient(self.point)
            return {"y_sq": float(np.sum(self.point[self.pen] ** 2)), "stats": self.stats()}
        self.gradient_x = self._take_gradient(self.values)
        x, g, penalised = self.values, self.gradient_x, self.pen
        optimality = np.abs(g)
        if self.l1 > 0:
            coef, grad = x[penalised], g[penalised]
            optimality[penalised] = np.where(
                coef != 0, np.abs(grad + self.l1 * np.sign(coef)), np.maximum(np.abs(grad) - self.l1, 0.0)
            )
        return {
            "optimality": float(np.max(optimality, initial=0.0)),
            "x_sq": float(np.sum(x[penalised] ** 2)),
            "x_l1": float(np.sum(np.abs(x[penalised]))),
            "stats": self.stats(),
        }

    def propose(self, step: float) -> dict[str, float]:
        """The trial point ``prox(y - step * g_y, step)``; this shard's parts of the sufficient-decrease test.

        Returns ``g_y . (trial - y)``, ``||trial - y||^2``, and ``||trial||^2`` and ``||trial||_1`` over the
        penalised slots.
        """
        trial = self.point - step * self.gradient_y
        penalised = self.pen
        shrunk = trial[penalised]
        trial[penalised] = np.sign(shrunk) * np.maximum(np.abs(shrunk) - step * self.l1, 0.0)
        self.trial = trial
        difference = trial - self.point
        return {
            "g_dot": float(np.sum(self.gradient_y * difference)),
            "diff_sq": float(np.sum(difference**2)),
            "trial_sq": float(np.sum(trial[penalised] ** 2)),
            "trial_l1": float(np.sum(np.abs(trial[penalised]))),
        }

    def accept(self, momentum: float) -> None:
        """``x`` becomes the trial point; ``y = x + momentum * (x - previous x)``."""
        self.previous = self.values
        self.values = self.trial.copy()
        self.point = (
            self.values + momentum * (self.values - self.previous) if momentum > 0 else self.values.copy()
        )

    def restart(self) -> None:
        """Drop the momentum: ``y = x``, with the gradient at ``x``."""
        self.point = self.values.copy()
        self.gradient_y = self.gradient_x.copy()
