"""Dask's HTML performance report for a fit."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from distributed import default_client, performance_report

__all__ = ["fit_report"]


@contextlib.contextmanager
def fit_report(path: str | os.PathLike[str] = "daskml-fit-report.html") -> Iterator[str]:
    """Write Dask's performance report (task stream, profiles, bandwidth) of the block to an HTML file.

    A thin wrapper of :class:`distributed.performance_report`, which needs a distributed client. Each of the
    package's tasks appears under its ``daskml-...`` name.

    Parameters
    ----------
    path : str or path-like, default="daskml-fit-report.html"
        Where to write the report.

    Yields
    ------
    str
        The report's path.

    Raises
    ------
    ValueError
        If no distributed client is current.

    Examples
    --------
    >>> from daskml_lab.monitoring import fit_report
    >>> with fit_report("fit.html"):  # doctest: +SKIP
    ...     model.fit(X, y)
    """
    try:
        default_client()
    except ValueError as err:
        msg = (
            "fit_report needs a distributed client, but none is current. Create one first, e.g. "
            "client = daskml_lab.connect(), then run the fit inside `with fit_report(path):`."
        )
        raise ValueError(msg) from err
    filename = os.fspath(path)
    with performance_report(filename=filename):
        yield filename
