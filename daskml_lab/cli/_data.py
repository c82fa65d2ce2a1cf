"""Reading data for the command line, connecting to the cluster, and writing outputs atomically."""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from daskml_lab.cli._config import KEY_FILE_VARIABLE
from daskml_lab.data import read
from daskml_lab.data.formats import FORMATS, format_of, get_format

__all__ = [
    "atomic_output",
    "check_output",
    "cluster",
    "data_format",
    "json_safe",
    "key_file",
    "local_path",
    "read_for_model",
    "read_training",
    "signing_key",
    "tls_security",
]

logger = logging.getLogger(__name__)


def local_path(path: str) -> str:
    """An absolute path for local files (workers may run in another folder); URLs are kept."""
    text = os.fspath(path)
    if "://" in text:
        return text
    return os.path.abspath(os.path.expanduser(text))


def data_format(path: str, given: str | None) -> str:
    """The name of the format :func:`daskml_lab.data.read` uses for ``path`` (``given``, or from the path)."""
    return format_of(path, given).name


def tls_security(scheduler: str | None, *, ca_file: str | None, cert: str | None, key: str | None) -> Any:
    """The :class:`distributed.Security` of ``--tls-ca-file/--tls-cert/--tls-key``, or None if none is given.

    Raises
    ------
    ValueError
        If they are given without ``--scheduler``, or incompletely (a CA file and a certificate are needed).
    FileNotFoundError
        If one of the files does not exist.
    """
    given = {"--tls-ca-file": ca_file, "--tls-cert": cert, "--tls-key": key}
    named = [flag for flag, value in given.items() if value]
    if not named:
        return None  # Dask's configuration (distributed.comm.tls.*) applies
    if not scheduler:
        msg = (
            f"{', '.join(named)} {'apply' if len(named) > 1 else 'applies'} to a tls:// --scheduler; the local "
            "cluster started without --scheduler listens on 127.0.0.1 only. Give --scheduler tls://HOST:PORT, or "
            "drop the TLS options."
        )
        raise ValueError(msg)
    missing = [flag for flag in ("--tls-ca-file", "--tls-cert") if not given[flag]]
    if missing:
        msg = (
            "A TLS connection needs --tls-ca-file (the CA that signed the scheduler's certificate) and --tls-cert "
            f"(this client's certificate, with --tls-key unless that file holds the key); missing {', '.join(missing)}."
        )
        raise ValueError(msg)
    paths = {flag: local_path(str(value)) for flag, value in given.items() if value}
    for flag, path in paths.items():
        if not os.path.isfile(path):
            msg = f"No such file for {flag}: {path!r}."
            raise FileNotFoundError(msg)
    from distributed.security import Security

    return Security(
        tls_ca_file=paths["--tls-ca-file"],
        tls_client_cert=paths["--tls-cert"],
        tls_client_key=paths.get("--tls-key"),
        require_encryption=True,
    )


@contextlib.contextmanager
def cluster(settings: Mapping[str, Any], *, verbose: bool) -> Iterator[Any]:
    """The client of ``--scheduler``, or of a local cluster of ``--workers`` processes (closed on exit)."""
    import daskml_lab

    security = tls_security(
        settings["scheduler"],
        ca_file=settings.get("tls_ca_file"),
        cert=settings.get("tls_cert"),
        key=settings.get("tls_key"),
    )
    if settings["scheduler"]:
        client = daskml_lab.connect(settings["scheduler"], timeout_s=settings["timeout_s"], security=security)
    else:
        client = daskml_lab.connect(
            n_workers=settings["workers"],
            threads_per_worker=1,
            silence_logs=logging.INFO if verbose else logging.CRITICAL,
        )
    with client:
        yield client


def json_safe(value: Any) -> Any:
    """Lists and plain Python scalars for numpy arrays and scalars (nested)."""
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def read_training(
    path: str,
    target: str,
    *,
    fmt: str,
    read_options: Mapping[str, Any],
    categorical: str,
    features: list[str] | None = None,
) -> tuple[Any, Any, dict[str, Any]]:
    """Read training data; return ``X``, ``y`` and what predict and evaluate need to read alike.

    Returns
    -------
    X, y : dask.array.Array
        Lazy, with known row chunks.
    info : dict
        JSON-safe: ``path``, ``format``, ``target``, ``features`` (names, or None), ``categories`` (for encoded
        columns), ``read_options``, ``n_samples``, ``n_features``, ``n_blocks``.
    """
    spec = get_format(fmt)
    options = dict(read_options)
    if features:
        if spec.features is None:
            msg = f"--features does not apply to {fmt} files, whose features are numbered; leave it out."
            raise ValueError(msg)
        options["features"] = list(features)
    if spec.labels_in_file:
        X, y = read(path, format=fmt, **options)
        origin = None
    else:
        if spec.table:
            options.setdefault("categorical", categorical)
        elif categorical != "error":
            tables = " and ".join(f.description for f in FORMATS.values() if f.table)
            msg = f"--categorical applies to {tables} tables; {path!r} is read as {fmt}."
            raise ValueError(msg)
        X, y, origin = read(path, target, format=fmt, return_origin=True, **options)
    for key in ("categorical", "features", "columns"):
        options.pop(key, None)  # recorded below as they were resolved
    names = getattr(origin, "feature_names", None)
    categories = getattr(origin, "categories", None)
    info = {
        "path": path,
        "format": fmt,
        "target": None if spec.labels_in_file else target,
        "features": None if names is None else json_safe(np.asarray(names, dtype=object)),
        "categories": None if not categories else {str(k): json_safe(v) for k, v in categories.items()},
        "read_options": json_safe(options),
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "n_blocks": int(X.numblocks[0]),
    }
    return X, y, info


