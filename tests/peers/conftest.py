"""Fixtures and adapters for the peers' vendored tests (see ORIGIN.md).

The fixtures are copied from dask-ml's ``tests/conftest.py`` (the ones the vendored modules use). The skip table
lists every case that tests a *documented* behaviour difference, with the reason; everything else must pass.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import _peer_shims  # noqa: F401  (registers the _peer_dask_ml and _peer_dask_glm modules)
from _peer_dask_ml.datasets import make_classification, make_counts, make_regression

#: Cases that test behaviour daskml_lab deliberately does differently: "file::test" prefix -> reason.
DOCUMENTED_DIFFERENCES = {
    "test_dask_ml_glm.py::test_add_intercept": (
        "dask-ml's add_intercept helper is not part of daskml_lab: its estimators fit the intercept themselves "
        "(fit_intercept=True), on dask and numpy input alike"
    ),
    "test_dask_ml_glm.py::test_dataframe_warns_about_chunks": (
        "dask-ml refuses dask DataFrames (TypeError); daskml_lab accepts them and their columns' names "
        "(docs/concepts.rst). The rest of the test (fit on X.values and to_dask_array with and without lengths) "
        "is covered by test_unknown_chunks_ok and tests/test_linear_model_integration.py"
    ),
    "test_dask_ml_blockwise.py::TestBlockwiseVotingClassifier::test_bad_chunking_raises": (
        "dask-ml refuses arrays chunked along the features (TypeError); daskml_lab rechunks them to one column "
        "block at the input gate (daskml_lab.data.check_array)"
    ),
    "test_dask_ml_blockwise.py::TestBlockwiseVotingClassifier::test_no_classes_raises": (
        "dask-ml needs classes=...; daskml_lab finds the classes in the first pass over y (ShardEnsembleClassifier "
        "has no classes parameter)"
    ),
    "test_dask_ml_glm.py::test_model_coef_dask_numpy[LogisticRegression": (
        "coef_ has scikit-learn's shape (1, n_features) for a binary LogisticRegression (dask-ml's is "
        "(n_features,)), so the test's np.hstack((coef_, intercept_)) cannot stack them"
    ),
    "test_dask_ml_glm.py::test_model_against_sklearn[LogisticRegression": (
        "coef_ has scikit-learn's shape (1, n_features) for a binary LogisticRegression (dask-ml's is "
        "(n_features,)), so the test's np.hstack((intercept_, coef_)) cannot stack them; the same comparison "
        "with scikit-learn is tests/test_linear_model_logistic.py"
    ),
    "test_dask_glm_estimators.py::test_gridsearch": (
        "it searches over lamduh, dask-glm's name for 1 / C, with the retired dask-searchcv; daskml_lab's "
        "estimators take scikit-learn's C, and the same search over C with scikit-learn's GridSearchCV is "
        "test_dask_ml_glm.py::test_gridsearch"
    ),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(item.fspath).parent != here:
            continue
        # dask-ml does not warn about a column-vector y; daskml_lab warns as scikit-learn does (the suite turns
        # daskml_lab's warnings into errors elsewhere).
        item.add_marker(pytest.mark.filterwarnings("default::daskml_lab.exceptions.DataConversionWarning"))
        name = f"{Path(item.fspath).name}::{item.nodeid.split('::', 1)[1]}"
        for prefix, reason in DOCUMENTED_DIFFERENCES.items():
            if name.startswith(prefix):
                item.add_marker(pytest.mark.skip(reason=f"documented difference: {reason}"))


@pytest.fixture
def single_chunk_classification():
    X, y = make_classification(chunks=100, random_state=0)
    return X, y


@pytest.fixture
def single_chunk_regression():
    X, y = make_regression(chunks=100, random_state=0)
    return X, y


@pytest.fixture
def single_chunk_count_classification():
    X, y = make_classification(chunks=100, random_state=0)
    X = (abs(X) * 10).astype(int)
    return X, y


@pytest.fixture
def medium_size_regression():
    X, y = make_regression(chunks=100, n_samples=500, n_features=100, n_informative=100, random_state=0)
    return X, y


@pytest.fixture
def medium_size_counts():
    sample_size = 500
    n_features = 100
    X, y = make_counts(
        chunks=100,
        n_samples=sample_size,
        n_features=n_features,
        n_informative=n_features,
        random_state=0,
        scale=1 / np.sqrt(n_features),
    )
    return X, y


@pytest.fixture(autouse=True)
def _one_model_per_block(request):
    """dask-ml's blockwise ensembles fit one model per row block however small it is (the vendored tests use
    blocks of 25 rows): the shard ensembles standing in for them keep every block (no merging of blocks under
    ``daskml_lab.ensemble.min_shard_rows`` rows)."""
    if "blockwise" not in request.node.nodeid:
        yield
        return
    import dask

    with dask.config.set({"daskml_lab.ensemble.min_shard_rows": 1}):
        yield
