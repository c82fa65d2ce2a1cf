"""Progress bars for fits and long computations, in the terminal and in Jupyter.

Bars are drawn on standard error, one line rewritten in place, and only when someone watches: standard error
is a terminal, or the code runs in a Jupyter kernel. They are on by default in that case, and
:func:`progress` (or the dask setting ``daskml_lab.monitoring.progress``) turns them off (``verbose=False``).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import dask
from distributed import progress as distributed_progress

from daskml_lab._compat import unique_fused_keys
from daskml_lab._runtime.client import current_client

__all__ = [
    "IterationBar",
    "ShardBar",
    "compute_with_progress",
    "is_interactive",
    "progress",
    "progress_enabled",
]

_CONFIG_KEY = "daskml_lab.monitoring.progress"
_MIN_INTERVAL_S = 0.1
_WIDTH = 24


def _in_jupyter() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ZMQ shell)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def is_interactive(stream: TextIO | None = None) -> bool:
    """Whether progress output would be seen: ``stream`` (standard error) is a terminal, or in Jupyter.

    Parameters
    ----------
    stream : file-like, default=None
        The stream to check; ``sys.stderr`` when ``None``.

    Returns
    -------
    bool
    """
    if _in_jupyter():
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_enabled() -> bool:
    """Whether fits draw progress bars now: the setting allows it and the output is interactive.

    Returns
    -------
    bool
    """
    setting = dask.config.get(_CONFIG_KEY, True)
    if setting in (False, "false", "False", "off", 0):
        return False
    return is_interactive()


@contextlib.contextmanager
def progress(verbose: bool = True) -> Iterator[None]:
    """Turn the progress bars of the fits inside the block on (the default when interactive) or off.

    Solvers show their iteration, objective and gradient norm; shard ensembles how many shards are fitted.
    Bars are drawn only when standard error is a terminal or in Jupyter, whatever ``verbose`` says.

    Parameters
    ----------
    verbose : bool, default=True
        ``False`` silences the bars.

    Examples
    --------
    >>> from daskml_lab.monitoring import progress
    >>> with progress(verbose=False):
    ...     pass  # fits here draw no progress bar
    """
    with dask.config.set({_CONFIG_KEY: bool(verbose)}):
        yield


def _format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class IterationBar:
    """One line with a solver's latest iteration, rewritten in place at most every 0.1 s.

    Parameters
    ----------
    label : str
        What is fitted.
    stream : file-like, default=None
        Where to draw; ``sys.stderr`` (looked up when drawing) when ``None``.
    """

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self._stream = stream
        self._last_draw = 0.0
        self._line = ""
        self._pending = ""
        self._drawn = False

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self._stream is None else self._stream

    def _draw(self, line: str, *, force: bool = False, end: str = "") -> None:
        now = time.monotonic()
        self._pending = line
        if not force and now - self._last_draw < _MIN_INTERVAL_S:
            return
        self._last_draw = now
        padding = " " * max(0, len(self._line) - len(line))
        self._line = line
        self.stream.write("\r" + line + padding + end)
        self.stream.flush()
        self._drawn = True

    def update(self, record: Mapping[str, Any]) -> None:
        """Show ``record`` (a solver history record)."""
        parts = [f"{self.label}: iteration {record.get('iteration', '?')}"]
        for key in ("objective", "grad_norm", "staleness"):
            if key in record:
                parts.append(f"{key} {_format_value(record[key])}")
        self._draw("  ".join(parts))

    def close(self, status: str) -> None:
        """Draw the final line and end it."""
        if not self._drawn:
            return
        self._draw(f"{self._pending or self.label}  [{status}]", force=True, end="\n")


class ShardBar(IterationBar):
    """``label: [#####-----] 5/10 shards fitted``, updated from the shard events.

    Parameters
    ----------
    label : str
        What is fitted.
    n_shards : int
        Number of shards.
    stream : file-like, default=None
        Where to draw; ``sys.stderr`` when ``None``.
    """

    def __init__(self, label: str, n_shards: int, stream: TextIO | None = None) -> None:
        super().__init__(label, stream)
        self.n_shards = int(n_shards)
        self.status: dict[int, str] = {}
        self._draw(self._render(), force=True)

    def _render(self) -> str:
        done = sum(1 for status in self.status.values() if status == "finished")
        failed = sum(1 for status in self.status.values() if status == "failed")
        running = sum(1 for status in self.status.values() if status == "started")
        filled = int(_WIDTH * done / self.n_shards) if self.n_shards else _WIDTH
        line = f"{self.label}: [{'#' * filled}{'-' * (_WIDTH - filled)}] {done}/{self.n_shards} shards fitted"
        if running:
            line += f", {running} running"
        if failed:
            line += f", {failed} failed"
        return line

    def update(self, shard: int, status: str) -> None:  # type: ignore[override]
        """Record that ``shard`` is now ``status`` (``started``, ``finished`` or ``failed``)."""
        self.status[shard] = status
        self._draw(self._render(), force=status != "started")

    def close(self, status: str) -> None:
        """Draw the final line and end it."""
        self._draw(f"{self._render()}  [{status}]", force=True, end="\n")


class SearchBar(IterationBar):
    """``label: [#####-----] 5/12 fits, candidates 1/4 done, 1 running, best 0.93 (C=1.0)``.

    A successive-halving search also shows its round: ``5/12 fits, round 2/3, candidates 1/2 done, ...``.

    Parameters
    ----------
    label : str
        What is searched.
    n_fits : int
        Number of (candidate, fold) fits.
    stream : file-like, default=None
        Where to draw; ``sys.stderr`` when ``None``.
    """

    def __init__(self, label: str, n_fits: int, stream: TextIO | None = None) -> None:
        super().__init__(label, stream)
        self.n_fits = int(n_fits)
        self.state: dict[str, Any] = {}
        self._draw(self._render(), force=True)

    def _render(self) -> str:
        state = self.state
        done = int(state.get("fits_done", 0))
        filled = int(_WIDTH * done / self.n_fits) if self.n_fits else _WIDTH
        line = f"{self.label}: [{'#' * filled}{'-' * (_WIDTH - filled)}] {done}/{self.n_fits} fits"
        if isinstance(state.get("round"), int) and "n_rounds" in state:  # successive halving, counted from 1
            line += f", round {state['round'] + 1}/{state['n_rounds']}"
        if "n_candidates" in state:
            line += f", candidates {state.get('candidates_done', 0)}/{state['n_candidates']} done"
        if state.get("candidates_running"):
            line += f", {state['candidates_running']} running"
        if state.get("best_score") is not None:
            line += f", best {_format_value(state['best_score'])} ({state.get('best_params', '')})"
        return line

    def update(self, state: Mapping[str, Any]) -> None:  # type: ignore[override]
        """Show the search's progress (what :meth:`TrainingRun.search` reports)."""
        self.state = dict(state)
        self._draw(self._render())

    def close(self, status: str) -> None:
        """Draw the final line and end it."""
        self._draw(f"{self._render()}  [{status}]", force=True, end="\n")


def compute_with_progress(*collections: Any, verbose: bool = True, **kwargs: Any) -> tuple[Any, ...]:
    """``dask.compute(*collections)`` with Dask's own progress bar when interactive.

    On a distributed client the bar is :func:`distributed.progress` over the computation's futures; on the
    local schedulers it is :class:`dask.diagnostics.ProgressBar` (on standard error). Nothing is drawn when
    ``verbose=False``, when progress bars are turned off, or when no one watches (no terminal, no Jupyter).

    Parameters
    ----------
    *collections : dask collections
        What to compute.
    verbose : bool, default=True
        ``False`` computes silently.
    **kwargs
        Passed to :func:`dask.compute` (local schedulers) or :meth:`distributed.Client.compute`.

    Returns
    -------
    tuple
        The computed results, as :func:`dask.compute` returns them.

    Examples
    --------
    >>> import dask.array as da
    >>> from daskml_lab.monitoring import compute_with_progress
    >>> compute_with_progress(da.ones(4, chunks=2).sum(), verbose=False)
    (np.float64(4.0),)
    """
    show = verbose and progress_enabled()
    client = current_client()
    if client is None:
        if not show:
            with unique_fused_keys():
                return dask.compute(*collections, **kwargs)
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr), unique_fused_keys():
            return dask.compute(*collections, **kwargs)
    with unique_fused_keys():
        futures = client.compute(list(collections), **kwargs)
    if show:
        # The notebook widget needs ipywidgets; the text bar works everywhere.
        notebook = _in_jupyter() and _has_module("ipywidgets")
        bar = distributed_progress(futures, notebook=notebook, multi=False)
        if notebook and bar is not None:  # pragma: no cover - needs a Jupyter front end
            from IPython.display import display

            display(bar)
    # compute: the collections' results, as dask.compute would bring them
    return tuple(client.gather(futures))


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