def read_for_model(
    path: str,
    trained_on: Mapping[str, Any],
    *,
    fmt: str,
    target: str | None,
    read_options: Mapping[str, Any],
    n_features: int | None,
) -> tuple[Any, Any, Any]:
    """Read data to predict or evaluate the way the training data were read (same features and encodings).

    Returns
    -------
    X : dask.array.Array
    y : dask.array.Array or None
        Only with ``target`` (and always for formats whose files hold the labels, such as svmlight).
    origin : InputOrigin or None
        Where the rows came from (None for those formats).
    """
    spec = get_format(fmt)
    options: dict[str, Any] = {}
    if trained_on.get("format") == fmt:
        options.update(trained_on.get("read_options") or {})
    options.update(read_options)
    features = trained_on.get("features")
    if spec.features is None:
        if n_features is not None:
            options.setdefault("n_features", n_features)  # numbered features: as many as the model has
    elif features is not None and not _positional(features):
        options.setdefault("features", list(features))
    categories = trained_on.get("categories")
    if categories and spec.table:
        options.setdefault("categorical", dict(categories))
    if spec.labels_in_file:
        X, y = read(path, format=fmt, **options)
        return X, y, None
    result = read(path, target, format=fmt, return_origin=True, **options)
    if target is None:
        X, origin = result
        return X, None, origin
    X, y, origin = result
    return X, y, origin


def _positional(features: Any) -> bool:
    """Whether the features were columns of a matrix (positions), which need no selection."""
    return all(isinstance(f, int) for f in features) and list(features) == list(range(len(features)))


def key_file(settings: Mapping[str, Any]) -> str | None:
    """The key file of ``--key-file``, else the one ``$DASKML_LAB_KEY_FILE`` names (absolute), or None."""
    given = settings.get("key_file") or os.environ.get(KEY_FILE_VARIABLE)
    return local_path(given) if given else None


def signing_key(settings: Mapping[str, Any]) -> bytes | None:
    """The key that signs (``fit``) or checks (``predict``, ``evaluate``) model files, or None.

    Raises
    ------
    FileNotFoundError, ValueError
        For a missing key file or one holding fewer than 16 bytes.
    """
    from daskml_lab.persistence import read_key

    path = key_file(settings)
    return None if path is None else read_key(path)


def check_output(
    path: str, *, overwrite: bool, what: str, inputs: Sequence[tuple[str, str | None]] = ()
) -> Path:
    """Check an output path before any work: its folder exists, it is none of ``inputs``, and it is new unless
    ``overwrite``.

    Parameters
    ----------
    path : str
        The output path as given.
    overwrite : bool
        Whether an existing output may be replaced (never one of the inputs).
    what : str
        What the output is, for messages.
    inputs : sequence of (str, str or None)
        ``(label, path)`` of the files the command reads (``None`` and URLs are skipped; globs are expanded).

    Raises
    ------
    ValueError
        If the output is an input (also through a symlink, a hard link or another spelling of its path),
        a folder holding one, or inside an input folder.
    FileNotFoundError, FileExistsError
        For a missing folder, or an existing output without ``overwrite``.
    """
    output = Path(local_path(path))
    if not output.parent.is_dir():
        msg = f"Cannot write the {what} to {str(output)!r}: the folder {str(output.parent)!r} does not exist."
        raise FileNotFoundError(msg)
    for label, given in inputs:
        problem = _overlap(output, given)
        if problem is not None:
            msg = (
                f"The {what} {str(output)!r} {problem.format(label=label, given=given)}, even with --overwrite. "
                "Choose another --output."
            )
            raise ValueError(msg)
    if output.exists() and not overwrite:
        msg = f"The {what} {str(output)!r} already exists; pass --overwrite to replace it."
        raise FileExistsError(msg)
    return output


def _overlap(output: Path, given: str | None) -> str | None:
    """How writing ``output`` would touch the input ``given`` (a message template), or None."""
    if not given or "://" in given:
        return None
    pattern = local_path(given)
    found = glob.glob(pattern) if glob.has_magic(pattern) else [pattern]
    real_output = Path(os.path.realpath(output))
    for candidate in found:
        real_input = Path(os.path.realpath(candidate))
        same = real_output == real_input or (
            output.exists() and real_input.exists() and os.path.samefile(output, real_input)
        )
        if same:
            return "is the {label} ({given!r}): writing it would destroy the {label}"
        if real_input.is_relative_to(real_output):
            return "is a folder holding the {label} ({given!r}): replacing it would delete the {label}"
        if real_output.is_relative_to(real_input):
            return "is inside the {label} ({given!r}): writing it would change the {label}"
    return None


def atomic_output(output: Path, write: Callable[[str], None]) -> None:
    """Run ``write(temporary_path)`` next to ``output``, then rename it; on error remove what was written."""
    temporary = output.with_name(f".{output.name}.tmp-{uuid.uuid4().hex[:8]}")
    backup = output.with_name(f".{output.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        write(str(temporary))
        if output.exists():
            os.replace(output, backup)
        os.replace(temporary, output)
    except BaseException:
        _remove(temporary)
        if backup.exists() and not output.exists():
            os.replace(backup, output)
        raise
    _remove(backup)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
