"""``daskml-lab tune``: read data, search a model's parameters by cross-validation, save the best model."""

from __future__ import annotations

import json
import sys
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daskml_lab.cli._data import (
    check_output,
    cluster,
    data_format,
    is_sparse,
    json_safe,
    key_file,
    local_path,
    print_dashboard,
    signing_key,
)
from daskml_lab.cli._fit import read_task_data
from daskml_lab.cli._models import CLASSIFICATION, build_estimator, get_model
from daskml_lab.cli._tables import adapt_to_classes, build_preprocessing
from daskml_lab.data.formats import get_format

__all__ = ["read_grid", "run_tune"]


def read_grid(path: str) -> dict[str, list[Any]]:
    """The parameter grid of a TOML file: ``name = [values]`` per parameter of the model.

    Parameters
    ----------
    path : str
        The file.

    Returns
    -------
    dict of str to list

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not TOML, is empty, or a value is not a non-empty list of numbers, strings or booleans.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "grid.toml"
    >>> _ = file.write_text("C = [0.1, 1.0]\\nsolver = ['lbfgs']\\n")
    >>> read_grid(str(file))
    {'C': [0.1, 1.0], 'solver': ['lbfgs']}
    """
    file = Path(path)
    if not file.is_file():
        msg = f"--grid {path}: no such file. Write a TOML file such as: C = [0.1, 1.0, 10.0]"
        raise FileNotFoundError(msg)
    try:
        grid = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        msg = f"--grid {path} is not a TOML file ({err}). Write one line per parameter: C = [0.1, 1.0, 10.0]"
        raise ValueError(msg) from err
    if not grid:
        msg = f"--grid {path} names no parameter; give at least one, e.g. C = [0.1, 1.0, 10.0]"
        raise ValueError(msg)
    for name, values in grid.items():
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, bool | int | float | str) for v in values)
        ):
            msg = (
                f"--grid {path}: {name} = {values!r} must be a non-empty list of numbers, strings or booleans, "
                f"e.g. {name} = [0.1, 1.0]."
            )
            raise ValueError(msg)
    return grid


