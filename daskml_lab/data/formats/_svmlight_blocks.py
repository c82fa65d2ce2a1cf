"""The per-block work of the svmlight reader: scanning and parsing byte ranges, and locating bad lines.

Everything here runs in tasks on the workers, on one line-aligned byte range at a time, with scikit-learn's
own parser; the client side (files, byte ranges, the decisions of the first pass, assembling the arrays) is in
:mod:`daskml_lab.data.formats._svmlight`.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_file

__all__ = ["Located", "_parse_block", "_scan_block", "malformed_message"]


# A data row is a line holding a non-whitespace character before any ``#``: the rule of scikit-learn's parser,
# which cuts each line at its first ``#`` and skips lines whose ``bytes.split()`` is empty. ``bytes.split()``
# splits on the six ASCII whitespace characters, ``\n`` never occurs inside a line.
_ROW_PATTERN = re.compile(rb"^[ \t\r\x0b\x0c]*[^ \t\r\n\x0b\x0c#]", re.MULTILINE)
_SHOWN_LINE_LENGTH = 80


@dataclass(frozen=True)
class Located:
    """Where in a byte range a line is: its line number and byte offset in the range, and its text."""

    line: int
    byte: int
    text: bytes


# ---------------------------------------------------------------------------------------------------------
# first pass: a few integers per byte range


def _parse_bytes(
    block: bytes, *, zero_based: bool, dtype: Any = np.float64, query_id: bool = False
) -> tuple[Any, ...]:
    """scikit-learn's parser on an in-memory byte range (``n_features`` inferred from the range alone)."""
    return tuple(load_svmlight_file(io.BytesIO(block), dtype=dtype, zero_based=zero_based, query_id=query_id))


def _scan_block(block: bytes, *, index_scan: bool, zero_based: bool) -> dict[str, Any]:
    """Count rows, lines and bytes of a byte range; with ``index_scan``, also its min and max feature index.

    The indices are parsed as ``zero_based`` says (``False`` only when the user said so, so that an index 0 is
    reported at once) and returned as written in the file. Parse errors are returned (line, offset and message
    within the range), not raised: only the client knows where the range starts in its file, which the error
    message must give.
    """
    stats: dict[str, Any] = {
        "n_bytes": len(block),
        "n_lines": block.count(b"\n"),
        "n_indices": 0,
        "min_index": None,
        "max_index": None,
        "error": None,
    }
    if not index_scan:
        stats["n_rows"] = _count_rows(block)
        return stats
    try:
        X, _ = _parse_bytes(block, zero_based=zero_based)
    except (ValueError, OverflowError):
        located, message = _locate_bad_line(block, zero_based=zero_based)
        stats["n_rows"] = 0
        stats["error"] = (located.line, located.byte, located.text, message)
        return stats
    stats["n_rows"] = int(X.shape[0])
    stats["n_indices"] = int(X.indices.size)
    if X.indices.size:
        written = 0 if zero_based else 1  # the parser shifted one-based indices down by one
        stats["min_index"] = int(X.indices.min()) + written
        stats["max_index"] = int(X.indices.max()) + written
    return stats


def _count_rows(block: bytes) -> int:
    """Number of data rows in a byte range, by the rule of scikit-learn's parser (see ``_ROW_PATTERN``)."""
    return len(_ROW_PATTERN.findall(block))


# ---------------------------------------------------------------------------------------------------------
# second pass: one block


