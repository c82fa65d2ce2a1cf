"""What one lockstep round of the logistic path costs: no pass for a point already evaluated, and the small
parameters and results travel with the tasks (the big ones through graph keys and a tree of sums).

The answers stay scikit-learn's (``tests/test_model_selection_paths.py``); these tests check that the rounds
saved change nothing: the same iterates as scipy's L-BFGS-B run alone along each fold's path.
"""

from __future__ import annotations

import itertools

import dask
import dask.array as da
import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.datasets import make_classification

from daskml_lab.solvers import FoldedProblem, _folded, lockstep_lbfgs_paths

pytestmark = pytest.mark.timeout(120)


def _logistic_data_term(X, y):
    sign = 2.0 * y - 1.0

    def data_term(W):
        z = X @ W[:-1, 0] + W[-1, 0]
        margin = sign * z
        grad_z = -sign / (1.0 + np.exp(margin))
        grad = np.concatenate([X.T @ grad_z, [grad_z.sum()]])
        return float(np.logaddexp(0, -margin).sum()), grad[:, None]

    return data_term


def test_a_point_starting_where_the_last_stopped_costs_no_pass():
    X, y = make_classification(n_samples=300, n_features=4, random_state=0)
    folds = [_logistic_data_term(X[f::3], y[f::3]) for f in range(3)]
    n_train = [len(y[f::3]) for f in range(3)]
    Cs = np.logspace(-3, 4, 8)  # the weakest penalties converge at once from the previous solution
    asked: list[tuple[int, np.ndarray]] = []

    def evaluate(batch):
        asked.extend((f, W.copy()) for f, W in batch.items())
        return {f: folds[f](W) for f, W in batch.items()}

    result = lockstep_lbfgs_paths(
        evaluate,
        n_folds=3,
        n_params=5,
        n_outputs=1,
        n_features=4,
        data_scales=[1.0 / n for n in n_train],
        l2_path=[[1.0 / (C * n) for C in Cs] for n in n_train],
        tol=1e-4,
    )
    options = {"maxiter": 100, "maxcor": 10, "maxls": 50, "gtol": 1e-4, "ftol": 64 * np.finfo(float).eps}
    for f in range(3):
        # the reference: scipy alone along the path, each point warm-started, every evaluation a pass
        x, n_calls, n_repeated = np.zeros(5), 0, 0
        for p, C in enumerate(Cs):
            l2, scale = 1.0 / (C * n_train[f]), 1.0 / n_train[f]

            def objective(x, l2=l2, scale=scale, data_term=folds[f]):
                nonlocal n_calls
                n_calls += 1
                value, grad = data_term(x[:, None])
                grad = scale * grad[:, 0]
                grad[:4] += l2 * x[:4]
                return scale * value + 0.5 * l2 * x[:4] @ x[:4], grad

            reference = minimize(objective, x, jac=True, method="L-BFGS-B", options=options)
            n_repeated += p > 0  # its first evaluation is at the previous point's solution
            x = reference.x
            # the same iterates, bit for bit
            np.testing.assert_array_equal(result.coefs[f, p, :, 0], reference.x)
            assert result.n_iter[f, p] == reference.nit
        assert result.n_evaluations[f] == n_calls - n_repeated
        mine = [W for g, W in asked if g == f]
        assert not any(np.array_equal(a, b) for a, b in itertools.pairwise(mine))
    assert (result.n_iter[:, -1] == 0).all()  # the last point costs no pass at all
    assert result.n_rounds == result.n_evaluations.max()


def test_big_parameters_and_results_take_graph_keys_and_a_tree_with_the_same_values(monkeypatch):
    X, y = make_classification(n_samples=400, n_features=6, random_state=3)
    roles = np.stack([np.arange(400) % 4 == f for f in range(4)], axis=1).astype(np.int8)  # 1 = test rows
    Xd, yd = da.from_array(X, chunks=50), da.from_array(y, chunks=50)
    rd = da.from_array(roles, chunks=(50, 4))
    params = {f: np.random.default_rng(f).normal(size=(7, 1)) for f in range(4)}
    with dask.config.set(scheduler="sync"), FoldedProblem(Xd, yd, rd) as problem:
        small = problem.loss_grad(params)
        scores = problem.test_scores(np.stack([params[f][None] for f in range(4)]), "log_loss")
        monkeypatch.setattr(_folded, "_EMBED_BYTES", 0)
        monkeypatch.setattr(_folded, "_GATHER_BYTES", 0)
        graph_keys = []
        real_compute = dask.compute

        def recording_compute(*args, **kwargs):
            graph_keys.extend(str(key) for arg in args for key in dict(arg.__dask_graph__()))
            return real_compute(*args, **kwargs)

        monkeypatch.setattr(_folded.dask, "compute", recording_compute)
        big = problem.loss_grad(params)
        big_scores = problem.test_scores(np.stack([params[f][None] for f in range(4)]), "log_loss")
    assert any(key.startswith("daskml-cv-path-params-") for key in graph_keys)
    assert any(key.startswith("daskml-cv-path-sum-") for key in graph_keys)
    for f in range(4):
        assert big[f][0] == pytest.approx(small[f][0], rel=1e-13)
        np.testing.assert_allclose(big[f][1], small[f][1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(big_scores, scores, rtol=1e-13)


def test_the_folds_step_with_one_blas_thread():
    # scipy's L-BFGS-B calls BLAS on d-vectors; spinning OpenBLAS threads there took the workers' cores
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen: list[int] = []

    def quadratic(batch):
        seen.extend(
            info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"
        )
        return {f: (0.5 * float(np.sum((W - f) ** 2)), W - f) for f, W in batch.items()}

    lockstep_lbfgs_paths(
        quadratic,
        n_folds=2,
        n_params=2,
        n_outputs=1,
        n_features=1,
        data_scales=[1.0] * 2,
        l2_path=[[0.0]] * 2,
    )
    assert seen
    assert set(seen) == {1}


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("metric", ["accuracy", "log_loss"])
def test_score_kernel_is_each_folds_metric_on_its_test_rows(n_classes, metric):
    from scipy.special import expit, softmax
    from sklearn.metrics import accuracy_score, log_loss

    rng = np.random.default_rng(n_classes)
    X, y = rng.normal(size=(120, 4)), rng.integers(0, n_classes, size=120)
    roles = rng.integers(0, 3, size=(120, 3)).astype(np.int8)
    k, n_points = (1 if n_classes == 2 else n_classes), 4
    W = rng.normal(size=(5, 3 * n_points * k))  # fold-major: fold f, point p at column block f * n_points + p
    sums = _folded._folds_score_block(
        X, y, roles, W, [0, 1, 2], n_points=n_points, n_outputs=k, fit_intercept=True, metric=metric
    )
    for f in range(3):
        test = roles[:, f] == 1
        for p in range(n_points):
            block = W[:, (f * n_points + p) * k : (f * n_points + p + 1) * k]
            z = X[test] @ block[:4] + block[4]
            proba = np.column_stack([1 - expit(z[:, 0]), expit(z[:, 0])]) if k == 1 else softmax(z, axis=1)
            if metric == "accuracy":
                expected = accuracy_score(y[test], proba.argmax(axis=1), normalize=False)
            else:
                expected = log_loss(y[test], proba, normalize=False, labels=range(n_classes))
            assert sums[f, p] == pytest.approx(expected, rel=1e-10)
