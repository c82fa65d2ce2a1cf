"""Full-batch solvers over the partitioned parameter store (issue 13): the vector-free L-BFGS, gradient
descent, and FISTA for L1 and elastic-net penalties; the optimum, the shards, the traffic.

Real two-process cluster (the session's LocalCluster), one client for the module, small sparse data; the
optimum is compared with scikit-learn's ``LogisticRegression`` on the same CSR rows.
"""

from __future__ import annotations

import os
import tracemalloc
import warnings
from collections.abc import Iterator
from typing import Any

import dask
import numpy as np
import pytest
import scipy.sparse as sp
from distributed import Client, LocalCluster
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from daskml_lab.data import make_sparse_classification
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression, PartitionedCoefficients
from daskml_lab.solvers import partitioned_lbfgs, partitioned_proximal
from daskml_lab.solvers.partitioned_lbfgs import _two_loop

pytestmark = pytest.mark.cluster

C = 0.5
# 4 row blocks over the 2 workers; the L-BFGS iterations (one round trip each) grow with the rows, the
# distribution does not need more of them
N_ROWS, N_FEATURES, CHUNK = 2_000, 2**10, 500


@pytest.fixture(scope="module")
def lbfgs_client(local_cluster: LocalCluster) -> Iterator[Client]:
    with Client(local_cluster) as client:
        yield client


@pytest.fixture(scope="module")
def binary_data(lbfgs_client: Client) -> tuple[Any, Any, sp.csr_matrix, np.ndarray]:
    X, y = make_sparse_classification(N_ROWS, N_FEATURES, nnz_per_row=15, chunks=CHUNK, random_state=0)
    X, y = X.persist(), y.persist()
    return X, y, X.compute().tocsr(), y.compute()


def _objective(
    coef: np.ndarray, intercept: np.ndarray, X: sp.csr_matrix, y: np.ndarray, weight=None
) -> float:
    """scikit-learn's objective ``C * sum_i s_i loss_i + ||coef||^2 / 2`` (binary or multinomial)."""
    weight = np.ones(len(y)) if weight is None else weight
    scores = X @ np.atleast_2d(coef).T + intercept
    if scores.shape[1] == 1:
        z = scores[:, 0]
        losses = np.logaddexp(0.0, z) - y * z
    else:
        losses = -log_softmax(scores, axis=1)[np.arange(len(y)), y]
    return float(C * weight @ losses + np.sum(coef**2) / 2)


# ------------------------------------------------------------------------------------ the two-loop recursion
def test_two_loop_from_dot_products_is_the_classic_recursion() -> None:
    rng = np.random.default_rng(0)
    memory, n = 4, 30
    pairs = [2, 3, 0]  # oldest first, in ring slots
    S, Y = np.zeros((memory, n)), np.zeros((memory, n))
    for slot in pairs:
        S[slot] = rng.normal(size=n)
        Y[slot] = S[slot] + 0.3 * rng.normal(size=n)  # s.y > 0
    g = rng.normal(size=n)
    basis = np.vstack([S, Y, g])
    coefficients = _two_loop(basis @ basis.T, pairs, memory)
    # the textbook two-loop recursion on the vectors themselves
    q, alphas = -g.copy(), {}
    for slot in reversed(pairs):
        alphas[slot] = S[slot] @ q / (S[slot] @ Y[slot])
        q -= alphas[slot] * Y[slot]
    q *= S[pairs[-1]] @ Y[pairs[-1]] / (Y[pairs[-1]] @ Y[pairs[-1]])
    for slot in pairs:
        beta = Y[slot] @ q / (S[slot] @ Y[slot])
        q += (alphas[slot] - beta) * S[slot]
    np.testing.assert_allclose(coefficients @ basis, q, rtol=1e-12, atol=1e-12)
    # no pair: the steepest descent direction of unit length
    first = _two_loop(basis @ basis.T, [], memory) @ basis
    np.testing.assert_allclose(first, -g / np.linalg.norm(g), rtol=1e-12)


# ------------------------------------------------------------------------------------------------ optimum
def test_reaches_sklearn_optimum_with_1_2_and_4_shards(binary_data: tuple) -> None:
    X, y, X_np, y_np = binary_data
    reference = SkLogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X_np, y_np)
    best = _objective(reference.coef_, reference.intercept_, X_np, y_np)
    fitted = {}
    for shards in (1, 2, 4):
        model = LogisticRegression(C=C, solver="lbfgs", model_partitions=shards, tol=1e-7, max_iter=500)
        model.fit(X, y)
        assert isinstance(model.coef_, np.ndarray)
        assert model.coef_.shape == (1, N_FEATURES)
        ours = _objective(model.coef_, model.intercept_, X_np, y_np)
        assert (ours - best) / best < 1e-6, (shards, ours, best)
        # the history's objective is the exact objective of the returned model (the estimator's is divided
        # by C * n_samples)
        assert model.history_["objective"].iloc[-1] * C * len(y_np) == pytest.approx(ours, rel=1e-10)
        fitted[shards] = (ours, model.coef_)
    for shards in (2, 4):
        assert abs(fitted[shards][0] - fitted[1][0]) / fitted[1][0] < 1e-8
        np.testing.assert_allclose(fitted[shards][1], fitted[1][1], atol=1e-4)
    np.testing.assert_allclose(fitted[1][1], reference.coef_, atol=1e-3)


