"""A search's progress as it runs: fits and candidates done, candidates running, the best score so far.

:class:`SearchProgress` is called with every finished (candidate, fold) result and reports to the search's
training run (:meth:`daskml_lab.monitoring.TrainingRun.search`): the training page shows it, and a progress bar
draws it when progress bars are on (:func:`daskml_lab.monitoring.progress`). A successive-halving search has
one per round, which also reports the round and counts the fits of the whole search.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from daskml_lab.monitoring import TrainingRun

__all__ = ["SearchProgress"]


class SearchProgress:
    """Counts finished fits and tracks the best mean score among the candidates whose folds are all done.

    A candidate is *running* when some of its folds are done and others not yet; *done* when all are. The best
    score so far is the highest mean test score of ``key`` among the done candidates (``NaN`` means ignored).

    Parameters
    ----------
    run : TrainingRun
        Where to report.
    candidates : list of dict
        The parameter settings.
    n_splits : int
        Number of folds.
    key : str
        The scorer whose mean chooses the best candidate.
    finished : dict of (int, int) to dict
        Results known before the search ran (from a checkpoint).
    round_index : int or None, default=None
        The round of a successive-halving search (0 for the first, as ``cv_results_["iter"]``): then the
        candidates are this round's, the best score is this round's (budgets differ between rounds), and the
        state also holds ``round`` and ``n_rounds``.
    n_rounds : int or None, default=None
        Number of rounds, with ``round_index``.
    fits_before : int, default=0
        Fits of the earlier rounds, counted in ``fits_done``.
    n_fits : int or None, default=None
        Fits of the whole search (``None``: ``len(candidates) * n_splits``).
    """

    def __init__(
        self,
        run: TrainingRun,
        candidates: list[dict[str, Any]],
        n_splits: int,
        key: str,
        finished: Mapping[tuple[int, int], dict[str, Any]],
        *,
        round_index: int | None = None,
        n_rounds: int | None = None,
        fits_before: int = 0,
        n_fits: int | None = None,
    ) -> None:
        self.run = run
        self.candidates = candidates
        self.n_splits = n_splits
        self.key = key
        self.round_index = round_index
        self.n_rounds = n_rounds
        self.fits_before = fits_before
        self.n_fits = len(candidates) * n_splits if n_fits is None else n_fits
        self.scores: dict[int, dict[int, float]] = {}
        for (candidate, fold), result in finished.items():
            self._add(candidate, fold, result)
        self.report()

    def _add(self, candidate: int, fold: int, result: Mapping[str, Any]) -> None:
        self.scores.setdefault(candidate, {})[fold] = float(result["test_scores"][self.key])

    def __call__(self, candidate: int, fold: int, result: Mapping[str, Any]) -> None:
        """Record one finished fit and report."""
        self._add(candidate, fold, result)
        self.report()

    def state(self) -> dict[str, Any]:
        """The progress now, as reported.

        Returns
        -------
        dict
            ``n_candidates``, ``n_splits``, ``n_fits``, ``fits_done``, ``candidates_done``,
            ``candidates_running``, ``best_score``, ``best_params`` (text) and ``best_candidate``; with a
            round, ``round`` and ``n_rounds`` too.
        """
        done = {c: folds for c, folds in self.scores.items() if len(folds) == self.n_splits}
        means = {c: float(np.mean(list(folds.values()))) for c, folds in done.items()}
        finite = {c: mean for c, mean in means.items() if np.isfinite(mean)}
        # the first of equal means, as the ranks of cv_results_ give (method="min", first index wins)
        best = max(sorted(finite), key=lambda c: finite[c]) if finite else None
        state = {
            "n_candidates": len(self.candidates),
            "n_splits": self.n_splits,
            "n_fits": self.n_fits,
            "fits_done": self.fits_before + sum(len(folds) for folds in self.scores.values()),
            "candidates_done": len(done),
            "candidates_running": len(self.scores) - len(done),
            "best_score": None if best is None else finite[best],
            "best_params": None if best is None else _describe(self.candidates[best]),
            "best_candidate": best,
        }
        if self.round_index is not None:
            state |= {"round": self.round_index, "n_rounds": self.n_rounds}
        return state

    def report(self) -> None:
        """Send the progress to the run (and its bar)."""
        self.run.search(self.state())


def _describe(params: Mapping[str, Any]) -> str:
    text = ", ".join(f"{name}={value!r}" for name, value in sorted(params.items()))
    return text if len(text) <= 200 else text[:197] + "..."
