"""Docstring text shared by the transformers, written once and filled into each class docstring.

A docstring line consisting only of ``%(name)s`` is replaced by the fragment ``name`` of :data:`DOC_FRAGMENTS`,
re-indented to the indentation of that line.
"""

from __future__ import annotations

import re
import textwrap

__all__ = ["DOC_FRAGMENTS", "fill_doc"]

DOC_FRAGMENTS: dict[str, str] = {
    "copy": """
        copy : bool, default=True
            Accepted for compatibility with scikit-learn; ``transform`` always returns a new array.
        """,
    "fitted_features": """
        n_features_in_ : int
            Number of features seen during ``fit``.
        feature_names_in_ : ndarray of str of shape (n_features,)
            Names of the features seen during ``fit``; defined only when ``X`` had string column names.
        """,
}

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)%\((?P<name>\w+)\)s[ \t]*$", re.MULTILINE)


def fill_doc(cls: type) -> type:
    """Replace the ``%(name)s`` lines of ``cls.__doc__`` by their fragments (a class decorator)."""

    def replace(match: re.Match[str]) -> str:
        fragment = textwrap.dedent(DOC_FRAGMENTS[match["name"]]).strip("\n")
        return textwrap.indent(fragment, match["indent"])

    if cls.__doc__:
        cls.__doc__ = _PLACEHOLDER.sub(replace, cls.__doc__)
    return cls
