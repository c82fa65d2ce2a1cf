"""Fitting the transformers of a ColumnTransformer on dask input: every transformer's statistics in one pass.

A transformer that follows the statistics protocol of :mod:`daskml_lab.preprocessing` describes what it
needs as lazy dask objects (``_fit_plan(X)``) and finishes its fit from their values
(``_fit_finish(X, statistics)``). :func:`fit_in_rounds` collects the plans of all transformers and computes
them together: one ``dask.compute``, one pass over the data. A :class:`sklearn.pipeline.Pipeline` of such
transformers (an imputer, then an encoder) is fitted step by step, since each step learns from the output of
the one before: one round (pass) per step, the steps of the same rank of every Pipeline sharing it.
"""

from __future__ import annotations

import warnings
from typing import Any

from sklearn.pipeline import Pipeline

from daskml_lab._runtime.watched_compute import watched_compute

__all__ = ["fit_in_rounds", "has_protocol", "steps_of"]


def has_protocol(transformer: Any) -> bool:
    """Whether ``transformer`` fits from lazy statistics (``_fit_plan`` and ``_fit_finish``)."""
    return callable(getattr(transformer, "_fit_plan", None)) and callable(
        getattr(transformer, "_fit_finish", None)
    )


def steps_of(transformer: Any) -> list[Any]:
    """The transformers to fit in order: a Pipeline's steps (``"passthrough"`` and None left out), else itself."""
    if isinstance(transformer, Pipeline):
        return [
            step
            for _, step in transformer.steps
            if step is not None and not (isinstance(step, str) and step == "passthrough")
        ]
    return [transformer]


def fit_in_rounds(transformers: dict[str, Any], inputs: dict[str, Any]) -> int:
    """Fit each transformer on its lazy input, computing the statistics of all of them together.

    Parameters
    ----------
    transformers : dict of str to estimator
        Unfitted transformers following the protocol, or Pipelines whose steps follow it or are stateless
        (fitted on their lazy input: they read its columns, not its data).
    inputs : dict of str to dask collection
        The lazy input of each transformer.

    Returns
    -------
    int
        The number of ``dask.compute`` calls made (the depth of the deepest Pipeline; 0 without statistics).
    """
    pending = {name: (steps_of(t), inputs[name]) for name, t in transformers.items()}
    n_passes = 0
    while pending:
        plans = {}
        for name in list(pending):
            steps, X = pending[name]
            while steps and not has_protocol(steps[0]):
                # stateless: fitted on the lazy input (columns and their count only), then applied lazily
                step = steps.pop(0)
                step.fit(X)
                X = step.transform(X) if steps else X
            if not steps:
                del pending[name]
                continue
            pending[name] = (steps, X)
            plans[name] = steps[0]._fit_plan(X)
        if not plans:
            break
        # compute: the statistics of one step of every transformer (model-sized: means, counts, categories):
        # one pass over the data
        with warnings.catch_warnings():
            # Plans may mix dask arrays (graphs) and DataFrame expressions; dask then materialises the
            # expressions first and says so. It is still one computation: nothing to tell the user.
            warnings.filterwarnings("ignore", message="Computing mixed collections", category=UserWarning)
            (statistics,) = (
                watched_compute(plans, what="the statistics of the transformers")
                if any(plans.values())
                else (plans,)
            )
        if any(plans.values()):
            n_passes += 1
        for name in plans:
            steps, X = pending[name]
            step = steps.pop(0)
            step._fit_finish(X, statistics[name])
            pending[name] = (steps, step.transform(X) if steps else X)
    return n_passes
