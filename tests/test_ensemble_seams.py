"""Seams between ensemble, fusion and the data layer: the fusion's prediction methods, the shared fit prologue."""

import dask.array as da
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from daskml_lab._runtime.seeding import shard_seeds
from daskml_lab.base import InvalidParameterError
from daskml_lab.data import check_X_y, shard
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier
from daskml_lab.ensemble._prologue import start_shard_fit
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


def _finite_checks(array):
    return [name for name in array.__dask_graph__().layers if "check-finite" in name]


def test_shard_skips_the_second_finiteness_pass_only_when_asked():
    X = da.from_array(np.arange(40.0).reshape(20, 2), chunks=5)
    y = da.from_array(np.arange(20) % 2, chunks=5)
    checked, _ = shard(X, y, n_shards=2, strategy="shuffle", random_state=0)
    assert _finite_checks(checked)  # user data are checked
    data = check_X_y(X, y)
    once, _ = shard(data.X, data.y, n_shards=2, strategy="shuffle", random_state=0, check_input=False)
    assert len(_finite_checks(once)) == len(_finite_checks(data.X))


def test_ensemble_checks_finiteness_once_and_still_rejects_nan():
    X = np.arange(40.0).reshape(20, 2)
    X[3, 1] = np.nan
    ensemble = ShardEnsembleClassifier(LogisticRegression(), n_shards=2, sharding="shuffle", random_state=0)
    with pytest.raises(ValueError, match="NaN"):
        ensemble.fit(da.from_array(X, chunks=5), np.arange(20) % 2)


@pytest.mark.parametrize(
    "make", [lambda: ShardEnsembleClassifier(LogisticRegression()), lambda: CascadeSVC()]
)
def test_the_prologue_checks_parameters_before_data(make):
    estimator = make().set_params(random_state=-1)
    with pytest.raises(InvalidParameterError, match="random_state"):
        estimator.fit("not data", [0])


def test_the_prologue_gives_seeded_shards_and_a_fresh_token():
    ensemble = ShardEnsembleClassifier(LogisticRegression(), n_shards=3, random_state=4)
    X, y = np.arange(24.0).reshape(12, 2), np.arange(12) % 2
    first = start_shard_fit(ensemble, X, y, None, y_numeric=False, seed_estimator=ensemble.estimator)
    again = start_shard_fit(ensemble, X, y, None, y_numeric=False, seed_estimator=ensemble.estimator)
    assert first.n_shards == 3
    assert first.seeds == again.seeds == shard_seeds(4, 3)
    assert first.token != again.token
    assert first.checkpoint is None
    assert first.settings[1] == 0.0  # soft voting holds no rows out
