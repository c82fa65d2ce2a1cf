"""The estimators' side of model partitioning (``model_partitions=``): the rule, checks, and the run over the store.

With ``model_partitions`` an int, the coefficients live in a partitioned parameter store during the fit
(:func:`daskml_lab.solvers.partitioned_sgd`, :func:`~daskml_lab.solvers.partitioned_lbfgs` with
``solver="lbfgs"``, :func:`~daskml_lab.solvers.partitioned_gd` with ``solver="gd"``, or
:func:`~daskml_lab.solvers.partitioned_proximal` with ``solver="proximal"``, which also takes an L1 or
elastic-net penalty). At the end they are gathered to the client when the model is at most
``daskml_lab.solvers.store.max_gather_bytes`` (dask config, 256 MiB by default); a larger model stays in the
shards and ``coef_`` is a :class:`~daskml_lab.linear_model.PartitionedCoefficients`.

``"auto"`` partitions when ``coef_`` would be larger than ``daskml_lab.model_partitions.auto_min_bytes``
(dask config, :data:`DEFAULT_AUTO_MIN_BYTES`), ``n_features x n_outputs x 8`` bytes with ``n_outputs`` 1 for
two classes and the number of classes otherwise, and the estimator's settings allow it (solver ``"auto"``,
``"sgd"``, ``"lbfgs"``, ``"gd"`` or ``"proximal"``; an L2 penalty unless ``"proximal"``; a checkpoint only with a
solver that takes one; a distributed client); otherwise it fits with the replicated solvers.

With ``checkpoint=DIR``, every partitioned solver (the SGD, ``"lbfgs"``, ``"gd"`` and ``"proximal"``) saves
every shard's state on its own worker every ``checkpoint_every`` epochs (iterations for the full-batch solvers),
and a refit resumes from it (:mod:`daskml_lab.solvers._shard_checkpoint`); the directory must be reachable by
the workers.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import dask
import numpy as np

from daskml_lab import solvers
from daskml_lab._runtime.client import cluster_timeout_s, current_client
from daskml_lab.linear_model._partitioned_model import PartitionedCoefficients

__all__ = [
    "DEFAULT_AUTO_MIN_BYTES",
    "PartitionedFit",
    "auto_partitioned",
    "check_partitioned",
    "check_warm_start",
    "is_partitioned",
    "partitioned_client",
    "run_partitioned",
]

logger = logging.getLogger(__name__)

#: Default of ``daskml_lab.model_partitions.auto_min_bytes``: ``model_partitions="auto"`` partitions a model
#: larger than this (32 MiB: 2**22 float64 coefficients). The partitioned L-BFGS overtakes the replicated one
#: between 2**16 and 2**18 features (docs/benchmarks.md), but "auto" with ``solver="auto"`` runs the SGD, whose
#: answer is approximate: it switches where the replicated fit has become the bottleneck.
DEFAULT_AUTO_MIN_BYTES = 32 * 2**20
#: Default of ``daskml_lab.model_partitions.max_recoveries``: resumptions from the checkpoint within one fit.
DEFAULT_MAX_RECOVERIES = 3

#: The solvers over the partitioned store, by the estimator's ``solver`` ("auto" and "async-sgd" are the SGD,
#: which is asynchronous with bounded staleness; ``max_staleness=0`` runs it in lockstep).
_PARTITIONED_SOLVERS = {
    "auto": solvers.partitioned_sgd,
    "sgd": solvers.partitioned_sgd,
    "async-sgd": solvers.partitioned_sgd,
    "lbfgs": solvers.partitioned_lbfgs,
    "gd": solvers.partitioned_gd,
    "proximal": solvers.partitioned_proximal,
}
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
        "l1",
        "n_partitions",
        "w0",
        "tol",
        "max_iter",
        "random_state",
        "callback",
        "gather",
        "checkpoint",
    }
)


def is_partitioned(estimator: Any) -> bool:
    """Whether ``estimator.model_partitions`` asks for the partitioned store (an int; not None nor "auto")."""
    return estimator.model_partitions not in (None, "auto")


def auto_min_bytes() -> int:
    """The size of ``coef_`` (bytes) above which ``model_partitions="auto"`` partitions the model."""
    return int(dask.config.get("daskml_lab.model_partitions.auto_min_bytes", DEFAULT_AUTO_MIN_BYTES))


def partitioned_options(solver: str = "sgd") -> list[str]:
    """The tuning keywords of the partitioned ``solver`` (what ``solver_options`` may set)."""
    parameters = inspect.signature(_PARTITIONED_SOLVERS[solver]).parameters
    return sorted(name for name in parameters if name not in _FROM_ESTIMATOR)


def _refusal(estimator: Any) -> str | None:
    """Why the estimator's settings do not allow the partitioned store (with the fix), or None."""
    given = estimator.model_partitions
    if estimator.solver not in _PARTITIONED_SOLVERS:
        return (
            f"model_partitions={given!r} runs the partitioned 'sgd' (also 'async-sgd'), 'lbfgs', 'gd' or "
            f"'proximal' solver, but solver={estimator.solver!r}. Use solver='lbfgs', 'gd', 'proximal', 'sgd' "
            "(or 'auto' or 'async-sgd': the same SGD, asynchronous with bounded staleness) with "
            f"model_partitions, or model_partitions=None for {estimator.solver!r}."
        )
    own = getattr(estimator, "_partition_refusal", None)
    if own is not None and own() is not None:
        return own()
    l1_ratio = _l1_ratio(estimator)
    if l1_ratio > 0 and not _takes_l1(estimator):
        return (
            f"model_partitions={given!r} with solver={estimator.solver!r} supports the L2 penalty only "
            f"(l1_ratio=0), got l1_ratio={l1_ratio!r}. Use solver='proximal', or the SGD with "
            "solver_options={'step_rule': 'ftrl'} (FTRL-proximal), for an L1 or elastic-net penalty over the "
            "partitioned store, or model_partitions=None."
        )
    if estimator.checkpoint is not None and not _takes_checkpoint(estimator.solver):
        taking = sorted(name for name in _PARTITIONED_SOLVERS if _takes_checkpoint(name))
        return (
            f"model_partitions={given!r} with solver={estimator.solver!r} does not support checkpoints yet, but "
            f"checkpoint={estimator.checkpoint!r}. The partitioned solvers that take a checkpoint are "
            f"{taking}: use one of them, checkpoint=None, or model_partitions=None."
        )
    options = partitioned_options(estimator.solver)
    unknown = sorted(set(estimator.solver_options or {}) - set(options))
    if unknown:
        name = "sgd" if estimator.solver in ("auto", "async-sgd") else estimator.solver
        return (
            f"solver_options has keys {unknown} that the partitioned {name!r} (model_partitions={given!r}) does "
            f"not take. Its options are {options}."
        )
    if current_client() is None:
        return (
            f"model_partitions={given!r} puts the parameter shards on the workers of a distributed cluster, but "
            f"no distributed client is active. Connect one first (daskml_lab.connect() or "
            f"distributed.Client(...)), or fit {type(estimator).__name__} with model_partitions=None."
        )
    return None


