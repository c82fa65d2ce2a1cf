"""The model file: a zip archive of readable JSON metadata and the skops payload, written atomically.

A model file holds two members:

- ``daskml_lab.json``: the format name and version, the versions of daskml_lab, Python and the libraries that
  wrote it, the estimator's class and parameters, a training summary, the caller's metadata, and the name,
  size and SHA-256 checksum of the payload;
- ``model.skops``: the estimator in the skops format (JSON plus ``.npy`` arrays, never a pickle).

:func:`read_model_file` checks all of that (zip structure, metadata, format version, checksum) before anyone
looks inside the payload.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
import zlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from daskml_lab._version import __version__
from daskml_lab.exceptions import ModelVersionWarning

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PAYLOAD_NAME",
    "VERSIONED_PACKAGES",
    "read_model_file",
    "version_of",
    "warn_on_versions",
    "write_model_file",
]

#: Name written in (and required from) the metadata of every model file.
FORMAT_NAME = "daskml-lab-model"
#: Version of the file layout; files of a newer layout are refused.
FORMAT_VERSION = 1

METADATA_NAME = "daskml_lab.json"
PAYLOAD_NAME = "model.skops"
MAX_METADATA_BYTES = 64 * 2**20
VERSIONED_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "skops")


def write_model_file(target: Path, metadata: str, payload: bytes) -> None:
    """Write the archive to a temporary file in the folder of ``target``, then rename it over ``target``.

    An interrupted write never leaves a partial file behind; an existing file is replaced.
    """
    folder = target.parent if str(target.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_NAME, metadata)
            archive.writestr(PAYLOAD_NAME, payload)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
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
            if METADATA_NAME not in names or PAYLOAD_NAME not in names:
                msg = (
                    f"{where!r} is a zip archive but not a daskml-lab model file: it lacks "
                    f"{sorted({METADATA_NAME, PAYLOAD_NAME} - names)}. Save models with daskml_lab.save()."
                )
                raise ValueError(msg)
            if archive.getinfo(METADATA_NAME).file_size > MAX_METADATA_BYTES:
                msg = f"The metadata of {where!r} is implausibly large; the file is corrupt or was modified."
                raise ValueError(msg)
            text = archive.read(METADATA_NAME)
            payload = archive.read(PAYLOAD_NAME)
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
    check_metadata(info, where)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != info["payload"].get("sha256"):
        msg = (
            f"The model in {where!r} does not match the checksum recorded when it was saved: the file is "
            "corrupt or was modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    return info, payload


def check_metadata(info: Any, where: str) -> None:
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


def warn_on_versions(info: dict[str, Any], path: Any) -> None:
    """Warn when the file was written by another version of daskml_lab or scikit-learn."""
    differences = []
    if info.get("daskml_lab_version") != __version__:
        differences.append(f"daskml_lab {info.get('daskml_lab_version')} (this is {__version__})")
    saved_sklearn = (info.get("versions") or {}).get("scikit-learn")
    current_sklearn = version_of("scikit-learn")
    if saved_sklearn is not None and saved_sklearn != current_sklearn:
        differences.append(f"scikit-learn {saved_sklearn} (this is {current_sklearn})")
    if differences:
        warnings.warn(
            f"{os.fspath(path)!r} was saved with {' and '.join(differences)}. The model loaded, but its "
            "predictions may differ; refit it, or check its predictions on known data and save it again.",
            ModelVersionWarning,
            stacklevel=3,
        )


def version_of(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None
