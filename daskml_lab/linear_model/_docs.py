"""Docstring text shared by the linear models, written once and filled into each docstring.

A docstring line consisting only of ``%(name)s`` is replaced by the fragment ``name`` of
:data:`DOC_FRAGMENTS`, re-indented to the indentation of that line.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import TypeVar

__all__ = ["DOC_FRAGMENTS", "fill_doc"]

T = TypeVar("T", bound=Callable[..., object] | type)

DOC_FRAGMENTS: dict[str, str] = {
    "fit_intercept": """
        fit_intercept : bool, default=True
            Whether to fit an intercept. The intercept is never penalised.
        """,
    "tol": """
        tol : float, default=1e-4
            Stopping tolerance, passed unchanged to the solver, which documents what it measures (for
            ``"lbfgs"`` and ``"gd"``: the largest entry of the gradient of the objective per unit of sample
            weight, as ``gtol`` in scikit-learn's lbfgs). Smaller values give coefficients closer to the
            exact optimum at the cost of more passes over the data.
        """,
    "max_iter": """
        max_iter : int, default=100
            Largest number of solver iterations; each iteration is about one pass over the data. Reaching it
            warns with :class:`~daskml_lab.exceptions.ConvergenceWarning`.
        """,
    "warm_start": """
        warm_start : bool, default=False
            Whether to start the solver from the coefficients of the previous call to ``fit`` (when their
            shape still fits the data) instead of from zero.
        """,
    "random_state": """
        random_state : int, RandomState instance or None, default=None
            Seed of the stochastic solvers (sampling and shuffling); combined with the block index, so that
            results do not depend on the number of workers. Deterministic solvers do not draw from it.
        """,
    "solver": """
        solver : str, default="auto"
            Name of the optimiser in :data:`daskml_lab.solvers.SOLVERS` (e.g. ``"lbfgs"``, ``"gd"``,
            ``"proximal"``, ``"sgd"``, ``"async-sgd"``, ``"admm"``, ``"newton-cg"``, ``"newton-cholesky"``), or
            ``"auto"``: ``"lbfgs"`` for smooth
            objectives, ``"proximal"`` when there is an L1 penalty, and otherwise the first registered solver
            that supports the loss. A solver that does not support the loss or penalty raises ``ValueError``
            in ``fit``, naming those that do.
        """,
    "solver_options": """
        solver_options : dict or None, default=None
            Extra keyword arguments of the chosen solver (its tuning constants, e.g. a step size), checked
            against the solver's signature in ``fit``. Only valid with an explicit ``solver``.
        """,
    "checkpoint": """
        checkpoint : str, path-like or None, default=None
            Directory where the solver saves its state (parameters, iteration, history and the solver's own
            state, in a safe ``.npz`` + JSON format) every ``checkpoint_every`` iterations. Fitting again with
            the same directory resumes from the last save and reaches the solution of an uninterrupted fit; a
            directory holding a completed fit gives its result back at once. The directory is created if
            missing and checked in ``fit`` before any computation; a directory written by another estimator,
            other parameters or other data is refused with a clear error (delete it to start afresh). The
            data check hashes the row blocks where they live: one extra pass over them in memory per solver
            run. See :doc:`/checkpoints`.
        """,
    "checkpoint_every": """
        checkpoint_every : int, default=1
            Iterations between two saves of the checkpoint (the final state is always saved). Larger values
            write less often and redo more iterations after an interruption.
        """,
    "model_partitions": """
        model_partitions : None, "auto" or int, default=None
            Where the coefficients live during ``fit``. ``None``: the replicated solvers (``solver``). An int
            ``S >= 1``: a partitioned parameter store of ``S`` shards on the workers, trained by the
            partitioned SGD (``solver="auto"``, ``"sgd"`` or ``"async-sgd"``), vector-free L-BFGS
            (``"lbfgs"``), gradient descent (``"gd"``) or FISTA (``"proximal"``, which also takes an L1
            penalty), each pulling only the keys its rows touch; ``solver_options`` and ``checkpoint`` as for
            :class:`LogisticRegression`. Needs a distributed client. A model larger than
            ``daskml_lab.solvers.store.max_gather_bytes`` (dask config, 256 MiB) stays in the shards after the
            fit: ``coef_`` is then a :class:`PartitionedCoefficients`, always 2-D (``(1, n_features)`` for a
            regressor).
            ``"auto"``: partitioned, one shard per worker, when ``coef_`` would be larger than
            ``daskml_lab.model_partitions.auto_min_bytes`` (dask config, 32 MiB) and the settings allow it.
            See :doc:`/model_partitioning`.
        """,
    "class_weight": """
        class_weight : dict, "balanced" or None, default=None
            Weights of the classes, ``{label: weight}``, multiplied with ``sample_weight``. ``"balanced"``
            uses ``sum(sample_weight) / (n_classes * weighted class count)``, as scikit-learn does. ``None``
            weighs every class 1.
        """,
    "linear_attributes": """
        n_iter_ : int
            Number of solver iterations run (for one-vs-rest models, the largest over the classes).
        history_ : pandas.DataFrame
            One row per solver iteration with at least the columns ``iteration``, ``objective``,
            ``grad_norm``, ``step_size`` and ``time_s`` (``staleness`` for asynchronous solvers). The
            objective is the solver's scaled one (see Notes), so only its changes are comparable with
            scikit-learn's.
        n_features_in_ : int
            Number of features seen during ``fit``.
        feature_names_in_ : ndarray of str of shape (n_features,)
            Names of the features seen during ``fit``; defined only when ``X`` had string column names.
        """,
    "fit_notes": """
        ``fit`` computes, besides the solver's own passes over the data (about one per iteration, each
        bringing back one coefficient-sized gradient and a few scalars): for classifiers, one small
        computation of the class labels and their weighted counts; for regressors given ``sample_weight``,
        its sum (one scalar). Prediction methods compute nothing for dask and xarray input.
        """,
    "fit_parameters": """
        X : {array-like, sparse matrix, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Training data; dask arrays may hold dense or scipy CSR blocks. float32 stays float32.
        y : {array-like, dask array} of shape (n_samples,)
            Target values, with the row chunks of ``X`` for dask input.
        sample_weight : {array-like, dask array} of shape (n_samples,), default=None
            Non-negative weights of the samples; ``None`` weighs every sample 1.
        """,
    "predict_X": """
        X : {array-like, sparse matrix, dask array, xarray.DataArray} of shape (n_samples, n_features)
            Samples, with the features seen in ``fit``.
        """,
}

_MARKER = re.compile(r"^(?P<indent>[ \t]*)%\((?P<name>\w+)\)s[ \t]*$", re.MULTILINE)


def fill_doc(obj: T) -> T:
    """Replace the ``%(name)s`` lines of ``obj.__doc__`` by the matching fragments of :data:`DOC_FRAGMENTS`.

    Parameters
    ----------
    obj : class or function
        Object whose docstring holds markers.

    Returns
    -------
    class or function
        ``obj``, with its docstring filled in.

    Raises
    ------
    KeyError
        If a marker names no fragment.
    """

    def replace(match: re.Match[str]) -> str:
        text = textwrap.dedent(DOC_FRAGMENTS[match["name"]]).strip("\n")
        return textwrap.indent(text, match["indent"])

    if obj.__doc__:
        obj.__doc__ = _MARKER.sub(replace, obj.__doc__)
    return obj