def _l1_ratio(estimator: Any) -> float:
    """The share of the L1 penalty (``Lasso``'s is 1, its class has no ``l1_ratio`` parameter)."""
    if hasattr(estimator, "_l1_ratio"):
        return float(estimator._l1_ratio())
    return float(getattr(estimator, "l1_ratio", 0.0))


def _takes_checkpoint(solver: str) -> bool:
    """Whether the partitioned solver run for the estimator's ``solver`` takes a ``checkpoint``."""
    return "checkpoint" in inspect.signature(_PARTITIONED_SOLVERS[solver]).parameters


def _takes_l1(estimator: Any) -> bool:
    """Whether the partitioned solver the estimator runs takes an L1 penalty: FISTA, or the FTRL-proximal SGD."""
    if estimator.solver == "proximal":
        return True
    ftrl = (estimator.solver_options or {}).get("step_rule") == "ftrl"
    return ftrl and _PARTITIONED_SOLVERS.get(estimator.solver) is solvers.partitioned_sgd


def check_partitioned(estimator: Any) -> Any:
    """Refuse settings the partitioned store does not support yet; return the distributed client.

    Runs in ``fit`` before any graph is built.

    Raises
    ------
    ValueError
        For a solver other than ``"auto"``, ``"sgd"``, ``"lbfgs"``, ``"gd"`` or ``"proximal"``, an L1 penalty with
        another solver than ``"proximal"``, a checkpoint with a solver that takes none, unknown
        ``solver_options``, or no distributed client.
    """
    refusal = _refusal(estimator)
    if refusal is not None:
        raise ValueError(refusal)
    return current_client()


def check_warm_start(estimator: Any) -> None:
    """Refuse ``warm_start`` from a partitioned fitted model into a replicated fit (before any work).

    A partitioned fit starts from it: its new shards copy their keys from the old ones, on the workers.

    Raises
    ------
    ValueError
        When ``warm_start=True``, ``coef_`` is a :class:`PartitionedCoefficients` and ``model_partitions`` is
        None (the replicated solvers would need the whole model on the client).
    """
    previous = getattr(estimator, "coef_", None)
    if (
        estimator.warm_start
        and isinstance(previous, PartitionedCoefficients)
        and estimator.model_partitions is None
    ):
        msg = (
            f"warm_start=True with model_partitions=None would bring the previous coef_ {previous!r} whole to the "
            "client. Keep model_partitions (an int or 'auto'), so that the new fit starts from the shards, or set "
            "warm_start=False."
        )
        raise ValueError(msg)


