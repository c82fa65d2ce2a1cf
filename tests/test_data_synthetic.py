"""make_classification() and make_regression(): scikit-learn's distributions, block by block, lazily."""

from __future__ import annotations

import dask
import numpy as np
import pytest
from sklearn.datasets import make_classification as sk_make_classification
from sklearn.datasets import make_regression as sk_make_regression
from sklearn.linear_model import LogisticRegression

from daskml_lab._compat import unique_fused_keys
from daskml_lab.data import make_classification, make_regression
from daskml_lab.data.synthetic import _hypercube_vertices
from daskml_lab.testing import raise_if_computes


def computed(*arrays, scheduler="sync"):
    kwargs = {"scheduler": scheduler} if scheduler else {}
    with unique_fused_keys():  # several collections at once: see daskml_lab._compat.unique_fused_keys
        return dask.compute(*arrays, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# shapes, dtypes, chunks, reproducibility


def test_shapes_dtypes_and_default_chunks_without_computing():
    with raise_if_computes(max_computes=0):
        X, y = make_classification(250_000, 7, random_state=0)
        Xr, yr = make_regression(250_000, 7, random_state=0, dtype=np.float32)
    assert X.shape == (250_000, 7)
    assert X.chunks == ((100_000, 100_000, 50_000), (7,))
    assert y.chunks == X.chunks[:1]
    assert (X.dtype, y.dtype) == (np.float64, np.int64)
    assert (Xr.dtype, yr.dtype) == (np.float32, np.float32)


def test_blocks_match_their_metadata_and_float32_is_honoured():
    X, y = make_classification(1000, 6, chunks=(100, 400, 0, 500), dtype=np.float32, random_state=0)
    blocks = computed(*[X.blocks[i] for i in range(4)], *[y.blocks[i] for i in range(4)])
    assert [b.shape for b in blocks[:4]] == [(100, 6), (400, 6), (0, 6), (500, 6)]
    assert [b.shape for b in blocks[4:]] == [(100,), (400,), (0,), (500,)]
    assert all(b.dtype == np.float32 for b in blocks[:4])
    assert all(b.dtype == np.int64 for b in blocks[4:])
    # row blocks are row-major, shuffled features or not (column fancy indexing would make them column-major)
    for shuffle in (True, False):
        X, _ = make_classification(300, 6, chunks=100, shuffle=shuffle, random_state=0)
        with unique_fused_keys():  # the blocks as the tasks make them (no concatenation on the way back)
            raw = dask.compute(*X.to_delayed().ravel(), scheduler="sync")
        assert all(block.flags.c_contiguous for block in raw)


def test_hundred_million_rows_are_described_without_computing():
    with raise_if_computes(max_computes=0):
        X, _ = make_classification(100_000_000, 20, n_informative=5, random_state=0)
    assert X.numblocks == (1000, 1)
    graph = dict(X.__dask_graph__())
    model_keys = [k for k in graph if isinstance(k, str) and k.startswith("daskml-make-classification-model")]
    assert len(model_keys) == 1  # the model enters the graph once, every block task reads that key
    generators = [k for k in graph if isinstance(k, tuple) and k[0].startswith("daskml-make-classification-")]
    assert len(generators) == 2000  # one generator task and one X task per block


def test_same_seed_and_chunks_give_identical_data():
    a = computed(*make_classification(2000, 8, chunks=300, random_state=5))
    b = computed(*make_classification(2000, 8, chunks=300, random_state=5))
    c = computed(*make_classification(2000, 8, chunks=300, random_state=6))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    r1 = computed(*make_regression(500, 5, chunks=123, noise=1.0, random_state=5))
    r2 = computed(*make_regression(500, 5, chunks=123, noise=1.0, random_state=5))
    np.testing.assert_array_equal(r1[0], r2[0])
    np.testing.assert_array_equal(r1[1], r2[1])


def test_other_chunks_give_another_sample_with_the_same_cluster_sizes():
    # By design block contents depend on the block layout; the exact per-cluster row counts do not.
    kwargs = {"n_classes": 3, "n_informative": 3, "weights": [0.5, 0.3], "flip_y": 0.0, "random_state": 0}
    X1, y1 = computed(*make_classification(3000, 6, chunks=1000, **kwargs))
    X2, y2 = computed(*make_classification(3000, 6, chunks=700, **kwargs))
    assert not np.array_equal(X1, X2)
    np.testing.assert_array_equal(np.bincount(y1), np.bincount(y2))


@pytest.mark.cluster
def test_generated_on_a_cluster_equals_the_synchronous_result(client):
    X, y = make_classification(5000, 10, chunks=800, random_state=3)
    Xr, yr, coef = make_regression(3000, 6, chunks=500, noise=0.5, coef=True, random_state=3)
    on_cluster = dask.compute(X, y, Xr, yr)
    local = dask.compute(X, y, Xr, yr, scheduler="sync")
    for a, b in zip(on_cluster, local, strict=True):
        np.testing.assert_array_equal(a, b)
    # persisted on the workers, then reused
    Xp, _ = dask.persist(X, y)
    np.testing.assert_array_equal(Xp.compute(), local[0])
    assert coef.shape == (6,)


# ---------------------------------------------------------------------------------------------------------
# make_classification against scikit-learn


@pytest.mark.parametrize(
    "params",
    [
        {"n_classes": 2, "weights": [0.9]},
        {"n_classes": 3, "n_clusters_per_class": 1, "weights": [0.2, 0.5, 0.3], "n_informative": 3},
        {"n_classes": 4, "n_informative": 4, "n_clusters_per_class": 3},
    ],
)
def test_class_counts_equal_sklearn_exactly_without_label_noise(params):
    _, y = make_classification(10_001, 10, flip_y=0.0, chunks=2500, random_state=0, **params)
    _, y_ref = sk_make_classification(10_001, 10, flip_y=0.0, random_state=0, **params)
    np.testing.assert_array_equal(np.bincount(y.compute()), np.bincount(y_ref))


def test_unshuffled_labels_follow_sklearn_cluster_layout():
    _, y = make_classification(1000, 5, flip_y=0.0, shuffle=False, chunks=128, random_state=0)
    _, y_ref = sk_make_classification(1000, 5, flip_y=0.0, shuffle=False, random_state=0)
    np.testing.assert_array_equal(y.compute(), y_ref)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"n_classes": 3, "n_informative": 4, "class_sep": 0.8},
        {"weights": [0.8], "flip_y": 0.05, "n_informative": 5, "n_redundant": 3, "n_repeated": 2},
    ],
)
def test_logistic_regression_reaches_sklearn_like_accuracy(params):
    # Mean held-out accuracy (500 rows) over 24 seeds of a LogisticRegression trained on 1,500 rows. Accuracy
    # varies by 0.04-0.07 between seeds of either generator (standard error of each mean <= 0.015; over 150
    # seeds the means agree within 0.01), so the two means must agree within 0.05.
    def accuracy(X, y):
        model = LogisticRegression(max_iter=1000).fit(X[:1500], y[:1500])
        return model.score(X[1500:], y[1500:])

    seeds = range(24)
    ours = [
        accuracy(*computed(*make_classification(2000, 20, chunks=500, random_state=s, **params)))
        for s in seeds
    ]
    theirs = [accuracy(*sk_make_classification(2000, 20, random_state=s, **params)) for s in seeds]
    assert abs(np.mean(ours) - np.mean(theirs)) < 0.05, (np.mean(ours), np.mean(theirs))


