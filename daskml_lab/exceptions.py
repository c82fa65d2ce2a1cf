"""Warnings and exceptions raised by daskml_lab.

Every warning the package emits derives from :class:`DaskMLLabWarning`, so that users (and our own test
suite) can filter or escalate them in one place.
"""

from sklearn.exceptions import ConvergenceWarning, NotFittedError

__all__ = [
    "ConvergenceWarning",
    "DaskMLLabWarning",
    "DataConversionWarning",
    "NotFittedError",
    "PerformanceWarning",
]


class DaskMLLabWarning(UserWarning):
    """Base class of every warning issued by daskml_lab."""


class DataConversionWarning(DaskMLLabWarning):
    """The input was converted (dtype, chunking) in a way the user may not expect."""


class PerformanceWarning(DaskMLLabWarning):
    """The requested operation works but will be slow (for example, one huge row block)."""