def partitioned_warm_start(estimator: Any, n_outputs: int, n_features: int) -> Any:
    """The view of the previous fit's shards to start from, or None.

    For ``warm_start=True`` and a previous ``coef_`` kept in its shards, of the shape the data need.
    """
    previous = getattr(estimator, "coef_", None)
    if not estimator.warm_start or not isinstance(previous, PartitionedCoefficients):
        return None
    if previous.shape != (n_outputs, n_features):
        logger.info(
            "%s: warm_start ignored, the previous coefficients have shape %s but the data need %s.",
            type(estimator).__name__,
            previous.shape,
            (n_outputs, n_features),
        )
        return None
    return previous.store_view()


def auto_partitioned(estimator: Any, n_features: int, n_outputs: int) -> Any:
    """For ``model_partitions="auto"``: the distributed client when the model is partitioned, else None.

    Partitioned when ``coef_`` (``n_features x n_outputs`` float64) is larger than :func:`auto_min_bytes` and
    the settings allow it; a model above the size whose settings do not allow it is fitted replicated, and
    the reason is logged.
    """
    nbytes = n_features * n_outputs * 8
    threshold = auto_min_bytes()
    if nbytes <= threshold:
        return None
    refusal = _refusal(estimator)
    if refusal is not None:
        logger.info(
            "%s: model_partitions='auto': the model (%d bytes) is above %d bytes "
            "(daskml_lab.model_partitions.auto_min_bytes), but it is fitted replicated: %s",
            type(estimator).__name__,
            nbytes,
            threshold,
            refusal,
        )
        return None
    logger.info(
        "%s: model_partitions='auto': the model (%d bytes) is above %d bytes: partitioned over the workers",
        type(estimator).__name__,
        nbytes,
        threshold,
    )
    return current_client()


def partitioned_client(estimator: Any, client: Any, n_features: int, n_outputs: int, w0: Any) -> Any:
    """The client of a partitioned fit, or None for a replicated one (``model_partitions="auto"`` decided here).

    ``client`` is :func:`check_partitioned`'s for an int ``model_partitions``. Raises when ``w0`` is the view
    of a previous model's shards (``warm_start=True``) but ``"auto"`` fits replicated: the replicated solvers
    would need that model whole on the client.
    """
    if estimator.model_partitions == "auto":
        client = auto_partitioned(estimator, n_features, n_outputs)
    if client is None and w0 is not None and not isinstance(w0, np.ndarray):
        msg = (
            "warm_start=True: the previous model is kept in its parameter shards, but model_partitions='auto' "
            "fits this model replicated (it is small, or its settings do not allow partitioning). Set "
            "model_partitions to an int, or warm_start=False."
        )
        raise ValueError(msg)
    return client


def max_recoveries() -> int:
    """How many times a partitioned fit with a checkpoint resumes from it after losing a worker (dask config)."""
    return int(dask.config.get("daskml_lab.model_partitions.max_recoveries", DEFAULT_MAX_RECOVERIES))


def _recovering(estimator: Any, client: Any, run: Callable[[], Any]) -> Any:
    """``run()`` (a partitioned solver); with a checkpoint, run again from it when a worker of the fit is lost.

    A lost worker takes its parameter shards (and its row blocks) with it. With a checkpoint every shard is also
    in its file, so the solver is simply run again: it places the blocks on the workers there are (Dask
    recomputes the lost ones from their graph), creates the shards anew and restores them from the last saved
    epoch or iteration, at most :func:`max_recoveries` times. Without a checkpoint the error stands: the lost
    values exist nowhere else, and a silent restart would be a different fit.
    """
    recoveries = 0
    while True:
        try:
            return run()
        except solvers.ShardsLostError as err:
            if estimator.checkpoint is None or recoveries >= max_recoveries():
                raise
            recoveries += 1
            logger.warning(
                "%s: %s Resuming from the checkpoint %s (recovery %d of at most %d).",
                type(estimator).__name__,
                err,
                estimator.checkpoint,
                recoveries,
                max_recoveries(),
            )
            client.wait_for_workers(1, timeout=cluster_timeout_s())


