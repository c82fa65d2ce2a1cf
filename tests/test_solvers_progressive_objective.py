"""The SGD over the store with ``objective="progressive"``: the epochs' own mini-batch losses stand for the
objective, and no pass over the rows follows an epoch.

Real two-process cluster (the session's LocalCluster). One row block, so one worker runs every step and the
fit is deterministic: the steps must be the same as with the exact objective. A model that does not move
(a negligible rate) must get its exact objective from the estimate, weights and both workers' rows counted.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

from daskml_lab.data import make_sparse_classification
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression

pytestmark = pytest.mark.cluster

#: The solver's module (``daskml_lab.solvers.partitioned_sgd`` the attribute is the function).
SOLVER_MODULE = importlib.import_module("daskml_lab.solvers.partitioned_sgd")


@pytest.fixture(scope="module")
def client(local_cluster: LocalCluster) -> Iterator[Client]:
    with Client(local_cluster) as client:
        yield client


def _fit(X, y, *, tol: float = 0.0, max_iter: int = 4, **options) -> LogisticRegression:
    model = LogisticRegression(
        C=0.05,
        solver="sgd",
        model_partitions=2,
        max_iter=max_iter,
        tol=tol,
        random_state=0,
        solver_options={"batch_size": 64, **options},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter epochs on purpose
        return model.fit(X, y)


def _parameters(model: LogisticRegression) -> np.ndarray:
    return np.r_[np.asarray(model.coef_).ravel(), np.asarray(model.intercept_).ravel()]


@pytest.mark.parametrize("local_steps", [1, 8])
def test_the_same_steps_without_the_objectives_pass(
    client: Client, monkeypatch: pytest.MonkeyPatch, local_steps: int
) -> None:
    X, y = make_sparse_classification(3_000, 2**9, nnz_per_row=8, chunks=3_000, random_state=2)
    X, y = client.persist([X, y])
    exact = _fit(X, y, local_steps=local_steps)
    # the exact objective's pass must not run: it is what the option saves
    monkeypatch.setattr(SOLVER_MODULE, "_objective", _no_objective_pass)
    progressive = _fit(X, y, local_steps=local_steps, objective="progressive")
    np.testing.assert_allclose(_parameters(progressive), _parameters(exact), rtol=0, atol=1e-10)
    estimated = progressive.history_["objective"].to_numpy()
    measured = exact.history_["objective"].to_numpy()
    # each batch's loss is taken before its own step, as if held out: above the exact objective, by a small
    # part of the fit's whole decrease from log 2 (zeros) once it settles
    assert np.all(estimated > measured), (estimated, measured)
    decrease = np.log(2.0) - measured[-1]
    assert estimated[-1] - measured[-1] < 0.2 * decrease, (estimated, measured)


def _no_objective_pass(*args, **kwargs):
    raise AssertionError("objective='progressive' ran the exact objective's pass")


@pytest.mark.parametrize("local_steps", [1, 8])
def test_a_still_model_has_its_exact_objective(client: Client, local_steps: int) -> None:
    # a rate so small that the parameters do not move: each batch's loss is taken with the start's zeros, so
    # the estimate must be the exact objective (every weighted row counted once, on both workers)
    X, y = make_sparse_classification(3_000, 2**9, nnz_per_row=8, chunks=1_000, random_state=4)
    weight = da.from_array(np.random.default_rng(0).uniform(0.5, 2.0, 3_000), chunks=1_000)
    options = {"learning_rate": 1e-12, "local_steps": local_steps, "batch_size": 64}
    fits = {}
    for objective in ("exact", "progressive"):
        model = LogisticRegression(
            solver="sgd",
            model_partitions=2,
            max_iter=2,
            tol=0,
            random_state=0,
            solver_options={**options, "objective": objective},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits[objective] = model.fit(X, y, sample_weight=weight).history_["objective"]
    np.testing.assert_allclose(fits["progressive"], fits["exact"], rtol=1e-9)
    np.testing.assert_allclose(fits["exact"], np.log(2.0), rtol=1e-9)


def test_tol_stops_on_the_progressive_objective(client: Client) -> None:
    X, y = make_sparse_classification(3_000, 2**9, nnz_per_row=8, chunks=1_500, random_state=2)
    model = _fit(X, y, tol=1e-2, max_iter=50, objective="progressive")
    history = model.history_["objective"].to_numpy()
    assert model.n_iter_ < 50
    assert abs(history[-2] - history[-1]) <= 1e-2 * max(1.0, abs(history[-1]))
    changes = np.abs(np.diff(history[:-1])) / np.maximum(1.0, np.abs(history[1:-1]))
    assert np.all(changes > 1e-2)  # it stopped at the first small change


def test_an_unknown_objective_is_refused(client: Client) -> None:
    X, y = make_sparse_classification(200, 2**6, nnz_per_row=5, chunks=100, random_state=0)
    with pytest.raises(ValueError, match=r"objective must be one of \['exact', 'progressive'\]"):
        _fit(X, y, objective="estimated")