def test_feature_roles_without_shuffle():
    n_inf, n_red, n_rep = 3, 2, 2
    X, y = computed(
        *make_classification(
            3000,
            10,
            n_informative=n_inf,
            n_redundant=n_red,
            n_repeated=n_rep,
            shuffle=False,
            chunks=700,
            random_state=1,
        )
    )
    useful = X[:, : n_inf + n_red]
    assert np.linalg.matrix_rank(useful, tol=1e-8 * np.abs(useful).max()) == n_inf  # redundant = combinations
    for column in range(n_inf + n_red, n_inf + n_red + n_rep):  # repeated = copies of useful columns
        assert any(np.array_equal(X[:, column], X[:, k]) for k in range(n_inf + n_red))
    noise = X[:, n_inf + n_red + n_rep :]
    assert np.all(np.abs(noise.mean(axis=0)) < 0.1)
    assert np.all(np.abs(noise.std(axis=0) - 1) < 0.1)
    assert np.all(np.abs(np.corrcoef(noise.T, y)[-1, :-1]) < 0.1)


def test_shift_scale_and_polytope_options():
    X, _ = computed(
        *make_classification(2000, 5, shift=None, scale=None, hypercube=False, chunks=500, random_state=0)
    )
    spreads = X.std(axis=0)
    assert spreads.max() / spreads.min() > 2  # scales drawn in [1, 101] per feature
    X2, _ = computed(
        *make_classification(500, 4, shift=10.0, scale=[1, 2, 3, 4], shuffle=False, random_state=0)
    )
    X3, _ = computed(*make_classification(500, 4, shift=0.0, scale=1.0, shuffle=False, random_state=0))
    np.testing.assert_allclose(X2, (X3 + 10.0) * np.array([1, 2, 3, 4]))


