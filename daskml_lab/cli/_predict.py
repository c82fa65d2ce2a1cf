"""``daskml-lab predict``: lazy predictions written by the workers to parquet, zarr or netCDF."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from daskml_lab.cli._data import atomic_output, check_output, cluster, data_format, local_path, read_for_model

__all__ = ["load_model", "run_predict"]

_OUTPUT_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".zarr": "zarr",
    ".nc": "netcdf",
    ".nc4": "netcdf",
}


def load_model(path: str, trust: list[str]) -> tuple[Any, dict[str, Any]]:
    """The model of a file written by ``fit`` (or :func:`daskml_lab.persistence.save`) and its metadata."""
    from daskml_lab.persistence import describe, load

    where = local_path(path)
    info = describe(where)
    return load(where, trusted=trust or None), info


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
    output = check_output(settings["output"], overwrite=settings["overwrite"], what="output")
    fmt_out = settings["output_format"] or _output_format(output)
    path = local_path(settings["data"])
    fmt = data_format(path, settings["data_format"])
    model, info = load_model(settings["model"], settings["trust"])
    if settings["proba"] and not hasattr(model, "predict_proba"):
        msg = (
            f"--proba needs a classifier with predict_proba; the {type(model).__name__} in the model file has "
            "none."
        )
        raise ValueError(msg)
    trained_on = (info.get("metadata") or {}).get("data") or {}
    with cluster(settings, verbose=verbose) as client:
        print(f"Dask dashboard: {client.dashboard_link}")
        X, _, origin = read_for_model(
            path,
            trained_on,
            fmt=fmt,
            target=None,
            read_options=settings["read_options"],
            n_features=getattr(model, "n_features_in_", None),
        )
        dataset = _prediction_dataset(model, X, origin, proba=settings["proba"])
        tabular = _is_table(origin)
        classes = getattr(model, "classes_", None)
        width = max((len(str(c)) for c in classes), default=1) if classes is not None else 1
        write_s = time.perf_counter()
        atomic_output(
            output,
            lambda temporary: _write(dataset, temporary, fmt_out, tabular=tabular, label_width=width),
        )
        elapsed = time.perf_counter() - write_s
    print(f"Predicted {X.shape[0]:,} rows with {type(model).__name__} in {elapsed:.2f} s")
    print(f"  written to  {output} ({fmt_out})")


def _output_format(output: Path) -> str:
    suffix = output.suffix.lower()
    if suffix not in _OUTPUT_SUFFIXES:
        msg = (
            f"Cannot tell the output format from {output.name!r}: use an extension among "
            f"{', '.join(_OUTPUT_SUFFIXES)}, or --format parquet|zarr|netcdf."
        )
        raise ValueError(msg)
    return _OUTPUT_SUFFIXES[suffix]


def _is_table(origin: Any) -> bool:
    return origin is None or origin.kind != "xarray"


def _prediction_dataset(model: Any, X: Any, origin: Any, *, proba: bool) -> Any:
    """An xarray Dataset of lazy predictions: on the input's coordinates for xarray input, else on ``sample``."""
    import xarray as xr

    prediction = model.predict(X)
    probability = model.predict_proba(X) if proba else None
    classes = getattr(model, "classes_", None)
    if not _is_table(origin):
        from daskml_lab.data._convert import wrap_output

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


def _write(dataset: Any, path: str, fmt: str, *, tabular: bool, label_width: int) -> None:
    """Write the lazy Dataset from the workers (each block is computed and written where it is)."""
    if fmt == "parquet":
        frame = _table_frame(dataset) if tabular else dataset.to_dask_dataframe()
        # compute: each worker writes its partitions; only file metadata reach the client
        frame.to_parquet(path, write_index=False)
    elif fmt == "zarr":
        dataset, text = _text_as_fixed_width(dataset, label_width)
        regular = dataset.chunk({dim: max(sizes) for dim, sizes in dataset.chunks.items()})
        # Zarr format 3 has no stable specification for text arrays yet: text labels are written in format 2.
        options = {"zarr_format": 2} if text else {}
        with warnings.catch_warnings():
            # Consolidated metadata (which readers such as xarray.open_zarr expect) is an extension of format 3.
            warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
            # compute: each worker writes its chunks (zarr needs regular chunks along each dimension)
            regular.to_zarr(path, mode="w-", **options)
    else:
        dataset, _ = _text_as_fixed_width(dataset, label_width)
        # compute: the workers write the blocks into the netCDF file, one at a time under xarray's lock
        dataset.to_netcdf(path)


def _text_as_fixed_width(dataset: Any, width: int) -> tuple[Any, bool]:
    """Object (text) labels as fixed-width unicode, which zarr and netCDF store without inspecting values."""
    text = False
    for name in list(dataset.variables):
        if dataset[name].dtype.kind in "US":
            text = True
        if dataset[name].dtype == object:
            text = True
            converted = dataset[name].astype(f"<U{max(width, 3)}")  # 3: room for "nan" of masked samples
            if name in dataset.coords:
                dataset = dataset.assign_coords({name: converted})
            else:
                dataset[name] = converted
    return dataset, text


def _table_frame(dataset: Any) -> Any:
    """A dask DataFrame with one row per sample: ``row``, ``prediction`` and ``proba_<class>`` columns."""
    import dask
    import dask.dataframe as dd

    prediction = dataset["prediction"].data
    probability = dataset["probability"].data if "probability" in dataset else None
    columns = ["row", "prediction"]
    if probability is not None:
        columns += [f"proba_{label}" for label in dataset["class"].values.tolist()]
    offsets = np.cumsum((0, *prediction.chunks[0]))
    blocks = prediction.to_delayed().ravel()
    proba_blocks = probability.to_delayed().ravel() if probability is not None else [None] * len(blocks)
    parts = [
        dask.delayed(_frame_block, pure=True)(block, proba, columns, int(offsets[i]))
        for i, (block, proba) in enumerate(zip(blocks, proba_blocks, strict=True))
    ]
    meta = _frame_block(
        np.empty(0, dtype=prediction.dtype),
        None if probability is None else np.empty((0, probability.shape[1]), dtype=probability.dtype),
        columns,
        0,
    )
    sizes = prediction.chunks[0]
    divisions = (*offsets[:-1].tolist(), int(offsets[-1]) - 1) if sizes and min(sizes) > 0 else None
    return dd.from_delayed(parts, meta=meta, divisions=divisions, verify_meta=False)


def _frame_block(prediction: np.ndarray, probability: Any, columns: list[str], offset: int) -> Any:
    """One block of predictions (and probabilities) with the row numbers of the input, as a DataFrame."""
    import pandas as pd

    index = pd.RangeIndex(offset, offset + len(prediction))
    data = {"row": np.arange(offset, offset + len(prediction), dtype=np.int64), "prediction": prediction}
    if probability is not None:
        for j, name in enumerate(columns[2:]):
            data[name] = np.asarray(probability)[:, j]
    return pd.DataFrame(data, index=index, columns=columns)
