"""The one rule, shared by every module, for which distributed client (if any) a computation runs on."""

from __future__ import annotations

from typing import Any

import dask

__all__ = ["current_client"]


def current_client() -> Any:
    """The distributed client ``dask.compute`` uses now, or ``None`` when a local scheduler is in use.

    Returns
    -------
    distributed.Client or None
        ``None`` when ``dask.config`` names a local scheduler (``"sync"``, ``"threads"``, a counting
        scheduler, ...) or no default client exists.

    Examples
    --------
    >>> import dask
    >>> from daskml_lab.cluster._current import current_client
    >>> with dask.config.set(scheduler="sync"):
    ...     current_client() is None
    True
    """
    scheduler = dask.config.get("scheduler", None)
    if scheduler is not None and scheduler not in ("dask.distributed", "distributed"):
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None
