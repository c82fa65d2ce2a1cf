"""Checkpoints of a search: every finished (candidate, fold) result in its own small JSON file.

A search given ``checkpoint=<directory>`` writes, as each fit of a candidate on a fold finishes, the file
``fit-<candidate>-<fold>.json`` (its scores, times and error text; no model, nothing pickled) through the
checkpoint layer of :mod:`daskml_lab._runtime.checkpoint_files` (atomic writes, one fit per directory at a
time, a manifest that refuses another search's directory). Fitting the same search again on the same data reads
the finished results back and runs only the others.

A successive-halving search writes ``round-<round>-fit-<candidate>-<fold>.json`` instead
(:meth:`SearchCheckpoint.round`), its candidates numbered as in its first round: the candidates of a round follow
from the scores of the rounds before, so a resumed search reads its saved scores back, reaches the same rounds,
and fits only what is missing.
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

__all__ = ["RoundCheckpoint", "SearchCheckpoint", "search_checkpoint"]

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
    prefix : str, default=""
        Start of the names of the result files (a round's, in a successive-halving search).
    """

    def __init__(
        self, directory: Path, fit_id: str, n_candidates: int, n_splits: int, prefix: str = ""
    ) -> None:
        self.directory = directory
        self.fit_id = fit_id
        self.n_candidates = n_candidates
        self.n_splits = n_splits
        self.prefix = prefix
        self._pattern = re.compile(rf"^{re.escape(prefix)}fit-(\d+)-(\d+)\.json$")

    def round(self, index: int, numbers: list[int]) -> RoundCheckpoint:
        """The result files of round ``index`` of a successive-halving search.

        Parameters
        ----------
        index : int
            The round (0 for the first).
        numbers : list of int
            The round's candidates, numbered as in round 0 (what the files are named by).

        Returns
        -------
        RoundCheckpoint
        """
        return RoundCheckpoint(self, index, numbers)

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
            match = self._pattern.match(path.name)
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
        atomic_write(self.directory / f"{self.prefix}fit-{candidate}-{fold}.json", dump_json(info))


class RoundCheckpoint(SearchCheckpoint):
    """The result files of one round of a successive-halving search, by position among the round's candidates.

    Its files are named by the candidates' numbers in round 0 (``round-<round>-fit-<number>-<fold>.json``), so
    that a round's results keep their candidate whatever its position; a saved result of a candidate that the
    round does not hold is refused (the round follows from the saved scores of the rounds before).

    Parameters
    ----------
    search : SearchCheckpoint
        The search's checkpoint.
    index : int
        The round.
    numbers : list of int
        The round's candidates, numbered as in round 0.
    """

    def __init__(self, search: SearchCheckpoint, index: int, numbers: list[int]) -> None:
        super().__init__(
            search.directory, search.fit_id, search.n_candidates, search.n_splits, prefix=f"round-{index}-"
        )
        self.index = index
        self.numbers = numbers

    def finished(self) -> dict[tuple[int, int], dict[str, Any]]:
        """The saved results of the round, by (position in the round, fold).

        Returns
        -------
        dict

        Raises
        ------
        CheckpointError
            As :meth:`SearchCheckpoint.finished`, and for a result of a candidate the round does not hold.
        """
        position = {number: p for p, number in enumerate(self.numbers)}
        saved = super().finished()
        strays = sorted({number for number, _ in saved} - set(position))
        if strays:
            msg = (
                f"The checkpoint {os.fspath(self.directory)!r} holds results of round {self.index} for "
                f"candidate(s) {strays}, which the saved scores of the rounds before did not keep for that round. "
                f"{fix_advice(self.directory)}"
            )
            raise CheckpointError(msg)
        return {(position[number], fold): result for (number, fold), result in saved.items()}

    def save(self, candidate: int, fold: int, result: Mapping[str, Any]) -> None:
        """Write the result of the round's ``candidate``-th candidate (by position) on ``fold``.

        Parameters
        ----------
        candidate, fold : int
        result : dict
            As returned for one fit by ``run_folds``.
        """
        super().save(self.numbers[candidate], fold, result)


def _plain(value: Any) -> Any:
    """Scores as Python numbers (what JSON writes and reads back exactly)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _random_folds_or_candidates(search: Any, cv: Any, seed_use: str | None) -> str | None:
    """What would differ between two runs of the search (folds, candidates or rows drawn from fresh entropy)."""
    seed = getattr(cv, "random_state", 0)
    if getattr(cv, "shuffle", True) and hasattr(cv, "random_state") and not _fixed(seed):
        return f"cv={cv!r} draws its folds at random: give it random_state=<int>"
    if seed_use is not None and not _fixed(search.random_state):
        return f"{type(search).__name__} {seed_use}: give it random_state=<int>"
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
    seed_use: str | None = "samples its candidates at random",
    extra: Mapping[str, Any] | None = None,
) -> Iterator[SearchCheckpoint | None]:
    """Open ``search.checkpoint`` for the whole fit (``None`` without one), locked against other fits.

    The manifest's fingerprint holds the search's parameters (its estimator, scoring, ...), the candidates,
    the folds' splitter and a token of the data (:func:`dask.base.tokenize`: a hash of in-memory data, the
    graph names of dask collections; nothing is computed).

    Parameters
    ----------
    search : GridSearchCV, RandomizedSearchCV, HalvingGridSearchCV or HalvingRandomSearchCV
    X, y, groups
        The data of ``fit``.
    candidates : list of dict
        The parameter settings.
    cv : splitter or list of (train, test)
        The resolved folds.
    n_splits : int
        Number of folds.
    seed_use : str or None, default="samples its candidates at random"
        What the search's ``random_state`` draws (then it must be an int), ``None`` when nothing (or the
        search has none).
    extra : dict, default=None
        More of the fingerprint (a successive-halving search: its seed of the rows); GridSearchCV's and
        RandomizedSearchCV's fingerprints have none, so that their existing directories stay valid.

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
    if not hasattr(search, "random_state"):
        seed_use = None
    unstable = _random_folds_or_candidates(search, cv, seed_use)
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
    if extra:
        fingerprint["search"] = dict(extra)
    with lock_checkpoint_directory(search.checkpoint):
        opened = open_checkpoint_directory(
            search.checkpoint, owner=type(search).__name__, fingerprint=fingerprint
        )
        yield SearchCheckpoint(opened["directory"], opened["id"], len(candidates), n_splits)