def _model_grid(estimator: Any, model_class: type, grid: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """The grid with the names of the model inside the command line's estimator (pipeline step, shard model).

    Raises
    ------
    ValueError
        For a name the model does not have, listing those it has.
    """
    params = estimator.get_params(deep=True)
    paths = [key for key, value in params.items() if type(value) is model_class]
    prefix = "" if type(estimator) is model_class else f"{max(paths, key=len)}__" if paths else ""
    valid = sorted(
        key[len(prefix) :] for key in params if key.startswith(prefix) and "__" not in key[len(prefix) :]
    )
    unknown = sorted(name for name in grid if name not in valid)
    if unknown:
        msg = (
            f"--grid names {', '.join(unknown)}, which {model_class.__name__} does not have. Its parameters: "
            f"{', '.join(valid)}."
        )
        raise ValueError(msg)
    return {prefix + name: list(values) for name, values in grid.items()}


def run_tune(settings: Mapping[str, Any], *, verbose: bool) -> None:
    """Search the model's parameters and save the best model (see ``daskml-lab tune --help``).

    Writes the best model (refitted on all rows) to ``--output`` with :func:`daskml_lab.save`, and the search's
    ``cv_results_`` next to it as ``<output stem>.cv_results.csv`` and ``.cv_results.json``.

    Parameters
    ----------
    settings : dict
        The merged options of ``tune`` (see :data:`daskml_lab.cli._config.COMMAND_OPTIONS`).
    verbose : bool
        Show the cluster's logs.

    Raises
    ------
    ValueError
        For an unknown model, a grid naming parameters the model does not have, a scorer that does not fit the
        task, or invalid data.
    FileNotFoundError
        If the data, the grid file or the output folder do not exist.
    """
    from daskml_lab.model_selection import GridSearchCV, RandomizedSearchCV
    from daskml_lab.persistence import save

    spec = get_model(settings["model"])
    grid = read_grid(local_path(settings["grid"]))
    path = local_path(settings["data"])
    fmt = data_format(path, settings["input_format"])
    if not get_format(fmt).labels_in_file and not settings["target"]:
        msg = "missing --target: name the target column, variable or array."
        raise ValueError(msg)
    if settings["cv"] < 2:
        msg = f"--cv must be at least 2 folds; got {settings['cv']}."
        raise ValueError(msg)
    inputs = [
        ("training data", settings["data"]),
        ("grid file", settings["grid"]),
        ("key file", key_file(settings)),
    ]
    output = check_output(
        settings["output"], overwrite=settings["overwrite"], what="model file", inputs=inputs
    )
    tables = {
        suffix: check_output(
            str(output.with_suffix(f".cv_results.{suffix}")),
            overwrite=settings["overwrite"],
            what="results file",
            inputs=inputs,
        )
        for suffix in ("csv", "json")
    }
    key = signing_key(settings)
    seed = 0 if settings["random_state"] is None else settings["random_state"]

    with cluster(settings, verbose=verbose) as client:
        print_dashboard(client, settings)
        X, y, info, task, summary, block_note = read_task_data(
            settings, path, fmt=fmt, spec=spec, n_workers=len(client.scheduler_info().get("workers", {}))
        )
        estimator, notes = build_estimator(
            spec,
            task,
            params={},
            fusion=None,
            fusion_params={},
            solver=None,
            solver_options={},
            # files are often sorted by the target: shuffled shards, as fit does
            ensemble_options={"sharding": "shuffle"} if spec.family == "shard" else {},
            random_state=seed,
        )
        estimator, preprocessing = build_preprocessing(estimator, info, sparse=is_sparse(X))
        if task == CLASSIFICATION:
            rare_note = adapt_to_classes(estimator, summary)
            if rare_note is not None:
                notes.append(rare_note)
        if block_note is not None:
            notes.append(block_note)
        param_grid = _model_grid(estimator, spec.estimator_class(task), grid)
        options = {"scoring": settings["scoring"], "cv": settings["cv"], "checkpoint": settings["checkpoint"]}
        if settings["search"] == "grid":
            search: Any = GridSearchCV(estimator, param_grid, **options)
        else:
            search = RandomizedSearchCV(
                estimator, param_grid, n_iter=settings["n_iter"], random_state=seed, **options
            )
        model_name = spec.estimator_class(task).__name__
        print(f"Model: {spec.name} ({model_name}); {settings['search']} search of {', '.join(grid)}")
        for line in preprocessing:
            print(f"Preprocessing: {line}")
        start = time.perf_counter()
        search.fit(X, y)
        search_s = time.perf_counter() - start
        n_candidates = len(search.cv_results_["params"])
        n_workers = len(client.scheduler_info().get("workers", {}))

    results = _results_frame(search.cv_results_)
    results.to_csv(tables["csv"], index=False)
    tables["json"].write_text(json.dumps(json_safe(results.to_dict("records")), indent=1) + "\n")
    best = {name.split("__")[-1]: value for name, value in search.best_params_.items()}
    metadata = {
        "data": info,
        "training": {
            "task": task,
            "n_workers": n_workers,
            "random_state": seed,
            "search_time_s": round(search_s, 6),
        },
        "tuning": {
            "search": settings["search"],
            "cv": settings["cv"],
            "scoring": settings["scoring"],
            "n_candidates": n_candidates,
            "best_params": best,
            "best_score": float(search.best_score_),
        },
        "cli": {"model": spec.name, "preprocessing": preprocessing, "argv": sys.argv[1:]},
    }
    save(search.best_estimator_, output, metadata=json_safe(metadata), key=key)
    rows = [
        ("model", f"{spec.name} ({model_name})"),
        (
            "data",
            f"{info['n_samples']:,} rows x {info['n_features']} features in {info['n_blocks']} block(s)",
        ),
        (
            "search",
            f"{settings['search']}, {n_candidates} candidate(s) x {settings['cv']} folds in {search_s:.2f} s",
        ),
        ("best parameters", ", ".join(f"{k}={v!r}" for k, v in best.items())),
        (f"best {settings['scoring'] or 'score'}", f"{search.best_score_:.6g} (mean over folds)"),
        *(("note", note) for note in notes),
        ("saved to", str(output) + (" (signed)" if key is not None else "")),
        ("results", f"{tables['csv']}, {tables['json']}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"Tuned {spec.name}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def _results_frame(cv_results: Mapping[str, Any]) -> pd.DataFrame:
    """``cv_results_`` as a table: one row per candidate, parameters by the model's own names."""
    columns: dict[str, Any] = {}
    for key, values in cv_results.items():
        if key == "params":
            continue
        if key.startswith("param_"):
            column = np.ma.getdata(values).tolist()
            columns["param_" + key[len("param_") :].split("__")[-1]] = column
        else:
            columns[key] = np.asarray(values)
    return pd.DataFrame(columns)