def test_multinomial_weighted_without_intercept(lbfgs_client: Client) -> None:
    # 4 blocks of rows and weights; fewer rows, fewer L-BFGS round trips
    X, y = make_sparse_classification(1_000, 2**10, nnz_per_row=10, n_classes=3, chunks=250, random_state=4)
    weight = np.random.default_rng(1).uniform(0.2, 2.0, size=1_000)
    X_np, y_np = X.compute().tocsr(), y.compute()
    reference = SkLogisticRegression(C=C, fit_intercept=False, tol=1e-10, max_iter=10_000)
    reference.fit(X_np, y_np, sample_weight=weight)
    model = LogisticRegression(
        C=C, fit_intercept=False, solver="lbfgs", model_partitions=3, tol=1e-9, max_iter=500
    )
    model.fit(X, y, sample_weight=dask.array.from_array(weight, chunks=250))
    assert model.coef_.shape == (3, 2**10)
    np.testing.assert_array_equal(model.intercept_, np.zeros(3))
    best = _objective(reference.coef_, 0.0, X_np, y_np, weight)
    ours = _objective(model.coef_, 0.0, X_np, y_np, weight)
    assert (ours - best) / best < 1e-6, (ours, best)
    np.testing.assert_array_equal(model.predict(X).compute(), reference.predict(X_np))


