"""Readable task names and dashboard spans.

Every task the package submits has a key prefix starting with ``daskml-`` (for example ``daskml-grad``,
``daskml-shard-fit``), and every ``fit`` runs inside a :func:`distributed.span`, so that the dashboard's task
stream, progress bars and span views show our work under our own names.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from distributed import span

from daskml_lab.monitoring._events import fit_scope

__all__ = ["fit_span", "task_prefix"]

_PREFIX = "daskml-"


def task_prefix(action: str) -> str:
    """Key prefix for tasks doing ``action``, e.g. ``task_prefix("shard fit") == "daskml-shard-fit"``.

    Parameters
    ----------
    action : str
        What the tasks do, in words.

    Returns
    -------
    str

    Examples
    --------
    >>> task_prefix("loss grad")
    'daskml-loss-grad'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", action.lower()).strip("-")
    return _PREFIX + slug


@contextlib.contextmanager
def fit_span(*names: str) -> Iterator[str | None]:
    """Group the tasks submitted inside the block under a span, e.g. ``daskml-fit``/``LogisticRegression``.

    Works with or without a distributed client (without one there is no span). The block is also a fit
    scope of the training monitor: the training runs started inside it (a solver's iterations, a shard
    ensemble's shard fits) end with it, ``failed`` if it raises.

    Parameters
    ----------
    *names : str
        Nested span names after the ``daskml-fit`` root.

    Yields
    ------
    str or None
        The span id, when distributed is in use.
    """
    with span("daskml-fit", *names) as span_id, fit_scope(*names):
        yield span_id