def test_hypercube_vertices_are_distinct_in_high_dimensions():
    rng = np.random.default_rng(0)
    for n_vertices, n_dims in ((4, 2), (6, 3), (50, 12), (40, 35)):
        vertices = _hypercube_vertices(n_vertices, n_dims, rng)
        assert vertices.shape == (n_vertices, n_dims)
        assert set(np.unique(vertices)) <= {0, 1}
        assert len({tuple(v) for v in vertices}) == n_vertices


# ---------------------------------------------------------------------------------------------------------
# make_regression


def test_regression_coef_recovers_y_without_noise():
    X, y, coef = make_regression(1000, 12, n_informative=4, bias=3.5, coef=True, chunks=300, random_state=0)
    X_np, y_np = computed(X, y)
    np.testing.assert_allclose(y_np, X_np @ coef + 3.5, rtol=1e-12, atol=1e-9)
    assert np.count_nonzero(coef) == 4
    assert np.all((coef >= 0) & (coef <= 100))
    X32, y32, coef32 = make_regression(
        1000, 12, n_informative=4, bias=3.5, coef=True, chunks=300, dtype=np.float32, random_state=0
    )
    np.testing.assert_array_equal(coef32, coef)
    np.testing.assert_allclose(y32.compute(), X32.compute() @ coef + 3.5, rtol=1e-4, atol=1e-3)


def test_regression_unshuffled_informative_features_come_first():
    _, _, coef = make_regression(50, 10, n_informative=3, shuffle=False, coef=True, random_state=0)
    assert np.all(coef[:3] > 0)
    assert np.all(coef[3:] == 0)
    _, _, coef_all = make_regression(50, 3, n_informative=10, coef=True, random_state=0)
    assert np.count_nonzero(coef_all) == 3  # n_informative is capped at n_features, as in scikit-learn


def test_regression_noise_and_feature_distribution():
    X, y, coef = make_regression(20_000, 5, noise=2.0, bias=-1.0, coef=True, chunks=4000, random_state=0)
    X_np, y_np = computed(X, y)
    residual = y_np - (X_np @ coef - 1.0)
    assert abs(residual.std() - 2.0) < 0.1
    assert abs(residual.mean()) < 0.1
    np.testing.assert_allclose(X_np.std(axis=0), 1.0, atol=0.05)
    # the same scale of targets as scikit-learn's generator with the same parameters
    _, y_ref = sk_make_regression(20_000, 5, noise=2.0, random_state=0)
    assert 0.3 < y_np.std() / y_ref.std() < 3


