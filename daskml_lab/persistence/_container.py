"""The model file: a zip archive of readable JSON metadata, the skops payload and their checksum.

A model file (format 2) holds three members:

- ``daskml_lab.json``: the format name and version, the versions of daskml_lab, Python and the libraries that
  wrote it, the estimator's class and parameters, a training summary, the caller's metadata (the command line
  keeps there the feature order and the read options that ``predict`` and ``evaluate`` reuse), and the name,
  size and SHA-256 checksum of the payload;
- ``model.skops``: the estimator in the skops format (JSON plus ``.npy`` arrays, never a pickle);
- ``checksum.json``: one digest over the exact bytes of both members, SHA-256 or, when the file was saved
  with a key, HMAC-SHA256 (a signature only holders of the key can produce).

Everything a prediction depends on is covered: an edit of the metadata is refused like an edit of the model.
Format 1 files (no ``checksum.json``; only the payload was checksummed) are still read, with a
:class:`~daskml_lab.exceptions.ModelVersionWarning` saying that their metadata is unchecked.

:func:`read_model_file` checks all of that (zip structure, digest or signature, metadata, format version,
payload checksum) before anyone looks inside the payload; :func:`write_model_file` is the one writer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from daskml_lab._version import __version__
from daskml_lab.exceptions import ModelVersionWarning
from daskml_lab.persistence._limits import Limits, check_directory, read_member, resolve_limits

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PAYLOAD_NAME",
    "VERSIONED_PACKAGES",
    "Integrity",
    "check_key",
    "checksum_member",
    "read_key",
    "read_model_file",
    "version_of",
    "warn_on_versions",
    "write_model_file",
]

#: Name written in (and required from) the metadata of every model file.
FORMAT_NAME = "daskml-lab-model"
#: zlib level of the members. Level 1: a 207 MB forest payload is deflated in 1.4 s to 42 MB, against 5.3 s
#: to 36 MB at zlib's default 6 (the skops payload inside is stored uncompressed; reading takes 0.5 s either way).
COMPRESS_LEVEL = 1
#: Version of the file layout; files of a newer layout are refused. Format 2 checksums (or signs) the metadata
#: together with the payload; format 1 checksummed the payload only. Format 3 is format 2 plus the slices of
#: partitioned coefficients (listed with their SHA-256 in the metadata, see ``_streamed``); only files holding
#: such slices are written in it, so that older readers refuse them rather than load a model without them.
FORMAT_VERSION = 3
#: The format of files without streamed slices.
PLAIN_FORMAT_VERSION = 2

METADATA_NAME = "daskml_lab.json"
PAYLOAD_NAME = "model.skops"
CHECKSUM_NAME = "checksum.json"
MAX_METADATA_BYTES = 64 * 2**20
MAX_CHECKSUM_BYTES = 4096
MIN_KEY_BYTES = 16
VERSIONED_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "skops")

_SHA256 = "sha256"
_HMAC = "hmac-sha256"
#: Prefix of the digested bytes, so that a digest of a model file is never valid for anything else.
_DOMAIN = b"daskml-lab-model-file\x00"


@dataclass(frozen=True)
class Integrity:
    """What the checksum of a model file covers and whether it was verified.

    Attributes
    ----------
    algorithm : {"sha256", "hmac-sha256"}
        How the file was sealed: a plain checksum, or a signature with a key.
    covers : tuple of str
        The members covered (format 1 files: the payload only).
    verified : bool
        False only for a signed file read by :func:`~daskml_lab.persistence.describe` without its key.
    """

    algorithm: str
    covers: tuple[str, ...]
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        """The JSON-safe form :func:`~daskml_lab.persistence.describe` returns under ``"integrity"``."""
        return {"algorithm": self.algorithm, "covers": list(self.covers), "verified": self.verified}


def check_key(key: Any) -> bytes | None:
    """The signing key of ``save``/``load``/``describe(..., key=...)`` as bytes (``None`` stays ``None``).

    Raises
    ------
    TypeError
        If ``key`` is neither bytes nor str.
    ValueError
        If it is shorter than 16 bytes.
    """
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, bytes | bytearray | memoryview):
        msg = (
            "key must be bytes or str (for instance daskml_lab.persistence.read_key(path) of a key file); got "
            f"an object of type {type(key).__name__}."
        )
        raise TypeError(msg)
    key = bytes(key)
    if len(key) < MIN_KEY_BYTES:
        msg = (
            f"A signing key must have at least {MIN_KEY_BYTES} bytes; got {len(key)}. Make one with "
            'python -c "import secrets; print(secrets.token_hex(32))" > model.key and keep the file private.'
        )
        raise ValueError(msg)
    return key


def read_key(path: str | os.PathLike[str]) -> bytes:
    """The signing key held in a key file: its bytes, without leading and trailing whitespace.

    The command line reads ``--key-file`` (or the file named by ``DASKML_LAB_KEY_FILE``) with this function,
    so a key file works the same in Python and on the command line.

    Parameters
    ----------
    path : str or path-like
        A file holding the key, for instance 64 hexadecimal characters written by
        ``python -c "import secrets; print(secrets.token_hex(32))" > model.key``.

    Returns
    -------
    bytes
        The key, for ``save(..., key=...)``, ``load(..., key=...)`` and ``describe(..., key=...)``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it holds fewer than 16 bytes besides whitespace.

    Examples
    --------
    >>> from daskml_lab.persistence import load, read_key
    >>> model = load("model.daskml", key=read_key("model.key"))  # doctest: +SKIP
    """
    where = os.fspath(path)
    if not os.path.isfile(where):
        msg = f"No such key file: {where!r}."
        raise FileNotFoundError(msg)
    with open(where, "rb") as stream:
        content = stream.read(1 << 16).strip()
    if len(content) < MIN_KEY_BYTES:
        msg = (
            f"The key file {where!r} holds {len(content)} bytes; a signing key needs at least {MIN_KEY_BYTES}. "
            'Make one with python -c "import secrets; print(secrets.token_hex(32))" > model.key.'
        )
        raise ValueError(msg)
    return content


def _digest(metadata: bytes, payload: bytes, key: bytes | None) -> str:
    """SHA-256 (or HMAC-SHA256 with ``key``) over both members, each preceded by its length."""
    digest = hmac.new(key, digestmod=hashlib.sha256) if key is not None else hashlib.sha256()
    digest.update(_DOMAIN)
    for part in (metadata, payload):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def checksum_member(metadata: bytes, payload: bytes, key: bytes | None) -> str:
    """The content of ``checksum.json`` for the exact bytes of the two other members."""
    algorithm = _HMAC if key is not None else _SHA256
    return json.dumps({"algorithm": algorithm, "digest": _digest(metadata, payload, key)})


def write_model_file(
    target: Path,
    info: dict[str, Any],
    payload: bytes,
    *,
    key: bytes | None = None,
    streamed: Callable[[zipfile.ZipFile], list[dict[str, Any]]] | None = None,
) -> None:
    """Seal and write a model file: temporary file in the folder of ``target``, then renamed over it.

    ``info`` (the metadata) gets the current format and the payload's name, size and SHA-256; the checksum
    member covers the metadata and the payload as written, signed with ``key`` when one is given. An
    interrupted write never leaves a partial file behind; an existing file is replaced. ``streamed``, when
    given, writes further members first and returns their description, stored as the metadata's
    ``"streamed"`` (format 3 when it lists any).
    """
    folder = target.parent if str(target.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with (
            os.fdopen(handle, "wb") as stream,
            zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as archive,
        ):
            entries = streamed(archive) if streamed is not None else []
            sealed = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION if entries else PLAIN_FORMAT_VERSION,
                **{
                    k: v
                    for k, v in info.items()
                    if k not in ("format", "format_version", "payload", "streamed")
                },
                "payload": {
                    "name": PAYLOAD_NAME,
                    "sha256": hashlib.sha256(payload).hexdigest(),
                    "n_bytes": len(payload),
                },
                **({"streamed": entries} if entries else {}),
            }
            metadata = json.dumps(sealed, indent=2, allow_nan=False).encode("utf-8")
            archive.writestr(METADATA_NAME, metadata)
            archive.writestr(PAYLOAD_NAME, payload)
            archive.writestr(CHECKSUM_NAME, checksum_member(metadata, payload, key))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_model_file(
    path: str | os.PathLike[str],
    *,
    key: bytes | None = None,
    require_verified: bool = True,
    limits: Limits | None = None,
) -> tuple[dict[str, Any], bytes, Integrity]:
    """The checked metadata, the payload bytes and the integrity of a model file.

    Parameters
    ----------
    path : str or path-like
        The file.
    key : bytes or None, default=None
        The signing key (checked with :func:`check_key`). With a key, only files signed with it are accepted.
    require_verified : bool, default=True
        Refuse a signed file when no key is given; :func:`~daskml_lab.persistence.describe` passes False to
        show the metadata of a signed file whose key the caller does not have (reported as not verified).
    limits : Limits, default=None
        The caps on the members' decompressed sizes (:func:`~daskml_lab.persistence._limits.resolve_limits`
        when None): each member is checked by its header before it is decompressed, and read no further than
        its cap.
    """
    limits = resolve_limits() if limits is None else limits
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
        with open(where, "rb") as stream:
            check_directory(
                _file_reader(stream), os.fstat(stream.fileno()).st_size, limits, where, "the file"
            )
        with zipfile.ZipFile(where) as archive:
            listed = archive.namelist()
            names = set(listed)
            if METADATA_NAME not in names or PAYLOAD_NAME not in names:
                msg = (
                    f"{where!r} is a zip archive but not a daskml-lab model file: it lacks "
                    f"{sorted({METADATA_NAME, PAYLOAD_NAME} - names)}. Save models with daskml_lab.save()."
                )
                raise ValueError(msg)
            if len(listed) != len(names):
                # Zip tools disagree on which of two same-named members they show: never ambiguous.
                msg = f"{where!r} holds a member twice; the file was modified. Save the model again."
                raise ValueError(msg)
            sizes = {name: archive.getinfo(name).file_size for name in names}
            if sizes[METADATA_NAME] > MAX_METADATA_BYTES or sizes.get(CHECKSUM_NAME, 0) > MAX_CHECKSUM_BYTES:
                msg = f"The metadata of {where!r} is implausibly large; the file is corrupt or was modified."
                raise ValueError(msg)
            # Bounded reads: a member's header is checked before it is decompressed, and the read stops at
            # the cap even when the header lies (a zip bomb in a model file).
            text = read_member(archive, METADATA_NAME, limits, where, cap=MAX_METADATA_BYTES)
            payload = read_member(archive, PAYLOAD_NAME, limits, where)
            checksum = (
                read_member(archive, CHECKSUM_NAME, limits, where, cap=MAX_CHECKSUM_BYTES)
                if CHECKSUM_NAME in names
                else None
            )
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as err:
        msg = (
            f"{where!r} could not be read as a model file ({type(err).__name__}: {err}); it is truncated or "
            "corrupt."
        )
        raise ValueError(msg) from err
    if checksum is None:
        integrity = Integrity(algorithm=_SHA256, covers=(PAYLOAD_NAME,), verified=True)
    else:
        integrity = _verify(where, text, payload, checksum, key, require_verified=require_verified)
    try:
        info = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"The metadata of {where!r} is not valid JSON ({err}); the file is corrupt or was modified."
        raise ValueError(msg) from err
    check_metadata(info, where)
    if checksum is None:
        _check_format_1(info, where, key)
    elif info["format_version"] < 2:
        msg = (
            f"The metadata of {where!r} claims model file format {info['format_version']}, but the file has the "
            f"{CHECKSUM_NAME} member of format 2; it was modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != info["payload"].get("sha256"):
        msg = (
            f"The model in {where!r} does not match the checksum recorded when it was saved: the file is "
            "corrupt or was modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    return info, payload, integrity


def _file_reader(stream: Any) -> Any:
    """``read_at(offset, n)`` over an open binary file."""

    def read_at(offset: int, n: int) -> bytes:
        stream.seek(offset)
        return stream.read(n)

    return read_at


def _verify(
    where: str, metadata: bytes, payload: bytes, checksum: bytes, key: bytes | None, *, require_verified: bool
) -> Integrity:
    """Check the digest of a format 2 file (the signature with ``key``); the file's :class:`Integrity`."""
    try:
        record = json.loads(checksum)
        algorithm, expected = record["algorithm"], record["digest"]
        valid = algorithm in (_SHA256, _HMAC) and isinstance(expected, str)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        valid = False
    if not valid:
        msg = f"The checksum member of {where!r} is unreadable; the file is corrupt or was modified."
        raise ValueError(msg)
    covers = (METADATA_NAME, PAYLOAD_NAME)
    if algorithm == _SHA256:
        if key is not None:
            msg = (
                f"{where!r} is not signed, but a key was given: it was saved without key= (or its signature was "
                "stripped by someone who modified it). Load it without a key only if you trust where it comes "
                "from; otherwise ask its author for a file saved with save(model, path, key=...)."
            )
            raise ValueError(msg)
        if not hmac.compare_digest(_digest(metadata, payload, None), expected):
            msg = (
                f"{where!r} does not match the checksum recorded when it was saved: its metadata "
                f"({METADATA_NAME}: feature order, read options, ...) or its model was modified, or the file "
                "is corrupt. Nothing was loaded; save the model again with daskml_lab.save()."
            )
            raise ValueError(msg)
        return Integrity(algorithm=_SHA256, covers=covers, verified=True)
    if key is None:
        if not require_verified:
            return Integrity(algorithm=_HMAC, covers=covers, verified=False)
        msg = (
            f"{where!r} is signed with a key (HMAC-SHA256); pass the same key to check it: "
            "load(path, key=read_key('model.key')), or --key-file FILE (or DASKML_LAB_KEY_FILE) on the command "
            "line. Nothing was loaded."
        )
        raise ValueError(msg)
    if not hmac.compare_digest(_digest(metadata, payload, key), expected):
        msg = (
            f"The signature of {where!r} does not match the key given: its metadata ({METADATA_NAME}: "
            "feature order, read options, ...) or its model was modified after it was signed, or it was signed "
            "with another key. Nothing was loaded; check the key file, or ask the author of the model for a "
            "freshly signed copy."
        )
        raise ValueError(msg)
    return Integrity(algorithm=_HMAC, covers=covers, verified=True)


