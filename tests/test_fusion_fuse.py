"""fuse() and resolve_fusion(): fusing models trained elsewhere, by name or object."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeCV
from sklearn.naive_bayes import GaussianNB

from daskml_lab.fusion import (
    FUSION_NAMES,
    BestModel,
    ForestUnion,
    HardVoting,
    ParameterAveraging,
    SoftVoting,
    Stacking,
    WeightedAveraging,
    fuse,
    resolve_fusion,
)

from .conftest import default_final_classifier


@pytest.fixture(scope="module")
def partitions():
    """Three classifiers trained on three partitions of a 3-class problem, plus held-out and test rows."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    y = np.digitize(X[:, 0] - X[:, 2], [-0.5, 0.5])
    members = [GaussianNB().fit(X[i * 150 : (i + 1) * 150], y[i * 150 : (i + 1) * 150]) for i in range(3)]
    return members, X[450:], y[450:]


def test_resolve_fusion_by_name_and_object():
    expected = [
        HardVoting,
        SoftVoting,
        WeightedAveraging,
        Stacking,
        ParameterAveraging,
        ForestUnion,
        BestModel,
    ]
    assert [type(resolve_fusion(name)) for name in FUSION_NAMES] == expected
    given = WeightedAveraging(weights="uniform")
    resolved = resolve_fusion(given)
    assert resolved is not given
    assert resolved.get_params() == given.get_params()
    with pytest.raises(ValueError, match=r"Unknown fusion 'mean'\. Use one of 'hard-voting', 'soft-voting'"):
        resolve_fusion("mean")
    with pytest.raises(
        TypeError, match=r"fusion must be a name .* or a daskml_lab\.fusion\.Fusion object; got int"
    ):
        resolve_fusion(3)


def test_fuse_soft_voting_of_pretrained_models(partitions):
    members, X_val, _ = partitions
    fused = fuse(members)
    expected = np.mean([m.predict_proba(X_val) for m in members], axis=0)
    np.testing.assert_allclose(fused.predict_proba(X_val), expected, rtol=1e-12)
    np.testing.assert_array_equal(fused.classes_, [0, 1, 2])


def test_fuse_validation_weights_from_held_out_rows(partitions):
    members, X_val, y_val = partitions
    fused = fuse(members, WeightedAveraging(weights="validation"), X_val=X_val, y_val=y_val)
    scores = np.array([np.mean(m.predict(X_val) == y_val) for m in members])
    baseline = np.max(np.bincount(y_val)) / len(y_val)
    skill = np.clip(scores - baseline, 0, None)
    np.testing.assert_allclose(fused.weights_, skill / skill.sum())


def test_fuse_stacking_with_held_out_rows(partitions):
    members, X_val, y_val = partitions
    fused = fuse(members, "stacking", X_val=X_val, y_val=y_val)
    meta = np.hstack([m.predict_proba(X_val) for m in members])
    reference = default_final_classifier().fit(meta, y_val)
    np.testing.assert_allclose(fused.predict_proba(X_val), reference.predict_proba(meta), rtol=1e-10)


def test_fuse_stacking_with_sample_weights(partitions):
    members, X_val, y_val = partitions
    weight = np.linspace(0.5, 2.0, len(y_val))
    fused = fuse(members, "stacking", X_val=X_val, y_val=y_val, sample_weight=weight)
    meta = np.hstack([m.predict_proba(X_val) for m in members])
    reference = default_final_classifier().fit(meta, y_val, sample_weight=weight)
    np.testing.assert_allclose(fused.predict_proba(X_val), reference.predict_proba(meta), rtol=1e-10)


def test_fuse_parameter_averaging_with_sizes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 2))
    members = [Ridge().fit(X[:60], X[:60, 0]), Ridge().fit(X[60:], X[60:, 1])]
    fused = fuse(members, "parameter-averaging", n_samples=[60, 40])
    np.testing.assert_allclose(fused.fused_estimator_.coef_, 0.6 * members[0].coef_ + 0.4 * members[1].coef_)
    with pytest.raises(ValueError, match="weights='size' needs the number of training rows of every member"):
        fuse(members, "parameter-averaging")


def test_fuse_with_explicit_classes_adds_unseen_columns():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    members = [LogisticRegression().fit(X, [1, 1, 2, 2])]
    fused = fuse(members, classes=[0, 1, 2])
    proba = fused.predict_proba(X)
    assert proba.shape == (4, 3)
    np.testing.assert_allclose(proba[:, 0], 0.0)
    with pytest.raises(ValueError, match="The target classes has only one class"):
        fuse(members, classes=[1])


def test_fuse_regressors_by_hand():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 2))
    members = [LinearRegression().fit(X, X[:, 0]), LinearRegression().fit(X, X[:, 1])]
    fused = fuse(members, "stacking", X_val=X, y_val=X[:, 0] + X[:, 1])
    meta = np.column_stack([m.predict(X) for m in members])
    np.testing.assert_allclose(
        fused.predict(X),
        RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(meta, X[:, 0] + X[:, 1]).predict(meta),
        rtol=1e-10,
    )


def test_fuse_errors(partitions):
    members, X_val, y_val = partitions
    with pytest.raises(ValueError, match="Stacking learns from held-out rows: pass X_val and y_val"):
        fuse(members, "stacking")
    with pytest.raises(ValueError, match="Pass both X_val and y_val"):
        fuse(members, "stacking", X_val=X_val)
    with pytest.raises(TypeError, match="fuse\\(\\) evaluates held-out rows in memory, but X_val is a dask"):
        fuse(members, "stacking", X_val=da.from_array(X_val, chunks=50), y_val=y_val)
    with pytest.raises(ValueError, match="X has 2 features, but Stacking is expecting 3 features"):
        fuse(members, "stacking", X_val=X_val[:, :2], y_val=y_val)
    with pytest.raises(ValueError, match=r"Found labels \[7\] that are not among the classes"):
        fuse(members, "stacking", X_val=X_val, y_val=np.full(len(y_val), 7))
