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
    "by_position",
    "check_output",
    "cluster",
    "csv_options",
    "data_format",
    "is_sparse",
    "json_safe",
    "key_file",
    "local_path",
    "print_dashboard",
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


def data_format(path: str, given: str | None, *, trained_on: str | None = None) -> str:
    """The name of the format :func:`daskml_lab.data.read` uses for ``path``.

    ``given`` (``--input-format``) if any, else the one the extension tells, else ``trained_on`` (the format
    the model was trained on, for predict and evaluate).
    """
    if given is None and trained_on is not None:
        try:
            return format_of(path).name
        except ValueError:
            return get_format(trained_on).name
    try:
        return format_of(path, given).name
    except ValueError as err:
        if "Cannot tell the format" in str(err):
            msg = (
                f"Cannot tell the format of {path!r} from its extension; name it with --input-format "
                f"({', '.join(FORMATS)})."
            )
            raise ValueError(msg) from err
        raise


def csv_options(path: str, given: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Reader options for a CSV/TSV file as users have them: header line or not, separator, missing values.

    The first lines of the file are looked at (decompressed) unless ``given`` (``--read-option``) decides:

    - no header line when a field of the first line is a number: columns are then numbered from 0, and
      ``--target 14`` names the 15th column;
    - the separator among ``,``, tab, ``;`` and ``|``, and spaces after it skipped (``a, b``);
    - ``assume_missing``: whole-number columns read as floats, since a missing value further down the file
      (which dask does not look at when inferring types) would otherwise fail the read.

    Returns the options and a note per decision, to print.
    """
    options = dict(given)
    notes: list[str] = []
    options.setdefault("assume_missing", True)
    if "header" in options and ("sep" in options or "delimiter" in options):
        return options, notes
    lines = _first_lines(path)
    if not lines:
        return options, notes
    import csv

    sample = "\n".join(lines)
    if "sep" not in options and "delimiter" not in options:
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",\t;|")
        except csv.Error:
            dialect = None
        if dialect is not None and dialect.delimiter != ",":
            options["sep"] = dialect.delimiter
        if dialect is not None and all(f"{dialect.delimiter} " in line for line in lines[:5]):
            options.setdefault("skipinitialspace", True)
    sep = options.get("sep", options.get("delimiter", ","))
    if "header" not in options:
        fields = [field.strip().strip("\"'") for field in lines[0].split(sep)]
        if any(_is_number(field) for field in fields):
            options["header"] = None
            notes.append(
                f"no header line (the first line holds numbers): columns are numbered 0 to {len(fields) - 1}; "
                "name them by position (--target 14), or pass --read-option header=0"
            )
    return options, notes


def _first_lines(path: str, n_bytes: int = 65536) -> list[str]:
    """The complete first lines of a (possibly compressed, possibly remote) text file; [] if unreadable."""
    import fsspec

    first = glob.glob(path)[0] if glob.has_magic(path) and glob.glob(path) else path
    try:
        with fsspec.open(first, "rt", compression="infer", encoding="utf-8", errors="replace") as stream:
            text = stream.read(n_bytes)
    except (OSError, ValueError, EOFError):
        return []
    lines = text.splitlines()
    if len(text) >= n_bytes and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    return [line for line in lines if line.strip()][:50]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.lower() not in ("nan", "inf", "-inf", "infinity")


def by_position(name: Any, header: Any) -> Any:
    """A column name given on the command line as the column's position when the file has no header."""
    if header is None and isinstance(name, str) and name.strip().isdigit():
        return int(name)
    return name


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


def print_dashboard(client: Any, settings: Mapping[str, Any]) -> None:
    """Print the link of the live training page, and how long it lives."""
    link = str(client.dashboard_link or "")
    if not link:
        return
    if link.rstrip("/").endswith("/status"):
        link = link.rstrip("/")[: -len("/status")] + "/daskml-training"
    print(f"Training page: {link}")
    if not settings.get("scheduler"):
        print(
            "  (served by the local cluster of this command, which stops when the command ends; start "
            "`dask scheduler` with workers and pass --scheduler for a page that stays)"
        )


def is_sparse(X: Any) -> bool:
    """Whether the blocks of a dask array are sparse matrices (svmlight files)."""
    import scipy.sparse

    return bool(scipy.sparse.issparse(getattr(X, "_meta", None)))


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
    categorical: str | None,
    features: list[str] | None = None,
) -> tuple[Any, Any, dict[str, Any]]:
    """Read training data; return ``X``, ``y`` and what predict and evaluate need to read alike.

    Returns
    -------
    X, y : dask.array.Array
        Lazy, with known row chunks.
    info : dict
        JSON-safe: ``path``, ``format``, ``target``, ``features`` (names, or None), ``categories`` (for encoded
        columns), ``read_options`` (with those :func:`csv_options` decided), ``n_samples``, ``n_features``,
        ``n_blocks``, ``n_dropped`` (rows whose target is missing), ``notes`` (how the file was read).
    """
    spec = get_format(fmt)
    options = dict(read_options)
    notes: list[str] = []
    if fmt == "csv":
        options, notes = csv_options(path, options)
    header = options.get("header", 0)
    if features:
        if spec.features is None:
            msg = f"--features does not apply to {fmt} files, whose features are numbered; leave it out."
            raise ValueError(msg)
        options["features"] = [by_position(name, header) for name in features]
    if spec.labels_in_file:
        if target:
            msg = f"--target does not apply to {fmt} files, which hold their labels; leave it out."
            raise ValueError(msg)
        X, y = read(path, format=fmt, **options)
        origin = None
    else:
        target = by_position(target, header)
        if spec.table:
            options.setdefault("categorical", categorical or "encode")
        elif categorical is not None:
            tables = " and ".join(f.description for f in FORMATS.values() if f.table)
            msg = f"--categorical applies to {tables} tables; {path!r} is read as {fmt}."
            raise ValueError(msg)
        if spec.table:
            options["drop_missing_target"] = True  # rows without a target cannot train; counted and printed
            options["allow_nan"] = True  # missing features reach the model, whose own input gate decides
        X, y, origin = read(path, target, format=fmt, return_origin=True, **options)
        if getattr(origin, "column_types", None):
            # the types found after dask's sample: predict and evaluate read the file in one pass with them
            options["dtype"] = {**(options.get("dtype") or {}), **origin.column_types}
    for key in ("categorical", "features", "columns", "drop_missing_target", "allow_nan"):
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
        "n_dropped": int(getattr(origin, "n_dropped", 0)),
        "notes": notes,
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
    id_column: str | None = None,
) -> tuple[Any, Any, Any]:
    """Read data to predict or evaluate the way the training data were read (same features and encodings).

    Values of a text column that training never saw get the code -1 (HistGradientBoosting takes negative
    codes as missing values). With ``id_column``, that column is returned in place of ``y``.

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
    elif features is not None and (spec.table or not _positional(features)):
        # A table's columns are chosen by name (numbers for a CSV file without a header line), so that a
        # file with the target, identifiers or more columns is read with the model's features only.
        options.setdefault("features", list(features))
    header = options.get("header", 0)
    categories = trained_on.get("categories")
    if categories and spec.table:
        options.setdefault("categorical", {by_position(k, header): v for k, v in categories.items()})
        options.setdefault("unknown_code", -1)
    if spec.table:
        # as in training: missing features reach the model (HistGradientBoosting takes them, the scaled
        # models' pipeline imputes them, other models refuse them with their own message)
        options.setdefault("allow_nan", True)
    if spec.labels_in_file:
        if id_column:
            msg = f"--id-column does not apply to {fmt} files, whose rows have only labels and features."
            raise ValueError(msg)
        X, y = read(path, format=fmt, **options)
        return X, y, None
    if id_column:
        target = by_position(id_column, header)
    elif target is not None:
        target = by_position(target, header)
        if spec.table:
            options.setdefault("drop_missing_target", True)
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
