"""daskml_lab.metrics: every score against scikit-learn, on numpy and on dask arrays of several chunkings."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from dask.array.utils import assert_eq
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

import daskml_lab
from daskml_lab import metrics
from daskml_lab.metrics._classification import (
    _accuracy_chunk,
    _accuracy_combine,
    _confusion_chunk,
    _confusion_combine,
)
from daskml_lab.metrics._regression import _r2_agg, _regression_chunk, _regression_combine
from daskml_lab.testing import raise_if_computes

CHUNKINGS = [None, 1000, 97, (400, 0, 350, 250)]  # None: numpy input; (.., 0, ..): an empty block
RTOL = 1e-12
N = 1000


def as_input(array, chunks):
    """numpy (chunks=None) or a dask array with the given row chunks."""
    if chunks is None:
        return array
    block_shape = (chunks,) if array.ndim == 1 else (chunks, -1)
    return da.from_array(array, chunks=block_shape)


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    y = rng.normal(size=N) * 3 + 2
    return y, y + rng.normal(size=N), rng.uniform(0, 2, size=N)


@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(1)
    classes = np.array(["cat", "dog", "emu"])
    y = classes[rng.integers(0, 3, size=N)]
    right = rng.uniform(size=N) < 0.6
    prediction = np.where(right, y, classes[rng.integers(0, 3, size=N)])
    proba = rng.dirichlet([1.0, 1.0, 1.0], size=N)
    return y, prediction, proba, rng.uniform(0, 2, size=N)


# ---------------------------------------------------------------------------------------------------------
# against scikit-learn


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (metrics.r2_score, skm.r2_score),
        (metrics.mean_squared_error, skm.mean_squared_error),
        (metrics.mean_absolute_error, skm.mean_absolute_error),
    ],
)
def test_regression_metrics_match_sklearn(regression, chunks, weighted, ours, theirs):
    y, prediction, weight = regression
    sample_weight = weight if weighted else None
    expected = theirs(y, prediction, sample_weight=sample_weight)
    with raise_if_computes(max_computes=0 if chunks is None else 1):
        result = ours(
            as_input(y, chunks),
            as_input(prediction, chunks),
            sample_weight=None if sample_weight is None else as_input(sample_weight, chunks),
        )
    assert isinstance(result, float)
    assert result == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("chunks", [1000, 97, 7, 1])
def test_r2_is_exact_with_a_large_offset(chunks):
    # A raw sum of squares of y would lose every digit of the noise here; the shifted Chan merge keeps them.
    rng = np.random.default_rng(4)
    y = 1e8 + rng.normal(size=N)
    prediction = y + 0.5 * rng.normal(size=N)
    weight = rng.uniform(0.5, 2, size=N)
    expected = skm.r2_score(y, prediction, sample_weight=weight)
    result = metrics.r2_score(
        as_input(y, chunks), as_input(prediction, chunks), sample_weight=as_input(weight, chunks)
    )
    assert result == pytest.approx(expected, rel=1e-10)
    assert metrics.mean_squared_error(as_input(y, chunks), as_input(prediction, chunks)) == pytest.approx(
        skm.mean_squared_error(y, prediction), rel=1e-10
    )


def test_r2_of_a_constant_target_follows_sklearn():
    y = da.full(10, 2.0, chunks=3)
    assert metrics.r2_score(y, y) == 1.0 == skm.r2_score(np.full(10, 2.0), np.full(10, 2.0))
    assert metrics.r2_score(y, y + 1) == 0.0 == skm.r2_score(np.full(10, 2.0), np.full(10, 3.0))


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_matches_sklearn_with_text_labels(classification, chunks, weighted):
    y, prediction, _, weight = classification
    sample_weight = weight if weighted else None
    expected = skm.accuracy_score(y, prediction, sample_weight=sample_weight)
    with raise_if_computes(max_computes=0 if chunks is None else 1):
        result = metrics.accuracy_score(
            as_input(y, chunks),
            as_input(prediction, chunks),
            sample_weight=None if sample_weight is None else as_input(sample_weight, chunks),
        )
    assert isinstance(result, float)
    assert result == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("labels", [None, ["emu", "cat"], ["emu", "dog", "cat"]])
def test_confusion_matrix_matches_sklearn(classification, chunks, weighted, labels):
    y, prediction, _, weight = classification
    sample_weight = weight if weighted else None
    expected = skm.confusion_matrix(y, prediction, labels=labels, sample_weight=sample_weight)
    with raise_if_computes(max_computes=0 if chunks is None else 1):
        result = metrics.confusion_matrix(
            as_input(y, chunks),
            as_input(prediction, chunks),
            labels=labels,
            sample_weight=None if sample_weight is None else as_input(sample_weight, chunks),
        )
    assert isinstance(result, np.ndarray)
    assert result.dtype == expected.dtype
    np.testing.assert_allclose(result, expected, rtol=RTOL)


def test_confusion_matrix_finds_labels_that_only_some_blocks_hold():
    # Block 1 holds only 0 and 1, block 2 only 2 and 5: the merge aligns them on the union.
    y = np.array([0, 1, 1, 0, 2, 5, 5, 2])
    prediction = np.array([1, 1, 0, 0, 5, 5, 2, 2])
    result = metrics.confusion_matrix(da.from_array(y, chunks=4), da.from_array(prediction, chunks=4))
    np.testing.assert_array_equal(result, skm.confusion_matrix(y, prediction))


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("labels", [None, ["cat", "dog", "emu"]])
def test_log_loss_matches_sklearn(classification, chunks, weighted, labels):
    y, _, proba, weight = classification
    sample_weight = weight if weighted else None
    expected = skm.log_loss(y, y_proba=proba, labels=labels, sample_weight=sample_weight)
    with raise_if_computes(max_computes=0 if chunks is None else 1):
        result = metrics.log_loss(
            as_input(y, chunks),
            as_input(proba, chunks),
            labels=labels,
            sample_weight=None if sample_weight is None else as_input(sample_weight, chunks),
        )
    assert result == pytest.approx(expected, rel=RTOL)


def test_log_loss_of_a_binary_vector_and_clipped_probabilities():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.0, 1.0, 0.7, 0.2, 0.0])  # exact 0 and 1 are clipped to [eps, 1 - eps]
    expected = skm.log_loss(y, y_proba=p)
    assert metrics.log_loss(da.from_array(y, chunks=2), da.from_array(p, chunks=2)) == pytest.approx(expected)
    assert metrics.log_loss(y, p) == pytest.approx(expected)


def test_log_loss_errors_as_sklearn():
    y = da.from_array(np.array([1, 1, 2]), chunks=2)
    proba = da.from_array(np.full((3, 3), 1 / 3), chunks=2)
    with pytest.raises(ValueError, match="y_true and y_proba contain different number of classes: 2 vs 3"):
        metrics.log_loss(y, proba)
    with pytest.raises(ValueError, match=r"y_true contains values not belonging to the passed labels: \[2\]"):
        metrics.log_loss(y, proba[:, :2], labels=[0, 1])
    with pytest.raises(ValueError, match="The number of classes in labels is different from that in y_proba"):
        metrics.log_loss(y, proba, labels=[1, 2])
    with pytest.raises(ValueError, match="y_proba contains values greater than 1"):
        metrics.log_loss(y, proba * 4, labels=[0, 1, 2])
    with pytest.raises(ValueError, match=r"y_true contains only one label \(1\)"):
        metrics.log_loss([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="The labels array needs to contain at least two labels"):
        metrics.log_loss([1, 1], [0.2, 0.3], labels=[1])


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_classification_scores_match_sklearn_in_one_computation(classification, chunks):
    y, prediction, proba, weight = classification
    with raise_if_computes(max_computes=0 if chunks is None else 1):
        scores = metrics.classification_scores(
            as_input(y, chunks),
            as_input(prediction, chunks),
            y_proba=as_input(proba, chunks),
            labels=["cat", "dog", "emu"],
            sample_weight=as_input(weight, chunks),
        )
    expected = {
        "accuracy": skm.accuracy_score(y, prediction, sample_weight=weight),
        "balanced_accuracy": skm.balanced_accuracy_score(y, prediction, sample_weight=weight),
        "f1_macro": skm.f1_score(y, prediction, average="macro", sample_weight=weight),
        "log_loss": skm.log_loss(y, y_proba=proba, sample_weight=weight),
    }
    assert scores == pytest.approx(expected, rel=RTOL)


def test_classification_scores_reject_labels_outside_the_given_ones():
    with pytest.raises(ValueError, match=r"labels not among the given labels: \['fox'\]"):
        metrics.classification_scores(
            da.from_array(np.array(["cat", "fox"]), chunks=1), np.array(["cat", "cat"]), labels=["cat", "dog"]
        )


@pytest.mark.parametrize("chunks", [None, 97])
def test_regression_scores_match_sklearn_in_one_computation(regression, chunks):
    y, prediction, weight = regression
    with raise_if_computes(max_computes=0 if chunks is None else 1):
        scores = metrics.regression_scores(
            as_input(y, chunks), as_input(prediction, chunks), sample_weight=as_input(weight, chunks)
        )
    assert scores == pytest.approx(
        {
            "r2": skm.r2_score(y, prediction, sample_weight=weight),
            "mae": skm.mean_absolute_error(y, prediction, sample_weight=weight),
            "mse": skm.mean_squared_error(y, prediction, sample_weight=weight),
            "rmse": skm.root_mean_squared_error(y, prediction, sample_weight=weight),
        },
        rel=RTOL,
    )


def test_mixed_numpy_and_dask_inputs_are_aligned(regression):
    y, prediction, weight = regression
    result = metrics.r2_score(y, da.from_array(prediction, chunks=97), sample_weight=weight)
    assert result == pytest.approx(skm.r2_score(y, prediction, sample_weight=weight), rel=RTOL)


def test_xarray_and_pandas_inputs(regression):
    pd = pytest.importorskip("pandas")
    xr = pytest.importorskip("xarray")
    y, prediction, _ = regression
    expected = skm.r2_score(y, prediction)
    assert metrics.r2_score(pd.Series(y, index=np.arange(N)[::-1]), prediction) == pytest.approx(expected)
    lazy_y = xr.DataArray(da.from_array(y, chunks=100), dims="time")
    assert metrics.r2_score(lazy_y, da.from_array(prediction, chunks=100)) == pytest.approx(expected)


# ---------------------------------------------------------------------------------------------------------
# the zero-weight rule, and errors


@pytest.mark.parametrize(
    ("function", "y_true", "y_other"),
    [
        (metrics.r2_score, [1.0, 2.0, 3.0], [1.0, 2.0, 2.0]),
        (metrics.mean_squared_error, [1.0, 2.0, 3.0], [1.0, 2.0, 2.0]),
        (metrics.mean_absolute_error, [1.0, 2.0, 3.0], [1.0, 2.0, 2.0]),
        (metrics.accuracy_score, ["a", "b", "b"], ["a", "b", "a"]),
        (metrics.confusion_matrix, ["a", "b", "b"], ["a", "b", "a"]),
        (metrics.log_loss, ["a", "b", "b"], [[0.5, 0.5]] * 3),
        (metrics.classification_scores, ["a", "b", "b"], ["a", "b", "a"]),
        (metrics.regression_scores, [1.0, 2.0, 3.0], [1.0, 2.0, 2.0]),
    ],
)
@pytest.mark.parametrize("lazy", [False, True])
def test_zero_total_weight_raises_like_sklearn(function, y_true, y_other, lazy):
    y_true, y_other, weight = np.asarray(y_true), np.asarray(y_other), np.zeros(3)
    if lazy:
        y_true, y_other, weight = (as_input(a, 2) for a in (y_true, y_other, weight))
    match = r"is undefined when the sample weights sum to zero \(0.0\): no row counts"
    with pytest.raises(ValueError, match=match):
        function(y_true, y_other, sample_weight=weight)


def test_sklearn_raises_for_zero_total_weight_too():
    # The rule above follows scikit-learn; this fails if a future version changes its mind.
    with pytest.raises(ValueError, match="at least one non-zero"):
        skm.accuracy_score([1, 2], [1, 2], sample_weight=[0.0, 0.0])
    with pytest.raises(ValueError, match="at least one non-zero"):
        skm.r2_score([1.0, 2.0], [1.0, 2.0], sample_weight=[0.0, 0.0])


def test_estimators_score_by_the_same_rule():
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression

    from daskml_lab.ensemble import ShardEnsembleClassifier
    from daskml_lab.linear_model import LogisticRegression, Ridge

    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 2))
    labels = (X[:, 0] > 0).astype(int)
    zeros = np.zeros(60)
    match = "is undefined when the sample weights sum to zero"
    with dask.config.set(scheduler="sync"):
        ridge = Ridge().fit(X, X[:, 0])
        classifier = LogisticRegression().fit(X, labels)
        ensemble = ShardEnsembleClassifier(SkLogisticRegression(), n_shards=2, random_state=0).fit(X, labels)
        with pytest.raises(ValueError, match="r2_score " + match):
            ridge.score(X, X[:, 0], sample_weight=zeros)
        for model in (classifier, ensemble):
            with pytest.raises(ValueError, match="accuracy_score " + match):
                model.score(X, labels, sample_weight=zeros)
        assert ensemble.score(X, labels) == pytest.approx(skm.accuracy_score(labels, ensemble.predict(X)))


def test_zero_weight_blocks_next_to_weighted_ones_are_fine(regression):
    y, prediction, weight = regression
    weight = weight.copy()
    weight[:400] = 0.0  # the first blocks weigh nothing
    result = metrics.r2_score(as_input(y, 97), as_input(prediction, 97), sample_weight=as_input(weight, 97))
    assert result == pytest.approx(skm.r2_score(y, prediction, sample_weight=weight), rel=RTOL)


def test_empty_input_raises_before_building_a_graph():
    with (
        raise_if_computes(max_computes=0),
        pytest.raises(ValueError, match="Found empty input: y_true has 0 rows"),
    ):
        metrics.accuracy_score(da.zeros(0, chunks=1), da.zeros(0, chunks=1))


def test_input_errors_are_clear():
    y = da.ones(10, chunks=5)
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[10, 9\]"):
        metrics.r2_score(y, da.ones(9, chunks=5))
    with pytest.raises(ValueError, match=r"different row chunks: y_true \(5, 5\), y_pred \(4, 6\)"):
        metrics.r2_score(y, da.ones(10, chunks=((4, 6),)))
    with pytest.raises(ValueError, match=r"y_pred must be of shape \(n_samples,\); got an array of shape"):
        metrics.mean_absolute_error(y, da.ones((10, 2), chunks=5))
    with pytest.raises(TypeError, match="y_true must be numeric, got dtype <U1"):
        metrics.r2_score(np.array(list("abc")), np.ones(3))
    with pytest.raises(ValueError, match="Input y_pred contains NaN or infinity"):
        metrics.r2_score(np.ones(3), np.array([1.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"sample_weight must be finite and non-negative, found \[-1.0\]"):
        metrics.accuracy_score(y, y, sample_weight=da.from_array(np.array([1.0] * 9 + [-1.0]), chunks=5))
    unknown = y[y > 0]
    with pytest.raises(ValueError, match="y_true has unknown chunk sizes"):
        metrics.accuracy_score(unknown, unknown)


# ---------------------------------------------------------------------------------------------------------
# laziness


def test_compute_false_is_lazy_and_scores_share_one_pass(regression, classification):
    y, prediction, weight = regression
    yd, pd_, wd = (as_input(a, 97) for a in (y, prediction, weight))
    with raise_if_computes(max_computes=0):
        r2 = metrics.r2_score(yd, pd_, sample_weight=wd, compute=False)
        mae = metrics.mean_absolute_error(yd, pd_, sample_weight=wd, compute=False)
    assert isinstance(r2, da.Array)
    assert r2.shape == ()
    assert r2.name.startswith("daskml-regression-")
    # Both scores build the same chunk tasks, so dask runs them once.
    chunk_keys = [
        {
            k
            for k in dict(a.__dask_graph__())
            if str(k[0] if isinstance(k, tuple) else k).startswith("daskml-")
        }
        for a in (r2, mae)
    ]
    assert {k for k in chunk_keys[0] if "chunk" in str(k)} == {k for k in chunk_keys[1] if "chunk" in str(k)}
    with raise_if_computes(max_computes=1):
        got_r2, got_mae = dask.compute(r2, mae)
    assert float(got_r2) == pytest.approx(skm.r2_score(y, prediction, sample_weight=weight), rel=RTOL)
    assert float(got_mae) == pytest.approx(
        skm.mean_absolute_error(y, prediction, sample_weight=weight), rel=RTOL
    )
    labels, predicted, _, _ = classification
    with raise_if_computes(max_computes=0):
        matrix = metrics.confusion_matrix(
            as_input(labels, 97), as_input(predicted, 97), labels=["cat", "dog", "emu"], compute=False
        )
    assert matrix.shape == (3, 3)
    assert_eq(matrix, skm.confusion_matrix(labels, predicted), check_graph=False)


def test_a_score_has_one_chunk_task_per_block_and_readable_names(regression):
    y, prediction, _ = regression
    lazy = metrics.r2_score(as_input(y, 97), as_input(prediction, 97), compute=False)
    names = {k[0] for k in dict(lazy.__dask_graph__()) if isinstance(k, tuple)}
    chunk_names = [n for n in names if n.startswith("daskml-regression-chunk-")]
    assert len(chunk_names) == 1
    n_chunk_tasks = sum(
        1 for k in dict(lazy.__dask_graph__()) if isinstance(k, tuple) and k[0] == chunk_names[0]
    )
    assert n_chunk_tasks == len(as_input(y, 97).chunks[0])
    assert any(n.startswith("daskml-regression-merge") for n in names)


# ---------------------------------------------------------------------------------------------------------
# kernels and properties


def test_kernels_against_formulas():
    y, prediction, weight = np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 3.0]), np.array([1.0, 2.0, 1.0])
    stats = _regression_chunk(y, prediction, weight)
    mean = np.average(y, weights=weight)
    assert stats["weight"] == 4.0
    assert stats["shift"] + stats["mean"] == pytest.approx(mean)
    assert stats["m2"] == pytest.approx(np.sum(weight * (y - mean) ** 2))
    assert stats["sse"] == pytest.approx(3.0)
    assert stats["sae"] == pytest.approx(3.0)
    accuracy = _accuracy_chunk(np.array(["a", "b", "c"]), np.array(["a", "c", "c"]), weight)
    assert accuracy == {"correct": 2.0, "weight": 4.0}
    # One column per model: one correct weight per model.
    many = _accuracy_chunk(np.array([0, 1]), np.array([[0, 1], [1, 1]]))
    np.testing.assert_array_equal(many["correct"], [2.0, 1.0])
    confusion = _confusion_chunk(np.array(["b", "a"]), np.array(["b", "b"]))
    np.testing.assert_array_equal(confusion["labels"], ["a", "b"])
    np.testing.assert_array_equal(confusion["counts"], [[0, 1], [0, 1]])


@pytest.mark.property
@settings(max_examples=25, deadline=None)
@given(
    n_samples=st.integers(2, 60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    seed=st.integers(0, 2**16),
    offset=st.sampled_from([0.0, 1e6]),
)
def test_merges_do_not_depend_on_blocks_or_order(n_samples, cuts, seed, offset):
    rng = np.random.default_rng(seed)
    y = offset + rng.normal(size=n_samples)
    prediction = y + rng.normal(size=n_samples)
    weight = rng.uniform(0, 2, size=n_samples)
    labels = rng.integers(0, 4, size=n_samples)
    predicted = rng.integers(0, 4, size=n_samples)
    bounds = [0, *sorted(c for c in cuts if c < n_samples), n_samples]
    blocks = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    order = rng.permutation(len(blocks))
    regression_parts = [_regression_chunk(y[s], prediction[s], weight[s]) for s in blocks]
    merged = _regression_combine([regression_parts[i] for i in order])
    assert float(_r2_agg(merged)) == pytest.approx(
        skm.r2_score(y, prediction, sample_weight=weight), rel=1e-9
    )
    confusion_parts = [_confusion_chunk(labels[s], predicted[s], weight[s]) for s in blocks]
    confusion = _confusion_combine([confusion_parts[i] for i in order])
    expected = skm.confusion_matrix(labels, predicted, sample_weight=weight)
    np.testing.assert_allclose(confusion["counts"], expected, rtol=1e-12)
    accuracy = _accuracy_combine([_accuracy_chunk(labels[s], predicted[s], weight[s]) for s in blocks])
    assert accuracy["correct"] / accuracy["weight"] == pytest.approx(
        skm.accuracy_score(labels, predicted, sample_weight=weight), rel=1e-12
    )


# ---------------------------------------------------------------------------------------------------------
# layering and the public surface


def test_metrics_imports_only_the_floors_below_it():
    forbidden = ("linear_model", "ensemble", "solvers", "fusion", "cli", "persistence")
    folder = Path(metrics.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                assert not (parts[0] == "daskml_lab" and len(parts) > 1 and parts[1] in forbidden), (
                    path,
                    name,
                )


def test_public_surface():
    assert "metrics" in daskml_lab.__all__
    assert daskml_lab.metrics is metrics
    assert sorted(metrics.__all__) == metrics.__all__
    for name in metrics.__all__:
        assert getattr(metrics, name).__doc__
