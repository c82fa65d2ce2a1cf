"""The file formats of :func:`daskml_lab.data.read`: one module per format and one registry line each.

Each format is a :class:`Format` entry: its name, file suffixes (and compressed forms), its reader, how its
``features=`` keyword chooses features, and, for formats the command line writes predictions in, its writer.
:func:`~daskml_lab.data.read` picks the entry from the path (:func:`format_of`), and the ``daskml-lab`` command
line takes its ``--input-format`` and ``--output-format`` choices, and its per-format rules, from :data:`FORMATS`.

==========  ========================================  ======================  =========================
name        suffixes                                  reader                  writer (predictions)
==========  ========================================  ======================  =========================
zarr        ``.zarr`` (or a directory with metadata)  ``read_zarr``           ``.zarr``
netcdf      ``.nc``, ``.nc4``, ``.h5``, ``.hdf5``...  ``read_netcdf``         ``.nc``, ``.nc4``
parquet     ``.parquet``, ``.pq`` (or a directory)    ``read_parquet``        ``.parquet``, ``.pq``
csv         ``.csv``, ``.tsv``, ``.data``, ``.gz``..  ``read_csv``            ``.csv``
svmlight    ``.svm``, ``.svmlight``, ``.libsvm``      ``read_svmlight``       --
==========  ========================================  ======================  =========================

To add a format, write one module whose reader takes ``(path, target=None, **options)`` and ends in
:func:`daskml_lab.data.check_X_y`, define its :class:`Format`, and register it (see :doc:`/data_loading`).
"""

from daskml_lab.data.formats._common import check_exists
from daskml_lab.data.formats._csv import CSV
from daskml_lab.data.formats._netcdf import NETCDF
from daskml_lab.data.formats._parquet import PARQUET
from daskml_lab.data.formats._registry import (
    FORMATS,
    Format,
    format_of,
    get_format,
    output_format_of,
    output_formats,
    read,
    register_format,
    unregister_format,
)
from daskml_lab.data.formats._svmlight import SVMLIGHT
from daskml_lab.data.formats._zarr import ZARR

__all__ = [
    "FORMATS",
    "Format",
    "check_exists",
    "format_of",
    "get_format",
    "output_format_of",
    "output_formats",
    "read",
    "register_format",
    "unregister_format",
]

# The order is the order in which formats are tried: a directory holding zarr metadata is a zarr store before
# it could be taken for a parquet dataset.
register_format(ZARR)
register_format(NETCDF)
register_format(PARQUET)
register_format(CSV)
register_format(SVMLIGHT)
