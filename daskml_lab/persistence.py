"""Save fitted estimators to a file and load them back, safely: nothing in the file is ever unpickled.

A model file is a zip archive holding two members:

- ``daskml_lab.json``: readable metadata, the format name and version, the versions of daskml_lab, Python,
  scikit-learn, numpy and skops that wrote it, the estimator's class and parameters (``get_params``), a
  training summary (features, classes, iterations, shards, fit time) and the caller's own metadata;
- ``model.skops``: the estimator in the `skops <https://skops.readthedocs.io>`_ format, which stores objects
  as a JSON description plus numpy arrays (``.npy`` files read with ``allow_pickle=False``), together with its
  SHA-256 checksum in the metadata.

Loading reads the list of types the file would create *before* creating anything, and refuses the file when
one of them is not trusted (see :func:`load` for the allowlist). pandas objects inside a model (``history_``,
the shard report) are stored as plain lists and numpy arrays and rebuilt on load.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import importlib
import json
import logging
import math
import numbers
import os
import platform
import tempfile
import types
import warnings
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daskml_lab._version import __version__
from daskml_lab.exceptions import ModelVersionWarning, UntrustedTypesError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "TRUSTED_SKLEARN_TYPES", "describe", "load", "save"]

logger = logging.getLogger(__name__)

#: Name written in (and required from) the metadata of every model file.
FORMAT_NAME = "daskml-lab-model"
#: Version of the file layout; files of a newer layout are refused.
FORMAT_VERSION = 1
#: Internal scikit-learn types (not estimators) that fitted estimators hold and :func:`load` trusts.
TRUSTED_SKLEARN_TYPES: tuple[str, ...] = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    *(
        f"sklearn.metrics._dist_metrics.{name}Distance{bits}"
        for name in ("Euclidean", "Manhattan", "Chebyshev")
        for bits in (32, 64)
    ),
)

#: Harmless standard-library types an estimator parameter may hold (``checkpoint=pathlib.Path(...)``).
_TRUSTED_STDLIB_TYPES = ("pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.Path")

_METADATA_NAME = "daskml_lab.json"
_PAYLOAD_NAME = "model.skops"
_MAX_METADATA_BYTES = 64 * 2**20
_VERSIONED_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "skops")


# ---------------------------------------------------------------------------------------------------------
# public API


def save(model: Any, path: str | os.PathLike[str], *, metadata: Mapping[str, Any] | None = None) -> Path:
    """Save an estimator (fitted or not) to ``path`` in a safe format.

    Parameters
    ----------
    model : estimator instance
        Any estimator of daskml_lab (linear models, shard ensembles with any scikit-learn base estimator and
        fusion, :class:`~daskml_lab.ensemble.CascadeSVC`), or a scikit-learn estimator or pipeline.
    path : str or path-like
        The file to write. It is written to a temporary file in the same folder first and renamed when
        complete, so an interrupted save never leaves a partial file behind (an existing file is replaced).
    metadata : dict, default=None
        Extra JSON-serialisable information stored under ``"metadata"`` (for instance how the training data
        were read); :func:`describe` returns it.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``model`` is not an estimator, ``metadata`` is not JSON-serialisable, or the model holds an object
        that cannot be stored safely (the message names it).
    FileNotFoundError
        If the folder of ``path`` does not exist.

    See Also
    --------
    load : Load the model back.
    describe : Read the metadata of a model file without loading the model.

    Notes
    -----
    The file records the daskml_lab version, the class, ``get_params(deep=False)`` (estimators given as
    parameters are described by class and parameters) and a training summary: ``n_features_in_``,
    ``classes_``, ``n_iter_``, the solver time and final objective from ``history_``, and for shard ensembles
    the number of shards, rows, models per class and the summed shard fit time from ``shard_report_``.

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import Ridge
    >>> from daskml_lab.persistence import load, save
    >>> model = Ridge().fit(np.array([[0.0], [1.0], [2.0]]), np.array([0.0, 1.0, 2.0]))
    >>> path = save(model, "ridge.model")  # doctest: +SKIP
    >>> load(path).predict(np.array([[3.0]]))  # doctest: +SKIP
    array([2.6...])
    """
    if not callable(getattr(model, "get_params", None)):
        msg = (
            f"save() stores estimators (objects with get_params, such as daskml_lab or scikit-learn models); "
            f"got an object of type {_type_name(type(model))}."
        )
        raise TypeError(msg)
    target = Path(os.fspath(path))
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        msg = (
            f"Cannot save the model to {os.fspath(path)!r}: the folder {os.fspath(folder)!r} does not exist. "
            "Create it first."
        )
        raise FileNotFoundError(msg)
    extra = _plain(dict(metadata)) if metadata is not None else {}
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError) as err:
        msg = f"metadata must be JSON-serialisable (str, numbers, lists, dicts); {err}."
        raise TypeError(msg) from err

    payload = _dump_payload(model)
    info = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "daskml_lab_version": __version__,
        "versions": {"python": platform.python_version(), **{n: _version_of(n) for n in _VERSIONED_PACKAGES}},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "class": _type_name(type(model)),
        "params": _describe_params(model),
        "summary": training_summary(model),
        "metadata": extra,
        "payload": {
            "name": _PAYLOAD_NAME,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "n_bytes": len(payload),
        },
    }
    text = json.dumps(info, indent=2, allow_nan=False)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_METADATA_NAME, text)
            archive.writestr(_PAYLOAD_NAME, payload)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    logger.info("Saved %s to %s (%d bytes of model state)", type(model).__name__, target, len(payload))
    return target


def load(path: str | os.PathLike[str], *, trusted: Sequence[str] | None = None) -> Any:
    """Load an estimator saved with :func:`save`, creating only objects of trusted types.

    The types the file would create are listed first, without creating anything. These are trusted by
    default:

    - the types skops trusts: Python builtins and containers, numpy arrays, scalars, dtypes and random
      generators, scipy sparse matrices and every public scikit-learn estimator;
    - classes of daskml_lab that are estimators or fusion strategies (subclasses of
      :class:`sklearn.base.BaseEstimator`), the shard report, and this module's container for pandas objects;
    - scikit-learn estimator classes (subclasses of :class:`~sklearn.base.BaseEstimator`, private ones
      included) and the internal types of :data:`TRUSTED_SKLEARN_TYPES`: decision trees, histogram gradient
      boosting predictors, the neighbours' search trees, calibrated classifiers and parameter-free distance
      metrics. The index arrays of the trees are checked after loading (a crafted tree could otherwise make
      scikit-learn's compiled code read outside its arrays when predicting);
    - :class:`pathlib.Path` objects (an estimator's ``checkpoint`` parameter may hold one).

    Any other type (functions, classes of other packages, ...) makes ``load`` raise
    :class:`~daskml_lab.exceptions.UntrustedTypesError` listing it, unless it is given in ``trusted``.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    trusted : list of str, default=None
        Fully qualified names of further types to trust, as listed by the error or by :func:`describe`
        (``"untrusted_types"``). Only trust types you have checked: creating an object of an arbitrary type
        can run code.

    Returns
    -------
    estimator
        The estimator as it was saved; a fitted model predicts exactly what it predicted before.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a model file written by :func:`save`, is truncated, corrupt or has been modified
        (checksum), or was written in a newer file format.
    UntrustedTypesError
        A ``ValueError`` listing the types that are not trusted; nothing was created.
    TypeError
        If ``trusted`` is not a list of type names.

    Warns
    -----
    ModelVersionWarning
        When the file was written by another version of daskml_lab or scikit-learn.

    Examples
    --------
    >>> model = load("model.daskml")  # doctest: +SKIP
    >>> model = load("model.daskml", trusted=["mypackage.MyTransformer"])  # doctest: +SKIP
    """
    extra_trusted = _check_trusted(trusted)
    info, payload = _read_file(path)
    untrusted = [name for name in _untrusted_types(payload, path) if name not in extra_trusted]
    if untrusted:
        msg = (
            f"{os.fspath(path)!r} holds types that are not trusted by default: {untrusted}. Nothing was "
            "loaded. Creating objects of unknown types can run code; if you trust the file, check them "
            "(daskml_lab.persistence.describe(path) shows the metadata) and pass "
            f"load(path, trusted={untrusted}) (on the command line: --trust TYPE for each)."
        )
        raise UntrustedTypesError(msg, untrusted)
    import skops.io

    allowed = sorted(set(extra_trusted) | set(_untrusted_types(payload, path, apply_policy=False)))
    try:
        stored = skops.io.loads(payload, trusted=allowed)
    except UntrustedTypesError:
        raise
    except Exception as err:  # a crafted file can raise anything while its objects are built
        msg = (
            f"The model in {os.fspath(path)!r} could not be rebuilt ({type(err).__name__}: {err}); the file "
            "is corrupt or was modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg) from err
    model = _restore_pandas(stored, set())
    problem = _structure_problem(model, None, set())
    if problem is not None:
        msg = (
            f"The model in {os.fspath(path)!r} is inconsistent: {problem}. Predicting with it could crash, so it "
            "is refused; the file is corrupt or was modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    if _type_name(type(model)) != info["class"]:
        msg = (
            f"{os.fspath(path)!r} is inconsistent: its metadata describes a {info['class']} but it holds a "
            f"{_type_name(type(model))}. The file was modified; save the model again."
        )
        raise ValueError(msg)
    _warn_on_versions(info, path)
    return model


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a model file, read without creating the model.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    dict
        The JSON metadata (``format``, ``daskml_lab_version``, ``versions``, ``created``, ``class``,
        ``params``, ``summary``, ``metadata``, ``payload``), plus ``untrusted_types``: the types :func:`load`
        would refuse without ``trusted=``.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`load`.

    Examples
    --------
    >>> describe("model.daskml")["summary"]["n_features_in"]  # doctest: +SKIP
    10
    """
    info, payload = _read_file(path)
    return {**info, "untrusted_types": _untrusted_types(payload, path)}


def training_summary(model: Any) -> dict[str, Any]:
    """A small JSON-safe summary of what a fitted estimator learned (empty fields are left out).

    Parameters
    ----------
    model : estimator instance
        Any estimator.

    Returns
    -------
    dict
        ``estimator`` (class name), ``fitted``, and when available ``n_features_in``, ``feature_names_in``,
        ``classes``, ``n_iter``, ``n_estimators``, ``fusion``, ``n_shards``, a ``history`` summary
        (``n_records``, ``final_objective``, ``solver_time_s``) and a ``shards`` summary of the shard report
        (``n_shards``, ``n_rows``, ``n_train``, ``n_held_out``, ``models``, ``mean_validation_score``,
        ``fit_time_s``).

    Examples
    --------
    >>> import numpy as np
    >>> from daskml_lab.linear_model import Ridge
    >>> model = Ridge().fit(np.array([[0.0], [1.0], [2.0]]), np.array([0.0, 1.0, 2.0]))
    >>> summary = training_summary(model)
    >>> summary["estimator"], summary["n_features_in"], summary["fitted"]
    ('Ridge', 1, True)
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    summary: dict[str, Any] = {"estimator": type(model).__name__}
    try:
        check_is_fitted(model)
        summary["fitted"] = True
    except (NotFittedError, TypeError):
        summary["fitted"] = False
    for attribute, key in (
        ("n_features_in_", "n_features_in"),
        ("feature_names_in_", "feature_names_in"),
        ("classes_", "classes"),
        ("n_iter_", "n_iter"),
        ("n_shards_", "n_shards"),
    ):
        value = getattr(model, attribute, None)
        if value is not None:
            summary[key] = _json_safe(value)
    estimators = getattr(model, "estimators_", None)
    if isinstance(estimators, list):
        summary["n_estimators"] = len(estimators)
    fusion = getattr(model, "fusion_", None)
    if fusion is not None:
        summary["fusion"] = type(fusion).__name__
    history = getattr(model, "history_", None)
    if isinstance(history, pd.DataFrame):
        record: dict[str, Any] = {"n_records": len(history)}
        if len(history) and "objective" in history:
            record["final_objective"] = _json_safe(history["objective"].iloc[-1])
        if len(history) and "time_s" in history:
            record["solver_time_s"] = _json_safe(history["time_s"].max())
        summary["history"] = record
    report = getattr(model, "shard_report_", None)
    if report is not None and callable(getattr(report, "to_frame", None)):
        summary["shards"] = _shard_summary(report.to_frame())
    return summary


# ---------------------------------------------------------------------------------------------------------
# writing


def _dump_payload(model: Any) -> bytes:
    """The model as skops bytes, pandas objects replaced by plain containers (the model is not changed)."""
    import skops.io

    found: dict[int, Any] = {}
    _find_pandas(model, found, set())
    storable = model
    if found:
        # deepcopy substitutes every memo entry for the object of that id: the frames become _StoredPandas.
        memo: dict[int, Any] = {key: _pack_pandas(obj) for key, obj in found.items()}
        storable = copy.deepcopy(model, memo)
    try:
        return skops.io.dumps(storable)
    except Exception as err:  # skops raises various types for objects it cannot describe
        msg = (
            f"The {type(model).__name__} could not be saved safely: {type(err).__name__}: {err}. An "
            "attribute holds an object that the skops format cannot store without pickle."
        )
        raise TypeError(msg) from err


def _find_pandas(obj: Any, found: dict[int, Any], seen: set[int]) -> None:
    """Record every pandas object reachable through containers and instance attributes."""
    if id(obj) in seen or obj is None or isinstance(obj, str | bytes | numbers.Number | np.ndarray | type):
        return
    seen.add(id(obj))
    if isinstance(obj, pd.DataFrame | pd.Series | pd.Index):
        found[id(obj)] = obj
    elif isinstance(obj, dict):
        for value in obj.values():
            _find_pandas(value, found, seen)
    elif isinstance(obj, list | tuple | set | frozenset):
        for value in obj:
            _find_pandas(value, found, seen)
    elif _has_state(obj):
        for value in vars(obj).values():
            _find_pandas(value, found, seen)


def _has_state(obj: Any) -> bool:
    """Whether ``obj`` is an instance whose attributes may hold model state (not a function or module)."""
    return hasattr(obj, "__dict__") and not isinstance(obj, _STATELESS)


_STATELESS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type,
)


class _StoredPandas:
    """A pandas object as plain values: what a saved model holds in place of a DataFrame, Series or Index.

    Attributes
    ----------
    kind : {"frame", "series", "index", "range-index"}
        What it stands for.
    fields : dict
        ``values`` (numpy array, or a list for non-numpy dtypes), ``dtype`` (its string), ``name``,
        ``index`` and ``columns`` (nested stand-ins), or ``start``/``stop``/``step`` of a RangeIndex.
    """

    def __init__(self, kind: str, fields: dict[str, Any]) -> None:
        self.kind = kind
        self.fields = fields


def _pack_pandas(obj: Any) -> _StoredPandas:
    if isinstance(obj, pd.DataFrame):
        columns = [_pack_values(obj.iloc[:, i]) for i in range(obj.shape[1])]
        return _StoredPandas(
            "frame", {"columns": _pack_pandas(obj.columns), "index": _pack_pandas(obj.index), "data": columns}
        )
    if isinstance(obj, pd.Series):
        return _StoredPandas(
            "series", {**_pack_values(obj), "name": _label(obj.name), "index": _pack_pandas(obj.index)}
        )
    if isinstance(obj, pd.MultiIndex):
        msg = "A model attribute holds a pandas MultiIndex, which save() cannot store; reset the index first."
        raise TypeError(msg)
    if isinstance(obj, pd.RangeIndex):
        return _StoredPandas(
            "range-index", {"start": obj.start, "stop": obj.stop, "step": obj.step, "name": _label(obj.name)}
        )
    return _StoredPandas("index", {**_pack_values(obj), "name": _label(obj.name)})


def _pack_values(values: Any) -> dict[str, Any]:
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        return {"values": np.array(values.to_numpy(), copy=True), "dtype": dtype.str}
    items = [_python_value(v) for v in values.to_numpy(dtype=object).tolist()]
    return {"values": items, "dtype": str(dtype)}


def _python_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _label(name: Any) -> Any:
    return name.item() if isinstance(name, np.generic) else name


# ---------------------------------------------------------------------------------------------------------
# reading


def _read_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
    """The checked metadata and the payload bytes of a model file."""
    where = os.fspath(path)
    if not os.path.exists(where):
        msg = f"No such model file: {where!r}."
        raise FileNotFoundError(msg)
    if os.path.isdir(where):
        msg = f"{where!r} is a directory, not a model file written by daskml_lab.save()."
        raise ValueError(msg)
    if not zipfile.is_zipfile(where):
        msg = (
            f"{where!r} is not a daskml-lab model file: it is not a zip archive (it may be truncated, "
            "corrupt, or a file of another kind such as a pickle, which daskml_lab never loads). Save models "
            "with daskml_lab.save()."
        )
        raise ValueError(msg)
    try:
        with zipfile.ZipFile(where) as archive:
            names = set(archive.namelist())
            if _METADATA_NAME not in names or _PAYLOAD_NAME not in names:
                msg = (
                    f"{where!r} is a zip archive but not a daskml-lab model file: it lacks "
                    f"{sorted({_METADATA_NAME, _PAYLOAD_NAME} - names)}. Save models with daskml_lab.save()."
                )
                raise ValueError(msg)
            if archive.getinfo(_METADATA_NAME).file_size > _MAX_METADATA_BYTES:
                msg = f"The metadata of {where!r} is implausibly large; the file is corrupt or was modified."
                raise ValueError(msg)
            text = archive.read(_METADATA_NAME)
            payload = archive.read(_PAYLOAD_NAME)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as err:
        msg = (
            f"{where!r} could not be read as a model file ({type(err).__name__}: {err}); it is truncated or "
            "corrupt."
        )
        raise ValueError(msg) from err
    try:
        info = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"The metadata of {where!r} is not valid JSON ({err}); the file is corrupt or was modified."
        raise ValueError(msg) from err
    _check_metadata(info, where)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != info["payload"].get("sha256"):
        msg = (
            f"The model in {where!r} does not match the checksum recorded when it was saved: the file is "
            "corrupt or was modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    return info, payload


def _check_metadata(info: Any, where: str) -> None:
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        msg = f"{where!r} is not a daskml-lab model file (its metadata lacks format={FORMAT_NAME!r})."
        raise ValueError(msg)
    file_version = info.get("format_version")
    if not isinstance(file_version, int) or isinstance(file_version, bool):
        msg = (
            f"The metadata of {where!r} has an invalid format_version {file_version!r}; the file was "
            "modified."
        )
        raise ValueError(msg)
    if file_version > FORMAT_VERSION:
        msg = (
            f"{where!r} uses model file format {file_version}, newer than the format {FORMAT_VERSION} this "
            f"daskml_lab {__version__} reads (it was written by daskml_lab "
            f"{info.get('daskml_lab_version')}). Upgrade daskml_lab to load it."
        )
        raise ValueError(msg)
    missing = [k for k in ("class", "payload", "daskml_lab_version") if k not in info]
    if missing or not isinstance(info.get("payload"), dict) or not isinstance(info.get("class"), str):
        broken = missing or ["class", "payload"]
        msg = f"The metadata of {where!r} lacks or mangles {broken}; the file was modified."
        raise ValueError(msg)


def _untrusted_types(payload: bytes, path: Any, *, apply_policy: bool = True) -> list[str]:
    """Types of the payload that skops does not trust (and, with ``apply_policy``, that we do not either)."""
    import skops.io

    try:
        names = skops.io.get_untrusted_types(data=payload)
    except Exception as err:  # a crafted schema can raise anything while it is parsed (nothing is created)
        msg = (
            f"The model in {os.fspath(path)!r} has an invalid structure ({type(err).__name__}: {err}); the "
            "file is corrupt or was modified."
        )
        raise ValueError(msg) from err
    if not apply_policy:
        return list(names)
    return [name for name in names if not _trusted_by_default(name)]


def _trusted_by_default(name: str) -> bool:
    """Our allowlist, applied to a fully qualified type name without importing anything outside it."""
    if name in _TRUSTED_STDLIB_TYPES:
        return True
    root = name.split(".", 1)[0]
    if root not in ("daskml_lab", "sklearn"):
        return False
    if name in TRUSTED_SKLEARN_TYPES:
        return True
    obj = _resolve(name)
    if not isinstance(obj, type) or _type_name(obj) != name:
        return False  # functions, modules and re-exported foreign objects are never trusted by default
    from sklearn.base import BaseEstimator

    if root == "daskml_lab":
        from daskml_lab.ensemble import ShardReport

        return issubclass(obj, BaseEstimator) or obj in (ShardReport, _StoredPandas)
    return issubclass(obj, BaseEstimator)


def _resolve(name: str) -> Any:
    """The object a dotted ``module.qualname`` names, or None (imports only modules under its root)."""
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return None
        return obj
    return None


def _check_trusted(trusted: Any) -> set[str]:
    if trusted is None:
        return set()
    if isinstance(trusted, str | bytes) or not isinstance(trusted, Sequence | set | frozenset):
        msg = (
            "trusted must be a list of fully qualified type names (as listed by the UntrustedTypesError or "
            f"describe(path)['untrusted_types']); got {trusted!r}."
        )
        raise TypeError(msg)
    names = set()
    for item in trusted:
        if isinstance(item, type):
            names.add(_type_name(item))
        elif isinstance(item, str):
            names.add(item)
        else:
            msg = f"trusted must hold type names (str) or types; got {item!r}."
            raise TypeError(msg)
    return names


def _restore_pandas(obj: Any, seen: set[int]) -> Any:
    """Replace every _StoredPandas reachable from ``obj`` by the pandas object it stands for, in place."""
    if isinstance(obj, _StoredPandas):
        return _unpack_pandas(obj)
    if id(obj) in seen or obj is None or isinstance(obj, str | bytes | numbers.Number | np.ndarray | type):
        return obj
    seen.add(id(obj))
    if isinstance(obj, dict):
        for key, value in list(obj.items()):
            obj[key] = _restore_pandas(value, seen)
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            obj[index] = _restore_pandas(value, seen)
    elif isinstance(obj, tuple):
        restored = tuple(_restore_pandas(value, seen) for value in obj)
        if any(new is not old for new, old in zip(restored, obj, strict=True)):
            return type(obj)(restored) if type(obj) is tuple else type(obj)(*restored)
    elif _has_state(obj):
        attributes = vars(obj)
        for key, value in list(attributes.items()):
            new = _restore_pandas(value, seen)
            if new is not value:
                attributes[key] = new
    return obj


def _structure_problem(obj: Any, n_features: int | None, seen: set[int]) -> str | None:
    """What is wrong with the index arrays of the trees in a loaded model, or None.

    scikit-learn's compiled tree code follows the child and feature indices stored in a tree without bounds
    checks, so a crafted file could make prediction read outside its arrays. Trees of decision-tree models,
    histogram gradient boosting predictors and the search trees of neighbours models are checked here: every
    child index points forward inside the tree and every feature index is below ``n_features_in_`` of the
    estimator holding the tree.
    """
    if obj is None or id(obj) in seen or isinstance(obj, str | bytes | numbers.Number | np.ndarray | type):
        return None
    seen.add(id(obj))
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.tree._tree import Tree

    if isinstance(obj, Tree):
        return _tree_problem(obj, n_features)
    if isinstance(obj, TreePredictor):
        return _predictor_problem(obj, n_features)
    if isinstance(obj, KDTree | BallTree):
        return _binary_tree_problem(obj)
    children: Any = ()
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, list | tuple | set | frozenset):
        children = obj
    elif _has_state(obj):
        owned = getattr(obj, "n_features_in_", None)
        if isinstance(owned, numbers.Integral):
            n_features = int(owned)
        children = vars(obj).values()
    for child in children:
        problem = _structure_problem(child, n_features, seen)
        if problem is not None:
            return problem
    return None


def _tree_problem(tree: Any, n_features: int | None) -> str | None:
    n_nodes = int(tree.node_count)
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    feature = np.asarray(tree.feature)
    if n_nodes < 1 or left.shape != (n_nodes,) or right.shape != (n_nodes,) or feature.shape != (n_nodes,):
        return "a decision tree has arrays of inconsistent lengths"
    if np.asarray(tree.value).shape != (n_nodes, int(tree.n_outputs), int(tree.max_n_classes)):
        return "a decision tree has a value array of the wrong shape"
    leaf = left == -1
    if np.any(leaf != (right == -1)):
        return "a decision tree has a node with a single child"
    index = np.arange(n_nodes)
    inner = ~leaf
    limit = int(tree.n_features) if n_features is None else min(int(tree.n_features), n_features)
    if np.any((left[inner] <= index[inner]) | (left[inner] >= n_nodes)) or np.any(
        (right[inner] <= index[inner]) | (right[inner] >= n_nodes)
    ):
        return "a decision tree has a child index out of range"
    if np.any((feature[inner] < 0) | (feature[inner] >= limit)):
        return f"a decision tree splits on a feature index outside [0, {limit})"
    return None


def _predictor_problem(predictor: Any, n_features: int | None) -> str | None:
    nodes = np.asarray(predictor.nodes)
    names = nodes.dtype.names or ()
    if not {"left", "right", "feature_idx", "is_leaf", "is_categorical", "bitset_idx"} <= set(names):
        return "a gradient boosting tree lacks node fields"
    n_nodes = len(nodes)
    index = np.arange(n_nodes)
    inner = nodes["is_leaf"] == 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    if (
        n_nodes < 1
        or np.any((left[inner] <= index[inner]) | (left[inner] >= n_nodes))
        or np.any((right[inner] <= index[inner]) | (right[inner] >= n_nodes))
    ):
        return "a gradient boosting tree has a child index out of range"
    feature = nodes["feature_idx"].astype(np.int64)[inner]
    if np.any(feature < 0) or (n_features is not None and np.any(feature >= n_features)):
        return "a gradient boosting tree splits on a feature index out of range"
    categorical = inner & (nodes["is_categorical"] != 0)
    n_bitsets = np.asarray(predictor.raw_left_cat_bitsets).shape[0]
    if np.any(nodes["bitset_idx"].astype(np.int64)[categorical] >= n_bitsets):
        return "a gradient boosting tree has a category bitset index out of range"
    return None


def _binary_tree_problem(tree: Any) -> str | None:
    data, idx_array, node_data, node_bounds = (np.asarray(a) for a in tree.get_arrays())
    n_samples = data.shape[0] if data.ndim == 2 else -1
    if idx_array.shape != (n_samples,) or not np.array_equal(np.sort(idx_array), np.arange(n_samples)):
        return "a neighbours search tree has an index array that is not a permutation of its rows"
    n_nodes = len(node_data)
    if n_nodes < 1 or node_bounds.ndim != 3 or node_bounds.shape[1:] != (n_nodes, data.shape[1]):
        return "a neighbours search tree has node arrays of inconsistent shapes"
    start, end = node_data["idx_start"], node_data["idx_end"]
    if np.any((start < 0) | (start > end) | (end > n_samples)):
        return "a neighbours search tree has a node range out of bounds"
    inner = np.flatnonzero(node_data["is_leaf"] == 0)
    if np.any(2 * inner + 2 >= n_nodes):
        return "a neighbours search tree has a child index out of range"
    return None


def _unpack_pandas(stored: _StoredPandas) -> Any:
    fields = stored.fields
    try:
        if stored.kind == "frame":
            columns = _unpack_pandas(fields["columns"])
            index = _unpack_pandas(fields["index"])
            data = {position: _unpack_values(column) for position, column in enumerate(fields["data"])}
            frame = pd.DataFrame(data, index=index)
            frame.columns = columns
            return frame
        if stored.kind == "series":
            index = _unpack_pandas(fields["index"])
            return pd.Series(_unpack_values(fields), index=index, name=fields["name"])
        if stored.kind == "range-index":
            return pd.RangeIndex(fields["start"], fields["stop"], fields["step"], name=fields["name"])
        if stored.kind == "index":
            return pd.Index(_unpack_values(fields), name=fields["name"])
    except (KeyError, TypeError, ValueError) as err:
        msg = (
            f"A stored pandas object of the model is malformed ({type(err).__name__}: {err}); the file is "
            "corrupt."
        )
        raise ValueError(msg) from err
    msg = f"A stored pandas object of the model has an unknown kind {stored.kind!r}; the file is corrupt."
    raise ValueError(msg)


def _unpack_values(fields: dict[str, Any]) -> Any:
    values, dtype = fields["values"], fields["dtype"]
    if isinstance(values, np.ndarray):
        return values.astype(np.dtype(dtype), copy=False)
    if dtype == "object":
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    return pd.array(values, dtype=pd.api.types.pandas_dtype(dtype))


def _warn_on_versions(info: dict[str, Any], path: Any) -> None:
    differences = []
    if info.get("daskml_lab_version") != __version__:
        differences.append(f"daskml_lab {info.get('daskml_lab_version')} (this is {__version__})")
    saved_sklearn = (info.get("versions") or {}).get("scikit-learn")
    current_sklearn = _version_of("scikit-learn")
    if saved_sklearn is not None and saved_sklearn != current_sklearn:
        differences.append(f"scikit-learn {saved_sklearn} (this is {current_sklearn})")
    if differences:
        warnings.warn(
            f"{os.fspath(path)!r} was saved with {' and '.join(differences)}. The model loaded, but its "
            "predictions may differ; refit it, or check its predictions on known data and save it again.",
            ModelVersionWarning,
            stacklevel=3,
        )


# ---------------------------------------------------------------------------------------------------------
# metadata helpers


def _describe_params(model: Any) -> dict[str, Any]:
    try:
        params = model.get_params(deep=False)
    except Exception as err:  # an estimator may break get_params; the payload is still complete
        logger.warning("get_params() of %s failed (%s); parameters not recorded", type(model).__name__, err)
        return {}
    return {str(key): _json_safe(value) for key, value in params.items()}


def _shard_summary(frame: pd.DataFrame) -> dict[str, Any]:
    summary: dict[str, Any] = {"n_shards": len(frame)}
    for column in ("n_rows", "n_train", "n_held_out", "fit_time_s"):
        if column in frame:
            total = pd.to_numeric(frame[column], errors="coerce").sum(min_count=1)
            summary[column] = _json_safe(total)
    if "model" in frame:
        summary["models"] = {str(k): int(v) for k, v in frame["model"].value_counts(sort=False).items()}
    if "validation_score" in frame:
        scores = pd.to_numeric(frame["validation_score"], errors="coerce")
        summary["mean_validation_score"] = _json_safe(scores.mean()) if scores.notna().any() else None
    return summary


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-serialisable description of ``value`` (estimators by class and parameters, arrays as lists)."""
    if depth > 20:
        return repr(value)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int | str | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [_json_safe(v, depth + 1) for v in value.tolist()] if value.size <= 10_000 else repr(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v, depth + 1) for v in value]
    if isinstance(value, pd.DataFrame | pd.Series | pd.Index):
        return repr(value)
    if callable(getattr(value, "get_params", None)) and not isinstance(value, type):
        try:
            params = value.get_params(deep=False)
        except Exception:  # a description only
            params = {}
        return {"class": _type_name(type(value)), "params": _json_safe(params, depth + 1)}
    if isinstance(value, type):
        return _type_name(value)
    return repr(value)


def _plain(value: Any) -> Any:
    """``value`` with numpy arrays and scalars as lists and Python scalars (anything else is kept)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _version_of(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None
