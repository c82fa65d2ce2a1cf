"""What a target column holds, from one blocked pass: distinct values (capped), whole numbers or not, missing
values and file order. The command line infers the task and warns about sorted files from it.

What is computed, and why: one small dict per row block (at most ``max_distinct + 1`` distinct values with
their counts, a few counters and the block's first and last values), merged on the client. The column itself
never leaves the workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import pandas as pd

from daskml_lab._compat import unique_fused_keys
from daskml_lab._runtime.watched_compute import watched_compute

__all__ = ["TargetSummary", "describe_target"]


@dataclass(frozen=True)
class TargetSummary:
    """A summary of a target column (see :func:`describe_target`).

    Attributes
    ----------
    n_samples : int
        Number of values, missing ones included.
    n_missing : int
        Missing values (NaN, None).
    counts : dict or None
        Count of each distinct non-missing value, or ``None`` when there are more than ``max_distinct``.
    numeric : bool
        Whether the values are numbers (not text, not objects); booleans count as numbers.
    whole : bool
        Whether every non-missing value is a whole number (``1.0`` is; text never is).
    ascending_share, descending_share : float
        Share of pairs of neighbouring rows (in file order, missing values skipped within a block) whose
        value does not decrease, or does not increase; both 0.5 or so for rows in random order, near 1 for
        a file sorted by the target (numbers only; NaN for text).
    equal_share : float
        Share of pairs of neighbouring rows with the same value: near the sum of the squared class shares for
        rows in random order, near 1 for a file grouped by class.
    """

    n_samples: int
    n_missing: int
    counts: dict[Any, int] | None
    numeric: bool
    whole: bool
    ascending_share: float
    descending_share: float
    equal_share: float

    @property
    def n_distinct(self) -> int | None:
        """Number of distinct non-missing values, or ``None`` when more than the cap."""
        return None if self.counts is None else len(self.counts)

    def looks_sorted(self) -> bool:
        """Whether the file order follows the target: sorted numbers, or classes in long runs.

        Numbers: at least 90% of neighbouring pairs go one way (0.5 in random order). Classes: the share of
        equal neighbours is more than half-way from its random-order value (the sum of squared class shares)
        to 1.
        """
        if self.n_samples - self.n_missing < 3:
            return False
        if self.counts is not None and len(self.counts) <= 1:
            return False
        if self.counts is not None and not (self.numeric and not self.whole):
            shares = np.asarray(list(self.counts.values()), dtype=float)
            shares /= shares.sum()
            expected = float((shares**2).sum())
            if self.equal_share > expected + 0.5 * (1 - expected):
                return True
        if self.numeric:
            return max(self.ascending_share, self.descending_share) >= 0.9 and self.equal_share < 0.9
        return False


def describe_target(y: Any, *, max_distinct: int = 100) -> TargetSummary:
    """Summarise a target column in one blocked pass, without bringing it to the client.

    Parameters
    ----------
    y : dask.array.Array of shape (n_samples,)
        The target (numbers, or labels as objects), with known row chunks.
    max_distinct : int, default=100
        Distinct values are counted up to this many; beyond it only the fact that there are more is kept.

    Returns
    -------
    TargetSummary

    Notes
    -----
    One ``dask.compute`` of one task per row block, each returning at most ``max_distinct + 1`` values with
    their counts and a few numbers.

    Examples
    --------
    >>> import dask.array as da
    >>> summary = describe_target(da.from_array(np.array([-1.0, 1.0, 1.0, -1.0]), chunks=2))
    >>> summary.counts, summary.whole
    ({-1.0: 2, 1.0: 2}, True)
    """
    blocks = y.to_delayed().ravel()
    token = dask.base.tokenize(y, max_distinct)
    parts = [
        dask.delayed(_target_stats_block, pure=True)(
            block, max_distinct, dask_key_name=(f"daskml-target-summary-{token}", i)
        )
        for i, block in enumerate(blocks)
    ]
    # compute: per block, at most max_distinct + 1 value counts and a few scalars
    with unique_fused_keys():
        stats = watched_compute(*parts, what="the summary of the target")
    return _target_stats_agg(list(stats), max_distinct, numeric=np.dtype(y.dtype).kind in "biuf")


def _target_stats_block(values: np.ndarray, max_distinct: int) -> dict[str, Any]:
    """Counts, missing values, whole-number check and neighbour comparisons of one block."""
    series = pd.Series(values)
    missing = series.isna().to_numpy()
    present = series[~missing]
    counts = present.value_counts(sort=False)
    numeric = np.asarray(values).dtype.kind in "biuf"
    data = present.to_numpy()
    if numeric:
        number = data.astype(np.float64)
        whole = bool(np.all(np.isfinite(number) & (number == np.round(number))))
        diff = np.diff(number)
        n_up, n_down = int((diff >= 0).sum()), int((diff <= 0).sum())
    else:
        whole, n_up, n_down = False, 0, 0
    n_equal = int((data[1:] == data[:-1]).sum()) if len(data) > 1 else 0
    return {
        "n": len(values),
        "n_missing": int(missing.sum()),
        "counts": None
        if len(counts) > max_distinct
        else dict(zip(counts.index, counts.tolist(), strict=True)),
        "whole": whole,
        "n_pairs": max(len(data) - 1, 0),
        "n_up": n_up,
        "n_down": n_down,
        "n_equal": n_equal,
        "first": data[0] if len(data) else None,
        "last": data[-1] if len(data) else None,
    }


def _target_stats_agg(stats: list[dict[str, Any]], max_distinct: int, *, numeric: bool) -> TargetSummary:
    """Merge the per-block dicts, counting the pairs that straddle block boundaries too."""
    counts: dict[Any, int] | None = {}
    for part in stats:
        if counts is None or part["counts"] is None:
            counts = None
            continue
        for value, n in part["counts"].items():
            counts[value] = counts.get(value, 0) + n
        if len(counts) > max_distinct:
            counts = None
    n_pairs = sum(p["n_pairs"] for p in stats)
    n_up = sum(p["n_up"] for p in stats)
    n_down = sum(p["n_down"] for p in stats)
    n_equal = sum(p["n_equal"] for p in stats)
    previous = None
    for part in stats:
        if part["first"] is None:
            continue
        if previous is not None:
            n_pairs += 1
            n_equal += int(previous == part["first"])
            if numeric:
                n_up += int(part["first"] >= previous)
                n_down += int(part["first"] <= previous)
        previous = part["last"]
    if counts is not None:
        try:
            counts = dict(sorted(counts.items()))
        except TypeError:  # mixed types: in order of appearance
            pass
    share = (lambda n: n / n_pairs) if n_pairs else (lambda n: float("nan"))
    return TargetSummary(
        n_samples=sum(p["n"] for p in stats),
        n_missing=sum(p["n_missing"] for p in stats),
        counts=None if counts is None else {_plain(k): v for k, v in counts.items()},
        numeric=numeric,
        whole=numeric and all(p["whole"] for p in stats if p["n"] > p["n_missing"]),
        ascending_share=share(n_up) if numeric else float("nan"),
        descending_share=share(n_down) if numeric else float("nan"),
        equal_share=share(n_equal),
    )


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar (for printing and JSON)."""
    return value.item() if isinstance(value, np.generic) else value
