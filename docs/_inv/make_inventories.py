"""Write the small intersphinx inventories the documentation links other projects through, offline.

The build machines have no network, so ``conf.py`` points ``intersphinx_mapping`` at these files instead of
the projects' own ``objects.inv``. Each lists only the targets our pages and docstrings reference, with the
real address of its page in that project's documentation (relative to the base URL in ``conf.py``). Add a
target here when a page starts referencing it, then run ``python docs/_inv/make_inventories.py``; the test
``tests/test_docs.py`` checks the shipped files match this table.

The file format is Sphinx's inventory version 2: four header lines, then zlib-compressed lines
``name domain:role priority uri display-name`` (``-`` shows the name itself).
"""

from __future__ import annotations

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Base address of each project's documentation (also used by ``conf.py``).
BASE_URLS = {
    "sklearn": "https://scikit-learn.org/stable/",
    "dask": "https://docs.dask.org/en/stable/",
    "distributed": "https://distributed.dask.org/en/stable/",
    "pandas": "https://pandas.pydata.org/docs/",
    "numpy": "https://numpy.org/doc/stable/",
    "xarray": "https://docs.xarray.dev/en/stable/",
}

PROJECT_NAMES = {
    "sklearn": "scikit-learn",
    "dask": "Dask",
    "distributed": "Dask.distributed",
    "pandas": "pandas",
    "numpy": "NumPy",
    "xarray": "xarray",
}

_SKLEARN_CLASSES = [
    "sklearn.base.BaseEstimator",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.compose.ColumnTransformer",
    "sklearn.dummy.DummyClassifier",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.StackingClassifier",
    "sklearn.ensemble.VotingClassifier",
    "sklearn.ensemble.VotingRegressor",
    "sklearn.impute.SimpleImputer",
    "sklearn.linear_model.ElasticNet",
    "sklearn.linear_model.GammaRegressor",
    "sklearn.linear_model.HuberRegressor",
    "sklearn.linear_model.Lasso",
    "sklearn.linear_model.LinearRegression",
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.PoissonRegressor",
    "sklearn.linear_model.Ridge",
    "sklearn.linear_model.RidgeCV",
    "sklearn.linear_model.SGDClassifier",
    "sklearn.linear_model.TweedieRegressor",
    "sklearn.model_selection.GridSearchCV",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing.OneHotEncoder",
    "sklearn.preprocessing.StandardScaler",
    "sklearn.svm.LinearSVC",
    "sklearn.svm.SVC",
    "sklearn.utils.metadata_routing.MetadataRequest",
]
_SKLEARN_FUNCTIONS = [
    "sklearn.datasets.dump_svmlight_file",
    "sklearn.datasets.load_svmlight_file",
    "sklearn.datasets.make_classification",
    "sklearn.datasets.make_low_rank_matrix",
    "sklearn.datasets.make_regression",
    "sklearn.metrics.accuracy_score",
    "sklearn.metrics.confusion_matrix",
    "sklearn.metrics.log_loss",
    "sklearn.metrics.mean_absolute_error",
    "sklearn.metrics.mean_squared_error",
    "sklearn.metrics.r2_score",
    "sklearn.model_selection.train_test_split",
    "sklearn.set_config",
    "sklearn.utils.get_tags",
    "sklearn.utils.metaestimators.available_if",
    "sklearn.utils.validation.validate_data",
]
_DISTRIBUTED_API = {
    "py:class": ["distributed.Client", "distributed.LocalCluster", "distributed.Security"],
    "py:method": ["distributed.Client.compute", "distributed.Client.as_current"],
    "py:function": [
        "distributed.get_client",
        "distributed.get_task_stream",
        "distributed.get_worker",
        "distributed.performance_report",
        "distributed.progress",
        "distributed.rejoin",
        "distributed.secede",
        "distributed.worker_client",
    ],
}


def _generated(prefix: str, names: list[str], role: str) -> list[tuple[str, str, str, str]]:
    """Entries of projects that give each object its own page, ``<prefix><name>.html#<name>``."""
    return [(name, role, f"{prefix}{name}.html#{name}", "-") for name in names]


#: ``project -> [(name, domain:role, uri, display name)]``.
TARGETS: dict[str, list[tuple[str, str, str, str]]] = {
    "sklearn": [
        *_generated("modules/generated/", _SKLEARN_CLASSES, "py:class"),
        *_generated("modules/generated/", _SKLEARN_FUNCTIONS, "py:function"),
        ("sklearn.metrics", "py:module", "api/sklearn.metrics.html#module-sklearn.metrics", "-"),
        ("metadata_routing", "std:label", "metadata_routing.html#metadata-routing", "Metadata Routing"),
        ("meta-estimator", "std:term", "glossary.html#term-meta-estimator", "-"),
    ],
    "dask": [
        *_generated("generated/", ["dask.array.Array"], "py:class"),
        *_generated("generated/", ["dask.array.Array.rechunk"], "py:method"),
        *_generated("generated/", ["dask.array.from_zarr", "dask.dataframe.read_csv"], "py:function"),
        ("dask.compute", "py:function", "api.html#dask.compute", "-"),
        (
            "dask.diagnostics.ProgressBar",
            "py:class",
            "diagnostics-local.html#dask.diagnostics.ProgressBar",
            "-",
        ),
    ],
    "distributed": [
        *[
            (name, role, f"api.html#{name}", "-")
            for role, names in _DISTRIBUTED_API.items()
            for name in names
        ],
        ("scheduler-task-state", "std:label", "scheduling-state.html#scheduler-task-state", "Task State"),
    ],
    "pandas": [
        *_generated("reference/api/", ["pandas.DataFrame", "pandas.Series"], "py:class"),
        *_generated("reference/api/", ["pandas.read_csv", "pandas.util.hash_array"], "py:function"),
    ],
    "numpy": [
        *_generated("reference/generated/", ["numpy.ndarray"], "py:class"),
        ("numpy.random.Generator", "py:class", "reference/random/generator.html#numpy.random.Generator", "-"),
        *_generated("reference/random/bit_generators/generated/", ["numpy.random.SeedSequence"], "py:class"),
    ],
    "xarray": [
        *_generated("generated/", ["xarray.DataArray", "xarray.Dataset"], "py:class"),
        *_generated("generated/", ["xarray.open_dataset", "xarray.open_zarr"], "py:function"),
    ],
}


def inventory_bytes(project: str) -> bytes:
    """The ``objects.inv`` content of one project, deterministic (sorted entries, fixed compression)."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {PROJECT_NAMES[project]}\n"
        "# Version: stable\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = "".join(
        f"{name} {role} 1 {uri} {display}\n" for name, role, uri, display in sorted(TARGETS[project])
    )
    return header.encode() + zlib.compress(body.encode(), 9)


def main() -> None:
    for project in TARGETS:
        (HERE / f"{project}.inv").write_bytes(inventory_bytes(project))


if __name__ == "__main__":
    main()
