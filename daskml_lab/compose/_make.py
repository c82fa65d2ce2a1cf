"""Build a :class:`~daskml_lab.compose.ColumnTransformer` without naming its transformers."""

from __future__ import annotations

from collections import Counter
from typing import Any

from daskml_lab.compose._column_transformer import ColumnTransformer

__all__ = ["make_column_transformer"]


def make_column_transformer(
    *transformers: tuple[Any, Any],
    remainder: Any = "drop",
    sparse_threshold: float = 0.3,
    verbose_feature_names_out: Any = True,
) -> ColumnTransformer:
    """A :class:`ColumnTransformer` whose transformers are named after their classes (lower case).

    Parameters
    ----------
    *transformers : tuples
        ``(transformer, columns)``, as in :class:`ColumnTransformer` without the name.
    remainder, sparse_threshold, verbose_feature_names_out
        As in :class:`ColumnTransformer`.

    Returns
    -------
    ColumnTransformer

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> from daskml_lab.compose import DateTimeFeatures, make_column_transformer
    >>> ct = make_column_transformer((StandardScaler(), ["distance"]), (DateTimeFeatures(), ["when"]))
    >>> [name for name, _, _ in ct.transformers]
    ['standardscaler', 'datetimefeatures']
    """
    names = [t.lower() if isinstance(t, str) else type(t).__name__.lower() for t, _ in transformers]
    counts = Counter(names)
    seen: Counter[str] = Counter()
    unique = []
    for name in names:
        if counts[name] > 1:
            seen[name] += 1
            unique.append(f"{name}-{seen[name]}")
        else:
            unique.append(name)
    return ColumnTransformer(
        [(name, t, c) for name, (t, c) in zip(unique, transformers, strict=True)],
        remainder=remainder,
        sparse_threshold=sparse_threshold,
        verbose_feature_names_out=verbose_feature_names_out,
    )
