"""The format registry: its entries, dispatch by suffix, registering a new format, and the CLI's choices."""

from __future__ import annotations

import dataclasses

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from daskml_lab.cli._config import COMMAND_OPTIONS
from daskml_lab.cli._main import build_parser
from daskml_lab.data import check_array, read
from daskml_lab.data.formats import (
    FORMATS,
    Format,
    format_of,
    get_format,
    output_format_of,
    output_formats,
    register_format,
    unregister_format,
)
from daskml_lab.data.formats._registry import _BY_NAME

COMPRESSIONS = (".gz", ".bz2", ".xz", ".zip", ".zst")


@pytest.fixture
def registry():
    """Restore the registry, in its order, whatever the test registers or removes."""
    saved = dict(_BY_NAME)
    yield FORMATS
    _BY_NAME.clear()
    _BY_NAME.update(saved)


def read_npy(path, target=None, *, features=None):
    """The reader of the worked example in docs/data_loading.rst: a 2-D .npy file is X."""
    if target is not None:
        msg = f"A .npy file holds X only; target={target!r} cannot be read from it."
        raise ValueError(msg)
    X = da.from_array(np.load(path, mmap_mode="r"), chunks=(2, -1))
    if features is not None:
        X = X[:, list(features)]
    return check_array(X)[0]


NPY = Format(
    name="npy",
    description="numpy .npy",
    suffixes=(".npy",),
    reader=read_npy,
    features="positions of columns",
)


# ---------------------------------------------------------------------------------------------------------
# the entries


def test_registry_lists_every_format_with_its_suffixes():
    assert {name: (fmt.suffixes, fmt.compressions) for name, fmt in FORMATS.items()} == {
        "zarr": ((".zarr",), ()),
        "netcdf": ((".nc", ".nc4", ".cdf", ".h5", ".hdf5", ".hdf", ".he5"), ()),
        "parquet": ((".parquet", ".pq"), ()),
        "csv": ((".csv", ".tsv", ".data"), COMPRESSIONS),
        "svmlight": ((".svm", ".svmlight", ".libsvm"), COMPRESSIONS),
    }
    assert all(fmt.name == name for name, fmt in FORMATS.items())
    # how features are chosen: by the one features= keyword, except for numbered features
    assert [name for name, fmt in FORMATS.items() if fmt.features is None] == ["svmlight"]
    assert [name for name, fmt in FORMATS.items() if fmt.labels_in_file] == ["svmlight"]
    assert [name for name, fmt in FORMATS.items() if fmt.table] == ["parquet", "csv"]
    assert {name: fmt.written_suffixes for name, fmt in FORMATS.items()} == {
        "zarr": (".zarr",),
        "netcdf": (".nc", ".nc4"),
        "parquet": (".parquet", ".pq"),
        "csv": (".csv",),
        "svmlight": (),
    }
    assert output_formats() == ("parquet", "csv", "zarr", "netcdf")


def test_formats_is_read_only():
    with pytest.raises(TypeError):
        FORMATS["npy"] = NPY  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.zarr", "zarr"),
        ("a.NC", "netcdf"),
        ("a.h5", "netcdf"),
        ("a.pq", "parquet"),
        ("a.csv", "csv"),
        ("a.tsv.gz", "csv"),
        ("a.csv.zst", "csv"),
        ("a.libsvm", "svmlight"),
        ("a.svm.bz2", "svmlight"),
    ],
)
def test_format_of_uses_suffixes_and_compressions(tmp_path, name, expected):
    path = tmp_path / name
    path.write_bytes(b"")
    assert format_of(path).name == expected
    assert format_of(f"s3://bucket/{name}").name == expected  # URLs are not checked for existence
    assert format_of(path, "csv").name == "csv"  # a given format wins


def test_format_of_rejects_compressed_binary_containers_and_unknown_names(tmp_path):
    path = tmp_path / "a.parquet.gz"
    path.write_bytes(b"")
    with pytest.raises(
        ValueError, match=r"Cannot tell the format of .*a\.parquet\.gz.*format=\.\.\.\) with one"
    ):
        format_of(path)
    with pytest.raises(ValueError, match=r"Unknown format 'xlsx'; use one of \['csv', 'netcdf'"):
        format_of(path, "xlsx")
    with pytest.raises(FileNotFoundError, match=r"No such file or directory: '.*absent\.csv'"):
        format_of(tmp_path / "absent.csv")


