"""Checkpoints of a search: every finished (candidate, fold) result in its own small JSON file.

A search given ``checkpoint=<directory>`` writes, as each fit of a candidate on a fold finishes, the file
``fit-<candidate>-<fold>.json`` (its scores, times and error text; no model, nothing pickled) through the
checkpoint layer of :mod:`daskml_lab._runtime.checkpoint_files` (atomic writes, one fit per directory at a
time, a manifest that refuses another search's directory). Fitting the same search again on the same data reads
the finished results back and runs only the others.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from dask.base import tokenize

from daskml_lab._runtime.checkpoint_files import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CheckpointError,
    atomic_write,
    dump_json,
    fix_advice,
    lock_checkpoint_directory,
    open_checkpoint_directory,
    read_json,
)

__all__ = ["SearchCheckpoint", "search_checkpoint"]

_RESULT_FILE = re.compile(r"^fit-(\d+)-(\d+)\.json$")
#: The fields of a (candidate, fold) result that are saved (the fitted estimator never is).
_FIELDS = ("fit_time", "score_time", "test_scores", "train_scores", "fit_error")
#: Search parameters that do not change any result: left out of the fingerprint.
_NEUTRAL = {"checkpoint", "verbose", "progress"}


class SearchCheckpoint:
    """The result files of one search's checkpoint directory.

    Parameters
    ----------
    directory : pathlib.Path
        The directory (opened, and locked by this process).
    fit_id : str
        The manifest's digest, recorded in every result file.
    n_candidates, n_splits : int
        Shape of the search, to ignore nothing silently.
    """

    def __init__(self, directory: Path, fit_id: str, n_candidates: int, n_splits: int) -> None:
        self.directory = directory
        self.fit_id = fit_id
        self.n_candidates = n_candidates
        self.n_splits = n_splits

    def finished(self) -> dict[tuple[int, int], dict[str, Any]]:
        """The saved results, by (candidate, fold).

        Returns
        -------
        dict

        Raises
        ------
        CheckpointError
            For a result file that is damaged, of another search, or outside the search's shape.
        """
        results = {}
        for path in sorted(self.directory.iterdir()):
            match = _RESULT_FILE.match(path.name)
            if match is None:
                continue
            candidate, fold = int(match[1]), int(match[2])
            info = read_json(path, "search result", self.directory)
            if (
                info.get("fit") != self.fit_id
                or candidate >= self.n_candidates
                or fold >= self.n_splits
                or any(field not in info for field in _FIELDS)
            ):
                msg = (
                    f"The search result {os.fspath(path)!r} does not belong to this search (another manifest, "
                    f"or candidate {candidate} / fold {fold} outside its {self.n_candidates} candidates x "
                    f"{self.n_splits} folds). {fix_advice(self.directory)}"
                )
                raise CheckpointError(msg)
            results[candidate, fold] = {field: info[field] for field in _FIELDS} | {"estimator": None}
        return results

    def save(self, candidate: int, fold: int, result: Mapping[str, Any]) -> None:
        """Write one finished result (atomically; a file of the same pair is replaced).

        Parameters
        ----------
        candidate, fold : int
        result : dict
            As returned for one fit by ``run_folds``.
        """
        info = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "fit": self.fit_id,
            **{field: _plain(result[field]) for field in _FIELDS},
        }
        atomic_write(self.directory / f"fit-{candidate}-{fold}.json", dump_json(info))


def _plain(value: Any) -> Any:
    """Scores as Python numbers (what JSON writes and reads back exactly)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _random_folds_or_candidates(search: Any, cv: Any) -> str | None:
    """What would differ between two runs of the search (folds or candidates drawn from fresh entropy)."""
    seed = getattr(cv, "random_state", 0)
    if getattr(cv, "shuffle", True) and hasattr(cv, "random_state") and not _fixed(seed):
        return f"cv={cv!r} draws its folds at random: give it random_state=<int>"
    if hasattr(search, "random_state") and not _fixed(search.random_state):
        return f"{type(search).__name__} samples its candidates at random: give it random_state=<int>"
    return None


def _fixed(seed: Any) -> bool:
    return isinstance(seed, numbers.Integral) and not isinstance(seed, bool)


@contextlib.contextmanager
def search_checkpoint(
    search: Any,
    X: Any,
    y: Any,
    groups: Any,
    *,
    candidates: list[dict[str, Any]],
    cv: Any,
    n_splits: int,
) -> Iterator[SearchCheckpoint | None]:
    """Open ``search.checkpoint`` for the whole fit (``None`` without one), locked against other fits.

    The manifest's fingerprint holds the search's parameters (its estimator, scoring, ...), the candidates,
    the folds' splitter and a token of the data (:func:`dask.base.tokenize`: a hash of in-memory data, the
    graph names of dask collections; nothing is computed).

    Parameters
    ----------
    search : GridSearchCV or RandomizedSearchCV
    X, y, groups
        The data of ``fit``.
    candidates : list of dict
        The parameter settings.
    cv : splitter or list of (train, test)
        The resolved folds.
    n_splits : int
        Number of folds.

    Yields
    ------
    SearchCheckpoint or None

    Raises
    ------
    ValueError
        When the folds or candidates are drawn from fresh entropy (they would differ on resume).
    CheckpointError
        If the directory is unwritable, in use, or holds another search's checkpoint.
    """
    if search.checkpoint is None:
        yield None
        return
    unstable = _random_folds_or_candidates(search, cv)
    if unstable is not None:
        msg = (
            f"checkpoint={os.fspath(search.checkpoint)!r} resumes a search with the same folds and candidates, "
            f"but {unstable}, so that a resumed search sees the same ones."
        )
        raise ValueError(msg)
    params = {
        k: v
        for k, v in search.get_params(deep=False).items()
        if k not in _NEUTRAL and k not in {"param_grid", "param_distributions", "n_iter", "random_state"}
    }
    fingerprint = {
        "params": params,
        "candidates": candidates,
        "cv": cv if isinstance(cv, list) else repr(cv),
        "n_splits": n_splits,
        "data": {"token": tokenize(X, y, groups), "shape": list(np.shape(X))},
    }
    with lock_checkpoint_directory(search.checkpoint):
        opened = open_checkpoint_directory(
            search.checkpoint, owner=type(search).__name__, fingerprint=fingerprint
        )
        yield SearchCheckpoint(opened["directory"], opened["id"], len(candidates), n_splits)
