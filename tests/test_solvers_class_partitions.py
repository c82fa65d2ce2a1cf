"""Partitioning a model over its classes too (issue 13: "multinomial logistic regression with many classes
partitions over classes too"): the shards as a grid of key parts by ranges of classes.

Real two-process cluster (the session's LocalCluster), one client for the module, small data. The layout must
not change the answer: the store's values, the L-BFGS optimum and the predictions are compared across layouts
and with scikit-learn.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from daskml_lab.data import make_sparse_classification
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression, PartitionedCoefficients
from daskml_lab.persistence import load, save
from daskml_lab.solvers import ShardedStore, ShardRule, partitioned_lbfgs, partitioned_sgd
from daskml_lab.solvers._partitioned_fit import class_parts

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def grid_client(local_cluster: LocalCluster) -> Iterator[Client]:
    with Client(local_cluster) as client:
        yield client


def _workers(client: Client) -> list[str]:
    return sorted(client.run(os.getpid))


def _multinomial_objective(W: np.ndarray, X, y: np.ndarray, data_scale: float, l2: float) -> float:
    """``data_scale * sum_i loss_i + l2 / 2 * ||coef||^2`` at ``W`` (feature rows, then the intercept row)."""
    scores = X @ W[:-1] + W[-1]
    losses = -log_softmax(scores, axis=1)[np.arange(len(y)), y]
    return float(data_scale * losses.sum() + l2 / 2 * np.sum(W[:-1] ** 2))


# ------------------------------------------------------------------------------------------------ the rule
@pytest.mark.parametrize(
    ("n_keys", "n_shards", "n_outputs", "n_class_parts"),
    [(10, 4, 5, 2), (7, 3, 3, 3), (17, 6, 1000, 3), (1, 2, 2, 2), (9, 4, 4, 1)],
)
def test_grid_places_every_value_in_exactly_one_shard(
    n_keys: int, n_shards: int, n_outputs: int, n_class_parts: int
) -> None:
    rule = ShardRule(n_keys, n_shards, n_outputs, n_class_parts)
    owner = np.full((n_keys, n_outputs), -1)
    for shard in range(n_shards):
        block = owner[rule.keys_of(shard), rule.columns(shard)]
        assert (block == -1).all(), "a value held by two shards"
        owner[rule.keys_of(shard), rule.columns(shard)] = shard
        assert rule.size(shard) == len(rule.keys_of(shard))
    assert (owner >= 0).all()
    widths = [rule.width(s) for s in range(n_shards)]
    assert max(widths) - min(widths) <= 1  # the class ranges are balanced
    keys = np.array([n_keys - 1, 0, n_keys // 2])
    for part in range(n_class_parts):
        for shard, positions, slots in rule.split(keys, part):
            assert rule.columns(shard) == rule.class_bounds(part)
            np.testing.assert_array_equal(rule.keys_of(shard)[slots], keys[positions])
    assert len(rule.split(keys)) == n_shards


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((10, 3, 4, 2), "positive multiple of the number of class parts"),
        ((10, 4, 1, 2), "at least one class"),
    ],
)
def test_impossible_grids_are_refused(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ShardRule(*args)


# ----------------------------------------------------------------------------------------------- the store
@pytest.mark.parametrize("step_rule", ["sgd", "adagrad", "ftrl"])
def test_values_do_not_depend_on_the_layout(grid_client: Client, step_rule: str) -> None:
    rng = np.random.default_rng(0)
    n_keys, n_outputs = 40, 7
    steps = [(np.unique(rng.integers(0, n_keys, size=9)), rng.normal(size=(9, n_outputs))) for _ in range(6)]
    gathered, pulled = {}, {}
    for n_shards, n_class_parts in ((1, 1), (2, 2), (4, 2), (3, 3)):
        store = ShardedStore.create(
            grid_client,
            n_keys,
            n_outputs,
            workers=_workers(grid_client),
            n_shards=n_shards,
            n_penalised=n_keys - 1,
            step_rule=step_rule,
            learning_rate=0.3,
            l2=0.1,
            n_class_parts=n_class_parts,
        )
        with store:
            for keys, grads in steps:
                store.push(keys, grads[: len(keys)])
            gathered[n_shards, n_class_parts] = store.gather()
            keys = np.array([0, 5, 39, 12])
            parts = [store.view.pull(keys, part=p)[0] for p in store.view.class_parts]
            pulled[n_shards, n_class_parts] = np.hstack(parts)
            stats = store.stats()
            # each shard holds, and each pull moved, its range of classes only (and the slot, 8 bytes)
            for shard, counters in enumerate(stats):
                width = store.view.rule.width(shard)
                assert counters["bytes_pulled"] == counters["keys_pulled"] * (width + 1) * 8
            assert sum(s["n_keys"] for s in stats) == n_keys * n_class_parts
    reference = gathered[1, 1]
    assert np.count_nonzero(reference) > 0
    for layout, values in gathered.items():
        np.testing.assert_allclose(values, reference, rtol=1e-13, atol=1e-15, err_msg=str(layout))
        np.testing.assert_array_equal(pulled[layout], values[[0, 5, 39, 12]])


def test_a_store_seeded_from_another_layout_has_its_values(grid_client: Client) -> None:
    values = np.random.default_rng(3).normal(size=(23, 6))
    workers = _workers(grid_client)
    with ShardedStore.create(grid_client, 23, 6, workers=workers, initial=values) as rows_only:
        with ShardedStore.create(
            grid_client, 23, 6, workers=workers, n_shards=4, n_class_parts=2, initial=rows_only.view
        ) as grid:
            np.testing.assert_array_equal(grid.gather(), values)
            with ShardedStore.create(
                grid_client, 23, 6, workers=workers, n_shards=3, initial=grid.view
            ) as back:
                np.testing.assert_array_equal(back.gather(), values)


# --------------------------------------------------------------------------------------------- the solvers
@pytest.fixture(scope="module")
def many_classes(grid_client: Client) -> tuple:
    """1,200 rows of 24 classes over 2**7 features (``class_partitions="auto"`` splits them from 16 here)."""
    X, y = make_sparse_classification(1_200, 2**7, nnz_per_row=12, n_classes=24, chunks=300, random_state=2)
    X, y = X.persist(), y.persist()
    return X, y, X.compute().tocsr(), y.compute()


def test_lbfgs_reaches_the_same_optimum_whatever_the_class_parts(
    grid_client: Client, many_classes: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y, X_np, y_np = many_classes
    # "auto" splits the classes from 256 on; 16 here, so that 24 classes are split on small data
    monkeypatch.setattr("daskml_lab.solvers._partitioned_fit.AUTO_CLASS_PARTS_MIN_OUTPUTS", 16)
    settings = {"data_scale": 1.0 / len(y_np), "l2": 1e-2}
    fits = {}
    for n_partitions, class_partitions in ((2, 1), (4, "auto")):
        fits[n_partitions, class_partitions] = partitioned_lbfgs(
            X,
            y,
            None,
            client=grid_client,
            loss="multinomial",
            n_outputs=24,
            fit_intercept=True,
            n_partitions=n_partitions,
            class_partitions=class_partitions,
            tol=1e-9,
            max_iter=500,
            **settings,
        )
    objectives = {layout: _multinomial_objective(r.W, X_np, y_np, **settings) for layout, r in fits.items()}
    best = min(objectives.values())
    for layout, value in objectives.items():
        assert (value - best) / best < 1e-8, (layout, objectives)
    # "auto" split the 24 classes over the 4 shards: each held every key for 6 classes
    assert [s["n_keys"] for s in fits[4, "auto"].shard_stats] == [2**7 + 1] * 4
    assert [s["n_keys"] for s in fits[2, 1].shard_stats] == [65, 64]
    # scikit-learn's optimum (C = 1 / (l2 * n): the same objective up to the factor data_scale)
    reference = SkLogisticRegression(C=1 / (1e-2 * len(y_np)), tol=1e-12, max_iter=10_000).fit(X_np, y_np)
    W_sk = np.vstack([reference.coef_.T, reference.intercept_])
    theirs = _multinomial_objective(W_sk, X_np, y_np, **settings)
    assert abs(best - theirs) / theirs < 1e-6, (best, theirs)
    scores = X_np @ fits[4, "auto"].W[:-1] + fits[4, "auto"].W[-1]
    np.testing.assert_array_equal(scores.argmax(axis=1), reference.predict(X_np))


def test_sgd_over_class_parts_pulls_one_range_at_a_time(grid_client: Client) -> None:
    # one row block: one worker runs every step (the shards are on both), so the steps arrive in one order and
    # the layouts must agree to rounding (with two workers their pushes interleave differently in every run)
    X, y = make_sparse_classification(1_200, 2**7, nnz_per_row=12, n_classes=24, chunks=1_200, random_state=2)
    X_np, y_np = X.compute().tocsr(), y.compute()
    settings = {"data_scale": 1.0 / len(y_np), "l2": 1e-3}
    objectives, traffic = {}, {}
    for class_partitions in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 4 epochs: compared, not converged
            result = partitioned_sgd(
                X,
                y,
                None,
                client=grid_client,
                loss="multinomial",
                n_outputs=24,
                fit_intercept=True,
                n_partitions=2,
                class_partitions=class_partitions,
                max_iter=4,
                tol=1e-9,
                random_state=0,
                max_staleness=0,
                batch_size=256,
                **settings,
            )
        objectives[class_partitions] = result.history[-1]["objective"]
        stats = result.shard_stats
        traffic[class_partitions] = [s["bytes_pulled"] / max(s["keys_pulled"], 1) for s in stats]
        np.testing.assert_allclose(
            _multinomial_objective(result.W, X_np, y_np, **settings), objectives[class_partitions], rtol=1e-10
        )
    # the same steps on the same rows: the same objective whatever the layout
    np.testing.assert_allclose(objectives[2], objectives[1], rtol=1e-10)
    start = _multinomial_objective(np.zeros((2**7 + 1, 24)), X_np, y_np, **settings)
    assert objectives[2] < 0.8 * start
    # rows only: every pull brings all 24 classes; two class parts: 12 (bytes per key pulled, with its slot)
    assert traffic[1] == [25 * 8.0, 25 * 8.0]
    assert traffic[2] == [13 * 8.0, 13 * 8.0]


def test_bad_class_partitions_are_refused_before_the_data_are_placed(grid_client: Client) -> None:
    X, y = make_sparse_classification(200, 2**6, nnz_per_row=5, n_classes=4, chunks=100, random_state=0)
    common = {"client": grid_client, "loss": "multinomial", "n_outputs": 4, "fit_intercept": True}
    common.update(data_scale=1.0, l2=1.0)
    for given, match in (
        (3, r"class_partitions=3 cannot split the 4 output\(s\) over 2 parameter shard\(s\)"),
        (0, "must be 'auto' or a positive int"),
        ("rows", "must be 'auto' or a positive int"),
    ):
        with pytest.raises(ValueError, match=match):
            partitioned_sgd(X, y, None, n_partitions=2, class_partitions=given, **common)
    with pytest.raises(ValueError, match=r"at most the number of outputs"):
        partitioned_lbfgs(X, y, None, n_partitions=8, class_partitions=8, **common)


def test_auto_gives_each_shard_a_range_of_classes_from_256_classes_on(grid_client: Client) -> None:
    assert class_parts("s", "auto", 4, grid_client, 255) == 1
    assert class_parts("s", "auto", 4, grid_client, 256) == 4
    assert class_parts("s", "auto", None, grid_client, 1_000) == 2  # one shard per worker
    assert class_parts("s", 2, 4, grid_client, 3) == 2


# ------------------------------------------------------------------------------------------ the estimator
def test_an_estimator_with_class_parts_predicts_from_its_shards(grid_client: Client, tmp_path) -> None:
    X, y = make_sparse_classification(1_000, 2**7, nnz_per_row=10, n_classes=12, chunks=250, random_state=5)
    settings = {"C": 1.0, "solver": "lbfgs", "model_partitions": 2, "tol": 1e-7, "max_iter": 1_000}
    rows_only = LogisticRegression(**settings, solver_options={"class_partitions": 1}).fit(X, y)
    with dask.config.set({"daskml_lab.solvers.store.max_gather_bytes": 2**10}):
        split = LogisticRegression(**settings, solver_options={"class_partitions": 2}).fit(X, y)
    assert isinstance(split.coef_, PartitionedCoefficients)
    assert split.coef_.shape == (12, 2**7)
    assert [s["n_keys"] for s in split.coef_.stats()] == [2**7 + 1, 2**7 + 1]
    # the same optimum, and predictions computed one class range at a time from the shards
    np.testing.assert_allclose(split.coef_.to_numpy(), rows_only.coef_, atol=1e-3)
    np.testing.assert_array_equal(split.predict(X).compute(), rows_only.predict(X).compute())
    np.testing.assert_allclose(
        split.predict_proba(X).compute(), rows_only.predict_proba(X).compute(), atol=1e-4
    )
    # saved from the shards and loaded back into new ones
    with dask.config.set({"daskml_lab.solvers.store.max_gather_bytes": 2**10}):
        loaded = load(save(split, tmp_path / "model.zip"))
        np.testing.assert_array_equal(loaded.predict(X).compute(), split.predict(X).compute())
        loaded.coef_.release()
    split.coef_.release()