def test_regression_effective_rank_matches_sklearn_singular_values():
    X, _ = make_regression(4000, 40, effective_rank=5, chunks=1000, random_state=0)
    ours = np.linalg.svd(X.compute(), compute_uv=False)
    X_ref, _ = sk_make_regression(4000, 40, effective_rank=5, random_state=0)
    theirs = np.linalg.svd(X_ref, compute_uv=False)
    np.testing.assert_allclose(ours[:15], theirs[:15], rtol=0.1)


# ---------------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"n_samples": 0},
            ValueError,
            r"The 'n_samples' parameter of make_classification must be an int in the",
        ),
        (
            {"n_samples": 10.0},
            TypeError,
            "The 'n_samples' parameter of make_classification must be an int, got",
        ),
        ({"n_informative": 0}, ValueError, r"'n_informative' parameter .* range \[1, inf\)"),
        ({"n_redundant": -1}, ValueError, r"'n_redundant' parameter .* range \[0, inf\)"),
        (
            {"flip_y": 1.5},
            ValueError,
            r"'flip_y' parameter of make_classification must be a float in the range \[0.0, 1.0\]",
        ),
        ({"class_sep": 0.0}, ValueError, r"'class_sep' .* range \(0.0, inf\)"),
        (
            {"class_sep": "wide"},
            TypeError,
            "'class_sep' parameter of make_classification must be a real number",
        ),
        (
            {"n_features": 3, "n_informative": 2, "n_redundant": 2},
            ValueError,
            "must sum to less than the number",
        ),
        (
            {"n_classes": 3, "n_clusters_per_class": 2, "n_informative": 2},
            ValueError,
            r"must be smaller or equal 2\*\*n_informative",
        ),
        (
            {"weights": [0.1, 0.2, 0.7]},
            ValueError,
            "Weights specified but incompatible with number of classes",
        ),
        ({"weights": [-0.5]}, ValueError, "weights must be finite and non-negative"),
        (
            {"shift": [1.0, 2.0]},
            ValueError,
            r"shift must be a number, None or an array of shape \(n_features,\)",
        ),
        ({"scale": 0.0}, ValueError, "scale must be finite and positive"),
        ({"chunks": 0}, ValueError, "chunks must be a positive number of rows per block"),
        ({"chunks": (50, 40)}, ValueError, "must be non-negative and sum to n_samples=100"),
        ({"chunks": "auto"}, TypeError, "chunks must be an int"),
        ({"dtype": np.int32}, ValueError, "dtype must be numpy.float64 or numpy.float32, got int32"),
        ({"dtype": "no-such-type"}, ValueError, "dtype must be numpy.float64 or numpy.float32"),
        ({"random_state": -3}, ValueError, "random_state must be a non-negative int"),
    ],
)
def test_make_classification_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_classification(**{"n_samples": 100, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_targets": 2}, ValueError, "make_regression supports n_targets=1 only, got n_targets=2"),
        (
            {"n_targets": 0},
            ValueError,
            r"'n_targets' parameter of make_regression must be an int in the range \[1",
        ),
        ({"n_informative": -1}, ValueError, "'n_informative' parameter of make_regression"),
        ({"effective_rank": 0}, ValueError, "'effective_rank' parameter of make_regression"),
        ({"tail_strength": 2.0}, ValueError, r"'tail_strength' .* range \[0.0, 1.0\]"),
        (
            {"noise": -1.0},
            ValueError,
            r"'noise' parameter of make_regression must be a float in the range \[0.0, inf\)",
        ),
        ({"bias": float("inf")}, ValueError, "'bias' parameter of make_regression must be a float"),
        ({"bias": None}, TypeError, "'bias' parameter of make_regression must be a real number"),
        ({"chunks": [10, 10]}, ValueError, "sum to n_samples=100"),
    ],
)
def test_make_regression_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_regression(100, 5, **kwargs)
