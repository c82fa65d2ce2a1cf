"""The SGD over the store with ``average=True``: each epoch's model is the average of its iterates.

The shards keep the average lazily (a row's sum is brought up to date only when the row is touched, the
ticks it missed summed as a geometric series under the lazy L2 step): checked against a dense reference that
applies every tick to every row. Then fits on a real two-process cluster (the session's LocalCluster): the
objective reported is the fitted (averaged) model's, and settings without AdaGrad are refused (an interrupted
averaged fit resuming from its checkpoint: tests/test_linear_model_partitioned_checkpoint.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from distributed import Client, LocalCluster

from daskml_lab.data import make_sparse_classification
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.solvers._sharded_store import ADAGRAD_EPS, ParameterShard


class DenseReference:
    """The shard's AdaGrad rule with every tick applied to every row, and the sum of the rows at every tick."""

    def __init__(self, n_slots: int, n_outputs: int, n_penalised: int, rate: float, l2: float) -> None:
        self.values = np.zeros((n_slots, n_outputs))
        self.sums = np.zeros_like(self.values)
        self.total = np.zeros_like(self.values)
        self.penalised = (np.arange(n_slots) < n_penalised)[:, None]
        self.rate, self.l2, self.ticks = rate, l2, 0

    def _decay(self, rows: np.ndarray) -> None:
        rates = self.rate / (np.sqrt(self.sums) + ADAGRAD_EPS)
        factor = np.where(self.penalised & rows[:, None], 1.0 + rates * self.l2, 1.0)
        self.values /= factor

    def push(self, slots: np.ndarray, grads: np.ndarray) -> None:
        self.total += self.values
        self.ticks += 1
        touched = np.zeros(len(self.values), dtype=bool)
        touched[slots] = True
        self.sums[slots] += grads**2
        rates = self.rate / (np.sqrt(self.sums[slots]) + ADAGRAD_EPS)
        self.values[slots] -= rates * grads
        self._decay(np.ones(len(self.values), dtype=bool))  # the step's L2, on every row

    def push_change(self, slots: np.ndarray, change: np.ndarray, sums_change: np.ndarray, n: int) -> None:
        touched = np.zeros(len(self.values), dtype=bool)
        touched[slots] = True
        # the worker's own n steps, a straight path from w to w + change
        self.total[slots] += n * self.values[slots] + (n - 1) / 2 * change
        for _ in range(n):  # every other row: n ticks of the L2 step
            self.total[~touched] += self.values[~touched]
            self._decay(~touched)
        self.values[slots] += change
        self.sums[slots] += sums_change
        self.ticks += n

    def start_round(self, rate: float) -> None:
        self.total[:] = 0.0
        self.ticks = 0
        self.rate = rate


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_the_lazy_average_is_the_average_of_every_tick(l2: float) -> None:
    rng = np.random.default_rng(0)
    n_slots, n_outputs, n_penalised = 40, 2, 39  # the last slot is an intercept (no penalty)
    shard = ParameterShard(n_slots, n_outputs, n_penalised, "adagrad", 0.5, l2, average=True)
    reference = DenseReference(n_slots, n_outputs, n_penalised, 0.5, l2)
    for rate in (0.5, 0.25):  # two rounds, the second at a lower base rate
        shard.start_round([0], rate)
        reference.start_round(rate)
        for _ in range(30):
            slots = np.sort(rng.choice(n_slots, size=rng.integers(1, 8), replace=False))
            if rng.random() < 0.5:
                grads = rng.normal(size=(len(slots), n_outputs))
                shard.push(slots, grads, shard.clock, 0, 1)
                reference.push(slots, grads)
            else:
                n = int(rng.integers(1, 5))
                change = rng.normal(scale=0.1, size=(len(slots), n_outputs))
                sums_change = rng.uniform(0.0, 1.0, size=(len(slots), n_outputs))
                shard.push_change(slots, change, sums_change, n, shard.clock, 0, 1)
                reference.push_change(slots, change, sums_change, n)
        shard.finish_average()
        np.testing.assert_allclose(shard.values, reference.total / reference.ticks, rtol=1e-10, atol=1e-14)
        # the average is visible (norms, gathers) until the next round starts from the last iterate
        np.testing.assert_allclose(shard.gather(), reference.total / reference.ticks, rtol=1e-10, atol=1e-14)
        assert not np.allclose(shard.values, reference.values)  # an average, not the last iterate
    shard.start_round([0], 0.25)
    np.testing.assert_allclose(shard.gather(), reference.values, rtol=1e-10, atol=1e-14)


# ------------------------------------------------------------------------------------------ on a cluster


@pytest.fixture(scope="module")
def client(local_cluster: LocalCluster) -> Iterator[Client]:
    with Client(local_cluster) as client:
        yield client


def _model(max_iter: int, **options) -> LogisticRegression:
    return LogisticRegression(
        C=0.05,
        solver="sgd",
        model_partitions=2,
        max_iter=max_iter,
        tol=0,
        random_state=0,
        solver_options={"batch_size": 64, "average": True, **options},
    )


def _fit(model: LogisticRegression, X, y) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter epochs on purpose
        return model.fit(X, y)


def _objective(model: LogisticRegression, X: np.ndarray, y: np.ndarray) -> float:
    z = X @ np.asarray(model.coef_).ravel() + float(np.asarray(model.intercept_).ravel()[0])
    loss = np.mean(np.logaddexp(0.0, z) - y * z)
    return float(loss + np.sum(np.asarray(model.coef_) ** 2) / (2 * model.C * len(y)))


@pytest.mark.cluster
@pytest.mark.parametrize("local_steps", [1, 8])
def test_the_fitted_model_is_the_last_epochs_average(client: Client, local_steps: int) -> None:
    X, y = make_sparse_classification(3_000, 2**9, nnz_per_row=8, chunks=1_500, random_state=2)
    X, y = client.persist([X, y])
    X_np, y_np = X.compute(), y.compute()
    averaged = _fit(_model(3, local_steps=local_steps), X, y)
    last = _fit(_model(3, local_steps=local_steps, average=False), X, y)
    # the exact objective of each epoch is that of the model it ends with: the average, which is returned
    assert averaged.history_["objective"].iloc[-1] == pytest.approx(
        _objective(averaged, X_np, y_np), rel=1e-9
    )
    assert last.history_["objective"].iloc[-1] == pytest.approx(_objective(last, X_np, y_np), rel=1e-9)
    difference = np.abs(np.asarray(averaged.coef_) - np.asarray(last.coef_)).max()
    assert difference > 1e-3  # not the last iterate
    # and about as good: the same problem, within a few hundredths of its objective
    assert _objective(averaged, X_np, y_np) < _objective(last, X_np, y_np) + 0.02


@pytest.mark.cluster
@pytest.mark.parametrize("step_rule", ["sgd", "ftrl"])
def test_averaging_without_adagrad_is_refused(client: Client, step_rule: str) -> None:
    X, y = make_sparse_classification(200, 2**6, nnz_per_row=5, chunks=100, random_state=0)
    with pytest.raises(ValueError, match="average=True keeps the average of the iterates with the 'adagrad'"):
        _fit(_model(2, step_rule=step_rule), X, y)