def _check_format_1(info: dict[str, Any], where: str, key: bytes | None) -> None:
    """A file without a checksum member must be of format 1, and cannot satisfy a key."""
    if info["format_version"] != 1:
        msg = (
            f"{where!r} claims model file format {info['format_version']} but lacks its {CHECKSUM_NAME} member; "
            "the file was modified. Save the model again with daskml_lab.save()."
        )
        raise ValueError(msg)
    if key is not None:
        msg = (
            f"{where!r} is a format 1 model file, which cannot be signed, but a key was given. Re-save it "
            "signed where it was made: daskml_lab.save(daskml_lab.load(path), path, key=...)."
        )
        raise ValueError(msg)


def check_metadata(info: Any, where: str) -> None:
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        msg = f"{where!r} is not a daskml-lab model file (its metadata lacks format={FORMAT_NAME!r})."
        raise ValueError(msg)
    file_version = info.get("format_version")
    if not isinstance(file_version, int) or isinstance(file_version, bool) or file_version < 1:
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


def warn_on_versions(info: dict[str, Any], path: Any, integrity: Integrity) -> None:
    """Warn when the file was written by another version of daskml_lab or scikit-learn, or in format 1."""
    if METADATA_NAME not in integrity.covers:
        warnings.warn(
            f"{os.fspath(path)!r} is a format 1 model file: its checksum covers the model but not its metadata "
            f"({METADATA_NAME}, where the command line keeps the feature order and the read options), so an "
            "edit of the metadata goes unnoticed. Re-save it to protect it: model, info = "
            "daskml_lab.load(path, return_metadata=True); daskml_lab.save(model, path, "
            "metadata=info['metadata']).",
            ModelVersionWarning,
            stacklevel=3,
        )
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
