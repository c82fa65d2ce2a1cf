"""The public functions of :mod:`daskml_lab.persistence`: save, load and describe model files."""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import platform
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daskml_lab._version import __version__
from daskml_lab.exceptions import NotStorableError, UntrustedTypesError
from daskml_lab.persistence._checks import structure_problem
from daskml_lab.persistence._container import (
    VERSIONED_PACKAGES,
    check_key,
    read_model_file,
    version_of,
    warn_on_versions,
    write_model_file,
)
from daskml_lab.persistence._declared import declared_problem
from daskml_lab.persistence._limits import resolve_limits, scan_payload
from daskml_lab.persistence._pandas import restore_pandas, with_pandas_stored
from daskml_lab.persistence._streamed import restore_columns, with_columns_stored, write_columns
from daskml_lab.persistence._summary import describe_params, plain, training_summary
from daskml_lab.persistence._trusted import check_trusted, type_name, untrusted_types

__all__ = ["describe", "load", "save"]

logger = logging.getLogger(__name__)


def save(
    model: Any,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    key: bytes | str | None = None,
) -> Path:
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
    key : bytes or str, default=None
        A secret of at least 16 bytes (for instance :func:`read_key` of a key file). The file is then signed
        with HMAC-SHA256 instead of checksummed with SHA-256, and :func:`load` accepts it only with the same
        key: use it when models travel between machines or people, so that a file modified on the way (its
        model or its metadata) is refused.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``model`` is not an estimator, ``metadata`` is not JSON-serialisable, or the model holds an object
        that cannot be stored safely (the message names it).
    ValueError
        If ``key`` is shorter than 16 bytes.
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
    the number of shards, rows, models per class and the summed shard fit time from ``shard_report_``. One
    checksum (or signature) covers this metadata and the model together: :func:`load` refuses a file in which
    either was modified.

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
    signing_key = check_key(key)
    if not callable(getattr(model, "get_params", None)):
        msg = (
            f"save() stores estimators (objects with get_params, such as daskml_lab or scikit-learn models); "
            f"got an object of type {type_name(type(model))}."
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
    extra = plain(dict(metadata)) if metadata is not None else {}
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError) as err:
        msg = f"metadata must be JSON-serialisable (str, numbers, lists, dicts); {err}."
        raise TypeError(msg) from err

    # partitioned coefficients become stand-ins (their slices are streamed into the file below)
    storable, partitioned = with_columns_stored(model)
    payload = _dump_payload(storable)
    info = {
        "daskml_lab_version": __version__,
        "versions": {"python": platform.python_version(), **{n: version_of(n) for n in VERSIONED_PACKAGES}},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "class": type_name(type(model)),
        "params": describe_params(model),
        "summary": training_summary(model),
        "metadata": extra,
    }
    write_model_file(
        target,
        info,
        payload,
        key=signing_key,
        streamed=(lambda archive: write_columns(archive, partitioned)) if partitioned else None,
    )
    logger.info(
        "Saved %s to %s (%d bytes of model state%s)",
        type(model).__name__,
        target,
        len(payload),
        ", signed" if signing_key is not None else "",
    )
    return target


