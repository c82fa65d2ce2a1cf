"""Seams between ensemble, fusion and the data layer: the fusion's prediction methods, the shared fit prologue."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from daskml_lab.base import InvalidParameterError
from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.fusion import (
    FUSION_NAMES,
    ForestUnion,
    Fusion,
    HardVoting,
    SoftVoting,
    Stacking,
    resolve_fusion,
)


def test_every_strategy_declares_its_prediction_methods():
    assert HardVoting.prediction_methods == frozenset({"predict"})
    assert ForestUnion.prediction_methods == frozenset({"predict", "predict_proba"})
    assert SoftVoting.prediction_methods == Stacking.prediction_methods == Fusion.prediction_methods
    for name in FUSION_NAMES:
        assert "predict" in resolve_fusion(name).prediction_methods


@pytest.mark.parametrize("fusion", ["hard-voting", HardVoting()])
def test_unfitted_ensemble_offers_only_what_the_fusion_provides(fusion):
    ensemble = ShardEnsembleClassifier(LogisticRegression(), fusion=fusion)
    assert not hasattr(ensemble, "predict_proba")
    assert not hasattr(ensemble, "decision_function")
    soft = ShardEnsembleClassifier(LogisticRegression(), fusion="soft-voting")
    assert hasattr(soft, "predict_proba")
    assert hasattr(soft, "decision_function")
    assert not hasattr(ShardEnsembleClassifier(LinearSVC()), "predict_proba")  # and what the base provides


def test_invalid_fusion_leaves_hasattr_to_the_base_estimator():
    ensemble = ShardEnsembleClassifier(LogisticRegression(), fusion="no-such-fusion")
    assert hasattr(ensemble, "predict_proba")
    with pytest.raises(InvalidParameterError, match="fusion"):
        ensemble.fit(np.zeros((4, 1)), np.array([0, 1, 0, 1]))


def test_a_new_strategy_declares_its_methods_without_the_ensemble_naming_it():
    class LabelsOnly(SoftVoting):
        prediction_methods = frozenset({"predict"})

    ensemble = ShardEnsembleClassifier(LogisticRegression(), fusion=LabelsOnly())
    assert not hasattr(ensemble, "predict_proba")
