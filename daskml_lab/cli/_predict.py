"""``daskml-lab predict``: lazy predictions written by the workers, in a format of the registry with a writer.

The writers (parquet, zarr, netCDF) belong to the formats of :mod:`daskml_lab.data.formats`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from daskml_lab.cli._data import (
    atomic_output,
    check_output,
    cluster,
    data_format,
    key_file,
    local_path,
    print_dashboard,
    read_for_model,
    signing_key,
)
from daskml_lab.data import wrap_output
from daskml_lab.data.formats import get_format, output_format_of
from daskml_lab.exceptions import ClusterRequiredError

__all__ = ["load_model", "run_predict"]


def load_model(settings: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The model of a file written by ``fit`` (or :func:`daskml_lab.persistence.save`) and its metadata.

    Both come from one read of the file, checked as a whole (with ``--key-file``, its signature): the feature
    order and read options in the metadata are exactly those saved with the model. Before the cluster starts
    (a bad file fails fast); a model whose partitioned coefficients need the cluster's workers comes back as
    ``None`` with its checked metadata, to be loaded with :func:`load_model` again inside the cluster.
    """
    from daskml_lab.persistence import describe, load

    path, key = local_path(settings["model"]), signing_key(settings)
    try:
        return load(path, trusted=settings["trust"] or None, key=key, return_metadata=True)
    except ClusterRequiredError:
        return None, describe(path, key=key)


def run_predict(settings: Mapping[str, Any], *, verbose: bool) -> None:
    """Predict DATA with MODEL and write the predictions (see ``daskml-lab predict --help``).

    Parameters
    ----------
    settings : dict
        The merged options of ``predict``.
    verbose : bool
        Show the cluster's logs.

    Raises
    ------
    ValueError
        For a corrupt model file, an unknown output format, or data that do not match the model.
    FileNotFoundError, FileExistsError
        For a missing input or output folder, or an existing output without ``--overwrite``.
    """
    output = check_output(
        settings["output"],
        overwrite=settings["overwrite"],
        what="output",
        inputs=[
            ("data", settings["data"]),
            ("model file", settings["model"]),
            ("key file", key_file(settings)),
        ],
    )
    given = settings["output_format"]
    fmt_out = get_format(given) if given else output_format_of(output)
    path = local_path(settings["data"])
    model, info = load_model(settings)
    trained_on = (info.get("metadata") or {}).get("data") or {}
    fmt = data_format(path, settings["input_format"], trained_on=trained_on.get("format"))
    _check_proba(settings, model)
    id_column = settings["id_column"]
    with cluster(settings, verbose=verbose) as client:
        print_dashboard(client, settings)
        if model is None:  # partitioned coefficients: into parameter shards on this cluster
            model, info = load_model(settings)
            _check_proba(settings, model)
        X, ids, origin = read_for_model(
            path,
            trained_on,
            fmt=fmt,
            target=None,
            read_options=settings["read_options"],
            n_features=getattr(model, "n_features_in_", None),
            id_column=id_column,
        )
        dataset = _prediction_dataset(model, X, origin, proba=settings["proba"])
        if id_column:
            if not _is_table(origin):
                msg = "--id-column applies to tables (CSV, parquet); xarray outputs keep their coordinates."
                raise ValueError(msg)
            dataset["id"] = (("sample",), ids)
            dataset["id"].attrs["name"] = str(id_column)
        tabular = _is_table(origin)
        classes = getattr(model, "classes_", None)
        width = max((len(str(c)) for c in classes), default=1) if classes is not None else 1
        write_s = time.perf_counter()
        atomic_output(
            output,
            lambda temporary: fmt_out.writer(dataset, temporary, tabular=tabular, label_width=width),
        )
        elapsed = time.perf_counter() - write_s
    print(f"Predicted {X.shape[0]:,} rows with {type(model).__name__} in {elapsed:.2f} s")
    print(f"  written to  {output} ({fmt_out.name})")


def _check_proba(settings: Mapping[str, Any], model: Any) -> None:
    """Refuse ``--proba`` for a model without ``predict_proba`` (``None``: not loaded yet, checked later)."""
    if model is not None and settings["proba"] and not hasattr(model, "predict_proba"):
        msg = (
            f"--proba needs a classifier with predict_proba; the {type(model).__name__} in the model file has "
            "none."
        )
        raise ValueError(msg)


def _is_table(origin: Any) -> bool:
    return origin is None or origin.kind != "xarray"


def _prediction_dataset(model: Any, X: Any, origin: Any, *, proba: bool) -> Any:
    """An xarray Dataset of lazy predictions: on the input's coordinates for xarray input, else on ``sample``."""
    import xarray as xr

    prediction = model.predict(X)
    probability = model.predict_proba(X) if proba else None
    classes = getattr(model, "classes_", None)
    if not _is_table(origin):
        variables = {"prediction": wrap_output(prediction, origin, name="prediction")}
        if probability is not None:
            variables["probability"] = wrap_output(probability, origin, columns=classes, name="probability")
            variables["probability"] = variables["probability"].rename({"column": "class"})
        return xr.Dataset(variables)
    variables = {"prediction": (("sample",), prediction)}
    coords = {}
    if probability is not None:
        variables["probability"] = (("sample", "class"), probability)
        coords["class"] = np.asarray(classes)
    return xr.Dataset(variables, coords=coords)