def load(
    path: str | os.PathLike[str],
    *,
    trusted: Sequence[str] | None = None,
    key: bytes | str | None = None,
    return_metadata: bool = False,
    max_member_bytes: int | str | None = None,
    max_compression_ratio: float | None = None,
) -> Any:
    """Load an estimator saved with :func:`save`, creating only objects of trusted types.

    The types the file would create are listed first, without creating anything. These are trusted by
    default:

    - the types skops trusts: Python builtins and containers, numpy arrays, scalars, dtypes and random
      generators, scipy sparse matrices and every public scikit-learn estimator;
    - classes of daskml_lab that are estimators or fusion strategies (subclasses of
      :class:`sklearn.base.BaseEstimator`);
    - the types registered with :func:`register_trusted_type` by the packages that own them: the shard
      report of :mod:`daskml_lab.ensemble` and this package's container for pandas objects;
    - scikit-learn estimator classes (subclasses of :class:`~sklearn.base.BaseEstimator`, private ones
      included) and the internal types of :data:`TRUSTED_SKLEARN_TYPES`: decision trees, histogram gradient
      boosting predictors, the neighbours' search trees, calibrated classifiers and parameter-free distance
      metrics. The index arrays of the trees are checked after loading (a crafted tree could otherwise make
      scikit-learn's compiled code read outside its arrays when predicting);
    - :class:`pathlib.Path` objects (an estimator's ``checkpoint`` parameter may hold one), and the dtype
      classes a :class:`sklearn.compose.make_column_selector` may hold (``numpy.number``, ``object``, ...).

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
    key : bytes or str, default=None
        The key the file was signed with (see :func:`save`). A signed file is refused without it or with
        another key; with a key, a file that is not signed is refused too (its signature may have been
        stripped).
    return_metadata : bool, default=False
        Also return the file's metadata, as :func:`describe` does, read from the same checked bytes as the
        model (the command line takes the feature order and read options from there).
    max_member_bytes : int or str, default=None
        The largest size a member of the file may have once decompressed (the model, and the arrays inside
        it together), as a byte count or a string such as ``"8GiB"``. None reads
        ``dask.config.get("daskml_lab.persistence.max_member_bytes")`` (environment variable
        ``DASK_DASKML_LAB__PERSISTENCE__MAX_MEMBER_BYTES``), 2 GiB by default: raise it for genuinely larger
        models. Sizes are checked from the zip headers before anything is decompressed, and again while
        reading (see :doc:`/persistence`).
    max_compression_ratio : float, default=None
        The largest decompressed-to-compressed size ratio of a member above 16 MiB (a zip bomb compresses
        about 1000 to 1). None reads ``daskml_lab.persistence.max_compression_ratio``, 1000 by default.

    Returns
    -------
    estimator
        The estimator as it was saved; a fitted model predicts exactly what it predicted before.
    metadata : dict
        Only with ``return_metadata=True``: the metadata, as returned by :func:`describe`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a model file written by :func:`save`, is truncated, corrupt or has been modified
        (its checksum covers the metadata and the model), is signed and the key is missing or wrong, holds
        arrays that do not fit together (see :doc:`/persistence`), a member larger than
        ``max_member_bytes`` or compressed more than ``max_compression_ratio`` (nothing is decompressed or
        allocated then), or was written in a newer file format.
    UntrustedTypesError
        A ``ValueError`` listing the types that are not trusted; nothing was created.
    TypeError
        If ``trusted`` is not a list of type names, or ``key`` is neither bytes nor str.

    Warns
    -----
    ModelVersionWarning
        When the file was written by another version of daskml_lab or scikit-learn, or in format 1 (whose
        metadata is not covered by the checksum).

    Examples
    --------
    >>> model = load("model.daskml")  # doctest: +SKIP
    >>> model = load("model.daskml", trusted=["mypackage.MyTransformer"])  # doctest: +SKIP
    >>> model = load("model.daskml", key=read_key("model.key"))  # doctest: +SKIP
    """
    extra_trusted = check_trusted(trusted)
    limits = resolve_limits(max_member_bytes, max_compression_ratio)
    info, payload, integrity = read_model_file(path, key=check_key(key), limits=limits)
    # Every member is bounded, and every array header checked, before skops reads or allocates anything.
    headers = scan_payload(payload, limits, os.fspath(path))
    not_by_default = untrusted_types(payload, path)
    untrusted = [name for name in not_by_default if name not in extra_trusted]
    if untrusted:
        msg = (
            f"{os.fspath(path)!r} holds types that are not trusted by default: {untrusted}. Nothing was "
            "loaded. Creating objects of unknown types can run code; if you trust the file, check them "
            "(daskml_lab.persistence.describe(path) shows the metadata) and pass "
            f"load(path, trusted={untrusted}) (on the command line: --trust TYPE for each)."
        )
        raise UntrustedTypesError(msg, untrusted)
    problem = declared_problem(_schema(payload, path), headers, info.get("summary"))
    if problem is not None:
        msg = (
            f"The model in {os.fspath(path)!r} is inconsistent: {problem}. It was refused before any array was "
            "allocated; the file is corrupt or was modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    import skops.io

    allowed = sorted(set(extra_trusted) | set(untrusted_types(payload, path, apply_policy=False)))
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
    model = restore_pandas(stored, set())
    problem = structure_problem(model)
    if problem is not None:
        msg = (
            f"The model in {os.fspath(path)!r} is inconsistent: {problem}. Predicting with it could crash, so it "
            "is refused; the file is corrupt or was modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    if type_name(type(model)) != info["class"]:
        msg = (
            f"{os.fspath(path)!r} is inconsistent: its metadata describes a {info['class']} but it holds a "
            f"{type_name(type(model))}. The file was modified; save the model again."
        )
        raise ValueError(msg)
    model = restore_columns(model, info, path, limits)
    warn_on_versions(info, path, integrity)
    if return_metadata:
        return model, {**info, "integrity": integrity.as_dict(), "untrusted_types": not_by_default}
    return model


def describe(
    path: str | os.PathLike[str],
    *,
    key: bytes | str | None = None,
    max_member_bytes: int | str | None = None,
    max_compression_ratio: float | None = None,
) -> dict[str, Any]:
    """The metadata of a model file, read without creating the model and without importing anything.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    key : bytes or str, default=None
        The key of a signed file (see :func:`save`). Without it, the metadata of a signed file is returned
        unchecked (``"integrity"`` says ``"verified": False``); with it, as :func:`load`.
    max_member_bytes : int or str, default=None
        The cap on a member's decompressed size, as in :func:`load`.
    max_compression_ratio : float, default=None
        The cap on a member's compression ratio, as in :func:`load`.

    Returns
    -------
    dict
        The JSON metadata (``format``, ``format_version``, ``daskml_lab_version``, ``versions``, ``created``,
        ``class``, ``params``, ``summary``, ``metadata``, ``payload``), plus ``integrity`` (``algorithm``:
        ``"sha256"`` or ``"hmac-sha256"``; ``covers``: the members the checksum covers; ``verified``) and
        ``untrusted_types``: the types :func:`load` would refuse without ``trusted=``. A type is resolved
        only in modules already imported: one whose module is not imported yet is listed (``load`` may
        accept it after importing its module, which ``describe`` never does).

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`load` (except that a signed file is read without ``key``).

    Examples
    --------
    >>> describe("model.daskml")["summary"]["n_features_in"]  # doctest: +SKIP
    10
    """
    limits = resolve_limits(max_member_bytes, max_compression_ratio)
    info, payload, integrity = read_model_file(
        path, key=check_key(key), require_verified=False, limits=limits
    )
    scan_payload(payload, limits, os.fspath(path))  # skops reads every member to list the types
    untrusted = untrusted_types(payload, path, import_modules=False)
    return {**info, "integrity": integrity.as_dict(), "untrusted_types": untrusted}


def _dump_payload(model: Any) -> bytes:
    """The model as skops bytes, pandas objects replaced by plain containers (the model is not changed)."""
    import skops.io

    storable = with_pandas_stored(model)
    try:
        return skops.io.dumps(storable)
    except NotStorableError:  # the object said why, and what to do instead
        raise
    except Exception as err:  # skops raises various types for objects it cannot describe
        msg = (
            f"The {type(model).__name__} could not be saved safely: {type(err).__name__}: {err}. An "
            "attribute holds an object that the skops format cannot store without pickle."
        )
        raise TypeError(msg) from err


def _schema(payload: bytes, path: Any) -> Any:
    """The skops description of the payload (already bounded by :func:`scan_payload`), parsed."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            return json.loads(archive.read("schema.json"))
    except (KeyError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = (
            f"The model in {os.fspath(path)!r} has no readable description ({type(err).__name__}: {err}); the "
            "file is corrupt or was modified."
        )
        raise ValueError(msg) from err
