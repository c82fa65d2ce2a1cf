"""Count (and bound) the dask computations a block of code triggers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dask

__all__ = ["ComputeCounter", "raise_if_computes"]


class ComputeCounter:
    """A dask scheduler callable that counts how often it is asked to compute.

    Installed through ``dask.config.set(scheduler=counter)``; it runs every graph with the synchronous
    scheduler, after checking the count against ``max_computes``.

    Parameters
    ----------
    max_computes : int or None, default=0
        Largest number of computations allowed; ``None`` only counts.

    Attributes
    ----------
    n_computes : int
        Number of computations seen so far.
    """

    def __init__(self, max_computes: int | None = 0) -> None:
        self.max_computes = max_computes
        self.n_computes = 0

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        self.n_computes += 1
        if self.max_computes is not None and self.n_computes > self.max_computes:
            msg = (
                f"Too many dask computations: {self.n_computes} > {self.max_computes} allowed. Something "
                "computed data that should have stayed lazy."
            )
            raise RuntimeError(msg)
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_computes(max_computes: int | None = 0) -> Iterator[ComputeCounter]:
    """Raise ``RuntimeError`` if the enclosed code triggers more than ``max_computes`` dask computations.

    Parameters
    ----------
    max_computes : int or None, default=0
        Computations allowed inside the block; ``None`` only counts them.

    Yields
    ------
    ComputeCounter
        Its ``n_computes`` tells how many computations ran.

    Examples
    --------
    >>> import dask.array as da
    >>> from daskml_lab.testing import raise_if_computes
    >>> x = da.ones(10, chunks=5)
    >>> with raise_if_computes():
    ...     y = x + 1  # building a graph computes nothing
    >>> with raise_if_computes(max_computes=1) as counter:
    ...     _ = y.sum().compute()
    >>> counter.n_computes
    1
    """
    counter = ComputeCounter(max_computes)
    with dask.config.set(scheduler=counter):
        yield counter
