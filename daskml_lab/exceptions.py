"""Warnings and exceptions raised by daskml_lab.

Every warning the package emits derives from :class:`DaskMLLabWarning`, so that users (and our own test
suite) can filter or escalate them in one place.
"""

from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.exceptions import DataConversionWarning as _SklearnDataConversionWarning

__all__ = [
    "ConvergenceWarning",
    "DaskMLLabWarning",
    "DataConversionWarning",
    "NotFittedError",
    "PerformanceWarning",
]


class DaskMLLabWarning(UserWarning):
    """Base class of every warning issued by daskml_lab."""


class DataConversionWarning(DaskMLLabWarning, _SklearnDataConversionWarning):
    """The input was converted (dtype, shape) in a way the user may not expect.

    It is also a :class:`sklearn.exceptions.DataConversionWarning`, so filters written for scikit-learn apply.
    """


class PerformanceWarning(DaskMLLabWarning):
    """The requested operation works but will be slow (for example, one huge row block)."""
