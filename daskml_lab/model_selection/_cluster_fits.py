"""In-memory fits on the cluster: the data placed once, the fits in the order that ends soonest, the refit early.

- :func:`run_on_cluster` scatters ``X`` and ``y`` to every worker once and runs one task per (candidate, fold)
  (:func:`~daskml_lab.model_selection._fold_fit.fit_and_score`), two in flight per worker thread, each
  candidate's first fold first and then the longest candidates' folds (:class:`LongestFirst`);
- :class:`EarlyRefit` refits the best candidate so far on a worker thread that has no fit left to run, so a
  search's refit overlaps its last fits instead of following them;
- :func:`each_as_done` records every future's result as it finishes, watching the cluster meanwhile (also used
  for the fold tasks on dask data).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError
from typing import Any

import numpy as np
from distributed import wait

from daskml_lab._runtime.cluster_health import CHECK_INTERVAL_S, NO_WORKER_GRACE_S, ClusterHealth
from daskml_lab._runtime.waiting import forget_traceback, result_within
from daskml_lab.model_selection._fold_fit import fit_and_score, refit_candidate
from daskml_lab.model_selection._scoring import Scorer
from daskml_lab.monitoring import task_prefix

__all__ = ["EarlyRefit", "LongestFirst", "OnResult", "each_as_done", "run_on_cluster"]

#: Called with (candidate, fold, result) as each fit finishes (a search's checkpoint and progress).
OnResult = Callable[[int, int, dict[str, Any]], None]


def each_as_done(
    client: Any,
    submitted: Mapping[Any, tuple[int, int]],
    record: OnResult,
    *,
    what: str,
    refill: Callable[[int], Mapping[Any, tuple[int, int]]] | None = None,
) -> None:
    """``record`` every future's value as soon as it is done, checking the cluster while none finishes.

    ``refill``, when given, is called with the number of futures just done and returns the futures submitted
    in their place (a search that keeps a bounded number of fits in flight). The first task error is raised
    (after the values of the futures done with it were recorded); a lost scheduler or the loss of every
    worker raises as in :func:`~daskml_lab._runtime.waiting.wait_for`.
    """
    health = ClusterHealth(client)
    submitted = dict(submitted)
    pending = list(submitted)
    try:
        while pending:
            try:
                done, _ = wait(pending, timeout=CHECK_INTERVAL_S, return_when="FIRST_COMPLETED")
            except TimeoutError as err:
                forget_traceback(err)
                health.check(doing=f"waiting for {what}", grace_s=NO_WORKER_GRACE_S)
                continue
            except CancelledError:
                done = {future for future in pending if future.done()}
            errors = []
            for future in pending:
                if future not in done:
                    continue
                try:
                    value = result_within(future, what=what, client=client, timeout_s=None, health=health)
                except Exception as err:
                    errors.append(err)
                    continue
                record(*submitted.pop(future), value)
            pending = [future for future in pending if future not in done]
            if errors:
                raise errors[0]
            if refill is not None and done:
                more = refill(len(done))
                submitted.update(more)
                pending.extend(more)
    except BaseException:
        # an error or an interruption ends the search: the fits not started yet must not run on
        client.cancel([future for future in pending if not future.done()])
        raise


class LongestFirst:
    """The order of a search's (candidate, fold) fits that ends it soonest, learnt as the fits finish.

    Each candidate's first fold comes first, in grid order; once one fold of a candidate is measured, its
    other folds follow longest candidate first. Fits of one candidate on the folds of the same data cost
    about the same, so this is longest-processing-time-first scheduling: the long fits start early and the
    short ones fill the end. In grid order, the slowest candidates (an SVC's largest ``C``, a forest's deepest
    trees: often the last of a grid) ran last, alone, while the other workers had nothing left to do.

    Parameters
    ----------
    todo : list of (int, int)
        The (candidate, fold) pairs to run, in grid order.
    known : mapping of (int, int) to dict, default=None
        Results already known (a resumed search): their candidates' costs.
    """

    def __init__(
        self, todo: list[tuple[int, int]], known: Mapping[tuple[int, int], Any] | None = None
    ) -> None:
        self._pending = list(todo)
        self._started: set[int] = set()
        self._cost: dict[int, float] = {}
        for (candidate, _), result in (known or {}).items():
            self.measured(candidate, result)

    def __len__(self) -> int:
        return len(self._pending)

    def measured(self, candidate: int, result: Mapping[str, Any]) -> None:
        """Learn a candidate's cost from one of its fold's results (fit and score times, seconds)."""
        seconds = float(result.get("fit_time", 0.0)) + float(result.get("score_time", 0.0))
        self._cost[candidate] = max(seconds, self._cost.get(candidate, 0.0))
        self._started.add(candidate)

    def take(self) -> tuple[int, int]:
        """The next pair to submit (removed from the pending ones)."""
        index = next((i for i, (c, _) in enumerate(self._pending) if c not in self._started), None)
        if index is None:
            # a candidate without a measured fold (its first still running) counts as the longest: it may be
            index = max(
                range(len(self._pending)),
                key=lambda i: self._cost.get(self._pending[i][0], float("inf")),
            )
        pair = self._pending.pop(index)
        self._started.add(pair[0])
        return pair


class EarlyRefit:
    """The refit of a search's best candidate so far, started on a worker thread left without a fit to run.

    A search refits its best candidate once every fit is scored, and on a cluster the workers that finished
    their last fits sit idle until then. When a worker thread has nothing left to run, the candidate leading so
    far is refitted there on all the data: the best mean test score of ``key`` among the candidates with every
    fold scored (the first on a tie, as the search's ``rank_test_*`` decides). If it is still the best once all
    the fits are in, the search takes that model (:meth:`take`); otherwise the task is cancelled and the search
    refits as before. The chosen candidate and its model are the same either way: only the refit's time moves,
    to overlap the last fits.

    Parameters
    ----------
    n_folds : int
    key : str
        The scorer that chooses the best candidate (the refit metric).
    """

    def __init__(self, n_folds: int, key: str) -> None:
        self.n_folds = n_folds
        self.key = key
        self.candidate: int | None = None
        self._scores: dict[int, dict[int, float]] = {}
        self._future: Any = None
        self._client: Any = None

    def record(self, candidate: int, fold: int, result: Mapping[str, Any]) -> None:
        """Note one (candidate, fold)'s test score."""
        self._scores.setdefault(candidate, {})[fold] = float(result["test_scores"][self.key])

    def leader(self) -> int | None:
        """The best candidate among those with every fold scored (``None`` before one is complete)."""
        means = {
            candidate: float(np.mean(list(folds.values())))
            for candidate, folds in self._scores.items()
            if len(folds) == self.n_folds
        }
        means = {candidate: mean for candidate, mean in means.items() if not np.isnan(mean)}
        if not means:
            return None
        best = max(means.values())
        return min(candidate for candidate, mean in means.items() if mean == best)

    def start(self, client: Any, submit: Callable[[int], Any]) -> None:
        """Submit the leader's refit (``submit(candidate)`` gives its future), once per search."""
        if self._future is not None:
            return
        leader = self.leader()
        if leader is not None:
            self.candidate, self._client, self._future = leader, client, submit(leader)

    def cancel(self) -> None:
        """Cancel the refit task, if one was started (the search ended another way)."""
        if self._future is not None and not self._future.done():
            self._client.cancel([self._future])
        self._future = None

    def take(self, best_index: int) -> tuple[Any, float] | None:
        """The refitted model of ``best_index`` and its fit time, or ``None`` (the search refits it itself).

        ``None`` when no refit was started, when another candidate was refitted (it is cancelled), and when the
        refit task failed or its cluster was lost: the search's own refit then runs and reports any error.
        """
        if self._future is None:
            return None
        if best_index != self.candidate:
            self.cancel()
            return None
        future, self._future = self._future, None
        try:
            return result_within(
                future,
                what="the refit",
                client=self._client,
                timeout_s=None,
                health=ClusterHealth(self._client),
            )
        except Exception:  # the search's own refit runs instead and raises what it meets
            return None


def run_on_cluster(
    client: Any,
    estimator: Any,
    X: Any,
    y: Any,
    splits: list[tuple[np.ndarray, np.ndarray]],
    scorers: dict[str, Scorer],
    candidates: list[dict[str, Any]],
    options: dict[str, Any],
    todo: list[tuple[int, int]],
    record: OnResult,
    known: Mapping[tuple[int, int], Any],
    early_refit: EarlyRefit | None = None,
) -> None:
    """Fit and score the pairs of ``todo`` as tasks on ``client``'s cluster, ``record``-ing each result.

    ``early_refit``, when given, learns every result (``known`` ones too) and is started once a worker thread
    has no fit left to run.
    """
    # The data go to the cluster once, a copy on every worker: a lost worker loses no input (scattered data
    # have no lineage to compute them again from), and its running fits are rescheduled on the others. New
    # keys every time (hash=False): the same data scattered again while a previous search's keys are being
    # released would race with their removal ("Key lost during replication").
    X_future, y_future = client.scatter([X, y], broadcast=True, hash=False)
    estimator_future = client.scatter(estimator, broadcast=True, hash=False)
    run = uuid.uuid4().hex[:12]
    prefix = task_prefix("cv fit")
    order = LongestFirst(todo, known)
    threads = sum(client.nthreads().values())
    running = 0  # fits submitted and not done yet
    if early_refit is not None:
        for (c, f), result in known.items():
            early_refit.record(c, f, result)

    def refit(candidate: int) -> Any:
        return client.submit(
            refit_candidate,
            estimator_future,
            X_future,
            y_future,
            candidates[candidate],
            key=f"{task_prefix('refit')}-{run}-{candidate}",
        )

    def submit(free: int) -> dict[Any, tuple[int, int]]:
        nonlocal running
        submitted = {}
        while order and len(submitted) < free:
            c, f = order.take()
            future = client.submit(
                fit_and_score,
                estimator_future,
                X_future,
                y_future,
                splits[f][0],
                splits[f][1],
                scorers,
                parameters=candidates[c],
                key=f"{prefix}-{run}-{c}-{f}",
                **options,
            )
            submitted[future] = (c, f)
        running += len(submitted)
        if early_refit is not None and not order and running < threads:
            early_refit.start(client, refit)
        return submitted

    def measured_and_recorded(c: int, f: int, result: dict[str, Any]) -> None:
        order.measured(c, result)
        if early_refit is not None:
            early_refit.record(c, f, result)
        record(c, f, result)

    # two fits in flight per worker thread: a thread finishing one starts the next without waiting for this
    # process to choose it, and the choice of every other waits until the costs measured so far can order it
    in_flight = max(2, 2 * threads)

    def refill(done: int) -> dict[Any, tuple[int, int]]:
        nonlocal running
        running -= done
        return submit(done)

    try:
        each_as_done(
            client, submit(in_flight), measured_and_recorded, what="the cross-validation fits", refill=refill
        )
    except BaseException:
        if early_refit is not None:
            early_refit.cancel()
        raise