def test_gradient_descent_takes_the_steps_of_the_replicated_gd(binary_data: tuple) -> None:
    # the same Armijo rule on the same objective: the same accepted steps, objectives and coefficients
    X, y, X_np, y_np = binary_data
    settings = {"C": C, "solver": "gd", "tol": 1e-3, "max_iter": 25}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 25 steps: far from tol, on purpose
        replicated = LogisticRegression(**settings).fit(X, y)
        fitted = {s: LogisticRegression(model_partitions=s, **settings).fit(X, y) for s in (1, 3)}
    for model in fitted.values():
        assert model.n_iter_ == replicated.n_iter_ == 25
        np.testing.assert_allclose(model.history_["step_size"], replicated.history_["step_size"])
        np.testing.assert_allclose(model.history_["objective"], replicated.history_["objective"], rtol=1e-10)
        np.testing.assert_allclose(model.coef_, replicated.coef_, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(model.intercept_, replicated.intercept_, rtol=1e-8)
    ours = _objective(fitted[3].coef_, fitted[3].intercept_, X_np, y_np)
    assert fitted[3].history_["objective"].iloc[-1] * C * len(y_np) == pytest.approx(ours, rel=1e-10)


def test_gradient_descent_refuses_bad_line_search_constants(binary_data: tuple) -> None:
    X, y, _, _ = binary_data
    model = LogisticRegression(solver="gd", model_partitions=2, solver_options={"shrink": 1.5})
    with pytest.raises(ValueError, match=r"gd: need 0 < shrink < 1"):
        model.fit(X, y)


# ---------------------------------------------------------------------------------- traffic and memory
def test_each_iteration_moves_the_keys_of_the_blocks_only(binary_data: tuple, lbfgs_client: Client) -> None:
    X, y, X_np, _ = binary_data
    with pytest.warns(ConvergenceWarning, match="max_iter=5 iterations reached"):
        result = partitioned_lbfgs(
            X,
            y,
            None,
            client=lbfgs_client,
            loss="logistic",
            n_outputs=1,
            fit_intercept=True,
            data_scale=C,
            l2=1.0,
            max_iter=5,
        )
    assert len(result.history) == 5
    # each block pulls its distinct columns and the intercept (direction rows), and pushes as many gradient rows
    keys_per_pass = sum(
        len(np.unique(X_np[start : start + CHUNK].indices)) + 1 for start in range(0, X_np.shape[0], CHUNK)
    )
    for record in result.history:
        assert record["keys_pulled"] == keys_per_pass
        assert record["bytes_pulled"] == 16 * keys_per_pass
        assert record["bytes_pushed"] == 16 * keys_per_pass


def test_client_never_holds_a_wide_model(external_scheduler: str) -> None:
    # the scheduler in a process of its own: what this process allocates is the client's alone (an in-process
    # scheduler's own messages, several MB under load, would count too)
    n_features = 2**22  # a float64 vector of this width is 32 MiB
    with Client(external_scheduler) as client:
        X, y = make_sparse_classification(2_000, n_features, nnz_per_row=10, chunks=1_000, random_state=3)
        tracemalloc.start()
        try:
            with pytest.warns(ConvergenceWarning, match="max_iter=2 iterations reached"):
                result = partitioned_lbfgs(
                    X,
                    y,
                    None,
                    client=client,
                    loss="logistic",
                    n_outputs=1,
                    fit_intercept=True,
                    data_scale=1.0,
                    l2=1.0,
                    max_iter=2,
                    memory=2,
                    gather=False,
                )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        with result.store as store:
            stats = store.stats()
            assert all(s["n_gathers"] == 0 for s in stats)
            assert [s["n_keys"] for s in stats] == [2**21 + 1, 2**21]
            assert peak < n_features * 8 / 4, peak


def test_a_large_model_stays_in_its_shards_and_predicts(binary_data: tuple) -> None:
    X, y, X_np, _ = binary_data
    with dask.config.set({"daskml_lab.solvers.store.max_gather_bytes": N_FEATURES * 8 // 2}):
        model = LogisticRegression(C=C, solver="lbfgs", model_partitions=2, tol=1e-6, max_iter=200).fit(X, y)
    assert isinstance(model.coef_, PartitionedCoefficients)
    coef = model.coef_.to_numpy(max_bytes=2**20)
    twin = SkLogisticRegression()
    twin.coef_, twin.intercept_, twin.classes_ = coef, model.intercept_, model.classes_
    np.testing.assert_allclose(model.decision_function(X).compute(), twin.decision_function(X_np), atol=1e-12)


# ------------------------------------------------------------------------------------------- bad settings
def test_unknown_option_names_the_lbfgs_options(binary_data: tuple) -> None:
    X, y, _, _ = binary_data
    model = LogisticRegression(solver="lbfgs", model_partitions=2, solver_options={"batch_size": 10})
    options = r"\['class_partitions', 'ftol', 'max_line_search', 'memory'\]"
    with pytest.raises(ValueError, match=rf"partitioned 'lbfgs' .* Its options are {options}"):
        model.fit(X, y)


def test_a_lost_parameter_shard_gives_a_clear_error() -> None:
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        X, y = make_sparse_classification(2_000, 2**10, nnz_per_row=5, chunks=500, random_state=0)
        victim = sorted(client.run(os.getpid))[1]

        def kill_after_first_iteration(record: dict) -> None:
            if record["iteration"] == 1:
                client.run(os._exit, 1, workers=[victim], on_error="ignore")

        lost = r"partitioned lbfgs: worker\(s\) .* parameter shard\(s\) \[1\]"
        with pytest.raises(RuntimeError, match=lost):
            partitioned_lbfgs(
                X,
                y,
                None,
                client=client,
                loss="logistic",
                n_outputs=1,
                fit_intercept=True,
                data_scale=1.0,
                l2=1.0,
                tol=1e-12,
                max_iter=50,
                callback=kill_after_first_iteration,
            )


# ------------------------------------------------------------------------------------- proximal (L1, elastic net)
def test_proximal_elastic_net_reaches_sklearn_saga(lbfgs_client: Client) -> None:
    # one block per worker; FISTA's iterations grow with C * n_rows (the conditioning): 300 rows take ~60
    # round trips instead of ~200, with a support of about a quarter of the 256 features
    X, y = make_sparse_classification(300, 2**8, nnz_per_row=8, chunks=150, random_state=0)
    X_np, y_np = X.compute().tocsr(), y.compute()
    reference = SkLogisticRegression(C=C, l1_ratio=0.5, solver="saga", tol=1e-9, max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's own deprecation notes on penalty/l1_ratio
        reference.fit(X_np, y_np)
    model = LogisticRegression(
        C=C, l1_ratio=0.5, solver="proximal", model_partitions=2, tol=1e-5, max_iter=2_000
    )
    model.fit(X, y)

    def objective(coef: np.ndarray, intercept: float) -> float:
        z = X_np @ coef + intercept
        return float(
            C * np.sum(np.logaddexp(0.0, z) - y_np * z) + 0.5 * np.abs(coef).sum() + 0.25 * coef @ coef
        )

    ours = objective(model.coef_[0], model.intercept_[0])
    best = objective(reference.coef_[0], reference.intercept_[0])
    assert (ours - best) / best < 2e-5, (ours, best)
    # the L1 part zeroes coefficients in the shards: nearly the same support as scikit-learn's
    assert np.count_nonzero(model.coef_) < model.coef_.size
    assert (np.sign(model.coef_) != np.sign(reference.coef_)).sum() <= 3
    assert model.history_["objective"].iloc[-1] * C * len(y_np) == pytest.approx(ours, rel=1e-10)


def test_proximal_steps_do_not_depend_on_the_number_of_shards(
    binary_data: tuple, lbfgs_client: Client
) -> None:
    X, y, _, _ = binary_data
    histories = {}
    for shards in (1, 3):
        with pytest.warns(ConvergenceWarning, match="max_iter=15 iterations reached"):
            result = partitioned_proximal(
                X,
                y,
                None,
                client=lbfgs_client,
                loss="logistic",
                n_outputs=1,
                fit_intercept=True,
                data_scale=C,
                l2=0.0,
                l1=1.0,
                n_partitions=shards,
                max_iter=15,
            )
        histories[shards] = (np.array([r["objective"] for r in result.history]), result.W)
    np.testing.assert_allclose(histories[3][0], histories[1][0], rtol=1e-12)
    np.testing.assert_allclose(histories[3][1], histories[1][1], rtol=1e-9, atol=1e-12)
    assert np.all(np.diff(histories[1][0][:2]) <= 0)  # the first steps decrease the objective