def run_partitioned(
    estimator: Any,
    client: Any,
    X: Any,
    y: Any,
    sample_weight: Any,
    objective: Any,
    *,
    n_outputs: int,
    w0: np.ndarray | solvers.StoreView | None,
) -> tuple[Any, np.ndarray | PartitionedCoefficients, np.ndarray]:
    """Fit over the partitioned store; return the result, coef ``(K, d)`` and intercept ``(K,)``.

    The coefficients are a numpy array when the model is at most
    :func:`~daskml_lab.solvers.max_gather_bytes`, otherwise a :class:`PartitionedCoefficients` owning the
    store (the intercepts, ``K`` values, always come to the client).
    """
    n_features = int(X.shape[1])
    if isinstance(w0, np.ndarray) and not estimator.fit_intercept:
        w0 = np.vstack([w0, np.zeros((1, n_outputs))])  # the store always has the intercept row
    # the same size rule as the store's gather: the feature rows and the intercept row, float64
    gather = (n_features + 1) * n_outputs * 8 <= solvers.max_gather_bytes()
    given = estimator.model_partitions
    keywords: dict[str, Any] = {"l1": objective.l1} if _takes_l1(estimator) else {}
    if estimator.checkpoint is not None:
        # the shards write their own files: the directory must be reachable by the workers
        keywords["checkpoint"] = solvers.SolverCheckpoint(
            estimator.checkpoint, every=estimator.checkpoint_every, stage="solver"
        )
    arguments = {
        "client": client,
        "loss": objective.loss,
        "n_outputs": n_outputs,
        "fit_intercept": estimator.fit_intercept,
        "data_scale": objective.data_scale,
        "l2": objective.l2,
        "n_partitions": None if given == "auto" else given,
        "w0": w0,
        "tol": estimator.tol,
        "max_iter": estimator.max_iter,
        "random_state": estimator.random_state,
        "gather": gather,
        **keywords,
        **dict(estimator.solver_options or {}),
    }
    result = _recovering(
        estimator, client, lambda: _PARTITIONED_SOLVERS[estimator.solver](X, y, sample_weight, **arguments)
    )
    if gather:
        W = np.asarray(result.W)
        coef: np.ndarray | PartitionedCoefficients = np.ascontiguousarray(W[:n_features].T, dtype=X.dtype)
        intercept = np.asarray(W[n_features], dtype=X.dtype)
    else:
        store = result.store
        try:
            # pull: the intercept row only (n_outputs values)
            intercept = np.asarray(store.pull(np.array([n_features]))[0], dtype=X.dtype)
            coef = PartitionedCoefficients(store, n_features, X.dtype)
        except BaseException:
            store.close()
            raise
        result.store = None  # owned by coef_ from now on
    if not estimator.fit_intercept:
        intercept = np.zeros(n_outputs, dtype=X.dtype)
    return result, coef, intercept


class PartitionedFit:
    """What the linear estimators' ``fit`` does about ``model_partitions`` (a mixin of their base class).

    An estimator without a ``model_partitions`` parameter (the GLMs, ``HuberRegressor``) fits replicated; one
    with it checks its settings before any work (:meth:`_partition_client`), starts from the previous model's
    shards when it stays in them (:meth:`_start_params`) and runs on the store or replicated
    (:meth:`_fit_linear`, where ``"auto"`` is decided).
    """

    def _partition_client(self) -> Any:
        """The distributed client of an int ``model_partitions`` (its settings checked), else None.

        Runs in ``fit`` before any graph is built. Without ``model_partitions`` (an estimator that has no
        such parameter, ``None`` or ``"auto"``) the replicated solver's options are checked instead;
        ``"auto"`` is decided later, in :meth:`_fit_linear`, once the model's size is known.
        """
        if not hasattr(self, "model_partitions"):
            self._check_solver_options()
            return None
        check_warm_start(self)
        if is_partitioned(self):
            return check_partitioned(self)
        self._check_solver_options()
        return None

    def _start_params(self, n_outputs: int, n_features: int) -> Any:
        """The warm start: the view of the previous model's shards when it stays in them, else its array."""
        if isinstance(getattr(self, "coef_", None), PartitionedCoefficients):
            return partitioned_warm_start(self, n_outputs, n_features)
        return self._warm_start_params(n_outputs, n_features)

    def _fit_linear(
        self, client: Any, X: Any, y: Any, weights: Any, objective: Any, *, n_outputs: int, w0: Any
    ) -> tuple[Any, Any, np.ndarray]:
        """One fit over the partitioned store or by the replicated solver: result, coef, intercept.

        ``client`` is :meth:`_partition_client`'s; ``model_partitions="auto"`` is decided here.
        """
        if hasattr(self, "model_partitions"):
            client = partitioned_client(self, client, int(X.shape[1]), n_outputs, w0)
        if client is not None:
            return run_partitioned(self, client, X, y, weights, objective, n_outputs=n_outputs, w0=w0)
        return self._run_solver(X, y, weights, objective, n_outputs=n_outputs, w0=w0)
