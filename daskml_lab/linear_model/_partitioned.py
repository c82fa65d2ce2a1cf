"""The estimators' side of model partitioning (``model_partitions=``): checks, and the run over the store.

With ``model_partitions`` an int, the coefficients live in a partitioned parameter store during the fit
(:func:`daskml_lab.solvers.partitioned_sgd`), and are gathered to the client at the end (the model must be
small enough: a partitioned fitted model is the next step of issue 13). ``None`` and ``"auto"`` keep the
replicated solvers; ``"auto"`` will switch to the store above a documented model size once the partitioned
fitted model exists (issue 13).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from daskml_lab import solvers
from daskml_lab._runtime.client import current_client

__all__ = ["check_partitioned", "is_partitioned", "run_partitioned"]

#: The registry names that mean the partitioned SGD when ``model_partitions`` is an int.
_PARTITIONED_SOLVERS = ("auto", "sgd")
#: Keywords of ``partitioned_sgd`` that come from the estimator, never from ``solver_options``.
_FROM_ESTIMATOR = frozenset(
    {
        "X",
        "y",
        "sample_weight",
        "client",
        "loss",
        "n_outputs",
        "fit_intercept",
        "data_scale",
        "l2",
        "n_partitions",
        "w0",
        "tol",
        "max_iter",
        "random_state",
        "callback",
        "gather",
    }
)


def is_partitioned(estimator: Any) -> bool:
    """Whether ``estimator.model_partitions`` asks for the partitioned store (an int; not None nor "auto")."""
    return estimator.model_partitions not in (None, "auto")


def partitioned_options() -> list[str]:
    """The tuning keywords of the partitioned SGD (what ``solver_options`` may set)."""
    parameters = inspect.signature(solvers.partitioned_sgd).parameters
    return sorted(name for name in parameters if name not in _FROM_ESTIMATOR)


def check_partitioned(estimator: Any) -> Any:
    """Refuse settings the partitioned store does not support yet; return the distributed client.

    Runs in ``fit`` before any graph is built.

    Raises
    ------
    ValueError
        For a solver other than ``"auto"``/``"sgd"``, an L1 penalty, a checkpoint, unknown ``solver_options``,
        or no distributed client.
    """
    name = type(estimator).__name__
    given = estimator.model_partitions
    if estimator.solver not in _PARTITIONED_SOLVERS:
        msg = (
            f"model_partitions={given!r} runs the partitioned 'sgd' solver, but solver={estimator.solver!r}. "
            f"Use solver='sgd' (or 'auto') with model_partitions, or model_partitions=None for {estimator.solver!r}."
        )
        raise ValueError(msg)
    if getattr(estimator, "l1_ratio", 0.0) > 0:
        msg = (
            f"model_partitions={given!r} supports the L2 penalty only (l1_ratio=0), got "
            f"l1_ratio={estimator.l1_ratio!r}. Use model_partitions=None for an L1 or elastic-net penalty."
        )
        raise ValueError(msg)
    if estimator.checkpoint is not None:
        msg = (
            f"model_partitions={given!r} does not support checkpoints yet (issue 13), but "
            f"checkpoint={estimator.checkpoint!r}. Use checkpoint=None, or model_partitions=None."
        )
        raise ValueError(msg)
    unknown = sorted(set(estimator.solver_options or {}) - set(partitioned_options()))
    if unknown:
        msg = (
            f"solver_options has keys {unknown} that the partitioned 'sgd' (model_partitions={given!r}) does not "
            f"take. Its options are {partitioned_options()}."
        )
        raise ValueError(msg)
    client = current_client()
    if client is None:
        msg = (
            f"model_partitions={given!r} puts the parameter shards on the workers of a distributed cluster, but "
            f"no distributed client is active. Connect one first (daskml_lab.connect() or "
            f"distributed.Client(...)), or fit {name} with model_partitions=None."
        )
        raise ValueError(msg)
    return client


def run_partitioned(
    estimator: Any,
    client: Any,
    X: Any,
    y: Any,
    sample_weight: Any,
    objective: Any,
    *,
    n_outputs: int,
    w0: np.ndarray | None,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Fit over the partitioned store; return the result, coef ``(K, d)`` and intercept ``(K,)``."""
    n_features = int(X.shape[1])
    if w0 is not None and not estimator.fit_intercept:
        w0 = np.vstack([w0, np.zeros((1, n_outputs))])  # the store always has the intercept row
    result = solvers.partitioned_sgd(
        X,
        y,
        sample_weight,
        client=client,
        loss=objective.loss,
        n_outputs=n_outputs,
        fit_intercept=estimator.fit_intercept,
        data_scale=objective.data_scale,
        l2=objective.l2,
        n_partitions=estimator.model_partitions,
        w0=w0,
        tol=estimator.tol,
        max_iter=estimator.max_iter,
        random_state=estimator.random_state,
        **dict(estimator.solver_options or {}),
    )
    W = np.asarray(result.W)
    coef = np.ascontiguousarray(W[:n_features].T, dtype=X.dtype)
    intercept = np.asarray(W[n_features], dtype=X.dtype)
    if not estimator.fit_intercept:
        intercept = np.zeros(n_outputs, dtype=X.dtype)
    return result, coef, intercept