def _parse_block(
    block: bytes,
    *,
    n_rows: int,
    n_features: int,
    dtype: np.dtype,
    zero_based: bool,
    query_id: bool,
    dense: bool,
    name: str,
    compression: str | None,
    first_byte: int,
    first_line: int,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Parse one byte range into (CSR or dense block, float64 labels, int64 query ids).

    ``first_byte`` and ``first_line`` locate the range in its file, for error messages.
    """
    try:
        parsed = _parse_bytes(block, zero_based=zero_based, dtype=dtype, query_id=query_id)
    except (ValueError, OverflowError) as err:
        located, message = _locate_bad_line(block, zero_based=zero_based)
        located = Located(first_line + located.line, first_byte + located.byte, located.text)
        raise ValueError(malformed_message(name, located, message, compression)) from err
    X, y = parsed[0], parsed[1]
    qid = parsed[2] if query_id else np.zeros(X.shape[0], dtype=np.int64)
    if X.shape[1] > n_features:
        raise ValueError(
            _too_many_features_message(block, X, n_features, zero_based, name, first_byte, first_line)
        )
    if X.shape[0] != n_rows:
        msg = (
            f"{name}: the byte range starting at byte {first_byte} parsed into {X.shape[0]} rows, but the "
            f"first pass counted {n_rows}. The file changed while it was read, or holds bytes (such as NUL) "
            "that the parser treats unusually; read it again, or clean it."
        )
        raise ValueError(msg)
    X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n_features), dtype=dtype)
    if dense:
        return X.toarray(), y, qid
    return X, y, qid


# ---------------------------------------------------------------------------------------------------------
# error messages (slow paths, only taken on bad input)


def _locate_bad_line(block: bytes, *, zero_based: bool) -> tuple[Located, str]:
    """Find the first line scikit-learn's parser rejects, by bisection over the lines of a byte range.

    Each line is parsed on its own terms, so the first failing line is in the first half that fails to parse;
    the search parses about as many bytes as the range holds.
    """
    lines = block.split(b"\n")
    low, high = 0, len(lines)
    while high - low > 1:
        middle = (low + high) // 2
        if _parse_error(b"\n".join(lines[low:middle]), zero_based) is None:
            low = middle
        else:
            high = middle
    message = _parse_error(lines[low], zero_based) or "the byte range could not be parsed"
    byte = sum(len(line) + 1 for line in lines[:low])
    return Located(low, byte, lines[low]), message


def _parse_error(data: bytes, zero_based: bool) -> str | None:
    try:
        _parse_bytes(data, zero_based=zero_based)
    except (ValueError, OverflowError) as err:
        return str(err)
    return None


def malformed_message(name: str, located: Located, message: str, compression: str | None) -> str:
    where = "of the decompressed text" if compression else ""
    text = located.text.decode("utf-8", errors="replace").rstrip()
    if len(text) > _SHOWN_LINE_LENGTH:
        text = text[:_SHOWN_LINE_LENGTH] + "..."
    hint = ""
    if "Invalid index 0" in message:
        hint = (
            " With zero_based=False every index must be >= 1; pass zero_based=True or 'auto' for 0-based "
            "files."
        )
    return (
        f"Malformed svmlight line in {name} at line {located.line + 1} (byte offset {located.byte}"
        f"{' ' + where if where else ''}): {message} Expected '<label> [qid:<int>] <index>:<value> ...' with "
        f"increasing integer indices; got {text!r}.{hint}"
    )


def _too_many_features_message(
    block: bytes,
    X: sp.csr_matrix,
    n_features: int,
    zero_based: bool,
    name: str,
    first_byte: int,
    first_line: int,
) -> str:
    shift = 0 if zero_based else 1
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    too_large = X.indices >= n_features
    row = int(rows[too_large][0])
    index = int(X.indices[too_large][0]) + shift
    located = _locate_row(block, row)
    needed = int(X.indices.max()) + 1
    return (
        f"n_features={n_features} is too small: {name} has the feature index {index} at line "
        f"{first_line + located.line + 1} (byte offset {first_byte + located.byte}), so the data need at "
        f"least {needed} features with {'zero' if zero_based else 'one'}-based indices. Pass a larger "
        f"n_features (at least {needed}), or n_features=None to infer it from the data."
    )


def _locate_row(block: bytes, row: int) -> Located:
    """Line number, byte offset and text of data row ``row`` (0-based) of a byte range."""
    for count, match in enumerate(_ROW_PATTERN.finditer(block)):
        if count == row:
            start = block.rfind(b"\n", 0, match.start()) + 1
            end = block.find(b"\n", start)
            end = len(block) if end < 0 else end
            return Located(block.count(b"\n", 0, start), start, block[start:end])
    return Located(0, 0, b"")  # pragma: no cover - the parser and the row pattern agree on the rows
