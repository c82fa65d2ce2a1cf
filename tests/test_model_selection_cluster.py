"""Cross-validation on a real LocalCluster (worker processes on 127.0.0.1), compared with scikit-learn.

In-memory data with a scikit-learn estimator: one task per fold on the workers, scores identical to
scikit-learn's. Dask data with daskml_lab's LogisticRegression: every fold's estimator receives lazy dask arrays
with known chunks (nothing gathered), and the scores equal those of the same estimator fitted on scikit-learn's
folds of the in-memory data.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from distributed import get_task_stream
from sklearn import model_selection as sk
from sklearn.datasets import make_classification
from sklearn.tree import DecisionTreeClassifier

from daskml_lab.linear_model import LogisticRegression
from daskml_lab.model_selection import StratifiedKFold, cross_validate

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]

SCORING = ["accuracy", "neg_log_loss"]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=400, n_features=5, n_informative=3, random_state=0)


def test_in_memory_folds_run_as_tasks_on_the_workers(client, data):
    X, y = data
    model = DecisionTreeClassifier(max_depth=4, random_state=0)
    with get_task_stream(client) as stream:
        ours = cross_validate(model, X, y, cv=5, scoring=SCORING, return_train_score=True)
    reference = sk.cross_validate(model, X, y, cv=5, scoring=SCORING, return_train_score=True)
    for key in reference:
        if key.startswith(("test_", "train_")):
            np.testing.assert_allclose(ours[key], reference[key], rtol=0, atol=1e-12)
    fits = [task for task in stream.data if task["key"].startswith("daskml-cv-fit-")]
    assert len(fits) == 5
    assert {task["worker"] for task in fits} <= set(client.scheduler_info()["workers"])


class _RecordingLogisticRegression(LogisticRegression):
    """Records what each fit receives (the fits of dask folds run in this process)."""

    received: list = []  # noqa: RUF012 -- shared on purpose: the clones record into it

    def fit(self, X, y, sample_weight=None):
        type(self).received.append((type(X), X.chunks, type(y)))
        return super().fit(X, y, sample_weight=sample_weight)


def test_dask_folds_reach_our_estimator_lazily_and_score_as_in_memory(client, data):
    X, y = data
    Xd, yd = da.from_array(X, chunks=(100, 5)), da.from_array(y, chunks=100)
    _RecordingLogisticRegression.received = []
    ours = cross_validate(
        _RecordingLogisticRegression(),
        Xd,
        yd,
        cv=StratifiedKFold(4),
        scoring=SCORING,
        return_train_score=True,
    )
    received = _RecordingLogisticRegression.received
    assert len(received) == 4
    for X_type, chunks, y_type in received:
        assert X_type is da.Array
        assert y_type is da.Array
        assert len(chunks[0]) == 4  # one piece of each of the 4 blocks: rows taken in place
        assert sum(chunks[0]) == 300
    # the same estimator on scikit-learn's folds of the in-memory data (unshuffled folds are identical)
    reference = sk.cross_validate(
        LogisticRegression(), X, y, cv=sk.StratifiedKFold(4), scoring=SCORING, return_train_score=True
    )
    for key in ("test_accuracy", "train_accuracy"):
        np.testing.assert_array_equal(ours[key], reference[key])
    for key in ("test_neg_log_loss", "train_neg_log_loss"):
        np.testing.assert_allclose(ours[key], reference[key], rtol=1e-6)
