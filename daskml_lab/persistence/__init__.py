"""Save fitted estimators to a file and load them back, safely: nothing in the file is ever unpickled.

A model file is a zip archive holding three members:

- ``daskml_lab.json``: readable metadata, the format name and version, the versions of daskml_lab, Python,
  scikit-learn, numpy and skops that wrote it, the estimator's class and parameters (``get_params``), a
  training summary (features, classes, iterations, shards, fit time) and the caller's own metadata;
- ``model.skops``: the estimator in the `skops <https://skops.readthedocs.io>`_ format, which stores objects
  as a JSON description plus numpy arrays (``.npy`` files read with ``allow_pickle=False``);
- ``checksum.json``: one SHA-256 checksum over both members, or an HMAC-SHA256 signature when the model was
  saved with a key (``save(model, path, key=...)``), so that no part a prediction depends on can be edited
  unnoticed.

A linear model whose coefficients stay in parameter shards on the workers adds one ``.npy`` member per slice of
them, written and read one at a time, each listed with its SHA-256 in the (checksummed) metadata.

Loading reads the list of types the file would create *before* creating anything, and refuses the file when
one of them is not trusted (see :func:`load` for the allowlist). A package trusts a type of its own with
:func:`register_trusted_type` when it is imported. pandas objects inside a model (``history_``, the shard
report) are stored as plain lists and numpy arrays and rebuilt on load. The arrays that compiled code reads
when predicting (trees, libsvm's support vectors, linear coefficients) are checked before the model is
returned. Before anything is decompressed or allocated, each member's size is checked against a cap
(``load(..., max_member_bytes=)``, 2 GiB by default) and its compression ratio against another, the reads stop
at the cap, and every ``.npy`` header is checked against the bytes behind it and the estimator's own shapes.

The implementation is split by responsibility: the file container and its checksum (``_container``), the
resource caps and bounded reads (``_limits``), the shapes declared before allocation (``_declared``), the
trusted types and their registry (``_trusted``), pandas objects as plain values (``_pandas``), the checks of
the arrays of a loaded model (``_checks`` for trees, libsvm and linear models, ``_families`` for the other
families), partitioned coefficients streamed slice by slice (``_streamed``), the readable summary (``_summary``)
and the public functions (``_api``).
"""

from daskml_lab.persistence._api import describe, load, save
from daskml_lab.persistence._container import FORMAT_NAME, FORMAT_VERSION, read_key
from daskml_lab.persistence._summary import training_summary
from daskml_lab.persistence._trusted import TRUSTED_SKLEARN_TYPES, register_trusted_type

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "TRUSTED_SKLEARN_TYPES",
    "describe",
    "load",
    "read_key",
    "register_trusted_type",
    "save",
    "training_summary",
]

# Model files name the pandas stand-in daskml_lab.persistence._StoredPandas (its home before persistence became
# a package, kept as its __module__): skops finds the class here when it loads them.
from daskml_lab.persistence._pandas import _StoredPandas as _StoredPandas