def test_directories_are_recognised_by_their_entries(tmp_path):
    zarr_store = tmp_path / "store"
    zarr_store.mkdir()
    (zarr_store / ".zgroup").write_text("{}")
    parquet_dataset = tmp_path / "dataset"
    parquet_dataset.mkdir()
    pd.DataFrame({"a": [1.0]}).to_parquet(parquet_dataset / "part.0.parquet")
    assert format_of(zarr_store).name == "zarr"
    assert format_of(parquet_dataset).name == "parquet"
    with pytest.raises(ValueError, match=r"is neither a zarr store .* nor a parquet dataset"):
        format_of(tmp_path)


def test_read_dispatches_by_suffix_through_the_registry(tmp_path, registry):
    calls = []
    for fmt in list(FORMATS.values()):

        def fake(path, target=None, _name=fmt.name, **options):
            calls.append((_name, path.name, target, options))
            return _name

        _BY_NAME[fmt.name] = dataclasses.replace(fmt, reader=fake)  # same place in the order
    names = ["a.zarr", "b.nc4", "c.parquet", "d.tsv.xz", "e.svmlight"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    results = [read(tmp_path / name, "y", features=["f"]) for name in names]
    assert results == ["zarr", "netcdf", "parquet", "csv", "svmlight"]
    assert calls == [
        (kind, name, "y", {"features": ["f"]}) for kind, name in zip(results, names, strict=True)
    ]
    assert read(tmp_path / "a.zarr", format="csv") == "csv"


def test_output_format_of_uses_the_writers_suffixes():
    assert output_format_of("predictions.PQ").name == "parquet"
    assert output_format_of("/out/map.zarr/").name == "zarr"
    assert output_format_of("map.nc4").name == "netcdf"
    with pytest.raises(
        ValueError, match=r"from 'p\.h5': use an extension among \.parquet, \.pq, \.csv, \.zarr, \.nc, \.nc4"
    ):
        output_format_of("p.h5")  # read as netCDF/HDF5, never written as such


# ---------------------------------------------------------------------------------------------------------
# adding a format: one module and one registry line


def test_a_registered_format_is_read_by_read_then_forgotten(tmp_path, registry):
    values = np.arange(12.0).reshape(4, 3)
    path = tmp_path / "X.npy"
    np.save(path, values)
    with pytest.raises(ValueError, match="Cannot tell the format"):
        read(path)
    register_format(NPY)
    try:
        assert list(FORMATS)[-1] == "npy"
        assert format_of(path) is NPY
        X = read(path)
        assert isinstance(X, da.Array)
        assert X.chunks == ((2, 2), (3,))
        np.testing.assert_array_equal(X.compute(), values)
        np.testing.assert_array_equal(read(path, features=[2, 0]).compute(), values[:, [2, 0]])
        with pytest.raises(ValueError, match=r"holds X only; target='y'"):
            read(path, "y")
    finally:
        assert unregister_format("npy") is NPY
    assert "npy" not in FORMATS
    with pytest.raises(ValueError, match="Cannot tell the format"):
        read(path)
    with pytest.raises(ValueError, match="Unknown format 'npy'"):
        get_format("npy")


def test_register_format_refuses_clashes_and_bad_entries(registry):
    with pytest.raises(ValueError, match=r"A format named 'csv' is already registered"):
        register_format(dataclasses.replace(NPY, name="csv"))
    with pytest.raises(
        ValueError, match=r"suffix\(es\) \['.tsv'\] of format 'npy' already belong to format 'csv'"
    ):
        register_format(dataclasses.replace(NPY, suffixes=(".npy", ".tsv")))
    with pytest.raises(
        TypeError, match=r"register_format takes a daskml_lab\.data\.formats\.Format; got dict"
    ):
        register_format({"name": "npy"})  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"suffixes of format 'npy' must be a tuple of lower-case extensions"
    ):
        dataclasses.replace(NPY, suffixes=("npy",))
    with pytest.raises(TypeError, match=r"reader of format 'npy' must be callable"):
        dataclasses.replace(NPY, reader=None)
    with pytest.raises(ValueError, match=r"Unknown format 'npy'"):
        unregister_format("npy")
    assert "npy" not in FORMATS


# ---------------------------------------------------------------------------------------------------------
# the command line takes its choices from the registry


def _option(command, key):
    return next(option for option in COMMAND_OPTIONS[command] if option.key == key)


@pytest.mark.parametrize("command", ["fit", "predict", "evaluate"])
def test_cli_format_choices_are_the_registry_names(command):
    assert _option(command, "input_format").choices == tuple(FORMATS)
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    actions = {a.dest: a for a in subparsers.choices[command]._actions}
    assert tuple(actions["input_format"].choices) == tuple(FORMATS)
    if command == "predict":
        assert _option(command, "output_format").choices == output_formats()
        assert tuple(actions["output_format"].choices) == output_formats()
