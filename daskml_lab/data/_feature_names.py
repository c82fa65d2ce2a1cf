"""Column names as a contract between ``fit`` and every later method, exactly as scikit-learn checks them.

An estimator fitted on named columns (a pandas or dask DataFrame, or an xarray object whose feature coordinate
holds strings) records ``feature_names_in_``; ``predict``, ``predict_proba``, ``decision_function``, ``score``
and ``transform`` then refuse renamed, reordered, missing or extra columns with scikit-learn's ``ValueError``,
and warn when an unnamed array arrives after a fit on names (or named columns after a fit without them).

The check is scikit-learn's own, reached through its public
:func:`sklearn.utils.validation.validate_data` with ``reset=False`` and ``skip_check_array=True``. It is given a
zero-row pandas stand-in carrying only the names our input gate read from the input's metadata (``.columns``
of a dask DataFrame is metadata), so nothing is computed and the wording, warnings and rules (non-string names
count as no names) are scikit-learn's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import validate_data

__all__ = ["check_feature_names", "fitted_feature_names"]


def fitted_feature_names(names: Any) -> np.ndarray | None:
    """The ``feature_names_in_`` scikit-learn would record for these column names, or ``None``.

    Parameters
    ----------
    names : sequence or None
        Column names read from the training input's metadata.

    Returns
    -------
    ndarray of object or None
        The names when every one is a string (scikit-learn's rule); ``None`` otherwise.
    """
    if names is None or not all(isinstance(name, str) for name in names):
        return None
    return np.asarray(names, dtype=object)


def check_feature_names(estimator: Any, names: Any, n_features: int) -> None:
    """Check the column names of data passed to a fitted estimator against ``feature_names_in_``.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator (``feature_names_in_`` is set when it was fitted on string column names).
    names : sequence or None
        The column names of the new data (``None`` for arrays without names).
    n_features : int
        The number of columns of the new data.

    Raises
    ------
    ValueError
        If the names differ from those seen in ``fit``: renamed, missing, unexpected or reordered columns
        (scikit-learn's message, listing them). Select or reorder the columns as in ``fit``, e.g.
        ``df[model.feature_names_in_]``.

    Warns
    -----
    UserWarning
        "X does not have valid feature names, but ... was fitted with feature names" for an unnamed array after
        a fit on named columns, and the converse, as scikit-learn warns.
    """
    if names is not None:
        # object columns keep the names as given; the stand-in has no rows, so it costs nothing
        stand_in = pd.DataFrame(np.empty((0, n_features)), columns=pd.Index(list(names), dtype=object))
    else:
        stand_in = np.empty((0, n_features))
    validate_data(estimator, stand_in, reset=False, skip_check_array=True)
