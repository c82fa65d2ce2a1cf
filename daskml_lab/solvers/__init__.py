"""Solvers for linear models on row-chunked dask arrays, and the blocked objective they minimise.

A :class:`BlockedProblem` evaluates ``F(W)`` and its gradient where the row blocks live, in one fused pass and
one round trip per evaluation; the solvers are plain functions registered by name in :data:`SOLVERS`::

    with BlockedProblem(X, y, loss="logistic", data_scale=C, l2=1.0) as problem:
        result = get_solver("lbfgs")(problem, w0=None, tol=1e-4, max_iter=100, random_state=None,
                                     callback=None)

Every solver takes ``problem`` and the keywords ``w0, tol, max_iter, random_state, callback, checkpoint`` plus
its own tuning constants (each with a default), returns a :class:`SolverResult`, and warns with
:class:`~daskml_lab.exceptions.ConvergenceWarning` when it stops before meeting ``tol``. Given a
:class:`SolverCheckpoint`, a solver saves its state every few iterations and resumes from it (see
:doc:`/checkpoints`). Each solver module holds only its algorithm and its options; the scaffold
(``daskml_lab.solvers._scaffold``) runs it, and one line below registers it with what it accepts (see
"Adding a solver" in :doc:`/solvers`).
"""

from __future__ import annotations

from daskml_lab.solvers._checkpoint import CheckpointError, SolverCheckpoint
from daskml_lab.solvers._engine import LocalBlocks, WorkerCall
from daskml_lab.solvers._folded import FoldedProblem
from daskml_lab.solvers._glm_losses import TweedieFamily
from daskml_lab.solvers._gram import (
    FoldMoments,
    Moments,
    enet_gram_path,
    fold_moments,
    heldout_sse,
    ridge_solve,
)
from daskml_lab.solvers._lockstep import PathResult, lockstep_lbfgs_paths, lockstep_proximal_paths
from daskml_lab.solvers._objectives import LOSSES
from daskml_lab.solvers._partitioned_fit import ShardsLostError
from daskml_lab.solvers._problem import BlockedProblem
from daskml_lab.solvers._registry import (
    SOLVERS,
    RegisteredSolver,
    get_solver,
    register_solver,
    supported_solvers,
    unregister_solver,
)
from daskml_lab.solvers._result import SolverResult
from daskml_lab.solvers._sharded_store import ShardedStore, ShardRule, StoreView, max_gather_bytes
from daskml_lab.solvers.admm import admm
from daskml_lab.solvers.async_sgd import async_sgd
from daskml_lab.solvers.gd import gd
from daskml_lab.solvers.lbfgs import lbfgs
from daskml_lab.solvers.newton_cg import newton_cg
from daskml_lab.solvers.newton_cholesky import newton_cholesky
from daskml_lab.solvers.partitioned_gd import partitioned_gd
from daskml_lab.solvers.partitioned_lbfgs import partitioned_lbfgs
from daskml_lab.solvers.partitioned_proximal import partitioned_proximal
from daskml_lab.solvers.partitioned_sgd import PartitionedResult, partitioned_sgd
from daskml_lab.solvers.proximal import proximal
from daskml_lab.solvers.sgd import sgd
from daskml_lab.solvers.smoothed_newton import smoothed_newton

__all__ = [
    "LOSSES",
    "SOLVERS",
    "BlockedProblem",
    "CheckpointError",
    "FoldMoments",
    "FoldedProblem",
    "LocalBlocks",
    "Moments",
    "PartitionedResult",
    "PathResult",
    "RegisteredSolver",
    "ShardRule",
    "ShardedStore",
    "ShardsLostError",
    "SolverCheckpoint",
    "SolverResult",
    "StoreView",
    "TweedieFamily",
    "WorkerCall",
    "enet_gram_path",
    "fold_moments",
    "get_solver",
    "heldout_sse",
    "lockstep_lbfgs_paths",
    "lockstep_proximal_paths",
    "max_gather_bytes",
    "partitioned_gd",
    "partitioned_lbfgs",
    "partitioned_proximal",
    "partitioned_sgd",
    "register_solver",
    "ridge_solve",
    "supported_solvers",
    "unregister_solver",
]

# The registry: one line per solver, with the problems it accepts (the order is the order of preference of
# supported_solvers).
register_solver("lbfgs", lbfgs, smooth_only=True, supports_l1=False)
register_solver("gd", gd, smooth_only=True, supports_l1=False)
register_solver("proximal", proximal, smooth_only=True, supports_l1=True)
register_solver("admm", admm, smooth_only=False, supports_l1=True)
register_solver("sgd", sgd, smooth_only=False, supports_l1=True, stochastic=True)
register_solver("async-sgd", async_sgd, smooth_only=False, supports_l1=True, stochastic=True)
register_solver("newton-cg", newton_cg, smooth_only=True, supports_l1=False)
register_solver("newton-cholesky", newton_cholesky, smooth_only=True, supports_l1=False)
register_solver(
    "smoothed-newton", smoothed_newton, smooth_only=False, supports_l1=False, only_losses=("hinge",)
)
